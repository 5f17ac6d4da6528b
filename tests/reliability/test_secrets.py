"""No secret in compiled YAML or in what a stage prints or records.

Canary values stand in for credentials: set in the environment while compiling and while stages run (in the
tracking URI's user-info, ``MLFLOW_TRACKING_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``, an object-store URI), they
must never show up in a YAML file, a log line, an error message or a registry tag. Images are checked for
credential files by ``tests/docker/test_images.py``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlkeel.compiler import run_compiler
from mlkeel.components.gate.logic import Blessing
from tests.fixtures_mlflow import WEAK_MODEL

ROOT = Path(__file__).resolve().parents[2]
CANARY_PASSWORD = "canaryPw-7f3a9c1e"
CANARY_TOKEN = "canaryTok-51d0b2aa"
CANARY_AWS = "canaryAws-c4e8f6d2"
CANARIES = (CANARY_PASSWORD, CANARY_TOKEN, CANARY_AWS)
# What a credential looks like in text: key = value pairs, user:password@ in URLs, AWS access key ids. A
# Kubernetes Secret *reference* (kfp-kubernetes' secretName/secretKey: which Secret, never its value) is not one.
SECRET_PATTERNS = [
    re.compile(
        r"(?i)(?<![a-z0-9])(?!secret_?(name|key)(parameter)?\b)(password|passwd|secret|token|api[_-]?key|access[_-]?key)[\w-]*"
        r"[ \t]*[:=][ \t]*['\"]?[^\s'\"]{6,}"
    ),
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]+@"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
]


def canary_environment(tracking_uri: str = "") -> dict[str, str]:
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_USERNAME": "mlkeel",
        "MLFLOW_TRACKING_PASSWORD": CANARY_TOKEN,
        "AWS_ACCESS_KEY_ID": "mlkeel-canary",
        "AWS_SECRET_ACCESS_KEY": CANARY_AWS,
    }
    if tracking_uri:
        environment["MLFLOW_TRACKING_URI"] = tracking_uri
    return environment


def with_password(uri: str) -> str:
    """``http://127.0.0.1:PORT`` -> ``http://mlkeel:<canary>@127.0.0.1:PORT``."""
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://mlkeel:{CANARY_PASSWORD}@{rest}"


def leaks(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


def compiled_files(root: Path) -> list[Path]:
    return sorted([*root.glob("components/*/component.yaml"), *root.glob("pipelines/*.yaml")])


def test_committed_yaml_holds_no_credential() -> None:
    files = compiled_files(ROOT)
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        found = [match.group(0) for pattern in SECRET_PATTERNS for match in pattern.finditer(text)]
        assert not found, f"{path.relative_to(ROOT)}: {found}"


def test_compiling_with_secrets_in_the_environment_keeps_them_out_of_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in canary_environment(with_password("http://127.0.0.1:5000")).items():
        monkeypatch.setenv(name, value)
    run_compiler(tmp_path)
    files = compiled_files(tmp_path)
    assert len(files) == len(compiled_files(ROOT))
    for path in files:
        assert not leaks(path.read_text(encoding="utf-8")), path


@pytest.mark.integration
def test_register_prints_and_records_no_credential(
    mlflow_server: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    trained = train_telco(mlflow_server, "secrets", **WEAK_MODEL)
    blessing = tmp_path / "blessing.json"
    Blessing(True, "Blessed: secrets", "roc_auc", 0.0, 0.6).save(str(blessing))
    command = [
        sys.executable, "-m", "mlkeel.components.register", "--model-uri", trained.model_uri,
        "--blessing", str(blessing), "--model-name", model_name, "--mlflow-run-id", trained.run_id,
    ]  # fmt: skip
    completed = subprocess.run(
        command, env=canary_environment(with_password(mlflow_server)), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert not leaks(completed.stdout + completed.stderr)
    assert json.loads(completed.stdout)["version"] == "1"
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version(model_name, "1")
    assert not leaks(json.dumps([version.tags, version.source, client.get_run(trained.run_id).data.tags]))


def test_an_unreachable_registry_error_names_the_uri_without_its_password(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    blessing = tmp_path / "blessing.json"
    Blessing(True, "Blessed", "roc_auc", 0.0, 0.6).save(str(blessing))
    environment = {
        **canary_environment(with_password(f"http://127.0.0.1:{port}")),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "mlkeel.components.register", "--model-uri", "runs:/0123/model",
         "--blessing", str(blessing), "--model-name", "secrets"],
        env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines()[-1].startswith(f"error: MLflow registry at http://127.0.0.1:{port}:")
    assert not leaks(completed.stdout + completed.stderr), completed.stderr


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://mlkeel:{CANARY_PASSWORD}@bucket/data.csv?endpoint_override=127.0.0.1:1&token={CANARY_TOKEN}",
        f"foo://mlkeel:{CANARY_PASSWORD}@host/data.csv",
    ],
    ids=["bad query parameter", "unknown scheme"],
)
def test_an_object_store_error_names_the_uri_without_its_secrets(uri: str, tmp_path: Path) -> None:
    from mlkeel.components.ingest.cli import main

    result = CliRunner().invoke(main, ["--source", uri, "--output", str(tmp_path / "out.parquet")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "data.csv" in result.stderr
    assert not leaks(result.stderr + result.stdout), result.stderr
