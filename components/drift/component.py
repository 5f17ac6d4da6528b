"""KFP component for the drift stage: a thin shell around ``mlkeel.components.drift.logic.drift``."""

from typing import Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from mlkeel.images import stage_image


# Defaults are literals: KFP runs this function's source on its own, where no imported name is defined.
# A unit test checks them against logic's DEFAULT_P_VAL, DEFAULT_CORRECTION and DEFAULT_PSI_THRESHOLD.
# The single bool output is named "Output": kfp.local's dsl.If resolves only single outputs.
@dsl.component(base_image=stage_image("drift"), install_kfp_package=False)
def drift(
    reference: Input[Dataset],
    current: Input[Dataset],
    result: Output[Artifact],
    report: Output[HTML],
    metrics: Output[Metrics],
    reference_predictions: Optional[Input[Dataset]] = None,
    current_predictions: Optional[Input[Dataset]] = None,
    feature_columns: Optional[list] = None,
    categorical_columns: Optional[list] = None,
    exclude_columns: Optional[list] = None,
    p_val: float = 0.05,
    correction: str = "bonferroni",
    psi_threshold: float = 0.2,
    max_rows: int = 0,
    seed: int = 0,
) -> bool:
    """Test a current batch against reference data for drift, feature by feature (alibi-detect TabularDrift).

    A Kolmogorov-Smirnov test per numeric feature and a chi-squared test per categorical feature, with a
    multiple-testing correction across the features, decide: with ``p_val=0.05`` two samples of one
    distribution are called drifted at most 5% of the time. The Population Stability Index of each feature is
    reported and flagged above ``psi_threshold`` but does not decide. Numeric nulls are dropped per feature
    (null shares reported); categorical nulls are a category; categories the reference lacks are reported
    with their share. The step succeeds whether or not drift is found: branch on its output.

    Given the champion's prediction logs on both sides, prediction drift in the model's task is reported
    beside the features (class shares of the predicted class for a classifier, the predicted value's
    distribution for a regressor; one chi-squared or KS test at ``p_val`` and the PSI); it does not change
    the decision, which stays the features'.

    Args:
        reference: Input Dataset (Parquet): the reference data, e.g. the training split.
        current: Input Dataset (Parquet): the batch to test, with the same columns (or at least the features).
        result: Output Artifact (JSON): the drift result, ``{"meta": {...}, "data": {"is_drift", "threshold",
            "drifted_features", "features": {name: {kind, test, statistic, p_value, drift, psi, psi_drift,
            null shares, unseen_categories, unseen_share}}, "prediction_drift": {task, column, test,
            statistic, p_value, is_drift, psi, psi_drift, shares or summary} (with the prediction logs)}}``.
            Metadata: is_drift, drifted_features, psi_drifted_features, p_val, correction, reference_rows,
            current_rows; prediction_drift, prediction_task and predictions (one line) with the
            prediction logs.
        report: Output HTML: a self-contained page with the verdict, a table of every feature and a plot of
            each flagged feature (histograms or category shares, reference vs current).
        metrics: Output Metrics: is_drift (0 or 1), drifted_features and psi_drifted_features (counts), and
            p_<feature> and psi_<feature> for each feature; prediction_drift (0 or 1),
            prediction_drift_p_value and prediction_drift_psi with the prediction logs.
        reference_predictions: Optional input Dataset (Parquet): the model's prediction log on the reference
            rows (batch_predict); with ``current_predictions``, prediction drift is reported.
        current_predictions: Optional input Dataset (Parquet): the same model's prediction log on the batch.
        feature_columns: Columns to compare; None compares every column but ``exclude_columns``, and then the
            two datasets must have the same columns.
        categorical_columns: Numeric columns to treat as categorical (e.g. a month number); text and boolean
            columns always are.
        exclude_columns: Columns never compared: the key and the target.
        p_val: Significance level of the drift decision, in (0, 1).
        correction: Multiple-testing correction across the features: "bonferroni" or "fdr".
        psi_threshold: PSI above which a feature is flagged (reported, not deciding).
        max_rows: Compare at most this many rows of each dataset (a seeded uniform sample); 0 compares all.
        seed: Seed of that sample.

    Returns:
        Output: True when drift is found (``is_drift``).
    """
    from mlkeel.components.drift.logic import drift as run_drift
    from mlkeel.components.drift.logic import drift_metadata, drift_metrics

    outcome = run_drift(
        reference.path,
        current.path,
        result.path,
        report.path,
        feature_columns=feature_columns,
        categorical_columns=categorical_columns,
        p_val=p_val,
        correction=correction,
        psi_threshold=psi_threshold,
        max_rows=max_rows,
        seed=seed,
        exclude_columns=exclude_columns or (),
        reference_source=reference.metadata.get("source") or reference.uri,
        current_source=current.metadata.get("source") or current.uri,
        reference_predictions_path=reference_predictions.path if reference_predictions else "",
        current_predictions_path=current_predictions.path if current_predictions else "",
    )
    result.metadata.update(drift_metadata(outcome))
    for name, value in drift_metrics(outcome).items():
        metrics.log_metric(name, value)
    return bool(outcome["data"]["is_drift"])
