"""Did it work? Each campaign's effect against its control group, and the program's
against the global control group: sizes and the sample-ratio check, conversion, revenue
(CUPED) and retention uplift with intervals, what it cost and what it returned (ROI),
by channel, tool, playbook or segment.

The statistics live in :mod:`retentio.analytics.experiments` and
:mod:`retentio.analytics.campaign_effect`; this service gathers the store's assignments,
the workspace's orders and settings, and words nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retentio.data.errors import InvalidParameter, RetentioError

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace


@dataclass(frozen=True)
class MeasureParams:
    """Which campaigns (None: all), the attribution window (None: per playbook, else the
    workspace's ``[campaigns] attribution_days``), the headline metric, the breakdown,
    the revenue cap percentile, the pre-period for CUPED and the confidence level."""

    campaigns: list[str] | None = None
    window_days: int | None = None
    metric: str = "conversion"
    by: str | None = None
    winsor_pct: float = 99.9
    pre_days: int = 365
    level: float = 0.95
    cuped: bool = True


@dataclass
class Measurement:
    """Rows of effects (one per campaign, or per group of the breakdown, then the total),
    the global control group's comparison when there is one, and how it was measured."""

    metric: str
    by: str | None
    rows: list[dict[str, Any]]
    global_control: dict[str, Any] | None
    winsor_pct: float
    level: float
    margin_basis: str
    #: how p-values were adjusted, e.g. "Benjamini–Hochberg over 4 comparisons"
    adjustment: str
    data_end: str | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "by": self.by, "level": self.level, "winsor_pct": self.winsor_pct,
                "margin_basis": self.margin_basis, "adjustment": self.adjustment, "data_end": self.data_end,
                "rows": self.rows, "global_control": self.global_control, "notes": self.notes}


def units_frame(ws: Workspace, params: MeasureParams, stored: tuple[pd.DataFrame, pd.DataFrame] | None = None
                ) -> pd.DataFrame:
    """One row per measured assignment: treatment customers whose message went out and
    control customers whose message was withheld, with campaign, run, as-of day,
    window, planned control share, channel, tool, the money it cost, and (for the
    segment breakdown) the customer's RFM segment on the as-of day."""
    from retentio.actions import ledger
    from retentio.analytics.campaign_effect import TOOLS

    store = ws.store
    # one campaign is read alone (the store filters); several are filtered here
    one = params.campaigns[0] if params.campaigns and len(params.campaigns) == 1 else None
    a, runs = stored if stored is not None else (ledger.assignments_frame(store, one), ledger.runs_frame(store))
    if params.campaigns:
        known = set(runs.campaign)
        missing = [c for c in params.campaigns if c not in known]
        if missing:
            have = ", ".join(sorted(known)) or "none has run yet"
            raise InvalidParameter("campaign", missing[0], f"a campaign that has run ({have})")
        a = a[a.campaign.isin(params.campaigns)]
    reached = ((a.arm == "treatment") & a.reason.isna()) | \
              ((a.arm == "control") & (a.reason == "holdout") & (a.message_status == "withheld"))
    u = a[reached].merge(runs.drop(columns=["campaign"]), on="run_id", how="left")
    default_window = ws.settings.campaigns.attribution_days
    u["window_days"] = params.window_days or u.window_days.astype("float64").fillna(default_window).astype("int64")
    u["start"] = pd.to_datetime(u.as_of)
    u["unit"] = np.arange(len(u))
    u["playbook"] = u.campaign
    u["tool"] = u.offer_kind.map(TOOLS).fillna("no_offer")
    sent = (u.arm == "treatment") & (u.message_status == "sent")
    u["message_sent"] = sent.astype("int64")
    u["message_cost"] = np.where(sent, u.cost.fillna(0.0), 0.0)
    u["redeemed"] = u.redeemed_order_id.notna().astype("int64")
    u["discount_cost"] = _discounts(ws, u)
    u["points_cost"] = np.where(sent & (u.offer_kind == "points"),
                                u.offer_value.fillna(0.0) * ws.settings.campaigns.point_value, 0.0)
    if params.by == "segment":
        u["segment"] = _segments(ws, u)
    return u


def _discounts(ws: Workspace, u: pd.DataFrame) -> np.ndarray:
    """The discount each redeemed code gave: the redeemed order's ``discount`` when
    loaded, else the offer (percent of the order's amount, or its fixed value); free
    shipping and gifts at the offer's value."""
    out = np.zeros(len(u))
    redeemed = u.redeemed_order_id.notna().to_numpy()
    if not redeemed.any():
        return out
    import ibis

    o = ws.table("orders")
    ids = ibis.memtable(pd.DataFrame({"rid": u.redeemed_order_id[redeemed].astype(str).unique()}))
    cols = ["order_id", "amount"] + (["discount"] if "discount" in o.columns else [])
    # a join, not IN (…): tens of thousands of literals make a slow query to compile
    orders = o.join(ids, o.order_id.cast("string") == ids.rid).select(*cols).to_pandas()
    orders["order_id"] = orders.order_id.astype(str)
    orders = orders.set_index("order_id")
    sub = u[redeemed]
    amount = sub.redeemed_order_id.astype(str).map(orders.amount.astype("float64")).fillna(0.0).to_numpy()
    loaded = (sub.redeemed_order_id.astype(str).map(orders.discount.astype("float64")).to_numpy()
              if "discount" in orders.columns else np.full(len(sub), np.nan))
    value = sub.offer_value.fillna(0.0).to_numpy(dtype="float64")
    kind = sub.offer_kind.to_numpy()
    by_offer = np.where(kind == "percent", amount * value / 100.0, np.where(kind == "points", 0.0, value))
    out[redeemed] = np.where(np.isnan(loaded), by_offer, loaded)
    return out


def _segments(ws: Workspace, u: pd.DataFrame) -> pd.Series:
    """The RFM segment of each unit's customer on its as-of day ("new" for a customer
    with no order before it)."""
    from retentio.analytics.segments import rfm

    out = pd.Series("no orders yet", index=u.index, dtype=object)
    for as_of, idx in u.groupby("as_of").groups.items():
        table = rfm(ws, as_of=as_of).set_index("customer_id").segment
        out[idx] = u.loc[idx, "customer_id"].map(table).fillna("no orders yet").to_numpy()
    return out


def measure_campaigns(ws: Workspace, params: MeasureParams = MeasureParams()) -> Measurement:
    """Measure the campaigns (see the module notes)."""
    from retentio.analytics.base import span
    from retentio.analytics.campaign_effect import MeasureOptions, measure_rows, window_outcomes, winsorize_per_campaign

    options = MeasureOptions(params.metric, params.by, params.winsor_pct, params.level, params.cuped)
    options.check()
    if params.window_days is not None and not 1 <= params.window_days <= 365:
        raise InvalidParameter("window", str(params.window_days), "a number of days from 1 to 365")
    if not ws.is_loaded("orders"):
        from retentio.data.errors import NotLoaded

        raise NotLoaded("orders are", "measuring campaigns")
    # every campaign's assignments are read once when the program's comparison needs them too
    with_gc = params.campaigns is None and ws.settings.campaigns.global_control_pct > 0
    stored = _stored(ws) if with_gc else None
    units = units_frame(ws, params, stored)
    if units.empty:
        raise RetentioError("No campaign has customers to measure yet: run one first "
                            "(a campaign with a holdout records a control group to compare with)")
    units = window_outcomes(ws, units, pre_days=params.pre_days)
    margin_basis = units.attrs.get("margin_basis", "amount − cost")
    units = winsorize_per_campaign(units, params.winsor_pct)
    key = {"channel": "channel", "tool": "tool", "playbook": "playbook", "segment": "segment"}.get(
        params.by or "", "campaign")
    rows = measure_rows(units, options, key)
    sp = span(ws, ("orders",))
    data_end = sp[1] if sp else None
    notes = []
    for r in rows:
        group_units = units if r["group"] == "total" else units[units[key].astype(str) == r["group"]]
        ends = group_units.start + pd.to_timedelta(group_units.window_days, unit="D")
        r["window_open"] = bool(data_end is not None and (ends > data_end).any())
    if any(r["window_open"] for r in rows):
        notes.append("window_open")
    n_tests = len([r for r in rows if r["group"] != "total"]) if len(rows) > 1 else 1
    adjustment = f"Benjamini–Hochberg over {n_tests} comparisons" if n_tests > 1 else "none (one comparison)"
    gc = None
    if stored is not None:
        gc = _global_control(ws, params, options, stored, units)
    return Measurement(params.metric, params.by, rows, gc, params.winsor_pct, params.level, margin_basis,
                       adjustment, data_end.isoformat() if data_end is not None else None, notes)


def _stored(ws: Workspace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every assignment and every run of the store."""
    from retentio.actions import ledger

    return ledger.assignments_frame(ws.store), ledger.runs_frame(ws.store)


def _global_control(ws: Workspace, params: MeasureParams, options: Any, stored: tuple[pd.DataFrame, pd.DataFrame],
                    money: pd.DataFrame) -> dict[str, Any] | None:
    """Everyone the program could contact against the global control group that it never
    contacts: per customer from their first assignment that passed the address, consent
    and suppression gates (the global control gate comes next, so both sides are the same
    randomised population), over the attribution window; the cost is every message and
    discount of the campaigns on the contactable side (``money``: every campaign's
    measured units)."""
    from retentio.analytics.campaign_effect import measure_rows, window_outcomes, winsorize_per_campaign

    a, runs = stored
    passed = a[a.reason.isna() | a.reason.isin(["global_control", "holdout", "frequency_cap"])]
    if passed.empty:
        return None
    passed = passed.merge(runs[["run_id", "as_of"]], on="run_id")
    first = passed.sort_values("as_of", kind="stable").drop_duplicates("customer_id")
    in_gc = set(passed.customer_id[passed.reason == "global_control"])
    units = pd.DataFrame({
        "customer_id": first.customer_id.to_numpy(), "start": pd.to_datetime(first.as_of).to_numpy(),
        "window_days": params.window_days or ws.settings.campaigns.attribution_days,
        "arm": np.where(first.customer_id.isin(in_gc), "control", "treatment"),
        "campaign": "all campaigns", "run_id": 0,
        "holdout_pct": float(ws.settings.campaigns.global_control_pct), "group": "global control",
    })
    units["unit"] = np.arange(len(units))
    spent = money[money.arm == "treatment"].groupby("customer_id")[
        ["message_sent", "message_cost", "discount_cost", "points_cost", "redeemed"]].sum()
    units = units.join(spent, on="customer_id")
    for column in ("message_sent", "message_cost", "discount_cost", "points_cost", "redeemed"):
        units[column] = units[column].fillna(0)
    units = winsorize_per_campaign(window_outcomes(ws, units, pre_days=params.pre_days), params.winsor_pct)
    return measure_rows(units, options, "group")[0]


__all__ = ["MeasureParams", "Measurement", "measure_campaigns", "units_frame"]
