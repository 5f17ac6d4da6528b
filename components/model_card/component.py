"""KFP component for the model card stage: a thin shell around ``mlkeel.components.model_card.logic.model_card``."""

from typing import List, Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("model_card"), install_kfp_package=False)
def model_card(
    registered_model: Input[Artifact],
    blessing: Input[Artifact],
    metrics: Input[Metrics],
    schema: Input[Artifact],
    test_data: Input[Dataset],
    model: Input[Model],
    card: Output[HTML],
    card_markdown: Output[Markdown],
    fairness: Optional[Input[Artifact]] = None,
    importance: Optional[Input[Artifact]] = None,
    importance_plot: Optional[Input[Artifact]] = None,
    slice_columns: Optional[List[str]] = None,
    mlflow_tracking_uri: str = "",
) -> str:
    """Render the registered version's model card (HTML + Markdown) and attach it to the version in MLflow.

    The card shows the model name, version and aliases; the data fingerprint, schema (columns, types, roles)
    and schema hash; holdout metrics overall and per value of each slice column; the gate's champion
    comparison (and slice gate results); fairness per sensitive column and group with the verdict; the top
    features and the importance plot; the lineage the registry records (git commit, images, pipeline run,
    library versions). Metrics, plots, slices and fairness follow the model's task: binary (ROC AUC,
    precision, recall, F1 at the model's threshold; selection rate, TPR, FPR per group); multiclass (accuracy,
    macro and weighted F1, log loss, one-vs-rest ROC AUC, a per-class precision/recall table and the confusion
    matrix over every class; accuracy, macro F1 and each class's selection rate per group); regression (RMSE,
    MAE, R², MAPE and the residual plot; mean error, MAE and RMSE per group). Missing optional parts render as
    "not computed". Both files are logged on the version's
    source run under ``model_card/`` and the version is tagged ``mlkeel.model_card`` with the HTML's
    ``runs:/`` URI.

    Args:
        registered_model: Input Artifact from the register stage. Metadata read: model_name, model_version.
        blessing: Input Artifact (JSON) from the gate stage: the decision, champion comparison, slice results.
        metrics: Input Metrics: holdout metrics from the evaluate stage.
        schema: Input Artifact (JSON): the validate stage's schema.
        test_data: Input Dataset (Parquet): the holdout rows, for per-slice metrics and the task's figures
            (multiclass confusion matrix and per-class table, regression residual plot).
        model: Input Model (MLflow sklearn directory) from the train stage, scored on those rows.
        card: Output HTML: the card (self-contained: inline CSS, the plot embedded).
        card_markdown: Output Markdown: the same card in Markdown (without the plot).
        fairness: Optional input Artifact (JSON) from the fairness stage; absent = "not computed".
        importance: Optional input Artifact (JSON) from the explain stage: features by importance.
        importance_plot: Optional input Artifact (PNG) from the explain stage, embedded in the HTML card.
        slice_columns: Columns of the holdout to compute per-slice metrics for (none = no slices).
        mlflow_tracking_uri: MLflow tracking/registry URI; "" reads $MLFLOW_TRACKING_URI.

    Returns:
        Where MLflow holds the HTML card (``runs:/<run>/model_card/model_card.html``).
    """
    from mlkeel.components.model_card.logic import model_card as run_model_card
    from mlkeel.components.model_card.logic import registered_version

    name, version = registered_version(dict(registered_model.metadata), registered_model.path)
    result = run_model_card(
        name,
        version,
        card.path,
        card_markdown.path,
        tracking_uri=mlflow_tracking_uri,
        metrics=dict(metrics.metadata),
        schema_path=schema.path,
        blessing_path=blessing.path,
        fairness_path=fairness.path if fairness is not None else "",
        importance_path=importance.path if importance is not None else "",
        importance_plot_path=importance_plot.path if importance_plot is not None else "",
        test_path=test_data.path,
        model_uri=model.path,
        slice_columns=slice_columns or [],
    )
    card.metadata["model_card_uri"] = result.card_uri
    return result.card_uri
