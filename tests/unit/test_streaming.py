"""Streaming (record batches, one feature at a time) gives what reading whole files gives: validate and drift.

The in-memory paths are the reference: on data that fits, the streamed outcome must be the same counts, the
same quarantined rows with the same reasons in the same order, the same valid rows, and the same drift
decisions and p-values. Batches are made small so that every check crosses batch boundaries (a duplicate key
whose first occurrence is in an earlier batch, violations first seen in a later batch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mlkeel.components.drift import logic as drift_logic
from mlkeel.components.drift.logic import detect_drift, detect_drift_streaming, drift
from mlkeel.components.validate import logic as validate_logic
from mlkeel.components.validate.logic import validate, validate_streaming, validate_table
from mlkeel.constants import QUARANTINE_REASON_COLUMN, SCHEMA_FORMAT_VERSION, SOURCE_ROW_COLUMN
from mlkeel.data import TELCO_CHURN_KEY, TELCO_CHURN_POSITIVE_LABEL, TELCO_CHURN_TARGET
from mlkeel.errors import ValidationFailedError
from mlkeel.schema import DatasetSchema, infer_schema
from tests.fixtures_flights import FLIGHTS

BATCH_ROWS = 1_000


def _set(table: pa.Table, name: str, rows: dict[int, object]) -> pa.Table:
    values = table[name].to_pylist()
    for row, value in rows.items():
        values[row] = value
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, table.schema.field(name).type))


@pytest.fixture(scope="module")
def telco_with_problems(tmp_path_factory: pytest.TempPathFactory, telco_parquet: Path) -> tuple[Path, Path]:
    """(data, schema): the Telco rows with faults spread over the batches; a schema inferred from rows 0-2999."""
    table = pq.read_table(telco_parquet)
    folder = tmp_path_factory.mktemp("streaming")
    schema = infer_schema(table.slice(0, 3_000), [TELCO_CHURN_KEY], TELCO_CHURN_TARGET)
    schema_path = folder / "schema.json"
    schema.save(schema_path)
    keys = table[TELCO_CHURN_KEY].to_pylist()
    table = _set(table, TELCO_CHURN_KEY, {6_000 + i: keys[i] for i in range(10)} | {6_500: keys[5_100]})
    table = _set(table, "tenure", {5_000: -5, 5_001: 10_000})
    table = _set(table, "Contract", {4_000: "Ten year", 4_001: None})
    table = _set(table, "MonthlyCharges", {3_000: None, 999: float("nan"), 1_000: None})
    path = folder / "telco-problems.parquet"
    pq.write_table(table, path)
    return path, schema_path


def _same(left: pa.Table, right: pa.Table) -> bool:
    """Same schema and values, NaN equal to NaN (Arrow's ``equals`` says NaN differs from itself)."""
    return left.schema == right.schema and left.to_pandas().equals(right.to_pandas())


def _validate_both(tmp_path: Path, data: Path, schema_uri: str, **kwargs: object) -> tuple[object, object]:
    outcomes = []
    for mode in ("memory", "stream"):
        paths = {name: tmp_path / mode / name for name in ("valid.parquet", "quarantine.parquet", "schema.json")}
        paths["valid.parquet"].parent.mkdir(exist_ok=True)
        common = dict(source="data", key_columns=[TELCO_CHURN_KEY], target_column=TELCO_CHURN_TARGET, **kwargs)
        if mode == "memory":
            outcome = validate(
                str(data),
                paths["valid.parquet"],
                paths["quarantine.parquet"],
                paths["schema.json"],
                tmp_path / mode / "report.md",
                schema_uri=schema_uri,
                streaming=False,
                **common,
            )
        else:
            schema = (
                DatasetSchema.load(schema_uri).with_roles([TELCO_CHURN_KEY], TELCO_CHURN_TARGET) if schema_uri else None
            )
            outcome = validate_streaming(
                str(data),
                paths["valid.parquet"],
                paths["quarantine.parquet"],
                schema,
                batch_rows=BATCH_ROWS,
                **common,
            )
        outcomes.append(outcome)
    return outcomes[0], outcomes[1]


def test_streamed_validation_quarantines_the_same_rows_for_the_same_reasons(
    tmp_path: Path, telco_with_problems: tuple[Path, Path]
) -> None:
    data, schema_path = telco_with_problems
    memory, stream = _validate_both(tmp_path, data, str(schema_path), positive_label=TELCO_CHURN_POSITIVE_LABEL)

    assert stream.result == memory.result
    assert memory.result["data"]["column_violations"] == {
        "customerID": {"duplicate_key": 11},
        "tenure": {"range": 2},
        "Contract": {"null": 1, "category": 1},
        "MonthlyCharges": {"null": 3, "range": 2},  # above the maximum of rows 0-2999
        "TotalCharges": {"range": 4},
    }
    quarantine_memory = pq.read_table(tmp_path / "memory" / "quarantine.parquet")
    quarantine_stream = pq.read_table(tmp_path / "stream" / "quarantine.parquet")
    assert _same(quarantine_stream, quarantine_memory)
    rows = quarantine_stream[SOURCE_ROW_COLUMN].to_pylist()
    assert rows == sorted(rows) and {999, 1_000, 3_000, 4_000, 5_000, 5_001, 6_000, 6_009, 6_500} <= set(rows)
    reasons = dict(zip(rows, quarantine_stream[QUARANTINE_REASON_COLUMN].to_pylist(), strict=True))
    # The key's first occurrence is 6 batches earlier: the reason names it.
    assert reasons[6_000].endswith("duplicates row 0")
    assert "below minimum 0" in reasons[5_000]
    assert "'Ten year' not in the categories" in reasons[4_000]
    assert _same(
        pq.read_table(tmp_path / "stream" / "valid.parquet"), pq.read_table(tmp_path / "memory" / "valid.parquet")
    )
    # The streamed outcome keeps no rows in memory: they are in the files.
    assert stream.valid.num_rows == 0 and stream.valid.schema == memory.valid.schema


def test_streamed_validation_infers_the_schema_the_whole_file_gives(
    tmp_path: Path, telco_with_problems: tuple[Path, Path]
) -> None:
    data, _ = telco_with_problems
    memory, stream = _validate_both(tmp_path, data, "")

    assert stream.schema == memory.schema
    assert stream.schema.column("Contract").categories == ("Month-to-month", "One year", "Ten year", "Two year")
    assert stream.schema.column("tenure").minimum == -5 and stream.schema.column("MonthlyCharges").nullable
    assert stream.result == memory.result
    assert memory.result["data"]["violations"]["duplicate_key"] == 11


def test_validate_streams_large_files_by_itself_and_fails_the_same_way(
    tmp_path: Path, telco_with_problems: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, schema_path = telco_with_problems
    monkeypatch.setattr(validate_logic, "STREAMING_MIN_ROWS", 5_000)
    monkeypatch.setattr(validate_logic, "STREAM_BATCH_ROWS", BATCH_ROWS)
    with pytest.raises(ValidationFailedError, match=r"quarantined rows and their reasons are in .*quarantine"):
        validate(
            str(data),
            tmp_path / "valid.parquet",
            tmp_path / "quarantine.parquet",
            tmp_path / "schema.json",
            tmp_path / "report.md",
            schema_uri=str(schema_path),
            max_invalid_fraction=0.001,
        )
    quarantined = pq.read_table(tmp_path / "quarantine.parquet")
    assert quarantined.num_rows == pq.read_table(data).num_rows - pq.read_table(tmp_path / "valid.parquet").num_rows
    assert "duplicate_key" in (tmp_path / "report.md").read_text()


# --- drift ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights_files(
    tmp_path_factory: pytest.TempPathFactory, flights_reference: pa.Table, flights_drifted: pa.Table
) -> dict[str, Path]:
    """Parquet files: winter flights, summer flights, and winter's second half with nulls and a new carrier."""
    folder = tmp_path_factory.mktemp("streaming-drift")
    order = np.random.default_rng(0).permutation(flights_reference.num_rows)
    middle = flights_reference.num_rows // 2
    first, second = flights_reference.take(order[:middle]), flights_reference.take(order[middle:])
    distance = pc.if_else(pc.equal(pc.bit_wise_and(second["flight_id"], 63), 0), None, second["distance"])
    second = second.set_column(second.schema.get_field_index("distance"), "distance", distance)
    carrier = pc.if_else(pc.equal(pc.bit_wise_and(second["flight_id"], 511), 1), "ZZ", second["carrier"])
    second = second.set_column(second.schema.get_field_index("carrier"), "carrier", carrier)
    files = {"reference": flights_reference, "drifted": flights_drifted, "first": first, "second": second}
    for name, table in files.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return {name: folder / f"{name}.parquet" for name in files}


def _agree(memory: dict, stream: dict) -> None:
    assert stream["data"]["is_drift"] == memory["data"]["is_drift"]
    assert stream["data"]["drifted_features"] == memory["data"]["drifted_features"]
    assert stream["data"]["psi_drifted_features"] == memory["data"]["psi_drifted_features"]
    assert stream["data"]["threshold"] == pytest.approx(memory["data"]["threshold"], rel=1e-6)
    assert list(stream["data"]["features"]) == list(memory["data"]["features"])
    for name, expected in memory["data"]["features"].items():
        got = stream["data"]["features"][name]
        assert got["drift"] == expected["drift"], name
        assert got["p_value"] == pytest.approx(expected["p_value"], rel=1e-5, abs=1e-30), name
        assert got["statistic"] == pytest.approx(expected["statistic"], rel=1e-5), name
        for key in ("psi", "null_share_reference", "null_share_current", "unseen_share"):
            assert got[key] == pytest.approx(expected[key], rel=1e-9), (name, key)
        assert got["unseen_categories"] == expected["unseen_categories"]
    for key in ("reference_rows", "current_rows", "reference_rows_given", "current_rows_given", "n_features"):
        assert stream["data"][key] == memory["data"][key]
    assert stream["meta"] == memory["meta"]


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_streamed_drift_finds_the_summer_drift_with_the_same_p_values(
    flights_files: dict[str, Path], correction: str
) -> None:
    reference, current = str(flights_files["reference"]), str(flights_files["drifted"])
    arguments = dict(exclude_columns=FLIGHTS["exclude_columns"], correction=correction)
    memory = detect_drift(pq.read_table(reference), pq.read_table(current), **arguments)
    stream = detect_drift_streaming(reference, current, **arguments)
    _agree(memory, stream)
    assert stream["data"]["is_drift"] and {"dest", "distance"} <= set(stream["data"]["drifted_features"])


def test_streamed_drift_agrees_on_stable_data_with_nulls_and_an_unseen_category(flights_files: dict[str, Path]) -> None:
    reference, current = str(flights_files["first"]), str(flights_files["second"])
    arguments = dict(exclude_columns=FLIGHTS["exclude_columns"], categorical_columns=["hour"])
    memory = detect_drift(pq.read_table(reference), pq.read_table(current), **arguments)
    stream = detect_drift_streaming(reference, current, **arguments)
    _agree(memory, stream)
    features = stream["data"]["features"]
    assert features["distance"]["null_share_current"] > 0.01 and features["carrier"]["unseen_categories"] == ["ZZ"]
    assert features["hour"]["test"] == "chi2"


def test_streamed_drift_with_max_rows_compares_the_same_seeded_sample(flights_files: dict[str, Path]) -> None:
    reference, current = str(flights_files["reference"]), str(flights_files["drifted"])
    arguments = dict(exclude_columns=FLIGHTS["exclude_columns"], max_rows=5_000, seed=3)
    memory = detect_drift(pq.read_table(reference), pq.read_table(current), **arguments)
    stream = detect_drift_streaming(reference, current, **arguments)
    assert stream == memory


def test_drift_streams_large_files_by_itself(
    tmp_path: Path, flights_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, current = str(flights_files["reference"]), str(flights_files["drifted"])
    arguments = dict(exclude_columns=FLIGHTS["exclude_columns"], reference_source="winter", current_source="summer")
    memory = drift(reference, current, tmp_path / "memory.json", tmp_path / "memory.html", streaming=False, **arguments)
    monkeypatch.setattr(drift_logic, "STREAMING_MIN_ROWS", 1_000)
    # The streamed path never builds TabularDrift's matrices: were it taken, this would not be called.
    monkeypatch.setattr(drift_logic, "_null_aware_tabular_drift", None)
    stream = drift(reference, current, tmp_path / "stream.json", tmp_path / "stream.html", **arguments)
    _agree(memory, stream)
    assert json.loads((tmp_path / "stream.json").read_text()) == stream
    report = (tmp_path / "stream.html").read_text()
    assert report.count("<figure>") == (tmp_path / "memory.html").read_text().count("<figure>") > 0


def test_streamed_drift_reads_batch_by_batch_with_the_in_memory_answer_for_every_column_kind(tmp_path: Path) -> None:
    # Small row groups: every feature spans many record batches (numeric filled batch by batch, categories
    # counted batch by batch), with nulls, booleans, dictionaries, times, and a category only one side has.
    rng = np.random.default_rng(7)

    def table(rows: int, shift: float, carriers: list[str]) -> pa.Table:
        amount = rng.normal(shift, 1.0, rows)
        return pa.table(
            {
                "amount": pa.array(amount, mask=rng.random(rows) < 0.05),
                "count": pa.array(rng.poisson(3, rows), pa.int64()),
                "flag": pa.array(rng.random(rows) < 0.3 + shift / 4),
                "carrier": pa.array(rng.choice(carriers, rows)).dictionary_encode(),
                "when": pa.array(rng.integers(0, 10**6, rows), pa.timestamp("s")),
                "note": pa.array(np.where(rng.random(rows) < 0.2, None, rng.choice(["a", "b"], rows))),
            }
        )

    reference, current = table(30_000, 0.0, ["AA", "B6", "DL"]), table(20_000, 0.3, ["AA", "B6", "ZZ"])
    paths = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    pq.write_table(reference, paths[0], row_group_size=4_000)
    pq.write_table(current, paths[1], row_group_size=3_000)

    memory = detect_drift(pq.read_table(paths[0]), pq.read_table(paths[1]), categorical_columns=["count"])
    stream = detect_drift_streaming(str(paths[0]), str(paths[1]), categorical_columns=["count"])

    _agree(memory, stream)
    assert stream == memory  # every figure, to the last digit
    assert {"amount", "flag", "carrier"} <= set(stream["data"]["drifted_features"])
    assert stream["data"]["features"]["carrier"]["unseen_categories"] == ["ZZ"]


def test_categorical_columns_read_dictionary_encoded_give_the_plain_read_outcome(
    telco_with_problems: tuple[Path, Path],
) -> None:
    """validate reads categorical text dictionary-encoded (checked per distinct value): nothing a user sees changes."""
    data, schema_path = telco_with_problems
    schema = DatasetSchema.load(schema_path).with_roles([TELCO_CHURN_KEY], TELCO_CHURN_TARGET)
    encoded = validate_logic.read_dataset(str(data), schema)
    assert pa.types.is_dictionary(encoded.schema.field("Contract").type)
    assert not pa.types.is_dictionary(encoded.schema.field(TELCO_CHURN_KEY).type)  # a key is read plain

    from_plain = validate_table(pq.read_table(data), schema, "data", raise_on_failure=False)
    from_encoded = validate_table(encoded, schema, "data", raise_on_failure=False)

    assert from_encoded.result == from_plain.result
    assert from_plain.result["data"]["column_violations"]["Contract"] == {"null": 1, "category": 1}
    assert from_encoded.valid.schema == from_plain.valid.schema  # plain string columns out, not dictionaries
    assert _same(from_encoded.valid, from_plain.valid)
    assert from_encoded.quarantine.schema == from_plain.quarantine.schema
    assert _same(from_encoded.quarantine, from_plain.quarantine)


def test_an_unknown_category_only_in_the_dictionary_quarantines_nothing() -> None:
    """A dictionary may list values no row uses (a writer's leftovers): only the rows' values are checked."""
    schema = DatasetSchema.from_dict(
        {
            "format_version": SCHEMA_FORMAT_VERSION,
            "columns": [{"name": "colour", "type": "string", "nullable": False, "categories": ["blue", "red"]}],
        }
    )
    dictionary = pa.array(["blue", "red", "green"])
    unused = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1, 0], pa.int32()), dictionary)
    used = pa.DictionaryArray.from_arrays(pa.array([0, 2, 1, None], pa.int32()), dictionary)

    clean = validate_table(pa.table({"colour": unused}), schema, "data", raise_on_failure=False)
    assert clean.rows_quarantined == 0 and clean.valid["colour"].to_pylist() == ["blue", "red", "red", "blue"]

    faulty = validate_table(pa.table({"colour": used}), schema, "data", raise_on_failure=False)
    assert faulty.quarantine[SOURCE_ROW_COLUMN].to_pylist() == [1, 3]
    assert faulty.quarantine[QUARANTINE_REASON_COLUMN].to_pylist() == [
        "column 'colour': value 'green' not in the categories ['blue', 'red']",
        "column 'colour': value null, but the column is not nullable",
    ]
    assert faulty.valid.schema.field("colour").type == pa.string()
