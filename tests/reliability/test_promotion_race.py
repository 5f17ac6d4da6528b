"""Drill 3: two gate + register runs at once on one model name, as two real processes against one real server.

MLflow has no compare-and-set; register moves aliases only under its promotion lock and re-reads the champion
there (see the register stage's docstring). Whatever the interleaving: exactly one champion, a
``previous_champion`` that matches the order of promotion, and both runs' decisions recorded.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlkeel.components.gate.logic import Blessing
from mlkeel.components.register.logic import register
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, GateRunMetric, LineageTag, RegistrationState
from mlkeel.data import TELCO_CHURN_POSITIVE_LABEL, TELCO_CHURN_TARGET
from tests.fixtures_mlflow import WEAK_MODEL

pytestmark = pytest.mark.integration


def gate_then_register(trained, holdout: Path, name: str, uri: str, folder: Path) -> subprocess.Popen[str]:
    """Start ``gate && register`` through the stage command lines, as one pipeline run would."""
    folder.mkdir()
    metrics = folder / "metrics.json"
    metrics.write_text(json.dumps(trained.holdout_metrics(holdout)))
    blessing = folder / "blessing.json"
    gate = [
        sys.executable, "-m", "mlkeel.components.gate",
        "--model", str(trained.model_dir), "--test-data", str(holdout), "--metrics-json", str(metrics),
        "--model-name", name, "--target-column", TELCO_CHURN_TARGET, "--positive-label", TELCO_CHURN_POSITIVE_LABEL,
        "--blessing-out", str(blessing), "--margin", "0", "--mlflow-run-id", trained.run_id,
    ]  # fmt: skip
    register_command = [
        sys.executable, "-m", "mlkeel.components.register",
        "--model-uri", trained.model_uri, "--blessing", str(blessing), "--model-name", name,
        "--mlflow-run-id", trained.run_id, "--pipeline-run", folder.name,
    ]  # fmt: skip
    script = f"{subprocess.list2cmdline(gate)} >/dev/null && {subprocess.list2cmdline(register_command)}"
    environment = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLKEEL_GIT_COMMIT": "race0123"}
    return subprocess.Popen(
        ["bash", "-c", script], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_promotions_at_once_leave_one_champion_and_both_decisions(
    mlflow_server: str, train_telco, model_name: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    uri = mlflow_server
    _, holdout = telco_split
    base = train_telco(uri, "race-base", **WEAK_MODEL)
    first = Blessing(True, "Blessed: first version", "roc_auc", 0.0, 0.6)
    assert register(base.model_uri, first, model_name, uri).version == "1"
    challengers = {"a": train_telco(uri, "race-a"), "b": train_telco(uri, "race-b", rows=3000)}

    processes = {
        run: gate_then_register(trained, holdout, model_name, uri, tmp_path / run)
        for run, trained in challengers.items()
    }
    outcomes = {run: (process.wait(timeout=300), *process.communicate()) for run, process in processes.items()}

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = {v.version: v for v in client.search_model_versions(f"name = '{model_name}'")}
    registered = client.get_registered_model(model_name)
    aliases = {alias: str(version) for alias, version in registered.aliases.items()}
    champion = aliases[CHAMPION_ALIAS]
    assert champion in versions and champion != "1", outcomes
    states = {number: v.tags.get(LineageTag.REGISTRATION_STATE) for number, v in versions.items()}
    assert set(states.values()) == {RegistrationState.COMPLETE}, (states, outcomes)
    # previous_champion is the champion the winner replaced, and that one was promoted before it.
    assert aliases[PREVIOUS_CHAMPION_ALIAS] == versions[champion].tags[LineageTag.REPLACED_VERSION]
    promoted = sorted(
        (v for v in versions.values() if v.tags.get(LineageTag.PROMOTION_DECISION, "").startswith("promoted")),
        key=lambda v: int(v.version),
    )
    assert promoted[0].version == "1"
    for before, after in itertools.pairwise(promoted):  # each promotion replaced the one before it
        assert after.tags[LineageTag.REPLACED_VERSION] == before.version
    assert promoted[-1].version == champion
    assert LineageTag.PROMOTION_LOCK not in registered.tags

    for run, (code, stdout, stderr) in outcomes.items():
        run_record = client.get_run(challengers[run].run_id).data
        assert GateRunMetric.BLESSED in run_record.metrics, f"run {run}: the gate's decision is not logged"
        if code == 0:
            result = json.loads(stdout)
            assert run_record.tags[LineageTag.PROMOTION_DECISION].startswith("promoted"), run
            assert versions[result["version"]].tags[LineageTag.PROMOTION_DECISION].startswith("promoted")
        else:
            last = stderr.strip().splitlines()[-1]  # MLflow's own progress lines come before it
            assert code == 1 and last.startswith("error: ") and "Traceback" not in stderr, stderr
            # Refused by the gate (it saw the other's champion), or a stale blessing caught under the lock.
            assert "not blessed" in last.lower() or "not promoted" in last, last
            if "not promoted" in last:
                assert run_record.tags[LineageTag.PROMOTION_DECISION].startswith("not promoted"), run
    assert sum(code == 0 for code, *_ in outcomes.values()) >= 1
