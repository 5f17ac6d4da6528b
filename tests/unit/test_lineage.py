"""Lineage by data fingerprint and by version, rollback, and their commands, on a real MLflow SQLite store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlkeel.cli import main as mlkeel_cli
from mlkeel.components.gate.logic import decide
from mlkeel.components.register.logic import register
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, LineageTag, RollbackTag
from mlkeel.errors import NotBlessedError, ParameterError, RegistryError
from mlkeel.lineage import rollback, version_lineage, versions_trained_on
from mlkeel.tracking import git_commit
from tests.fixtures_mlflow import MLFLOW_DEFAULT_ARTIFACT_ROOT_ENV, WEAK_MODEL

METRICS = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}
BLESSED = decide(METRICS, thresholds={"roc_auc": 0.75})
# Two registered models, so lineage has to search across models.
CHURN, RETENTION = "churn", "retention"


def _aliases(uri: str, name: str) -> dict[str, str]:
    from mlflow import MlflowClient

    model = MlflowClient(uri, registry_uri=uri).get_registered_model(name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def _tags(uri: str, name: str, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return dict(MlflowClient(uri, registry_uri=uri).get_model_version(name, version).tags)


@pytest.fixture(scope="module")
def _registry_with_two_data_versions(train_telco, telco_split, telco_fingerprint: str, tmp_path_factory):
    """Five registrations over two data versions, built once: the full Telco train split (A), its first 3,000 rows (B).

    churn:     v1 weak(A), v2 strong(A), v3 model-B(B)     -> champion 3, previous_champion 2
    retention: v1 model-B(B), v2 strong(A)                  -> champion 2, previous_champion 1
    """
    from mlkeel.components.ingest.logic import fingerprint_table
    from mlkeel.components.train.logic import train

    folder = tmp_path_factory.mktemp("lineage") / "mlflow"
    folder.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MLFLOW_DEFAULT_ARTIFACT_ROOT_ENV, (folder / "artifacts").as_uri())
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        train_path, _ = telco_split
        subset = pq.read_table(train_path).slice(0, 3000)
        subset_path = folder.parent / "train-b.parquet"
        pq.write_table(subset, subset_path)
        fingerprint_b = fingerprint_table(subset)
        model_b = train(
            str(subset_path),
            str(folder.parent / "model-b"),
            "Churn",
            "Yes",
            key_columns=["customerID"],
            estimator="logistic_regression",
            tracking_uri=uri,
            experiment_name="mlkeel",
            data_fingerprint=fingerprint_b,
        )
        weak = train_telco(uri, "weak", **WEAK_MODEL)
        strong = train_telco(uri, "strong")
        for run, (name, model_uri) in enumerate(
            [
                (CHURN, weak.model_uri),
                (CHURN, strong.model_uri),
                (CHURN, model_b.mlflow_model_uri),
                (RETENTION, model_b.mlflow_model_uri),
                (RETENTION, strong.model_uri),
            ]
        ):
            register(model_uri, BLESSED, name, uri, pipeline_name="mlkeel-training", pipeline_run=f"run-{run}")
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    return {
        "db": folder / "mlflow.db",
        "A": telco_fingerprint,
        "B": fingerprint_b,
        "strong": strong,
        "weak": weak,
        "model_b": model_b,
    }


@pytest.fixture
def two_data_versions(_registry_with_two_data_versions, mlflow_local_uri: str):
    """The registry above, copied into this test's store (the copy's versions point at the same artifacts)."""
    shutil.copyfile(_registry_with_two_data_versions["db"], mlflow_local_uri.removeprefix("sqlite:///"))
    return _registry_with_two_data_versions


def test_lineage_by_data_finds_exactly_the_versions_trained_on_each_data_version(
    two_data_versions, mlflow_local_uri: str
) -> None:
    data_a, data_b = two_data_versions["A"], two_data_versions["B"]
    assert data_a != data_b

    on_a = versions_trained_on(data_a, mlflow_local_uri)
    on_b = versions_trained_on(data_b, mlflow_local_uri)

    assert [(r.model_name, r.version) for r in on_a] == [(CHURN, "1"), (CHURN, "2"), (RETENTION, "2")]
    assert [(r.model_name, r.version) for r in on_b] == [(CHURN, "3"), (RETENTION, "1")]
    assert {(r.model_name, r.version): r.aliases for r in on_a + on_b} == {
        (CHURN, "1"): [],
        (CHURN, "2"): [PREVIOUS_CHAMPION_ALIAS],
        (CHURN, "3"): [CHAMPION_ALIAS],
        (RETENTION, "1"): [PREVIOUS_CHAMPION_ALIAS],
        (RETENTION, "2"): [CHAMPION_ALIAS],
    }
    assert on_b[0].run_id == two_data_versions["model_b"].mlflow_run_id
    assert on_a[-1].run_id == two_data_versions["strong"].run_id
    assert all(r.created.endswith("+00:00") for r in on_a + on_b)
    assert versions_trained_on("sha256:" + "0" * 64, mlflow_local_uri) == []
    with pytest.raises(ParameterError, match="expected a data fingerprint"):
        versions_trained_on("sha256:x' OR name = 'churn", mlflow_local_uri)


def test_lineage_of_a_version_has_every_recorded_fact(two_data_versions, mlflow_local_uri: str) -> None:
    facts = version_lineage(f"{CHURN}/2", mlflow_local_uri)
    tags = _tags(mlflow_local_uri, CHURN, "2")

    assert facts["data_fingerprint"] == two_data_versions["A"]
    assert facts["schema_hash"] == tags[LineageTag.SCHEMA_HASH] and facts["schema_hash"].startswith("sha256:")
    assert facts["git_commit"] == git_commit()
    assert facts["pipeline_name"] == "mlkeel-training" and facts["pipeline_run"] == "run-1"
    assert facts["library_versions"]["scikit-learn"].count(".") >= 1
    assert facts["images"] == {}  # trained and registered outside any image
    assert facts["run_id"] == two_data_versions["strong"].run_id
    assert facts["aliases"] == [PREVIOUS_CHAMPION_ALIAS]
    assert "train_roc_auc" in facts["metrics"]
    assert version_lineage(f"{CHURN}@{CHAMPION_ALIAS}", mlflow_local_uri)["version"] == "3"


def test_the_image_a_stage_ran_in_is_recorded_in_the_lineage(
    two_data_versions, mlflow_local_uri: str, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = two_data_versions["weak"]
    monkeypatch.setenv("MLKEEL_IMAGE", "ghcr.io/acme/register:0.1.0-0123456789ab")
    register(trained.model_uri, BLESSED, model_name, mlflow_local_uri)
    assert version_lineage(f"{model_name}/1", mlflow_local_uri)["images"] == {
        "register": "ghcr.io/acme/register:0.1.0-0123456789ab"
    }


def test_rollback_then_a_new_registration_leaves_one_champion_and_a_consistent_previous(
    two_data_versions, mlflow_local_uri: str, train_telco
) -> None:
    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "3", PREVIOUS_CHAMPION_ALIAS: "2"}

    result = rollback(CHURN, mlflow_local_uri, reason="batch B was corrupted", by="alice")

    assert (result.from_version, result.to_version, result.by) == ("3", "2", "alice")
    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "2", PREVIOUS_CHAMPION_ALIAS: "3"}
    for version, role in (("3", "demoted"), ("2", "restored")):
        tags = _tags(mlflow_local_uri, CHURN, version)
        assert tags[RollbackTag.BY] == "alice"
        assert tags[RollbackTag.REASON] == "batch B was corrupted"
        assert tags[RollbackTag.AT] == result.at and result.at.endswith("+00:00")
        assert tags[RollbackTag.ROLE] == role
        assert (tags[RollbackTag.FROM_VERSION], tags[RollbackTag.TO_VERSION]) == ("3", "2")

    # A new training (new parameters: re-registering an existing model would be an idempotent no-op) registers
    # through the register stage, as a pipeline run would.
    retrained = train_telco(mlflow_local_uri, "retrained", hyperparameters={"C": 0.5})
    new = register(retrained.model_uri, BLESSED, CHURN, mlflow_local_uri)

    assert new.version == "4" and new.previous_champion_version == "2"
    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "4", PREVIOUS_CHAMPION_ALIAS: "2"}
    champions = [
        record.version
        for data in ("A", "B")
        for record in versions_trained_on(two_data_versions[data], mlflow_local_uri)
        if record.model_name == CHURN and CHAMPION_ALIAS in record.aliases
    ]
    assert champions == ["4"]
    # The rolled-back version keeps its record; the other model is untouched.
    assert _tags(mlflow_local_uri, CHURN, "3")[RollbackTag.ROLE] == "demoted"
    assert _aliases(mlflow_local_uri, RETENTION) == {CHAMPION_ALIAS: "2", PREVIOUS_CHAMPION_ALIAS: "1"}


def test_rollback_to_a_named_version_and_its_errors(two_data_versions, mlflow_local_uri: str) -> None:
    result = rollback(CHURN, mlflow_local_uri, to_version="1")
    assert (result.from_version, result.to_version) == ("3", "1")
    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "1", PREVIOUS_CHAMPION_ALIAS: "3"}

    with pytest.raises(RegistryError, match="no registered model named 'nope'"):
        rollback("nope", mlflow_local_uri)
    with pytest.raises(RegistryError, match="has no version 99"):
        rollback(CHURN, mlflow_local_uri, to_version="99")
    with pytest.raises(ParameterError, match="is the champion already"):
        rollback(CHURN, mlflow_local_uri, to_version="1")
    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "1", PREVIOUS_CHAMPION_ALIAS: "3"}


def test_rollback_without_a_previous_champion_changes_nothing(
    two_data_versions, mlflow_local_uri: str, model_name: str
) -> None:
    register(two_data_versions["weak"].model_uri, BLESSED, model_name, mlflow_local_uri)
    with pytest.raises(RegistryError, match="has no 'previous_champion' alias"):
        rollback(model_name, mlflow_local_uri)
    assert _aliases(mlflow_local_uri, model_name) == {CHAMPION_ALIAS: "1"}


def test_lineage_and_rollback_commands(two_data_versions, mlflow_local_uri: str) -> None:
    runner = CliRunner()
    uri = ["--mlflow-uri", mlflow_local_uri]

    table = runner.invoke(mlkeel_cli, ["lineage", "--data", two_data_versions["B"], *uri])
    assert table.exit_code == 0, table.output
    assert "2 version(s) trained on" in table.stdout
    assert [line.split()[:3] for line in table.stdout.splitlines()[3:]] == [
        [CHURN, "3", CHAMPION_ALIAS],
        [RETENTION, "1", PREVIOUS_CHAMPION_ALIAS],
    ]
    as_json = runner.invoke(mlkeel_cli, ["lineage", "--data", two_data_versions["A"], "--json", *uri])
    assert [(r["model_name"], r["version"]) for r in json.loads(as_json.stdout)] == [
        (CHURN, "1"),
        (CHURN, "2"),
        (RETENTION, "2"),
    ]

    model = runner.invoke(mlkeel_cli, ["lineage", "--model", f"{CHURN}/3", *uri])
    assert model.exit_code == 0, model.output
    lines = {label.strip(): value for label, value in (line.split(" : ", 1) for line in model.stdout.splitlines())}
    assert lines["data fingerprint"] == two_data_versions["B"]
    assert lines["git commit"] == git_commit()
    assert lines["pipeline run"] == "run-2"
    assert lines["training run"] == two_data_versions["model_b"].mlflow_run_id
    assert "scikit-learn=" in lines["library versions"]
    assert lines["images"] == "not run in an mlkeel image"

    rolled = runner.invoke(mlkeel_cli, ["rollback", CHURN, "--reason", "bad batch", "--by", "bob", *uri])
    assert rolled.exit_code == 0, rolled.output
    assert "'champion' is version 2 (was 3)" in rolled.stdout and "by bob" in rolled.stdout
    after = json.loads(runner.invoke(mlkeel_cli, ["lineage", "--model", f"{CHURN}/3", "--json", *uri]).stdout)
    assert after["rollback"]["reason"] == "bad batch" and after["aliases"] == [PREVIOUS_CHAMPION_ALIAS]

    for arguments, message in [
        (["rollback", "nope", *uri], "error: no registered model named 'nope'"),
        (["rollback", CHURN, "--to", "42", *uri], f"error: registered model '{CHURN}' has no version 42"),
        (["lineage", "--model", "churn", *uri], "error: --model 'churn': expected NAME/VERSION"),
        (["lineage", *uri], "error: pass exactly one of --data FINGERPRINT or --model NAME/VERSION"),
    ]:
        failed = runner.invoke(mlkeel_cli, arguments)
        assert failed.exit_code == 1, (arguments, failed.output)
        assert failed.stderr.strip() == message or failed.stderr.startswith(message), failed.stderr


def test_commands_without_a_registry_fail_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .mlkeel/mlflow.db here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for arguments in (["rollback", "churn"], ["lineage", "--model", "churn/1"]):
        result = CliRunner().invoke(mlkeel_cli, arguments)
        assert result.exit_code == 1
        assert result.stderr.startswith("error: no MLflow registry: pass --mlflow-uri")
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / ".mlkeel").exists()  # looking for the local store did not create one


def test_rollback_waits_for_a_promotion_in_progress(two_data_versions, mlflow_local_uri: str) -> None:
    import threading
    import time

    from mlflow import MlflowClient

    from mlkeel.components.register.logic import promotion_lock

    client = MlflowClient(mlflow_local_uri, registry_uri=mlflow_local_uri)
    finished: dict[str, float] = {}

    def roll_back() -> None:
        rollback(CHURN, mlflow_local_uri, reason="drill", by="bob")
        finished["at"] = time.monotonic()

    with promotion_lock(client, mlflow_local_uri, CHURN):  # a register step moving the aliases right now
        worker = threading.Thread(target=roll_back)
        worker.start()
        time.sleep(3)
        assert worker.is_alive() and _aliases(mlflow_local_uri, CHURN)[CHAMPION_ALIAS] == "3"
        released = time.monotonic()
    worker.join(timeout=60)

    assert finished["at"] > released
    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "2", PREVIOUS_CHAMPION_ALIAS: "3"}


def test_retraining_the_rolled_back_model_does_not_promote_it_again(two_data_versions, mlflow_local_uri: str) -> None:
    """Same data, code and parameters give back the demoted version: register refuses to undo the rollback."""
    rollback(CHURN, mlflow_local_uri, reason="batch B was corrupted", by="alice")
    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "2", PREVIOUS_CHAMPION_ALIAS: "3"}

    # The pipeline's gate would bless this model again (it beat version 2 once): register is the last guard.
    with pytest.raises(NotBlessedError, match=r"version 3 .*rolled back by alice .*batch B was corrupted.*--to 3"):
        register(two_data_versions["model_b"].mlflow_model_uri, BLESSED, CHURN, mlflow_local_uri)

    assert _aliases(mlflow_local_uri, CHURN) == {CHAMPION_ALIAS: "2", PREVIOUS_CHAMPION_ALIAS: "3"}
    assert "rolled back by alice" in _tags(mlflow_local_uri, CHURN, "3")[LineageTag.PROMOTION_DECISION]
    # Restored on purpose, it is the champion again; registering it once more is then an idempotent no-op.
    rollback(CHURN, mlflow_local_uri, to_version="3", reason="B was fine after all", by="bob")
    again = register(two_data_versions["model_b"].mlflow_model_uri, BLESSED, CHURN, mlflow_local_uri)
    assert again.version == "3" and _aliases(mlflow_local_uri, CHURN)[CHAMPION_ALIAS] == "3"
