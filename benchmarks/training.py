"""Training: the train stage vs a hand-written best-practice scikit-learn script on the bundled flights; text.

    python benchmarks/training.py [--repeats 3] [--quick]

Flights: the bundled ``data/nycflights13/flights.parquet`` (327,346 rows, target ``late``, key ``flight_id``),
split once by the split stage (stratified, 20 % held out, seed 42); every tool fits on the same train rows and is
scored on the same holdout rows, each in a child process per repeat, interleaved (``benchmarks/tasks/training.py``
says what each mode times). Text: the fine-food reviews of ``tests/data/fine_food_reviews.parquet`` (2,000 real
reviews, modeldata, MIT), 5-fold cross-validated ROC AUC of the review text as mlkeel's TF-IDF at several sizes,
as a hashing vectorizer, and left out. Results: ``benchmarks/results/training.{md,json}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import common

TARGET_TIME_RATIO = 1.3
TARGET_AUC_GAP = 0.005
# "no longer than without it": medians of interleaved kfp.local runs, which vary by several percent here.
TARGET_ID_RATIO = 1.05
REVIEWS = common.ROOT / "tests" / "data" / "fine_food_reviews.parquet"


def prepare(rows: int | None) -> tuple[Path, Path]:
    """(train, test) Parquet files of the flights split (the first ``rows`` rows in quick mode)."""
    import pyarrow.parquet as pq

    from mlkeel.components.split.logic import split
    from mlkeel.data.flights import FLIGHTS_PARQUET, FLIGHTS_POSITIVE_LABEL, FLIGHTS_TARGET

    folder = common.DATA / f"training-{rows or 'all'}"
    train, test = folder / "train.parquet", folder / "test.parquet"
    if not (train.exists() and test.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        source = Path(FLIGHTS_PARQUET)
        if rows:
            source = folder / "flights.parquet"
            pq.write_table(pq.read_table(FLIGHTS_PARQUET).slice(0, rows), source)
        split(str(source), str(train), str(test), FLIGHTS_TARGET, FLIGHTS_POSITIVE_LABEL, 0.2, 42)
    return train, test


def text_comparison(folds: int) -> list[dict[str, Any]]:
    """Cross-validated ROC AUC and fit time of each way to use the review text, logistic regression and HGB."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from mlkeel.components.train.features import TEXT_MAX_FEATURES, plan_features
    from mlkeel.components.train.logic import build_pipeline, make_estimator
    from mlkeel.metrics import classification_metrics
    from mlkeel.modeling import binary_labels, one_native_thread, positive_scores

    reviews = pd.read_parquet(REVIEWS)
    labels = binary_labels(reviews["score"], "great")
    plan = plan_features(reviews, "score")

    def vectorized(vectorizer: Any, estimator: Any) -> Pipeline:
        text = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value="", missing_values=None)),
                ("flatten", FunctionTransformer(np.ravel)),
                ("vectorize", vectorizer),
            ]
        )
        return Pipeline(
            [
                ("preprocess", ColumnTransformer([("text", text, ["review"])], sparse_threshold=0.0)),
                ("classify", estimator),
            ]
        )

    ways: dict[str, Any] = {
        f"mlkeel TF-IDF ({TEXT_MAX_FEATURES} terms)": lambda estimator: build_pipeline(plan, estimator),
        "TF-IDF 100 terms": lambda e: vectorized(TfidfVectorizer(max_features=100, min_df=2, sublinear_tf=True), e),
        "TF-IDF 1000 terms": lambda e: vectorized(TfidfVectorizer(max_features=1000, min_df=2, sublinear_tf=True), e),
        "hashing 1024": lambda e: vectorized(HashingVectorizer(n_features=1024, alternate_sign=False, norm="l2"), e),
    }
    results = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for estimator_name in ("logistic_regression", "hist_gradient_boosting"):
        results.append(
            {"way": "left out (no feature: the prior)", "estimator": estimator_name, "roc_auc": 0.5, "fit_seconds": 0.0}
        )
        for way, make in ways.items():
            scores, seconds = [], 0.0
            for train_rows, test_rows in splitter.split(reviews, labels):
                model = make(make_estimator(estimator_name, None, 42))
                started = time.perf_counter()
                with one_native_thread():
                    model.fit(reviews.iloc[train_rows][["review"]], labels[train_rows])
                seconds += time.perf_counter() - started
                holdout = positive_scores(model, reviews.iloc[test_rows][["review"]])
                scores.append(classification_metrics(labels[test_rows], holdout)["roc_auc"])
            results.append(
                {
                    "way": way,
                    "estimator": estimator_name,
                    "roc_auc": round(float(np.mean(scores)), 4),
                    "fit_seconds": round(seconds / folds, 3),
                }
            )
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 flights, 1 repeat, 2 folds (CI: cannot rot)")
    parser.add_argument("--results", type=Path, default=common.RESULTS)
    options = parser.parse_args(argv)
    rows = 20_000 if options.quick else None
    if options.quick:
        options.repeats = 1

    train, test = prepare(rows)
    python = common.this_python()
    runners = {
        mode: (
            lambda mode=mode: common.run_task(
                python,
                common.TASKS / "training.py",
                {"mode": mode, "train": str(train), "test": str(test), "twice": False},
            )
        )
        for mode in ("sklearn", "mlkeel_fit", "mlkeel_stage")
    }
    summary = common.summarise(common.interleave(runners, options.repeats))
    ratios = {
        "stage_over_sklearn": summary["mlkeel_stage"]["median_seconds"] / summary["sklearn"]["median_seconds"],
        "fit_over_sklearn": summary["mlkeel_fit"]["median_seconds"] / summary["sklearn"]["median_seconds"],
    }
    auc_gap = summary["sklearn"]["roc_auc"] - summary["mlkeel_stage"]["roc_auc"]
    targets = [
        common.target(
            "train stage time / hand-written scikit-learn", ratios["stage_over_sklearn"], TARGET_TIME_RATIO, "lower"
        ),
        common.target("holdout ROC AUC shortfall vs hand-written", auc_gap, TARGET_AUC_GAP, "lower", unit=""),
    ]
    text = text_comparison(2 if options.quick else 5)
    # The pipeline runs take about 10 s each, close to their own noise: more repeats than the fits.
    identifier = id_column_comparison(0 if options.quick else options.repeats + 2)
    if identifier:
        targets.append(
            common.target(
                "pipeline time with an undeclared id column / without the column",
                identifier["ratio"],
                TARGET_ID_RATIO,
                "lower",
            )
        )
    machine = common.machine_info()
    report = {
        "benchmark": "training",
        "machine": machine,
        "rows": {"train": _rows(train), "test": _rows(test)},
        "repeats": options.repeats,
        "quick": options.quick,
        "tools": summary,
        "ratios": ratios,
        "targets": targets,
        "text": text,
        "id_column": identifier,
    }
    title = f"Training on {report['rows']['train']:,} flights (holdout {report['rows']['test']:,})"
    lines = common.markdown_header(title, machine, options.repeats, NOTE)
    lines += [
        "| run | median s | seconds of each repeat | holdout ROC AUC | encoded columns | peak RSS MiB |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, item in summary.items():
        lines.append(
            f"| {name} | {item['median_seconds']:.2f} | {', '.join(f'{s:.2f}' for s in item['seconds'])} | "
            f"{item['roc_auc']:.4f} | {item['encoded_width']} | {item['median_peak_rss_mib']:.0f} |"
        )
    lines += ["", *common.targets_markdown(targets, EXPLANATIONS)]
    lines += [
        "## Free text: TF-IDF inside the model vs left out (fine-food reviews)",
        "",
        TEXT_NOTE,
        "",
        "| way | estimator | mean ROC AUC | fit s per fold |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {r['way']} | {r['estimator']} | {r['roc_auc']:.4f} | {r['fit_seconds']:.3f} |" for r in text]
    if identifier:
        lines += ["", "## An identifier nobody declared: the training pipeline on 3,000 Telco rows", "", ID_NOTE, ""]
        lines += ["| table | median pipeline s | seconds of each repeat | features line |", "|---|---:|---|---|"]
        for name, item in identifier["runs"].items():
            lines.append(
                f"| {name} | {item['median_seconds']:.1f} | {', '.join(f'{x:.1f}' for x in item['seconds'])} | "
                f"`{item['features']}` |"
            )
        lines += ["", f"Ratio (with / without): **{identifier['ratio']:.3f}x**."]
    common.write_results("training", report, "\n".join(lines) + "\n", options.results)
    return report


def id_column_comparison(repeats: int) -> dict[str, Any]:
    """The training pipeline (kfp.local) on 3,000 Telco rows with ``customerID`` left undeclared vs removed.

    Before feature typing, the undeclared identifier was one-hot encoded into ~3,000 columns (the issue measured
    100 s instead of 25 s); now it is typed as an identifier and left out, so both tables train the same model.
    """
    import statistics
    import subprocess
    import sys
    import tempfile

    import pandas as pd

    from mlkeel.data import TELCO_CHURN_CSV

    if repeats <= 0:
        return {}
    folder = common.DATA / "id-column"
    folder.mkdir(parents=True, exist_ok=True)
    rows = pd.read_csv(TELCO_CHURN_CSV, nrows=3000)
    tables = {"with customerID (not declared)": folder / "with_id.csv", "without the column": folder / "no_id.csv"}
    rows.to_csv(tables["with customerID (not declared)"], index=False)
    rows.drop(columns=["customerID"]).to_csv(tables["without the column"], index=False)

    def runner(path: Path) -> Any:
        def run() -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="mlkeel-bench-id-") as workdir:
                command = [sys.executable, "-m", "mlkeel.cli", "run", "training", "--local", "--data", str(path)]
                command += ["--target", "Churn", "--workdir", workdir, "--model-name", "bench-id"]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
            output = done.stdout + done.stderr
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
            (wall,) = [line for line in done.stdout.splitlines() if line.strip().startswith("wall time")]
            # The run summary's line: "  features         : 19 used (...); not used: customerID (identifier, ...)".
            (features,) = [line for line in done.stdout.splitlines() if line.strip().startswith("features ")]
            return {"seconds": float(wall.split(":")[1].split()[0]), "features": features.split(":", 1)[1].strip()}

        return run

    runs = common.interleave({name: runner(path) for name, path in tables.items()}, repeats, "id column: ")
    summary = {
        name: {
            "seconds": [item["seconds"] for item in items],
            "median_seconds": statistics.median(item["seconds"] for item in items),
            "features": items[-1]["features"],
        }
        for name, items in runs.items()
    }
    with_id, without = (summary[name]["median_seconds"] for name in tables)
    return {"rows": len(rows), "runs": summary, "ratio": with_id / without}


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


NOTE = (
    "`sklearn`: a hand-written best-practice script (pandas read, `OrdinalEncoder` on carrier/origin/dest, "
    "`HistGradientBoostingClassifier` with them as native categorical features, `max_iter=200`, seed 42, "
    "scikit-learn's other defaults: early stopping on above 10,000 rows, default threads). mlkeel's own defaults "
    "(learning rate 0.05, up to 300 iterations, early stopping, min 50 rows per leaf) are what `mlkeel_*` fit. "
    "`mlkeel_fit`: `fit_model` (read, feature typing, fit; one native thread, "
    "as the stage runs). `mlkeel_stage`: the train stage function: the same plus saving the model, logging the "
    "run, 100,000 reference rows and the model to a local SQLite MLflow store. Each run once per repeat in its "
    "own process (imports excluded); ROC AUC on the same holdout rows."
)
ID_NOTE = (
    "`mlkeel run training --local --data <csv> --target Churn` (no `--key-column`) on the first 3,000 rows of the "
    "bundled Telco data, with `customerID` (a different value in every row) and with that column removed; "
    "each run a new process and work folder, interleaved; the pipeline's own wall time from its summary. The "
    "features line is the train stage's decision as the run summary prints it."
)
TEXT_NOTE = (
    "2,000 real reviews (modeldata's `training_data`, MIT; Amazon fine-food reviews), target `score == great` "
    "(65 %); the product code is an identifier, so with the text left out the model has nothing: ROC AUC 0.5. "
    "Mean over stratified folds (seed 0) of the holdout ROC AUC; fit time per fold, one thread."
)
EXPLANATIONS = {
    "train stage time / hand-written scikit-learn": (
        "the fit alone (`mlkeel_fit`) is most of it: it runs one native thread (`mlkeel.modeling.one_native_thread`: "
        "on a busy node, OpenMP's thread per core made fits several times slower, 124-167 s against 47-54 s "
        "for the script and the stage at a load average of 12 here) where the script uses both cores, and up "
        "to 300 boosting rounds where the script stops at 200 (for +0.003 holdout ROC AUC); the stage then "
        "saves the model twice (the KFP artifact and the MLflow run) and logs 100,000 reference rows."
    ),
}


if __name__ == "__main__":
    main()
