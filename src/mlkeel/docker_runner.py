"""kfp.local's DockerRunner set up for mlkeel's stage images: each task in its own container, as non-root.

The images run as uid 1000 (``USER 1000:1000``). kfp.local bind-mounts the pipeline root (our work folder) at the
same path, and the host creates folders in it before a task starts, so the container user must be able to
write there: as root on the host we hand the work folder to uid 1000; as any other user we run the containers
as that user (``docker run --user``), who already owns the folder. Either way no container runs as root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The uid/gid the stage images run as (images/*/Dockerfile: USER 1000:1000).
IMAGE_UID = 1000
IMAGE_GID = 1000


def hand_over(folder: Path, uid: int = IMAGE_UID, gid: int = IMAGE_GID) -> None:
    """Give ``folder`` and everything below it to ``uid:gid`` and make it group-writable.

    Args:
        folder: The work folder.
        uid: Owner to set.
        gid: Group to set.
    """
    for root, directories, files in os.walk(folder):
        for name in [*directories, *files]:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
    os.chown(folder, uid, gid)


def docker_runner(workdir: Path) -> Any:
    """A ``kfp.local.DockerRunner`` whose containers run as a non-root user that can write ``workdir``.

    Args:
        workdir: The work folder (kfp.local's pipeline root).

    Returns:
        The runner for ``kfp.local.init``.
    """
    from kfp import local

    from mlkeel.imagebuild import require_docker

    require_docker()
    if os.geteuid() == 0:
        hand_over(workdir)
        return local.DockerRunner(user=f"{IMAGE_UID}:{IMAGE_GID}")
    return local.DockerRunner(user=f"{os.getuid()}:{os.getgid()}")
