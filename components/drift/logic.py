"""Drift: compare a current batch of data with reference data, feature by feature, with alibi-detect.

The decision is alibi-detect's ``TabularDrift``: a two-sample Kolmogorov-Smirnov test per numeric feature, a
chi-squared test per categorical feature, and a multiple-testing correction (Bonferroni or FDR) across the
features, so that with ``p_val=0.05`` two samples of the same distribution are called drifted at most 5% of
the time. Alongside, the Population Stability Index (PSI) of every feature is reported and flagged above
``psi_threshold``: it measures *how much* a distribution moved, whatever the sample size, where a test
measures *whether* it moved. Only the tests decide ``is_drift`` (see ``detect_drift``).

Files larger than ``STREAMING_MIN_ROWS`` rows are compared one feature at a time (``detect_drift_streaming``):
exact tests on every value, so the same p-values and decisions, with one feature of both sides in memory
(a numeric one as two sorted float64 arrays, a categorical one as counts), read one record batch at a time.

The result is data first, alibi-detect style (``{"meta": {...}, "data": {"is_drift": ..., ...}}``), rendered
into a self-contained HTML report second. Plain functions on Arrow tables (or pandas frames) and paths; no
kfp import, and every heavy library (numpy, pyarrow, alibi-detect, matplotlib) is imported where it is used.
The KFP shell is ``component.py``, the command line ``cli.py``.

Given the champion's prediction logs on both sides (``drift(..., reference_predictions_path,
current_predictions_path)``), the result also reports prediction drift in the task's shape, beside the features
(``data.prediction_drift``; see ``predictions.py``): class shares of the predicted class for a classifier, the
predicted value's distribution for a regressor. It is reported, not deciding: ``is_drift`` is the features'.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from mlkeel import __version__
from mlkeel.errors import DataError, MissingExtraError, ParameterError, SchemaMismatchError
from mlkeel.storage import display_uri, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    TableLike: TypeAlias = pa.Table | pd.DataFrame

RESULT_NAME = "mlkeel.drift"
DETECTOR = "alibi_detect.TabularDrift"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
TEST_OF_KIND = {NUMERIC: "ks", CATEGORICAL: "chi2"}
CORRECTIONS = ("bonferroni", "fdr")

DEFAULT_P_VAL = 0.05
DEFAULT_CORRECTION = "bonferroni"
DEFAULT_PSI_THRESHOLD = 0.2
DEFAULT_SEED = 0
# PSI: numeric features are cut at the reference's deciles (plus one bin for nulls); a share of 0 on one side
# counts as PSI_EPSILON, so a category or bin seen on one side only gives a large but finite PSI.
PSI_BINS = 10
PSI_EPSILON = 1e-4

UNSEEN_IN_RESULT = 20  # unseen categories listed per feature (the most frequent first); the share counts all
PLOTS_IN_REPORT = 30  # flagged features plotted in the HTML report (the smallest p-values first)
CATEGORIES_IN_PLOT = 15  # bars per categorical plot: the categories whose share changed most
HISTOGRAM_BINS = 40
NULL_LABEL = "(null)"
KS_SLICE = 1_000_000  # values per slice of the KS statistic's CDF gaps (bounded temporaries)
# ``drift`` compares files of more rows than this feature by feature (detect_drift_streaming): bounded memory.
STREAMING_MIN_ROWS = 2_000_000


def check_parameters(
    p_val: float = DEFAULT_P_VAL,
    correction: str = DEFAULT_CORRECTION,
    psi_threshold: float = DEFAULT_PSI_THRESHOLD,
    max_rows: int | None = None,
) -> None:
    """Check the drift stage's parameters.

    Args:
        p_val: Significance level of the drift decision, in (0, 1).
        correction: ``bonferroni`` or ``fdr``.
        psi_threshold: PSI above which a feature is flagged, > 0.
        max_rows: None or 0 (every row), or the most rows of each side to compare, >= 1.

    Raises:
        ParameterError: a parameter is out of range.
    """
    if isinstance(p_val, bool) or not isinstance(p_val, int | float) or not 0 < p_val < 1:
        raise ParameterError(f"p_val={p_val!r}: expected a number in (0, 1), e.g. 0.05")
    if correction not in CORRECTIONS:
        raise ParameterError(f"correction={correction!r}: expected one of {', '.join(CORRECTIONS)}")
    if (
        isinstance(psi_threshold, bool)
        or not isinstance(psi_threshold, int | float)
        or not math.isfinite(psi_threshold)
        or psi_threshold <= 0
    ):
        raise ParameterError(f"psi_threshold={psi_threshold!r}: expected a number > 0, e.g. 0.2")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0):
        raise ParameterError(f"max_rows={max_rows!r}: expected None, 0 (every row) or a positive integer")


# --- preparing the two sides ------------------------------------------------------------------------


def _as_table(data: Any, side: str) -> pa.Table:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise DataError(f"{side}: cannot convert the DataFrame to Arrow: {error}") from error
    raise ParameterError(f"{side}: expected a pyarrow Table or a pandas DataFrame, got {type(data).__name__}")


def _inferred_kind(arrow_type: pa.DataType) -> str | None:
    """``numeric`` for numbers and times, ``categorical`` for text, booleans and dictionaries, else None."""
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(arrow_type) or types.is_boolean(arrow_type) or types.is_null(arrow_type):
        return CATEGORICAL
    if types.is_string(arrow_type) or types.is_large_string(arrow_type) or types.is_string_view(arrow_type):
        return CATEGORICAL
    if types.is_integer(arrow_type) or types.is_floating(arrow_type) or types.is_decimal(arrow_type):
        return NUMERIC
    if types.is_temporal(arrow_type):
        return NUMERIC
    return None


def _feature_columns(
    reference: pa.Table,
    current: pa.Table,
    feature_columns: Sequence[str] | None,
    exclude_columns: Sequence[str],
    sources: tuple[str, str],
) -> list[str]:
    """The features to compare, after checking that both sides have them (every mismatch named at once)."""
    for table, source in zip((reference, current), sources, strict=True):
        names = table.column_names
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise DataError(f"{source}: duplicate column names: {', '.join(map(repr, duplicated))}")
    excluded = set(exclude_columns)
    if feature_columns is None:
        wanted_reference = [name for name in reference.column_names if name not in excluded]
        wanted_current = [name for name in current.column_names if name not in excluded]
        only_reference = [name for name in wanted_reference if name not in wanted_current]
        only_current = [name for name in wanted_current if name not in wanted_reference]
        if only_reference or only_current:
            raise SchemaMismatchError(
                f"the reference ({sources[0]}) and the current batch ({sources[1]}) have different columns: "
                f"missing from the current batch: {_names(only_reference)}; "
                f"extra in the current batch (missing from the reference): {_names(only_current)}. "
                "Compare the shared columns with feature_columns, or leave some out with exclude_columns."
            )
        features = wanted_reference
    else:
        if isinstance(feature_columns, str):
            raise ParameterError(f"feature_columns={feature_columns!r}: expected a list of column names")
        repeated = sorted({name for name in feature_columns if list(feature_columns).count(name) > 1})
        if repeated:
            raise ParameterError(f"feature_columns lists {_names(repeated)} more than once")
        features = [name for name in feature_columns if name not in excluded]
        missing_reference = [name for name in features if name not in reference.column_names]
        missing_current = [name for name in features if name not in current.column_names]
        if missing_reference or missing_current:
            raise SchemaMismatchError(
                "feature columns missing: "
                f"from the reference ({sources[0]}): {_names(missing_reference)}; "
                f"from the current batch ({sources[1]}): {_names(missing_current)}"
            )
    if not features:
        raise ParameterError("no feature columns left to compare (every column is excluded)")
    return features


def _names(names: Sequence[str]) -> str:
    return ", ".join(map(repr, names)) if names else "none"


def _feature_kinds(
    reference: pa.Table,
    current: pa.Table,
    features: Sequence[str],
    categorical_columns: Sequence[str] | None,
    sources: tuple[str, str],
) -> dict[str, str]:
    """Each feature's kind: listed in ``categorical_columns``, else inferred from both sides' Arrow types."""
    forced = set(categorical_columns or ())
    unknown = sorted(forced - set(features))
    if unknown:
        raise ParameterError(
            f"categorical_columns names {_names(unknown)}, which are not among the feature columns {_names(features)}"
        )
    kinds: dict[str, str] = {}
    conflicts: list[str] = []
    for name in features:
        reference_type, current_type = reference.schema.field(name).type, current.schema.field(name).type
        reference_kind, current_kind = _inferred_kind(reference_type), _inferred_kind(current_type)
        if name in forced:
            kinds[name] = CATEGORICAL
            continue
        sides = ((reference_kind, reference_type, sources[0]), (current_kind, current_type, sources[1]))
        for kind, arrow_type, source in sides:
            if kind is None:
                raise ParameterError(
                    f"{source}: column {name!r} has type {arrow_type}, neither numeric nor categorical; "
                    "leave it out with exclude_columns or feature_columns"
                )
        # A column of nulls only (type null) on one side takes the other side's kind.
        if reference_kind != current_kind and not (_is_null_type(reference_type) or _is_null_type(current_type)):
            conflicts.append(f"{name!r} ({reference_type} in the reference, {current_type} in the current batch)")
            continue
        kinds[name] = current_kind if _is_null_type(reference_type) else reference_kind  # type: ignore[assignment]
    if conflicts:
        raise SchemaMismatchError(
            "columns numeric on one side and categorical on the other: "
            f"{'; '.join(conflicts)}; cast them to one type, or list them in categorical_columns"
        )
    return kinds


def _is_null_type(arrow_type: pa.DataType) -> bool:
    """True for Arrow's null type (a column of nulls only, e.g. an all-None pandas column)."""
    import pyarrow as pa

    return bool(pa.types.is_null(arrow_type))


def _sample(table: pa.Table, max_rows: int | None, rng: np.random.Generator) -> pa.Table:
    """At most ``max_rows`` rows of ``table``: a uniform sample without replacement, in the original order."""
    import numpy as np

    if not max_rows or table.num_rows <= max_rows:
        return table
    rows = np.sort(rng.choice(table.num_rows, size=max_rows, replace=False))
    return table.take(rows)


def _numeric_values(column: pa.ChunkedArray) -> np.ndarray:
    """The column as float64, NaN for nulls (times as their integer ticks)."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_null(column.type):
        return np.full(len(column), np.nan)
    if pa.types.is_temporal(column.type):
        column = column.cast(pa.int64() if column.type.bit_width == 64 else pa.int32())
    # Unsafe: an int64 beyond 2**53 (nanosecond times, large ids) loses digits, not its place in a distribution.
    return np.asarray(column.cast(pa.float64(), safe=False).to_numpy(), dtype=np.float64)


def _text_values(column: pa.ChunkedArray, name: str, source: str) -> pa.Array:
    """The column as one Arrow string array (categories are compared as text, like labels elsewhere)."""
    import pyarrow as pa

    try:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return column.cast(pa.string()).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ParameterError(
            f"{source}: column {name!r} of type {column.type} cannot be compared as categories: {error}"
        ) from error


@dataclass(frozen=True)
class _Categories:
    """One categorical feature encoded on both sides with the same integer codes.

    Codes ``0..len(values)-1`` are the reference's categories (sorted) then the current batch's unseen ones
    (sorted); code ``len(values)`` is null, its own category.
    """

    values: list[str]
    reference_codes: np.ndarray | None  # None when only counted (a streamed column: the tests need counts)
    current_codes: np.ndarray | None
    reference_counts: np.ndarray
    current_counts: np.ndarray
    seen: int  # values[:seen] occur in the reference

    @property
    def null_code(self) -> int:
        return len(self.values)

    def seen_codes(self) -> list[int]:
        """The codes the reference holds (null included when it has nulls): TabularDrift's categories."""
        import numpy as np

        return [int(code) for code in np.flatnonzero(self.reference_counts)]

    def labels(self) -> list[str]:
        return [*self.values, NULL_LABEL]


def _value_set(reference_values: pa.Array, current_values: pa.Array) -> tuple[pa.Array, int]:
    """Every category in code order: the reference's (sorted), then the current batch's unseen ones (sorted).

    Returns:
        ``(values, seen)``: the categories (no null) and how many of them the reference holds.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def sorted_unique(values: pa.Array) -> pa.Array:
        unique = pc.unique(values).drop_null()
        return unique.take(pc.sort_indices(unique))

    seen = sorted_unique(reference_values)
    current_unique = sorted_unique(current_values)
    unseen = current_unique.filter(pc.invert(pc.is_in(current_unique, value_set=seen)))
    return (pa.concat_arrays([seen, unseen]) if len(unseen) else seen), len(seen)


def _encode_categories(reference: pa.Array, current: pa.Array) -> _Categories:
    import numpy as np
    import pyarrow.compute as pc

    value_set, seen = _value_set(reference, current)
    null_code = len(value_set)

    def codes(values: pa.Array) -> np.ndarray:
        found = pc.index_in(values, value_set=value_set).fill_null(null_code)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)

    reference_codes, current_codes = codes(reference), codes(current)
    return _Categories(
        values=value_set.to_pylist(),
        reference_codes=reference_codes,
        current_codes=current_codes,
        reference_counts=np.bincount(reference_codes, minlength=null_code + 1),
        current_counts=np.bincount(current_codes, minlength=null_code + 1),
        seen=seen,
    )


def _value_counts(dataset: Any, name: str, source: str) -> tuple[pa.Array, np.ndarray, int]:
    """A streamed column's categories and rows per category, one record batch at a time.

    Returns:
        ``(values, counts, nulls)``: each distinct non-null value as text (unordered), its rows, the null rows.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values, counts, nulls = [], [], 0
    for batch in dataset.to_batches(columns=[name]):
        column = _text_values(pa.chunked_array([batch.column(0)]), name, source)
        nulls += column.null_count
        found = pc.value_counts(column.drop_null())
        values.append(found.field("values"))
        counts.append(found.field("counts"))
    if not values:
        return pa.array([], pa.string()), np.zeros(0, dtype=np.int64), nulls
    totals = (
        pa.table({"value": pa.concat_arrays(values), "rows": pa.concat_arrays(counts)})
        .group_by("value")
        .aggregate([("rows", "sum")])
    )
    return totals["value"].combine_chunks(), totals["rows_sum"].to_numpy().astype(np.int64), nulls


def _count_categories(reference: Any, current: Any, name: str, sources: tuple[str, str]) -> _Categories:
    """``_encode_categories`` of two streamed columns, counts only (never a code per row): the same counts."""
    import numpy as np
    import pyarrow.compute as pc

    reference_values, reference_rows, reference_nulls = _value_counts(reference, name, sources[0])
    current_values, current_rows, current_nulls = _value_counts(current, name, sources[1])
    value_set, seen = _value_set(reference_values, current_values)

    def by_code(values: pa.Array, rows: np.ndarray, nulls: int) -> np.ndarray:
        counts = np.zeros(len(value_set) + 1, dtype=np.int64)
        codes = pc.index_in(values, value_set=value_set).to_numpy(zero_copy_only=False)
        counts[np.asarray(codes, dtype=np.int64)] = rows
        counts[len(value_set)] = nulls
        return counts

    return _Categories(
        values=value_set.to_pylist(),
        reference_codes=None,
        current_codes=None,
        reference_counts=by_code(reference_values, reference_rows, reference_nulls),
        current_counts=by_code(current_values, current_rows, current_nulls),
        seen=seen,
    )


def _read_numeric(dataset: Any, name: str, rows: int | None = None) -> np.ndarray:
    """A streamed column as ``_numeric_values`` gives it, sorted (NaN last), filled one record batch at a time.

    Memory holds the float64 result and one batch: no whole Arrow column, no second copy for the sort.
    ``rows``: the dataset's rows, when known.
    """
    import numpy as np
    import pyarrow as pa

    rows = dataset.count_rows() if rows is None else rows
    values = np.empty(rows, dtype=np.float64)
    filled = 0
    for batch in dataset.to_batches(columns=[name]):
        values[filled : filled + batch.num_rows] = _numeric_values(pa.chunked_array([batch.column(0)]))
        filled += batch.num_rows
    if filled != rows:
        raise DataError(f"column {name!r}: {filled} rows read, {rows} expected (did the file change?)")
    values.sort()  # in place; np.sort's order (NaN last), so every later step sees what np.sort gives
    # Arrow's pool (mimalloc) keeps the freed batches, about as much again as the result: give them back.
    pa.default_memory_pool().release_unused()
    return values


# --- measures ---------------------------------------------------------------------------------------


def population_stability_index(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI of two histograms over the same bins: ``sum((c - r) * ln(c / r))`` on shares.

    Args:
        reference_counts: Rows per bin in the reference.
        current_counts: Rows per bin in the current batch (same bins, same order).

    Returns:
        The PSI (0 for identical shares). A share of 0 counts as ``PSI_EPSILON``. Rules of thumb: below 0.1
        stable, 0.1 to 0.2 a moderate shift, above 0.2 a significant one.
    """
    import numpy as np

    reference_share = np.maximum(reference_counts / max(reference_counts.sum(), 1), PSI_EPSILON)
    current_share = np.maximum(current_counts / max(current_counts.sum(), 1), PSI_EPSILON)
    return float(np.sum((current_share - reference_share) * np.log(current_share / reference_share)))


def _present(values: np.ndarray) -> np.ndarray:
    """The non-NaN values of a sorted array (NaN last): a view, no copy."""
    import numpy as np

    return values[: len(values) - int(np.isnan(values).sum())]


def _psi_edges(reference: np.ndarray) -> np.ndarray:
    """The PSI bin edges: the sorted reference's deciles, ties merged (none when it holds only NaN)."""
    import numpy as np

    reference_present = _present(reference)
    if not len(reference_present):
        return np.array([], dtype=np.float64)
    return np.unique(np.quantile(reference_present, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))


def _psi_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Rows per PSI bin of a sorted array (NaN last), then one bin for nulls.

    A bin's count is a difference of two positions found by binary search, instead of a search per value.
    """
    import numpy as np

    present = _present(values)
    # Bin k holds edges[k-1] <= value < edges[k]: the same bins as searchsorted(edges, value, "right").
    below = np.searchsorted(present, edges, side="left")
    return np.append(np.diff(np.concatenate([[0], below, [len(present)]])), len(values) - len(present))


def require_alibi_detect() -> Any:
    """The ``alibi_detect`` module, or an error naming the extra that brings it and why it may be missing.

    alibi-detect 0.13.0 (its last release) needs numpy<2, which has no wheels for Python 3.13: the ``drift``
    extra installs it on Python 3.11 and 3.12 only (pyproject.toml). There is no fallback detector: the tests
    and the correction are alibi-detect's.

    Raises:
        MissingExtraError: alibi-detect cannot be imported here.
    """
    # alibi-detect imports transformers, which warns on every run that no deep-learning framework is installed.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import alibi_detect
    except ImportError as error:
        python = ".".join(map(str, sys.version_info[:2]))
        raise MissingExtraError(
            f"the drift stage needs alibi-detect, which is not installed ({error}): pip install 'mlkeel[drift]' "
            f"on Python 3.11 or 3.12. This is Python {python}; on 3.13 the extra leaves alibi-detect out "
            "(alibi-detect 0.13 needs numpy<2, which has no Python 3.13 wheels): run the drift stage in its image "
            "(mlkeel/drift, Python 3.11) or from a Python 3.11/3.12 environment."
        ) from error
    return alibi_detect


def _null_aware_tabular_drift(**kwargs: Any) -> Any:
    """An alibi-detect ``TabularDrift`` whose Kolmogorov-Smirnov tests drop each numeric feature's nulls.

    ``TabularDrift`` tests a 2-D array; a NaN in a numeric column makes scipy's KS test return NaN, which no
    threshold ever calls drift. This subclass keeps alibi's tests and its decision (``predict``: correction and
    threshold) and scores each feature once with ``_feature_test``: scipy's asymptotic KS on the non-null
    values of a numeric feature (alibi's own call, which would run first on the NaN-holding column and then be
    thrown away), and chi-squared on the category counts, counted with one ``bincount`` per side instead of
    one pass per category. When one side has no value at all, its distribution cannot be compared: the
    feature counts as drifted (statistic 1, p-value 0) unless both sides are empty (statistic 0, p-value 1).
    """
    import numpy as np

    require_alibi_detect()
    from alibi_detect.cd.tabular import TabularDrift

    class NullAwareTabularDrift(TabularDrift):
        def feature_score(self, x_ref: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            p_val = np.zeros(self.n_features, dtype=np.float32)
            dist = np.zeros_like(p_val)
            for feature in range(self.n_features):
                categorical = feature in self.cat_vars
                dist[feature], p_val[feature] = _feature_test(
                    CATEGORICAL if categorical else NUMERIC,
                    x_ref[:, feature],
                    x[:, feature],
                    [int(code) for code in self.x_ref_categories[feature]] if categorical else None,
                    self.alternative,
                )
            return p_val, dist

    return NullAwareTabularDrift(**kwargs)


def _ks_without_nulls(
    reference: np.ndarray, current: np.ndarray, alternative: str = "two-sided"
) -> tuple[float, float]:
    """``(statistic, p-value)`` of the asymptotic KS test on the non-NaN values; an empty side is drift.

    Both sides come sorted, NaN last (``_describe_feature``). The two-sided test, TabularDrift's, is scipy's
    ``ks_2samp(method="asymp")`` computed in slices: the same statistic (the largest gap between the two
    empirical CDFs, evaluated at every value of both sides) and the same p-value (``kstwo.sf``), without
    scipy's four temporary arrays as long as both sides together (1.3 GB at 10M rows a side).
    """
    import numpy as np
    from scipy.stats import distributions, ks_2samp

    reference = reference[: len(reference) - int(np.isnan(reference).sum())]
    current = current[: len(current) - int(np.isnan(current).sum())]
    if not (len(reference) and len(current)):
        return (0.0, 1.0) if not len(reference) and not len(current) else (1.0, 0.0)
    if alternative != "two-sided":
        statistic, p_value = ks_2samp(reference, current, alternative=alternative, method="asymp")
        return float(statistic), float(p_value)
    n1, n2 = len(reference), len(current)
    largest, smallest = -np.inf, np.inf
    for values in (reference, current):  # scipy's data_all: the reference's values, then the current batch's
        for start in range(0, len(values), KS_SLICE):
            points = values[start : start + KS_SLICE]
            gaps = (
                np.searchsorted(reference, points, side="right") / n1
                - np.searchsorted(current, points, side="right") / n2
            )
            largest, smallest = max(largest, float(gaps.max())), min(smallest, float(gaps.min()))
    below, above = float(np.clip(-smallest, 0, 1)), largest
    statistic = below if below > above else above
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return statistic, float(distributions.kstwo.sf(statistic, np.round(m * n / (m + n))))


def _feature_test(
    kind: str,
    reference_values: np.ndarray,
    current_values: np.ndarray,
    reference_categories: list[int] | None,
    alternative: str = "two-sided",
) -> tuple[float, float]:
    """``(statistic, p-value)`` of one feature's test exactly as ``TabularDrift`` computes it (as float32).

    Numeric: the null-aware KS test above. Categorical: chi-squared on the 2 x k table of counts over the
    codes present in the reference (``reference_categories``) or in the current batch.
    """
    import numpy as np

    if kind == NUMERIC:
        return _as_float32(*_ks_without_nulls(reference_values, current_values, alternative))
    reference_codes, current_codes = reference_values.astype(np.int64), current_values.astype(np.int64)
    size = int(max(reference_codes.max(initial=0), current_codes.max(initial=0))) + 1
    return _chi2_of_counts(
        np.bincount(reference_codes, minlength=size),
        np.bincount(current_codes, minlength=size),
        reference_categories,
    )


def _chi2_of_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray, reference_categories: list[int] | None
) -> tuple[float, float]:
    """Chi-squared on the 2 x k table of rows per code, over the codes the reference lists or the batch holds."""
    import numpy as np
    from scipy.stats import chi2_contingency

    size = max(len(reference_counts), len(current_counts))
    reference_counts = np.pad(reference_counts, (0, size - len(reference_counts)))
    current_counts = np.pad(current_counts, (0, size - len(current_counts)))
    codes = sorted(set(reference_categories or ()) | set(np.flatnonzero(current_counts)))
    statistic, p_value = chi2_contingency(np.vstack((reference_counts[codes], current_counts[codes])))[:2]
    return _as_float32(statistic, p_value)


def _as_float32(statistic: float, p_value: float) -> tuple[float, float]:
    """As TabularDrift reports them (float32)."""
    import numpy as np

    return float(np.float32(statistic)), float(np.float32(p_value))


# --- the detector -----------------------------------------------------------------------------------


def detect_drift(
    reference: TableLike,
    current: TableLike,
    feature_columns: Sequence[str] | None = None,
    categorical_columns: Sequence[str] | None = None,
    p_val: float = DEFAULT_P_VAL,
    correction: str = DEFAULT_CORRECTION,
    psi_threshold: float = DEFAULT_PSI_THRESHOLD,
    max_rows: int | None = None,
    seed: int = DEFAULT_SEED,
    exclude_columns: Sequence[str] = (),
    reference_source: str = "reference data",
    current_source: str = "current data",
) -> dict[str, Any]:
    """Test whether ``current`` has drifted from ``reference``, feature by feature.

    The decision is alibi-detect's ``TabularDrift`` (0.13): a two-sample Kolmogorov-Smirnov test (asymptotic,
    two-sided) per numeric feature, a chi-squared test of the reference/current contingency table per
    categorical feature, and ``correction`` across the features: with ``bonferroni`` a feature drifts when its
    p-value is below ``p_val / n_features``; with ``fdr`` (Benjamini-Hochberg) below the largest rank threshold
    passed. ``is_drift`` is True when any feature drifts, so for two samples of one distribution it is True
    at most a ``p_val`` share of the time.

    PSI does **not** contribute to ``is_drift``: it is reported per feature and flagged above ``psi_threshold``
    (``psi_drift``, ``psi_drifted_features``). The tests have a known false-positive rate, which is what makes
    ``p_val`` mean something; PSI has none, and its customary 0.1/0.2 cut-offs are rules of thumb. Read them
    together: on large batches a test flags shifts too small to matter, and a low PSI says so; on small batches
    PSI is noisy, and the test says whether the shift is more than noise.

    Numeric features (integers, floats, decimals; dates and times as their integer ticks): nulls and NaN are
    dropped per feature before the KS test, and each side's null share is reported (the PSI counts nulls as
    a bin of their own, so a change in the null share shows there). Categorical features (text, booleans,
    dictionaries, and any column listed in ``categorical_columns``, compared as text): null is a category of
    its own; categories are coded from the reference, and a category the reference lacks gets a code of its
    own, so the chi-squared test sees it, and is listed in ``unseen_categories`` with its share of rows.

    Args:
        reference: The reference data (e.g. the training set): a pyarrow Table or a pandas DataFrame.
        current: The batch to test, same kind of object.
        feature_columns: Columns to compare; None compares every column except ``exclude_columns`` and then
            requires both sides to have the same columns.
        categorical_columns: Columns to treat as categorical although numeric (e.g. a month number); text,
            boolean and dictionary columns are always categorical.
        p_val: Significance level of the drift decision, in (0, 1).
        correction: Multiple-testing correction: ``bonferroni`` or ``fdr``.
        psi_threshold: PSI above which a feature is flagged (reported, not deciding).
        max_rows: Compare at most this many rows of each side: a uniform sample without replacement drawn
            with ``seed``; None or 0 compares every row. Categories present only in the reference rows left
            out are then not known to the reference.
        seed: Seed of that sample.
        exclude_columns: Columns never compared, e.g. the key and the target.
        reference_source: Printable name of the reference, for messages and the result.
        current_source: Printable name of the current batch, for messages and the result.

    Returns:
        ``{"meta": {...}, "data": {...}}``. ``meta``: name, version, detector (+ its version), p_val,
        correction, psi_threshold, psi_bins, max_rows, seed, reference_source, current_source. ``data``:
        ``is_drift``; ``drifted_features`` (by the tests, smallest p-value first); ``psi_drifted_features``;
        ``threshold`` (the p-value below which a feature drifts, after correction); ``reference_rows`` and
        ``current_rows`` (compared, after sampling) and the rows given; ``features``: for each feature
        ``kind`` (numeric/categorical), ``test`` (ks/chi2), ``statistic``, ``p_value``, ``drift``, ``psi``,
        ``psi_drift``, ``null_share_reference``, ``null_share_current``, ``unseen_categories`` (most frequent
        first, at most ``UNSEEN_IN_RESULT``), ``unseen_count`` and ``unseen_share`` (share of current rows).
        P-values are alibi-detect's float32: below about 1e-45 they read 0.

    Raises:
        SchemaMismatchError: the two sides lack each other's columns (each side's missing columns are named),
            or a column is numeric on one side and text on the other.
        DataError: the current batch or the reference has no rows; duplicate column names.
        ParameterError: a parameter out of range; a categorical column that is not a feature; a column type
            that is neither numeric nor categorical (e.g. a list).
        MissingExtraError: alibi-detect is not installed (``require_alibi_detect``).
    """
    import numpy as np

    require_alibi_detect()
    check_parameters(p_val, correction, psi_threshold, max_rows)
    sources = (reference_source, current_source)
    reference_table, current_table = _as_table(reference, reference_source), _as_table(current, current_source)
    if reference_table.num_rows == 0:
        raise DataError(f"reference ({reference_source}) has no rows: nothing to compare the current batch with")
    if current_table.num_rows == 0:
        raise DataError(f"current batch ({current_source}) has no rows: nothing to compare with the reference")
    features = _feature_columns(reference_table, current_table, feature_columns, exclude_columns, sources)
    kinds = _feature_kinds(reference_table, current_table, features, categorical_columns, sources)

    rng = np.random.default_rng(seed)
    reference_rows_given, current_rows_given = reference_table.num_rows, current_table.num_rows
    reference_table = _sample(reference_table.select(features), max_rows, rng)
    current_table = _sample(current_table.select(features), max_rows, rng)
    n_reference, n_current = reference_table.num_rows, current_table.num_rows

    # One float matrix per side for TabularDrift: numeric values (NaN = null) or category codes. Each column
    # holds its feature's values sorted (see _describe_feature): the tests are per feature and order-free.
    x_reference = np.empty((n_reference, len(features)), dtype=np.float64, order="F")
    x_current = np.empty((n_current, len(features)), dtype=np.float64, order="F")
    categories_per_feature: dict[int, list[int]] = {}
    details: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(features):
        details[name], x_reference[:, index], x_current[:, index], categories = _describe_feature(
            name, kinds[name], reference_table[name], current_table[name], sources, psi_threshold
        )
        if categories is not None:
            categories_per_feature[index] = categories

    detector = _null_aware_tabular_drift(
        x_ref=x_reference,
        p_val=p_val,
        categories_per_feature=categories_per_feature,
        correction=correction,
        x_ref_preprocessed=True,
    )
    prediction = detector.predict(x_current, drift_type="batch", return_p_val=True, return_distance=True)["data"]
    # FDR returns every rank's threshold when nothing is significant; the smallest one then bounds them all.
    threshold = float(np.min(prediction["threshold"]))
    return _drift_result(
        details,
        prediction["p_val"],
        prediction["distance"],
        bool(prediction["is_drift"]),
        threshold,
        meta={
            "p_val": p_val,
            "correction": correction,
            "psi_threshold": psi_threshold,
            "max_rows": max_rows or None,
            "seed": seed,
            "reference_source": reference_source,
            "current_source": current_source,
        },
        rows=(n_reference, n_current, reference_rows_given, current_rows_given),
    )


def _describe_feature(
    name: str,
    kind: str,
    reference_column: pa.ChunkedArray,
    current_column: pa.ChunkedArray,
    sources: tuple[str, str],
    psi_threshold: float,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[int] | None]:
    """One feature's entry of the result (all but the test's outcome) and what its test compares.

    Returns:
        ``(entry, reference values, current values, reference categories)``: numeric values with NaN for
        nulls, or category codes; the codes the reference holds for a categorical feature, else None.
    """
    import numpy as np

    if kind == NUMERIC:
        # Sorted once (NaN last) for the PSI bins and the KS test; neither test depends on the order of rows.
        reference_values = np.sort(_numeric_values(reference_column))
        current_values = np.sort(_numeric_values(current_column))
        entry = _numeric_entry(reference_values, current_values, _psi_edges(reference_values), psi_threshold)
        return entry, reference_values, current_values, None
    encoded = _encode_categories(
        _text_values(reference_column, name, sources[0]), _text_values(current_column, name, sources[1])
    )
    assert encoded.reference_codes is not None and encoded.current_codes is not None  # encoded, not only counted
    return (
        _categorical_entry(encoded, psi_threshold),
        encoded.reference_codes,
        encoded.current_codes,
        encoded.seen_codes(),
    )


def _numeric_entry(
    reference: np.ndarray, current: np.ndarray, edges: np.ndarray, psi_threshold: float
) -> dict[str, Any]:
    """A numeric feature's entry (all but the test's outcome) from both sides sorted, NaN last."""
    import numpy as np

    return _with_psi(
        {
            "kind": NUMERIC,
            "test": TEST_OF_KIND[NUMERIC],
            "null_share_reference": float(np.isnan(reference).mean()),
            "null_share_current": float(np.isnan(current).mean()),
            "unseen_categories": [],
            "unseen_count": 0,
            "unseen_share": 0.0,
        },
        _psi_counts(reference, edges),
        _psi_counts(current, edges),
        psi_threshold,
    )


def _categorical_entry(encoded: _Categories, psi_threshold: float) -> dict[str, Any]:
    """A categorical feature's entry (all but the test's outcome) from its category counts."""
    import numpy as np

    n_reference, n_current = int(encoded.reference_counts.sum()), int(encoded.current_counts.sum())
    unseen_counts = encoded.current_counts[encoded.seen : encoded.null_code]
    order = np.argsort(-unseen_counts, kind="stable")[:UNSEEN_IN_RESULT]
    entry = {
        "kind": CATEGORICAL,
        "test": TEST_OF_KIND[CATEGORICAL],
        "null_share_reference": float(encoded.reference_counts[encoded.null_code] / n_reference),
        "null_share_current": float(encoded.current_counts[encoded.null_code] / n_current),
        "unseen_categories": [encoded.values[encoded.seen + int(i)] for i in order],
        "unseen_count": len(unseen_counts),
        "unseen_share": float(unseen_counts.sum() / n_current),
    }
    return _with_psi(entry, encoded.reference_counts, encoded.current_counts, psi_threshold)


def _with_psi(
    entry: dict[str, Any], reference_counts: np.ndarray, current_counts: np.ndarray, psi_threshold: float
) -> dict[str, Any]:
    entry["psi"] = population_stability_index(reference_counts, current_counts)
    entry["psi_drift"] = entry["psi"] > psi_threshold
    return entry


def _streamed_feature(
    name: str,
    kind: str,
    reference: Any,
    current: Any,
    rows: tuple[int, int],
    sources: tuple[str, str],
    psi_threshold: float,
) -> tuple[dict[str, Any], float, float]:
    """``_describe_feature`` and ``_feature_test`` of one feature of two datasets, read one record batch at a time.

    A numeric feature holds its two sorted float64 columns (the reference's deciles are taken before the
    current side is read); a categorical one only its counts per category.

    Returns:
        ``(entry, statistic, p-value)``, equal to the in-memory path's.
    """
    import pyarrow as pa

    if kind == NUMERIC:
        reference_values = _read_numeric(reference, name, rows[0])
        edges = _psi_edges(reference_values)
        current_values = _read_numeric(current, name, rows[1])
        entry = _numeric_entry(reference_values, current_values, edges, psi_threshold)
        statistic, p_value = _feature_test(NUMERIC, reference_values, current_values, None)
    else:
        encoded = _count_categories(reference, current, name, sources)
        entry = _categorical_entry(encoded, psi_threshold)
        statistic, p_value = _chi2_of_counts(encoded.reference_counts, encoded.current_counts, encoded.seen_codes())
    pa.default_memory_pool().release_unused()
    return entry, statistic, p_value


def _drift_result(
    details: dict[str, dict[str, Any]],
    p_values: Sequence[float] | np.ndarray,
    statistics: Sequence[float] | np.ndarray,
    is_drift: bool,
    threshold: float,
    meta: dict[str, Any],
    rows: tuple[int, int, int, int],
) -> dict[str, Any]:
    """The structured result from each feature's entry and test outcome (features in ``details`` order)."""
    alibi_detect = require_alibi_detect()

    features = list(details)
    for index, name in enumerate(features):
        p_value = float(p_values[index])
        details[name].update(statistic=float(statistics[index]), p_value=p_value, drift=bool(p_value < threshold))
    drifted = sorted((name for name in features if details[name]["drift"]), key=lambda n: details[n]["p_value"])
    n_reference, n_current, reference_rows_given, current_rows_given = rows
    return {
        "meta": {
            "name": RESULT_NAME,
            "version": __version__,
            "detector": DETECTOR,
            "detector_version": alibi_detect.__version__,
            "p_val": meta["p_val"],
            "correction": meta["correction"],
            "psi_threshold": meta["psi_threshold"],
            "psi_bins": PSI_BINS,
            "max_rows": meta["max_rows"],
            "seed": meta["seed"],
            "reference_source": meta["reference_source"],
            "current_source": meta["current_source"],
        },
        "data": {
            "is_drift": is_drift,
            "drifted_features": drifted,
            "psi_drifted_features": [name for name in features if details[name]["psi_drift"]],
            "threshold": threshold,
            "n_features": len(features),
            "reference_rows": n_reference,
            "current_rows": n_current,
            "reference_rows_given": reference_rows_given,
            "current_rows_given": current_rows_given,
            "features": details,
        },
    }


def detect_drift_streaming(
    reference_path: str,
    current_path: str,
    feature_columns: Sequence[str] | None = None,
    categorical_columns: Sequence[str] | None = None,
    p_val: float = DEFAULT_P_VAL,
    correction: str = DEFAULT_CORRECTION,
    psi_threshold: float = DEFAULT_PSI_THRESHOLD,
    max_rows: int | None = None,
    seed: int = DEFAULT_SEED,
    exclude_columns: Sequence[str] = (),
    reference_source: str = "reference data",
    current_source: str = "current data",
) -> dict[str, Any]:
    """``detect_drift`` on two Parquet files without holding either file in memory: the same result.

    Every feature is read and tested on its own, one record batch at a time (a ``pyarrow.dataset`` column
    projection): a numeric feature becomes one sorted float64 array per side, filled batch by batch (about
    80 MB a side at 10M rows; no whole Arrow column beside it, the sort in place, the reference's deciles
    taken before the current side is read); a categorical feature is only counted per category per batch
    (never a code per row), since the chi-squared test and the PSI need only the counts. Nothing is
    approximated: the KS test sees every value, the chi-squared test every count, the PSI the exact deciles,
    and the decision is alibi-detect's correction (Bonferroni: ``p_val`` over the
    number of features; FDR: ``alibi_detect.utils.statstest.fdr``) on the same per-feature p-values
    ``TabularDrift`` computes (float32). So statistic, p-value, PSI and decision equal the in-memory path's.
    Memory still grows with the rows of one feature; past some hundred million rows a side, set ``max_rows``:
    the seeded sample ``detect_drift`` draws (the same rows) is then read with ``Dataset.take`` and tested in
    memory, with the statistical cost of any sample (the tests' power is that of ``max_rows`` rows).

    Args:
        reference_path: The reference Parquet file (local path or pyarrow-filesystem URI).
        current_path: The current batch's Parquet file.
        feature_columns: As ``detect_drift``.
        categorical_columns: As ``detect_drift``.
        p_val: As ``detect_drift``.
        correction: As ``detect_drift``.
        psi_threshold: As ``detect_drift``.
        max_rows: As ``detect_drift``.
        seed: As ``detect_drift``.
        exclude_columns: As ``detect_drift``.
        reference_source: As ``detect_drift``.
        current_source: As ``detect_drift``.

    Returns:
        ``detect_drift``'s result.

    Raises:
        The same errors as ``detect_drift``; DataError for a missing or unreadable file.
    """
    import numpy as np

    from mlkeel.components.ingest.logic import open_parquet_dataset

    require_alibi_detect()
    from alibi_detect.utils.statstest import fdr

    check_parameters(p_val, correction, psi_threshold, max_rows)
    sources = (reference_source, current_source)
    (reference, reference_names), (current, current_names) = (
        open_parquet_dataset(reference_path),
        open_parquet_dataset(current_path),
    )
    reference_empty = reference.schema.empty_table().select(reference_names)
    current_empty = current.schema.empty_table().select(current_names)
    features = _feature_columns(reference_empty, current_empty, feature_columns, exclude_columns, sources)
    kinds = _feature_kinds(reference_empty, current_empty, features, categorical_columns, sources)
    n_reference, n_current = reference.count_rows(), current.count_rows()
    if max_rows and max(n_reference, n_current) > max_rows:
        rng = np.random.default_rng(seed)  # draws the rows detect_drift's _sample draws, in the same order
        sampled = [
            dataset.take(np.sort(rng.choice(rows, size=max_rows, replace=False)), columns=features)
            if rows > max_rows
            else dataset.to_table(columns=features)
            for dataset, rows in ((reference, n_reference), (current, n_current))
        ]
        result = detect_drift(
            sampled[0],
            sampled[1],
            feature_columns=features,
            categorical_columns=categorical_columns,
            p_val=p_val,
            correction=correction,
            psi_threshold=psi_threshold,
            max_rows=max_rows,
            seed=seed,
            reference_source=reference_source,
            current_source=current_source,
        )
        result["data"].update(reference_rows_given=n_reference, current_rows_given=n_current)
        return result

    details: dict[str, dict[str, Any]] = {}
    p_values = np.zeros(len(features), dtype=np.float32)
    statistics = np.zeros_like(p_values)
    for index, name in enumerate(features):
        details[name], statistics[index], p_values[index] = _streamed_feature(
            name, kinds[name], reference, current, (n_reference, n_current), sources, psi_threshold
        )
    if correction == "bonferroni":
        threshold: Any = p_val / len(features)
        is_drift = bool((p_values < threshold).any())
    else:
        found, threshold = fdr(p_values, q_val=p_val)
        is_drift = bool(found)
    return _drift_result(
        details,
        p_values,
        statistics,
        is_drift,
        float(np.min(threshold)),
        meta={
            "p_val": p_val,
            "correction": correction,
            "psi_threshold": psi_threshold,
            "max_rows": max_rows or None,
            "seed": seed,
            "reference_source": reference_source,
            "current_source": current_source,
        },
        rows=(n_reference, n_current, n_reference, n_current),
    )


def drift_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """Flat numeric metrics of a drift result, for KFP Metrics.

    Args:
        result: ``detect_drift``'s result.

    Returns:
        ``is_drift`` (0 or 1), ``drifted_features`` (how many), ``psi_drifted_features`` (how many), and for
        each feature ``p_<name>`` (its p-value) and ``psi_<name>``; with prediction drift, ``prediction_drift``
        (0 or 1), ``prediction_drift_p_value`` and ``prediction_drift_psi``.
    """
    data = result["data"]
    metrics: dict[str, float] = {
        "is_drift": int(data["is_drift"]),
        "drifted_features": len(data["drifted_features"]),
        "psi_drifted_features": len(data["psi_drifted_features"]),
    }
    for name, feature in data["features"].items():
        metrics[f"p_{name}"] = feature["p_value"]
        metrics[f"psi_{name}"] = feature["psi"]
    predicted = data.get("prediction_drift")
    if predicted:
        metrics["prediction_drift"] = int(predicted["is_drift"])
        metrics["prediction_drift_p_value"] = predicted["p_value"]
        metrics["prediction_drift_psi"] = predicted["psi"]
    return metrics


def drift_metadata(result: Mapping[str, Any]) -> dict[str, Any]:
    """KFP metadata for the result artifact: the decision and what a reader needs to act on it."""
    data, meta = result["data"], result["meta"]
    found = {
        "is_drift": data["is_drift"],
        "drifted_features": data["drifted_features"],
        "psi_drifted_features": data["psi_drifted_features"],
        "p_val": meta["p_val"],
        "correction": meta["correction"],
        "reference_rows": data["reference_rows"],
        "current_rows": data["current_rows"],
    }
    predicted = data.get("prediction_drift")
    if predicted:
        from mlkeel.components.drift.predictions import describe

        found.update(
            prediction_drift=predicted["is_drift"], prediction_task=predicted["task"], predictions=describe(predicted)
        )
    return found


# --- the HTML report --------------------------------------------------------------------------------


def _png(figure: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _numeric_plot(name: str, reference: np.ndarray, current: np.ndarray, caption: str) -> str:
    import numpy as np
    from matplotlib.figure import Figure

    def without_nan(values: np.ndarray) -> np.ndarray:
        missing = int(np.isnan(values).sum())
        if not missing or np.isnan(values[-missing:]).all():  # sorted, NaN last (streamed): a view, no copy
            return values[: len(values) - missing]
        return values[~np.isnan(values)]

    reference, current = without_nan(reference), without_nan(current)
    figure = Figure(figsize=(7, 3.2), dpi=100)
    axes = figure.subplots()
    if len(reference) + len(current):
        # Temporaries stay bounded (10M-row columns): the quantiles partition the concatenation in place, and
        # the histograms count slice by slice (the same counts as whole).
        both = np.concatenate([reference, current])
        smallest, largest = float(both.min()), float(both.max())
        low, high = np.quantile(both, [0.005, 0.995], overwrite_input=True)
        del both
        if low == high:
            low, high = smallest, largest + (1.0 if smallest == largest else 0.0)
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
        for values, label, color in ((reference, "reference", "#4c72b0"), (current, "current", "#dd8452")):
            counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
            for start in range(0, len(values), KS_SLICE):
                counts += np.histogram(np.clip(values[start : start + KS_SLICE], low, high), bins=edges)[0]
            axes.stairs(counts / max(len(values), 1), edges, label=label, color=color, linewidth=1.6)
        axes.set_ylabel("share of rows")
        axes.legend()
    axes.set_title(f"{name}: {caption}", fontsize=10)
    figure.tight_layout()
    return _png(figure)


def _categorical_plot(name: str, encoded: _Categories, caption: str) -> str:
    import numpy as np
    from matplotlib.figure import Figure

    reference_share = encoded.reference_counts / max(encoded.reference_counts.sum(), 1)
    current_share = encoded.current_counts / max(encoded.current_counts.sum(), 1)
    labels = [
        f"{value} (new)" if code >= encoded.seen and code != encoded.null_code else value
        for code, value in enumerate(encoded.labels())
    ]
    # The categories whose share moved most: what the test saw.
    present = np.flatnonzero(np.maximum(reference_share, current_share) > 0)
    order = present[np.argsort(-np.abs(current_share - reference_share)[present], kind="stable")]
    shown = order[:CATEGORIES_IN_PLOT]
    bar_labels = [labels[code] for code in shown]
    reference_bars, current_bars = reference_share[shown], current_share[shown]
    positions = np.arange(len(bar_labels))
    figure = Figure(figsize=(7, 3.4), dpi=100)
    axes = figure.subplots()
    axes.bar(positions - 0.2, reference_bars, width=0.4, label="reference", color="#4c72b0")
    axes.bar(positions + 0.2, current_bars, width=0.4, label="current", color="#dd8452")
    axes.set_xticks(positions, bar_labels, rotation=45, ha="right", fontsize=8)
    if len(order) > len(shown):
        axes.set_xlabel(f"the {len(shown)} of {len(order)} categories whose share changed most", fontsize=8)
    axes.set_ylabel("share of rows")
    axes.set_title(f"{name}: {caption}", fontsize=10)
    axes.legend()
    figure.tight_layout()
    return _png(figure)


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"


REPORT_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.drift td { background: #fde2e1; }
.verdict { font-size: 1.2em; font-weight: bold; }
.verdict.drift { color: #b00020; }
.verdict.stable { color: #1b5e20; }
figure { margin: 1.5em 0; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _column_reader(
    data: Any, source: str, features: list[str], max_rows: int | None, rng: np.random.Generator
) -> Mapping[str, pa.ChunkedArray]:
    """``name -> column`` of the rows the result was computed on (a table or a DataFrame)."""
    table = _sample(_as_table(data, source).select(features), max_rows, rng)
    return {name: table[name] for name in features}


def render_html_report(result: Mapping[str, Any], reference: Any, current: Any) -> str:
    """Render a drift result as one self-contained HTML page (no external asset, no script).

    Args:
        result: ``detect_drift``'s result.
        reference: The reference data the result was computed on (sampled again as the result says): a
            pyarrow Table, a pandas DataFrame, or a ``pyarrow.dataset.Dataset`` (read one column at a time).
        current: The current batch, likewise.

    Returns:
        HTML: the verdict, the parameters, a table of every feature (test, statistic, p-value, PSI, null
        shares, unseen categories), and for each feature flagged by its test or its PSI (at most
        ``PLOTS_IN_REPORT``, smallest p-value first) a plot embedded as a base64 PNG: histograms of the
        reference and current shares for a numeric feature, bars of category shares for a categorical one.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.dataset as ds

    meta, data = result["meta"], result["data"]
    features: dict[str, Any] = data["features"]
    escape = html.escape
    verdict = (
        f"Drift detected in {len(data['drifted_features'])} of {data['n_features']} features"
        if data["is_drift"]
        else f"No drift detected in {data['n_features']} features"
    )
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Drift report: {escape(str(meta['current_source']))}</title>",
        f"<style>{REPORT_STYLE}</style></head><body>",
        "<h1>Drift report</h1>",
        f'<p class="verdict {"drift" if data["is_drift"] else "stable"}">{escape(verdict)}</p>',
        "<p>",
        f"Reference: {escape(str(meta['reference_source']))} ({data['reference_rows']:,} rows compared of "
        f"{data['reference_rows_given']:,}).<br>",
        f"Current batch: {escape(str(meta['current_source']))} ({data['current_rows']:,} rows compared of "
        f"{data['current_rows_given']:,}).<br>",
        f"Decision: {escape(meta['detector'])} {escape(str(meta['detector_version']))}, KS for numeric and "
        f"chi-squared for categorical features, p_val {meta['p_val']} with {escape(meta['correction'])} "
        f"correction: a feature drifts when its p-value is below {_number(data['threshold'], 4)}. "
        f"PSI is reported and flagged above {meta['psi_threshold']}; it does not decide.",
        "</p>",
        "<table><thead><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>p-value</th>"
        "<th>drift</th><th>PSI</th><th>PSI &gt; threshold</th><th>null share ref / cur</th>"
        "<th>unseen categories (share)</th></tr></thead><tbody>",
    ]
    order = sorted(features, key=lambda name: (features[name]["p_value"], -features[name]["psi"]))
    for name in order:
        feature = features[name]
        unseen = ", ".join(escape(str(value)) for value in feature["unseen_categories"])
        if feature["unseen_count"] > len(feature["unseen_categories"]):
            unseen += f", ... ({feature['unseen_count']} in all)"
        unseen_cell = f"{unseen} ({feature['unseen_share']:.2%})" if feature["unseen_count"] else ""
        row = '<tr class="drift">' if feature["drift"] else "<tr>"
        lines.append(
            f"{row}<td>{escape(name)}</td><td>{feature['kind']}</td>"
            f"<td>{feature['test']}</td><td>{_number(feature['statistic'])}</td>"
            f"<td>{_number(feature['p_value'])}</td><td>{'yes' if feature['drift'] else 'no'}</td>"
            f"<td>{_number(feature['psi'])}</td><td>{'yes' if feature['psi_drift'] else 'no'}</td>"
            f"<td>{feature['null_share_reference']:.2%} / {feature['null_share_current']:.2%}</td>"
            f"<td>{unseen_cell}</td></tr>"
        )
    lines.append("</tbody></table>")

    flagged = [name for name in order if features[name]["drift"] or features[name]["psi_drift"]]
    if flagged:
        lines.append("<h2>Flagged features</h2>")
        if len(flagged) > PLOTS_IN_REPORT:
            lines.append(f"<p>The first {PLOTS_IN_REPORT} of {len(flagged)} flagged features are plotted.</p>")
        sources = (str(meta["reference_source"]), str(meta["current_source"]))
        # Datasets (the streamed path) are read one feature and one record batch at a time, as detected.
        streamed = isinstance(reference, ds.Dataset)
        if not streamed:
            rng = np.random.default_rng(meta["seed"])
            reference_table = _column_reader(reference, sources[0], list(features), meta["max_rows"], rng)
            current_table = _column_reader(current, sources[1], list(features), meta["max_rows"], rng)
        for name in flagged[:PLOTS_IN_REPORT]:
            feature = features[name]
            caption = f"{feature['test']} p={_number(feature['p_value'])}, PSI={_number(feature['psi'])}"
            if feature["kind"] == NUMERIC and streamed:
                image = _numeric_plot(name, _read_numeric(reference, name), _read_numeric(current, name), caption)
            elif feature["kind"] == NUMERIC:
                image = _numeric_plot(
                    name,
                    _numeric_values(reference_table[name]),
                    _numeric_values(current_table[name]),
                    caption,
                )
            elif streamed:
                image = _categorical_plot(name, _count_categories(reference, current, name, sources), caption)
            else:
                encoded = _encode_categories(
                    _text_values(reference_table[name], name, sources[0]),
                    _text_values(current_table[name], name, sources[1]),
                )
                image = _categorical_plot(name, encoded, caption)
            if streamed:
                pa.default_memory_pool().release_unused()
            lines.append(
                f'<figure><img src="data:image/png;base64,{image}" alt="{escape(name)}: reference vs current">'
                f"<figcaption>{escape(name)} ({feature['kind']}): {escape(caption)}</figcaption></figure>"
            )
    if data.get("prediction_drift"):
        lines.extend(_prediction_section(data["prediction_drift"]))
    lines.append(f"<p><small>mlkeel {escape(str(meta['version']))}</small></p></body></html>")
    return "\n".join(lines) + "\n"


def _prediction_section(found: Mapping[str, Any]) -> list[str]:
    """The report's prediction drift section: the verdict line and each side's class shares or value summary."""
    from mlkeel.components.drift.predictions import describe

    lines = ["<h2>Prediction drift</h2>", f"<p>{html.escape(describe(dict(found)))} (reported, not deciding)</p>"]
    if "shares" in found:
        rows = [(name, shares["reference"], shares["current"]) for name, shares in found["shares"].items()]
        lines.append("<table><thead><tr><th>predicted class</th><th>reference</th><th>current</th></tr></thead><tbody>")
        lines.extend(
            f"<tr><td>{html.escape(name)}</td><td>{ref:.2%}</td><td>{cur:.2%}</td></tr>" for name, ref, cur in rows
        )
    else:
        reference, current = found["summary"]["reference"], found["summary"]["current"]
        lines.append("<table><thead><tr><th>predicted value</th><th>reference</th><th>current</th></tr></thead><tbody>")
        lines.extend(
            f"<tr><td>{name}</td><td>{_number(reference[name])}</td><td>{_number(current[name])}</td></tr>"
            for name in reference
        )
    lines.append("</tbody></table>")
    return lines


# --- files ------------------------------------------------------------------------------------------


def drift(
    reference_path: str,
    current_path: str,
    result_path: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    feature_columns: Sequence[str] | None = None,
    categorical_columns: Sequence[str] | None = None,
    p_val: float = DEFAULT_P_VAL,
    correction: str = DEFAULT_CORRECTION,
    psi_threshold: float = DEFAULT_PSI_THRESHOLD,
    max_rows: int | None = None,
    seed: int = DEFAULT_SEED,
    exclude_columns: Sequence[str] = (),
    reference_source: str = "",
    current_source: str = "",
    streaming: bool | None = None,
    reference_predictions_path: str = "",
    current_predictions_path: str = "",
) -> dict[str, Any]:
    """Compare two Parquet files; write the drift result (JSON) and the HTML report.

    When either file has more than ``STREAMING_MIN_ROWS`` rows, the files are compared feature by feature
    (``detect_drift_streaming``): the same result, one feature of both sides in memory at a time.

    Args:
        reference_path: The reference Parquet file (local path or pyarrow-filesystem URI).
        current_path: The current batch's Parquet file.
        result_path: Where to write the result JSON (``detect_drift``'s result).
        report_path: Where to write the HTML report.
        feature_columns: Columns to compare; None: every column but ``exclude_columns``.
        categorical_columns: Numeric columns to treat as categorical.
        p_val: Significance level of the drift decision, in (0, 1).
        correction: ``bonferroni`` or ``fdr``.
        psi_threshold: PSI above which a feature is flagged (reported, not deciding).
        max_rows: At most this many rows of each side (seeded sample); None or 0: every row.
        seed: Seed of that sample.
        exclude_columns: Columns never compared (key, target).
        reference_source: Printable name of the reference; defaults to ``reference_path``.
        current_source: Printable name of the current batch; defaults to ``current_path``.
        streaming: True compares feature by feature, False reads both files whole; None (default) streams
            when a file has more than ``STREAMING_MIN_ROWS`` rows.
        reference_predictions_path: The champion's prediction log on the reference rows ("" = no prediction
            drift); with ``current_predictions_path``, the result's ``data.prediction_drift`` compares them
            (``predictions.prediction_drift``: class shares or the value distribution, reported, not deciding).
        current_predictions_path: The same model's prediction log on the current batch.

    Returns:
        The result, as written.

    Raises:
        DataError: a file is missing, unreadable or has no rows.
        SchemaMismatchError: the files' columns differ (each side's missing columns named), or the prediction
            logs are of models of different tasks.
        ParameterError: a parameter out of range; one prediction log without the other.
        MissingExtraError: alibi-detect is not installed (``require_alibi_detect``).
    """
    from mlkeel.components.ingest.logic import open_parquet_dataset, read_source

    require_alibi_detect()
    check_parameters(p_val, correction, psi_threshold, max_rows)
    if bool(reference_predictions_path) != bool(current_predictions_path):
        given = "reference_predictions_path" if reference_predictions_path else "current_predictions_path"
        raise ParameterError(f"{given} given alone: prediction drift compares the reference's and the batch's logs")
    if streaming is None:
        rows = max(open_parquet_dataset(path)[0].count_rows() for path in (reference_path, current_path))
        streaming = rows > STREAMING_MIN_ROWS
    if streaming:
        detect: Any = detect_drift_streaming
        reference: Any = open_parquet_dataset(reference_path)[0]
        current: Any = open_parquet_dataset(current_path)[0]
        inputs: tuple[Any, Any] = (reference_path, current_path)
    else:
        detect = detect_drift
        reference = read_source(reference_path, "parquet").table
        current = read_source(current_path, "parquet").table
        inputs = (reference, current)
    result = detect(
        *inputs,
        feature_columns=feature_columns,
        categorical_columns=categorical_columns,
        p_val=p_val,
        correction=correction,
        psi_threshold=psi_threshold,
        max_rows=max_rows,
        seed=seed,
        exclude_columns=exclude_columns,
        reference_source=display_uri(reference_source or reference_path),
        current_source=display_uri(current_source or current_path),
    )
    if reference_predictions_path:
        from mlkeel.components.drift.predictions import describe, prediction_drift
        from mlkeel.prediction_log import read_prediction_logs

        result["data"]["prediction_drift"] = prediction_drift(
            read_prediction_logs(reference_predictions_path),
            read_prediction_logs(current_predictions_path),
            p_val,
            psi_threshold,
            f"predictions on {display_uri(reference_source or reference_path)}",
            f"predictions on {display_uri(current_source or current_path)}",
        )
        logging.getLogger(__name__).info("drift: %s", describe(result["data"]["prediction_drift"]))
    write_json_atomic(result, result_path)
    write_text_atomic(render_html_report(result, reference, current), report_path)
    return result
