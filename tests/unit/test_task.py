"""Task type: inferred from real targets (wine, diabetes, the bundled flights), overridable, refused with a reason."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_diabetes, load_wine

from data.flights import FLIGHTS_PARQUET
from mlkeel.errors import DataError, ParameterError
from mlkeel.task import MAX_CLASSES, infer_task, resolve_task


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    return pq.read_table(FLIGHTS_PARQUET, columns=["flight_id", "carrier", "distance", "late", "month"]).to_pandas()


def test_real_targets_get_the_task_a_user_expects(flights: pd.DataFrame) -> None:
    wine = infer_task(load_wine(as_frame=True).frame["target"], "wine")
    diabetes = infer_task(load_diabetes(as_frame=True).frame["target"], "diabetes")
    assert (wine.task, wine.classes) == ("multiclass", ["0", "1", "2"])
    assert wine.summary == "task: multiclass (inferred: 3 distinct whole numbers (<= 20))"
    assert diabetes.task == "regression" and diabetes.classes == []
    assert "214 distinct values" in diabetes.summary
    assert infer_task(flights["late"]).task == "binary"
    carrier = infer_task(flights["carrier"])
    assert carrier.task == "multiclass" and len(carrier.classes) == 16
    assert infer_task(flights["distance"]).task == "regression"
    assert infer_task(flights["month"]).task == "multiclass"  # 12 whole numbers: a label unless asked otherwise


def test_a_fractional_number_is_regression_even_with_few_values() -> None:
    assert infer_task(pd.Series([0.5, 1.25, 2.0, 0.5], name="y")).task == "regression"
    assert infer_task(pd.Series([1.0, 2.0, 3.0, None], name="y")).task == "multiclass"


def test_the_task_can_be_requested_and_the_summary_says_so(flights: pd.DataFrame) -> None:
    choice = resolve_task(flights["month"], "regression", "flights")
    assert choice.task == "regression" and not choice.inferred
    assert choice.summary == "task: regression (requested: 12 distinct numeric values)"
    assert resolve_task(flights["late"], "multiclass").classes == ["0", "1"]
    assert resolve_task(flights["late"], "").task == "binary"


def test_targets_that_fit_no_task_are_refused_with_the_reason(flights: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"flights: target column 'y' has a single value 'a' in all 3"):
        infer_task(pd.Series(["a", "a", "a", None], name="y"), "flights")
    ids = flights["flight_id"].astype(str).head(500)
    with pytest.raises(DataError, match=rf"'flight_id' holds 500 distinct text values .*more than {MAX_CLASSES}"):
        infer_task(ids, "flights")
    with pytest.raises(DataError, match=r"all null"):
        infer_task(pd.Series([None, None], name="y", dtype=object))
    with pytest.raises(DataError, match=r"task=binary but target column 'carrier' has 16 distinct"):
        resolve_task(flights["carrier"], "binary")
    with pytest.raises(DataError, match=r"task=regression but target column 'carrier' holds 16 distinct text"):
        resolve_task(flights["carrier"], "regression")
    with pytest.raises(DataError, match=r"task=multiclass .*fractional part"):
        resolve_task(pd.Series([0.5, 1.5, 2.5], name="y"), "multiclass")
    with pytest.raises(ParameterError, match=r"task 'ordinal': expected one of binary, multiclass, regression"):
        resolve_task(flights["late"], "ordinal")
