"""Task (pandera's venv): the checks of the mlkeel schema as a pandera DataFrameSchema, lazily (every failure).

Per column: non-null; numeric within [minimum, maximum] (Check.in_range); categorical in its set
(Check.isin); the key unique. No dtype check (mlkeel's type check is a no-op on well-typed data; pandas turns
an integer column with nulls into floats, which a dtype check would fail on every row).
"""

import json
import sys
import time
from pathlib import Path

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
started = time.perf_counter()
import pandas as pd  # noqa: E402
import pandera.pandas as pa  # noqa: E402

imported = time.perf_counter()
schema = json.loads(Path(arguments["schema"]).read_text(encoding="utf-8"))
keys = set(schema.get("key_columns") or [])
columns = {}
for column in schema["columns"]:
    checks = []
    if column.get("minimum") is not None or column.get("maximum") is not None:
        checks.append(pa.Check.in_range(column["minimum"], column["maximum"]))
    if column.get("categories") is not None:
        checks.append(pa.Check.isin(column["categories"]))
    columns[column["name"]] = pa.Column(
        None, checks=checks, nullable=column["nullable"], unique=column["name"] in keys, coerce=False
    )
dataframe_schema = pa.DataFrameSchema(columns)


def work() -> tuple[int, int]:
    frame = pd.read_parquet(arguments["path"])
    try:
        dataframe_schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return len(frame), int(errors.failure_cases["index"].dropna().nunique())
    return len(frame), 0


(rows, failed_rows), seconds, cold = timed_twice(work)
emit(
    seconds,
    cold,
    imported - started,
    rows=rows,
    rows_failed=failed_rows,
)
