"""The audience of a campaign: what is known about each triggered customer (customer
fields and attributes, RFM segment, orders, churn band, CLV, value), the playbook's
audience filters and exclusions, and the expected value of a message.

Only what the playbook asks for is computed: the churn snapshot is read for churn
bands, value at risk or a churn-risk trigger; CLV and P(alive) are fitted (on the orders
before ``as_of``) only when a filter names them. The **expected value** of a message is
``expected_uplift`` × the customer's value: value at risk when a snapshot was read, else
CLV when it was fitted, else their average order value — the number the frequency cap
compares when two campaigns want the same customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retentio.actions.playbooks import Playbook, PlaybookError
from retentio.analytics.base import lit_ts

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace


@dataclass(frozen=True)
class Scores:
    """The churn score snapshot a campaign read: its scores and where they came from."""

    frame: pd.DataFrame
    snapshot_id: int | None
    model_version: int | None


def needs_scores(pb: Playbook) -> bool:
    a = pb.audience
    return pb.kind == "churn_risk" or bool(a.churn_bands) or a.min_value_at_risk is not None


def needs_value(pb: Playbook) -> bool:
    return pb.audience.min_clv is not None or pb.audience.min_p_alive is not None


def facts(ws: Workspace, customers: pd.Series, instant: pd.Timestamp, pb: Playbook,
          scores: Scores | None) -> pd.DataFrame:
    """One row per customer in ``customers``: customer fields, segment, r/f/m, orders,
    last order, key customer, and (when read) churn band, probability, value at risk,
    CLV and P(alive); ``value`` is the basis of the expected value."""
    from retentio.analytics.segments import rfm_expr

    ids = pd.DataFrame({"customer_id": customers.astype(str).unique()})
    if ws.is_loaded("customers"):
        c = ws.table("customers").to_pandas()
        c["customer_id"] = c.customer_id.astype(str)
        out = ids.merge(c, on="customer_id", how="left")
    else:
        out = ids
    for column in ("email", "phone", "consent_email", "consent_sms"):
        if column not in out:
            out[column] = None
    if ws.is_loaded("orders"):
        r = rfm_expr(ws, instant, ws.settings.activity_window_days).to_pandas()
        r["customer_id"] = r.customer_id.astype(str)
        r = r.rename(columns={"frequency": "orders", "monetary": "revenue", "last_at": "last_order_at"})
        out = out.merge(r[["customer_id", "segment", "orders", "revenue", "recency_days", "last_order_at",
                           "key_customer", "r_score", "f_score", "m_score"]], on="customer_id", how="left")
    else:
        out = out.assign(segment=None, orders=0, revenue=0.0, recency_days=np.nan, last_order_at=pd.NaT,
                         key_customer=False)
    out["orders"] = out.orders.fillna(0).astype("int64")
    out["revenue"] = out.revenue.astype("float64").fillna(0.0)
    out["key_customer"] = out.key_customer.fillna(False).astype(bool)
    out["aov"] = np.where(out.orders > 0, out.revenue / out.orders.clip(lower=1), 0.0)
    out["churn_band"] = None
    out["churn_probability"] = np.nan
    out["value_at_risk"] = np.nan
    basis = out.aov.to_numpy(dtype="float64")
    if scores is not None:
        s = scores.frame[["customer_id", "band", "churn_probability", "value_at_risk"]].copy()
        s["customer_id"] = s.customer_id.astype(str)
        out = out.drop(columns=["churn_band", "churn_probability", "value_at_risk"]).merge(
            s.rename(columns={"band": "churn_band"}), on="customer_id", how="left")
        basis = out.value_at_risk.fillna(0.0).to_numpy(dtype="float64")
    out["clv"] = np.nan
    out["p_alive"] = np.nan
    if needs_value(pb):
        from retentio.analytics.clv.from_orders import value_customers

        v = value_customers(ws, calibration_end=(instant - pd.Timedelta(days=1)).date(), fit_sample=200_000).frame
        v["customer_id"] = v.customer_id.astype(str)
        out = out.drop(columns=["clv", "p_alive"]).merge(v[["customer_id", "clv", "p_alive"]], on="customer_id",
                                                         how="left")
        if scores is None:
            basis = out.clv.fillna(0.0).to_numpy(dtype="float64")
    out["value"] = basis
    out["expected_value"] = pb.expected_uplift * np.maximum(basis, 0.0)
    return out


def audience_mask(frame: pd.DataFrame, pb: Playbook) -> tuple[pd.Series, pd.Series]:
    """(who passes the audience filters, the first filter each other customer fails)."""
    a = pb.audience
    why = pd.Series([None] * len(frame), index=frame.index, dtype=object)

    def fail(mask: pd.Series, reason: str) -> None:
        why[mask & why.isna()] = reason

    if a.segments:
        fail(~frame.segment.isin(a.segments), "not in the segments")
    if a.churn_bands:
        fail(~frame.churn_band.isin(a.churn_bands), "not in the churn bands")
    if a.key_customers_only:
        fail(~frame.key_customer, "not a key customer")
    if a.min_orders is not None:
        fail(frame.orders < a.min_orders, "too few orders")
    if a.max_orders is not None:
        fail(frame.orders > a.max_orders, "too many orders")
    if a.min_clv is not None:
        fail(~(frame.clv >= a.min_clv), "CLV below the minimum")
    if a.min_p_alive is not None:
        fail(~(frame.p_alive >= a.min_p_alive), "P(alive) below the minimum")
    if a.min_value_at_risk is not None:
        fail(~(frame.value_at_risk >= a.min_value_at_risk), "value at risk below the minimum")
    if a.last_order_after:
        fail(~(pd.to_datetime(frame.last_order_at) >= pd.Timestamp(a.last_order_after)), "last order too long ago")
    if a.last_order_before:
        fail(~(pd.to_datetime(frame.last_order_at) < pd.Timestamp(a.last_order_before)), "last order too recent")
    for column, allowed in a.where.items():
        if column not in frame:
            raise PlaybookError(pb.path, f"no customer column {column!r} (known: "
                                         f"{', '.join(sorted(c for c in frame.columns if not c.startswith('_')))})",
                                f"[audience] where.{column}")
        fail(~frame[column].astype(str).isin([str(v) for v in allowed]), f"{column} not in the allowed values")
    return why.isna(), why


def exclusions(ws: Workspace, frame: pd.DataFrame, pb: Playbook, instant: pd.Timestamp,
               recently_messaged: set[str]) -> pd.Series:
    """The exclusion each customer falls under (None for none)."""
    x = pb.exclude
    why = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    if x.ordered_within_days:
        from retentio.analytics.base import completed_orders

        o = completed_orders(ws)
        since = instant - pd.Timedelta(days=x.ordered_within_days)
        recent = set(o.filter((o.ordered_at >= lit_ts(since)) & (o.ordered_at < lit_ts(instant)))
                     .select("customer_id").distinct().to_pandas().customer_id.astype(str))
        why[frame.customer_id.isin(recent) & why.isna()] = "ordered recently"
    if x.other_campaign_within_days:
        why[frame.customer_id.isin(recently_messaged) & why.isna()] = "in another campaign recently"
    if x.customers_file:
        listed = read_customer_list(Path(pb.path).parent.parent, x.customers_file, pb)
        why[frame.customer_id.isin(listed) & why.isna()] = "on the exclusion list"
    return why


def read_customer_list(workspace: Path, name: str, pb: Playbook) -> set[str]:
    """Customer ids from a file (one per line, or a CSV with a customer_id column)."""
    path = Path(name) if Path(name).is_absolute() else Path(workspace) / name
    if not path.exists():
        raise PlaybookError(pb.path, f"no such file {path}", "[exclude] customers_file")
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if lines and "," in lines[0] or (lines and lines[0].lower() == "customer_id"):
        header = [h.strip().lower() for h in lines[0].split(",")]
        if "customer_id" not in header:
            raise PlaybookError(pb.path, f"{path} has no customer_id column (columns: {', '.join(header)})",
                                "[exclude] customers_file")
        k = header.index("customer_id")
        return {line.split(",")[k].strip() for line in lines[1:]}
    return set(lines)


__all__ = ["Scores", "audience_mask", "exclusions", "facts", "needs_scores", "needs_value", "read_customer_list"]
