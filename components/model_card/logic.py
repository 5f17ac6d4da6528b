"""Model card: one HTML and one Markdown page per registered version, attached to the version in MLflow.

The card gathers what a reviewer asks about a model in one place: which version and aliases, the data it was
trained on (fingerprint, schema and its hash), holdout metrics overall and per slice, the champion comparison
the gate made, fairness per sensitive group, the most important features (table and plot) and the lineage the
registry records (git commit, images, pipeline run, library versions).

The metrics and plots follow the model's task (``mlkeel.modeling.model_task``, read from the model when the card
is given the holdout): binary as it always was (ROC AUC, precision, recall, F1 at the model's threshold);
multiclass adds the confusion matrix over every class and a per-class precision/recall table; regression shows
RMSE, MAE, R², MAPE and the residual plot. Slices and fairness show each task's own figures.

Parts that were not computed (no sensitive columns configured, no importance) render as "not computed", never
as an error. The content is a plain dict first (``card_context``), rendered by Jinja2 templates second
(``templates/``, HTML autoescaped), so a test or another renderer can read the same facts.

The card files are logged on the version's source run under ``model_card/`` and the version gets the tag
``mlkeel.model_card`` = ``runs:/<run>/model_card/model_card.html``.
"""

from __future__ import annotations

import base64
import logging
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlkeel.constants import (
    MODEL_CARD_ARTIFACT_DIR,
    MODEL_CARD_HTML_FILE,
    MODEL_CARD_MARKDOWN_FILE,
    RUN_DATA_ARTIFACT_DIR,
    SCHEMA_ARTIFACT_FILE,
    GateRunMetric,
    LineageTag,
)
from mlkeel.errors import DataError, RegistryError, SchemaMismatchError
from mlkeel.storage import read_json, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

T = TypeVar("T")

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
HTML_TEMPLATE = "card.html.j2"
MARKDOWN_TEMPLATE = "card.md.j2"
NOT_COMPUTED = "not computed"
# Metrics in the order a reader scans them (the rest follow alphabetically); each task has only its own.
METRIC_ORDER = (
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "macro_f1",
    "weighted_f1",
    "roc_auc_ovr",
    "log_loss",
    "rmse",
    "mae",
    "r2",
    "mape",
)
# The per-slice table's columns for each task (binary: as the card always showed them).
SLICE_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc_ovr"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
TOP_FEATURES = 15
# A slice column with more distinct values than this shows its largest groups only (the card says how many).
MAX_SLICE_VALUES = 25
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The training run's metric names: evaluate logs holdout_<metric>, train logs train_<metric>.
HOLDOUT_PREFIX = "holdout_"


@dataclass(frozen=True)
class CardResult:
    """What ``model_card`` wrote.

    Attributes:
        model_name: The registered model.
        version: The version.
        html: The HTML card.
        markdown: The Markdown card.
        card_uri: Where MLflow holds the HTML card (``runs:/...``), "" when not attached.
        context: The facts the card shows (``card_context``).
    """

    model_name: str
    version: str
    html: str
    markdown: str
    card_uri: str = ""
    context: dict[str, Any] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def ordered_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Numeric metrics in reading order (``METRIC_ORDER`` first, then alphabetical); non-numbers dropped.

    Args:
        metrics: Metric name -> value.

    Returns:
        ``[(name, value), ...]``.
    """
    numbers = {name: _number(value) for name, value in metrics.items()}
    names = [name for name in METRIC_ORDER if name in numbers] + sorted(set(numbers) - set(METRIC_ORDER))
    return [(name, numbers[name]) for name in names if numbers[name] is not None]  # type: ignore[misc]


def schema_section(schema: Mapping[str, Any] | None, recorded_hash: str = "", source: str = "schema") -> dict[str, Any]:
    """The schema part: columns with type, nullability and role, and the schema hash.

    Args:
        schema: The validate stage's schema JSON, or None.
        recorded_hash: The hash the version's lineage records, compared with the schema's own.
        source: Printable name of the schema, for messages.

    Returns:
        ``{"computed": bool, "columns": [...], "hash": str, "recorded_hash": str, "hash_matches": bool|None}``.

    Raises:
        DataError: ``schema`` is not a valid schema.
    """
    if schema is None:
        return {"computed": False, "columns": [], "hash": recorded_hash, "recorded_hash": recorded_hash}
    from mlkeel.schema import DatasetSchema

    parsed = DatasetSchema.from_dict(schema, source=source)
    columns = []
    for column in parsed.columns:
        role = (
            "target"
            if column.name == parsed.target_column
            else "key"
            if column.name in parsed.key_columns
            else "feature"
        )
        if column.categories is not None:
            domain = f"{len(column.categories)} categories"
        elif column.minimum is not None or column.maximum is not None:
            domain = f"{column.minimum} .. {column.maximum}"
        else:
            domain = ""
        columns.append(
            {"name": column.name, "type": column.type, "nullable": column.nullable, "role": role, "domain": domain}
        )
    computed = parsed.schema_hash()
    return {
        "computed": True,
        "columns": columns,
        "hash": computed,
        "recorded_hash": recorded_hash,
        "hash_matches": (computed == recorded_hash) if recorded_hash else None,
    }


def slice_metrics(
    frame: pd.DataFrame,
    labels: Any,
    scores: Any,
    slice_columns: Sequence[str],
    source: str = "test data",
    threshold: float = 0.5,
    task: str = "binary",
    classes: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Holdout metrics per value of each slice column, in the model's task's metrics.

    Args:
        frame: The holdout rows.
        labels: Their targets: 0/1 labels (binary), class labels as text (multiclass) or values (regression).
        scores: The model's outputs on them (``mlkeel.modeling.model_outputs``).
        slice_columns: Columns to slice by.
        source: Printable name of the rows, for messages.
        threshold: The model's decision threshold (binary: precision, recall, F1, accuracy).
        task: ``binary``, ``multiclass`` or ``regression``.
        classes: The model's classes as text (multiclass).

    Returns:
        One entry per column: ``{"column", "task", "metric_names", "groups": [{"value", "rows", "positive_rate"
        (binary; None otherwise), "metrics" (None when the slice cannot be scored: one class, one row), "note"}],
        "hidden": int}``, groups by size, largest first.

    Raises:
        SchemaMismatchError: a slice column is not in the rows.
    """
    import numpy as np

    from mlkeel.metrics import task_metrics

    labels, scores = np.asarray(labels), np.asarray(scores)
    missing = [column for column in slice_columns if column not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            f"{source}: slice column(s) {', '.join(map(repr, missing))} not found; columns: {', '.join(frame.columns)}"
        )
    sections = []
    for column in slice_columns:
        values = frame[column].astype("string").fillna("(missing)").to_numpy()
        distinct, counts = np.unique(values, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        groups = []
        for index in order[:MAX_SLICE_VALUES]:
            mask = values == distinct[index]
            group_labels = labels[mask]
            entry: dict[str, Any] = {
                "value": str(distinct[index]),
                "rows": int(mask.sum()),
                "positive_rate": float(group_labels.mean()) if task == "binary" else None,
                "metrics": None,
                "note": "",
            }
            if task == "regression" and len(group_labels) < 2:
                entry["note"] = "one row: metrics need two or more"
            elif task != "regression" and len(np.unique(group_labels)) < 2:
                entry["note"] = "one class only: metrics need both" if task == "binary" else "one class only"
            else:
                entry["metrics"] = dict(
                    ordered_metrics(task_metrics(task, group_labels, scores[mask], classes, threshold))
                )
            groups.append(entry)
        sections.append(
            {
                "column": column,
                "task": task,
                "metric_names": list(SLICE_METRICS[task]),
                "groups": groups,
                "hidden": max(0, len(distinct) - MAX_SLICE_VALUES),
            }
        )
    return sections


def task_section(evaluation: Any = None) -> dict[str, Any]:
    """The task's own holdout figures: multiclass confusion matrix and per-class table, regression residual plot.

    Args:
        evaluation: The evaluate stage's ``Evaluation`` of a multiclass or regression model, or None (a binary
            model, or no holdout given: the card shows the metrics table only, as it always did).

    Returns:
        ``{"task": str ("" when unknown), "classes": [...], "confusion_matrix": [[...]], "per_class": [{"class",
        "precision", "recall", "support"}], "residual_plot_data_uri": str}``.
    """
    if evaluation is None:
        return {"task": "", "classes": [], "confusion_matrix": [], "per_class": [], "residual_plot_data_uri": ""}
    per_class = [
        {
            "class": name,
            "precision": _number(scores.get("precision")),
            "recall": _number(scores.get("recall")),
            "support": scores.get("support"),
        }
        for name, scores in evaluation.per_class.items()
    ]
    return {
        "task": evaluation.task,
        "classes": list(evaluation.classes),
        "confusion_matrix": [list(row) for row in evaluation.confusion_matrix],
        "per_class": per_class,
        "residual_plot_data_uri": _png_data_uri(evaluation.residual_plot, "residual"),
    }


def comparison_section(blessing: Mapping[str, Any] | None) -> dict[str, Any]:
    """The champion comparison from the gate's blessing (slice results included when the gate made them).

    Args:
        blessing: The blessing JSON (``Blessing.to_dict()`` plus optional ``slices``/``fairness``), or None.

    Returns:
        ``{"computed": bool, ...the blessing's fields..., "gain": float|None, "slices": dict|None}``.
    """
    if not blessing:
        return {"computed": False}
    from mlkeel.metrics import HIGHER_IS_BETTER

    challenger = _number(blessing.get("challenger_score"))
    champion = _number(blessing.get("champion_score"))
    metric = str(blessing.get("metric", ""))
    gain = None
    if challenger is not None and champion is not None:
        gain = challenger - champion if HIGHER_IS_BETTER.get(metric, True) else champion - challenger
    thresholds = [
        {
            "metric": name,
            "value": _number(result.get("value")),
            "threshold": _number(result.get("threshold")),
            "passed": bool(result.get("passed")),
        }
        for name, result in sorted((blessing.get("threshold_results") or {}).items())
        if isinstance(result, Mapping)
    ]
    slices = blessing.get("slices") if isinstance(blessing.get("slices"), Mapping) else None
    return {
        "computed": True,
        "blessed": blessing.get("blessed"),
        "reason": str(blessing.get("reason", "")),
        "metric": metric,
        "margin": _number(blessing.get("margin")),
        "challenger_score": challenger,
        "champion_score": champion,
        "champion_version": blessing.get("champion_version"),
        "gain": gain,
        "thresholds": thresholds,
        "decided_at": str(blessing.get("decided_at", "")),
        "slices": slices,
    }


def _fairness_groups(task: str, groups: Mapping[str, Any], classes: Sequence[str]) -> list[dict[str, Any]]:
    """Each group's figures of ``task`` as table rows (numbers checked; a rate fairlearn left undefined is None)."""
    rows = []
    for value, group in groups.items():
        row: dict[str, Any] = {"value": str(value), "rows": group.get("rows")}
        if task == "multiclass":
            rates = group.get("selection_rate") or {}
            row.update(
                accuracy=_number(group.get("accuracy")),
                macro_f1=_number(group.get("macro_f1")),
                selection_rates=[_number(rates.get(name)) for name in classes],
            )
        elif task == "regression":
            row.update({name: _number(group.get(name)) for name in ("mean_error", "mae", "rmse")})
        else:
            row.update({name: _number(group.get(name)) for name in ("selection_rate", "tpr", "fpr")})
        rows.append(row)
    return rows


def fairness_section(fairness: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fairness part: per sensitive column the task's differences and each group's figures, and the verdict.

    Args:
        fairness: The fairness stage's JSON, or None (a document without ``task`` is a binary one).

    Returns:
        ``{"computed": bool, "why_not": str, "task", "passed", "reason", "thresholds", "ignored_thresholds" (named
        for another task, not applied), "columns": [{"column",
        "differences": [(name, value)], "groups": [...], "classes" (multiclass), and for binary
        "demographic_parity_difference", "equalized_odds_difference"}]}``.
    """
    if not fairness:
        return {"computed": False, "why_not": "the fairness stage did not run"}
    if not fairness.get("configured"):
        return {
            "computed": False,
            "why_not": str(fairness.get("reason") or "no sensitive columns were configured"),
        }
    from mlkeel.components.fairness.logic import differences

    task = str(fairness.get("task") or "binary")
    columns = []
    for column, result in (fairness.get("by_column") or {}).items():
        groups = result.get("groups") or {}
        classes: list[str] = []
        if task == "multiclass":  # every group has every class's rate (the model's classes)
            classes = sorted({name for group in groups.values() for name in (group.get("selection_rate") or {})})
        columns.append(
            {
                "column": column,
                "demographic_parity_difference": _number(result.get("demographic_parity_difference")),
                "equalized_odds_difference": _number(result.get("equalized_odds_difference")),
                "differences": [(name, _number(result.get(name))) for name in differences(task) if name in result],
                "widest_class": str(result.get("selection_rate_difference_class", "")),
                "mae": _number(result.get("mae")),
                "classes": classes,
                "groups": _fairness_groups(task, groups, classes),
            }
        )
    return {
        "computed": True,
        "task": task,
        "passed": bool(fairness.get("passed")),
        "reason": str(fairness.get("reason", "")),
        "thresholds": {name: _number(value) for name, value in (fairness.get("thresholds") or {}).items()},
        "ignored_thresholds": [str(name) for name in fairness.get("ignored_thresholds") or []],
        "min_group_rows": fairness.get("min_group_rows"),
        "columns": columns,
    }


def _png_data_uri(png: bytes | None, what: str) -> str:
    """A PNG as a ``data:`` URI for the HTML card; "" (with a warning) for bytes that are not a PNG."""
    if not png:
        return ""
    if not png.startswith(PNG_MAGIC):
        logger.warning("model card: the %s plot is not a PNG; left out", what)
        return ""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def importance_section(importance: Mapping[str, Any] | None, plot_png: bytes | None = None) -> dict[str, Any]:
    """The importance part: the top features and the plot as a ``data:`` URI.

    Args:
        importance: The explain stage's JSON, or None.
        plot_png: The importance plot (PNG bytes), or None.

    Returns:
        ``{"computed": bool, "method", "metric", "n_repeats", "rows", "features": [...top...], "total",
        "plot_data_uri": str}``.
    """
    plot = _png_data_uri(plot_png, "importance")
    if not importance or not importance.get("features"):
        return {"computed": False, "plot_data_uri": plot}
    features = sorted(
        (
            {
                "feature": str(entry.get("feature")),
                "importance_mean": _number(entry.get("importance_mean")),
                "importance_std": _number(entry.get("importance_std")),
            }
            for entry in importance["features"]
        ),
        key=lambda entry: -float(entry["importance_mean"] or 0.0),
    )
    return {
        "computed": True,
        "method": str(importance.get("method", "")),
        "metric": str(importance.get("metric", "")),
        "n_repeats": importance.get("n_repeats"),
        "rows": importance.get("rows"),
        "features": features[:TOP_FEATURES],
        "total": len(features),
        "plot_data_uri": plot,
    }


def card_context(
    version: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    blessing: Mapping[str, Any] | None = None,
    fairness: Mapping[str, Any] | None = None,
    importance: Mapping[str, Any] | None = None,
    importance_plot: bytes | None = None,
    slices: list[dict[str, Any]] | None = None,
    slice_columns: Sequence[str] = (),
    evaluation: Any = None,
) -> dict[str, Any]:
    """Every fact the card shows, as a plain dict (what the templates render).

    Args:
        version: ``mlkeel.lineage.version_lineage`` output (model_name, version, aliases, lineage facts...).
        metrics: Holdout metrics, name -> value.
        schema: The validate stage's schema JSON.
        blessing: The gate's blessing JSON.
        fairness: The fairness stage's JSON.
        importance: The explain stage's JSON.
        importance_plot: The importance plot (PNG bytes).
        slices: ``slice_metrics`` output.
        slice_columns: The slice columns asked for (shown when ``slices`` is None).
        evaluation: The holdout ``Evaluation`` of a multiclass or regression model (``task_section``), or None.

    Returns:
        The context dict.
    """
    from datetime import UTC, datetime

    task = task_section(evaluation)
    shown = metrics or {}
    if task["per_class"]:  # the per-class table shows them: not again as precision.<class> rows
        shown = {name: value for name, value in shown.items() if not name.startswith(("precision.", "recall."))}
    return {
        "not_computed": NOT_COMPUTED,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": version,
        "schema": schema_section(schema, str(version.get("schema_hash", ""))),
        "metrics": ordered_metrics(shown),
        "task": task,
        "slices": {"computed": slices is not None, "columns": list(slice_columns), "sections": slices or []},
        "comparison": comparison_section(blessing),
        "fairness": fairness_section(fairness),
        "importance": importance_section(importance, importance_plot),
    }


def _format_number(value: Any, digits: int = 4) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:.{digits}f}"


def _markdown_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: no pipes, no line breaks, no raw HTML."""
    text = "" if value is None else str(value)
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("\r", " "), ("\n", " ")):
        text = text.replace(raw, escaped)
    return text


def render_card(context: Mapping[str, Any]) -> tuple[str, str]:
    """Render the card as HTML (autoescaped) and Markdown.

    Args:
        context: ``card_context`` output.

    Returns:
        ``(html, markdown)``.
    """
    import jinja2

    def environment(autoescape: bool) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters["num"] = _format_number
        env.filters["md"] = _markdown_cell
        return env

    html = environment(True).get_template(HTML_TEMPLATE).render(**context)
    markdown = environment(False).get_template(MARKDOWN_TEMPLATE).render(**context)
    return html, markdown


def attach_card(
    client: MlflowClient, model_name: str, version: str, run_id: str, html: str, markdown: str, tracking_uri: str
) -> str:
    """Log both card files on the version's source run under ``model_card/`` and tag the version with the path.

    Args:
        client: A registry client.
        model_name: The registered model.
        version: The version.
        run_id: The version's source run.
        html: The HTML card.
        markdown: The Markdown card.
        tracking_uri: The resolved URI, for messages.

    Returns:
        ``runs:/<run>/model_card/model_card.html`` (the tag's value).

    Raises:
        RegistryError: the version has no source run, or the registry refuses a write.
    """
    from mlkeel.components.gate.logic import registry_call

    if not run_id:
        raise RegistryError(f"version {version} of {model_name!r} has no source run to attach the model card to")
    with tempfile.TemporaryDirectory(prefix="mlkeel-card-") as folder:
        write_text_atomic(html, Path(folder) / MODEL_CARD_HTML_FILE)
        write_text_atomic(markdown, Path(folder) / MODEL_CARD_MARKDOWN_FILE)
        registry_call(
            tracking_uri,
            f"log the model card on run {run_id}",
            lambda: client.log_artifacts(run_id, folder, artifact_path=MODEL_CARD_ARTIFACT_DIR),
        )
    card_uri = _card_uri(run_id)
    registry_call(
        tracking_uri,
        f"tag version {version} of {model_name!r} with its model card",
        lambda: client.set_model_version_tag(model_name, version, LineageTag.MODEL_CARD, card_uri),
    )
    return card_uri


def registered_version(metadata: Mapping[str, Any], path: str = "") -> tuple[str, str]:
    """The model name and version of the register stage's output artifact.

    Args:
        metadata: The artifact's metadata (model_name, model_version).
        path: Its JSON file (``RegistrationResult.to_dict()``), read when the metadata lacks them.

    Returns:
        ``(model_name, version)``.

    Raises:
        DataError: neither names them.
    """
    from mlkeel.constants import ArtifactMetadata

    name = metadata.get(ArtifactMetadata.REGISTERED_MODEL_NAME)
    version = metadata.get(ArtifactMetadata.REGISTERED_MODEL_VERSION)
    if not (name and version) and path and Path(path).is_file():
        document = read_json(path)
        name, version = document.get("model_name"), document.get("version")
    if not name or version in (None, ""):
        raise DataError(
            "registered_model: names no model and version (expected the register stage's output: "
            "metadata model_name and model_version)"
        )
    if isinstance(version, float) and version.is_integer():  # kfp.local returns metadata numbers as floats
        version = int(version)
    return str(name), str(version)


def _optional_json(path: str) -> Any:
    return read_json(path) if path and Path(path).is_file() else None


def _optional_bytes(path: str) -> bytes | None:
    return Path(path).read_bytes() if path and Path(path).is_file() else None


def _holdout_facts(
    model_uri: str, test_path: str, target_column: str, positive_label: str, slice_columns: Sequence[str]
) -> tuple[Any, list[dict[str, Any]] | None]:
    """Score the holdout once: the task's evaluation (multiclass, regression; None for binary) and the slices.

    A regression evaluation carries no residual plot: the card shows the one the evaluate stage logged on the
    run (``model_card`` fetches it), so the card's image needs no plotting library.

    Raises:
        DataError: no target column recorded (with slice columns), unreadable holdout, bad labels.
        SchemaMismatchError: the target or a slice column is not in the holdout.
    """
    import pyarrow.parquet as pq

    from mlkeel.components.evaluate.logic import Evaluation, evaluate_multiclass
    from mlkeel.components.gate.logic import task_outputs
    from mlkeel.modeling import binary_labels, decision_threshold, load_sklearn_model, model_task, task_targets
    from mlkeel.storage import require_readable_file

    if not target_column:
        if slice_columns:
            raise DataError("the version records no target column: cannot compute per-slice metrics")
        logger.warning("model card: the version records no target column: no task figures from the holdout")
        return None, None
    require_readable_file(test_path)
    frame = pq.read_table(test_path).to_pandas()
    if target_column not in frame.columns:
        raise SchemaMismatchError(f"{test_path}: target column {target_column!r} not found")
    model = load_sklearn_model(model_uri)
    task = model_task(model)
    classes = [str(name) for name in getattr(model, "classes_", [])]
    evaluation = None
    if task == "binary":
        if not slice_columns:  # a binary card shows the evaluate stage's metrics only, as it always did
            return None, None
        labels = binary_labels(frame[target_column], positive_label, test_path)
    else:
        labels = task_targets(frame[target_column], task, test_path)
    outputs = task_outputs(model, frame, task, test_path)
    if task == "multiclass":
        evaluation = evaluate_multiclass(labels, outputs, classes)
    elif task == "regression":
        evaluation = Evaluation({}, [], [], [], [], len(labels), task="regression")
    slices = None
    if slice_columns:
        slices = slice_metrics(
            frame, labels, outputs, slice_columns, test_path, decision_threshold(model), task, classes
        )
    return evaluation, slices


def model_card(
    model_name: str,
    version: str,
    html_path: str,
    markdown_path: str,
    tracking_uri: str = "",
    metrics: Mapping[str, Any] | None = None,
    schema_path: str = "",
    blessing_path: str = "",
    fairness_path: str = "",
    importance_path: str = "",
    importance_plot_path: str = "",
    test_path: str = "",
    model_uri: str = "",
    slice_columns: Sequence[str] = (),
    attach: bool = True,
) -> CardResult:
    """Build the card of version ``version`` of ``model_name``, write it and attach it to the version.

    What is not given is read from MLflow where it holds it: the lineage tags and aliases always; the
    holdout metrics (``holdout_*`` of the training run) when ``metrics`` is None; the schema from the run's
    ``data/schema.json`` when ``schema_path`` is ""; the champion comparison from the gate's tags and metrics
    on the run when ``blessing_path`` is "". Fairness and importance exist only as files: without them the card
    says "not computed".

    Args:
        model_name: The registered model.
        version: The version (or ``@alias``).
        html_path: Where to write the HTML card.
        markdown_path: Where to write the Markdown card.
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``, else the local store).
        metrics: Holdout metrics (the evaluate stage's Metrics), or None to read them from the run.
        schema_path: The validate stage's schema JSON.
        blessing_path: The gate's blessing JSON.
        fairness_path: The fairness stage's JSON.
        importance_path: The explain stage's importance JSON.
        importance_plot_path: The explain stage's PNG plot.
        test_path: Holdout rows (Parquet), for per-slice metrics and the task's figures (multiclass confusion
            matrix and per-class table, regression residual plot).
        model_uri: The model to score them with ("" = ``models:/NAME/VERSION``).
        slice_columns: Columns to compute per-slice metrics for (needs ``test_path``).
        attach: Log the card on the version's run and tag the version.

    Returns:
        A ``CardResult``.

    Raises:
        RegistryError: no such model or version; the registry cannot be reached or refuses a write.
        DataError: an input file is not what it should be.
        SchemaMismatchError: a slice column or the target is not in the test data.
        ParameterError: slice columns without test data.
    """
    from mlkeel.errors import ParameterError
    from mlkeel.lineage import open_registry, version_lineage
    from mlkeel.modeling import import_model_libraries

    if slice_columns and not test_path:
        raise ParameterError("slice_columns need test data (the holdout rows) to compute per-slice metrics")
    if test_path:
        import_model_libraries()  # the holdout figures load the model: before open_registry imports mlflow
    client, resolved = open_registry(tracking_uri)
    reference = model_name + version if version.startswith("@") else f"{model_name}/{version}"
    facts = version_lineage(reference, resolved)
    version = facts["version"]
    run_id = facts["run_id"]
    run_metrics: dict[str, float] = facts.get("metrics", {})

    if metrics is None:
        metrics = {
            name[len(HOLDOUT_PREFIX) :]: value for name, value in run_metrics.items() if name.startswith(HOLDOUT_PREFIX)
        }
    schema = _optional_json(schema_path)
    if schema is None and not schema_path and run_id:
        schema = _run_schema(client, run_id, resolved)
    blessing = _optional_json(blessing_path)
    if blessing is None and not blessing_path:
        blessing = _blessing_from_run(facts, run_metrics)
    evaluation, slices = None, None
    if test_path:
        evaluation, slices = _holdout_facts(
            model_uri or f"models:/{model_name}/{version}",
            test_path,
            facts["target_column"],
            facts["positive_label"],
            slice_columns,
        )
    if evaluation is not None and evaluation.task == "regression" and run_id:
        from dataclasses import replace

        from mlkeel.components.evaluate.logic import RESIDUAL_PLOT_ARTIFACT

        plot = _run_file(client, run_id, RESIDUAL_PLOT_ARTIFACT, resolved, lambda path: path.read_bytes())
        evaluation = replace(evaluation, residual_plot=plot or b"")
    context = card_context(
        facts,
        metrics=metrics,
        schema=schema,
        blessing=blessing,
        fairness=_optional_json(fairness_path),
        importance=_optional_json(importance_path),
        importance_plot=_optional_bytes(importance_plot_path),
        slices=slices,
        slice_columns=slice_columns,
        evaluation=evaluation,
    )
    if attach and run_id:
        # The attached card names where it lives: the tag it is about to get.
        context["model"] = {**facts, "model_card": _card_uri(run_id)}
    html, markdown = render_card(context)
    write_text_atomic(html, html_path)
    write_text_atomic(markdown, markdown_path)
    card_uri = ""
    if attach:
        card_uri = attach_card(client, model_name, version, run_id, html, markdown, resolved)
        logger.info("model card: attached to %s version %s at %s", model_name, version, card_uri)
    return CardResult(model_name, version, html, markdown, card_uri, context)


def _card_uri(run_id: str) -> str:
    return f"runs:/{run_id}/{MODEL_CARD_ARTIFACT_DIR}/{MODEL_CARD_HTML_FILE}"


def _run_file(
    client: MlflowClient, run_id: str, artifact: str, tracking_uri: str, read: Callable[[Path], T]
) -> T | None:
    """``read`` of a file the training run logged (its path in the run: ``artifact``), or None without one."""
    from mlkeel.components.gate.logic import registry_call

    with tempfile.TemporaryDirectory(prefix="mlkeel-card-") as folder:
        try:
            path = registry_call(
                tracking_uri,
                f"download {artifact} of run {run_id}",
                lambda: client.download_artifacts(run_id, artifact, folder),
            )
        except RegistryError as error:
            logger.warning("model card: no %s: %s", artifact, error)
            return None
        return read(Path(path))


def _run_schema(client: MlflowClient, run_id: str, tracking_uri: str) -> dict[str, Any] | None:
    """The schema the training run logged (``data/schema.json``), or None when it logged none."""
    return _run_file(client, run_id, f"{RUN_DATA_ARTIFACT_DIR}/{SCHEMA_ARTIFACT_FILE}", tracking_uri, read_json)


def _blessing_from_run(facts: Mapping[str, Any], run_metrics: Mapping[str, float]) -> dict[str, Any] | None:
    """What the gate recorded on the version and its run: reason, metric, both scores."""
    metric = facts.get("gate_metric") or ""
    if not metric and not facts.get("blessing_reason"):
        return None
    challenger = run_metrics.get(f"{GateRunMetric.CHALLENGER_PREFIX}{metric}", _number(facts.get("gate_score")))
    blessed = run_metrics.get(GateRunMetric.BLESSED)
    return {
        "blessed": True if blessed is None else blessed == 1.0,
        "reason": facts.get("blessing_reason", ""),
        "metric": metric,
        "challenger_score": challenger,
        "champion_score": run_metrics.get(f"{GateRunMetric.CHAMPION_PREFIX}{metric}"),
        "champion_version": facts.get("replaced_version") or None,
    }
