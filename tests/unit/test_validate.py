"""Validate: each check quarantines exactly the right rows with the right reason; nothing is lost."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlkeel.components.validate.cli import main as validate_cli
from mlkeel.components.validate.logic import (
    CHECKS,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_MAX_INVALID_FRACTION,
    render_report,
    validate,
    validate_table,
)
from mlkeel.constants import QUARANTINE_REASON_COLUMN, SOURCE_ROW_COLUMN
from mlkeel.data import TELCO_CHURN_KEY, TELCO_CHURN_POSITIVE_LABEL, TELCO_CHURN_TARGET
from mlkeel.errors import DataError, ParameterError, SchemaMismatchError, ValidationFailedError
from mlkeel.schema import ColumnSchema, DatasetSchema, infer_schema


def reasons_by_row(quarantine: pa.Table) -> dict[int, str]:
    return dict(
        zip(
            quarantine[SOURCE_ROW_COLUMN].to_pylist(),
            quarantine[QUARANTINE_REASON_COLUMN].to_pylist(),
            strict=True,
        )
    )


def one_column(spec: ColumnSchema, values: pa.Array | list, **extra: list) -> tuple[pa.Table, DatasetSchema]:
    return pa.table({spec.name: values, **extra}), DatasetSchema(columns=(spec,))


@pytest.fixture(scope="module")
def telco(telco_parquet: Path) -> tuple[pa.Table, DatasetSchema]:
    table = pq.read_table(telco_parquet)
    return table, infer_schema(table, key_columns=[TELCO_CHURN_KEY], target_column=TELCO_CHURN_TARGET)


# --- one check at a time --------------------------------------------------------------------------


def test_text_in_a_float_column_is_parsed_and_the_unparsable_value_quarantined() -> None:
    table, schema = one_column(ColumnSchema("amount", "float", False), ["1.5", " 2 ", "abc", "-3e2", ""])
    outcome = validate_table(table, schema, "orders.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        2: "column 'amount': value 'abc' is not a valid float",
        4: "column 'amount': value '' is not a valid float",
    }
    assert outcome.valid["amount"].type == pa.float64()
    assert outcome.valid["amount"].to_pylist() == [1.5, 2.0, -300.0]
    # The quarantine keeps what arrived, as it arrived.
    assert outcome.quarantine["amount"].to_pylist() == ["abc", ""]


def test_fractional_float_in_an_integer_column_is_quarantined_whole_floats_are_cast() -> None:
    table, schema = one_column(ColumnSchema("tenure", "integer", False), [1.0, 2.5, 3.0, 1e20])
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        1: "column 'tenure': value 2.5 is not a valid integer",
        3: "column 'tenure': value 1e+20 is not a valid integer",
    }
    assert outcome.valid["tenure"].type == pa.int64()
    assert outcome.valid["tenure"].to_pylist() == [1, 3]


def test_integer_text_in_every_spelling() -> None:
    values = ["+3", "007", "-12", "12.0", "1e3", "x", "99999999999999999999", "9223372036854775807"]
    table, schema = one_column(ColumnSchema("n", "integer", False), values)
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert sorted(reasons_by_row(outcome.quarantine)) == [5, 6]
    assert outcome.valid["n"].to_pylist() == [3, 7, -12, 12, 1000, 9223372036854775807]


def test_boolean_and_timestamp_text() -> None:
    flags, flag_schema = one_column(ColumnSchema("ok", "boolean", True), ["true", "FALSE", "1", "yes", None])
    outcome = validate_table(flags, flag_schema, "t.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {3: "column 'ok': value 'yes' is not a valid boolean"}
    assert outcome.valid["ok"].to_pylist() == [True, False, True, None]

    times = ["2024-02-29", "2024-02-30", "2024-03-01 10:30:00", "2024-03-01T10:30:00.25", "yesterday"]
    table, schema = one_column(ColumnSchema("seen", "timestamp", False), times)
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        1: "column 'seen': value '2024-02-30' is not a valid timestamp",
        4: "column 'seen': value 'yesterday' is not a valid timestamp",
    }
    assert outcome.valid["seen"].to_pylist() == [
        dt.datetime(2024, 2, 29),
        dt.datetime(2024, 3, 1, 10, 30),
        dt.datetime(2024, 3, 1, 10, 30, 0, 250000),
    ]


def test_anything_to_string_is_a_plain_cast() -> None:
    table, schema = one_column(ColumnSchema("zip", "string", False), pa.array([2134, 90210], pa.int32()))
    outcome = validate_table(table, schema, "t.parquet")
    assert outcome.rows_quarantined == 0
    assert outcome.valid["zip"].to_pylist() == ["2134", "90210"]


def test_null_and_nan_in_a_non_nullable_column() -> None:
    table, schema = one_column(ColumnSchema("charge", "float", False), [1.0, None, float("nan"), 4.0])
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        1: "column 'charge': value null, but the column is not nullable",
        2: "column 'charge': value nan, but the column is not nullable",
    }
    # The same values are fine where the schema allows nulls.
    table, schema = one_column(ColumnSchema("charge", "float", True), [1.0, None, float("nan"), 4.0])
    assert validate_table(table, schema, "t.parquet").rows_quarantined == 0


def test_values_outside_the_range_name_the_bound() -> None:
    spec = ColumnSchema("tenure", "integer", True, minimum=0, maximum=72)
    table, schema = one_column(spec, [0, -3, 72, 73, None])
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        1: "column 'tenure': value -3 below minimum 0",
        3: "column 'tenure': value 73 above maximum 72",
    }
    assert outcome.result["data"]["violations"]["range"] == 2


def test_an_unseen_category_is_quarantined_a_null_in_a_nullable_column_is_not() -> None:
    spec = ColumnSchema("contract", "string", True, categories=("One year", "Two year"))
    table, schema = one_column(spec, ["One year", "Weekly", None, "Two year", "one year"])
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        1: "column 'contract': value 'Weekly' not in the categories ['One year', 'Two year']",
        4: "column 'contract': value 'one year' not in the categories ['One year', 'Two year']",
    }


def test_duplicate_composite_keys_keep_the_first_occurrence() -> None:
    table = pa.table(
        {
            "shop": [1, 1, 1, 2, 1, None, None],
            "sku": ["x", "y", "x", "x", "x", "z", "z"],
            "qty": [5, 6, 7, 8, 9, 10, 11],
        }
    )
    schema = infer_schema(table, key_columns=["shop", "sku"])
    outcome = validate_table(table, schema, "stock.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        2: "key (shop, sku)=(1, 'x') duplicates row 0",
        4: "key (shop, sku)=(1, 'x') duplicates row 0",
    }
    # Null keys are the null check's business, not duplicates (here the schema allows them).
    assert outcome.valid["qty"].to_pylist() == [5, 6, 8, 10, 11]
    assert outcome.result["data"]["column_violations"] == {"shop, sku": {"duplicate_key": 2}}


def test_every_reason_of_a_row_is_listed_in_column_order() -> None:
    schema = DatasetSchema(
        columns=(
            ColumnSchema("id", "string", False),
            ColumnSchema("age", "integer", False, minimum=18),
            ColumnSchema("plan", "string", False, categories=("basic", "pro")),
        ),
        key_columns=("id",),
    )
    table = pa.table({"id": ["a", "a"], "age": [30, 5], "plan": ["basic", None]})
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert reasons_by_row(outcome.quarantine) == {
        1: "column 'age': value 5 below minimum 18; "
        "column 'plan': value null, but the column is not nullable; key id='a' duplicates row 0"
    }
    assert outcome.result["data"]["violations"] == {
        "type": 0,
        "null": 1,
        "range": 1,
        "category": 0,
        "duplicate_key": 1,
        "target_null": 0,
    }


def test_null_target_is_quarantined_and_classes_are_counted_after_filtering() -> None:
    table = pa.table({"x": [1, 2, 3, 4], "y": ["yes", None, "no", "no"]})
    schema = infer_schema(table, target_column="y")
    assert schema.column("y").nullable  # the reference had a null label
    outcome = validate_table(table, schema, "t.parquet", positive_label="yes", max_invalid_fraction=0.5)
    assert reasons_by_row(outcome.quarantine) == {1: "column 'y': value null, but the target needs a label"}
    assert outcome.result["data"]["target"] == {
        "column": "y",
        "classes": ["no", "yes"],
        "positive_label": "yes",
        "task": "binary",
    }


def test_one_class_target_is_a_data_error() -> None:
    table = pa.table({"tenure": [1, 2, 3], "Churn": ["No", "No", "Yes"]})
    schema = infer_schema(table, target_column="Churn").with_roles(target_column="Churn")
    only_no = pa.table({"tenure": [1, 2, 3], "Churn": ["No", "No", "Maybe"]})
    with pytest.raises(DataError) as caught:
        validate_table(only_no, schema, "data.parquet", max_invalid_fraction=0.5)
    assert str(caught.value) == (
        "data.parquet: target column 'Churn' has 1 class(es) ['No'] in the 2 valid rows; "
        "a binary classifier needs exactly 2"
    )
    with pytest.raises(DataError, match=r"positive_label 'yes' is not a class of target column 'Churn'"):
        validate_table(table, schema, "data.parquet", positive_label="yes")


def test_positive_label_without_a_target_is_a_parameter_error() -> None:
    table, schema = one_column(ColumnSchema("x", "integer", False), [1, 2])
    with pytest.raises(ParameterError, match="positive_label='yes' needs a target_column"):
        validate_table(table, schema, "t.parquet", positive_label="yes")


def test_messages_never_show_credentials_of_the_source(tmp_path: Path) -> None:
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1, None]}), data)
    schema = DatasetSchema(columns=(ColumnSchema("x", "integer", False),))
    schema.save(tmp_path / "s.json")
    paths = [tmp_path / name for name in ("v.parquet", "q.parquet", "s_out.json", "r.md")]
    with pytest.raises(ValidationFailedError) as caught:
        validate(
            str(data),
            *paths,
            schema_uri=str(tmp_path / "s.json"),
            source="s3://AKIAKEY:secret@bucket/batch.parquet?token=abc",
        )
    assert str(caught.value).startswith("s3://bucket/batch.parquet: 1 of 2 rows")
    assert "secret" not in str(caught.value) and "secret" not in paths[3].read_text()


def test_missing_columns_are_all_named_extra_columns_are_dropped_and_listed() -> None:
    schema = DatasetSchema(columns=tuple(ColumnSchema(name, "integer", False) for name in ("a", "b", "c")))
    with pytest.raises(SchemaMismatchError) as caught:
        validate_table(pa.table({"b": [1], "z": [2]}), schema, "new.parquet")
    message = str(caught.value)
    assert message.startswith("new.parquet: missing 2 column(s)")
    assert "'a', 'c'" in message

    table = pa.table({"c": [3], "note": ["hi"], "b": [2], "a": pa.array([1], pa.int8())})
    outcome = validate_table(table, schema, "new.parquet")
    assert outcome.valid.column_names == ["a", "b", "c"]  # schema order
    assert outcome.valid.schema == schema.arrow_schema()  # schema types, nullability declared
    assert outcome.result["data"]["extra_columns"] == ["note"]


# --- what a user relies on ------------------------------------------------------------------------


def test_nothing_is_lost_and_the_quarantine_keeps_original_values() -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "amount": ["10", "x", "30", "-1", "50", "7"],
            "comment": ["ok", "typo", None, "refund", "ok", "ok"],
        }
    )
    schema = DatasetSchema(
        columns=(ColumnSchema("id", "string", False), ColumnSchema("amount", "float", False, minimum=0.0)),
        key_columns=("id",),
    )
    outcome = validate_table(table, schema, "t.parquet", max_invalid_fraction=0.5)
    assert outcome.rows_valid + outcome.rows_quarantined == outcome.rows_in == 6
    assert outcome.quarantine.column_names == [
        "id",
        "amount",
        "comment",
        SOURCE_ROW_COLUMN,
        QUARANTINE_REASON_COLUMN,
    ]
    assert outcome.quarantine.select(["id", "amount", "comment", SOURCE_ROW_COLUMN]).to_pylist() == [
        {"id": "b", "amount": "x", "comment": "typo", SOURCE_ROW_COLUMN: 1},
        {"id": "d", "amount": "-1", "comment": "refund", SOURCE_ROW_COLUMN: 3},
    ]
    assert sorted(outcome.valid["id"].to_pylist() + outcome.quarantine["id"].to_pylist()) == list("abcdef")


def test_over_threshold_fails_naming_file_counts_and_top_violations_after_writing_quarantine(
    tmp_path: Path,
) -> None:
    data = tmp_path / "batch.parquet"
    pq.write_table(pa.table({"x": [1, 500, 2, 900, None], "k": ["a", "b", "c", "d", "e"]}), data)
    schema = DatasetSchema(columns=(ColumnSchema("x", "integer", False, minimum=0, maximum=100),))
    schema.save(tmp_path / "reference.json")
    out = {name: tmp_path / "out" / name for name in ("valid.parquet", "q.parquet", "schema.json", "report.md")}

    with pytest.raises(ValidationFailedError) as caught:
        validate(
            str(data),
            *out.values(),
            schema_uri=str(tmp_path / "reference.json"),
            max_invalid_fraction=0.2,
        )
    message = str(caught.value)
    assert message.startswith(f"{data}: 3 of 5 rows (60.00%) failed validation")
    assert "max_invalid_fraction=0.2 (20.00%)" in message
    assert "column 'x' range: 2 rows (first at row 1)" in message
    assert "column 'x' null: 1 rows (first at row 4)" in message
    assert str(out["q.parquet"]) in message
    # Written before the raise: nothing is lost, and the report says why.
    quarantine = pq.read_table(out["q.parquet"])
    assert quarantine[SOURCE_ROW_COLUMN].to_pylist() == [1, 3, 4]
    assert quarantine["k"].to_pylist() == ["b", "d", "e"]
    assert pq.read_table(out["valid.parquet"])["x"].to_pylist() == [1, 2]
    report = out["report.md"].read_text()
    assert "**Result: FAILED**" in report and "value 900 above maximum 100" in report
    assert DatasetSchema.load(out["schema.json"]) == schema


def test_clean_data_still_writes_an_empty_quarantine_with_the_right_columns(tmp_path: Path) -> None:
    data = tmp_path / "clean.parquet"
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), data)
    paths = [tmp_path / name for name in ("v.parquet", "q.parquet", "s.json", "r.md")]
    outcome = validate(str(data), *paths)
    quarantine = pq.read_table(paths[1])
    assert quarantine.num_rows == 0
    assert quarantine.column_names == ["x", "y", SOURCE_ROW_COLUMN, QUARANTINE_REASON_COLUMN]
    assert quarantine.schema.field(SOURCE_ROW_COLUMN).type == pa.int64()
    assert outcome.is_valid and outcome.rows_valid == 2
    assert DatasetSchema.load(paths[2]).schema_hash() == outcome.schema_hash


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_invalid_fraction": 1.5}, r"max_invalid_fraction=1\.5: expected a number in \[0, 1\]"),
        ({"max_invalid_fraction": -0.1}, r"max_invalid_fraction=-0\.1"),
        ({"max_categories": 0}, r"max_categories=0: expected an integer >= 1"),
    ],
)
def test_parameters_out_of_range(tmp_path: Path, arguments: dict, message: str) -> None:
    paths = [str(tmp_path / name) for name in ("d.parquet", "v.parquet", "q.parquet", "s.json", "r.md")]
    with pytest.raises(ParameterError, match=message):
        validate(*paths, **arguments)


def test_report_and_metrics_agree_with_the_result() -> None:
    table, schema = one_column(ColumnSchema("n", "integer", False, maximum=10), [1, 20, 3, 30])
    outcome = validate_table(table, schema, "t.parquet", raise_on_failure=False)
    assert not outcome.is_valid
    report = render_report(outcome.result)
    assert report.startswith("# Validation report: t.parquet")
    assert "| quarantined | 2 | 50.00% |" in report
    assert "| n | range | 2 | 1 |" in report
    assert "| 3 | column 'n': value 30 above maximum 10 |" in report
    assert outcome.metrics == {
        "rows_in": 4,
        "rows_valid": 2,
        "rows_quarantined": 2,
        "invalid_fraction": 0.5,
        **{f"quarantined_{check}": 2 if check == "range" else 0 for check in CHECKS},
    }
    json.dumps(outcome.result)  # the structured result is plain JSON


# --- the real Telco data --------------------------------------------------------------------------


def test_telco_validates_against_its_own_schema_with_nothing_quarantined(
    telco: tuple[pa.Table, DatasetSchema],
) -> None:
    table, schema = telco
    outcome = validate_table(table, schema, "telco.parquet", positive_label=TELCO_CHURN_POSITIVE_LABEL)
    assert (outcome.rows_in, outcome.rows_valid, outcome.rows_quarantined) == (7043, 7043, 0)
    assert outcome.valid.column_names == table.column_names
    assert outcome.valid.cast(table.schema).equals(table)
    assert outcome.result["data"]["target"]["classes"] == ["No", "Yes"]


def test_telco_with_injected_problems_quarantines_exactly_those_rows(
    telco: tuple[pa.Table, DatasetSchema],
) -> None:
    table, schema = telco
    columns = {name: table[name].to_pylist() for name in table.column_names}
    columns["gender"][5] = columns["gender"][6] = None
    columns["tenure"][10] = -3
    columns["Contract"][20] = "Weekly"
    columns["customerID"][30] = columns["customerID"][2]
    # MonthlyCharges arrives as text, one value of it not a number.
    columns["MonthlyCharges"] = pc.cast(table["MonthlyCharges"], pa.string()).to_pylist()
    columns["MonthlyCharges"][40] = "n/a"
    broken = pa.table(
        {
            name: pa.array(values, pa.string() if name == "MonthlyCharges" else table.schema.field(name).type)
            for name, values in columns.items()
        }
    )

    outcome = validate_table(broken, schema, "telco_broken.parquet", positive_label=TELCO_CHURN_POSITIVE_LABEL)

    first_id = table["customerID"][2].as_py()
    assert reasons_by_row(outcome.quarantine) == {
        5: "column 'gender': value null, but the column is not nullable",
        6: "column 'gender': value null, but the column is not nullable",
        10: "column 'tenure': value -3 below minimum 0",
        20: "column 'Contract': value 'Weekly' not in the categories ['Month-to-month', 'One year', 'Two year']",
        30: f"key customerID='{first_id}' duplicates row 2",
        40: "column 'MonthlyCharges': value 'n/a' is not a valid float",
    }
    assert outcome.rows_valid == 7043 - 6
    # The text that parsed is the same number as before.
    kept = pc.invert(pc.is_in(pa.array(range(7043)), value_set=pa.array([5, 6, 10, 20, 30, 40])))
    assert outcome.valid["MonthlyCharges"].equals(table["MonthlyCharges"].filter(kept))
    assert outcome.result["data"]["violations"] == {
        "type": 1,
        "null": 2,
        "range": 1,
        "category": 1,
        "duplicate_key": 1,
        "target_null": 0,
    }


def test_telco_end_to_end_against_a_saved_reference_schema(
    telco: tuple[pa.Table, DatasetSchema], tmp_path: Path
) -> None:
    table, schema = telco
    schema.save(tmp_path / "reference.json")
    batch = table.slice(0, 100).set_column(
        table.column_names.index("tenure"),
        "tenure",
        pa.array([-1] * 10 + table["tenure"][10:100].to_pylist()),
    )
    pq.write_table(batch, tmp_path / "batch.parquet")
    paths = [tmp_path / name for name in ("valid.parquet", "quarantine.parquet", "schema.json", "report.md")]
    outcome = validate(
        str(tmp_path / "batch.parquet"),
        *paths,
        schema_uri=str(tmp_path / "reference.json"),
        positive_label=TELCO_CHURN_POSITIVE_LABEL,
        max_invalid_fraction=0.1,
    )
    assert (outcome.rows_valid, outcome.rows_quarantined) == (90, 10)
    assert outcome.schema_hash == schema.schema_hash()
    assert pq.read_table(paths[0]).num_rows == 90
    assert (tmp_path / "schema.json").read_bytes() == (tmp_path / "reference.json").read_bytes()


# --- entry points ---------------------------------------------------------------------------------


def cli_arguments(dataset: Path, folder: Path) -> list[str]:
    arguments = ["--dataset", str(dataset)]
    for flag in ("--valid-out", "--quarantine-out", "--schema-out", "--report-out"):
        arguments += [flag, str(folder / flag.strip("-"))]
    return arguments


def test_cli_bad_input_exits_non_zero_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.parquet"
    result = CliRunner().invoke(validate_cli, cli_arguments(missing, tmp_path))
    assert result.exit_code == 1
    assert f"error: {missing}: file not found" in result.output
    assert "Traceback" not in result.output


def test_cli_prints_the_result_and_fails_over_the_threshold(tmp_path: Path) -> None:
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "a"], "x": [1, 2, 3]}), data)
    arguments = [*cli_arguments(data, tmp_path), "--key-column", "id"]

    passed = CliRunner().invoke(validate_cli, [*arguments, "--max-invalid-fraction", "0.5"])
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.output)["data"]["rows_quarantined"] == 1

    failed = CliRunner().invoke(validate_cli, [*arguments, "--max-invalid-fraction", "0.1"])
    assert failed.exit_code == 1
    assert f"error: {data}: 1 of 3 rows (33.33%) failed validation" in failed.output
    assert pq.read_table(tmp_path / "quarantine-out").num_rows == 1


def test_component_interface() -> None:
    from mlkeel.components.validate.component import validate as component

    spec = component.component_spec
    assert {name: spec.outputs[name].type for name in spec.outputs} == {
        "valid": "system.Dataset@0.0.1",
        "quarantine": "system.Dataset@0.0.1",
        "schema": "system.Artifact@0.0.1",
        "report": "system.Markdown@0.0.1",
        "metrics": "system.Metrics@0.0.1",
        "rows_valid": "Integer",
        "rows_quarantined": "Integer",
        "schema_hash": "String",
    }
    assert spec.inputs["dataset"].type == "system.Dataset@0.0.1"
    assert spec.inputs["max_invalid_fraction"].default == DEFAULT_MAX_INVALID_FRACTION
    assert spec.inputs["max_categories"].default == DEFAULT_MAX_CATEGORIES


def test_importing_the_logic_and_the_schema_stays_cheap() -> None:
    probe = (
        "import sys, mlkeel.components.validate.logic, mlkeel.schema; "
        "print(','.join(m for m in ('kfp', 'pandas', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_component_runs_under_kfp_local(tmp_path: Path) -> None:
    # Runs the component's source in a subprocess as a cluster would, so it catches a name the shell uses that
    # KFP does not ship (only the function travels). Move to the shared kfp.local fixture once there is one.
    from kfp import dsl, local

    from mlkeel.components.validate.component import validate as component

    data = tmp_path / "batch.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]}), data)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def validate_batch():  # no return annotation: this module's annotations are strings, which KFP rejects
        batch = dsl.importer(artifact_uri=str(data), artifact_class=dsl.Dataset)
        component(dataset=batch.output, key_columns=["id"], max_invalid_fraction=0.5)

    validate_batch()
    (step,) = (tmp_path / "root").glob("validate-batch-*/validate")
    assert reasons_by_row(pq.read_table(step / "quarantine")) == {2: "key id='a' duplicates row 0"}
    outputs = json.loads((step / "executor_output.json").read_text())
    assert outputs["parameterValues"]["rows_quarantined"] == 1
    assert outputs["parameterValues"]["schema_hash"].startswith("sha256:")


def test_reasons_are_joined_row_by_row_even_where_no_check_has_one() -> None:
    """pyarrow 25's one-call join drops all-null rows; the join then falls back and keeps every row in place."""
    import pyarrow as pa

    from mlkeel.components.validate.logic import _join_reasons

    first = pa.array(["a", None, None, "d"])
    second = pa.array([None, "b", None, "e"])
    assert _join_reasons([first, second]).to_pylist() == ["a", "b", None, "d; e"]
    assert _join_reasons([first, pa.array(["x", "b", "c", None])]).to_pylist() == ["a; x", "b", "c", "d"]
