"""Reading and writing files for every stage: local paths or pyarrow-filesystem URIs, written atomically.

Atomic writes (a temporary sibling, then ``os.replace``) mean a step killed mid-write leaves either the old
file or no file, never a truncated one that a rerun or a downstream step would trust.

Reads from an object store are retried in-process on transient errors (connection reset, 5xx, throttling):
see ``read_with_retries``. A permanent error (no such bucket or key, access denied) fails at once with the URI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from mlkeel.errors import DataError
from mlkeel.retry import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

T = TypeVar("T")

# pyarrow reports object-store failures as OSError text (the AWS SDK's error names, curl's codes). Permanent
# ones are checked first: a 404 or a 403 never gets better by waiting.
PERMANENT_IO_MARKERS = (
    "ACCESS_DENIED",
    "NO_SUCH_BUCKET",
    "NO_SUCH_KEY",
    "RESOURCE_NOT_FOUND",
    "INVALID_ACCESS_KEY_ID",
    "SIGNATURE_DOES_NOT_MATCH",
    "HTTP response code: 4",
    "Forbidden",
)
TRANSIENT_IO_MARKERS = (
    "NETWORK_CONNECTION",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "THROTTLING",
    "INTERNAL_FAILURE",
    "REQUEST_TIMEOUT",
    "HTTP response code: 5",
    "curlCode",
    "Connection reset",
    "Connection refused",
    "Broken pipe",
    "timed out",
)
# Object-store reads: 4 attempts, waits 0.5 s, 1 s, 2 s (pyarrow's S3 client retries each request too).
READ_RETRY_POLICY = RetryPolicy(attempts=4, initial_delay_s=0.5, max_delay_s=4.0)


def is_transient_io_error(error: BaseException) -> bool:
    """Whether a read error is worth retrying: a dropped connection, a timeout, a 5xx or throttling answer.

    Args:
        error: What the read raised.

    Returns:
        False for local errors (file not found, permission) and for an object store's 4xx answers.
    """
    if not isinstance(error, OSError) or isinstance(error, FileNotFoundError | PermissionError):
        return False
    text = str(error)
    if any(marker in text for marker in PERMANENT_IO_MARKERS):
        return False
    return isinstance(error, ConnectionError | TimeoutError) or any(marker in text for marker in TRANSIENT_IO_MARKERS)


def read_with_retries(uri: str, read: Callable[[], T], policy: RetryPolicy = READ_RETRY_POLICY) -> T:
    """Run ``read`` (which reads ``uri``), retrying transient I/O errors with exponential backoff.

    Args:
        uri: What is read, for the log line of a retry (shown without credentials).
        read: The read; repeated from the start on each attempt.
        policy: Attempts and delays.

    Returns:
        What ``read`` returns.

    Raises:
        Exception: what ``read`` raised last (a permanent error at once, a transient one after the attempts).
    """
    return call_with_retries(read, is_transient_io_error, f"read {display_uri(uri)}", policy)


def display_uri(uri: str) -> str:
    """Return ``uri`` safe to print or record: no user, password or query string (they may hold secrets).

    Args:
        uri: A local path or a URI such as ``s3://key:secret@bucket/file.csv?session_token=...``.

    Returns:
        The path, or the URI without its user-info and query, e.g. ``s3://bucket/file.csv``.
    """
    parts = urlsplit(uri)
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (or a Windows drive letter)
        return uri
    if "@" not in parts.netloc and not parts.query:
        return uri  # nothing secret to drop (and sqlite:////abs/path must keep its slashes)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact(text: str, uri: str) -> str:
    """Return ``text`` (e.g. a library's error message) with ``uri``'s user-info password and query removed.

    Args:
        text: Text that may quote ``uri``.
        uri: The URI as given, possibly with ``user:password@`` or a query holding a token.

    Returns:
        The text with ``uri`` shown as ``display_uri(uri)`` and any stray password or query replaced by ``***``.
    """
    parts = urlsplit(uri)
    text = text.replace(uri, display_uri(uri))
    for secret in (parts.password, parts.query):
        if secret:
            text = text.replace(secret, "***")
    return text


def resolve_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """Return the pyarrow filesystem for ``uri`` and the path inside it.

    Args:
        uri: A local path (relative or absolute) or any URI pyarrow understands (file://, s3://, gs://, hdfs://).

    Returns:
        ``(filesystem, path)``.

    Raises:
        DataError: the URI scheme is unknown to pyarrow or its filesystem cannot be created.
    """
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as error:  # pyarrow raises ArrowInvalid / ValueError / OSError by scheme
        raise DataError(f"{display_uri(uri)}: cannot open this URI with pyarrow: {redact(str(error), uri)}") from error


def require_readable_file(uri: str) -> tuple[pafs.FileSystem, str, int]:
    """Check that ``uri`` names an existing, non-empty file.

    Args:
        uri: Path or URI of the file.

    Returns:
        ``(filesystem, path, size_in_bytes)``.

    Raises:
        DataError: the file does not exist, is a directory, or is empty; the store refuses or keeps failing.
    """
    import pyarrow.fs as pafs

    filesystem, path = resolve_filesystem(uri)
    try:
        info = read_with_retries(uri, lambda: filesystem.get_file_info(path))
    except OSError as error:
        raise DataError(f"{display_uri(uri)}: cannot read: {redact(str(error), uri)}") from error
    if info.type == pafs.FileType.NotFound:
        raise DataError(f"{display_uri(uri)}: file not found")
    if info.type == pafs.FileType.Directory:
        raise DataError(f"{display_uri(uri)}: is a directory, expected a CSV or Parquet file")
    if info.size == 0:
        raise DataError(f"{display_uri(uri)}: file is empty (0 bytes)")
    return filesystem, path, int(info.size or 0)


def _temporary_sibling(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    return Path(name)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call ``write(temporary)`` on a temporary sibling of ``path``, then rename it to ``path``.

    Args:
        path: Destination file; it appears only once ``write`` succeeded, and no temporary file is left behind.
        write: Writes the file at the path it is given.
    """
    destination = Path(path)
    temporary = _temporary_sibling(destination)
    try:
        write(temporary)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write ``table`` as Parquet to the local ``path`` atomically.

    Args:
        table: The Arrow table to write.
        path: Destination file (a KFP artifact's ``.path``).
    """
    import pyarrow.parquet as pq

    write_atomic(path, lambda temporary: pq.write_table(table, temporary, compression="zstd"))


@contextlib.contextmanager
def parquet_writer_atomic(schema: pa.Schema, path: str | os.PathLike[str]) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer for record batches, written to a temporary sibling and moved to ``path`` on success.

    Args:
        schema: The Arrow schema of every batch written.
        path: Destination file (a KFP artifact's ``.path``).

    Yields:
        The open ``pyarrow.parquet.ParquetWriter``; the file appears at ``path`` only when the block succeeds.
    """
    import pyarrow.parquet as pq

    destination = Path(path)
    temporary = _temporary_sibling(destination)
    try:
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            yield writer
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(text: str, path: str | os.PathLike[str]) -> None:
    """Write ``text`` (UTF-8) to the local ``path`` atomically.

    Args:
        text: The content.
        path: Destination file.
    """
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def copy_file_atomic(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Copy the local file ``source`` to ``path`` atomically.

    Args:
        source: The file to copy.
        path: Destination file.
    """
    write_atomic(path, lambda temporary: shutil.copyfile(source, temporary))


def write_json_atomic(document: Any, path: str | os.PathLike[str]) -> None:
    """Write ``document`` as indented, key-sorted JSON (stable bytes for the same content) atomically.

    Args:
        document: Anything ``json.dumps`` accepts.
        path: Destination file.
    """
    write_text_atomic(json.dumps(document, indent=2, sort_keys=True) + "\n", path)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, with an error naming the file when it is missing or not JSON.

    Args:
        path: The file.

    Returns:
        The parsed document.

    Raises:
        DataError: the file is missing or is not valid JSON.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found") from error
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from error


def replace_directory_atomic(build: Any, path: str | os.PathLike[str]) -> None:
    """Create the directory ``path`` by calling ``build(temporary_dir)`` and renaming the result into place.

    Args:
        build: A callable that fills the (not yet existing) directory it is given.
        path: Final directory; replaced whole if it exists.
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging_root = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    staged = staging_root / "content"
    try:
        build(str(staged))
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staged, destination)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
