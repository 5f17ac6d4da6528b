"""Batch predict: every row scored once, the exact model version named, user errors said in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.components.batch_predict import logic
from mlkeel.components.batch_predict.logic import batch_predict, resolve_model
from mlkeel.components.gate.logic import decide
from mlkeel.components.register.logic import register
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS
from mlkeel.errors import DataError, ParameterError, RegistryError, SchemaMismatchError
from mlkeel.modeling import decision_threshold, load_sklearn_model, model_feature_columns, positive_scores
from tests.fixtures_data import TELCO
from tests.fixtures_mlflow import WEAK_MODEL

METRICS = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}
BLESSED = decide(METRICS, thresholds={"roc_auc": 0.75}, no_comparison_reason="no model is registered yet")


def _messy_rows(test_path: Path, folder: Path) -> Path:
    """Telco holdout rows with missing values and categories the model never saw."""
    frame = pq.read_table(test_path).to_pandas()
    frame.loc[0:9, "tenure"] = np.nan
    frame.loc[5:14, "TotalCharges"] = np.nan
    frame.loc[10:19, "Contract"] = None
    frame.loc[20:29, "Contract"] = "Quarterly"  # unseen
    frame.loc[30:39, "PaymentMethod"] = "Crypto"  # unseen
    frame.loc[40, ["gender", "Partner", "InternetService"]] = None
    path = folder / "messy.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def test_every_row_is_scored_once_missing_values_and_unseen_categories_included(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path
) -> None:
    trained = train_telco(mlflow_shared_uri, "strong-f1", threshold_policy="f1")  # a threshold that is not 0.5
    rows = _messy_rows(telco_split[1], tmp_path)

    result = batch_predict(str(trained.model_dir), str(rows), str(tmp_path / "log.parquet"), key_column=TELCO["key"])

    log = pq.read_table(tmp_path / "log.parquet")
    source = pq.read_table(rows)
    assert result.rows_in == result.rows_scored == log.num_rows == source.num_rows == 1409
    assert log.column("request_id").to_pylist() == source.column(TELCO["key"]).to_pylist()
    probabilities = log.column("probability").to_numpy()
    assert np.isfinite(probabilities).all() and ((probabilities >= 0) & (probabilities <= 1)).all()
    # The inputs are kept as they came, nulls and unseen values included.
    assert log.column("feature.tenure").to_pylist()[:10] == [None] * 10
    assert log.column("feature.Contract").to_pylist()[10:30] == [None] * 10 + ["Quarterly"] * 10
    # TotalCharges: the ten blanked here plus the blanks the Telco file already has.
    assert log.column("feature.TotalCharges").null_count == source.column("TotalCharges").null_count > 10
    assert "feature.Churn" not in log.column_names and "feature.customerID" not in log.column_names
    assert (result.model_name, result.model_version, result.model_uri) == ("", "", str(trained.model_dir))
    # The prediction is at the model's own decision threshold (batch predict's default), recorded on every row.
    threshold = decision_threshold(load_sklearn_model(str(trained.model_dir)))
    assert result.threshold == threshold != 0.5 and set(log.column("threshold").to_pylist()) == {threshold}
    assert result.positive_rate == pytest.approx(float(np.mean(probabilities >= threshold)))


def test_the_log_holds_the_models_own_probabilities(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path, monkeypatch
) -> None:
    trained = train_telco(mlflow_shared_uri, "strong")
    test_path = telco_split[1]
    monkeypatch.setattr(logic, "CHUNK_ROWS", 500)  # three chunks: chunking must not change a single score

    batch_predict(str(trained.model_dir), str(test_path), str(tmp_path / "log.parquet"), threshold=0.3)

    model = load_sklearn_model(str(trained.model_dir))
    frame = pq.read_table(test_path).to_pandas()
    expected = model.predict_proba(frame[model_feature_columns(model)])[:, list(model.classes_).index(1)]
    log = pq.read_table(tmp_path / "log.parquet")
    logged = log.column("probability").to_numpy()
    # Chunks are scored on worker threads: native code may round the last bit differently there (seen: 3 of
    # 1,409 rows 1.1e-16 apart). A wrong row order or model would be off by far more than this tolerance.
    np.testing.assert_allclose(logged, expected, rtol=1e-12, atol=0)
    assert log.column("prediction").to_pylist() == (logged >= 0.3).astype(int).tolist()
    assert set(log.column("threshold").to_pylist()) == {0.3}


def test_an_alias_is_logged_as_the_exact_version_it_points_to(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    register(train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL).model_uri, BLESSED, model_name, mlflow_shared_uri)
    register(train_telco(mlflow_shared_uri, "strong").model_uri, BLESSED, model_name, mlflow_shared_uri)
    test_path = str(telco_split[1])

    champion = batch_predict(f"models:/{model_name}@{CHAMPION_ALIAS}", test_path, str(tmp_path / "c.parquet"))
    previous = batch_predict(f"models:/{model_name}@{PREVIOUS_CHAMPION_ALIAS}", test_path, str(tmp_path / "p.parquet"))
    pinned = batch_predict(f"models:/{model_name}/1", test_path, str(tmp_path / "v1.parquet"))

    assert (champion.model_name, champion.model_version) == (model_name, "2")
    assert (previous.model_version, pinned.model_version) == ("1", "1")
    log = pq.read_table(tmp_path / "c.parquet")
    assert set(log.column("model_name").to_pylist()) == {model_name}
    assert set(log.column("model_version").to_pylist()) == {"2"}
    assert set(log.column("model_uri").to_pylist()) == {f"models:/{model_name}/2"}  # never "@champion"
    # The registered version knows its positive label; the negative one is not recorded, so it stays null.
    labels = dict(zip(log.column("prediction").to_pylist(), log.column("prediction_label").to_pylist(), strict=True))
    assert labels == {1: "Yes", 0: None}
    assert pq.read_table(tmp_path / "p.parquet").equals(pq.read_table(tmp_path / "v1.parquet")) is False  # times
    np.testing.assert_array_equal(
        pq.read_table(tmp_path / "p.parquet").column("probability").to_numpy(),
        pq.read_table(tmp_path / "v1.parquet").column("probability").to_numpy(),
    )


def test_a_missing_alias_version_or_model_is_a_registry_error_that_says_so(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    register(train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL).model_uri, BLESSED, model_name, mlflow_shared_uri)
    output = tmp_path / "log.parquet"

    with pytest.raises(RegistryError) as caught:
        batch_predict(f"models:/{model_name}@canary", str(telco_split[1]), str(output))
    assert str(caught.value) == f"no version of '{model_name}' has alias 'canary' (its aliases: champion -> version 1)"
    with pytest.raises(RegistryError, match=f"registered model '{model_name}' has no version 7"):
        resolve_model(f"models:/{model_name}/7")
    with pytest.raises(RegistryError, match="no model named 'no-such-model' is registered"):
        resolve_model("models:/no-such-model@champion")
    with pytest.raises(ParameterError, match="'Production' is not a version number"):
        resolve_model(f"models:/{model_name}/Production")
    assert not output.exists()


def test_missing_feature_columns_are_all_named(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path
) -> None:
    trained = train_telco(mlflow_shared_uri, "strong")
    rows = tmp_path / "rows.parquet"
    pq.write_table(pq.read_table(telco_split[1]).drop_columns(["tenure", "Contract"]), rows)

    with pytest.raises(SchemaMismatchError, match=r"missing feature column\(s\) the model needs: tenure, Contract$"):
        batch_predict(str(trained.model_dir), str(rows), str(tmp_path / "log.parquet"))
    with pytest.raises(SchemaMismatchError, match="key column 'order_id' not found"):
        batch_predict(str(trained.model_dir), str(telco_split[1]), str(tmp_path / "log.parquet"), key_column="order_id")
    assert not (tmp_path / "log.parquet").exists()


def test_generated_request_ids_are_stable_for_the_same_file(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path
) -> None:
    model_dir = str(train_telco(mlflow_shared_uri, "strong").model_dir)
    batch_predict(model_dir, str(telco_split[1]), str(tmp_path / "a.parquet"))
    batch_predict(model_dir, str(telco_split[1]), str(tmp_path / "b.parquet"))
    batch_predict(model_dir, str(telco_split[1]), str(tmp_path / "c.parquet"), batch_id="2026-03-01")

    first = pq.read_table(tmp_path / "a.parquet").column("request_id").to_pylist()
    assert first == pq.read_table(tmp_path / "b.parquet").column("request_id").to_pylist()
    assert len(set(first)) == 1409 and first[0].endswith("-0") and first[-1].endswith("-1408")
    named = pq.read_table(tmp_path / "c.parquet").column("request_id").to_pylist()
    assert named[:2] == ["2026-03-01-0", "2026-03-01-1"]


def test_a_chunk_the_model_cannot_score_is_named_by_its_rows_and_nothing_is_written(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path, monkeypatch
) -> None:
    model_dir = str(train_telco(mlflow_shared_uri, "strong").model_dir)
    monkeypatch.setattr(logic, "CHUNK_ROWS", 500)  # three chunks, scored side by side
    table = pq.read_table(telco_split[1])
    tenure = [str(value) for value in table.column("tenure").to_pylist()]
    tenure[700] = tenure[1200] = "twelve"  # the second and the third chunk cannot be scored
    bad = tmp_path / "text_in_numbers.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("tenure"), "tenure", pa.array(tenure)), bad)
    output = tmp_path / "log.parquet"

    with pytest.raises(DataError, match="cannot score rows 500-999"):  # the first bad chunk in row order
        batch_predict(model_dir, str(bad), str(output))
    assert not output.exists() and not list(tmp_path.glob(".log.parquet.*"))


def test_bad_inputs_fail_before_anything_is_written(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path
) -> None:
    model_dir = str(train_telco(mlflow_shared_uri, "strong").model_dir)
    output = tmp_path / "log.parquet"
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(telco_split[1]).slice(0, 0), empty)
    nulls = tmp_path / "null_keys.parquet"
    table = pq.read_table(telco_split[1]).slice(0, 5)
    pq.write_table(table.set_column(0, TELCO["key"], pa.array(["a", "b", None, "d", "e"])), nulls)

    with pytest.raises(DataError, match="no rows to score"):
        batch_predict(model_dir, str(empty), str(output))
    with pytest.raises(DataError, match="key column 'customerID' is null in row 2"):
        batch_predict(model_dir, str(nulls), str(output), key_column=TELCO["key"])
    with pytest.raises(ParameterError, match=r"threshold 1\.5 is outside"):
        batch_predict(model_dir, str(telco_split[1]), str(output), threshold=1.5)
    with pytest.raises(DataError, match="not an MLflow model folder"):
        batch_predict(str(tmp_path), str(telco_split[1]), str(output))
    assert not output.exists()


def _cli(*arguments: str, tracking_uri: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    return subprocess.run(
        [sys.executable, "-m", "mlkeel.components.batch_predict", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )


def test_the_command_line_prints_a_summary_or_one_line_error(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    register(train_telco(mlflow_shared_uri, "strong").model_uri, BLESSED, model_name, mlflow_shared_uri)
    output = tmp_path / "log.parquet"
    common = ["--dataset", str(telco_split[1]), "--output", str(output)]

    failed = _cli("--model", f"models:/{model_name}@canary", *common, tracking_uri=mlflow_shared_uri)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1] == (
        f"error: no version of '{model_name}' has alias 'canary' (its aliases: champion -> version 1)"
    )
    assert "Traceback" not in failed.stderr and not output.exists()

    done = _cli("--model", f"models:/{model_name}@champion", *common, "--key-column", "customerID",
                tracking_uri=mlflow_shared_uri)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["rows_in"] == summary["rows_scored"] == 1409
    assert (summary["model_name"], summary["model_version"]) == (model_name, "1")
    assert pq.read_table(output).num_rows == 1409


def test_positive_scores_of_the_shared_contract_match_the_log(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path
) -> None:
    # The serving endpoint will score with mlkeel.modeling.positive_scores: batch must agree with it.
    trained = train_telco(mlflow_shared_uri, "strong")
    batch_predict(str(trained.model_dir), str(telco_split[1]), str(tmp_path / "log.parquet"), key_column="customerID")
    model = load_sklearn_model(str(trained.model_dir))
    frame = pq.read_table(telco_split[1]).to_pandas().head(50)
    scores = positive_scores(model, frame[model_feature_columns(model)])
    logged = pq.read_table(tmp_path / "log.parquet").column("probability").to_numpy()[:50]
    # 50 rows against 1409 in one call: BLAS may block the sums differently, so allow the last bits.
    np.testing.assert_allclose(logged, scores, rtol=1e-12, atol=0)


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_component_runs_under_kfp_local(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    # Runs the component's source in a subprocess as a cluster would (only the function travels).
    from kfp import dsl, local

    from mlkeel.components.batch_predict.component import batch_predict as component

    register(train_telco(mlflow_shared_uri, "strong").model_uri, BLESSED, model_name, mlflow_shared_uri)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def score_batch():  # no return annotation: this module's annotations are strings, which KFP rejects
        rows = dsl.importer(artifact_uri=str(telco_split[1]), artifact_class=dsl.Dataset)
        component(
            dataset=rows.output,
            model_uri=f"models:/{model_name}@champion",
            mlflow_tracking_uri=mlflow_shared_uri,
            key_column="customerID",
        )

    score_batch()
    (step,) = (tmp_path / "root").glob("score-batch-*/batch-predict")
    outputs = json.loads((step / "executor_output.json").read_text())
    metadata = outputs["artifacts"]["predictions"]["artifacts"][0]["metadata"]
    assert metadata["rows"] == 1409 and metadata["model_name"] == model_name and metadata["model_version"] == "1"
    assert 0.0 < metadata["positive_rate"] < 1.0
    assert pq.read_table(step / "predictions").num_rows == 1409


def test_a_logged_model_uri_scores_with_the_label_its_training_run_recorded(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, tmp_path: Path
) -> None:
    trained = train_telco(mlflow_shared_uri, "strong")  # models:/m-<id>: logged, not registered

    result = batch_predict(trained.model_uri, str(telco_split[1]), str(tmp_path / "log.parquet"))

    assert (result.model_name, result.model_version, result.model_uri) == ("", "", trained.model_uri)
    log = pq.read_table(tmp_path / "log.parquet")
    labels = dict(zip(log.column("prediction").to_pylist(), log.column("prediction_label").to_pylist(), strict=True))
    assert labels == {1: "Yes", 0: None}
