#!/bin/sh
# Run the KFP API server "in cluster" on the host: a private mount namespace with a tmpfs on /run holding the
# service-account files rest.InClusterConfig() reads (token, ca.crt, namespace); the host's /run is untouched.
# The token is the control plane's static admin token (system:masters): a reconnaissance shortcut, not RBAC.
# $1: control plane workdir (admin token from pki/tokens.csv, CA from pki/ca.crt); $2: API server URL port.
set -e
WORK=$1; PORT=$2; shift 2
exec unshare --mount --propagation private sh -c '
  set -e
  mount -t tmpfs tmpfs /run
  d=/run/secrets/kubernetes.io/serviceaccount; mkdir -p $d
  head -1 "$0/pki/tokens.csv" | cut -d, -f1 | tr -d "\n" > $d/token
  cp "$0/pki/ca.crt" $d/ca.crt; printf kubeflow > $d/namespace
  # the persistence agent reads its API token here (the API server checks it only in multi-user mode)
  mkdir -p /run/secrets/kubeflow/tokens; cp $d/token /run/secrets/kubeflow/tokens/persistenceagent-sa-token
  export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$1; shift
  exec "$@"' "$WORK" "$PORT" "$@"
