"""The Kubeflow Pipelines backend as host processes on the test control plane, from its Go module.

What ``tools/kfpapiserver/README.md`` found by hand, in one call: ``start(workdir, plane)`` runs, each as its own
process with its log under ``workdir/logs``:

- MariaDB (Debian's ``mariadb-server``) on a throwaway data folder and a free loopback port, with a user of its
  own whose password is made up at start (a throwaway local test value, never written to a file);
- an S3 stand-in: moto's server (``python -m moto.server``, PyPI ``moto[server]``) on a free loopback port, with
  keys made up at start (moto accepts any);
- the KFP API server (``tools/kfpapiserver``, KFP backend commit c5658f09ec38 of 2023-12-08: the newest the Go
  module proxy serves) against both and against the control plane;
- Argo's workflow controller v3.3.10 (``tools/argocontroller``), KFP's persistence agent and its
  scheduled-workflow controller.

The API server (and the two KFP controllers' Argo informers) call ``rest.InClusterConfig()`` only: they run in a
private mount namespace (``unshare --mount``) whose ``/run`` is a tmpfs holding the service-account files
(a token of the ServiceAccount ``ml-pipeline``, bound to ``cluster-admin``; the CA; the namespace), with
``KUBERNETES_SERVICE_HOST/PORT`` pointing at the control plane. The host's ``/run`` is untouched. So it needs
root (mount namespaces), ``mariadbd`` and moto's server, and the binaries (``python -m mlkeel.cluster.gotools
build kfpapiserver argocontroller``: about 10 minutes the first time on 2 cores; this module never builds).

The API server listens on all interfaces (``-httpPortFlag`` must be ``:PORT``: its gateway dials ``"localhost" +
rpcPortFlag``), on free ports; Argo's controller always serves ``:6060`` (pprof/healthz, fixed upstream), so one
backend runs at a time per machine. Its metrics server is switched off (no fixed ``:9090``).

By hand: ``python -m mlkeel.cluster.kfp_backend up [WORKDIR]`` (a control plane of its own, then the backend).
Tests: ``tests/cluster/test_kfp_apiserver.py`` (marker ``kfpbackend``; ``make kfp-backend-check``).
"""

from __future__ import annotations

import contextlib
import getpass
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkeel.cluster import gotools
from mlkeel.cluster.controlplane import ControlPlane, free_port, log_tail, spawn_logged, stop_process, write_kubeconfig
from mlkeel.errors import MlkeelError

TOOL = "kfpapiserver"
ARGO_TOOL = "argocontroller"
# The binaries a backend runs (tools/kfpapiserver/binaries, tools/argocontroller/binaries).
BINARIES = ((TOOL, "apiserver"), (TOOL, "persistence"), (TOOL, "scheduledworkflow"), (ARGO_TOOL, "workflow-controller"))
NAMESPACE = "kubeflow"
BACKEND_SERVICE_ACCOUNT = "ml-pipeline"  # the API server's and controllers' identity (cluster-admin here)
RUNNER_SERVICE_ACCOUNT = "pipeline-runner"  # the runs' pods (the API server's DEFAULTPIPELINERUNNERSERVICEACCOUNT)
BUCKET = "mlpipeline"
DB_USER = "kfp"
DB_NAME = "mlpipeline"
# Argo never runs a pod here (kwok's nodes): the executor image is only a name in the pods it creates.
EXECUTOR_IMAGE = "argoexec:mlkeel-local"
ARGO_CRDS = (
    "workflows",
    "workflowtemplates",
    "clusterworkflowtemplates",
    "cronworkflows",
    "workfloweventbindings",
    "workflowtaskresults",
    "workflowtasksets",
)
START_TIMEOUT_S = 120.0
TOKEN_LIFETIME_S = 24 * 3600
# Run a command "in cluster" on the host: a private mount namespace, a tmpfs on /run with the service-account
# files rest.InClusterConfig() reads, and the persistence agent's API token (checked only in multi-user mode).
# $1: the folder holding token, ca.crt and namespace; the rest: the command.
IN_CLUSTER_SCRIPT = """set -e
mount -t tmpfs -o mode=0755 tmpfs /run
sa=/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$sa" /run/secrets/kubeflow/tokens
cp "$1/token" "$1/ca.crt" "$1/namespace" "$sa/"
cp "$1/token" /run/secrets/kubeflow/tokens/persistenceagent-sa-token
shift
exec "$@"
"""


class KfpBackendError(MlkeelError):
    """The KFP backend could not start, or one of its processes died."""


def missing_binaries() -> list[str]:
    """The backend's binaries not built yet, as ``tool:binary`` (all of them when Go is missing)."""
    missing = []
    for tool, binary in BINARIES:
        try:
            built = gotools.binary_path(tool, binary).is_file()
        except gotools.GoToolError:
            built = False
        if not built:
            missing.append(f"{tool}:{binary}")
    return missing


def unavailable_reason() -> str:
    """Why the backend cannot start on this machine ("" when it can): root, unshare, MariaDB, moto, binaries."""
    if os.geteuid() != 0:
        return "the KFP backend needs root (the API server runs in a private mount namespace)"
    for command, package in (("unshare", "util-linux"), ("mariadbd", "mariadb-server"), ("mariadb", "mariadb-client")):
        if shutil.which(command) is None:
            return f"{command} is not installed (apt-get install {package})"
    if shutil.which("mariadb-install-db") is None:
        return "mariadb-install-db is not installed (apt-get install mariadb-server)"
    for module in ("moto.server", "flask_cors"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            return f"{module} is not importable: pip install 'moto[server]' (the S3 stand-in)"
    missing = missing_binaries()
    if missing:
        return (
            f"the KFP backend's binaries are not built ({', '.join(missing)}): run `python -m "
            "mlkeel.cluster.gotools build kfpapiserver argocontroller` (about 10 min on 2 cores, so CI does not)"
        )
    return ""


@dataclass
class KfpBackend:
    """A running KFP backend. Stop it with ``stop()`` (or use ``running()``).

    Attributes:
        workdir: Its folder: configuration, MariaDB's throwaway data, one log file per process.
        plane: The control plane it runs against.
        host: The REST API's URL (``http://127.0.0.1:PORT``), what ``mlkeel submit --host`` takes.
        grpc_port: The API server's gRPC port.
        db_port: MariaDB's port on 127.0.0.1.
        s3_port: The S3 stand-in's port on 127.0.0.1.
        processes: Each process, by name, in start order.
        timings: Seconds each step took, by name (``mariadb``, ``moto``, ``kubernetes``, ``apiserver``...).
    """

    workdir: Path
    plane: ControlPlane
    host: str = ""
    grpc_port: int = 0
    db_port: int = 0
    s3_port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    service_account: Path = Path()
    # Throwaway values made up at start; never written to a file of the workdir.
    _db_password: str = field(default="", repr=False)
    _s3_secret_key: str = field(default="", repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The made-up DB password and S3 secret key (tests check that no log holds them)."""
        return (self._db_password, self._s3_secret_key)

    def in_cluster(self, command: list[str]) -> tuple[list[str], dict[str, str]]:
        """``command`` wrapped to run "in cluster" on the host, and the environment it needs.

        A private mount namespace whose ``/run`` holds the ServiceAccount's files (``IN_CLUSTER_SCRIPT``), and
        ``KUBERNETES_SERVICE_HOST/PORT`` pointing at the control plane: what ``rest.InClusterConfig()`` reads.
        """
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", IN_CLUSTER_SCRIPT, "in-cluster"]
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": self.plane.server.rsplit(":", 1)[1]}
        return [*argv, str(self.service_account), *command], env

    def log_path(self, name: str) -> Path:
        """The log file of one process."""
        return self.workdir / "logs" / f"{name}.log"

    def log_tail(self, name: str, lines: int = 25) -> str:
        """The last lines of a process's log, for error messages."""
        return log_tail(self.log_path(name), lines)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start one process; its output goes to its log file; it dies with this process."""
        process = spawn_logged(argv, self.log_path(name), self.workdir, env={**os.environ, **(env or {})})
        self.processes[name] = process
        return process

    def check_alive(self) -> None:
        """Raise, with the log's tail, when a process has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise KfpBackendError(
                    f"{name} exited with status {process.returncode}; the end of {self.log_path(name)}:\n"
                    f"{self.log_tail(name)}"
                )

    def api(self, path: str) -> tuple[int, Any]:
        """GET a path of the REST API (``/apis/v2beta1/...``): ``(status, parsed JSON or text)``; 0 = no answer."""
        try:
            with urllib.request.urlopen(self.host + path, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError, ValueError) as error:
            return 0, str(error)

    def stop(self) -> None:
        """Stop every process, the last started first, then delete MariaDB's data (the logs stay)."""
        for name in reversed(list(self.processes)):
            stop_process(self.processes[name], timeout=30.0)
        shutil.rmtree(self.workdir / "mariadb", ignore_errors=True)


def _wait(backend: KfpBackend, what: str, ready: Any, deadline: float, name: str) -> None:
    """Poll ``ready()`` until true; raise naming ``what`` and the log of ``name`` on timeout or a death."""
    while True:
        backend.check_alive()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if ready():
                return
        if time.monotonic() > deadline:
            raise KfpBackendError(
                f"{what} not ready in time; the end of {backend.log_path(name)}:\n{backend.log_tail(name)}"
            )
        time.sleep(0.25)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def module_dirs() -> dict[str, Path]:
    """The module-cache folders of the pinned Argo and KFP modules (their CRDs): ``go list -m`` in tools/."""
    modules = {"argo": "github.com/argoproj/argo-workflows/v3", "kfp": "github.com/kubeflow/pipelines"}
    result = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", *modules.values()],
        cwd=gotools.tool_dir(TOOL),
        capture_output=True,
        text=True,
    )
    folders = result.stdout.split()
    if result.returncode != 0 or len(folders) != len(modules) or not all(folders):
        raise KfpBackendError(f"go list -m of the pinned modules failed in tools/{TOOL}: {result.stderr.strip()}")
    return dict(zip(modules, map(Path, folders), strict=True))


def start(workdir: Path, plane: ControlPlane, *, timeout_s: float = START_TIMEOUT_S) -> KfpBackend:
    """Start MariaDB, the S3 stand-in, the KFP API server, Argo's controller and KFP's two controllers.

    Args:
        workdir: A folder of its own (created); everything the backend writes goes there.
        plane: A running control plane (``mlkeel.cluster.controlplane``); its fake nodes take the pods.
        timeout_s: How long each step may take to come up.

    Returns:
        The running ``KfpBackend``: the REST API answers ``/apis/v2beta1/healthz``.

    Raises:
        KfpBackendError: the machine lacks a part (``unavailable_reason``), or a process died or did not come
            up (the message holds its log's tail). Whatever started is stopped first.
    """
    reason = unavailable_reason()
    if reason:
        raise KfpBackendError(reason)
    workdir.mkdir(parents=True, exist_ok=True)
    backend = KfpBackend(workdir=workdir, plane=plane)
    try:
        _start(backend, timeout_s)
    except BaseException:
        backend.stop()
        raise
    return backend


def _timed(backend: KfpBackend, step: str, started: float) -> None:
    backend.timings[step] = time.monotonic() - started


def _start(backend: KfpBackend, timeout_s: float) -> None:
    workdir = backend.workdir
    started = time.monotonic()
    _start_mariadb(backend, started + timeout_s)
    _timed(backend, "mariadb", started)

    started = time.monotonic()
    backend.s3_port = free_port()
    backend.spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(backend.s3_port)])
    _wait(backend, "moto's S3 server", lambda: _listening(backend.s3_port), started + timeout_s, "moto")
    _timed(backend, "moto", started)

    started = time.monotonic()
    backend.service_account = _prepare_cluster(backend)
    _timed(backend, "kubernetes", started)
    kubeconfig = write_kubeconfig(
        workdir / "ml-pipeline.kubeconfig",
        backend.plane.server,
        backend.plane.ca_file,
        (backend.service_account / "token").read_text(),
        BACKEND_SERVICE_ACCOUNT,
    )

    def spawn_in_cluster(name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        argv, in_cluster_env = backend.in_cluster(command)
        backend.spawn(name, argv, env={**in_cluster_env, **(env or {})})

    started = time.monotonic()
    http_port, backend.grpc_port = free_port(), free_port()
    backend.host = f"http://127.0.0.1:{http_port}"
    config = workdir / "apiserver"
    _write_apiserver_config(backend, config)
    spawn_in_cluster(
        "apiserver",
        [
            str(gotools.binary_path(TOOL, "apiserver")),
            f"-config={config}",
            f"-sampleconfig={config / 'samples.json'}",
            "-logtostderr",
            f"-httpPortFlag=:{http_port}",
            f"-rpcPortFlag=:{backend.grpc_port}",
        ],
        env={
            # Throwaway values of this run's own MariaDB and S3 stand-in: environment only, no file.
            "DBCONFIG_MYSQLCONFIG_PASSWORD": backend._db_password,
            "OBJECTSTORECONFIG_SECRETACCESSKEY": backend._s3_secret_key,
        },
    )
    _wait(
        backend,
        "the KFP API server's /apis/v2beta1/healthz",
        lambda: backend.api("/apis/v2beta1/healthz")[0] == 200,
        started + timeout_s,
        "apiserver",
    )
    _timed(backend, "apiserver", started)

    started = time.monotonic()
    backend.spawn(
        "workflow-controller",
        [
            str(gotools.binary_path(ARGO_TOOL, "workflow-controller")),
            f"--kubeconfig={kubeconfig}",
            f"--namespace={NAMESPACE}",
            "--namespaced",
            f"--managed-namespace={NAMESPACE}",
            f"--executor-image={EXECUTOR_IMAGE}",
            "--loglevel=info",
        ],
        env={"LEADER_ELECTION_IDENTITY": "mlkeel-kfp-backend"},
    )
    spawn_in_cluster(
        "persistence",
        [
            str(gotools.binary_path(TOOL, "persistence")),
            "-logtostderr",
            f"-kubeconfig={kubeconfig}",
            f"-namespace={NAMESPACE}",
            "-mlPipelineAPIServerName=127.0.0.1",
            f"-mlPipelineServiceHttpPort={http_port}",
            f"-mlPipelineServiceGRPCPort={backend.grpc_port}",
        ],
    )
    spawn_in_cluster(
        "scheduledworkflow",
        [
            str(gotools.binary_path(TOOL, "scheduledworkflow")),
            "-logtostderr",
            f"-kubeconfig={kubeconfig}",
            f"-namespace={NAMESPACE}",
        ],
    )
    # The controllers say nothing when idle: alive after a moment is what can be checked before they get work.
    time.sleep(1.0)
    backend.check_alive()
    _timed(backend, "controllers", started)


def _start_mariadb(backend: KfpBackend, deadline: float) -> None:
    """A throwaway MariaDB: a fresh data folder, a free port, the user ``kfp`` with a made-up password."""
    folder = backend.workdir / "mariadb"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    user = getpass.getuser()
    install = subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--user={user}",
            f"--datadir={folder / 'data'}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        raise KfpBackendError(f"mariadb-install-db failed (exit {install.returncode}):\n{install.stderr[-2000:]}")
    backend.db_port = free_port()
    backend.spawn(
        "mariadb",
        [
            "mariadbd",
            "--no-defaults",
            f"--user={user}",
            f"--datadir={folder / 'data'}",
            "--bind-address=127.0.0.1",
            f"--port={backend.db_port}",
            f"--socket={folder / 'mysqld.sock'}",
            f"--pid-file={folder / 'mysqld.pid'}",
            "--skip-name-resolve",
        ],
    )
    backend._db_password = secrets.token_urlsafe(24)
    # The password goes through stdin, not the command line (which ps shows).
    statements = (
        f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{backend._db_password}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'127.0.0.1';\n"
    )
    client = ["mariadb", "--no-defaults", "--protocol=tcp", "-h127.0.0.1", f"-P{backend.db_port}", "-uroot"]

    def ready() -> bool:
        return subprocess.run([*client, "-e", "SELECT 1"], capture_output=True).returncode == 0

    _wait(backend, "MariaDB", ready, deadline, "mariadb")
    created = subprocess.run(client, input=statements, capture_output=True, text=True)
    if created.returncode != 0:
        raise KfpBackendError(f"creating MariaDB user {DB_USER} failed: {created.stderr.strip()}")


def _write_apiserver_config(backend: KfpBackend, folder: Path) -> None:
    """The API server's ``config.json`` (no secrets: those go by environment) and an empty samples list."""
    folder.mkdir(parents=True, exist_ok=True)
    backend._s3_secret_key = secrets.token_urlsafe(24)
    config = {
        "DBConfig": {
            "MySQLConfig": {
                "Host": "127.0.0.1",
                "Port": str(backend.db_port),
                "User": DB_USER,
                "DBName": DB_NAME,
                "GroupConcatMaxLen": "4194304",
            },
            "ConMaxLifeTime": "120s",
        },
        "ObjectStoreConfig": {
            "Host": "127.0.0.1",
            "Port": str(backend.s3_port),
            "Secure": "false",
            "Region": "us-east-1",
            "AccessKey": "mlkeel-throwaway-test-key",  # moto accepts any key; the secret key is made up at start
            "BucketName": BUCKET,
            "PipelinePath": "pipelines",
        },
        "DBDriverName": "mysql",
        "ARCHIVE_CONFIG_LOG_FILE_NAME": "main.log",
        "ARCHIVE_CONFIG_LOG_PATH_PREFIX": "/artifacts",
        "InitConnectionTimeout": "30s",
        "DEFAULTPIPELINERUNNERSERVICEACCOUNT": RUNNER_SERVICE_ACCOUNT,
        "CacheEnabled": "true",
        "CRON_SCHEDULE_TIMEZONE": "UTC",
        "CACHE_IMAGE": "gcr.io/google-containers/busybox",
        "CACHE_NODE_RESTRICTIONS": "false",
        "POD_NAMESPACE": NAMESPACE,
        # Read at start with no default; nothing listens there (no visualization server here).
        "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST": "127.0.0.1",
        "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT": str(free_port()),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "samples.json").write_text("[]\n")


def _prepare_cluster(backend: KfpBackend) -> Path:
    """Namespace, CRDs, ServiceAccounts, RBAC and Argo's ConfigMap; returns the service-account files' folder."""
    import yaml
    from kubernetes import client as k8s

    folders = module_dirs()
    crd_files = [folders["argo"] / "manifests/base/crds/minimal" / f"argoproj.io_{name}.yaml" for name in ARGO_CRDS]
    crd_files.append(folders["kfp"] / "manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml")
    with backend.plane.api_client() as api_client:
        extensions = k8s.ApiextensionsV1Api(api_client)
        names = []
        for path in crd_files:
            document = yaml.safe_load(path.read_text())
            names.append(document["metadata"]["name"])
            with _exists_ok():
                extensions.create_custom_resource_definition(document)

        def established() -> bool:
            for name in names:
                conditions = extensions.read_custom_resource_definition(name).status.conditions or []
                if not any(c.type == "Established" and c.status == "True" for c in conditions):
                    return False
            return True

        _wait(backend, "the Argo and ScheduledWorkflow CRDs", established, time.monotonic() + 30, "kubernetes")

        core = k8s.CoreV1Api(api_client)
        with _exists_ok():
            core.create_namespace({"metadata": {"name": NAMESPACE}})
        for account in (BACKEND_SERVICE_ACCOUNT, RUNNER_SERVICE_ACCOUNT):
            with _exists_ok():
                core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": account}})
        with _exists_ok():
            k8s.RbacAuthorizationV1Api(api_client).create_cluster_role_binding(
                {
                    "metadata": {"name": "mlkeel-kfp-backend"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": BACKEND_SERVICE_ACCOUNT, "namespace": NAMESPACE}],
                }
            )
        with _exists_ok():
            # No fixed metrics port (:9090) on a shared machine.
            core.create_namespaced_config_map(
                NAMESPACE,
                {"metadata": {"name": "workflow-controller-configmap"}, "data": {"metricsConfig": "enabled: false\n"}},
            )
        token = core.create_namespaced_service_account_token(
            BACKEND_SERVICE_ACCOUNT,
            NAMESPACE,
            {
                "spec": {
                    "audiences": ["https://kubernetes.default.svc.cluster.local"],
                    "expirationSeconds": TOKEN_LIFETIME_S,
                }
            },
        ).status.token
    folder = backend.workdir / "serviceaccount"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / "token").touch(mode=0o600)
    (folder / "token").write_text(token)
    shutil.copyfile(backend.plane.ca_file, folder / "ca.crt")
    (folder / "namespace").write_text(NAMESPACE)
    return folder


def container_driver(
    backend: KfpBackend, workflow: dict[str, Any], task: str, *, dag_execution_id: int = 0, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run KFP's real v2 driver (``tools/kfpapiserver``) on the host for one task, as Argo's pod would.

    The arguments are those the API server wrote into the Workflow for ``<task>-driver`` (component, task and
    container specs, the task's Kubernetes config), resolved from the Workflow's annotations. No ML Metadata
    server runs here (the release's is C++; ``tools/kfpapiserver/mlmd_grpc_shim.py`` serves the PyPI wheel's store
    in a venv of its own, by hand): the driver is pointed at a closed port, so a task whose arguments parse stops at
    its first MLMD call. What this shows: where the 2023 driver stops on a task's own arguments.

    Args:
        backend: The running backend (its API server's gRPC port is the driver's cache endpoint).
        workflow: The Argo Workflow the API server created for a run (a dict, as the cluster returns it).
        task: The pipeline task's name (``train``).
        dag_execution_id: The parent DAG's MLMD execution id (unused before the first MLMD call).
        timeout_s: How long the driver may run.

    Returns:
        The finished driver process (return code, stdout, stderr).

    Raises:
        KfpBackendError: The Workflow has no driver task for ``task``.
    """
    import re

    annotations = workflow["metadata"].get("annotations", {})
    templates = {template["name"]: template for template in workflow["spec"]["templates"]}
    root: dict[str, Any] = templates.get("root", {"dag": {"tasks": []}})
    driver_task = next((t for t in root["dag"]["tasks"] if t["name"] == f"{task}-driver"), None)
    if driver_task is None:
        raise KfpBackendError(f"Workflow {workflow['metadata']['name']} has no task {task}-driver in its root DAG")

    def resolve(value: str) -> str:
        return re.sub(r"\{\{workflow\.annotations\.([^}]+)\}\}", lambda m: annotations[m.group(1)], value)

    parameters = {p["name"]: resolve(p.get("value", "")) for p in driver_task["arguments"]["parameters"]}
    # The pipeline's name is a literal argument of the driver template the task calls.
    driver_args = templates.get(driver_task.get("template", ""), {}).get("container", {}).get("args", [])
    pipeline_name = driver_args[driver_args.index("--pipeline_name") + 1] if "--pipeline_name" in driver_args else ""
    outputs = backend.workdir / "driver" / task
    outputs.mkdir(parents=True, exist_ok=True)
    command = [
        str(gotools.binary_path(TOOL, "driver")),
        "--type=CONTAINER",
        f"--pipeline_name={pipeline_name}",
        f"--run_id={workflow['metadata']['labels']['pipeline/runid']}",
        f"--dag_execution_id={dag_execution_id}",
        f"--component={parameters['component']}",
        f"--task={parameters['task']}",
        f"--container={parameters['container']}",
        f"--kubernetes_config={parameters.get('kubernetes-config') or '{}'}",
        "--iteration_index=-1",
        f"--cached_decision_path={outputs / 'cached-decision'}",
        f"--pod_spec_patch_path={outputs / 'pod-spec-patch'}",
        f"--condition_path={outputs / 'condition'}",
        "--mlmd_server_address=127.0.0.1",
        f"--mlmd_server_port={free_port()}",  # nothing listens: no MLMD server here
    ]
    argv, env = backend.in_cluster(command)
    env |= {"ML_PIPELINE_SERVICE_HOST": "127.0.0.1", "ML_PIPELINE_SERVICE_PORT_GRPC": str(backend.grpc_port)}
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout_s, cwd=outputs
    )


@contextlib.contextmanager
def _exists_ok() -> Any:
    """Create calls that find the object already there (a second backend on the same plane) go on."""
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except ApiException as error:
        if error.status != 409:
            raise


@contextlib.contextmanager
def running(workdir: Path, plane: ControlPlane, **options: Any) -> Any:
    """``start`` as a context manager that always stops the backend."""
    backend = start(workdir, plane, **options)
    try:
        yield backend
    finally:
        backend.stop()


def main(argv: list[str] | None = None) -> int:
    """``up [WORKDIR]``: a control plane and the KFP backend on it; print the API's URL; run until interrupted."""
    import tempfile

    from mlkeel.cluster import controlplane

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "up":
        print("usage: python -m mlkeel.cluster.kfp_backend up [WORKDIR]", file=sys.stderr)
        return 2
    workdir = Path(args[1]) if len(args) > 1 else Path(tempfile.mkdtemp(prefix="mlkeel-kfp-backend-"))
    try:
        with controlplane.running(workdir / "cluster") as plane, running(workdir / "backend", plane) as backend:
            steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in backend.timings.items())
            print(f"KFP backend up ({steps}): {backend.host}")
            print(f"  mlkeel submit training --host {backend.host} --upload")
            print(f"  export KUBECONFIG={plane.kubeconfig}")
            print(f"  logs: {workdir / 'backend' / 'logs'}   (Ctrl-C stops it)", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while True:
                time.sleep(1)
                plane.check_alive()
                backend.check_alive()
    except (KeyboardInterrupt, SystemExit):
        return 0
    except MlkeelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
