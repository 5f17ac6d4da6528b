"""Tune: seeded proposals, trials scored on the train split's validation part, child runs, the trials table."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mlkeel.components.tune.logic import (
    BASELINE_TRIAL,
    DEFAULT_SEARCH_SPACES,
    TrialResult,
    finish_search,
    propose,
    run_trial,
    search_space,
    select,
    start_search,
)
from mlkeel.constants import LineageTag
from mlkeel.errors import ParameterError

TELCO = {"target_column": "Churn", "positive_label": "Yes", "key_columns": ["customerID"]}


@pytest.mark.parametrize("estimator", sorted(DEFAULT_SEARCH_SPACES))
def test_the_same_seed_proposes_the_same_trials_and_another_seed_others(estimator: str) -> None:
    first = propose(estimator, 6, seed=7)
    assert first == propose(estimator, 6, seed=7)
    assert first != propose(estimator, 6, seed=8)
    assert [trial["trial"] for trial in first] == list(range(6))
    assert first[0] == {"trial": BASELINE_TRIAL, "hyperparameters": {}}
    space = DEFAULT_SEARCH_SPACES[estimator]
    for trial in first[1:]:
        for name, value in trial["hyperparameters"].items():
            assert space[name]["low"] <= value <= space[name]["high"], (name, value)


def test_fixed_hyperparameters_stay_in_every_trial_and_a_later_batch_continues_the_numbers() -> None:
    first = propose("random_forest", 3, seed=1, fixed={"n_jobs": 1})
    assert all(trial["hyperparameters"]["n_jobs"] == 1 for trial in first)
    told = [TrialResult(t["trial"], t["hyperparameters"], 0.8 + 0.01 * t["trial"], "roc_auc") for t in first]
    later = propose("random_forest", 2, seed=1, fixed={"n_jobs": 1}, told=told)
    assert [trial["trial"] for trial in later] == [3, 4]
    assert later == propose("random_forest", 2, seed=1, fixed={"n_jobs": 1}, told=told)


@pytest.mark.parametrize(
    ("spaces", "message"),
    [
        ({"random_forest": {"max_depth": {"type": "int", "low": 9, "high": 3}}}, "'low' (9) must be below"),
        ({"random_forest": {"max_depth": {"low": 1, "high": 3}}}, "search_space['random_forest']['max_depth']"),
        ({"random_forest": {"max_features": {"type": "float", "low": 0, "high": 1, "log": True}}}, "log range"),
        ({"random_forest": {"criterion": {"type": "categorical", "choices": []}}}, "non-empty list 'choices'"),
        ({"xgboost": {}}, "unknown estimator(s) ['xgboost']"),
    ],
)
def test_a_bad_search_space_is_refused_naming_the_parameter(spaces: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=None) as raised:
        search_space("random_forest", spaces)
    assert message in str(raised.value)


def test_a_categorical_space_is_sampled_from_its_choices() -> None:
    spaces = {"random_forest": {"criterion": {"type": "categorical", "choices": ["gini", "entropy"]}}}
    values = {trial["hyperparameters"]["criterion"] for trial in propose("random_forest", 8, 3, spaces)[1:]}
    assert values <= {"gini", "entropy"} and values


def test_select_takes_the_best_by_the_metrics_direction_and_the_baseline_on_a_tie() -> None:
    results = [
        TrialResult(0, {}, 0.84, "roc_auc"),
        TrialResult(1, {"C": 1.0}, 0.84, "roc_auc"),
        TrialResult(2, {"C": 9.0}, math.nan, "roc_auc", error="boom"),
    ]
    assert select(results).trial == 0
    assert select([*results, TrialResult(3, {"C": 3.0}, 0.85, "roc_auc")]).trial == 3
    losses = [TrialResult(0, {}, 0.41, "log_loss"), TrialResult(1, {"C": 2.0}, 0.40, "log_loss")]
    assert select(losses).trial == 1
    with pytest.raises(ParameterError, match="first error: boom"):
        select([results[2]])


def test_a_search_on_telco_logs_child_runs_and_picks_at_least_the_baseline(
    telco_split: tuple[Path, Path], mlflow_local_uri: str, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    train_path, _ = telco_split
    trials, parent = start_search("logistic_regression", 3, seed=11, tracking_uri=mlflow_local_uri)
    # A value scikit-learn refuses is a failed trial, not a failed search.
    trials.append({"trial": 3, "hyperparameters": {"C": -1.0}})
    results = [
        run_trial(str(train_path), trial, **TELCO, estimator="logistic_regression", seed=11, parent_run_id=parent)
        for trial in trials
    ]
    assert math.isnan(results[3].score) and "C" in results[3].error
    scored = [result.score for result in results[:3]]
    assert all(0.80 < score < 0.90 for score in scored), scored  # Telco's validation ROC AUC, not the holdout's
    summary = finish_search([r.to_dict() for r in results], "logistic_regression", 11, str(tmp_path), parent)
    assert summary.best_score == max(scored) >= summary.baseline_score == scored[0]
    assert summary.hyperparameters == trials[summary.best_trial]["hyperparameters"]

    client = MlflowClient(mlflow_local_uri)
    children = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(run.data.tags["mlkeel.trial"] for run in children) == ["0", "1", "2", "3"]
    by_trial = {int(run.data.tags["mlkeel.trial"]): run for run in children}
    assert by_trial[1].data.metrics["validation_roc_auc"] == pytest.approx(scored[1])
    assert by_trial[1].data.params["hp.C"] == str(trials[1]["hyperparameters"]["C"])
    recorded = json.loads(client.get_run(parent).data.tags[LineageTag.TUNING])
    assert recorded["best_trial"] == summary.best_trial and recorded["trials"] == 4
    artifacts = {item.path for item in client.list_artifacts(parent, "tuning")}
    assert {"tuning/trials.md", "tuning/trials.html", "tuning/trials.json"} <= artifacts

    markdown = (tmp_path / "trials.md").read_text()
    assert f"| {summary.best_trial} (chosen)" in markdown and "failed" in markdown
    page = (tmp_path / "trials.html").read_text()
    # One parameter, one plot: a point per sampled trial (the failed one left out), the baseline a dashed line.
    assert page.count("<svg") == 1 and page.count("<circle") == 2 and "<title>baseline</title>" in page


def test_a_batched_search_from_the_cli_picks_the_same_winner_for_the_same_seed(
    telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    train_path, _ = telco_split
    printed = []
    for run in ("a", "b"):
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlkeel.components.tune",
                "search",
                "--train-data",
                str(train_path),
                "--target-column",
                "Churn",
                "--positive-label",
                "Yes",
                "--key-column",
                "customerID",
                "--estimator",
                "logistic_regression",
                # A second batch of one, asked after the first five were told (TPE past its random start).
                "--trials",
                "6",
                "--batch-size",
                "5",
                "--seed",
                "3",
                "--table-dir",
                str(tmp_path / run),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        printed.append(json.loads(completed.stdout))
    assert printed[0] == printed[1]
    assert printed[0]["trials"] == 6 and printed[0]["best_score"] >= printed[0]["baseline_score"]
    rows = json.loads((tmp_path / "a" / "trials.json").read_text())["trials"]
    assert [row["trial"] for row in rows] == list(range(6))


def test_cli_refuses_a_bad_space_with_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.components.tune",
            "propose",
            "--estimator",
            "random_forest",
            "--trials",
            "4",
            "--search-space",
            '{"random_forest": {"max_depth": {"type": "int", "low": 9, "high": 3}}}',
            "--output",
            str(tmp_path / "trials.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode != 0
    assert "search_space['random_forest']['max_depth']: 'low' (9) must be below 'high' (3)" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("loader", "task", "estimator", "metric"),
    [("load_diabetes", "regression", "ridge", "rmse"), ("load_wine", "multiclass", "random_forest", "macro_f1")],
)
def test_a_search_scores_every_trial_in_the_tasks_own_metric_and_chooses_by_its_direction(
    tmp_path: Path, loader: str, task: str, estimator: str, metric: str
) -> None:
    import sklearn.datasets

    frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    trials = propose(estimator, 4, seed=3)
    results = [
        run_trial(str(tmp_path / "train.parquet"), trial, "target", "", estimator=estimator, seed=3, metric=metric,
                  task=task)
        for trial in trials
    ]  # fmt: skip
    scores = [result.score for result in results]
    assert all(result.metric == metric and not math.isnan(result.score) for result in results), results
    assert len(set(scores)) > 1  # the sampled configurations score differently
    chosen = select(results)
    # rmse: lower is better; macro F1: higher is better.
    assert chosen.score == (min(scores) if metric == "rmse" else max(scores))
    if task == "regression":
        assert all(0.0 < score < 100.0 for score in scores)  # diabetes' target spans 25-346: rmse, not R²
