"""Calendar features of timestamp and date columns: a scikit-learn transformer that travels inside the model.

A module of its own because it imports scikit-learn at import time (a class needs its base classes): only a
model with a timestamp feature imports it, when it is built or loaded (skops loads it by name, trusted as
``mlkeel.components.train.calendar.CalendarFeatures``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.base import BaseEstimator, TransformerMixin

CALENDAR_PARTS = ("year", "month", "day", "weekday")


def as_timestamps(column: pd.Series) -> pd.Series:
    """The values as pandas timestamps; text is parsed and what does not parse becomes missing (NaT).

    Args:
        column: Timestamps, dates, or text (e.g. JSON sent to the serving endpoint).

    Returns:
        A datetime64 Series.
    """
    if ptypes.is_datetime64_any_dtype(column.dtype):
        return column
    return pd.to_datetime(column, errors="coerce", format="mixed", utc=True)


def in_zone(stamps: pd.Series, zone: str | None) -> pd.Series:
    """``stamps`` as wall-clock times of ``zone`` (None: naive; aware values are taken in UTC).

    Args:
        stamps: A datetime64 Series, naive or timezone-aware.
        zone: The timezone the column had at fit, or None for a naive column.

    Returns:
        The Series in ``zone`` (naive when ``zone`` is None).
    """
    aware = getattr(stamps.dt, "tz", None) is not None
    if zone is None:
        return stamps.dt.tz_convert("UTC").dt.tz_localize(None) if aware else stamps
    return stamps.dt.tz_convert(zone) if aware else stamps.dt.tz_localize(zone)


class CalendarFeatures(TransformerMixin, BaseEstimator):
    """Year, month, day, weekday (0 = Monday) and, when the column holds times of day, hour of each column.

    Timezone-aware timestamps give the calendar parts of their own timezone (the one seen at fit; text sent at
    serving time is parsed and converted to it). Missing or unparsable values give NaN (the model
    pipeline imputes them next).
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> CalendarFeatures:
        """Learn the columns and which of them hold times of day (those get an ``hour`` part).

        Args:
            X: The timestamp columns (a DataFrame).
            y: Ignored.

        Returns:
            self.
        """
        frame = pd.DataFrame(X)
        self.columns_ = [str(column) for column in frame.columns]
        self.parts_ = {}
        self.zones_ = {}
        for column in frame.columns:
            zone = getattr(frame[column].dtype, "tz", None)
            self.zones_[str(column)] = None if zone is None else str(zone)
            stamps = in_zone(as_timestamps(frame[column]), self.zones_[str(column)]).dropna()
            has_time = bool((stamps.dt.hour != 0).any() or (stamps.dt.minute != 0).any())
            self.parts_[str(column)] = [*CALENDAR_PARTS, "hour"] if has_time else list(CALENDAR_PARTS)
        self.n_features_in_ = len(self.columns_)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Calendar parts as floats, one row per input row.

        Args:
            X: The columns seen by ``fit``, in the same order.

        Returns:
            A float array with ``len(get_feature_names_out())`` columns.
        """
        frame = pd.DataFrame(X)
        parts = []
        for position, column in enumerate(self.columns_):
            values = frame[column] if column in frame.columns else frame.iloc[:, position]
            stamps = in_zone(as_timestamps(values), self.zones_[column])
            for part in self.parts_[column]:
                accessor = "dayofweek" if part == "weekday" else part
                parts.append(getattr(stamps.dt, accessor).to_numpy(dtype=float, na_value=np.nan))
        return np.column_stack(parts) if parts else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<column>_<part>`` for each column and part.

        Args:
            input_features: Ignored (the names come from ``fit``).

        Returns:
            The output column names.
        """
        return np.asarray(
            [f"{column}_{part}" for column in self.columns_ for part in self.parts_[column]], dtype=object
        )
