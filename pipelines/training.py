"""The training pipeline: ingest, validate, split, train, evaluate + fairness + explain, gate, register, card.

fairness and explain read the trained model and the holdout, like evaluate; the gate also reads the fairness
document. register and the model card run only when the gate blesses the model.
"""

from typing import Any, Callable, NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Model

from mlkeel.components.evaluate.component import evaluate
from mlkeel.components.explain.component import explain
from mlkeel.components.fairness.component import fairness
from mlkeel.components.gate.component import gate
from mlkeel.components.ingest.component import ingest
from mlkeel.components.model_card.component import model_card
from mlkeel.components.register.component import register
from mlkeel.components.split.component import split
from mlkeel.components.train.component import train
from mlkeel.components.validate.component import validate
from mlkeel.pipelines.task_settings import configure


class TrainingOutputs(NamedTuple):
    """What a run returns (the KFP UI shows them as the run's outputs; mlkeel.local prints them)."""

    fingerprint: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    blessed: bool
    blessing: Artifact
    holdout_metrics: Metrics
    model: Model
    fairness: Artifact


# The tune stage's steps between split and train (pipelines/tuning.py): given the pipeline's parameters, the split
# task and the ingest task, they return the hyperparameters train fits with and the tags register adds.
ChooseHyperparameters = Callable[[dict[str, Any], dsl.PipelineTask, dsl.PipelineTask], tuple[Any, Any]]


def training_steps(params: dict[str, Any], choose: Optional[ChooseHyperparameters] = None) -> TrainingOutputs:
    """The training pipeline's tasks, shared by the ``tuning`` pipeline.

    Args:
        params: The pipeline's parameters by name (``training_pipeline``'s).
        choose: Tasks that choose the hyperparameters after split (a search); None = ``params["hyperparameters"]``.

    Returns:
        The pipeline's outputs.
    """
    p = params
    ingested = configure(
        ingest(
            source_uri=p["data_uri"],
            file_format=p["file_format"],
            column_types=p["column_types"],
            delimiter=p["delimiter"],
        ),
        "ingest",
    )
    validated = configure(
        validate(
            dataset=ingested.outputs["dataset"],
            schema_uri=p["schema_uri"],
            key_columns=p["key_columns"],
            target_column=p["target_column"],
            positive_label=p["positive_label"],
            max_invalid_fraction=p["max_invalid_fraction"],
            task=p["task"],
        ),
        "validate",
    )
    parts = configure(
        split(
            dataset=validated.outputs["valid"],
            target_column=p["target_column"],
            positive_label=p["positive_label"],
            test_fraction=p["test_fraction"],
            seed=p["seed"],
            hash_key_column=p["split_key_column"],
            task=p["task"],
        ),
        "split",
    )
    hyperparameters, version_tags = (p["hyperparameters"], None) if choose is None else choose(p, parts, ingested)
    trained = configure(
        train(
            train_data=parts.outputs["train_data"],
            schema=validated.outputs["schema"],
            target_column=p["target_column"],
            positive_label=p["positive_label"],
            key_columns=p["key_columns"],
            estimator=p["estimator"],
            hyperparameters=hyperparameters,
            seed=p["seed"],
            mlflow_tracking_uri=p["mlflow_tracking_uri"],
            experiment_name=p["experiment_name"],
            data_fingerprint=ingested.outputs["fingerprint"],
            threshold_policy=p["threshold_policy"],
            class_weight=p["class_weight"],
            feature_types=p["feature_types"],
            task=p["task"],
        ),
        "train",
    )
    evaluated = configure(
        evaluate(
            model=trained.outputs["model"],
            test_data=parts.outputs["test_data"],
            target_column=p["target_column"],
            positive_label=p["positive_label"],
            mlflow_tracking_uri=p["mlflow_tracking_uri"],
        ),
        "evaluate",
    )
    checked = configure(
        fairness(
            model=trained.outputs["model"],
            test_data=parts.outputs["test_data"],
            target_column=p["target_column"],
            positive_label=p["positive_label"],
            sensitive_columns=p["sensitive_columns"],
            thresholds=p["fairness_thresholds"],
            min_group_rows=p["fairness_min_group_rows"],
            mlflow_tracking_uri=p["mlflow_tracking_uri"],
        ),
        "fairness",
    )
    # Not inside a dsl.If: the model card takes its outputs (explain_model=False writes "not computed").
    explained = configure(
        explain(
            model=trained.outputs["model"],
            test_data=parts.outputs["test_data"],
            target_column=p["target_column"],
            positive_label=p["positive_label"],
            metric=p["gate_metric"],
            seed=p["seed"],
            mlflow_tracking_uri=p["mlflow_tracking_uri"],
            enabled=p["explain_model"],
        ),
        "explain",
    )
    decision = configure(
        gate(
            model=trained.outputs["model"],
            test_data=parts.outputs["test_data"],
            metrics=evaluated.outputs["metrics"],
            model_name=p["model_name"],
            target_column=p["target_column"],
            positive_label=p["positive_label"],
            mlflow_tracking_uri=p["mlflow_tracking_uri"],
            metric=p["gate_metric"],
            margin=p["gate_margin"],
            thresholds=p["gate_thresholds"],
            fairness=checked.outputs["fairness"],
            slice_columns=p["slice_columns"],
            slice_margin=p["slice_margin"],
            slice_min_rows=p["slice_min_rows"],
        ),
        "gate",
    )
    with dsl.If(decision.outputs["Output"] == True, name="blessed"):  # noqa: E712 (KFP builds a condition)
        registered = configure(
            register(
                model=trained.outputs["model"],
                blessing=decision.outputs["blessing"],
                model_name=p["model_name"],
                mlflow_tracking_uri=p["mlflow_tracking_uri"],
                data_fingerprint=ingested.outputs["fingerprint"],
                pipeline_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                **({} if version_tags is None else {"version_tags": version_tags}),
            ),
            "register",
        )
        configure(
            model_card(
                registered_model=registered.outputs["registered_model"],
                blessing=decision.outputs["blessing"],
                metrics=evaluated.outputs["metrics"],
                schema=validated.outputs["schema"],
                test_data=parts.outputs["test_data"],
                model=trained.outputs["model"],
                fairness=checked.outputs["fairness"],
                importance=explained.outputs["importance"],
                importance_plot=explained.outputs["plot"],
                slice_columns=p["slice_columns"],
                mlflow_tracking_uri=p["mlflow_tracking_uri"],
            ),
            "model_card",
        )
    return TrainingOutputs(
        ingested.outputs["fingerprint"],
        ingested.outputs["num_rows"],
        validated.outputs["rows_valid"],
        validated.outputs["rows_quarantined"],
        decision.outputs["Output"],
        decision.outputs["blessing"],
        evaluated.outputs["metrics"],
        trained.outputs["model"],
        checked.outputs["fairness"],
    )


@dsl.pipeline(
    name="mlkeel-training",
    description="Ingest, validate, split, train, evaluate, check fairness, explain, gate (thresholds, fairness, "
    "champion/challenger overall and per slice), register and write a model card for a tabular binary classifier.",
)
def training_pipeline(
    data_uri: str = "",
    file_format: str = "auto",
    delimiter: str = "auto",
    column_types: dict = {},
    target_column: str = "Churn",
    positive_label: str = "Yes",
    task: str = "",
    key_columns: list = ["customerID"],
    schema_uri: str = "",
    max_invalid_fraction: float = 0.05,
    test_fraction: float = 0.2,
    split_key_column: str = "",
    seed: int = 42,
    estimator: str = "hist_gradient_boosting",
    hyperparameters: dict = {},
    threshold_policy: str = "fixed:0.5",
    class_weight: str = "",
    feature_types: str = "{}",
    model_name: str = "mlkeel-churn",
    experiment_name: str = "mlkeel-churn",
    mlflow_tracking_uri: str = "",
    gate_metric: str = "roc_auc",
    gate_margin: float = 0.01,
    gate_thresholds: dict = {"roc_auc": 0.7},
    sensitive_columns: list = ["gender", "SeniorCitizen"],
    fairness_thresholds: dict = {"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.25},
    fairness_min_group_rows: int = 30,
    slice_columns: list = ["Contract"],
    slice_margin: float = 0.02,
    slice_min_rows: int = 100,
    explain_model: bool = True,
) -> TrainingOutputs:
    """Train, evaluate, gate and register a binary classifier on one tabular dataset.

    Args:
        data_uri: CSV or Parquet file (path or pyarrow URI); "" = the bundled IBM Telco churn data.
        file_format: "auto", "csv" or "parquet".
        delimiter: CSV delimiter: "auto" (detected: comma, semicolon, tab, pipe), one character, or a name.
        column_types: Type overrides for ingest, column -> integer | float | string | boolean | timestamp.
        target_column: The label column.
        positive_label: The label value meaning positive (binary targets).
        task: binary | multiclass | regression, or "" to infer it from the target (2 values: binary; at most 20
            whole numbers or text values: multiclass; other numbers: regression). Every stage follows it
            (validate, split, train, evaluate, fairness, explain, gate, the model card).
        key_columns: Identifier columns: checked for duplicates, never features.
        schema_uri: A schema JSON to validate against; "" infers it from this data.
        max_invalid_fraction: Fail when more than this share of rows is quarantined.
        test_fraction: Share of rows held out for evaluation and the gate.
        split_key_column: Split by hashing this key column instead of a stratified random split.
        seed: Random seed for the split and the estimator.
        estimator: logistic_regression | random_forest | hist_gradient_boosting.
        hyperparameters: Estimator parameter overrides.
        threshold_policy: How train chooses the decision threshold, on a validation part of the train split:
            f1 (best F1) | precision:P | recall:R | fixed:T. It travels inside the model: evaluate, gate,
            batch predict and serving use it.
        class_weight: "" or "balanced" (reweight the rarer class; for rare positives).
        feature_types: JSON object of feature typing overrides, column -> numeric | boolean | categorical | text |
            timestamp | ignore (e.g. '{"session": "ignore", "comment": "text"}'); other columns are typed from the
            data, and train's model metadata says how and why (features).
        model_name: Registered model name in MLflow.
        experiment_name: MLflow experiment for the training runs.
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI in each task.
        gate_metric: Metric the challenger must improve on the champion.
        gate_margin: Required improvement over the champion.
        gate_thresholds: Absolute bounds every model must meet, metric -> bound.
        sensitive_columns: Columns whose groups the fairness check compares; [] checks nothing. The default
            fits the bundled Telco data, where seniors churn at 44 % and others at 23 % (holdout): the default
            model's selection rates differ by 0.269 between them, hence the bounds below.
        fairness_thresholds: Largest allowed differences by name, of any task (the model's task's apply, the
            others are ignored). Binary: demographic parity and equalized odds differences, measured on the
            bundled data (default model): gender 0.003 and 0.046, SeniorCitizen 0.269 and 0.199. Multiclass
            (selection_rate_difference, accuracy_difference; default 0.2 each) and regression
            (relative_mean_error_difference, relative_mae_difference: gaps as a share of the MAE; default 0.5
            each) take the fairness stage's defaults unless named here.
        fairness_min_group_rows: Groups with fewer holdout rows are reported, not compared.
        slice_columns: Columns whose values (slices) the gate compares with the champion; [] compares none.
        slice_margin: Largest allowed shortfall of the challenger on a slice.
        slice_min_rows: Slices with fewer holdout rows are not compared.
        explain_model: Whether to compute permutation feature importance (False: the explain task writes
            "not computed", which the model card shows).

    Returns:
        fingerprint: Content fingerprint of the ingested data (the data version).
        rows_in: Rows ingested.
        rows_valid: Rows that passed validation.
        rows_quarantined: Rows quarantined, each with its reason.
        blessed: Whether the gate blessed the model (and register ran).
        blessing: The gate's decision: blessed, reason, both scores (JSON; the same fields as metadata).
        holdout_metrics: Holdout metrics of the trained model.
        model: The trained model (MLflow sklearn directory).
        fairness: The fairness document: per-group rates and differences per sensitive column, passed, reason.
    """
    return training_steps(locals())
