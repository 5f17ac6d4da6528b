"""Synthetic benchmark data: 10 numeric columns, 5 categorical (20 levels), an id, about 0.1% nulls.

    python benchmarks/datagen.py --rows 1000000 --output /tmp/mlkeel-bench/rows-1m.parquet
    python benchmarks/datagen.py --rows 500000 --shift num_0,num_1 --seed 2 --output current.parquet

Deterministic: the same rows, seed and shift give the same file. Written in row groups of ``CHUNK_ROWS`` rows,
so 10M rows are generated in bounded memory. ``schema_for`` is the mlkeel schema every validation peer checks
(the equivalent pandera and Great Expectations checks are written from it): each numeric column non-null and
within [lo, hi], each categorical non-null and in its 20 levels, the id non-null and unique. With the nulls
(0.1% per column) and the tails beyond the bounds, about 1.6% of rows fail.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

CHUNK_ROWS = 1_000_000
NUMERIC = [f"num_{index}" for index in range(10)]
CATEGORICAL = [f"cat_{index}" for index in range(5)]
LEVELS = 20
NULL_SHARE = 0.001
KEY = "id"
# (distribution, lower bound, upper bound): bounds a little inside the tails, so a few values fall outside.
DISTRIBUTIONS: dict[str, tuple[str, float, float]] = {
    "num_0": ("normal", -4.5, 4.5),
    "num_1": ("normal", -4.5, 4.5),
    "num_2": ("lognormal", 0.0, 150.0),
    "num_3": ("uniform", 0.0, 1.0),
    "num_4": ("exponential", 0.0, 12.0),
    "num_5": ("normal", -4.5, 4.5),
    "num_6": ("gamma", 0.0, 25.0),
    "num_7": ("uniform", 0.0, 1.0),
    "num_8": ("poisson", 0.0, 20.0),
    "num_9": ("normal", -4.5, 4.5),
}


def levels(column: str) -> list[str]:
    """The 20 categories of ``column``."""
    return [f"{column}_level_{index:02d}" for index in range(LEVELS)]


def _numeric(rng: Any, kind: str, rows: int) -> Any:
    if kind == "normal":
        return rng.standard_normal(rows)
    if kind == "lognormal":
        return rng.lognormal(1.0, 0.8, rows)
    if kind == "uniform":
        return rng.random(rows)
    if kind == "exponential":
        return rng.exponential(1.0, rows)
    if kind == "gamma":
        return rng.gamma(2.0, 2.0, rows)
    return rng.poisson(4.0, rows).astype("int64")


def chunk(rows: int, first_id: int, seed: int, shift: dict[str, float]) -> Any:
    """One chunk of ``rows`` rows, ids from ``first_id``; ``shift`` adds that many standard deviations."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, first_id])
    columns: dict[str, Any] = {KEY: pa.array(np.arange(first_id, first_id + rows, dtype=np.int64))}
    for name in NUMERIC:
        values = _numeric(rng, DISTRIBUTIONS[name][0], rows)
        if name in shift:
            values = values + shift[name] * float(np.std(values))
        columns[name] = pa.array(values, mask=rng.random(rows) < NULL_SHARE)
    # A skewed (Zipf-like) share per level: some categories common, some rare, as in real data.
    weights = 1.0 / np.arange(1, LEVELS + 1)
    for name in CATEGORICAL:
        codes = rng.choice(LEVELS, size=rows, p=weights / weights.sum()).astype(np.int32)
        dictionary = pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=rng.random(rows) < NULL_SHARE), pa.array(levels(name))
        )
        columns[name] = dictionary.cast(pa.string())
    return pa.table(columns)


def generate(rows: int, output: Path, seed: int = 0, shift: dict[str, float] | None = None) -> Path:
    """Write ``rows`` rows to ``output`` (Parquet, zstd) unless a file made with the same arguments is there."""
    import pyarrow.parquet as pq

    shift = shift or {}
    stamp = output.with_name(output.name + ".args")
    arguments = f"rows={rows} seed={seed} shift={sorted(shift.items())} chunk={CHUNK_ROWS}\n"
    if output.exists() and stamp.exists() and stamp.read_text() == arguments:
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for first in range(0, rows, CHUNK_ROWS):
            table = chunk(min(CHUNK_ROWS, rows - first), first, seed, shift)
            if writer is None:
                writer = pq.ParquetWriter(output, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=256 * 1024)
    finally:
        if writer is not None:
            writer.close()
    stamp.write_text(arguments)
    return output


def schema_for() -> Any:
    """The mlkeel schema of the benchmark data (what every validation peer checks)."""
    from mlkeel.schema import ColumnSchema, DatasetSchema

    columns = [ColumnSchema(KEY, "integer", nullable=False)]
    for name in NUMERIC:
        kind = "integer" if DISTRIBUTIONS[name][0] == "poisson" else "float"
        low, high = DISTRIBUTIONS[name][1:]
        columns.append(
            ColumnSchema(
                name,
                kind,
                nullable=False,
                minimum=int(low) if kind == "integer" else low,
                maximum=int(high) if kind == "integer" else high,
            )
        )
    columns += [ColumnSchema(name, "string", nullable=False, categories=tuple(levels(name))) for name in CATEGORICAL]
    return DatasetSchema(columns=tuple(columns), key_columns=(KEY,), target_column=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", default="", help="numeric columns to shift by 0.1 standard deviation")
    options = parser.parse_args()
    shift = {name: 0.1 for name in options.shift.split(",") if name}
    print(generate(options.rows, options.output, options.seed, shift))


if __name__ == "__main__":
    main()
