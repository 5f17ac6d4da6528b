"""Pipeline definition: building mlkeel's pipeline graphs, as every `mlkeel run`, `submit` and `compile` does.

    python benchmarks/pipeline_definition.py [--repeats 7] [--quick]

kfp 2.17's ``set_cpu_request``/``set_memory_request``/``set_memory_limit`` call ``inspect.stack()`` to name
themselves in an error message; with MLflow and scikit-learn imported (as in a run) each call scans
``sys.modules`` for every frame it cannot place, and the import machinery's frames (a pipeline is defined when
its module is imported) are such frames. ``pipelines/task_settings.configure`` answers that lookup with the
frames' names only. This script imports the training, monitoring and tuning pipeline modules afresh in one
process, interleaved, with ``configure`` as shipped and with kfp's own ``inspect.stack``, and writes
``benchmarks/results/pipeline_definition.{md,json}`` (medians and their ratio).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import common

TARGET_SECONDS = 1.0  # a user waits for this before every local run's first task
PIPELINE_MODULES = ("mlkeel.pipelines.training", "mlkeel.pipelines.monitoring", "mlkeel.pipelines.tuning")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one repeat, the training pipeline only")
    parser.add_argument("--results", type=Path, default=common.RESULTS)
    options = parser.parse_args(argv)
    modules = PIPELINE_MODULES[:1] if options.quick else PIPELINE_MODULES
    if options.quick:
        options.repeats = 1

    import mlflow  # noqa: F401  (what a run has imported when it defines its pipelines)
    import sklearn.ensemble  # noqa: F401

    from mlkeel.pipelines import task_settings

    shipped = task_settings._setters_name_themselves_cheaply

    def define(cheap: bool) -> float:
        """Import the pipeline modules afresh: their ``@dsl.pipeline`` runs at import, as in `mlkeel run`."""
        task_settings._setters_name_themselves_cheaply = shipped if cheap else contextlib.nullcontext
        try:
            started = time.perf_counter()
            for module in modules:
                sys.modules.pop(module, None)
                importlib.import_module(module)
            return time.perf_counter() - started
        finally:
            task_settings._setters_name_themselves_cheaply = shipped

    runs = common.interleave(
        {
            "shipped": lambda: {"seconds": define(cheap=True), "peak_rss_mib": common.peak_rss_mib()},
            "kfp_inspect_stack": lambda: {"seconds": define(cheap=False), "peak_rss_mib": common.peak_rss_mib()},
        },
        options.repeats,
    )
    summary = common.summarise(runs)  # peak RSS: of this one process, for both
    ratio = summary["kfp_inspect_stack"]["median_seconds"] / summary["shipped"]["median_seconds"]
    report = {
        "benchmark": "pipeline_definition",
        "machine": common.machine_info(),
        "repeats": options.repeats,
        "quick": options.quick,
        "pipelines": list(modules),
        "tools": summary,
        "ratio_kfp_inspect_stack_over_shipped": ratio,
        "targets": [
            common.target(
                "defining the pipelines, as `mlkeel run`/`submit`/`compile` do at import",
                summary["shipped"]["median_seconds"],
                TARGET_SECONDS,
                "lower",
                " s",
            )
        ],
    }
    lines = common.markdown_header(
        f"Defining mlkeel's pipelines ({', '.join(modules)}; one process, interleaved)",
        report["machine"],
        options.repeats,
    )
    lines += ["| configure | median s | every run s |", "|---|---:|---|"]
    lines += [
        f"| {name} | {item['median_seconds']:.3f} | {', '.join(f'{value:.3f}' for value in item['seconds'])} |"
        for name, item in summary.items()
    ]
    lines += ["", f"kfp's own `inspect.stack()` makes the definitions {ratio:.1f}x slower (medians of this run).", ""]
    lines += common.targets_markdown(report["targets"], {})
    common.write_results("pipeline_definition", report, "\n".join(lines), options.results)
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()
