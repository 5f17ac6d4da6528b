"""The serving image: a container started on a read-only model store, hit from the host like a real client."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlkeel import imagebuild
from mlkeel.components.gate.logic import decide
from mlkeel.components.register.logic import register
from mlkeel.components.serve.logic import http_call, json_records, wait_until_ok
from mlkeel.modeling import load_sklearn_model, model_feature_columns, positive_scores
from mlkeel.prediction_log import read_prediction_logs

pytestmark = pytest.mark.docker

CONTAINER_PORT = 8080
CONTAINER_LOG_DIR = "/home/mlkeel/prediction-log"
READY_TIMEOUT_S = 180
BLESSED = decide({"roc_auc": 0.84}, thresholds={"roc_auc": 0.75}, no_comparison_reason="no model is registered yet")


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and completed.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {completed.returncode}:\n{completed.stderr[-3000:]}")
    return completed


@pytest.fixture(scope="module")
def serve_image() -> str:
    """The serve image only, built offline (reused when up to date)."""
    return imagebuild.build_all(offline=True, stages=["serve"])[0].tags[0]


def _readable_by_everyone(root: Path) -> None:
    """pytest's tmp folders are 0700; the container's uid 1000 must read the store."""
    for path in [root, *root.rglob("*")]:
        extra = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
        path.chmod(path.stat().st_mode | extra)
    for parent in root.parents:
        if parent == Path(parent.anchor):
            break
        parent.chmod(parent.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)


@pytest.fixture
def container(
    serve_image: str, mlflow_local_uri: str, train_telco, model_name: str, tmp_path: Path
) -> Iterator[tuple[str, str, Path]]:
    """The serving container on ``models:/NAME@champion``; yields (container id, base URL, host log folder)."""
    register(train_telco(mlflow_local_uri, "strong").model_uri, BLESSED, model_name, mlflow_local_uri)
    store = Path(mlflow_local_uri.removeprefix("sqlite:///")).parent
    _readable_by_everyone(store)
    log_dir = tmp_path / "prediction-log"
    log_dir.mkdir()
    log_dir.chmod(0o777)  # written by the container's uid 1000
    # The store is mounted read-only at its own absolute path: the registry records artifact URIs by that path.
    started = docker(
        "run", "--detach",
        "--volume", f"{store}:{store}:ro",
        "--volume", f"{log_dir}:{CONTAINER_LOG_DIR}",
        "--publish", f"127.0.0.1::{CONTAINER_PORT}",
        "--env", f"MLFLOW_TRACKING_URI={mlflow_local_uri}",
        "--env", "MLFLOW_DISABLE_TELEMETRY=true",
        serve_image,
        "python", "-m", "mlkeel.components.serve", "--model", f"models:/{model_name}@champion",
        "--host", "0.0.0.0", "--port", str(CONTAINER_PORT), "--prediction-log", CONTAINER_LOG_DIR,
    )  # fmt: skip
    identifier = started.stdout.strip()
    try:
        host_port = docker("port", identifier, str(CONTAINER_PORT)).stdout.split()[0].rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{host_port}"

        def running() -> bool:
            return docker("inspect", "--format", "{{.State.Running}}", identifier).stdout.strip() == "true"

        if not wait_until_ok(f"{base}/readyz", READY_TIMEOUT_S, running, interval=0.5):
            pytest.fail(f"serving container not ready:\n{docker('logs', identifier).stderr[-3000:]}")
        yield identifier, base, log_dir
    finally:
        docker("rm", "--force", identifier, check=False)


def test_the_serving_container_predicts_refuses_bad_payloads_counts_and_logs_as_a_non_root_user(
    container: tuple[str, str, Path], telco_split: tuple[Path, Path], train_telco, mlflow_local_uri: str
) -> None:
    import pyarrow.parquet as pq

    identifier, base, log_dir = container
    model = load_sklearn_model(str(train_telco(mlflow_local_uri, "strong").model_dir))
    columns = model_feature_columns(model)
    rows = pq.read_table(telco_split[1]).slice(0, 30)
    records = json_records(rows.select(columns))

    status, body = http_call(f"{base}/predict", json.dumps({"records": records}).encode())
    assert status == 200, body
    served = [item["probability"] for item in json.loads(body)["predictions"]]
    expected = positive_scores(model, rows.to_pandas()[columns]).tolist()
    assert served == pytest.approx(expected, abs=1e-12)

    malformed = {
        "non-JSON": b"records: tenure=1",
        "wrong type": json.dumps({"records": [{**records[0], "MonthlyCharges": "high"}]}).encode(),
        "missing field": json.dumps({"records": [{k: v for k, v in records[0].items() if k != "tenure"}]}).encode(),
        "extra field": json.dumps({"records": [{**records[0], "shoe_size": 44}]}).encode(),
        "empty list": json.dumps({"records": []}).encode(),
        "oversized body": json.dumps({"records": records * 1000}).encode(),
    }
    expected_text = {
        "non-JSON": "not valid JSON",
        "wrong type": "records[0].MonthlyCharges: expected a number, got a string",
        "missing field": "records[0]: missing field(s) 'tenure'",
        "extra field": "records[0]: unknown field(s) 'shoe_size'",
        "empty list": "the list is empty",
        "oversized body": "exceeds the limit of 1048576 bytes",
    }
    for name, payload in malformed.items():
        status, body = http_call(f"{base}/predict", payload)
        assert 400 <= status < 500, (name, status, body)
        assert expected_text[name] in json.loads(body)["error"], (name, body)

    text = http_call(f"{base}/metrics")[1].decode()
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    predict_requests = {
        sample.labels["status"]: sample.value
        for sample in samples
        if sample.name == "mlkeel_serve_requests_total" and sample.labels["endpoint"] == "/predict"
    }
    assert predict_requests == {"200": 1, "400": 1, "413": 1, "422": 4}
    by_class = {s.labels["predicted_class"]: s.value for s in samples if s.name == "mlkeel_serve_predictions_total"}
    positives = sum(probability >= 0.5 for probability in served)
    assert by_class == {"1": positives, "0": 30 - positives} and 0 < positives < 30

    assert docker("exec", identifier, "id", "-u").stdout.strip() == "1000"
    assert "8080/tcp" in json.loads(docker("inspect", identifier).stdout)[0]["Config"]["ExposedPorts"]
    docker("stop", "--time", "30", identifier)  # SIGTERM: the buffered log rows are written before exit
    # uvicorn shuts down cleanly, then re-raises the signal it caught, which PID 1 ignores: a clean exit 0.
    assert docker("inspect", "--format", "{{.State.ExitCode}}", identifier).stdout.strip() == "0"
    log = read_prediction_logs(log_dir)
    assert log.num_rows == 30
    assert set(log.column("model_version").to_pylist()) == {"1"}
    assert all(os.stat(path).st_uid == 1000 for path in log_dir.rglob("*.parquet"))
