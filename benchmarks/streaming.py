"""Out-of-core: mlkeel validate and drift on 10M-row Parquet files in bounded memory (record batches).

    python benchmarks/streaming.py [--rows 10000000] [--repeats 1] [--quick] [--stages validate,drift]

Generates ``--rows`` rows (``benchmarks/datagen.py``) as the dataset to validate and as the drift reference, and
another ``--rows`` with two shifted columns as the current batch; then runs the validate stage and the drift
stage on them, each in its own child process, and reads the child's peak RSS (``resource.getrusage``).
Files of more than 2M rows stream by default; ``--quick`` forces streaming on 50,000 rows. Results:
``benchmarks/results/streaming.{md,json}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import common
import datagen
from drift import SHIFTED

TARGET_RSS_MIB = 1024.0
STAGES = ("validate", "drift")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="50,000 rows, streaming forced (CI: cannot rot)")
    parser.add_argument("--results", type=Path, default=common.RESULTS)
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="comma-separated stages to measure (default: all); the peak-RSS target covers those measured",
    )
    options = parser.parse_args(argv)
    stages = [stage.strip() for stage in options.stages.split(",") if stage.strip()]
    if not stages or set(stages) - set(STAGES):
        parser.error(f"--stages: choose among {', '.join(STAGES)}")
    if options.quick:
        options.rows, options.repeats = 50_000, 1

    reference = datagen.generate(options.rows, common.DATA / f"stream-reference-{options.rows}.parquet", seed=1)
    current = datagen.generate(
        options.rows,
        common.DATA / f"stream-current-{options.rows}.parquet",
        seed=2,
        shift=dict.fromkeys(SHIFTED, 0.1),
    )
    schema_path = common.DATA / "validate-schema.json"
    datagen.schema_for().save(schema_path)
    python = common.this_python()
    runners = {
        "validate": lambda: common.run_task(
            python,
            common.TASKS / "mlkeel_validate.py",
            {"path": str(reference), "schema": str(schema_path), "mode": "streaming", "twice": False},
        ),
        "drift": lambda: common.run_task(
            python,
            common.TASKS / "mlkeel_drift.py",
            {
                "reference": str(reference),
                "current": str(current),
                "exclude": [datagen.KEY],
                "mode": "streaming",
                "twice": False,
            },
        ),
    }
    runs = common.interleave({stage: runners[stage] for stage in stages}, options.repeats)
    summary = common.summarise(runs)
    peak = max(item["median_peak_rss_mib"] for item in summary.values())
    targets = [
        common.target(
            f"{options.rows:,} rows: peak RSS of {' and '.join(stages)}", peak, TARGET_RSS_MIB, "lower", " MiB"
        )
    ]
    machine = common.machine_info()
    report = {
        "benchmark": "streaming",
        "machine": machine,
        "rows": options.rows,
        "repeats": options.repeats,
        "quick": options.quick,
        "stages": stages,
        "file_mib": {"reference": reference.stat().st_size / 2**20, "current": current.stat().st_size / 2**20},
        "tools": summary,
        "targets": targets,
    }
    lines = common.markdown_header(
        f"Streaming validate and drift, {options.rows:,} rows", machine, options.repeats, NOTE
    )
    lines += ["| stage | median s | rows/s | peak RSS MiB | result |", "|---|---:|---:|---:|---|"]
    for name, item in summary.items():
        outcome = (
            f"{item['rows_failed']:,} rows quarantined"
            if name == "validate"
            else f"flagged {', '.join(item['flagged']) or 'nothing'}"
        )
        lines.append(
            f"| {name} | {item['median_seconds']:.1f} | {options.rows / item['median_seconds']:,.0f} | "
            f"{item['median_peak_rss_mib']:.0f} | {outcome} |"
        )
    lines += ["", *common.targets_markdown(targets, EXPLANATIONS)]
    common.write_results("streaming", report, "\n".join(lines), options.results)
    return report


EXPLANATIONS = {
    f"{rows:,} rows: peak RSS of {stages}": (
        "the peak is the largest of the stages' child processes; see the table for each. On top of the "
        "imported libraries (~380 MB with alibi-detect and matplotlib), validate holds the whole key column "
        "and drift the two sorted float64 columns of one numeric feature, which grow with the rows."
    )
    for rows in (10_000_000,)
    for stages in ("validate and drift", "validate", "drift")
}

NOTE = (
    "validate: the stage function on the file, record batches of 262,144 rows, the valid and quarantine "
    "Parquet files written batch by batch; the duplicate-key check holds the id column of every row. drift: "
    "the stage function against a second file of as many rows (two numeric columns shifted by 0.1 standard "
    "deviation), compared one feature at a time, each read one record batch at a time: exact KS and chi-squared "
    "tests (no sketch, no sample); memory holds a numeric feature's two sorted float64 columns, or a "
    "categorical feature's counts per category. Peak RSS is the child process's, imports (pyarrow, alibi-detect, "
    "matplotlib) included."
)


if __name__ == "__main__":
    main()
