"""Task (Great Expectations' venv): the checks of the mlkeel schema as GX 1.x expectations on a pandas frame.

Per column: ExpectColumnValuesToNotBeNull; ExpectColumnValuesToBeBetween (numeric); ExpectColumnValuesToBeInSet
(categorical); ExpectColumnValuesToBeUnique (the key). One ephemeral context, one suite, one validation run
with result_format SUMMARY (counts of unexpected values per expectation).
"""

import json
import os
import sys
import time
from pathlib import Path

from common import emit, timed_twice

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
arguments = json.loads(sys.argv[1])
started = time.perf_counter()
import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402

imported = time.perf_counter()
schema = json.loads(Path(arguments["schema"]).read_text(encoding="utf-8"))
keys = set(schema.get("key_columns") or [])


def work() -> tuple[int, object]:
    frame = pd.read_parquet(arguments["path"])
    context = gx.get_context(mode="ephemeral")
    batch_definition = (
        context.data_sources.add_pandas("bench").add_dataframe_asset("rows").add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="bench"))
    for column in schema["columns"]:
        name = column["name"]
        if not column["nullable"]:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=name))
        if column.get("minimum") is not None or column.get("maximum") is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(column=name, min_value=column["minimum"], max_value=column["maximum"])
            )
        if column.get("categories") is not None:
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=column["categories"]))
        if name in keys:
            suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=name))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="bench", data=batch_definition, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    return len(frame), result


(rows, result), seconds, cold = timed_twice(work)
unexpected = sum(int(item.result.get("unexpected_count") or 0) for item in result.results)
emit(
    seconds,
    cold,
    imported - started,
    rows=rows,
    unexpected_values=unexpected,
    expectations=len(result.results),
    version=gx.__version__,
)
