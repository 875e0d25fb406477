"""What a campaign did: its customers' outcomes after the send, compared between the
treated and the control arm, with the money it cost and made.

**The unit** is an assignment that reached the last gate: a treatment customer whose
message went out (no gate stopped it) and a control customer whose message would have
gone out (withheld). Both arms passed the same gates, so the comparison is between
randomised equals (Kohavi, Tang & Xu 2020, *Trustworthy Online Controlled Experiments*,
ch. 3 — analyse by assignment, intention to treat: a message that bounced still counts
as treated).

**Outcomes** over the attribution window ``[as_of, as_of + window)`` (the campaign acts
at the start of its as-of day, in the workspace's time), from completed orders:

* ``converted`` — 1 when the customer completed an order in the window;
* ``revenue`` — the amount of those orders; ``margin`` — amount − cost (the revenue
  when order cost is not loaded); both winsorised per campaign at a pooled percentile;
* ``retained`` — still active at the window's end: a completed order in the activity
  window W before it (the workspace's definition of an active customer);
* ``pre_revenue`` — the amount in the ``pre_days`` before the send: the CUPED covariate.

**Money**: the campaign's cost is messages sent × the channel's cost per message (as
recorded), plus the discounts actually redeemed through its promo codes (the order's
``discount`` when loaded, else the offer: percent × amount, or the fixed value; free
shipping and gifts at the offer's value), plus bonus points granted at their value.
Incremental margin is the stratified margin effect × the treated; ROI = (incremental
margin − cost) / cost, its interval from the margin's (cost is known, not estimated).

The statistics are :mod:`retentio.analytics.experiments`; each row of a result is the
sum of its cells (one per campaign run and group), so the rows of a breakdown add up to
its total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from retentio.analytics import experiments as ex
from retentio.analytics.base import completed_orders, to_float
from retentio.data.errors import InvalidParameter

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

#: offer kinds → the tool a campaign used
TOOLS = {"percent": "discount", "fixed": "discount", "free_shipping": "free_shipping", "gift": "gift",
         "points": "points", "none": "no_offer"}
METRICS = ("conversion", "revenue", "retained")
BREAKDOWNS = ("channel", "tool", "playbook", "segment")
#: outcome column per metric
_OUTCOME = {"conversion": "converted", "revenue": "revenue", "retained": "retained"}


def window_outcomes(ws: Workspace, units: pd.DataFrame, *, pre_days: int = 365,
                    activity_days: int | None = None) -> pd.DataFrame:
    """``units`` (``unit``, ``customer_id``, ``start`` — the as-of day — and
    ``window_days``) with converted, orders, revenue, margin, retained and pre_revenue
    from the workspace's completed orders, computed in the engine (one range join)."""
    activity = activity_days or ws.settings.activity_window_days
    if units.empty:
        return units.assign(converted=0, orders=0, revenue=0.0, margin=0.0, retained=0, pre_revenue=0.0)
    start = pd.to_datetime(units.start).dt.normalize()
    end = start + pd.to_timedelta(units.window_days, unit="D")
    frame = pd.DataFrame({
        "unit": units.unit.to_numpy(), "ucid": units.customer_id.astype(str).to_numpy(),
        "w_start": start.to_numpy(), "w_end": end.to_numpy(),
        "active_from": (end - pd.Timedelta(days=activity)).to_numpy(),
        "lower": np.minimum(start - pd.Timedelta(days=pre_days), end - pd.Timedelta(days=activity)).to_numpy(),
        "pre_from": (start - pd.Timedelta(days=pre_days)).to_numpy(),
    })
    o = completed_orders(ws)
    has_cost = "cost" in o.columns and bool(o.cost.notnull().any().to_pyarrow().as_py())
    cost = o.cost.cast("float64").fill_null(0.0) if has_cost else ibis.literal(0.0)
    o = o.select(ocid=o.customer_id.cast("string"), at=o.ordered_at, amount=to_float(o.amount),
                 cost=cost)
    u = ibis.memtable(frame)
    j = u.join(o, [u.ucid == o.ocid, o.at >= u.lower, o.at < u.w_end])
    inside = (j.at >= j.w_start)
    agg = j.group_by("unit").aggregate(
        orders=inside.cast("int64").sum(),
        revenue=ibis.cases((inside, j.amount), else_=0.0).sum(),
        margin=ibis.cases((inside, j.amount - j.cost), else_=0.0).sum(),
        retained=(j.at >= j.active_from).cast("int64").max(),
        pre_revenue=ibis.cases(((j.at >= j.pre_from) & ~inside, j.amount), else_=0.0).sum(),
    ).to_pandas()
    out = units.merge(agg, on="unit", how="left")
    for column in ("orders", "retained"):
        out[column] = out[column].fillna(0).astype("int64")
    for column in ("revenue", "margin", "pre_revenue"):
        out[column] = out[column].astype("float64").fillna(0.0)
    out["converted"] = (out.orders > 0).astype("int64")
    if not has_cost:
        out["margin"] = out.revenue
    out.attrs["margin_basis"] = "amount − cost" if has_cost else "revenue (order cost not loaded)"
    return out


@dataclass(frozen=True)
class MeasureOptions:
    """How to measure: the headline metric, the breakdown, the revenue cap percentile,
    the confidence level and whether to use CUPED."""

    metric: str = "conversion"
    by: str | None = None
    winsor_pct: float = 99.9
    level: float = 0.95
    use_cuped: bool = True

    def check(self) -> None:
        if self.metric not in METRICS:
            raise InvalidParameter("metric", self.metric, " | ".join(METRICS))
        if self.by is not None and self.by not in BREAKDOWNS:
            raise InvalidParameter("by", self.by, " | ".join(BREAKDOWNS))
        if not 50 <= self.winsor_pct <= 100:
            raise InvalidParameter("winsor_pct", str(self.winsor_pct), "a percentile between 50 and 100")
        if not 0.5 < self.level < 1:
            raise InvalidParameter("level", str(self.level), "a confidence level between 0.5 and 1")


def winsorize_per_campaign(units: pd.DataFrame, percentile: float) -> pd.DataFrame:
    """Revenue and margin capped per campaign at their pooled ``percentile``; the caps
    are kept in ``revenue_cap``/``margin_cap``."""
    out = units.copy()
    for column in ("revenue", "margin"):
        capped = np.empty(len(out))
        caps = np.empty(len(out))
        for _, idx in out.groupby("campaign", sort=False).indices.items():
            values, cap = ex.winsorize(out[column].to_numpy()[idx], percentile)
            capped[idx] = values
            caps[idx] = cap
        out[column] = capped
        out[f"{column}_cap"] = caps
    return out


def _cells(group: pd.DataFrame, column: str, cuped_with: str | None,
           keys: list[str]) -> tuple[list[ex.Cell], list[ex.Cell]]:
    """Per cell (campaign run, and group): the plain cells and, with a covariate, the
    CUPED ones (θ per cell, pooled over its arms)."""
    plain, adjusted = [], []
    for _, cell in group.groupby(keys, sort=False, dropna=False):
        y = cell[column].to_numpy(dtype="float64")
        t = (cell.arm == "treatment").to_numpy()
        plain.append(ex.Cell.of(y[t], y[~t]))
        if cuped_with is not None:
            y_adj, _ = ex.cuped(y, cell[cuped_with].to_numpy(dtype="float64"))
            adjusted.append(ex.Cell.of(y_adj[t], y_adj[~t]))
    return plain, adjusted


def _finite(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)


def _effect_dict(e: ex.Effect) -> dict[str, Any]:
    return {k: _finite(v) if isinstance(v, float) else v for k, v in e.as_dict().items()}


def measure_rows(units: pd.DataFrame, options: MeasureOptions, key: str) -> list[dict[str, Any]]:
    """One result per value of ``key`` (a column of ``units``): sizes, SRM, the three
    outcome effects (revenue with CUPED), money and ROI, and the headline verdict after
    Benjamini–Hochberg over the rows. The last row is the total over all of them."""
    rows = []
    keys = ["campaign", "run_id"] + ([key] if key not in ("campaign", "run_id") else [])
    parts = [(str(k), g) for k, g in units.groupby(key, sort=True, dropna=False)]
    if len(parts) > 1 or not parts:
        parts.append(("total", units))
    for name, group in parts:
        rows.append(_measure_group(name, group, options, keys))
    # many comparisons at once: adjust the headline p-values (the total is not one more test)
    shown = [r for r in rows if r["group"] != "total" or len(rows) == 1]
    adjusted = ex.benjamini_hochberg([r[options.metric]["p_value"] if r[options.metric]["p_value"] is not None
                                      else np.nan for r in shown])
    for r, p in zip(shown, adjusted):
        r["p_adjusted"] = _finite(float(p))
    for r in rows:
        r.setdefault("p_adjusted", r[options.metric]["p_value"])
        effect = r["_effects"][options.metric]
        r["verdict"] = ex.verdict(effect, r["p_adjusted"] if r["p_adjusted"] is not None else np.nan, r["srm_p"],
                                  alpha=1 - options.level)
        del r["_effects"]
    return rows


def _measure_group(name: str, group: pd.DataFrame, options: MeasureOptions, keys: list[str]) -> dict[str, Any]:
    level = options.level
    conv_cells, _ = _cells(group, "converted", None, keys)
    ret_cells, _ = _cells(group, "retained", None, keys)
    rev_cells, rev_cuped = _cells(group, "revenue", "pre_revenue", keys)
    mar_cells, mar_cuped = _cells(group, "margin", "pre_revenue", keys)
    conversion = ex.combine(conv_cells, level)
    retained = ex.combine(ret_cells, level)
    revenue_plain = ex.combine(rev_cells, level)
    revenue = ex.combine(rev_cuped, level) if options.use_cuped else revenue_plain
    margin = ex.combine(mar_cuped, level) if options.use_cuped else ex.combine(mar_cells, level)
    runs = group.drop_duplicates(["campaign", "run_id"])
    srm = ex.srm_combined([
        (int(((g.arm == "treatment")).sum()), int((g.arm == "control").sum()), float(g.holdout_pct.iloc[0]) / 100)
        for _, g in group.groupby(keys, sort=False, dropna=False)])
    treated = group[group.arm == "treatment"]
    costs = {
        "messages": int(treated.message_sent.sum()),
        "message_cost": float(treated.message_cost.sum()),
        "discount_cost": float(treated.discount_cost.sum()),
        "points_cost": float(treated.points_cost.sum()),
        "codes_redeemed": int(treated.redeemed.sum()),
    }
    cost = costs["message_cost"] + costs["discount_cost"] + costs["points_cost"]
    width = revenue_plain.per_customer_high - revenue_plain.per_customer_low
    width_cuped = revenue.per_customer_high - revenue.per_customer_low
    roi = roi_low = roi_high = None
    if cost > 0 and not math.isnan(margin.incremental):
        roi = (margin.incremental - cost) / cost
        roi_low = (margin.incremental_low - cost) / cost
        roi_high = (margin.incremental_high - cost) / cost
    return {
        "group": name,
        "runs": int(len(runs)),
        "treatment_n": int((group.arm == "treatment").sum()),
        "control_n": int((group.arm == "control").sum()),
        "srm_p": float(srm),
        "srm": bool(srm < ex.SRM_ALPHA),
        "conversion": _effect_dict(conversion),
        "revenue": _effect_dict(revenue),
        "revenue_uncorrected": _effect_dict(revenue_plain),
        "cuped_ci_narrowed_pct": _finite(100 * (1 - width_cuped / width)) if width and options.use_cuped else None,
        "retained": _effect_dict(retained),
        "incremental_margin": _finite(margin.incremental),
        "incremental_margin_low": _finite(margin.incremental_low),
        "incremental_margin_high": _finite(margin.incremental_high),
        **costs,
        "cost": cost,
        "roi": _finite(roi) if roi is not None else None,
        "roi_low": _finite(roi_low) if roi_low is not None else None,
        "roi_high": _finite(roi_high) if roi_high is not None else None,
        "_effects": {"conversion": conversion, "revenue": revenue, "retained": retained},
    }


__all__ = ["BREAKDOWNS", "METRICS", "TOOLS", "MeasureOptions", "measure_rows", "window_outcomes",
           "winsorize_per_campaign"]
