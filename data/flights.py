"""The nycflights13 ``flights`` table bundled with mlkeel: real data whose distributions move month by month.

327,346 flights that left New York City (JFK, LGA, EWR) in 2013, with what is known when a flight is
scheduled and the label ``late`` (arrived more than 15 minutes late: 1, else 0). See nycflights13/README.md for
provenance (CC0), the columns and how the file was made (``scripts/prepare_nycflights13.py``).
"""

from pathlib import Path

FLIGHTS_PARQUET = Path(__file__).parent / "nycflights13" / "flights.parquet"
FLIGHTS_TARGET = "late"
# The target is an integer 0/1; labels are compared as text across mlkeel, so the positive label is "1".
FLIGHTS_POSITIVE_LABEL = "1"
FLIGHTS_KEY = "flight_id"
# The column that places a row in time (1-12): the natural way to cut reference and later batches.
FLIGHTS_PERIOD = "month"


def write_months(months: list[int], destination: str | Path, keep_period: bool = False) -> int:
    """Write the flights of some months to a Parquet file: a reference window or a later batch.

    Args:
        months: Months 1-12 to keep.
        destination: Parquet file to write.
        keep_period: Keep the ``month`` column (by default dropped: it says which window a row came from, which a
            model should not learn and a drift test would flag trivially).

    Returns:
        Rows written.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(FLIGHTS_PARQUET)
    table = table.filter(pc.is_in(table[FLIGHTS_PERIOD], value_set=pa.array(months, pa.int64())))
    if not keep_period:
        table = table.drop_columns([FLIGHTS_PERIOD])
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, destination, compression="zstd")
    return table.num_rows
