"""`mlkeel run training` on a multiclass and a regression target, as a user types it, under kfp.local.

Wine and diabetes (scikit-learn's): the task and its reason in the summary, the task's metrics, a champion
registered; the same data again is not blessed (it does not beat the champion by the margin). The bundled flights
(`mlkeel datasets flights`): minutes late (`arr_delay`, regression) and the carrier (16 classes, multiclass),
where a better challenger takes over from a weaker champion, judged in the task's own metric."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes, load_wine

from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, LineageTag
from tests.e2e.cli import run_mlkeel
from tests.e2e.registry import registry

pytestmark = pytest.mark.pipeline


def run_cli(*args: str) -> str:
    return run_mlkeel("run", "training", "--local", *args, timeout=600)


def line(summary: str, name: str) -> str:
    return summary.split(f"  {name.ljust(17)}: ")[1].splitlines()[0]


def test_a_multiclass_target_registers_a_champion_and_the_same_run_again_is_not_blessed(tmp_path: Path) -> None:
    wine = load_wine(as_frame=True).frame
    wine["cultivar"] = wine.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    wine.to_csv(tmp_path / "wine.csv", index=False)
    arguments = ("--data", str(tmp_path / "wine.csv"), "--target", "cultivar", "--model-name", "wine")
    first = run_cli(*arguments, "--workdir", str(tmp_path / "work"))
    assert line(first, "task") == "multiclass (inferred: 3 distinct text values (<= 20))"
    metrics = dict(item.split(" ") for item in line(first, "holdout metrics").split(", "))
    assert set(metrics) == {"accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc_ovr"}
    assert line(first, "per-class recall").startswith("lowest ") and "(of 3 classes;" in first
    assert float(metrics["macro_f1"]) > 0.9 and "roc_auc" not in metrics
    assert "registry         : version 1 of 'wine', alias 'champion'" in first
    client = registry(tmp_path / "work")
    champion = client.get_model_version_by_alias("wine", CHAMPION_ALIAS)
    assert client.get_run(champion.run_id).data.tags[LineageTag.TASK] == "multiclass"
    second = run_cli(*arguments, "--workdir", str(tmp_path / "work"))
    assert "Not blessed: challenger macro_f1" in line(second, "gate") and "(higher is better)" in second
    assert client.get_model_version_by_alias("wine", CHAMPION_ALIAS).version == champion.version


def test_a_regression_target_registers_a_champion_judged_on_rmse(tmp_path: Path) -> None:
    load_diabetes(as_frame=True).frame.to_csv(tmp_path / "diabetes.csv", index=False)
    summary = run_cli(
        "--data", str(tmp_path / "diabetes.csv"), "--target", "target", "--model-name", "diabetes",
        "--estimator", "random_forest", "--workdir", str(tmp_path / "work"),
        "--param", 'gate_thresholds={"r2": 0.2}',
    )  # fmt: skip
    assert (
        line(summary, "task") == "regression (inferred: 198 distinct values, numbers > 20 distinct values)"
    )  # on the train split
    metrics = dict(item.split(" ") for item in line(summary, "holdout metrics").split(", "))
    assert set(metrics) == {"rmse", "mae", "r2", "mape"} and float(metrics["r2"]) > 0.2
    assert "all 1 threshold(s) pass (r2 " in line(summary, "gate")
    assert "registry         : version 1 of 'diabetes', alias 'champion'" in summary


def flights_slice(tmp_path: Path, target: str, rows: int = 6_000) -> Path:
    """January's flights written by `mlkeel datasets flights` (as a user would), then a seeded sample of rows."""
    import pyarrow.parquet as pq

    month = tmp_path / f"january-{target}.parquet"
    subprocess.run(
        [sys.executable, "-m", "mlkeel.cli", "datasets", "flights", "--months", "1", "--target", target,
         "--output", str(month)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    frame = pq.read_table(month).to_pandas().sample(n=rows, random_state=7)
    frame.to_parquet(tmp_path / f"flights-{target}.parquet", index=False)
    return tmp_path / f"flights-{target}.parquet"


@pytest.mark.parametrize(
    ("target", "weaker", "metric", "direction"),
    [("arr_delay", "ridge", "rmse", "lower"), ("carrier", "logistic_regression", "macro_f1", "higher")],
)
def test_on_the_bundled_flights_a_better_challenger_takes_over_in_the_tasks_metric(
    tmp_path: Path, target: str, weaker: str, metric: str, direction: str
) -> None:
    data = flights_slice(tmp_path, "arr_delay" if target == "arr_delay" else "late")
    arguments = ("--data", str(data), "--target", target, "--key-column", "flight_id", "--model-name", target,
                 "--workdir", str(tmp_path / "work"))  # fmt: skip
    first = run_cli(*arguments, "--estimator", weaker)
    task = "regression" if target == "arr_delay" else "multiclass"
    assert line(first, "task").startswith(f"{task} (inferred: ")
    assert f"registry         : version 1 of '{target}', alias 'champion'" in first
    champion_score = dict(item.split(" ") for item in line(first, "holdout metrics").split(", "))[metric]

    second = run_cli(*arguments, "--estimator", "hist_gradient_boosting")
    challenger_score = dict(item.split(" ") for item in line(second, "holdout metrics").split(", "))[metric]
    gate = line(second, "gate")
    assert gate.startswith(f"Blessed: challenger {metric} {challenger_score} vs champion version 1 {champion_score}")
    assert f"({direction} is better)" in gate
    better = (
        float(challenger_score) < float(champion_score)
        if direction == "lower"
        else float(challenger_score) > float(champion_score)
    )
    assert better, (champion_score, challenger_score)
    assert f"version 2 of '{target}', alias 'champion' ('previous_champion' = version 1)" in second
    client = registry(tmp_path / "work")
    assert str(client.get_model_version_by_alias(target, CHAMPION_ALIAS).version) == "2"
    assert str(client.get_model_version_by_alias(target, PREVIOUS_CHAMPION_ALIAS).version) == "1"
