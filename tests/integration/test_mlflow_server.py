"""Train -> gate -> register against a real ``mlflow server`` over HTTP, as a cluster pipeline would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from mlkeel.components.gate.logic import gate
from mlkeel.components.register.logic import register
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, GateRunMetric, LineageTag
from mlkeel.errors import NotBlessedError
from tests.fixtures_mlflow import WEAK_MODEL

pytestmark = pytest.mark.integration


def test_two_pipeline_runs_leave_a_champion_with_lineage_that_loads_and_predicts(
    server_uri: str,
    train_telco,
    model_name: str,
    telco_split: tuple[Path, Path],
    telco_fingerprint: str,
    tmp_path: Path,
) -> None:
    import mlflow
    import pyarrow.parquet as pq
    from mlflow import MlflowClient

    from mlkeel.modeling import load_sklearn_model

    _, holdout = telco_split

    def run_pipeline(trained, run: str):
        blessing = gate(
            str(trained.model_dir),
            str(holdout),
            trained.holdout_metrics(holdout),
            model_name,
            "Churn",
            "Yes",
            str(tmp_path / f"{run}.json"),
            server_uri,
            thresholds={"roc_auc": 0.55},
            mlflow_run_id=trained.run_id,
        )
        result = register(
            trained.model_uri,
            blessing,
            model_name,
            server_uri,
            mlflow_run_id=trained.run_id,
            data_fingerprint=telco_fingerprint,
            pipeline_name="mlkeel-training",
            pipeline_run=run,
        )
        return blessing, result

    weak = train_telco(server_uri, "weak", **WEAK_MODEL)
    strong = train_telco(server_uri, "strong")
    assert weak.model_uri.startswith("models:/m-") and strong.model_uri.startswith("models:/m-")

    first_blessing, first = run_pipeline(weak, "run-1")
    second_blessing, second = run_pipeline(strong, "run-2")
    third_blessing = gate(
        str(weak.model_dir),
        str(holdout),
        weak.holdout_metrics(holdout),
        model_name,
        "Churn",
        "Yes",
        str(tmp_path / "run-3.json"),
        server_uri,
        thresholds={"roc_auc": 0.55},
    )
    with pytest.raises(NotBlessedError, match="the gate's decision: Not blessed"):
        register(weak.model_uri, third_blessing, model_name, server_uri, pipeline_run="run-3")

    assert first_blessing.blessed and "no model named" in first_blessing.reason
    assert second_blessing.blessed and second_blessing.champion_version == "1"
    assert not third_blessing.blessed and third_blessing.champion_version == "2"
    assert (first.version, second.version, second.previous_champion_version) == ("1", "2", "1")

    # What anyone else sees: a fresh client, nothing cached from the calls above.
    client = MlflowClient(tracking_uri=server_uri, registry_uri=server_uri)
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{model_name}'")}
    assert sorted(versions) == ["1", "2"]  # the refused third run added nothing
    registered = client.get_registered_model(model_name)
    assert {alias: str(version) for alias, version in registered.aliases.items()} == {
        CHAMPION_ALIAS: "2",
        PREVIOUS_CHAMPION_ALIAS: "1",
    }
    champion = client.get_model_version_by_alias(model_name, CHAMPION_ALIAS)
    assert champion.run_id == strong.run_id and champion.source == strong.model_uri
    assert champion.tags[LineageTag.DATA_FINGERPRINT] == telco_fingerprint
    assert champion.tags[LineageTag.PIPELINE_RUN] == "run-2"
    assert champion.tags[LineageTag.REPLACED_VERSION] == "1"
    assert champion.tags[LineageTag.BLESSING_REASON] == second_blessing.reason
    assert json.loads(champion.tags[LineageTag.LIBRARY_VERSIONS])["mlflow"].startswith("3.")
    assert set(second.tags) <= set(champion.tags)
    assert LineageTag.REPLACED_VERSION not in client.get_model_version(model_name, "1").tags
    assert client.get_run(strong.run_id).data.metrics[GateRunMetric.BLESSED] == 1.0
    assert client.get_run(weak.run_id).data.tags[LineageTag.DATA_FINGERPRINT] == telco_fingerprint

    # The champion loads by alias through the server (artifacts proxied over HTTP) and predicts.
    mlflow.set_tracking_uri(server_uri)
    mlflow.set_registry_uri(server_uri)
    model = load_sklearn_model(f"models:/{model_name}@{CHAMPION_ALIAS}")
    frame = pq.read_table(holdout).to_pandas()
    probabilities = model.predict_proba(frame[list(model.feature_names_in_)])
    assert probabilities.shape == (len(frame), 2)
    auc = roc_auc_score(frame["Churn"] == "Yes", probabilities[:, list(model.classes_).index(1)])
    assert auc == pytest.approx(second_blessing.challenger_score)
