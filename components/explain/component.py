"""KFP component for the explain stage: a thin shell around ``mlkeel.components.explain.logic.explain``."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

from mlkeel.images import stage_image


# Defaults are literals: KFP runs this function's source on its own, where no imported name is defined.
# A unit test checks them against logic's DEFAULT_N_REPEATS and DEFAULT_MAX_ROWS.
@dsl.component(base_image=stage_image("explain"), install_kfp_package=False)
def explain(
    model: Input[Model],
    test_data: Input[Dataset],
    importance: Output[Artifact],
    plot: Output[Artifact],
    report: Output[HTML],
    target_column: str,
    positive_label: str,
    metric: str = "roc_auc",
    n_repeats: int = 5,
    max_rows: int = 2000,
    seed: int = 42,
    mlflow_tracking_uri: str = "",
    enabled: bool = True,
):
    """Global feature importance of any model: how much its holdout score drops when one input column is shuffled.

    scikit-learn's permutation importance on the model's raw input columns (the model engineers its features
    itself, so ``Contract`` is one column however it is encoded), ``n_repeats`` seeded shuffles per column, on
    at most ``max_rows`` holdout rows. SHAP is not used (see the stage's logic module: numpy 2 or 164 MB of
    numba/llvmlite). The table and the plot are also logged on the model's MLflow run
    (``governance/feature_importance.json``, ``.png``; metrics ``importance_<feature>``).

    Args:
        model: Input Model (MLflow sklearn directory) from the train stage. Metadata read: mlflow_run_id.
        test_data: Input Dataset (Parquet): the holdout rows, with the target column.
        importance: Output Artifact (JSON): ``{"method": "permutation", "metric", "n_repeats", "rows",
            "baseline_score", "features": [{"feature", "importance_mean", "importance_std"}, ...]}``, most
            important first. Metadata: method, metric, n_repeats, rows, top_features (the five first).
        plot: Output Artifact (PNG): a horizontal bar chart of the 20 most important columns.
        report: Output HTML: the plot and the full table on one page (what the KFP UI shows).
        target_column: The label column.
        positive_label: The label value meaning positive.
        metric: Score whose drop measures importance: roc_auc, accuracy, precision, recall, f1 or log_loss.
        n_repeats: Shuffles per column.
        max_rows: At most this many holdout rows are used (a seeded sample).
        seed: Seed of the sample and the shuffles.
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.
        enabled: False writes a "not computed" table (no features, method "none") and plot without reading
            the model: a pipeline parameter switches explanation off while the outputs still flow on.
    """
    from mlkeel.components.explain.logic import explain as run_explain
    from mlkeel.components.explain.logic import top_features
    from mlkeel.constants import ArtifactMetadata

    document = run_explain(
        model.path,
        test_data.path,
        target_column,
        positive_label,
        importance.path,
        plot.path,
        report.path,
        metric=metric,
        n_repeats=n_repeats,
        max_rows=max_rows,
        seed=seed,
        tracking_uri=mlflow_tracking_uri,
        mlflow_run_id=model.metadata.get(ArtifactMetadata.MLFLOW_RUN_ID, ""),
        enabled=enabled,
    )
    importance.metadata.update({key: document[key] for key in ("method", "metric", "n_repeats", "rows")})
    importance.metadata["top_features"] = top_features(document)
    plot.metadata["mime_type"] = "image/png"
