"""Drill 4: the serving endpoint under a bounded flood of mixed valid and malformed requests.

The real server (``python -m mlkeel.components.serve``, its own process on 127.0.0.1, serving a registered
champion) gets ``REQUESTS`` requests from ``CONCURRENCY`` keep-alive client threads: valid single records and
batches, and every kind of malformed body a client can send. What must hold: no 5xx at all, each kind gets its
own 4xx, the process stays alive and ready, its resident memory stays within ``RSS_GROWTH_LIMIT_MIB`` of the
post-warm-up baseline, ``/metrics`` counts exactly the statuses the clients saw, and after SIGTERM the
prediction log holds exactly one row per valid record sent.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlkeel.components.serve.logic import REQUEST_ID_HEADER, http_call, json_records, load_serving_model
from mlkeel.prediction_log import read_prediction_logs
from tests.fixtures_serve import holdout_rows, metric, serve_process

REQUESTS = 2_500
WARM_UP_REQUESTS = 200
CONCURRENCY = 24
MAX_BODY_BYTES = 64 * 1024
RSS_GROWTH_LIMIT_MIB = 150
RSS_SAMPLE_SECONDS = 0.02
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """One ``/predict`` request and what it must get.

    Attributes:
        kind: Name of the case (the figures are reported by kind).
        body: The raw body.
        status: The status it must get.
        ids: Ids of the records the prediction log must hold once (valid requests only).
        headers: Request headers.
    """

    kind: str
    body: bytes
    status: int
    ids: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": JSON})


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def request_kinds(records: list[dict[str, Any]]) -> list[tuple[int, Callable[[int, random.Random], Request]]]:
    """``(weight, make(n, rng))`` for every kind of request; ``n`` makes its record ids unique."""

    def pick(rng: random.Random, count: int) -> list[dict[str, Any]]:
        return rng.sample(records, count)

    def batch(n: int, rng: random.Random) -> Request:
        chosen = pick(rng, rng.randint(2, 20))
        ids = [f"batch-{n}-{index}" for index in range(len(chosen))]
        return Request("valid batch", dumps({"records": chosen, "ids": ids}), 200, tuple(ids))

    def single(n: int, rng: random.Random) -> Request:  # no ids: the server names it <X-Request-ID>-0
        headers = {"Content-Type": JSON, REQUEST_ID_HEADER: f"single-{n}"}
        return Request("valid single", dumps({"records": pick(rng, 1)}), 200, (f"single-{n}-0",), headers)

    def mlflow_shape(n: int, rng: random.Random) -> Request:
        chosen = pick(rng, 3)
        ids = [f"mlflow-{n}-{index}" for index in range(3)]
        return Request("valid, MLflow's dataframe_records", dumps({"dataframe_records": chosen, "ids": ids}), 200,
                       tuple(ids))  # fmt: skip

    def other_content_type(n: int, rng: random.Random) -> Request:  # valid JSON declared as text: refused, not logged
        ids = [f"text-{n}-0"]
        return Request("valid JSON as Content-Type text/plain", dumps({"records": pick(rng, 1), "ids": ids}), 415,
                       (), {"Content-Type": "text/plain; charset=latin-1"})  # fmt: skip

    def long_unicode(n: int, rng: random.Random) -> Request:  # an unseen category is still a string: scored
        ids = [f"unicode-{n}-0"]
        record = {**pick(rng, 1)[0], "PaymentMethod": "支払い🙂" * 2_000}
        return Request("valid, 8,000-character unicode value", dumps({"records": [record], "ids": ids}), 200,
                       tuple(ids))  # fmt: skip

    def malformed(kind: str, status: int, make_body: Callable[[dict[str, Any]], bytes]) -> Any:
        return lambda n, rng: Request(kind, make_body(pick(rng, 1)[0]), status)

    def without(record: dict[str, Any], name: str) -> dict[str, Any]:
        return {key: value for key, value in record.items() if key != name}

    def raw(record: dict[str, Any], name: str, value: bytes) -> bytes:  # a value json.dumps would not write
        return dumps({"records": [{**record, name: "@"}]}).replace(b'"@"', value)

    return [
        (20, batch),
        (14, single),
        (4, mlflow_shape),
        (3, other_content_type),
        (3, long_unicode),
        (4, malformed("wrong type", 422, lambda r: dumps({"records": [r, {**r, "tenure": "twelve"}]}))),
        (4, malformed("missing field", 422, lambda r: dumps({"records": [without(r, "Contract")]}))),
        (4, malformed("extra field", 422, lambda r: dumps({"records": [{**r, "favourite_colour": "teal"}]}))),
        (3, malformed("unicode field name", 422, lambda r: dumps({"records": [{**r, "顧客の気分🙂": 1}]}))),
        (3, malformed("null in a never-null field", 422, lambda r: dumps({"records": [{**r, "gender": None}]}))),
        (3, malformed("very long string for a number", 422, lambda r: raw(r, "tenure", b'"' + b"9" * 20_000 + b'"'))),
        (3, malformed("empty list", 422, lambda r: b'{"records": []}')),
        (3, malformed("record not an object", 422, lambda r: b'{"records": [[1, 2, 3]]}')),
        (3, malformed("non-JSON", 400, lambda r: b"tenure=12&Contract=Month-to-month")),
        (2, malformed("truncated JSON", 400, lambda r: dumps({"records": [r]})[:-7])),
        (2, malformed("invalid UTF-8", 400, lambda r: b'{"records": [{"gender": "\xff\xfe"}]}')),
        (3, malformed("wrong top-level shape", 400, lambda r: dumps([r]))),
        (2, malformed("unpaired surrogate escape", 400, lambda r: raw(r, "gender", b'"\\udc00"'))),
        (2, malformed("deeply nested JSON", 400, lambda r: b'{"records": ' + b"[" * 30_000 + b"]" * 30_000 + b"}")),
        (2, malformed("5,000-digit number", 400, lambda r: raw(r, "tenure", b"7" * 5_000))),
        (3, malformed("oversized body", 413, lambda r: dumps({"records": [r] * 400}))),
    ]  # fmt: skip


def make_requests(records: list[dict[str, Any]], count: int, prefix: str, seed: int) -> list[Request]:
    """``count`` requests, kinds drawn by weight (every kind at least once), shuffled."""
    rng = random.Random(seed)
    kinds = request_kinds(records)
    chosen = [make for _, make in kinds]
    chosen += rng.choices([make for _, make in kinds], [weight for weight, _ in kinds], k=count - len(kinds))
    rng.shuffle(chosen)
    return [make(f"{prefix}{n}", rng) for n, make in enumerate(chosen)]


class Client:
    """One keep-alive connection per thread, as a load balancer or client pool keeps them."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.local = threading.local()

    def send(self, request: Request) -> tuple[int, bytes]:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection(*self.address, timeout=60)
        connection.request("POST", "/predict", body=request.body, headers=request.headers)
        response = connection.getresponse()
        return response.status, response.read()


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS in /proc/<pid>/status) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssSampler(threading.Thread):
    """Samples a process's resident memory until stopped; ``peak`` is the largest sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.peak, self.samples = pid, 0.0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self.samples += 1
            self.done.wait(RSS_SAMPLE_SECONDS)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc (Linux)")
def test_a_flood_of_mixed_requests_gets_no_5xx_bounded_memory_and_every_valid_record_logged_once(
    champion: str, mlflow_shared_uri: str, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    features = load_serving_model(champion, mlflow_shared_uri).feature_names
    records = json_records(holdout_rows(telco_split[1], 300).select(features))
    warm_up = make_requests(records, WARM_UP_REQUESTS, "w", seed=4)
    flood = make_requests(records, REQUESTS, "f", seed=8)

    with serve_process(champion, mlflow_shared_uri, tmp_path, "--max-body-bytes", str(MAX_BODY_BYTES)) as server:
        pid, client = server.process.pid, Client(server.base)
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            warm_answers = list(pool.map(client.send, warm_up))
            baseline = rss_mib(pid)
            sampler = RssSampler(pid)
            sampler.start()
            started = time.monotonic()
            answers = list(pool.map(client.send, flood))
            seconds = time.monotonic() - started
            sampler.done.set()
            sampler.join()
        after = rss_mib(pid)
        alive = server.process.poll() is None
        health, ready = http_call(f"{server.base}/healthz")[0], http_call(f"{server.base}/readyz")[0]
        counted = {
            status: metric(server.base, "mlkeel_serve_requests_total", endpoint="/predict", status=status)
            for status in ("200", "400", "413", "415", "422", "500", "503")
        }
        exit_status = server.terminate()
        stderr = server.stderr()

    sent = warm_up + flood
    statuses = [status for status, _ in warm_answers + answers]
    seen = Counter(str(status) for status in statuses)
    by_kind: dict[str, Counter[int]] = {}
    for request, status in zip(sent, statuses, strict=True):
        by_kind.setdefault(request.kind, Counter())[status] += 1
    expected_ids = [record_id for request in sent for record_id in request.ids]
    log = read_prediction_logs(server.log_dir)
    logged = log.column("request_id").to_pylist()
    print(  # the drill's figures (pytest -s)
        f"\nflood: {len(flood)} requests (+{len(warm_up)} warm-up) at concurrency {CONCURRENCY} in {seconds:.1f}s;"
        f" statuses {dict(sorted(seen.items()))}; RSS baseline {baseline:.1f} MiB, peak {sampler.peak:.1f} MiB"
        f" ({sampler.samples} samples), after {after:.1f} MiB; log rows {log.num_rows} for"
        f" {len(expected_ids)} valid records"
    )

    assert not [status for status in statuses if status >= 500], (by_kind, stderr[-3000:])
    wrong = {
        kind: dict(got) for kind, got in by_kind.items()
        if set(got) != {next(request.status for request in sent if request.kind == kind)}
    }  # fmt: skip
    assert not wrong, wrong
    assert alive and health == 200 and ready == 200, stderr[-3000:]
    assert sampler.peak - baseline < RSS_GROWTH_LIMIT_MIB, (baseline, sampler.peak)
    assert {status: int(count) for status, count in counted.items() if count} == dict(seen)
    # uvicorn stops gracefully, then re-raises SIGTERM so the exit status says what stopped it.
    assert exit_status == -signal.SIGTERM and "Application shutdown complete" in stderr, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(logged) == len(set(logged)) == len(expected_ids)
    assert set(logged) == set(expected_ids)
