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
    """Compare the model's decisions (or errors) between the groups of each sensitive column on the holdout (fairlearn).

    The figures follow the model's task. Binary: per group rows, selection rate, true and false positive rate
    (decisions at the model's threshold); a column's demographic parity difference is the largest gap in
    selection rate between its groups, its equalized odds difference the larger of the largest TPR gap and the
    largest FPR gap. Multiclass: per group rows, accuracy, macro F1 and the selection rate of every class
    (decision: the most probable class); checked are the selection_rate_difference (the largest gap in any one
    class's selection rate, the class named) and the accuracy_difference; the macro_f1_difference is reported.
    Regression: per group rows, mean error (predicted - true), MAE and RMSE; checked, scale-free, are the
    relative_mean_error_difference and relative_mae_difference (the gap between groups divided by the model's
    MAE on the holdout); the gaps in the target's units (mean_error_, mae_, rmse_difference) are reported.
    Groups with fewer than ``min_group_rows`` rows are reported but not compared. The check fails when a
    difference exceeds its threshold; the step succeeds either way (the gate refuses a model that failed).
    Without sensitive columns nothing is computed: configured false, passed true. The metrics
    (``fairness_passed``, ``fairness_<column>_<difference>``) and the document (``governance/fairness.json``)
    are also logged on the model's MLflow run.

    Args:
        model: Input Model (MLflow sklearn directory) from the train stage. Metadata read: mlflow_run_id.
        test_data: Input Dataset (Parquet): the holdout rows, with the target and the sensitive columns.
        fairness: Output Artifact (JSON): ``{"configured", "task", "sensitive_columns", "thresholds" (the
            task's, applied), "ignored_thresholds" (given for another task), "min_group_rows", "by_column":
            {column: {<difference>: value, ..., "groups": {value: {"rows", ...the task's figures}},
            "compared_groups"}}, "passed", "reason", "failures"}``. Binary groups: selection_rate, tpr, fpr (null
            where undefined); multiclass: accuracy, macro_f1, selection_rate {class: rate}; regression:
            mean_error, mae, rmse. Metadata: configured, passed, reason, task, and <column>_<difference> for each
            difference of the task.
        target_column: The target column.
        positive_label: The label value meaning positive (binary models; ignored otherwise).
        sensitive_columns: Columns whose groups are compared (need not be model features); a column missing
            from the holdout fails the step with its name. None or [] checks nothing.
        thresholds: Largest allowed difference by name, of any task; the model's task's names left out take
            their defaults: binary {"demographic_parity_difference": 0.2, "equalized_odds_difference": 0.2},
            multiclass {"selection_rate_difference": 0.2, "accuracy_difference": 0.2}, regression
            {"relative_mean_error_difference": 0.5, "relative_mae_difference": 0.5}. Names of another task are
            ignored (listed in ignored_thresholds).
        min_group_rows: Groups with fewer holdout rows are reported, not compared.
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.

    Returns:
        Output: True when every checked difference is within its threshold (or nothing was configured).
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
