"""Task: scoring throughput (this venv). Prints one JSON line (see benchmarks/common.py).

modes: ``raw`` times ``model.predict_proba`` alone on a DataFrame of the rows already in memory (model loaded,
file read, outside the timing); ``raw_io`` times loading the model, reading the Parquet with pandas and
``predict_proba``; ``mlkeel`` times the batch_predict stage function (load, read, score in chunks, write the
prediction log with ids, scores, labels and the model's identity). ``cpu_seconds``: CPU time of the measured
run, every thread included (OpenMP threads waiting at a barrier spin, and count).
"""

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
started = time.perf_counter()
import pandas as pd  # noqa: E402

from mlkeel.components.batch_predict.logic import batch_predict, resolve_model  # noqa: E402
from mlkeel.modeling import model_feature_columns  # noqa: E402

imported = time.perf_counter()
mode, model_uri, path = arguments["mode"], arguments["model"], arguments["path"]
frame = pd.read_parquet(path) if mode == "raw" else None
model = resolve_model(model_uri).model if mode == "raw" else None


def work() -> int:
    if mode == "raw":
        return len(model.predict_proba(frame[model_feature_columns(model)]))
    if mode == "raw_io":
        loaded = resolve_model(model_uri).model
        rows = pd.read_parquet(path)
        return len(loaded.predict_proba(rows[model_feature_columns(loaded)]))
    with tempfile.TemporaryDirectory(prefix="mlkeel-bench-scoring-") as folder:
        return batch_predict(model_uri, path, str(Path(folder) / "predictions.parquet")).rows_scored


cpu_seconds: list[float] = []


def measured() -> int:
    """``work``, recording the CPU time (user + system, every thread) it took."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    rows = work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return rows


rows, seconds, cold = timed_twice(measured)
emit(
    seconds,
    cold,
    imported - started,
    rows=rows,
    rows_per_second=rows / seconds,
    cpu_seconds=cpu_seconds[-1],
)
