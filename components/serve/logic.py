"""Serve: a registered model behind a REST endpoint, and the infrastructure check that runs it before release.

The model's task (binary, multiclass or regression: ``mlkeel.modeling.model_task``, read from the model itself,
as train saved it) decides the answer's shape, the ``/metrics`` series and the prediction-log columns.

The app (Starlette on uvicorn: both already come with mlflow-skinny; chosen by measurement against
``mlflow models serve``, see benchmarks/README.md) loads ``models:/NAME@alias`` or ``models:/NAME/VERSION``
in a background thread at start-up, so liveness answers at once and readiness only once the model is loaded.

Endpoints:
    POST /predict   ``{"records": [{column: value, ...}, ...], "ids": [...] (optional)}``, or any input format
                    of MLflow's scoring protocol (``dataframe_split``, ``dataframe_records``, ``instances``,
                    ``inputs``: ``protocols``). Every record is checked against the model's input schema
                    (the validated ``data/schema.json`` its training run logged, else its MLflow signature)
                    before scoring: a bad body gets a 4xx whose JSON names the record and field, never a 5xx.
                    Bodies over ``max_body_bytes`` are refused (413) before any parsing and never held in memory.
                    The answer follows the model's task (``Scored.records``): binary ``prediction`` (0/1),
                    ``label``, ``probability`` (positive class); multiclass ``label`` (the predicted class),
                    ``probability`` (its probability), ``probabilities`` (every class -> its probability);
                    regression ``predicted_value``.
    GET  /healthz   liveness: 200 while the process serves.
    GET  /readyz    readiness: 200 once the model is loaded (with its task and classes), else 503 with the reason.
    GET  /metrics   Prometheus text: requests and latency by endpoint and status, categories the model never saw
                    (by field), the model's name/version as an info metric, and per task: a binary model's
                    predicted classes (``mlkeel_serve_predictions_total``, 1/0) and histogram of positive-class
                    probabilities (``mlkeel_serve_prediction_score``); a multiclass model's predicted classes
                    (``mlkeel_serve_class_predictions_total{predicted_class=<label>}``); a histogram of a
                    regression model's predicted values (``mlkeel_serve_predicted_value``; its count and sum:
                    ``mlkeel_serve_predicted_value_stats``, as a histogram with negative buckets has no sum).
    /v2/...         the Open Inference Protocol (``protocols``): health, server and model metadata, model
                    readiness, ``POST /v2/models/{name}/infer``.
    GET  /openapi.json  the OpenAPI document (``openapi``).

A value of a categorical field that the model's encoder never saw in training is scored (the encoder's
infrequent/unknown code) and flagged: in the answer, the prediction log's ``unseen_categories`` column and
``/metrics``.

Every scored record becomes one prediction-log row in the same schema as batch prediction
(``mlkeel.prediction_log``), buffered in memory and written as rolling Parquet part files
(``<dir>/date=YYYY-MM-DD/part-*.parquet``, each written atomically) that ``read_prediction_logs`` reads as one
table. Memory stays bounded: past ``max_buffered_rows`` unwritten rows, ``/predict`` answers 503 rather than
predict without logging.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mlkeel.components.serve.protocols import IDS_KEY, RECORDS_KEY
from mlkeel.constants import RUN_DATA_ARTIFACT_DIR, SCHEMA_ARTIFACT_FILE
from mlkeel.errors import DataError, MlkeelError, ParameterError, RegistryError

if TYPE_CHECKING:
    import pyarrow as pa

    from mlkeel.components.batch_predict.logic import ResolvedModel
    from mlkeel.components.serve.protocols import Rows
    from mlkeel.prediction_log import TaskOutputs

logger = logging.getLogger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
DEFAULT_MAX_BODY_BYTES: Final = 1 << 20
# An oversized body is read and dropped up to this size, so that the client reads the 413 (see read_body).
DRAIN_MAX_BYTES: Final = 64 << 20
DEFAULT_PREDICTION_LOG_DIR: Final = "prediction-log"
# A part file is written when this many rows wait, or every FLUSH_SECONDS, whichever comes first.
DEFAULT_FLUSH_ROWS: Final = 5_000
DEFAULT_FLUSH_SECONDS: Final = 10.0
DEFAULT_MAX_BUFFERED_ROWS: Final = 100_000
# At most this many problems are listed in one 4xx answer (the first one is also the message).
MAX_REPORTED_ERRORS: Final = 20
REQUEST_ID_HEADER: Final = "X-Request-ID"
NUMERIC: Final = ("integer", "float")
# Probability buckets of the prediction-score histogram.
SCORE_BUCKETS: Final = tuple(round(0.1 * step, 1) for step in range(1, 11))
# Buckets of a regression model's predicted values: 1-2-5 steps from 0.1 to 500,000 on either side of 0 (the
# target's scale is not known up front; relative resolution is the same at every scale).
_STEPS: Final = tuple(round(mantissa * 10.0**power, 1) for power in range(-1, 6) for mantissa in (1, 2, 5))
VALUE_BUCKETS: Final = (*(-step for step in reversed(_STEPS)), 0.0, *_STEPS)
# MLflow signature column types -> mlkeel logical types (the fallback when a run logged no schema.json).
SIGNATURE_TYPES: Final = {
    "double": "float",
    "float": "float",
    "long": "integer",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
    "datetime": "timestamp",
}
# The Open Inference Protocol paths (v2); the model name is a path parameter.
OIP_MODEL: Final = "/v2/models/{model_name}"
OIP_VERSION: Final = "/v2/models/{model_name}/versions/{model_version}"
OIP_PATHS: Final = (
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    OIP_MODEL,
    f"{OIP_MODEL}/ready",
    f"{OIP_MODEL}/infer",
    OIP_VERSION,
    f"{OIP_VERSION}/infer",
)
OPENAPI_PATH: Final = "/openapi.json"
ENDPOINTS: Final = ("/predict", "/healthz", "/readyz", "/metrics", OPENAPI_PATH, *OIP_PATHS)
# The name the Open Inference Protocol serves a model under when it does not come from the registry (a folder).
MODEL_NAME_FALLBACK: Final = "model"


class PayloadError(DataError):
    """A request body the model cannot score; ``status`` is the HTTP status to answer with (always 4xx).

    Attributes:
        status: 400 (not JSON, wrong shape), 413 (too large), 415 (declared as something other than JSON) or
            422 (a record breaks the input schema).
        errors: Every problem found (at most ``MAX_REPORTED_ERRORS``), each naming the record and field.
    """

    def __init__(self, status: int, errors: Sequence[str]) -> None:
        super().__init__(errors[0])
        self.status = status
        self.errors = list(errors)


# ----------------------------------------------------------------------------------------------------------
# The model and its input schema
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputField:
    """One input column the model reads.

    Attributes:
        name: Column name.
        type: mlkeel logical type (``integer``, ``float``, ``string``, ``boolean``, ``timestamp``).
        nullable: Whether null is accepted (the model's preprocessing imputes it).
    """

    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class ServingModel:
    """A loaded model, what it is and the fields each record must have.

    Attributes:
        resolved: The model and its registry identity (``batch_predict.logic.ResolvedModel``).
        fields: The model's input fields, in the model's column order.
        schema_source: Where ``fields`` came from (``run data/schema.json`` or ``MLflow signature``).
        threshold: Decision threshold for ``prediction`` (a binary model's; unused for the other tasks).
        categories: Categorical input field -> the categories its encoder saw in training (``known_categories``);
            a value outside them is scored (the encoder maps it to its infrequent/unknown code) and flagged.
        task: What the model was trained for (``mlkeel.task``): ``binary``, ``multiclass`` or ``regression``.
        classes: A multiclass model's classes as text, in the order of its ``predict_proba`` columns.
    """

    resolved: ResolvedModel
    fields: tuple[InputField, ...]
    schema_source: str
    threshold: float = 0.5
    categories: Mapping[str, frozenset[Any]] = field(default_factory=dict)
    task: str = "binary"
    classes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The name the Open Inference Protocol serves it under: the registered name, else ``MODEL_NAME_FALLBACK``."""
        return self.resolved.name or MODEL_NAME_FALLBACK

    @property
    def field_types(self) -> dict[str, str]:
        """Input field name -> mlkeel logical type, in the model's column order."""
        return {spec.name: spec.type for spec in self.fields}

    @property
    def feature_names(self) -> list[str]:
        """The input column names, in order."""
        return [spec.name for spec in self.fields]

    def outputs(self, table: pa.Table) -> TaskOutputs:
        """What the model answers for every row of ``table`` (the columns of ``fields``), in its task's shape.

        Returns:
            ``mlkeel.prediction_log.score_outputs``'s ``TaskOutputs`` (the scoring function batch prediction
            uses too): the positive-class probability per row (binary), a rows x ``classes`` probability matrix
            (multiclass) or the predicted value per row (regression).
        """
        from mlkeel.prediction_log import score_outputs

        return score_outputs(self.resolved.model, table.to_pandas(), self.task)

    def scores(self, table: pa.Table) -> Any:
        """``outputs(table).values``: for a binary model the positive-class probability of every row."""
        return self.outputs(table).values

    def describe(self) -> dict[str, Any]:
        """JSON-ready identity of the model (what /readyz and the infra report show): its task and classes too."""
        return {
            "model_name": self.resolved.name,
            "model_version": self.resolved.version,
            "model_uri": self.resolved.uri,
            "requested_uri": self.resolved.requested_uri,
            "task": self.task,
            "classes": list(self.classes),
            "schema_source": self.schema_source,
            "threshold": self.threshold if self.task == "binary" else None,
            "categorical_fields": sorted(self.categories),
            "fields": [{"name": spec.name, "type": spec.type, "nullable": spec.nullable} for spec in self.fields],
        }


def load_serving_model(model_uri: str, tracking_uri: str = "", threshold: float | None = None) -> ServingModel:
    """Resolve and load ``model_uri`` and find its input schema.

    Args:
        model_uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or an MLflow sklearn model folder.
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``); unused for a folder.
        threshold: Decision threshold in [0, 1]; None = the model's own (chosen by train, saved inside it; 0.5
            for a model that carries none). Only for a binary model.

    Returns:
        The ``ServingModel``; its task is the model's own (``mlkeel.modeling.model_task``: a regressor, a
        classifier fitted on 0/1, or one fitted on class labels).

    Raises:
        ParameterError: bad threshold or URI, a threshold for a multiclass or regression model, no tracking URI
            for a registry URI.
        RegistryError: no such model, version or alias; the registry cannot be reached.
        DataError: the model has neither a logged schema nor a signature covering its feature columns.
    """
    from mlkeel.components.batch_predict.logic import resolve_model
    from mlkeel.modeling import decision_threshold, known_categories, model_feature_columns, model_task
    from mlkeel.prediction_log import check_threshold
    from mlkeel.task import Task

    if threshold is not None:
        threshold = check_threshold(threshold)
    resolved = resolve_model(model_uri, tracking_uri)
    task = model_task(resolved.model)
    if threshold is not None and task != Task.BINARY:
        raise ParameterError(
            f"{resolved.uri} is a {task} model: a decision threshold applies to a binary classifier only"
        )
    if threshold is None:
        threshold = decision_threshold(resolved.model)
    classes = tuple(str(name) for name in resolved.model.classes_) if task == Task.MULTICLASS else ()
    try:
        columns = model_feature_columns(resolved.model)
    except AttributeError as error:
        raise DataError(f"{resolved.uri}: the model has no feature_names_in_ (not fitted on a DataFrame)") from error
    fields, source = _input_fields(resolved, columns, tracking_uri)
    logger.info("serve: loaded %s, a %s model (%d input fields from %s)", resolved.uri, task, len(fields), source)
    return ServingModel(resolved, fields, source, threshold, known_categories(resolved.model), task, classes)


def _input_fields(resolved: ResolvedModel, columns: list[str], tracking_uri: str) -> tuple[tuple[InputField, ...], str]:
    """The validated schema the training run logged, else the model's MLflow signature."""
    schema_fields = _run_schema_fields(resolved, columns, tracking_uri)
    if schema_fields is not None:
        return schema_fields, f"run {RUN_DATA_ARTIFACT_DIR}/{SCHEMA_ARTIFACT_FILE}"
    return _signature_fields(resolved, columns), "MLflow signature"


def _run_schema_fields(resolved: ResolvedModel, columns: list[str], tracking_uri: str) -> tuple[InputField, ...] | None:
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    from mlkeel.schema import DatasetSchema
    from mlkeel.tracking import resolve_tracking_uri

    if ":/" not in resolved.uri or resolved.uri.startswith("file:"):
        return None  # a model folder: no run to read
    resolved_tracking = resolve_tracking_uri(tracking_uri)
    try:
        run_id = mlflow.models.get_model_info(resolved.uri).run_id
        if not run_id:
            return None
        with tempfile.TemporaryDirectory(prefix="mlkeel-serve-") as folder:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=f"{RUN_DATA_ARTIFACT_DIR}/{SCHEMA_ARTIFACT_FILE}",
                dst_path=folder,
                tracking_uri=resolved_tracking,
            )
            schema = DatasetSchema.load(path)
    except (MlflowException, OSError) as error:
        logger.info("serve: %s: no logged schema (%s); using the MLflow signature", resolved.uri, error)
        return None
    by_name = {column.name: column for column in schema.columns}
    if not all(name in by_name for name in columns):
        return None
    return tuple(InputField(name, by_name[name].type, by_name[name].nullable) for name in columns)


def _signature_fields(resolved: ResolvedModel, columns: list[str]) -> tuple[InputField, ...]:
    import mlflow

    try:
        signature = mlflow.models.get_model_info(resolved.uri).signature
    except Exception as error:  # MlflowException, OSError: whatever stops reading the MLmodel file
        raise DataError(f"{resolved.uri}: cannot read the model's MLflow signature: {error}") from error
    if signature is None or signature.inputs is None:
        raise DataError(f"{resolved.uri}: the model has no input signature and its run no schema.json")
    types = {spec.name: str(getattr(spec.type, "name", spec.type)) for spec in signature.inputs.inputs}
    fields = []
    for name in columns:
        kind = SIGNATURE_TYPES.get(types.get(name, ""))
        if kind is None:
            raise DataError(f"{resolved.uri}: the signature has no usable type for input column {name!r}")
        # The signature is inferred from a 5-row example: its "required" flag says nothing about nulls.
        fields.append(InputField(name, kind, nullable=True))
    return tuple(fields)


# ----------------------------------------------------------------------------------------------------------
# Payload checks: bytes -> one Arrow table in the model's types, or a PayloadError naming every problem
# ----------------------------------------------------------------------------------------------------------


def decode_json(body: bytes) -> Any:
    """Decode a request body as JSON, or raise a 400 ``PayloadError`` saying why it is not usable JSON.

    Args:
        body: The raw request body.

    Returns:
        The decoded document.

    Raises:
        PayloadError: 400 for a body that is not JSON, or JSON Python cannot hold (nested too deeply, a number of
            over 4,300 digits, an unpaired surrogate escape).
    """
    try:
        document = json.loads(body)
    except UnicodeDecodeError as error:
        raise PayloadError(400, [f"body is not UTF-8 JSON: {error}"]) from error
    except json.JSONDecodeError as error:
        raise PayloadError(
            400, [f"body is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"]
        ) from error
    except RecursionError as error:  # e.g. 30,000 nested "[": the parser recurses once per level
        raise PayloadError(400, ["body is not usable JSON: nested too deeply"]) from error
    except ValueError as error:  # e.g. a number of more than 4,300 digits (Python's int conversion limit)
        raise PayloadError(400, [f"body is not usable JSON: {error}"]) from error
    if b"\\ud" in body or b"\\uD" in body:  # \ud800-\udfff escapes make text only in pairs
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:  # Arrow and the JSON answer could not encode such a string
            raise PayloadError(
                400, [f"body is not usable JSON: an unpaired surrogate escape ({error.reason})"]
            ) from error
    return document


def parse_payload(body: bytes, fields: Sequence[InputField]) -> tuple[pa.Table, list[str] | None]:
    """Check a ``/predict`` body against the input fields and return the records as an Arrow table.

    Args:
        body: The raw request body, in any format of ``protocols.PREDICT_FORMATS`` (mlkeel's ``records`` and the
            four of MLflow's scoring protocol).
        fields: The model's input fields.

    Returns:
        ``(table, ids)``: one row per record, columns in ``fields`` order and types; ``ids`` as given or None.

    Raises:
        PayloadError: 400 for a body that is not usable JSON (see ``decode_json``) or not one of the formats;
            422 for an empty list, a record that is not an object, a missing or unknown field, a value of the
            wrong type, a null in a non-nullable field, or ids that do not match the records.
    """
    from mlkeel.components.serve.protocols import ProtocolError, check_columns, predict_rows

    document = decode_json(body)
    try:
        rows = predict_rows(document)
        check_columns(rows, [spec.name for spec in fields])
    except ProtocolError as error:
        raise PayloadError(error.status, [str(error)]) from error
    ids = document.get(IDS_KEY)
    errors: list[str] = []
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(value, str) and value for value in ids):
            errors.append(f"field {IDS_KEY!r}: expected a list of non-empty strings")
        elif len(ids) != len(rows.records):
            errors.append(f"field {IDS_KEY!r}: {len(ids)} ids for {len(rows.records)} records")
    return records_table(rows, fields, errors), ids


def records_table(rows: Rows, fields: Sequence[InputField], errors: list[str] | None = None) -> pa.Table:
    """Check every record of ``rows`` against the input fields; return them as one Arrow table.

    Args:
        rows: The records of a request (``protocols.predict_rows`` or ``protocols.infer_rows``).
        fields: The model's input fields.
        errors: Problems found before (reported first).

    Returns:
        One row per record, columns in ``fields`` order and types.

    Raises:
        PayloadError: 422 naming every problem (at most ``MAX_REPORTED_ERRORS``) by record and field, the way
            the request wrote them.
    """
    import pyarrow as pa

    from mlkeel.components.ingest.logic import arrow_type_for

    errors = list(errors or [])
    names = {spec.name for spec in fields}
    columns: dict[str, list[Any]] = {spec.name: [] for spec in fields}
    for index, record in enumerate(rows.records):
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
        where = rows.locate(index, None)
        if not isinstance(record, dict):
            errors.append(f"{where}: expected an object of field values, got {_kind(record)}")
            continue
        missing = [spec.name for spec in fields if spec.name not in record]
        if missing:
            errors.append(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
        extra = sorted(set(record) - names)
        if extra:
            errors.append(f"{where}: unknown field(s) {', '.join(map(repr, extra))}")
        for spec in fields:
            if spec.name in record:
                value, problem = _coerce(record[spec.name], spec)
                if problem:
                    errors.append(f"{rows.locate(index, spec.name)}: {problem}")
                columns[spec.name].append(value)
    if errors:
        raise PayloadError(422, errors[:MAX_REPORTED_ERRORS])
    return pa.table({spec.name: pa.array(columns[spec.name], arrow_type_for(spec.type)) for spec in fields})


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


_EXPECTED = {"integer": "an integer", "float": "a number", "string": "a string", "boolean": "true or false"}


def _coerce(value: Any, spec: InputField) -> tuple[Any, str]:
    """``(value in the field's type, "")`` or ``(None, problem)``; JSON gives None, bool, int, float, str."""
    kind, given = spec.type, type(value)
    # The common cases first, by exact type (bool is a subclass of int): this runs once per value.
    if (given is str and kind == "string") or (given is bool and kind == "boolean"):
        return value, ""
    if given is float and kind == "float" and math.isfinite(value):
        return value, ""
    if given is int and kind in NUMERIC and -(2**63) <= value < 2**63:
        return (value if kind == "integer" else float(value)), ""
    if value is None:
        return None, "" if spec.nullable else "null is not allowed (the field is not nullable)"
    if kind == "timestamp" and given is str:
        try:
            return datetime.fromisoformat(value), ""
        except ValueError:
            pass
    if given is float and kind in NUMERIC:
        if not math.isfinite(value):
            return None, f"expected a finite number, got {value!r}"
        if value.is_integer():  # 3.0 for an integer field
            return _coerce(int(value), spec)
        return None, f"expected an integer, got {value!r}"
    if given is int and kind in NUMERIC:
        return None, f"integer {value} does not fit in 64 bits"
    return None, f"expected {_EXPECTED.get(kind, 'an ISO 8601 timestamp string')}, got {_kind(value)} {value!r}"


# ----------------------------------------------------------------------------------------------------------
# The prediction log: buffered rows, written as rolling part files
# ----------------------------------------------------------------------------------------------------------


class LogBackpressureError(MlkeelError):
    """More unwritten prediction-log rows than the buffer may hold (the log's storage does not keep up)."""


class PredictionLogSink:
    """Buffer prediction-log rows and write them as Parquet part files from a background thread.

    Thread-safe: ``append`` is called from request threads; one thread writes. A part file is written when
    ``flush_rows`` rows wait or ``flush_seconds`` pass, and on ``close``. A failed write keeps its rows for the
    next attempt; past ``max_buffered_rows`` waiting rows ``append`` raises ``LogBackpressureError``.

    Args:
        directory: Folder of the log (created); part files go to ``date=YYYY-MM-DD/`` below it.
        flush_rows: Rows that trigger a write.
        flush_seconds: Longest time a row waits in memory.
        max_buffered_rows: Most rows held in memory.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS,
    ) -> None:
        self.directory = Path(directory)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_buffered_rows = max_buffered_rows
        self.rows_written = 0
        self.files_written = 0
        self.write_errors = 0
        self._buffer: list[pa.Table] = []
        self._buffered_rows = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sequence = 0
        self._writer_name = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) + f"-{os.getpid()}"

    def prepare(self) -> None:
        """Create the folder; raise ParameterError when that fails or it is not writable (before serving)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ParameterError(f"prediction log folder {self.directory}: cannot create it: {error}") from error
        if not os.access(self.directory, os.W_OK):
            raise ParameterError(f"prediction log folder {self.directory} is not writable by uid {os.getuid()}")

    def start(self) -> None:
        """Start the writer thread (``prepare`` first)."""
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    @property
    def buffered_rows(self) -> int:
        """Rows waiting to be written."""
        return self._buffered_rows

    def append(self, table: pa.Table) -> None:
        """Queue rows from ``build_prediction_log``.

        Raises:
            LogBackpressureError: the buffer is full (writes keep failing or fall behind).
        """
        with self._lock:
            if self._buffered_rows + table.num_rows > self.max_buffered_rows:
                raise LogBackpressureError(
                    f"prediction log {self.directory}: {self._buffered_rows} rows wait to be written "
                    f"(limit {self.max_buffered_rows}); refusing to predict without logging"
                )
            self._buffer.append(table)
            self._buffered_rows += table.num_rows
            full = self._buffered_rows >= self.flush_rows
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write every waiting row as one part file now; return the rows written (0 when none waited)."""
        import pyarrow as pa

        from mlkeel.storage import write_parquet_atomic

        with self._write_lock:
            with self._lock:
                tables, self._buffer = self._buffer, []
                rows = self._buffered_rows
            if not tables:
                return 0
            now = datetime.now(UTC)
            self._sequence += 1
            path = (
                self.directory
                / f"date={now:%Y-%m-%d}"
                # The host name (the pod's) keeps replicas sharing one volume apart: in a container the pid
                # is often 1 in every replica.
                / f"part-{now:%Y%m%dT%H%M%S%f}-{self._writer_name}-{self._sequence:06d}.parquet"
            )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_parquet_atomic(pa.concat_tables(tables, promote_options="permissive"), path)
            except (OSError, pa.ArrowException) as error:
                self.write_errors += 1
                logger.error("serve: cannot write prediction log part %s: %s (rows kept)", path, error)
                with self._lock:
                    self._buffer = tables + self._buffer
                return 0
            with self._lock:
                self._buffered_rows -= rows
            self.rows_written += rows
            self.files_written += 1
            return rows

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the writer thread and write what waits."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------


class ServingMetrics:
    """The Prometheus metrics of one app, in their own registry (several apps can live in one process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlkeel_serve_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlkeel_serve_request_duration_seconds",
            "Time from request to response, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlkeel_serve_predictions",
            "Records scored, by model and predicted class (1 = positive, as the log's prediction column)",
            ["model_name", "model_version", "predicted_class"],
            registry=self.registry,
        )
        self.scores = Histogram(
            "mlkeel_serve_prediction_score",
            "Positive-class probability of each scored record",
            ["model_name", "model_version"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        # Per task: a multiclass model's predicted classes, a regression model's predicted values.
        self.class_predictions = Counter(
            "mlkeel_serve_class_predictions",
            "Records scored by a multiclass model, by model and predicted class (the log's prediction_label)",
            ["model_name", "model_version", "predicted_class"],
            registry=self.registry,
        )
        self.values = Histogram(
            "mlkeel_serve_predicted_value",
            "Value a regression model predicted for each scored record (the log's predicted_value)",
            ["model_name", "model_version"],
            buckets=VALUE_BUCKETS,
            registry=self.registry,
        )
        # A histogram with negative buckets has no _sum (OpenMetrics): the mean comes from this summary's.
        self.value_stats = Summary(
            "mlkeel_serve_predicted_value_stats",
            "Count and sum of a regression model's predicted values (mean = rate(_sum) / rate(_count))",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        self.unseen_values = Counter(
            "mlkeel_serve_unseen_categories",
            "Values of a categorical field that the model never saw in training (scored and flagged), by field",
            ["model_name", "model_version", "field"],
            registry=self.registry,
        )
        self.unseen_records = Counter(
            "mlkeel_serve_records_with_unseen_categories",
            "Scored records holding at least one category the model never saw in training",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        self.model_info = Info("mlkeel_serve_model", "The model being served", registry=self.registry)
        self.model_loaded = Gauge(
            "mlkeel_serve_model_loaded", "1 once the model is loaded (ready), else 0", registry=self.registry
        )
        self.log_rows = Gauge(
            "mlkeel_serve_prediction_log_buffered_rows", "Prediction-log rows not yet written", registry=self.registry
        )
        self.log_errors = Gauge(
            "mlkeel_serve_prediction_log_write_errors", "Failed prediction-log part writes", registry=self.registry
        )

    def render(self, sink: PredictionLogSink | None) -> bytes:
        """The Prometheus text exposition of every metric."""
        from prometheus_client import generate_latest

        if sink is not None:
            self.log_rows.set(sink.buffered_rows)
            self.log_errors.set(sink.write_errors)
        return generate_latest(self.registry)


# ----------------------------------------------------------------------------------------------------------
# The app
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeSettings:
    """How to serve.

    Attributes:
        model_uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or an MLflow sklearn model folder.
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``).
        prediction_log_dir: Folder of the prediction log.
        max_body_bytes: Largest accepted ``/predict`` body.
        threshold: Decision threshold in [0, 1]; None = the model's own.
        flush_rows: Prediction-log rows that trigger a part file.
        flush_seconds: Longest time a prediction-log row waits in memory.
        max_buffered_rows: Most unwritten prediction-log rows before ``/predict`` answers 503.
    """

    model_uri: str
    tracking_uri: str = ""
    prediction_log_dir: str = DEFAULT_PREDICTION_LOG_DIR
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    threshold: float | None = None
    flush_rows: int = DEFAULT_FLUSH_ROWS
    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS

    def check(self) -> None:
        """Raise ParameterError for a setting that cannot work (before anything starts)."""
        from mlkeel.prediction_log import check_threshold

        if not self.model_uri.strip():
            raise ParameterError("model URI is empty: pass models:/NAME@ALIAS or models:/NAME/VERSION")
        if self.max_body_bytes < 1:
            raise ParameterError(f"max_body_bytes={self.max_body_bytes}: expected a positive number of bytes")
        if self.flush_rows < 1 or self.max_buffered_rows < self.flush_rows or self.flush_seconds <= 0:
            raise ParameterError(
                "prediction log: need flush_rows >= 1, max_buffered_rows >= flush_rows, flush_seconds > 0"
            )
        if self.threshold is not None:
            check_threshold(self.threshold)


Loader = Callable[[ServeSettings], ServingModel]


def _default_loader(settings: ServeSettings) -> ServingModel:
    return load_serving_model(settings.model_uri, settings.tracking_uri, settings.threshold)


@dataclass
class ServingState:
    """What the app knows: the model once loaded, the load error if any, the log and the metrics."""

    settings: ServeSettings
    metrics: ServingMetrics
    sink: PredictionLogSink
    model: ServingModel | None = None
    load_error: str = ""
    loaded: threading.Event = field(default_factory=threading.Event)
    on_load_failure: Callable[[str], None] | None = None

    def load(self, loader: Loader) -> None:
        """Load the model (run in a background thread); record the error instead of raising it."""
        try:
            model = loader(self.settings)
        except Exception as error:  # any failure must reach /readyz and the log, not vanish with the thread
            self.load_error = str(error) if isinstance(error, MlkeelError) else f"{type(error).__name__}: {error}"
            logger.error("serve: cannot load %s: %s", self.settings.model_uri, self.load_error)
            if self.on_load_failure is not None:
                self.on_load_failure(self.load_error)
            return
        resolved = model.resolved
        self.metrics.model_info.info(
            {"model_name": resolved.name, "model_version": resolved.version, "model_uri": resolved.uri}
        )
        self.model = model
        self.metrics.model_loaded.set(1)
        self.loaded.set()


def create_app(settings: ServeSettings, loader: Loader = _default_loader) -> Any:
    """Build the Starlette app; it loads the model in a background thread when it starts.

    Args:
        settings: See ``ServeSettings``.
        loader: Loads the model (``load_serving_model`` by default); tests pass one that waits.

    Returns:
        The ASGI app; ``app.state.serving`` is its ``ServingState``.
    """
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    settings.check()
    metrics = ServingMetrics()
    sink = PredictionLogSink(
        settings.prediction_log_dir, settings.flush_rows, settings.flush_seconds, settings.max_buffered_rows
    )
    sink.prepare()  # an unwritable log folder is a user error now, not a failed start-up later
    state = ServingState(settings, metrics, sink)

    def timed(endpoint: str, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Exception:  # a bug, not a bad request: answer 500 with JSON and keep the metrics honest
                logger.exception("serve: %s failed", endpoint)
                response = JSONResponse({"error": "internal error; see the server log"}, status_code=500)
            status = str(response.status_code)
            metrics.requests.labels(endpoint, status).inc()
            metrics.latency.labels(endpoint, status).observe(time.perf_counter() - started)
            return response

        return wrapped

    def problem(status: int, errors: Sequence[str]) -> JSONResponse:
        return JSONResponse({"error": errors[0], "errors": list(errors)}, status_code=status)

    async def read_body(request: Request) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else 0
        too_large = size > limit
        chunks, received = [], 0
        if size <= DRAIN_MAX_BYTES:
            # Past the limit the rest is read and dropped (memory stays bounded): a client still sending when
            # the server answers would see a broken pipe instead of the 413 that says what is wrong.
            async for chunk in request.stream():
                received += len(chunk)
                too_large = too_large or received > limit
                if received > DRAIN_MAX_BYTES:
                    break
                if not too_large:
                    chunks.append(chunk)
        if too_large:
            shown = f"of {max(size, received)} bytes " if size or received <= DRAIN_MAX_BYTES else ""
            raise PayloadError(413, [f"body {shown}exceeds the limit of {limit} bytes"])
        return b"".join(chunks)

    def not_loaded() -> JSONResponse:
        return problem(503, [state.load_error or "the model is still loading; retry when /readyz says ready"])

    async def scoring(request: Request, model: ServingModel, score: Callable[..., dict[str, Any]]) -> Response:
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        try:
            body = await read_body(request)  # first: an oversized body is drained whatever it claims to be
            check_content_type(request.headers.get("content-type", ""))
            answer = await run_in_threadpool(score, state, model, body, request_id)
        except PayloadError as error:
            return problem(error.status, error.errors)
        except LogBackpressureError as error:
            return problem(503, [str(error)])
        return JSONResponse(answer, headers={REQUEST_ID_HEADER: request_id})

    async def predict(request: Request) -> Response:
        model = state.model
        if model is None:
            return not_loaded()
        return await scoring(request, model, score_request)

    def served_model(request: Request) -> ServingModel | JSONResponse:
        """The model when the path names it (and its version, if any), else the 404/503 answer."""
        model = state.model
        if model is None:
            return not_loaded()
        name, version = request.path_params["model_name"], request.path_params.get("model_version")
        if name != model.name:
            return problem(404, [f"model {name!r} is not served here (this server serves {model.name!r})"])
        if version is not None and version != model.resolved.version:
            shown = model.resolved.version or "none"
            return problem(404, [f"model {name!r} version {version!r} is not served here (version: {shown})"])
        return model

    async def v2_infer(request: Request) -> Response:
        model = served_model(request)
        if isinstance(model, JSONResponse):
            return model
        return await scoring(request, model, infer_request)

    async def v2_model(request: Request) -> Response:
        from mlkeel.components.serve.protocols import model_metadata

        model = served_model(request)
        if isinstance(model, JSONResponse):
            return model
        return JSONResponse(
            model_metadata(model.name, model.resolved.version, model.field_types, model.task, model.classes)
        )

    async def v2_model_ready(request: Request) -> Response:
        model = served_model(request)
        if isinstance(model, JSONResponse):
            return model
        return JSONResponse({"name": model.name, "ready": True})

    async def v2_server(request: Request) -> Response:
        from mlkeel import __version__
        from mlkeel.components.serve.protocols import OIP_PROTOCOL_VERSION

        return JSONResponse(
            {"name": "mlkeel-serve", "version": __version__, "extensions": [], "protocol": OIP_PROTOCOL_VERSION}
        )

    async def v2_live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def v2_ready(request: Request) -> Response:
        if state.model is None:
            return JSONResponse({"ready": False, "error": state.load_error or "loading"}, status_code=503)
        return JSONResponse({"ready": True})

    async def openapi(request: Request) -> Response:
        from mlkeel.components.serve.openapi import openapi_document

        return JSONResponse(openapi_document(state.model))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"alive": True})

    async def readyz(request: Request) -> Response:
        if state.model is None:
            reason = state.load_error or f"loading {settings.model_uri}"
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        return JSONResponse({"ready": True, **state.model.describe()})

    async def metrics_endpoint(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(sink), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        sink.start()
        threading.Thread(target=state.load, args=(loader,), name="model-loader", daemon=True).start()
        try:
            yield
        finally:
            sink.close()

    handlers = {
        "/predict": predict,
        "/healthz": healthz,
        "/readyz": readyz,
        "/metrics": metrics_endpoint,
        OPENAPI_PATH: openapi,
        "/v2": v2_server,
        "/v2/health/live": v2_live,
        "/v2/health/ready": v2_ready,
        OIP_MODEL: v2_model,
        f"{OIP_MODEL}/ready": v2_model_ready,
        f"{OIP_MODEL}/infer": v2_infer,
        OIP_VERSION: v2_model,
        f"{OIP_VERSION}/infer": v2_infer,
    }
    methods = {"/predict": ["POST"], f"{OIP_MODEL}/infer": ["POST"], f"{OIP_VERSION}/infer": ["POST"]}
    routes = [
        Route(path, timed(path, handler), methods=methods.get(path, ["GET"])) for path, handler in handlers.items()
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.serving = state
    return app


def check_content_type(content_type: str) -> None:
    """Accept a body declared as JSON (``application/json`` or ``application/*+json``, any parameters) or not declared.

    Args:
        content_type: The request's Content-Type header ("" when absent).

    Raises:
        PayloadError: 415, naming the header sent.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type and media_type != "application/json" and not re.fullmatch(r"application/[^/]+\+json", media_type):
        raise PayloadError(415, [f"Content-Type {content_type!r}: send the body as application/json"])


@dataclass(frozen=True)
class Scored:
    """The answer for a batch of checked records, as both protocols report it.

    Attributes:
        ids: Record ids.
        probabilities: Positive-class probability per record (binary), the predicted class's (multiclass); []
            for regression.
        predictions: 1 (positive class) or 0 per record (binary); [] for the other tasks.
        labels: The predicted class as text (binary: None for 0 when the negative label is unknown); [] for
            regression.
        unseen: Per record, field -> a category value the model never saw in training.
        task: The model's task.
        class_probabilities: Multiclass: per record, class -> probability (every class of the model).
        values: Regression: the predicted value per record.
    """

    ids: list[str]
    probabilities: list[float]
    predictions: list[int]
    labels: list[str | None]
    unseen: list[dict[str, Any]]
    task: str = "binary"
    class_probabilities: list[dict[str, float]] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """One ``/predict`` answer item per record, in the task's shape.

        binary ``{id, prediction, label, probability, unseen_categories}``; multiclass ``{id, label, probability,
        probabilities, unseen_categories}``; regression ``{id, predicted_value, unseen_categories}``.
        """
        if self.task == "regression":
            return [
                {"id": record_id, "predicted_value": value, "unseen_categories": found}
                for record_id, value, found in zip(self.ids, self.values, self.unseen, strict=True)
            ]
        if self.task == "multiclass":
            return [
                {
                    "id": record_id,
                    "label": label,
                    "probability": score,
                    "probabilities": every,
                    "unseen_categories": found,
                }
                for record_id, label, score, every, found in zip(
                    self.ids, self.labels, self.probabilities, self.class_probabilities, self.unseen, strict=True
                )
            ]
        return [
            {"id": record_id, "prediction": flag, "label": label, "probability": score, "unseen_categories": found}
            for record_id, flag, label, score, found in zip(
                self.ids, self.predictions, self.labels, self.probabilities, self.unseen, strict=True
            )
        ]

    def output_columns(self) -> dict[str, list[Any]]:
        """Open Inference Protocol output name -> one value per record (``protocols.infer_response``)."""
        from mlkeel.components.serve.protocols import (
            OIP_LABEL,
            OIP_PREDICTION,
            OIP_PROBABILITIES,
            OIP_PROBABILITY,
            OIP_UNSEEN,
            OIP_VALUE,
        )

        if self.task == "regression":
            return {OIP_VALUE: self.values, OIP_UNSEEN: list(self.unseen)}
        columns: dict[str, list[Any]] = {OIP_PROBABILITY: self.probabilities, OIP_LABEL: list(self.labels)}
        if self.task == "multiclass":
            columns[OIP_PROBABILITIES] = [list(every.values()) for every in self.class_probabilities]
        else:
            columns[OIP_PREDICTION] = self.predictions
        return {**columns, OIP_UNSEEN: list(self.unseen)}


def score_table(state: ServingState, model: ServingModel, table: pa.Table, record_ids: Sequence[str]) -> Scored:
    """Score checked records, log them (one prediction-log row each) and count them in the metrics.

    Args:
        state: The app's state (metrics, log).
        model: The loaded model.
        table: Checked records (``records_table``).
        record_ids: One id per record.

    Returns:
        The ``Scored`` answer, in the shape of the model's task.

    Raises:
        PayloadError: 422 when the model refuses the rows.
        LogBackpressureError: the prediction log cannot take the rows.
    """
    import numpy as np

    from mlkeel.modeling import unseen_categories

    try:
        outputs = model.outputs(table)
    except (ValueError, TypeError) as error:
        raise PayloadError(422, [f"the model cannot score these records: {error}"]) from error
    finite = np.isfinite(outputs.values).reshape(len(outputs.values), -1).all(axis=1)
    if not finite.all():  # e.g. a regressor's output overflows on values far outside what it was trained on
        bad = np.flatnonzero(~finite)[:MAX_REPORTED_ERRORS].tolist()
        raise PayloadError(
            422,
            [f"record {index} (id {record_ids[index]!r}): the model's output is not a finite number" for index in bad],
        )
    unseen = unseen_categories(table, model.categories)
    state.sink.append(_log_rows(model, table, list(record_ids), outputs, unseen))
    metrics = state.metrics
    labels = (model.resolved.name, model.resolved.version)
    for found in unseen:
        if found:
            metrics.unseen_records.labels(*labels).inc()
        for name in found:
            metrics.unseen_values.labels(*labels, name).inc()
    if model.task == "multiclass":
        return _multiclass_scored(metrics, model, list(record_ids), outputs, unseen)
    if model.task == "regression":
        values = [float(value) for value in outputs.values.tolist()]
        for value in values:
            metrics.values.labels(*labels).observe(value)
            metrics.value_stats.labels(*labels).observe(value)
        return Scored(list(record_ids), [], [], [], unseen, model.task, values=values)
    return _binary_scored(metrics, model, list(record_ids), outputs.values, unseen)


def _log_rows(
    model: ServingModel, table: pa.Table, ids: list[str], outputs: TaskOutputs, unseen: list[dict[str, Any]]
) -> pa.Table:
    """The prediction-log rows of one scored batch, in the columns of the model's task (``build_prediction_log``).

    A binary model's threshold and labels; a multiclass model's predicted class, its probability and every
    class's; a regression model's value.
    """
    from mlkeel.prediction_log import build_prediction_log

    resolved = model.resolved
    return build_prediction_log(
        table,
        ids,
        resolved.name,
        resolved.version,
        resolved.uri,
        outputs,
        model.threshold,
        resolved.positive_label,
        resolved.negative_label,
        unseen_categories=unseen,
    )


def _binary_scored(
    metrics: ServingMetrics, model: ServingModel, ids: list[str], scores: Any, unseen: list[dict[str, Any]]
) -> Scored:
    import numpy as np

    resolved = model.resolved
    labels = (resolved.name, resolved.version)
    predicted = scores >= model.threshold
    positives = int(np.count_nonzero(predicted))
    # predicted_class is the log's ``prediction``: "1" for the positive class, "0" for the other.
    if positives:
        metrics.predictions.labels(*labels, "1").inc(positives)
    if positives < len(scores):
        metrics.predictions.labels(*labels, "0").inc(len(scores) - positives)
    for score in scores.tolist():
        metrics.scores.labels(*labels).observe(score)
    negative = resolved.negative_label
    flags = predicted.tolist()
    return Scored(
        ids,
        scores.tolist(),
        [int(flag) for flag in flags],
        [resolved.positive_label if flag else negative for flag in flags],
        unseen,
    )


def _multiclass_scored(
    metrics: ServingMetrics, model: ServingModel, ids: list[str], outputs: TaskOutputs, unseen: list[dict[str, Any]]
) -> Scored:
    """Predicted class = the most probable one (``TaskOutputs.predicted_classes``: the log's ``prediction_label``)."""
    import numpy as np

    matrix = outputs.values
    predicted: list[str | None] = [str(name) for name in outputs.predicted_classes().tolist()]
    labels = (model.resolved.name, model.resolved.version)
    names, counts = np.unique(np.asarray(predicted, dtype=object), return_counts=True)
    for name, count in zip(names.tolist(), counts.tolist(), strict=True):
        metrics.class_predictions.labels(*labels, name).inc(count)
    return Scored(
        ids,
        matrix.max(axis=1).tolist(),
        [],
        predicted,
        unseen,
        model.task,
        class_probabilities=[dict(zip(outputs.classes, row, strict=True)) for row in matrix.tolist()],
    )


def score_request(state: ServingState, model: ServingModel, body: bytes, request_id: str) -> dict[str, Any]:
    """Check, score and log one ``/predict`` body (runs in a worker thread).

    Args:
        state: The app's state (metrics, log).
        model: The loaded model.
        body: The raw request body (any format of ``parse_payload``).
        request_id: The request's id; record ``i`` without a given id gets ``<request_id>-<i>``.

    Returns:
        The JSON answer: ``request_id``, the model's identity and one prediction per record in the shape of the
        model's task (``Scored.records``): binary ``id``, ``prediction``, ``label``, ``probability``,
        ``unseen_categories`` (field -> value never seen in training); multiclass ``id``, ``label`` (the
        predicted class), ``probability`` (its probability), ``probabilities`` (class -> probability, every
        class), ``unseen_categories``; regression ``id``, ``predicted_value``, ``unseen_categories``.

    Raises:
        PayloadError: the body breaks the input schema (see ``parse_payload``).
        LogBackpressureError: the prediction log cannot take the rows.
    """
    table, ids = parse_payload(body, model.fields)
    record_ids = ids or [f"{request_id}-{index}" for index in range(table.num_rows)]
    scored = score_table(state, model, table, record_ids)
    resolved = model.resolved
    return {
        "request_id": request_id,
        "model_name": resolved.name,
        "model_version": resolved.version,
        "model_uri": resolved.uri,
        "predictions": scored.records(),
    }


def infer_request(state: ServingState, model: ServingModel, body: bytes, request_id: str) -> dict[str, Any]:
    """Check, score and log one Open Inference Protocol ``infer`` body (runs in a worker thread).

    Args:
        state: The app's state (metrics, log).
        model: The loaded model.
        body: The raw request body: ``{"id"?, "inputs": [one tensor per input field], "outputs"?}``.
        request_id: The HTTP request's id, used when the body names none; row ``i`` is logged as ``<id>-<i>``.

    Returns:
        The protocol's answer (``protocols.infer_response``).

    Raises:
        PayloadError: the body is not an inference request or breaks the input schema.
        LogBackpressureError: the prediction log cannot take the rows.
    """
    from mlkeel.components.serve.protocols import OIP_TASK_OUTPUTS, ProtocolError, infer_response, infer_rows

    try:
        request = infer_rows(decode_json(body), model.field_types, OIP_TASK_OUTPUTS[model.task])
    except ProtocolError as error:
        raise PayloadError(error.status, [str(error)]) from error
    table = records_table(request.rows, model.fields)
    identifier = request.request_id or request_id
    scored = score_table(state, model, table, [f"{identifier}-{index}" for index in range(table.num_rows)])
    return infer_response(
        model.name,
        model.resolved.version,
        identifier,
        request.outputs,
        scored.output_columns(),
        model.task,
        model.classes,
    )


# ----------------------------------------------------------------------------------------------------------
# Running it
# ----------------------------------------------------------------------------------------------------------


def _uvicorn_server(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    # One worker process: the model is loaded once; predict_proba runs in Starlette's thread pool.
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10
    )
    return uvicorn.Server(config)


def run_server(settings: ServeSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (SIGINT/SIGTERM); exit with the load error when the model cannot load.

    Args:
        settings: See ``ServeSettings``.
        host: Address to listen on (``0.0.0.0`` in a container).
        port: TCP port.

    Raises:
        MlkeelError: the model could not be loaded (the server stops first) or a setting is invalid.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    server = _uvicorn_server(app, host, port, "info")
    state: ServingState = app.state.serving

    def stop(reason: str) -> None:  # a model that cannot load never becomes ready: exit so the error shows
        server.should_exit = True

    state.on_load_failure = stop
    server.run()
    if state.load_error:
        raise RegistryError(f"cannot serve {settings.model_uri}: {state.load_error}")


@contextmanager
def serving_in_thread(
    settings: ServeSettings, host: str = DEFAULT_HOST, port: int = 0, loader: Loader = _default_loader
) -> Iterator[tuple[str, ServingState]]:
    """Run the app on a loopback port in a background thread; yield ``(base URL, state)``; stop it after.

    Args:
        settings: See ``ServeSettings``.
        host: Address to listen on.
        port: TCP port (0 = any free port).
        loader: See ``create_app``.

    Yields:
        The base URL (``http://127.0.0.1:PORT``) and the app's ``ServingState``.
    """
    app = create_app(settings, loader)
    server = _uvicorn_server(app, host, port, "warning")
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the serving app did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}", app.state.serving
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_ready(state: ServingState, timeout: float = 300.0) -> ServingModel:
    """Wait until the model is loaded; raise the load error (or a timeout) otherwise."""
    deadline = time.monotonic() + timeout
    while not state.loaded.wait(0.05):
        if state.load_error:
            raise RegistryError(f"cannot serve {state.settings.model_uri}: {state.load_error}")
        if time.monotonic() > deadline:
            raise RegistryError(f"{state.settings.model_uri}: not loaded after {timeout:.0f}s")
    assert state.model is not None
    return state.model


# ----------------------------------------------------------------------------------------------------------
# Infrastructure validation (the KFP component): serve on loopback, send holdout rows, compare
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InfraValidationResult:
    """What the infrastructure check found.

    Attributes:
        passed: Every check held.
        checks: Check name -> whether it held.
        details: Facts behind the checks (counts, largest difference, latencies, the model).
    """

    passed: bool
    checks: dict[str, bool]
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the report artifact)."""
        return {"passed": self.passed, "checks": self.checks, "details": self.details}


def http_call(url: str, body: bytes | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """One HTTP request (POST with a JSON body, else GET) with the standard library; ``(status, body)``."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    # No proxy: these calls go to a server on this machine, whatever HTTP_PROXY a pod or CI sets.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_ok(url: str, timeout: float, alive: Callable[[], bool] = lambda: True, interval: float = 0.2) -> bool:
    """GET ``url`` until it answers 200 (a server process starting up).

    Args:
        url: E.g. ``http://127.0.0.1:8080/readyz``.
        timeout: Seconds to keep trying.
        alive: Returns False once waiting is pointless (the server process exited).
        interval: Seconds between tries.

    Returns:
        True once it answered 200; False when ``alive()`` turned False or the time ran out.
    """
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        try:
            if http_call(url, timeout=2)[0] == 200:
                return True
        except OSError:  # not listening yet
            pass
        time.sleep(interval)
    return False


def json_records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of ``table`` as JSON-ready dicts (timestamps as ISO text, NaN as null)."""
    records = table.to_pylist()
    for record in records:
        for name, value in record.items():
            if isinstance(value, datetime):
                record[name] = value.isoformat()
            elif isinstance(value, float) and math.isnan(value):
                record[name] = None
    return records


def validate_infrastructure(
    model_uri: str,
    dataset_path: str,
    report_path: str,
    tracking_uri: str = "",
    sample_rows: int = 200,
    records_per_request: int = 20,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    tolerance: float = 1e-9,
) -> InfraValidationResult:
    """Serve the model on a loopback port, send it holdout rows and check the answers (like TFX InfraValidator).

    Checks: the app becomes ready; every ``/predict`` answers 200; every served output equals the model's own on
    the same rows (within ``tolerance``): the positive-class probability (binary), every class's probability
    (multiclass) or the predicted value (regression); a malformed body gets a 4xx; ``/metrics`` counts the
    requests sent; the prediction log holds one row per record sent.

    Args:
        model_uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or an MLflow sklearn model folder.
        dataset_path: Holdout rows (Parquet) with the model's feature columns; other columns are ignored.
        report_path: Where to write the JSON report.
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``).
        sample_rows: Rows sent (the first ones; all when the dataset has fewer).
        records_per_request: Records per ``/predict`` request.
        max_body_bytes: The app's body limit.
        tolerance: Largest accepted difference between a served and a direct output (probability or value).

    Returns:
        The ``InfraValidationResult`` (also written to ``report_path``).

    Raises:
        ParameterError: ``sample_rows`` or ``records_per_request`` below 1.
        DataError: the dataset cannot be read, is empty or lacks a feature column.
        RegistryError: the model cannot be loaded.
    """
    import tempfile

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlkeel.modeling import feature_frame
    from mlkeel.prediction_log import read_prediction_logs
    from mlkeel.storage import display_uri, require_readable_file, write_json_atomic

    if sample_rows < 1 or records_per_request < 1:
        raise ParameterError("sample_rows and records_per_request must be at least 1")
    filesystem, path, _ = require_readable_file(dataset_path)
    table = pq.read_table(path, filesystem=filesystem).slice(0, sample_rows)
    shown = display_uri(dataset_path)
    if table.num_rows == 0:
        raise DataError(f"{shown}: no rows to send")
    with tempfile.TemporaryDirectory(prefix="mlkeel-infra-") as log_dir:
        settings = ServeSettings(
            model_uri, tracking_uri, log_dir, max_body_bytes=max_body_bytes, flush_rows=10_000, flush_seconds=3600
        )
        with serving_in_thread(settings) as (base, state):
            status, _ = http_call(f"{base}/healthz")
            model = wait_ready(state)
            checks = {"healthz_200": status == 200, "readyz_200": http_call(f"{base}/readyz")[0] == 200}
            features = feature_frame(table.to_pandas(), model.feature_names, shown)
            expected = model.outputs(pa.Table.from_pandas(features, preserve_index=False)).values
            records = json_records(table.select(model.feature_names))
            served: list[Any] = []
            statuses, latencies = [], []
            for start in range(0, len(records), records_per_request):
                body = json.dumps({RECORDS_KEY: records[start : start + records_per_request]}).encode()
                began = time.perf_counter()
                status, answer = http_call(f"{base}/predict", body)
                latencies.append(time.perf_counter() - began)
                statuses.append(status)
                if status == 200:
                    served += [_served_output(model, item) for item in json.loads(answer)["predictions"]]
            bad_status, _ = http_call(f"{base}/predict", json.dumps({RECORDS_KEY: [{}]}).encode())
            metrics_text = http_call(f"{base}/metrics")[1].decode()
        rows_logged = read_prediction_logs(log_dir).num_rows if any(Path(log_dir).rglob("*.parquet")) else 0
    difference = math.inf
    if len(served) == len(expected):
        difference = float(np.max(np.abs(np.asarray(served, dtype=float) - expected)))
    counted = _metric_sum(metrics_text, "mlkeel_serve_requests_total", {"endpoint": "/predict"})
    checks.update(
        {
            "every_predict_200": all(status == 200 for status in statuses),
            "predictions_equal_direct": difference <= tolerance,
            "malformed_body_4xx": 400 <= bad_status < 500,
            "metrics_count_requests": counted == len(statuses) + 1,  # + the malformed one
            "one_log_row_per_record": rows_logged == len(records),
        }
    )
    millis = np.asarray(latencies) * 1000
    details = {
        **model.describe(),
        "dataset": shown,
        "records_sent": len(records),
        "requests_sent": len(statuses),
        "statuses": sorted(set(statuses)),
        "max_abs_difference": difference,
        "malformed_status": bad_status,
        "metrics_predict_requests": counted,
        "prediction_log_rows": rows_logged,
        "latency_ms_p50": float(np.percentile(millis, 50)),
        "latency_ms_p99": float(np.percentile(millis, 99)),
    }
    result = InfraValidationResult(all(checks.values()), checks, details)
    write_json_atomic(result.to_dict(), report_path)
    failed = [name for name, held in checks.items() if not held]
    logger.info("serve: infra validation of %s %s", model.resolved.uri, f"FAILED: {failed}" if failed else "passed")
    return result


def _served_output(model: ServingModel, item: dict[str, Any]) -> Any:
    """What ``mlkeel.modeling.model_outputs`` gives for one record, read from its ``/predict`` answer item."""
    if model.task == "multiclass":
        return [item["probabilities"][name] for name in model.classes]
    return item["predicted_value" if model.task == "regression" else "probability"]


def _metric_sum(text: str, name: str, labels: dict[str, str]) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                total += sample.value
    return total
