"""Split: deterministic train/test split of a Parquet dataset.

Two modes:
    * stratified random (default): seeded, keeps the positive rate (binary) or every class's share (multiclass)
      equal in both parts; a regression target is never stratified by its raw value (every value would be a
      class of one) but by quantile bins of it (``mlkeel.task.stratify_labels``), so both parts cover its range
      alike;
    * by key hash (``hash_key_column``): a row's side depends only on its key, so the same customer stays on the
      same side across data versions and reruns (no leakage when the data grows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from mlkeel.storage import write_parquet_atomic

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

HASH_BUCKETS = 10_000


@dataclass(frozen=True)
class SplitResult:
    """What split produced.

    Attributes:
        train_rows: Rows in the train part.
        test_rows: Rows in the test part.
        mode: ``stratified``, ``stratified_quantiles`` (regression), ``random`` or ``key_hash``.
        train_positive_rate: Share of positive labels in the train part (None without a target).
        test_positive_rate: Same for the test part.
        task: The target's task (``mlkeel.task``), "" without a target.
        task_reason: Why that task (``TaskChoice.summary``), "" without a target.
    """

    train_rows: int
    test_rows: int
    mode: str
    train_positive_rate: float | None = None
    test_positive_rate: float | None = None
    task: str = ""
    task_reason: str = ""

    @property
    def metadata(self) -> dict[str, Any]:
        """KFP artifact metadata."""
        return {
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "mode": self.mode,
            "train_positive_rate": self.train_positive_rate,
            "test_positive_rate": self.test_positive_rate,
            "task": self.task,
            "task_reason": self.task_reason,
        }


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(f"test_fraction={test_fraction}: must be strictly between 0 and 1")


def _require_column(table: pa.Table, column: str, role: str, source: str) -> None:
    if column not in table.column_names:
        raise SchemaMismatchError(f"{source}: {role} {column!r} not found; columns: {', '.join(table.column_names)}")


def key_hash_test_mask(table: pa.Table, key_column: str, test_fraction: float) -> np.ndarray:
    """Rows whose key hashes into the test share. Stable across runs, machines and data versions.

    Args:
        table: The rows.
        key_column: Column whose value decides the side.
        test_fraction: Share of hash buckets that go to test.

    Returns:
        A boolean array, True for test rows.
    """
    import numpy as np
    import pandas as pd

    keys = table.column(key_column).to_pandas()
    # hash_pandas_object uses a fixed hash key: the same value hashes the same in every process.
    buckets = pd.util.hash_pandas_object(keys, index=False).to_numpy(dtype=np.uint64) % HASH_BUCKETS
    return buckets < round(test_fraction * HASH_BUCKETS)


def split_table(
    table: pa.Table,
    target_column: str = "",
    test_fraction: float = 0.2,
    seed: int = 42,
    hash_key_column: str = "",
    source: str = "data",
    task: str = "",
) -> tuple[pa.Table, pa.Table, str]:
    """Split ``table`` into train and test, keeping the original row order within each part.

    Args:
        table: The rows to split.
        target_column: Stratify on this column ("" for a plain seeded random split). Ignored with a key hash.
        test_fraction: Share of rows (or of key-hash buckets) in the test part, in (0, 1).
        seed: Random seed of the stratified/random split.
        hash_key_column: Split by hashing this column instead (seed-independent, stable across data versions).
        source: Printable name of the data, for messages.
        task: The target's task ("" = inferred from it, ``mlkeel.task.resolve_task``): a regression target is
            stratified by quantile bins, a classification target by class.

    Returns:
        ``(train, test, mode)``.

    Raises:
        ParameterError: test_fraction outside (0, 1), or an unknown task.
        SchemaMismatchError: a named column does not exist.
        DataError: a part would be empty, or a class is too small to stratify.
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    _check_fraction(test_fraction)
    if hash_key_column:
        _require_column(table, hash_key_column, "hash_key_column", source)
        test_mask = key_hash_test_mask(table, hash_key_column, test_fraction)
        mode = "key_hash"
    else:
        stratify = None
        mode = "random"
        candidates = np.arange(table.num_rows)
        if target_column:
            _require_column(table, target_column, "target column", source)
            from mlkeel.task import Task, rare_rows, resolve_task, stratify_labels

            values = table.column(target_column).to_pandas().rename(target_column)
            chosen = resolve_task(values, task, source).task
            stratify = stratify_labels(values, chosen)
            mode = "stratified_quantiles" if chosen == Task.REGRESSION else "stratified"
            if chosen != Task.BINARY:  # a class of one row stays in train: no test class the model never saw
                rare = rare_rows(stratify)
                candidates, stratify = candidates[~rare], stratify[~rare]
        try:
            _, test_index = train_test_split(candidates, test_size=test_fraction, random_state=seed, stratify=stratify)
        except ValueError as error:
            raise DataError(f"{source}: cannot split {table.num_rows} rows ({mode}): {error}") from error
        test_mask = np.zeros(table.num_rows, dtype=bool)
        test_mask[test_index] = True
    train, test = table.filter(~test_mask), table.filter(test_mask)
    if train.num_rows == 0 or test.num_rows == 0:
        raise DataError(
            f"{source}: the {mode} split left {train.num_rows} train and {test.num_rows} test rows; "
            "both parts need rows (more data or another test_fraction)"
        )
    return train, test, mode


def positive_rate(table: pa.Table, target_column: str, positive_label: str) -> float | None:
    """Share of rows whose target (as text) equals ``positive_label``; None without a target.

    Args:
        table: The rows.
        target_column: Target column name, or "".
        positive_label: The positive class, or "".

    Returns:
        The rate in [0, 1], or None.
    """
    if not target_column or not positive_label or target_column not in table.column_names:
        return None
    labels = table.column(target_column).to_pandas().astype(str)
    return float((labels == positive_label).mean())


def split(
    dataset_path: str,
    train_path: str,
    test_path: str,
    target_column: str = "",
    positive_label: str = "",
    test_fraction: float = 0.2,
    seed: int = 42,
    hash_key_column: str = "",
    source: str = "",
    task: str = "",
) -> SplitResult:
    """Read the Parquet at ``dataset_path``, split it and write both parts as Parquet (atomically).

    Args:
        dataset_path: Input Parquet file.
        train_path: Where to write the train part.
        test_path: Where to write the test part.
        target_column: Stratify on this column ("" = no stratification).
        positive_label: Only used to report the positive rate of each part.
        test_fraction: Share of rows in the test part.
        seed: Random seed.
        hash_key_column: Split by hashing this key column instead ("" = off).
        source: Printable name of the input for messages (defaults to the path).
        task: The target's task ("" = inferred from the target column; see ``split_table``).

    Returns:
        A ``SplitResult`` with row counts, positive rates (binary) and the task with its reason.
    """
    import pyarrow.parquet as pq

    from mlkeel.task import Task, resolve_task

    table = pq.read_table(dataset_path)
    shown = source or dataset_path
    choice = None
    if target_column:
        _require_column(table, target_column, "target column", shown)
        choice = resolve_task(table.column(target_column).to_pandas().rename(target_column), task, shown)
    train, test, mode = split_table(
        table, target_column, test_fraction, seed, hash_key_column, source=shown, task=choice.task if choice else task
    )
    binary = choice is None or choice.task == Task.BINARY
    write_parquet_atomic(train, train_path)
    write_parquet_atomic(test, test_path)
    return SplitResult(
        train_rows=train.num_rows,
        test_rows=test.num_rows,
        mode=mode,
        train_positive_rate=positive_rate(train, target_column, positive_label) if binary else None,
        test_positive_rate=positive_rate(test, target_column, positive_label) if binary else None,
        task=choice.task if choice else "",
        task_reason=choice.summary if choice else "",
    )
