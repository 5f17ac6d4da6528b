"""The model contract shared by train, evaluate, gate and (later) batch predict and serving.

A model is a scikit-learn ``Pipeline`` (preprocessing + estimator) saved in MLflow's sklearn format. It takes
the raw feature columns as a DataFrame and is fitted on 0/1 labels, 1 meaning the positive label.

Train wraps the fitted Pipeline in scikit-learn's ``FixedThresholdClassifier`` (around a ``FrozenEstimator``, so
nothing is refitted) holding the decision threshold it chose: ``predict_proba``, ``classes_`` and
``feature_names_in_`` are the Pipeline's, and ``predict`` (also MLflow's pyfunc ``predict``) applies the threshold.
Only scikit-learn's own classes, so the model still loads wherever scikit-learn does. ``decision_threshold`` reads
it back; a model saved before thresholds travelled (a bare Pipeline) decides at 0.5.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkeel.errors import DataError, SchemaMismatchError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractContextManager

    import numpy as np
    import pandas as pd
    import pyarrow as pa


def binary_labels(labels: pd.Series, positive_label: str, source: str = "data") -> np.ndarray:
    """Turn a target column into 0/1 with 1 for ``positive_label``.

    Labels are compared as text, so ``positive_label="1"`` matches an integer 1 and ``"True"`` a boolean.

    Args:
        labels: The target column.
        positive_label: The value that means "positive" (e.g. "Yes").
        source: Printable name of where the labels come from, for messages.

    Returns:
        An int array of 0 and 1.

    Raises:
        DataError: the positive label does not occur, or there are not exactly two classes, or nulls.
    """
    import numpy as np

    if labels.isna().any():
        first = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise DataError(f"{source}: target column {labels.name!r} is null in row {first}")
    as_text = labels.astype(str)
    classes = sorted(as_text.unique())
    if len(classes) != 2:
        raise DataError(
            f"{source}: target column {labels.name!r} has {len(classes)} class(es) {classes[:5]}; "
            "a binary classifier needs exactly 2"
        )
    if positive_label not in classes:
        raise DataError(
            f"{source}: positive_label {positive_label!r} does not occur in target column {labels.name!r} "
            f"(classes: {classes})"
        )
    return (as_text == positive_label).to_numpy().astype(int)


def task_targets(values: pd.Series, task: str, source: str = "data") -> np.ndarray:
    """A multiclass or regression target as the estimator is fitted on it: class labels as text, or floats.

    Args:
        values: The target column.
        task: ``multiclass`` or ``regression`` (a binary target goes through ``binary_labels``).
        source: Printable name of where the values come from, for messages.

    Returns:
        A str array (multiclass) or a float array (regression).

    Raises:
        DataError: a null (the message names the first row), or a regression target that is not numeric.
    """
    import numpy as np

    from mlkeel.task import Task

    if values.isna().any():
        first = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(f"{source}: target column {values.name!r} is null in row {first}")
    if task != Task.REGRESSION:
        return values.astype(str).to_numpy()
    try:
        return values.to_numpy(dtype=float)
    except (TypeError, ValueError) as error:
        raise DataError(f"{source}: target column {values.name!r} is not numeric: regression needs numbers") from error


def model_outputs(model: Any, features: pd.DataFrame, task: str) -> np.ndarray:
    """What a model of ``task`` answers for each row.

    The positive-class probability (binary), every class's probability (multiclass, columns in ``model.classes_``
    order) or the predicted value (regression).

    Args:
        model: A fitted scikit-learn model.
        features: Feature columns.
        task: ``binary``, ``multiclass`` or ``regression``.

    Returns:
        A float array: one value per row, or rows x classes for multiclass.
    """
    import numpy as np

    from mlkeel.task import Task

    if task == Task.BINARY:
        return positive_scores(model, features)
    if task == Task.MULTICLASS:
        return np.asarray(model.predict_proba(features), dtype=float)
    return np.asarray(model.predict(features), dtype=float)


def model_task(model: Any) -> str:
    """The task a model as train saves it was trained for, read from the model itself.

    A regressor has no ``classes_``; a binary classifier is fitted on 0/1 integers (``binary_labels``); a
    multiclass one on class labels as text (``task_targets``).

    Args:
        model: A fitted scikit-learn model.

    Returns:
        ``binary``, ``multiclass`` or ``regression``.
    """
    from mlkeel.task import Task

    classes = getattr(model, "classes_", None)
    if classes is None:
        return Task.REGRESSION.value
    if [str(value) for value in classes] == ["0", "1"] and not isinstance(classes[0], str):
        return Task.BINARY.value
    return Task.MULTICLASS.value


def feature_frame(frame: pd.DataFrame, feature_columns: list[str], source: str = "data") -> pd.DataFrame:
    """Select the model's feature columns, with an error naming every missing one.

    Args:
        frame: Rows to score.
        feature_columns: The columns the model was trained on.
        source: Printable name of the rows, for messages.

    Returns:
        ``frame[feature_columns]``.

    Raises:
        SchemaMismatchError: a feature column is missing.
    """
    missing = [column for column in feature_columns if column not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"{source}: missing feature column(s) the model needs: {', '.join(missing)}")
    return frame[feature_columns]


def positive_scores(model: Any, features: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class (label 1) for each row.

    Args:
        model: A fitted classifier with ``predict_proba`` and ``classes_`` containing 1.
        features: Feature columns.

    Returns:
        A float array, one score per row.
    """
    import numpy as np

    probabilities = model.predict_proba(features)
    positive_column = list(model.classes_).index(1)
    return np.asarray(probabilities[:, positive_column], dtype=float)


def score_frame(model: Any, frame: pd.DataFrame, source: str = "data") -> np.ndarray:
    """Positive-class scores of ``model`` on the rows of ``frame``, from the model's own input columns, one thread.

    Args:
        model: A fitted scikit-learn classifier fitted on a DataFrame (``feature_names_in_``).
        frame: The rows, with at least the model's input columns.
        source: Printable name of the model and rows, for messages.

    Returns:
        One score per row.

    Raises:
        SchemaMismatchError: the rows lack a column the model needs.
        DataError: the model does not record its input columns.
    """
    try:
        columns = model_feature_columns(model)
    except AttributeError as error:
        raise DataError(f"{source}: the model has no feature_names_in_ (not fitted on a DataFrame)") from error
    features = feature_frame(frame, columns, source)
    with one_native_thread():
        return positive_scores(model, features)


def model_feature_columns(model: Any) -> list[str]:
    """The raw input columns a fitted scikit-learn model expects (``feature_names_in_``).

    Args:
        model: A fitted scikit-learn estimator or Pipeline fitted on a DataFrame.

    Returns:
        The column names, in order.
    """
    return [str(name) for name in model.feature_names_in_]


def with_decision_threshold(pipeline: Any, threshold: float, features: pd.DataFrame, labels: Any) -> Any:
    """Wrap a fitted classifier so that the decision threshold travels inside the saved model.

    Args:
        pipeline: The fitted scikit-learn Pipeline (not refitted: it is frozen).
        threshold: A row is predicted positive when its positive-class probability is >= this.
        features: Rows the pipeline accepts (the wrapper's ``fit`` only records classes and columns).
        labels: Their 0/1 labels.

    Returns:
        A fitted ``FixedThresholdClassifier``: ``predict_proba`` unchanged, ``predict`` at ``threshold``.
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import FixedThresholdClassifier

    wrapped = FixedThresholdClassifier(
        FrozenEstimator(pipeline), threshold=float(threshold), response_method="predict_proba"
    )
    return wrapped.fit(features, labels)


def decision_threshold(model: Any) -> float:
    """The decision threshold a model carries (``with_decision_threshold``), else 0.5.

    Args:
        model: A loaded model: a ``FixedThresholdClassifier`` wrapper or a bare scikit-learn classifier.

    Returns:
        The threshold in [0, 1].
    """
    from mlkeel.threshold import DEFAULT_THRESHOLD

    threshold = getattr(model, "threshold", None)
    if isinstance(threshold, int | float) and not isinstance(threshold, bool):
        return float(threshold)
    return DEFAULT_THRESHOLD


def fitted_pipeline(model: Any) -> Any:
    """The fitted Pipeline inside a model (unwraps the threshold wrapper and its frozen estimator).

    Args:
        model: A model as train saves it, or a bare Pipeline.

    Returns:
        The Pipeline (``named_steps`` "preprocess" and "classify").
    """
    inner = getattr(model, "estimator_", model)
    return getattr(inner, "estimator", inner)


def one_native_thread() -> AbstractContextManager[Any]:
    """Limit OpenMP and BLAS to one thread (a context manager) while a pipeline task fits or scores.

    Histogram gradient boosting runs many tiny OpenMP regions whose threads wait on each other; with fewer free
    cores than threads (a busy 2-core node, or a pod with a 1-CPU request on a many-core node, where OpenMP
    starts a thread per core) that wait dominates. Measured on the bundled data on a shared 2-core machine:
    fitting took 9-23 s with the default threads, 1.2-1.3 s with one, and gave the identical model
    (scikit-learn's results do not depend on the thread count).

    Returns:
        The context manager (``threadpoolctl.threadpool_limits``).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def import_model_libraries() -> None:
    """Import skops, the library MLflow loads and saves sklearn models with, before mlflow is imported.

    skops builds its list of trusted types at import time by searching every loaded module for each numpy and
    scipy function it lists; after ``import mlflow`` there are about three times as many modules to search.
    Measured here: importing skops took 2.1-2.6 s before mlflow and 3.9-5.0 s after it. Stages that load or
    save a model call this before anything imports mlflow; later calls cost nothing.
    """
    import skops.io  # noqa: F401


def load_sklearn_model(uri: str) -> Any:
    """Load a model saved in MLflow's sklearn format from a local path or any MLflow URI.

    Args:
        uri: A directory, ``runs:/...``, ``models:/NAME@alias`` or ``models:/NAME/VERSION``.

    Returns:
        The scikit-learn model.
    """
    import tempfile

    import_model_libraries()
    import mlflow.sklearn

    if not uri.startswith("models:/"):
        return mlflow.sklearn.load_model(uri)
    # For a models:/ URI MLflow writes a ``registered_model_meta`` file into the folder it loads from, which for
    # a local artifact store is the store itself: a read-only mounted store (a serving pod) would fail. Loading
    # from a copy keeps the store untouched; the model is in memory once loaded.
    with tempfile.TemporaryDirectory(prefix="mlkeel-model-") as folder:
        return mlflow.sklearn.load_model(uri, dst_path=folder)


# The ColumnTransformer part train fits on the categorical columns (components/train/features.py).
CATEGORICAL_TRANSFORMER = "categorical"


def known_categories(model: Any) -> dict[str, frozenset[Any]]:
    """The categories each categorical input column had in training, read from the model's fitted encoder.

    Args:
        model: A model as train saves it (its Pipeline's ``preprocess`` step is a ``ColumnTransformer`` whose
            ``categorical`` part is a fitted ``OneHotEncoder`` or ``OrdinalEncoder``), or any other estimator.

    Returns:
        Column -> the categories seen (every one, the infrequent ones included); {} for a model without a
        categorical encoder.
    """
    steps = getattr(fitted_pipeline(model), "named_steps", {})
    preprocess = steps.get("preprocess") if hasattr(steps, "get") else None
    found: dict[str, frozenset[Any]] = {}
    for name, transformer, columns in getattr(preprocess, "transformers_", []):
        categories = getattr(transformer, "categories_", None)
        if name != CATEGORICAL_TRANSFORMER or categories is None or isinstance(columns, str):
            continue
        for column, values in zip(columns, categories, strict=False):
            found[str(column)] = frozenset(
                value
                for value in values.tolist()
                if value is not None and value == value  # NaN != NaN
            )
    return found


def unseen_categories(table: pa.Table | pd.DataFrame, categories: Mapping[str, frozenset[Any]]) -> list[dict[str, Any]]:
    """Per row of ``table``, the categorical fields whose value the model never saw in training.

    Args:
        table: Rows holding the model's input columns (an Arrow table or a DataFrame).
        categories: From ``known_categories``.

    Returns:
        One dict per row: field -> the unseen value ({} for a row with none). Nulls are not unseen.
    """
    import pyarrow as pa

    arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    found: list[dict[str, Any]] = [{} for _ in range(arrow.num_rows)]
    for column, known in categories.items():
        if column not in arrow.column_names:
            continue
        for row, value in enumerate(arrow.column(column).to_pylist()):
            if value is not None and value == value and value not in known:  # NaN != NaN: a missing value
                found[row][column] = value
    return found
