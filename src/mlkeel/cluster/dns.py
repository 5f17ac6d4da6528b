"""Cluster DNS of the real node: CoreDNS (``tools/coredns``) as a host process, like kube-proxy.

CoreDNS's ``kubernetes`` plugin reads Services and EndpointSlices from the control plane through a kubeconfig of
its own (a client certificate for ``COREDNS_USER``, bound to the ClusterRole upstream's deployment gives it:
read-only). It listens on the node's address (the pod network's gateway, ``node.NODE_IP``) port 53, and kubelet's
``clusterDNS`` points every pod there, so ``<service>.<namespace>.svc.cluster.local`` and the short ``<service>``
(through the pod's search path) resolve to the Service's ClusterIP. Names outside the cluster domain are refused:
there is no upstream to forward to (pods reach nothing beyond this machine).

Its ``ready`` and ``health`` endpoints listen on 127.0.0.1 only; the node waits for ``/ready`` (the
``kubernetes`` plugin has synced with the API server) before it counts as started.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

COREDNS_TOOL = "coredns"
CLUSTER_DOMAIN = "cluster.local"
DNS_PORT = 53
COREDNS_USER = "system:coredns"
CLUSTER_ROLE = "system:coredns"
TTL_S = 5  # short: a Service created by a test resolves within seconds (upstream's default is 5 as well)


def corefile(listen_ip: str, kubeconfig: Path, health_port: int, ready_port: int) -> str:
    """The Corefile: one server on ``listen_ip``:53 for the cluster domain and the reverse zones.

    Args:
        listen_ip: The address pods reach (the node's address on its bridge).
        kubeconfig: The kubeconfig the ``kubernetes`` plugin connects with.
        health_port: Port of ``/health`` on 127.0.0.1 (answers while the process runs).
        ready_port: Port of ``/ready`` on 127.0.0.1 (200 once the ``kubernetes`` plugin has synced).

    Returns:
        The Corefile's text.
    """
    return f"""\
{CLUSTER_DOMAIN}:{DNS_PORT} in-addr.arpa:{DNS_PORT} ip6.arpa:{DNS_PORT} {{
    bind {listen_ip}
    errors
    log
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        fallthrough in-addr.arpa ip6.arpa
        ttl {TTL_S}
    }}
    cache {TTL_S}
    loop
}}
"""


def port_taken(listen_ip: str) -> str:
    """Why CoreDNS cannot listen on ``listen_ip``:53 ("" when it can): a process already holds the port there.

    Checked by binding UDP and TCP the way CoreDNS will, then letting go.
    """
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((listen_ip, DNS_PORT))
            except OSError as error:
                protocol = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                return (
                    f"{protocol} port {DNS_PORT} on {listen_ip} is taken ({error.strerror}): the node's cluster DNS "
                    f"(CoreDNS) listens there; stop the DNS server bound to it (one bound to every address counts)"
                )
    return ""


def rbac_objects() -> list[dict[str, Any]]:
    """The ClusterRole CoreDNS reads the cluster with and its binding to ``COREDNS_USER``.

    The rules are those of upstream's CoreDNS deployment for Kubernetes: list and watch Services,
    EndpointSlices, Endpoints, Pods and Namespaces; nothing else.
    """
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CLUSTER_ROLE},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CLUSTER_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": COREDNS_USER}],
        },
    ]


def grant_read_access(api_client: Any) -> None:
    """Create (or replace) ``rbac_objects()`` through an admin ``api_client``."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    rbac = k8s.RbacAuthorizationV1Api(api_client)
    role, binding = rbac_objects()
    for body, create, replace in (
        (role, rbac.create_cluster_role, rbac.replace_cluster_role),
        (binding, rbac.create_cluster_role_binding, rbac.replace_cluster_role_binding),
    ):
        try:
            create(body, _request_timeout=10)
        except ApiException as error:
            if error.status != 409:
                raise
            replace(body["metadata"]["name"], body, _request_timeout=10)
