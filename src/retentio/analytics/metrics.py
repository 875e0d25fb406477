"""Retention metrics per period (and per customer group), counted by customer.

Definitions are those of docs/definitions.md ("Customers and periods", "Metrics"):

* Non-contractual (orders): a customer is *active at instant t* when they made a
  completed order in the activity window ``[t − W, t)``. For the period ``[start, end)``:
  S = active at start, N = new (first ever completed order inside the period),
  E = active at end, retained = active at start and end, lost = S − retained,
  reactivated = active at end, neither active at start nor new.
  CRR = 100 × (E − N) / S (docs/definitions.md), churn = 100 × lost / S.
* Contractual (subscriptions; trials and zero-MRR rows excluded): active at t when a
  subscription covers t (``started_at ≤ t < ended_at``). Each customer's MRR at the
  period's start (m0) and end (m1) classifies the change: new (m0 = 0, first paid
  subscription ever starts in the period), reactivated (m0 = 0, paid before), expansion
  (m1 > m0 > 0), contraction (0 < m1 < m0), churned (m0 > 0 = m1). So
  mrr_end = mrr_start + new + expansion − contraction − churned + reactivated exactly.
  GRR = (start − churned − contraction) / start; NRR adds expansion (the SaaS
  convention, e.g. ChartMogul's "net MRR retention").
* Surveys: NPS = % promoters (9–10) − % detractors (0–6) (Reichheld 2003);
  CSAT = % of answers 4–5; CES = mean score on its 1–7 scale.

Everything is one Ibis expression per block, so it runs on DuckDB and on Spark; only
the final division into rates (a few hundred rows) happens in pandas.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import pandas as pd

from retentio.analytics.base import (
    cached,
    completed_orders,
    groups,
    paid_subscriptions,
    rate,
    span,
    to_float,
    with_group,
)
from retentio.analytics.bitmasks import bit, bit_range, column_sums, single_bit, static_bit
from retentio.analytics.bitmasks import n_words as nw
from retentio.analytics.periods import Periods, check_period, period_number, period_number_of
from retentio.data.errors import InvalidParameter, NotLoaded

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from retentio.data.workspace import Workspace

#: reference figures of docs/definitions.md, shown beside the metrics they concern
#: the definitions a reader of any result needs, in words (sources: docs/definitions.md)
DEFINITIONS = {
    "active (orders)": "a completed order in the activity window before the instant",
    "active (subscriptions)": "a paid (non-trial) subscription covers the instant",
    "CRR": "(customers at end − new) / customers at start",
    "churn": "customers lost in the period / customers at start",
    "NRR": "(MRR at start − churned − contraction + expansion) / MRR at start",
    "NPS": "% promoters (9–10) − % detractors (0–6)",
}

BENCHMARKS = {
    "crr_pct": "retail 63, media 84, apparel 60",
    "repeat_purchase_rate_pct": "e-commerce 25–40",
    "nps": "≥ 40 SMB, ≥ 60 large",
    "churn_pct": "~20 a year (average business)",
}

ORDER_KEYS = ["customers_start", "customers_new", "customers_end", "customers_retained", "customers_lost",
              "customers_reactivated", "crr_pct", "churn_pct", "buyers", "orders", "revenue", "aov",
              "purchase_frequency", "repeat_purchase_rate_pct", "return_rate_pct"]
SUB_KEYS = ["subscribers_start", "subscribers_end", "subscribers_lost", "subscriber_churn_pct", "mrr_start",
            "mrr_new", "mrr_expansion", "mrr_contraction", "mrr_churned", "mrr_reactivated", "mrr_end",
            "grr_pct", "nrr_pct", "revenue_churn_pct"]
SURVEY_KEYS = ["nps", "nps_responses", "csat_pct", "ces_mean"]

#: NPS answer groups (Reichheld 2003): promoters 9–10, detractors 0–6, passives between
PROMOTER_MIN, DETRACTOR_MAX = 9, 6


def _gkeys(by: str | None) -> list[str]:
    return ["k", "group"] if by else ["k"]


def resolve_periods(ws: Workspace, period: str, start: dt.date | None, end: dt.date | None,
                    tables: tuple[str, ...] = ("orders", "subscriptions", "surveys")) -> Periods:
    """The periods covering the data (or [start, end] when given)."""
    check_period(period)
    sp = span(ws, tables)
    if sp is None:
        raise NotLoaded("orders, subscriptions or surveys are", "the metrics")
    first, last = sp
    data_end = last.normalize() + pd.Timedelta(days=1)
    lo = pd.Timestamp(start) if start else first
    hi = pd.Timestamp(end) if end else last
    if hi < lo:
        raise InvalidParameter("end", hi.date().isoformat(), f"a day not before the start, {lo.date()}")
    return Periods.covering(period, lo, hi, data_end)


# ---------------------------------------------------------------------------- orders
def customer_activity(orders: ir.Table, periods: Periods, window_days: int) -> ir.Table:
    """Per customer, the compressed statistics every count derives from:

    * ``a0, a1, …`` — bitmask of the boundaries k (0..K) at which the customer is active.
      An order at time L makes its customer active at boundaries b_k in (L, L + W], i.e.
      for k from pn(L) + 1 to pn(L + W) (pn = running period number, relative to b_0);
    * ``b0, b1, …`` — bitmask of the periods in which the customer bought;
    * ``first_k`` — the period of the first ever completed order (may lie outside 0..K−1).

    One aggregation straight over the orders: OR-ing every order's range equals OR-ing
    the range of each period's last order, and skipping the per-(customer, period)
    reduction makes this about three times faster on 100M orders.
    """
    period = periods.period
    K = len(periods)
    n_words = nw(K + 1)
    o = _with_k(orders, periods)
    lo = ibis.greatest(o.k + 1, 0)
    hi = ibis.least(period_number(o.ordered_at + ibis.interval(days=window_days), period) - _base(periods), K)
    cols = {}
    for w in range(n_words):
        cols[f"a{w}"] = bit_range(lo, hi, w)
        cols[f"b{w}"] = single_bit(o.k, w, K)
    o = o.mutate(**cols)
    aggs = {f"a{w}": o[f"a{w}"].bit_or() for w in range(n_words)}
    aggs.update({f"b{w}": o[f"b{w}"].bit_or() for w in range(n_words)})
    return o.group_by("customer_id").agg(first_k=o.k.min(), **aggs)



def _base(periods: Periods) -> int:
    return period_number_of(periods.bounds[0], periods.period)


def _with_k(orders: ir.Table, periods: Periods) -> ir.Table:
    """Orders with ``k``, their period number relative to the first period."""
    return orders.mutate(k=period_number(orders.ordered_at, periods.period) - _base(periods))


def _boundary_counts(per: ir.Table, K: int, gcols: list[str]) -> pd.DataFrame:
    """Per period k (and group): customers active at its start and its end, retained
    (both), and buyers — each a column sum of one bit of the customers' masks."""
    sums = {}
    for k in range(K + 1):
        sums[f"s{k}"] = static_bit(per, "a", k).sum()
    for k in range(K):
        sums[f"r{k}"] = (static_bit(per, "a", k) * static_bit(per, "a", k + 1)).sum()
        sums[f"u{k}"] = static_bit(per, "b", k).sum()
    wide = column_sums(per, sums, gcols)
    rows = []
    for _, row in wide.iterrows():
        for k in range(K):
            rows.append({"k": k, **{c: row[c] for c in gcols},
                         "customers_start": row[f"s{k}"], "customers_end": row[f"s{k + 1}"],
                         "customers_retained": row[f"r{k}"], "buyers": row[f"u{k}"]})
    num = ["customers_start", "customers_end", "customers_retained", "buyers"]
    out = pd.DataFrame(rows, columns=["k", *gcols, *num])
    out[num] = out[num].fillna(0).astype("int64")
    return out


def _new_counts(per: ir.Table, orders: ir.Table, periods: Periods, n_words: int,
                gcols: list[str]) -> pd.DataFrame:
    """Per period (and group): new customers, those of them active at the period's end,
    and those with a single order in it (who are not yet repeat buyers there)."""
    K = len(periods)
    new = per.filter((per.first_k >= 0) & (per.first_k < K))
    a = [new[f"a{w}"] for w in range(n_words)]
    counts = new.group_by([new.first_k.name("k"), *gcols]).agg(
        customers_new=new.count(),
        new_active_end=bit(a, new.first_k + 1).sum(),
    ).to_pandas()
    # orders in each new customer's first period: an exact count needs the first period
    # known first, so this is a join rather than part of the one-pass aggregation
    o = _with_k(orders, periods)
    f = new.select("first_k", *gcols, cid=new.customer_id)
    j = o.join(f, [o.customer_id == f.cid, o.k == f.first_k])
    n = j.group_by(["cid", "first_k", *gcols]).agg(n=j.count())
    single = n.group_by([n.first_k.name("k"), *gcols]).agg(single_new=(n.n == 1).cast("int64").sum())
    return counts.merge(single.to_pandas(), on=["k", *gcols], how="left")


def order_counts(ws: Workspace, periods: Periods, window_days: int, g: ir.Table | None) -> pd.DataFrame:
    """Per period (and group, ``g`` from :func:`groups`): the customer counts and order statistics."""
    by = g is not None
    oc = completed_orders(ws)
    K = len(periods)
    n_words = nw(K + 1)
    gcols = ["group"] if by else []
    with cached(ws, with_group(customer_activity(oc, periods, window_days), g)) as per:
        counts = _boundary_counts(per, K, gcols).merge(
            _new_counts(per, oc, periods, n_words, gcols), on=["k", *gcols], how="left")
    counts[["customers_new", "new_active_end", "single_new"]] = (
        counts[["customers_new", "new_active_end", "single_new"]].fillna(0).astype("int64"))
    counts["customers_lost"] = counts.customers_start - counts.customers_retained
    counts["customers_reactivated"] = counts.customers_end - counts.customers_retained - counts.new_active_end
    # a buyer of period k has ≥ 2 lifetime orders at its end unless k is their first period
    # and they bought only once in it
    counts["repeat_buyers"] = counts.buyers - counts.single_new
    counts = counts.drop(columns=["new_active_end", "single_new"])

    # order statistics of the period: no customer key needed
    o = with_group(ws.table("orders"), g)
    status = o.status.fill_null("completed")
    o = _with_k(o.mutate(status=status), periods)
    o = o.filter((o.k >= 0) & (o.k < K))
    stats = o.group_by(["k", *gcols]).agg(
        orders=(o.status == "completed").sum(),
        returned=(o.status == "returned").sum(),
        revenue=to_float(o.amount.sum(where=o.status == "completed")),
    ).to_pandas()
    return counts.merge(stats, on=["k", *gcols], how="outer")


# ---------------------------------------------------------------------------- subscriptions
def mrr_movements(ws: Workspace, periods: Periods, g: ir.Table | None) -> pd.DataFrame:
    """Per period (and group): subscribers and MRR movements between the period's boundaries."""
    by = g is not None
    s = paid_subscriptions(ws)
    K = len(periods)
    b = periods.boundary_table()
    cover = s.join(b, [s.started_at <= b.b, s.ended_at.isnull() | (s.ended_at > b.b)])
    snap = cover.group_by([cover.customer_id, cover.k]).agg(m=cover.mrr.sum())
    zero = ibis.literal(0).cast("decimal(28,4)")
    m = snap.m.cast("decimal(28,4)")
    both = (snap.select(snap.customer_id, k=snap.k, m0=m, m1=zero)
            .union(snap.select(snap.customer_id, k=snap.k - 1, m0=zero, m1=m)))
    both = both.filter((both.k >= 0) & (both.k < K))
    per = both.group_by(["customer_id", "k"]).agg(m0=both.m0.sum(), m1=both.m1.sum())
    first_paid = s.group_by("customer_id").agg(first_paid_at=s.started_at.min())
    pt = periods.period_table()
    per = per.join(first_paid, "customer_id").join(pt, "k")
    per = with_group(per, g)
    keys = _gkeys(by)
    up, down = per.m1 > per.m0, per.m1 < per.m0
    was0, is0 = per.m0 == 0, per.m1 == 0
    newly = was0 & ~is0 & (per.first_paid_at >= per.period_start)
    back = was0 & ~is0 & (per.first_paid_at < per.period_start)
    out = per.group_by(keys).agg(
        subscribers_start=(~was0).sum(),
        subscribers_end=(~is0).sum(),
        subscribers_lost=(~was0 & is0).sum(),
        mrr_start=to_float(per.m0.sum()),
        mrr_end=to_float(per.m1.sum()),
        mrr_new=to_float(per.m1.sum(where=newly)),
        mrr_reactivated=to_float(per.m1.sum(where=back)),
        mrr_expansion=to_float((per.m1 - per.m0).sum(where=~was0 & up)),
        mrr_contraction=to_float((per.m0 - per.m1).sum(where=~was0 & ~is0 & down)),
        mrr_churned=to_float(per.m0.sum(where=~was0 & is0)),
    ).to_pandas()
    money = [c for c in out.columns if c.startswith("mrr_")]
    out[money] = out[money].fillna(0.0).round(4)
    return out


# ---------------------------------------------------------------------------- surveys
def survey_scores(ws: Workspace, periods: Periods, g: ir.Table | None) -> pd.DataFrame:
    by = g is not None
    sv = ws.table("surveys")
    pt = periods.period_table()
    j = sv.join(pt, [sv.answered_at >= pt.period_start, sv.answered_at < pt.period_end])
    j = with_group(j, g)
    is_nps, is_csat, is_ces = j.kind == "nps", j.kind == "csat", j.kind == "ces"
    return j.group_by(_gkeys(by)).agg(
        nps_responses=is_nps.sum(),
        promoters=(is_nps & (j.score >= PROMOTER_MIN)).sum(),
        detractors=(is_nps & (j.score <= DETRACTOR_MAX)).sum(),
        csat_responses=is_csat.sum(),
        csat_satisfied=(is_csat & (j.score >= 4)).sum(),
        ces_mean=j.score.mean(where=is_ces),
    ).to_pandas()


def nps_groups(ws: Workspace) -> pd.DataFrame:
    """All NPS answers by group: (group, answers) for promoters, passives and detractors."""
    sv = ws.table("surveys")
    nps = sv.filter(sv.kind == "nps")
    group = ibis.cases((nps.score >= PROMOTER_MIN, "promoters"), (nps.score > DETRACTOR_MAX, "passives"),
                       else_="detractors")
    return nps.group_by(group=group).agg(answers=nps.count()).to_pandas()


# ---------------------------------------------------------------------------- the report
def period_metrics(
    ws: Workspace,
    period: str = "month",
    start: dt.date | None = None,
    end: dt.date | None = None,
    window: int | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """One row per period (and per group with ``by``): the keys of ``retentio metrics``.

    Rates whose denominator is zero are null. The frame's ``attrs`` record the
    definitions used (activity window, period, engine).
    """
    window = window or ws.settings.activity_window_days
    if window <= 0:
        raise InvalidParameter("window", window, "a positive number of days")
    periods = resolve_periods(ws, period, start, end)
    keys = _gkeys(by)
    parts = []
    has_orders = ws.is_loaded("orders")
    has_subs = ws.is_loaded("subscriptions")
    has_surveys = ws.is_loaded("surveys")
    g = groups(ws, by)
    if has_orders:
        parts.append(order_counts(ws, periods, window, g))
    if has_subs:
        parts.append(mrr_movements(ws, periods, g))
    if has_surveys:
        parts.append(survey_scores(ws, periods, g))
    frame = parts[0]
    for p in parts[1:]:
        frame = frame.merge(p, on=keys, how="outer")
    # every period (and every group seen) gets a row, even when nothing happened in it
    if by:
        seen = frame["group"].drop_duplicates().tolist()
        grid = pd.DataFrame([(k, g) for k in range(len(periods)) for g in seen], columns=keys)
    else:
        grid = pd.DataFrame({"k": range(len(periods))})
    frame = grid.merge(frame, on=keys, how="left")
    frame = frame.sort_values(keys, na_position="last").reset_index(drop=True)

    out = pd.DataFrame({
        "period_start": [periods.starts[k].date().isoformat() for k in frame.k],
        "period_end": [periods.ends[k].date().isoformat() for k in frame.k],
    })
    if by:
        out["group"] = frame["group"].to_numpy()
    out["complete"] = [periods.complete()[k] for k in frame.k]
    f = frame
    if has_orders:
        for c in ("customers_start", "customers_new", "customers_end", "customers_retained", "customers_lost",
                  "customers_reactivated", "buyers", "orders"):
            out[c] = f[c].fillna(0).astype("int64").to_numpy()
        out["crr_pct"] = rate(f.customers_end.fillna(0) - f.customers_new.fillna(0), f.customers_start.fillna(0)).to_numpy()
        out["churn_pct"] = rate(f.customers_lost.fillna(0), f.customers_start.fillna(0)).to_numpy()
        out["revenue"] = f.revenue.fillna(0.0).round(4).to_numpy()
        out["aov"] = rate(f.revenue.fillna(0), f.orders.fillna(0), 1.0).to_numpy()
        out["purchase_frequency"] = rate(f.orders.fillna(0), f.buyers.fillna(0), 1.0).to_numpy()
        out["repeat_purchase_rate_pct"] = rate(f.repeat_buyers.fillna(0), f.buyers.fillna(0)).to_numpy()
        out["return_rate_pct"] = rate(f.returned.fillna(0), f.orders.fillna(0) + f.returned.fillna(0)).to_numpy()
    if has_subs:
        for c in ("subscribers_start", "subscribers_end", "subscribers_lost"):
            out[c] = f[c].fillna(0).astype("int64").to_numpy()
        out["subscriber_churn_pct"] = rate(f.subscribers_lost.fillna(0), f.subscribers_start.fillna(0)).to_numpy()
        for c in ("mrr_start", "mrr_new", "mrr_expansion", "mrr_contraction", "mrr_churned", "mrr_reactivated",
                  "mrr_end"):
            out[c] = f[c].fillna(0.0).to_numpy()
        start_ = f.mrr_start.fillna(0)
        kept = start_ - f.mrr_churned.fillna(0) - f.mrr_contraction.fillna(0)
        out["grr_pct"] = rate(kept, start_).to_numpy()
        out["nrr_pct"] = rate(kept + f.mrr_expansion.fillna(0), start_).to_numpy()
        out["revenue_churn_pct"] = rate(f.mrr_churned.fillna(0), start_).to_numpy()
    if has_surveys:
        n = f.nps_responses.fillna(0)
        out["nps"] = rate(f.promoters.fillna(0) - f.detractors.fillna(0), n).to_numpy()
        out["nps_responses"] = n.astype("int64").to_numpy()
        out["csat_pct"] = rate(f.csat_satisfied.fillna(0), f.csat_responses.fillna(0)).to_numpy()
        out["ces_mean"] = f.ces_mean.astype("float64").to_numpy()
    out.attrs.update({
        "period": period, "activity_window_days": window, "engine": ws.engine,
        "definition": (f"orders: active = a completed order in the {window} days before the instant; "
                       "subscriptions: active = a paid (non-trial) subscription covers the instant"),
    })
    return out
