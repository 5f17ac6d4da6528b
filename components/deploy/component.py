"""KFP component for the deploy stage: a thin shell around ``mlkeel.components.deploy.logic.deploy_model``."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("deploy"), install_kfp_package=False)
def deploy(
    deployment: Output[Artifact],
    model_name: str,
    model_version: str = "",
    namespace: str = "mlkeel-serving",
    strategy: str = "rolling",
    replicas: int = 2,
    max_replicas: int = 0,
    canary_fraction: float = 0.2,
    max_error_rate: float = 0.01,
    canary_observe_seconds: float = 60.0,
    canary_min_requests: int = 0,
    ready_timeout_seconds: float = 300.0,
    required_alias: str = "champion",
    image: str = "",
    prediction_log_claim: str = "",
    mlflow_tracking_uri: str = "",
) -> str:
    """Serve a registered model version on Kubernetes: Deployment + Service (+ HPA), with rollback.

    The version must hold ``required_alias`` in the MLflow registry (``champion``: the register stage sets it on
    models the gate blessed); any other version is refused before the cluster is touched. Strategies: rolling
    (the Deployment is updated in place), blue-green (the Service switches to the new Deployment once it is
    Ready; the old one is then deleted), canary (``canary_fraction`` of the replicas serve the new version
    behind the same Service; promoted when its 5xx share on ``/metrics`` stays <= ``max_error_rate`` for
    ``canary_observe_seconds``, else removed). A version that is not Ready within ``ready_timeout_seconds`` is
    rolled back and the step fails. Deploying what already serves, with the same settings, changes nothing.
    Runs with the pod's ServiceAccount: it needs the Role in manifests/serving/rbac.yaml.

    Args:
        deployment: Output Artifact (JSON): what was done. Metadata: action (created, updated, switched,
            promoted, unchanged), strategy, model_name, model_version, previous_version, namespace, service,
            deployment, reason, canary.
        model_name: Registered model to serve.
        model_version: Registered version; "" = the version under ``required_alias``.
        namespace: Kubernetes namespace of the serving objects.
        strategy: rolling, blue-green or canary.
        replicas: Pods serving the model (the autoscaler's minimum when ``max_replicas`` is set).
        max_replicas: 0 = no autoscaler; else an autoscaling/v2 HPA up to this many pods (70% CPU target).
        canary_fraction: The canary's share of ``replicas``, in (0, 1); at least one pod.
        max_error_rate: Largest 5xx share the canary may show.
        canary_observe_seconds: Traffic time before the canary is judged.
        canary_min_requests: Fewer /predict requests than this in that time fails the canary (0: a canary
            without traffic is promoted on readiness alone).
        ready_timeout_seconds: Time a new version has to become Ready before it is rolled back.
        required_alias: The registry alias a deployable version must hold.
        image: The serving image; "" = mlkeel's serve image.
        prediction_log_claim: PersistentVolumeClaim the serving pods keep their prediction log on (every
            replica writes its own part files; ReadWriteMany when pods run on several nodes); "" = each pod's
            emptyDir, lost with the pod.
        mlflow_tracking_uri: MLflow registry URI; "" reads $MLFLOW_TRACKING_URI.

    Returns:
        The version now served.
    """
    from mlkeel.components.deploy.logic import (
        DeploySettings,
        Waiting,
        deploy_model,
        kube_apis,
        metrics_error_rate_check,
    )

    result = deploy_model(
        kube_apis(in_cluster=True),
        DeploySettings(
            model_name=model_name,
            model_version=model_version,
            namespace=namespace,
            image=image,
            replicas=replicas,
            max_replicas=max_replicas,
            prediction_log_claim=prediction_log_claim,
        ),
        strategy=strategy,
        required_alias=required_alias,
        tracking_uri=mlflow_tracking_uri,
        canary_fraction=canary_fraction,
        canary_check=metrics_error_rate_check(
            max_error_rate, observe_s=canary_observe_seconds, min_requests=canary_min_requests
        ),
        waiting=Waiting(timeout_s=ready_timeout_seconds),
        result_path=deployment.path,
    )
    deployment.metadata.update(result.to_dict())
    return result.model_version
