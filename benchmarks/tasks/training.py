"""Task: fit a model on the flights train split and score the holdout (this venv). Prints one JSON line.

modes: ``mlkeel_stage`` times the train stage function (read, type the features, fit, save the model, log the
run, its reference data and the model to MLflow: a local SQLite store made before the timing); ``mlkeel_fit`` times
``fit_model`` alone on the frame read from the same file (read included); ``sklearn`` times a hand-written
best-practice script: read with pandas, ``OrdinalEncoder`` on the text columns, ``HistGradientBoostingClassifier``
with those columns as native categorical features, ``max_iter=200``, seed 42 and scikit-learn's other defaults
(early stopping on, as above 10,000 rows; default threads). mlkeel's defaults differ (learning rate 0.05, up to 300
iterations, early stopping, larger leaves: ``ESTIMATORS`` in components/train/logic.py).
Each reports the holdout ROC AUC on the same test rows.
"""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import emit, timed_twice

arguments = json.loads(sys.argv[1])
started = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

imported = time.perf_counter()
mode, train_path, test_path = arguments["mode"], arguments["train"], arguments["test"]
TARGET, KEY = "late", "flight_id"
test = pd.read_parquet(test_path)
labels = (test[TARGET].astype(str) == "1").to_numpy().astype(int)
width: list[int] = []
workdir = tempfile.mkdtemp(prefix="mlkeel-bench-train-")
if mode == "mlkeel_stage":  # the MLflow store (SQLite, already migrated) exists before the timing, as in a run
    from mlkeel.local import LocalStore

    store = LocalStore.create(workdir)
    store.ensure_experiment("bench")  # as `mlkeel run` does before any task: the store's tables exist


def work() -> float:
    if mode == "sklearn":
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OrdinalEncoder

        train = pd.read_parquet(train_path)
        features = [column for column in train.columns if column not in (TARGET, KEY)]
        text = [column for column in features if train[column].dtype == object]
        numbers = [column for column in features if column not in text]
        encode = ColumnTransformer(
            [
                ("text", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), text),
                ("numbers", "passthrough", numbers),
            ]
        )
        model = make_pipeline(
            encode,
            HistGradientBoostingClassifier(categorical_features=list(range(len(text))), max_iter=200, random_state=42),
        )
        model.fit(train[features], train[TARGET])
        width[:] = [len(features)]
        return float(roc_auc_score(labels, model.predict_proba(test[features])[:, 1]))
    from mlkeel.components.train.logic import fit_model, train
    from mlkeel.modeling import load_sklearn_model, positive_scores

    if mode == "mlkeel_fit":
        fitted = fit_model(pd.read_parquet(train_path), TARGET, "1", [KEY])
        width[:] = [fitted.feature_plan.encoded_width]
        return float(roc_auc_score(labels, positive_scores(fitted.model, test)))
    model_dir = str(Path(workdir) / f"model-{time.time_ns()}")
    result = train(train_path, model_dir, TARGET, "1", [KEY], tracking_uri=store.tracking_uri, experiment_name="bench")
    width[:] = [int(result.metadata["encoded_width"])]
    return float(roc_auc_score(labels, positive_scores(load_sklearn_model(model_dir), test)))


auc, seconds, cold = timed_twice(work, twice=arguments.get("twice", True))
shutil.rmtree(workdir, ignore_errors=True)
emit(seconds, cold, imported - started, roc_auc=auc, encoded_width=width[0])
