"""Feature typing on tables nobody cleaned: real slices of Telco, raw 2013 NYC flights and fine-food reviews.

``tests/data/flights_raw_jan.parquet`` keeps what the bundled flights leave out on purpose (the flight number,
the tail number of 2,027 levels, the ``time_hour`` timestamp); ``tests/data/fine_food_reviews.parquet`` is real
review text with a product code unique per row (``scripts/prepare_test_slices.py`` says where both come from).
Before feature typing, the table's identifiers were one-hot encoded into thousands of dense columns and
memorised, timestamps were silently left out, and free text became one column per distinct review.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlkeel.components.train.features import (
    MAX_ONE_HOT_CATEGORIES,
    TEXT_MAX_FEATURES,
    parse_feature_types,
    plan_features,
)
from mlkeel.components.train.logic import fit_model, train
from mlkeel.constants import LineageTag
from mlkeel.errors import DataError, ParameterError
from mlkeel.metrics import classification_metrics
from mlkeel.modeling import binary_labels, fitted_pipeline, load_sklearn_model, positive_scores

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    """5,000 January 2013 flights with flight number, tail number and ``time_hour`` (UTC)."""
    return pq.read_table(DATA / "flights_raw_jan.parquet").to_pandas()


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    """2,000 fine-food reviews: product (unique), review (text), score (great / other)."""
    return pq.read_table(DATA / "fine_food_reviews.parquet").to_pandas()


@pytest.fixture(scope="module")
def telco(telco_split: tuple[Path, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    train_path, test_path = telco_split
    return pq.read_table(train_path).to_pandas(), pq.read_table(test_path).to_pandas()


def _holdout_auc(fitted, frame: pd.DataFrame, target: str, positive: str) -> float:  # type: ignore[no-untyped-def]
    return classification_metrics(binary_labels(frame[target], positive), positive_scores(fitted.model, frame))[
        "roc_auc"
    ]


def test_an_undeclared_customer_id_is_left_out_with_its_reason(telco: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train_frame, test_frame = telco
    fitted = fit_model(train_frame, "Churn", "Yes", key_columns=None, estimator="logistic_regression")
    plan = fitted.feature_plan
    assert "customerID" not in fitted.feature_columns
    assert plan.not_used == {"customerID": "identifier, 100% distinct"}
    assert plan.summary().startswith("features: 19 used (4 numeric, 15 categorical), ")
    assert plan.summary().endswith("; not used: customerID (identifier, 100% distinct)")
    # Before: 5,634 train customers became 5,634 one-hot columns (5,327 wide in all) and the model memorised them.
    assert plan.encoded_width <= 60
    assert _holdout_auc(fitted, test_frame, "Churn", "Yes") > 0.83


def test_raw_flights_get_calendar_features_bounded_categories_and_no_id(flights: pd.DataFrame) -> None:
    train_frame, test_frame = flights.iloc[:4000], flights.iloc[4000:]
    fitted = fit_model(train_frame, "late", "1", estimator="logistic_regression")
    kinds = {column: entry["kind"] for column, entry in fitted.feature_plan.to_dict()["columns"].items()}
    assert kinds["time_hour"] == "timestamp"  # was silently left out
    assert kinds["flight_id"] == "not used" and kinds["tailnum"] == "categorical" and kinds["flight"] == "numeric"
    assert "flight_id (identifier, 100% distinct, named like an id)" in fitted.feature_plan.summary()
    # 2,027 tail numbers (1,681 in these rows) one-hot: at most MAX_ONE_HOT_CATEGORIES columns each, not 1,681.
    categorical = fitted_pipeline(fitted.model).named_steps["preprocess"].named_transformers_["categorical"]
    widths = {
        column: len(levels)
        for column, levels in zip(categorical.feature_names_in_, categorical.categories_, strict=True)
    }
    assert widths["tailnum"] > 1000
    assert fitted.feature_plan.encoded_width <= 4 * MAX_ONE_HOT_CATEGORIES + 5 + 5
    assert _holdout_auc(fitted, test_frame, "late", "1") > 0.6  # the last week of January, from the first three


def test_histogram_boosting_takes_many_level_categories_natively_in_one_column_each(flights: pd.DataFrame) -> None:
    fitted = fit_model(flights.iloc[:4000], "late", "1")
    plan = fitted.feature_plan
    # carrier, tailnum, origin, dest -> 4 code columns; 5 numbers; time_hour -> year, month, day, weekday, hour.
    assert plan.counts() == {"numeric": 5, "categorical": 4, "timestamp": 1}
    assert plan.not_used["month"] == "constant, '1' in every row"  # January only
    assert plan.encoded_width == 4 + 5 + 5
    assert list(fitted_pipeline(fitted.model).named_steps["classify"].categorical_features) == [0, 1, 2, 3]
    assert _holdout_auc(fitted, flights.iloc[4000:], "late", "1") > 0.6  # the last week, from the first three


def test_timestamps_sent_as_text_score_like_the_timestamps_themselves(flights: pd.DataFrame) -> None:
    """A serving request carries time_hour as JSON text; the model inside parses it to the same calendar."""
    fitted = fit_model(flights.iloc[:4000], "late", "1")
    rows = flights.iloc[4000:4200].copy()
    as_text = rows.copy()
    as_text["time_hour"] = rows["time_hour"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    np.testing.assert_allclose(positive_scores(fitted.model, as_text), positive_scores(fitted.model, rows))
    broken = as_text.head(2).copy()
    broken["time_hour"] = ["not a time", None]
    assert np.isfinite(positive_scores(fitted.model, broken)).all()


def test_free_text_is_a_bounded_text_feature_and_the_product_code_an_identifier(reviews: pd.DataFrame) -> None:
    train_frame, test_frame = reviews.iloc[:1500], reviews.iloc[1500:]
    fitted = fit_model(train_frame, "score", "great", estimator="logistic_regression")
    plan = fitted.feature_plan
    assert plan.columns("text") == ["review"] and plan.not_used == {"product": "identifier, 100% distinct"}
    assert plan.encoded_width <= TEXT_MAX_FEATURES
    # Before: 1,500 distinct reviews one-hot; unseen reviews all zeros, holdout ROC AUC 0.50. (Fitted on 80% of
    # the rows: the rest chooses the decision threshold.)
    assert _holdout_auc(fitted, test_frame, "score", "great") > 0.7
    odd = test_frame.head(2).copy()
    odd["review"] = [None, "never seen words zyzzyva"]
    assert np.isfinite(positive_scores(fitted.model, odd)).all()


def test_overrides_win_and_bad_ones_are_named(flights: pd.DataFrame, reviews: pd.DataFrame) -> None:
    overrides = parse_feature_types('{"tailnum": "ignore", "flight": "categorical", "flight_id": "numeric"}')
    plan = plan_features(flights, "late", overrides=overrides)
    assert plan.not_used == {"month": "constant, '1' in every row", "tailnum": "ignore, set by feature_types"}
    assert "flight" in plan.columns("categorical") and "flight_id" in plan.columns("numeric")
    with pytest.raises(ParameterError, match=r"feature_types names column\(s\) 'tail', which train data does not"):
        plan_features(flights, "late", overrides={"tail": "ignore"})
    with pytest.raises(ParameterError, match=r"feature_types\['tailnum'\]='words': unknown kind"):
        parse_feature_types({"tailnum": "words"})
    with pytest.raises(ParameterError, match=r"feature_types\['distance'\]='text' but the column holds int64"):
        plan_features(flights, "late", overrides={"distance": "text"})
    with pytest.raises(ParameterError, match="feature_types names the target column 'late'"):
        plan_features(flights, "late", overrides={"late": "numeric"})
    with pytest.raises(DataError, match=r"no feature column left: features: 0 used .*review \(ignore"):
        plan_features(reviews, "score", overrides={"review": "ignore"})


def test_booleans_with_missing_values_are_features(flights: pd.DataFrame) -> None:
    frame = flights.iloc[:3000][["late", "distance", "origin"]].copy()
    frame["from_jfk"] = (frame.pop("origin") == "JFK").astype(object)
    frame.loc[frame.index[:5], "from_jfk"] = None
    fitted = fit_model(frame, "late", "1", estimator="logistic_regression")
    assert fitted.feature_plan.columns("boolean") == ["from_jfk"]
    assert np.isfinite(positive_scores(fitted.model, frame.head(10))).all()


def test_the_trained_model_carries_its_features_to_mlflow_and_loads_back(
    flights: pd.DataFrame, tmp_path: Path, mlflow_local_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    train_path = tmp_path / "train.parquet"
    frame = flights.iloc[:3000].copy()
    frame["remark"] = pq.read_table(DATA / "fine_food_reviews.parquet").column("review").to_pylist()[: 3000 // 2] * 2
    frame.to_parquet(train_path, index=False)
    result = train(
        str(train_path),
        str(tmp_path / "model"),
        "late",
        "1",
        tracking_uri=mlflow_local_uri,
        experiment_name="unit",
        feature_types={"flight": "categorical"},
    )
    summary = result.metadata["features"]
    assert summary.startswith("features: 11 used (4 numeric, 5 categorical, 1 text, 1 timestamp)")
    assert result.metadata["feature_kinds"]["flight_id"] == "not used"
    run = MlflowClient(mlflow_local_uri).get_run(result.mlflow_run_id)
    assert run.data.tags[LineageTag.FEATURES] == summary
    assert run.data.params["features.text"] == "1" and run.data.params["features.timestamp"] == "1"
    assert json.loads(run.data.params["feature_types"]) == {"flight": "categorical"}
    # The calendar transformer and the TF-IDF vocabulary load back through skops (trusted types recorded).
    loaded = load_sklearn_model(result.mlflow_model_uri)
    np.testing.assert_allclose(positive_scores(loaded, frame.head(50)), positive_scores(loaded, frame.head(50)))
    assert list(loaded.feature_names_in_) == [c for c in frame.columns if c not in ("late", "flight_id", "month")]
