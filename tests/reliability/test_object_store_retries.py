"""Drill 5: transient object-store failures are retried; a permanent one fails fast with the URI.

A real S3-compatible server (``moto.server``, a separate process on 127.0.0.1) sits behind a small TCP proxy
that resets the first connections it is given, the way a flaky network or a restarting load balancer would.
Ingest reads ``s3://...?endpoint_override=...`` through pyarrow's S3 filesystem, as it would read a bucket.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pytest
import yaml

from mlkeel.components.ingest.logic import ingest
from mlkeel.errors import DataError
from mlkeel.storage import is_transient_io_error
from pipelines.task_settings import SETTINGS

pytestmark = pytest.mark.integration

BUCKET = "mlkeel-drill"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FaultProxy:
    """A TCP proxy to ``upstream`` that resets every connection while ``failing``, and relays bytes after."""

    def __init__(self, upstream: int, failing: bool) -> None:
        self.upstream, self.failing = upstream, failing
        self.connections = self.failures = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.failing:
                self.failures += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # linger 0: the peer sees a reset, not a clean end
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    @staticmethod
    def _relay(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.fixture(scope="module")
def s3_server(telco_csv: Path) -> Iterator[int]:
    """A ``moto.server`` process holding ``s3://mlkeel-drill/telco.csv``; yields its port."""
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "drill",
            "AWS_SECRET_ACCESS_KEY": "drill",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            patch.setenv(name, value)
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None and time.monotonic() < deadline, "moto.server did not start"
                    time.sleep(0.1)
            direct = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True)
            direct.create_dir(BUCKET)
            with direct.open_output_stream(f"{BUCKET}/telco.csv") as stream:
                stream.write(telco_csv.read_bytes())
            yield port
        finally:
            process.terminate()
            process.wait(timeout=30)


class HealOnRetry(logging.Handler):
    """Ends the outage when mlkeel's own retry starts: the object store's client gave up by itself before."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__()
        self.proxy = proxy

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in record.getMessage():
            self.proxy.failing = False


def uri(key: str, proxy: FaultProxy) -> str:
    return f"s3://{BUCKET}/{key}?endpoint_override=127.0.0.1:{proxy.port}&scheme=http"


def test_ingest_retries_transient_failures_of_the_object_store(
    s3_server: int, telco_csv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Every connection is reset until pyarrow's S3 client has used up its own retries (about 30 connections in
    # 6 s) and mlkeel's retry waits to try again; then the store is back.
    proxy = FaultProxy(s3_server, failing=True)
    caplog.set_level(logging.WARNING, logger="mlkeel.retry")
    healer = HealOnRetry(proxy)
    logging.getLogger("mlkeel.retry").addHandler(healer)
    try:
        result = ingest(uri("telco.csv", proxy), str(tmp_path / "out.parquet"))
    finally:
        logging.getLogger("mlkeel.retry").removeHandler(healer)
        proxy.close()
    assert result.num_rows == pacsv.read_csv(telco_csv).num_rows
    assert result.source == f"s3://{BUCKET}/telco.csv"  # shown without its query
    retries = [record.getMessage() for record in caplog.records if "retrying in" in record.getMessage()]
    assert retries and all(f"read s3://{BUCKET}/telco.csv failed" in line for line in retries), retries
    assert proxy.failures > 3 and proxy.connections > proxy.failures
    # The outer layer: KFP reruns the whole ingest step when the in-process retries give up.
    # The compiled file holds the pipeline spec, then the platform (Kubernetes) spec: the first document.
    training = next(
        yaml.safe_load_all((Path(__file__).resolve().parents[2] / "pipelines" / "training.yaml").read_text())
    )
    policy = training["root"]["dag"]["tasks"]["ingest"]["retryPolicy"]
    assert policy["maxRetryCount"] == SETTINGS["ingest"].retries >= 1 and policy["backoffDuration"] == "5s"


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        (
            "When getting information for key 'x.csv' in bucket 'b': AWS Error NETWORK_CONNECTION during HeadObject "
            "operation: curlCode: 56, Failure when receiving data from the peer",
            True,
        ),
        ("AWS Error SLOW_DOWN during GetObject operation: Please reduce your request rate.", True),
        ("AWS Error ACCESS_DENIED during HeadObject operation: No response body.", False),
        ("AWS Error NO_SUCH_BUCKET during HeadObject operation: The specified bucket does not exist", False),
        ("Parquet magic bytes not found in footer. Either the file is corrupted or this is not a parquet file.", False),
    ],
    ids=["connection reset", "throttled", "access denied", "no such bucket", "corrupt file"],
)
def test_which_read_errors_are_retried(message: str, transient: bool) -> None:
    assert is_transient_io_error(OSError(message)) is transient


@pytest.mark.parametrize(
    ("key_or_bucket", "shown"),
    [("missing.csv", f"s3://{BUCKET}/missing.csv"), ("no-such-bucket", "s3://no-such-bucket/telco.csv")],
    ids=["no such key", "no such bucket"],
)
def test_a_permanent_object_store_error_fails_fast_with_the_uri(
    s3_server: int, tmp_path: Path, key_or_bucket: str, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = FaultProxy(s3_server, failing=False)
    address = uri(key_or_bucket, proxy)
    if key_or_bucket == "no-such-bucket":
        address = address.replace(f"s3://{BUCKET}/no-such-bucket", "s3://no-such-bucket/telco.csv")
    caplog.set_level(logging.WARNING, logger="mlkeel.retry")
    started = time.monotonic()
    try:
        with pytest.raises(DataError, match=f"^{shown}: file not found$"):
            ingest(address, str(tmp_path / "out.parquet"))
    finally:
        proxy.close()
    assert time.monotonic() - started < 5.0, "a 404 must not be retried"
    assert not [record for record in caplog.records if "retrying in" in record.getMessage()]
    assert not (tmp_path / "out.parquet").exists()
