"""KFP component for the register stage: a thin shell around ``mlkeel.components.register.logic.register``."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("register"), install_kfp_package=False)
def register(
    model: Input[Model],
    blessing: Input[Artifact],
    registered_model: Output[Artifact],
    model_name: str,
    mlflow_tracking_uri: str = "",
    data_fingerprint: str = "",
    pipeline_name: str = "",
    pipeline_run: str = "",
    version_tags: Optional[dict] = None,
) -> NamedTuple("RegisterOutputs", [("version", str), ("alias", str)]):
    """Register the blessed model as a new version with its lineage tags and make it the champion.

    Refuses (the step fails, its log says why) when the blessing is not blessed. The version is created with
    every lineage tag in the same call: data fingerprint, schema hash, target and positive label (from the
    training run), mlkeel git commit and version, library versions, pipeline name and run, gate metric, score
    and reason. Then ``previous_champion`` moves to the old champion, ``champion`` to the new version.

    Idempotent: the same data, code (git commit) and training parameters registered again give back the
    existing version, never a second copy or a second champion. A version counts as registered once tagged
    ``mlkeel.registration=complete`` (the last write); a rerun after a crash finishes the pending version it
    created. Registry calls are retried with backoff on transient errors. Aliases move under a promotion lock;
    if another run promoted a new champion after this run's gate, the version is registered but not promoted
    and the step fails (rerun the gate). The decision is tagged ``mlkeel.promotion`` on the version and run.

    Args:
        model: Input Model from the train stage. Metadata read: mlflow_model_uri (the logged model that is
            registered), mlflow_run_id (the run whose lineage tags are copied).
        blessing: Input Artifact (JSON) from the gate stage: the decision, which must be blessed.
        registered_model: Output Artifact (JSON): the registration result; its uri is set to
            ``models:/NAME/VERSION``. Metadata: model_name, model_version, aliases, previous_champion_version.
        model_name: Registered model name (created when missing).
        mlflow_tracking_uri: MLflow tracking/registry URI; "" reads $MLFLOW_TRACKING_URI.
        data_fingerprint: Fingerprint of the ingested data ("" = the one the training run recorded).
        pipeline_name: Pipeline (job) name, recorded as a tag; pass dsl.PIPELINE_JOB_NAME_PLACEHOLDER.
        pipeline_run: Pipeline run (job) id, recorded as a tag; pass dsl.PIPELINE_JOB_ID_PLACEHOLDER.
        version_tags: More tags for the version, e.g. the tune stage's {"mlkeel.tuning": ...} (the chosen
            hyperparameters of a search).

    Returns:
        version: The registered version (the existing one when this registration was made before).
        alias: The alias it now holds ("champion").
    """
    from mlkeel.components.gate.logic import Blessing
    from mlkeel.components.register.logic import register as run_register
    from mlkeel.constants import CHAMPION_ALIAS, ArtifactMetadata
    from mlkeel.storage import write_json_atomic

    result = run_register(
        model.metadata.get(ArtifactMetadata.MLFLOW_MODEL_URI, ""),
        Blessing.load(blessing.path),
        model_name,
        tracking_uri=mlflow_tracking_uri,
        mlflow_run_id=model.metadata.get(ArtifactMetadata.MLFLOW_RUN_ID, ""),
        data_fingerprint=data_fingerprint,
        pipeline_name=pipeline_name,
        pipeline_run=pipeline_run,
        version_tags=version_tags,
    )
    write_json_atomic(result.to_dict(), registered_model.path)  # before the uri changes: path follows uri
    registered_model.metadata.update(result.metadata)
    registered_model.uri = result.model_uri
    outputs = NamedTuple("RegisterOutputs", [("version", str), ("alias", str)])
    return outputs(result.version, CHAMPION_ALIAS)
