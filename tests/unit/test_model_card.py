"""Model card: the real numbers in HTML and Markdown, attached to the version, "not computed" parts, the CLI."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from mlkeel.components.gate.logic import decide
from mlkeel.components.model_card.cli import main as card_cli
from mlkeel.components.model_card.logic import (
    NOT_COMPUTED,
    card_context,
    model_card,
    registered_version,
    render_card,
)
from mlkeel.components.register.logic import register
from mlkeel.constants import MODEL_CARD_ARTIFACT_DIR, MODEL_CARD_HTML_FILE, ArtifactMetadata, LineageTag
from mlkeel.errors import DataError, SchemaMismatchError
from mlkeel.modeling import binary_labels, load_sklearn_model, positive_scores

METRICS = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}
# The fairness stage's JSON (format agreed with its helper); distinctive numbers to find in the card.
FAIRNESS = {
    "configured": True,
    "sensitive_columns": ["gender", "SeniorCitizen"],
    "thresholds": {"demographic_parity_difference": 0.2, "equalized_odds_difference": 0.25},
    "min_group_rows": 30,
    "by_column": {
        "gender": {
            "demographic_parity_difference": 0.0137,
            "equalized_odds_difference": 0.0421,
            "groups": {
                "Female": {"rows": 697, "selection_rate": 0.2468, "tpr": 0.5519, "fpr": 0.1012},
                "Male": {"rows": 712, "selection_rate": 0.2331, "tpr": 0.5098, "fpr": 0.0977},
            },
        },
        "SeniorCitizen": {
            "demographic_parity_difference": 0.1873,
            "equalized_odds_difference": 0.2291,
            "groups": {
                "0": {"rows": 1180, "selection_rate": 0.2051, "tpr": 0.4862, "fpr": 0.0841},
                "1": {"rows": 229, "selection_rate": 0.3924, "tpr": 0.7153, "fpr": 0.2106},
            },
        },
    },
    "passed": True,
    "reason": "Fairness passed: every difference is within its threshold.",
}
IMPORTANCE = {
    "method": "permutation",
    "metric": "roc_auc",
    "n_repeats": 5,
    "rows": 1409,
    "features": [
        {"feature": "tenure", "importance_mean": 0.0613, "importance_std": 0.0041},
        {"feature": "Contract", "importance_mean": 0.0827, "importance_std": 0.0052},
        {"feature": "gender", "importance_mean": 0.0002, "importance_std": 0.0003},
    ],
}
SLICES = {
    "columns": ["gender"],
    "margin": 0.02,
    "min_rows": 50,
    "results": [
        {"column": "gender", "value": "Female", "rows": 697, "challenger": 0.8411, "champion": 0.8273,
         "delta": 0.0138, "regressed": False},
    ],
}  # fmt: skip


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + (chunk(b"IEND", b""))
    )


@pytest.fixture
def registered(mlflow_shared_uri: str, train_telco, model_name: str, telco_split, tmp_path: Path):
    """A real registered version (strong model, its holdout metrics logged on its run) and the card's inputs."""
    import mlflow.artifacts

    from mlkeel.components.evaluate.logic import evaluate

    _, test = telco_split
    trained = train_telco(mlflow_shared_uri, "strong")
    metrics = evaluate(
        str(trained.model_dir), str(test), "Churn", "Yes", tracking_uri=mlflow_shared_uri, mlflow_run_id=trained.run_id
    ).metrics
    blessing = decide(metrics, thresholds={"roc_auc": 0.7}).to_dict()
    blessing.update({"fairness": FAIRNESS, "slices": SLICES})
    result = register(trained.model_uri, decide(metrics), model_name, mlflow_shared_uri, pipeline_run="run-77")
    files = {
        "blessing": tmp_path / "blessing.json",
        "fairness": tmp_path / "fairness.json",
        "importance": tmp_path / "importance.json",
        "plot": tmp_path / "importance.png",
    }
    files["blessing"].write_text(json.dumps(blessing))
    files["fairness"].write_text(json.dumps(FAIRNESS))
    files["importance"].write_text(json.dumps(IMPORTANCE))
    files["plot"].write_bytes(tiny_png())
    # The schema the training run logged (the validated one, in a pipeline).
    files["schema"] = Path(
        mlflow.artifacts.download_artifacts(
            run_id=trained.run_id, artifact_path="data/schema.json", dst_path=str(tmp_path / "run")
        )
    )
    return {"trained": trained, "metrics": metrics, "result": result, "files": files, "test": test}


def test_the_card_holds_the_real_numbers_in_html_and_markdown_and_is_attached_to_the_version(
    registered, mlflow_shared_uri: str, model_name: str, tmp_path: Path
) -> None:
    import mlflow.artifacts
    from mlflow import MlflowClient

    files, metrics, test = registered["files"], registered["metrics"], registered["test"]
    card = model_card(
        model_name,
        registered["result"].version,
        str(tmp_path / "card.html"),
        str(tmp_path / "card.md"),
        tracking_uri=mlflow_shared_uri,
        metrics=metrics,
        schema_path=str(files["schema"]),
        blessing_path=str(files["blessing"]),
        fairness_path=str(files["fairness"]),
        importance_path=str(files["importance"]),
        importance_plot_path=str(files["plot"]),
        test_path=str(test),
        model_uri=str(registered["trained"].model_dir),
        slice_columns=["gender"],
    )
    html = (tmp_path / "card.html").read_text()
    markdown = (tmp_path / "card.md").read_text()
    assert html == card.html and markdown == card.markdown

    # Per-slice ROC AUC by hand: the model scored on the female holdout rows only.
    frame = pq.read_table(test).to_pandas()
    female = frame[frame["gender"] == "Female"]
    model = load_sklearn_model(str(registered["trained"].model_dir))
    female_auc = roc_auc_score(
        binary_labels(female["Churn"], "Yes"), positive_scores(model, female[list(model.feature_names_in_)])
    )
    version = MlflowClient(mlflow_shared_uri, registry_uri=mlflow_shared_uri).get_model_version(model_name, "1")
    for text in (html, markdown):
        assert f"{metrics['roc_auc']:.4f}" in text and f"{metrics['log_loss']:.4f}" in text
        assert f"{female_auc:.4f}" in text and f"| {len(female)} |" in markdown
        assert "0.1873" in text and "0.2291" in text and "0.3924" in text  # fairness differences, a group rate
        assert "0.0138" in text  # the slice gate's delta
        assert version.tags[LineageTag.DATA_FINGERPRINT] in text
        assert version.tags[LineageTag.SCHEMA_HASH] in text
        assert version.tags[LineageTag.GIT_COMMIT] in text and "run-77" in text
        assert NOT_COMPUTED not in text, text[text.index(NOT_COMPUTED) - 300 : text.index(NOT_COMPUTED) + 50]
    # The top feature is the most important one (the input was not sorted), first in both tables.
    assert '<td class="num">1</td><td>Contract</td><td class="num">0.0827</td>' in html
    assert "| 1 | Contract | 0.0827 | 0.0052 |" in markdown
    assert "data:image/png;base64," in html
    # The schema the card shows is the validated one, and its hash is the one the version records.
    assert "differs from the hash" not in html
    assert "<td>customerID</td><td>string</td><td>no</td><td>key</td>" in html

    card_uri = f"runs:/{version.run_id}/{MODEL_CARD_ARTIFACT_DIR}/{MODEL_CARD_HTML_FILE}"
    assert card.card_uri == card_uri == version.tags[LineageTag.MODEL_CARD]
    downloaded = Path(mlflow.artifacts.download_artifacts(card_uri, dst_path=str(tmp_path / "back")))
    assert downloaded.read_text() == html
    markdown_back = mlflow.artifacts.download_artifacts(
        f"runs:/{version.run_id}/{MODEL_CARD_ARTIFACT_DIR}/model_card.md", dst_path=str(tmp_path / "back_md")
    )
    assert Path(markdown_back).read_text() == markdown
    assert card_uri in html  # the attached card names where it lives


def test_missing_parts_render_as_not_computed_and_values_are_escaped() -> None:
    version = {
        "model_name": "churn <b>",
        "version": "3",
        "aliases": [],
        "created": "",
        "run_id": "",
        "data_fingerprint": "",
        "schema_hash": "",
        "target_column": "",
        "positive_label": "",
        "git_commit": "",
        "mlkeel_version": "",
        "images": {},
        "pipeline_name": "",
        "pipeline_run": "",
        "library_versions": {},
        "replaced_version": "",
        "model_card": "",
    }
    unconfigured = {**FAIRNESS, "configured": False, "by_column": {}, "reason": "no sensitive columns configured"}
    html, markdown = render_card(card_context(version, metrics=METRICS, fairness=unconfigured))
    for text in (html, markdown):
        assert f"Fairness: {NOT_COMPUTED} (no sensitive columns configured)" in text
        assert f"Feature importance: {NOT_COMPUTED}" in text
        assert f"Champion comparison: {NOT_COMPUTED}" in text
        assert f"Schema: {NOT_COMPUTED}" in text
        assert "0.8400" in text
    assert "churn &lt;b&gt;" in html and "churn <b>" not in html

    hostile = {**FAIRNESS, "by_column": {"gender": {**FAIRNESS["by_column"]["gender"], "groups": {
        "<script>alert(1)</script>": {"rows": 40, "selection_rate": 0.5, "tpr": None, "fpr": None}}}}}  # fmt: skip
    html, markdown = render_card(card_context(version, fairness=hostile))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>" not in markdown
    assert '<td class="num">n/a</td>' in html  # a group without positives has no TPR: shown, not crashed

    # A schema other than the one the version was trained against is flagged, not silently shown.
    schema = {"format_version": 1, "columns": [{"name": "x", "type": "integer", "nullable": False}],
              "key_columns": [], "target_column": None}  # fmt: skip
    html, _ = render_card(card_context({**version, "schema_hash": "sha256:other"}, schema=schema))
    assert "differs from the hash the version records (sha256:other)" in html


def test_slice_columns_that_are_not_in_the_test_data_are_named(registered, mlflow_shared_uri, model_name, tmp_path):
    with pytest.raises(SchemaMismatchError, match="'Region'"):
        model_card(
            model_name,
            "1",
            str(tmp_path / "c.html"),
            str(tmp_path / "c.md"),
            tracking_uri=mlflow_shared_uri,
            test_path=str(registered["test"]),
            slice_columns=["Region"],
            attach=False,
        )


def test_the_register_artifact_names_the_version_in_metadata_or_file(tmp_path: Path) -> None:
    metadata = {ArtifactMetadata.REGISTERED_MODEL_NAME: "churn", ArtifactMetadata.REGISTERED_MODEL_VERSION: 4.0}
    assert registered_version(metadata) == ("churn", "4")
    (tmp_path / "registered.json").write_text(json.dumps({"model_name": "churn", "version": "7"}))
    assert registered_version({}, str(tmp_path / "registered.json")) == ("churn", "7")
    with pytest.raises(DataError, match="names no model and version"):
        registered_version({})


def test_the_cli_rebuilds_a_card_from_what_mlflow_holds(registered, mlflow_shared_uri, model_name, tmp_path) -> None:
    metrics = registered["metrics"]
    arguments = ["--model-name", model_name, "--version", "@champion", "--tracking-uri", mlflow_shared_uri]
    result = CliRunner().invoke(
        card_cli,
        [*arguments, "--html-out", str(tmp_path / "c.html"), "--markdown-out", str(tmp_path / "c.md")],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "1"
    html = (tmp_path / "c.html").read_text()
    assert f"{metrics['roc_auc']:.4f}" in html  # holdout metrics: from the run, where evaluate logged them
    assert "<td>Contract</td><td>string</td>" in html  # the schema the training run logged
    assert f"Fairness: {NOT_COMPUTED}" in html
    assert registered["result"].tags[LineageTag.BLESSING_REASON].split(":")[0] in html

    missing = CliRunner().invoke(
        card_cli,
        ["--model-name", model_name, "--version", "9", "--tracking-uri", mlflow_shared_uri, "--html-out",
         str(tmp_path / "x.html"), "--markdown-out", str(tmp_path / "x.md")],
    )  # fmt: skip
    assert missing.exit_code == 1
    assert f"error: registered model '{model_name}' has no version 9" in missing.output
