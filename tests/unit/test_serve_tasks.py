"""Serve follows the model's task: a multiclass (wine) and a regression (diabetes) champion, trained by the train
stage and served by a real uvicorn server on 127.0.0.1, answer every protocol in their task's shape with the
model's own predict/predict_proba, refuse bad input with a 4xx naming the record and field, count their own
Prometheus series and write one prediction-log row per record in the task's columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlkeel.components.serve.logic import (
    ServeSettings,
    http_call,
    json_records,
    load_serving_model,
    serving_in_thread,
    wait_ready,
)
from mlkeel.errors import ParameterError
from mlkeel.modeling import load_sklearn_model, model_feature_columns
from mlkeel.prediction_log import read_prediction_logs
from tests.fixtures_serve import TaskChampion, metric

ROWS = 12
WINES = ["barbera", "barolo", "grignolino"]


@pytest.fixture(params=["multiclass", "regression"])
def served(request: pytest.FixtureRequest, task_champion, mlflow_shared_uri: str) -> TaskChampion:
    return task_champion(mlflow_shared_uri, request.param)


def call(base: str, path: str, document: Any = None) -> tuple[int, Any]:
    status, body = http_call(f"{base}{path}", None if document is None else json.dumps(document).encode())
    return status, json.loads(body) if body else None


def tensors(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One FP64 tensor per field (wine and diabetes have numeric features only)."""
    return [
        {"name": name, "datatype": "FP64", "shape": [len(records)], "data": [record[name] for record in records]}
        for name in records[0]
    ]


def without_ids(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [{key: value for key, value in item.items() if key != "id"} for item in answer["predictions"]]


def test_every_protocol_answers_in_the_tasks_shape_with_the_models_own_outputs_and_logs_each_record(
    served: TaskChampion, mlflow_shared_uri: str, tmp_path: Path
) -> None:
    rows = served.holdout.slice(0, ROWS)
    log_dir = tmp_path / "log"
    settings = ServeSettings(served.model_uri, mlflow_shared_uri, str(log_dir))
    ids = [f"r{index}" for index in range(ROWS)]
    with serving_in_thread(settings) as (base, state):
        features = wait_ready(state).feature_names
        records = json_records(rows.select(features))
        _, ready = call(base, "/readyz")
        by_records = call(base, "/predict", {"records": records, "ids": ids})
        columns = list(records[0])
        split = {"columns": columns, "data": [[record[name] for name in columns] for record in records]}
        by_split = call(base, "/predict", {"dataframe_split": split})
        _, metadata = call(base, f"/v2/models/{served.name}")
        inferred = call(base, f"/v2/models/{served.name}/infer", {"id": "oip", "inputs": tensors(records)})
        scored_by_class = {name: metric(base, "mlkeel_serve_class_predictions_total", predicted_class=name)
                           for name in WINES}  # fmt: skip
        values_count = metric(base, "mlkeel_serve_predicted_value_count", model_name=served.name)
        values_sum = metric(base, "mlkeel_serve_predicted_value_stats_sum", model_name=served.name)
        under_100 = metric(base, "mlkeel_serve_predicted_value_bucket", model_name=served.name, le="100.0")
        binary_series = metric(base, "mlkeel_serve_prediction_score_count") + metric(
            base, "mlkeel_serve_predictions_total"
        )
    log = read_prediction_logs(log_dir)  # written on the way out

    model = load_sklearn_model(served.model_uri)
    frame = rows.to_pandas()[model_feature_columns(model)]
    assert (by_records[0], by_split[0], inferred[0]) == (200, 200, 200), (by_records, by_split, inferred)
    assert without_ids(by_split[1]) == without_ids(by_records[1])  # MLflow's format, the same answer
    assert ready["task"] == served.task and ready["threshold"] is None
    assert metadata["parameters"]["task"] == served.task
    outputs = {output["name"]: output for output in inferred[1]["outputs"]}
    items = by_records[1]["predictions"]
    assert [item["id"] for item in items] == ids and log.num_rows == 3 * ROWS
    assert binary_series == 0  # no positive-class series for a model without a positive class
    mine = log.filter(np.isin(log.column("request_id").to_numpy(zero_copy_only=False), ids)).to_pylist()
    mine.sort(key=lambda row: ids.index(row["request_id"]))
    assert {row["task"] for row in log.to_pylist()} == {served.task}
    assert all(row["prediction"] is None and row["threshold"] is None for row in mine)

    if served.task == "multiclass":
        proba, predicted = model.predict_proba(frame), [str(label) for label in model.predict(frame)]
        classes = [str(label) for label in model.classes_]
        assert ready["classes"] == classes == WINES
        assert [set(item) for item in items] == [
            {"id", "label", "probability", "probabilities", "unseen_categories"}
        ] * ROWS
        assert [item["label"] for item in items] == predicted
        np.testing.assert_allclose(
            [[item["probabilities"][name] for name in classes] for item in items], proba, atol=1e-12
        )
        np.testing.assert_allclose([item["probability"] for item in items], proba.max(axis=1), atol=1e-12)
        # Open Inference Protocol: label [N], probability [N], probabilities [N, C] row-major with its classes.
        assert list(outputs) == ["label", "probability", "probabilities", "unseen_categories"]
        assert outputs["label"] == {"name": "label", "datatype": "BYTES", "shape": [ROWS], "data": predicted}
        matrix = outputs["probabilities"]
        assert (matrix["shape"], matrix["datatype"], matrix["parameters"]) == ([ROWS, 3], "FP64", {"classes": classes})
        np.testing.assert_allclose(np.reshape(matrix["data"], (ROWS, 3)), proba, atol=1e-12)
        assert metadata["parameters"] == {"task": "multiclass", "classes": classes}
        assert {output["name"]: output["shape"] for output in metadata["outputs"]}["probabilities"] == [-1, 3]
        # /metrics: each class's predictions (3 requests of the same rows).
        assert scored_by_class == {name: 3 * predicted.count(name) for name in WINES}
        assert values_count == 0
        # The log: the predicted class, its probability and every class's, per the prediction-log contract.
        assert [row["prediction_label"] for row in mine] == predicted
        np.testing.assert_allclose([row["probability"] for row in mine], proba.max(axis=1), atol=1e-12)
        logged = [dict(row["class_probabilities"]) for row in mine]
        np.testing.assert_allclose([[every[name] for name in classes] for every in logged], proba, atol=1e-12)
    else:
        values = model.predict(frame)
        assert ready["classes"] == []
        assert [set(item) for item in items] == [{"id", "predicted_value", "unseen_categories"}] * ROWS
        np.testing.assert_allclose([item["predicted_value"] for item in items], values, rtol=0, atol=1e-9)
        assert list(outputs) == ["predicted_value", "unseen_categories"]
        assert (outputs["predicted_value"]["shape"], outputs["predicted_value"]["datatype"]) == ([ROWS], "FP64")
        np.testing.assert_allclose(outputs["predicted_value"]["data"], values, rtol=0, atol=1e-9)
        assert [output["name"] for output in metadata["outputs"]] == ["predicted_value", "unseen_categories"]
        # /metrics: a histogram of the predicted values (3 requests of the same rows).
        assert values_count == 3 * ROWS and values_sum == pytest.approx(3 * values.sum())
        assert under_100 == 3 * np.count_nonzero(values <= 100)
        assert sum(scored_by_class.values()) == 0
        np.testing.assert_allclose([row["predicted_value"] for row in mine], values, rtol=0, atol=1e-9)
        assert all(row["prediction_label"] is None and row["probability"] is None for row in mine)


def test_bad_input_gets_a_4xx_naming_the_record_and_field_for_each_task(
    served: TaskChampion, mlflow_shared_uri: str, tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    settings = ServeSettings(served.model_uri, mlflow_shared_uri, str(log_dir))
    with serving_in_thread(settings) as (base, state):
        features = wait_ready(state).feature_names
        records = json_records(served.holdout.slice(0, 3).select(features))
        field = features[1]
        wrong_type = [records[0], {**records[1], field: "plenty"}, records[2]]
        missing = [records[0], {key: value for key, value in records[1].items() if key != field}]
        wrong_datatype = [
            {**tensor, "datatype": "BYTES"} if tensor["name"] == field else tensor for tensor in tensors(records)
        ]
        binary_output = "prediction" if served.task == "regression" else "predicted_value"
        infer = f"/v2/models/{served.name}/infer"
        columns = {name: [record[name] for record in records] for name in features}
        refused = [
            (call(base, "/predict", {"records": wrong_type}), 422,
             f"records[1].{field}: expected a number, got a string 'plenty'"),
            (call(base, "/predict", {"dataframe_records": missing}), 422,
             f"dataframe_records[1]: missing field(s) {field!r}"),
            (call(base, "/predict", {"inputs": columns}), 200, ""),  # the same rows, well formed
            (call(base, infer, {"inputs": wrong_datatype}), 422,
             f"input {field!r}: datatype 'BYTES' does not fit the field's type float"),
            (call(base, infer, {"inputs": tensors(records), "outputs": [{"name": binary_output}]}), 400,
             f"field 'outputs': no output named {binary_output!r}"),
        ]  # fmt: skip
        if served.task == "regression":  # inputs far outside training overflow a linear model's output: 422, not 500
            huge = {"records": [dict.fromkeys(features, 1e306)], "ids": ["huge"]}
            refused.append(
                (call(base, "/predict", huge), 422, "record 0 (id 'huge'): the model's output is not a finite")
            )
        refused_count = metric(base, "mlkeel_serve_requests_total", endpoint="/predict", status="422")
    for (status, answer), expected_status, text in refused:
        assert status == expected_status, (expected_status, text, answer)
        assert text in (answer.get("error", "") if status >= 400 else ""), (text, answer)
    assert refused_count == (3 if served.task == "regression" else 2)
    assert read_prediction_logs(log_dir).num_rows == 3  # a refused request logs nothing
    with pytest.raises(ParameterError, match=f"is a {served.task} model: a decision threshold applies to a binary"):
        load_serving_model(served.model_uri, mlflow_shared_uri, threshold=0.3)


def test_the_infrastructure_check_compares_each_tasks_served_outputs_with_the_models_own(
    served: TaskChampion, mlflow_shared_uri: str, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from mlkeel.components.serve.logic import validate_infrastructure

    pq.write_table(served.holdout, tmp_path / "holdout.parquet")
    result = validate_infrastructure(
        served.model_uri, str(tmp_path / "holdout.parquet"), str(tmp_path / "report.json"), mlflow_shared_uri,
        sample_rows=30, records_per_request=10,
    )  # fmt: skip
    assert result.passed, result.checks
    assert result.details["task"] == served.task and result.details["records_sent"] == 30
    assert result.details["max_abs_difference"] <= 1e-9
    assert json.loads((tmp_path / "report.json").read_text())["details"]["classes"] == (
        WINES if served.task == "multiclass" else []
    )
