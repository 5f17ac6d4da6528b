"""Split: deterministic, stratified, and stable by key hash across data versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.components.split.logic import split, split_table
from mlkeel.errors import DataError, ParameterError, SchemaMismatchError


def test_same_seed_same_split_and_stratified(telco_parquet: Path, tmp_path: Path) -> None:
    first = split(str(telco_parquet), str(tmp_path / "a1"), str(tmp_path / "b1"), "Churn", "Yes", 0.2, seed=3)
    split(str(telco_parquet), str(tmp_path / "a2"), str(tmp_path / "b2"), "Churn", "Yes", 0.2, seed=3)
    other = split(str(telco_parquet), str(tmp_path / "a3"), str(tmp_path / "b3"), "Churn", "Yes", 0.2, seed=4)
    assert (tmp_path / "b1").read_bytes() == (tmp_path / "b2").read_bytes()
    assert pq.read_table(tmp_path / "b1")["customerID"] != pq.read_table(tmp_path / "b3")["customerID"]
    assert first.train_rows + first.test_rows == 7043 and first.test_rows == 1409
    assert abs(first.train_positive_rate - first.test_positive_rate) < 0.002
    assert first.mode == other.mode == "stratified"


def test_key_hash_split_keeps_a_key_on_its_side_when_the_data_grows() -> None:
    keys = [f"customer-{index}" for index in range(5000)]
    old = pa.table({"id": keys[:4000], "y": [index % 2 for index in range(4000)]})
    grown = pa.table({"id": keys, "y": [index % 2 for index in range(5000)]})
    _, old_test, mode = split_table(old, test_fraction=0.25, hash_key_column="id")
    _, grown_test, _ = split_table(grown, test_fraction=0.25, hash_key_column="id", seed=999)
    old_test_keys = set(old_test["id"].to_pylist())
    assert mode == "key_hash"
    assert old_test_keys == {key for key in grown_test["id"].to_pylist() if key in set(keys[:4000])}
    assert 0.22 < len(old_test_keys) / 4000 < 0.28


def test_split_errors_name_the_problem() -> None:
    table = pa.table({"x": [1, 2, 3, 4], "y": ["a", "b", "a", "b"]})
    with pytest.raises(ParameterError, match=r"test_fraction=1\.5"):
        split_table(table, "y", test_fraction=1.5)
    with pytest.raises(SchemaMismatchError, match="target column 'label' not found"):
        split_table(table, "label")
    with pytest.raises(DataError, match="cannot split 4 rows"):
        split_table(pa.table({"x": [1, 2, 3, 4], "y": ["a", "a", "a", "b"]}), "y", test_fraction=0.5)


def test_a_regression_target_is_split_by_quantile_bins_and_a_multiclass_one_by_class(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes, load_wine

    diabetes = pa.Table.from_pandas(load_diabetes(as_frame=True).frame, preserve_index=False)
    train, test, mode = split_table(diabetes, "target", 0.25, seed=1, source="diabetes")
    assert mode == "stratified_quantiles"  # stratifying by the raw value fails: most values occur once or twice
    train_y, test_y = train["target"].to_numpy(), test["target"].to_numpy()
    assert (train.num_rows, test.num_rows) == (331, 111)
    for quantile in (0.1, 0.5, 0.9):  # both parts cover the target's range alike
        assert abs(float(np.quantile(train_y, quantile)) - float(np.quantile(test_y, quantile))) < 12
    with pytest.raises(DataError, match=r"diabetes: cannot split 442 rows \(stratified\)"):
        split_table(diabetes, "target", 0.25, seed=1, source="diabetes", task="multiclass")

    wine = load_wine(as_frame=True).frame
    pq.write_table(pa.Table.from_pandas(wine, preserve_index=False), tmp_path / "wine.parquet")
    result = split(str(tmp_path / "wine.parquet"), str(tmp_path / "tr"), str(tmp_path / "te"), "target", "", 0.3)
    assert (result.mode, result.task, result.train_positive_rate) == ("stratified", "multiclass", None)
    assert result.task_reason == "task: multiclass (inferred: 3 distinct whole numbers (<= 20))"
    shares = [
        pq.read_table(tmp_path / part)["target"].to_pandas().value_counts(normalize=True) for part in ("tr", "te")
    ]
    assert (shares[0] - shares[1]).abs().max() < 0.02
