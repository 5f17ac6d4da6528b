"""KFP component for the champion stage: a thin shell around ``mlkeel.components.champion.logic``."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("champion"), install_kfp_package=False)
def champion(
    reference: Output[Dataset],
    schema: Output[Artifact],
    model_name: str,
    mlflow_tracking_uri: str = "",
    alias: str = "champion",
) -> NamedTuple("ChampionOutputs", [("model_uri", str), ("key_columns", list)]):
    """Look up the model under ``alias`` and fetch the schema and reference rows it was trained on.

    Args:
        reference: Output Dataset (Parquet): a sample of the champion's training rows (its run's
            data/reference.parquet). Metadata: the champion's lineage.
        schema: Output Artifact (JSON): the champion's validated schema (its run's data/schema.json).
        model_name: Registered model name.
        mlflow_tracking_uri: MLflow URI; "" reads $MLFLOW_TRACKING_URI.
        alias: The registry alias to resolve.

    Returns:
        model_uri: The exact model URI, models:/NAME/VERSION.
        key_columns: The key columns of the champion's schema (a retrained model keeps them).
    """
    from mlkeel.components.champion.logic import fetch_champion
    from mlkeel.schema import DatasetSchema

    lineage = fetch_champion(model_name, reference.path, schema.path, mlflow_tracking_uri, alias)
    reference.metadata.update(lineage.to_dict())
    schema.metadata.update({"schema_hash": lineage.schema_hash, "model_version": lineage.version})

    class ChampionOutputs(NamedTuple):
        model_uri: str
        key_columns: list

    return ChampionOutputs(lineage.model_uri, list(DatasetSchema.load(schema.path).key_columns))
