"""Follow-up task use cases: the rules (show, write the defaults), the sync that opens
tasks from the workspace's data, the task list, a task's changes (assign, note, start,
done) and the SLA and follow-up metrics. Typed parameters in, plain results out; the
rules are in :mod:`retentio.actions.feedback.task_rules`, the detection and the store in
:mod:`retentio.actions.feedback.tasks`, the metrics in
:mod:`retentio.actions.feedback.task_metrics`.

Times of the business are naive in the workspace's timezone (as the canonical tables
are); "now" is the wall clock converted to that timezone.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from retentio.actions.feedback.task_rules import TRIGGER_KEYS, TaskRules, read_rules, write_default_rules
from retentio.actions.feedback.tasks import TaskInputs, find_candidates, get_task, list_tasks, open_tasks, price
from retentio.data.errors import InvalidParameter

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

STATUSES = ("open", "in_progress", "done")
#: how far before the wall clock a task change may be dated (``--at``): the SLA and the
#: follow-up metrics are measured on that time, so it cannot be rewritten at will
MAX_BACKDATE = dt.timedelta(hours=24)


def local_now(ws: Workspace) -> dt.datetime:
    """The wall clock in the workspace's timezone, naive (as the data's times are)."""
    return dt.datetime.now(ZoneInfo(ws.settings.timezone)).replace(tzinfo=None, microsecond=0)


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


# ------------------------------------------------------------------------------ rules
def task_rules(ws: Workspace) -> tuple[TaskRules, bool]:
    """The rules in effect and whether they are the defaults (no file yet)."""
    return read_rules(ws.path)


def init_rules(ws: Workspace, *, force: bool = False) -> Path:
    """Write the default rules to ``feedback/task_rules.toml`` to be edited."""
    return write_default_rules(ws.path, force=force)


def rules_overview(ws: Workspace, *, init: bool = False, force: bool = False
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The rules in effect (validated), after writing the defaults with ``init``: the
    whole as plain data (``default``, ``written``: the file written or None, the rules
    and the business hours), and one display row per rule with its threshold written
    out (only the keys its trigger reads, e.g. ``max_score=6``)."""
    path = init_rules(ws, force=force) if init else None
    rules, default = task_rules(ws)
    data = {"default": default, "written": str(path) if path else None, **rules.as_dict()}
    rows = [{"rule": name, "trigger": r["trigger"], "enabled": r["enabled"],
             "threshold": ", ".join(f"{k}={v}" for k, v in r.items()
                                    if k in TRIGGER_KEYS[r["trigger"]] and v not in (None, [], ())),
             "owner": r["owner"], "sla_hours": r["sla_hours"], "business_hours": r["business_hours"]}
            for name, r in data["rules"].items()]
    return data, rows


# ------------------------------------------------------------------------------ sync
def _frame(ws: Workspace, table: str, columns: list[str], time_column: str | None = None,
           since: dt.datetime | None = None) -> pd.DataFrame:
    if not ws.is_loaded(table):
        return pd.DataFrame(columns=columns)
    t = ws.table(table)
    if time_column and since is not None:
        t = t.filter(t[time_column] >= since)
    cols = [t[c].cast("float64").name(c) if t[c].type().is_decimal() else t[c] for c in columns]
    return t.select(*cols).to_pandas()


def _snapshots(ws: Workspace, day: dt.date, since: dt.date) -> list[pd.DataFrame]:
    """The score snapshots up to ``day``: those from ``since`` on, and the one before
    (to tell who *entered* the high band)."""
    from retentio.data.store.registry import snapshot_scores, snapshots

    found = sorted((s for s in snapshots(ws.store) if s.as_of <= day), key=lambda s: (s.as_of, s.id))
    keep = [s for s in found if s.as_of >= since]
    before = [s for s in found if s.as_of < since]
    frames = []
    for snap in before[-1:] + keep:
        frame = snapshot_scores(ws.store, snap)[["customer_id", "band", "value_at_risk"]]
        frame.attrs.update({"as_of": snap.as_of, "id": snap.id})
        frames.append(frame)
    return frames


def customer_values(ws: Workspace, customers: list[str], day: dt.date) -> dict[str, tuple[float, str]]:
    """The priority value of each customer as of the end of ``day``: value at risk from
    the newest snapshot, else completed-order revenue of the last 365 days, else 12 ×
    current MRR (see :mod:`retentio.actions.feedback.tasks`)."""
    import ibis

    from retentio.analytics.base import completed_orders
    from retentio.data.store.registry import snapshot_scores, snapshots

    values: dict[str, tuple[float, str]] = {}
    if not customers:
        return values
    end = _end_of(day)
    wanted = set(customers)
    ids = ibis.memtable(pd.DataFrame({"cid": sorted(wanted)}))
    if ws.is_loaded("subscriptions"):
        s = ws.table("subscriptions")
        s = s.filter((s.started_at < end) & (s.ended_at.isnull() | (s.ended_at >= end)))
        s = s.join(ids, s.customer_id.cast("string") == ids.cid)
        for row in s.group_by("cid").agg(v=s.mrr.cast("float64").sum()).to_pandas().itertuples(index=False):
            values[str(row.cid)] = (12 * float(row.v or 0.0), "mrr_12m")
    if ws.is_loaded("orders"):
        o = completed_orders(ws)
        o = o.filter((o.ordered_at < end) & (o.ordered_at >= end - dt.timedelta(days=365)))
        o = o.join(ids, o.customer_id.cast("string") == ids.cid)
        for row in o.group_by("cid").agg(v=o.amount.cast("float64").sum()).to_pandas().itertuples(index=False):
            values[str(row.cid)] = (float(row.v or 0.0), "revenue_12m")
    newest = [s for s in snapshots(ws.store) if s.as_of <= day]
    if newest:
        snap = max(newest, key=lambda s: (s.as_of, s.id))
        scores = snapshot_scores(ws.store, snap)
        scores = scores[scores.customer_id.astype(str).isin(wanted) & scores.value_at_risk.notna()]
        for cid, v in zip(scores.customer_id.astype(str), scores.value_at_risk):
            values[cid] = (float(v), "value_at_risk")
    return values


def sync_tasks(ws: Workspace, as_of: dt.date | None = None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Open a task for every trigger occurrence the rules find as of the end of
    ``as_of`` (default: today, workspace time) that has none yet. Re-running over the
    same data opens nothing new. Returns the counts per rule and in total.

    Survey answers taken through links live in the store until
    :func:`retentio.services.surveys.sync_answers` appends them to the canonical
    ``surveys`` table, which is what the rules read; so that is run first, and a
    detractor answering by link gets a task. Should it fail, the task sync still runs on
    the table as it is, and ``survey_answers`` says what went wrong (``error``)."""
    now = now or local_now(ws)
    day = as_of or now.date()
    if day > now.date():
        raise InvalidParameter("as_of", day.isoformat(), f"a day up to today ({now.date().isoformat()})")
    answers = _sync_survey_answers(ws)
    rules, default = task_rules(ws)
    enabled = rules.enabled()
    end = _end_of(day)
    since = end - dt.timedelta(days=max((r.lookback_days for r in enabled.values()), default=1))
    triggers = {r.trigger for r in enabled.values()}
    inputs = TaskInputs()
    if triggers & {"nps", "csat", "ces"}:
        inputs.surveys = _frame(ws, "surveys", ["customer_id", "answered_at", "kind", "score", "comment"],
                                "answered_at", since)
    if "ticket" in triggers:
        inputs.tickets = _frame(ws, "tickets", ["customer_id", "opened_at", "topic", "satisfaction"],
                                "opened_at", since)
    if "cancellation" in triggers:
        inputs.subscriptions = _frame(ws, "subscriptions", ["subscription_id", "customer_id", "started_at",
                                                            "ended_at", "cancel_reason", "churn_type"],
                                      "ended_at", since)
    if "churn_risk" in triggers:
        inputs.snapshots = _snapshots(ws, day, since.date())
    candidates = find_candidates(rules, inputs, day, now)
    candidates = price(candidates, customer_values(ws, sorted({c.customer_id for c in candidates}), day))
    counts = open_tasks(ws.store, candidates, at=min(now, end))
    per_rule = {name: sum(c.rule == name for c in candidates) for name in enabled}
    return {"as_of": day.isoformat(), "rules": "default" if default else rules.path, **counts,
            "found_per_rule": per_rule, "survey_answers": answers}


def _sync_survey_answers(ws: Workspace) -> dict[str, Any]:
    """Link answers into the surveys table before the rules read it: the counts, or
    ``{"error": ...}`` when that failed (the task sync goes on without them)."""
    from retentio.services.surveys import sync_answers

    try:
        return dict(sync_answers(ws))
    except Exception as exc:  # reported, not raised: the tasks of the data already there still open
        return {"error": f"{type(exc).__name__}: {exc}"}


# ------------------------------------------------------------------------------ tasks
def tasks(ws: Workspace, *, status: str | None = None, overdue: bool = False, customer: str | None = None,
          now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Tasks by priority (value at stake, highest first), then due time."""
    if status is not None and status not in STATUSES:
        raise InvalidParameter("status", status, f"one of {', '.join(STATUSES)}")
    return list_tasks(ws.store, status=status, overdue=overdue, customer=customer, now=now or local_now(ws))


def task(ws: Workspace, task_id: int, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """One task with its history (TaskNotFound: no such id)."""
    return get_task(ws.store, task_id, now=now or local_now(ws))


def change_task(ws: Workspace, task_id: int, *, author: str, at: dt.datetime | None = None,
                assign: str | None = None, note: str | None = None, status: str | None = None,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """Assign, note, start or close a task; each change is appended to its history.

    ``at`` (default: ``now``, the wall clock in workspace time) is when it happened; the
    SLA and the follow-up metrics are measured on it, so it is bounded: not in the future
    (a few minutes of clock skew aside), at most :data:`MAX_BACKDATE` before ``now``
    (a change is recorded soon after it happened, not reconstructed weeks later), and
    not before the task's latest history entry (see
    :func:`retentio.actions.feedback.tasks.update_task`)."""
    from retentio.actions.feedback.tasks import update_task

    now = now or local_now(ws)
    if at is not None and at > now + dt.timedelta(minutes=5):  # a few minutes of clock skew are fine
        raise InvalidParameter("at", at.isoformat(), f"a time up to now ({now.isoformat(timespec='minutes')}): "
                                                     "a change is recorded when it happened, not planned")
    if at is not None and at < now - MAX_BACKDATE:
        hours = MAX_BACKDATE.total_seconds() / 3600
        raise InvalidParameter("at", at.isoformat(),
                               f"a time at most {hours:g} hours before now (from "
                               f"{(now - MAX_BACKDATE).isoformat(timespec='minutes')}): the SLA is measured on it, "
                               "so a change is recorded within a day of happening")
    return update_task(ws.store, task_id, author=author, at=at or now, assign=assign, note=note, status=status)


# ------------------------------------------------------------------------------ metrics
def sla_report(ws: Workspace, *, period: str = "month", as_of: dt.date | None = None,
               window_days: int = 90) -> dict[str, Any]:
    """SLA metrics per period and the follow-up comparison of detractors (see
    :mod:`retentio.actions.feedback.task_metrics`)."""
    from retentio.actions.feedback.task_metrics import FollowupInputs, followup_effect, sla_metrics
    from retentio.actions.feedback.tasks import task_frames
    from retentio.analytics.base import completed_orders

    if period not in ("week", "month", "quarter", "year"):
        raise InvalidParameter("period", period, "week, month, quarter or year")
    if window_days < 1:
        raise InvalidParameter("window_days", window_days, "a positive number of days")
    now = local_now(ws)
    end = _end_of(as_of) if as_of else now
    all_tasks, notes = task_frames(ws.store)
    customers = sorted(set(all_tasks.loc[all_tasks["trigger"] == "nps", "customer_id"].astype(str)))
    ids = pd.DataFrame({"customer_id": customers})
    facts = FollowupInputs(pd.DataFrame(columns=["customer_id", "ordered_at"]),
                           pd.DataFrame(columns=["customer_id", "started_at", "ended_at"]),
                           pd.DataFrame(columns=["customer_id", "answered_at", "score"]))
    if customers:
        import ibis

        wanted = ibis.memtable(ids.rename(columns={"customer_id": "cid"}))

        def of(t: Any, columns: list[str]) -> pd.DataFrame:
            t = t.join(wanted, t.customer_id.cast("string") == wanted.cid)
            frame = t.select(*[t[c] for c in columns]).to_pandas()
            frame["customer_id"] = frame["customer_id"].astype(str)
            return frame

        if ws.is_loaded("orders"):
            facts = FollowupInputs(of(completed_orders(ws), ["customer_id", "ordered_at"]), facts.subscriptions,
                                   facts.nps)
        if ws.is_loaded("subscriptions"):
            facts = FollowupInputs(facts.orders, of(ws.table("subscriptions"), ["customer_id", "started_at",
                                                                                  "ended_at"]), facts.nps)
        if ws.is_loaded("surveys"):
            s = ws.table("surveys")
            s = s.filter(s.kind == "nps")
            facts = FollowupInputs(facts.orders, facts.subscriptions, of(s, ["customer_id", "answered_at", "score"]))
    return {**sla_metrics(all_tasks, end, period),
            "followup": followup_effect(all_tasks, notes, facts, end, window_days)}


# ------------------------------------------------------------------------------ the inbox
#: the views of the task inbox: everything, the user's own, their role's, the overdue ones
INBOX_VIEWS = ("all", "mine", "role", "overdue")


def inbox(ws: Workspace, view: str = "all", *, user: str | None = None, role: str | None = None,
          status: str | None = None, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The task inbox of one person, in the list's order (value first, then due time):
    ``mine`` — assigned to ``user``; ``role`` — owned by ``role`` (the rule's owner);
    ``overdue`` — not done and past due at ``now``; ``all`` — every task. ``status``
    narrows any view further."""
    if view not in INBOX_VIEWS:
        raise InvalidParameter("view", view, " | ".join(INBOX_VIEWS))
    rows = tasks(ws, status=status, overdue=view == "overdue", now=now)
    if view == "mine":
        rows = [r for r in rows if user is not None and r["assignee"] == user]
    elif view == "role":
        rows = [r for r in rows if role is not None and r["owner_role"] == role]
    return rows


__all__ = ["INBOX_VIEWS", "MAX_BACKDATE", "change_task", "customer_values", "inbox", "init_rules", "local_now", "rules_overview",
           "sla_report", "sync_tasks", "task", "task_rules", "tasks"]
