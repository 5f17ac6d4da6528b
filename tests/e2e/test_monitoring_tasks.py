"""`mlkeel run monitoring` on a multiclass and a regression model, as a user types it, under kfp.local.

Multiclass: the bundled flights' carrier (the eight carriers with at least 5% of the flights), a champion trained by
the training pipeline on January; a second half of January does not retrain, July (other destinations, more late
flights) does. Regression: scikit-learn's diabetes progression; a random part of the patients does not retrain,
the heaviest third (body mass index) does. Small batches (2,000 flights, 442 patients) keep each run short.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mlkeel.constants import CHAMPION_ALIAS, LineageTag
from mlkeel.data.flights import FLIGHTS_KEY, FLIGHTS_PARQUET, FLIGHTS_PERIOD
from tests.e2e.cli import run_mlkeel
from tests.e2e.registry import registry

pytestmark = pytest.mark.pipeline

MAIN_CARRIERS = ["UA", "B6", "EV", "DL", "AA", "MQ", "US", "9E"]


def monitor(workdir: Path, *args: str) -> str:
    return run_mlkeel("run", "monitoring", "--local", "--workdir", str(workdir), *args)


def line(summary: str, name: str) -> str:
    """The last summary line ``  <name> : ...`` (a first champion's training summary may come before)."""
    return summary.split(f"  {name.ljust(17)}: ")[-1].splitlines()[0]


def versions(workdir: Path, name: str) -> list[str]:
    return sorted(str(version.version) for version in registry(workdir).search_model_versions(f"name='{name}'"))


def _flights(month: int, rows: int, seed: int) -> pa.Table:
    table = pq.read_table(FLIGHTS_PARQUET)
    table = table.filter(
        pc.and_(pc.equal(table[FLIGHTS_PERIOD], month), pc.is_in(table["carrier"], pa.array(MAIN_CARRIERS)))
    )
    chosen = np.sort(np.random.default_rng(seed).choice(table.num_rows, rows, replace=False))
    return table.take(chosen).drop_columns([FLIGHTS_PERIOD])


def test_a_multiclass_champion_is_monitored_in_its_own_metric_and_retrained_on_drift(tmp_path: Path) -> None:
    january = _flights(1, 4000, seed=1)
    pq.write_table(january.take(np.arange(0, 4000, 2)), tmp_path / "january-a.parquet")
    pq.write_table(january.take(np.arange(1, 4000, 2)), tmp_path / "january-b.parquet")
    pq.write_table(_flights(7, 2000, seed=7), tmp_path / "july.parquet")
    work = tmp_path / "work"
    common = ("--model-name", "carrier", "--target", "carrier", "--key-column", FLIGHTS_KEY)

    stable = monitor(
        work,
        *common,
        "--reference",
        str(tmp_path / "january-a.parquet"),
        "--current",
        str(tmp_path / "january-b.parquet"),
    )

    assert "task: multiclass (inferred: 8 distinct text values (<= 20))" in stable
    assert "registry         : version 1 of 'carrier', alias 'champion'" in stable  # the first champion, on January
    assert line(stable, "drift") == "no drift (drifted features: none)"
    assert line(stable, "predictions").startswith("no prediction drift (multiclass, predicted class shares): chi2 p=")
    assert line(stable, "performance").startswith("carrier version 1: Not degraded: live macro_f1 ")
    assert "(higher is better)" in line(stable, "performance")
    assert line(stable, "retraining") == "not needed" and versions(work, "carrier") == ["1"]

    drifted = monitor(work, *common, "--current", str(tmp_path / "july.parquet"))

    assert line(drifted, "drift").startswith("DRIFT (drifted features: ") and "dest" in line(drifted, "drift")
    assert "live macro_f1 " in line(drifted, "performance")
    assert line(drifted, "retraining").startswith("ran; ")
    assert versions(work, "carrier") == ["1", "2"]  # the retraining registered a version, a multiclass one
    client = registry(work)
    retrained = client.get_model_version("carrier", "2")
    assert client.get_run(retrained.run_id).data.tags[LineageTag.TASK] == "multiclass"
    assert (
        str(client.get_model_version_by_alias("carrier", CHAMPION_ALIAS).version) in line(drifted, "retraining") + "1"
    )


def test_a_regression_champion_is_monitored_on_rmse_and_retrained_on_drift(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes

    patients = load_diabetes(as_frame=True).frame
    patients.insert(0, "patient_id", np.arange(len(patients)))
    order = np.random.default_rng(3).permutation(len(patients))
    patients.iloc[np.sort(order[:265])].to_parquet(tmp_path / "reference.parquet", index=False)
    patients.iloc[np.sort(order[265:])].to_parquet(tmp_path / "later.parquet", index=False)
    patients[patients["bmi"] >= patients["bmi"].quantile(2 / 3)].to_parquet(tmp_path / "heavy.parquet", index=False)
    work = tmp_path / "work"
    # The champion's holdout is 53 patients: its RMSE is known to about 10%, so 30% worse is the alarm.
    common = (
        "--model-name",
        "diabetes",
        "--target",
        "target",
        "--key-column",
        "patient_id",
        "--estimator",
        "random_forest",
        "--param",
        "max_metric_drop=0.3",
    )

    stable = monitor(
        work, *common, "--reference", str(tmp_path / "reference.parquet"), "--current", str(tmp_path / "later.parquet")
    )

    assert "task: regression (inferred: " in stable
    assert line(stable, "drift") == "no drift (drifted features: none)"
    assert line(stable, "predictions").startswith(
        "no prediction drift (regression, predicted value distribution): ks p="
    )
    performance = line(stable, "performance")
    assert performance.startswith("diabetes version 1: Not degraded: live rmse ") and "(lower is better)" in performance
    assert "of the holdout's, within 30.0%" in performance
    assert line(stable, "retraining") == "not needed" and versions(work, "diabetes") == ["1"]

    drifted = monitor(work, *common, "--current", str(tmp_path / "heavy.parquet"))

    assert line(drifted, "drift").startswith("DRIFT (drifted features: bmi")
    # The model's answers moved with its inputs: heavier patients, faster predicted progression.
    assert line(drifted, "predictions").startswith("prediction drift (regression, predicted value distribution)")
    assert line(drifted, "retraining").startswith("ran; ")
    assert versions(work, "diabetes") == ["1", "2"]
    client = registry(work)
    assert client.get_run(client.get_model_version("diabetes", "2").run_id).data.tags[LineageTag.TASK] == "regression"
