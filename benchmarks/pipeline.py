"""Pipeline: the local training pipeline's wall time and per-step overhead vs the same work in one process.

    python benchmarks/pipeline.py [--repeats 3] [--quick]

Reuses ``pipeline_runners`` (kfp.local runs with the warm runner and with fresh interpreters, and the
single-process floor), interleaved, and writes ``benchmarks/results/pipeline.{md,json}`` in the format of the
other benchmarks. ``--quick`` runs the single-process floor only: kfp.local runs cost 15-60 s each, too much
for CI's quick pass (the pipeline itself is tested end to end in tests/e2e). The DockerRunner comparison
stays in ``pipeline_runners.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import common
from pipeline_runners import TASKS, pipeline_run, single_process_run

TARGET_SECONDS = 20.0


def _timed(run: Any) -> Any:
    def measured() -> dict[str, Any]:
        started = time.perf_counter()
        seconds = run()
        return {
            "seconds": seconds,
            "wall_seconds": time.perf_counter() - started,
            "peak_rss_mib": common.peak_rss_mib(),
        }

    return measured


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the single-process floor only, 1 repeat")
    parser.add_argument("--results", type=Path, default=common.RESULTS)
    options = parser.parse_args(argv)
    if options.quick:
        options.repeats = 1
    runners = {"single_process": _timed(single_process_run)}
    skipped = {}
    for runner in PIPELINE_RUNNERS:
        if options.quick:
            skipped[runner] = "quick mode: one kfp.local pipeline run costs 15-60 s (tests/e2e runs it)"
        else:
            runners[runner] = _timed(lambda runner=runner: pipeline_run(runner))
    runs = common.interleave(runners, options.repeats)
    summary = common.summarise(runs)
    for name, items in runs.items():
        summary[name]["median_wall_seconds"] = statistics.median(item["wall_seconds"] for item in items)
    floor = summary["single_process"]["median_seconds"]
    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "machine": common.machine_info(),
        "repeats": options.repeats,
        "quick": options.quick,
        "tasks": TASKS,
        "tools": summary,
        "skipped": skipped,
        "targets": [],
    }
    lines = common.markdown_header(
        "Local training pipeline on the bundled Telco data", report["machine"], options.repeats, NOTE
    )
    imports = import_floor(options.repeats)
    report["import_seconds"] = imports
    lines += [
        "| run | median s | x single process | overhead per step s | median s of the whole call |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, item in summary.items():
        overhead = (item["median_seconds"] - floor) / TASKS
        item["overhead_per_step_seconds"] = overhead
        lines.append(
            f"| {name} | {item['median_seconds']:.1f} | {item['median_seconds'] / floor:.2f} | {overhead:.2f} "
            f"| {item['median_wall_seconds']:.1f} |"
        )
    for runner in PIPELINE_RUNNERS:
        if runner in summary:
            report[f"ratio_{runner}_over_single_process"] = summary[runner]["median_seconds"] / floor
    if "warm" in summary and "subprocess" in summary:
        ratio = summary["subprocess"]["median_seconds"] / summary["warm"]["median_seconds"]
        report["ratio_subprocess_over_warm"] = ratio
        lines += ["", f"The warm runner is {ratio:.2f}x faster than fresh interpreters (medians of this run)."]
    if "warm" in summary:
        report["targets"].append(
            common.target(
                "local training pipeline wall time (`mlkeel run training --local`, warm runner)",
                summary["warm"]["median_seconds"],
                TARGET_SECONDS,
                "lower",
                " s",
            )
        )
    heading = f"What a fresh Python process pays to import, median of {options.repeats} (`python -c 'import ...'`):"
    lines += ["", heading, ""]
    lines += ["| modules | s | steps that import them |", "|---|---:|---:|"]
    lines += [f"| {modules} | {imports[modules]:.2f} | {steps} |" for modules, (_, steps) in IMPORTS.items()]
    lines += [""] + [f"- {name} skipped: {reason}" for name, reason in skipped.items()] + [""]
    lines += common.targets_markdown(report["targets"], EXPLANATIONS)
    common.write_results("pipeline", report, "\n".join(lines), options.results)
    return report


# What each step's fresh process imports before its work: (the statement, how many of the 10 steps run it).
IMPORTS = {
    "kfp.dsl (the KFP executor)": ("import kfp.dsl", 10),
    "pandas, pyarrow": ("import pandas, pyarrow", 10),
    "skops.io, sklearn.ensemble (load or save the model)": ("import skops.io, sklearn.ensemble", 7),
    "mlflow (tracking, registry)": ("import mlflow", 7),
}


def import_floor(repeats: int) -> dict[str, float]:
    """Median wall seconds of a fresh ``python -c 'import ...'`` for each row of ``IMPORTS``."""
    import os
    import statistics
    import subprocess
    import sys

    seconds = {}
    for name, (statement, _) in IMPORTS.items():
        runs = []
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True, env={**os.environ, "_KFP_RUNTIME": "true"})
            runs.append(time.perf_counter() - started)
        seconds[name] = statistics.median(runs)
    return seconds


# The kfp.local runs measured: the default runner of `mlkeel run training --local` and fresh interpreters.
PIPELINE_RUNNERS = ("warm", "subprocess")

EXPLANATIONS = {
    "local training pipeline wall time (`mlkeel run training --local`, warm runner)": (
        "Each task still runs in a process of its own, one after the other (forked from the warm server, "
        "so the import table applies only to what the server had not imported yet); the first tasks share "
        "the 2 cores with the server's imports, and the steps' own work is the single-process row."
    ),
}

NOTE = (
    f"`warm`: `mlkeel run training --local` as it runs by default (kfp.local SubprocessRunner, {TASKS} steps: "
    "ingest, validate, split, train, evaluate, fairness, explain, gate, register, model card; each task a "
    "process forked from a server that imported the stages' libraries: `mlkeel.warm_python`). `subprocess`: "
    "the same with `--runner subprocess`, a fresh interpreter per task. Both run as a user runs them: the "
    "command in a new process and a new work folder; `median s` is the pipeline's wall time as the run's "
    "summary prints it, and the last column the whole command (Python start-up, imports, preparing the local "
    "MLflow store and the summary included). "
    "`single_process`: the same stage functions called in one Python process (imports warm after the first "
    f"repeat). Overhead per step: (run - single process) / {TASKS}: starting the step's process, importing "
    "what it had not, and kfp.local's artifact bookkeeping."
)

if __name__ == "__main__":
    main()
