"""How the follow-up works: SLA metrics of the tasks, and whether following up a
detractor goes with keeping them.

**SLA** (per period of the trigger or closing time, and in total):

* ``opened``: tasks whose trigger falls in the period (the SLA clock starts at the
  trigger, so a task "exists" from then, whenever the sync found it);
* ``closed``: tasks closed (done) in the period;
* ``within_sla``: of those closed in the period, the share closed at or before the due
  time. The closing time is the ``at`` of the "done" entry (when it happened), which the
  service bounds to at most a day before it was recorded and never before the task's
  earlier history, so a late close cannot be dated back into the SLA (see
  :func:`retentio.services.feedback_tasks.change_task`);
* ``median_hours_to_close``: the median of closed − triggered, in calendar hours, of
  the tasks closed in the period (calendar, not business, hours: what the customer
  waited);
* ``overdue_open``: tasks not done and past due at the end of the period (or at as-of).

**Follow-up** (detractors: tasks of trigger ``nps``). A detractor is *followed up in
time* when a person wrote something on the task — a note, or a status change to in
progress or done — at or before its due time. For every detractor task whose outcome
window (``window_days`` after the trigger) has ended by as-of:

* *retained*: a completed order in (trigger, trigger + window], or a subscription
  active at trigger + window;
* *later NPS*: the first NPS answer in that window (its mean, and the share no longer a
  detractor, score ≥ 7, among those who answered).

The two groups are compared as a difference of proportions with a 95 % interval by
Newcombe's hybrid score method (method 10 of Newcombe 1998, built on Wilson's 1927
score intervals for each proportion), which keeps its coverage with small groups and
proportions near 0 or 1 where the Wald interval does not.

This comparison is **observational**: who got followed up in time was not randomised —
busy weeks, the owner's judgement and the customer's value decide it — so a difference
may come from those rather than from the follow-up. A randomised holdout (a
``detractor_followup`` playbook with ``[holdout]``) measures the effect itself.

References: E. B. Wilson (1927), "Probable inference, the law of succession, and
statistical inference", *JASA* 22:209–212; R. G. Newcombe (1998), "Interval estimation
for the difference between independent proportions: comparison of eleven methods",
*Statistics in Medicine* 17:873–890.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

#: the standard normal quantile of a two-sided 95 % interval
Z95 = 1.959963984540054
#: history entries that are not a person acting on the task (an assignment is not yet a contact)
_SYSTEM_KINDS = ("created", "assigned")

CAVEAT = ("Observational, not randomised: who was followed up in time was not chosen at random (workload, the "
          "owner's judgement, the customer's value decide it), so the difference may come from those and not from "
          "the follow-up. Use a detractor_followup playbook with a holdout to measure the effect itself.")

_FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's (1927) score interval for a proportion:
    (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). (nan, nan) for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """p1 − p2 and Newcombe's (1998, method 10) hybrid score interval:
    L = d − √((p1 − l1)² + (u2 − p2)²), U = d + √((u1 − p1)² + (p2 − l2)²), with (l, u)
    each group's Wilson interval. Newcombe's worked example 56/70 − 48/80 gives
    0.2000 (0.0524, 0.3339)."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan, math.nan
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


# ------------------------------------------------------------------------------ SLA
def _sla_numbers(closed: pd.DataFrame) -> dict[str, Any]:
    hours = (closed["closed_at"] - closed["triggered_at"]).dt.total_seconds() / 3600
    on_time = int((closed["closed_at"] <= closed["due_at"]).sum())
    return {"closed": len(closed), "closed_within_sla": on_time,
            "within_sla": on_time / len(closed) if len(closed) else math.nan,
            "median_hours_to_close": float(hours.median()) if len(closed) else math.nan}


def _overdue_open(tasks: pd.DataFrame, at: pd.Timestamp) -> int:
    open_then = (tasks["triggered_at"] < at) & (tasks["closed_at"].isna() | (tasks["closed_at"] > at))
    return int((open_then & (tasks["due_at"] < at)).sum())


def sla_metrics(tasks: pd.DataFrame, as_of_end: dt.datetime, period: str = "month") -> dict[str, Any]:
    """Per period and in total (see the module docstring). ``tasks`` has triggered_at,
    due_at, closed_at (NaT when not done) and status; tasks after ``as_of_end`` are left out."""
    if period not in _FREQ:
        raise ValueError(f"period {period!r}: expected one of {', '.join(_FREQ)}")
    end = pd.Timestamp(as_of_end)
    t = tasks[tasks["triggered_at"] < end].copy()
    t.loc[t["closed_at"] >= end, "closed_at"] = pd.NaT  # not yet closed as of the end
    closed = t[t["closed_at"].notna()]
    rows = []
    if len(t):
        first = t["triggered_at"].min().to_period(_FREQ[period])
        last = (end - pd.Timedelta(microseconds=1)).to_period(_FREQ[period])
        for p in pd.period_range(first, last, freq=_FREQ[period]):
            start, stop = p.start_time, min((p + 1).start_time, end)
            in_closed = closed[(closed["closed_at"] >= start) & (closed["closed_at"] < stop)]
            rows.append({"period_start": start.date().isoformat(),
                         "opened": int(((t["triggered_at"] >= start) & (t["triggered_at"] < stop)).sum()),
                         **_sla_numbers(in_closed), "overdue_open": _overdue_open(t, stop)})
    totals = {"opened": len(t), **_sla_numbers(closed), "open": int(t["closed_at"].isna().sum()),
              "overdue_open": _overdue_open(t, end)}
    return {"period": period, "as_of_end": end.isoformat(), "periods": rows, "totals": totals}


# ------------------------------------------------------------------------------ follow-up
@dataclass(frozen=True)
class FollowupInputs:
    """The customer facts the outcomes read: completed orders (customer_id,
    ordered_at), subscriptions (customer_id, started_at, ended_at), NPS answers
    (customer_id, answered_at, score)."""

    orders: pd.DataFrame
    subscriptions: pd.DataFrame
    nps: pd.DataFrame


def followed_up_at(notes: pd.DataFrame) -> pd.Series:
    """Per task id, the first time a person acted on it (a note or a status change)."""
    acted = notes[~notes["kind"].isin(_SYSTEM_KINDS)]
    return acted.groupby("task_id")["at"].min()


def _outcomes(task: Any, facts: FollowupInputs, window: pd.Timedelta) -> tuple[bool, float | None]:
    start, stop = pd.Timestamp(task.triggered_at), pd.Timestamp(task.triggered_at) + window
    o = facts.orders[facts.orders["customer_id"] == task.customer_id]
    ordered = bool(((o["ordered_at"] > start) & (o["ordered_at"] <= stop)).any())
    s = facts.subscriptions[facts.subscriptions["customer_id"] == task.customer_id]
    active = bool(((s["started_at"] <= stop) & (s["ended_at"].isna() | (s["ended_at"] > stop))).any())
    a = facts.nps[(facts.nps["customer_id"] == task.customer_id) & (facts.nps["answered_at"] > start)
                  & (facts.nps["answered_at"] <= stop)].sort_values("answered_at")
    later = float(a["score"].iloc[0]) if len(a) else None
    return ordered or active, later


def _group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    later = [r["later_nps"] for r in rows if r["later_nps"] is not None]
    return {"tasks": len(rows), "retained": sum(r["retained"] for r in rows),
            "retention_rate": sum(r["retained"] for r in rows) / len(rows) if rows else math.nan,
            "answered_again": len(later), "later_nps_mean": sum(later) / len(later) if later else math.nan,
            "no_longer_detractor": sum(s >= 7 for s in later),
            "no_longer_detractor_rate": sum(s >= 7 for s in later) / len(later) if later else math.nan}


def _difference(a: dict[str, Any], b: dict[str, Any], x: str, n: str) -> dict[str, Any]:
    d, low, high = newcombe(a[x], a[n], b[x], b[n])
    return {"difference": d, "low": low, "high": high, "method": "Newcombe (1998) hybrid score, 95 %"}


def followup_effect(tasks: pd.DataFrame, notes: pd.DataFrame, facts: FollowupInputs, as_of_end: dt.datetime,
                    window_days: int = 90) -> dict[str, Any]:
    """Detractors followed up in time against those not: retention and later NPS within
    ``window_days`` after the trigger, with counts and Newcombe intervals (see the module
    docstring, and its caveat: observational)."""
    window = pd.Timedelta(days=window_days)
    end = pd.Timestamp(as_of_end)
    d = tasks[(tasks["trigger"] == "nps") & (tasks["triggered_at"] + window <= end)]
    first = followed_up_at(notes)
    rows: list[dict[str, Any]] = []
    for task in d.itertuples(index=False):
        acted = first.get(task.id)
        in_time = acted is not None and not pd.isna(acted) and pd.Timestamp(acted) <= pd.Timestamp(task.due_at)
        retained, later = _outcomes(task, facts, window)
        rows.append({"task_id": int(task.id), "customer_id": task.customer_id, "in_time": bool(in_time),
                     "retained": bool(retained), "later_nps": later})
    followed = _group([r for r in rows if r["in_time"]])
    not_followed = _group([r for r in rows if not r["in_time"]])
    return {
        "window_days": window_days,
        "detractor_tasks": len(rows),
        "not_yet_measurable": int(((tasks["trigger"] == "nps") & (tasks["triggered_at"] < end)).sum()) - len(rows),
        "followed_up_in_time": followed,
        "not_followed_up_in_time": not_followed,
        "retention_difference": _difference(followed, not_followed, "retained", "tasks"),
        "no_longer_detractor_difference": _difference(followed, not_followed, "no_longer_detractor",
                                                      "answered_again"),
        "caveat": CAVEAT,
    }


__all__ = ["CAVEAT", "Z95", "FollowupInputs", "followed_up_at", "followup_effect", "newcombe", "sla_metrics",
           "wilson"]
