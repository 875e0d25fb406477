"""What "churned" means, stated once and carried into every output.

SPEC.md ("Definitions"): in a non-contractual business a customer is lost when they stop
buying for longer than the activity window; in a contractual one when their subscription
ends. For a cutoff c and horizon H:

* ``orders`` — eligible: a completed order in [c − W, c) (active at c); churned: no
  completed order in [c, c + H);
* ``subscriptions`` — eligible: a paid, non-trial subscription covers c; churned: none
  covers c + H;
* ``event`` — eligible: an event of the type in [c − W, c); churned: none in [c, c + H).

Only the label looks at data on or after c.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import pandas as pd

from retentio.analytics.base import completed_orders, lit_ts, paid_subscriptions
from retentio.data.errors import RetentioError

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

KINDS = ("orders", "subscriptions", "event")


@dataclass(frozen=True)
class LabelSpec:
    kind: str = "orders"
    horizon_days: int = 90
    window_days: int = 90
    event_type: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RetentioError(f"unknown label kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.horizon_days <= 0 or self.window_days <= 0:
            raise RetentioError("--horizon and the activity window must be positive numbers of days")
        if self.kind == "event" and not self.event_type:
            raise RetentioError("an event label needs the event type (--event login)")

    def describe(self) -> str:
        h, w = self.horizon_days, self.window_days
        if self.kind == "orders":
            return (f"customers with a completed order in the {w} days before the cutoff who make no "
                    f"completed order in the {h} days after it")
        if self.kind == "subscriptions":
            return f"paying subscribers at the cutoff with no paid subscription {h} days later"
        return (f"customers with a '{self.event_type}' event in the {w} days before the cutoff and none "
                f"in the {h} days after it")

    def as_dict(self) -> dict:
        return {**asdict(self), "definition": self.describe()}

    @staticmethod
    def for_workspace(ws: "Workspace", horizon: int | None, event: str | None) -> "LabelSpec":
        """Orders when loaded, else subscriptions; ``event`` picks an event label."""
        window = ws.settings.activity_window_days
        horizon = horizon or window
        if event:
            return LabelSpec("event", horizon, window, event)
        if ws.is_loaded("orders"):
            return LabelSpec("orders", horizon, window)
        if ws.is_loaded("subscriptions"):
            return LabelSpec("subscriptions", horizon, window)
        raise RetentioError("churn needs orders, subscriptions or events: load them first")


def eligible(ws: "Workspace", cutoff: pd.Timestamp, spec: LabelSpec):
    """(customer_id) of customers eligible at the cutoff, as an Ibis table."""
    c = lit_ts(cutoff)
    start = lit_ts(pd.Timestamp(cutoff) - pd.Timedelta(days=spec.window_days))
    if spec.kind == "orders":
        o = completed_orders(ws)
        return o.filter((o.ordered_at >= start) & (o.ordered_at < c)).select("customer_id").distinct()
    if spec.kind == "subscriptions":
        s = paid_subscriptions(ws)
        return s.filter((s.started_at <= c) & (s.ended_at.isnull() | (s.ended_at > c))).select(
            "customer_id").distinct()
    e = ws.table("events")
    return e.filter((e.event_type == spec.event_type) & (e.occurred_at >= start) & (e.occurred_at < c)).select(
        "customer_id").distinct()


def labels(ws: "Workspace", cutoff: pd.Timestamp, spec: LabelSpec) -> pd.DataFrame:
    """(customer_id, churned) for the customers eligible at the cutoff."""
    cutoff = pd.Timestamp(cutoff)
    c = lit_ts(cutoff)
    end = lit_ts(cutoff + pd.Timedelta(days=spec.horizon_days))
    el = eligible(ws, cutoff, spec)
    if spec.kind == "orders":
        o = completed_orders(ws)
        kept = o.filter((o.ordered_at >= c) & (o.ordered_at < end)).select("customer_id").distinct()
    elif spec.kind == "subscriptions":
        s = paid_subscriptions(ws)
        kept = s.filter((s.started_at <= end) & (s.ended_at.isnull() | (s.ended_at > end))).select(
            "customer_id").distinct()
    else:
        e = ws.table("events")
        kept = e.filter((e.event_type == spec.event_type) & (e.occurred_at >= c) & (e.occurred_at < end)).select(
            "customer_id").distinct()
    kept = kept.mutate(stayed=1)
    k = kept.rename(_cid="customer_id")
    j = el.left_join(k, el.customer_id == k._cid)
    df = j.select(j.customer_id, churned=j.stayed.isnull().cast("int64")).to_pandas()
    df["customer_id"] = df.customer_id.astype(str)
    return df


__all__ = ["KINDS", "LabelSpec", "eligible", "labels"]
