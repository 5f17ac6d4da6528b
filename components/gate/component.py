"""KFP component for the gate stage: a thin shell around ``mlkeel.components.gate.logic.gate``."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("gate"), install_kfp_package=False)
def gate(
    model: Input[Model],
    test_data: Input[Dataset],
    metrics: Input[Metrics],
    blessing: Output[Artifact],
    model_name: str,
    target_column: str,
    positive_label: str,
    mlflow_tracking_uri: str = "",
    metric: str = "roc_auc",
    margin: float = 0.01,
    thresholds: Optional[dict] = None,
    fairness: Optional[Input[Artifact]] = None,
    slice_columns: Optional[list] = None,
    slice_margin: float = 0.02,
    slice_min_rows: int = 100,
) -> bool:
    """Bless the challenger when it meets every threshold and beats the registry's champion on the same rows.

    The champion is the version under the ``champion`` alias of ``model_name``; both models score every
    holdout row, each with its own feature columns. Without a champion, or when the champion cannot score
    these rows (the schema changed), the thresholds alone decide and the reason says so. An unreachable
    registry fails the step. Given the fairness stage's document, a failed fairness check refuses the
    challenger with its reason. With ``slice_columns``, every slice (a value of such a column) with at least
    ``slice_min_rows`` holdout rows must not be worse than the champion's by more than ``slice_margin``: a
    regressed slice refuses a challenger that beats the champion overall, naming column=value and both scores.
    The decision is also logged on the challenger's MLflow run (``gate_blessed``,
    ``gate_champion_<metric>``).

    Args:
        model: Input Model (MLflow sklearn directory), the challenger from the train stage. Metadata read:
            mlflow_run_id.
        test_data: Input Dataset (Parquet): the holdout rows the evaluate stage scored.
        metrics: Input Metrics: the challenger's holdout metrics from the evaluate stage (accuracy, precision,
            recall, f1, roc_auc, log_loss), checked against ``thresholds``.
        blessing: Output Artifact (JSON): the decision. Metadata: blessed, reason, metric, margin,
            challenger_score, champion_score, champion_version, thresholds, threshold_results, decided_at,
            fairness (the fairness document or null), slices ({"columns", "margin", "min_rows", "metric",
            "results": [{"column", "value", "rows", "challenger", "champion", "delta", "regressed"}],
            "skipped"} or null).
        model_name: Registered model whose champion the challenger must beat.
        target_column: The label column of ``test_data``.
        positive_label: The label value meaning positive.
        mlflow_tracking_uri: MLflow tracking/registry URI; "" reads $MLFLOW_TRACKING_URI.
        metric: Metric compared with the champion (accuracy, precision, recall, f1, roc_auc, log_loss).
        margin: Required improvement over the champion (>= 0), in the metric's direction.
        thresholds: Absolute bounds every challenger must meet, metric -> bound (>= for scores, <= for
            log_loss), e.g. {"roc_auc": 0.75, "log_loss": 0.5}.
        fairness: Optional Input Artifact (JSON): the fairness stage's document; a failed check refuses.
        slice_columns: Columns whose values are slices compared with the champion; None or [] compares none.
        slice_margin: Largest allowed shortfall of the challenger on a slice, in the metric's direction.
        slice_min_rows: Slices with fewer holdout rows are not compared.

    Returns:
        Whether the challenger may be registered (a single output, so kfp.local resolves ``dsl.If`` on it; the
        reason is in the blessing artifact).
    """
    from mlkeel.components.gate.logic import gate as run_gate
    from mlkeel.constants import ArtifactMetadata

    result = run_gate(
        model.path,
        test_data.path,
        dict(metrics.metadata),
        model_name,
        target_column,
        positive_label,
        blessing.path,
        tracking_uri=mlflow_tracking_uri,
        metric=metric,
        margin=margin,
        thresholds=thresholds,
        mlflow_run_id=model.metadata.get(ArtifactMetadata.MLFLOW_RUN_ID, ""),
        fairness_path=fairness.path if fairness is not None else "",
        slice_columns=slice_columns,
        slice_margin=slice_margin,
        slice_min_rows=slice_min_rows,
    )
    blessing.metadata.update(result.to_dict())
    return result.blessed
