"""A real Kubernetes node on this machine, joined to a ``controlplane`` of the same release: pods really run.

What it runs, each as a process of its own (logs in the node's work folder):

- containerd 2.x (``tools/containerd``: containerd and ctr in one binary from its Go module, and
  ``tools/containerd-shim-runc-v2``), with its own root, state and socket (never Docker's containerd), the CRI
  plugin on, runc and the CNI plugins from Debian (``runc``, ``containernetworking-plugins``);
- kubelet and kube-proxy (``tools/kubecluster`` subcommands: the control plane's build), kubelet authenticated
  by a client certificate as ``system:node:NAME`` (Node authorizer), kube-proxy in iptables mode;
- CoreDNS (``tools/coredns``, ``mlkeel.cluster.dns``) on ``NODE_IP``:53, kubelet's ``clusterDNS``: pods resolve
  Service names (``<service>.<namespace>.svc.cluster.local`` and the short ``<service>``);
- a bridge ``mlkeel0`` holding the node's address (``NODE_IP``, the gateway of the pod network ``POD_CIDR``),
  with the Service range routed to it, so a ClusterIP that kube-proxy does not translate never leaves the
  machine. Services on the host listening on ``NODE_IP`` are reachable from pods.

The pod sandbox ("pause") image is the project's own (``tools/pause``, one static file, ``docker import``-ed as
``mlkeel/pause:<key>``). Images reach containerd the way kind side-loads them: ``docker save`` piped into
``ctr -n k8s.io images import``; pods use ``imagePullPolicy: IfNotPresent`` (no registry is needed).

A machine needs: root, writable cgroups (v1 or v2), iptables, runc, the CNI plugins and a Docker engine (for the
images). ``unavailable_reason()`` says which is missing. ``python -m mlkeel.cluster.node up`` runs a control
plane with this node until interrupted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkeel.cluster import controlplane, dns, gotools
from mlkeel.cluster.controlplane import ControlPlane, ControlPlaneError, free_port, log_tail, spawn_logged, stop_process

CONTAINERD_TOOL = "containerd"
SHIM_TOOL = "containerd-shim-runc-v2"
PAUSE_TOOL = "pause"
NODE_NAME = "mlkeel-node"
BRIDGE = "mlkeel0"
POD_CIDR = "10.88.0.0/24"
NODE_IP = "10.88.0.1"
POD_NETWORK_PREFIX = 24
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for the CRI's images and containers
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")  # Debian's containernetworking-plugins, then upstream's place
CGROUP_ROOT = "mlkeel-node"
PAUSE_REPOSITORY = "mlkeel/pause"
START_TIMEOUT_S = 120.0
POD_CLEANUP_TIMEOUT_S = 20.0
# Where containerd's sockets go: a short path (a unix socket path has at most 107 bytes).
RUN_ROOT = Path("/run/mlkeel-node")
# iptables chains the node's parts create (kubelet, kube-proxy, the CNI plugins): removed when it stops.
OWN_CHAIN_PREFIXES = ("KUBE-", "CNI-")


class NodeError(ControlPlaneError):
    """The node could not start, or one of its processes died."""


def cni_bin_dir() -> Path | None:
    """The folder holding the CNI plugins (bridge, host-local, loopback, portmap, firewall), if installed."""
    for folder in CNI_BIN_DIRS:
        if all((Path(folder) / plugin).is_file() for plugin in ("bridge", "host-local", "loopback", "portmap")):
            return Path(folder)
    return None


def unavailable_reason() -> str:
    """Why a real node cannot run on this machine ("" when it can): the first missing requirement, by name."""
    if os.geteuid() != 0:
        return "a real node needs root (kubelet, containerd and runc manage cgroups, mounts and network namespaces)"
    for command, package in (("runc", "runc"), ("iptables", "iptables"), ("ip", "iproute2"), ("docker", "docker.io")):
        if shutil.which(command) is None:
            return f"{command} is not installed (Debian package {package}): a real node needs it"
    if cni_bin_dir() is None:
        return f"no CNI plugins in {' or '.join(CNI_BIN_DIRS)} (Debian package containernetworking-plugins)"
    probe = Path("/sys/fs/cgroup/memory" if Path("/sys/fs/cgroup/memory").is_dir() else "/sys/fs/cgroup") / (
        f"mlkeel-probe-{os.getpid()}"
    )
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as error:
        return f"cannot create a cgroup ({probe}: {error.strerror}): kubelet needs writable cgroups"
    check = subprocess.run(["iptables", "-w", "-t", "nat", "-L", "-n"], capture_output=True, text=True)
    if check.returncode != 0:
        return f"iptables does not work here ({check.stderr.strip()[:200]}): kube-proxy needs it"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker engine answers: the node's images come from docker save"
    return ""


def cgroup_version() -> int:
    """2 on a unified (cgroup v2 only) hierarchy, else 1 (v1 or hybrid, as kubelet counts it)."""
    return 2 if Path("/sys/fs/cgroup/cgroup.controllers").is_file() else 1


# ----------------------------------------------------------------------------------------------------------
# Binaries and images
# ----------------------------------------------------------------------------------------------------------


def containerd_bin_dir() -> Path:
    """A folder holding containerd, ctr (hard links of tools/containerd) and containerd-shim-runc-v2.

    containerd finds the shim on PATH or beside itself; the folder is keyed by both tools' source keys.
    """
    daemon, shim = gotools.ensure_binary(CONTAINERD_TOOL), gotools.ensure_binary(SHIM_TOOL)
    folder = gotools.cache_root() / "bin" / f"containerd-parts-{daemon.parent.name}-{shim.parent.name}"
    folder.mkdir(parents=True, exist_ok=True)
    for part, binary in (("containerd", daemon), ("ctr", daemon), (SHIM_TOOL, shim)):
        link = folder / part
        if not link.exists():
            os.link(binary, link)  # hard links: the busybox-style binary reads its name from /proc/self/exe
    return folder


def pause_image() -> str:
    """The project's pause image in Docker (built and imported once per pause version); returns its tag.

    The image holds one file, the static ``tools/pause`` binary, made with ``docker import`` as a user without a
    registry would.
    """
    tag = f"{PAUSE_REPOSITORY}:{gotools.source_key(PAUSE_TOOL)}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0:
        return tag
    binary = gotools.ensure_binary(PAUSE_TOOL)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tar.gettarinfo(str(binary), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755
        with binary.open("rb") as data:
            tar.addfile(info, data)
    subprocess.run(
        ["docker", "import", "--change", 'ENTRYPOINT ["/pause"]', "--change", "USER 65535:65535", "-", tag],
        input=archive.getvalue(),
        check=True,
        capture_output=True,
    )
    return tag


def normalized(image: str) -> str:
    """An image reference as containerd names it (``mlkeel/serve:1`` -> ``docker.io/mlkeel/serve:1``)."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


# ----------------------------------------------------------------------------------------------------------
# Configuration files
# ----------------------------------------------------------------------------------------------------------


def containerd_config(root: Path, state: Path, socket: Path, cni_conf: Path, sandbox_image: str) -> str:
    """The config.toml of containerd (version 3: containerd 2.x): own paths, CRI with runc, our CNI and pause image."""
    cni_bin = cni_bin_dir()
    return f"""\
version = 3
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{normalized(sandbox_image)}"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  disable_apparmor = true
  # Never below containerd's own OOM score: lowering it needs CAP_SYS_RESOURCE, which sandboxed machines (CI
  # here) lack; kubelet asks -998 for every pod sandbox and runc would fail with "can't get final child's PID".
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"
    max_conf_num = 1
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{shutil.which("runc")}"
        SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def cni_config(ipam_dir: Path) -> dict[str, Any]:
    """The pod network (a CNI conflist).

    A bridge on ``BRIDGE`` (the node's address is its gateway), host-local addresses from ``POD_CIDR`` with a
    route to the Service range through the node (no default route), port mappings, and the firewall plugin's
    FORWARD accept rules (Docker's FORWARD policy is DROP). No masquerading: pods reach nothing beyond this
    machine.
    """
    return {
        "cniVersion": "1.0.0",
        "name": "mlkeel",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    # The Service range through the node (kube-proxy's rules): pods reach ClusterIPs, and no
                    # default route, so nothing else beyond the pod network.
                    "routes": [{"dst": controlplane.SERVICE_CIDR, "gw": NODE_IP}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall", "backend": "iptables"},
        ],
    }


def kubelet_config(socket: Path, workdir: Path, ca_file: Path, port: int, healthz_port: int) -> dict[str, Any]:
    """The KubeletConfiguration: CRI socket, webhook authentication/authorization, cgroupfs under its own root.

    Image garbage collection is off (the side-loaded images cannot be pulled again) and eviction thresholds are
    low (a shared disk must not evict the tests' pods); cgroup v1 is allowed (``failCgroupV1: false``).
    """
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDomain": dns.CLUSTER_DOMAIN,
        "clusterDNS": [NODE_IP],
        "resolvConf": str(workdir / "resolv.conf"),
        "podLogsDir": str(workdir / "pod-logs"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "serializeImagePulls": False,
        "registerNode": True,
        "staticPodPath": "",
        "syncFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    """The KubeProxyConfiguration: iptables mode for ``POD_CIDR``, conntrack sysctls left as they are."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": "127.0.0.1",
        "clusterCIDR": POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


# ----------------------------------------------------------------------------------------------------------
# The node
# ----------------------------------------------------------------------------------------------------------


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


@dataclass
class Node:
    """A running real node. Stop it with ``stop()`` (or use ``running()``).

    Attributes:
        plane: The control plane it joined.
        workdir: Its folder: configs, certificates, kubelet's root, containerd's root, one log per process.
        bin_dir: The folder of containerd's parts (containerd, ctr, containerd-shim-runc-v2).
        socket: containerd's socket.
        pause_image: The pod sandbox image (Docker tag).
        processes: Each process by name, in start order.
        started_s: Seconds from starting containerd until the node was Ready, kube-proxy answered and CoreDNS was
            ready (the pause image built and loaded on the way).
        dns_s: Seconds from starting CoreDNS until its ``/ready`` answered (its API caches synced).
        images_s: Seconds it took to side-load the images ``start`` was given, after that.
    """

    plane: ControlPlane
    workdir: Path
    bin_dir: Path = Path()
    socket: Path = Path()
    pause_image: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started_s: float = 0.0
    images_s: float = 0.0
    dns_s: float = 0.0
    netns_before: set[str] = field(default_factory=set)

    def log_path(self, name: str) -> Path:
        """The log file of one of the node's processes."""
        return self.workdir / "logs" / f"{name}.log"

    def logs(self, lines: int = 40) -> str:
        """The tail of each process's log, for a failing test's report."""
        return "\n".join(f"--- {name}\n{log_tail(self.log_path(name), lines)}" for name in self.processes)

    def check_alive(self) -> None:
        """Raise, with the log's tail, when one of the node's processes has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise NodeError(
                    f"{name} exited with status {process.returncode}; the end of {self.log_path(name)}:\n"
                    f"{log_tail(self.log_path(name))}"
                )

    def ctr(self, *args: str, stdin: Any = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run ``ctr --address SOCKET -n k8s.io ARGS``."""
        return subprocess.run(
            [str(self.bin_dir / "ctr"), "--address", str(self.socket), "-n", K8S_NAMESPACE, *args],
            stdin=stdin,
            capture_output=True,
            check=check,
        )

    def images(self) -> set[str]:
        """References of the images in containerd's k8s.io namespace."""
        listed = self.ctr("images", "list", "--quiet").stdout.decode()
        return {line.strip() for line in listed.splitlines() if line.strip()}

    def load_images(self, *images: str) -> float:
        """Side-load Docker images into the node (``docker save | ctr images import``), skipping loaded ones.

        Args:
            images: Docker tags (``mlkeel/serve:0.1.0``).

        Returns:
            Seconds it took.

        Raises:
            NodeError: ``docker save`` or the import failed (the message says which image and why).
        """
        started = time.monotonic()
        missing = [image for image in images if normalized(image) not in self.images()]
        if not missing:
            return 0.0
        save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        imported = self.ctr("images", "import", "--no-unpack=false", "-", stdin=save.stdout, check=False)
        assert save.stdout is not None and save.stderr is not None
        save.stdout.close()
        save_error = save.stderr.read().decode(errors="replace")
        if save.wait() != 0:
            raise NodeError(f"docker save {' '.join(missing)} failed: {save_error.strip()}")
        if imported.returncode != 0:
            raise NodeError(
                f"ctr images import of {' '.join(missing)} failed: {imported.stderr.decode(errors='replace')}"
            )
        return time.monotonic() - started

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start one of the node's processes, logging to its own file."""
        self.processes[name] = spawn_logged(argv, self.log_path(name), self.workdir, env)

    def stop(self) -> None:
        """Delete the pods, stop every process, remove what the node left on the machine.

        kubelet tears the pods' containers and networks down; then the node removes leftover containers,
        mounts, kube-proxy's rules, the bridge and the cgroups.
        """
        with contextlib.suppress(Exception):
            self._delete_pods()
        for name in ("coredns", "kube-proxy", "kubelet"):
            if name in self.processes:
                stop_process(self.processes[name])
        if "containerd" in self.processes and self.processes["containerd"].poll() is None:
            with contextlib.suppress(Exception):
                self._remove_containers()
            stop_process(self.processes["containerd"])
        _kill_shims(self.bin_dir / SHIM_TOOL)
        with contextlib.suppress(Exception):
            _run(str(self.plane.binary), "kube-proxy", "--cleanup", check=False)
        _unmount_under(self.workdir)
        _unmount_under(self.socket.parent)
        _remove_network()
        _remove_cgroups()
        for namespace in _pod_netns() - self.netns_before:  # a pod's, when kubelet could not tear it down
            _run("ip", "netns", "delete", namespace, check=False)
        shutil.rmtree(self.socket.parent, ignore_errors=True)

    def _alive(self, *names: str) -> bool:
        return all(name in self.processes and self.processes[name].poll() is None for name in names)

    def _delete_pods(self) -> None:
        """Delete every pod with a 1 s grace period; wait (bounded) until kubelet has confirmed each deletion.

        kubelet removes a pod's object once it has stopped its containers and unmounted its volumes; what stays
        (sandboxes, their network namespaces) goes with the rest of ``stop``.
        """
        from kubernetes import client as k8s

        if not self._alive("kubelet", "containerd"):
            return
        with self.plane.api_client() as api_client:
            core, apps = k8s.CoreV1Api(api_client), k8s.AppsV1Api(api_client)
            # Their ReplicaSets would replace deleted pods: the Deployments go first.
            for deployment in apps.list_deployment_for_all_namespaces(_request_timeout=10).items:
                apps.delete_namespaced_deployment(
                    deployment.metadata.name, deployment.metadata.namespace, _request_timeout=10
                )
            for pod in core.list_pod_for_all_namespaces(_request_timeout=10).items:
                core.delete_namespaced_pod(
                    pod.metadata.name, pod.metadata.namespace, grace_period_seconds=1, _request_timeout=10
                )
            deadline = time.monotonic() + POD_CLEANUP_TIMEOUT_S
            while (
                time.monotonic() < deadline
                and self._alive("kubelet", "containerd")
                and core.list_pod_for_all_namespaces(_request_timeout=10).items
            ):
                time.sleep(0.5)

    def _remove_containers(self) -> None:
        for task in self.ctr("tasks", "list", "--quiet", check=False).stdout.decode().split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
        time.sleep(0.5)
        for task in self.ctr("tasks", "list", "--quiet", check=False).stdout.decode().split():
            self.ctr("tasks", "delete", "--force", task, check=False)
        for container in self.ctr("containers", "list", "--quiet", check=False).stdout.decode().split():
            self.ctr("containers", "delete", container, check=False)


def _pod_netns() -> set[str]:
    """The network namespaces the CNI plugins made for pod sandboxes (``/var/run/netns/cni-*``)."""
    folder = Path("/var/run/netns")
    return {path.name for path in folder.glob("cni-*")} if folder.is_dir() else set()


def _kill_shims(shim: Path) -> None:
    """SIGKILL the shim processes of this node's containerd left running (each by its process id)."""
    if not shim.name:
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "exe") == str(shim):
                os.kill(int(entry.name), 9)


def _unmount_under(folder: Path) -> None:
    """Unmount (lazily, deepest first) every mount point under ``folder`` that the node's processes left."""
    prefix = str(folder.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _remove_network() -> None:
    _run("ip", "link", "delete", BRIDGE, check=False)
    _run("ip", "route", "delete", controlplane.SERVICE_CIDR, check=False)
    _remove_chains(OWN_CHAIN_PREFIXES)


def _remove_chains(prefixes: tuple[str, ...]) -> None:
    """Delete the iptables chains whose names start with ``prefixes`` and every rule that jumps to them.

    kube-proxy's ``--cleanup`` removes its own; kubelet's (KUBE-FIREWALL, KUBE-KUBELET-CANARY) and the CNI
    firewall plugin's (CNI-FORWARD, CNI-ADMIN) stay behind otherwise.
    """
    for command in ("iptables", "ip6tables"):
        if shutil.which(command) is None:
            continue
        for table in ("filter", "nat", "mangle"):
            listed = _run(command, "-w", "-t", table, "-S", check=False).stdout.splitlines()
            chains = [
                line.split()[1] for line in listed if line.startswith("-N ") and line.split()[1].startswith(prefixes)
            ]
            for line in listed:
                words = shlex.split(line)
                if words[:1] == ["-A"] and "-j" in words and words[words.index("-j") + 1] in chains:
                    _run(command, "-w", "-t", table, "-D", *words[1:], check=False)
            for chain in chains:
                _run(command, "-w", "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(command, "-w", "-t", table, "-X", chain, check=False)


def _remove_cgroups() -> None:
    """Remove the node's cgroup tree (kubelet's ``cgroupRoot``) in every hierarchy, deepest first."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        root = hierarchy / CGROUP_ROOT
        if not root.is_dir():
            continue
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()


def _make_cgroups() -> None:
    """Create kubelet's ``cgroupRoot`` in every hierarchy (kubelet requires it to exist).

    On cgroup v1 a new cpuset cgroup starts with no CPUs and no memory nodes: it takes its parent's.
    """
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        if not hierarchy.is_dir() or not ((hierarchy / "cgroup.procs").exists() or hierarchy.name != "unified"):
            continue
        root = hierarchy / CGROUP_ROOT
        with contextlib.suppress(FileExistsError):
            root.mkdir()
        for setting in ("cpuset.cpus", "cpuset.mems"):
            if (root / setting).exists() and not (root / setting).read_text().strip():
                (root / setting).write_text((hierarchy / setting).read_text())


def _setup_network() -> None:
    """The bridge with the node's address, up, and the Service range routed to it (never out of the machine)."""
    _remove_network()
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{NODE_IP}/{POD_NETWORK_PREFIX}", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    _run("ip", "route", "add", controlplane.SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
    for setting in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"):
        path = Path("/proc/sys") / setting
        if path.exists() and path.read_text().strip() != "1":
            path.write_text("1")


def _wait(what: str, node: Node, ready: Any, deadline: float, process: str) -> None:
    while True:
        node.check_alive()
        node.plane.check_alive()
        if ready():
            return
        if time.monotonic() > deadline:
            raise NodeError(
                f"{what} not within the timeout; the end of {node.log_path(process)}:\n"
                f"{log_tail(node.log_path(process), 40)}"
            )
        time.sleep(0.5)


def start(
    plane: ControlPlane, workdir: Path, *, images: tuple[str, ...] = (), timeout_s: float = START_TIMEOUT_S
) -> Node:
    """Start containerd, kubelet and kube-proxy as node ``NODE_NAME`` of ``plane``, and load ``images``.

    Args:
        plane: A running control plane (``controlplane.start``; start it with ``nodes=0`` so every pod lands here).
        workdir: A folder of the node's own (created).
        images: Docker images to side-load before returning (the pause image always is).
        timeout_s: How long each step may take.

    Returns:
        The running ``Node``: Ready in the API, kube-proxy answering its health check, then its images loaded.

    Raises:
        NodeError: the machine lacks a requirement, or a process died or did not come up (with its log's tail).
            Whatever started is stopped and cleaned up first.
    """
    reason = unavailable_reason()
    if reason:
        raise NodeError(reason)
    workdir.mkdir(parents=True, exist_ok=True)
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    run_dir = Path(os.path.realpath(RUN_ROOT / str(os.getpid())))
    run_dir.mkdir(exist_ok=True)
    node = Node(plane=plane, workdir=workdir, socket=run_dir / "containerd.sock", netns_before=_pod_netns())
    started = time.monotonic()
    try:
        _start(node, started + timeout_s)
        node.started_s = time.monotonic() - started
        node.images_s = node.load_images(*images)
    except BaseException:
        node.stop()
        raise
    return node


def _start(node: Node, deadline: float) -> None:
    import yaml

    plane, workdir = node.plane, node.workdir
    node.bin_dir = containerd_bin_dir()
    node.pause_image = pause_image()
    _setup_network()
    taken = dns.port_taken(NODE_IP)  # before anything starts: CoreDNS would only fail after kubelet is up
    if taken:
        raise NodeError(taken)

    cni_conf = workdir / "cni" / "net.d"
    cni_conf.mkdir(parents=True, exist_ok=True)
    (cni_conf / "10-mlkeel.conflist").write_text(json.dumps(cni_config(workdir / "cni" / "ipam"), indent=2))
    config = workdir / "containerd.toml"
    config.write_text(
        containerd_config(
            workdir / "containerd" / "root", node.socket.parent / "state", node.socket, cni_conf, node.pause_image
        )
    )
    env = {**os.environ, "PATH": f"{node.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    node.spawn(
        "containerd",
        [
            str(node.bin_dir / "containerd"),
            "--config",
            str(config),
            "--log-level",
            os.environ.get("MLKEEL_CONTAINERD_LOG_LEVEL", "warn"),
        ],
        env,
    )
    _wait(
        "containerd's socket",
        node,
        lambda: node.socket.exists() and node.ctr("version", check=False).returncode == 0,
        deadline,
        "containerd",
    )
    node.load_images(node.pause_image)

    pki = plane.ca_file.parent
    kubelet_cert = controlplane.issue_client_cert(pki, "kubelet", f"system:node:{NODE_NAME}", ("system:nodes",))
    kubelet_kubeconfig = controlplane.write_kubeconfig(
        workdir / "kubelet.kubeconfig", plane.server, plane.ca_file, "", f"system:node:{NODE_NAME}", kubelet_cert
    )
    proxy_cert = controlplane.issue_client_cert(pki, "kube-proxy", "system:kube-proxy")
    proxy_kubeconfig = controlplane.write_kubeconfig(
        workdir / "kube-proxy.kubeconfig", plane.server, plane.ca_file, "", "system:kube-proxy", proxy_cert
    )
    (workdir / "resolv.conf").write_text("options ndots:1\n")  # no name server outside the machine
    kubelet_yaml = workdir / "kubelet.yaml"
    kubelet_yaml.write_text(
        yaml.safe_dump(kubelet_config(node.socket, workdir, plane.ca_file, free_port(), free_port()))
    )
    _make_cgroups()
    node.spawn(
        "kubelet",
        [
            str(plane.binary),
            "kubelet",
            f"--config={kubelet_yaml}",
            f"--kubeconfig={kubelet_kubeconfig}",
            f"--root-dir={workdir / 'kubelet'}",
            f"--cert-dir={workdir / 'kubelet' / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ],
    )
    proxy_yaml = workdir / "kube-proxy.yaml"
    proxy_config = kube_proxy_config(proxy_kubeconfig)
    proxy_yaml.write_text(yaml.safe_dump(proxy_config))
    node.spawn("kube-proxy", [str(plane.binary), "kube-proxy", f"--config={proxy_yaml}", "--v=1"])
    dns_ready, dns_started = _start_coredns(node)
    # CoreDNS needs only the API server: ready before kubelet has registered the node, so waiting for it first
    # costs nothing and times CoreDNS's own start.
    _wait("CoreDNS's /ready", node, lambda: answers(dns_ready), deadline, "coredns")
    node.dns_s = time.monotonic() - dns_started

    from kubernetes import client as k8s

    with plane.api_client() as api_client:
        core = k8s.CoreV1Api(api_client)

        def node_ready() -> bool:
            found = [item for item in core.list_node().items if item.metadata.name == NODE_NAME]
            conditions = {c.type: c.status for c in (found[0].status.conditions or [])} if found else {}
            return conditions.get("Ready") == "True"

        _wait(f"node {NODE_NAME} Ready", node, node_ready, deadline, "kubelet")

    health = f"http://{proxy_config['healthzBindAddress']}/healthz"
    _wait("kube-proxy's /healthz", node, lambda: answers(health), deadline, "kube-proxy")


def answers(url: str) -> bool:
    """Whether an HTTP GET of ``url`` answers 200 now (a health endpoint of the node's processes, a Service)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _start_coredns(node: Node) -> tuple[str, float]:
    """Start CoreDNS on ``NODE_IP``:53 with a client certificate of its own (read-only RBAC).

    Returns:
        Its ``/ready`` URL and the ``time.monotonic()`` it was started at.
    """
    plane, workdir = node.plane, node.workdir
    binary = gotools.ensure_binary(dns.COREDNS_TOOL)
    cert = controlplane.issue_client_cert(plane.ca_file.parent, "coredns", dns.COREDNS_USER)
    kubeconfig = controlplane.write_kubeconfig(
        workdir / "coredns.kubeconfig", plane.server, plane.ca_file, "", dns.COREDNS_USER, cert
    )
    with plane.api_client() as api_client:
        dns.grant_read_access(api_client)
    ready_port = free_port()
    corefile = workdir / "Corefile"
    corefile.write_text(dns.corefile(NODE_IP, kubeconfig, free_port(), ready_port))
    started = time.monotonic()
    node.spawn("coredns", [str(binary), "-conf", str(corefile)])
    return f"http://127.0.0.1:{ready_port}/ready", started


@contextlib.contextmanager
def running(plane: ControlPlane, workdir: Path, **options: Any) -> Any:
    """``start`` as a context manager that always stops and cleans up the node."""
    node = start(plane, workdir, **options)
    try:
        yield node
    finally:
        node.stop()


def main(argv: list[str] | None = None) -> int:
    """``up [WORKDIR]``: a control plane (no fake node) and this real node, until interrupted."""
    import signal
    import tempfile

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "up":
        print("usage: python -m mlkeel.cluster.node up [WORKDIR]", file=sys.stderr)
        return 2
    workdir = Path(args[1]) if len(args) > 1 else Path(tempfile.mkdtemp(prefix="mlkeel-node-"))
    try:
        with (
            controlplane.running(workdir / "control-plane", nodes=0) as plane,
            running(plane, workdir / "node") as node,
        ):
            print(f"control plane and node {NODE_NAME} up in {plane.started_s + node.started_s:.1f} s: {plane.server}")
            print(f"  export KUBECONFIG={plane.kubeconfig}")
            print(f"  cluster DNS: CoreDNS on {NODE_IP}:{dns.DNS_PORT} for {dns.CLUSTER_DOMAIN} ({node.dns_s:.1f} s)")
            print(f"  logs: {workdir}/*/logs   (Ctrl-C stops it)")
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while True:
                time.sleep(1)
                plane.check_alive()
                node.check_alive()
    except (KeyboardInterrupt, SystemExit):
        return 0
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
