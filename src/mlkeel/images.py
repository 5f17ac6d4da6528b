"""Container image names for each stage.

The compiled YAML references ``<registry>/<stage>:<tag>``. ``MLKEEL_IMAGE_REGISTRY`` (or ``mlkeel compile
--image-registry``) re-points every image at a user's registry; ``MLKEEL_IMAGE_TAG`` overrides the tag, which
defaults to the package version so the committed YAML does not change with every commit.
"""

import os

from mlkeel import __version__
from mlkeel.constants import ENV_IMAGE_REGISTRY, ENV_IMAGE_TAG

DEFAULT_REGISTRY = "mlkeel"


def stage_image(stage: str) -> str:
    """Return the image reference a stage's component runs in.

    Args:
        stage: Stage name, e.g. ``ingest``.

    Returns:
        For example ``mlkeel/ingest:0.1.0``, or ``ghcr.io/acme/ingest:0.1.0`` with
        ``MLKEEL_IMAGE_REGISTRY=ghcr.io/acme``.
    """
    registry = os.environ.get(ENV_IMAGE_REGISTRY, "").strip().rstrip("/") or DEFAULT_REGISTRY
    tag = os.environ.get(ENV_IMAGE_TAG, "").strip() or __version__
    return f"{registry}/{stage}:{tag}"
