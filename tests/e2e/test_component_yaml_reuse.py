"""A user's own pipeline built from the compiled component YAML files, compiled and run locally.

The pipeline itself is defined once, in ``mlkeel.cluster.composed`` (the KFP backend check compiles it too).
"""

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kfp import local

from mlkeel.cluster.composed import compile_composed_pipeline, composed_pipeline

pytestmark = pytest.mark.pipeline


def test_ingest_validate_split_from_yaml_runs_locally(tmp_path: Path, telco_csv: Path) -> None:
    compiled = compile_composed_pipeline(tmp_path / "prep.yaml")
    assert compiled.stat().st_size > 0
    prep = composed_pipeline()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    result = prep(data_uri=str(telco_csv), holdout=0.5)
    holdout = pq.read_table(result.output.path)
    assert holdout.num_rows in (3521, 3522)
    assert set(holdout.column("Churn").to_pylist()) == {"Yes", "No"}
