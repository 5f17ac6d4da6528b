"""`mlkeel run training` on a multiclass and a regression target (wine, diabetes), as a user types it, under
kfp.local: the task and its reason in the summary, the task's metrics, a champion registered; the same data again
is not blessed (it does not beat the champion by the margin)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes, load_wine

from mlkeel.constants import CHAMPION_ALIAS, LineageTag
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
    assert {"accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc_ovr", "recall.barolo"} <= set(metrics)
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
