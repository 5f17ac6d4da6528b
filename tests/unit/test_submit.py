"""mlkeel.submit: the real kfp.Client against an in-memory stand-in of the KFP v2beta1 API (tests/kfp_standin.py).

No KFP API server runs here (it needs Kubernetes): these tests show what mlkeel sends and how it decides, not
that a cluster executes the runs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from mlkeel.errors import ParameterError
from mlkeel.submit import (
    ClusterError,
    check_arguments,
    compiled_pipeline_path,
    dedupe_run_name,
    default_version_name,
    drift_event_key,
    kfp_cron,
    schedule_run,
    submit_run,
    upload_version,
)
from tests.kfp_standin import KfpStandIn, compiled_package, spec_of

TRAINING_ARGUMENTS = {"data_uri": "s3://bucket/batch-7.parquet", "model_name": "mlkeel-churn"}
MONITORING_ARGUMENTS = {"current_uri": "s3://bucket/batch-7.parquet", "model_name": "mlkeel-churn"}


@pytest.fixture
def kfp_api() -> Iterator[KfpStandIn]:
    """A started stand-in that accepts the committed compiled YAML of both pipelines."""
    specs = {}
    for name in ("training", "monitoring"):
        package = compiled_package(compiled_pipeline_path(name).read_text(encoding="utf-8"))
        specs[spec_of(package)["pipelineInfo"]["name"]] = package
    standin = KfpStandIn(pipeline_specs=specs).start()
    try:
        yield standin
    finally:
        standin.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_submit_creates_one_run_of_the_compiled_training_pipeline(kfp_api: KfpStandIn) -> None:
    result = submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS, experiment="churn")

    assert result.created
    assert [run["run_id"] for run in kfp_api.runs] == [result.run_id]
    run = kfp_api.runs[0]
    assert spec_of(run["pipeline_spec"])["pipelineInfo"]["name"] == "mlkeel-training"
    # The Secret reference travels with the run (the platform spec), never the tracking URI itself.
    executors = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-train"]["secretAsEnv"][0]["secretName"] == "mlkeel-mlflow"
    assert run["runtime_config"]["parameters"] == TRAINING_ARGUMENTS
    assert [experiment["display_name"] for experiment in kfp_api.experiments] == ["churn"]
    assert result.url == f"{kfp_api.host}/#/runs/details/{result.run_id}"


def test_same_dedupe_key_returns_the_first_run_and_creates_none(kfp_api: KfpStandIn) -> None:
    key = drift_event_key("mlkeel-churn", 3, "9f2c4e")

    first = submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS, dedupe_key=key)
    again = submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS, dedupe_key=key)

    assert first.created and not again.created
    assert again.run_id == first.run_id
    assert again.run_name == first.run_name == dedupe_run_name("training", key)
    assert again.state == "PENDING"
    assert len(kfp_api.runs) == 1
    listed = kfp_api.calls("GET", "/runs")
    assert len(listed) == 2
    assert listed[-1].query["experiment_id"] == kfp_api.experiments[0]["experiment_id"]
    assert '"key": "display_name"' in listed[-1].query["filter"]


def test_a_different_dedupe_key_creates_a_second_run(kfp_api: KfpStandIn) -> None:
    first = submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS, dedupe_key=drift_event_key("m", 3, "aaaa"))
    second = submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS, dedupe_key=drift_event_key("m", 4, "aaaa"))

    assert first.created and second.created
    assert first.run_id != second.run_id
    assert len(kfp_api.runs) == 2


def test_dedupe_is_per_pipeline_name(kfp_api: KfpStandIn) -> None:
    key = drift_event_key("mlkeel-churn", 3, "9f2c4e")

    training = submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS, dedupe_key=key)
    monitoring = submit_run(kfp_api.host, "monitoring", MONITORING_ARGUMENTS, dedupe_key=key)

    assert training.created and monitoring.created
    assert spec_of(kfp_api.runs[1]["pipeline_spec"])["pipelineInfo"]["name"] == "mlkeel-monitoring"


def test_arguments_carry_no_tracking_uri_unless_given(kfp_api: KfpStandIn) -> None:
    submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS)
    submit_run(kfp_api.host, "training", {**TRAINING_ARGUMENTS, "mlflow_tracking_uri": "http://mlflow:5000"})

    sent = [call.body["runtime_config"]["parameters"] for call in kfp_api.calls("POST", "/runs")]
    assert "mlflow_tracking_uri" not in sent[0]
    assert sent[1]["mlflow_tracking_uri"] == "http://mlflow:5000"


def test_a_tracking_uri_with_credentials_is_refused_before_any_request(kfp_api: KfpStandIn) -> None:
    arguments = {**TRAINING_ARGUMENTS, "mlflow_tracking_uri": "https://bob:hunter2@mlflow.example.com"}

    with pytest.raises(ParameterError, match="Secret") as raised:
        submit_run(kfp_api.host, "training", arguments)

    assert "hunter2" not in str(raised.value)
    assert kfp_api.requests == []


def test_unknown_or_missing_parameters_fail_before_any_request(kfp_api: KfpStandIn) -> None:
    with pytest.raises(ParameterError, match="gate_margn"):
        submit_run(kfp_api.host, "training", {"gate_margn": 0.02})
    with pytest.raises(ParameterError, match="current_uri"):
        submit_run(kfp_api.host, "monitoring", {"model_name": "m"})
    with pytest.raises(ParameterError, match="training, monitoring"):
        submit_run(kfp_api.host, "serving", {})
    assert kfp_api.requests == []


def test_arguments_are_typed_as_the_pipeline_declares_them(kfp_api: KfpStandIn) -> None:
    """``--param max_invalid_fraction=0`` means 0.0 (kfp refused the int with a traceback); a wrong type is one
    error naming the parameter, before any request."""
    typed = {"max_invalid_fraction": 0, "seed": 7, "positive_label": 1, "feature_types": {"b": "text", "a": "ignore"}}
    submit_run(kfp_api.host, "training", {**TRAINING_ARGUMENTS, **typed})
    sent = kfp_api.runs[-1]["runtime_config"]["parameters"]
    assert sent["max_invalid_fraction"] == 0.0 and isinstance(sent["max_invalid_fraction"], float)
    assert sent["seed"] == 7 and isinstance(sent["seed"], int)
    assert sent["positive_label"] == "1" and sent["feature_types"] == '{"a": "ignore", "b": "text"}'
    before = len(kfp_api.requests)
    for name, value, told in [("max_invalid_fraction", "abc", "a number"), ("seed", 1.5, "an integer"),
                              ("gate_margin", True, "a number"), ("key_columns", "id", "a JSON list")]:  # fmt: skip
        with pytest.raises(ParameterError, match=rf"pipeline 'training' parameter '{name}' takes {told}, got "):
            submit_run(kfp_api.host, "training", {**TRAINING_ARGUMENTS, name: value})
    assert len(kfp_api.requests) == before


def test_schedule_creates_one_recurring_run_and_is_idempotent_by_name(kfp_api: KfpStandIn) -> None:
    first = schedule_run(kfp_api.host, "monitoring", "0 6 * * *", MONITORING_ARGUMENTS, name="daily-monitoring")
    again = schedule_run(kfp_api.host, "monitoring", "0 6 * * *", MONITORING_ARGUMENTS, name="daily-monitoring")

    assert first.created and not again.created
    assert again.recurring_run_id == first.recurring_run_id
    assert len(kfp_api.recurring_runs) == 1
    recurring = kfp_api.recurring_runs[0]
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 6 * * *"  # 06:00 daily, not minute 6 hourly
    assert recurring["no_catchup"] is True
    assert recurring["runtime_config"]["parameters"] == MONITORING_ARGUMENTS
    assert first.cron == again.cron == "0 0 6 * * *"
    assert kfp_api.runs == []


def test_an_existing_schedule_keeps_its_cron(kfp_api: KfpStandIn) -> None:
    schedule_run(kfp_api.host, "monitoring", "0 6 * * *", MONITORING_ARGUMENTS, name="daily")
    again = schedule_run(kfp_api.host, "monitoring", "30 7 * * *", MONITORING_ARGUMENTS, name="daily")

    assert not again.created
    assert again.cron == "0 0 6 * * *"
    assert len(kfp_api.recurring_runs) == 1


def test_unreachable_host_fails_fast_naming_the_host_without_credentials() -> None:
    port = closed_port()
    started = time.monotonic()

    with pytest.raises(ClusterError) as raised:
        submit_run(f"http://admin:s3cret@127.0.0.1:{port}", "training", TRAINING_ARGUMENTS)

    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_an_api_error_is_a_cluster_error_naming_the_host(kfp_api: KfpStandIn) -> None:
    kfp_api.pipeline_specs.clear()  # the stand-in now refuses every pipeline spec with HTTP 400

    with pytest.raises(ClusterError, match=r"127\.0\.0\.1.*HTTP 400"):
        submit_run(kfp_api.host, "training", TRAINING_ARGUMENTS)


def test_dedupe_names_and_drift_keys_are_stable() -> None:
    key = drift_event_key("mlkeel-churn", "3", "9f2c4e")

    assert key == drift_event_key("mlkeel-churn", 3, "9f2c4e")
    assert key != drift_event_key("mlkeel-churn", 4, "9f2c4e")
    name = dedupe_run_name("training", key)
    assert name.startswith("mlkeel-training-") and len(name) == len("mlkeel-training-") + 16
    assert name == dedupe_run_name("training", key)
    with pytest.raises(ParameterError):
        dedupe_run_name("training", " ")
    with pytest.raises(ParameterError, match="fingerprint"):
        drift_event_key("mlkeel-churn", 3, "")


def test_cron_gets_kfp_seconds_field() -> None:
    assert kfp_cron("0 6 * * *") == "0 0 6 * * *"
    assert kfp_cron("0 0 6 * * *") == "0 0 6 * * *"
    with pytest.raises(ParameterError, match="5 fields"):
        kfp_cron("daily")


def test_upload_creates_the_pipeline_then_adds_named_versions_once_each(kfp_api: KfpStandIn) -> None:
    first = upload_version(kfp_api.host, "training")
    # A new pipeline: KFP creates it with the upload as its first version, named after the pipeline.
    assert (first.created_pipeline, first.created_version) == (True, True)
    assert (first.pipeline_name, first.version_name) == ("mlkeel-training", "mlkeel-training")
    (upload,) = kfp_api.calls("POST", "/pipelines/upload")
    assert upload.query["name"] == "mlkeel-training" and upload.body["uploadfile"]["filename"].endswith(".yaml")
    assert upload.body["uploadfile"]["text"] == compiled_pipeline_path("training").read_text(encoding="utf-8")
    assert kfp_api.pipelines[0]["description"].startswith("Ingest, validate, split, train")

    named = upload_version(kfp_api.host, "training", version_name="churn-2026-12")
    again = upload_version(kfp_api.host, "training", version_name="churn-2026-12")
    hashed = upload_version(kfp_api.host, "training")
    assert (named.created_pipeline, named.created_version) == (False, True)
    assert (again.created_version, again.version_id) == (False, named.version_id)  # reused, not uploaded twice
    assert hashed.version_name == default_version_name("training") and hashed.version_name.startswith("v0.")
    assert [version["display_name"] for version in kfp_api.pipeline_versions] == [
        "mlkeel-training",
        "churn-2026-12",
        default_version_name("training"),
    ]
    assert len(kfp_api.calls("POST", "/pipelines/upload_version")) == 2
    assert all(
        call.query["pipelineid"] == first.pipeline_id for call in kfp_api.calls("POST", "/pipelines/upload_version")
    )
    assert named.url == f"{kfp_api.host}/#/pipelines/details/{first.pipeline_id}/version/{named.version_id}"


def test_a_run_started_from_an_uploaded_version_refers_to_it(kfp_api: KfpStandIn) -> None:
    version = upload_version(kfp_api.host, "monitoring", pipeline_name="churn-monitoring")
    result = submit_run(kfp_api.host, "monitoring", MONITORING_ARGUMENTS, version=version)

    (run,) = kfp_api.runs
    assert result.created and run["run_id"] == result.run_id
    assert run["pipeline_version_reference"] == {
        "pipeline_id": version.pipeline_id,
        "pipeline_version_id": version.version_id,
    }
    assert run["pipeline_spec"] is None  # the run carries the reference, the server holds the spec
    assert run["runtime_config"]["parameters"] == MONITORING_ARGUMENTS


def test_the_cli_uploads_and_runs_or_only_uploads(kfp_api: KfpStandIn) -> None:
    from click.testing import CliRunner

    from mlkeel.cli import main

    runner = CliRunner()
    command = ["submit", "training", "--host", kfp_api.host, "--param", "data_uri=s3://bucket/churn.parquet"]
    uploaded = runner.invoke(main, [*command, "--upload", "--version-name", "first"])
    assert uploaded.exit_code == 0, uploaded.output
    lines = uploaded.stdout.splitlines()
    assert lines[0].startswith("uploaded pipeline 'mlkeel-training' version 'mlkeel-training' (")
    assert lines[2].startswith("submitted run mlkeel-training-")
    assert kfp_api.runs[0]["pipeline_version_reference"]["pipeline_id"] == kfp_api.pipelines[0]["pipeline_id"]

    only = runner.invoke(main, ["submit", "training", "--host", kfp_api.host, "--upload-only", "--version-name", "v2"])
    assert only.exit_code == 0, only.output
    assert only.stdout.splitlines()[0].startswith("uploaded pipeline 'mlkeel-training' version 'v2' (")
    assert len(kfp_api.runs) == 1 and len(kfp_api.pipeline_versions) == 2

    refused = runner.invoke(main, ["submit", "training", "--host", kfp_api.host, "--version-name", "v3"])
    assert refused.exit_code == 1 and "add --upload" in refused.output
    bad = runner.invoke(main, ["submit", "training", "--host", kfp_api.host, "--upload", "--param", "nope=1"])
    assert bad.exit_code == 1 and "has no parameter 'nope'" in bad.output
    assert len(kfp_api.pipeline_versions) == 2  # refused before anything was uploaded


def test_the_stand_in_refuses_what_the_kfp_upload_handlers_refuse(kfp_api: KfpStandIn) -> None:
    import kfp_server_api

    from mlkeel.submit import connect

    client = connect(kfp_api.host)
    package = str(compiled_pipeline_path("training"))
    client.upload_pipeline(package, pipeline_name="taken")
    with pytest.raises(kfp_server_api.ApiException) as duplicate:
        client.upload_pipeline(package, pipeline_name="taken")
    assert duplicate.value.status == 409
    with pytest.raises(kfp_server_api.ApiException) as unknown:
        client.upload_pipeline_version(package, pipeline_version_name="x", pipeline_id="no-such-pipeline")
    assert unknown.value.status == 400


@pytest.mark.parametrize(("task", "metric"), [("multiclass", "macro_f1"), ("regression", "rmse")])
def test_a_non_binary_task_submitted_gets_its_gate_metric_unless_one_is_given(task: str, metric: str) -> None:
    arguments = {"data_uri": "s3://bucket/wine.parquet", "target_column": "cultivar", "task": task}
    checked = check_arguments("training", arguments)
    # The pipeline's default gate (roc_auc >= 0.7) cannot be computed for this task.
    assert checked["gate_metric"] == metric and checked["gate_thresholds"] == {}
    given = check_arguments("training", {**arguments, "gate_metric": "mae", "gate_thresholds": {"r2": 0.3}})
    assert given["gate_metric"] == "mae" and given["gate_thresholds"] == {"r2": 0.3}
    assert "gate_metric" not in check_arguments("training", {**arguments, "task": "binary"})
