"""What "churned" means, stated once and carried into every output.

docs/definitions.md ("Churn"): in a non-contractual business a customer is lost when they stop
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

import ibis
import pandas as pd

from retentio.analytics.base import completed_orders, lit_ts, paid_subscriptions
from retentio.data.errors import InvalidParameter, NotLoaded, RetentioError, option

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
            raise InvalidParameter("horizon", self.horizon_days if self.horizon_days <= 0 else self.window_days,
                                   "a positive number of days (the horizon and the activity window)")
        if self.kind == "event" and not self.event_type:
            raise InvalidParameter("event", self.event_type, "the event type that marks activity, such as login")

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
    def for_workspace(ws: Workspace, horizon: int | None, event: str | None) -> LabelSpec:
        """Orders when loaded, else subscriptions; ``event`` picks an event label."""
        window = ws.settings.activity_window_days
        horizon = horizon or window
        if event:
            require_event_type(ws, event)
            return LabelSpec("event", horizon, window, event)
        if ws.is_loaded("orders"):
            return LabelSpec("orders", horizon, window)
        if ws.is_loaded("subscriptions"):
            return LabelSpec("subscriptions", horizon, window)
        raise RetentioError("churn needs orders, subscriptions or events: load them first")


#: event types listed at most when an asked-for type is not loaded (the most frequent first)
SHOWN_EVENT_TYPES = 20


def require_event_type(ws: Workspace, event: str) -> None:
    """Refuse an event label whose type has no event loaded, listing the types there are:
    otherwise every customer would be ineligible and training would blame the length of
    the data."""
    if not ws.is_loaded("events"):
        raise NotLoaded("events are", f"a churn label by {event!r} events")
    e = ws.table("events")
    counts = e.group_by("event_type").agg(n=e.count()).order_by([ibis.desc("n"), "event_type"]).to_pandas()
    if event in set(counts.event_type):
        return
    shown = ", ".join(f"{t} ({int(n):,})" for t, n in counts.head(SHOWN_EVENT_TYPES).itertuples(index=False))
    more = f" and {len(counts) - SHOWN_EVENT_TYPES} more" if len(counts) > SHOWN_EVENT_TYPES else ""
    raise RetentioError(f"no event of type {event!r} is loaded, so it cannot mark activity for the churn label. "
                        f"The event types loaded are: {shown}{more}; use one of them with {option('event', 'TYPE')}")


def _active(ws: Workspace, spec: LabelSpec, lo: pd.Timestamp, hi: pd.Timestamp):
    """Distinct customer_id with the label's activity in [lo, hi): a completed order, or
    an event of the label's type."""
    if spec.kind == "orders":
        t, when = completed_orders(ws), "ordered_at"
    else:
        t, when = ws.table("events"), "occurred_at"
        t = t.filter(t.event_type == spec.event_type)
    return t.filter((t[when] >= lit_ts(lo)) & (t[when] < lit_ts(hi))).select("customer_id").distinct()


def _subscribed(ws: Workspace, at: pd.Timestamp):
    """Distinct customer_id with a paid subscription covering the instant."""
    s, t = paid_subscriptions(ws), lit_ts(at)
    return s.filter((s.started_at <= t) & (s.ended_at.isnull() | (s.ended_at > t))).select("customer_id").distinct()


def eligible(ws: Workspace, cutoff: pd.Timestamp, spec: LabelSpec):
    """(customer_id) of customers eligible at the cutoff, as an Ibis table."""
    cutoff = pd.Timestamp(cutoff)
    if spec.kind == "subscriptions":
        return _subscribed(ws, cutoff)
    return _active(ws, spec, cutoff - pd.Timedelta(days=spec.window_days), cutoff)


def labels(ws: Workspace, cutoff: pd.Timestamp, spec: LabelSpec) -> pd.DataFrame:
    """(customer_id, churned) for the customers eligible at the cutoff."""
    cutoff = pd.Timestamp(cutoff)
    end = cutoff + pd.Timedelta(days=spec.horizon_days)
    el = eligible(ws, cutoff, spec)
    kept = _subscribed(ws, end) if spec.kind == "subscriptions" else _active(ws, spec, cutoff, end)
    k = kept.mutate(stayed=1).rename(_cid="customer_id")
    j = el.left_join(k, el.customer_id == k._cid)
    df = j.select(j.customer_id, churned=j.stayed.isnull().cast("int64")).to_pandas()
    df["customer_id"] = df.customer_id.astype(str)
    return df


__all__ = ["KINDS", "LabelSpec", "eligible", "labels", "require_event_type"]
