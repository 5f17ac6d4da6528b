"""Latency and throughput of mlkeel's serving app vs ``mlkeel models serve``'s peer, ``mlflow models serve``.

    python benchmarks/serving.py [--requests 400] [--rounds 3] [--json out.json] [--markdown out.md]

Both serve the same registered model (a logistic regression trained on the bundled Telco data, registered as
``models:/bench@champion`` in a SQLite store under a temporary folder) on 127.0.0.1, each in its own process
with one worker: ``python -m mlkeel.components.serve`` (Starlette on uvicorn; every record checked against the
input schema and appended to the prediction log) and ``mlflow models serve --env-manager local`` (FastAPI on
uvicorn; the payload checked against the MLflow signature; no prediction log). The client is this process:
``concurrency`` threads, each with its own keep-alive connection, send a bounded number of requests. Scenarios
(records per request x concurrency) and peers are interleaved round by round so machine noise hits both alike;
the report gives medians over rounds of p50/p99 latency and throughput, and mlkeel/mlflow ratios from this one
run. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np

MODEL_NAME = "bench"
# (records per request, concurrent clients)
SCENARIOS = ((1, 1), (1, 8), (100, 4))
WARMUP_REQUESTS = 30
START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_model(folder: Path) -> tuple[str, list[dict]]:
    """Train and register the benchmark model; return the tracking URI and the holdout records (JSON-ready)."""
    import pyarrow.parquet as pq

    from mlkeel.components.gate.logic import decide
    from mlkeel.components.ingest.logic import ingest
    from mlkeel.components.register.logic import register
    from mlkeel.components.serve.logic import json_records
    from mlkeel.components.split.logic import split
    from mlkeel.components.train.logic import train
    from mlkeel.data import TELCO_CHURN_CSV
    from mlkeel.local import LocalStore

    store = LocalStore.create(folder)
    store.ensure_experiment("bench")
    ingest(str(TELCO_CHURN_CSV), str(folder / "data.parquet"))
    split(str(folder / "data.parquet"), str(folder / "train.parquet"), str(folder / "test.parquet"), "Churn", "Yes")
    trained = train(
        str(folder / "train.parquet"),
        str(folder / "model"),
        "Churn",
        "Yes",
        ["customerID"],
        estimator="logistic_regression",
        tracking_uri=store.tracking_uri,
        experiment_name="bench",
    )
    blessing = decide({"roc_auc": 0.84}, thresholds={"roc_auc": 0.5}, no_comparison_reason="benchmark")
    register(trained.mlflow_model_uri, blessing, MODEL_NAME, store.tracking_uri)
    table = pq.read_table(folder / "test.parquet").select(trained.feature_columns)
    return store.tracking_uri, json_records(table)


def start(command: list[str], environment: dict[str, str], log: Path, ready_url: str) -> subprocess.Popen[bytes]:
    from mlkeel.components.serve.logic import wait_until_ok

    with log.open("wb") as handle:
        process = subprocess.Popen(command, env=environment, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    if not wait_until_ok(ready_url, START_TIMEOUT_S, lambda: process.poll() is None, interval=0.3):
        raise RuntimeError(f"{command[:4]} not ready (exit {process.poll()}):\n{log.read_text()[-3000:]}")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _split(url: str) -> tuple[str, int, str]:
    rest = url.removeprefix("http://")
    address, _, path = rest.partition("/")
    host, _, port = address.partition(":")
    return host, int(port), "/" + path


def load(url: str, bodies: list[bytes], concurrency: int) -> dict[str, float]:
    """Send every body once, ``concurrency`` at a time on keep-alive connections; latency and throughput."""
    host, port, path = _split(url)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    queue = list(reversed(bodies))

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        mine = []
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            began = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - began)
            if response.status != 200:
                with lock:
                    errors.append(str(response.status))
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{url}: {len(errors)} non-200 answers, e.g. {errors[:3]}")
    millis = np.asarray(latencies) * 1000
    return {
        "p50_ms": float(np.percentile(millis, 50)),
        "p99_ms": float(np.percentile(millis, 99)),
        "requests_per_s": len(bodies) / elapsed,
    }


def machine() -> dict[str, object]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    versions = {}
    for name in ("mlflow", "mlflow-skinny", "starlette", "fastapi", "uvicorn", "scikit-learn", "prometheus-client"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def render_markdown(report: dict) -> str:
    info = report["machine"]
    lines = [
        "# Serving: mlkeel serve vs mlflow models serve",
        "",
        f"Generated by `python benchmarks/serving.py --requests {report['requests']} --rounds {report['rounds']}` "
        f"on {report['date']}.",
        "",
        f"Machine: {info['cpus']} CPUs ({info['cpu']}), load average at start {info['load_average_at_start']}, "
        f"Python {info['python']}, {info['platform']}. Versions: "
        + ", ".join(f"{name} {version}" for name, version in info["versions"].items())
        + ".",
        "",
        "Same registered model (logistic regression, Telco), 127.0.0.1, one server process with one worker each, "
        f"{report['requests']} requests per scenario per round, medians over {report['rounds']} interleaved rounds.",
        "",
        "| records/request | clients | server | p50 ms | p99 ms | requests/s | records/s |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for scenario in report["scenarios"]:
        for peer in ("mlkeel", "mlflow"):
            figures = scenario["median"][peer]
            lines.append(
                f"| {scenario['records']} | {scenario['concurrency']} | {peer} | {figures['p50_ms']:.2f} | "
                f"{figures['p99_ms']:.2f} | {figures['requests_per_s']:.0f} | "
                f"{figures['requests_per_s'] * scenario['records']:.0f} |"
            )
    lines += [
        "",
        "Ratios mlkeel / mlflow (below 1 for latency, above 1 for throughput: mlkeel is better):",
        "",
        "| records/request | clients | p50 | p99 | throughput |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in report["scenarios"]:
        ratio = scenario["ratio_mlkeel_over_mlflow"]
        lines.append(
            f"| {scenario['records']} | {scenario['concurrency']} | {ratio['p50_ms']:.2f} | {ratio['p99_ms']:.2f} | "
            f"{ratio['requests_per_s']:.2f} |"
        )
    lines += ["", "What each side does per request: see benchmarks/README.md (Serving).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown table here")
    options = parser.parse_args()

    report: dict = {"machine": machine(), "requests": options.requests, "rounds": options.rounds}
    report["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="mlkeel-bench-serving-") as folder:
        work = Path(folder)
        tracking_uri, records = prepare_model(work)
        environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
        # mlflow models serve execs `uvicorn` by name: the one of this interpreter's environment.
        environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
        uri = f"models:/{MODEL_NAME}@champion"
        ports = {"mlkeel": free_port(), "mlflow": free_port()}
        commands = {
            "mlkeel": [sys.executable, "-m", "mlkeel.components.serve", "--model", uri, "--port", str(ports["mlkeel"]),
                       "--prediction-log", str(work / "log")],
            "mlflow": [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
                       "--host", "127.0.0.1", "--port", str(ports["mlflow"]), "--workers", "1"],
        }  # fmt: skip
        ready = {"mlkeel": "/readyz", "mlflow": "/ping"}
        predict = {"mlkeel": "/predict", "mlflow": "/invocations"}
        key = {"mlkeel": "records", "mlflow": "dataframe_records"}
        processes = {}
        try:
            for peer in ("mlkeel", "mlflow"):
                base = f"http://127.0.0.1:{ports[peer]}"
                processes[peer] = start(commands[peer], environment, work / f"{peer}.log", base + ready[peer])
            urls = {peer: f"http://127.0.0.1:{ports[peer]}{predict[peer]}" for peer in processes}

            def bodies(peer: str, size: int, count: int) -> list[bytes]:
                return [
                    json.dumps({key[peer]: [records[(index * size + k) % len(records)] for k in range(size)]}).encode()
                    for index in range(count)
                ]

            # Same answers first: mlflow's pyfunc returns predict() (classes), mlkeel the probability and class.
            sample = records[:50]
            host, port, path = _split(urls["mlflow"])
            connection = http.client.HTTPConnection(host, port)
            connection.request(
                "POST", path, json.dumps({"dataframe_records": sample}), {"Content-Type": "application/json"}
            )
            mlflow_classes = [int(value) for value in json.loads(connection.getresponse().read())["predictions"]]
            host, port, path = _split(urls["mlkeel"])
            connection = http.client.HTTPConnection(host, port)
            connection.request("POST", path, json.dumps({"records": sample}), {"Content-Type": "application/json"})
            mlkeel_classes = [item["prediction"] for item in json.loads(connection.getresponse().read())["predictions"]]
            report["same_predicted_classes"] = mlflow_classes == mlkeel_classes

            for peer in urls:  # warm-up: imports, first-request paths
                load(urls[peer], bodies(peer, 1, WARMUP_REQUESTS), 2)
            results: dict[tuple[int, int], dict[str, list[dict]]] = {
                scenario: {"mlkeel": [], "mlflow": []} for scenario in SCENARIOS
            }
            for round_number in range(options.rounds):
                for scenario in SCENARIOS:
                    size, concurrency = scenario
                    order = ("mlkeel", "mlflow") if round_number % 2 == 0 else ("mlflow", "mlkeel")
                    for peer in order:
                        figures = load(urls[peer], bodies(peer, size, options.requests), concurrency)
                        results[scenario][peer].append(figures)
                        print(
                            f"round {round_number + 1} records={size} clients={concurrency} {peer}: "
                            f"p50 {figures['p50_ms']:.2f} ms p99 {figures['p99_ms']:.2f} ms "
                            f"{figures['requests_per_s']:.0f} req/s",
                            flush=True,
                        )
        finally:
            for process in processes.values():
                stop(process)
        from mlkeel.prediction_log import read_prediction_logs

        log_rows = read_prediction_logs(work / "log").num_rows
    expected_rows = 50 + WARMUP_REQUESTS + options.rounds * options.requests * sum(size for size, _ in SCENARIOS)
    report["mlkeel_prediction_log_rows"] = log_rows
    report["mlkeel_prediction_log_rows_expected"] = expected_rows
    report["scenarios"] = []
    for (size, concurrency), runs in results.items():
        median = {
            peer: {name: statistics.median(run[name] for run in values) for name in values[0]}
            for peer, values in runs.items()
        }
        report["scenarios"].append(
            {
                "records": size,
                "concurrency": concurrency,
                "rounds": runs,
                "median": median,
                "ratio_mlkeel_over_mlflow": {
                    name: median["mlkeel"][name] / median["mlflow"][name] for name in median["mlkeel"]
                },
            }
        )
    text = render_markdown(report)
    print("\n" + text)
    if options.json:
        options.json.write_text(json.dumps(report, indent=2) + "\n")
    if options.markdown:
        options.markdown.write_text(text)


if __name__ == "__main__":
    main()
