"""Real Prometheus and Pushgateway processes on 127.0.0.1 (Debian's ``prometheus`` and ``prometheus-pushgateway``).

``monitoring_stack`` starts a Pushgateway and a Prometheus that scrapes it (``honor_labels``, as in the cluster)
and any ``mlkeel serve`` a test adds with ``add_serve_target`` (a file_sd file Prometheus watches), every second,
with the alert rules of manifests/monitoring/rules/ loaded and evaluated every second. The rules' ``for:`` are
set to 0s in this copy, so an alert fires at the first evaluation that sees its series; nothing else differs.

Where the binaries are missing the tests skip with that reason; under CI (CI=true) or with
MLKEEL_REQUIRE_PROMETHEUS=1 that is an error instead (.ci/run installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlkeel.cluster.controlplane import free_port, log_tail, stop_process
from mlkeel.components.serve.logic import http_call, wait_until_ok

REPO = Path(__file__).resolve().parent.parent
RULES_FILE = REPO / "manifests" / "monitoring" / "rules" / "mlkeel.rules.yml"
RULES_TEST_FILE = REPO / "manifests" / "monitoring" / "rules" / "mlkeel.rules.test.yml"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
INTERVAL = "1s"


def require_binary(name: str) -> str:
    """The path of ``name`` (a Debian prometheus tool), else skip with the reason (an error under CI)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install prometheus prometheus-pushgateway)"
        if os.environ.get("CI", "").lower() == "true" or os.environ.get("MLKEEL_REQUIRE_PROMETHEUS") == "1":
            raise pytest.UsageError(f"{reason}; CI must run the Prometheus tests: .ci/run installs them")
        pytest.skip(reason)
    return path


def _start(command: list[str], log: Path, ready_url: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    if not wait_until_ok(ready_url, START_TIMEOUT_S, lambda: process.poll() is None):
        _stop(process)
        pytest.fail(f"{command[0]} did not become ready at {ready_url}:\n{log_tail(log)}")
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, STOP_TIMEOUT_S)


def fast_rules(folder: Path) -> Path:
    """A copy of the alert rules with every ``for:`` at 0s (the only difference), for a fast real Prometheus."""
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    path = folder / "mlkeel.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class MonitoringStack:
    """A running Pushgateway and a Prometheus scraping it (and the serve targets a test adds).

    Attributes:
        pushgateway: ``http://127.0.0.1:PORT`` of the Pushgateway.
        prometheus: ``http://127.0.0.1:PORT`` of Prometheus.
        folder: Configuration, data and logs.
        serve_targets: ``host:port`` of the ``mlkeel serve`` processes Prometheus scrapes (job ``mlkeel-serve``).
    """

    pushgateway: str
    prometheus: str
    folder: Path
    serve_targets: list[str] = field(default_factory=list)

    def add_serve_target(self, base: str) -> None:
        """Have Prometheus scrape ``base``'s /metrics (job ``mlkeel-serve``): file_sd picks the file up at once."""
        self.serve_targets.append(urllib.parse.urlsplit(base).netloc)
        targets = [{"targets": self.serve_targets, "labels": {"job": "mlkeel-serve"}}]
        scratch = self.folder / "serve-targets.json.tmp"
        scratch.write_text(json.dumps(targets), encoding="utf-8")
        scratch.replace(self.folder / "serve-targets.json")

    def api(self, path: str, **params: str) -> Any:
        """GET Prometheus's HTTP API ``/api/v1/<path>``; its ``data`` (fails the test on an error status)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_call(f"{self.prometheus}/api/v1/{path}{query}", timeout=10)
        document = json.loads(body)
        assert status == 200 and document.get("status") == "success", f"{path} {params}: {status} {body[:500]!r}"
        return document["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        return list(self.api("query", query=promql)["result"])

    def firing(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        """The firing alerts named ``alertname`` whose labels include ``labels``."""
        return [
            alert
            for alert in self.api("alerts")["alerts"]
            if alert["state"] == "firing"
            and alert["labels"].get("alertname") == alertname
            and all(alert["labels"].get(key) == value for key, value in labels.items())
        ]

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus holds (what the scraped targets and the pushes exported)."""
        return set(self.api("label/__name__/values"))

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert result, (
            f"{what}: not seen within {timeout}s (Prometheus log:\n{log_tail(self.folder / 'prometheus.log')})"
        )
        return result

    def scraped(self, job: str) -> bool:
        """Whether Prometheus has scraped every target of ``job`` successfully at least once."""
        targets = [target for target in self.api("targets")["activeTargets"] if target["labels"].get("job") == job]
        return bool(targets) and all(target["health"] == "up" for target in targets)


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on a free port of 127.0.0.1 (``http://127.0.0.1:PORT``), stopped after the test."""
    binary = require_binary("prometheus-pushgateway")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(
        [binary, f"--web.listen-address=127.0.0.1:{port}"], tmp_path / "pushgateway.log", f"{base}/-/ready"
    )
    try:
        yield base
    finally:
        _stop(process)


@pytest.fixture
def monitoring_stack(pushgateway: str, tmp_path: Path) -> Iterator[MonitoringStack]:
    """``pushgateway`` and a real Prometheus scraping it on a free port of 127.0.0.1, stopped after the test."""
    binary = require_binary("prometheus")
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    stack = MonitoringStack(pushgateway, f"http://127.0.0.1:{port}", folder)
    (folder / "serve-targets.json").write_text("[]", encoding="utf-8")
    config = {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(fast_rules(folder))],
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,  # keep the pushed job and model labels (what the cluster config does)
                "static_configs": [{"targets": [urllib.parse.urlsplit(pushgateway).netloc]}],
            },
            {"job_name": "mlkeel-serve", "file_sd_configs": [{"files": [str(folder / "serve-targets.json")]}]},
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    command = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    process = _start(command, folder / "prometheus.log", f"{stack.prometheus}/-/ready")
    try:
        yield stack
    finally:
        _stop(process)
