"""Ask the Kubeflow Pipelines backend's own Go code whether it accepts mlkeel's compiled pipelines.

``tools/kfpcheck`` (built once through :mod:`mlkeel.cluster.gotools`) does what the KFP API server does when it
creates a run: parse the compiled YAML (pipeline spec + Kubernetes platform spec), compile the run's Argo
Workflow with the backend's ``argocompiler`` and validate it with Argo's ``ValidateWorkflow``. It prints one
line per pipeline (``training.yaml  mlkeel-training  accepted  templates=7``) and exits non-zero when the
backend refuses one. Which KFP commit it is built from, and why: ``tools/kfpcheck/README.md``.

CLI: ``python -m mlkeel.cluster.backend_check [--driver] [--workflow-dir DIR] [YAML...]``; without YAML files
it checks every compiled pipeline in ``pipelines/`` and the composed pipeline of :mod:`mlkeel.cluster.composed`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlkeel.cluster.gotools import GoToolError, ensure_binary

TOOL_NAME = "kfpcheck"
COMPOSED_YAML_NAME = "composed.yaml"
# Compiled pipeline YAML starts with this comment block (kfp's compiler writes it).
PIPELINE_HEADER = "# PIPELINE DEFINITION"


@dataclass(frozen=True)
class BackendVerdict:
    """What the KFP backend said about a set of compiled pipelines.

    Attributes:
        returncode: kfpcheck's exit status: 0 all accepted, 1 some refused, 2 usage error.
        lines: One line per pipeline (file, pipeline name, ``accepted`` or ``refused: <error>``, templates).
        stderr: kfpcheck's standard error (empty unless it failed before checking).
    """

    returncode: int
    lines: list[str]
    stderr: str

    @property
    def accepted(self) -> bool:
        """True when the backend accepted every pipeline."""
        return self.returncode == 0


def compiled_pipelines(folder: Path | None = None) -> list[Path]:
    """Every compiled pipeline YAML in ``folder`` (default: the installation's ``pipelines/``), sorted.

    Args:
        folder: A folder of ``*.yaml`` files; only those that start with kfp's pipeline header count.

    Returns:
        The compiled pipeline files.
    """
    if folder is None:
        from mlkeel.compiler import source_root

        folder = source_root() / "pipelines"
    return sorted(path for path in folder.glob("*.yaml") if path.read_text().startswith(PIPELINE_HEADER))


def compile_composed(folder: Path) -> Path:
    """Compile the composed pipeline (:mod:`mlkeel.cluster.composed`) into ``folder``.

    ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` is set first (as for the golden YAML); it takes effect
    only when protobuf was not imported yet in this process.

    Args:
        folder: Where to write ``composed.yaml``.

    Returns:
        The compiled YAML file.
    """
    os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    from mlkeel.cluster.composed import compile_composed_pipeline

    return compile_composed_pipeline(folder / COMPOSED_YAML_NAME)


def check_pipelines(
    paths: list[Path], *, workflow_dir: Path | None = None, driver: bool = False, quiet: bool = False
) -> BackendVerdict:
    """Run the KFP backend's run-creation checks (``tools/kfpcheck``) on compiled pipeline files.

    Args:
        paths: Compiled pipeline YAML files.
        workflow_dir: When given, the Argo Workflow of each accepted pipeline is written there
            (``<file stem>.workflow.yaml``).
        driver: Also parse each task's Kubernetes config as the backend's driver does when the run starts.
        quiet: Say nothing while building the tool the first time.

    Returns:
        The backend's verdict.

    Raises:
        GoToolError: Go is missing or the tool does not build.
    """
    binary = ensure_binary(TOOL_NAME, quiet=quiet)
    command = [str(binary)]
    if workflow_dir is not None:
        command += ["-workflow-dir", str(workflow_dir)]
    if driver:
        command.append("-driver")
    completed = subprocess.run([*command, *map(str, paths)], capture_output=True, text=True)
    return BackendVerdict(completed.returncode, completed.stdout.splitlines(), completed.stderr)


def main(argv: list[str] | None = None) -> int:
    """Check the given compiled pipelines, or all of mlkeel's plus the composed one; print the backend's lines."""
    parser = argparse.ArgumentParser(
        prog="python -m mlkeel.cluster.backend_check",
        description="Ask the KFP backend's Go code (tools/kfpcheck) whether it accepts compiled pipelines.",
    )
    parser.add_argument("yaml", nargs="*", type=Path, help="compiled pipeline YAML (default: pipelines/ + composed)")
    parser.add_argument("--workflow-dir", type=Path, help="write each accepted pipeline's Argo Workflow here")
    parser.add_argument(
        "--driver", action="store_true", help="also parse each task's Kubernetes config as the backend's driver does"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlkeel-backend-check-") as scratch:
        paths = args.yaml or [*compiled_pipelines(), compile_composed(Path(scratch))]
        try:
            verdict = check_pipelines(paths, workflow_dir=args.workflow_dir, driver=args.driver)
        except GoToolError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    for line in verdict.lines:
        print(line)
    if verdict.stderr:
        print(verdict.stderr, end="", file=sys.stderr)
    return verdict.returncode


if __name__ == "__main__":
    raise SystemExit(main())
