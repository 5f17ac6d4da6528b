"""The whole flow on a real kind cluster: `make kind-up`, submit training to KFP, deploy the champion, predict.

Runs where ``kind``, ``docker`` and ``kubectl`` exist (about 20-30 minutes: KFP's images are pulled from the
internet); skips elsewhere with the reason. This machine has none of them running a cluster, so it has never
run here: see the README's "Kubernetes and kind" section for what was verified where.

Environment: ``MLKEEL_KIND_KEEP=1`` keeps the cluster afterwards (default: deleted when this test created it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlkeel.cluster.controlplane import free_port

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "mlkeel-e2e"
MODEL_NAME = "mlkeel-churn"  # the training pipeline's default model_name
NAMESPACE = "mlkeel-serving"
MISSING = [tool for tool in ("kind", "docker", "kubectl") if shutil.which(tool) is None]

pytestmark = [
    pytest.mark.kind,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"the kind end-to-end test needs kind, docker and kubectl (missing here: {', '.join(MISSING)})",
    ),
]


@contextmanager
def port_forward(namespace: str, target: str, remote_port: int) -> Iterator[str]:
    """``kubectl port-forward`` to a local port; yields ``http://127.0.0.1:PORT``."""
    port = free_port()
    process = subprocess.Popen(
        ["kubectl", "--context", f"kind-{CLUSTER}", "-n", namespace, "port-forward", target, f"{port}:{remote_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _run(*command: str, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    assert completed.returncode == 0, (
        f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )
    return completed


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    existed = CLUSTER in subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True).stdout.split()
    _run(
        "bash",
        "scripts/kind_up.sh",
        timeout=3600,
        env={"CLUSTER": CLUSTER, "MLKEEL": str(Path(sys.executable).parent / "mlkeel")},
    )
    yield CLUSTER
    if not existed and os.environ.get("MLKEEL_KIND_KEEP") != "1":
        subprocess.run(["kind", "delete", "cluster", "--name", CLUSTER], check=False, timeout=600)


def test_train_on_kfp_deploy_the_champion_and_predict(cluster: str) -> None:
    import kfp

    mlkeel = str(Path(sys.executable).parent / "mlkeel")
    with port_forward("kubeflow", "svc/ml-pipeline-ui", 80) as kfp_host:
        submitted = _run(mlkeel, "submit", "training", "--host", kfp_host, timeout=300).stdout
        run_id = submitted.split("(", 1)[1].split(")", 1)[0]
        run = kfp.Client(host=kfp_host).wait_for_run_completion(run_id, timeout=3600)
        assert run.state == "SUCCEEDED", f"training run {run_id} ended {run.state}"

    with port_forward("mlflow", "svc/mlflow", 5000) as mlflow_uri:
        deployed = _run(
            mlkeel,
            "deploy",
            "--model-name",
            MODEL_NAME,
            "--context",
            f"kind-{cluster}",
            "--tracking-uri",
            mlflow_uri,
            "--replicas",
            "1",
            timeout=900,
        ).stdout
        result = json.loads(deployed)
        assert result["action"] in ("created", "updated", "unchanged")

        # Same version again: nothing to do.
        again = json.loads(
            _run(
                mlkeel, "deploy", "--model-name", MODEL_NAME, "--context", f"kind-{cluster}",
                "--tracking-uri", mlflow_uri, "--replicas", "1", timeout=300,
            ).stdout
        )  # fmt: skip
        assert again["action"] == "unchanged"

    import pandas as pd

    from mlkeel.data import TELCO_CHURN_CSV, TELCO_CHURN_TARGET

    records = pd.read_csv(TELCO_CHURN_CSV, nrows=3).drop(columns=[TELCO_CHURN_TARGET]).to_dict(orient="records")
    with port_forward(NAMESPACE, f"svc/{result['service']}", 8080) as serving:
        request = urllib.request.Request(
            f"{serving}/predict",
            data=json.dumps({"records": records}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            answer = json.loads(response.read())
    assert len(answer["predictions"]) == 3
