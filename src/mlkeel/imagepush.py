"""Push the stage images to a registry (``mlkeel images push --registry HOST[/PATH]``, ``images build --push``).

Each stage image is tagged ``HOST[/PATH]/<stage>:<version>`` (what ``mlkeel compile --image-registry HOST[/PATH]``
makes the compiled YAML reference) and ``HOST[/PATH]/<stage>:<version>-<sha12>`` (exactly what was built), both
are pushed with ``docker push`` (credentials: ``docker login``, as for any push), and the digest the registry
answered is reported: pin it (``HOST/PATH/<stage>@sha256:...``) where a tag is not trusted to stay put.
Layers are shared between the images (same base, one requirements layer per profile), so pushing every stage
uploads each profile's layers once. Docker allows plain HTTP only to the registries it treats as insecure; it
does so for 127.0.0.0/8 by default (``docker info``: Insecure Registries), which the test registry uses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from mlkeel.components import STAGES
from mlkeel.errors import ParameterError

# HOST[:PORT][/PATH...]: a host name or address, then path components as Docker accepts them (lowercase).
REGISTRY_PATTERN: Final = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?)"
    r"(?P<path>(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
)
DIGEST_PATTERN: Final = re.compile(r"digest: (sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class PushResult:
    """One stage image pushed.

    Attributes:
        stage: Stage name.
        source: The local image that was pushed (``mlkeel/<stage>:<version>``).
        tags: The references pushed, e.g. ``["127.0.0.1:5000/ml/train:0.1.0", "...:0.1.0-1a2b3c4d5e6f"]``.
        digest: The manifest digest the registry answered (``sha256:...``), the same for every tag.
        seconds: Time taken.
    """

    stage: str
    source: str
    tags: list[str]
    digest: str
    seconds: float

    @property
    def pinned(self) -> str:
        """The image by digest: ``HOST/PATH/<stage>@sha256:...``."""
        return f"{self.tags[0].rsplit(':', 1)[0]}@{self.digest}"


def check_registry(registry: str) -> str:
    """Return ``registry`` without a trailing slash when it is ``HOST[:PORT][/PATH]``.

    Args:
        registry: E.g. ``ghcr.io/acme``, ``127.0.0.1:5000/mlkeel``.

    Returns:
        The registry prefix.

    Raises:
        ParameterError: empty, a scheme (``https://``), a tag or digest, or characters Docker refuses.
    """
    value = registry.strip().rstrip("/")
    if not value:
        raise ParameterError("--registry is empty: pass HOST[/PATH], e.g. ghcr.io/acme or 127.0.0.1:5000/mlkeel")
    if "://" in value:
        raise ParameterError(f"--registry {registry!r}: give HOST[/PATH] without a scheme (Docker chooses https)")
    if not REGISTRY_PATTERN.fullmatch(value):
        raise ParameterError(
            f"--registry {registry!r}: expected HOST[:PORT][/PATH] with a lowercase path (no tag, no digest), "
            "e.g. ghcr.io/acme or 127.0.0.1:5000/mlkeel"
        )
    return value


def push_tags(stage: str, registry: str, revision: str) -> tuple[str, list[str]]:
    """The local image of ``stage`` and the references it gets in ``registry``.

    Args:
        stage: Stage name.
        registry: ``check_registry``'s result.
        revision: The image's source revision (its ``org.opencontainers.image.revision`` label).

    Returns:
        ``(local image, [registry/<stage>:<version>, registry/<stage>:<version>-<sha12>])`` (only the first
        when the image carries no revision).
    """
    from mlkeel.imagebuild import image_tags

    local = image_tags(stage, revision)
    return local[0], [f"{registry}/{reference.rsplit('/', 1)[1]}" for reference in local]


def push_stage(stage: str, registry: str, log: Callable[[str], None] | None = None) -> PushResult:
    """Tag and push one stage image (both tags); return the digest.

    Args:
        stage: Stage name.
        registry: ``HOST[/PATH]`` (checked).
        log: Receives ``docker push``'s output lines (default: dropped).

    Returns:
        The ``PushResult``.

    Raises:
        ImageBuildError: the local image is missing (build it first), or ``docker tag``/``docker push`` failed
            (the message holds docker's last lines: e.g. "unauthorized", "connection refused", "http: server gave
            HTTP response to HTTPS client" for a plain-HTTP registry Docker does not treat as insecure).
    """
    from mlkeel.imagebuild import REVISION_LABEL, ImageBuildError, _docker, _run_streaming, image_labels

    registry = check_registry(registry)
    started = time.monotonic()
    source = push_tags(stage, registry, "")[0]
    # Everything from one image ID, read once: a tag name can move (a rebuild) while this runs.
    inspected = _docker("image", "inspect", "--format", "{{.Id}}", source, check=False)
    if inspected.returncode != 0:
        raise ImageBuildError(f"{source}: no such local image; build it first: mlkeel images build --stage {stage}")
    image_id = inspected.stdout.strip()
    source, tags = push_tags(stage, registry, image_labels(image_id).get(REVISION_LABEL, ""))
    lines: list[str] = []

    def collect(line: str) -> None:
        lines.append(line)
        if log is not None:
            log(line)

    for tag in tags:
        completed = _docker("tag", image_id, tag, check=False)
        if completed.returncode != 0:
            raise ImageBuildError(f"docker tag {source} {tag} failed: {completed.stderr.strip()}")
    for tag in tags:
        _run_streaming(["docker", "push", tag], collect, what=f"docker push {tag}")
    digests = sorted(set(DIGEST_PATTERN.findall("\n".join(lines))))
    if len(digests) != 1:
        raise ImageBuildError(f"docker push {tags[0]}: expected one manifest digest in its output, found {digests}")
    return PushResult(stage, source, tags, digests[0], time.monotonic() - started)


def check_pushable(registry: str, stages: Sequence[str] = STAGES) -> str:
    """Check before pushing anything: the registry prefix, the Docker daemon, every image built.

    Args:
        registry: ``HOST[/PATH]``.
        stages: Stages to push.

    Returns:
        The registry prefix (``check_registry``).

    Raises:
        ParameterError: a bad registry.
        DockerUnavailableError: no daemon.
        ImageBuildError: local images missing (every one is named).
    """
    from mlkeel.imagebuild import ImageBuildError, image_exists, require_docker
    from mlkeel.images import stage_image

    registry = check_registry(registry)
    require_docker()
    missing = [stage_image(stage) for stage in stages if not image_exists(stage_image(stage))]
    if missing:
        raise ImageBuildError(
            f"not built here: {', '.join(missing)}; build them first (mlkeel images build, or images build --push)"
        )
    return registry


def push_all(
    registry: str, stages: Sequence[str] = STAGES, log: Callable[[str], None] | None = None
) -> Iterator[PushResult]:
    """Push the images of ``stages`` (every stage by default) in order, yielding each result as it is pushed.

    Args:
        registry: ``HOST[/PATH]``.
        stages: Stages to push.
        log: Receives ``docker push``'s output lines.

    Yields:
        One ``PushResult`` per stage.

    Raises:
        ParameterError, DockerUnavailableError, ImageBuildError: see ``check_pushable`` (raised before anything is
            pushed) and ``push_stage``.
    """
    registry = check_pushable(registry, stages)
    for stage in stages:
        yield push_stage(stage, registry, log)
