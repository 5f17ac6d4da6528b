"""Run mlkeel's pipelines on this machine with kfp.local, against a local MLflow store, and summarise the run.

Everything lands in one work folder (default ``./.mlkeel``): it is kfp.local's pipeline root (each run in a
``mlkeel-training-<timestamp>/`` folder) and holds the MLflow store (``mlflow.db`` + ``mlartifacts/``). One
folder matters for the Docker runner, which bind-mounts only the pipeline root into the containers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkeel.constants import (
    CHAMPION_ALIAS,
    DEFAULT_RUNNER,
    PREVIOUS_CHAMPION_ALIAS,
    RUNNERS,
    ArtifactMetadata,
    LineageTag,
)
from mlkeel.errors import MlkeelError, ParameterError
from mlkeel.storage import display_uri
from mlkeel.warm_python import MONITORING_LIBRARIES, TRAINING_LIBRARIES, available, warm_python

DEFAULT_WORKDIR = ".mlkeel"
# Parameters of the tuning pipeline only: a run without a search (tune_trials 0) runs the training pipeline.
TUNING_ONLY_PARAMETERS = ("tune_trials", "search_space")
SQLITE_FILE = "mlflow.db"
logger = logging.getLogger(__name__)


class PipelineRunFailed(MlkeelError):
    """A task of a local pipeline run failed: the message names the first that did, its error line and the log."""


@dataclass(frozen=True)
class LocalStore:
    """Where a local run keeps its outputs and its MLflow store.

    Attributes:
        workdir: The work folder (also kfp.local's pipeline root).
        tracking_uri: MLflow tracking URI (SQLite file in the work folder unless given).
        artifact_location: Where MLflow stores artifacts of experiments it creates.
    """

    workdir: Path
    tracking_uri: str
    artifact_location: str

    @classmethod
    def create(cls, workdir: str | Path = DEFAULT_WORKDIR, tracking_uri: str = "") -> LocalStore:
        """Create the work folder and decide the tracking URI; a new SQLite store starts from the migrated template.

        The store is seeded here, before anything opens it (the monitoring command looks up the champion first):
        whatever opens a missing SQLite file makes MLflow run every schema migration on it.

        Args:
            workdir: The work folder.
            tracking_uri: An MLflow URI to use instead of the local SQLite store ("" = local store).

        Returns:
            The store description.
        """
        from mlkeel.docker_runner import absolute_store_uri, local_store_path

        folder = Path(workdir).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        # A local store's path made absolute: each task (a process, or a container) may start in another folder.
        tracking_uri = absolute_store_uri(tracking_uri)
        local = local_store_path(tracking_uri) if tracking_uri else None
        if local and local[0] == "sqlite":
            local[1].parent.mkdir(parents=True, exist_ok=True)
        database = local[1] if local and local[0] == "sqlite" else None if tracking_uri else folder / SQLITE_FILE
        if database is not None and not database.exists():
            seed_sqlite_store(database)
        return cls(
            workdir=folder,
            tracking_uri=tracking_uri or _sqlite_uri(folder / SQLITE_FILE),
            artifact_location=(folder / "mlartifacts").as_uri(),
        )

    def ensure_experiment(self, experiment_name: str) -> None:
        """Create the MLflow experiment with its artifacts in the work folder (local store only).

        Args:
            experiment_name: The experiment the pipeline logs to.
        """
        from mlkeel.tracking import connect

        local = self.tracking_uri.startswith("sqlite:")
        client = connect(self.tracking_uri)
        if client.get_experiment_by_name(experiment_name) is None:
            client.create_experiment(experiment_name, artifact_location=self.artifact_location if local else None)


def _sqlite_uri(database: Path) -> str:
    return f"sqlite:///{database}"


def seed_sqlite_store(database: Path) -> None:
    """Start a new local MLflow store from an empty database already migrated to this MLflow's schema.

    A new SQLite store runs every MLflow schema migration (69 in MLflow 3.17) when it is first opened: about
    3 s of CPU, more than most pipeline tasks spend on their own work. The empty, migrated database (tables
    only: MLflow still creates its Default experiment on first use, as in a new file) is made once per MLflow
    version in ``~/.cache/mlkeel`` and copied. Anything going wrong leaves ``database`` absent, and MLflow then
    creates it the usual way.

    Args:
        database: The SQLite file to create (absent).
    """
    import mlflow

    from mlkeel.storage import copy_file_atomic, write_atomic

    cache = Path(os.environ.get("XDG_CACHE_HOME", "") or Path.home() / ".cache") / "mlkeel"
    template = cache / f"mlflow-{mlflow.__version__}-empty.db"
    try:
        if not template.is_file():  # concurrent first runs each write their own copy, and one rename wins
            write_atomic(template, _migrated_empty_database)
        copy_file_atomic(template, database)
    except Exception as error:  # the cache is an optimisation only: MLflow initialises the store itself
        logger.info("local MLflow store: no cached empty database (%s); MLflow creates it", error)


def _migrated_empty_database(path: Path) -> None:
    """Create the tables of MLflow's current schema in a new SQLite file at ``path``."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine(_sqlite_uri(path))
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()  # closes the file before it is renamed


def written_model_card(run_folder: Path | None) -> Path | None:
    """The model card (HTML) a run wrote into its folder (``model-card/card``), or None."""
    card = run_folder / "model-card" / "card" if run_folder else None
    return card if card and card.is_file() else None


@dataclass
class TrainingSummary:
    """What a user wants to know after a training run.

    Attributes:
        fingerprint: Data fingerprint (the data version).
        rows_in: Rows ingested.
        rows_valid: Rows that passed validation.
        rows_quarantined: Rows quarantined.
        metrics: Holdout metrics.
        blessed: The gate's decision.
        reason: The gate's reason.
        model_name: Registered model name.
        registered_version: The version this run registered, or None.
        champion_version: The champion after the run.
        previous_champion_version: The previous champion after the run.
        store: Where outputs and the MLflow store are.
        run_folder: This run's output folder.
        seconds: Wall time of the pipeline run.
        fairness: The fairness document's headline (configured, passed, reason), or {} when absent.
        top_features: The most important input columns (explain stage), most important first; [] when the
            explain task did not run.
        blessing: The gate's whole blessing document (fairness and slices included).
        model: The train stage's Model metadata (decision threshold and policy, train and validation metrics,
            early-stopping iterations, overfitting warning).
        features: The train stage's one-line feature summary (columns used by kind, columns not used and why).
    """

    fingerprint: str
    rows_in: int
    rows_valid: int
    rows_quarantined: int
    metrics: dict[str, float]
    blessed: bool
    reason: str
    model_name: str
    registered_version: str | None
    champion_version: str | None
    previous_champion_version: str | None
    store: LocalStore
    run_folder: Path | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    fairness: dict[str, Any] = field(default_factory=dict)
    top_features: list[str] = field(default_factory=list)
    blessing: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    features: str = ""
    tuning: dict[str, Any] = field(default_factory=dict)

    @property
    def model_card(self) -> Path | None:
        """The model card (HTML) this run wrote for the version it registered, or None."""
        return written_model_card(self.run_folder)

    def _model_lines(self) -> list[str]:
        return _train_lines(self.model, self.metrics)

    def render(self) -> str:
        """The summary as the lines the CLI prints."""
        # Per-class figures (``recall.<class>``) would make the line as long as the classes are many: the line
        # keeps the task's headline metrics; the classes recalled worst follow on their own line.
        metric_text = ", ".join(
            f"{name} {value:.4f}" for name, value in sorted(self.metrics.items()) if "." not in name
        )
        if self.registered_version:
            registered = f"version {self.registered_version} of {self.model_name!r}, alias '{CHAMPION_ALIAS}'"
            if self.previous_champion_version:
                registered += f" ('{PREVIOUS_CHAMPION_ALIAS}' = version {self.previous_champion_version})"
        else:
            registered = f"nothing registered; '{CHAMPION_ALIAS}' of {self.model_name!r} stays " + (
                f"version {self.champion_version}" if self.champion_version else "unset"
            )
        return "\n".join(
            [
                "mlkeel training run summary",
                f"  data fingerprint : {self.fingerprint}",
                f"  validation       : {self.rows_in} rows in, {self.rows_valid} valid, "
                f"{self.rows_quarantined} quarantined",
                *_task_lines(self.model),
                f"  holdout metrics  : {metric_text}",
                *_per_class_lines(self.metrics),
                *self._model_lines(),
                *_tuning_lines(self.tuning),
                f"  features         : {self.features.removeprefix('features: ') or 'not recorded'}",
                f"  fairness         : {self.fairness.get('reason') or 'not checked'}",
                f"  top features     : {', '.join(self.top_features) or 'not computed'}",
                f"  gate             : {self.reason}",
                f"  registry         : {registered}",
                f"  model card       : {self.model_card or 'none (written for registered versions)'}",
                f"  run outputs      : {self.run_folder or self.store.workdir}",
                f"  MLflow store     : {display_uri(self.store.tracking_uri)} "
                f"(artifacts: {self.store.artifact_location})",
                f"  wall time        : {self.seconds:.1f} s",
            ]
        )


def _per_class_lines(metrics: dict[str, float], shown: int = 3) -> list[str]:
    """The classes recalled worst on the holdout, when evaluate scored classes one by one (multiclass)."""
    recalls = sorted(
        (value, name.removeprefix("recall.")) for name, value in metrics.items() if name.startswith("recall.")
    )
    if not recalls:
        return []
    worst = ", ".join(f"{label} {value:.4f}" for value, label in recalls[:shown])
    return [
        f"  per-class recall : lowest {worst} (of {len(recalls)} classes; every class's precision and recall: "
        "the MLflow run, the model card)"
    ]


def _task_lines(model: dict[str, Any]) -> list[str]:
    """The task train fitted for and why (``mlkeel.task``): inferred from the target, or requested."""
    reason = str(model.get("task_reason") or "")
    return [f"  task             : {reason.removeprefix('task: ')}"] if reason else []


def _tuning_lines(tuning: dict[str, Any]) -> list[str]:
    """Summary lines of a search: the chosen trial, its validation score against the baseline, the trials page."""
    if not tuning:
        return []
    if "best_trial" not in tuning:
        return ["  tuning           : no search summary found in MLflow"]
    metric = tuning["metric"]
    baseline = tuning.get("baseline_score")
    chosen = (
        f"trial {tuning['best_trial']} of {tuning['trials']} (seed {tuning['seed']}), validation {metric} "
        f"{tuning['best_score']:.4f} vs baseline " + ("failed" if baseline is None else f"{baseline:.4f}")
    )
    registered = "; recorded on the version (mlkeel.tuning)" if tuning.get("version_tagged") else ""
    return [
        f"  tuning           : {chosen}{registered}",
        f"  tuned parameters : {json.dumps(tuning.get('hyperparameters', {}), sort_keys=True)}",
        f"  trials           : {tuning.get('page') or 'page not found'} (MLflow parent run {tuning['parent_run_id']})",
    ]


def _train_lines(model: dict[str, Any], holdout: dict[str, float]) -> list[str]:
    """Summary lines about the trained model: its decision threshold, train vs validation vs holdout, warnings."""
    from mlkeel.metrics import overfit_warning

    if ArtifactMetadata.DECISION_THRESHOLD not in model:
        return []
    policy = model.get(ArtifactMetadata.THRESHOLD_POLICY)
    threshold = f"{float(model[ArtifactMetadata.DECISION_THRESHOLD]):.4f} (policy {policy})"
    if model.get(ArtifactMetadata.THRESHOLD_NOTE):
        threshold += f"; {model[ArtifactMetadata.THRESHOLD_NOTE]}"
    scores = [f"train {float(model['train_roc_auc']):.4f}"] if "train_roc_auc" in model else []
    if "validation_roc_auc" in model:
        scores.append(f"validation {float(model['validation_roc_auc']):.4f}")
    if "roc_auc" in holdout:
        scores.append(f"holdout {holdout['roc_auc']:.4f}")
    fit = f"roc_auc {', '.join(scores)}"
    if model.get(ArtifactMetadata.ITERATIONS) is not None:
        fit += f"; early stopping after {int(float(model[ArtifactMetadata.ITERATIONS]))} boosting iterations"
    lines = [f"  threshold        : {threshold}", f"  train vs unseen  : {fit}"]
    warnings = [str(model.get(ArtifactMetadata.OVERFIT_WARNING) or "")]
    if "train_roc_auc" in model and "roc_auc" in holdout:
        warnings.append(overfit_warning(float(model["train_roc_auc"]), holdout["roc_auc"], "holdout"))
    lines += [f"  WARNING          : {text}" for text in warnings if text]
    return lines


def init_runner(store: LocalStore, runner: str = DEFAULT_RUNNER, experiment_name: str = "") -> None:
    """Start a kfp.local session whose pipeline root is the work folder.

    Args:
        store: The local store.
        runner: One of ``RUNNERS`` (``RUNNER_HELP`` says what each does); ``warm`` runs the tasks with kfp.local's
            SubprocessRunner, like ``subprocess``, and needs ``task_python`` open around the run.
        experiment_name: The run's MLflow experiment (the Docker runner mounts its artifact folder).

    Raises:
        ParameterError: unknown runner, or the Docker runner's containers could not write the local MLflow store
            (``mlkeel.docker_runner.prepare_store_folders``): before any task starts.
    """
    from kfp import local

    if runner in ("warm", "subprocess"):
        chosen: Any = local.SubprocessRunner(use_venv=False)
    elif runner == "docker":
        from mlkeel.docker_runner import docker_runner

        chosen = docker_runner(store.workdir, store.tracking_uri, experiment_name)
    else:
        raise ParameterError(f"unknown runner {runner!r}: expected one of {', '.join(RUNNERS)}")
    # The subprocess runner warns that image names without "python" may not be Python images; ours are.
    warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
    local.init(runner=chosen, pipeline_root=str(store.workdir), raise_on_error=True)


def _newest_run_folder(workdir: Path, pipeline_name: str, started: float) -> Path | None:
    candidates = [
        path for path in workdir.glob(f"{pipeline_name}-*") if path.is_dir() and path.stat().st_mtime >= started - 1
    ]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


def _alias_version(client: Any, model_name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


@contextlib.contextmanager
def task_python(runner: str, warm_modules: tuple[str, ...]) -> Iterator[None]:
    """Keep a warm Python (``mlkeel.warm_python``) open around a ``warm`` run; nothing for the other runners.

    Opened first thing in a run, so that its server imports ``warm_modules`` while the run prepares its store.
    Where the platform cannot fork a server, the tasks run in fresh interpreters (as ``subprocess``).

    Args:
        runner: The run's runner.
        warm_modules: What the warm server imports.
    """
    if runner != "warm":
        yield
    elif not available():
        logger.warning("this platform cannot fork a warm Python: each task starts a fresh interpreter")
        yield
    else:
        with warm_python(warm_modules):
            yield


def execute_pipeline(
    pipeline: Any, arguments: dict[str, Any], store: LocalStore, runner: str, verbose: bool = False
) -> tuple[dict[str, Any], float, float]:
    """Run ``pipeline`` under kfp.local against ``store``, one line per task; a failed task is ``PipelineRunFailed``.

    kfp.local's whole output goes to ``run.log`` in the run's folder (``mlkeel.progress``).

    Args:
        pipeline: A ``@dsl.pipeline`` function.
        arguments: Its parameters; ``mlflow_tracking_uri`` is set to the store's.
        store: The local store (pipeline root and MLflow).
        runner: ``warm``, ``subprocess`` or ``docker`` (see ``init_runner``; ``warm`` inside ``task_python``).
        verbose: Also stream kfp.local's whole output (task logs), as kfp.local prints it.

    Returns:
        ``(pipeline outputs, start time, wall seconds)``: the time counts from the pipeline's start, once the
        store is ready.

    Raises:
        PipelineRunFailed: a task failed; the message names the first that did, its error line and the log.
    """
    from mlkeel.progress import ANSI, follow_run

    arguments = {**arguments, "mlflow_tracking_uri": store.tracking_uri}
    experiment_name = arguments.get("experiment_name", "mlkeel-churn")
    store.ensure_experiment(experiment_name)
    init_runner(store, runner, experiment_name)
    started = time.time()
    with follow_run(verbose=verbose) as follower:
        try:
            task = pipeline(**arguments)
        except RuntimeError as error:
            if follower.first_failure:  # not kfp.local's "Inner task failed: 'a' inside 'b'" nesting
                raise PipelineRunFailed(str(follower.first_failure)) from error
            where = f"; the run's log: {follower.log_path}" if follower.log_path else ""
            raise PipelineRunFailed(ANSI.sub("", str(error)) + where) from error
    return task.outputs, started, time.time() - started


def run_training(
    arguments: dict[str, Any],
    workdir: str | Path = DEFAULT_WORKDIR,
    tracking_uri: str = "",
    runner: str = DEFAULT_RUNNER,
    verbose: bool = False,
) -> TrainingSummary:
    """Run the training pipeline under kfp.local and summarise it.

    Args:
        arguments: Pipeline parameters (see ``mlkeel.pipelines.training.training_pipeline``); the tracking URI
            is filled in from the store.
        workdir: Work folder for outputs and the local MLflow store.
        tracking_uri: MLflow URI to use instead of the local store ("" = local SQLite store in ``workdir``).
        runner: ``warm``, ``subprocess`` or ``docker`` (see ``init_runner``).
        verbose: Stream kfp.local's whole output instead of one line per task (it goes to ``run.log`` either way).

    Returns:
        The ``TrainingSummary``.

    Raises:
        PipelineRunFailed: a task failed (the message names the first that did and its error).
    """
    from mlkeel.tracking import connect

    tuned = int(arguments.get("tune_trials", 0)) > 0
    if not tuned:
        arguments = {name: value for name, value in arguments.items() if name not in TUNING_ONLY_PARAMETERS}
    from mlkeel.submit import typed_arguments

    arguments = typed_arguments("tuning" if tuned else "training", arguments)  # a wrong type fails here, in a line
    with task_python(runner, TRAINING_LIBRARIES):
        if tuned:  # the same tasks plus a search before train (pipelines/tuning.py)
            from mlkeel.pipelines.tuning import tuning_pipeline as pipeline
        else:
            from mlkeel.pipelines.training import training_pipeline as pipeline

        store = LocalStore.create(workdir, tracking_uri)
        outputs, started, seconds = execute_pipeline(pipeline, arguments, store, runner, verbose)
    model_name = arguments.get("model_name", "mlkeel-churn")
    client = connect(store.tracking_uri)
    run_id = outputs["model"].metadata.get("mlflow_run_id")
    champion = _alias_version(client, model_name, CHAMPION_ALIAS)
    registered = None
    if outputs["blessed"] and champion is not None and client.get_model_version(model_name, champion).run_id == run_id:
        registered = champion
    run_folder = _newest_run_folder(store.workdir, "mlkeel-tuning" if tuned else "mlkeel-training", started)
    return TrainingSummary(
        fingerprint=outputs["fingerprint"],
        rows_in=int(outputs["rows_in"]),
        rows_valid=int(outputs["rows_valid"]),
        rows_quarantined=int(outputs["rows_quarantined"]),
        metrics={name: float(value) for name, value in outputs["holdout_metrics"].metadata.items()},
        blessed=bool(outputs["blessed"]),
        reason=str(outputs["blessing"].metadata.get("reason", "")),
        model_name=model_name,
        registered_version=registered,
        champion_version=champion,
        previous_champion_version=_alias_version(client, model_name, PREVIOUS_CHAMPION_ALIAS),
        store=store,
        run_folder=run_folder,
        seconds=seconds,
        fairness=dict(outputs["fairness"].metadata),
        top_features=_top_features(run_folder),
        blessing=dict(outputs["blessing"].metadata),
        model=dict(outputs["model"].metadata),
        features=str(outputs["model"].metadata.get("features", "")),
        tuning=(
            _tuning_summary(
                client, arguments.get("experiment_name", "mlkeel-churn"), started, registered, model_name, run_folder
            )
            if tuned
            else {}
        ),
    )


def _tuning_summary(
    client: Any, experiment_name: str, started: float, version: str | None, model_name: str, run_folder: Path | None
) -> dict[str, Any]:
    """What the search chose: its parent run's ``mlkeel.tuning`` tag, the trials page, the version's tag."""
    from mlkeel.components.tune.logic import SEARCH_RUN, STAGE_TAG

    found = client.search_runs(
        [client.get_experiment_by_name(experiment_name).experiment_id],
        f"tags.`{STAGE_TAG}` = '{SEARCH_RUN}' and attributes.start_time >= {int(started * 1000) - 1000}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    recorded = found[0].data.tags.get(LineageTag.TUNING, "") if found else ""
    summary: dict[str, Any] = json.loads(recorded) if recorded else {}
    page = run_folder / "tune-select" / "trials_page" if run_folder else None
    summary["page"] = str(page) if page and page.is_file() else ""
    summary["version_tagged"] = bool(
        version and client.get_model_version(model_name, version).tags.get(LineageTag.TUNING)
    )
    return summary


def _top_features(run_folder: Path | None) -> list[str]:
    """The explain task's five most important features, read from its table in the run folder."""
    from mlkeel.components.explain.logic import top_features
    from mlkeel.storage import read_json

    tables = sorted(run_folder.glob("explain*/importance")) if run_folder else []
    return top_features(read_json(tables[0])) if tables else []


@dataclass
class MonitoringSummary:
    """What a user wants to know after a monitoring run.

    Attributes:
        model_name: The monitored registered model.
        champion_before: The champion that was monitored (models:/NAME/VERSION).
        is_drift: Whether the batch drifted.
        drifted_features: The features that drifted.
        degraded: Whether the live metric dropped past the limit.
        performance_reason: The performance stage's one-sentence reason.
        champion_after: The champion version after the run (a retrain may have replaced it).
        store: Where outputs and the MLflow store are.
        run_folder: This run's output folder.
        seconds: Wall time of the pipeline run.
        predictions: The prediction drift line (the champion's answers, reference vs batch; reported, not
            deciding), "" when the drift step did not compare predictions.
    """

    model_name: str
    champion_before: str
    is_drift: bool
    drifted_features: list[str]
    degraded: bool
    performance_reason: str
    champion_after: str | None
    store: LocalStore
    run_folder: Path | None
    seconds: float
    predictions: str = ""

    @property
    def retrained(self) -> bool:
        """Whether the retraining branch ran (drift or degradation)."""
        return self.is_drift or self.degraded

    @property
    def model_card(self) -> Path | None:
        """The model card (HTML) this run wrote for the version it registered, or None."""
        return written_model_card(self.run_folder)

    @property
    def metrics_pushed(self) -> bool | None:
        """Whether the push_metrics task pushed the figures; None when it did not run (no Pushgateway)."""
        output = self.run_folder / "push-metrics" / "executor_output.json" if self.run_folder else None
        if output is None or not output.is_file():
            return None
        return bool(json.loads(output.read_text(encoding="utf-8")).get("parameterValues", {}).get("Output"))

    def render(self) -> str:
        """The summary as the lines the CLI prints."""
        before = self.champion_before.rsplit("/", 1)[-1]
        if not self.retrained:
            outcome = "not needed"
        elif self.champion_after != before:
            outcome = f"ran; the retrained model is the new champion, version {self.champion_after}"
        else:
            outcome = f"ran; the retrained model did not pass the gate, version {before} stays champion"
        drifted = ", ".join(self.drifted_features) or "none"
        pushed = {
            None: "not configured (--pushgateway)",
            True: "pushed to the Pushgateway",
            False: "FAILED, the run went on without it (the push-metrics task's log says why)",
        }[self.metrics_pushed]
        return "\n".join(
            [
                "mlkeel monitoring run summary",
                f"  champion         : {self.champion_before}",
                f"  drift            : {'DRIFT' if self.is_drift else 'no drift'} (drifted features: {drifted})",
                *([f"  predictions      : {self.predictions}"] if self.predictions else []),
                f"  performance      : {self.performance_reason}",
                f"  retraining       : {outcome}",
                f"  metrics push     : {pushed}",
                f"  run outputs      : {self.run_folder or self.store.workdir}",
                f"  MLflow store     : {display_uri(self.store.tracking_uri)}",
                f"  wall time        : {self.seconds:.1f} s",
            ]
        )


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported here, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # sys.modules holds None for it: importing it fails
        return False


def require_monitoring_libraries(runner: str) -> None:
    """Refuse a monitoring run whose drift task cannot run with this runner, before any task starts.

    Args:
        runner: ``warm``, ``subprocess`` or ``docker``: the first two run tasks with this interpreter, which
            needs alibi-detect (the ``drift`` extra; absent on Python 3.13); the drift image has it.

    Raises:
        MissingExtraError: alibi-detect cannot be imported here (the message names the extra and why).
    """
    if runner != "docker" and not _importable("alibi_detect"):
        from mlkeel.components.drift.logic import require_alibi_detect

        require_alibi_detect()


def run_monitoring(
    arguments: dict[str, Any],
    workdir: str | Path = DEFAULT_WORKDIR,
    tracking_uri: str = "",
    runner: str = DEFAULT_RUNNER,
    verbose: bool = False,
) -> MonitoringSummary:
    """Run the monitoring pipeline under kfp.local and summarise it.

    Args:
        arguments: Pipeline parameters (see ``mlkeel.pipelines.monitoring.monitoring_pipeline``).
        workdir: Work folder for outputs and the local MLflow store.
        tracking_uri: MLflow URI to use instead of the local store.
        runner: ``warm``, ``subprocess`` or ``docker`` (see ``init_runner``).
        verbose: Stream kfp.local's whole output instead of one line per task (it goes to ``run.log`` either way).

    Returns:
        The ``MonitoringSummary``.

    Raises:
        PipelineRunFailed: a task failed (the message names the first that did and its error).
        MissingExtraError: a runner other than ``docker`` on an interpreter without alibi-detect (Python 3.13):
            refused before any task starts, naming the extra.
    """
    from mlkeel.submit import typed_arguments
    from mlkeel.tracking import connect

    require_monitoring_libraries(runner)
    arguments = typed_arguments("monitoring", arguments)  # a wrong type fails here, in a line
    with task_python(runner, MONITORING_LIBRARIES):
        from mlkeel.pipelines.monitoring import monitoring_pipeline

        store = LocalStore.create(workdir, tracking_uri)
        outputs, started, seconds = execute_pipeline(monitoring_pipeline, arguments, store, runner, verbose)
    model_name = arguments.get("model_name", "mlkeel-churn")
    drift_metadata = outputs["drift_result"].metadata
    return MonitoringSummary(
        model_name=model_name,
        champion_before=str(outputs["champion_model_uri"]),
        is_drift=bool(outputs["is_drift"]),
        drifted_features=list(drift_metadata.get("drifted_features", [])),
        degraded=bool(outputs["degraded"]),
        performance_reason=str(outputs["performance_result"].metadata.get("reason", "")),
        champion_after=_alias_version(connect(store.tracking_uri), model_name, CHAMPION_ALIAS),
        store=store,
        run_folder=_newest_run_folder(store.workdir, "mlkeel-monitoring", started),
        seconds=seconds,
        predictions=str(drift_metadata.get("predictions", "")),
    )
