"""Task: mlkeel drift of two Parquet files (this venv). Prints one JSON line (see benchmarks/common.py).

modes: ``detect`` reads both files and runs detect_drift (the decision); ``stage`` runs the drift stage
function (+ the JSON result and the HTML report with a plot per flagged feature); ``streaming`` the stage
function comparing the files feature by feature; ``streaming_detect`` detect_drift_streaming alone.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
started = time.perf_counter()
# mlkeel imports alibi-detect and matplotlib where they are used: import them here, outside the timing.
import alibi_detect.cd.tabular  # noqa: E402, F401
import matplotlib.figure  # noqa: E402, F401

from mlkeel.components.drift.logic import detect_drift, detect_drift_streaming, drift  # noqa: E402
from mlkeel.components.ingest.logic import read_source  # noqa: E402

imported = time.perf_counter()
mode, exclude = arguments["mode"], arguments.get("exclude", [])


def work() -> dict:
    if mode == "detect":
        reference = read_source(arguments["reference"], "parquet").table
        current = read_source(arguments["current"], "parquet").table
        return detect_drift(reference, current, exclude_columns=exclude)
    if mode == "streaming_detect":
        return detect_drift_streaming(arguments["reference"], arguments["current"], exclude_columns=exclude)
    with tempfile.TemporaryDirectory(prefix="mlkeel-bench-drift-") as folder:
        return drift(
            arguments["reference"],
            arguments["current"],
            Path(folder) / "result.json",
            Path(folder) / "report.html",
            exclude_columns=exclude,
            streaming=mode == "streaming",
        )


result, seconds, cold = timed_twice(work, arguments.get("twice", True))
emit(
    seconds,
    cold,
    imported - started,
    flagged=sorted(result["data"]["drifted_features"]),
    p_values={name: feature["p_value"] for name, feature in result["data"]["features"].items()},
)
