#!/usr/bin/env bash
# `make kind-up`: a local kind cluster with Kubeflow Pipelines, MLflow (PostgreSQL + MinIO) and the mlkeel
# images, ready for `mlkeel submit training --host http://localhost:8080` and `mlkeel deploy`.
#
# Order (manifests/README.md): cluster -> generated secrets -> KFP CRDs -> KFP -> images -> MLflow ->
# pipeline secret -> serving namespace/RBAC -> monitoring (Prometheus, Pushgateway, Grafana) -> wait.
# Re-running is safe: existing cluster, secrets and images are kept. Needs kind, docker, kubectl, and the .venv
# (`make setup`).
# Environment: CLUSTER (default mlkeel), IMAGE_BUILD_FLAGS (default --offline; empty = build from the public
# python:3.11-slim), WAIT_TIMEOUT (default 20m), MLKEEL_IMAGE_TAG (image tag, default the package version).
set -euo pipefail

cd "$(dirname "$0")/.."
CLUSTER="${CLUSTER:-mlkeel}"
IMAGE_BUILD_FLAGS="${IMAGE_BUILD_FLAGS---offline}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-20m}"
MLKEEL="${MLKEEL:-.venv/bin/mlkeel}"
PYTHON="${PYTHON:-.venv/bin/python}"
MLFLOW_SERVER_IMAGE="mlkeel/mlflow-server:3.17.2"

say() { printf '\n==> %s\n' "$*"; }
for tool in kind docker kubectl; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not installed (kind-up needs kind, docker and kubectl)" >&2; exit 1; }
done

say "1/8 kind cluster '$CLUSTER'"
if kind get clusters | grep -qx "$CLUSTER"; then
    echo "exists: kept"
else
    kind create cluster --name "$CLUSTER" --config manifests/kind/cluster.yaml --wait 5m
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

say "2/8 secrets: random credentials in git-ignored env files (kept when present)"
umask 077
random_hex() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
[ -f manifests/mlflow/postgres.env ] || printf 'POSTGRES_USER=mlflow\nPOSTGRES_PASSWORD=%s\nPOSTGRES_DB=mlflow\n' \
    "$(random_hex)" > manifests/mlflow/postgres.env
[ -f manifests/mlflow/minio.env ] || printf 'MINIO_ROOT_USER=mlflow-%s\nMINIO_ROOT_PASSWORD=%s\n' \
    "$(random_hex | cut -c1-8)" "$(random_hex)" > manifests/mlflow/minio.env
for folder in pipelines serving; do
    [ -f "manifests/$folder/mlflow-client.env" ] || cp manifests/pipelines/mlflow-client.env.example "manifests/$folder/mlflow-client.env"
done

say "3/8 Kubeflow Pipelines: cluster-scoped resources (CRDs)"
kubectl apply -k manifests/kfp/cluster-scoped-resources
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io

say "4/8 Kubeflow Pipelines: namespace kubeflow"
kubectl apply -k manifests/kfp/platform-agnostic

say "5/8 images: build and side-load into the kind nodes"
# shellcheck disable=SC2086
"$MLKEEL" images build $IMAGE_BUILD_FLAGS
docker build -t "$MLFLOW_SERVER_IMAGE" manifests/mlflow/image
mapfile -t images < <("$PYTHON" -c 'from mlkeel.components import STAGES; from mlkeel.images import stage_image; print("\n".join(stage_image(s) for s in STAGES))')
if "$PYTHON" -c 'import mlkeel.components.serve' 2>/dev/null && ! printf '%s\n' "${images[@]}" | grep -q '/serve:'; then
    images+=("$("$PYTHON" -c 'from mlkeel.images import stage_image; print(stage_image("serve"))')")
fi
for image in "${images[@]}" "$MLFLOW_SERVER_IMAGE"; do
    kind load docker-image --name "$CLUSTER" "$image"
done

say "6/8 MLflow: PostgreSQL, MinIO, tracking server (namespace mlflow)"
kubectl apply -k manifests/mlflow

say "7/8 pipeline secret (namespace kubeflow), the serving namespace with its RBAC, monitoring"
kubectl create namespace kubeflow --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -k manifests/pipelines
kubectl apply -k manifests/serving
# Prometheus (the alert rules), the Pushgateway monitoring runs push to, Grafana with the mlkeel dashboard.
kubectl apply -k manifests/monitoring

say "8/8 waiting until everything is ready (timeout $WAIT_TIMEOUT)"
kubectl -n mlflow rollout status statefulset/mlflow-postgres --timeout="$WAIT_TIMEOUT"
kubectl -n mlflow rollout status deployment/mlflow-minio --timeout="$WAIT_TIMEOUT"
kubectl -n mlflow wait --for=condition=complete job/mlflow-bucket --timeout="$WAIT_TIMEOUT"
kubectl -n mlflow rollout status deployment/mlflow --timeout="$WAIT_TIMEOUT"
kubectl -n kubeflow wait --for=condition=Available deployment --all --timeout="$WAIT_TIMEOUT"
kubectl -n mlkeel-monitoring wait --for=condition=Available deployment --all --timeout="$WAIT_TIMEOUT"

cat <<MSG

kind cluster '$CLUSTER' is ready.
  KFP API/UI:  kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80
  submit:      $MLKEEL submit training --host http://localhost:8080
  MLflow:      kubectl -n mlflow port-forward svc/mlflow 5000:5000
  deploy:      MLFLOW_TRACKING_URI=http://localhost:5000 $MLKEEL deploy --model-name mlkeel-churn
  monitoring:  --param pushgateway_url=http://pushgateway.mlkeel-monitoring:9091 on monitoring runs;
               kubectl -n mlkeel-monitoring port-forward svc/prometheus 9090:9090 (alerts), svc/grafana 3000:3000
  remove:      make kind-down
MSG
