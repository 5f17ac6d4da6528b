"""Feature typing: which raw columns become features, of which kind, and why; the preprocessing built from it.

Every column of the train split gets one decision with a reason, decided from the data (pandas dtypes of the
validated Parquet) and overridable per column (``feature_types``):

- ``numeric``: integers and floats (median imputation, standard scaling);
- ``boolean``: booleans, as 0/1 numbers;
- ``categorical``: text with few distinct values, or any column the user names; a bounded encoding whatever the
  number of levels: for histogram gradient boosting its native categorical support (ordinal codes, the rarest
  levels grouped into one "infrequent" code, at most ``HGB_MAX_CATEGORIES`` codes per column, one dense column);
  for the other estimators a one-hot encoding of at most ``MAX_ONE_HOT_CATEGORIES`` columns per column
  (``OneHotEncoder(max_categories=..., handle_unknown="infrequent_if_exist")``);
- ``text``: free text (many distinct values of several words): TF-IDF of at most ``TEXT_MAX_FEATURES`` terms
  (``TfidfVectorizer``), inside the model; measured against leaving the column out in
  ``benchmarks/results/training.md``;
- ``timestamp``: timestamps and dates become calendar features (year, month, day, weekday and, when the column
  holds times of day, hour) by ``calendar.CalendarFeatures``;
- not used: the target and key columns; identifiers (text, or integers named like an id or counting up, with a
  different value in at least ``IDENTIFIER_MIN_DISTINCT_SHARE`` of at least ``IDENTIFIER_MIN_ROWS`` rows); nested
  values (lists, structs, maps); columns with no value or one value in every row; ``ignore`` overrides.

The plan is data first (``FeaturePlan.to_dict``), rendered second (``FeaturePlan.summary``: the one line train and
``mlkeel run`` print). The preprocessing travels inside the model (a scikit-learn ``Pipeline``), so serving and
batch scoring apply exactly what training fitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlkeel.errors import DataError, ParameterError

if TYPE_CHECKING:
    import pandas as pd

FEATURE_KINDS = ("numeric", "boolean", "categorical", "text", "timestamp")
IGNORE = "ignore"
OVERRIDE_KINDS = (*FEATURE_KINDS, IGNORE)
# A column is an identifier when at least this share of its (non-null) values differ, over at least this many rows.
IDENTIFIER_MIN_DISTINCT_SHARE = 0.95
IDENTIFIER_MIN_ROWS = 50
# Integer columns are numbers unless they also look like an id: named like one, or counting up (their range is
# barely wider than their number of distinct values, as row numbers and sequence ids are).
ID_NAME = re.compile(r"(^|[^a-z])(id|ids|uuid|guid|key|identifier)$|[a-z]Id$|ID$", re.IGNORECASE)
ID_RANGE_SLACK = 1.5
# Text is free text when its values average at least this many words and it has more distinct values than a
# bounded one-hot encoding would keep.
TEXT_MIN_MEAN_WORDS = 3.0
# Text holding ISO 8601 dates or timestamps (e.g. a Parquet string column, or JSON) is a timestamp.
ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")
TEXT_MAX_FEATURES = 300
TEXT_MIN_DOCUMENT_FREQUENCY = 2
MAX_ONE_HOT_CATEGORIES = 32
HGB_MAX_CATEGORIES = 255  # histogram gradient boosting's own limit (max_bins) for a categorical feature
# What skops must be told to trust when the model holds these kinds (MLflow saves sklearn models with skops).
SKOPS_TRUSTED_BY_KIND = {
    "timestamp": ["mlkeel.components.train.calendar.CalendarFeatures"],
    "text": ["numpy.ravel"],
}
HGB_CATEGORICAL_TRUSTED_TYPES = ["functools.partial", "sklearn.utils.validation.check_array"]


@dataclass(frozen=True)
class FeatureDecision:
    """What was decided for one column.

    Attributes:
        column: The column.
        kind: A kind from ``FEATURE_KINDS``, or None when the column is not a feature.
        reason: Why, in a few words (e.g. ``identifier, 100% distinct``).
    """

    column: str
    kind: str | None
    reason: str


@dataclass
class FeaturePlan:
    """The decision for every column of the training rows, in column order.

    Attributes:
        decisions: One ``FeatureDecision`` per column.
        encoded_width: Width of the dense matrix the preprocessing produces (set once fitted; 0 before).
    """

    decisions: list[FeatureDecision] = field(default_factory=list)
    encoded_width: int = 0

    def columns(self, kind: str) -> list[str]:
        """The feature columns of one kind, in column order."""
        return [decision.column for decision in self.decisions if decision.kind == kind]

    @property
    def feature_columns(self) -> list[str]:
        """Every feature column (the model's input), in column order."""
        return [decision.column for decision in self.decisions if decision.kind is not None]

    @property
    def not_used(self) -> dict[str, str]:
        """Column -> why it is not a feature."""
        return {decision.column: decision.reason for decision in self.decisions if decision.kind is None}

    def counts(self) -> dict[str, int]:
        """Feature kind -> number of columns (kinds with none left out)."""
        counts = {kind: len(self.columns(kind)) for kind in FEATURE_KINDS}
        return {kind: count for kind, count in counts.items() if count}

    def summary(self) -> str:
        """The one line train and ``mlkeel run`` print.

        Returns:
            E.g. ``features: 18 used (12 numeric, 5 categorical, 1 text); not used: session (identifier, 100%
            distinct)``.
        """
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.counts().items())
        line = f"features: {len(self.feature_columns)} used ({kinds})"
        if self.encoded_width:
            line += f", {self.encoded_width} encoded columns"
        not_used = self.not_used
        if not_used:
            line += "; not used: " + ", ".join(f"{column} ({reason})" for column, reason in not_used.items())
        return line

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data: ``{"columns": {column: {"kind", "reason"}}, "counts", "encoded_width"}``."""
        return {
            "columns": {d.column: {"kind": d.kind or "not used", "reason": d.reason} for d in self.decisions},
            "counts": self.counts(),
            "encoded_width": self.encoded_width,
        }


def parse_feature_types(value: str | Mapping[str, str] | None) -> dict[str, str]:
    """Read user overrides, column -> kind, from a JSON object text or a mapping.

    Args:
        value: ``'{"session": "ignore", "comment": "text"}'``, a dict, "" or None.

    Returns:
        The overrides (empty when none).

    Raises:
        ParameterError: not a JSON object of text values, or an unknown kind.
    """
    import json

    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ParameterError(
                f"feature_types={value!r}: not JSON ({error.msg}); expected e.g. "
                '\'{"session": "ignore", "comment": "text"}\''
            ) from error
    if not isinstance(value, Mapping):
        raise ParameterError(f"feature_types: expected a JSON object column -> kind, got {type(value).__name__}")
    overrides = {str(column): str(kind) for column, kind in value.items()}
    for column, kind in overrides.items():
        if kind not in OVERRIDE_KINDS:
            raise ParameterError(
                f"feature_types[{column!r}]={kind!r}: unknown kind; expected one of {', '.join(OVERRIDE_KINDS)}"
            )
    return overrides


def _percent(share: float) -> str:
    return f"{share:.0%}" if share < 0.995 or share == 1 else ">99%"


def _is_nested(value: Any) -> bool:
    import numpy as np

    return isinstance(value, list | tuple | dict | set | np.ndarray)


def _word_counts(values: pd.Series) -> pd.Series:
    return values.astype(str).str.split().str.len()


def infer_kind(series: pd.Series) -> FeatureDecision:
    """Decide, from the values alone, the kind of one column (``kind=None`` when it is not a feature).

    Args:
        series: The column's training values.

    Returns:
        The decision with its reason.
    """
    import datetime

    from pandas.api import types as ptypes

    name = str(series.name)
    values = series.dropna()
    if values.empty:
        return FeatureDecision(name, None, "no value in any row")
    dtype = series.dtype
    if not _is_nested(values.iloc[0]) and values.nunique() == 1:
        return FeatureDecision(name, None, f"constant, {str(values.iloc[0])[:40]!r} in every row")
    if ptypes.is_bool_dtype(dtype):
        return FeatureDecision(name, "boolean", "boolean")
    if ptypes.is_datetime64_any_dtype(dtype):
        return FeatureDecision(name, "timestamp", "timestamp: calendar features")
    rows = len(values)
    if ptypes.is_numeric_dtype(dtype):
        if ptypes.is_integer_dtype(dtype) and rows >= IDENTIFIER_MIN_ROWS:
            distinct = values.nunique()
            share = distinct / rows
            counting = (int(values.max()) - int(values.min()) + 1) <= ID_RANGE_SLACK * distinct
            if share >= IDENTIFIER_MIN_DISTINCT_SHARE and (ID_NAME.search(name) or counting):
                why = "named like an id" if ID_NAME.search(name) else "counts up"
                return FeatureDecision(name, None, f"identifier, {_percent(share)} distinct, {why}")
        return FeatureDecision(name, "numeric", "numeric")
    first = values.iloc[0]
    if _is_nested(first) or any(_is_nested(value) for value in values.head(100)):
        return FeatureDecision(name, None, "nested values (list/struct/map)")
    if all(isinstance(value, bool) for value in values.head(1000)):  # booleans with nulls: object dtype
        return FeatureDecision(name, "boolean", "boolean")
    if isinstance(first, datetime.date):
        return FeatureDecision(name, "timestamp", "date: calendar features")
    text = values.astype(str)
    if text.head(1000).str.fullmatch(ISO_TIMESTAMP).all():
        return FeatureDecision(name, "timestamp", "text of ISO dates/timestamps: calendar features")
    distinct = text.nunique()
    share = distinct / rows
    mean_words = float(_word_counts(text.head(5000)).mean())
    if mean_words >= TEXT_MIN_MEAN_WORDS and distinct > MAX_ONE_HOT_CATEGORIES:
        return FeatureDecision(
            name, "text", f"free text, {mean_words:.0f} words on average: TF-IDF of at most {TEXT_MAX_FEATURES} terms"
        )
    if rows >= IDENTIFIER_MIN_ROWS and share >= IDENTIFIER_MIN_DISTINCT_SHARE:
        return FeatureDecision(name, None, f"identifier, {_percent(share)} distinct")
    return FeatureDecision(name, "categorical", f"categorical, {distinct} levels")


def _check_override(series: pd.Series, kind: str) -> None:
    """Refuse an override the column's values cannot take (e.g. text as a number)."""
    from pandas.api import types as ptypes

    name = str(series.name)
    dtype = series.dtype
    if kind == "numeric" and not (ptypes.is_numeric_dtype(dtype) or ptypes.is_bool_dtype(dtype)):
        raise ParameterError(
            f"feature_types[{name!r}]='numeric' but the column holds {dtype} values; set its type at ingest "
            f"with column_types (e.g. {{{name!r}: 'float'}})"
        )
    if kind == "text" and (ptypes.is_numeric_dtype(dtype) or ptypes.is_datetime64_any_dtype(dtype)):
        raise ParameterError(f"feature_types[{name!r}]='text' but the column holds {dtype} values, not text")
    if kind != IGNORE and not series.dropna().empty and _is_nested(series.dropna().iloc[0]):
        raise ParameterError(f"feature_types[{name!r}]={kind!r}: the column holds nested values (lists/structs)")


def plan_features(
    frame: pd.DataFrame,
    target_column: str,
    key_columns: list[str] | None = None,
    overrides: Mapping[str, str] | None = None,
    source: str = "train data",
) -> FeaturePlan:
    """Decide, for every column of ``frame``, whether it is a feature, of which kind, and why.

    Args:
        frame: Training rows (the train split only).
        target_column: The label column: never a feature.
        key_columns: Declared key columns: not features unless an override names them.
        overrides: Column -> kind from ``OVERRIDE_KINDS`` (``ignore`` leaves a column out).
        source: Printable name of the rows, for messages.

    Returns:
        The ``FeaturePlan``.

    Raises:
        ParameterError: an override names a missing column or the target, or a kind the column cannot take.
        DataError: no feature column is left.
    """
    overrides = dict(overrides or {})
    keys = set(key_columns or [])
    missing = [column for column in overrides if column not in frame.columns]
    if missing:
        raise ParameterError(
            f"feature_types names column(s) {', '.join(repr(c) for c in missing)}, which {source} does not have; "
            f"columns: {', '.join(map(str, frame.columns))}"
        )
    if target_column in overrides:
        raise ParameterError(f"feature_types names the target column {target_column!r}; it is never a feature")
    decisions = []
    for column in frame.columns:
        if column == target_column:
            continue
        if column in overrides:
            kind = overrides[column]
            _check_override(frame[column], kind)
            decisions.append(FeatureDecision(column, None if kind == IGNORE else kind, f"{kind}, set by feature_types"))
        elif column in keys:
            decisions.append(FeatureDecision(column, None, "key column"))
        else:
            decisions.append(infer_kind(frame[column]))
    plan = FeaturePlan(decisions)
    if not plan.feature_columns:
        raise DataError(f"{source}: no feature column left: {plan.summary()}")
    return plan


def _is_hist_gradient_boosting(estimator: Any) -> bool:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor)


def build_preprocessing(plan: FeaturePlan, estimator: Any) -> Any:
    """The ``ColumnTransformer`` for ``plan``; for histogram gradient boosting, also its categorical columns.

    Categorical columns come first in the output, so histogram gradient boosting can be told which output columns
    are categorical (``categorical_features``) before fitting, unless the user set that hyperparameter.

    Args:
        plan: The feature plan.
        estimator: The (unfitted) classifier; histogram gradient boosting gets native categorical columns.

    Returns:
        The unfitted ``ColumnTransformer``.
    """
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

    from mlkeel.components.train.calendar import CalendarFeatures

    def numbers() -> Pipeline:
        return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])

    categorical = plan.columns("categorical")
    transformers: list[tuple[str, Any, Any]] = []
    if categorical and _is_hist_gradient_boosting(estimator):
        limit = min(HGB_MAX_CATEGORIES, int(estimator.max_bins))
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=limit,
        )
        transformers.append(("categorical", encoder, categorical))
        if estimator.categorical_features in (None, "from_dtype"):
            estimator.set_params(categorical_features=list(range(len(categorical))))
    elif categorical:
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=MAX_ONE_HOT_CATEGORIES, sparse_output=False
        )
        transformers.append(("categorical", encoder, categorical))
    numeric = plan.columns("numeric") + plan.columns("boolean")
    if numeric:
        transformers.append(("numeric", numbers(), numeric))
    timestamps = plan.columns("timestamp")
    if timestamps:
        calendar = Pipeline([("calendar", CalendarFeatures()), ("numbers", numbers())])
        transformers.append(("timestamp", calendar, timestamps))
    for column in plan.columns("text"):
        steps = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value="", missing_values=None)),
                ("flatten", FunctionTransformer(np.ravel)),
                (
                    "tfidf",
                    TfidfVectorizer(
                        max_features=TEXT_MAX_FEATURES, min_df=TEXT_MIN_DOCUMENT_FREQUENCY, sublinear_tf=True
                    ),
                ),
            ]
        )
        transformers.append((f"text_{column}", steps, [column]))
    # Dense output (sparse_threshold=0): histogram gradient boosting takes no sparse input; every part is bounded.
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False)


def skops_trusted_types(plan: FeaturePlan, estimator: Any = None) -> list[str]:
    """The types skops must trust to load a model built from ``plan`` (beyond the estimator's own).

    Args:
        plan: The feature plan.
        estimator: The classifier: histogram gradient boosting with categorical columns keeps a preprocessor of
            its own that holds ``functools.partial(check_array, ...)``.

    Returns:
        Type names, e.g. ``["numpy.ravel"]`` for a model with a text feature.
    """
    names: list[str] = []
    for kind, types in SKOPS_TRUSTED_BY_KIND.items():
        if plan.columns(kind):
            names.extend(name for name in types if name not in names)
    if plan.columns("categorical") and estimator is not None and _is_hist_gradient_boosting(estimator):
        names.extend(HGB_CATEGORICAL_TRUSTED_TYPES)
    return names
