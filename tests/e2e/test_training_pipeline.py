"""The training pipeline end to end under kfp.local, as a user runs it: three runs against one local registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlkeel.constants import (
    CHAMPION_ALIAS,
    PREVIOUS_CHAMPION_ALIAS,
    QUARANTINE_REASON_COLUMN,
    RUN_GOVERNANCE_ARTIFACT_DIR,
    SOURCE_ROW_COLUMN,
    LineageTag,
)
from mlkeel.local import PipelineRunFailed, run_training
from tests.e2e.registry import registry

pytestmark = pytest.mark.pipeline

BUNDLED = {
    "target_column": "Churn",
    "positive_label": "Yes",
    "key_columns": ["customerID"],
    "model_name": "churn",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlkeel-work")


def run_cli(*args: str) -> str:
    """``python -m mlkeel.cli run training --local ARGS``, as a user types it; fails with its output's end."""
    completed = subprocess.run(
        [sys.executable, "-m", "mlkeel.cli", "run", "training", "--local", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def holdout_metric(summary: str, name: str) -> str:
    """A metric of the summary's ``holdout metrics`` line, as printed (task logs above it hold other metrics)."""
    line = summary.split("holdout metrics  : ")[1].splitlines()[0]
    return line.split(f"{name} ")[1].split()[0].rstrip(",")


def test_first_run_from_the_cli_registers_a_champion_with_lineage(workdir: Path) -> None:
    summary = run_cli(
        "--workdir",
        str(workdir),
        "--model-name",
        "churn",
        # The champion of this module: a random forest, which the default gradient boosting beats below.
        "--estimator",
        "random_forest",
    )
    (workdir / "first-run.txt").write_text(summary)  # for the next test, which reads what a user saw
    assert "validation       : 7043 rows in, 7043 valid, 0 quarantined" in summary
    assert "gate             : Blessed on thresholds only: no model named 'churn' is registered yet" in summary
    assert "and the fairness check passed." in summary
    assert "fairness         : Fairness passed: gender demographic_parity_difference 0.0" in summary
    assert "top features     : Contract, tenure" in summary
    # A random forest gets each category one-hot (bounded), so more encoded columns than the 19 used.
    assert "features         : 19 used (4 numeric, 15 categorical), " in summary
    assert "encoded columns; not used: customerID (key column)" in summary
    assert "registry         : version 1 of 'churn', alias 'champion'" in summary
    # The explain task's table, plot and page are KFP artifacts of the run and files of the model's MLflow run.
    (run_folder,) = workdir.glob("mlkeel-training-*")
    assert json.loads((run_folder / "explain" / "importance").read_text())["method"] == "permutation"
    assert (run_folder / "explain" / "plot").read_bytes().startswith(b"\x89PNG")
    assert "data:image/png;base64," in (run_folder / "explain" / "report").read_text()
    fairness = json.loads((run_folder / "fairness" / "fairness").read_text())
    assert fairness["passed"] and sorted(fairness["by_column"]) == ["SeniorCitizen", "gender"]
    client = registry(workdir)
    champion = client.get_model_version_by_alias("churn", CHAMPION_ALIAS)
    assert str(champion.version) == "1"
    fingerprint = summary.split("data fingerprint : ")[1].split()[0]
    assert champion.tags[LineageTag.DATA_FINGERPRINT] == fingerprint
    assert champion.tags[LineageTag.SCHEMA_HASH].startswith("sha256:")
    assert champion.tags[LineageTag.GIT_COMMIT]
    assert champion.tags[LineageTag.PIPELINE_RUN]
    assert (workdir / "mlflow.db").is_file()
    governance = {item.path for item in client.list_artifacts(champion.run_id, RUN_GOVERNANCE_ARTIFACT_DIR)}
    assert {
        f"{RUN_GOVERNANCE_ARTIFACT_DIR}/{name}" for name in ("fairness.json", "feature_importance.png")
    } <= governance
    # The model card: a KFP HTML artifact of the run, attached to the version, with the run's real numbers.
    card_path = Path(summary.split("model card       : ")[1].split()[0])
    assert card_path == run_folder / "model-card" / "card"
    card = card_path.read_text()
    roc_auc = holdout_metric(summary, "roc_auc")
    assert roc_auc in card and "Contract" in card and "SeniorCitizen" in card
    assert "19 used (4 numeric, 15 categorical)" in card and champion.tags[LineageTag.FEATURES].startswith("features:")
    assert champion.tags[LineageTag.MODEL_CARD].startswith(f"runs:/{champion.run_id}/model_card/")


def test_the_cli_run_shows_one_line_per_task_on_one_screen_and_keeps_kfp_logs_in_the_run_folder(
    workdir: Path,
) -> None:
    """What the first run above printed: task lines with their results, then the summary; the logs in run.log."""
    (run_folder,) = workdir.glob("mlkeel-training-*")
    printed = (workdir / "first-run.txt").read_text()
    lines = printed.splitlines()
    assert len(lines) <= 40, printed
    assert "\x1b[" not in printed  # not a terminal: no colour codes, no live line
    assert lines[0] == f"one line per task; kfp.local's whole log: {run_folder / 'run.log'}"
    finished = {line.split()[0]: line for line in lines if line.startswith("  ") and " done " in line}
    assert sorted(finished) == sorted(
        ["ingest", "validate", "split", "train", "evaluate", "fairness", "explain", "gate", "register", "model-card"]
    )
    assert finished["validate"].endswith("s  7043 valid, 0 quarantined")
    assert f"roc_auc {holdout_metric(printed, 'roc_auc')}" in finished["evaluate"]
    assert finished["gate"].endswith("s  blessed")
    assert finished["register"].endswith("s  version 1, alias champion")
    assert "Executing task" not in printed and "KFP Executor" not in printed
    log = (run_folder / "run.log").read_text()
    assert "Executing task 'train'" in log and "[KFP Executor" in log and "\x1b[" not in log
    assert "Pipeline 'mlkeel-training' finished with status SUCCESS" in log


def test_second_identical_run_loses_to_the_champion_and_registers_nothing(workdir: Path) -> None:
    summary = run_training({**BUNDLED, "estimator": "random_forest", "explain_model": False}, workdir=workdir)
    assert not summary.blessed
    assert "champion" in summary.reason and "0.01" in summary.reason
    # explain_model=False: the explain task writes "not computed" (no features) without reading the model.
    assert summary.top_features == []
    assert json.loads((summary.run_folder / "explain" / "importance").read_text())["method"] == "none"
    # The same model on the same rows: every Contract slice scores exactly the champion's.
    deltas = [result["delta"] for result in summary.blessing["slices"]["results"]]
    assert len(deltas) == 3 and all(abs(delta) < 1e-9 for delta in deltas)
    assert summary.registered_version is None and summary.champion_version == "1"
    assert [str(version.version) for version in registry(workdir).search_model_versions("name='churn'")] == ["1"]


def test_a_better_challenger_becomes_champion_and_keeps_the_previous_one(workdir: Path) -> None:
    # On this data the default gradient boosting beats the random forest champion by more than the margin 0.01.
    summary = run_training(BUNDLED, workdir=workdir)
    assert summary.blessed, summary.reason
    assert summary.registered_version == "2"
    # Better on every contract type too (the slice gate compares each with the champion).
    slices = summary.blessing["slices"]
    assert [result["value"] for result in slices["results"]] == ["Month-to-month", "One year", "Two year"]
    assert all(result["delta"] > 0 and not result["regressed"] for result in slices["results"])
    assert summary.blessing["fairness"]["passed"] and summary.fairness["passed"]
    client = registry(workdir)
    assert str(client.get_model_version_by_alias("churn", CHAMPION_ALIAS).version) == "2"
    assert str(client.get_model_version_by_alias("churn", PREVIOUS_CHAMPION_ALIAS).version) == "1"
    assert summary.metrics["roc_auc"] > 0.83


def test_another_dataset_from_a_parquet_uri_trains_with_its_own_target(tmp_path: Path) -> None:
    # A different real dataset (scikit-learn's bundled Wisconsin breast cancer data: 569 rows, 30 numeric
    # columns, integer 0/1 target), as Parquet behind a file:// URI: nothing about it is Telco-specific.
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    data = tmp_path / "cancer.parquet"
    frame.to_parquet(data)
    summary = run_cli(
        "--workdir",
        str(tmp_path / "work"),
        "--data",
        data.as_uri(),
        "--target",
        "target",
        "--model-name",
        "cancer",
        "--estimator",
        "logistic_regression",
    )
    assert "validation       : 569 rows in, 569 valid, 0 quarantined" in summary
    assert "registry         : version 1 of 'cancer', alias 'champion'" in summary
    # The Telco fairness and slice columns are not asked of other data.
    assert "fairness         : No sensitive columns configured: fairness not checked." in summary
    version = registry(tmp_path / "work").get_model_version_by_alias("cancer", CHAMPION_ALIAS)
    assert version.tags[LineageTag.POSITIVE_LABEL] == "1"  # inferred: 1 among {0, 1}


def test_a_failed_validation_stops_the_run_before_anything_is_registered(tmp_path: Path, telco_csv: Path) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    frame = pd.read_csv(telco_csv)
    frame.loc[[5, 77], "Churn"] = None  # two rows without a label
    data = tmp_path / "unlabelled.csv"
    frame.to_csv(data, index=False)
    with pytest.raises(PipelineRunFailed) as failed:
        run_training(
            {**BUNDLED, "data_uri": str(data), "max_invalid_fraction": 0.0, "model_name": "strict"},
            workdir=tmp_path / "work",
        )
    # The first failed task, its exception line and the log holding its traceback; not kfp.local's nesting.
    (log,) = (tmp_path / "work").glob("mlkeel-training-*/run.log")
    message = str(failed.value)
    assert message.startswith(
        f"task 'validate' failed first: mlkeel.errors.ValidationFailedError: {data}: 2 of 7043 rows (0.03%) failed "
        "validation, more than max_invalid_fraction=0.0 (0.00%); top violations: column 'Churn' target_null: 2 rows"
    )
    assert message.endswith(f"; its log: {log}") and "\n" not in message
    assert "Traceback (most recent call last):" in log.read_text()
    assert registry(tmp_path / "work").search_registered_models() == []
    # The rows are not lost: the quarantine holds them with their reason and source row.
    (quarantine,) = (tmp_path / "work").glob("mlkeel-training-*/validate/quarantine")
    rows = pq.read_table(quarantine).to_pandas()
    assert sorted(rows[SOURCE_ROW_COLUMN]) == [5, 77]
    assert all("Churn" in reason for reason in rows[QUARANTINE_REASON_COLUMN])


def test_an_uncleaned_semicolon_csv_gets_typed_features_said_in_the_summary(tmp_path: Path) -> None:
    """Raw 2013 flights as a semicolon CSV: an id nobody declared, a timestamp, 1,900 tail numbers, a constant."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = tmp_path / "flights_jan.csv"
    flights = pq.read_table(Path(__file__).resolve().parents[1] / "data" / "flights_raw_jan.parquet")
    pacsv.write_csv(flights, source, pacsv.WriteOptions(delimiter=";"))
    summary = run_cli(
        "--data",
        str(source),
        "--target",
        "late",
        "--feature-types",
        '{"flight": "categorical"}',
        "--workdir",
        str(tmp_path / "work"),
        "--model-name",
        "flights",
        "--param",
        "explain_model=false",
    )
    assert "validation       : 5000 rows in, 5000 valid, 0 quarantined" in summary
    assert (
        "features         : 10 used (4 numeric, 5 categorical, 1 timestamp), 14 encoded columns; not used: "
        "flight_id (identifier, 100% distinct, named like an id), month (constant, '1' in every row)"
    ) in summary
    auc = float(holdout_metric(summary, "roc_auc"))
    assert auc > 0.65, summary
