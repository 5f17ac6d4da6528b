"""Serve's scoring protocols with real requests to a real uvicorn server on 127.0.0.1: MLflow's four input formats,
the Open Inference Protocol (v2), records with categories the model never saw, and the OpenAPI document (checked
against the committed file and fuzzed by schemathesis for a model of each task: no request it generates gets a
5xx, and every answer fits the schema the served document gives it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlkeel.components.serve.logic import ServeSettings, http_call, json_records, serving_in_thread, wait_ready
from mlkeel.components.serve.openapi import render
from mlkeel.components.serve.protocols import MLFLOW_FORMATS
from mlkeel.prediction_log import UNSEEN_CATEGORIES, read_prediction_logs
from tests.fixtures_serve import holdout_rows, metric

COMMITTED_OPENAPI = Path(__file__).resolve().parents[2] / "components" / "serve" / "openapi.json"
# Examples per fuzzed operation: enough to reach every format and tensor branch; about 40 s in all on 2 busy cores.
FUZZ_EXAMPLES = 60


def call(base: str, path: str, document: Any = None) -> tuple[int, Any]:
    status, body = http_call(f"{base}{path}", None if document is None else json.dumps(document).encode())
    return status, json.loads(body) if body else None


def probabilities(answer: dict[str, Any]) -> list[float]:
    return [item["probability"] for item in answer["predictions"]]


def split_body(records: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(records[0])
    return {"columns": columns, "data": [[record[name] for name in columns] for record in records]}


def columns_body(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [record[name] for record in records] for name in records[0]}


def test_every_mlflow_input_format_scores_like_records_and_reads_the_rows_mlflow_reads(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    from mlflow.pyfunc.scoring_server import SUPPORTED_FORMATS, infer_and_parse_data

    assert set(MLFLOW_FORMATS) == SUPPORTED_FORMATS  # the formats `mlflow models serve` takes, no more, no fewer
    settings = ServeSettings(champion, mlflow_shared_uri, str(tmp_path / "log"))
    with serving_in_thread(settings) as (base, state):
        model = wait_ready(state)
        records = json_records(holdout_rows(telco_split[1], 6).select(model.feature_names))
        assert any(value is None for record in records for value in record.values())  # nulls travel in each format
        bodies = {
            "records": {"records": records},
            "dataframe_records": {"dataframe_records": records},
            "dataframe_split": {"dataframe_split": {**split_body(records), "index": list(range(6))}},
            "instances": {"instances": records},
            "instances as columns": {"instances": columns_body(records)},
            "inputs": {"inputs": columns_body(records)},
            "inputs as records": {"inputs": records},
            "with MLflow params": {"dataframe_split": split_body(records), "params": {}},
        }
        answers = {name: call(base, "/predict", body) for name, body in bodies.items()}
        first = split_body(records)
        tenure = first["columns"].index("tenure")
        bad_value = {"columns": first["columns"], "data": [first["data"][0], [*first["data"][1]]]}
        bad_value["data"][1][tenure] = "twelve"
        short_row = {"columns": first["columns"], "data": [first["data"][0], first["data"][1][:-1]]}
        no_contract = {key: value for key, value in columns_body(records).items() if key != "Contract"}
        ragged = {**columns_body(records), "tenure": [1, 2]}
        bad_column_value = {**columns_body(records), "tenure": [1, "x", 3, 4, 5, 6]}
        errors = [
            ([records], 400, "Received a list."),
            ({"dataframe_split": first, "instances": records}, 400, "exactly one of MLflow's input fields"),
            ({"dataframe_split": {"columns": first["columns"]}}, 422, "Dataframe split format must have 'data' field"),
            (
                {"dataframe_records": records[0]},
                422,
                "Dataframe records format must be a list of records. Got dictionary.",
            ),
            ({"dataframe_split": bad_value}, 422, f"dataframe_split.data[1][{tenure}] (tenure): expected an integer"),
            (
                {"dataframe_split": short_row},
                422,
                f"dataframe_split.data[1]: expected a list of {len(first['columns'])}",
            ),
            ({"dataframe_split": {**first, "columns": first["columns"][1:]}}, 422, "dataframe_split.data[0]: expected"),
            ({"inputs": no_contract}, 422, "field 'inputs': missing column(s) 'Contract'"),
            ({"inputs": ragged}, 422, "field 'inputs': every column needs the same number of values"),
            ({"inputs": bad_column_value}, 422, "inputs.tenure[1]: expected an integer, got a string 'x'"),
            (
                {"instances": [records[0], {**records[1], "colour": "teal"}]},
                422,
                "instances[1]: unknown field(s) 'colour'",
            ),
            ({"instances": []}, 422, "field 'instances': the list is empty"),
            ({"dataframe_split": first, "params": 3}, 400, "field 'params': expected an object"),
        ]
        refused = [(call(base, "/predict", body), status, text) for body, status, text in errors]
        # The rows MLflow's own parser reads from each body are the rows mlkeel scores.
        expected_frame = pd.DataFrame(records)
        for name in ("dataframe_records", "dataframe_split", "instances", "inputs"):
            parsed = infer_and_parse_data(bodies[name])
            frame = parsed if isinstance(parsed, pd.DataFrame) else pd.DataFrame(parsed)
            pd.testing.assert_frame_equal(
                frame[expected_frame.columns].astype(object).where(frame.notna(), None).reset_index(drop=True),
                expected_frame.astype(object).where(expected_frame.notna(), None),
                check_dtype=False,
            )

    reference = probabilities(answers["records"][1])
    for name, (status, answer) in answers.items():
        assert status == 200, (name, answer)
        np.testing.assert_allclose(probabilities(answer), reference, rtol=0, atol=1e-12, err_msg=name)
    for (status, answer), expected_status, text in refused:
        assert (status, text in answer["error"]) == (expected_status, True), (expected_status, text, answer)


def test_open_inference_protocol_health_metadata_and_infer_give_the_predict_answers(
    champion: str, mlflow_shared_uri: str, model_name: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    settings = ServeSettings(champion, mlflow_shared_uri, str(tmp_path / "log"))
    with serving_in_thread(settings) as (base, state):
        model = wait_ready(state)
        records = json_records(holdout_rows(telco_split[1], 5).select(model.feature_names))
        columns = columns_body(records)
        _, metadata = call(base, f"/v2/models/{model_name}")
        datatypes = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
        tensors = [
            {"name": name, "datatype": datatypes[name], "shape": [5], "data": values}
            for name, values in columns.items()
        ]
        # A column may also come as [N, 1] with nested data, and integers may be sent as INT32.
        tensors[0] = {**tensors[0], "shape": [5, 1], "data": [[value] for value in tensors[0]["data"]]}
        tensors = [{**tensor, "datatype": "INT32"} if tensor["datatype"] == "INT64" else tensor for tensor in tensors]
        statuses = {
            path: call(base, path)
            for path in (
                "/v2",
                "/v2/health/live",
                "/v2/health/ready",
                f"/v2/models/{model_name}/ready",
                f"/v2/models/{model_name}/versions/1",
                "/v2/models/someone-else",
                f"/v2/models/{model_name}/versions/7",
            )
        }
        infer_status, inferred = call(base, f"/v2/models/{model_name}/infer", {"id": "req-7", "inputs": tensors})
        _, only_label = call(
            base, f"/v2/models/{model_name}/versions/1/infer", {"inputs": tensors, "outputs": [{"name": "label"}]}
        )
        _, predicted = call(base, "/predict", {"records": records})
        wrong_type = [{**tensor, "datatype": "FP32"} if tensor["name"] == "tenure" else tensor for tensor in tensors]
        bad_shape = [{**tensor, "shape": [4]} if tensor["name"] == "tenure" else tensor for tensor in tensors]
        refused = [
            (call(base, f"/v2/models/{model_name}/infer", body), status, text)
            for body, status, text in [
                ({"inputs": wrong_type}, 422, "input 'tenure': datatype 'FP32' does not fit the field's type integer"),
                ({"inputs": bad_shape}, 422, "input 'tenure': shape [4] holds 4 values, data has 5"),
                ({"inputs": tensors[1:]}, 422, f"no tensor for input field(s) {tensors[0]['name']!r}"),
                (
                    {"inputs": tensors, "outputs": [{"name": "logits"}]},
                    400,
                    "field 'outputs': no output named 'logits'",
                ),
                ({"instances": records}, 400, "body must be an inference request"),
            ]
        ]
        # Metrics label requests by route template, not by path: one series per route whatever the names sent.
        infer_counts = [
            metric(base, "mlkeel_serve_requests_total", endpoint=endpoint, status=status)
            for endpoint in ("/v2/models/{model_name}/infer", "/v2/models/{model_name}/versions/{model_version}/infer")
            for status in ("200", "400", "422")
        ]

    assert {path: status for path, (status, _) in statuses.items()} == {
        "/v2": 200,
        "/v2/health/live": 200,
        "/v2/health/ready": 200,
        f"/v2/models/{model_name}/ready": 200,
        f"/v2/models/{model_name}/versions/1": 200,
        "/v2/models/someone-else": 404,
        f"/v2/models/{model_name}/versions/7": 404,
    }
    assert statuses["/v2/health/ready"][1] == {"ready": True} and statuses["/v2/health/live"][1] == {"live": True}
    assert "is not served here (this server serves" in statuses["/v2/models/someone-else"][1]["error"]
    assert metadata["name"] == model_name and metadata["versions"] == ["1"]
    assert datatypes["tenure"] == "INT64" and datatypes["MonthlyCharges"] == "FP64" and datatypes["Contract"] == "BYTES"
    assert [output["name"] for output in metadata["outputs"]] == [
        "probability",
        "prediction",
        "label",
        "unseen_categories",
    ]
    assert infer_status == 200 and inferred["id"] == "req-7" and inferred["model_version"] == "1"
    outputs = {output["name"]: output for output in inferred["outputs"]}
    assert outputs["probability"]["shape"] == [5] and outputs["probability"]["datatype"] == "FP64"
    np.testing.assert_allclose(outputs["probability"]["data"], probabilities(predicted), rtol=0, atol=1e-12)
    assert outputs["prediction"]["data"] == [item["prediction"] for item in predicted["predictions"]]
    assert outputs["unseen_categories"]["data"] == [""] * 5
    assert [output["name"] for output in only_label["outputs"]] == ["label"]
    for (status, answer), expected_status, text in refused:
        assert (status, text in answer["error"]) == (expected_status, True), (expected_status, text, answer)
    assert infer_counts == [1, 2, 3, 1, 0, 0]


def test_a_category_the_model_never_saw_is_scored_flagged_logged_and_counted(
    champion: str, mlflow_shared_uri: str, model_name: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    settings = ServeSettings(champion, mlflow_shared_uri, str(log_dir))
    with serving_in_thread(settings) as (base, state):
        model = wait_ready(state)
        records = json_records(holdout_rows(telco_split[1], 3).select(model.feature_names))
        assert "Two year" in model.categories["Contract"] and "Contract" in state.model.describe()["categorical_fields"]
        novel = [
            records[0],
            {**records[1], "Contract": "Ten year"},
            {**records[2], "Contract": "Ten year", "gender": "X"},
        ]
        status, answer = call(base, "/predict", {"records": novel, "ids": ["known", "one-new", "two-new"]})
        tensors = [
            {
                "name": spec.name,
                "datatype": "BYTES" if spec.type == "string" else "FP64",
                "shape": [1],
                "data": [novel[1][spec.name]],
            }
            if spec.type in ("string", "float")
            else {"name": spec.name, "datatype": "INT64", "shape": [1], "data": [novel[1][spec.name]]}
            for spec in model.fields
        ]
        infer_status, inferred = call(base, f"/v2/models/{model_name}/infer", {"inputs": tensors})
        flagged_contract = metric(base, "mlkeel_serve_unseen_categories_total", field="Contract")
        flagged_gender = metric(base, "mlkeel_serve_unseen_categories_total", field="gender")
        flagged_records = metric(base, "mlkeel_serve_records_with_unseen_categories_total")

    assert status == 200 and infer_status == 200
    found = [item["unseen_categories"] for item in answer["predictions"]]
    assert found == [{}, {"Contract": "Ten year"}, {"Contract": "Ten year", "gender": "X"}]
    assert all(0.0 <= probability <= 1.0 for probability in probabilities(answer))  # scored, not refused
    outputs = {output["name"]: output["data"] for output in inferred["outputs"]}
    assert outputs["unseen_categories"] == ["Contract"]
    assert outputs["probability"] == pytest.approx([answer["predictions"][1]["probability"]], abs=1e-12)
    assert (flagged_contract, flagged_gender, flagged_records) == (3, 1, 3)
    log = read_prediction_logs(log_dir)
    logged = dict(zip(log.column("request_id").to_pylist(), log.column(UNSEEN_CATEGORIES).to_pylist(), strict=True))
    assert {key: logged[key] for key in ("known", "one-new", "two-new")} == {
        "known": [],
        "one-new": ["Contract"],
        "two-new": ["Contract", "gender"],
    }


def fuzz(operation: Any, base: str, seen: dict[str, set[int]], failures: list[str]) -> None:
    """Send the requests hypothesis generates from one operation's schemas; record statuses, every 5xx and every
    answer that does not fit the document's response schema for its status."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import response_schema_conformance

    label = f"{operation.method.upper()} {operation.path}"
    examples = FUZZ_EXAMPLES if operation.method == "post" else 5

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def exercise(case: Any) -> None:
        response = case.call(base_url=base)
        seen.setdefault(label, set()).add(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:300]} for {case.body!r:.300}")
            return
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except Exception as error:  # schemathesis's FailureGroup: the answer breaks the documented schema
            failures.append(f"{label}: {response.status_code} answer breaks its schema: {error!s:.500}")

    exercise()


@pytest.fixture(params=["binary", "multiclass", "regression"])
def task_model(request: pytest.FixtureRequest, mlflow_shared_uri: str, task_champion) -> tuple[str, str]:
    """``(task, models:/...@champion)``: the Telco champion (binary), wine (multiclass), diabetes (regression)."""
    if request.param == "binary":
        return "binary", request.getfixturevalue("champion")
    return request.param, task_champion(mlflow_shared_uri, request.param).model_uri


def test_the_openapi_document_is_committed_served_and_no_generated_request_gets_a_5xx(
    task_model: tuple[str, str], mlflow_shared_uri: str, tmp_path: Path
) -> None:
    import schemathesis

    task, champion = task_model

    assert COMMITTED_OPENAPI.read_text(encoding="utf-8") == render(), (
        "components/serve/openapi.json is stale: regenerate it with "
        "python -m mlkeel.components.serve.openapi components/serve/openapi.json"
    )
    serve_settings = ServeSettings(champion, mlflow_shared_uri, str(tmp_path / "log"), max_body_bytes=200_000)
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    with serving_in_thread(serve_settings) as (base, state):
        wait_ready(state)
        status, document = call(base, "/openapi.json")
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            fuzz(operation, base, seen, failures)
        errors_logged = metric(base, "mlkeel_serve_requests_total", status="500")

    assert status == 200 and document["paths"]["/v2/models/{model_name}/infer"]["post"]
    schemas = document["components"]["schemas"]
    fields = schemas["Record"]["properties"]
    if task == "binary":
        assert fields["tenure"]["type"] == "integer" and fields["Contract"]["type"] == "string"
    # The served document describes this model's answer only: its task's fields (a multiclass model's classes).
    answer = schemas["Prediction"]["properties"]
    expected = {
        "binary": {"id", "prediction", "label", "probability", "unseen_categories"},
        "multiclass": {"id", "label", "probability", "probabilities", "unseen_categories"},
        "regression": {"id", "predicted_value", "unseen_categories"},
    }
    assert set(answer) == expected[task]
    if task == "multiclass":
        assert answer["label"]["enum"] == answer["probabilities"]["required"] == ["barbera", "barolo", "grignolino"]
    # Every operation was fuzzed (schemathesis leaves out the document's own path).
    assert {operation.path for operation in operations} == set(document["paths"]) - {"/openapi.json"}
    assert not failures, "\n".join(failures[:10])
    assert errors_logged == 0
    # The fuzzing reached both outcomes of the scoring endpoints: accepted (200) and refused (4xx).
    assert 200 in seen["POST /predict"] and any(400 <= code < 500 for code in seen["POST /predict"]), seen
    assert any(400 <= code < 500 for code in seen["POST /v2/models/{model_name}/infer"]), seen
