"""A user's own pipeline composed from mlkeel's compiled component YAML files (ingest -> validate -> split).

One definition, shared by the component-reuse test (which runs it under kfp.local) and by the checks that compile
it and hand the YAML to cluster-side tools. It uses only ``components/<stage>/component.yaml``, as a user who
never imports mlkeel's Python would.

No ``from __future__ import annotations`` here: KFP reads the pipeline function's annotations as types.
"""

from pathlib import Path
from typing import Any

COMPOSED_PIPELINE_NAME = "user-prep"
COMPOSED_STAGES = ("ingest", "validate", "split")


def load_stage_yaml(stage: str) -> Any:
    """Load one stage's compiled ``component.yaml`` the way a user of the YAML would.

    Args:
        stage: A stage folder name under ``components/`` (e.g. ``"split"``).

    Returns:
        The KFP component loaded from that YAML file.
    """
    from kfp import components

    from mlkeel.compiler import source_root

    return components.load_component_from_file(str(source_root() / "components" / stage / "component.yaml"))


def composed_pipeline() -> Any:
    """Build the composed pipeline: ingest a CSV/Parquet URI, validate it, split it, return the holdout split.

    The pipeline takes ``data_uri`` (str) and ``holdout`` (float, the test fraction) and returns the ``test_data``
    Dataset of the split stage. Its target column is the Telco churn data's ``Churn`` (positive label ``Yes``).

    Returns:
        The ``@dsl.pipeline`` object (callable under kfp.local, compilable by ``kfp.compiler``).
    """
    from kfp import dsl

    ingest, validate, split = (load_stage_yaml(stage) for stage in COMPOSED_STAGES)

    @dsl.pipeline(name=COMPOSED_PIPELINE_NAME)
    def prep(data_uri: str, holdout: float) -> dsl.Dataset:
        ingested = ingest(source_uri=data_uri)
        checked = validate(dataset=ingested.outputs["dataset"], target_column="Churn", positive_label="Yes")
        parts = split(dataset=checked.outputs["valid"], target_column="Churn", test_fraction=holdout)
        return parts.outputs["test_data"]

    return prep


def compile_composed_pipeline(output: Path) -> Path:
    """Compile the composed pipeline to ``output`` (a KFP v2 pipeline YAML).

    Args:
        output: The YAML file to write; its folder is created when missing.

    Returns:
        ``output``.
    """
    from kfp import compiler

    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(composed_pipeline(), str(output))
    return output
