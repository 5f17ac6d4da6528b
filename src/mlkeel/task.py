"""The task type of a target column: binary classification, multiclass classification or regression.

Inferred from the target's values (``infer_task``) unless the user names it (``resolve_task``):

* exactly two distinct values -> ``binary`` (today's path: a positive label, a decision threshold);
* at most ``MAX_CLASSES`` distinct values that are text, booleans or whole numbers -> ``multiclass``;
* numbers with more distinct values than that, or numbers with a fractional part -> ``regression``.

A target that fits none is refused with a message that says why: a single value (nothing to learn), text with
more distinct values than ``MAX_CLASSES`` (an identifier or free text, not a label), a timestamp. The choice
and its reason are data (``TaskChoice``), printed in the stage summaries and recorded with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from mlkeel.errors import DataError, ParameterError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class Task(StrEnum):
    """The three task types."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


# The value of a ``task`` parameter that asks for inference.
INFER: Final = ""
TASKS: Final = tuple(task.value for task in Task)
# A discrete target with at most this many distinct values is a class label (scikit-learn's ``type_of_target``
# makes no such cut; 20 covers the usual label sets: wine's 3 cultivars, 16 carriers, star ratings, digits).
MAX_CLASSES: Final = 20
# A regression target is stratified (split, the train/validation cut) by this many quantile bins (fewer when
# values repeat: equal edges merge).
QUANTILE_BINS: Final = 10


@dataclass(frozen=True)
class TaskChoice:
    """The task of a target and why.

    Attributes:
        task: ``binary``, ``multiclass`` or ``regression``.
        reason: Why, in a clause with the numbers ("2 distinct values", "436 distinct numeric values > 20").
        inferred: True when inferred from the values, False when the user named the task.
        classes: The class labels as text, sorted (classification only; [] for regression).
    """

    task: str
    reason: str
    inferred: bool = True
    classes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line for logs and the run summary: ``task: multiclass (inferred: 3 distinct whole numbers ...)``."""
        how = "inferred" if self.inferred else "requested"
        return f"task: {self.task} ({how}: {self.reason})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (artifact metadata, MLflow tags)."""
        return {"task": self.task, "reason": self.reason, "inferred": self.inferred, "classes": self.classes}


def require_task(task: str) -> str:
    """Return ``task`` if it is ``INFER`` ("") or one of ``TASKS``.

    Args:
        task: The value of a ``task`` parameter.

    Returns:
        The same value.

    Raises:
        ParameterError: anything else; the message lists the accepted values.
    """
    if task != INFER and task not in TASKS:
        raise ParameterError(f"task {task!r}: expected one of {', '.join(TASKS)} (or empty to infer it)")
    return task


def _describe(values: pd.Series) -> tuple[str, int, bool]:
    """(kind, distinct values, whole) of non-null target values: kind is boolean, numeric, text or timestamp."""
    import numpy as np
    from pandas.api import types as ptypes

    distinct = int(values.nunique())
    if ptypes.is_bool_dtype(values.dtype):
        return "boolean", distinct, True
    if ptypes.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float)
        return "numeric", distinct, bool(np.all(np.isfinite(numbers)) and np.array_equal(numbers, np.round(numbers)))
    if ptypes.is_datetime64_any_dtype(values.dtype) or isinstance(values.dtype, ptypes.DatetimeTZDtype):
        return "timestamp", distinct, False
    return "text", distinct, False


def _present(values: pd.Series, column: str, source: str) -> pd.Series:
    present = values.dropna()
    if present.empty:
        raise DataError(f"{source}: target column {column!r} holds no value ({len(values)} rows, all null)")
    return present


def infer_task(values: pd.Series, source: str = "data") -> TaskChoice:
    """Infer the task from the target column's values (nulls are left out).

    Args:
        values: The target column.
        source: Printable name of the data, for messages.

    Returns:
        The ``TaskChoice`` (``inferred=True``).

    Raises:
        DataError: no value, a single distinct value, a timestamp, or text with more than ``MAX_CLASSES``
            distinct values (an identifier or free text); the message names the column and the counts.
    """
    column = str(values.name)
    present = _present(values, column, source)
    kind, distinct, whole = _describe(present)
    if distinct < 2:
        raise DataError(
            f"{source}: target column {column!r} has a single value {present.iloc[0]!r} in all {len(present)} "
            "non-null rows: there is nothing to learn (binary, multiclass and regression all need variation)"
        )
    if kind == "timestamp":
        raise DataError(f"{source}: target column {column!r} holds timestamps: not a label and not a number")
    if distinct == 2:
        return TaskChoice(Task.BINARY.value, f"{distinct} distinct {kind} values", True, _classes(present))
    if kind == "numeric" and (not whole or distinct > MAX_CLASSES):
        why = "numbers with a fractional part" if not whole else f"numbers > {MAX_CLASSES} distinct values"
        return TaskChoice(Task.REGRESSION.value, f"{distinct} distinct values, {why}", True)
    if distinct <= MAX_CLASSES:
        noun = "whole numbers" if kind == "numeric" else f"{kind} values"
        return TaskChoice(
            Task.MULTICLASS.value, f"{distinct} distinct {noun} (<= {MAX_CLASSES})", True, _classes(present)
        )
    examples = ", ".join(repr(value) for value in present.drop_duplicates().head(3).astype(str))
    raise DataError(
        f"{source}: target column {column!r} holds {distinct} distinct text values (e.g. {examples}): more than "
        f"{MAX_CLASSES} classes, so it reads as an identifier or free text, not a label; pass task=multiclass "
        "to train a classifier over that many classes anyway, or choose another target"
    )


def resolve_task(values: pd.Series, requested: str = INFER, source: str = "data") -> TaskChoice:
    """The task to train for: ``requested`` when it fits the target, else the inferred one.

    Args:
        values: The target column.
        requested: ``INFER`` ("") or one of ``TASKS``.
        source: Printable name of the data, for messages.

    Returns:
        The ``TaskChoice`` (``inferred=False`` for a requested task).

    Raises:
        ParameterError: ``requested`` is not a task.
        DataError: the target does not fit the task (binary needs exactly 2 values, multiclass at least 2
            discrete values, regression numbers), or, when inferring, fits none (see ``infer_task``).
    """
    require_task(requested)
    if requested == INFER:
        return infer_task(values, source)
    column = str(values.name)
    present = _present(values, column, source)
    kind, distinct, whole = _describe(present)
    reason = f"{distinct} distinct {kind} values"
    if requested == Task.BINARY:
        if distinct != 2:
            raise DataError(
                f"{source}: task=binary but target column {column!r} has {distinct} distinct value(s); "
                "a binary classifier needs exactly 2 (task=multiclass or regression, or empty to infer)"
            )
        return TaskChoice(requested, reason, False, _classes(present))
    if requested == Task.MULTICLASS:
        if distinct < 2 or kind == "timestamp" or (kind == "numeric" and not whole):
            raise DataError(
                f"{source}: task=multiclass but target column {column!r} holds {reason}"
                + (" with a fractional part (task=regression?)" if kind == "numeric" and not whole else "")
                + ": a classifier needs at least 2 discrete classes"
            )
        return TaskChoice(requested, reason, False, _classes(present))
    if kind not in ("numeric", "boolean") or distinct < 2:
        raise DataError(
            f"{source}: task=regression but target column {column!r} holds {reason}: regression needs numbers that vary"
        )
    return TaskChoice(requested, reason, False)


def _classes(values: pd.Series) -> list[str]:
    """Distinct values as text (labels are compared as text everywhere, see ``mlkeel.modeling``), sorted."""
    return sorted(values.astype(str).unique().tolist())


def stratify_labels(values: pd.Series, task: str) -> np.ndarray:
    """What a stratified split keeps balanced: the class as text, or a regression target's quantile bin.

    Args:
        values: The target column.
        task: The target's task (``binary``, ``multiclass`` or ``regression``).

    Returns:
        One stratum per row (text); a null target is its own stratum.
    """
    import pandas as pd

    if task != Task.REGRESSION:
        return values.astype(str).to_numpy()
    bins = pd.qcut(values.astype(float), QUANTILE_BINS, labels=False, duplicates="drop")
    return bins.astype(object).where(bins.notna(), "null").astype(str).to_numpy()


def rare_rows(strata: np.ndarray, min_rows: int = 2) -> np.ndarray:
    """Rows whose stratum (class) has fewer than ``min_rows`` rows: too few to put on both sides of a cut.

    A stratified cut cannot place a class of one row (scikit-learn refuses it); such rows stay on the fitting
    side (train part, fit part), so that no evaluated class is one the model never saw.

    Args:
        strata: One stratum per row (``stratify_labels``).
        min_rows: Strata with fewer rows are rare.

    Returns:
        A boolean array, True for the rows of rare strata.
    """
    import numpy as np

    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    return np.asarray(counts[inverse] < min_rows)


def task_gate_arguments(task: str) -> dict[str, Any]:
    """The gate parameters a multiclass or regression run needs (the pipelines' gate defaults are binary).

    Args:
        task: The target's task.

    Returns:
        ``{}`` for binary (or an inferred task, ""); else ``gate_metric`` = the task's (macro_f1, rmse) and no
        ``gate_thresholds`` (the user's own ``--param`` values go over both).
    """
    from mlkeel.metrics import DEFAULT_TASK_METRIC

    if task not in (Task.MULTICLASS, Task.REGRESSION):
        return {}
    return {"gate_metric": DEFAULT_TASK_METRIC[task], "gate_thresholds": {}}
