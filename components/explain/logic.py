"""Explain: global feature importance of any model, by permutation on the holdout.

The model is a scikit-learn Pipeline that engineers its features itself (imputation, scaling, one-hot), so the
columns permuted are the raw input columns the model takes: the importance of ``Contract`` is how much the
holdout score drops when the ``Contract`` values are shuffled between rows, whatever the one-hot encoding made
of it. scikit-learn's ``permutation_importance`` does the work (``n_repeats`` shuffles per column, seeded);
the result is a table (JSON, most important first), a horizontal bar chart (PNG) and an HTML page with both
for the KFP UI.

SHAP is not used. The newest shap on the package index (0.51) requires numpy>=2, which alibi-detect 0.13 (the
drift stage) rules out; an older, numpy-1 shap pulls numba and llvmlite, 164 MB installed (measured: llvmlite
130 MB, numba 34 MB) on top of this image, which is otherwise the ml image plus matplotlib (35 MB). Its tree
explainer would cover only the tree estimators and would explain the one-hot columns, not the user's columns;
permutation importance works for every estimator mlkeel trains and answers in the user's columns.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlkeel.constants import IMPORTANCE_ARTIFACT_FILE, IMPORTANCE_PLOT_FILE, ImportanceRunMetric
from mlkeel.errors import ParameterError, SchemaMismatchError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

METHOD = "permutation"
DEFAULT_N_REPEATS = 5
# Permuting costs n_repeats predictions of every row per column: a few thousand rows rank the columns well.
DEFAULT_MAX_ROWS = 2000
FEATURES_IN_PLOT = 20
TOP_FEATURES = 5
# mlkeel metric name -> scikit-learn scorer (greater is better, so a drop on permutation is importance).
SCORERS = {
    "roc_auc": "roc_auc",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "log_loss": "neg_log_loss",
    # multiclass
    "macro_f1": "f1_macro",
    "weighted_f1": "f1_weighted",
    "roc_auc_ovr": "roc_auc_ovr",
    # regression
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "r2": "r2",
    "mape": "neg_mean_absolute_percentage_error",
}


def check_parameters(metric: str, n_repeats: int, max_rows: int) -> None:
    """Validate the explain parameters.

    Args:
        metric: Metric whose drop measures importance (a key of ``SCORERS``).
        n_repeats: Shuffles per column, >= 1.
        max_rows: Rows used at most, >= 10; more rows are sampled down.

    Raises:
        ParameterError: unknown metric, ``n_repeats`` < 1 or ``max_rows`` < 10.
    """
    if metric not in SCORERS:
        raise ParameterError(f"unknown metric {metric!r}: expected one of {', '.join(SCORERS)}")
    for name, value, least in (("n_repeats", n_repeats, 1), ("max_rows", max_rows, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ParameterError(f"{name}={value!r}: must be an integer >= {least}")


def permutation_importances(
    model: Any,
    features: pd.DataFrame,
    labels: Any,
    metric: str = "roc_auc",
    n_repeats: int = DEFAULT_N_REPEATS,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 42,
) -> dict[str, Any]:
    """Permutation importance of every input column of ``model`` (no I/O).

    Args:
        model: A fitted scikit-learn model taking ``features``: a binary classifier (fitted on 0/1 labels), a
            multiclass classifier (class labels as text) or a regressor.
        features: The model's input columns, one row per holdout row.
        labels: Targets of those rows, as the model was fitted on them.
        metric: Metric whose drop measures importance (a key of ``SCORERS``).
        n_repeats: Shuffles per column.
        max_rows: At most this many rows are used (a seeded sample).
        seed: Seed of the sample and of the shuffles.

    Returns:
        ``{"method": "permutation", "metric", "n_repeats", "rows", "baseline_score", "features": [{"feature",
        "importance_mean", "importance_std"}, ...]}``, most important first (ties by name).

    Raises:
        ParameterError: see ``check_parameters``.
    """
    import numpy as np
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import get_scorer

    from mlkeel.modeling import one_native_thread

    check_parameters(metric, n_repeats, max_rows)
    labels = np.asarray(labels)
    if labels.dtype.kind == "b":
        labels = labels.astype(int)
    if len(features) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(features), max_rows, replace=False))
        features, labels = features.iloc[rows], labels[rows]
    scorer = get_scorer(SCORERS[metric])
    # Hundreds of small predictions: OpenMP threads (histogram gradient boosting) cost more than they give,
    # up to 10x on a busy 2-core node (measured: 1.15 s vs 0.11 s per prediction of 1,409 rows).
    with one_native_thread():
        result = permutation_importance(
            model, features, labels, scoring=scorer, n_repeats=n_repeats, random_state=seed, n_jobs=1
        )
        baseline = float(scorer(model, features, labels))
    ranked = sorted(
        zip(features.columns, result.importances_mean, result.importances_std, strict=True),
        key=lambda row: (-float(row[1]), str(row[0])),
    )
    table = [
        {"feature": str(name), "importance_mean": float(mean), "importance_std": float(std)}
        for name, mean, std in ranked
    ]
    return {
        "method": METHOD,
        "metric": metric,
        "n_repeats": n_repeats,
        "rows": len(labels),
        "baseline_score": baseline,
        "features": table,
    }


def not_computed(metric: str) -> dict[str, Any]:
    """The table when explanation is switched off: same keys, no features, and the reason.

    Args:
        metric: The metric importance would have been measured with.

    Returns:
        ``{"method": "none", "metric", "n_repeats": 0, "rows": 0, "baseline_score": None, "features": [],
        "reason"}``.
    """
    return {
        "method": "none",
        "metric": metric,
        "n_repeats": 0,
        "rows": 0,
        "baseline_score": None,
        "features": [],
        "reason": "not computed: explanation was switched off (explain_model=false)",
    }


def importance_png(document: Mapping[str, Any]) -> bytes:
    """A horizontal bar chart of the importances (mean with the spread over repeats), most important on top.

    Args:
        document: A ``permutation_importances`` result.

    Returns:
        The PNG bytes (matplotlib's Agg canvas; no display needed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = list(document["features"][:FEATURES_IN_PLOT])[::-1]
    figure = Figure(figsize=(7, 1.2 + 0.28 * max(len(shown), 1)), dpi=100)
    axes = figure.subplots()
    axes.barh(
        [row["feature"] for row in shown],
        [row["importance_mean"] for row in shown],
        xerr=[row["importance_std"] for row in shown],
        color="#4c72b0",
    )
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel(f"drop in {document['metric']} when the column is shuffled ({document['n_repeats']} repeats)")
    hidden = len(document["features"]) - len(shown)
    title = document.get("reason") or f"Permutation importance on {document['rows']} holdout rows"
    axes.set_title(title + (f" (top {len(shown)} of {len(document['features'])})" if hidden else ""), fontsize=10)
    axes.tick_params(axis="y", labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def importance_html(document: Mapping[str, Any], png: bytes) -> str:
    """A self-contained HTML page: the plot (embedded PNG) and the full table.

    Args:
        document: A ``permutation_importances`` result.
        png: ``importance_png(document)``.

    Returns:
        The page.
    """
    rows = "\n".join(
        f"<tr><td>{rank}</td><td>{html.escape(row['feature'])}</td><td>{row['importance_mean']:.4f}</td>"
        f"<td>{row['importance_std']:.4f}</td></tr>"
        for rank, row in enumerate(document["features"], start=1)
    )
    image = base64.b64encode(png).decode("ascii")
    if document.get("reason"):  # switched off: say so instead of describing a measurement
        summary = html.escape(document["reason"])
    else:
        summary = (
            f"How much the model's {html.escape(document['metric'])} on {document['rows']} holdout rows (baseline "
            f"{document['baseline_score']:.4f}) drops when one input column's values are shuffled between rows, "
            f"mean and standard deviation over {document['n_repeats']} shuffles. Near zero or negative: the model "
            "does not rely on it."
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Feature importance</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:nth-child(2){{text-align:left}}</style></head>
<body><h2>Feature importance (permutation)</h2>
<p>{summary}</p>
<img alt="feature importance" src="data:image/png;base64,{image}">
<table><tr><th>rank</th><th>feature</th><th>importance</th><th>std</th></tr>
{rows}
</table></body></html>
"""


def explain(
    model_path: str,
    test_path: str,
    target_column: str,
    positive_label: str,
    importance_path: str,
    plot_path: str,
    report_path: str = "",
    metric: str = "roc_auc",
    n_repeats: int = DEFAULT_N_REPEATS,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 42,
    tracking_uri: str = "",
    mlflow_run_id: str = "",
    enabled: bool = True,
) -> dict[str, Any]:
    """Permutation importance of the model on the holdout: JSON table, PNG plot, optional HTML page.

    Args:
        model_path: Model directory (MLflow sklearn format) or MLflow model URI.
        test_path: Holdout rows (Parquet) with the target column.
        target_column: The label column.
        positive_label: The label value meaning positive.
        importance_path: Where to write the table (JSON).
        plot_path: Where to write the bar chart (PNG).
        report_path: Where to write the HTML page ("" = not written).
        metric: Metric whose drop measures importance.
        n_repeats: Shuffles per column.
        max_rows: At most this many holdout rows are used (a seeded sample).
        seed: Seed of the sample and the shuffles.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``); used only with ``mlflow_run_id``.
        mlflow_run_id: The model's training run: ``importance_<feature>`` metrics, the JSON and the PNG are
            logged on it ("" = not).
        enabled: False writes a "not computed" table (no features) and plot without reading the model, so a
            pipeline can switch explanation off by a parameter and still hand the outputs on (a task inside a
            ``dsl.If`` could not feed the model card).

    Returns:
        The table document (see ``permutation_importances``).

    Raises:
        ParameterError: see ``check_parameters``.
        SchemaMismatchError: the holdout lacks the target or a column the model needs.
        DataError: unreadable holdout or labels that are not binary.
    """
    from pathlib import Path

    import pyarrow.parquet as pq

    from mlkeel.metrics import require_task_metric
    from mlkeel.modeling import (
        binary_labels,
        feature_frame,
        load_sklearn_model,
        model_feature_columns,
        model_task,
        task_targets,
    )
    from mlkeel.storage import require_readable_file, write_json_atomic, write_text_atomic

    check_parameters(metric, n_repeats, max_rows)
    if not enabled:
        document = not_computed(metric)
        write_json_atomic(document, importance_path)
        Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
        Path(plot_path).write_bytes(importance_png(document))
        if report_path:
            write_text_atomic(importance_html(document, Path(plot_path).read_bytes()), report_path)
        logger.info("explain: %s", document["reason"])
        return document
    require_readable_file(test_path)
    frame = pq.read_table(test_path).to_pandas()
    if target_column not in frame.columns:
        raise SchemaMismatchError(f"{test_path}: target column {target_column!r} not found")
    model = load_sklearn_model(model_path)
    task = model_task(model)
    require_task_metric(metric, task)
    if task == "binary":
        labels = binary_labels(frame[target_column], positive_label, test_path)
    else:
        labels = task_targets(frame[target_column], task, test_path)
    features = feature_frame(frame, model_feature_columns(model), test_path)
    document = permutation_importances(model, features, labels, metric, n_repeats, max_rows, seed)
    png = importance_png(document)
    write_json_atomic(document, importance_path)
    Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
    Path(plot_path).write_bytes(png)
    if report_path:
        write_text_atomic(importance_html(document, png), report_path)
    top = ", ".join(f"{row['feature']} {row['importance_mean']:.4f}" for row in document["features"][:TOP_FEATURES])
    logger.info("explain: most important (drop in %s): %s", metric, top)
    if mlflow_run_id:
        from mlkeel.tracking import log_on_run, metric_key

        log_on_run(
            mlflow_run_id,
            tracking_uri,
            metrics={
                f"{ImportanceRunMetric.PREFIX}{metric_key(row['feature'])}": row["importance_mean"]
                for row in document["features"]
            },
            files={IMPORTANCE_ARTIFACT_FILE: importance_path, IMPORTANCE_PLOT_FILE: plot_path},
        )
    return document


def top_features(document: Mapping[str, Any], count: int = TOP_FEATURES) -> list[str]:
    """The names of the ``count`` most important features.

    Args:
        document: A ``permutation_importances`` result.
        count: How many.

    Returns:
        Feature names, most important first.
    """
    return [row["feature"] for row in document["features"][:count]]
