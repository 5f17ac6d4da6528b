"""Command line for the deploy stage: ``python -m mlkeel.components.deploy --help`` (also ``mlkeel deploy``)."""

import click

from mlkeel.clitools import echo_json, reports_user_errors
from mlkeel.constants import CHAMPION_ALIAS


@click.command(name="deploy")
@click.option("--model-name", required=True, help="Registered model to serve.")
@click.option("--model-version", default="", help="Registered version (default: the one under --required-alias).")
@click.option("--namespace", default="mlkeel-serving", show_default=True, help="Namespace of the serving objects.")
@click.option(
    "--strategy",
    type=click.Choice(["rolling", "blue-green", "canary"]),
    default="rolling",
    show_default=True,
)
@click.option(
    "--replicas", type=int, default=2, show_default=True, help="Pods (the HPA's minimum with --max-replicas)."
)
@click.option("--max-replicas", type=int, default=0, show_default=True, help="0 = no HorizontalPodAutoscaler.")
@click.option("--canary-fraction", type=float, default=0.2, show_default=True, help="The canary's share of replicas.")
@click.option("--max-error-rate", type=float, default=0.01, show_default=True, help="Largest 5xx share of a canary.")
@click.option("--canary-observe-seconds", type=float, default=60.0, show_default=True)
@click.option(
    "--canary-min-requests",
    type=int,
    default=0,
    show_default=True,
    help="Fewer /predict requests than this fails the canary (0: promoted on readiness without traffic).",
)
@click.option("--ready-timeout-seconds", type=float, default=300.0, show_default=True, help="Then roll back.")
@click.option(
    "--required-alias",
    default=CHAMPION_ALIAS,
    show_default=True,
    help="Alias a deployable version must hold (previous_champion: roll back to the champion before).",
)
@click.option("--image", default="", help="Serving image (default: mlkeel's serve image).")
@click.option(
    "--prediction-log-claim",
    default="",
    help="PersistentVolumeClaim to keep the prediction log on (default: the pod's emptyDir, lost with the pod).",
)
@click.option("--tracking-uri", default="", help="MLflow registry URI (default: $MLFLOW_TRACKING_URI).")
@click.option("--context", default="", help="Kubeconfig context (default: the current one).")
@click.option("--in-cluster", is_flag=True, help="Use the pod's ServiceAccount instead of a kubeconfig.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the version in the registry and print the objects as YAML; touch no cluster.",
)
@click.option("--result-out", default="", type=click.Path(dir_okay=False), help="Also write the result JSON here.")
@reports_user_errors
def main(
    model_name: str,
    model_version: str,
    namespace: str,
    strategy: str,
    replicas: int,
    max_replicas: int,
    canary_fraction: float,
    max_error_rate: float,
    canary_observe_seconds: float,
    canary_min_requests: int,
    ready_timeout_seconds: float,
    required_alias: str,
    image: str,
    prediction_log_claim: str,
    tracking_uri: str,
    context: str,
    in_cluster: bool,
    dry_run: bool,
    result_out: str,
) -> None:
    """Serve a blessed model version on Kubernetes (rolling, blue-green or canary) and print what was done."""
    from mlkeel.components.deploy.logic import (
        DeploySettings,
        Waiting,
        deploy_model,
        kube_apis,
        metrics_error_rate_check,
        render_version,
    )

    settings = DeploySettings(
        model_name=model_name,
        model_version=model_version,
        namespace=namespace,
        image=image,
        replicas=replicas,
        max_replicas=max_replicas,
        prediction_log_claim=prediction_log_claim,
    )
    if dry_run:
        import yaml

        documents = render_version(settings, strategy, required_alias, tracking_uri, canary_fraction)
        click.echo(yaml.safe_dump_all(documents, sort_keys=False), nl=False)
        return
    result = deploy_model(
        kube_apis(in_cluster=in_cluster, context=context),
        settings,
        strategy=strategy,
        required_alias=required_alias,
        tracking_uri=tracking_uri,
        canary_fraction=canary_fraction,
        canary_check=metrics_error_rate_check(
            max_error_rate, observe_s=canary_observe_seconds, min_requests=canary_min_requests
        ),
        waiting=Waiting(timeout_s=ready_timeout_seconds),
        result_path=result_out,
    )
    echo_json(result.to_dict())
