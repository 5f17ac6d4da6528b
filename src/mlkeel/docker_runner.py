"""kfp.local's DockerRunner set up for mlkeel's stage images: each task in its own container, as non-root.

The images run as uid 1000 (``USER 1000:1000``). kfp.local bind-mounts the pipeline root (our work folder) at the
same path, and the host creates folders in it before a task starts, so the container user must be able to
write there: as root on the host we hand the work folder to uid 1000; as any other user we run the containers
as that user (``docker run --user``), who already owns the folder. Either way no container runs as root.

A local MLflow store (``sqlite:`` database or ``file:`` folder) outside the work folder is mounted into each
container at the same path too, with the artifact folders of its experiments (``store_folders``): otherwise
the tasks would log into a new store inside their own container, which vanishes with it. The same rule about
the container user applies; a store folder that the containers' user cannot write, and that mlkeel will not
hand over (it holds other files), refuses the run before any task starts, with one line saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mlkeel.errors import ParameterError

# The files SQLite and MLflow keep beside a database: the database itself plus its journal, WAL and shared memory.
SQLITE_SIDE_FILES = ("", "-journal", "-wal", "-shm")
# Folders of the images (Debian) that only root may enter: a folder mounted below one cannot be reached by the
# containers' non-root user (Docker creates the missing parents of a mount, as 0755, but keeps the image's own).
CLOSED_IMAGE_FOLDERS = (Path("/root"),)


def check_reachable(path: Path, what: str, uid: int) -> None:
    """Refuse a folder the containers' user could not reach through the images' own folders.

    Args:
        path: A host folder to be mounted at the same path.
        what: What it holds, for the message.
        uid: The containers' user.

    Raises:
        ParameterError: ``path`` is inside a folder of ``CLOSED_IMAGE_FOLDERS``.
    """
    for closed in CLOSED_IMAGE_FOLDERS:
        if path == closed or closed in path.parents:
            raise ParameterError(
                f"--runner docker: the tasks' containers run as uid {uid}, which cannot reach {what} ({path}): "
                f"it is inside {closed}, which only root may enter in the images; put it elsewhere (e.g. /srv, /tmp)"
            )


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


def local_store_path(tracking_uri: str) -> tuple[str, Path] | None:
    """Where a local MLflow store is on this machine: ``("sqlite", database)`` or ``("file", folder)``.

    Args:
        tracking_uri: An MLflow tracking URI: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
            ``file:///abs/mlruns``, a plain path (a ``file`` store, as MLflow reads it), or a server's URL.

    Returns:
        The kind and absolute path, or None for a store that is not a file here (a server, a database server).

    Raises:
        ParameterError: an in-memory SQLite store (``sqlite://``), which no task could share.
    """
    parts = urlsplit(tracking_uri)
    if parts.scheme == "sqlite":
        path = unquote(tracking_uri.removeprefix("sqlite://").removeprefix("/").split("?", 1)[0])
        if not path:
            raise ParameterError(f"MLflow store {tracking_uri!r} is in memory: tasks cannot share it")
        return "sqlite", Path(path).expanduser().absolute()
    if parts.scheme == "file":
        return "file", Path(unquote(parts.path)).expanduser().absolute()
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (or a Windows drive letter)
        return "file", Path(tracking_uri).expanduser().absolute()
    return None


def absolute_store_uri(tracking_uri: str) -> str:
    """``tracking_uri`` with a local store's path made absolute (a task's working folder may differ from ours).

    Args:
        tracking_uri: An MLflow tracking URI ("" stays "").

    Returns:
        ``sqlite:////abs/path.db`` or ``file:///abs/folder`` for a local store; anything else unchanged.
    """
    local = local_store_path(tracking_uri) if tracking_uri else None
    if local is None:
        return tracking_uri
    kind, path = local
    return f"sqlite:///{path}" if kind == "sqlite" else path.as_uri()


@dataclass(frozen=True)
class StoreFolder:
    """A host folder the containers read and write: mounted at the same path.

    Attributes:
        path: The folder.
        what: What it holds, for messages ("the MLflow database's folder", "artifacts of experiment 'x'").
        whole: Whether the containers write anywhere below it (an artifact folder, a ``file:`` store), or only
            the folder itself and the database files in it (a ``sqlite:`` store's folder).
    """

    path: Path
    what: str
    whole: bool


def store_folders(tracking_uri: str, experiment_name: str = "") -> list[StoreFolder]:
    """The host folders a local MLflow store keeps its data in: its database's folder, its experiments' artifacts.

    Args:
        tracking_uri: The run's MLflow tracking URI (its experiment already created).
        experiment_name: The run's experiment: its artifact folder is created if missing (a task would
            otherwise create it inside its container). Other experiments' folders count when they exist.

    Returns:
        The folders (none for a store that is not local).
    """
    from mlkeel.tracking import connect

    local = local_store_path(tracking_uri)
    if local is None:
        return []
    kind, path = local
    folders = [
        StoreFolder(path.parent, f"the folder of the MLflow database {path}", whole=False)
        if kind == "sqlite"
        else StoreFolder(path, "the MLflow file store", whole=True)
    ]
    from mlflow.entities import ViewType

    for experiment in connect(tracking_uri).search_experiments(view_type=ViewType.ALL):
        location = experiment.artifact_location or ""
        artifacts = local_store_path(location) if location.startswith(("file:", "/")) else None
        if artifacts and experiment.name == experiment_name:
            artifacts[1].mkdir(parents=True, exist_ok=True)
        if artifacts and artifacts[1].is_dir():
            folders.append(StoreFolder(artifacts[1], f"the artifacts of experiment {experiment.name!r}", whole=True))
    return folders


def _writable_by(path: Path, uid: int, gid: int) -> bool:
    status = path.stat()
    if status.st_uid == uid:
        return bool(status.st_mode & 0o200)
    if status.st_gid == gid:
        return bool(status.st_mode & 0o020)
    return bool(status.st_mode & 0o002)


def _database_files(folder: Path, tracking_uri: str) -> list[Path]:
    local = local_store_path(tracking_uri)
    if local is None or local[0] != "sqlite":
        return []
    return [
        folder / f"{local[1].name}{suffix}"
        for suffix in SQLITE_SIDE_FILES
        if (folder / f"{local[1].name}{suffix}").exists()
    ]


def prepare_store_folders(
    folders: list[StoreFolder], workdir: Path, tracking_uri: str, uid: int = IMAGE_UID, gid: int = IMAGE_GID
) -> list[Path]:
    """Make the store's folders writable by the containers' user, or refuse; return the folders to mount.

    Folders inside the work folder are mounted with it already. As root on the host (containers as ``uid``), a
    folder the containers cannot write is handed over (``hand_over``) when it holds only the store's data: an
    artifact folder, a ``file:`` store, or a database's folder holding nothing but the database files and other
    folders of this store. As any other user the containers run as that user, who must be able to write them.

    Args:
        folders: ``store_folders(tracking_uri)``.
        workdir: The work folder (mounted by kfp.local).
        tracking_uri: The run's MLflow tracking URI.
        uid: The containers' user when the host user is root.
        gid: Its group.

    Returns:
        The folders to bind-mount, none inside another or inside the work folder.

    Raises:
        ParameterError: a folder the containers could not reach (``check_reachable``) or write; the message
            names it and what to do.
    """
    root = os.geteuid() == 0
    container_uid = uid if root else os.getuid()
    for folder in folders:
        check_reachable(folder.path.absolute(), folder.what, container_uid)
    mounted = [workdir.resolve()]
    ours = {folder.path.resolve() for folder in folders}
    chosen: list[Path] = []
    for folder in sorted(folders, key=lambda item: len(item.path.resolve().parts)):
        path = folder.path.resolve()
        path.mkdir(parents=True, exist_ok=True)
        if any(path == above or above in path.parents for above in mounted):
            continue
        files = [path] if folder.whole else [path, *_database_files(path, tracking_uri)]
        if not root:
            if not all(os.access(item, os.W_OK) for item in files):
                raise ParameterError(
                    f"--runner docker: {folder.what} ({path}) is not writable by this user, as whom the tasks' "
                    "containers run"
                )
        elif not all(_writable_by(item, uid, gid) for item in files):
            others = [] if folder.whole else _other_entries(path, files, ours)
            if others:
                raise ParameterError(
                    f"--runner docker: the tasks' containers run as uid {uid}, which cannot write {folder.what} "
                    f"({path}), and mlkeel does not hand over a folder holding other files ({others[0].name}): "
                    f"move the store into a folder of its own, or `chown {uid}:{gid} {path}`"
                )
            if folder.whole:
                hand_over(path, uid, gid)
            else:
                for item in files:
                    os.chown(item, uid, gid)
        mounted.append(path)
        chosen.append(path)
    return chosen


def _other_entries(folder: Path, database_files: list[Path], store_folders: set[Path]) -> list[Path]:
    """Entries of a database's folder that are not the database's files nor folders of its store."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry not in database_files and not (entry.is_dir() and entry.resolve() in store_folders)
    )


def docker_runner(workdir: Path, tracking_uri: str = "", experiment_name: str = "") -> Any:
    """A ``kfp.local.DockerRunner`` whose containers run as a non-root user that can write ``workdir`` and the store.

    Args:
        workdir: The work folder (kfp.local's pipeline root).
        tracking_uri: The run's MLflow tracking URI: a local store outside ``workdir`` is mounted too.
        experiment_name: The run's MLflow experiment (see ``store_folders``).

    Returns:
        The runner for ``kfp.local.init``.

    Raises:
        ParameterError: the containers could not reach the work folder, or write the store (see
            ``prepare_store_folders``).
    """
    from docker.types import Mount
    from kfp import local

    from mlkeel.imagebuild import require_docker

    require_docker()
    check_reachable(workdir.resolve(), "the work folder (--workdir)", IMAGE_UID if os.geteuid() == 0 else os.getuid())
    found = store_folders(tracking_uri, experiment_name) if tracking_uri else []
    folders = prepare_store_folders(found, workdir, tracking_uri)
    mounts = [Mount(target=str(path), source=str(path), type="bind") for path in folders]
    if os.geteuid() == 0:
        hand_over(workdir)
        return local.DockerRunner(user=f"{IMAGE_UID}:{IMAGE_GID}", mounts=mounts)
    return local.DockerRunner(user=f"{os.getuid()}:{os.getgid()}", mounts=mounts)
