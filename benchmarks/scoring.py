"""Scoring: batch_predict throughput vs the model's raw ``predict_proba`` on the same rows.

    python benchmarks/scoring.py [--rows 500000] [--repeats 3] [--quick]

The model is the one the local training pipeline trains on the bundled Telco data (its steps run once, in
one process: ``pipeline_runners.single_process_steps``); the rows are the Telco rows repeated to ``--rows``.
Each measurement is a child process per repeat, interleaved. Results: ``benchmarks/results/scoring.{md,json}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import common

TARGET_THROUGHPUT = 0.8


def prepare(rows: int) -> tuple[Path, Path]:
    """(model folder, Parquet of ``rows`` rows): trained once, reused while the files are there."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pipeline_runners import single_process_steps

    work = common.DATA / "scoring-work"
    model = work / "model"
    if not (model / "MLmodel").is_file():
        work.mkdir(parents=True, exist_ok=True)
        single_process_steps(work)
    path = common.DATA / f"scoring-{rows}.parquet"
    if not path.exists():
        valid = pq.read_table(work / "valid")
        repeats = -(-rows // valid.num_rows)
        pq.write_table(pa.concat_tables([valid] * repeats).slice(0, rows), path)
    return model, path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 1 repeat (CI: cannot rot)")
    parser.add_argument("--results", type=Path, default=common.RESULTS)
    options = parser.parse_args(argv)
    if options.quick:
        options.rows, options.repeats = 10_000, 1

    model, path = prepare(options.rows)
    python = common.this_python()
    runners = {
        mode: (
            lambda mode=mode: common.run_task(
                python, common.TASKS / "scoring.py", {"mode": mode, "model": str(model), "path": str(path)}
            )
        )
        for mode in ("raw", "raw_io", "mlkeel")
    }
    summary = common.summarise(common.interleave(runners, options.repeats))
    throughput = {name: options.rows / item["median_seconds"] for name, item in summary.items()}
    ratios = {
        "mlkeel_over_raw": throughput["mlkeel"] / throughput["raw"],
        "mlkeel_over_raw_io": throughput["mlkeel"] / throughput["raw_io"],
    }
    targets = [common.target("batch_predict / raw predict_proba throughput", ratios["mlkeel_over_raw"], 0.8, "higher")]
    machine = common.machine_info()
    report = {
        "benchmark": "scoring",
        "machine": machine,
        "rows": options.rows,
        "repeats": options.repeats,
        "quick": options.quick,
        "tools": summary,
        "rows_per_second": throughput,
        "ratios": ratios,
        "targets": targets,
    }
    lines = common.markdown_header(f"Scoring {options.rows:,} rows", machine, options.repeats, NOTE)
    lines += [
        "| run | median s | seconds of each repeat | rows/s | x raw | CPU s (last) | peak RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, item in summary.items():
        lines.append(
            f"| {name} | {item['median_seconds']:.3f} | {', '.join(f'{s:.2f}' for s in item['seconds'])} | "
            f"{throughput[name]:,.0f} | {throughput[name] / throughput['raw']:.2f} | "
            f"{item.get('cpu_seconds', float('nan')):.1f} | {item['median_peak_rss_mib']:.0f} |"
        )
    lines += ["", *common.targets_markdown(targets, EXPLANATIONS)]
    common.write_results("scoring", report, "\n".join(lines), options.results)
    return report


NOTE = (
    "`raw`: `model.predict_proba` alone, one call on all the rows already in a DataFrame (the model loaded and "
    "the file read outside the timing), with scikit-learn's default threading (OpenMP threads inside the call). "
    "`raw_io`: load the model, read the Parquet with pandas, `predict_proba`. `mlkeel`: the batch_predict stage "
    "function: resolve and load the model, read the Parquet, score chunks of 50,000 rows side by side (one "
    "thread per CPU, each call's OpenMP single-threaded), write the prediction log (request ids, scores, labels, "
    "model name/version/URI, time). Every run's frame holds the same dtypes (pandas object columns for text: "
    "`pd.read_parquet` and Arrow's `to_pandas` give the same). The model is the training pipeline's: a "
    "scikit-learn Pipeline (preprocessing + HistGradientBoosting, which opens one OpenMP parallel region per "
    "tree) on the Telco features. On a loaded machine the threaded runs vary most (each region waits for its "
    "slowest thread): read the seconds of each repeat and the CPU time beside the medians."
)
EXPLANATIONS = {
    "batch_predict / raw predict_proba throughput": (
        "batch_predict also loads the model, reads the file and writes the prediction log; against the same "
        "work done by hand (`raw_io`) the ratio is in the table above."
    ),
}


if __name__ == "__main__":
    main()
