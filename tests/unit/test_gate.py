"""Gate: thresholds first, then champion vs challenger on the same rows; a blessing a human can read."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from mlkeel.components.gate.cli import main as gate_cli
from mlkeel.components.gate.logic import Blessing, decide, gate
from mlkeel.constants import CHAMPION_ALIAS, GateRunMetric, LineageTag
from mlkeel.errors import DataError, ParameterError, RegistryError, SchemaMismatchError
from tests.fixtures_mlflow import EXTRA_COLUMN, EXTRA_COLUMN_MODEL, WEAK_MODEL, TrainedModel

GOOD = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}


# decide(): the rules on hand-made numbers ------------------------------------------------------------------


def test_a_failed_threshold_refuses_and_names_each_failing_metric() -> None:
    metrics = {**GOOD, "roc_auc": 0.70, "log_loss": 0.61}
    blessing = decide(metrics, champion_score=0.50, champion_version="3", thresholds={"roc_auc": 0.75, "log_loss": 0.5})
    assert not blessing.blessed  # even though the champion is far worse: thresholds come first
    assert "roc_auc 0.7000 is below the threshold 0.7500" in blessing.reason
    assert "log_loss 0.6100 is above the threshold 0.5000" in blessing.reason
    assert blessing.threshold_results == {
        "roc_auc": {"value": 0.70, "threshold": 0.75, "passed": False},
        "log_loss": {"value": 0.61, "threshold": 0.5, "passed": False},
    }


def test_one_failing_threshold_out_of_two_is_enough_to_refuse() -> None:
    blessing = decide(GOOD, thresholds={"roc_auc": 0.75, "recall": 0.60})
    assert not blessing.blessed
    assert "recall 0.5600 is below the threshold 0.6000" in blessing.reason
    assert "roc_auc" not in blessing.reason
    assert blessing.threshold_results["roc_auc"]["passed"] is True


@pytest.mark.parametrize(
    ("challenger", "blessed"),
    [
        (0.40, True),  # 0.02 lower than the champion: better by more than the margin
        (0.415, False),  # 0.005 lower: better, but by less than the margin
        (0.45, False),  # higher log loss is worse
    ],
)
def test_lower_is_better_metrics_need_the_margin_downwards(challenger: float, blessed: bool) -> None:
    blessing = decide({**GOOD, "log_loss": challenger}, champion_score=0.42, champion_version="1", metric="log_loss")
    assert blessing.blessed is blessed
    assert "lower is better" in blessing.reason
    assert f"log_loss {challenger:.4f} vs champion version 1 0.4200" in blessing.reason


def test_a_log_loss_threshold_is_an_upper_bound() -> None:
    assert decide(GOOD, thresholds={"log_loss": 0.5}).blessed  # 0.42 <= 0.5
    assert not decide(GOOD, thresholds={"log_loss": 0.4}).blessed  # 0.42 > 0.4


def test_without_a_champion_the_thresholds_decide_and_the_reason_says_so() -> None:
    blessing = decide(
        GOOD, thresholds={"roc_auc": 0.75}, no_comparison_reason="no model named 'churn' is registered yet"
    )
    assert blessing.blessed
    assert blessing.reason == (
        "Blessed on thresholds only: no model named 'churn' is registered yet, "
        "and all 1 threshold(s) pass (roc_auc 0.8400 >= 0.7500)."
    )
    assert blessing.champion_score is None and blessing.champion_version is None
    assert blessing.challenger_score == 0.84


def test_a_challenger_that_ties_the_champion_is_not_blessed() -> None:
    blessing = decide(GOOD, champion_score=0.84, champion_version="2")
    assert not blessing.blessed
    assert "improvement of +0.0000 that misses the margin 0.0100" in blessing.reason
    assert blessing.champion_score == 0.84 and blessing.champion_version == "2"


def test_a_challenger_better_by_the_margin_is_blessed_with_both_numbers() -> None:
    blessing = decide(GOOD, challenger_score=0.85, champion_score=0.80, champion_version="4", margin=0.02)
    assert blessing.blessed
    assert blessing.reason.startswith(
        "Blessed: challenger roc_auc 0.8500 vs champion version 4 0.8000, an improvement of 0.0500"
    )
    assert blessing.challenger_score == 0.85  # the same-rows score, not the metrics artifact's 0.84


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"margin": -0.01}, "margin=-0.01: must be a number >= 0"),
        ({"margin": float("nan")}, "margin=nan"),
        ({"metric": "auc"}, "unknown metric 'auc'"),
        ({"thresholds": {"auroc": 0.7}}, "thresholds names unknown metric 'auroc'"),
        ({"thresholds": {"roc_auc": "high"}}, "thresholds\\['roc_auc'\\]='high': must be a finite number"),
    ],
)
def test_bad_parameters_are_refused_by_name(arguments: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        decide(GOOD, **arguments)


def test_metrics_without_the_gate_metric_are_refused() -> None:
    with pytest.raises(DataError, match="hold no 'roc_auc'"):
        decide({"accuracy": 0.8})


def test_a_blessing_survives_its_json_file(tmp_path: Path) -> None:
    blessing = decide(GOOD, champion_score=0.80, champion_version="7", thresholds={"roc_auc": 0.75})
    blessing.save(str(tmp_path / "blessing.json"))
    assert Blessing.load(str(tmp_path / "blessing.json")) == blessing
    document = json.loads((tmp_path / "blessing.json").read_text())
    assert document["blessed"] is True and document["champion_version"] == "7"
    assert document["decided_at"].endswith("+00:00")
    (tmp_path / "other.json").write_text('{"blessed": "yes"}')
    with pytest.raises(DataError, match="not a gate blessing, missing field"):
        Blessing.load(str(tmp_path / "other.json"))


# gate(): real models, a real SQLite registry ----------------------------------------------------------------


def _crown(tracking_uri: str, model_name: str, model: TrainedModel, alias: bool = True) -> str:
    """Register ``model`` as a version of ``model_name`` (and the champion), as a past run would have."""
    import mlflow
    from mlflow import MlflowClient

    from mlkeel.tracking import connect

    connect(tracking_uri)
    version = str(mlflow.register_model(model.model_uri, model_name).version)
    if alias:
        MlflowClient(tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
            model_name, CHAMPION_ALIAS, version
        )
    return version


def _roc_auc_on_all_rows(model_dir_or_uri: str, test_path: Path) -> float:
    return _roc_auc_on_rows(model_dir_or_uri, pq.read_table(test_path).to_pandas())


@pytest.fixture
def holdout(telco_split: tuple[Path, Path]) -> Path:
    return telco_split[1]


def test_a_better_challenger_is_blessed_both_scored_on_the_same_rows(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    champion = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    challenger = train_telco(mlflow_shared_uri, "strong")
    version = _crown(mlflow_shared_uri, model_name, champion)

    blessing = gate(
        str(challenger.model_dir),
        str(holdout),
        challenger.holdout_metrics(holdout),
        model_name,
        "Churn",
        "Yes",
        str(tmp_path / "blessing.json"),
        mlflow_shared_uri,
        thresholds={"roc_auc": 0.75},
        mlflow_run_id=challenger.run_id,
    )

    assert blessing.blessed, blessing.reason
    assert blessing.champion_version == version
    # Both numbers recomputed here, independently, on every holdout row (1,409): they are what the gate used.
    assert blessing.champion_score == pytest.approx(_roc_auc_on_all_rows(f"models:/{model_name}/{version}", holdout))
    assert blessing.challenger_score == pytest.approx(_roc_auc_on_all_rows(str(challenger.model_dir), holdout))
    assert blessing.challenger_score - blessing.champion_score > 0.15
    assert f"vs champion version {version} {blessing.champion_score:.4f}" in blessing.reason
    assert Blessing.load(str(tmp_path / "blessing.json")) == blessing
    run = MlflowClient(mlflow_shared_uri, registry_uri=mlflow_shared_uri).get_run(challenger.run_id).data
    assert run.metrics[GateRunMetric.BLESSED] == 1.0
    assert run.metrics[f"{GateRunMetric.CHAMPION_PREFIX}roc_auc"] == pytest.approx(blessing.champion_score)
    assert run.tags[LineageTag.BLESSING_REASON] == blessing.reason


def test_a_worse_challenger_is_not_blessed_and_the_champion_stays(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    champion = train_telco(mlflow_shared_uri, "strong")
    challenger = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    version = _crown(mlflow_shared_uri, model_name, champion)

    blessing = gate(
        str(challenger.model_dir),
        str(holdout),
        challenger.holdout_metrics(holdout),
        model_name,
        "Churn",
        "Yes",
        str(tmp_path / "blessing.json"),
        mlflow_shared_uri,
        thresholds={"roc_auc": 0.55},
    )

    assert not blessing.blessed
    assert blessing.challenger_score < blessing.champion_score - 0.15
    assert blessing.reason.startswith(
        f"Not blessed: challenger roc_auc {blessing.challenger_score:.4f} vs champion version {version} "
        f"{blessing.champion_score:.4f}"
    )
    assert json.loads((tmp_path / "blessing.json").read_text())["blessed"] is False
    client = MlflowClient(mlflow_shared_uri, registry_uri=mlflow_shared_uri)
    assert str(client.get_model_version_by_alias(model_name, CHAMPION_ALIAS).version) == version


def test_without_a_registered_model_the_thresholds_decide(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    challenger = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    metrics = challenger.holdout_metrics(holdout)
    arguments = (str(challenger.model_dir), str(holdout), metrics, model_name, "Churn", "Yes")

    passed = gate(*arguments, str(tmp_path / "a.json"), mlflow_shared_uri, thresholds={"roc_auc": 0.55})
    failed = gate(*arguments, str(tmp_path / "b.json"), mlflow_shared_uri, thresholds={"roc_auc": 0.75})

    assert passed.blessed
    assert passed.reason.startswith(f"Blessed on thresholds only: no model named '{model_name}' is registered yet")
    assert passed.champion_version is None and passed.champion_score is None
    assert not failed.blessed
    assert f"roc_auc {metrics['roc_auc']:.4f} is below the threshold 0.7500" in failed.reason


def test_a_registered_model_without_a_champion_alias_is_no_champion(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    _crown(mlflow_shared_uri, model_name, train_telco(mlflow_shared_uri, "strong"), alias=False)
    challenger = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    blessing = gate(
        str(challenger.model_dir),
        str(holdout),
        challenger.holdout_metrics(holdout),
        model_name,
        "Churn",
        "Yes",
        str(tmp_path / "blessing.json"),
        mlflow_shared_uri,
    )
    assert blessing.blessed
    assert f"registered model '{model_name}' has no 'champion' alias yet" in blessing.reason


def test_a_champion_that_cannot_score_the_new_schema_leaves_the_decision_to_thresholds(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    champion = train_telco(mlflow_shared_uri, "extra_column", **EXTRA_COLUMN_MODEL)
    challenger = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    version = _crown(mlflow_shared_uri, model_name, champion)
    metrics = challenger.holdout_metrics(holdout)
    assert EXTRA_COLUMN not in pq.read_schema(holdout).names

    passed = gate(
        str(challenger.model_dir),
        str(holdout),
        metrics,
        model_name,
        "Churn",
        "Yes",
        str(tmp_path / "a.json"),
        mlflow_shared_uri,
        thresholds={"roc_auc": 0.55},
    )
    failed = gate(
        str(challenger.model_dir),
        str(holdout),
        metrics,
        model_name,
        "Churn",
        "Yes",
        str(tmp_path / "b.json"),
        mlflow_shared_uri,
        thresholds={"roc_auc": 0.75},
    )

    assert passed.blessed  # a far weaker model: the champion could not be compared, only the bounds
    assert passed.reason.startswith("Blessed on thresholds only: the champion cannot score these rows")
    assert EXTRA_COLUMN in passed.reason and "the schema changed" in passed.reason
    assert passed.champion_version == version and passed.champion_score is None
    assert not failed.blessed and "below the threshold 0.7500" in failed.reason


def test_an_unreachable_registry_fails_loudly_without_credentials_in_the_message(
    train_telco, mlflow_shared_uri: str, holdout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    challenger = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

    with pytest.raises(RegistryError) as caught:
        gate(
            str(challenger.model_dir),
            str(holdout),
            GOOD,
            "churn",
            "Churn",
            "Yes",
            str(tmp_path / "blessing.json"),
            f"http://admin:s3cret@127.0.0.1:{port}",
        )

    assert f"MLflow registry at http://127.0.0.1:{port}: could not read registered model 'churn'" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert not (tmp_path / "blessing.json").exists()


def test_cli_prints_the_blessing_and_reports_bad_parameters_in_one_line(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    challenger = train_telco(mlflow_shared_uri, "strong")
    (tmp_path / "metrics.json").write_text(json.dumps(challenger.holdout_metrics(holdout)))
    arguments = [
        "--model",
        str(challenger.model_dir),
        "--test-data",
        str(holdout),
        "--metrics-json",
        str(tmp_path / "metrics.json"),
        "--model-name",
        model_name,
        "--target-column",
        "Churn",
        "--positive-label",
        "Yes",
        "--blessing-out",
        str(tmp_path / "blessing.json"),
        "--tracking-uri",
        mlflow_shared_uri,
        "--thresholds",
        '{"roc_auc": 0.75}',
    ]

    done = CliRunner().invoke(gate_cli, arguments)
    refused = CliRunner().invoke(gate_cli, [*arguments, "--margin", "-1"])

    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["blessed"] is True
    assert json.loads(done.stdout) == json.loads((tmp_path / "blessing.json").read_text())
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "error: margin=-1.0: must be a number >= 0 (the required improvement over the champion)"
    )


# Fairness and slices in decide(): hand-made documents --------------------------------------------------------

FAILED_FAIRNESS = {
    "configured": True,
    "passed": False,
    "reason": "Fairness failed: gender demographic_parity_difference 0.4000 exceeds the threshold 0.2000 (...).",
}


def _slices(*results: tuple[str, str, float, float | None], margin: float = 0.02) -> dict:
    return {
        "columns": sorted({column for column, *_ in results}),
        "margin": margin,
        "min_rows": 100,
        "metric": "roc_auc",
        "results": [
            {
                "column": column,
                "value": value,
                "rows": 300,
                "challenger": challenger,
                "champion": champion,
                "delta": None if champion is None else challenger - champion,
                "regressed": champion is not None and champion - challenger > margin,
            }
            for column, value, challenger, champion in results
        ],
        "skipped": [],
    }


def test_a_failed_fairness_check_refuses_even_a_much_better_challenger() -> None:
    blessing = decide(GOOD, champion_score=0.60, champion_version="1", fairness=FAILED_FAIRNESS)
    assert not blessing.blessed
    assert blessing.reason == (
        "Not blessed: Fairness failed: gender demographic_parity_difference 0.4000 exceeds the threshold 0.2000 (...)."
    )
    assert blessing.fairness == FAILED_FAIRNESS
    both = decide({**GOOD, "roc_auc": 0.70}, thresholds={"roc_auc": 0.75}, fairness=FAILED_FAIRNESS)
    assert "threshold 0.7500 (higher is better); Fairness failed: gender" in both.reason


def test_an_unconfigured_fairness_document_changes_nothing() -> None:
    unconfigured = {"configured": False, "passed": True, "reason": "No sensitive columns configured."}
    assert decide(GOOD, fairness=unconfigured).reason == decide(GOOD).reason
    with pytest.raises(DataError, match="the fairness document needs 'passed'"):
        decide(GOOD, fairness={"verdict": "ok"})


def test_a_regressed_slice_refuses_a_challenger_that_wins_overall_and_names_it() -> None:
    slices = _slices(("Contract", "Month-to-month", 0.80, 0.70), ("Contract", "Two year", 0.62, 0.70))
    blessing = decide(GOOD, challenger_score=0.84, champion_score=0.80, champion_version="3", slices=slices)
    assert not blessing.blessed
    assert blessing.reason == (
        "Not blessed: challenger roc_auc 0.8400 vs champion version 3 0.8000, an improvement of 0.0400 that meets "
        "the margin 0.0100, but 1 slice(s) regress by more than the slice margin 0.0200 on roc_auc: "
        "Contract=Two year challenger 0.6200 vs champion 0.7000 (-0.0800, 300 rows); the champion stays."
    )
    within = _slices(("Contract", "Two year", 0.69, 0.70))  # 0.01 worse: inside the 0.02 slice margin
    assert decide(GOOD, challenger_score=0.84, champion_score=0.80, champion_version="3", slices=within).blessed


def test_a_blessing_with_fairness_and_slices_survives_its_json_file(tmp_path: Path) -> None:
    slices = _slices(("Contract", "Two year", 0.75, None))
    blessing = decide(GOOD, fairness={**FAILED_FAIRNESS, "passed": True, "reason": "ok"}, slices=slices)
    blessing.save(str(tmp_path / "blessing.json"))
    assert Blessing.load(str(tmp_path / "blessing.json")) == blessing
    assert json.loads((tmp_path / "blessing.json").read_text())["slices"]["results"][0]["champion"] is None


# Slices with real models ------------------------------------------------------------------------------------


def _corrupt_two_year_labels(frame):
    """A corrupted batch: within Two year contracts the churners are replaced by the cheapest customers.

    The slice keeps its churn rate (so the model's overall ranking barely suffers) but its order inside the
    slice is inverted: a model trained on it ranks Two year customers backwards.
    """
    import numpy as np

    frame = frame.copy()
    inside = (frame["Contract"] == "Two year").to_numpy()
    churners = int((frame.loc[inside, "Churn"] == "Yes").sum())
    cheapest = frame.index[inside][np.argsort(frame.loc[inside, "MonthlyCharges"].to_numpy(), kind="stable")[:churners]]
    frame.loc[inside, "Churn"] = "No"
    frame.loc[cheapest, "Churn"] = "Yes"
    return frame


# All 200 boosting rounds (no early stopping), so that the model learns the corrupted slice's inverted order fully.
CORRUPTED_MODEL = {
    "estimator": "hist_gradient_boosting",
    "hyperparameters": {"early_stopping": False},
    "rewrite": _corrupt_two_year_labels,
}


def test_a_slice_where_the_challenger_regresses_blocks_it_with_both_scores(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    champion = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    challenger = train_telco(mlflow_shared_uri, "corrupted-two-year", **CORRUPTED_MODEL)
    version = _crown(mlflow_shared_uri, model_name, champion)
    metrics = challenger.holdout_metrics(holdout)
    arguments = (str(challenger.model_dir), str(holdout), metrics, model_name, "Churn", "Yes")

    overall_only = gate(*arguments, str(tmp_path / "a.json"), mlflow_shared_uri)
    sliced = gate(
        *arguments,
        str(tmp_path / "b.json"),
        mlflow_shared_uri,
        slice_columns=["Contract"],
        slice_margin=0.02,
        slice_min_rows=100,
    )

    assert overall_only.blessed and overall_only.slices is None  # far better than the weak champion overall
    assert not sliced.blessed
    results = {result["value"]: result for result in sliced.slices["results"]}
    assert sorted(results) == ["Month-to-month", "One year", "Two year"]
    two_year = results["Two year"]
    assert two_year["regressed"] and not results["Month-to-month"]["regressed"]
    # Recomputed here on the Two year rows of the holdout, for both models.
    frame = pq.read_table(holdout).to_pandas()
    rows = frame[frame["Contract"] == "Two year"]
    assert two_year["rows"] == len(rows)
    assert two_year["challenger"] == pytest.approx(_roc_auc_on_rows(str(challenger.model_dir), rows))
    assert two_year["champion"] == pytest.approx(_roc_auc_on_rows(f"models:/{model_name}/{version}", rows))
    assert two_year["challenger"] < two_year["champion"] - 0.1
    assert (
        f"Contract=Two year challenger {two_year['challenger']:.4f} vs champion {two_year['champion']:.4f}"
        in sliced.reason
    )
    assert sliced.reason.endswith("the champion stays.")


def test_without_a_champion_slices_are_reported_not_judged(
    mlflow_shared_uri: str, train_telco, model_name: str, holdout: Path, tmp_path: Path
) -> None:
    challenger = train_telco(mlflow_shared_uri, "strong")
    blessing = gate(
        str(challenger.model_dir),
        str(holdout),
        challenger.holdout_metrics(holdout),
        model_name,
        "Churn",
        "Yes",
        str(tmp_path / "blessing.json"),
        mlflow_shared_uri,
        slice_columns=["SeniorCitizen", "PaymentMethod"],
        slice_min_rows=250,
    )
    assert blessing.blessed
    slices = blessing.slices
    assert slices["columns"] == ["SeniorCitizen", "PaymentMethod"] and slices["min_rows"] == 250
    # SeniorCitizen=1 has 222 holdout rows: below 250, not compared.
    assert [(result["column"], result["value"]) for result in slices["results"]][:1] == [("SeniorCitizen", "0")]
    assert all(result["champion"] is None and result["delta"] is None for result in slices["results"])
    assert not any(result["regressed"] for result in slices["results"])


def test_a_slice_column_missing_from_the_holdout_is_named_before_the_registry_is_asked(
    train_telco, mlflow_shared_uri: str, holdout: Path, tmp_path: Path
) -> None:
    challenger = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    with pytest.raises(SchemaMismatchError, match="slice column\\(s\\) not found: Region"):
        gate(
            str(challenger.model_dir),
            str(holdout),
            GOOD,
            "churn",
            "Churn",
            "Yes",
            str(tmp_path / "blessing.json"),
            "http://127.0.0.1:9",  # never reached
            slice_columns=["Contract", "Region"],
        )
    with pytest.raises(ParameterError, match=r"slice_margin=-0\.1"):
        gate(
            str(challenger.model_dir), str(holdout), GOOD, "churn", "Churn", "Yes", str(tmp_path / "b.json"),
            slice_columns=["Contract"], slice_margin=-0.1,
        )  # fmt: skip


def _roc_auc_on_rows(model_dir_or_uri: str, rows) -> float:
    from mlkeel.modeling import load_sklearn_model

    model = load_sklearn_model(model_dir_or_uri)
    scores = model.predict_proba(rows[list(model.feature_names_in_)])[:, list(model.classes_).index(1)]
    return float(roc_auc_score(rows["Churn"] == "Yes", scores))
