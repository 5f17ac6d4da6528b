"""The prediction log: one row per scored input row, written by batch prediction and by the serving endpoint.

Both writers score with ``score_outputs`` (one scoring function for every task) and build their rows with
``build_prediction_log``, so monitoring reads one schema whatever scored the rows. A log is a Parquet file; a
folder of them (a serving log appended file by file) reads as one table with ``read_prediction_logs``.

Columns (``PREDICTION_LOG_SCHEMA`` holds the fixed ones), per task of the model (``mlkeel.task``):

====================  ======================  ==========================  =====================  =================
column                type                    binary                      multiclass             regression
====================  ======================  ==========================  =====================  =================
request_id            string                  the row's id: the key column's value, else ``<batch_id>-<row number>``
model_name            string                  registered model name ("" when the model is not from the registry)
model_version         string                  registered version, e.g. "3" ("" when not from the registry)
model_uri             string                  the exact model scored, e.g. ``models:/churn/3`` (never an alias)
prediction            int8 (nullable)         1 = positive class, 0 =     null                   null
                                              the other; ``probability
                                              >= threshold``
prediction_label      string (nullable)       the positive label for 1,   the predicted class    null
                                              the negative label for 0;   (argmax of the class
                                              null for 0 when the         probabilities), never
                                              negative label is unknown   null
probability           double (nullable)       the positive class's        the predicted class's  null
                                              probability                 probability
threshold             double (nullable)       the decision threshold      null                   null
predicted_at          timestamp[us, tz=UTC]   when the batch/request was scored
task                  string (optional)       absent (or "binary")        "multiclass"           "regression"
class_probabilities   map<string, double>     absent                      every class of the     absent
                      (optional)                                          model -> probability
predicted_value       double (optional)       absent                      absent                 the model's output
unseen_categories     list<string>            the categorical features whose value the model never saw in training
                      (optional)              (scored anyway, through the encoder's infrequent/unknown code); [] for
                                              none. Logs written before it have no such column (it reads as null)
feature.<column>      any                     each input feature the model read, in its input type, nulls kept
====================  ======================  ==========================  =====================  =================

A binary log is exactly what it was before multiclass and regression existed: no ``task``,
``class_probabilities`` or ``predicted_value`` column. Logs of different writers read together
(``read_prediction_logs``) fill a column one of them lacks with nulls: a null ``task`` means binary
(``log_task``). The negative label of a binary model is null when unknown (the registry records only the
positive one unless the training run tagged ``mlkeel.negative_label``).

``prediction`` (a number) is the column to compute with for a binary model; ``prediction_label`` is for people
and downstream systems that speak in the dataset's labels, and the predicted class of a multiclass model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from mlkeel.storage import display_uri

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

REQUEST_ID: Final = "request_id"
MODEL_NAME: Final = "model_name"
MODEL_VERSION: Final = "model_version"
MODEL_URI: Final = "model_uri"
PREDICTION: Final = "prediction"
PREDICTION_LABEL: Final = "prediction_label"
PROBABILITY: Final = "probability"
THRESHOLD: Final = "threshold"
PREDICTED_AT: Final = "predicted_at"
UNSEEN_CATEGORIES: Final = "unseen_categories"
# Written only for a multiclass or regression model (a binary log has none of them; null = binary).
TASK: Final = "task"
CLASS_PROBABILITIES: Final = "class_probabilities"
PREDICTED_VALUE: Final = "predicted_value"
# Input features are stored as ``feature.<name>`` so that any dataset's columns fit beside the fixed ones.
FEATURE_PREFIX: Final = "feature."

# Fixed columns, in order, with their Arrow types (built lazily: importing this module must not load pyarrow).
FIXED_COLUMNS: Final = (
    (REQUEST_ID, "string"),
    (MODEL_NAME, "string"),
    (MODEL_VERSION, "string"),
    (MODEL_URI, "string"),
    (PREDICTION, "int8"),
    (PREDICTION_LABEL, "string"),
    (PROBABILITY, "float64"),
    (THRESHOLD, "float64"),
    (PREDICTED_AT, "timestamp[us, tz=UTC]"),
)


def prediction_log_schema() -> pa.Schema:
    """The Arrow schema of the fixed columns (the ``feature.*`` columns follow them, typed by the input).

    Returns:
        The schema, in column order.
    """
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int8": pa.int8(),
        "float64": pa.float64(),
        "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([pa.field(name, types[kind], nullable=name in NULLABLE_COLUMNS) for name, kind in FIXED_COLUMNS])


# Fixed columns that may be null: null for the tasks that have no such output (see the module's table).
NULLABLE_COLUMNS: Final = frozenset({PREDICTION, PREDICTION_LABEL, PROBABILITY, THRESHOLD})


def optional_column_types() -> dict[str, pa.DataType]:
    """The Arrow types of the columns only a multiclass or regression log has.

    Returns:
        Column name -> type (``task``, ``class_probabilities``, ``predicted_value``).
    """
    import pyarrow as pa

    return {
        TASK: pa.string(),
        CLASS_PROBABILITIES: pa.map_(pa.string(), pa.float64()),
        PREDICTED_VALUE: pa.float64(),
    }


@dataclass(frozen=True)
class TaskOutputs:
    """What a model answered for a batch of rows, in the shape of its task (``score_outputs`` makes one).

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        values: A float array: the positive class's probability per row (binary), rows x classes probabilities
            (multiclass, columns in ``classes`` order) or the predicted value per row (regression).
        classes: The class labels as text, in the model's ``classes_`` order (multiclass; () otherwise).
    """

    task: str
    values: Any
    classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.values)

    def slice(self, start: int, rows: int) -> TaskOutputs:
        """The outputs of rows ``start`` to ``start + rows - 1``.

        Args:
            start: First row.
            rows: Number of rows.

        Returns:
            A ``TaskOutputs`` of the same task and classes.
        """
        return TaskOutputs(self.task, self.values[start : start + rows], self.classes)

    def predicted_classes(self) -> Any:
        """The predicted class of every row of a multiclass model: the class of highest probability (text).

        Returns:
            A str numpy array, one label per row.
        """
        import numpy as np

        return np.asarray(self.classes, dtype=object)[np.argmax(self.values, axis=1)]


def score_outputs(model: Any, features: pd.DataFrame, task: str = "") -> TaskOutputs:
    """Score ``features`` with ``model`` in the shape of its task: the one scoring function of batch and serve.

    Args:
        model: A fitted scikit-learn model as train saves it, taking ``features``' columns.
        features: The model's input columns (a DataFrame), one row per prediction.
        task: ``binary``, ``multiclass`` or ``regression``; "" = the model's own (``modeling.model_task``).

    Returns:
        ``TaskOutputs``: the positive class's probability (binary: ``modeling.positive_scores``, exactly the
        binary log's ``probability``), every class's probability and the class labels (multiclass), or the
        predicted value (regression).

    Raises:
        ParameterError: an unknown task.
    """
    from mlkeel.modeling import model_outputs, model_task
    from mlkeel.task import TASKS, Task

    task = task or model_task(model)
    if task not in TASKS:
        raise ParameterError(f"task {task!r} is not one of {', '.join(TASKS)}")
    values = model_outputs(model, features, task)
    classes = tuple(str(value) for value in model.classes_) if task == Task.MULTICLASS else ()
    return TaskOutputs(str(task), values, classes)


def feature_column(name: str) -> str:
    """The log column holding input feature ``name``.

    Args:
        name: The feature's column name in the input.

    Returns:
        ``feature.<name>``.
    """
    return f"{FEATURE_PREFIX}{name}"


def feature_columns(table: pa.Table) -> list[str]:
    """The input feature names recorded in a prediction log (without the prefix), in column order.

    Args:
        table: A prediction log.

    Returns:
        The feature names.
    """
    return [name[len(FEATURE_PREFIX) :] for name in table.column_names if name.startswith(FEATURE_PREFIX)]


def build_prediction_log(
    features_frame: pd.DataFrame | pa.Table,
    request_ids: Sequence[str] | pa.Array | pa.ChunkedArray,
    model_name: str,
    model_version: str,
    model_uri: str,
    scores: Any,
    threshold: float = 0.5,
    positive_label: str = "",
    negative_label: str | None = None,
    predicted_at: datetime | None = None,
    unseen_categories: Sequence[Any] | None = None,
) -> pa.Table:
    """Build the prediction-log rows of one scored batch (one row per input row, in input order).

    Args:
        features_frame: The model's input features (a DataFrame or an Arrow table), one row per prediction;
            each column is stored as ``feature.<name>`` in its own type, nulls kept.
        request_ids: One non-null id per row.
        model_name: Registered model name ("" when not from the registry).
        model_version: Registered version ("" when not from the registry).
        model_uri: The exact model scored (``models:/NAME/VERSION``, a directory...).
        scores: The model's outputs: ``TaskOutputs`` (from ``score_outputs``; its task decides the columns), or,
            for a binary model, the probability of the positive class per row (array-like of floats in [0, 1]).
        threshold: Decision threshold in [0, 1]: ``prediction = probability >= threshold`` (binary only).
        positive_label: Text of the positive class (binary only).
        negative_label: Text of the other class; None or "" when unknown (``prediction_label`` is then null
            for negative predictions; binary only).
        predicted_at: When the rows were scored, timezone-aware; None means now.
        unseen_categories: Per row, the features holding a category the model never saw (names, or a dict whose
            keys are the names: ``modeling.unseen_categories``); None = not checked ([] in every row).

    Returns:
        The log as an Arrow table: the fixed columns of ``prediction_log_schema()``, the task's own columns
        (``task`` and ``class_probabilities`` or ``predicted_value``; none for binary), ``unseen_categories``,
        then the features.

    Raises:
        DataError: lengths differ, an id is null, a score is not a probability, a class probability row does
            not match the classes, or a predicted value is not finite (the message names the row).
        ParameterError: the threshold is outside [0, 1], ``predicted_at`` has no timezone, or an unknown task.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlkeel.task import TASKS, Task

    outputs = scores if isinstance(scores, TaskOutputs) else TaskOutputs(Task.BINARY.value, scores)
    if outputs.task not in TASKS:
        raise ParameterError(f"task {outputs.task!r} is not one of {', '.join(TASKS)}")
    if isinstance(features_frame, pa.Table):
        features = features_frame
    else:
        features = pa.Table.from_pandas(features_frame, preserve_index=False)
    rows = features.num_rows
    values = np.asarray(outputs.values, dtype=np.float64)
    values = values.reshape(len(values), -1) if outputs.task == Task.MULTICLASS else values.reshape(-1)
    ids = request_ids if isinstance(request_ids, pa.ChunkedArray | pa.Array) else pa.array(request_ids)
    ids = ids.cast(pa.string())
    if len(values) != rows or len(ids) != rows:
        raise DataError(f"{rows} feature rows but {len(values)} scores and {len(ids)} request ids")
    if ids.null_count:
        first = pc.index(pc.is_null(ids), True).as_py()
        raise DataError(f"request id is null in row {first}: every prediction needs an id")
    moment = _utc(predicted_at)
    schema = prediction_log_schema()
    task_columns: list[tuple[pa.Field, pa.Array]] = []
    if outputs.task == Task.BINARY:
        _check_probabilities(values)
        threshold = check_threshold(threshold)
        predicted = values >= threshold
        labels = pa.array([negative_label or None, positive_label], pa.string())
        outcome = [
            pa.array(predicted.astype(np.int8), pa.int8()),
            labels.take(pa.array(predicted.astype(np.int8))),
            pa.array(values, pa.float64()),
            pa.repeat(pa.scalar(threshold, pa.float64()), rows),
        ]
    elif outputs.task == Task.MULTICLASS:
        task_columns = _multiclass_columns(outputs, values)
        chosen = np.argmax(values, axis=1) if rows else np.zeros(0, dtype=np.int64)
        outcome = [
            pa.nulls(rows, pa.int8()),
            pa.array(np.asarray(outputs.classes, dtype=object)[chosen], pa.string()),
            pa.array(values[np.arange(rows), chosen], pa.float64()),
            pa.nulls(rows, pa.float64()),
        ]
    else:
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"predicted value {float(values[first])!r} in row {first} is not a finite number")
        task_columns = [(pa.field(PREDICTED_VALUE, pa.float64()), pa.array(values, pa.float64()))]
        outcome = [pa.nulls(rows, pa.int8()), pa.nulls(rows, pa.string()), *[pa.nulls(rows, pa.float64())] * 2]
    if task_columns:
        task_columns.insert(0, (pa.field(TASK, pa.string()), pa.repeat(pa.scalar(outputs.task, pa.string()), rows)))
    fixed = [
        ids,
        pa.repeat(pa.scalar(model_name, pa.string()), rows),
        pa.repeat(pa.scalar(str(model_version), pa.string()), rows),
        pa.repeat(pa.scalar(model_uri, pa.string()), rows),
        *outcome,
        pa.repeat(pa.scalar(moment, schema.field(PREDICTED_AT).type), rows),
    ]
    flagged = [sorted(found) for found in unseen_categories] if unseen_categories is not None else [[]] * rows
    if len(flagged) != rows:
        raise DataError(f"{rows} feature rows but {len(flagged)} unseen-category entries")
    columns = [
        *fixed,
        *(column for _, column in task_columns),
        pa.array(flagged, pa.list_(pa.string())),
        *features.columns,
    ]
    fields = [
        *schema,
        *(field for field, _ in task_columns),
        pa.field(UNSEEN_CATEGORIES, pa.list_(pa.string())),
        *(field.with_name(feature_column(field.name)) for field in features.schema),
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _check_probabilities(values: Any, what: str = "score") -> None:
    import numpy as np

    bad = ~np.isfinite(values) | (values < 0.0) | (values > 1.0)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise DataError(f"{what} {float(values[tuple(first)])!r} in row {int(first[0])} is not a probability in [0, 1]")


def _multiclass_columns(outputs: TaskOutputs, values: Any) -> list[tuple[pa.Field, pa.Array]]:
    import numpy as np
    import pyarrow as pa

    classes = list(outputs.classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise DataError(f"a multiclass model needs two or more distinct classes, got {classes}")
    if values.shape[1] != len(classes):
        raise DataError(f"{values.shape[1]} class probabilities per row but {len(classes)} classes {classes}")
    _check_probabilities(values, "class probability")
    rows = len(values)
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * len(classes), pa.int32())
    keys = pa.array(np.tile(np.asarray(classes, dtype=object), rows), pa.string())
    mapped = pa.MapArray.from_arrays(offsets, keys, pa.array(values.reshape(-1), pa.float64()))
    return [(pa.field(CLASS_PROBABILITIES, optional_column_types()[CLASS_PROBABILITIES]), mapped)]


def log_task(table: pa.Table, source: str = "prediction log") -> str:
    """The task of the model(s) that wrote a prediction log: its ``task`` column, null or absent = binary.

    Args:
        table: A prediction log.
        source: Printable name of the log, for messages.

    Returns:
        ``binary``, ``multiclass`` or ``regression``.

    Raises:
        SchemaMismatchError: the log mixes tasks (rows of models of different tasks), or names an unknown one.
    """
    import pyarrow.compute as pc

    from mlkeel.task import TASKS, Task

    if TASK not in table.column_names:
        return Task.BINARY.value
    found = sorted({value or Task.BINARY.value for value in pc.unique(table.column(TASK)).to_pylist()})
    unknown = [value for value in found if value not in TASKS]
    if unknown:
        raise SchemaMismatchError(f"{source}: unknown task {unknown[0]!r} in column {TASK!r}")
    if len(found) > 1:
        raise SchemaMismatchError(f"{source}: rows of models of different tasks ({', '.join(found)}) in one log")
    return found[0] if found else Task.BINARY.value


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float when it is a decision threshold in [0, 1].

    Args:
        threshold: The value.

    Returns:
        The threshold.

    Raises:
        ParameterError: not a number in [0, 1].
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError) as error:
        raise ParameterError(f"threshold {threshold!r} is not a number in [0, 1]") from error
    if not 0.0 <= value <= 1.0:
        raise ParameterError(f"threshold {value} is outside [0, 1]")
    return value


def _utc(moment: datetime | None) -> datetime:
    from datetime import UTC

    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ParameterError(f"predicted_at {moment.isoformat()} has no timezone: pass an aware datetime (UTC)")
    return moment.astimezone(UTC)


def validate_prediction_log(table: pa.Table, source: str = "prediction log") -> pa.Table:
    """Check that ``table`` is a prediction log and return it with the fixed columns in their canonical types.

    Integer, float and timestamp columns written by another writer (int64 predictions, nanosecond
    timestamps) are cast losslessly; anything else is refused.

    Args:
        table: The table read from a log file.
        source: Printable name of where it comes from, for messages.

    Returns:
        The table with the fixed columns cast to ``prediction_log_schema()``'s types.

    Raises:
        SchemaMismatchError: a fixed column is missing or has a type that cannot be cast.
    """
    import pyarrow as pa
    import pyarrow.types as pat

    schema = prediction_log_schema()
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaMismatchError(f"{source}: not a prediction log, missing column(s): {', '.join(missing)}")
    for expected in schema:
        index = table.schema.get_field_index(expected.name)
        actual = table.schema.field(index).type
        if actual == expected.type:
            continue
        if not _castable(actual, expected.type):
            raise SchemaMismatchError(f"{source}: column {expected.name!r} is {actual}, expected {expected.type}")
        try:
            # Timestamps may lose sub-microsecond digits (a nanosecond writer); nothing else may lose data.
            column = table.column(index).cast(expected.type, safe=not pat.is_timestamp(expected.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise SchemaMismatchError(
                f"{source}: column {expected.name!r} ({actual}) does not convert to {expected.type}: {error}"
            ) from error
        table = table.set_column(index, pa.field(expected.name, expected.type), column)
    for name, kind in optional_column_types().items():
        if name not in table.column_names:
            continue
        actual = table.schema.field(name).type
        if actual == kind or pat.is_null(actual):
            continue
        try:
            column = table.column(name).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise SchemaMismatchError(f"{source}: column {name!r} is {actual}, expected {kind}") from error
        table = table.set_column(table.schema.get_field_index(name), pa.field(name, kind), column)
    return table


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    import pyarrow.types as pat

    if pat.is_timestamp(expected):
        return pat.is_timestamp(actual) and actual.tz is not None
    if pat.is_integer(expected):
        return pat.is_integer(actual) or pat.is_boolean(actual)
    if pat.is_floating(expected):
        return pat.is_floating(actual) or pat.is_integer(actual)
    if pat.is_dictionary(actual):
        actual = actual.value_type
    return pat.is_string(actual) or pat.is_large_string(actual) or pat.is_null(actual)


def read_prediction_logs(paths_or_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pa.Table:
    """Read one log file, a folder of them (recursively) or a list of either, as one validated table.

    Files whose name starts with "." or "_" are skipped (temporary files of an atomic write, ``_SUCCESS``).
    Logs with different feature columns combine: a feature missing from one file is null in its rows.

    Args:
        paths_or_dir: A Parquet file, a folder of Parquet files, or a list of them (local paths or URIs).

    Returns:
        All rows, files in sorted path order.

    Raises:
        DataError: a path does not exist, a folder holds no Parquet file, or a file is not Parquet.
        SchemaMismatchError: a file is not a prediction log (the message names the file).
    """
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from mlkeel.storage import resolve_filesystem

    given = [paths_or_dir] if isinstance(paths_or_dir, str | os.PathLike) else list(paths_or_dir)
    if not given:
        raise DataError("no prediction log given")
    tables = []
    for entry in given:
        uri = os.fspath(entry)
        filesystem, path = resolve_filesystem(uri)
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise DataError(f"{display_uri(uri)}: prediction log not found")
        if info.type == pafs.FileType.Directory:
            found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
            files = sorted(
                item.path
                for item in found
                if item.type == pafs.FileType.File and not item.base_name.startswith((".", "_"))
            )
            if not files:
                raise DataError(f"{display_uri(uri)}: folder holds no prediction log file")
        else:
            files = [path]
        for file in files:
            shown = display_uri(uri) if file == path else f"{display_uri(uri)}: {file[len(path) :].lstrip('/')}"
            try:
                table = pq.read_table(file, filesystem=filesystem)
            except (pa.ArrowInvalid, OSError) as error:
                raise DataError(f"{shown}: not a readable Parquet file: {error}") from error
            tables.append(validate_prediction_log(table, shown))
    if len(tables) == 1:
        return tables[0]
    try:
        combined = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise SchemaMismatchError(f"prediction logs with incompatible feature columns: {error}") from error
    fixed = prediction_log_schema().names
    return combined.select(fixed + [name for name in combined.column_names if name not in fixed])


class PredictionLogWriter:
    """Write a prediction log to one Parquet file chunk by chunk, atomically, encoding in a background thread.

    Parquet encoding releases the GIL, so the file encodes chunk ``k`` while the caller scores chunk ``k + 1``.
    At most one chunk waits to be encoded (memory stays bounded). The file appears at ``path`` only when the
    ``with`` block ends without an error; until then it is a hidden temporary sibling (which
    ``read_prediction_logs`` skips), deleted on error.

    Example::

        with PredictionLogWriter(path) as writer:
            for chunk in chunks:
                writer.write(build_prediction_log(...))
    """

    def __init__(self, path: str | os.PathLike[str], compression: str = "zstd") -> None:
        from pathlib import Path

        self.path = Path(path)
        self.compression = compression
        self.rows = 0
        self._writer: Any = None
        self._temporary: Any = None
        self._pending: Any = None
        self._executor: Any = None

    def __enter__(self) -> PredictionLogWriter:
        import tempfile
        from concurrent.futures import ThreadPoolExecutor
        from pathlib import Path

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(handle)
        self._temporary = Path(name)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prediction-log")
        return self

    def write(self, table: pa.Table) -> None:
        """Queue ``table`` (one chunk of the log; every chunk has the first one's schema) for writing.

        Args:
            table: Rows from ``build_prediction_log``.

        Raises:
            SchemaMismatchError: the chunk's columns differ from the first chunk's.
        """
        import pyarrow.parquet as pq

        if self._executor is None:
            raise RuntimeError("PredictionLogWriter.write outside its with block")
        self._wait()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._temporary, table.schema, compression=self.compression)
        elif not table.schema.equals(self._writer.schema):
            raise SchemaMismatchError(f"{self.path}: a chunk's columns differ from the first chunk's")
        self.rows += table.num_rows
        self._pending = self._executor.submit(self._writer.write_table, table)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # re-raises an encoding error here, in the caller's thread

    def __exit__(self, error_type: Any, error: Any, traceback: Any) -> None:
        try:
            if error_type is None:
                self._wait()
                if self._writer is None:
                    raise DataError(f"{self.path}: no rows were written to the prediction log")
                self._writer.close()
                self._writer = None
                os.replace(self._temporary, self.path)
        finally:
            # On an error, a chunk still encoding finishes first; its own error, if any, is dropped: the error
            # that stopped the block is the one to report.
            self._executor.shutdown(wait=True)
            if self._writer is not None:
                self._writer.close()
            self._temporary.unlink(missing_ok=True)
