"""The OpenAPI document of the serving app (``GET /openapi.json``; committed as ``components/serve/openapi.json``).

Without a model (the committed document) a record is any object of scalar values and a prediction is one of the
three tasks' shapes (binary, multiclass, regression); the served document, once the model is loaded, names its
fields and their types and describes its task's answer only (a multiclass model's classes by name), so that a
client generator (or schemathesis, in ``tests/unit/test_serve_protocols.py``) sends what this model reads and
can check what it answers. Regenerate the committed file with
``python -m mlkeel.components.serve.openapi components/serve/openapi.json``; a test fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Final

from mlkeel.components.serve.protocols import (
    DF_RECORDS,
    DF_SPLIT,
    IDS_KEY,
    INPUTS,
    INSTANCES,
    OIP_DATATYPES,
    OIP_TASK_OUTPUTS,
    PARAMS_KEY,
    RECORDS_KEY,
)

if TYPE_CHECKING:
    from mlkeel.components.serve.logic import ServingModel

OPENAPI_VERSION: Final = "3.0.3"
_SCALAR: Final = {"nullable": True, "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
_JSON_TYPES: Final = {
    "integer": {"type": "integer", "format": "int64"},
    "float": {"type": "number"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "timestamp": {"type": "string", "format": "date-time"},
}
_ALL_DATATYPES: Final = sorted({datatype for kinds in OIP_DATATYPES.values() for datatype in kinds})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _strings(*names: str) -> dict[str, Any]:
    """Properties ``names``, each a string."""
    return {name: {"type": "string"} for name in names}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "not JSON, or not one of the request formats",
        404: "no such model (or version) here",
        413: "body larger than the server's limit",
        415: "body declared as something other than JSON",
        422: "a record breaks the model's input schema (the message names the record and field)",
        503: "the model is not loaded yet, or the prediction log cannot keep up",
    }
    return {str(status): _json("Error", reasons[status]) for status in statuses}


_UNSEEN: Final = {
    "type": "object",
    "description": "field -> a category value the model never saw in training (scored anyway)",
    "additionalProperties": _SCALAR,
}
_PROBABILITY: Final = {"type": "number", "minimum": 0, "maximum": 1}


def _prediction_schemas(classes: list[str] | None) -> dict[str, dict[str, Any]]:
    """Each task's ``/predict`` answer item; ``classes`` names a multiclass model's (None: any class names)."""
    if classes is None:
        every: dict[str, Any] = {"type": "object", "additionalProperties": _PROBABILITY, "minProperties": 2}
        label: dict[str, Any] = {"type": "string"}
    else:
        properties = dict.fromkeys(classes, _PROBABILITY)
        every = {"type": "object", "properties": properties, "required": classes, "additionalProperties": False}
        label = {"type": "string", "enum": classes}
    return {
        "binary": {
            "type": "object",
            "properties": {
                **_strings("id"),
                "prediction": {"type": "integer", "enum": [0, 1]},
                "label": {"type": "string", "nullable": True},
                "probability": _PROBABILITY,
                "unseen_categories": _UNSEEN,
            },
            "required": ["id", "prediction", "label", "probability", "unseen_categories"],
        },
        "multiclass": {
            "type": "object",
            "description": "A multiclass model's answer: the predicted class (the most probable), its probability "
            "and every class's probability.",
            "properties": {
                **_strings("id"),
                "label": label,
                "probability": _PROBABILITY,
                "probabilities": every,
                "unseen_categories": _UNSEEN,
            },
            "required": ["id", "label", "probability", "probabilities", "unseen_categories"],
            "additionalProperties": False,
        },
        "regression": {
            "type": "object",
            "description": "A regression model's answer: the predicted value.",
            "properties": {**_strings("id"), "predicted_value": {"type": "number"}, "unseen_categories": _UNSEEN},
            "required": ["id", "predicted_value", "unseen_categories"],
            "additionalProperties": False,
        },
    }


def _schemas(model: ServingModel | None) -> dict[str, Any]:
    if model is None:
        record: dict[str, Any] = {"type": "object", "additionalProperties": _SCALAR, "minProperties": 1}
        column_object: dict[str, Any] = {
            "type": "object",
            "additionalProperties": {"type": "array", "items": _SCALAR},
            "minProperties": 1,
        }
        value: dict[str, Any] = _SCALAR
        names: dict[str, Any] = {"type": "string"}
    else:
        types = {spec.name: {**_JSON_TYPES[spec.type], "nullable": spec.nullable} for spec in model.fields}
        record = {"type": "object", "properties": types, "required": list(types), "additionalProperties": False}
        column_object = {
            "type": "object",
            "properties": {name: {"type": "array", "items": kind, "minItems": 1} for name, kind in types.items()},
            "required": list(types),
            "additionalProperties": False,
        }
        value = {"nullable": True, "anyOf": list({json.dumps(kind): kind for kind in _JSON_TYPES.values()}.values())}
        names = {"type": "string", "enum": list(types)}
    records = {"type": "array", "items": _ref("Record"), "minItems": 1}
    params = {"type": "object", "description": "MLflow's inference parameters: accepted and ignored"}

    def request(key: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {key: schema, PARAMS_KEY: params, **more},
            "required": [key],
            "additionalProperties": False,
        }

    if model is None:
        shapes = _prediction_schemas(None)
        prediction: dict[str, Any] = {
            "description": "One record's answer, in the shape of the served model's task (binary, multiclass, "
            "regression; the served document names it).",
            "oneOf": [shapes[task] for task in OIP_TASK_OUTPUTS],
        }
        outputs = sorted({name for names in OIP_TASK_OUTPUTS.values() for name in names})
    else:
        prediction = _prediction_schemas(list(model.classes))[model.task]
        outputs = list(OIP_TASK_OUTPUTS[model.task])
    tensor_kinds = (
        [{"name": spec.name, "datatypes": list(OIP_DATATYPES[spec.type])} for spec in model.fields] if model else []
    )
    return {
        "Record": record,
        "PredictRequest": {
            "description": "Exactly one of mlkeel's records or MLflow's four input formats (dataframe_split, "
            "dataframe_records, instances, inputs), as `mlflow models serve` takes them.",
            "oneOf": [
                request(
                    RECORDS_KEY, records, **{IDS_KEY: {"type": "array", "items": {"type": "string", "minLength": 1}}}
                ),
                request(DF_RECORDS, records),
                request(
                    DF_SPLIT,
                    {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": names},
                            "data": {"type": "array", "items": {"type": "array", "items": value}, "minItems": 1},
                            "index": {"type": "array"},
                        },
                        "required": ["columns", "data"],
                        "additionalProperties": False,
                    },
                ),
                request(INSTANCES, records),
                request(INPUTS, column_object),
            ],
        },
        "Prediction": prediction,
        "PredictResponse": {
            "type": "object",
            "properties": {
                **_strings("request_id", "model_name", "model_version", "model_uri"),
                "predictions": {"type": "array", "items": _ref("Prediction")},
            },
            "required": ["request_id", "model_name", "model_version", "model_uri", "predictions"],
        },
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}, "errors": {"type": "array", "items": {"type": "string"}}},
            "required": ["error"],
        },
        "InferTensor": {
            "type": "object",
            "description": "One input field's values: shape [N] or [N, 1]. "
            + ("; ".join(f"{item['name']}: {'/'.join(item['datatypes'])}" for item in tensor_kinds) or ""),
            "properties": {
                "name": names,
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 2},
                "datatype": {"type": "string", "enum": _ALL_DATATYPES},
                "data": {"type": "array", "items": value},
                "parameters": {"type": "object"},
            },
            "required": ["name", "shape", "datatype", "data"],
            "additionalProperties": False,
        },
        "InferRequest": {
            "type": "object",
            "properties": {
                **_strings("id"),
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": _ref("InferTensor"), "minItems": 1},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string", "enum": outputs}},
                        "required": ["name"],
                    },
                },
            },
            "required": ["inputs"],
            "additionalProperties": False,
        },
        "InferResponse": {
            "type": "object",
            "properties": {
                **_strings("model_name", "model_version", "id"),
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            **_strings("name", "datatype"),
                            "shape": {"type": "array", "items": {"type": "integer"}},
                            "data": {"type": "array"},
                            "parameters": {
                                "type": "object",
                                "description": "multiclass probabilities: classes, the class of each column",
                            },
                        },
                        "required": ["name", "datatype", "shape", "data"],
                    },
                },
            },
            "required": ["model_name", "model_version", "id", "outputs"],
        },
        "ModelMetadata": {
            "type": "object",
            "properties": {
                **_strings("name", "platform"),
                "versions": {"type": "array", "items": {"type": "string"}},
                "inputs": {"type": "array", "items": {"type": "object"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
                "parameters": {
                    "type": "object",
                    "description": "task (binary, multiclass, regression) and a multiclass model's classes",
                },
            },
            "required": ["name", "platform", "inputs", "outputs"],
        },
        "Status": {"type": "object", "additionalProperties": True},
    }


def openapi_document(model: ServingModel | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the serving app.

    Args:
        model: The loaded model (its fields and name go into the schemas and path parameters); None for the
            model-independent document.

    Returns:
        The document, JSON-ready.
    """
    model_name: dict[str, Any] = {"type": "string"}
    version: dict[str, Any] = {"type": "string"}
    if model is not None:
        model_name = {"type": "string", "enum": [model.name]}
        version = {"type": "string", "enum": [model.resolved.version or "none"]}
    name_parameter = {"name": "model_name", "in": "path", "required": True, "schema": model_name}
    version_parameter = {"name": "model_version", "in": "path", "required": True, "schema": version}
    body = {"required": True, "content": {"application/json": {"schema": _ref("PredictRequest")}}}
    infer_body = {"required": True, "content": {"application/json": {"schema": _ref("InferRequest")}}}
    infer = {
        "summary": "Open Inference Protocol (v2) inference: one tensor per input field",
        "requestBody": infer_body,
        "responses": {
            "200": _json("InferResponse", "one output tensor per requested output"),
            **_errors(400, 404, 413, 415, 422, 503),
        },
    }
    metadata = {
        "summary": "Open Inference Protocol model metadata",
        "responses": {"200": _json("ModelMetadata", "the model's inputs and outputs"), **_errors(404, 503)},
    }

    def status(summary: str, *errors: int) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": _json("Status", "yes"), **_errors(*errors)}}}

    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Score records (mlkeel's records or any input format of MLflow's scoring protocol)",
                "requestBody": body,
                "responses": {
                    "200": _json("PredictResponse", "one prediction per record"),
                    **_errors(400, 413, 415, 422, 503),
                },
            }
        },
        "/healthz": status("liveness"),
        "/readyz": status("readiness: 200 once the model is loaded", 503),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "this document",
                "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {}}}},
            }
        },
        "/v2": status("Open Inference Protocol server metadata"),
        "/v2/health/live": status("Open Inference Protocol liveness"),
        "/v2/health/ready": status("Open Inference Protocol readiness", 503),
        "/v2/models/{model_name}": {"parameters": [name_parameter], "get": metadata},
        "/v2/models/{model_name}/ready": {"parameters": [name_parameter], **status("model readiness", 404, 503)},
        "/v2/models/{model_name}/infer": {"parameters": [name_parameter], "post": infer},
        "/v2/models/{model_name}/versions/{model_version}": {
            "parameters": [name_parameter, version_parameter],
            "get": metadata,
        },
        "/v2/models/{model_name}/versions/{model_version}/infer": {
            "parameters": [name_parameter, version_parameter],
            "post": infer,
        },
    }
    from mlkeel import __version__

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "mlkeel serve",
            "version": __version__,
            "description": "A registered tabular model behind MLflow's scoring protocol (/predict) and the Open "
            "Inference Protocol (/v2). Every scored record is logged; a 4xx names the record and field.",
        },
        "paths": paths,
        "components": {"schemas": _schemas(model)},
    }


def render(model: ServingModel | None = None) -> str:
    """``openapi_document(model)`` as the committed file's text (sorted keys, 2-space indent, final newline)."""
    return json.dumps(openapi_document(model), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m mlkeel.components.serve.openapi [PATH]
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as handle:
            handle.write(render())
    else:
        sys.stdout.write(render())
