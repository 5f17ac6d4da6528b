"""A user's own pipeline built from the compiled component YAML files, compiled and run locally.

No ``from __future__ import annotations`` here: KFP reads the pipeline's annotations as types.
"""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kfp import compiler, components, dsl, local

from mlkeel.compiler import source_root

pytestmark = pytest.mark.pipeline


def load(stage: str):
    return components.load_component_from_file(str(source_root() / "components" / stage / "component.yaml"))


def test_ingest_validate_split_from_yaml_runs_locally(tmp_path: Path, telco_csv: Path) -> None:
    ingest, validate, split = load("ingest"), load("validate"), load("split")

    @dsl.pipeline(name="user-prep")
    def prep(data_uri: str, holdout: float) -> dsl.Dataset:
        ingested = ingest(source_uri=data_uri)
        checked = validate(dataset=ingested.outputs["dataset"], target_column="Churn", positive_label="Yes")
        parts = split(dataset=checked.outputs["valid"], target_column="Churn", test_fraction=holdout)
        return parts.outputs["test_data"]

    compiler.Compiler().compile(prep, str(tmp_path / "prep.yaml"))
    assert (tmp_path / "prep.yaml").stat().st_size > 0
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    result = prep(data_uri=str(telco_csv), holdout=0.5)
    holdout = pq.read_table(result.output.path)
    assert holdout.num_rows in (3521, 3522)
    assert set(holdout.column("Churn").to_pylist()) == {"Yes", "No"}
