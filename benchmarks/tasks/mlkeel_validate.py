"""Task: mlkeel validation of one Parquet file (this venv). Prints one JSON line (see benchmarks/common.py).

modes: ``table`` reads the file and runs validate_table (the checks, valid and quarantined rows in memory);
``stage`` runs the validate stage function (+ writing valid, quarantine, schema and report files);
``streaming`` the same stage function reading record batches.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
started = time.perf_counter()
from mlkeel.components.validate.logic import read_dataset, validate, validate_table  # noqa: E402
from mlkeel.schema import DatasetSchema  # noqa: E402

imported = time.perf_counter()
mode = arguments["mode"]


def work() -> object:
    if mode == "table":
        schema = DatasetSchema.load(arguments["schema"])
        table = read_dataset(arguments["path"], schema)
        return validate_table(table, schema, "bench", raise_on_failure=False)
    with tempfile.TemporaryDirectory(prefix="mlkeel-bench-validate-") as folder:
        work = Path(folder)
        return validate(
            arguments["path"],
            work / "valid.parquet",
            work / "quarantine.parquet",
            work / "schema.json",
            work / "report.md",
            schema_uri=arguments["schema"],
            streaming=mode == "streaming",
        )


outcome, seconds, cold = timed_twice(work, arguments.get("twice", True))
emit(
    seconds,
    cold,
    imported - started,
    rows=outcome.rows_in,
    rows_failed=outcome.rows_quarantined,
    violations=outcome.result["data"]["violations"],
)
