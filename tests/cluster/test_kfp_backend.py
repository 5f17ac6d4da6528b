"""The KFP backend's own Go code (tools/kfpcheck) accepts every compiled pipeline, and can refuse one.

kfpcheck runs what the KFP API server runs when it creates a run: the template parser, the v2 Argo compiler and
Argo's workflow validation (KFP commit and why: tools/kfpcheck/README.md). It is built on first use and cached;
these tests skip only when Go is not installed.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlkeel import __version__
from mlkeel.cluster import backend_check
from mlkeel.constants import ENV_TRACKING_URI, MLFLOW_SECRET_NAME, MLFLOW_SECRET_URI_KEY
from mlkeel.images import DEFAULT_REGISTRY
from mlkeel.pipelines.task_settings import SETTINGS
from tests.test_compiled import TRAINING_STAGES

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(shutil.which("go") is None, reason="the go command is not installed (tools/kfpcheck is Go)"),
]

IMPLEMENTATION_ANNOTATION = "pipelines.kubeflow.org/implementations-"
KUBERNETES_ANNOTATION = "pipelines.kubeflow.org/kubernetes-"


@pytest.fixture(scope="module")
def composed_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return backend_check.compile_composed(tmp_path_factory.mktemp("composed"))


@dataclass(frozen=True)
class CheckedPipelines:
    paths: list[Path]
    verdict: backend_check.BackendVerdict
    workflow_dir: Path


@pytest.fixture(scope="module")
def checked(composed_yaml: Path, tmp_path_factory: pytest.TempPathFactory) -> CheckedPipelines:
    """Every compiled pipeline through the backend once: its verdict and the Workflows it made."""
    folder = tmp_path_factory.mktemp("workflows")
    paths = [*backend_check.compiled_pipelines(), composed_yaml]
    return CheckedPipelines(paths, backend_check.check_pipelines(paths, workflow_dir=folder), folder)


def test_every_compiled_pipeline_is_accepted_by_the_kfp_backend(checked: CheckedPipelines) -> None:
    paths, verdict = checked.paths, checked.verdict
    assert {path.name for path in paths} >= {"training.yaml", "monitoring.yaml", "tuning.yaml", "composed.yaml"}
    report = "\n".join(verdict.lines) + verdict.stderr
    assert verdict.accepted, f"the KFP backend refused a pipeline:\n{report}"
    assert len(verdict.lines) == len(paths), report
    for path, line in zip(paths, verdict.lines, strict=True):
        file_name, pipeline_name, status, templates = line.split("  ")
        assert (file_name, status) == (path.name, "accepted"), line
        assert pipeline_name == next(yaml.safe_load_all(path.read_text()))["pipelineInfo"]["name"]
        assert int(templates.removeprefix("templates=")) > 0, line


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        # Caught by the API server's template parser.
        ("schema", "KFP only supports schema version 2.1.0, but the pipeline spec has version 2.0.0"),
        # Caught by the backend's Argo compiler.
        ("component_ref", 'cannot find component ref name="comp-missing"'),
        # Caught by Argo's own ValidateWorkflow on the compiled Workflow.
        (
            "dependency",
            "Failed to validate workflow for (): templates.entrypoint.tasks.root templates.root sorting failed",
        ),
    ],
)
def test_a_broken_pipeline_spec_is_refused_with_the_backends_error(
    composed_yaml: Path, tmp_path: Path, breakage: str, expected: str
) -> None:
    spec = copy.deepcopy(yaml.safe_load(composed_yaml.read_text()))
    split = spec["root"]["dag"]["tasks"]["split"]
    if breakage == "schema":
        spec["schemaVersion"] = "2.0.0"
    elif breakage == "component_ref":
        split["componentRef"]["name"] = "comp-missing"
    else:
        split["dependentTasks"] = ["no-such-task"]
    broken = tmp_path / f"broken-{breakage}.yaml"
    broken.write_text(yaml.safe_dump(spec))

    verdict = backend_check.check_pipelines([broken])

    assert verdict.returncode == 1
    (line,) = verdict.lines
    assert line.startswith(f"{broken.name}  ") and "  refused: " in line, line
    assert expected in line, line


def test_the_training_workflow_carries_the_mlkeel_images_and_the_secret_env(checked: CheckedPipelines) -> None:
    assert checked.verdict.accepted, "\n".join(checked.verdict.lines)
    workflow = yaml.safe_load((checked.workflow_dir / "training.workflow.yaml").read_text())
    assert workflow["kind"] == "Workflow"
    annotations = workflow["metadata"]["annotations"]
    images = {
        json.loads(value)["image"] for key, value in annotations.items() if key.startswith(IMPLEMENTATION_ANNOTATION)
    }
    assert images == {f"{DEFAULT_REGISTRY}/{stage}:{__version__}" for stage in TRAINING_STAGES}
    # The platform spec's Secret -> env settings reach the Workflow (the driver applies them to each pod).
    kubernetes = {
        key.removeprefix(KUBERNETES_ANNOTATION): json.loads(value)
        for key, value in annotations.items()
        if key.startswith(KUBERNETES_ANNOTATION)
    }
    mlflow_stages = [stage for stage in TRAINING_STAGES if SETTINGS[stage].mlflow]
    assert set(kubernetes) == {"comp-" + stage.replace("_", "-") for stage in mlflow_stages}
    for config in kubernetes.values():
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == MLFLOW_SECRET_NAME
        assert secret["keyToEnv"] == [{"envVar": ENV_TRACKING_URI, "secretKey": MLFLOW_SECRET_URI_KEY}]


def test_the_tuning_workflow_fans_out_the_trials_in_the_tune_image_four_at_a_time(checked: CheckedPipelines) -> None:
    from mlkeel.pipelines.task_settings import TRIAL_PARALLELISM

    assert checked.verdict.accepted, "\n".join(checked.verdict.lines)
    workflow = yaml.safe_load((checked.workflow_dir / "tuning.workflow.yaml").read_text())
    annotations = workflow["metadata"]["annotations"]
    images = {
        json.loads(value)["image"] for key, value in annotations.items() if key.startswith(IMPLEMENTATION_ANNOTATION)
    }
    assert f"{DEFAULT_REGISTRY}/tune:{__version__}" in images
    assert {f"{DEFAULT_REGISTRY}/{stage}:{__version__}" for stage in TRAINING_STAGES} <= images
    # The trials' sub-DAG: one ParallelFor over the proposed trials, bounded, its results collected as the output.
    trials_dag = json.loads(annotations["pipelines.kubeflow.org/components-comp-tune-trials"])["dag"]
    (loop,) = trials_dag["tasks"].values()
    assert loop["iteratorPolicy"] == {"parallelismLimit": TRIAL_PARALLELISM}
    assert trials_dag["outputs"]["parameters"]["Output"]["valueFromParameter"]["producerSubtask"] == "for-loop-1"
