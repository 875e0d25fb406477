"""The public ``Workspace``: the data layer's store plus the analyses as methods.

It lives above the layers (the data layer's :class:`retentio.data.workspace.Workspace`
never imports analytics), so ``retentio.Workspace`` can offer ``ws.metrics()`` and
friends without a layer reaching upward.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from retentio.analytics import cohorts as _cohorts
from retentio.analytics import metrics as _metrics
from retentio.analytics import segments as _segments
from retentio.data.workspace import Workspace as _Store


class Workspace(_Store):
    """A Retentio workspace: load data, then ask it questions."""

    def metrics(self, period: str = "month", start: dt.date | None = None, end: dt.date | None = None,
                window: int | None = None, by: str | None = None) -> pd.DataFrame:
        """Retention metrics per period (and group); see :mod:`retentio.analytics.metrics`."""
        return _metrics.period_metrics(self, period, start, end, window, by)

    def cohorts(self, period: str = "month", mode: str = "bounded", by: str | None = None,
                source: str = "orders") -> pd.DataFrame:
        """Acquisition-cohort retention; see :mod:`retentio.analytics.cohorts`."""
        return _cohorts.cohort_table(self, period, mode, by, source)

    def segments(self, as_of: dt.date | None = None, window: int | None = None) -> pd.DataFrame:
        """RFM scores and segments per customer; see :mod:`retentio.analytics.segments`."""
        return _segments.rfm(self, as_of, window)

    def lifecycle(self, period: str = "month", by: str | None = None) -> pd.DataFrame:
        """New / retained / reactivated / dormant per period and the quick ratio."""
        return _segments.lifecycle(self.metrics(period=period, by=by))

    def funnel(self, max_orders: int = 6) -> pd.DataFrame:
        """The repeat-purchase funnel: customers reaching their 1st, 2nd, … order."""
        return _segments.repeat_funnel(self, max_orders)
