"""``mlkeel submit`` and ``mlkeel schedule``, unchanged, against the real KFP API server (marker ``kfpbackend``).

The backend (``mlkeel.cluster.kfp_backend``: the KFP API server of backend commit c5658f09ec38 built from its Go
module, MariaDB, moto's S3 server, Argo's workflow controller v3.3.10, KFP's persistence agent and
scheduled-workflow controller, all host processes) runs on the test control plane; what the user sees is checked
in the REST API and in the cluster's Argo Workflow and ScheduledWorkflow objects.

Runs where the binaries are cached (``python -m mlkeel.cluster.gotools build kfpapiserver argocontroller``, about
10 minutes on 2 cores) and root, MariaDB and moto are there; otherwise it skips saying which. Never in CI (the
builds do not fit its budget): ``make kfp-backend-check`` runs it (MLKEEL_REQUIRE_KFP_BACKEND=1: fail, not skip).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlkeel.cluster import controlplane, kfp_backend
from tests.cluster.conftest import wait_for

REQUIRE = "MLKEEL_REQUIRE_KFP_BACKEND"


def _skip_reason() -> str:
    if os.environ.get(REQUIRE) == "1":
        return ""
    if os.environ.get("CI", "").lower() == "true":
        return (
            "not run in CI: the KFP backend's Go builds (tools/kfpapiserver, tools/argocontroller) cost about 10 min "
            "of a budget that is full; run `make kfp-backend-check`"
        )
    return kfp_backend.unavailable_reason()


_REASON = _skip_reason()
if os.environ.get(REQUIRE) == "1" and kfp_backend.unavailable_reason():
    raise pytest.UsageError(f"{REQUIRE}=1 but {kfp_backend.unavailable_reason()}")

pytestmark = [pytest.mark.kfpbackend, pytest.mark.skipif(bool(_REASON), reason=_REASON)]

GROUP, VERSION = "argoproj.io", "v1alpha1"
RUN_ID_LABEL = "pipeline/runid"
EXPERIMENT = "kfp-backend-check"
MLKEEL = [sys.executable, "-m", "mlkeel.cli"]


@dataclass
class Backend:
    backend: kfp_backend.KfpBackend
    plane: controlplane.ControlPlane

    def mlkeel(self, *args: str) -> str:
        """Run the mlkeel CLI against this backend; its output (it must succeed)."""
        result = subprocess.run([*MLKEEL, *args, "--host", self.backend.host], capture_output=True, text=True)
        assert result.returncode == 0, f"mlkeel {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def custom(self, plural: str, group: str = GROUP, version: str = VERSION) -> list[dict[str, Any]]:
        """The objects of one custom resource in the backend's namespace."""
        from kubernetes import client as k8s

        with self.plane.api_client() as api_client:
            listing = k8s.CustomObjectsApi(api_client).list_namespaced_custom_object(
                group, version, kfp_backend.NAMESPACE, plural
            )
        return list(listing["items"])

    def workflows_of(self, run_id: str) -> list[dict[str, Any]]:
        return [w for w in self.custom("workflows") if w["metadata"].get("labels", {}).get(RUN_ID_LABEL) == run_id]

    def run(self, run_id: str) -> dict[str, Any]:
        status, body = self.backend.api(f"/apis/v2beta1/runs/{run_id}")
        assert status == 200, f"GET run {run_id}: {status} {body}"
        return dict(body)

    def failure_details(self) -> str:
        return "\n".join(
            f"--- {name}\n{self.backend.log_tail(name, 15)}"
            for name in ("apiserver", "workflow-controller", "persistence", "scheduledworkflow")
        )


@pytest.fixture(scope="module")
def backend(control_plane: controlplane.ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with kfp_backend.running(tmp_path_factory.mktemp("kfp-backend"), control_plane) as running:
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in running.timings.items())
        print(f"\nKFP backend up: {steps} (control plane {control_plane.started_s:.1f} s)")
        yield Backend(running, control_plane)


def _run_id(output: str) -> str:
    found = re.search(r"submitted run \S+ \(([0-9a-f-]{36})\)", output)
    assert found, f"no run id in mlkeel's output:\n{output}"
    return found.group(1)


def test_submit_uploads_the_pipeline_and_the_run_becomes_an_argo_workflow(backend: Backend) -> None:
    started = time.monotonic()
    output = backend.mlkeel("submit", "training", "--upload", "--experiment", EXPERIMENT)
    submitted_s = time.monotonic() - started
    assert "uploaded pipeline 'mlkeel-training'" in output
    run_id = _run_id(output)
    workflow = wait_for(
        f"the Argo Workflow of run {run_id}", lambda: backend.workflows_of(run_id), 30, backend.failure_details
    )[0]
    created_s = time.monotonic() - started
    print(f"\nsubmit -> Workflow {workflow['metadata']['name']}: {created_s:.2f} s (mlkeel submit {submitted_s:.2f} s)")
    assert workflow["spec"]["serviceAccountName"] == kfp_backend.RUNNER_SERVICE_ACCOUNT
    images = {template.get("container", {}).get("image", "") for template in workflow["spec"]["templates"]}
    assert any("kfp-driver" in image for image in images), images

    run = backend.run(run_id)
    status, experiments = backend.backend.api("/apis/v2beta1/experiments")
    assert status == 200
    by_name = {e["display_name"]: e["experiment_id"] for e in experiments["experiments"]}
    assert run["experiment_id"] == by_name[EXPERIMENT]
    assert run["pipeline_version_reference"]["pipeline_id"]
    # Argo's controller takes the Workflow; the persistence agent reports it back: the run leaves PENDING.
    wait_for(
        "Argo's controller running the Workflow",
        lambda: backend.workflows_of(run_id)[0].get("status", {}).get("phase") == "Running",
        30,
        backend.failure_details,
    )
    state = wait_for(
        "the persistence agent reporting the run RUNNING",
        lambda: backend.run(run_id)["state"] == "RUNNING" and "RUNNING",
        60,
        backend.failure_details,
    )
    print(f"run {run_id}: {state} {time.monotonic() - started:.1f} s after submit")


def test_the_same_yaml_uploaded_twice_is_one_version(backend: Backend) -> None:
    first = backend.mlkeel("submit", "training", "--upload-only")
    second = backend.mlkeel("submit", "training", "--upload-only")
    version = re.search(r"version '(v[^']+)' \(([0-9a-f-]{36})\)", first)
    assert version and "uploaded pipeline 'mlkeel-training'" in first, first
    assert second.startswith("already there:") and version.group(2) in second, second


def test_a_dedupe_key_starts_one_run_and_one_workflow(backend: Backend) -> None:
    key = f"event-{time.time_ns()}"
    workflows_before = len(backend.custom("workflows"))
    first = backend.mlkeel("submit", "training", "--experiment", EXPERIMENT, "--dedupe-key", key)
    run_id = _run_id(first)
    second = backend.mlkeel("submit", "training", "--experiment", EXPERIMENT, "--dedupe-key", key)
    assert second.startswith("not submitted:") and run_id in second and "already exists for this dedupe key" in second
    wait_for(f"the Workflow of run {run_id}", lambda: backend.workflows_of(run_id), 30, backend.failure_details)
    time.sleep(1.0)  # a second Workflow, if the repeat had made one, would be there by now
    assert len(backend.workflows_of(run_id)) == 1
    assert len(backend.custom("workflows")) == workflows_before + 1


def test_schedule_makes_one_scheduled_workflow_that_fires(backend: Backend) -> None:
    first = backend.mlkeel("schedule", "training", "--cron", "0 6 * * *", "--experiment", EXPERIMENT)
    second = backend.mlkeel("schedule", "training", "--cron", "0 6 * * *", "--experiment", EXPERIMENT)
    assert first.startswith("scheduled mlkeel-training") and "'0 0 6 * * *'" in first, first
    assert second.startswith("already scheduled: mlkeel-training"), second
    status, listing = backend.backend.api("/apis/v2beta1/recurringruns")
    assert status == 200
    names = [r["display_name"] for r in listing["recurringRuns"]]  # the proto's field name, kept by this gateway
    assert names.count("mlkeel-training") == 1, names
    daily = [s for s in backend.custom("scheduledworkflows", "kubeflow.org", "v1beta1") if s["spec"].get("trigger")]
    assert [s["spec"]["trigger"]["cronSchedule"]["cron"] for s in daily] == ["0 0 6 * * *"]

    # An every-minute schedule: KFP's scheduled-workflow controller starts its Workflow at the next minute.
    started = time.monotonic()
    output = backend.mlkeel(
        "schedule", "training", "--cron", "* * * * *", "--name", "every-minute", "--experiment", EXPERIMENT
    )
    recurring_id = re.search(r"\(([0-9a-f-]{36})\)", output)
    assert recurring_id, output

    def fired() -> list[dict[str, Any]]:
        status, runs = backend.backend.api("/apis/v2beta1/runs?page_size=100")
        listed = runs.get("runs", []) if status == 200 and isinstance(runs, dict) else []
        return [r for r in listed if r.get("recurring_run_id") == recurring_id.group(1)]

    run = wait_for("a run of the every-minute schedule", fired, 90, backend.failure_details)[0]
    assert wait_for("its Workflow", lambda: backend.workflows_of(run["run_id"]), 30, backend.failure_details)
    print(f"\nevery-minute schedule fired its first run {time.monotonic() - started:.1f} s after mlkeel schedule")


def test_no_log_or_file_holds_the_throwaway_secrets(backend: Backend) -> None:
    workdir = backend.backend.workdir
    files = [path for path in workdir.rglob("*") if path.is_file() and "mariadb" not in path.parts]
    assert any(path.name == "apiserver.log" for path in files)
    for secret in backend.backend.secrets:
        assert len(secret) >= 24
        holding = [str(path) for path in files if secret.encode() in Path(path).read_bytes()]
        assert holding == [], f"a throwaway secret is in {holding}"


def test_the_2023_driver_refuses_the_train_tasks_kfp_kubernetes_2_17_secret(backend: Backend) -> None:
    """Where a run of the training pipeline stops on this backend: the real driver on train's own arguments.

    The API server put kfp-kubernetes 2.17's ``SecretAsEnv`` (the MLflow Secret) into train's driver arguments;
    the 2023 driver cannot parse it. Two of its fields are unknown to the 2023 proto, ``secretNameParameter`` and
    ``optional``; the error names one of them at random (jsonpb reports the first left-over key of a Go map).
    ``ingest`` (no Secret) parses and goes on to ML Metadata (none runs here).
    """
    run_id = _run_id(backend.mlkeel("submit", "training", "--experiment", EXPERIMENT))
    workflow = wait_for(f"the Workflow of run {run_id}", lambda: backend.workflows_of(run_id), 30)[0]

    train = kfp_backend.container_driver(backend.backend, workflow, "train")
    assert train.returncode != 0
    refused = re.search(
        r"KFP driver: failed to unmarshal Kubernetes config, error: "
        r'unknown field "(\w+)" in kfp_kubernetes.SecretAsEnv',
        train.stderr,
    )
    assert refused, train.stderr[-2000:]
    print(f"\ntrain driver: exit {train.returncode}: {refused.group(0)}")
    assert refused.group(1) in {"secretNameParameter", "optional"}

    # Past the Kubernetes config, into the driver's own checks (with no root DAG execution: nothing recorded it).
    ingest = kfp_backend.container_driver(backend.backend, workflow, "ingest")
    print(f"ingest driver: exit {ingest.returncode}: {ingest.stderr.strip().splitlines()[-1][:300]}")
    assert "failed to unmarshal" not in ingest.stderr
    assert "driver.Container(pipelineName=mlkeel-training, runID=" in ingest.stderr
    assert "DAG execution ID is required" in ingest.stderr
