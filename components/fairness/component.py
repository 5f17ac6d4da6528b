"""KFP component for the fairness stage: a thin shell around ``mlkeel.components.fairness.logic.fairness``."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from mlkeel.images import stage_image


# Defaults are literals: KFP runs this function's source on its own, where no imported name is defined.
# A unit test checks them against logic's DEFAULT_MIN_GROUP_ROWS. The single bool output is named "Output".
@dsl.component(base_image=stage_image("fairness"), install_kfp_package=False)
def fairness(
    model: Input[Model],
    test_data: Input[Dataset],
    fairness: Output[Artifact],
    target_column: str,
    positive_label: str,
    sensitive_columns: Optional[list] = None,
    thresholds: Optional[dict] = None,
    min_group_rows: int = 30,
    mlflow_tracking_uri: str = "",
) -> bool:
    """Compare the model's decisions between the groups of each sensitive column on the holdout (fairlearn).

    For each sensitive column and each of its values: rows, selection rate, true and false positive rate
    (decisions at a 0.5 score). A column's demographic parity difference is the largest gap in selection rate
    between its groups, its equalized odds difference the larger of the largest TPR gap and the largest FPR
    gap. Groups with fewer than ``min_group_rows`` rows are reported but not compared. The check fails when a
    difference exceeds its threshold; the step succeeds either way (the gate refuses a model that failed).
    Without sensitive columns nothing is computed: configured false, passed true. The metrics
    (``fairness_passed``, ``fairness_<column>_<difference>``) and the document (``governance/fairness.json``)
    are also logged on the model's MLflow run.

    Args:
        model: Input Model (MLflow sklearn directory) from the train stage. Metadata read: mlflow_run_id.
        test_data: Input Dataset (Parquet): the holdout rows, with the target and the sensitive columns.
        fairness: Output Artifact (JSON): ``{"configured", "sensitive_columns", "thresholds", "min_group_rows",
            "by_column": {column: {"demographic_parity_difference", "equalized_odds_difference", "groups":
            {value: {"rows", "selection_rate", "tpr", "fpr"}}, "compared_groups"}}, "passed", "reason",
            "failures"}`` (tpr/fpr null where undefined). Metadata: configured, passed, reason, and
            <column>_<difference> for each column.
        target_column: The label column.
        positive_label: The label value meaning positive.
        sensitive_columns: Columns whose groups are compared (need not be model features); a column missing
            from the holdout fails the step with its name. None or [] checks nothing.
        thresholds: Largest allowed difference, {"demographic_parity_difference": 0.2,
            "equalized_odds_difference": 0.2} for the names left out.
        min_group_rows: Groups with fewer holdout rows are reported, not compared.
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.

    Returns:
        Output: True when every difference is within its threshold (or nothing was configured).
    """
    from mlkeel.components.fairness.logic import artifact_metadata
    from mlkeel.components.fairness.logic import fairness as run_fairness
    from mlkeel.constants import ArtifactMetadata

    document = run_fairness(
        model.path,
        test_data.path,
        target_column,
        positive_label,
        fairness.path,
        sensitive_columns=sensitive_columns,
        thresholds=thresholds,
        min_group_rows=min_group_rows,
        tracking_uri=mlflow_tracking_uri,
        mlflow_run_id=model.metadata.get(ArtifactMetadata.MLFLOW_RUN_ID, ""),
    )
    fairness.metadata.update(artifact_metadata(document))
    return bool(document["passed"])
