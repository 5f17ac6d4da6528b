"""`mlkeel images push` against a real registry on 127.0.0.1 (Debian's docker-registry, distribution 2.8), then
the compiled component YAML of `mlkeel compile --image-registry` run by kfp.local's DockerRunner from the image
pulled back from that registry.

CI cost: only the two stage images of the core profile (ingest, validate) are pushed here: they share every layer
but the thin code ones, so this uploads one ~550 MB image. Pushing all stages uploads each profile's layers once;
its measured time is in README.md (images push).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from mlkeel import __version__, imagebuild
from mlkeel.cli import main
from mlkeel.cluster.controlplane import free_port
from mlkeel.docker_runner import docker_runner
from mlkeel.errors import ParameterError
from mlkeel.imagebuild import BuildResult
from mlkeel.imagepush import check_registry

PUSHED = ("ingest", "validate")
REGISTRY_BINARY = "docker-registry"  # Debian's package (the upstream binary is called `registry`)
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def registry_binary() -> str:
    found = shutil.which(REGISTRY_BINARY) or shutil.which("registry")
    if found:
        return found
    reason = "no docker-registry binary: apt-get install docker-registry (.ci/run installs it)"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("MLKEEL_REQUIRE_DOCKER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A registry of our own on a free loopback port (its own config and storage folder, not the system service)."""
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(REGISTRY_CONFIG.format(root=tmp_path / "registry-data", port=port), encoding="utf-8")
    log = (tmp_path / "registry.log").open("wb")
    process = subprocess.Popen([registry_binary(), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the registry did not start: {(tmp_path / 'registry.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield address
    finally:
        # The local tags made for (and pulled back from) this registry go with it; the mlkeel/ tags stay.
        listed = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=False
        )
        ours = [reference for reference in listed.stdout.split() if reference.startswith(f"{address}/")]
        if ours:
            subprocess.run(["docker", "rmi", *ours], capture_output=True, check=False)
        process.terminate()
        process.wait(timeout=30)
        log.close()


def registry_get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"Accept": MANIFEST_TYPES})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), b""


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600, check=True)


def test_a_registry_prefix_and_the_local_images_are_checked_before_anything_is_pushed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert check_registry("127.0.0.1:5000/mlkeel/") == "127.0.0.1:5000/mlkeel"
    assert check_registry("ghcr.io/acme") == "ghcr.io/acme"
    for bad in ("https://ghcr.io/acme", "ghcr.io/Acme", "ghcr.io/acme:1.0", "", "ghcr.io/acme@sha256:00"):
        with pytest.raises(ParameterError, match="registry"):
            check_registry(bad)
    refused = CliRunner().invoke(main, ["images", "push", "--registry", "https://ghcr.io/acme"])
    assert refused.exit_code != 0 and "without a scheme" in refused.output
    monkeypatch.setenv("MLKEEL_IMAGE_TAG", "never-built")
    missing = CliRunner().invoke(main, ["images", "push", "--registry", "127.0.0.1:9/x", "--stage", "ingest"])
    assert missing.exit_code != 0
    assert "not built here: mlkeel/ingest:never-built; build them first" in missing.output


@pytest.fixture(scope="module")
def built() -> dict[str, BuildResult]:
    """The pushed stages' images, built offline (reused when up to date, e.g. after tests/docker/test_images.py)."""
    return {result.stage: result for result in imagebuild.build_all(offline=True, stages=PUSHED)}


def test_push_pull_back_and_run_a_component_from_the_registry_image(
    built: dict[str, BuildResult], registry: str, tmp_path: Path, telco_csv: Path
) -> None:
    # Docker 20.10 and later allow plain HTTP to 127.0.0.0/8 without configuration.
    insecure = json.loads(docker("info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}").stdout)
    assert "127.0.0.0/8" in insecure
    prefix = f"{registry}/mlkeel-ci"
    started = time.monotonic()
    # `images build --push` (the image is up to date: nothing is rebuilt), then `images push`.
    built_and_pushed = CliRunner().invoke(
        main, ["images", "build", "--offline", "--stage", PUSHED[0], "--push", "--registry", prefix]
    )
    pushed = CliRunner().invoke(main, ["images", "push", "--registry", prefix, "--stage", PUSHED[1]])
    push_seconds = time.monotonic() - started
    assert built_and_pushed.exit_code == 0 and "up to date" in built_and_pushed.output, built_and_pushed.output
    assert pushed.exit_code == 0, pushed.output
    line = rf"^{re.escape(prefix)}/(\w+):{re.escape(__version__)}\s+\S+\s+(sha256:[0-9a-f]{{64}})$"
    digests = dict(re.findall(line, built_and_pushed.output + pushed.output, re.MULTILINE))
    assert sorted(digests) == sorted(PUSHED), built_and_pushed.output + pushed.output
    assert f"mlkeel compile --image-registry {prefix}" in pushed.output
    print(f"pushed {', '.join(PUSHED)} in {push_seconds:.1f} s")

    # The registry holds both tags of each image, with the printed digest, and every layer blob.
    output = built_and_pushed.output + pushed.output
    pushed_tags = {
        stage: {__version__, *re.findall(rf"^  also {re.escape(prefix)}/{stage}:(\S+)$", output, re.MULTILINE)}
        for stage in PUSHED
    }
    for stage in PUSHED:
        assert len(pushed_tags[stage]) == 2, output  # <version> and <version>-<sha12>
        status, _, tags_body = registry_get(f"http://{registry}/v2/mlkeel-ci/{stage}/tags/list")
        assert status == 200
        assert set(json.loads(tags_body)["tags"]) == pushed_tags[stage]
        status, headers, body = registry_get(f"http://{registry}/v2/mlkeel-ci/{stage}/manifests/{__version__}")
        assert status == 200 and headers["Docker-Content-Digest"] == digests[stage]
        for layer in json.loads(body)["layers"]:
            blob = registry_get(f"http://{registry}/v2/mlkeel-ci/{stage}/blobs/{layer['digest']}", method="HEAD")
            assert blob[0] == 200 and int(blob[1]["Content-Length"]) == layer["size"]

    # Delete the local copies under the registry's name, pull one back: it is the pushed image.
    reference = f"{prefix}/ingest:{__version__}"
    docker("rmi", *[f"{prefix}/{stage}:{tag}" for stage in PUSHED for tag in pushed_tags[stage]])
    assert subprocess.run(["docker", "image", "inspect", reference], capture_output=True).returncode != 0
    docker("pull", reference)
    repo_digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", reference).stdout)
    assert f"{prefix}/ingest@{digests['ingest']}" in repo_digests

    # `mlkeel compile --image-registry` points every compiled component at the registry; kfp.local's DockerRunner
    # runs the compiled ingest component in the image pulled back.
    compiled = tmp_path / "compiled"
    environment = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    subprocess.run(
        [sys.executable, "-m", "mlkeel.cli", "compile", "--image-registry", prefix, "--output-dir", str(compiled)],
        check=True,
        env=environment,
        timeout=600,
    )
    images = {
        executor["container"]["image"]
        for path in compiled.rglob("*.yaml")
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and "deploymentSpec" in document
        for executor in document["deploymentSpec"]["executors"].values()
    }
    assert images and all(image.startswith(f"{prefix}/") and image.endswith(f":{__version__}") for image in images)
    assert f"{prefix}/ingest:{__version__}" in images and f"{prefix}/validate:{__version__}" in images
    from kfp import components, local

    workdir = tmp_path / "work"
    workdir.mkdir()
    data = workdir / "churn.csv"
    shutil.copyfile(telco_csv, data)
    local.init(runner=docker_runner(workdir), pipeline_root=str(workdir))
    ingest = components.load_component_from_file(str(compiled / "components" / "ingest" / "component.yaml"))
    task = ingest(source_uri=str(data))
    assert pq.read_metadata(task.outputs["dataset"].path).num_rows == 7043
