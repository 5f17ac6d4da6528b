"""The prediction log: one schema for batch and serving, nulls kept, many files read as one table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from mlkeel.prediction_log import (
    FIXED_COLUMNS,
    PredictionLogWriter,
    build_prediction_log,
    feature_columns,
    prediction_log_schema,
    read_prediction_logs,
    validate_prediction_log,
)

MOMENT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
FEATURES = pd.DataFrame(
    {
        "tenure": [1, None, 30, 5],  # an int column with a null arrives as float
        "Contract": ["Month-to-month", None, "Two year", "Quarterly"],
        "TotalCharges": [29.85, np.nan, 1889.5, 200.0],
    }
)


def _log(scores=(0.9, 0.2, 0.5, 0.49), negative_label: str | None = "No", **overrides) -> pa.Table:
    arguments = {
        "features_frame": FEATURES,
        "request_ids": ["a", "b", "c", "d"],
        "model_name": "churn",
        "model_version": "3",
        "model_uri": "models:/churn/3",
        "scores": scores if hasattr(scores, "task") else list(scores),
        "threshold": 0.5,
        "positive_label": "Yes",
        "negative_label": negative_label,
        "predicted_at": MOMENT,
    }
    return build_prediction_log(**{**arguments, **overrides})


def test_the_fixed_columns_then_every_feature_with_its_nulls() -> None:
    log = _log()
    assert log.column_names[: len(FIXED_COLUMNS)] == [name for name, _ in FIXED_COLUMNS]
    assert log.schema.field("predicted_at").type == pa.timestamp("us", tz="UTC")
    assert log.schema.field("prediction").type == pa.int8()
    assert feature_columns(log) == ["tenure", "Contract", "TotalCharges"]
    assert log.column("feature.tenure").to_pylist() == [1.0, None, 30.0, 5.0]
    assert log.column("feature.Contract").to_pylist() == ["Month-to-month", None, "Two year", "Quarterly"]
    assert log.column("feature.TotalCharges").null_count == 1
    rows = log.select(["request_id", "model_version", "prediction", "prediction_label", "probability"]).to_pylist()
    assert rows == [
        {"request_id": "a", "model_version": "3", "prediction": 1, "prediction_label": "Yes", "probability": 0.9},
        {"request_id": "b", "model_version": "3", "prediction": 0, "prediction_label": "No", "probability": 0.2},
        # The threshold is inclusive: 0.5 is positive, 0.49 is not.
        {"request_id": "c", "model_version": "3", "prediction": 1, "prediction_label": "Yes", "probability": 0.5},
        {"request_id": "d", "model_version": "3", "prediction": 0, "prediction_label": "No", "probability": 0.49},
    ]
    assert set(log.column("predicted_at").to_pylist()) == {MOMENT}
    assert validate_prediction_log(log).equals(log)


def test_an_unknown_negative_label_leaves_only_negative_labels_null() -> None:
    log = _log(negative_label=None)
    assert log.column("prediction_label").to_pylist() == ["Yes", None, "Yes", None]
    assert log.column("prediction").to_pylist() == [1, 0, 1, 0]


def test_a_timestamp_in_another_zone_is_stored_as_utc() -> None:
    paris = datetime(2026, 3, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    assert _log(predicted_at=paris).column("predicted_at")[0].as_py() == MOMENT


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"request_ids": ["a", "b", "c"]}, DataError, "4 feature rows but 4 scores and 3 request ids"),
        ({"request_ids": ["a", None, "c", "d"]}, DataError, "request id is null in row 1"),
        ({"scores": [0.1, 1.5, 0.2, 0.3]}, DataError, "score 1.5 in row 1 is not a probability"),
        ({"scores": [0.1, 0.2, float("nan"), 0.3]}, DataError, "in row 2 is not a probability"),
        ({"threshold": 1.2}, ParameterError, "threshold 1.2 is outside"),
        ({"predicted_at": datetime(2026, 3, 1)}, ParameterError, "has no timezone"),
    ],
)
def test_rows_that_cannot_be_logged_are_refused(overrides: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _log(**overrides)


def test_missing_columns_are_named() -> None:
    log = _log().drop_columns(["probability", "model_version"])
    missing = r"serving\.parquet: not a prediction log, missing column\(s\): model_version, probability$"
    with pytest.raises(SchemaMismatchError, match=missing):
        validate_prediction_log(log, "serving.parquet")


def test_another_writers_types_are_cast_when_lossless_and_refused_otherwise() -> None:
    log = _log()
    index = log.schema.get_field_index
    wider = log.set_column(index("prediction"), "prediction", log.column("prediction").cast(pa.int64()))
    wider = wider.set_column(index("predicted_at"), "predicted_at", pa.array([MOMENT] * 4, pa.timestamp("ns", "UTC")))
    assert validate_prediction_log(wider).schema.field("prediction").type == pa.int8()
    assert validate_prediction_log(wider).column("predicted_at").to_pylist() == [MOMENT] * 4

    text = log.set_column(index("probability"), "probability", log.column("probability").cast(pa.string()))
    with pytest.raises(SchemaMismatchError, match="column 'probability' is string, expected double"):
        validate_prediction_log(text)
    naive = log.set_column(index("predicted_at"), "predicted_at", pa.array([MOMENT.replace(tzinfo=None)] * 4))
    expected = r"'predicted_at' is timestamp\[us\], expected timestamp\[us, tz=UTC\]"
    with pytest.raises(SchemaMismatchError, match=expected):
        validate_prediction_log(naive)


def test_a_folder_of_logs_reads_as_one_table_skipping_temporary_files(tmp_path: Path) -> None:
    folder = tmp_path / "serving"
    (folder / "2026-03-02").mkdir(parents=True)
    pq.write_table(_log(), folder / "2026-03-01.parquet")
    # A later file from a model with one more feature: earlier rows get a null there.
    later = _log(
        features_frame=FEATURES.assign(Extra=[1, 2, 3, 4]),
        request_ids=["e", "f", "g", "h"],
        model_version="4",
    )
    pq.write_table(later, folder / "2026-03-02" / "part-0.parquet")
    (folder / ".part-1.parquet.abc.tmp").write_bytes(b"half-written")  # an atomic write in progress
    (folder / "_SUCCESS").write_text("")

    combined = read_prediction_logs(folder)

    assert combined.num_rows == 8
    assert combined.column("request_id").to_pylist() == list("abcdefgh")
    assert combined.column("feature.Extra").to_pylist() == [None] * 4 + [1, 2, 3, 4]
    assert combined.schema.field("model_version").type == pa.string()
    assert read_prediction_logs([folder / "2026-03-01.parquet", str(folder / "2026-03-02")]).num_rows == 8


def test_unreadable_logs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="prediction log not found"):
        read_prediction_logs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no prediction log file"):
        read_prediction_logs(tmp_path / "empty")
    pq.write_table(pa.table({"id": [1]}), tmp_path / "other.parquet")
    with pytest.raises(SchemaMismatchError, match=r"other.parquet: not a prediction log, missing column\(s\): req"):
        read_prediction_logs(tmp_path / "other.parquet")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "broken.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"logs: broken\.parquet: not a readable Parquet file"):
        read_prediction_logs(tmp_path / "logs")


def test_the_schema_is_what_the_docstring_promises() -> None:
    schema = prediction_log_schema()
    assert {field.name: str(field.type) for field in schema} == {
        "request_id": "string",
        "model_name": "string",
        "model_version": "string",
        "model_uri": "string",
        "prediction": "int8",
        "prediction_label": "string",
        "probability": "double",
        "threshold": "double",
        "predicted_at": "timestamp[us, tz=UTC]",
    }


def test_the_writer_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "batch.parquet"
    with PredictionLogWriter(path) as writer:
        writer.write(_log())
        writer.write(_log(request_ids=["e", "f", "g", "h"]))
        assert not path.exists()  # only a hidden temporary sibling until the block ends
    assert writer.rows == 8 and pq.read_table(path).column("request_id").to_pylist() == list("abcdefgh")
    assert read_prediction_logs(path.parent).num_rows == 8

    with pytest.raises(ValueError, match="scoring failed"), PredictionLogWriter(path) as writer:
        writer.write(_log(request_ids=["x", "y", "z", "w"]))
        raise ValueError("scoring failed")
    assert pq.read_table(path).column("request_id").to_pylist() == list("abcdefgh")  # the old file stays
    other = tmp_path / "other.parquet"
    with pytest.raises(SchemaMismatchError, match="columns differ"), PredictionLogWriter(other) as writer:
        writer.write(_log())
        writer.write(_log(features_frame=FEATURES.drop(columns=["tenure"])))
    with pytest.raises(DataError, match="no rows were written"), PredictionLogWriter(other):
        pass
    assert sorted(item.name for item in tmp_path.rglob("*")) == ["batch.parquet", "logs"]


def test_a_binary_log_has_no_task_columns_and_reads_beside_a_multiclass_one(tmp_path: Path) -> None:
    from mlkeel.prediction_log import TaskOutputs, log_task

    binary = _log()
    assert [name for name in ("task", "class_probabilities", "predicted_value") if name in binary.column_names] == []
    assert log_task(binary) == "binary"
    # A log written before tasks existed (non-nullable outputs) reads with a multiclass one: null task = binary.
    outcome = {"prediction", "probability", "threshold"}
    old_schema = pa.schema([field.with_nullable(field.name not in outcome) for field in binary.schema])
    pq.write_table(binary.cast(old_schema), tmp_path / "a-old.parquet")
    outputs = TaskOutputs("multiclass", np.array([[0.1, 0.7, 0.2]] * 4), ("x", "y", "z"))
    pq.write_table(_log(scores=outputs), tmp_path / "b-new.parquet")
    both = read_prediction_logs(tmp_path)
    assert both.column("task").to_pylist() == [None] * 4 + ["multiclass"] * 4
    assert both.column("prediction").to_pylist() == [1, 0, 1, 0, None, None, None, None]
    assert both.column("prediction_label").to_pylist() == ["Yes", "No", "Yes", "No"] + ["y"] * 4
    assert both.column("class_probabilities").to_pylist()[4] == [("x", 0.1), ("y", 0.7), ("z", 0.2)]
