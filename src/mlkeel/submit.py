"""Submit mlkeel's compiled pipelines to a Kubeflow Pipelines cluster: pipeline versions, one-off and recurring runs.

Plain functions around ``kfp.Client`` (imported inside them). What they add to the client:

- the committed, golden YAML is what runs (``pipelines/<name>.yaml``), never a fresh compile;
- parameter names are checked against the pipeline's inputs before anything reaches the cluster;
- **one run per event**: ``submit_run(..., dedupe_key=...)`` names the run after a hash of the key and, when a run
  of that name already exists in the experiment, returns it instead of starting a second one;
- ``upload_version`` puts the compiled YAML in the KFP UI's Pipelines page as a named version of a named
  pipeline (what KFP users share and start runs from): the pipeline is created by its first upload, later
  uploads add versions, and a version name already there is reused, not uploaded twice; the default version
  name is the mlkeel version plus a hash of the YAML, so the same YAML is one version however often it is
  uploaded; ``submit_run(..., version=...)`` then starts the run from that version, which the run links to;
- ``schedule_run`` is idempotent by name, and turns a standard 5-field cron into the 6-field cron (seconds
  first) that the KFP scheduler parses;
- every connection or API failure is a ``ClusterError`` naming the host (without credentials).

Secrets: the MLflow tracking URI is **not** put into the run's arguments unless you pass
``mlflow_tracking_uri`` yourself. Arguments are stored in the run record and shown in the KFP UI; on a cluster
leave the parameter empty and give the pods ``MLFLOW_TRACKING_URI`` from a Kubernetes Secret. A URI that carries
a user, password or query string is refused as an argument for that reason.

Drift events: to retrain once per drift event, submit the training pipeline with
``dedupe_key=drift_event_key(model_name, champion_version, data_fingerprint)``. The same batch seen against the
same champion is the same event, however many times a monitor or an alert fires; a retrain that registers a new
champion changes the version, so the next drift is a new event; an unblessed retrain leaves the champion as it
was, so the same batch does not trigger retrain after retrain.

Limits: the dedupe check is list-then-create, not atomic (KFP has no unique run names), so two submissions of
the same key at the same instant can both create a run; an existing run is returned whatever its state (also
failed or archived), use another key to retry on purpose.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlkeel.errors import MlkeelError, ParameterError
from mlkeel.storage import display_uri

DEFAULT_EXPERIMENT = "mlkeel"
TRACKING_URI_PARAMETER = "mlflow_tracking_uri"
# Enough for every run a dedupe name can match (the name is a hash: normally zero or one run).
LIST_PAGE_SIZE = 100


class ClusterError(MlkeelError):
    """The KFP API server is unreachable, refused a request, or holds something unexpected."""


@dataclass(frozen=True)
class SubmitResult:
    """What ``submit_run`` did.

    Attributes:
        run_id: KFP run ID.
        run_name: The run's display name.
        created: True when this call started the run; False when a run with the dedupe name already existed.
        url: The run's page in the KFP UI.
        state: The run's state as the server reported it (e.g. PENDING, RUNNING, FAILED), "" when unknown.
    """

    run_id: str
    run_name: str
    created: bool
    url: str
    state: str = ""


@dataclass(frozen=True)
class ScheduleResult:
    """What ``schedule_run`` did.

    Attributes:
        recurring_run_id: KFP recurring run ID.
        name: The recurring run's display name.
        created: True when this call created it; False when one of that name already existed.
        cron: The 6-field cron (seconds first) the recurring run has on the cluster.
        url: The recurring run's page in the KFP UI.
    """

    recurring_run_id: str
    name: str
    created: bool
    cron: str
    url: str


@dataclass(frozen=True)
class UploadResult:
    """What ``upload_version`` did.

    Attributes:
        pipeline_id: KFP pipeline ID.
        pipeline_name: The pipeline's display name.
        version_id: KFP pipeline version ID.
        version_name: The version's display name (a new pipeline's first version bears the pipeline's name,
            as KFP names it).
        created_pipeline: True when this call created the pipeline.
        created_version: True when this call uploaded the version; False when one of that name was there.
        url: The version's page in the KFP UI.
    """

    pipeline_id: str
    pipeline_name: str
    version_id: str
    version_name: str
    created_pipeline: bool
    created_version: bool
    url: str


def compiled_pipeline_path(name: str) -> Path:
    """The committed, compiled YAML of a pipeline.

    Args:
        name: "training" or "monitoring".

    Returns:
        ``<source root>/pipelines/<name>.yaml``.

    Raises:
        ParameterError: unknown pipeline name, or its YAML is missing.
    """
    from mlkeel.compiler import source_root
    from mlkeel.pipelines import PIPELINES

    if name not in PIPELINES:
        raise ParameterError(f"unknown pipeline {name!r}: choose one of {', '.join(PIPELINES)}")
    path = source_root() / "pipelines" / f"{name}.yaml"
    if not path.is_file():
        raise ParameterError(f"{path}: compiled pipeline not found; run `mlkeel compile`")
    return path


def pipeline_parameters(name: str) -> dict[str, Any]:
    """The input parameters of a compiled pipeline, name -> its spec (``parameterType``, ``defaultValue``...).

    Args:
        name: "training" or "monitoring".

    Returns:
        The ``root.inputDefinitions.parameters`` mapping of the compiled YAML.
    """
    import yaml

    # The first document; a second one is the platform spec (kfp-kubernetes settings).
    spec = next(yaml.safe_load_all(compiled_pipeline_path(name).read_text(encoding="utf-8")))
    return dict(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))


# A compiled parameter's type -> (what a user is told, the JSON types it accepts).
PARAMETER_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "NUMBER_DOUBLE": ("a number", (int, float)),
    "NUMBER_INTEGER": ("an integer", (int,)),
    "STRING": ("text", (str,)),
    "BOOLEAN": ("true or false", (bool,)),
    "STRUCT": ("a JSON object", (dict,)),
    "LIST": ("a JSON list", (list,)),
}


def typed_arguments(name: str, arguments: dict[str, Any], declared: dict[str, Any] | None = None) -> dict[str, Any]:
    """The arguments as the pipeline's parameters declare them: ``0`` for a float parameter becomes ``0.0``.

    A text parameter takes any value: ``--param positive_label=1`` (parsed as the JSON number 1) becomes ``"1"``,
    an object (``feature_types``) its JSON text.

    kfp refuses an int for a float parameter with a traceback (``InconsistentTypeException``), and a user who
    types ``--param max_invalid_fraction=0`` means 0.0. Parameters the pipeline does not declare are left as
    they are (``check_arguments`` names them).

    Args:
        name: Pipeline name.
        arguments: Parameter name -> value (``--param`` values parsed as JSON).
        declared: The pipeline's parameters (``pipeline_parameters(name)``) when the caller has read them already.

    Returns:
        A copy with integral numbers of float parameters as floats and any value of a text parameter as text.

    Raises:
        ParameterError: a value of the wrong type, naming the parameter, the type it takes and the value.
    """
    declared = pipeline_parameters(name) if declared is None else declared
    typed = dict(arguments)
    for key, value in arguments.items():
        kind = declared.get(key, {}).get("parameterType", "")
        if kind not in PARAMETER_TYPES:
            continue
        told, accepted = PARAMETER_TYPES[kind]
        if kind == "STRING" and not isinstance(value, str):  # `--param positive_label=1` was parsed as JSON
            typed[key] = json.dumps(value, sort_keys=True)
            continue
        # bool is an int in Python; a true/false is not a number here, nor a number a boolean.
        if isinstance(value, accepted) and (kind == "BOOLEAN" or not isinstance(value, bool)):
            typed[key] = float(value) if kind == "NUMBER_DOUBLE" and isinstance(value, (int, float)) else value
            continue
        raise ParameterError(f"pipeline {name!r} parameter {key!r} takes {told}, got {value!r}")
    return typed


def check_arguments(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Check run arguments before they reach the cluster.

    Args:
        name: Pipeline name.
        arguments: Parameter name -> value.

    Returns:
        A copy of ``arguments``, typed as the pipeline declares them (``typed_arguments``); with ``task``
        multiclass or regression, the task's gate metric (``task_gate_arguments``) where none is given: the
        pipelines' gate defaults are binary (roc_auc), which such a run cannot compute.

    Raises:
        ParameterError: a name the pipeline does not take, a required parameter missing, a value of the wrong
            type, or an ``mlflow_tracking_uri`` that carries credentials.
    """
    known = pipeline_parameters(name)
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise ParameterError(
            f"pipeline {name!r} has no parameter {', '.join(map(repr, unknown))}; it takes: {', '.join(sorted(known))}"
        )
    missing = sorted(key for key, spec in known.items() if not spec.get("isOptional") and key not in arguments)
    if missing:
        raise ParameterError(f"pipeline {name!r} needs {', '.join(missing)}: pass --param NAME=VALUE")
    tracking_uri = str(arguments.get(TRACKING_URI_PARAMETER) or "")
    if tracking_uri and display_uri(tracking_uri) != tracking_uri:
        raise ParameterError(
            f"{TRACKING_URI_PARAMETER}={display_uri(tracking_uri)}...: carries credentials, which the run record "
            "would keep and show; leave it empty and set MLFLOW_TRACKING_URI on the cluster from a Secret"
        )
    if "gate_metric" in known and "gate_metric" not in arguments:
        from mlkeel.task import task_gate_arguments

        arguments = {**task_gate_arguments(str(arguments.get("task") or "")), **arguments}
    return typed_arguments(name, arguments, known)


def dedupe_run_name(pipeline: str, key: str) -> str:
    """The run name that stands for one event: the same key always gives the same name.

    Args:
        pipeline: Pipeline name.
        key: The event key (e.g. from ``drift_event_key``).

    Returns:
        ``mlkeel-<pipeline>-<first 16 hex digits of sha256(key)>``.

    Raises:
        ParameterError: an empty key.
    """
    if not key.strip():
        raise ParameterError("the dedupe key is empty: pass a key that names the event")
    return f"mlkeel-{pipeline}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"


def drift_event_key(model_name: str, champion_version: str | int, data_fingerprint: str) -> str:
    """The recommended dedupe key of a drift event: model name + champion version + current batch fingerprint.

    Args:
        model_name: Registered model name.
        champion_version: Registry version of the champion the batch drifted from.
        data_fingerprint: Fingerprint of the drifted batch (what ingest reports as ``fingerprint``).

    Returns:
        An unambiguous text key, e.g. ``drift:["mlkeel-churn","3","9f2c..."]``.

    Raises:
        ParameterError: an empty part.
    """
    parts = [str(model_name).strip(), str(champion_version).strip(), str(data_fingerprint).strip()]
    for label, part in zip(("model name", "champion version", "data fingerprint"), parts, strict=True):
        if not part:
            raise ParameterError(f"drift event key: the {label} is empty")
    return "drift:" + json.dumps(parts, separators=(",", ":"))


def kfp_cron(cron: str) -> str:
    """Turn a cron expression into the 6-field form (seconds first) that KFP's scheduler parses.

    KFP reads ``0 6 * * *`` as second 0, minute 6 of every hour, so a standard 5-field cron gets ``0`` seconds
    prepended; a 6-field cron is kept.

    Args:
        cron: 5 fields (minute hour day month weekday) or 6 fields (second first).

    Returns:
        The 6-field expression.

    Raises:
        ParameterError: another number of fields.
    """
    fields = cron.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise ParameterError(f"--cron {cron!r}: expected 5 fields (minute hour day month weekday) or 6 (seconds first)")


def display_name_filter(display_name: str) -> str:
    """A v2beta1 list filter matching one display name (a JSON-serialised ``Filter`` message).

    Args:
        display_name: The exact name.

    Returns:
        ``{"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": ...}]}`` as JSON.
    """
    predicate = {"operation": "EQUALS", "key": "display_name", "stringValue": display_name}
    return json.dumps({"predicates": [predicate]})


@contextlib.contextmanager
def cluster_calls(host: str, doing: str) -> Iterator[None]:
    """Turn any failure of the KFP client into a ``ClusterError`` naming the host; keep stdout clean.

    kfp.Client prints links on stdout; they go to stderr here so that a command's stdout holds only its result.

    Args:
        host: KFP API URL (credentials are dropped from messages).
        doing: What was being done, for the message.

    Raises:
        ClusterError: connection failure, HTTP error status, or an unexpected answer.
    """
    import kfp_server_api
    import urllib3

    shown = display_uri(host)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "This client only works with KFP v2.0.0-beta.2 and later"
            yield
    except MlkeelError:
        raise
    except kfp_server_api.ApiException as error:
        body = " ".join(str(error.body or "").split())[:300]
        hint = " (check the token or cookie this host needs)" if error.status in (401, 403) else ""
        reason = f"HTTP {error.status} {error.reason}" if error.status else str(error.reason)
        detail = f": {body}" if body else ""
        raise ClusterError(f"KFP API at {shown}: {doing} failed: {reason}{hint}{detail}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ClusterError(f"KFP API at {shown}: cannot connect ({type(error).__name__}) while {doing}") from error
    except (TimeoutError, ValueError) as error:  # healthz retries exhausted; duplicate experiment names
        raise ClusterError(f"KFP API at {shown}: {doing} failed: {error}") from error


def connect(host: str, namespace: str = "") -> Any:
    """A ``kfp.Client`` for ``host`` (it calls the healthz endpoint at once, so a wrong host fails here).

    Args:
        host: KFP API URL, e.g. ``http://localhost:8080`` (a port-forward of ml-pipeline-ui or ml-pipeline).
        namespace: Kubernetes namespace of a multi-user deployment ("" = single-user / the client's default).

    Returns:
        The client.

    Raises:
        ClusterError: the host is unreachable or is not a KFP API.
    """
    import kfp

    with cluster_calls(host, "connecting"):
        if namespace:
            return kfp.Client(host=host, namespace=namespace)
        return kfp.Client(host=host)


def _ui_url(host: str, page: str, identifier: str) -> str:
    return f"{display_uri(host).rstrip('/')}/#/{page}/{identifier}"


def _named(items: list[Any] | None, name: str) -> Any | None:
    """The oldest item whose display name is exactly ``name`` (checked here too, whatever the server filtered)."""
    matches = [item for item in items or [] if item.display_name == name]
    matches.sort(key=lambda item: (item.created_at is None, item.created_at or 0))
    return matches[0] if matches else None


def default_version_name(pipeline: str) -> str:
    """The version name of a compiled pipeline: ``v<mlkeel version>-<12 hex digits of the YAML's sha256>``.

    Args:
        pipeline: "training" or "monitoring".

    Returns:
        The name: the same YAML gives the same name, a changed YAML another.
    """
    from mlkeel import __version__

    digest = hashlib.sha256(compiled_pipeline_path(pipeline).read_bytes()).hexdigest()[:12]
    return f"v{__version__}-{digest}"


def upload_version(
    host: str,
    pipeline: str,
    pipeline_name: str = "",
    version_name: str = "",
    client: Any = None,
    namespace: str = "",
) -> UploadResult:
    """Upload a compiled pipeline to the KFP UI's Pipelines page as a named version of a named pipeline.

    A pipeline not there yet is created with the YAML as its first version (``kfp.Client.upload_pipeline``;
    KFP names that version after the pipeline); an existing pipeline gets a new version
    (``upload_pipeline_version``) unless it already has one named ``version_name``, which is returned as is.

    Args:
        host: KFP API URL.
        pipeline: "training" or "monitoring".
        pipeline_name: The pipeline's display name (default ``mlkeel-<pipeline>``).
        version_name: The version's display name (default ``default_version_name(pipeline)``).
        client: A ``kfp.Client`` to use (default: ``connect(host, namespace)``).
        namespace: Namespace of a multi-user deployment ("" = a shared pipeline).

    Returns:
        The pipeline and version, and what this call created.

    Raises:
        ParameterError: unknown pipeline or missing YAML.
        ClusterError: the cluster is unreachable or refused a request (e.g. a name KFP does not accept).
    """
    package = compiled_pipeline_path(pipeline)
    pipeline_name = pipeline_name.strip() or f"mlkeel-{pipeline}"
    version_name = version_name.strip() or default_version_name(pipeline)
    client = client or connect(host, namespace)
    with cluster_calls(host, f"uploading {pipeline_name} version {version_name}"):
        listed = client.list_pipelines(
            filter=display_name_filter(pipeline_name), page_size=LIST_PAGE_SIZE, namespace=namespace or None
        )
        existing = _named(listed.pipelines, pipeline_name)
        if existing is None:
            created = client.upload_pipeline(
                str(package),
                pipeline_name=pipeline_name,
                description=_description(package),
                namespace=namespace or None,
            )
            versions = client.list_pipeline_versions(pipeline_id=created.pipeline_id, page_size=LIST_PAGE_SIZE)
            first = _oldest(versions.pipeline_versions)
            if first is None:
                raise ClusterError(f"KFP API at {display_uri(host)}: pipeline {pipeline_name!r} has no version")
            return _uploaded(host, created.pipeline_id, pipeline_name, first, True, True)
        versions = client.list_pipeline_versions(
            pipeline_id=existing.pipeline_id, filter=display_name_filter(version_name), page_size=LIST_PAGE_SIZE
        )
        version = _named(versions.pipeline_versions, version_name)
        if version is not None:
            return _uploaded(host, existing.pipeline_id, pipeline_name, version, False, False)
        version = client.upload_pipeline_version(
            str(package), pipeline_version_name=version_name, pipeline_id=existing.pipeline_id
        )
    return _uploaded(host, existing.pipeline_id, pipeline_name, version, False, True)


def _description(package: Path) -> str:
    import yaml

    spec = next(yaml.safe_load_all(package.read_text(encoding="utf-8")))
    return str(spec.get("pipelineInfo", {}).get("description", ""))


def _oldest(items: list[Any] | None) -> Any | None:
    ordered = sorted(items or [], key=lambda item: (item.created_at is None, item.created_at or 0))
    return ordered[0] if ordered else None


def _uploaded(
    host: str, pipeline_id: str, pipeline_name: str, version: Any, created_pipeline: bool, created_version: bool
) -> UploadResult:
    version_id = version.pipeline_version_id
    return UploadResult(
        pipeline_id,
        pipeline_name,
        version_id,
        str(version.display_name),
        created_pipeline,
        created_version,
        _ui_url(host, "pipelines/details", f"{pipeline_id}/version/{version_id}"),
    )


def submit_run(
    host: str,
    pipeline: str,
    arguments: dict[str, Any],
    experiment: str = DEFAULT_EXPERIMENT,
    dedupe_key: str = "",
    client: Any = None,
    namespace: str = "",
    version: UploadResult | None = None,
) -> SubmitResult:
    """Start a run of a compiled pipeline on a KFP cluster, at most once per dedupe key.

    The MLflow tracking URI is not added to ``arguments``: the cluster gives the pods ``MLFLOW_TRACKING_URI``
    from a Secret (see the module docstring).

    Args:
        host: KFP API URL.
        pipeline: "training" or "monitoring".
        arguments: Pipeline parameters (checked against the compiled YAML's inputs).
        experiment: KFP experiment (created when missing).
        dedupe_key: When set, the run is named ``dedupe_run_name(pipeline, key)`` and an existing run of that
            name in the experiment is returned instead of starting another.
        client: A ``kfp.Client`` to use (default: ``connect(host, namespace)``).
        namespace: Namespace of a multi-user deployment.
        version: An uploaded version of this pipeline (``upload_version``) to start the run from, which the
            run then refers to; None sends the compiled YAML with the run.

    Returns:
        The run, and whether this call created it.

    Raises:
        ParameterError: unknown pipeline or parameter, or credentials in ``mlflow_tracking_uri``.
        ClusterError: the cluster is unreachable or refused a request.
    """
    package = compiled_pipeline_path(pipeline)
    checked = check_arguments(pipeline, arguments)
    if dedupe_key:
        run_name = dedupe_run_name(pipeline, dedupe_key)
    else:
        run_name = f"mlkeel-{pipeline}-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}"
    client = client or connect(host, namespace)
    with cluster_calls(host, f"submitting {run_name}"):
        experiment_id = client.create_experiment(name=experiment, namespace=namespace or None).experiment_id
        if dedupe_key:
            listed = client.list_runs(
                experiment_id=experiment_id, filter=display_name_filter(run_name), page_size=LIST_PAGE_SIZE
            )
            existing = _named(listed.runs, run_name)
            if existing is not None:
                return SubmitResult(
                    existing.run_id,
                    run_name,
                    False,
                    _ui_url(host, "runs/details", existing.run_id),
                    str(existing.state or ""),
                )
        if version is not None:
            started = client.run_pipeline(
                experiment_id,
                run_name,
                params=checked,
                pipeline_id=version.pipeline_id,
                version_id=version.version_id,
            )
            run_id, state = started.run_id, str(started.state or "")
        else:
            result = client.create_run_from_pipeline_package(
                str(package), arguments=checked, run_name=run_name, experiment_id=experiment_id
            )
            run_id = result.run_id
            state = str(getattr(result.run_info, "state", "") or "")
    return SubmitResult(run_id, run_name, True, _ui_url(host, "runs/details", run_id), state)


def schedule_run(
    host: str,
    pipeline: str,
    cron: str,
    arguments: dict[str, Any],
    name: str = "",
    experiment: str = DEFAULT_EXPERIMENT,
    client: Any = None,
    namespace: str = "",
) -> ScheduleResult:
    """Create a recurring run of a compiled pipeline, once per name.

    Runs do not catch up on missed schedules (``no_catchup``) and never overlap (``max_concurrency=1``). As with
    ``submit_run``, the MLflow tracking URI is not added to the arguments.

    Args:
        host: KFP API URL.
        pipeline: "training" or "monitoring".
        cron: 5-field cron (``"0 6 * * *"`` = 06:00 daily, in the scheduler's time zone, normally UTC) or
            KFP's 6-field cron (seconds first).
        arguments: Pipeline parameters.
        name: Display name of the recurring run (default ``mlkeel-<pipeline>``); it identifies it.
        experiment: KFP experiment (created when missing).
        client: A ``kfp.Client`` to use (default: ``connect(host, namespace)``).
        namespace: Namespace of a multi-user deployment.

    Returns:
        The recurring run, whether this call created it, and its cron on the cluster (an existing recurring run
        keeps its own cron: compare it with what you asked for).

    Raises:
        ParameterError: unknown pipeline or parameter, a bad cron, or credentials in ``mlflow_tracking_uri``.
        ClusterError: the cluster is unreachable or refused a request.
    """
    package = compiled_pipeline_path(pipeline)
    checked = check_arguments(pipeline, arguments)
    wanted_cron = kfp_cron(cron)
    name = name.strip() or f"mlkeel-{pipeline}"
    client = client or connect(host, namespace)
    with cluster_calls(host, f"scheduling {name}"):
        experiment_id = client.create_experiment(name=experiment, namespace=namespace or None).experiment_id
        listed = client.list_recurring_runs(
            experiment_id=experiment_id, filter=display_name_filter(name), page_size=LIST_PAGE_SIZE
        )
        existing = _named(listed.recurring_runs, name)
        created = existing is None
        if created:
            existing = client.create_recurring_run(
                experiment_id=experiment_id,
                job_name=name,
                cron_expression=wanted_cron,
                params=checked,
                pipeline_package_path=str(package),
                no_catchup=True,
                max_concurrency=1,
            )
        assert existing is not None  # found or just created
        trigger = existing.trigger
        on_cluster = trigger.cron_schedule.cron if trigger and trigger.cron_schedule else ""
    recurring_run_id = existing.recurring_run_id
    return ScheduleResult(
        recurring_run_id, name, created, on_cluster or "", _ui_url(host, "recurringrun/details", recurring_run_id)
    )
