"""Calendar periods: half-open [start, end) intervals in workspace wall-clock time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import pandas as pd

from retentio.data.errors import RetentioError

#: period name -> (pandas frequency of period starts, Ibis truncation unit)
UNITS = {
    "day": ("D", "D"),
    "week": ("W-MON", "W"),  # ISO weeks start on Monday on every engine
    "month": ("MS", "M"),
    "quarter": ("QS", "Q"),
    "year": ("YS", "Y"),
}


def check_period(period: str, allowed: tuple[str, ...] = tuple(UNITS)) -> str:
    if period not in allowed:
        raise RetentioError(f"unknown period {period!r}; use one of {', '.join(allowed)}")
    return period


def truncate(value: pd.Timestamp | dt.datetime | dt.date, period: str) -> pd.Timestamp:
    """The start of the period containing ``value``."""
    ts = pd.Timestamp(value).normalize()
    if period == "week":
        return ts - pd.Timedelta(days=ts.weekday())
    if period == "month":
        return ts.replace(day=1)
    if period == "quarter":
        return ts.replace(month=3 * ((ts.month - 1) // 3) + 1, day=1)
    if period == "year":
        return ts.replace(month=1, day=1)
    return ts


_MONDAY_EPOCH = 4 * 86400  # 1970-01-05, the first Monday after the epoch


def period_number(ts, period: str):
    """A running integer per period (an Ibis expression), so that offsets and indexes are
    differences of integers: months since year 0, ISO weeks since 1970-01-05, ..."""
    if period == "month":
        return (ts.year() * 12 + ts.month() - 1).cast("int64")
    if period == "quarter":
        return (ts.year() * 4 + ts.quarter() - 1).cast("int64")
    if period == "year":
        return ts.year().cast("int64")
    seconds = 604800 if period == "week" else 86400
    offset = _MONDAY_EPOCH if period == "week" else 0
    return ((ts.epoch_seconds() - offset).cast("float64") / seconds).floor().cast("int64")


def period_number_of(value, period: str) -> int:
    """The same running number for a Python timestamp."""
    ts = pd.Timestamp(value)
    if period == "month":
        return ts.year * 12 + ts.month - 1
    if period == "quarter":
        return ts.year * 4 + (ts.month - 1) // 3
    if period == "year":
        return ts.year
    seconds = 604800 if period == "week" else 86400
    offset = _MONDAY_EPOCH if period == "week" else 0
    return int((ts - pd.Timestamp("1970-01-01")).total_seconds() - offset) // seconds


@dataclass(frozen=True)
class Periods:
    """K consecutive periods; ``bounds`` holds their K+1 boundaries."""

    period: str
    bounds: list[pd.Timestamp]
    #: end of the data (exclusive): periods ending after it are incomplete
    data_end: pd.Timestamp

    @classmethod
    def covering(cls, period: str, first: dt.datetime, last: dt.datetime,
                 data_end: dt.datetime | None = None) -> Periods:
        """The periods from the one containing ``first`` to the one containing ``last``."""
        check_period(period)
        start = truncate(first, period)
        stop = truncate(last, period)
        freq = UNITS[period][0]
        bounds = list(pd.date_range(start, stop, freq=freq))
        bounds.append(bounds[-1] + pd.tseries.frequencies.to_offset(freq))
        end = pd.Timestamp(data_end) if data_end is not None else pd.Timestamp(last).normalize() + pd.Timedelta(days=1)
        return cls(period, [pd.Timestamp(b) for b in bounds], end)

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @property
    def starts(self) -> list[pd.Timestamp]:
        return self.bounds[:-1]

    @property
    def ends(self) -> list[pd.Timestamp]:
        return self.bounds[1:]

    def complete(self) -> list[bool]:
        return [e <= self.data_end for e in self.ends]

    def boundary_table(self) -> ibis.Table:
        """(k, b): boundary k is the start of period k and the end of period k − 1."""
        return ibis.memtable({"k": list(range(len(self.bounds))),
                              "b": [b.to_pydatetime() for b in self.bounds]})

    def period_table(self) -> ibis.Table:
        """(k, period_start, period_end)."""
        return ibis.memtable({"k": list(range(len(self))),
                              "period_start": [b.to_pydatetime() for b in self.starts],
                              "period_end": [b.to_pydatetime() for b in self.ends]})
