"""Task (evidently's venv): evidently 0.7's data-drift preset on two Parquet files read with pandas.

``Report([DataDriftPreset()])`` with its defaults (per column: a test or a distance chosen by type and size,
e.g. normed Wasserstein distance for numeric columns of more than 1,000 rows). A column is flagged when its
``ValueDrift`` metric passes its threshold: a p-value below it, or a distance at or above it.
"""

import json
import sys
import time

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
started = time.perf_counter()
import pandas as pd  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

imported = time.perf_counter()


def work() -> dict:
    reference = pd.read_parquet(arguments["reference"]).drop(columns=arguments.get("exclude", []))
    current = pd.read_parquet(arguments["current"]).drop(columns=arguments.get("exclude", []))
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    flagged = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        drifted = value < threshold if "p_value" in config["method"] else value >= threshold
        flagged[config["column"]] = (drifted, config["method"], value)
    return flagged


columns, seconds, cold = timed_twice(work)
emit(
    seconds,
    cold,
    imported - started,
    flagged=sorted(name for name, (drifted, _, _) in columns.items() if drifted),
    methods=sorted({method for _, method, _ in columns.values()}),
    values={name: value for name, (_, _, value) in columns.items()},
)
