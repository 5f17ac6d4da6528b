# The verbs a user says. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlkeel-installed

.PHONY: help setup demo demo-monitoring test test-fast test-py313 lint format compile check-compiled images images-offline benchmarks clean \
	validate-manifests kind-up kind-down cluster-tools cluster-up node-up test-cluster test-node check-backend \
	kfp-backend-tools kfp-backend-up kfp-backend-check

help:
	@echo "make demo            set up .venv and run the training pipeline locally on the bundled data"
	@echo "make demo-monitoring train on Jan-Feb flights, monitor Jun-Jul: real drift, retraining"
	@echo "make test            run every test (Docker tests need a running Docker engine)"
	@echo "make test-fast       unit tests only"
	@echo "make test-py313      the client-side tests on Python 3.13 (Debian trixie image built offline; needs Docker)"
	@echo "make lint            ruff + mypy"
	@echo "make compile         recompile component/pipeline YAML and READMEs"
	@echo "make check-compiled  fail when committed YAML is stale"
	@echo "make images-offline  build every stage image from Debian packages (no registry needed)"
	@echo "make validate-manifests  check manifests/ against the Kubernetes OpenAPI schemas (offline)"
	@echo "make cluster-tools   build tools/ (kubecluster, kfpcheck, containerd, its shim, pause, coredns) from Go modules (once)"
	@echo "make cluster-up      a real Kubernetes control plane + kwok fake node on 127.0.0.1 (Ctrl-C stops it)"
	@echo "make node-up         the control plane + a real node: kubelet, containerd, kube-proxy, CoreDNS (root; Ctrl-C stops it)"
	@echo "make test-cluster    the control-plane and real-node tests (tests/cluster) and make check-backend"
	@echo "make test-node       the real-node tests only (pytest -m node)"
	@echo "make check-backend   the KFP backend's Go code (tools/kfpcheck, built once) accepts every compiled pipeline"
	@echo "make kfp-backend-check  the real KFP API server + Argo on the control plane: mlkeel submit/schedule (root, mariadb-server; not in CI)"
	@echo "make kfp-backend-up  the control plane + the real KFP API server, Argo and KFP's controllers (Ctrl-C stops them)"
	@echo "make kind-up         kind cluster with KFP, MLflow (PostgreSQL + MinIO) and the images loaded"
	@echo "make kind-down       delete that kind cluster"

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/mlkeel run training --local

# Real drift: train on January-February flights, monitor June-July (drift -> retraining -> new champion).
# MONITORING_ARGS="--pushgateway http://127.0.0.1:9091" pushes the run's figures (README: Monitoring and alerts).
demo-monitoring: setup
	$(BIN)/mlkeel datasets flights --months 1,2 --output .mlkeel/flights-jan-feb.parquet
	$(BIN)/mlkeel datasets flights --months 6,7 --output .mlkeel/flights-jun-jul.parquet
	$(BIN)/mlkeel run monitoring --local --model-name flights --target late --key-column flight_id \
		--reference .mlkeel/flights-jan-feb.parquet --current .mlkeel/flights-jun-jul.parquet $(MONITORING_ARGS)

# Every test: the suite on this Python, then the client tests on Python 3.13 in a container (skipped, saying why,
# without a Docker engine, as pytest skips the Docker tests; CI requires it).
test: setup
	$(BIN)/python -m pytest
	$(BIN)/python -m mlkeel.python_matrix test --python 3.13 --if-docker

test-fast: setup
	$(BIN)/python -m pytest tests/unit tests/test_layout.py

# Python 3.13: a Debian trixie image made like the offline base (debootstrap + docker import, once), the
# dependencies installed in it with pip (once per pyproject/constraints change), then mlkeel from this tree and
# mlkeel.python_matrix.CLIENT_TESTS. See README "Python versions".
test-py313: setup
	$(BIN)/python -m mlkeel.python_matrix test --python 3.13

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src components/*/logic.py components/*/cli.py pipelines/task_settings.py  # component.py: KFP's NamedTuple(...) idiom

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

compile: setup
	$(BIN)/mlkeel compile

check-compiled: setup
	$(BIN)/mlkeel compile --check

images: setup
	$(BIN)/mlkeel images build

images-offline: setup
	$(BIN)/mlkeel images build --offline

benchmarks: setup
	$(BIN)/python benchmarks/peers.py install
	$(BIN)/python benchmarks/validation.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/scoring.py
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/pipeline_definition.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/tuning.py
	$(BIN)/python benchmarks/images.py

# Every manifest and every local kustomization's render (kubectl kustomize), strict, no network.
validate-manifests: setup
	$(BIN)/python -m mlkeel.k8s_schema manifests
	$(BIN)/python -m mlkeel.dashboard --check

# Go binaries of the project's own (tools/<name>/): built from the Go module proxy once per version.
cluster-tools: setup
	$(BIN)/python -m mlkeel.cluster.gotools build kubecluster kfpcheck containerd containerd-shim-runc-v2 pause coredns

cluster-up: cluster-tools
	$(BIN)/python -m mlkeel.cluster.controlplane up

node-up: cluster-tools
	$(BIN)/python -m mlkeel.cluster.node up

# tests/cluster holds the real-node tests too (marker node: root, cgroups, iptables, runc, CNI plugins, Docker).
test-cluster: cluster-tools check-backend
	$(BIN)/python -m pytest tests/cluster

test-node: cluster-tools
	$(BIN)/python -m pytest -m node tests/cluster

# The KFP API server's run-creation steps (template parser, Argo compiler, Argo validation) on every compiled
# pipeline and the composed one; builds tools/kfpcheck with Go the first time (cached in ~/.cache/mlkeel/bin).
check-backend: setup
	$(BIN)/python -m mlkeel.cluster.backend_check

kind-up: setup
	scripts/kind_up.sh

kind-down:
	kind delete cluster --name $${CLUSTER:-mlkeel}

clean:
	rm -rf .mlkeel build dist *.egg-info

# The real KFP API server (2023 backend commit, tools/kfpapiserver), Argo's controller (tools/argocontroller) and
# KFP's persistence agent and scheduled-workflow controller as host processes, with MariaDB (Debian
# mariadb-server) and moto's S3 server, on the test control plane (mlkeel.cluster.kfp_backend). Needs root.
# The first build takes about 10 min on 2 cores (cached after): not part of CI or make test-cluster.
kfp-backend-tools: setup
	$(BIN)/python -m mlkeel.cluster.gotools build kubecluster kfpapiserver argocontroller

kfp-backend-up: kfp-backend-tools
	$(BIN)/python -m mlkeel.cluster.kfp_backend up

kfp-backend-check: kfp-backend-tools
	MLKEEL_REQUIRE_KFP_BACKEND=1 $(BIN)/python -m pytest -m kfpbackend tests/cluster/test_kfp_apiserver.py
