"""The bundled flights as `mlkeel datasets flights` writes them: the binary target or the minutes late."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlkeel.data.flights import FLIGHTS_ARR_DELAY_PARQUET, FLIGHTS_PARQUET, write_months


def test_the_minutes_late_replace_late_and_agree_with_it_row_by_row(tmp_path: Path) -> None:
    rows = write_months([12], tmp_path / "december.parquet", target="arr_delay")
    written = pq.read_table(tmp_path / "december.parquet").to_pandas()
    source = pq.read_table(FLIGHTS_PARQUET).to_pandas()
    december = source[source["month"] == 12]
    assert rows == len(written) == len(december) == 27_020
    assert "late" not in written.columns and "month" not in written.columns  # late would leak the minutes
    assert written["flight_id"].tolist() == december["flight_id"].tolist()
    # late was made from these minutes (> 15): the two files describe the same flights.
    assert ((written["arr_delay"] > 15).astype(int).tolist()) == december["late"].tolist()
    assert written["arr_delay"].min() < 0 < written["arr_delay"].max()  # early and late arrivals


def test_the_minutes_late_file_holds_every_bundled_flight() -> None:
    assert pq.read_metadata(FLIGHTS_ARR_DELAY_PARQUET).num_rows == pq.read_metadata(FLIGHTS_PARQUET).num_rows


def test_an_unknown_target_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="target 'dep_delay': the bundled flights have late or arr_delay"):
        write_months([1], tmp_path / "x.parquet", target="dep_delay")
