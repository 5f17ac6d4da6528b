"""The client-side tests on another Python: Debian trixie's Python 3.13, in an image built offline.

``make test-py313`` (``python -m mlkeel.python_matrix test``) proves that mlkeel installs with pip and that its
client side (compile, submit, schedule, serve, ``mlkeel run training --local``) works on Python 3.13:

1. the base image ``mlkeel/python-base:3.13-trixie``: ``images/base/build-offline.sh`` with the trixie suite
   (debootstrap + ``docker import`` + a venv), the same code path as ``mlkeel images build --offline``
   (``imagebuild.ensure_offline_base_image``); built once, then reused;
2. the dependencies: ``pip install -c requirements/constraints.txt '.[all,dev]'`` in a container of that
   image (``--network host``; the host's CA bundle mounted read-only for pip, never in a layer; a pip cache
   on the host, ``~/.cache/mlkeel/pip-py3.13``), then committed as ``mlkeel/py313-test:deps-<digest>``, the
   digest of pyproject.toml, the constraints and the base image: rebuilt only when one of them changes;
3. each run: the working tree (``git ls-files``) streamed into a fresh container of that image without network,
   mlkeel installed from a copy of it with pip (``--no-deps --no-index``), ``pip check``, then ``CLIENT_TESTS``
   under pytest as an unprivileged user, from the tree (the golden test recompiles every pipeline and component
   on this Python and compares the bytes with the committed YAML).

Why not every test: the monitoring pipeline's drift stage needs alibi-detect, which Python 3.13 cannot install
(pyproject.toml, the ``drift`` extra); Docker, cluster and MLflow-server tests are about the host, not the Python.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

import click

from mlkeel import imagebuild

# The Python versions this module can test, by the offline base image (imagebuild.OFFLINE_BASE_SUITES) holding it.
PYTHON_BASES = {"3.13": "mlkeel/python-base:3.13-trixie"}
TEST_IMAGE_REPOSITORY = "mlkeel/py{version}-test"
# The client side: compiling (golden YAML, deterministic bytes), submitting and scheduling (against the KFP API
# stand-in), serving (a real uvicorn process), the stages' import hygiene, and one training run under kfp.local
# with the subprocess runner (a fresh interpreter per task) from the command line.
CLIENT_TESTS = (
    # The golden test: every component and pipeline compiled on this Python equals the committed YAML byte for byte.
    "tests/test_compiled.py::test_committed_yaml_and_readmes_are_current",
    "tests/test_compiled.py::test_compiled_components_need_no_runtime_pip_install",
    "tests/test_layout.py",
    "tests/unit/test_submit.py",
    "tests/unit/test_serve.py",
    "tests/unit/test_drift.py::test_without_alibi_detect_the_drift_stage_names_the_extra",
    "tests/e2e/test_python_versions.py",
)
VERSIONS_PROBE = (
    "import numpy, pandas, sklearn; print(*(m.__name__ + ' ' + m.__version__ for m in (numpy, pandas, sklearn)))"
)
ENV_CLIENT_SUBSET = "MLKEEL_CLIENT_SUBSET"  # set inside the test container: tests that only it runs check it
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINER_CA_BUNDLE = "/run/mlkeel-host-ca.crt"
CONTAINER_SOURCE = "/tmp/mlkeel-src"
TEST_UID = 65532  # the tests run unprivileged, as the stage images do


def _log(line: str) -> None:
    click.echo(f"[py-matrix] {line}", err=True)


def _docker(*args: str, stdin: bytes | None = None) -> float:
    """Run ``docker ARGS`` with its output streamed to stderr; raise ImageBuildError when it fails."""
    return imagebuild._run_streaming(["docker", *args], _log, stdin_bytes=stdin, what=f"docker {args[0]}")


def source_files(root: Path) -> list[str]:
    """The working tree's files as git sees them: tracked and untracked-but-not-ignored, existing ones only."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def source_tar(root: Path) -> bytes:
    """An uncompressed tar of ``source_files(root)``, owned by ``TEST_UID`` (what the container unpacks)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in source_files(root):
            info = archive.gettarinfo(str(root / name), arcname=name)
            info.uid = info.gid = TEST_UID
            info.uname = info.gname = ""
            with (root / name).open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


def dependency_digest(root: Path, base_image: str) -> str:
    """What the dependency image depends on: pyproject.toml, the constraints and the base image's ID."""
    digest = hashlib.sha256()
    for relative in ("pyproject.toml", "requirements/constraints.txt"):
        digest.update((root / relative).read_bytes())
    digest.update(imagebuild._image_id(base_image).encode())
    return digest.hexdigest()[:12]


def pip_cache_dir(version: str) -> Path:
    """The host's pip cache for this Python's test environment: ``~/.cache/mlkeel/pip-py<version>``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", "") or Path.home() / ".cache")
    return cache / "mlkeel" / f"pip-py{version}"


def ensure_dependency_image(version: str, root: Path) -> str:
    """The image with mlkeel's dependencies (``[all,dev]``, constrained) installed on this Python; built if missing.

    Args:
        version: A key of ``PYTHON_BASES``.
        root: The source checkout.

    Returns:
        The image tag.
    """
    base_image = PYTHON_BASES[version]
    imagebuild.ensure_offline_base_image(base_image, _log)
    tag = f"{TEST_IMAGE_REPOSITORY.format(version=version.replace('.', ''))}:deps-{dependency_digest(root, base_image)}"
    if imagebuild.image_exists(tag):
        _log(f"{tag} exists (dependencies unchanged)")
        return tag
    cache = pip_cache_dir(version)
    cache.mkdir(parents=True, exist_ok=True)
    container = f"mlkeel-py{version.replace('.', '')}-deps-{int(time.time())}"
    # The CA bundle and the cache are mounts and PIP_CERT is set in the command, not with -e: `docker commit`
    # keeps a container's environment, and neither belongs in the image.
    script = (
        f"set -e; mkdir -p {CONTAINER_SOURCE} && tar -x -C {CONTAINER_SOURCE}; cd {CONTAINER_SOURCE}; "
        f"export PIP_CERT={CONTAINER_CA_BUNDLE} PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off; "
        "pip install --quiet 'setuptools>=77' wheel; "
        "pip install --quiet -c requirements/constraints.txt '.[all,dev]'; "
        "pip uninstall --quiet --yes mlkeel; cd /; rm -rf " + CONTAINER_SOURCE + "; pip check; pip list | wc -l"
    )
    _log(f"installing the dependencies on Python {version} (pip cache {cache}) -> {tag}")
    try:
        seconds = _docker(
            "run",
            "-i",
            "--name",
            container,
            "--network",
            "host",
            "-v",
            f"{HOST_CA_BUNDLE}:{CONTAINER_CA_BUNDLE}:ro",
            "-v",
            f"{cache}:/root/.cache/pip",
            base_image,
            "sh",
            "-c",
            script,
            stdin=source_tar(root),
        )
        _log(f"dependencies installed in {seconds:.0f} s")
        _docker("commit", "--change", 'CMD ["python3"]', container, tag)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    _remove_older_dependency_images(tag)
    return tag


def _remove_older_dependency_images(current: str) -> None:
    """Untag this repository's other ``deps-*`` images (made by earlier runs, about 1.2 GB each)."""
    repository = current.split(":", 1)[0]
    listed = subprocess.run(
        ["docker", "images", repository, "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
    )
    for reference in listed.stdout.split():
        if reference != current and reference.split(":", 1)[1].startswith("deps-"):
            _log(f"removing {reference} (dependencies changed since)")
            subprocess.run(["docker", "rmi", reference], capture_output=True, check=False)


def run_client_tests(version: str, root: Path, tests: Sequence[str] = CLIENT_TESTS) -> None:
    """Install mlkeel from ``root`` in a fresh container of the dependency image and run ``tests`` there.

    Args:
        version: A key of ``PYTHON_BASES``.
        root: The source checkout (its working tree is what gets installed and tested).
        tests: pytest paths or node IDs, relative to ``root``.

    Raises:
        ImageBuildError: the install, the compiled-YAML comparison or a test failed.
    """
    image = ensure_dependency_image(version, root)
    user = f"setpriv --reuid={TEST_UID} --regid={TEST_UID} --clear-groups env HOME=/tmp/home"
    script = " && ".join(
        [
            f"mkdir -p {CONTAINER_SOURCE} /tmp/home && chown {TEST_UID}:{TEST_UID} /tmp/home",
            f"tar -x -C {CONTAINER_SOURCE}",
            f"chown -R {TEST_UID}:{TEST_UID} {CONTAINER_SOURCE}",  # tar made the folders as root
            f"cd {CONTAINER_SOURCE}",
            "python3 --version",
            # No network, no index: what it needs is in the image (pip would say which distribution is missing).
            # Built from a copy: pip writes build/ and *.egg-info as root, the tests build a wheel of the tree.
            f"cp -a {CONTAINER_SOURCE} /tmp/mlkeel-build",
            "pip install --quiet --no-deps --no-index --no-build-isolation /tmp/mlkeel-build",
            "rm -rf /tmp/mlkeel-build",
            "pip check",
            f'python3 -c "{VERSIONS_PROBE}"',
            f"{user} {ENV_CLIENT_SUBSET}=1 python3 -m pytest -p no:cacheprovider -q {' '.join(tests)}",
        ]
    )
    _log(f"running {len(tests)} client test paths on Python {version} in {image}")
    seconds = _docker(
        "run", "--rm", "-i", "--network", "none", "-e", "CI", image, "sh", "-c", script, stdin=source_tar(root)
    )
    _log(f"client tests passed on Python {version} in {seconds:.0f} s")


@click.group()
def main() -> None:
    """The client-side tests of mlkeel on another Python version, in an image built offline."""


@main.command("test")
@click.option("--python", "version", type=click.Choice(sorted(PYTHON_BASES)), default="3.13", show_default=True)
@click.option(
    "--if-docker",
    is_flag=True,
    help="Without a Docker engine, say so and exit 0 (as pytest skips the Docker tests), unless "
    "MLKEEL_REQUIRE_DOCKER=1 (CI).",
)
@click.argument("tests", nargs=-1)
def test_command(version: str, tests: tuple[str, ...], if_docker: bool) -> None:
    """Build (once) the test image of ``--python`` and run the client tests (or TESTS) in it."""
    reason = imagebuild.docker_unavailable_reason()
    if reason and if_docker and os.environ.get("MLKEEL_REQUIRE_DOCKER") != "1":
        _log(f"SKIPPED: the Python {version} client tests run in a container: {reason.rstrip('.')}")
        return
    started = time.monotonic()
    try:
        imagebuild.require_docker()
        run_client_tests(version, imagebuild.repo_root(), tests or CLIENT_TESTS)
    except imagebuild.ImageBuildError as error:
        _log(str(error))
        sys.exit(1)
    _log(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
