"""mlkeel.schema: inference, JSON round trip, hash stability, errors that name the file and the field."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.data import TELCO_CHURN_KEY, TELCO_CHURN_TARGET
from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from mlkeel.schema import ColumnSchema, DatasetSchema, infer_schema


@pytest.fixture
def small_table() -> pa.Table:
    return pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "age": [31, 45, None, 22],
            "score": [0.5, float("nan"), 2.25, -1.0],
            "plan": ["basic", "pro", "basic", "pro"],
            "active": [True, False, True, True],
            "seen": [dt.datetime(2024, 1, day) for day in (1, 2, 3, 4)],
            "label": ["no", "yes", "no", "no"],
        }
    )


def test_infer_types_nullability_bounds_and_categories(small_table: pa.Table) -> None:
    schema = infer_schema(small_table, key_columns=["id"], target_column="label")

    assert [(c.name, c.type) for c in schema.columns] == [
        ("id", "string"),
        ("age", "integer"),
        ("score", "float"),
        ("plan", "string"),
        ("active", "boolean"),
        ("seen", "timestamp"),
        ("label", "string"),
    ]
    assert schema.column("age") == ColumnSchema("age", "integer", nullable=True, minimum=22, maximum=45)
    # NaN counts as missing: the column is nullable, and NaN is no bound.
    assert schema.column("score") == ColumnSchema("score", "float", nullable=True, minimum=-1.0, maximum=2.25)
    assert schema.column("plan").categories == ("basic", "pro")
    assert schema.column("plan").nullable is False
    assert schema.column("label").categories == ("no", "yes")
    # A key column never gets a closed domain: new rows bring new keys.
    assert schema.column("id").categories is None
    assert schema.column("active").categories is None and schema.column("active").minimum is None
    assert schema.key_columns == ("id",)
    assert schema.target_column == "label"
    assert [c.name for c in schema.feature_columns()] == ["age", "score", "plan", "active", "seen"]


def test_max_categories_is_inclusive() -> None:
    table = pa.table({"colour": ["red", "green", "blue", "red"]})
    assert infer_schema(table, max_categories=3).column("colour").categories == ("blue", "green", "red")
    assert infer_schema(table, max_categories=2).column("colour").categories is None


def test_a_column_without_any_value_gets_no_closed_domain() -> None:
    table = pa.table({"note": pa.array([None, None], pa.string()), "empty": pa.nulls(2)})
    schema = infer_schema(table)
    assert schema.column("note") == ColumnSchema("note", "string", nullable=True)
    assert schema.column("empty") == ColumnSchema("empty", "string", nullable=True)


def test_infer_rejects_unknown_columns_and_bad_max_categories(small_table: pa.Table) -> None:
    with pytest.raises(ParameterError, match=r"key_columns names column\(s\) 'customer'.*columns: id, age"):
        infer_schema(small_table, key_columns=["customer"])
    with pytest.raises(ParameterError, match=r"target_column names column.*'Churn'"):
        infer_schema(small_table, target_column="Churn")
    with pytest.raises(ParameterError, match="max_categories=0"):
        infer_schema(small_table, max_categories=0)


def test_round_trip_through_dict_json_and_file(small_table: pa.Table, tmp_path: Path) -> None:
    schema = infer_schema(small_table, key_columns=["id"], target_column="label")
    assert DatasetSchema.from_dict(schema.to_dict()) == schema
    assert DatasetSchema.from_dict(json.loads(schema.to_json())) == schema

    path = tmp_path / "schema.json"
    schema.save(path)
    assert path.read_text(encoding="utf-8") == schema.to_json()
    loaded = DatasetSchema.load(path)
    assert loaded == schema
    assert loaded.schema_hash() == schema.schema_hash()
    # Saving what was loaded writes the same bytes: a schema file does not churn in git or in lineage.
    again = tmp_path / "again.json"
    loaded.save(again)
    assert again.read_bytes() == path.read_bytes()


def test_schema_hash_is_stable_and_tracks_content(small_table: pa.Table) -> None:
    schema = infer_schema(small_table, key_columns=["id"], target_column="label")
    digest = schema.schema_hash()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert infer_schema(small_table, key_columns=["id"], target_column="label").schema_hash() == digest

    # Field order and indentation of the JSON do not matter.
    shuffled = json.loads(schema.to_json())
    shuffled["columns"] = [dict(reversed(list(column.items()))) for column in shuffled["columns"]]
    assert DatasetSchema.from_dict(dict(reversed(list(shuffled.items())))).schema_hash() == digest

    # A float bound written as 0 or 0.0 is the same bound.
    assert ColumnSchema("x", "float", False, minimum=0) == ColumnSchema("x", "float", False, minimum=0.0)

    # What the schema allows does matter.
    widened = schema.to_dict()
    widened["columns"][1]["maximum"] = 46
    assert DatasetSchema.from_dict(widened).schema_hash() != digest
    assert schema.with_roles(target_column="plan").schema_hash() != digest


def test_column_lookup_names_the_known_columns(small_table: pa.Table) -> None:
    schema = infer_schema(small_table)
    with pytest.raises(SchemaMismatchError, match="no column 'tenure'; columns: id, age, score"):
        schema.column("tenure")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["columns"][1].update(type="double"), r"columns\[1\] \('age'\): field 'type': 'double'"),
        (
            lambda d: d["columns"][1].update(minimun=0),
            r"columns\[1\] \('age'\): unknown field\(s\) 'minimun'",
        ),
        (lambda d: d["columns"][1].update(minimum=50), r"field 'minimum': 50 is above maximum 45"),
        (
            lambda d: d["columns"][3].update(categories="basic"),
            r"columns\[3\] \('plan'\): field 'categories'",
        ),
        (
            lambda d: d["columns"][2].update(categories=["a"]),
            r"only string columns have categories, not float",
        ),
        (lambda d: d["columns"][0].pop("nullable"), r"columns\[0\] \('id'\): missing field\(s\) 'nullable'"),
        (
            lambda d: d.update(key_columns=["customer"]),
            r"field 'key_columns': 'customer' not among the columns",
        ),
        (lambda d: d.update(target_column="Churn"), r"field 'target_column': 'Churn' not among the columns"),
        (lambda d: d.update(format_version=99), r"field 'format_version': 99 is not supported"),
        (lambda d: d.pop("columns"), r"missing field\(s\) 'columns'"),
    ],
)
def test_load_names_the_file_and_the_bad_field(
    small_table: pa.Table, tmp_path: Path, edit: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    document = infer_schema(small_table, key_columns=["id"]).to_dict()
    edit(document)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DataError, match=expected) as caught:
        DatasetSchema.load(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_load_missing_or_non_json_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere\.json: file not found"):
        DatasetSchema.load(tmp_path / "nowhere.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json: not valid JSON \(line 1"):
        DatasetSchema.load(bad)


def test_telco_schema(telco_parquet: Path) -> None:
    schema = infer_schema(pq.read_table(telco_parquet), key_columns=[TELCO_CHURN_KEY], target_column=TELCO_CHURN_TARGET)

    assert len(schema.columns) == 21
    assert schema.column("tenure") == ColumnSchema("tenure", "integer", False, minimum=0, maximum=72)
    assert schema.column("Contract").categories == ("Month-to-month", "One year", "Two year")
    assert schema.column("PaymentMethod").categories is not None
    assert len(schema.column("PaymentMethod").categories) == 4
    # TotalCharges is blank for 11 new customers in the export: the only nullable column.
    assert [c.name for c in schema.columns if c.nullable] == ["TotalCharges"]
    assert schema.column("customerID").categories is None
    assert schema.column(TELCO_CHURN_TARGET).categories == ("No", "Yes")
    assert len(schema.feature_columns()) == 19
    assert math.isclose(schema.column("MonthlyCharges").minimum, 18.25)
    assert schema.arrow_schema().field("tenure").type == pa.int64()
