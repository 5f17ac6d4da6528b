"""Build one container image per stage with the ``docker`` CLI (plain ``docker build``, no BuildKit needed).

What lives where:
    images/<name>/Dockerfile           one per image, all rendered from ``DOCKERFILE_TEMPLATE`` below
    images/requirements/<profile>.txt  exact pins derived from pyproject.toml + requirements/constraints.txt
    images/base/build-offline.sh       the offline base image (debootstrap + ``docker import`` + a venv)

``mlkeel images generate`` rewrites the generated files; ``build_all`` refuses to build from stale ones.

Offline builds (``build_all(offline=True)``) never let pip inside ``docker build`` reach the internet: the
host fills a wheelhouse (``pip wheel``, with the host's own pip configuration and CA bundle), serves it on a
loopback address for the duration of the build, and the Dockerfile's install steps read it through
``--network host`` with ``PIP_NO_INDEX=1``. No CA bundle, pip configuration or credential enters a build step.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlkeel import __version__
from mlkeel.components import STAGES
from mlkeel.errors import MlkeelError
from mlkeel.images import stage_image

Log = Callable[[str], None]

DEFAULT_BASE_IMAGE = "python:3.11-slim"
IMAGE_PYTHON = "3.11"  # the stage images' Python: the constraints' environment markers are evaluated for it
OFFLINE_BASE_IMAGE = "mlkeel/python-base:3.11-bookworm"
# Every base images/base/build-offline.sh can make, by the Debian suite it bootstraps: bookworm's Python 3.11
# for the stage images, trixie's Python 3.13 for the client tests of another Python (mlkeel.python_matrix).
OFFLINE_BASE_SUITES = {OFFLINE_BASE_IMAGE: "bookworm", "mlkeel/python-base:3.13-trixie": "trixie"}
DEFAULT_SOURCE_URL = "https://github.com/mlkeel/mlkeel"
# Offline builds read the wheelhouse at this URL. Build arguments are part of docker's layer cache key, so the
# URL never changes: the name is mapped (`docker build --add-host`, not in the cache key) to whichever loopback
# address serves it, 127.0.0.1 unless another build is already serving there.
WHEELHOUSE_HOST = "mlkeel-wheelhouse"
WHEELHOUSE_PORT = 38417
WHEELHOUSE_URL = f"http://{WHEELHOUSE_HOST}:{WHEELHOUSE_PORT}/"
ENV_WHEELHOUSE = "MLKEEL_WHEELHOUSE"
CONTEXT_DIGEST_LABEL = "io.mlkeel.context-digest"
SOURCES_MTIME = 1_577_836_800  # 2020-01-01: mtime of files built from given sources (zip needs >= 1980)
REVISION_LABEL = "org.opencontainers.image.revision"
RUNTIME_UID = 1000

# The build backend mlkeel is built with inside the images, pinned (pyproject's [build-system]: setuptools>=69).
BUILD_REQUIREMENTS = ("setuptools==84.2.1", "wheel==0.48.0")

# Source trees copied into the image; everything else in the checkout stays out of the build context.
CONTEXT_TREES = ("src", "components", "pipelines", "data")
CONTEXT_FILES = ("pyproject.toml", "README.md", "requirements/constraints.txt")
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info")


class ImageBuildError(MlkeelError):
    """An image could not be built (daemon missing, docker build failed, stale generated files...)."""


class DockerUnavailableError(ImageBuildError):
    """No ``docker`` CLI, or no Docker daemon answering it."""


@dataclass(frozen=True)
class Profile:
    """A set of requirements installed on top of the base dependencies, as its own layer.

    Attributes:
        name: File stem under images/requirements/ (``core`` is the base dependencies themselves).
        extras: pyproject optional-dependency groups it installs.
        description: One line for the generated file's header.
        builds_on: Another profile whose layer comes first, unchanged (so docker reuses that layer of the images
            of that profile); this profile's file then lists only its own extras.
    """

    name: str
    extras: tuple[str, ...] = ()
    description: str = ""
    builds_on: str = ""


CORE = Profile("core", description="pyproject [project.dependencies]: what every image needs")
ML = Profile("ml", extras=("ml",), description="pyproject [ml]: scikit-learn, the MLflow client and its SQL store")
# Only the drift image carries alibi-detect (and what it pulls: transformers, numba, opencv, scikit-image).
DRIFT = Profile("drift", extras=("ml", "drift"), description="pyproject [ml] + [drift]: alibi-detect, matplotlib")
DEPLOY = Profile(
    "deploy",
    extras=("deploy",),
    description="pyproject [deploy]: the Kubernetes client, the MLflow client, a Prometheus text parser",
)
# The serving image: [ml] + prometheus-client (Starlette and uvicorn already come with mlflow-skinny).
SERVE = Profile(
    "serve", extras=("ml", "serve"), description="pyproject [ml] + [serve]: Starlette, uvicorn, prometheus-client"
)
# fairness and explain: fairlearn, matplotlib (no numba, no alibi-detect).
GOVERNANCE = Profile(
    "governance", extras=("ml", "governance"), description="pyproject [ml] + [governance]: fairlearn, matplotlib"
)
# The push_metrics stage: the core dependencies + prometheus-client (no scikit-learn, no MLflow).
MONITORING = Profile("monitoring", extras=("monitoring",), description="pyproject [monitoring]: prometheus-client")
# The tune stage: the ml layer as it is (shared with the ml images: building the tune image adds one small layer,
# not a second copy of scikit-learn and MLflow), then [tune]: Optuna's samplers (plus colorlog; the rest of its
# dependencies come with [ml]).
TUNE = Profile("tune", extras=("tune",), description="pyproject [tune] on the ml layer: Optuna", builds_on="ml")
PROFILES = {profile.name: profile for profile in (CORE, ML, DRIFT, GOVERNANCE, DEPLOY, SERVE, MONITORING, TUNE)}

# Which requirements profile each stage's image installs (then run `mlkeel images generate`); the drift image
# has its own profile with the [drift] extra, so only that image carries alibi-detect.
STAGE_PROFILES = {
    "ingest": "core",
    "validate": "core",
    "split": "ml",  # scikit-learn's stratified split; the ml layers are shared, so this costs no extra bytes
    "train": "ml",
    "tune": "tune",
    "evaluate": "governance",  # the residual plot of a regressor draws with matplotlib
    "fairness": "governance",
    "explain": "governance",
    "gate": "ml",
    "register": "ml",
    "champion": "ml",
    "drift": "drift",
    "batch_predict": "ml",
    "performance": "ml",
    "push_metrics": "monitoring",
    "model_card": "ml",
    "deploy": "deploy",
    "serve": "serve",
}
STAGE_DESCRIPTIONS = {
    "ingest": "read CSV/Parquet, normalise types, fingerprint the data",
    "validate": "infer or check a schema, quarantine invalid rows",
    "split": "split a dataset into train and test",
    "train": "fit a scikit-learn pipeline and log it to MLflow",
    "tune": "search hyperparameters, one task per trial, on a validation part of the train split",
    "evaluate": "score a model on held-out data",
    "fairness": "compare a model's decisions between groups of sensitive columns (fairlearn)",
    "explain": "rank a model's input columns by permutation importance",
    "gate": "bless or refuse a candidate model against the champion",
    "register": "register a blessed model version in the MLflow registry",
    "champion": "fetch the champion's version, schema and reference data",
    "drift": "test a batch against reference data for drift (alibi-detect)",
    "batch_predict": "score a dataset with a registered model, write the prediction log",
    "performance": "join predictions with late labels, flag degradation",
    "push_metrics": "push a monitoring run's figures to a Prometheus Pushgateway",
    "model_card": "render a registered version's model card (HTML + Markdown) and attach it to MLflow",
    "deploy": "serve a blessed model version on Kubernetes (rolling, blue-green, canary; rollback)",
    "serve": "serve a registered model over HTTP (mlkeel serve), check it before release",
}
# Ports the image's process listens on (EXPOSE): the serving app only.
STAGE_PORTS = {"serve": 8080}


@dataclass(frozen=True)
class ImageSpec:
    """One image: ``images/<name>/Dockerfile`` built as ``stage_image(name)``.

    Attributes:
        name: Stage (image) name.
        profile: The requirements profile installed on top of the core dependencies.
        module: The ``python -m`` entry point (the image's default command shows its ``--help``).
        description: One line for the OCI description label.
    """

    name: str
    profile: Profile
    module: str
    description: str


def image_spec(name: str) -> ImageSpec:
    """Return the image spec of a stage.

    Args:
        name: A stage in ``mlkeel.components.STAGES``.

    Returns:
        Its ``ImageSpec``.

    Raises:
        ImageBuildError: unknown stage, or a stage without an image profile.
    """
    if name not in STAGES:
        raise ImageBuildError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    if name not in STAGE_PROFILES:
        raise ImageBuildError(f"stage {name!r} has no image profile: add it to STAGE_PROFILES in {__file__}")
    return ImageSpec(
        name=name,
        profile=PROFILES[STAGE_PROFILES[name]],
        module=f"mlkeel.components.{name}",
        description=f"the {name} stage: {STAGE_DESCRIPTIONS.get(name, name)}",
    )


# ----------------------------------------------------------------------------------------------------------
# Repository facts
# ----------------------------------------------------------------------------------------------------------


def repo_root() -> Path:
    """Find the mlkeel source checkout images are built from (``pyproject.toml`` and ``images/`` side by side).

    Returns:
        The current directory when it is one (a CI clone, say), else the checkout this module was installed
        from (editable install).

    Raises:
        ImageBuildError: neither is a checkout.
    """
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[2]):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and (candidate / "images").is_dir():
            with contextlib.suppress(tomllib.TOMLDecodeError, OSError):
                if _pyproject(candidate).get("project", {}).get("name") == "mlkeel":
                    return candidate
    raise ImageBuildError(
        "building images needs an mlkeel source checkout (pyproject.toml and images/): run from its root"
    )


def source_revision(root: Path | None = None) -> str:
    """Return the git commit images are built from, ``-dirty`` when tracked files have local changes.

    Args:
        root: The checkout (default ``repo_root()``).

    Returns:
        A 40-hex SHA, maybe followed by ``-dirty``; ``unknown`` outside a git checkout.
    """
    root = root or repo_root()
    try:
        sha = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def _git(root: Path, *args: str) -> str:
    completed = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=True)
    return completed.stdout.strip()


def source_url(root: Path | None = None) -> str:
    """Return the ``org.opencontainers.image.source`` URL: pyproject's [project.urls] Source or Repository.

    Args:
        root: The checkout (default ``repo_root()``).

    Returns:
        The URL, or ``DEFAULT_SOURCE_URL`` when pyproject names none.
    """
    urls = _pyproject(root or repo_root()).get("project", {}).get("urls", {})
    for key in ("Source", "Repository", "Homepage"):
        if urls.get(key):
            return str(urls[key])
    return DEFAULT_SOURCE_URL


def _pyproject(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def image_tags(stage: str, revision: str | None = None) -> list[str]:
    """Return the tags a stage image is built with.

    Args:
        stage: Stage name.
        revision: Source revision (default ``source_revision()``).

    Returns:
        ``[stage_image(stage), "<repository>:<version>-<sha12>[-dirty]"]``; only the first without a git
        revision. The first is what compiled components reference; the second names exactly what was built.
    """
    primary = stage_image(stage)
    revision = source_revision() if revision is None else revision
    if revision in ("", "unknown"):
        return [primary]
    repository = primary.rsplit(":", 1)[0]
    sha, _, suffix = revision.partition("-")
    return [primary, f"{repository}:{__version__}-{sha[:12]}{'-' + suffix if suffix else ''}"]


# ----------------------------------------------------------------------------------------------------------
# Generated files: requirement lists and Dockerfiles
# ----------------------------------------------------------------------------------------------------------

_NAME_NORMALIZER = re.compile(r"[-_.]+")


def _canonical(name: str) -> str:
    return _NAME_NORMALIZER.sub("-", name).lower()


def constraint_pins(root: Path, python_version: str = IMAGE_PYTHON) -> dict[str, str]:
    """Exact pins from requirements/constraints.txt that apply on ``python_version``.

    A pin may carry an environment marker (``numpy==1.26.4; python_version < '3.13'``): it is evaluated for that
    Python on Linux, as pip evaluates it there.

    Args:
        root: The checkout.
        python_version: ``X.Y`` of the interpreter the pins are for (default: the stage images').

    Returns:
        Canonical project name -> version.
    """
    from packaging.requirements import Requirement

    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0"}
    environment |= {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
    pins = {}
    for raw in (root / "requirements" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" not in line:
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            (specifier,) = requirement.specifier
            pins[_canonical(requirement.name)] = specifier.version
    return pins


def profile_requirements(profile: Profile, root: Path) -> list[str]:
    """List a profile's requirements, each direct requirement pinned to its version in constraints.txt.

    Args:
        profile: The profile.
        root: The checkout.

    Returns:
        Sorted lines like ``scikit-learn==1.9.1  # pyproject [ml]: scikit-learn>=1.5``.

    Raises:
        ImageBuildError: a requirement is not pinned in constraints.txt, or its pin is outside pyproject's
            range.
    """
    from packaging.requirements import Requirement

    project = _pyproject(root)["project"]
    if profile is CORE or profile.name == CORE.name:
        wanted = [(requirement, "pyproject") for requirement in project["dependencies"]]
    else:
        wanted = []
        for extra in profile.extras:
            wanted += [(requirement, f"pyproject [{extra}]") for requirement in project["optional-dependencies"][extra]]
    pins = constraint_pins(root)
    lines = []
    for text, why in wanted:
        requirement = Requirement(text)
        if _canonical(requirement.name) == "mlkeel":
            raise ImageBuildError(f"profile {profile.name}: list extras in Profile.extras, not {text!r}")
        pin = pins.get(_canonical(requirement.name))
        if pin is None:
            raise ImageBuildError(f"{requirement.name} is not pinned in requirements/constraints.txt")
        if not requirement.specifier.contains(pin, prereleases=True):
            raise ImageBuildError(
                f"requirements/constraints.txt pins {requirement.name}=={pin}, outside pyproject's {text!r}"
            )
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        note = f"{why}: {text}" if why.startswith("pyproject") else why
        lines.append(f"{requirement.name}{extras}=={pin}  # {note}")
    return sorted(lines, key=lambda line: _canonical(line.split("=")[0].split("[")[0]))


def render_requirements(profile: Profile, root: Path) -> str:
    """Render images/requirements/<profile>.txt."""
    header = [
        "# GENERATED by `mlkeel images generate` (mlkeel/imagebuild.py) from pyproject.toml and",
        "# requirements/constraints.txt; do not edit. Installed with `-c requirements/constraints.txt`,",
        "# which pins every transitive dependency.",
        f"# Profile {profile.name}: {profile.description}.",
    ]
    return "\n".join([*header, *profile_requirements(profile, root)]) + "\n"


def render_build_requirements() -> str:
    """Render images/requirements/build.txt (what builds the mlkeel wheel inside the image)."""
    return (
        "# GENERATED by `mlkeel images generate`; do not edit. The build backend of pyproject [build-system],\n"
        "# installed with the dependencies so `pip install --no-build-isolation .` needs no index.\n"
        + "\n".join(BUILD_REQUIREMENTS)
        + "\n"
    )


DOCKERFILE_TEMPLATE = """\
# mlkeel/@NAME@: @DESCRIPTION@.
# GENERATED by `mlkeel images generate` from mlkeel/imagebuild.py: every image's Dockerfile is this template,
# only the names and the requirements profile (@PROFILE@) differ. Build from the repository root:
#   mlkeel images build --stage @NAME@     (add --offline: see images/README.md), or by hand:
#   docker build -f images/@NAME@/Dockerfile -t mlkeel/@NAME@:@VERSION@ \\
#       --build-arg GIT_COMMIT=$(git rev-parse HEAD) .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# pip settings for the install steps only (build arguments, unset in the running image). `mlkeel images build
# --offline` points them at a wheelhouse served on the build host's loopback. Build arguments are recorded in
# `docker history`: never pass a credential in one.
ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
ARG PIP_TRUSTED_HOST

# No git in the images: the commit comes from MLKEEL_GIT_COMMIT (below). GIT_PYTHON_REFRESH=quiet stops
# MLflow's GitPython from printing a 20-line warning on every run.
ENV PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    GIT_PYTHON_REFRESH=quiet

# The runtime user: uid/gid 1000, not root; its home is writable and is the working directory.
RUN groupadd --gid @UID@ mlkeel \\
    && useradd --uid @UID@ --gid @UID@ --create-home --home-dir /home/mlkeel --shell /usr/sbin/nologin mlkeel

WORKDIR /opt/mlkeel

# 1. Dependencies before any mlkeel code, so a code-only change reuses these layers. build.txt is the build
# backend (setuptools), so that building mlkeel below needs no index.
COPY requirements/constraints.txt images/requirements/core.txt images/requirements/build.txt requirements/
RUN pip install --no-cache-dir --requirement requirements/build.txt --requirement requirements/core.txt \\
        --constraint requirements/constraints.txt \\
    && pip check
@PROFILE_BLOCK@
# 2. mlkeel itself, without dependencies: the only layers a code-only change rebuilds. They are the same in
# every image of a profile (the stage is named only in the metadata below), so docker builds them once.
COPY pyproject.toml README.md ./
COPY data/ data/
COPY src/ src/
COPY pipelines/ pipelines/
COPY components/ components/
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \\
    && rm -rf build src/*.egg-info \\
    && python -c "import mlkeel.components, mlkeel.images"

WORKDIR /home/mlkeel
USER @UID@:@UID@
@EXPOSE_BLOCK@CMD ["python", "-m", "@MODULE@", "--help"]

# 3. Metadata last: it changes with every commit and adds no layer.
ARG GIT_COMMIT=unknown
ARG VERSION=@VERSION@
ARG SOURCE_URL=@SOURCE@
# The exact reference this image is built as (`mlkeel images build` passes its version-commit tag), recorded
# in the lineage of every model version it helps make (tag mlkeel.images).
ARG IMAGE_REF=mlkeel/@NAME@:@VERSION@
ENV MLKEEL_GIT_COMMIT=${GIT_COMMIT} \\
    MLKEEL_IMAGE=${IMAGE_REF}
LABEL org.opencontainers.image.title="mlkeel-@NAME@" \\
      org.opencontainers.image.description="@DESCRIPTION@" \\
      org.opencontainers.image.source="${SOURCE_URL}" \\
      org.opencontainers.image.version="${VERSION}" \\
      org.opencontainers.image.revision="${GIT_COMMIT}" \\
      org.opencontainers.image.licenses="Apache-2.0" \\
      io.mlkeel.stage="@NAME@" \\
      io.mlkeel.profile="@PROFILE@"
"""

PROFILE_BLOCK_TEMPLATE = """
# Only the @PROFILE@ images: @PROFILE_DESCRIPTION@.
COPY images/requirements/@PROFILE@.txt requirements/
RUN pip install --no-cache-dir --requirement requirements/@PROFILE@.txt \\
        --constraint requirements/constraints.txt \\
    && pip check
"""


def profile_layers(profile: Profile) -> list[Profile]:
    """The profiles whose requirement layers an image of ``profile`` installs, in order (none for core).

    Args:
        profile: The image's profile.

    Returns:
        ``[PROFILES[profile.builds_on], profile]`` for a profile built on another, ``[profile]`` otherwise.
    """
    if profile.name == CORE.name:
        return []
    return [*profile_layers(PROFILES[profile.builds_on]), profile] if profile.builds_on else [profile]


def profile_block_text(profile: Profile) -> str:
    """One profile's requirement layer of a Dockerfile (the same text in every image of that profile).

    Args:
        profile: A profile other than core.

    Returns:
        The Dockerfile lines.
    """
    text = PROFILE_BLOCK_TEMPLATE.replace("@PROFILE_DESCRIPTION@", profile.description)
    return text.replace("@PROFILE@", profile.name)


def render_dockerfile(name: str, root: Path | None = None) -> str:
    """Render images/<name>/Dockerfile.

    Args:
        name: Stage name.
        root: The checkout (for the source URL; default ``repo_root()``).

    Returns:
        The Dockerfile.
    """
    spec = image_spec(name)
    profile_block = "".join(profile_block_text(profile) for profile in profile_layers(spec.profile))
    text = DOCKERFILE_TEMPLATE.replace("@PROFILE_BLOCK@", profile_block)
    port = STAGE_PORTS.get(name)
    text = text.replace("@EXPOSE_BLOCK@", f"EXPOSE {port}\n" if port else "")
    replacements = {
        "@NAME@": spec.name,
        "@PROFILE@": spec.profile.name,
        "@MODULE@": spec.module,
        "@DESCRIPTION@": spec.description,
        "@VERSION@": __version__,
        "@SOURCE@": source_url(root),
        "@UID@": str(RUNTIME_UID),
    }
    for token, value in replacements.items():
        text = text.replace(token, value)
    return text


def generated_files(root: Path | None = None, stages: Sequence[str] = STAGES) -> dict[Path, str]:
    """Every generated file and the text it must have.

    Args:
        root: The checkout (default ``repo_root()``).
        stages: Stages whose Dockerfiles to include.

    Returns:
        Path -> expected text.
    """
    root = root or repo_root()
    files: dict[Path, str] = {}
    profiles = {image_spec(stage).profile.name: image_spec(stage).profile for stage in stages}
    profiles[CORE.name] = CORE
    for profile in profiles.values():
        files[root / "images" / "requirements" / f"{profile.name}.txt"] = render_requirements(profile, root)
    files[root / "images" / "requirements" / "build.txt"] = render_build_requirements()
    for stage in stages:
        files[root / "images" / stage / "Dockerfile"] = render_dockerfile(stage, root)
    return files


def stale_generated_files(root: Path | None = None, stages: Sequence[str] = STAGES) -> list[Path]:
    """List the generated files that are missing or differ from what ``generate`` would write."""
    return [
        path
        for path, text in generated_files(root, stages).items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def write_generated_files(root: Path | None = None, stages: Sequence[str] = STAGES) -> list[Path]:
    """Write the Dockerfiles and requirement lists; return the paths that changed."""
    changed = []
    for path, text in generated_files(root, stages).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


# ----------------------------------------------------------------------------------------------------------
# Docker
# ----------------------------------------------------------------------------------------------------------


def docker_unavailable_reason(timeout: float = 20.0) -> str | None:
    """Why ``docker build`` cannot run here, or None when a daemon answers.

    Args:
        timeout: Seconds to wait for ``docker info``.

    Returns:
        None, or a one-line reason starting with "no Docker daemon reachable (docker info failed): ...".
    """
    docker = shutil.which("docker")
    if docker is None:
        return "no Docker daemon reachable (docker info failed): no `docker` CLI on PATH"
    try:
        completed = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no Docker daemon reachable (docker info failed): no answer within {timeout:.0f} s"
    if completed.returncode != 0 or not completed.stdout.strip():
        detail = " ".join((completed.stderr or completed.stdout).split())[:300] or f"exit {completed.returncode}"
        return f"no Docker daemon reachable (docker info failed): {detail}"
    return None


def require_docker() -> None:
    """Raise ``DockerUnavailableError`` (with the reason and a hint) when no Docker daemon answers."""
    reason = docker_unavailable_reason()
    if reason:
        raise DockerUnavailableError(
            f"{reason.rstrip('.')}. Start one (e.g. `dockerd >/tmp/dockerd.log 2>&1 &`) or point DOCKER_HOST at one."
        )


def _docker(*args: str, check: bool = True, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check, env=_docker_env()
    )


def _docker_env() -> dict[str, str]:
    environment = dict(os.environ)
    # The plain builder is what is everywhere (BuildKit needs buildx); DOCKER_BUILDKIT=1 opts in.
    environment.setdefault("DOCKER_BUILDKIT", "0")
    return environment


def image_exists(reference: str) -> bool:
    """Whether a local image has this tag or ID."""
    return _docker("image", "inspect", reference, check=False).returncode == 0


def image_labels(reference: str) -> dict[str, str]:
    """Labels of a local image ({} when it does not exist)."""
    completed = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", reference, check=False)
    if completed.returncode != 0:
        return {}
    return json.loads(completed.stdout) or {}


def _run_streaming(command: Sequence[str], log: Log, stdin_bytes: bytes | None = None, what: str = "") -> float:
    """Run a command, sending each output line to ``log``; raise ``ImageBuildError`` on failure."""
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=30)
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_docker_env(),
    )
    writer = None
    if stdin_bytes is not None:

        def feed() -> None:
            assert process.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(stdin_bytes)
            process.stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        tail.append(line)
        log(line)
    returncode = process.wait()
    if writer is not None:
        writer.join()
    if returncode != 0:
        last = "\n".join(f"    {line}" for line in tail)
        raise ImageBuildError(f"{what or command[0]} failed (exit {returncode}); last lines:\n{last}")
    return time.monotonic() - started


# ----------------------------------------------------------------------------------------------------------
# Offline: base image and wheelhouse
# ----------------------------------------------------------------------------------------------------------


def ensure_offline_base_image(base_image: str = OFFLINE_BASE_IMAGE, log: Log | None = None) -> None:
    """Build an offline base image with images/base/build-offline.sh unless it exists.

    Args:
        base_image: The tag; only those of ``OFFLINE_BASE_SUITES`` can be built here (others must exist already).
        log: Receives output lines.

    Raises:
        ImageBuildError: the image is missing and cannot be built.
    """
    log = log or _stderr_log("base")
    if image_exists(base_image):
        return
    suite = OFFLINE_BASE_SUITES.get(base_image)
    if suite is None:
        raise ImageBuildError(
            f"base image {base_image!r} is not on this Docker daemon and offline builds pull nothing; "
            f"build it or use one of {sorted(OFFLINE_BASE_SUITES)} (images/base/build-offline.sh)"
        )
    script = repo_root() / "images" / "base" / "build-offline.sh"
    log(f"{base_image} missing: running {script} (debootstrap {suite}, about a minute)")
    environment = {"MLKEEL_DEBIAN_SUITE": suite, "MLKEEL_BASE_IMAGE": base_image}
    _run_streaming(
        ["env", *(f"{key}={value}" for key, value in environment.items()), "bash", str(script)], log, what=str(script)
    )


def wheelhouse_dir() -> Path:
    """Where offline builds keep wheels: ``$MLKEEL_WHEELHOUSE`` or ``~/.cache/mlkeel/wheelhouse``."""
    configured = os.environ.get(ENV_WHEELHOUSE, "").strip()
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME", "") or Path.home() / ".cache")
    return cache / "mlkeel" / "wheelhouse"


def fill_wheelhouse(requirement_files: Sequence[Path], constraints: Path, log: Log | None = None) -> Path:
    """Build/download every wheel the images install, with the host's pip (its index, proxy and CA settings).

    Skipped when the same requirement files were already filled (a stamp file records their digest).

    Args:
        requirement_files: images/requirements/*.txt files.
        constraints: requirements/constraints.txt.
        log: Receives output lines.

    Returns:
        The wheelhouse directory.

    Raises:
        ImageBuildError: this interpreter cannot fetch wheels for the images (not CPython 3.11 on Linux),
            or pip failed.
    """
    log = log or _stderr_log("wheelhouse")
    if sys.version_info[:2] != (3, 11) or sys.platform != "linux":
        raise ImageBuildError(
            "offline builds fetch wheels with this interpreter's pip, which must match the images (CPython "
            f"3.11 on Linux); this is {platform.python_implementation()} {platform.python_version()} on "
            f"{sys.platform}. "
            "Build without --offline, or run mlkeel from a Linux Python 3.11."
        )
    directory = wheelhouse_dir()
    digest = hashlib.sha256()
    for path in [*requirement_files, constraints]:
        digest.update(path.read_bytes())
    digest.update(f"{platform.machine()} {sys.version_info[:2]}".encode())
    stamp = directory / f".filled-{digest.hexdigest()[:16]}"
    if stamp.is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--wheel-dir",
        str(directory),
        "--constraint",
        str(constraints),
    ]
    for path in requirement_files:
        command += ["--requirement", str(path)]
    log(f"filling the wheelhouse {directory}")
    _run_streaming(command, log, what="pip wheel")
    stamp.write_text("\n".join(str(path) for path in requirement_files) + "\n", encoding="utf-8")
    return directory


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_wheelhouse(directory: Path, log: Log | None = None) -> Iterator[str]:
    """Serve a directory over HTTP on port ``WHEELHOUSE_PORT`` of a loopback address while the block runs.

    Args:
        directory: What to serve.
        log: Receives a line when 127.0.0.1 is taken (by another build, say) and another address is used.

    Yields:
        The address, e.g. ``127.0.0.1``: pass it to ``build_stage_image(wheelhouse_address=...)``.

    Raises:
        ImageBuildError: no address from 127.0.0.1 to 127.0.0.32 has the port free.
    """
    log = log or _stderr_log("wheelhouse")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = None
    for last_octet in range(1, 33):
        address = f"127.0.0.{last_octet}"
        try:
            server = http.server.ThreadingHTTPServer((address, WHEELHOUSE_PORT), handler)
            break
        except OSError as error:
            log(f"{address}:{WHEELHOUSE_PORT} is taken ({error.strerror}); trying the next loopback address")
    if server is None:
        raise ImageBuildError(f"port {WHEELHOUSE_PORT} is taken on 127.0.0.1-127.0.0.32: cannot serve the wheelhouse")
    thread = threading.Thread(target=server.serve_forever, name="mlkeel-wheelhouse", daemon=True)
    thread.start()
    try:
        yield address
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ----------------------------------------------------------------------------------------------------------
# Build context and builds
# ----------------------------------------------------------------------------------------------------------


def _context_members(root: Path, dockerfile: str) -> list[tuple[str, Path]]:
    members = [(relative, root / relative) for relative in CONTEXT_FILES]
    members += [
        (path.relative_to(root).as_posix(), path) for path in sorted((root / "images" / "requirements").glob("*.txt"))
    ]
    members.append((dockerfile, root / dockerfile))
    for tree in CONTEXT_TREES:
        for path in sorted((root / tree).rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or EXCLUDED_PARTS & set(relative.parts):
                continue
            if any(part.endswith(EXCLUDED_SUFFIXES) for part in relative.parts):
                continue
            members.append((relative.as_posix(), path))
    missing = [relative for relative, path in members if not path.is_file()]
    if missing:
        raise ImageBuildError(f"build context is missing {', '.join(missing)} under {root}")
    return members


def snapshot_context(root: Path, dockerfile: str) -> dict[str, bytes]:
    """Read every file of a build context, to build several images from exactly the same sources.

    Args:
        root: The checkout.
        dockerfile: The Dockerfile's path relative to ``root``.

    Returns:
        Relative path -> content; pass it (changed or not) as ``sources``.
    """
    return {relative: path.read_bytes() for relative, path in _context_members(root, dockerfile)}


def build_context(root: Path, dockerfile: str, sources: Mapping[str, bytes] | None = None) -> tuple[bytes, str]:
    """Make the build context: a tar of only what the Dockerfiles copy, and its content digest.

    Args:
        root: The checkout.
        dockerfile: The Dockerfile's path relative to ``root``.
        sources: The whole context as relative path -> content (``snapshot_context``, maybe edited) instead of
            the files in the checkout: to build several times from the same sources while others edit the tree,
            or to measure a code-only change without touching it. Files get mode 644 and a fixed mtime.

    Returns:
        ``(tar bytes, "sha256:<hex>")``; the digest covers paths, executable bits and contents, not mtimes.
    """
    if sources is not None:
        if dockerfile not in sources:
            raise ImageBuildError(f"the given sources have no {dockerfile}")
        files = {relative: (content, 0o644, SOURCES_MTIME) for relative, content in sources.items()}
    else:
        files = {}
        for relative, path in _context_members(root, dockerfile):
            stat = path.stat()
            files[relative] = (path.read_bytes(), stat.st_mode & 0o755 | 0o644, int(stat.st_mtime))
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for relative in sorted(files):
            content, mode, mtime = files[relative]
            info = tarfile.TarInfo(relative)
            info.size, info.mode, info.mtime = len(content), mode, mtime
            archive.addfile(info, io.BytesIO(content))
            digest.update(f"{relative}\0{mode:o}\0{len(content)}\0".encode())
            digest.update(hashlib.sha256(content).digest())
    return buffer.getvalue(), f"sha256:{digest.hexdigest()}"


@dataclass
class BuildResult:
    """What building one image did.

    Attributes:
        stage: Stage name.
        tags: Tags the image has.
        image_id: Local image ID.
        seconds: Wall time of this image's build (0 when it was up to date).
        up_to_date: True when an image of the same context and revision existed and nothing was built.
        size_bytes: The image's size (all its layers).
        revision: The source revision in its labels and ``MLKEEL_GIT_COMMIT``.
        build_args: The ``--build-arg`` values of the build (empty when up to date).
    """

    stage: str
    tags: list[str]
    image_id: str = ""
    seconds: float = 0.0
    up_to_date: bool = False
    size_bytes: int = 0
    revision: str = ""
    build_args: dict[str, str] = field(default_factory=dict)


def build_stage_image(
    stage: str,
    base_image: str | None = None,
    *,
    wheelhouse_address: str | None = None,
    revision: str | None = None,
    force: bool = False,
    sources: Mapping[str, bytes] | None = None,
    tags: Sequence[str] | None = None,
    log: Log | None = None,
) -> BuildResult:
    """Build ``images/<stage>/Dockerfile`` with ``docker build`` and tag it ``image_tags(stage)``.

    Args:
        stage: Stage name.
        base_image: FROM image (default: the Dockerfile's, python:3.11-slim).
        wheelhouse_address: The loopback address ``serve_wheelhouse`` serves on: pip then installs from
            ``WHEELHOUSE_URL`` alone (``PIP_NO_INDEX=1``); the build runs with ``--network host`` and maps the
            wheelhouse's name to that address.
        revision: Source revision for labels and tags (default ``source_revision()``).
        force: Build even when an image of the same context and revision exists.
        sources: See ``build_context``.
        tags: Tag the image with these instead of ``image_tags(stage)`` (for experiments).
        log: Receives docker's output lines (default: stderr, prefixed with the stage).

    Returns:
        A ``BuildResult``.

    Raises:
        DockerUnavailableError: no daemon.
        ImageBuildError: docker build failed (the message ends with its last output lines).
    """
    log = log or _stderr_log(stage)
    root = repo_root()
    spec = image_spec(stage)
    revision = source_revision(root) if revision is None else revision
    tags = list(tags) if tags else image_tags(stage, revision)
    dockerfile = f"images/{spec.name}/Dockerfile"
    context, digest = build_context(root, dockerfile, sources)

    labels = image_labels(tags[0])
    if (
        not force
        and labels.get(CONTEXT_DIGEST_LABEL) == digest
        and labels.get(REVISION_LABEL) == revision
        and all(image_exists(tag) for tag in tags)
    ):
        log(f"{tags[0]} is up to date (same sources, same revision {revision[:12]})")
        return BuildResult(stage, tags, _image_id(tags[0]), 0.0, True, _image_size(tags[0]), revision)

    build_args = {
        "GIT_COMMIT": revision,
        "VERSION": __version__,
        "SOURCE_URL": source_url(root),
        "IMAGE_REF": tags[-1],
    }
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    command = [
        "docker",
        "build",
        "--file",
        dockerfile,
        "--force-rm",
        "--label",
        f"{CONTEXT_DIGEST_LABEL}={digest}",
    ]
    if wheelhouse_address:
        build_args.update({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELHOUSE_URL, "PIP_TRUSTED_HOST": WHEELHOUSE_HOST})
        command += ["--network", "host", "--add-host", f"{WHEELHOUSE_HOST}:{wheelhouse_address}"]
    for tag in tags:
        command += ["--tag", tag]
    for name, value in build_args.items():
        command += ["--build-arg", f"{name}={value}"]
    command.append("-")
    log(f"building {', '.join(tags)} from {dockerfile} (base {base_image or DEFAULT_BASE_IMAGE})")
    seconds = _run_streaming(command, log, stdin_bytes=context, what=f"docker build of {stage}")
    image_id, size = _image_id(tags[0]), _image_size(tags[0])
    return BuildResult(stage, tags, image_id, seconds, False, size, revision, build_args)


def build_all(
    offline: bool,
    stages: Sequence[str] = STAGES,
    base_image: str | None = None,
    *,
    force: bool = False,
    sources: Mapping[str, bytes] | None = None,
    log: Log | None = None,
) -> list[BuildResult]:
    """Build the images of ``stages`` (all by default), in order.

    Args:
        offline: Build from the offline base image (made with debootstrap when missing) and a host wheelhouse;
            nothing is pulled and pip inside the build reaches only this host's loopback.
        stages: Stages to build.
        base_image: FROM image (default: python:3.11-slim online, mlkeel/python-base:3.11-bookworm offline).
        force: Build even images that are up to date.
        sources: See ``build_context``.
        log: Receives every output line (default: stderr, prefixed with the stage).

    Returns:
        One ``BuildResult`` per stage.

    Raises:
        DockerUnavailableError: no daemon.
        ImageBuildError: stale generated files, or a build failed.
    """
    require_docker()
    root = repo_root()
    specs = [image_spec(stage) for stage in stages]
    stale = stale_generated_files(root, STAGES)
    if stale:
        names = ", ".join(str(path.relative_to(root)) for path in stale)
        raise ImageBuildError(
            f"out of date with pyproject/constraints/imagebuild: {names}; run `mlkeel images generate`"
        )
    revision = source_revision(root)
    results = []
    if not offline:
        for spec in specs:
            results.append(
                build_stage_image(
                    spec.name,
                    base_image,
                    revision=revision,
                    force=force,
                    sources=sources,
                    log=log,
                )
            )
        return results

    base_image = base_image or OFFLINE_BASE_IMAGE
    ensure_offline_base_image(base_image, log)
    requirements = root / "images" / "requirements"
    files = [
        requirements / "core.txt",
        *{requirements / f"{layer.name}.txt" for spec in specs for layer in profile_layers(spec.profile)},
    ]
    files = [*sorted(set(files)), requirements / "build.txt"]
    wheelhouse = fill_wheelhouse(files, root / "requirements" / "constraints.txt", log)
    with serve_wheelhouse(wheelhouse, log=log) as address:
        for spec in specs:
            results.append(
                build_stage_image(
                    spec.name,
                    base_image,
                    wheelhouse_address=address,
                    revision=revision,
                    force=force,
                    sources=sources,
                    log=log,
                )
            )
    return results


def _image_id(reference: str) -> str:
    return _docker("image", "inspect", "--format", "{{.Id}}", reference).stdout.strip()


def _image_size(reference: str) -> int:
    return int(_docker("image", "inspect", "--format", "{{.Size}}", reference).stdout.strip() or 0)


@dataclass(frozen=True)
class LocalImage:
    """A stage image as the local Docker daemon has it (``exists`` False when not built)."""

    stage: str
    profile: str
    tag: str
    exists: bool
    image_id: str = ""
    size_bytes: int = 0
    revision: str = ""
    created: str = ""


def list_images(stages: Sequence[str] = STAGES) -> list[LocalImage]:
    """List the stage images and whether this Docker daemon has them."""
    listed = []
    for stage in stages:
        spec = image_spec(stage)
        tag = stage_image(stage)
        completed = _docker("image", "inspect", tag, check=False)
        if completed.returncode != 0:
            listed.append(LocalImage(stage, spec.profile.name, tag, False))
            continue
        details = json.loads(completed.stdout)[0]
        listed.append(
            LocalImage(
                stage,
                spec.profile.name,
                tag,
                True,
                details["Id"],
                int(details["Size"]),
                (details["Config"].get("Labels") or {}).get(REVISION_LABEL, ""),
                details["Created"][:19],
            )
        )
    return listed


def _stderr_log(prefix: str) -> Log:
    def log(line: str) -> None:
        print(f"[{prefix}] {line}", file=sys.stderr, flush=True)

    return log
