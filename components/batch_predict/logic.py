"""Batch predict: score a dataset with a registered (or local) model and write a prediction log.

Every task (``mlkeel.task``, read from the model's training run tag, else from the model itself): a binary
model's log holds the positive class's probability and the prediction at the decision threshold; a multiclass
model's every class's probability and the predicted class; a regression model's predicted value (the columns
per task: ``mlkeel.prediction_log``). Batch predict and serving score with the same function
(``mlkeel.prediction_log.score_outputs``).

The model is resolved first: ``models:/NAME@alias`` becomes the version the alias points to *now*, and that
version (``models:/NAME/VERSION``) is what gets loaded and named in every log row, so a log never says
"champion" when it means "version 3". The model's own preprocessing (imputation, unseen categories) handles
missing values; every input row gets exactly one log row (checked, never silently dropped). Scoring is
vectorised: one ``predict_proba`` call per chunk of ``CHUNK_ROWS`` rows, chunks scored side by side on one
thread per CPU, each model call single-threaded (see ``score_chunks``), while a background thread encodes the
previous chunk's log rows into the Parquet file (encoding releases the GIL; scikit-learn's one-hot encoding
does not), so writing the log costs little beyond the model's own time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlkeel.constants import ArtifactMetadata, LineageTag
from mlkeel.errors import DataError, ParameterError, RegistryError
from mlkeel.storage import display_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from mlflow.tracking import MlflowClient

    from mlkeel.prediction_log import TaskOutputs

logger = logging.getLogger(__name__)

# Rows per predict_proba call. The per-row cost of a Telco pipeline is flat from 25k to 200k rows per call
# (measured), and several chunks let the log of one encode while the next is scored; memory stays bounded.
CHUNK_ROWS = 50_000
# Bytes read at a time when fingerprinting the dataset for default request ids.
HASH_BLOCK_BYTES = 1 << 20
# Characters of the dataset's SHA-256 used as the default batch id.
BATCH_ID_CHARS = 16
# Without a recorded label, the model's own class names (it is fitted on 0/1).
MODEL_POSITIVE_CLASS = "1"
MODEL_NEGATIVE_CLASS = "0"
REGISTERED_VERSION_URI = re.compile(r"^models:/(?P<name>[^@/]+)/(?P<version>[^/]+)$")
REGISTERED_ALIAS_URI = re.compile(r"^models:/(?P<name>[^@/]+)@(?P<alias>[^/]+)$")


@dataclass(frozen=True)
class ResolvedModel:
    """A loaded model and what it is.

    Attributes:
        model: The scikit-learn model (a Pipeline taking the raw feature columns).
        name: Registered model name ("" for a model not loaded from the registry).
        version: Registered version ("" for a model not loaded from the registry).
        uri: The exact model loaded: ``models:/NAME/VERSION`` for a registered one (never an alias).
        positive_label: Text of the positive class (the ``mlkeel.positive_label`` tag, else "1").
        negative_label: Text of the other class; None when unknown (the registry records only the positive
            label unless the training run tagged ``mlkeel.negative_label``).
        requested_uri: The URI as given (e.g. ``models:/churn@champion``), without credentials.
        task: ``binary``, ``multiclass`` or ``regression``: the ``mlkeel.task`` tag of the model's version or
            training run, else read from the model (``modeling.model_task``).
    """

    model: Any
    name: str
    version: str
    uri: str
    positive_label: str
    negative_label: str | None = None
    requested_uri: str = ""
    task: str = "binary"


@dataclass(frozen=True)
class BatchPredictionResult:
    """What batch predict did.

    Attributes:
        rows_in: Rows in the dataset.
        rows_scored: Rows in the prediction log (always equal to ``rows_in``).
        model_name: Registered model name ("" when not from the registry).
        model_version: Registered version scored ("" when not from the registry).
        positive_rate: Share of rows predicted positive (binary; None for another task).
        model_uri: The exact model scored.
        threshold: The decision threshold used (binary; None for another task).
        output_path: Where the prediction log was written.
        task: The model's task.
        class_shares: Multiclass: each class of the model -> the share of rows predicted that class; {} otherwise.
        mean_predicted_value: Regression: the mean predicted value; None otherwise.
    """

    rows_in: int
    rows_scored: int
    model_name: str
    model_version: str
    positive_rate: float | None
    model_uri: str = ""
    threshold: float | None = 0.5
    output_path: str = ""
    task: str = "binary"
    class_shares: dict[str, float] = field(default_factory=dict)
    mean_predicted_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the CLI prints): a binary result as before; another task adds its summary."""
        summary = {
            "rows_in": self.rows_in,
            "rows_scored": self.rows_scored,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_uri": self.model_uri,
            "positive_rate": self.positive_rate,
            "threshold": self.threshold,
            "output_path": self.output_path,
        }
        return {**summary, **self._task_summary()}

    def _task_summary(self) -> dict[str, Any]:
        from mlkeel.task import Task

        if self.task == Task.BINARY:
            return {}
        if self.task == Task.MULTICLASS:
            return {"task": self.task, "class_shares": self.class_shares}
        return {"task": self.task, "mean_predicted_value": self.mean_predicted_value}

    @property
    def metadata(self) -> dict[str, Any]:
        """KFP metadata of the predictions Dataset (a binary one as before; another task's without a rate)."""
        from mlkeel.task import Task

        found: dict[str, Any] = {
            "rows": self.rows_scored,
            ArtifactMetadata.REGISTERED_MODEL_NAME: self.model_name,
            ArtifactMetadata.REGISTERED_MODEL_VERSION: self.model_version,
        }
        if self.task == Task.BINARY:
            return {**found, "positive_rate": self.positive_rate}
        return {**found, **self._task_summary()}


def resolve_model(
    model_uri: str, tracking_uri: str = "", positive_label: str = "", negative_label: str = ""
) -> ResolvedModel:
    """Resolve ``model_uri`` to an exact model, load it and find its class labels.

    Args:
        model_uri: ``models:/NAME@alias``, ``models:/NAME/VERSION``, another MLflow URI (``models:/m-...``,
            ``runs:/...``) or a local MLflow sklearn model directory.
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``); not needed for a directory.
        positive_label: Text of the positive class; "" = the ``mlkeel.positive_label`` tag of the registered
            version (or its training run), else "1".
        negative_label: Text of the other class; "" = the ``mlkeel.negative_label`` tag when recorded.

    Returns:
        The ``ResolvedModel``.

    Raises:
        ParameterError: empty URI, a stage name instead of a version, or no tracking URI for a registry URI.
        RegistryError: no such model, version or alias; the registry cannot be reached; the model cannot load.
        DataError: a local directory that is not an MLflow sklearn model.
    """
    from mlkeel.components.gate.logic import registry_call
    from mlkeel.modeling import load_sklearn_model

    model_uri = model_uri.strip()
    if not model_uri:
        raise ParameterError("model_uri is empty: pass models:/NAME@ALIAS, models:/NAME/VERSION or a model folder")
    shown = display_uri(model_uri)
    if ":/" not in model_uri or model_uri.startswith("file:"):
        return _resolve_directory(model_uri, positive_label, negative_label)

    from mlkeel.tracking import connect, resolve_tracking_uri

    resolved_uri = resolve_tracking_uri(tracking_uri)
    client = connect(resolved_uri)
    name = version = ""
    tags: dict[str, str] = {}
    run_id = ""
    by_alias, by_version = REGISTERED_ALIAS_URI.match(model_uri), REGISTERED_VERSION_URI.match(model_uri)
    found = None
    if by_alias:
        name = by_alias["name"]
        found = _version_by_alias(client, name, by_alias["alias"], resolved_uri)
    elif by_version:
        name = by_version["name"]
        found = _version_by_number(client, name, by_version["version"], resolved_uri)
    if found is not None:
        version, tags, run_id = str(found.version), dict(found.tags or {}), found.run_id or ""
        exact_uri = f"models:/{name}/{version}"
    else:
        from mlkeel.components.register.logic import logged_model_run_id

        exact_uri = model_uri
        run_id = logged_model_run_id(client, model_uri, resolved_uri)
    if run_id and not (LineageTag.POSITIVE_LABEL in tags and LineageTag.NEGATIVE_LABEL in tags):
        run = registry_call(resolved_uri, f"read training run {run_id}", lambda: client.get_run(run_id))
        tags = {**run.data.tags, **tags}
    model = registry_call(resolved_uri, f"load model {exact_uri}", lambda: load_sklearn_model(exact_uri))
    positive, negative = _labels(tags, positive_label, negative_label)
    if by_alias:
        logger.info("batch_predict: %s is version %s (%s)", shown, version, exact_uri)
    return ResolvedModel(model, name, version, exact_uri, positive, negative, shown, _task(tags, model))


def _resolve_directory(path: str, positive_label: str, negative_label: str) -> ResolvedModel:
    from pathlib import Path

    from mlkeel.modeling import load_sklearn_model

    local = Path(path.removeprefix("file://")).expanduser()
    if not (local / "MLmodel").is_file():
        raise DataError(f"{path}: not an MLflow model folder (no MLmodel file); or pass models:/NAME@ALIAS")
    try:
        model = load_sklearn_model(str(local))
    except Exception as error:  # MLflow raises MlflowException / OSError / skops errors by format
        raise DataError(f"{path}: cannot load the MLflow sklearn model: {type(error).__name__}: {error}") from error
    positive, negative = _labels({}, positive_label, negative_label)
    return ResolvedModel(model, "", "", path, positive, negative, path, _task({}, model))


def _task(tags: dict[str, str], model: Any) -> str:
    from mlkeel.modeling import model_task
    from mlkeel.task import TASKS

    tagged = tags.get(LineageTag.TASK, "")
    return tagged if tagged in TASKS else model_task(model)


def _labels(tags: dict[str, str], positive_label: str, negative_label: str) -> tuple[str, str | None]:
    positive = positive_label or tags.get(LineageTag.POSITIVE_LABEL, "")
    negative = negative_label or tags.get(LineageTag.NEGATIVE_LABEL, "")
    if not positive:
        return MODEL_POSITIVE_CLASS, negative or MODEL_NEGATIVE_CLASS
    return positive, negative or None


def _registered_model(client: MlflowClient, name: str, tracking_uri: str) -> Any:
    from mlkeel.components.gate.logic import is_not_found, registry_call

    try:
        return registry_call(tracking_uri, f"read registered model {name!r}", lambda: client.get_registered_model(name))
    except RegistryError as error:
        if is_not_found(error):
            raise RegistryError(f"no model named {name!r} is registered at {display_uri(tracking_uri)}") from error
        raise


def _version_by_alias(client: MlflowClient, name: str, alias: str, tracking_uri: str) -> Any:
    from mlkeel.components.gate.logic import registry_call

    try:
        return registry_call(
            tracking_uri,
            f"resolve alias {alias!r} of {name!r}",
            lambda: client.get_model_version_by_alias(name, alias),
        )
    except RegistryError as error:
        # MLflow answers a missing alias with INVALID_PARAMETER_VALUE: ask the model which aliases it has.
        aliases = dict(_registered_model(client, name, tracking_uri).aliases or {})
        if alias not in aliases:
            held = ", ".join(f"{key} -> version {value}" for key, value in sorted(aliases.items()))
            known = f"its aliases: {held}" if held else "it has no aliases"
            raise RegistryError(f"no version of {name!r} has alias {alias!r} ({known})") from error
        raise


def _version_by_number(client: MlflowClient, name: str, version: str, tracking_uri: str) -> Any:
    from mlkeel.components.gate.logic import is_not_found, registry_call

    if not version.isdigit():
        raise ParameterError(
            f"models:/{name}/{version}: {version!r} is not a version number (registry stages are deprecated); "
            f"use models:/{name}@ALIAS or models:/{name}/VERSION"
        )
    try:
        return registry_call(
            tracking_uri,
            f"read version {version} of {name!r}",
            lambda: client.get_model_version(name, version),
        )
    except RegistryError as error:
        if is_not_found(error):
            _registered_model(client, name, tracking_uri)  # a missing model says so
            raise RegistryError(f"registered model {name!r} has no version {version}") from error
        raise


def score_table(model: Any, table: pa.Table, feature_columns: list[str], source: str = "data", task: str = "") -> Any:
    """The model's outputs for every row of ``table``, ``CHUNK_ROWS`` rows per model call.

    Args:
        model: A fitted scikit-learn model taking ``feature_columns`` as a DataFrame.
        table: The rows (Arrow), holding at least ``feature_columns``.
        feature_columns: The model's input columns, in order.
        source: Printable name of the rows, for messages.
        task: The model's task ("" = read from the model).

    Returns:
        A float64 numpy array: one positive-class probability per row (binary), rows x classes probabilities
        (multiclass, in ``model.classes_`` order) or one predicted value per row (regression).

    Raises:
        SchemaMismatchError: a feature column is missing (the message names every one).
        DataError: the model cannot score a chunk (e.g. text in a numeric column).
    """
    import numpy as np

    from mlkeel.modeling import feature_frame

    feature_frame(table.schema.empty_table().to_pandas(), feature_columns, source)  # missing columns, before work
    parts = [outputs.values for _, _, outputs in score_chunks(model, table, feature_columns, source, task)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def scoring_workers() -> int:
    """Chunks scored at once: as many as the threads scikit-learn's OpenMP code would use for one call.

    That count honours ``OMP_NUM_THREADS``, CPU affinity and a container's CPU quota.

    Returns:
        At least 1.
    """
    try:  # the function HistGradientBoosting* and other OpenMP estimators ask (private, present since 0.23)
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    except ImportError:  # pragma: no cover - a scikit-learn that moved it
        import os

        return max(1, len(os.sched_getaffinity(0)))
    return max(1, _openmp_effective_n_threads())


def _single_threaded_openmp() -> None:
    from threadpoolctl import threadpool_limits

    # OpenMP's thread count is per calling thread: this limits the scoring thread only, for its whole life.
    threadpool_limits(limits=1, user_api="openmp")


def score_chunks(
    model: Any, table: pa.Table, feature_columns: list[str], source: str = "data", task: str = ""
) -> Iterator[tuple[int, pa.Table, TaskOutputs]]:
    """Score ``table`` in chunks of ``CHUNK_ROWS`` rows, ``scoring_workers()`` chunks at a time, in row order.

    Each chunk is one ``predict_proba`` call on its own thread whose OpenMP code runs single-threaded: the
    CPUs are shared out by chunk instead of inside each call. A multi-threaded call (HistGradientBoosting
    opens one OpenMP parallel region per tree) waits at a barrier for its slowest thread once per tree, and
    on a busy machine a descheduled thread costs a scheduler slice at every one of them: measured on 2
    shared CPUs, 50k-row chunks took 3x the time single-threaded ones did. Scores equal the model's own
    ``predict_proba`` to within rounding of the last bit (native code on a worker thread: 3 of 1,409 rows
    1.1e-16 apart in tests/unit/test_batch_predict.py). At most ``2 * workers`` chunks are in flight.

    Args:
        model: A fitted scikit-learn classifier taking ``feature_columns`` as a DataFrame.
        table: The rows (Arrow), holding every feature column.
        feature_columns: The model's input columns, in order.
        source: Printable name of the rows, for messages.
        task: The model's task ("" = read from the model).

    Yields:
        ``(first row, chunk, outputs)`` per chunk, in row order; outputs as from ``score_chunk``.

    Raises:
        DataError: the model cannot score a chunk (the first such chunk in row order).
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from mlkeel.modeling import model_task

    starts = range(0, table.num_rows, CHUNK_ROWS)
    workers = min(scoring_workers(), max(1, len(starts)))

    task = task or model_task(model)

    def score(start: int) -> tuple[pa.Table, TaskOutputs]:
        chunk = table.slice(start, CHUNK_ROWS)
        return chunk, score_chunk(model, chunk, feature_columns, start, source, task)

    pending: deque[tuple[int, Future[tuple[pa.Table, TaskOutputs]]]] = deque()
    with ThreadPoolExecutor(workers, "batch-predict", initializer=_single_threaded_openmp) as pool:
        try:
            for start in starts:
                pending.append((start, pool.submit(score, start)))
                if len(pending) >= 2 * workers:  # keep every worker busy while the caller handles a chunk
                    first, future = pending.popleft()
                    yield (first, *future.result())
            while pending:
                first, future = pending.popleft()
                yield (first, *future.result())
        finally:  # an error (here or in the caller): do not start chunks nobody will read
            for _, future in pending:
                future.cancel()


def score_chunk(
    model: Any, chunk: pa.Table, feature_columns: list[str], first_row: int, source: str, task: str = ""
) -> TaskOutputs:
    """The model's outputs for one chunk: one ``predict_proba`` (``predict`` for regression) call.

    Args:
        model: A fitted scikit-learn model taking ``feature_columns`` as a DataFrame.
        chunk: The rows, holding every feature column.
        feature_columns: The model's input columns, in order.
        first_row: Index of the chunk's first row in the dataset, for messages.
        source: Printable name of the rows, for messages.
        task: The model's task ("" = read from the model).

    Returns:
        ``TaskOutputs`` (``mlkeel.prediction_log.score_outputs``): binary, the positive-class probability per row.

    Raises:
        DataError: the model cannot score the chunk (e.g. text in a numeric column).
    """
    from mlkeel.prediction_log import score_outputs

    try:
        return score_outputs(model, chunk.select(feature_columns).to_pandas(), task)
    except (ValueError, TypeError) as error:
        end = first_row + chunk.num_rows - 1
        raise DataError(f"{source}: the model cannot score rows {first_row}-{end}: {error}") from error


def default_batch_id(dataset_path: str) -> str:
    """A deterministic batch id: the start of the dataset file's SHA-256 (same file -> same request ids).

    Args:
        dataset_path: Path or URI of the dataset.

    Returns:
        ``BATCH_ID_CHARS`` hex characters.
    """
    import hashlib

    from mlkeel.storage import resolve_filesystem

    filesystem, path = resolve_filesystem(dataset_path)
    digest = hashlib.sha256()
    with filesystem.open_input_stream(path) as stream:
        while block := stream.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()[:BATCH_ID_CHARS]


def request_ids(table: pa.Table, key_column: str, batch_id: str, source: str = "data") -> pa.ChunkedArray:
    """One id per row: the key column's values as text, else ``<batch_id>-<row number>``.

    Args:
        table: The rows.
        key_column: Column holding each row's id ("" = generate ids).
        batch_id: Prefix of generated ids.
        source: Printable name of the rows, for messages.

    Returns:
        A string array, one id per row.

    Raises:
        SchemaMismatchError: the key column is missing.
        DataError: a key is null.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if key_column:
        if key_column not in table.column_names:
            from mlkeel.errors import SchemaMismatchError

            raise SchemaMismatchError(
                f"{source}: key column {key_column!r} not found; columns: {', '.join(table.column_names)}"
            )
        keys = table.column(key_column)
        if keys.null_count:
            first = pc.index(pc.is_null(keys), True).as_py()
            raise DataError(f"{source}: key column {key_column!r} is null in row {first}: every row needs an id")
        return pc.cast(keys, pa.string())
    numbers = pc.cast(pa.array(np.arange(table.num_rows, dtype=np.int64)), pa.string())
    return pa.chunked_array([pc.binary_join_element_wise(f"{batch_id}-", numbers, "")], pa.string())


def batch_predict(
    model_uri: str,
    dataset_path: str,
    output_path: str,
    tracking_uri: str = "",
    key_column: str = "",
    threshold: float | None = None,
    batch_id: str = "",
    positive_label: str = "",
    negative_label: str = "",
) -> BatchPredictionResult:
    """Score every row of the Parquet at ``dataset_path`` and write the prediction log to ``output_path``.

    Args:
        model_uri: ``models:/NAME@alias``, ``models:/NAME/VERSION`` or an MLflow model folder (see
            ``resolve_model``).
        dataset_path: Rows to score (Parquet, local path or URI) with the model's feature columns; other
            columns (a target, keys) are ignored.
        output_path: Where to write the prediction log (Parquet, local path; written atomically, chunk by
            chunk).
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``); unused for a folder.
        key_column: Column whose value becomes each row's ``request_id`` ("" = ``<batch_id>-<row>``).
        threshold: Decision threshold in [0, 1] for the ``prediction`` column; None = the model's own (the one
            train chose and saved inside it; 0.5 for a model that carries none). Binary only: a multiclass
            model predicts its most probable class, a regression model its value.
        batch_id: Prefix of generated request ids ("" = the start of the dataset file's SHA-256, so
            rescoring the same file gives the same ids).
        positive_label: Text of the positive class ("" = the model's recorded label).
        negative_label: Text of the other class ("" = the model's recorded label, when any).

    Returns:
        A ``BatchPredictionResult``.

    Raises:
        ParameterError: bad threshold (or one for a non-binary model), empty model URI, no tracking URI for a
            registry URI.
        RegistryError: no such model, version or alias, or the registry cannot be reached.
        DataError: the dataset is missing, empty or unreadable, a key is null, or the model cannot score it.
        SchemaMismatchError: a feature or key column is missing (the message names every one).
    """
    from collections import Counter
    from datetime import UTC, datetime

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlkeel.modeling import (
        decision_threshold,
        feature_frame,
        known_categories,
        model_feature_columns,
        unseen_categories,
    )
    from mlkeel.prediction_log import PREDICTION_LABEL, PredictionLogWriter, build_prediction_log, check_threshold
    from mlkeel.storage import require_readable_file
    from mlkeel.task import Task

    if threshold is not None:
        threshold = check_threshold(threshold)
    shown = display_uri(dataset_path)
    filesystem, path, _ = require_readable_file(dataset_path)
    resolved = resolve_model(model_uri, tracking_uri, positive_label, negative_label)
    if threshold is not None and resolved.task != Task.BINARY:
        raise ParameterError(
            f"threshold={threshold}: {resolved.uri} is a {resolved.task} model; a decision threshold is for a binary "
            "model only (a multiclass model predicts its most probable class, a regression model its value)"
        )
    if threshold is None:
        threshold = decision_threshold(resolved.model)
    try:
        columns = model_feature_columns(resolved.model)
    except AttributeError as error:
        raise DataError(f"{resolved.uri}: the model has no feature_names_in_ (not fitted on a DataFrame)") from error
    try:
        schema = pq.read_schema(path, filesystem=filesystem)
        rows_in = pq.read_metadata(path, filesystem=filesystem).num_rows
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{shown}: not a readable Parquet file: {error}") from error
    feature_frame(schema.empty_table().to_pandas(), columns, shown)  # names every missing column, before reading
    if rows_in == 0:
        raise DataError(f"{shown}: no rows to score")
    keys = [key_column] if key_column and key_column in schema.names else []
    table = pq.read_table(path, filesystem=filesystem, columns=list(dict.fromkeys([*columns, *keys])))

    ids = request_ids(table, key_column, batch_id or default_batch_id(dataset_path), shown)
    predicted_at = datetime.now(UTC)  # one moment for the whole batch
    binary = resolved.task == Task.BINARY
    positives = 0
    value_sum = 0.0
    counts: Counter[str] = Counter()
    categories = known_categories(resolved.model)
    with PredictionLogWriter(output_path) as writer:
        for start, chunk, outputs in score_chunks(resolved.model, table, columns, shown, resolved.task):
            log = build_prediction_log(
                chunk.select(columns),
                ids.slice(start, chunk.num_rows),
                resolved.name,
                resolved.version,
                resolved.uri,
                outputs,
                threshold,
                resolved.positive_label,
                resolved.negative_label,
                predicted_at,
                unseen_categories(chunk, categories),
            )
            writer.write(log)
            if binary:
                positives += int(np.count_nonzero(outputs.values >= threshold))
            elif resolved.task == Task.MULTICLASS:
                counts.update(log.column(PREDICTION_LABEL).to_pylist())
            else:
                value_sum += float(np.sum(outputs.values))
        if writer.rows != rows_in:  # a broken promise, not a user error: fail loudly, and the file never appears
            raise RuntimeError(f"{shown}: {rows_in} rows in but {writer.rows} prediction log rows")
    common = {
        "rows_in": rows_in,
        "rows_scored": writer.rows,
        "model_name": resolved.name,
        "model_version": resolved.version,
        "model_uri": resolved.uri,
        "output_path": str(output_path),
        "task": resolved.task,
    }
    if binary:
        positive_rate = positives / rows_in
        logger.info(
            "batch_predict: %d rows of %s scored with %s; %.1f%% predicted %r",
            rows_in,
            shown,
            resolved.uri,
            100 * positive_rate,
            resolved.positive_label,
        )
        return BatchPredictionResult(positive_rate=positive_rate, threshold=threshold, **common)
    if resolved.task == Task.MULTICLASS:
        classes = [str(value) for value in resolved.model.classes_]
        shares = {label: counts[label] / rows_in for label in classes}
        shown_shares = ", ".join(f"{label} {100 * share:.1f}%" for label, share in shares.items())
        logger.info(
            "batch_predict: %d rows of %s scored with %s (multiclass): %s", rows_in, shown, resolved.uri, shown_shares
        )
        return BatchPredictionResult(positive_rate=None, threshold=None, class_shares=shares, **common)
    mean = value_sum / rows_in
    logger.info(
        "batch_predict: %d rows of %s scored with %s (regression): mean %.4g", rows_in, shown, resolved.uri, mean
    )
    return BatchPredictionResult(positive_rate=None, threshold=None, mean_predicted_value=mean, **common)
