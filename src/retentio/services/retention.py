"""Retention use cases: metrics per period, acquisition cohorts, RFM segments, lifecycle
states and the repeat-purchase and subscription funnels. Typed parameters in, typed
results out: each result holds its frames and the facts they were computed with, so a
face reads fields instead of ``DataFrame.attrs``.

The definitions and their sources are in :mod:`retentio.analytics.metrics`,
:mod:`retentio.analytics.cohorts` and :mod:`retentio.analytics.segments`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from retentio.data.errors import InvalidParameter, NotLoaded, RetentioError

if TYPE_CHECKING:
    import pandas as pd

    from retentio.data.workspace import Workspace

Period = Literal["day", "week", "month", "quarter", "year"]


def _facts(frame: pd.DataFrame) -> dict:
    """Take the facts an analysis attached to its frame off it (they travel as fields)."""
    facts = dict(frame.attrs)
    frame.attrs.clear()
    return facts


# ------------------------------------------------------------------------------ metrics
@dataclass(frozen=True)
class MetricsParams:
    """Periods of ``period`` from ``start`` to ``end`` (default: the whole data), the
    activity window in days (default: the workspace's) and an optional breakdown by a
    customer column."""

    period: Period = "month"
    start: dt.date | None = None
    end: dt.date | None = None
    window: int | None = None
    by: str | None = None


@dataclass(frozen=True)
class RetentionMetrics:
    """One row per period (and group): customers at start/end, new, retained, lost,
    reactivated, CRR, churn, revenue, AOV, repeat-purchase rate, MRR movements, GRR/NRR,
    NPS/CSAT/CES — whichever the loaded tables support. ``definition`` states what
    "active" meant."""

    frame: pd.DataFrame
    period: str
    activity_window_days: int
    definition: str
    engine: str
    by: str | None

    @property
    def complete(self) -> pd.DataFrame:
        """Only the periods that ended before the data did."""
        return self.frame[self.frame.complete]


def retention_metrics(ws: Workspace, params: MetricsParams = MetricsParams()) -> RetentionMetrics:
    """Retention metrics per period (:func:`retentio.analytics.metrics.period_metrics`)."""
    from retentio.analytics.metrics import period_metrics

    frame = period_metrics(ws, params.period, params.start, params.end, params.window, params.by)
    facts = _facts(frame)
    return RetentionMetrics(frame, facts["period"], facts["activity_window_days"], facts["definition"],
                            facts["engine"], params.by)


# ------------------------------------------------------------------------------ cohorts
@dataclass(frozen=True)
class CohortParams:
    """Cohorts of ``period`` by first activity; ``bounded`` retention (active in that
    period) or ``unbounded`` (that period or later); activity from orders or paid
    subscriptions; optionally per customer column."""

    period: Literal["week", "month", "quarter"] = "month"
    mode: Literal["bounded", "unbounded"] = "bounded"
    source: Literal["orders", "subscriptions"] = "orders"
    by: str | None = None


@dataclass(frozen=True)
class Cohorts:
    """Per cohort and offset: cohort size, active customers, retention %, revenue and
    cumulative revenue per customer, and whether the period is complete; plus the
    size-weighted average retention curve over the complete cells."""

    frame: pd.DataFrame
    average_curve: pd.DataFrame
    period: str
    mode: str
    source: str


def cohort_retention(ws: Workspace, params: CohortParams = CohortParams()) -> Cohorts:
    """Acquisition-cohort retention (:func:`retentio.analytics.cohorts.cohort_table`)."""
    from retentio.analytics.cohorts import average_curve, cohort_table

    frame = cohort_table(ws, params.period, params.mode, params.by, params.source)
    _facts(frame)
    return Cohorts(frame, average_curve(frame), params.period, params.mode, params.source)


# ------------------------------------------------------------------------------ segments
@dataclass(frozen=True)
class Segments:
    """RFM per customer (scores, segment, key customer, sleeping) and the summary per
    segment (customers, revenue, shares, the action each calls for)."""

    customers: pd.DataFrame
    summary: pd.DataFrame
    as_of: str
    activity_window_days: int
    #: "quintiles", or "fixed thresholds" when there are too few customers for quintiles
    scoring: str = "quintiles"
    #: what the fixed thresholds are and why they were used (None for quintiles)
    note: str | None = None

    @property
    def key_customers(self) -> int:
        """Customers in the top decile by value among those who bought at least twice."""
        return int(self.customers.key_customer.sum())

    @property
    def sleeping(self) -> int:
        """Customers with no completed order for longer than the activity window."""
        return int(self.customers.sleeping.sum())

    def revenue_share_pct(self, *segments: str) -> float:
        """The share of revenue (in %) the named segments bring."""
        return float(self.summary[self.summary.segment.isin(segments)].revenue_share_pct.sum())


def customer_segments(ws: Workspace, as_of: dt.date | None = None, window: int | None = None) -> Segments:
    """RFM segments as of a day (default: the end of the data). Fewer customers than
    quintiles need are scored on fixed thresholds, which ``scoring`` and ``note`` state;
    nothing to score is an error (:func:`_require_customers_before`), not an empty table."""
    from retentio.analytics.segments import rfm, segment_summary

    _require_customers_before(ws, as_of)
    frame = rfm(ws, as_of, window)
    facts = _facts(frame)
    return Segments(frame, segment_summary(frame), facts["as_of"], facts["activity_window_days"],
                    facts["scoring"], facts["note"])


def _require_customers_before(ws: Workspace, as_of: dt.date | None) -> None:
    """Refuse to segment nobody: no orders loaded, none completed, or an as-of day on or
    before the first completed order (scores count the orders before the as-of day), the
    last naming the first order day so the user can pick one after it."""
    import pandas as pd

    from retentio.analytics.segments import default_as_of, first_order_day

    default_as_of(ws)  # NotLoaded without orders
    first = first_order_day(ws)
    if first is None:
        raise RetentioError("none of the orders loaded is completed: RFM segmentation scores completed orders")
    if as_of is not None and pd.Timestamp(as_of) <= first:
        raise InvalidParameter("as_of", as_of.isoformat(),
                               f"a day after the first completed order, {first.date().isoformat()}: the data start "
                               "then, and scores count the orders before the as-of day")


# ------------------------------------------------------------------------------ lifecycle
@dataclass(frozen=True)
class Lifecycle:
    """Per period (and group): new, retained, reactivated, dormant, active at the end
    and the quick ratio (new + reactivated) / dormant."""

    frame: pd.DataFrame
    period: str


def customer_lifecycle(ws: Workspace, period: Period = "month", by: str | None = None, *,
                       complete_only: bool = False) -> Lifecycle:
    """Lifecycle states per period, from the same counts as :func:`retention_metrics`."""
    from retentio.analytics.segments import lifecycle

    m = retention_metrics(ws, MetricsParams(period=period, by=by))
    return Lifecycle(lifecycle(m.complete if complete_only else m.frame), period)


# ------------------------------------------------------------------------------ funnels
@dataclass(frozen=True)
class Drop:
    """The funnel step before which most customers are lost."""

    step: str
    previous_step: str
    lost: int
    lost_pct: float


@dataclass(frozen=True)
class Funnels:
    """The repeat-purchase funnel (customers reaching their 1st, 2nd, … order), the
    subscription funnel when subscriptions are loaded, and the largest drop (None when
    nobody is lost between steps). ``note`` says why the repeat-purchase funnel is empty
    when it is (subscriptions only, or no completed order)."""

    orders: pd.DataFrame
    subscriptions: pd.DataFrame | None
    largest_drop: Drop | None
    note: str | None = None


def _no_completed_orders(ws: Workspace) -> str:
    """Why the repeat-purchase funnel is empty: no orders, or none of them completed."""
    if not ws.is_loaded("orders"):
        return "no orders loaded: no repeat-purchase funnel"
    o = ws.table("orders")
    statuses = o.group_by(status=o.status.fill_null("completed")).agg(n=o.count()).order_by("status").to_pandas()
    listed = ", ".join(f"{r.status} {int(r.n):,}" for r in statuses.itertuples())
    return (f"none of the {int(statuses.n.sum()):,} orders loaded is completed ({listed}): the repeat-purchase "
            "funnel counts completed orders")


def funnels(ws: Workspace, max_orders: int = 6) -> Funnels:
    """Where customers drop out (:func:`retentio.analytics.segments.repeat_funnel`).
    Nothing to analyse — no completed order and no subscriptions — raises
    :class:`~retentio.data.errors.NotLoaded` or :class:`RetentioError` saying what is
    missing, rather than returning empty tables."""
    from retentio.analytics.segments import largest_drop, repeat_funnel, subscription_funnel

    if max_orders < 1:
        raise InvalidParameter("max_orders", max_orders, "at least 1 (the first order)")
    orders = repeat_funnel(ws, max_orders)
    subs = subscription_funnel(ws) if ws.is_loaded("subscriptions") else None
    note = _no_completed_orders(ws) if orders.empty else None
    if note is not None and subs is None:
        if not ws.is_loaded("orders"):
            raise NotLoaded("orders or subscriptions", "the funnel")
        raise RetentioError(f"{note}; load completed orders, or subscriptions for the subscription funnel")
    worst = largest_drop(orders)
    drop = None
    if worst is not None:
        i = int(orders.index[orders.step == worst.step][0])
        before = orders.iloc[i - 1]
        drop = Drop(str(worst.step), str(before.step), int(worst.lost),
                    100.0 * int(worst.lost) / max(int(before.customers), 1))
    return Funnels(orders, subs, drop, note)


__all__ = ["CohortParams", "Cohorts", "Drop", "Funnels", "Lifecycle", "MetricsParams", "RetentionMetrics",
           "Segments", "cohort_retention", "customer_lifecycle", "customer_segments", "funnels",
           "retention_metrics"]
