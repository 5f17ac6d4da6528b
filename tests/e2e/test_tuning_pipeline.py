"""The tuning pipeline end to end under kfp.local, as a user runs it: ``mlkeel run training --local --tune-trials 6``.

One run (about a minute on 2 cores): six trial tasks under ``dsl.ParallelFor``, collected, the best trained,
gated and registered; then what a user checks in MLflow and in the run folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlkeel.components.tune.logic import DEFAULT_SEARCH_SPACES, TRIAL_RUN, TRIAL_TAG
from mlkeel.constants import CHAMPION_ALIAS, LineageTag
from tests.e2e.registry import registry

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("mlkeel-tune")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.cli",
            "run",
            "training",
            "--local",
            "--tune-trials",
            "6",
            "--model-name",
            "churn-tuned",
            "--workdir",
            str(workdir),
            "--param",
            "explain_model=false",  # not what this test is about: saves the permutation importance's time
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return workdir, completed.stdout


def test_the_search_picks_a_configuration_at_least_as_good_as_the_defaults_and_registers_it(
    tuned: tuple[Path, str],
) -> None:
    from mlkeel.components.train.logic import fit_model

    workdir, summary = tuned
    assert "registry         : version 1 of 'churn-tuned', alias 'champion'" in summary
    line = summary.split("tuning           : ")[1].splitlines()[0]
    assert " of 6 (seed 42), validation roc_auc " in line and "recorded on the version (mlkeel.tuning)" in line
    client = registry(workdir)
    version = client.get_model_version_by_alias("churn-tuned", CHAMPION_ALIAS)
    choice = json.loads(version.tags[LineageTag.TUNING])
    assert choice["trials"] == 6 and choice["estimator"] == "hist_gradient_boosting"

    # The defaults, fitted here on the run's own train split with the same seed: the search's baseline trial
    # scored exactly that, and the chosen trial at least that (on the validation part, never the holdout).
    (run_folder,) = workdir.glob("mlkeel-tuning-*")
    train_split = pq.read_table(run_folder / "split" / "train_data").to_pandas()
    default = fit_model(train_split, "Churn", "Yes", ["customerID"], "hist_gradient_boosting", seed=42)
    assert default.validation is not None
    default_score = default.validation.validation_metrics["roc_auc"]
    assert choice["baseline_score"] == pytest.approx(default_score, abs=1e-6)
    assert choice["best_score"] >= default_score

    # The registered model was fitted with the chosen hyperparameters: its run's params and validation score.
    run = client.get_run(version.run_id)
    for name, value in choice["hyperparameters"].items():
        assert float(run.data.params[f"hp.{name}"]) == pytest.approx(float(value)), name
    assert run.data.metrics["validation_roc_auc"] == pytest.approx(choice["best_score"], abs=1e-6)


def test_the_trials_are_child_runs_of_one_parent_and_the_table_shows_them(tuned: tuple[Path, str]) -> None:
    workdir, _ = tuned
    client = registry(workdir)
    choice = json.loads(client.get_model_version_by_alias("churn-tuned", CHAMPION_ALIAS).tags[LineageTag.TUNING])
    parent = choice["parent_run_id"]
    children = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(int(run.data.tags[TRIAL_TAG]) for run in children) == list(range(6))
    assert {run.data.tags["mlkeel.stage"] for run in children} == {TRIAL_RUN}
    scores = {int(run.data.tags[TRIAL_TAG]): run.data.metrics["validation_roc_auc"] for run in children}
    assert max(scores.values()) == pytest.approx(choice["best_score"], abs=1e-6)
    assert scores[choice["best_trial"]] == pytest.approx(choice["best_score"], abs=1e-6)

    (run_folder,) = workdir.glob("mlkeel-tuning-*")
    page = (run_folder / "tune-select" / "trials_page").read_text()
    assert page.count("<svg") == len(DEFAULT_SEARCH_SPACES["hist_gradient_boosting"])  # one plot per parameter
    table = (run_folder / "tune-select" / "trials_table").read_text()
    assert f"| {choice['best_trial']} (chosen)" in table
    assert len([row for row in table.splitlines() if row.startswith("| ") and row[2].isdigit()]) == 6
    artifacts = {item.path for item in client.list_artifacts(parent, "tuning")}
    assert {"tuning/trials.md", "tuning/trials.html", "tuning/trials.json"} <= artifacts
