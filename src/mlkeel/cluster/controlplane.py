"""A real Kubernetes control plane on 127.0.0.1, from the project's own build of the upstream components.

``tools/kubecluster`` links etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok of one
Kubernetes release into one binary (see its README). ``start`` runs each as its own process:

- etcd on free loopback ports, its data in the work folder;
- kube-apiserver with TLS (a CA of its own), RBAC + Node authorization, the default admission plugins (Pod
  Security included), service-account tokens signed by a key of its own, and one static admin token;
- kube-controller-manager (Deployments, ReplicaSets, garbage collection, service accounts and their tokens...)
  and kube-scheduler, both through an admin kubeconfig;
- kwok, which plays the kubelet of fake nodes: the scheduler places pods on them and kwok reports them Running
  and Ready. No container ever runs. Pods whose image is in ``never_ready_images`` stay Pending (un-Ready), the
  way a broken image never becomes Ready on a real node.

Used by the cluster tests (``tests/cluster``) and by hand: ``python -m mlkeel.cluster.controlplane up``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkeel.cluster.gotools import ensure_binary
from mlkeel.errors import MlkeelError

TOOL = "kubecluster"
ADMIN_USER = "mlkeel-admin"
# The scheduler, the controller manager's shared informers and kwok act as this user: the audit log leaves it
# out, so what it holds is what clients (tests, deploy) did.
COMPONENTS_USER = "mlkeel-components"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
SERVICE_CIDR = "10.96.0.0/16"
# The first address of the service range: the apiserver's own `kubernetes` Service, a SAN of its certificate.
KUBERNETES_SERVICE_IP = "10.96.0.1"
FAKE_NODE_CIDR = "10.244.0.0/24"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# A broken image: pods that run it never become Ready (kwok leaves them Pending).
NEVER_READY_IMAGE = "mlkeel.invalid/never-ready:0"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
PR_SET_PDEATHSIG = 1  # prctl option: the child gets a signal when the process that started it dies
# Audit what clients do to resources (who, verb, resource, name, response code), not what the control plane's
# own components do: tests read it to see every call deploy made, as the server saw it.
AUDIT_POLICY = f"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [{COMPONENTS_USER}, "system:apiserver", "system:kube-scheduler", "system:kube-controller-manager"]
  - level: None
    userGroups: ["system:serviceaccounts:kube-system", "system:nodes"]
  - level: None
    nonResourceURLs: ["*"]
  - level: Metadata
"""


class ControlPlaneError(MlkeelError):
    """The control plane could not start, or a component died."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (also the tests' port for their own servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop a child process: SIGTERM, then SIGKILL when it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a process's log file, for error messages; ``(no log)`` when there is none."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


# ----------------------------------------------------------------------------------------------------------
# Certificates and keys
# ----------------------------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def write_pki(folder: Path) -> dict[str, Path]:
    """Write a CA, the apiserver's serving certificate signed by it, and the service-account signing key.

    Args:
        folder: Where to write (created).

    Returns:
        Paths by role: ``ca``, ``ca_key``, ``apiserver_cert``, ``apiserver_key``, ``sa_key``, ``sa_pub``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid_from, valid_to = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)

    def pem_key(key: Any) -> bytes:
        return bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlkeel-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    addresses = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address(KUBERNETES_SERVICE_IP)]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name) for name in names] + [x509.IPAddress(address) for address in addresses]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # Service-account tokens: RS256, the algorithm every Kubernetes token reviewer accepts.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths = {
        "ca": folder / "ca.crt",
        "ca_key": folder / "ca.key",
        "apiserver_cert": folder / "apiserver.crt",
        "apiserver_key": folder / "apiserver.key",
        "sa_key": folder / "sa.key",
        "sa_pub": folder / "sa.pub",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths["ca_key"], pem_key(ca_key))
    paths["apiserver_cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths["apiserver_key"], pem_key(server_key))
    _write_private(paths["sa_key"], pem_key(sa_key))
    paths["sa_pub"].write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return paths


def issue_client_cert(
    folder: Path, name: str, common_name: str, organizations: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Issue a client certificate signed by the CA in ``folder`` (``write_pki``'s files).

    The API server maps the subject to a user: CN the user name, O the groups (``system:node:NAME`` in
    ``system:nodes`` is a kubelet for the Node authorizer).

    Args:
        folder: The PKI folder holding ``ca.crt`` and ``ca.key``.
        name: The file stem of the certificate and key written beside them.
        common_name: The user name.
        organizations: The user's groups.

    Returns:
        ``(certificate, key)`` paths.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    ca_key: Any = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([*subject, x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return cert_path, key_path


def write_kubeconfig(
    path: Path,
    server: str,
    ca_file: Path,
    token: str,
    user: str = ADMIN_USER,
    client_cert: tuple[Path, Path] | None = None,
) -> Path:
    """Write a kubeconfig with one cluster, one user (a token or a client certificate) and one current context.

    Args:
        path: The file to write (mode 0600: it holds a token).
        server: ``https://127.0.0.1:PORT``.
        ca_file: The CA that signed the server's certificate.
        token: The bearer token ("" with ``client_cert``).
        user: The user entry's name.
        client_cert: ``(certificate, key)`` files authenticating the user instead of a token.

    Returns:
        ``path``.
    """
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mlkeel-test", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [
            {
                "name": user,
                "user": (
                    {"client-certificate": str(client_cert[0]), "client-key": str(client_cert[1])}
                    if client_cert
                    else {"token": token}
                ),
            }
        ],
        "contexts": [{"name": "mlkeel-test", "context": {"cluster": "mlkeel-test", "user": user}}],
        "current-context": "mlkeel-test",
    }
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


# ----------------------------------------------------------------------------------------------------------
# kwok's stages: how fake nodes and pods change state
# ----------------------------------------------------------------------------------------------------------


def kwok_stages(never_ready_images: tuple[str, ...]) -> str:
    """The kwok Stage objects (YAML) that drive the fake nodes and their pods.

    Nodes become Ready and keep a heartbeat; pods become Running and Ready unless their first container's image
    is in ``never_ready_images``; deleted pods go away.

    Args:
        never_ready_images: Images whose pods stay Pending.

    Returns:
        The Stage documents as one YAML text.
    """
    import json

    never_ready = json.dumps(list(never_ready_images) or [NEVER_READY_IMAGE])
    # The node's conditions as kwok reports them (Ready, no pressure), stamped now: set at first and on every
    # heartbeat, so the node controller never marks the node NotReady and evicts its pods.
    node_conditions = """\
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - {lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $now | Quote }},
         message: {{ .message | Quote }}, reason: {{ .reason | Quote }}, status: {{ .status | Quote }},
         type: {{ .type | Quote }}}
      {{ end }}
"""
    return f"""\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {{name: mlkeel-node-ready}}
spec:
  resourceRef: {{apiGroup: v1, kind: Node}}
  selector:
    matchExpressions:
      - {{key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ["True"]}}
  next:
    statusTemplate: |
{node_conditions}      addresses:
      - {{address: {{{{ NodeIP | Quote }}}}, type: InternalIP}}
      - {{address: {{{{ NodeName | Quote }}}}, type: Hostname}}
      allocatable: {{cpu: "32", memory: 128Gi, pods: "110"}}
      capacity: {{cpu: "32", memory: 128Gi, pods: "110"}}
      nodeInfo: {{architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake,
                 containerRuntimeVersion: fake, kernelVersion: fake, osImage: fake, machineID: "", bootID: "",
                 systemUUID: ""}}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {{name: mlkeel-node-heartbeat}}
spec:
  resourceRef: {{apiGroup: v1, kind: Node}}
  selector:
    matchExpressions:
      - {{key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: In, values: ["True"]}}
  delay: {{durationMilliseconds: 20000}}
  next:
    statusTemplate: |
{node_conditions}---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {{name: mlkeel-pod-ready}}
spec:
  resourceRef: {{apiGroup: v1, kind: Pod}}
  selector:
    matchExpressions:
      - {{key: .metadata.deletionTimestamp, operator: DoesNotExist}}
      - {{key: .status.phase, operator: In, values: [Pending]}}
      - {{key: .spec.nodeName, operator: Exists}}
      - {{key: '.spec.containers.[0].image', operator: NotIn, values: {never_ready}}}
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - {{type: PodScheduled, status: "True", lastTransitionTime: {{{{ $now | Quote }}}}}}
      - {{type: Initialized, status: "True", lastTransitionTime: {{{{ $now | Quote }}}}}}
      - {{type: ContainersReady, status: "True", lastTransitionTime: {{{{ $now | Quote }}}}}}
      - {{type: Ready, status: "True", lastTransitionTime: {{{{ $now | Quote }}}}}}
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - {{name: {{{{ .name | Quote }}}}, image: {{{{ .image | Quote }}}}, ready: true, started: true, restartCount: 0,
         state: {{running: {{startedAt: {{{{ $now | Quote }}}}}}}}}}
      {{{{ end }}}}
      {{{{ with NodeIPsWith .spec.nodeName }}}}
      hostIP: {{{{ index . 0 | Quote }}}}
      {{{{ end }}}}
      {{{{ with PodIPsWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace }}}}
      podIP: {{{{ index . 0 | Quote }}}}
      {{{{ end }}}}
      phase: Running
      startTime: {{{{ $now | Quote }}}}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {{name: mlkeel-pod-delete}}
spec:
  resourceRef: {{apiGroup: v1, kind: Pod}}
  selector:
    matchExpressions:
      - {{key: .metadata.deletionTimestamp, operator: Exists}}
  next:
    delete: true
"""


# ----------------------------------------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the starting process dies (no orphaned control planes)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn_logged(
    argv: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process whose output (stdout and stderr) is appended to ``log_path``; it dies with its starter."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=_die_with_parent,  # only prctl: nothing that could deadlock
        )


@dataclass
class ControlPlane:
    """A running control plane. Stop it with ``stop()`` (or use ``running()``, a context manager).

    Attributes:
        workdir: Its folder: certificates, kubeconfigs, etcd data, one log file per component.
        binary: The kubecluster binary.
        server: The API server's URL (``https://127.0.0.1:PORT``).
        ca_file: The CA file that verifies the server.
        admin_token: A static token of a ``system:masters`` user (tests, and people by hand; the components have their
            own user, left out of the audit log).
        kubeconfig: An admin kubeconfig file.
        node_names: The fake nodes kwok runs.
        processes: Each component's process, by name, in start order.
        started_s: Seconds from the first process until the cluster answered and its node was Ready.
    """

    workdir: Path
    binary: Path
    server: str = ""
    ca_file: Path = Path()
    admin_token: str = ""
    kubeconfig: Path = Path()
    node_names: tuple[str, ...] = ()
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started_s: float = 0.0

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (JSON lines): every client request to a resource, with its user."""
        return self.workdir / "audit.log"

    def audit_mark(self) -> int:
        """A position in the audit log; ``audit_events(since=mark)`` returns what came after it."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit_events(self, since: int = 0, user: str = "") -> list[dict[str, Any]]:
        """Audit events after ``since`` (a mark), optionally only those of one user.

        Args:
            since: A byte offset from ``audit_mark()``.
            user: Keep only this username ("" = everyone audited).

        Returns:
            The events as dicts (``verb``, ``user.username``, ``objectRef``, ``responseStatus.code``...).
        """
        import json

        if not self.audit_log.exists():
            return []
        with self.audit_log.open("rb") as log:
            log.seek(since)
            events = [json.loads(line) for line in log.read().splitlines() if line.strip()]
        return [event for event in events if not user or event["user"].get("username") == user]

    def log_path(self, component: str) -> Path:
        """The log file of one component."""
        return self.workdir / "logs" / f"{component}.log"

    def log_tail(self, component: str, lines: int = 25) -> str:
        """The last lines of a component's log, for error messages."""
        return log_tail(self.log_path(component), lines)

    def spawn(self, component: str, *args: str) -> subprocess.Popen[bytes]:
        """Start one component of the binary with its flags; its output goes to its log file."""
        process = spawn_logged([str(self.binary), component, *args], self.log_path(component), self.workdir)
        self.processes[component] = process
        return process

    def check_alive(self) -> None:
        """Raise, with the log's tail, when a component has exited."""
        for component, process in self.processes.items():
            if process.poll() is not None:
                raise ControlPlaneError(
                    f"{component} exited with status {process.returncode}; the end of "
                    f"{self.log_path(component)}:\n{self.log_tail(component)}"
                )

    def api_client(self, token: str = "", impersonate: str = "") -> Any:
        """A ``kubernetes.client.ApiClient`` for this server, verifying its certificate.

        Args:
            token: A bearer token ("" = the admin token).
            impersonate: A user to act as (``system:serviceaccount:NS:NAME``), through the admin's
                impersonation right, as ``kubectl --as`` does.

        Returns:
            The client (close it, or use it as a context manager).
        """
        from kubernetes import client as k8s

        configuration = k8s.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        api_client = k8s.ApiClient(configuration)
        if impersonate:
            api_client.set_default_header("Impersonate-User", impersonate)
        return api_client

    def get(self, path: str, token: str = "") -> tuple[int, str]:
        """GET a path of the API server: ``(status, body)``; connection errors count as status 0."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {token or self.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as error:
            return 0, str(error)

    def stop(self) -> None:
        """Stop every component, the last started first: SIGTERM, then SIGKILL after a grace period."""
        for component in reversed(list(self.processes)):
            stop_process(self.processes[component])


def _wait(what: str, plane: ControlPlane, ready: Any, deadline: float, component: str) -> None:
    """Poll ``ready()`` until true; raise naming ``what`` and the log of ``component`` on timeout or death."""
    while True:
        plane.check_alive()
        if ready():
            return
        if time.monotonic() > deadline:
            raise ControlPlaneError(
                f"{what} not within {START_TIMEOUT_S:g}s; the end of {plane.log_path(component)}:\n"
                f"{plane.log_tail(component)}"
            )
        time.sleep(0.25)


def start(
    workdir: Path,
    *,
    nodes: int = 1,
    never_ready_images: tuple[str, ...] = (NEVER_READY_IMAGE,),
    binary: Path | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> ControlPlane:
    """Start etcd, the API server, the controller manager, the scheduler and kwok with ``nodes`` fake nodes.

    Args:
        workdir: A folder of its own (created); everything the cluster writes goes there.
        nodes: Fake nodes to create (kwok makes them Ready).
        never_ready_images: Images whose pods kwok never makes Ready.
        binary: The kubecluster binary (default: built or found by ``gotools.ensure_binary``).
        timeout_s: How long each step may take to come up.

    Returns:
        The running ``ControlPlane``: the API answers /readyz, the controllers work (the ``default``
        ServiceAccount exists) and every node is Ready.

    Raises:
        ControlPlaneError: a component died or did not come up (the message holds its log's tail). Whatever
            started is stopped first.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    plane = ControlPlane(workdir=workdir, binary=binary or ensure_binary(TOOL))
    started = time.monotonic()
    try:
        _start(plane, nodes, never_ready_images, started + timeout_s)
    except BaseException:
        plane.stop()
        raise
    plane.started_s = time.monotonic() - started
    return plane


def _start(plane: ControlPlane, nodes: int, never_ready_images: tuple[str, ...], deadline: float) -> None:
    workdir = plane.workdir
    pki = write_pki(workdir / "pki")
    plane.ca_file = pki["ca"]
    plane.admin_token = secrets.token_urlsafe(32)
    components_token = secrets.token_urlsafe(32)
    tokens = workdir / "pki" / "tokens.csv"
    _write_private(
        tokens,
        (
            f'{plane.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
            f'{components_token},{COMPONENTS_USER},{COMPONENTS_USER},"system:masters"\n'
        ).encode(),
    )
    audit_policy = workdir / "audit-policy.yaml"
    audit_policy.write_text(AUDIT_POLICY)
    # The API server's own client certificate towards kubelets (logs, exec): a real node's kubelet
    # (mlkeel.cluster.node) authenticates it by this CA and authorizes it by a SubjectAccessReview.
    kubelet_client = issue_client_cert(
        workdir / "pki", "apiserver-kubelet-client", "kube-apiserver", ("system:masters",)
    )

    etcd_client, etcd_peer, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_client}"
    plane.spawn(
        "etcd",
        f"--data-dir={workdir / 'etcd'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
        "--listen-metrics-urls=",
        "--log-level=warn",
        "--unsafe-no-fsync",  # a throwaway test store: durability is not the point, speed on a busy disk is
    )

    plane.server = f"https://127.0.0.1:{api_port}"
    plane.spawn(
        "kube-apiserver",
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={api_port}",
        f"--cert-dir={workdir / 'pki'}",
        f"--tls-cert-file={pki['apiserver_cert']}",
        f"--tls-private-key-file={pki['apiserver_key']}",
        f"--client-ca-file={pki['ca']}",
        f"--token-auth-file={tokens}",
        "--authorization-mode=Node,RBAC",
        f"--kubelet-client-certificate={kubelet_client[0]}",
        f"--kubelet-client-key={kubelet_client[1]}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki['sa_pub']}",
        f"--service-account-signing-key-file={pki['sa_key']}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--audit-policy-file={audit_policy}",
        f"--audit-log-path={plane.audit_log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",  # an event is written before its response returns: tests read it at once
        "--allow-privileged=false",
        "--profiling=false",
        "--v=1",
    )
    _wait("the API server's /readyz", plane, lambda: plane.get("/readyz")[0] == 200, deadline, "kube-apiserver")

    plane.kubeconfig = write_kubeconfig(workdir / "admin.kubeconfig", plane.server, pki["ca"], plane.admin_token)
    components = write_kubeconfig(
        workdir / "components.kubeconfig", plane.server, pki["ca"], components_token, COMPONENTS_USER
    )
    plane.spawn(
        "kube-controller-manager",
        f"--kubeconfig={components}",
        f"--authentication-kubeconfig={components}",
        f"--authorization-kubeconfig={components}",
        "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}",
        f"--cert-dir={workdir / 'pki' / 'controller-manager'}",
        "--leader-elect=false",
        "--use-service-account-credentials=true",  # each controller acts with its own RBAC role, as in clusters
        f"--service-account-private-key-file={pki['sa_key']}",
        f"--root-ca-file={pki['ca']}",
        f"--cluster-signing-cert-file={pki['ca']}",
        f"--cluster-signing-key-file={pki['ca_key']}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--controllers=*,-nodeipam",
        "--v=1",
    )
    plane.spawn(
        "kube-scheduler",
        f"--kubeconfig={components}",
        f"--authentication-kubeconfig={components}",
        f"--authorization-kubeconfig={components}",
        "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}",
        "--leader-elect=false",
        "--v=1",
    )
    stages = workdir / "kwok-stages.yaml"
    stages.write_text(kwok_stages(never_ready_images))
    plane.spawn(
        "kwok",
        f"--kubeconfig={components}",
        f"--config={stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
        f"--cidr={FAKE_NODE_CIDR}",
        "--node-ip=10.244.0.1",
        "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{free_port()}",
    )

    _wait(
        "the default ServiceAccount (the controller manager at work)",
        plane,
        lambda: plane.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        deadline,
        "kube-controller-manager",
    )
    plane.node_names = tuple(f"kwok-node-{index}" for index in range(nodes))
    with plane.api_client() as api_client:
        from kubernetes import client as k8s

        core = k8s.CoreV1Api(api_client)
        for name in plane.node_names:
            core.create_node(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
                    },
                }
            )

        def nodes_ready() -> bool:
            for node in core.list_node().items:
                conditions = {condition.type: condition.status for condition in node.status.conditions or []}
                if conditions.get("Ready") != "True":
                    return False
            return True

        _wait("every fake node Ready (kwok at work)", plane, nodes_ready, deadline, "kwok")


@contextlib.contextmanager
def running(workdir: Path, **options: Any) -> Iterator[ControlPlane]:
    """``start`` as a context manager that always stops the control plane."""
    plane = start(workdir, **options)
    try:
        yield plane
    finally:
        plane.stop()


def main(argv: list[str] | None = None) -> int:
    """``up [WORKDIR]``: start a control plane, print how to reach it, run until interrupted."""
    import tempfile

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "up":
        print("usage: python -m mlkeel.cluster.controlplane up [WORKDIR]", file=sys.stderr)
        return 2
    workdir = Path(args[1]) if len(args) > 1 else Path(tempfile.mkdtemp(prefix="mlkeel-cluster-"))
    try:
        plane = start(workdir)
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"control plane up in {plane.started_s:.1f} s: {plane.server}")
    print(f"  export KUBECONFIG={plane.kubeconfig}")
    print(f"  logs: {workdir / 'logs'}   (Ctrl-C stops it)")
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(1)
            plane.check_alive()
    except (KeyboardInterrupt, SystemExit):
        return 0
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        plane.stop()


if __name__ == "__main__":
    raise SystemExit(main())
