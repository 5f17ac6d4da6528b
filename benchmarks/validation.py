"""Validation: mlkeel vs pandera vs Great Expectations 1.x vs the pyarrow floor, same checks, same data.

    python benchmarks/validation.py [--rows 1000000] [--repeats 3] [--quick]

Data: ``benchmarks/datagen.py`` (10 numeric, 5 categorical, an id, 0.1% nulls), checked against its schema
(non-null, numeric ranges, category sets, a unique key). Every tool runs in a child process per repeat,
interleaved; pandera and GX in their own venvs (``benchmarks/peers.py install``), skipped with the reason
when absent. Times are the work alone (file read included, imports excluded). Results go to
``benchmarks/results/validation.{md,json}`` (``--quick``: small sizes, 1 repeat, into ``--results``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import common
import datagen
import peers

TARGET_FLOOR, TARGET_PANDERA, TARGET_GX = 1.2, 1.5, 10.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 1 repeat (CI: cannot rot)")
    parser.add_argument("--results", type=Path, default=common.RESULTS)
    options = parser.parse_args(argv)
    if options.quick:
        options.rows, options.repeats = 20_000, 1

    path = datagen.generate(options.rows, common.DATA / f"validate-{options.rows}.parquet")
    schema_path = common.DATA / "validate-schema.json"
    datagen.schema_for().save(schema_path)
    arguments = {"path": str(path), "schema": str(schema_path)}
    python = common.this_python()

    def ours(mode: str) -> Any:
        return lambda: common.run_task(python, common.TASKS / "mlkeel_validate.py", {**arguments, "mode": mode})

    runners: dict[str, Any] = {
        "pyarrow_floor": lambda: common.run_task(python, common.TASKS / "floor_validate.py", arguments),
        "mlkeel": ours("table"),
        "mlkeel_stage": ours("stage"),
        "mlkeel_streaming": ours("streaming"),
    }
    skipped: dict[str, str] = {}
    for peer, script in (("pandera", "pandera_validate.py"), ("great_expectations", "ge_validate.py")):
        reason = peers.missing_reason(peer)
        if reason:
            skipped[peer] = reason
            continue
        runners[peer] = lambda peer=peer, script=script: common.run_task(
            peers.python_of(peer), common.TASKS / script, arguments
        )
    runs = common.interleave(runners, options.repeats)
    summary = common.summarise(runs)
    median = {name: item["median_seconds"] for name, item in summary.items()}
    ratios = {f"{name}_over_floor": value / median["pyarrow_floor"] for name, value in median.items()}
    for peer in ("pandera", "great_expectations"):
        if peer in median:
            ratios[f"{peer}_over_mlkeel"] = median[peer] / median["mlkeel"]
    targets = [common.target("1M rows: mlkeel / pyarrow floor", ratios["mlkeel_over_floor"], TARGET_FLOOR, "lower")]
    if "pandera" in median:
        targets.append(common.target("pandera / mlkeel", ratios["pandera_over_mlkeel"], TARGET_PANDERA, "higher"))
    if "great_expectations" in median:
        targets.append(
            common.target("great_expectations / mlkeel", ratios["great_expectations_over_mlkeel"], TARGET_GX, "higher")
        )
    machine = common.machine_info()
    report = {
        "benchmark": "validation",
        "machine": machine,
        "rows": options.rows,
        "repeats": options.repeats,
        "quick": options.quick,
        "data": str(path),
        "tools": summary,
        "ratios": ratios,
        "targets": targets,
        "skipped": skipped,
        "peer_versions": {peer: peers.versions(peer) for peer in ("pandera", "great_expectations")},
    }
    lines = common.markdown_header(f"Validation of {options.rows:,} rows", machine, options.repeats, NOTE)
    lines += [
        "| tool | median s | x floor | peak RSS MiB | rows flagged |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, item in summary.items():
        flagged = item.get("rows_failed", item.get("unexpected_values", ""))
        lines.append(
            f"| {name} | {item['median_seconds']:.3f} | {ratios[f'{name}_over_floor']:.2f} | "
            f"{item['median_peak_rss_mib']:.0f} | {flagged} |"
        )
    lines += [""] + [f"- {peer} skipped: {reason}" for peer, reason in skipped.items()] + [""]
    lines += common.targets_markdown(targets, EXPLANATIONS)
    common.write_results("validation", report, "\n".join(lines), options.results)
    return report


NOTE = (
    "`mlkeel`: read the file + `validate_table` (every check; valid and quarantined rows, with reasons, built "
    "in memory). mlkeel reads the schema's 5 categorical columns dictionary-encoded (`read_dataset`: each "
    "distinct value decoded once per row group, checked once; the valid rows decoded back to plain strings); the "
    "floor reads every column plain, as a bare `pq.read_table` does. `mlkeel_stage`: the validate stage function, which also writes the valid and quarantine "
    "Parquet files, the schema and the report. `mlkeel_streaming`: the same stage reading record batches. "
    "`pyarrow_floor`: read + null count, min, max, mean per column (no category, key or row-level work). "
    "pandera: lazy validation (every failure case), no dtype check. Great Expectations: SUMMARY results. "
    "Rows flagged: rows quarantined (mlkeel), distinct failing rows (pandera), unexpected values summed over "
    "expectations (GX: a row failing two checks counts twice)."
)
EXPLANATIONS = {
    "1M rows: mlkeel / pyarrow floor": (
        "the floor reads the file and reduces each column to 4 numbers. mlkeel reads the same file, then builds "
        "what the stage is for: a boolean mask per check (null, range, category, unique key), the valid table "
        "(a filtered copy of every column, categorical columns decoded back to strings: the largest cost after "
        "the read) and a reason string for each of the ~15,000 quarantined rows."
    ),
    "great_expectations / mlkeel": (
        "GX's time is mostly pandas work per expectation (31 expectations over 16 columns, SUMMARY results); "
        "mlkeel's is dominated by the same Parquet read as the floor plus building the valid table, which GX "
        "does not do. On this loaded machine both vary by 2x from one repeat to the next (see the per-repeat "
        "seconds in the JSON)."
    ),
}


if __name__ == "__main__":
    main()
