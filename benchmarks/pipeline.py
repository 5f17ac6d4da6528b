"""Pipeline: the local training pipeline's wall time and per-step overhead vs the same work in one process.

    python benchmarks/pipeline.py [--repeats 3] [--quick]

Reuses ``pipeline_runners`` (the kfp.local SubprocessRunner run and the single-process floor), interleaved,
and writes ``benchmarks/results/pipeline.{md,json}`` in the format of the other benchmarks. ``--quick`` runs
the single-process floor only: one kfp.local run costs 30-60 s, too much for CI's quick pass (the pipeline
itself is tested end to end in tests/e2e). The DockerRunner comparison stays in ``pipeline_runners.py``.
"""

from __future__ import annotations

import argparse
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
    if options.quick:
        skipped["subprocess"] = "quick mode: one kfp.local pipeline run costs 30-60 s (tests/e2e runs it)"
    else:
        runners["subprocess"] = _timed(lambda: pipeline_run("subprocess"))
    summary = common.summarise(common.interleave(runners, options.repeats))
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
    lines += ["| run | median s | x single process | overhead per step s |", "|---|---:|---:|---:|"]
    for name, item in summary.items():
        overhead = (item["median_seconds"] - floor) / TASKS
        item["overhead_per_step_seconds"] = overhead
        lines.append(
            f"| {name} | {item['median_seconds']:.1f} | {item['median_seconds'] / floor:.2f} | {overhead:.2f} |"
        )
    if "subprocess" in summary:
        report["ratio_subprocess_over_single_process"] = summary["subprocess"]["median_seconds"] / floor
        report["targets"].append(
            common.target(
                "local training pipeline wall time",
                summary["subprocess"]["median_seconds"],
                TARGET_SECONDS,
                "lower",
                " s",
            )
        )
    lines += [""] + [f"- {name} skipped: {reason}" for name, reason in skipped.items()] + [""]
    lines += common.targets_markdown(report["targets"], EXPLANATIONS)
    common.write_results("pipeline", report, "\n".join(lines), options.results)
    return report


EXPLANATIONS = {
    "local training pipeline wall time": (
        f"each of the {TASKS} steps is a new Python process that imports its libraries (kfp, pyarrow, "
        "scikit-learn and skops, MLflow and its SQL store: seconds each on a loaded 2-core machine) before doing "
        "its work; the single-process row shows the work itself, the overhead-per-step column the rest."
    ),
}

NOTE = (
    f"`subprocess`: `mlkeel run training --local` (kfp.local SubprocessRunner, {TASKS} steps: ingest, validate, "
    "split, train, evaluate, fairness, explain, gate, register, model card), wall time of the run. "
    "`single_process`: the same stage functions called in one Python process (imports warm after the first "
    "repeat). Overhead per step: (run - single "
    f"process) / {TASKS}: launching a Python process per step, importing its libraries, and kfp.local's "
    "artifact bookkeeping."
)


if __name__ == "__main__":
    main()
