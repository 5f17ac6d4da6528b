"""The request formats the serving app speaks, each reduced to one list of records that ``logic`` checks and scores.

``/predict`` (MLflow's scoring protocol, as ``mlflow models serve`` answers ``/invocations``, plus mlkeel's own):
    ``{"records": [{col: value}, ...]}``             mlkeel's own (with optional ``"ids": [...]``)
    ``{"dataframe_records": [{col: value}, ...]}``   pandas ``orient="records"``
    ``{"dataframe_split": {"columns": [...], "data": [[...], ...], "index": [...]}}``  pandas ``orient="split"``
    ``{"instances": [{col: value}, ...]}``           TF Serving's row format (or a column object, as MLflow takes)
    ``{"inputs": {col: [values], ...}}``             TF Serving's column format (or a list of records)
    Exactly one of them; ``"params"`` (MLflow's inference parameters) is accepted and ignored: these models take
    none. MLflow's own parsers (``mlflow.pyfunc.scoring_server.infer_and_parse_data``) build a pandas DataFrame,
    which turns integers beside a null into floats and loses which record and field a value came from; so the
    shapes are read here, with MLflow's error wording, and every value is checked against the model's input
    schema by the same code whatever the format (``tests/unit/test_serve_protocols.py`` compares the rows with
    MLflow's parser).

``/v2/models/{name}/infer`` (the Open Inference Protocol, "KServe v2", that KServe, Triton and MLServer clients
speak): one input tensor per column, named after it, of shape ``[N]`` or ``[N, 1]`` with the column's datatype
(``INT64``/``INT32``/... for integers, ``FP64``/``FP32`` for numbers, ``BOOL``, ``BYTES`` for text and ISO
timestamps); the answer has the outputs of the model's task (``OIP_TASK_OUTPUTS``), or those the request names
in ``outputs``:

    binary      ``probability`` (FP64 [N], of the positive class), ``prediction`` (INT64 [N], 1 = positive class),
                ``label`` (BYTES [N]), ``unseen_categories``
    multiclass  ``label`` (BYTES [N], the predicted class), ``probability`` (FP64 [N], of the predicted class),
                ``probabilities`` (FP64 [N, C], every class's probability, row-major, columns in the order of the
                tensor's ``parameters.classes``), ``unseen_categories``
    regression  ``predicted_value`` (FP64 [N]), ``unseen_categories``

``unseen_categories`` (BYTES [N]) holds the fields with a category the model never saw, comma-separated ("" for
none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

RECORDS_KEY: Final = "records"
IDS_KEY: Final = "ids"
PARAMS_KEY: Final = "params"
DF_RECORDS: Final = "dataframe_records"
DF_SPLIT: Final = "dataframe_split"
INSTANCES: Final = "instances"
INPUTS: Final = "inputs"
# MLflow's scoring protocol (mlflow.pyfunc.scoring_server.SUPPORTED_FORMATS), in the order its docs list them.
MLFLOW_FORMATS: Final = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
PREDICT_FORMATS: Final = (RECORDS_KEY, *MLFLOW_FORMATS)
SPLIT_KEYS: Final = ("columns", "data", "index")

# Open Inference Protocol: datatypes a field of each mlkeel logical type accepts; the first is what metadata says.
OIP_INTEGERS: Final = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
OIP_DATATYPES: Final = {
    "integer": OIP_INTEGERS,
    "float": ("FP64", "FP32", "FP16", *OIP_INTEGERS),
    "boolean": ("BOOL",),
    "string": ("BYTES",),
    "timestamp": ("BYTES",),
}
OIP_REQUEST_KEYS: Final = ("id", "parameters", "inputs", "outputs")
OIP_TENSOR_KEYS: Final = ("name", "shape", "datatype", "data", "parameters")
OIP_PROBABILITY: Final = "probability"
OIP_PREDICTION: Final = "prediction"
OIP_LABEL: Final = "label"
OIP_UNSEEN: Final = "unseen_categories"
OIP_PROBABILITIES: Final = "probabilities"
OIP_VALUE: Final = "predicted_value"
# Output name -> datatype, in answer order: a binary model's, then each task's (``mlkeel.task.Task`` values).
OIP_OUTPUTS: Final = {OIP_PROBABILITY: "FP64", OIP_PREDICTION: "INT64", OIP_LABEL: "BYTES", OIP_UNSEEN: "BYTES"}
OIP_TASK_OUTPUTS: Final[dict[str, dict[str, str]]] = {
    "binary": OIP_OUTPUTS,
    "multiclass": {OIP_LABEL: "BYTES", OIP_PROBABILITY: "FP64", OIP_PROBABILITIES: "FP64", OIP_UNSEEN: "BYTES"},
    "regression": {OIP_VALUE: "FP64", OIP_UNSEEN: "BYTES"},
}
# The tensor parameter naming the class of each column of ``probabilities``.
OIP_CLASSES_PARAMETER: Final = "classes"
OIP_PROTOCOL_VERSION: Final = "v2"

Locate = Callable[[int, str | None], str]


class ProtocolError(ValueError):
    """A body whose shape no format accepts; ``status`` is 400 (wrong shape) or 422 (right shape, bad content)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Rows:
    """The records of one request, before their values are checked.

    Attributes:
        records: One entry per row; a row that should be an object but is not stays as given (the check
            reports it).
        locate: ``locate(row, field)`` names row ``row`` (and ``field`` in it) in an error message, the way the
            request wrote it: ``records[3].tenure``, ``dataframe_split.data[3][5] (tenure)``, ``inputs.tenure[3]``.
        source: The format key (``records``, ``dataframe_split``, ..., ``inputs`` for the Open Inference Protocol).
        columnar: The format names the columns once for every row (``dataframe_split``, column objects, tensors):
            missing and unknown columns are reported once (``check_columns``), not once per row.
    """

    records: list[Any]
    locate: Locate
    source: str
    columnar: bool = False


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _row_locator(prefix: str) -> Locate:
    def locate(row: int, field: str | None) -> str:
        return f"{prefix}[{row}]" + (f".{field}" if field else "")

    return locate


def _column_locator(prefix: str) -> Locate:
    def locate(row: int, field: str | None) -> str:
        return f"{prefix}.{field}[{row}]" if field else f"{prefix} row {row}"

    return locate


def predict_rows(document: Any) -> Rows:
    """The records of a ``/predict`` body (already decoded from JSON), in any of ``PREDICT_FORMATS``.

    Args:
        document: The decoded JSON body.

    Returns:
        The ``Rows`` (values not yet checked against the model).

    Raises:
        ProtocolError: 400 for a body with no or several format keys or unknown top-level fields, 422 for a format
            key whose value has the wrong shape (MLflow answers 400 to all of these: mlkeel keeps 422 for "the
            right key, the wrong content", as for ``records``).
    """
    expected = (
        f'body must be a JSON object {{"{RECORDS_KEY}": [{{...}}, ...]}}, or a JSON dictionary with exactly one of '
        f"MLflow's input fields {', '.join(MLFLOW_FORMATS)}"
    )
    if isinstance(document, list):
        raise ProtocolError(400, f"{expected}. Received a list.")
    if not isinstance(document, dict):
        raise ProtocolError(400, f"{expected}. Received {_kind(document)}.")
    keys = [key for key in PREDICT_FORMATS if key in document]
    if len(keys) != 1:
        raise ProtocolError(400, f"{expected}. Received dictionary with input fields: {sorted(document)}")
    key = keys[0]
    unknown = sorted(set(document) - {key, IDS_KEY, PARAMS_KEY})
    if unknown:
        raise ProtocolError(400, f"unknown top-level field(s) {', '.join(map(repr, unknown))}")
    params = document.get(PARAMS_KEY)
    if params is not None and not isinstance(params, dict):
        raise ProtocolError(
            400, f"field {PARAMS_KEY!r}: expected an object of inference parameters, got {_kind(params)}"
        )
    value = document[key]
    if key == DF_SPLIT:
        return _split_rows(value)
    if key in (INPUTS, INSTANCES) and isinstance(value, dict):
        return _column_rows(value, key)
    if not isinstance(value, list):
        if key == DF_RECORDS:  # MLflow's wording (mlflow.utils.proto_json_utils.dataframe_from_parsed_json)
            got = "dictionary" if isinstance(value, dict) else _kind(value)
            raise ProtocolError(422, f"Dataframe records format must be a list of records. Got {got}.")
        described = "a list of objects" + ("" if key == RECORDS_KEY else " or an object of columns")
        raise ProtocolError(422, f"field {key!r}: expected {described}, got {_kind(value)}")
    if not value:
        raise ProtocolError(422, f"field {key!r}: the list is empty; send at least one record")
    return Rows(value, _row_locator(key), key)


def _split_rows(value: Any) -> Rows:
    """``dataframe_split``: ``{"columns": [...], "data": [[...], ...], "index": [...] (ignored)}``."""
    if not isinstance(value, dict):
        raise ProtocolError(422, f"Dataframe split format must be a dictionary. Got {_kind(value)}.")
    keys = set(value)
    if "data" not in keys or keys - set(SPLIT_KEYS):
        raise ProtocolError(
            422,
            "Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. "
            f"Got {sorted(keys)}.",
        )
    columns, data = value.get("columns"), value["data"]
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise ProtocolError(
            422, f"{DF_SPLIT}.columns: expected the list of column names (the model reads named columns)"
        )
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise ProtocolError(422, f"{DF_SPLIT}.columns: column(s) named twice: {', '.join(map(repr, duplicated))}")
    if not isinstance(data, list) or not data:
        raise ProtocolError(422, f"{DF_SPLIT}.data: expected a non-empty list of rows, got {_kind(data)}")
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise ProtocolError(422, f"{DF_SPLIT}.index: expected a list of {len(data)} labels, one per row")
    records: list[Any] = []
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ProtocolError(
                422,
                f"{DF_SPLIT}.data[{number}]: expected a list of {len(columns)} values (one per column), got "
                + (f"{len(row)} values" if isinstance(row, list) else _kind(row)),
            )
        records.append(dict(zip(columns, row, strict=True)))
    position = {name: place for place, name in enumerate(columns)}

    def locate(row: int, field: str | None) -> str:
        if field is None or field not in position:
            return f"{DF_SPLIT}.data[{row}]" + (f" ({field})" if field else "")
        return f"{DF_SPLIT}.data[{row}][{position[field]}] ({field})"

    return Rows(records, locate, DF_SPLIT, columnar=True)


def _column_rows(value: dict[str, Any], key: str) -> Rows:
    """``{"inputs": {col: [values], ...}}`` (TF Serving's columns; MLflow takes them under ``instances`` too)."""
    if not value:
        raise ProtocolError(422, f"field {key!r}: no columns; send at least one record")
    lengths = {}
    for name, column in value.items():
        if not isinstance(column, list):
            raise ProtocolError(422, f"{key}.{name}: expected a list of values (one per row), got {_kind(column)}")
        lengths[name] = len(column)
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise ProtocolError(422, f"field {key!r}: every column needs the same number of values ({shown})")
    rows = next(iter(lengths.values()))
    if rows == 0:
        raise ProtocolError(422, f"field {key!r}: the columns are empty; send at least one record")
    records = [{name: column[row] for name, column in value.items()} for row in range(rows)]
    return Rows(records, _column_locator(key), key, columnar=True)


def check_columns(rows: Rows, fields: Sequence[str]) -> None:
    """For column formats: name the missing and unknown columns once (not once per row).

    Args:
        rows: From ``predict_rows``.
        fields: The model's input field names.

    Raises:
        ProtocolError: 422 naming the columns.
    """
    if not rows.columnar or not rows.records:
        return  # a list of records: checked record by record
    given = set(rows.records[0])
    missing = [name for name in fields if name not in given]
    extra = sorted(given - set(fields))
    where = f"{rows.source}.columns" if rows.source == DF_SPLIT else f"field {rows.source!r}"
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"unknown column(s) {', '.join(map(repr, extra))}")
    if problems:
        raise ProtocolError(422, f"{where}: {'; '.join(problems)}")


# ----------------------------------------------------------------------------------------------------------
# Open Inference Protocol (v2)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InferRequest:
    """An Open Inference Protocol request, its tensors turned into records.

    Attributes:
        rows: The records (``source`` ``inputs``).
        request_id: The request's ``id`` ("" when none).
        outputs: Output names to answer with, in ``OIP_OUTPUTS`` order.
    """

    rows: Rows
    request_id: str
    outputs: tuple[str, ...]


def _flatten(data: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def infer_rows(
    document: Any, field_types: Mapping[str, str], available: Mapping[str, str] = OIP_OUTPUTS
) -> InferRequest:
    """Read an Open Inference Protocol ``infer`` request against the model's fields.

    Args:
        document: The decoded JSON body.
        field_types: The model's input fields: name -> mlkeel logical type.
        available: The outputs the model's task answers with (``OIP_TASK_OUTPUTS``), name -> datatype.

    Returns:
        The ``InferRequest``.

    Raises:
        ProtocolError: 400 for a body that is not an inference request (or asks for an unknown output), 422 for
            tensors that do not fit the model (names, datatypes, shapes, row counts).
    """
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise ProtocolError(
            400, 'body must be an inference request {"inputs": [{"name", "shape", "datatype", "data"}]}'
        )
    unknown = sorted(set(document) - set(OIP_REQUEST_KEYS))
    if unknown:
        raise ProtocolError(400, f"unknown top-level field(s) {', '.join(map(repr, unknown))}")
    request_id = document.get("id", "")
    if not isinstance(request_id, str):
        raise ProtocolError(400, f"field 'id': expected a string, got {_kind(request_id)}")
    if not isinstance(document.get("parameters", {}), dict):
        raise ProtocolError(400, "field 'parameters': expected an object")
    outputs = _requested_outputs(document.get("outputs"), available)
    tensors = document["inputs"]
    if not tensors:
        raise ProtocolError(422, "field 'inputs': no tensors; send one per input field")
    columns: dict[str, list[Any]] = {}
    for number, tensor in enumerate(tensors):
        where = f"inputs[{number}]"
        if not isinstance(tensor, dict):
            raise ProtocolError(422, f"{where}: expected a tensor object, got {_kind(tensor)}")
        missing = [key for key in ("name", "shape", "datatype", "data") if key not in tensor]
        extra = sorted(set(tensor) - set(OIP_TENSOR_KEYS))
        if missing or extra:
            problem = (
                f"missing {', '.join(map(repr, missing))}" if missing else f"unknown {', '.join(map(repr, extra))}"
            )
            raise ProtocolError(422, f"{where}: {problem} (a tensor has name, shape, datatype, data)")
        name, shape, datatype, data = tensor["name"], tensor["shape"], tensor["datatype"], tensor["data"]
        if not isinstance(name, str):
            raise ProtocolError(422, f"{where}.name: expected a string, got {_kind(name)}")
        where = f"input {name!r}"
        if name in columns:
            raise ProtocolError(422, f"{where}: sent twice")
        if name not in field_types:
            raise ProtocolError(422, f"{where}: the model has no such input field")
        kind = field_types[name]
        if datatype not in OIP_DATATYPES[kind]:
            raise ProtocolError(
                422,
                f"{where}: datatype {datatype!r} does not fit the field's type {kind} "
                f"(send {' or '.join(OIP_DATATYPES[kind][:2])})",
            )
        if (
            not isinstance(shape, list)
            or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape)
            or len(shape) not in (1, 2)
            or (len(shape) == 2 and shape[1] != 1)
        ):
            raise ProtocolError(422, f"{where}: shape {shape!r}: expected [N] or [N, 1] (one value per row)")
        if not isinstance(data, list):
            raise ProtocolError(422, f"{where}: data: expected a list of values, got {_kind(data)}")
        values = _flatten(data)
        if len(values) != math.prod(shape):
            raise ProtocolError(422, f"{where}: shape {shape} holds {math.prod(shape)} values, data has {len(values)}")
        columns[name] = values
    missing_fields = [name for name in field_types if name not in columns]
    if missing_fields:
        raise ProtocolError(422, f"field 'inputs': no tensor for input field(s) {', '.join(map(repr, missing_fields))}")
    counts = {len(values) for values in columns.values()}
    if len(counts) != 1:
        shown = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise ProtocolError(422, f"field 'inputs': every tensor needs the same number of rows ({shown})")
    rows = counts.pop()
    if rows == 0:
        raise ProtocolError(422, "field 'inputs': the tensors are empty; send at least one row")
    records = [{name: values[row] for name, values in columns.items()} for row in range(rows)]

    def locate(row: int, field: str | None) -> str:
        return f"input {field!r} data[{row}]" if field else f"inputs row {row}"

    return InferRequest(Rows(records, locate, INPUTS, columnar=True), request_id, outputs)


def _requested_outputs(requested: Any, available: Mapping[str, str]) -> tuple[str, ...]:
    if requested is None:
        return tuple(available)
    if not isinstance(requested, list) or not all(isinstance(item, dict) and "name" in item for item in requested):
        raise ProtocolError(400, "field 'outputs': expected a list of {\"name\": ...} objects")
    names = [item["name"] for item in requested]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ProtocolError(
            400, f"field 'outputs': no output named {', '.join(map(repr, unknown))} (outputs: {', '.join(available)})"
        )
    return tuple(name for name in available if name in names)


def infer_response(
    model_name: str,
    model_version: str,
    request_id: str,
    outputs: Sequence[str],
    columns: Mapping[str, Sequence[Any]],
    task: str = "binary",
    classes: Sequence[str] = (),
) -> dict[str, Any]:
    """The Open Inference Protocol answer to an ``infer`` request.

    Args:
        model_name: The model's name.
        model_version: Its version.
        request_id: The request's id.
        outputs: Output names to include (keys of ``OIP_TASK_OUTPUTS[task]``), in answer order.
        columns: Output name -> one value per row: a number or text, a list of one probability per class for
            ``probabilities``, for ``unseen_categories`` the fields holding a category the model never saw (a
            mapping or a list of names), for ``label`` the class text or None (sent as "").
        task: The model's task (``binary``, ``multiclass``, ``regression``): which outputs exist and their types.
        classes: A multiclass model's classes, in the order of the columns of ``probabilities``.

    Returns:
        ``{"model_name", "model_version", "id", "outputs": [{"name", "datatype", "shape", "data"}, ...]}``;
        ``probabilities`` has shape ``[N, C]``, its data row-major, and ``parameters.classes``.
    """
    datatypes = OIP_TASK_OUTPUTS[task]
    rows = len(next(iter(columns.values())))
    answered = []
    for name in outputs:
        values = list(columns[name])
        tensor: dict[str, Any] = {"name": name, "datatype": datatypes[name], "shape": [rows]}
        if name == OIP_LABEL:
            values = [label or "" for label in values]
        elif name == OIP_UNSEEN:
            values = [",".join(found) for found in values]
        elif name == OIP_PROBABILITIES:
            tensor["shape"] = [rows, len(classes)]
            tensor["parameters"] = {OIP_CLASSES_PARAMETER: list(classes)}
            values = [probability for row in values for probability in row]
        answered.append({**tensor, "data": values})
    return {"model_name": model_name, "model_version": model_version, "id": request_id, "outputs": answered}


def model_metadata(
    model_name: str,
    model_version: str,
    field_types: Mapping[str, str],
    task: str = "binary",
    classes: Sequence[str] = (),
) -> dict[str, Any]:
    """The Open Inference Protocol model metadata (``GET /v2/models/{name}``).

    Args:
        model_name: The model's name.
        model_version: Its version ("" when not from a registry).
        field_types: Input field name -> mlkeel logical type.
        task: The model's task: its outputs (``OIP_TASK_OUTPUTS``).
        classes: A multiclass model's classes (the columns of ``probabilities``).

    Returns:
        ``{"name", "versions", "platform", "inputs": [{"name", "datatype", "shape"}], "outputs": [...],
        "parameters": {"task", "classes"?}}``; a multiclass ``probabilities`` output has shape ``[-1, C]`` and
        ``parameters.classes``.
    """
    outputs = []
    for name, datatype in OIP_TASK_OUTPUTS[task].items():
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [-1]}
        if name == OIP_PROBABILITIES:
            tensor = {**tensor, "shape": [-1, len(classes)], "parameters": {OIP_CLASSES_PARAMETER: list(classes)}}
        outputs.append(tensor)
    return {
        "name": model_name,
        "versions": [model_version] if model_version else [],
        "platform": "mlkeel-sklearn",
        "inputs": [
            {"name": name, "datatype": OIP_DATATYPES[kind][0], "shape": [-1]} for name, kind in field_types.items()
        ],
        "outputs": outputs,
        "parameters": {"task": task, **({OIP_CLASSES_PARAMETER: list(classes)} if task == "multiclass" else {})},
    }
