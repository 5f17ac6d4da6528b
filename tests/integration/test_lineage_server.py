"""Lineage, rollback and the model card against a real ``mlflow server`` over HTTP (proxied artifacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlkeel.components.gate.logic import decide
from mlkeel.components.model_card.logic import model_card
from mlkeel.components.register.logic import register
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, LineageTag, RollbackTag
from mlkeel.lineage import rollback, version_lineage, versions_trained_on
from tests.fixtures_mlflow import WEAK_MODEL

pytestmark = pytest.mark.integration

METRICS = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}


def test_lineage_rollback_and_card_over_http(
    server_uri: str, train_telco, model_name: str, telco_fingerprint: str, tmp_path: Path
) -> None:
    import mlflow.artifacts
    from mlflow import MlflowClient

    weak = train_telco(server_uri, "weak", **WEAK_MODEL)
    strong = train_telco(server_uri, "strong")
    register(weak.model_uri, decide(METRICS), model_name, server_uri, pipeline_run="run-1")
    register(strong.model_uri, decide(METRICS), model_name, server_uri, pipeline_run="run-2")

    # The server answers the tag filter itself (no client-side scan).
    client = MlflowClient(server_uri, registry_uri=server_uri)
    filtered = client.search_model_versions(f"tags.`{LineageTag.DATA_FINGERPRINT}` = '{telco_fingerprint}'")
    assert {(v.name, str(v.version)) for v in filtered} >= {(model_name, "1"), (model_name, "2")}
    ours = [
        (r.version, r.aliases) for r in versions_trained_on(telco_fingerprint, server_uri) if r.model_name == model_name
    ]
    assert ours == [("1", [PREVIOUS_CHAMPION_ALIAS]), ("2", [CHAMPION_ALIAS])]
    assert version_lineage(f"{model_name}/2", server_uri)["pipeline_run"] == "run-2"

    result = rollback(model_name, server_uri, reason="canary errors", by="carol")
    assert (result.from_version, result.to_version) == ("2", "1")
    assert client.get_model_version(model_name, "2").tags[RollbackTag.REASON] == "canary errors"
    # A new training (registering `strong` again would be idempotent: the same data, code and parameters).
    retrained = train_telco(server_uri, "retrained", hyperparameters={"C": 0.5})
    again = register(retrained.model_uri, decide(METRICS), model_name, server_uri)
    aliases = {alias: str(version) for alias, version in client.get_registered_model(model_name).aliases.items()}
    assert aliases == {CHAMPION_ALIAS: again.version, PREVIOUS_CHAMPION_ALIAS: "1"} and again.version == "3"

    card = model_card(model_name, "@champion", str(tmp_path / "c.html"), str(tmp_path / "c.md"), server_uri)
    back = mlflow.artifacts.download_artifacts(card.card_uri, dst_path=str(tmp_path / "back"))
    assert Path(back).read_text() == card.html
    assert client.get_model_version(model_name, "3").tags[LineageTag.MODEL_CARD] == card.card_uri
