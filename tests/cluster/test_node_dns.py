"""The real node when its cluster DNS cannot start: a clear error, and nothing left on the machine (marker ``node``).

Its own module (own control plane, no node running): the node of ``test_node.py`` holds the bridge and port 53.
The DNS that works is proved in ``test_node.py`` (a pod reaches the serving Service by name).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from mlkeel.cluster import dns
from mlkeel.cluster import node as real
from mlkeel.cluster.controlplane import ControlPlane
from tests.cluster.conftest import processes_naming


def test_node_start_fails_at_once_naming_port_53_when_taken_and_leaves_no_process_or_bridge(
    node_plane: ControlPlane, tmp_path: Path
) -> None:
    """A DNS server already bound to every address on port 53: ``node.start`` fails at once, before starting
    containerd, with an error that names the port, the address and CoreDNS; no process of the node runs and the
    bridge it had made is gone.
    """
    workdir = tmp_path / "node"
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        squatter.bind(("0.0.0.0", dns.DNS_PORT))
    except OSError as error:
        squatter.close()
        pytest.fail(f"UDP port {dns.DNS_PORT} is already taken on this machine ({error.strerror}): the node needs it")
    started = time.monotonic()
    with squatter, pytest.raises(real.NodeError) as failed:
        real.start(node_plane, workdir, timeout_s=60)
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert f"UDP port {dns.DNS_PORT} on {real.NODE_IP} is taken" in message and "CoreDNS" in message, message
    # Every process of the node names its work folder in its arguments (configs, root folders).
    assert processes_naming(workdir) == []
    assert subprocess.run(["ip", "link", "show", real.BRIDGE], capture_output=True).returncode != 0
