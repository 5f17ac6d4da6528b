"""Fairness: per-group rates and differences that match a hand computation; a biased model is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlkeel.components.fairness.cli import main as fairness_cli
from mlkeel.components.fairness.logic import DEFAULT_MIN_GROUP_ROWS, fairness, fairness_report
from mlkeel.components.gate.logic import gate
from mlkeel.constants import MISSING_GROUP, RUN_GOVERNANCE_ARTIFACT_DIR, FairnessRunMetric
from mlkeel.errors import ParameterError, SchemaMismatchError

# Ten rows, worked out by hand below. Groups of fewer than 3 rows are reported, not compared.
LABELS = [1, 1, 0, 0, 1, 1, 0, 0, 0, 0]
DECISIONS = [1, 0, 1, 0, 1, 1, 1, 0, 1, 1]
GROUPS = {
    "sex": pd.Series(["A"] * 4 + ["B"] * 4 + ["C"] * 2),
    "senior": pd.Series([0, 1, 0, 1, 0, 1, 0, 1, None, None]),
}


def test_rates_and_differences_match_a_hand_computation() -> None:
    document = fairness_report(LABELS, DECISIONS, GROUPS, min_group_rows=3)

    sex = document["by_column"]["sex"]
    # A: labels 1 1 0 0, decisions 1 0 1 0 -> 2 of 4 selected, 1 of 2 positives found, 1 of 2 negatives flagged.
    assert sex["groups"]["A"] == {"rows": 4, "selection_rate": 0.5, "tpr": 0.5, "fpr": 0.5}
    # B: decisions 1 1 1 0 -> 3 of 4 selected, both positives found, 1 of 2 negatives flagged.
    assert sex["groups"]["B"] == {"rows": 4, "selection_rate": 0.75, "tpr": 1.0, "fpr": 0.5}
    # C: two negatives, both flagged; no positive, so no TPR (fairlearn would say 0.0). Too small to compare.
    assert sex["groups"]["C"] == {"rows": 2, "selection_rate": 1.0, "tpr": None, "fpr": 1.0}
    assert sex["compared_groups"] == ["A", "B"]
    assert sex["demographic_parity_difference"] == pytest.approx(0.75 - 0.5)
    assert sex["equalized_odds_difference"] == pytest.approx(max(1.0 - 0.5, 0.5 - 0.5))

    senior = document["by_column"]["senior"]
    # 0: rows 0 2 4 6, labels 1 0 1 0, decisions 1 1 1 1.
    assert senior["groups"]["0"] == {"rows": 4, "selection_rate": 1.0, "tpr": 1.0, "fpr": 1.0}
    # 1: rows 1 3 5 7, labels 1 0 1 0, decisions 0 0 1 0.
    assert senior["groups"]["1"] == {"rows": 4, "selection_rate": 0.25, "tpr": 0.5, "fpr": 0.0}
    assert senior["groups"][MISSING_GROUP] == {"rows": 2, "selection_rate": 1.0, "tpr": None, "fpr": 1.0}
    assert senior["demographic_parity_difference"] == pytest.approx(0.75)
    assert senior["equalized_odds_difference"] == pytest.approx(1.0)

    assert document["configured"] is True and document["sensitive_columns"] == ["sex", "senior"]
    assert document["min_group_rows"] == 3
    assert not document["passed"]  # 0.75 and 1.0 exceed the default 0.2


def test_the_differences_are_fairlearns_own_on_the_compared_groups() -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    compared = slice(0, 8)  # groups A and B
    sex = fairness_report(LABELS, DECISIONS, GROUPS, min_group_rows=3)["by_column"]["sex"]
    arguments = (LABELS[compared], DECISIONS[compared])
    features = GROUPS["sex"][compared]
    assert sex["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(*arguments, sensitive_features=features)
    )
    assert sex["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(*arguments, sensitive_features=features)
    )


def test_each_difference_is_checked_against_its_own_threshold_and_the_reason_names_the_column() -> None:
    thresholds = {"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.4}
    document = fairness_report(LABELS, DECISIONS, {"sex": GROUPS["sex"]}, thresholds, min_group_rows=3)
    assert not document["passed"]
    assert document["failures"] == [
        {"column": "sex", "difference": "equalized_odds_difference", "value": 0.5, "threshold": 0.4}
    ]
    assert document["reason"] == (
        "Fairness failed: sex equalized_odds_difference 0.5000 exceeds the threshold 0.4000 "
        "(rates by group: A TPR 0.5000 FPR 0.5000, B TPR 1.0000 FPR 0.5000)."
    )
    # A difference equal to its bound passes; a name left out keeps its default (0.2).
    at_bounds = fairness_report(LABELS, DECISIONS, {"sex": GROUPS["sex"]}, {"equalized_odds_difference": 0.5}, 3)
    assert at_bounds["thresholds"] == {"demographic_parity_difference": 0.2, "equalized_odds_difference": 0.5}
    assert [failure["difference"] for failure in at_bounds["failures"]] == ["demographic_parity_difference"]
    both = {"demographic_parity_difference": 0.25, "equalized_odds_difference": 0.5}
    assert fairness_report(LABELS, DECISIONS, {"sex": GROUPS["sex"]}, both, 3)["passed"]


def test_small_groups_do_not_count_and_a_lone_group_has_no_difference() -> None:
    document = fairness_report(LABELS, DECISIONS, {"sex": GROUPS["sex"]}, min_group_rows=5)
    assert document["by_column"]["sex"]["compared_groups"] == []
    assert document["by_column"]["sex"]["demographic_parity_difference"] == 0.0
    assert document["passed"]
    assert set(document["by_column"]["sex"]["groups"]) == {"A", "B", "C"}  # still reported


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"thresholds": {"parity": 0.1}}, "unknown difference 'parity'"),
        ({"thresholds": {"equalized_odds_difference": 1.5}}, "must be a number from 0 to 1"),
        ({"min_group_rows": 0}, "min_group_rows=0: must be an integer >= 1"),
    ],
)
def test_bad_parameters_are_refused_by_name(arguments: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        fairness_report(LABELS, DECISIONS, GROUPS, **arguments)


# On the bundled Telco data, with real models ------------------------------------------------------------


@pytest.fixture
def holdout(telco_split: tuple[Path, Path]) -> Path:
    return telco_split[1]


def test_on_telco_the_numbers_are_the_holdouts_and_land_on_the_models_run(
    mlflow_shared_uri: str, train_telco, holdout: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from mlkeel.modeling import decision_threshold, load_sklearn_model, positive_scores

    model = train_telco(mlflow_shared_uri, "strong")
    document = fairness(
        str(model.model_dir),
        str(holdout),
        "Churn",
        "Yes",
        str(tmp_path / "fairness.json"),
        sensitive_columns=["gender", "SeniorCitizen"],
        thresholds={"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.25},
        tracking_uri=mlflow_shared_uri,
        mlflow_run_id=model.run_id,
    )

    assert json.loads((tmp_path / "fairness.json").read_text()) == document
    # Recomputed here with plain pandas, from the model's decisions at its own decision threshold.
    frame = pq.read_table(holdout).to_pandas()
    estimator = load_sklearn_model(str(model.model_dir))
    threshold = decision_threshold(estimator)
    frame["decision"] = positive_scores(estimator, frame[list(estimator.feature_names_in_)]) >= threshold
    frame["positive"] = frame["Churn"] == "Yes"
    for column in ("gender", "SeniorCitizen"):
        for value, rows in frame.groupby(column):
            group = document["by_column"][column]["groups"][str(value)]
            assert group["rows"] == len(rows)
            assert group["selection_rate"] == pytest.approx(rows["decision"].mean())
            assert group["tpr"] == pytest.approx(rows.loc[rows["positive"], "decision"].mean())
            assert group["fpr"] == pytest.approx(rows.loc[~rows["positive"], "decision"].mean())
    rates = frame.groupby("SeniorCitizen")["decision"].mean()
    senior = document["by_column"]["SeniorCitizen"]
    assert senior["demographic_parity_difference"] == pytest.approx(rates.max() - rates.min())
    assert sorted(senior["groups"]) == ["0", "1"] and senior["groups"]["1"]["rows"] == 222
    assert document["passed"], document["reason"]
    assert document["reason"].startswith("Fairness passed: gender demographic_parity_difference 0.0")

    run = MlflowClient(mlflow_shared_uri).get_run(model.run_id)
    assert run.data.metrics[FairnessRunMetric.PASSED] == 1.0
    assert run.data.metrics["fairness_SeniorCitizen_demographic_parity_difference"] == pytest.approx(
        senior["demographic_parity_difference"]
    )
    logged = [item.path for item in MlflowClient(mlflow_shared_uri).list_artifacts(model.run_id, "governance")]
    assert f"{RUN_GOVERNANCE_ARTIFACT_DIR}/fairness.json" in logged


def test_without_sensitive_columns_nothing_is_checked(tmp_path: Path) -> None:
    # Neither the model nor the holdout is read: the paths need not exist.
    document = fairness("no-model", "no-data.parquet", "Churn", "Yes", str(tmp_path / "f.json"), [])
    assert document["configured"] is False and document["passed"] is True
    assert document["by_column"] == {} and document["sensitive_columns"] == []
    assert document["reason"] == "No sensitive columns configured: fairness not checked."


def test_a_sensitive_column_missing_from_the_data_is_named(
    mlflow_shared_uri: str, train_telco, holdout: Path, tmp_path: Path
) -> None:
    model = train_telco(mlflow_shared_uri, "strong")
    with pytest.raises(SchemaMismatchError, match="sensitive or target column\\(s\\) not found: race"):
        fairness(str(model.model_dir), str(holdout), "Churn", "Yes", str(tmp_path / "f.json"), ["gender", "race"])
    result = CliRunner().invoke(
        fairness_cli,
        [
            "--model", str(model.model_dir), "--test-data", str(holdout), "--target-column", "Churn",
            "--positive-label", "Yes", "--sensitive-column", "race", "--output", str(tmp_path / "f.json"),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "race" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _biased_against_men(frame: pd.DataFrame) -> pd.DataFrame:
    """Labels a biased process would have produced: no man ever churns, a third more women do."""
    rng = np.random.default_rng(7)
    frame = frame.copy()
    women = frame["gender"] == "Female"
    frame.loc[~women, "Churn"] = "No"
    frame.loc[women & (rng.random(len(frame)) < 0.3), "Churn"] = "Yes"
    return frame


def test_the_gate_refuses_a_model_biased_by_gender_and_says_why(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    biased = train_telco(mlflow_shared_uri, "biased-gender", rewrite=_biased_against_men)
    fair = train_telco(mlflow_shared_uri, "strong")
    documents = {}
    for name, model in (("biased", biased), ("fair", fair)):
        documents[name] = fairness(
            str(model.model_dir),
            str(holdout),
            "Churn",
            "Yes",
            str(tmp_path / f"{name}.json"),
            ["gender", "SeniorCitizen"],
            {"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.25},
        )
    gender = documents["biased"]["by_column"]["gender"]
    assert gender["groups"]["Male"]["selection_rate"] < 0.05 < 0.4 < gender["groups"]["Female"]["selection_rate"]
    assert not documents["biased"]["passed"] and documents["fair"]["passed"]

    verdicts = {
        name: gate(
            str(model.model_dir),
            str(holdout),
            model.holdout_metrics(holdout),
            model_name,
            "Churn",
            "Yes",
            str(tmp_path / f"{name}-blessing.json"),
            mlflow_shared_uri,
            thresholds={"roc_auc": 0.55},
            fairness_path=str(tmp_path / f"{name}.json"),
        )
        for name, model in (("biased", biased), ("fair", fair))
    }

    refused = verdicts["biased"]
    assert not refused.blessed
    assert refused.reason.startswith("Not blessed: Fairness failed: gender demographic_parity_difference 0.")
    assert "selection rate by group: Female 0." in refused.reason
    assert refused.fairness == documents["biased"]
    assert json.loads((tmp_path / "biased-blessing.json").read_text())["fairness"]["passed"] is False
    assert verdicts["fair"].blessed, verdicts["fair"].reason
    assert verdicts["fair"].reason.endswith("and the fairness check passed.")


def test_component_defaults_match_the_logic() -> None:
    from mlkeel.components.fairness.component import fairness as component

    inputs = component.component_spec.inputs
    assert inputs["min_group_rows"].default == DEFAULT_MIN_GROUP_ROWS
