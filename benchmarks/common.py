"""What every benchmark script shares: machine info, timed child processes, medians, ratios, results files.

Each measured run is a child process (the tool's own venv for a peer, this venv for mlkeel and the floors),
so its peak RSS is its own (``resource.getrusage`` in the child) and no tool warms another's caches. A task
script prints one JSON line: ``{"seconds": ..., "peak_rss_mib": ..., ...}`` where ``seconds`` is the work
alone, run a second time in the same process (``timed_twice``: imports and first-use costs excluded; the
first run is reported as ``cold_seconds``, the imports as ``import_seconds``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASKS = Path(__file__).resolve().parent / "tasks"
RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("MLKEEL_BENCH_DATA", "/tmp/mlkeel-bench"))


def machine_info() -> dict[str, Any]:
    """Where and when the figures were taken, including how loaded the machine was."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_1_5_15": list(os.getloadavg()),
    }
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            info["memory_gib"] = round(int(meminfo.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    info["mlkeel_commit"] = commit.stdout.strip()
    return info


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(seconds: float, cold_seconds: float, import_seconds: float | None = None, **fields: Any) -> None:
    """Print a task's one JSON line: its timings, its peak RSS and what it found (``fields``).

    Args:
        seconds: Time of the measured (second) run.
        cold_seconds: Time of the first run.
        import_seconds: Time the task's imports took (None: not measured).
        **fields: Task-specific results (rows, flagged columns, ...).
    """
    import json

    timings = {"seconds": seconds, "cold_seconds": cold_seconds}
    if import_seconds is not None:
        timings["import_seconds"] = import_seconds
    print(json.dumps({**timings, "peak_rss_mib": peak_rss_mib(), **fields}))


def timed_twice(work: Callable[[], Any], twice: bool = True) -> tuple[Any, float, float]:
    """Run ``work`` twice: ``(result, seconds of the second run, seconds of the first)``.

    The first run pays for what every tool loads lazily on first use (pyarrow.dataset inside read_table,
    pandas' Parquet engine, compiled regexes, a cold page cache): the second is the steady cost, reported.
    The first run's result is released before the second starts.
    ``twice=False`` runs once (long runs whose first-use costs are noise) and reports that run for both.
    """
    started = time.perf_counter()
    result = work()
    cold = time.perf_counter() - started
    if not twice:
        return result, cold, cold
    # Released before the measured run, for every tool alike: a tool whose result holds the data (mlkeel's
    # valid and quarantined tables) would otherwise pay for fresh memory pages that a tool returning a few
    # numbers gets back from its first run.
    del result
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started, cold


def run_task(python: str | Path, script: Path, arguments: Mapping[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """Run a task script under ``python`` with its arguments as JSON; return the JSON it printed last."""
    started = time.perf_counter()
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment["PYTHONPATH"] = str(ROOT / "benchmarks")
    completed = subprocess.run(
        [str(python), str(script), json.dumps(dict(arguments))],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=environment,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{script.name} failed ({completed.returncode}): {completed.stderr[-3000:]}")
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = time.perf_counter() - started
    return figures


def this_python() -> str:
    return sys.executable


def interleave(
    runners: Mapping[str, Callable[[], dict[str, Any]]], repeats: int, label: str = ""
) -> dict[str, list[dict[str, Any]]]:
    """Run every runner once per repeat, in turn (a, b, c, a, b, c...), so machine noise hits them alike."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    for repeat in range(repeats):
        for name, runner in runners.items():
            runs[name].append(runner())
            print(f"{label}repeat {repeat + 1}/{repeats}: {name} {runs[name][-1]['seconds']:.3f} s", flush=True)
    return runs


def summarise(runs: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per tool: every time, the median time and the median peak RSS (and the last run's other fields)."""
    summary: dict[str, dict[str, Any]] = {}
    for name, items in runs.items():
        summary[name] = {
            **{key: value for key, value in items[-1].items() if key not in ("seconds", "peak_rss_mib")},
            "seconds": [item["seconds"] for item in items],
            "median_seconds": statistics.median(item["seconds"] for item in items),
            "median_peak_rss_mib": statistics.median(item["peak_rss_mib"] for item in items),
        }
    return summary


def target(name: str, measured: float, limit: float, better: str, unit: str = "x") -> dict[str, Any]:
    """One target of issue 6: ``measured`` against ``limit`` (``better`` is "lower" or "higher")."""
    met = measured <= limit if better == "lower" else measured >= limit
    return {"target": name, "measured": round(measured, 3), "limit": limit, "unit": unit, "met": met}


def write_results(name: str, report: dict[str, Any], markdown: str, folder: Path = RESULTS) -> tuple[Path, Path]:
    """Write ``<folder>/<name>.json`` and ``<folder>/<name>.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = folder / f"{name}.json", folder / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    markdown_path.write_text(markdown)
    return json_path, markdown_path


def markdown_header(title: str, machine: Mapping[str, Any], repeats: int, note: str = "") -> list[str]:
    load = ", ".join(f"{value:.1f}" for value in machine["load_average_1_5_15"])
    lines = [
        f"# {title}",
        "",
        f"Measured {machine['date_utc']} on {machine['cpus']} CPUs, {machine.get('memory_gib', '?')} GiB, "
        f"Python {machine['python']}, {machine['platform']}, mlkeel {machine['mlkeel_commit']}. "
        f"Load average at the end (1/5/15 min): {load}. Medians of {repeats} interleaved repeat(s); every "
        "ratio is computed from medians of this one run.",
    ]
    if max(machine["load_average_1_5_15"]) > machine["cpus"]:
        lines += [
            "",
            "**The machine was loaded** (load average above its CPU count: other jobs shared it): single times "
            "vary a lot from repeat to repeat; the ratios, taken from interleaved repeats, are the figures to read.",
        ]
    if note:
        lines += ["", note]
    return [*lines, ""]


def targets_markdown(targets: list[dict[str, Any]], explanations: Mapping[str, str]) -> list[str]:
    lines = ["## Targets (issue 6)", "", "| target | measured | limit | met |", "|---|---:|---:|---|"]
    for item in targets:
        lines.append(
            f"| {item['target']} | {item['measured']}{item['unit']} | {item['limit']}{item['unit']} | "
            f"{'yes' if item['met'] else '**no**'} |"
        )
    missed = [item for item in targets if not item["met"] and item["target"] in explanations]
    if missed:
        lines += ["", "Missed targets:", ""]
        lines += [
            f"- {item['target']}: {item['measured']}{item['unit']} against {item['limit']}{item['unit']}. "
            f"{explanations[item['target']]}"
            for item in missed
        ]
    return [*lines, ""]
