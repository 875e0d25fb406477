"""Acquisition cohorts: who is still active k periods after their first period.

A customer's cohort is the period of their first completed order (or, with
``source="subscriptions"``, of their first paid subscription). For each cohort and
offset k:

* **bounded** (classic) retention — active *in* period cohort + k (ordered in it, or a
  paid subscription overlapping it);
* **unbounded** (rolling) retention — active in period cohort + k *or any later one*
  (the "unbounded retention" of Amplitude and PostHog).

Revenue at offset k is the cohort's completed-order revenue (or MRR for subscriptions)
in period cohort + k; ``cumulative_revenue_per_customer`` sums it over offsets 0..k and
divides by the cohort size. Cells whose period has not ended when the data end are
flagged ``complete = False`` rather than shown as drops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retentio.analytics.base import cached, completed_orders, groups, paid_subscriptions, span, to_float, with_group
from retentio.analytics.bitmasks import column_sums, n_words, single_bit, static_bit
from retentio.analytics.periods import Periods, check_period, period_number, period_number_of
from retentio.data.errors import NotLoaded, RetentioError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from retentio.data.workspace import Workspace

COHORT_PERIODS = ("week", "month", "quarter")


def _activity(ws: Workspace, period: str, source: str, periods: Periods) -> ir.Table:
    """(customer_id, j, revenue): rows that make a customer active in period j (counted
    from the first period of ``periods``) — completed orders, or paid subscriptions
    overlapping the period."""
    base = period_number_of(periods.starts[0], period)
    if source == "orders":
        o = completed_orders(ws)
        return o.select(o.customer_id, j=period_number(o.ordered_at, period) - base, revenue=o.amount)
    s = paid_subscriptions(ws)
    pt = periods.period_table()
    j = s.join(pt, [s.started_at < pt.period_end, s.ended_at.isnull() | (s.ended_at > pt.period_start)])
    return j.select(j.customer_id, j=j.k, revenue=j.mrr)


def _customers(act: ir.Table, K: int) -> ir.Table:
    """Per customer: cohort ``c`` (first active period), ``last`` active period and the
    bitmask ``w0, w1, …`` of active periods — one aggregation over the activity rows."""
    words = {f"w{w}": single_bit(act.j, w, K).bit_or() for w in range(n_words(K))}
    return act.group_by("customer_id").agg(c=act.j.min(), last=act.j.max(), **words)


def cohort_table(ws: Workspace, period: str = "month", mode: str = "bounded", by: str | None = None,
                 source: str = "orders") -> pd.DataFrame:
    """One row per cohort (× group) and offset: cohort, cohort_size, offset, active,
    retention_pct, revenue, cumulative_revenue_per_customer, complete."""
    check_period(period, COHORT_PERIODS)
    if mode not in ("bounded", "unbounded"):
        raise RetentioError(f"unknown mode {mode!r}; use bounded or unbounded")
    if source not in ("orders", "subscriptions"):
        raise RetentioError(f"unknown source {source!r}; use orders or subscriptions")
    if not ws.is_loaded(source):
        raise NotLoaded(f"{source} are", "the cohort table")
    sp = span(ws, (source,))
    periods = Periods.covering(period, sp[0], sp[1])
    K = len(periods)
    base = period_number_of(periods.starts[0], period)
    g = groups(ws, by)
    gk = ["c", "group"] if by else ["c"]
    act = _activity(ws, period, source, periods)
    with cached(ws, with_group(_customers(act, K), g)) as cust:
        # active customers per cohort and period: column sums of one bit each
        sums = {"cohort_size": cust.count(), **{f"j{j}": static_bit(cust, "w", j).sum() for j in range(K)}}
        wide = column_sums(cust, sums, gk)
        # for unbounded retention: how many customers' last active offset is each value
        lasts = cust.group_by([*gk, (cust["last"] - cust.c).name("offset")]).agg(n_last=cust.count()).to_pandas()
        # revenue needs the cohort on every activity row
        f = cust.select(*gk, cid=cust.customer_id)
        r = act.join(f, act.customer_id == f.cid)
        revenue = r.group_by([*gk, (r.j - r.c).name("offset")]).agg(revenue=to_float(r.revenue.sum())).to_pandas()
    cells = wide.melt(id_vars=[*gk, "cohort_size"], value_vars=[f"j{j}" for j in range(K)],
                      var_name="j", value_name="active")
    cells["offset"] = cells.j.str[1:].astype("int64") - cells.c
    cells = cells[cells.offset >= 0].drop(columns=["j"]).merge(revenue, on=[*gk, "offset"], how="left")
    cells["revenue"] = cells.revenue.fillna(0.0)
    for t in (cells, wide, lasts):
        t["c"] = t.c + base
    sizes = wide[[*gk, "cohort_size"]]
    cells = cells.drop(columns=["cohort_size"])

    last_index = period_number_of(periods.starts[-1], period)
    data_end = periods.data_end
    rows = []
    for key, size in sizes.set_index(gk).cohort_size.items():
        key = key if isinstance(key, tuple) else (key,)
        c = key[0]
        sel = (cells[gk[0]] == c) if not by else ((cells.c == c) & _same(cells["group"], key[1]))
        sub = cells[sel].set_index("offset")
        lsel = (lasts.c == c) if not by else ((lasts.c == c) & _same(lasts["group"], key[1]))
        lsub = lasts[lsel].set_index("offset").n_last
        n_off = int(last_index - c) + 1
        offsets = np.arange(n_off)
        active = sub.active.reindex(offsets, fill_value=0).to_numpy()
        if mode == "unbounded":
            counts = lsub.reindex(offsets, fill_value=0).to_numpy()
            active = counts[::-1].cumsum()[::-1]
        revenue = sub.revenue.reindex(offsets, fill_value=0.0).to_numpy()
        start = _period_start(int(c), period)
        for k in offsets:
            period_start = _shift(start, int(k), period)
            rows.append({
                "cohort": start.date().isoformat(),
                **({"group": key[1]} if by else {}),
                "cohort_size": int(size),
                "offset": int(k),
                "period_start": period_start.date().isoformat(),
                "active": int(active[k]),
                "retention_pct": 100.0 * active[k] / size,
                "revenue": round(float(revenue[k]), 4),
                "cumulative_revenue_per_customer": float(revenue[: k + 1].sum()) / size,
                "complete": bool(_shift(start, int(k) + 1, period) <= data_end),
            })
    out = pd.DataFrame(rows)
    if not out.empty:
        out = out.sort_values(["cohort", *(["group"] if by else []), "offset"], na_position="last").reset_index(drop=True)
    out.attrs.update({"period": period, "mode": mode, "source": source})
    return out


def average_curve(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The size-weighted average retention curve over complete cells:
    retention(k) = Σ active / Σ cohort_size over cohorts whose offset k is complete."""
    done = cohorts[cohorts.complete]
    g = done.groupby("offset").agg(active=("active", "sum"), customers=("cohort_size", "sum"),
                                   cohorts=("cohort", "nunique"))
    g["retention_pct"] = 100.0 * g.active / g.customers
    return g.reset_index()


def _same(series: pd.Series, value) -> pd.Series:
    return series.isna() if value is None or (isinstance(value, float) and np.isnan(value)) else series == value


def _period_start(n: int, period: str) -> pd.Timestamp:
    if period == "month":
        return pd.Timestamp(year=n // 12, month=n % 12 + 1, day=1)
    if period == "quarter":
        return pd.Timestamp(year=n // 4, month=3 * (n % 4) + 1, day=1)
    return pd.Timestamp("1970-01-05") + pd.Timedelta(weeks=n)


def _shift(start: pd.Timestamp, k: int, period: str) -> pd.Timestamp:
    if period == "week":
        return start + pd.Timedelta(weeks=k)
    months = k * (3 if period == "quarter" else 1)
    return start + pd.DateOffset(months=months)


__all__ = ["average_curve", "cohort_table"]
