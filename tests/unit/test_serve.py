"""Serve: a real model on a real uvicorn server on 127.0.0.1; what a client, Prometheus and monitoring see."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.components.batch_predict.logic import batch_predict
from mlkeel.components.serve.logic import (
    PredictionLogSink,
    ServeSettings,
    create_app,
    http_call,
    json_records,
    load_serving_model,
    serving_in_thread,
    validate_infrastructure,
    wait_ready,
    wait_until_ok,
)
from mlkeel.errors import ParameterError
from mlkeel.modeling import decision_threshold, load_sklearn_model, model_feature_columns, positive_scores
from mlkeel.prediction_log import build_prediction_log, read_prediction_logs
from tests.fixtures_mlflow import _free_port
from tests.fixtures_serve import holdout_rows, metric


def post(base: str, document: object) -> tuple[int, dict]:
    status, body = http_call(f"{base}/predict", json.dumps(document).encode())
    return status, json.loads(body)


def raw_post(base: str, body: object, headers: dict[str, str | None]) -> tuple[int, str]:
    """POST with exactly these headers (http.client: chunked bodies, a made-up Content-Length; None omits one)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/predict")
    for name, value in {"Content-Type": "application/json", **headers}.items():
        if value is not None:
            connection.putheader(name, value)
    connection.endheaders()
    if isinstance(body, bytes):
        connection.send(body)
    else:
        for chunk in body:
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    answer = json.loads(response.read()).get("error", "")
    connection.close()
    return response.status, answer


def test_served_probabilities_are_the_models_own_and_each_record_is_logged_once(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = holdout_rows(telco_split[1], 120)
    assert rows.column("TotalCharges").null_count > 0  # blanks travel as JSON null and are imputed
    log_dir = tmp_path / "log"
    settings = ServeSettings(champion, mlflow_shared_uri, str(log_dir), flush_rows=25, flush_seconds=0.2)
    with serving_in_thread(settings) as (base, state):
        model = wait_ready(state)
        features = model.feature_names
        records = json_records(rows.select(features))
        batches = [records[start : start + 10] for start in range(0, len(records), 10)]
        # Twelve requests, four at a time: the log must take concurrent appends.
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda batch: post(base, {"records": batch}), batches))
        ready = json.loads(http_call(f"{base}/readyz")[1])

    assert [status for status, _ in answers] == [200] * 12
    served = [item["probability"] for _, answer in answers for item in answer["predictions"]]
    sklearn_model = load_sklearn_model(champion)
    expected = sklearn_model.predict_proba(rows.to_pandas()[model_feature_columns(sklearn_model)])[:, 1]
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-12)
    first = answers[0][1]
    assert (first["model_version"], first["model_uri"]) == ("1", champion.replace("@champion", "/1"))
    # Labelled at the model's own decision threshold (train chose it; serve's --threshold defaults to it).
    threshold = decision_threshold(sklearn_model)
    assert threshold != 0.5 and ready["threshold"] == threshold
    assert [item["label"] for item in first["predictions"]] == [
        "Yes" if probability >= threshold else None for probability in served[:10]
    ]
    assert ready["ready"] and ready["model_version"] == "1" and ready["schema_source"] == "run data/schema.json"
    assert {field["name"] for field in ready["fields"]} == set(features)

    # One log row per record, in the batch prediction log's schema, readable by the monitoring reader.
    log = read_prediction_logs(log_dir)
    assert log.num_rows == 120
    assert len(list(log_dir.rglob("*.parquet"))) >= 2  # rolled into part files
    ids = [item["id"] for _, answer in answers for item in answer["predictions"]]
    assert sorted(log.column("request_id").to_pylist()) == sorted(ids)
    by_id = dict(zip(log.column("request_id").to_pylist(), log.column("probability").to_pylist(), strict=True))
    assert [by_id[record_id] for record_id in ids] == served
    assert set(log.column("model_version").to_pylist()) == {"1"}
    pq.write_table(rows, tmp_path / "rows.parquet")
    batch_predict(champion, str(tmp_path / "rows.parquet"), str(tmp_path / "batch.parquet"), mlflow_shared_uri)
    assert log.schema.remove_metadata() == pq.read_table(tmp_path / "batch.parquet").schema.remove_metadata()


def test_each_malformed_payload_gets_a_4xx_naming_the_problem_and_metrics_count_every_request(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    settings = ServeSettings(champion, mlflow_shared_uri, str(log_dir), max_body_bytes=20_000)
    with serving_in_thread(settings) as (base, state):
        features = wait_ready(state).feature_names
        good = json_records(holdout_rows(telco_split[1], 3).select(features))
        wrong_type = [good[0], {**good[1], "tenure": "twelve"}]
        missing = [{key: value for key, value in good[0].items() if key != "Contract"}]
        extra = [good[0], good[1], {**good[2], "favourite_colour": "teal"}]
        null_in_required = [{**good[0], "gender": None}]
        cases = [
            (b"{not json", 400, "body is not valid JSON (line 1, column 2)"),
            (json.dumps({"rows": good}).encode(), 400, 'body must be a JSON object {"records": [{...}, ...]}'),
            (json.dumps({"records": []}).encode(), 422, "field 'records': the list is empty"),
            (json.dumps({"records": good[0]}).encode(), 422, "field 'records': expected a list of objects"),
            (json.dumps({"records": wrong_type}).encode(), 422, "records[1].tenure: expected an integer, got a string"),
            (json.dumps({"records": missing}).encode(), 422, "records[0]: missing field(s) 'Contract'"),
            (json.dumps({"records": extra}).encode(), 422, "records[2]: unknown field(s) 'favourite_colour'"),
            (json.dumps({"records": null_in_required}).encode(), 422, "records[0].gender: null is not allowed"),
            (
                json.dumps({"records": [5]}).encode(),
                422,
                "records[0]: expected an object of field values, got a number",
            ),
            (json.dumps({"records": good * 100}).encode(), 413, "exceeds the limit of 20000 bytes"),
            (json.dumps({"records": good, "ids": ["a"]}).encode(), 422, "field 'ids': 1 ids for 3 records"),
        ]
        answers = [(http_call(f"{base}/predict", body), status, expected) for body, status, expected in cases]
        # MLflow's own request shape works too, and a client may name its records.
        status_mlflow, answer_mlflow = post(base, {"dataframe_records": good, "ids": ["c1", "c2", "c3"]})
        status_ok, _ = post(base, {"records": good})
        wrong_method = http_call(f"{base}/predict")[0]
        # A body that declares no length (chunked) is cut off at the limit too; a huge declared length is
        # refused without reading.
        large = json.dumps({"records": good * 100}).encode()
        chunked = raw_post(base, iter([large[:9000], large[9000:]]), {"Transfer-Encoding": "chunked"})
        declared_huge = raw_post(base, b"{}", {"Content-Length": str(1 << 40)})
        # Valid JSON declared as something else is refused; JSON with a charset, or undeclared, is scored.
        body = json.dumps({"records": good}).encode()
        as_text = raw_post(base, body, {"Content-Type": "text/plain", "Content-Length": str(len(body))})
        with_charset = raw_post(
            base, body, {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(body))}
        )
        undeclared = raw_post(base, body, {"Content-Type": None, "Content-Length": str(len(body))})
        counts = {
            code: metric(base, "mlkeel_serve_requests_total", endpoint="/predict", status=code)
            for code in ("200", "400", "413", "415", "422")
        }
        latency_count = metric(base, "mlkeel_serve_request_duration_seconds_count", endpoint="/predict")
        scored = metric(base, "mlkeel_serve_predictions_total")
        score_count = metric(base, "mlkeel_serve_prediction_score_count", model_version="1")
        info = metric(base, "mlkeel_serve_model_info", model_version="1", model_uri=champion.replace("@champion", "/1"))

    for (status, body), expected_status, expected_text in answers:
        document = json.loads(body)
        assert status == expected_status, document
        assert expected_text in document["error"], document
    assert status_mlflow == status_ok == 200 and wrong_method == 405
    assert chunked == (413, f"body of {len(large)} bytes exceeds the limit of 20000 bytes")
    assert declared_huge == (413, f"body of {1 << 40} bytes exceeds the limit of 20000 bytes")
    assert [item["id"] for item in answer_mlflow["predictions"]] == ["c1", "c2", "c3"]
    assert as_text == (415, "Content-Type 'text/plain': send the body as application/json")
    assert with_charset[0] == undeclared[0] == 200
    assert counts == {"200": 4, "400": 2, "413": 3, "415": 1, "422": 8}
    assert latency_count == 18
    assert scored == score_count == 12 and info == 1
    log = read_prediction_logs(log_dir)  # written on shutdown: only the records that were scored
    assert log.num_rows == 12
    assert log.column("request_id").to_pylist()[:3] == ["c1", "c2", "c3"]


def test_liveness_answers_at_once_readiness_only_once_the_model_is_loaded(
    champion: str, mlflow_shared_uri: str, tmp_path: Path
) -> None:
    release = threading.Event()

    def slow_loader(settings: ServeSettings):
        release.wait(60)
        return load_serving_model(settings.model_uri, settings.tracking_uri)

    settings = ServeSettings(champion, mlflow_shared_uri, str(tmp_path / "log"))
    with serving_in_thread(settings, loader=slow_loader) as (base, state):
        alive = http_call(f"{base}/healthz")[0]
        not_ready = http_call(f"{base}/readyz")
        too_early = post(base, {"records": [{}]})
        loaded_gauge = metric(base, "mlkeel_serve_model_loaded")
        release.set()
        wait_ready(state)
        ready = http_call(f"{base}/readyz")[0]
        loaded_after = metric(base, "mlkeel_serve_model_loaded")

    assert alive == 200
    assert not_ready[0] == 503 and json.loads(not_ready[1]) == {"ready": False, "reason": f"loading {champion}"}
    assert too_early[0] == 503 and "still loading" in too_early[1]["error"]
    assert (loaded_gauge, ready, loaded_after) == (0, 200, 1)


def test_a_model_that_cannot_load_says_why_in_readyz(champion: str, mlflow_shared_uri: str, tmp_path: Path) -> None:
    canary = champion.replace("@champion", "@canary")
    settings = ServeSettings(canary, mlflow_shared_uri, str(tmp_path / "log"))
    with serving_in_thread(settings) as (base, state):
        deadline = time.monotonic() + 60
        while not state.load_error and time.monotonic() < deadline:
            time.sleep(0.05)
        status, body = http_call(f"{base}/readyz")
    assert status == 503
    assert "has alias 'canary' (its aliases: champion -> version 1)" in json.loads(body)["reason"]


def test_the_prediction_log_sink_writes_every_row_of_concurrent_appends_and_bounds_memory(tmp_path: Path) -> None:
    features = pa.table({"tenure": pa.array([1, 2, 3], pa.int64()), "Contract": ["a", "b", None]})

    def rows(request: int) -> pa.Table:
        return build_prediction_log(features, [f"{request}-{i}" for i in range(3)], "m", "1", "models:/m/1",
                                    [0.1, 0.6, 0.9], 0.5, "Yes")  # fmt: skip

    sink = PredictionLogSink(tmp_path / "log", flush_rows=20, flush_seconds=0.05, max_buffered_rows=10_000)
    sink.prepare()
    sink.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda request: sink.append(rows(request)), range(200)))
    sink.close()
    log = read_prediction_logs(tmp_path / "log")
    assert log.num_rows == sink.rows_written == 600 and sink.buffered_rows == 0
    assert len(set(log.column("request_id").to_pylist())) == 600
    assert sink.files_written > 1

    full = PredictionLogSink(tmp_path / "full", flush_rows=3, flush_seconds=3600, max_buffered_rows=3)
    full.append(rows(0))  # not started: nothing writes, so the buffer fills
    with pytest.raises(Exception, match="refusing to predict without logging"):
        full.append(rows(1))


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_the_component_validates_the_serving_infrastructure_under_kfp_local(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    # The component's source runs in a subprocess as on a cluster: it serves on loopback and sends holdout rows.
    from kfp import dsl, local

    from mlkeel.components.serve.component import serve as component

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def check_serving():  # no return annotation: this module's annotations are strings, which KFP rejects
        rows = dsl.importer(artifact_uri=str(telco_split[1]), artifact_class=dsl.Dataset)
        component(test_data=rows.output, model_uri=champion, mlflow_tracking_uri=mlflow_shared_uri, sample_rows=60)

    check_serving()
    (step,) = (tmp_path / "root").glob("check-serving-*/serve")
    outputs = json.loads((step / "executor_output.json").read_text())
    assert outputs["parameterValues"]["Output"] is True
    assert outputs["artifacts"]["report"]["artifacts"][0]["metadata"] == {"passed": True, "model_version": "1"}
    report = json.loads((step / "report").read_text())
    assert report["passed"] is True and all(report["checks"].values()) and len(report["checks"]) == 7
    assert report["details"]["records_sent"] == 60 and report["details"]["requests_sent"] == 3
    assert report["details"]["max_abs_difference"] <= 1e-9 and report["details"]["prediction_log_rows"] == 60


def test_infrastructure_validation_fails_and_says_which_check_when_serving_refuses_rows(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    # Nulls in a column the schema says is never null: the model alone would impute them, serving refuses them.
    table = pq.read_table(telco_split[1]).slice(0, 20)
    index = table.schema.get_field_index("gender")
    table = table.set_column(index, "gender", pa.nulls(20, pa.string()))
    pq.write_table(table, tmp_path / "rows.parquet")

    result = validate_infrastructure(
        champion, str(tmp_path / "rows.parquet"), str(tmp_path / "report.json"), mlflow_shared_uri, sample_rows=20
    )

    assert not result.passed
    failed = {name for name, held in result.checks.items() if not held}
    assert failed == {"every_predict_200", "predictions_equal_direct", "one_log_row_per_record"}
    assert result.details["statuses"] == [422]
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is False


def test_settings_that_cannot_work_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="model URI is empty"):
        ServeSettings(" ").check()
    with pytest.raises(ParameterError, match="max_body_bytes=0"):
        ServeSettings("models:/m@champion", max_body_bytes=0).check()
    (tmp_path / "file").write_text("")
    with pytest.raises(ParameterError, match=r"prediction log folder .*/file/log: cannot create it"):
        create_app(ServeSettings("models:/m@champion", prediction_log_dir=str(tmp_path / "file" / "log")))
    with pytest.raises(ParameterError, match=r"threshold 1\.5 is outside"):
        ServeSettings("models:/m@champion", threshold=1.5).check()


def test_mlkeel_serve_runs_the_server_and_writes_the_log_on_sigterm(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    port, log_dir = _free_port(), tmp_path / "log"
    environment = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_shared_uri}
    command = [sys.executable, "-m", "mlkeel.cli", "serve", "--model", champion, "--port", str(port),
               "--prediction-log", str(log_dir)]  # fmt: skip
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_until_ok(f"{base}/readyz", 90, lambda: process.poll() is None)
        assert ready, process.communicate()[1][-3000:]
        features = load_serving_model(champion, mlflow_shared_uri).feature_names
        status, answer = post(base, {"records": json_records(holdout_rows(telco_split[1], 4).select(features))})
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert status == 200 and len(answer["predictions"]) == 4
    # uvicorn shuts down cleanly, then re-raises the signal so the exit status says what stopped it.
    assert process.returncode == -signal.SIGTERM, stderr[-3000:]
    assert "Application shutdown complete" in stderr
    assert read_prediction_logs(log_dir).num_rows == 4  # the buffered rows were written on shutdown

    canary = [sys.executable, "-m", "mlkeel.components.serve", "--model", champion.replace("@champion", "@canary"),
              "--port", str(_free_port()), "--prediction-log", str(tmp_path / "unused")]  # fmt: skip
    failed = subprocess.run(
        canary,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("error: cannot serve ")
    assert "has alias 'canary'" in failed.stderr and "Traceback" not in failed.stderr


def test_positive_scores_match_direct_scoring_on_the_logged_features(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path]
) -> None:
    """The Arrow table the app builds from JSON scores exactly like the Parquet rows batch prediction reads."""
    from mlkeel.components.serve.logic import parse_payload

    model = load_serving_model(champion, mlflow_shared_uri)
    rows = holdout_rows(telco_split[1], 50).select(model.feature_names)
    table, ids = parse_payload(json.dumps({"records": json_records(rows)}).encode(), model.fields)
    assert ids is None and table.schema == rows.schema
    np.testing.assert_array_equal(model.scores(table), positive_scores(model.resolved.model, rows.to_pandas()))


def test_a_model_folder_is_checked_against_its_mlflow_signature(
    mlflow_shared_uri: str, train_telco, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    """No registry, no training run: the signature logged with the model is the input schema."""
    trained = train_telco(mlflow_shared_uri, "strong")
    settings = ServeSettings(str(trained.model_dir), prediction_log_dir=str(tmp_path / "log"))
    with serving_in_thread(settings) as (base, state):
        model = wait_ready(state)
        rows = holdout_rows(telco_split[1], 5).select(model.feature_names)
        good = post(base, {"records": json_records(rows)})
        bad = post(base, {"records": [{**json_records(rows)[0], "tenure": "long"}]})

    assert model.schema_source == "MLflow signature" and model.resolved.version == ""
    assert good[0] == 200
    expected = positive_scores(load_sklearn_model(str(trained.model_dir)), rows.to_pandas())
    np.testing.assert_allclose([item["probability"] for item in good[1]["predictions"]], expected, atol=1e-12)
    # The signature's example stores integers as floats: tenure is a number there, and text is still refused.
    assert bad == (422, {"error": "records[0].tenure: expected a number, got a string 'long'",
                         "errors": ["records[0].tenure: expected a number, got a string 'long'"]})  # fmt: skip
