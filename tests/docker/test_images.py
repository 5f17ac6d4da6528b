"""The per-stage images, built once per session offline (fixture ``built`` in conftest.py)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlkeel import __version__, imagebuild
from mlkeel.components import STAGES
from mlkeel.imagebuild import BuildResult

pytestmark = pytest.mark.docker

ML_STAGES = [
    stage
    for stage in STAGES
    if imagebuild.image_spec(stage).profile.name in ("ml", "drift", "serve", "governance", "tune")
]
CORE_STAGES = [stage for stage in STAGES if imagebuild.image_spec(stage).profile.name == "core"]
BASE_IMAGE = imagebuild.OFFLINE_BASE_IMAGE
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Files that would carry an index credential or a certificate/key.
SECRET_FILES = (
    "find / -xdev -type f \\( -name pip.conf -o -name pip.ini -o -name .netrc -o -name .pypirc"
    " -o -name '*.crt' -o -name '*.pem' -o -name '*.key' -o -name '*.p12' -o -path '*/.cache/pip/*' \\)"
)
# New certificate bundles a Python package ships (its own public CA list); their content is checked below.
PACKAGE_BUNDLES = re.compile(r"/site-packages/(pip/_vendor/)?certifi/cacert\.pem$")
CA_BUNDLE_SUM = "sha256sum /etc/ssl/certs/ca-certificates.crt"


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and completed.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {completed.returncode}:\n{completed.stderr[-3000:]}")
    return completed


def run_in(image: str, *command: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return docker("run", "--rm", *(["--user", user] if user else []), image, *command, check=check)


def inspect(image: str) -> dict:
    return json.loads(docker("image", "inspect", image).stdout)[0]


@pytest.fixture(scope="session")
def base_secret_files() -> set[str]:
    return set(run_in(BASE_IMAGE, "sh", "-c", SECRET_FILES, user="0").stdout.split())


@pytest.fixture(scope="session")
def host_added_certificates() -> list[str]:
    """A distinctive line of each CA this host added to its trust store (a proxy's CA, say).

    That is every certificate in the host's bundle that its own ca-certificates package does not ship; none of
    them may end up in an image.
    """
    if not HOST_CA_BUNDLE.is_file():
        return []
    pem = r"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----"
    packaged = set()
    for path in Path("/usr/share/ca-certificates").rglob("*.crt"):
        packaged.update(re.findall(pem, path.read_text(errors="replace"), re.S))
    added = [block.splitlines() for block in re.findall(pem, HOST_CA_BUNDLE.read_text(), re.S)]
    return [lines[len(lines) // 2] for lines in added if "\n".join(lines) + "\n" not in packaged and len(lines) > 4]


def test_dockerfiles_are_one_template_apart_from_names_and_requirements_profile() -> None:
    root = imagebuild.repo_root()
    assert imagebuild.stale_generated_files(root) == [], "run `mlkeel images generate`"
    normalized = {}
    for stage in STAGES:
        spec = imagebuild.image_spec(stage)
        text = (root / "images" / stage / "Dockerfile").read_text()
        # One requirement layer per profile (the tune image: the ml layer as in the ml images, then its own).
        profile_block = "".join(map(imagebuild.profile_block_text, imagebuild.profile_layers(spec.profile)))
        if spec.profile.name != "core":
            assert profile_block in text
            text = text.replace(profile_block, "")
        if stage in imagebuild.STAGE_PORTS:  # the serving image's EXPOSE line
            text = text.replace(f"EXPOSE {imagebuild.STAGE_PORTS[stage]}\n", "")
        # The profile first: the drift image's profile is also called "drift".
        text = text.replace(f"profile ({spec.profile.name})", "profile (<profile>)")
        text = text.replace(f'io.mlkeel.profile="{spec.profile.name}"', 'io.mlkeel.profile="<profile>"')
        normalized[stage] = re.sub(rf"\b{stage}\b", "<stage>", text.replace(spec.description, "<description>"))
    assert len(set(normalized.values())) == 1
    assert "alibi" not in (root / "images" / "requirements" / "ml.txt").read_text()


def test_image_pins_are_the_constraints_for_the_images_python() -> None:
    # The constraints pin numpy per Python version (markers); the images are Python 3.11: numpy 1.26 (alibi-detect).
    root = imagebuild.repo_root()
    assert imagebuild.constraint_pins(root)["numpy"] == "1.26.4"
    assert imagebuild.constraint_pins(root, "3.13")["numpy"].startswith("2.")
    drift = (root / "images" / "requirements" / "drift.txt").read_text()
    assert "numpy==1.26.4" in drift and "alibi-detect==0.13.0" in drift


@pytest.mark.parametrize("stage", STAGES)
def test_runs_as_a_non_root_user(built: dict[str, BuildResult], stage: str) -> None:
    image = built[stage].tags[0]
    assert inspect(image)["Config"]["User"] == "1000:1000"
    assert run_in(image, "id", "-u").stdout.strip() == "1000"


@pytest.mark.parametrize("stage", STAGES)
def test_stage_entry_point_prints_its_usage(built: dict[str, BuildResult], stage: str) -> None:
    completed = run_in(built[stage].tags[0], "python", "-m", f"mlkeel.components.{stage}", "--help", check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"Usage: python -m mlkeel.components.{stage}")


def test_ingest_image_ingests_the_bundled_data_as_its_user(built: dict[str, BuildResult]) -> None:
    script = (
        'python -m mlkeel.components.ingest --output /tmp/churn.parquet --source "$(python -c '
        "'from mlkeel.data import TELCO_CHURN_CSV; print(TELCO_CHURN_CSV)')\""
    )
    completed = run_in(built["ingest"].tags[0], "sh", "-c", script, check=False)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["num_rows"] == 7043
    assert result["fingerprint"].startswith("sha256:")


@pytest.mark.parametrize("stage", STAGES)
def test_each_image_installs_only_its_profile(built: dict[str, BuildResult], stage: str) -> None:
    probe = (
        "import json\nfrom importlib import metadata\nfound = {}\n"
        "for name in ('kfp', 'pandas', 'pyarrow', 'scikit-learn', 'mlflow-skinny', 'mlflow', 'sqlalchemy', "
        "'alembic', 'skops', 'alibi-detect', 'flask', 'kubernetes', 'prometheus-client', 'fairlearn', 'numba', "
        "'optuna'):\n"
        "    try:\n        found[name] = metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n        pass\nprint(json.dumps(found))"
    )
    installed = json.loads(run_in(built[stage].tags[0], "python", "-c", probe).stdout)
    assert {"kfp", "pandas", "pyarrow"} <= installed.keys()
    if stage == "drift":
        assert "alibi-detect" in installed, "the drift image needs alibi-detect"
    else:
        assert "alibi-detect" not in installed, "only the drift image may carry alibi-detect"
    assert "mlflow" not in installed and "flask" not in installed, "mlflow-skinny, not the full mlflow server"
    assert ("prometheus-client" in installed) == (stage in {"serve", "deploy", "push_metrics"}), (
        "only the serving image (/metrics), the deploy image (reads a canary's /metrics) and the push_metrics image "
        "(pushes to a Pushgateway) need prometheus-client"
    )
    assert ("optuna" in installed) == (stage == "tune"), "Optuna's samplers only in the tune image"
    governance = imagebuild.image_spec(stage).profile.name == "governance"
    assert ("fairlearn" in installed) is governance, "fairlearn only in the fairness and explain images"
    if governance:
        assert "numba" not in installed, "no SHAP, so no numba: see components/explain/logic.py"
    ml_packages = {"scikit-learn", "mlflow-skinny", "sqlalchemy", "alembic", "skops"}
    if stage in ML_STAGES:
        assert ml_packages <= installed.keys()
    elif stage == "deploy":
        # The registry and Kubernetes clients and a Prometheus parser; none of the model-fitting libraries.
        assert {"mlflow-skinny", "kubernetes", "prometheus-client"} <= installed.keys()
        assert not (ml_packages - {"mlflow-skinny"}) & installed.keys()
    else:
        assert not ml_packages & installed.keys(), f"{stage} needs no ML libraries: {ml_packages & installed.keys()}"


def test_train_image_logs_registers_and_loads_a_model_in_sqlite_with_mlflow_skinny(
    built: dict[str, BuildResult],
) -> None:
    probe = """
import os, tempfile
import mlflow, mlflow.sklearn
from mlflow.tracking import MlflowClient
import pandas as pd
from sklearn.linear_model import LogisticRegression
work = tempfile.mkdtemp()
uri = f"sqlite:///{work}/mlflow.db"
mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
experiment = mlflow.create_experiment("probe", artifact_location=f"file://{work}/artifacts")
X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}); y = [0, 0, 1, 1]
model = LogisticRegression().fit(X, y)
with mlflow.start_run(experiment_id=experiment):
    info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
version = mlflow.register_model(info.model_uri, "probe").version
MlflowClient().set_registered_model_alias("probe", "champion", version)
loaded = mlflow.sklearn.load_model("models:/probe@champion")
print("PREDICTIONS", list(loaded.predict(X)))
"""
    completed = run_in(built["train"].tags[0], "python", "-c", probe, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "PREDICTIONS [0, 0, 1, 1]" in completed.stdout
    assert "git executable" not in completed.stderr.lower()


@pytest.fixture(scope="session")
def filesystem_findings(
    base_secret_files: set[str], host_added_certificates: list[str]
) -> Callable[[str], FilesystemFindings]:
    """What a scan of an image's filesystem finds, computed once per distinct filesystem.

    The stages of one profile share every layer (their Dockerfiles differ only in labels, ENV and CMD), so their
    filesystems are the same bytes: an image whose layer list was scanned already gets that scan's findings.
    """
    scans: dict[tuple[str, ...], FilesystemFindings] = {}

    def findings(image: str) -> FilesystemFindings:
        layers = tuple(inspect(image)["RootFS"]["Layers"])
        if layers not in scans:
            scans[layers] = scan_filesystem(image, base_secret_files, host_added_certificates)
        return scans[layers]

    return findings


@dataclass(frozen=True)
class FilesystemFindings:
    """Credentials or certificates an image's filesystem holds that its base image does not.

    Attributes:
        new_secret_files: Certificate, key or index-credential files the base image lacks (package CA lists
            excluded: their content is checked by ``ca_bundle_sha256``).
        ca_bundle_sha256: ``sha256sum`` output of the image's system CA bundle.
        files_with_host_ca: Files holding a line of a CA the build host added to its trust store.
    """

    new_secret_files: frozenset[str]
    ca_bundle_sha256: str
    files_with_host_ca: tuple[str, ...]


def scan_filesystem(image: str, base_secret_files: set[str], host_added_certificates: list[str]) -> FilesystemFindings:
    new_files = set(run_in(image, "sh", "-c", SECRET_FILES, user="0").stdout.split()) - base_secret_files
    bundle = run_in(image, "sh", "-c", CA_BUNDLE_SUM).stdout
    holding_host_ca: tuple[str, ...] = ()
    if host_added_certificates:
        patterns = [argument for line in host_added_certificates for argument in ("-e", line)]
        grep = run_in(
            image,
            "grep",
            "-rlF",
            *patterns,
            "/",
            "--exclude-dir=proc",
            "--exclude-dir=sys",
            "--exclude-dir=dev",
            user="0",
            check=False,
        )
        assert grep.returncode in (0, 1), grep.stderr
        holding_host_ca = tuple(grep.stdout.split())
    return FilesystemFindings(
        frozenset(path for path in new_files if not PACKAGE_BUNDLES.search(path)), bundle, holding_host_ca
    )


@pytest.mark.parametrize("stage", STAGES)
def test_no_ca_bundle_pip_config_or_credentials_left_in_the_image(
    built: dict[str, BuildResult], stage: str, filesystem_findings: Callable[[str], FilesystemFindings]
) -> None:
    image = built[stage].tags[0]
    findings = filesystem_findings(image)
    assert findings.new_secret_files == frozenset()
    assert findings.ca_bundle_sha256 == run_in(BASE_IMAGE, "sh", "-c", CA_BUNDLE_SUM).stdout
    assert findings.files_with_host_ca == (), "the build host's own CA certificate is in these files"
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "BEGIN CERTIFICATE" not in history
    assert not re.search(r"PIP_CERT|REQUESTS_CA_BUNDLE|SSL_CERT_FILE|ca-certificates\.crt", history)
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", history), "a URL with credentials in a build argument"


@pytest.mark.parametrize("stage", STAGES)
def test_oci_labels_and_tags_name_the_git_commit(built: dict[str, BuildResult], stage: str) -> None:
    result = built[stage]
    head = subprocess.run(
        ["git", "-C", str(imagebuild.repo_root()), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert result.revision.startswith(head)
    details = inspect(result.tags[0])
    labels = details["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == result.revision
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["io.mlkeel.stage"] == stage
    assert f"MLKEEL_GIT_COMMIT={result.revision}" in details["Config"]["Env"]
    assert f"MLKEEL_IMAGE={result.tags[-1]}" in details["Config"]["Env"]  # what lineage records
    assert result.tags == imagebuild.image_tags(stage, result.revision)
    assert result.tags[1].endswith(f":{__version__}-{head[:12]}" + ("-dirty" if "-dirty" in result.revision else ""))
    assert {inspect(tag)["Id"] for tag in result.tags} == {details["Id"]}


def test_a_code_only_change_rebuilds_only_the_thin_code_layers(built: dict[str, BuildResult]) -> None:
    # Both builds read one snapshot of the sources: others may edit the tree while this runs.
    snapshot = imagebuild.snapshot_context(imagebuild.repo_root(), "images/ingest/Dockerfile")
    logic = "components/ingest/logic.py"
    changed = {**snapshot, logic: snapshot[logic] + b"\n# a code-only change\n"}
    tags = {"before": "mlkeel-test/ingest-before:scratch", "after": "mlkeel-test/ingest-after:scratch"}
    try:
        with imagebuild.serve_wheelhouse(imagebuild.wheelhouse_dir()) as address:
            for name, sources in (("before", snapshot), ("after", changed)):
                started = docker("info", "--format", "{{.SystemTime}}").stdout.strip()[:19]
                result = imagebuild.build_stage_image(
                    "ingest",
                    imagebuild.OFFLINE_BASE_IMAGE,
                    wheelhouse_address=address,
                    sources=sources,
                    tags=[tags[name]],
                    force=True,
                )
        before, after = (inspect(tags[name])["RootFS"]["Layers"] for name in ("before", "after"))
        assert len(before) == len(after)
        # Every layer up to the source COPYs (base, user, dependencies, data/, src/, pipelines/) is reused: only
        # the components/ COPY and the `pip install --no-deps .` RUN are new.
        differing = [index for index, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
        assert differing == [len(after) - 2, len(after) - 1]
        rows = [
            json.loads(line)
            for line in docker(
                "history", "--no-trunc", "--human=false", "--format", "{{json .}}", tags["after"]
            ).stdout.splitlines()
        ]
        rebuilt_bytes = sum(int(row["Size"]) for row in rows if row["CreatedAt"][:19] >= started)
        # The two code layers hold the sources (with the bundled data) twice: copied, then installed.
        sources = sum(
            path.stat().st_size
            for tree in imagebuild.CONTEXT_TREES
            for path in (imagebuild.repo_root() / tree).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        )
        assert rebuilt_bytes < 2 * sources + 1_000_000, f"a code-only change rebuilt {rebuilt_bytes} bytes of layers"
        assert result.seconds < 120
    finally:
        for tag in tags.values():
            docker("rmi", tag, check=False)


def test_a_concurrent_offline_build_on_another_loopback_address_reuses_the_dependency_layers(
    built: dict[str, BuildResult],
) -> None:
    scratch_tag = "mlkeel-test/ingest-concurrent:scratch"
    # Whoever holds 127.0.0.1:38417 (another build; here this socket), the build arguments stay the same.
    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # already taken by another build: the same situation
            taken.bind(("127.0.0.1", imagebuild.WHEELHOUSE_PORT))
        try:
            with imagebuild.serve_wheelhouse(imagebuild.wheelhouse_dir()) as address:
                assert address != "127.0.0.1"
                result = imagebuild.build_stage_image(
                    "ingest", imagebuild.OFFLINE_BASE_IMAGE, wheelhouse_address=address, tags=[scratch_tag], force=True
                )
            before = inspect(built["ingest"].tags[0])["RootFS"]["Layers"]
            after = inspect(scratch_tag)["RootFS"]["Layers"]
            # Everything below the source COPYs (which others may have edited meanwhile) is the same layer.
            assert before[:-5] == after[:-5]
            assert result.seconds < 60
        finally:
            docker("rmi", scratch_tag, check=False)
