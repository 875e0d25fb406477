"""RFM segmentation, key customers, lifecycle states and the repeat-purchase funnel.

**RFM** (Hughes 1994, *Strategic Database Marketing*): per customer, as of a date,
recency (days since the last completed order), frequency (completed orders) and
monetary value (their total). Each is scored 1–5 by quintile of its rank — score =
1 + ⌊5 · rank / n⌋ with rank the 0-based *minimum* rank, so equal values share a score
and the result is the same on every engine; recency is ranked longest-ago first, so 5
is the most recent.

**Segments** follow the widely used R × F grid (as in Putler's and Klaviyo's RFM
segment maps), with "lost" split off the hibernating corner:

======================  =========================
segment                 r_score, f_score
======================  =========================
champions               r 5, f 4–5
loyal                   r 3–4, f 4–5
potential loyalist      r 4–5, f 2–3
new                     r 5, f 1
promising               r 4, f 1
need attention          r 3, f 3
about to sleep          r 3, f 1–2
at risk                 r 1–2, f 3–4
can't lose them         r 1–2, f 5
hibernating             r 1–2, f 1–2 (not lost)
lost                    r 1, f 1
======================  =========================

**Thin data.** Quintiles need customers to split: with fewer than
:data:`MIN_CUSTOMERS_FOR_QUINTILES` (25, five per score level) one customer more or less
moves every boundary, and a single customer — rank 0 of 1 — scores 1 on everything, so
one who bought yesterday would be "lost". Below that many customers the scores use fixed
thresholds instead (:func:`fixed_thresholds` states them), and the result says so:

* recency against the activity window W (90 days unless set): 5 within W/6 days (15),
  4 within W/3 (30), 3 within 2W/3 (60), 2 within W (90), else 1 — so r ≥ 2 exactly
  when the customer is not sleeping;
* frequency: the number of completed orders, 5 or more scoring 5;
* monetary: the total spend counted in typical orders (÷ the average completed order
  value before the as-of day, the AOV), rounded, from 1 to 5 (the order count when the
  AOV is 0, as when orders are free). The AOV rather than the median order: it comes
  from sums the query has anyway, so the large bases that use quintiles pay nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import pandas as pd

from retentio.analytics.base import completed_orders, last_time, lit_ts, span, to_float
from retentio.data.errors import NotLoaded

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from retentio.data.workspace import Workspace

#: what to do with each segment (the report and the playbooks use these)
SEGMENT_ACTIONS = {
    "champions": "reward them: early access, referral asks, no discounts needed",
    "loyal": "upsell and invite to the loyalty tier above",
    "potential loyalist": "offer membership or a loyalty program, recommend products",
    "new": "onboard: welcome series, second-purchase incentive",
    "promising": "build the relationship: content and a small first-repeat offer",
    "need attention": "limited-time personal offer based on past purchases",
    "about to sleep": "reactivate with recommendations and a modest discount",
    "at risk": "personal win-back email with a strong offer; ask why",
    "can't lose them": "win back at any reasonable cost: call, best offer, survey",
    "hibernating": "low-cost reminders of the range; don't overspend",
    "lost": "one last reactivation attempt, then stop spending on them",
}
SEGMENTS = tuple(SEGMENT_ACTIONS)

#: below this many customers RFM scores use fixed thresholds, not quintiles (five per level)
MIN_CUSTOMERS_FOR_QUINTILES = 5 * 5
#: the fixed recency thresholds as fractions of the activity window: scores 5, 4, 3, 2
RECENCY_FRACTIONS = (1 / 6, 1 / 3, 2 / 3, 1.0)


def _score(value: ir.Value, n: ir.Value) -> ir.Value:
    r = ibis.rank().over(order_by=value)
    return (1 + (5 * r / n).floor()).cast("int64")


def _recency_bounds(window_days: int) -> list[float]:
    """The fixed recency thresholds in days (scores 5, 4, 3, 2; beyond the last: 1)."""
    return [window_days * f for f in RECENCY_FRACTIONS]


def _fixed_recency(recency_days: ir.Value, window_days: int) -> ir.Value:
    b = _recency_bounds(window_days)
    return ibis.cases((recency_days <= b[0], 5), (recency_days <= b[1], 4), (recency_days <= b[2], 3),
                      (recency_days <= b[3], 2), else_=1).cast("int64")


def _up_to_five(value: ir.Value) -> ir.Value:
    """A count as a 1–5 score: rounded half up, at least 1, 5 and more scoring 5."""
    return ibis.greatest(ibis.least((value + 0.5).floor(), 5), 1).cast("int64")


def _average_order(per: ir.Table) -> ir.Value:
    """The average order value (AOV) of the customers ``per`` (monetary, frequency), as a float."""
    return per.monetary.sum() / per.frequency.sum().cast("float64")


def fixed_thresholds(window_days: int, average_order: float | None) -> str:
    """The fixed thresholds of thin-data RFM scoring, in words (see the module docstring)."""
    b = ", ".join(f"{s} within {d:g} days" for s, d in zip((5, 4, 3, 2), _recency_bounds(window_days)))
    monetary = (f"total spend in typical orders (the average order value, {average_order:,.2f}), rounded"
                if average_order else "the number of orders (the average order value is 0)")
    return (f"recency {b}, else 1; frequency = completed orders (5 or more: 5); monetary = {monetary}, "
            "1 to 5")


def _segment(r: ir.Value, f: ir.Value) -> ir.Value:
    return ibis.cases(
        ((r == 5) & (f >= 4), "champions"),
        (r.between(3, 4) & (f >= 4), "loyal"),
        ((r >= 4) & f.between(2, 3), "potential loyalist"),
        ((r == 5) & (f == 1), "new"),
        ((r == 4) & (f == 1), "promising"),
        ((r == 3) & (f == 3), "need attention"),
        ((r == 3) & (f <= 2), "about to sleep"),
        ((r <= 2) & f.between(3, 4), "at risk"),
        ((r <= 2) & (f == 5), "can't lose them"),
        ((r == 1) & (f == 1), "lost"),
        else_="hibernating",
    )


def default_as_of(ws: Workspace) -> pd.Timestamp:
    """The end of the data: the day after the last order."""
    sp = span(ws, ("orders",))
    if sp is None:
        raise NotLoaded("orders are", "RFM segmentation")
    return sp[1].normalize() + pd.Timedelta(days=1)


def rfm_expr(ws: Workspace, as_of: pd.Timestamp, window_days: int) -> ir.Table:
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < lit_ts(as_of))
    per = o.group_by("customer_id").agg(
        last_at=o.ordered_at.max(), frequency=o.count(), monetary=to_float(o.amount.sum()))
    # float before dividing: Spark reads the literal 86400.0 as a DECIMAL and truncates the quotient
    per = per.mutate(recency_days=(lit_ts(as_of).epoch_seconds() - per.last_at.epoch_seconds()).cast("float64") / 86400)
    n = per.count().as_scalar()
    aov = _average_order(per).as_scalar()
    # too few customers for quintiles: fixed thresholds (module docstring), in the same query
    quintiles = n >= MIN_CUSTOMERS_FOR_QUINTILES
    typical = ibis.ifelse(aov > 0, per.monetary / aov, per.frequency.cast("float64"))
    per = per.mutate(
        # ranked on the exact last-order time: longest ago first, so 5 is the most recent
        r_score=ibis.ifelse(quintiles, _score(per.last_at, n), _fixed_recency(per.recency_days, window_days)),
        f_score=ibis.ifelse(quintiles, _score(per.frequency, n), _up_to_five(per.frequency.cast("float64"))),
        m_score=ibis.ifelse(quintiles, _score(per.monetary, n), _up_to_five(typical)),
    )
    # key customers: the top decile by value among customers who bought at least twice
    repeat = per.frequency >= 2
    n_repeat = repeat.sum().as_scalar()
    value_rank = ibis.rank().over(group_by=repeat, order_by=ibis.desc(per.monetary))
    per = per.mutate(
        segment=_segment(per.r_score, per.f_score),
        key_customer=repeat & (value_rank < (n_repeat * 0.1).ceil()),
        sleeping=per.recency_days > window_days,
    )
    return per.select("customer_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
                      "segment", "key_customer", "sleeping", "last_at")


def rfm(ws: Workspace, as_of: dt.date | None = None, window: int | None = None) -> pd.DataFrame:
    """Per customer with a completed order before ``as_of``: recency_days, frequency,
    monetary, r/f/m scores, segment, key_customer, sleeping (no order for longer than
    the activity window). ``attrs`` hold the as-of day, the window, ``scoring``
    ("quintiles" or "fixed thresholds") and, for fixed thresholds, a ``note`` stating them."""
    as_of = pd.Timestamp(as_of) if as_of else default_as_of(ws)
    window = window or ws.settings.activity_window_days
    df = rfm_expr(ws, as_of, window).drop("last_at").order_by("customer_id").to_pandas()
    df["recency_days"] = df.recency_days.astype("float64")
    df.attrs.update({"as_of": as_of.date().isoformat(), "activity_window_days": window,
                     "scoring": "quintiles", "note": None})
    if 0 < len(df) < MIN_CUSTOMERS_FOR_QUINTILES:
        df.attrs.update({"scoring": "fixed thresholds", "note": thin_note(ws, as_of, window, len(df))})
    return df


def thin_note(ws: Workspace, as_of: pd.Timestamp, window: int, customers: int) -> str:
    """Why and how ``customers`` (fewer than quintiles need) were scored on fixed thresholds."""
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < lit_ts(as_of))
    aov = o.aggregate(a=to_float(o.amount.sum()) / o.count().cast("float64")).to_pandas().a.iloc[0]
    return (f"only {customers} customer{'' if customers == 1 else 's'}: quintile scores need at least "
            f"{MIN_CUSTOMERS_FOR_QUINTILES} (five per score level), so the scores use fixed thresholds: "
            + fixed_thresholds(window, None if pd.isna(aov) else float(aov)))


def first_order_day(ws: Workspace) -> pd.Timestamp | None:
    """The day of the first completed order (None when there is none)."""
    o = completed_orders(ws)
    first = o.aggregate(t=o.ordered_at.min()).to_pandas().t.iloc[0]
    return None if pd.isna(first) else pd.Timestamp(first).normalize()


def segment_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Counts, revenue and shares per segment, with what to do about each."""
    g = table.groupby("segment").agg(customers=("customer_id", "size"), revenue=("monetary", "sum"),
                                     recency_days=("recency_days", "mean"), frequency=("frequency", "mean"))
    g = g.reindex(SEGMENTS).fillna({"customers": 0, "revenue": 0.0})
    g["customers"] = g.customers.astype("int64")
    g["share_pct"] = 100.0 * g.customers / max(int(g.customers.sum()), 1)
    g["revenue_share_pct"] = 100.0 * g.revenue / (g.revenue.sum() or 1.0)
    g["action"] = [SEGMENT_ACTIONS[s] for s in g.index]
    return g.reset_index()


# ---------------------------------------------------------------------------- funnel
def repeat_funnel(ws: Workspace, max_orders: int = 6) -> pd.DataFrame:
    """How many customers reach their 1st, 2nd, … completed order; conversion from the
    previous step, and the median days between the previous order and this one.
    The step with the largest drop is where most customers are lost."""
    o = completed_orders(ws)
    ranked = o.mutate(n=ibis.row_number().over(group_by=o.customer_id, order_by=[o.ordered_at, o.order_id]) + 1)
    prev = ranked.ordered_at.lag().over(group_by=ranked.customer_id, order_by=[ranked.ordered_at, ranked.order_id])
    ranked = ranked.mutate(gap_days=(ranked.ordered_at.epoch_seconds() - prev.epoch_seconds()).cast("float64") / 86400)
    ranked = ranked.filter(ranked.n <= max_orders)
    steps = ranked.group_by("n").agg(customers=ranked.count(), median_days=ranked.gap_days.median()) \
        .order_by("n").to_pandas()
    steps["conversion_pct"] = 100.0 * steps.customers / steps.customers.shift(1)
    steps["lost"] = (steps.customers.shift(1) - steps.customers).fillna(0).astype("int64")
    steps = steps.rename(columns={"n": "order_number"})
    steps["step"] = [f"order {k}" for k in steps.order_number]
    return steps[["step", "order_number", "customers", "conversion_pct", "lost", "median_days"]]


def largest_drop(funnel: pd.DataFrame) -> pd.Series | None:
    """The funnel step before which the most customers are lost: never the first step (no
    step comes before it), and None when no customer is lost between steps — a funnel
    nobody drops out of has no largest drop, and naming one would mislead."""
    later = funnel.iloc[1:]
    if later.empty or int(later.lost.max()) <= 0:
        return None
    return later.loc[later.lost.idxmax()]


def subscription_funnel(ws: Workspace) -> pd.DataFrame:
    """Trial → paid → first renewal (paid for longer than one month). Customers whose
    first paid month has not ended when the data end are left out of the last step."""
    s = ws.table("subscriptions")
    trial = s.is_trial.fill_null(False) | (s.mrr == 0)
    per = s.group_by("customer_id").agg(
        had_trial=trial.any(),
        first_paid=s.started_at.min(where=~trial),
        paid_until=s.ended_at.max(where=~trial),
        open_paid=(s.ended_at.isnull() & ~trial).any(),
    ).to_pandas()
    data_end = last_time(ws, "subscriptions", "the subscription funnel")
    paid = per.first_paid.notna()
    month = pd.DateOffset(months=1)
    judged = paid & (per.first_paid + month <= data_end)
    renewed = judged & (per.open_paid.fillna(False) | (per.paid_until > per.first_paid + month))
    trials = int(per.had_trial.sum())
    rows = [
        {"step": "trial", "customers": trials},
        {"step": "paid (after a trial)", "customers": int((paid & per.had_trial).sum())},
        {"step": "paid (all)", "customers": int(paid.sum())},
        {"step": "first renewal", "customers": int(renewed.sum()), "of": int(judged.sum())},
    ]
    out = pd.DataFrame(rows)
    out["conversion_pct"] = [None, 100.0 * rows[1]["customers"] / trials if trials else None, None,
                             100.0 * rows[3]["customers"] / rows[3]["of"] if rows[3]["of"] else None]
    out["of"] = out["of"].astype("Int64")
    return out


def lifecycle(metrics: pd.DataFrame) -> pd.DataFrame:
    """Lifecycle counts per period from the period metrics: new, retained, reactivated,
    dormant (= lost), and the quick ratio (new + reactivated) / dormant (Mamet's
    growth-accounting quick ratio; above 1 the active base grows)."""
    keys = [c for c in ("period_start", "period_end", "group") if c in metrics.columns]
    out = metrics[keys].copy()
    out["new"] = metrics.customers_new
    out["retained"] = metrics.customers_retained
    out["reactivated"] = metrics.customers_reactivated
    out["dormant"] = metrics.customers_lost
    out["active_end"] = metrics.customers_end
    lost = out.dormant.astype("float64")
    out["quick_ratio"] = (out.new + out.reactivated) / lost.where(lost != 0)
    return out


__all__ = ["MIN_CUSTOMERS_FOR_QUINTILES", "SEGMENTS", "SEGMENT_ACTIONS", "first_order_day", "fixed_thresholds",
           "largest_drop", "lifecycle", "repeat_funnel", "rfm", "segment_summary",
           "subscription_funnel"]
