"""Ingest on the real Telco file and on the bad inputs a user brings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.components.ingest.logic import fingerprint_table, ingest, normalise_table, read_source
from mlkeel.errors import DataError, ParameterError


def test_telco_is_read_with_inferred_types_and_real_missing_values(telco_csv: Path, tmp_path: Path) -> None:
    result = ingest(str(telco_csv), str(tmp_path / "out.parquet"))
    table = pq.read_table(tmp_path / "out.parquet")
    assert (result.num_rows, len(result.column_types)) == (7043, 21)
    assert result.column_types["tenure"] == "integer"
    assert result.column_types["MonthlyCharges"] == "float"
    # " " in the export means "no value yet" for 11 brand-new customers: null, and the column stays numeric.
    assert result.column_types["TotalCharges"] == "float"
    assert table.column("TotalCharges").null_count == 11
    assert result.column_types["Churn"] == "string"
    assert result.metadata["fingerprint"].startswith("sha256:") and len(result.fingerprint) == 71


def test_fingerprint_is_the_same_for_the_same_content_in_another_format_and_order(
    telco_csv: Path, tmp_path: Path
) -> None:
    from_csv = ingest(str(telco_csv), str(tmp_path / "a.parquet")).fingerprint
    # The same rows, shuffled, saved by pandas as Parquet (with its index and " " kept as text).
    frame = pd.read_csv(telco_csv).sample(frac=1.0, random_state=7)
    frame.to_parquet(tmp_path / "shuffled.parquet")
    from_parquet = ingest(str(tmp_path / "shuffled.parquet"), str(tmp_path / "b.parquet")).fingerprint
    also_uri = ingest((tmp_path / "shuffled.parquet").as_uri(), str(tmp_path / "c.parquet")).fingerprint
    assert from_csv == from_parquet == also_uri


def test_fingerprint_changes_when_one_value_changes(telco_csv: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(telco_csv)
    frame.loc[100, "MonthlyCharges"] += 0.01
    frame.to_csv(tmp_path / "edited.csv", index=False)
    original = ingest(str(telco_csv), str(tmp_path / "a.parquet")).fingerprint
    assert ingest(str(tmp_path / "edited.csv"), str(tmp_path / "b.parquet")).fingerprint != original


def test_type_overrides_apply_and_name_the_row_of_an_unparsable_value(tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_text("id,amount,zip\n1,10.5,02134\n2,abc,90210\n3,7,10001\n")
    table = normalise_table(read_source(str(csv)).table, "orders.csv", {"zip": "string"})
    assert table.column("zip").to_pylist() == ["2134", "90210", "10001"] or table.column("zip").type == pa.string()
    with pytest.raises(DataError, match=r"orders\.csv: column 'amount', row 1 .*'abc' as float"):
        normalise_table(read_source(str(csv)).table, "orders.csv", {"amount": "float"})


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "absent.csv", r"absent\.csv: file not found"),
        (b"", "empty.csv", r"empty\.csv: file is empty"),
        (
            b"a,b,target\n",
            "header_only.csv",
            r"header_only\.csv: has a header \(3 columns\) but no data rows",
        ),
        (
            b"a,b\n1,\n2,\n",
            "all_null.csv",
            r"all_null\.csv: column\(s\) 'b' have no value in any of the 2 rows",
        ),
        (b"a,a\n1,2\n", "dupes.csv", r"dupes\.csv: duplicate column names: a"),
        (b"PAR1\x00\x01garbage", "broken.parquet", r"broken\.parquet: not a readable PARQUET file"),
        (b"a,b\n1,2\n", "data.xlsx", r"data\.xlsx: cannot tell the file format"),
    ],
)
def test_bad_input_gets_an_error_that_names_the_file(
    tmp_path: Path, content: bytes | None, name: str, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises((DataError, ParameterError), match=message):
        ingest(str(path), str(tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists()


def test_truncated_parquet_is_rejected(telco_parquet: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(telco_parquet.read_bytes()[: telco_parquet.stat().st_size // 2])
    with pytest.raises(DataError, match=r"truncated\.parquet: not a readable PARQUET file \(corrupted or truncated"):
        ingest(str(truncated), str(tmp_path / "out.parquet"))


def test_fingerprint_ignores_row_order_but_not_column_names() -> None:
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    reordered = table.take([2, 0, 1])
    renamed = table.rename_columns(["a", "c"])
    assert fingerprint_table(table) == fingerprint_table(reordered)
    assert fingerprint_table(table) != fingerprint_table(renamed)


def test_module_entry_point_prints_the_fingerprint_and_fails_cleanly(telco_csv: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mlkeel.components.ingest", "--output", str(tmp_path / "o.parquet")]
    ok = subprocess.run([*command, "--source", str(telco_csv)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert '"num_rows": 7043' in ok.stdout and '"fingerprint": "sha256:' in ok.stdout
    bad = subprocess.run([*command, "--source", str(tmp_path / "nope.csv")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: file not found"


@pytest.mark.parametrize(("name", "delimiter"), [("semicolon", ";"), ("tab", "\t"), ("pipe", "|")])
def test_the_delimiter_is_detected(telco_csv: Path, tmp_path: Path, name: str, delimiter: str) -> None:
    """A semicolon-separated export (Excel in much of Europe) used to be read as one column."""
    import pyarrow.csv as pacsv

    rows = pacsv.read_csv(telco_csv).slice(0, 500)
    source = tmp_path / f"telco_{name}.csv"
    pacsv.write_csv(rows, source, pacsv.WriteOptions(delimiter=delimiter, quoting_style="none"))
    result = ingest(str(source), str(tmp_path / "out.parquet"))
    assert result.num_rows == 500 and len(result.column_types) == 21
    assert result.column_types["tenure"] == "integer" and result.column_types["MonthlyCharges"] == "float"
    assert result.delimiter == name and result.metadata["delimiter"] == name
    same = ingest(str(source), str(tmp_path / "again.parquet"), delimiter=name)
    assert same.fingerprint == result.fingerprint


def test_a_european_export_with_decimal_commas_keeps_its_numbers(telco_csv: Path, tmp_path: Path) -> None:
    """pandas' ``sep=';', decimal=','``, as a spreadsheet in most of Europe writes it: charges stay numbers."""
    import pandas as pd

    frame = pd.read_csv(telco_csv, nrows=300)
    source = tmp_path / "telco_eu.csv"
    frame.to_csv(source, sep=";", decimal=",", index=False)
    assert "29,85" in source.read_text()  # the export really has decimal commas
    result = ingest(str(source), str(tmp_path / "out.parquet"))
    assert result.delimiter == "semicolon"
    assert result.column_types["MonthlyCharges"] == "float" and result.column_types["customerID"] == "string"
    read = pd.read_parquet(tmp_path / "out.parquet")
    assert read["MonthlyCharges"].tolist() == frame["MonthlyCharges"].tolist()


def test_a_one_column_read_of_a_delimited_file_names_the_delimiter(telco_csv: Path, tmp_path: Path) -> None:
    import pyarrow.csv as pacsv

    source = tmp_path / "telco_semicolon.csv"
    pacsv.write_csv(pacsv.read_csv(telco_csv).slice(0, 50), source, pacsv.WriteOptions(delimiter=";"))
    with pytest.raises(
        DataError,
        match=r"telco_semicolon.csv: read as one column .* with delimiter comma, but the "
        r"header holds semicolon characters; pass delimiter='semicolon'",
    ):
        ingest(str(source), str(tmp_path / "out.parquet"), delimiter=",")
    with pytest.raises(ParameterError, match="delimiter='::': expected 'auto', one character"):
        ingest(str(source), str(tmp_path / "out.parquet"), delimiter="::")


def test_a_nested_parquet_column_is_named_not_a_traceback(telco_parquet: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pq.read_table(telco_parquet).slice(0, 100)
    services = pa.array(
        [
            [phone, internet]
            for phone, internet in zip(
                table["PhoneService"].to_pylist(), table["InternetService"].to_pylist(), strict=True
            )
        ]
    )
    nested = table.append_column("services", services).append_column(
        "plan", pc.make_struct(table["Contract"], table["PaymentMethod"], field_names=["contract", "payment"])
    )
    pq.write_table(nested, tmp_path / "nested.parquet")
    with pytest.raises(
        DataError,
        match=r"nested.parquet: column\(s\) 'services' \(list<element: string>\), 'plan' "
        r"\(struct<contract: string, payment: string>\) hold nested values",
    ):
        ingest(str(tmp_path / "nested.parquet"), str(tmp_path / "out.parquet"))
