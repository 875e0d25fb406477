"""Follow-up tasks: find the trigger occurrences the rules describe, open one task per
occurrence (once, however often the sync runs), and keep each task's history.

The detection is pure (pandas frames in, :class:`Candidate` rows out) so it is tested
on hand-made rows; the store functions write and read ``feedback_tasks`` and
``feedback_task_notes`` (:mod:`retentio.data.store.task_tables`).

Priority is money first: a task's ``value`` is the customer's value at risk from the
newest churn score snapshot when there is one (probability × value, what losing them
costs), else their completed-order revenue of the last 12 months, else 12 × their
current MRR — the first the workspace has (``value_basis`` says which). Tasks are
listed by value (highest first), then by due time (earliest first).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from retentio.actions.feedback.task_rules import Rule, TaskRules, due_time
from retentio.data.errors import RetentioError

if TYPE_CHECKING:
    from retentio.data.store import Store

#: the author of what the sync writes
SYNC_AUTHOR = "sync"


class TaskNotFound(RetentioError):
    """A task id that does not exist."""

    def __init__(self, task_id: int):
        self.task_id = task_id
        super().__init__(f"no follow-up task {task_id}: see `retentio feedback tasks` for the open ones")


class TaskRefused(RetentioError):
    """A change a task cannot take (e.g. starting a task that is done)."""


@dataclass(frozen=True)
class Candidate:
    """A trigger occurrence that a rule turns into a task."""

    rule: str
    trigger: str
    customer_id: str
    occurrence: str
    source: dict[str, Any]
    triggered_at: dt.datetime
    due_at: dt.datetime
    owner_role: str
    value: float = 0.0
    value_basis: str = "none"


@dataclass
class TaskInputs:
    """What the rules read, as frames (missing tables are empty frames).

    * ``surveys``: customer_id, answered_at, kind, score, comment
    * ``tickets``: customer_id, opened_at, topic, satisfaction
    * ``subscriptions``: subscription_id, customer_id, started_at, ended_at, cancel_reason, churn_type
    * ``snapshots``: one frame per stored score snapshot, oldest first, each with
      customer_id, band, value_at_risk, and the snapshot's ``as_of`` (a date) and ``id``
      in ``frame.attrs``
    * ``values``: customer_id → (value, basis) for the priority
    """

    surveys: pd.DataFrame = field(default_factory=pd.DataFrame)
    tickets: pd.DataFrame = field(default_factory=pd.DataFrame)
    subscriptions: pd.DataFrame = field(default_factory=pd.DataFrame)
    snapshots: list[pd.DataFrame] = field(default_factory=list)
    values: dict[str, tuple[float, str]] = field(default_factory=dict)


def _stamp(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


def _plain(value: Any) -> Any:
    """A JSON-safe value: None for missing, Python scalars, ISO times."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _naive(value: Any) -> dt.datetime:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.to_pydatetime()


def _contains_any(text: Any, words: Sequence[str]) -> bool:
    if not isinstance(text, str):
        return False
    low = text.casefold()
    return any(w.casefold() in low for w in words)


def _in_window(times: pd.Series, start: dt.datetime, end: dt.datetime) -> pd.Series:
    t = pd.to_datetime(times)
    return (t >= pd.Timestamp(start)) & (t < pd.Timestamp(end))


def _survey_candidates(name: str, rule: Rule, rules: TaskRules, surveys: pd.DataFrame, start: dt.datetime,
                       end: dt.datetime) -> list[Candidate]:
    if surveys.empty:
        return []
    s = surveys[(surveys["kind"].astype(str).str.lower() == rule.trigger) & surveys["customer_id"].notna()]
    s = s[_in_window(s["answered_at"], start, end)]
    if rule.trigger == "ces":
        s = s[s["score"].astype(float) >= float(rule.min_score or 0)]
    else:
        s = s[s["score"].astype(float) <= float(rule.max_score if rule.max_score is not None else -1)]
    out = []
    for row in s.itertuples(index=False):
        at = _naive(row.answered_at)
        out.append(Candidate(
            name, rule.trigger, str(row.customer_id), f"{rule.trigger}@{_stamp(at)}",
            {"table": "surveys", "kind": rule.trigger, "answered_at": _plain(at), "score": _plain(row.score),
             "comment": _plain(getattr(row, "comment", None))},
            at, due_time(rule, rules, at), rule.owner))
    return out


def _ticket_candidates(name: str, rule: Rule, rules: TaskRules, tickets: pd.DataFrame, start: dt.datetime,
                       end: dt.datetime) -> list[Candidate]:
    if tickets.empty:
        return []
    t = tickets[tickets["customer_id"].notna() & _in_window(tickets["opened_at"], start, end)]
    out = []
    for row in t.itertuples(index=False):
        topic = getattr(row, "topic", None)
        satisfaction = getattr(row, "satisfaction", None)
        complaint = bool(rule.topics) and _contains_any(topic, rule.topics)
        unhappy = (rule.max_satisfaction is not None and satisfaction is not None and satisfaction == satisfaction
                   and float(satisfaction) <= rule.max_satisfaction)
        if not (complaint or unhappy):
            continue
        at = _naive(row.opened_at)
        out.append(Candidate(
            name, "ticket", str(row.customer_id), f"ticket@{_stamp(at)}",
            {"table": "tickets", "opened_at": _plain(at), "topic": _plain(topic),
             "satisfaction": _plain(satisfaction), "matched": "topic" if complaint else "satisfaction"},
            at, due_time(rule, rules, at), rule.owner))
    return out


def _cancellation_candidates(name: str, rule: Rule, rules: TaskRules, subs: pd.DataFrame, start: dt.datetime,
                             end: dt.datetime, now: dt.datetime) -> list[Candidate]:
    if subs.empty:
        return []
    s = subs[subs["ended_at"].notna() & subs["cancel_reason"].notna()]
    s = s[s["cancel_reason"].astype(str).str.strip() != ""]
    s = s[pd.to_datetime(s["started_at"]) < pd.Timestamp(end)]
    ended = pd.to_datetime(s["ended_at"])
    # ended inside the look-back window, or a cancellation that runs to a later end of term
    # (the best moment to act: the customer is still there)
    s = s[(ended >= pd.Timestamp(start))]
    out = []
    for row in s.itertuples(index=False):
        kind = getattr(row, "churn_type", None)
        if isinstance(kind, str) and kind not in rule.churn_types:
            continue
        if rule.reasons and not _contains_any(row.cancel_reason, rule.reasons):
            continue
        ended_at = _naive(row.ended_at)
        # a future end was announced before it: the task starts when the sync first sees it
        at = ended_at if ended_at < end else min(now, end)
        out.append(Candidate(
            name, "cancellation", str(row.customer_id), f"cancellation@{row.subscription_id}",
            {"table": "subscriptions", "subscription_id": _plain(row.subscription_id), "ended_at": _plain(ended_at),
             "cancel_reason": _plain(row.cancel_reason), "churn_type": _plain(kind)},
            at, due_time(rule, rules, at), rule.owner))
    return out


def _newest_per_day(snapshots: list[pd.DataFrame]) -> list[pd.DataFrame]:
    by_day: dict[dt.date, pd.DataFrame] = {}
    for frame in sorted(snapshots, key=lambda f: (f.attrs["as_of"], f.attrs.get("id", 0))):
        by_day[frame.attrs["as_of"]] = frame
    return [by_day[d] for d in sorted(by_day)]


def _churn_candidates(name: str, rule: Rule, rules: TaskRules, snapshots: list[pd.DataFrame], start: dt.datetime,
                      end: dt.datetime) -> list[Candidate]:
    """Customers high in a snapshot and not high in the one before (a first snapshot:
    every high customer enters), valuable enough (top share, minimum value)."""
    days = [f for f in _newest_per_day(snapshots) if pd.Timestamp(f.attrs["as_of"]) < pd.Timestamp(end)]
    out = []
    previous: pd.DataFrame | None = None
    for frame in days:
        day = pd.Timestamp(frame.attrs["as_of"]).to_pydatetime()
        if day >= start:
            was_high = set() if previous is None else set(
                previous.loc[previous["band"] == "high", "customer_id"].astype(str))
            value = frame["value_at_risk"].astype(float).fillna(0.0)
            keep = (frame["band"] == "high") & ~frame["customer_id"].astype(str).isin(was_high)
            if rule.top_share is not None:
                # rank among the whole snapshot: "high-value" is relative to everyone scored
                n = math.ceil(rule.top_share * len(frame))
                rank = value.rank(ascending=False, method="first")
                keep &= rank <= n
            if rule.min_value is not None:
                keep &= value >= rule.min_value
            for row in frame[keep].itertuples(index=False):
                v = 0.0 if row.value_at_risk is None or row.value_at_risk != row.value_at_risk \
                    else float(row.value_at_risk)
                out.append(Candidate(
                    name, "churn_risk", str(row.customer_id), f"churn_risk@{day.date().isoformat()}",
                    {"table": "customer_scores", "snapshot_id": _plain(frame.attrs.get("id")),
                     "as_of": day.date().isoformat(), "band": "high", "value_at_risk": v},
                    day, due_time(rule, rules, day), rule.owner, v, "value_at_risk"))
        previous = frame
    return out


def find_candidates(rules: TaskRules, inputs: TaskInputs, as_of: dt.date, now: dt.datetime | None = None
                    ) -> list[Candidate]:
    """Every occurrence the enabled rules turn into a task as of the end of ``as_of``
    (workspace time), inside each rule's look-back window; one per (customer,
    occurrence) — the first rule in the file wins when two match the same one."""
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    now = min(now or end, end)
    found: dict[tuple[str, str], Candidate] = {}
    for name, rule in rules.enabled().items():
        start = end - dt.timedelta(days=rule.lookback_days)
        if rule.trigger in ("nps", "csat", "ces"):
            got = _survey_candidates(name, rule, rules, inputs.surveys, start, end)
        elif rule.trigger == "ticket":
            got = _ticket_candidates(name, rule, rules, inputs.tickets, start, end)
        elif rule.trigger == "cancellation":
            got = _cancellation_candidates(name, rule, rules, inputs.subscriptions, start, end, now)
        else:
            got = _churn_candidates(name, rule, rules, inputs.snapshots, start, end)
        for c in got:
            found.setdefault((c.customer_id, c.occurrence), c)
    return price(sorted(found.values(), key=lambda c: (c.triggered_at, c.customer_id, c.occurrence)), inputs.values)


def price(candidates: list[Candidate], values: dict[str, tuple[float, str]]) -> list[Candidate]:
    """The candidates with their priority value (customer_id → (value, basis)); a
    churn-risk task keeps the value at risk of the snapshot that opened it."""
    out = []
    for c in candidates:
        if c.trigger != "churn_risk" and c.customer_id in values:
            value, basis = values[c.customer_id]
            c = Candidate(**{**asdict(c), "value": max(0.0, float(value)), "value_basis": basis})
        out.append(c)
    return out


# ------------------------------------------------------------------------------ the store
def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def open_tasks(store: Store, candidates: Iterable[Candidate], *, at: dt.datetime) -> dict[str, int]:
    """Open a task for each candidate that has none yet (``at``: the sync's business
    time, written on the "created" entry). Returns how many were found, opened and
    already there. The unique constraint makes a concurrent second sync fail instead of
    duplicating; it is then retried once and finds everything there."""
    from sqlalchemy.exc import IntegrityError

    wanted = list(candidates)
    try:
        return _open(store, wanted, at)
    except IntegrityError:
        return _open(store, wanted, at)


def _open(store: Store, wanted: list[Candidate], at: dt.datetime) -> dict[str, int]:
    from sqlalchemy import select

    from retentio.data.store.task_tables import FeedbackTask, FeedbackTaskNote

    opened = 0
    with store.session() as s:
        customers = sorted({c.customer_id for c in wanted})
        have: set[tuple[str, str]] = set()
        for i in range(0, len(customers), 500):  # bound the IN list
            have |= {(str(a), str(b)) for a, b in s.execute(
                select(FeedbackTask.customer_id, FeedbackTask.occurrence).where(
                    FeedbackTask.customer_id.in_(customers[i:i + 500])))}
        created = _utc_now()
        for c in wanted:
            if (c.customer_id, c.occurrence) in have:
                continue
            task = FeedbackTask(rule=c.rule, trigger=c.trigger, customer_id=c.customer_id, occurrence=c.occurrence,
                                source=c.source, triggered_at=c.triggered_at, due_at=c.due_at, value=c.value,
                                value_basis=c.value_basis, owner_role=c.owner_role, assignee=None, status="open",
                                closed_at=None, created_at=created)
            s.add(task)
            s.flush()
            s.add(FeedbackTaskNote(task_id=task.id, kind="created", at=max(at, c.triggered_at), author=SYNC_AUTHOR,
                                   text=f"opened by rule {c.rule}", status="open", assignee=None,
                                   created_at=created))
            have.add((c.customer_id, c.occurrence))
            opened += 1
    return {"found": len(wanted), "opened": opened, "already_open": len(wanted) - opened}


def _task_dict(t: Any, now: dt.datetime | None) -> dict[str, Any]:
    overdue = now is not None and t.status != "done" and t.due_at < now
    late = t.closed_at is not None and t.closed_at > t.due_at
    return {"id": t.id, "customer_id": t.customer_id, "rule": t.rule, "trigger": t.trigger,
            "occurrence": t.occurrence, "source": t.source, "triggered_at": t.triggered_at, "due_at": t.due_at,
            "value": t.value, "value_basis": t.value_basis, "owner_role": t.owner_role, "assignee": t.assignee,
            "status": t.status, "closed_at": t.closed_at, "overdue": bool(overdue), "closed_late": bool(late)}


def list_tasks(store: Store, *, status: str | None = None, overdue: bool = False, now: dt.datetime | None = None,
               customer: str | None = None) -> list[dict[str, Any]]:
    """Tasks by priority (value, highest first), then due time; ``overdue``: only those
    not done and past due at ``now``."""
    from sqlalchemy import select

    from retentio.data.store.task_tables import FeedbackTask

    q = select(FeedbackTask)
    if status:
        q = q.where(FeedbackTask.status == status)
    if customer:
        q = q.where(FeedbackTask.customer_id == customer)
    if overdue:
        if now is None:
            raise ValueError("overdue needs now")
        q = q.where(FeedbackTask.status != "done", FeedbackTask.due_at < now)
    q = q.order_by(FeedbackTask.value.desc(), FeedbackTask.due_at, FeedbackTask.id)
    with store.session() as s:
        return [_task_dict(t, now) for t in s.scalars(q)]


def task_history(store: Store, task_id: int) -> list[dict[str, Any]]:
    """The task's append-only history, oldest first."""
    from sqlalchemy import select

    from retentio.data.store.task_tables import FeedbackTaskNote

    with store.session() as s:
        return [{"at": n.at, "kind": n.kind, "author": n.author, "text": n.text, "status": n.status,
                 "assignee": n.assignee}
                for n in s.scalars(select(FeedbackTaskNote).where(FeedbackTaskNote.task_id == task_id)
                                   .order_by(FeedbackTaskNote.id))]


def get_task(store: Store, task_id: int, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """One task with its history; :class:`TaskNotFound` when there is none."""
    from retentio.data.store.task_tables import FeedbackTask

    with store.session() as s:
        t = s.get(FeedbackTask, task_id)
        if t is None:
            raise TaskNotFound(task_id)
        row = _task_dict(t, now)
    row["history"] = task_history(store, task_id)
    return row


def update_task(store: Store, task_id: int, *, author: str, at: dt.datetime, assign: str | None = None,
                note: str | None = None, status: str | None = None) -> dict[str, Any]:
    """Assign, add a note and/or change the status of a task, in one transaction, each
    change appended to its history with ``author`` and ``at``. A done task takes notes
    but no other change (it was measured as closed); a status it already has is refused.

    The history is in time order: ``at`` may not be before the trigger nor before the
    task's latest history entry (the sync's "created" entry included), so a task cannot
    be closed before it was started, nor a late close be dated back before an earlier
    entry. (How far back from the wall clock ``at`` may go is the service's window,
    :data:`retentio.services.feedback_tasks.MAX_BACKDATE`.)"""
    from sqlalchemy import select

    from retentio.data.store.task_tables import TASK_STATUSES, FeedbackTask, FeedbackTaskNote

    if assign is None and note is None and status is None:
        raise TaskRefused("nothing to do: say --assign USER, --note TEXT, --start or --done")
    if status is not None and status not in TASK_STATUSES:
        raise TaskRefused(f"status {status!r}: expected one of {', '.join(TASK_STATUSES)}")
    if note is not None and not note.strip():
        raise TaskRefused("note: an empty note says nothing")
    if assign is not None and not assign.strip():
        raise TaskRefused("assign: say who (a user name)")
    created = _utc_now()
    with store.session() as s:
        lock = select(FeedbackTask).where(FeedbackTask.id == task_id)
        if s.get_bind().dialect.name == "postgresql":
            lock = lock.with_for_update()  # two people updating one task queue, not interleave
        t = s.scalars(lock).first()
        if t is None:
            raise TaskNotFound(task_id)
        if t.status == "done" and (assign is not None or status is not None):
            raise TaskRefused(f"task {task_id} is done (closed {t.closed_at:%Y-%m-%d %H:%M}); it takes notes only")
        if status is not None and status == t.status:
            raise TaskRefused(f"task {task_id} is already {status.replace('_', ' ')}")
        if status == "open":
            raise TaskRefused("a task goes open → in progress → done; it cannot go back to open")
        if at < t.triggered_at:
            raise TaskRefused(f"at: {at:%Y-%m-%d %H:%M} is before the task's trigger ({t.triggered_at:%Y-%m-%d %H:%M})")
        latest = s.scalars(select(FeedbackTaskNote).where(FeedbackTaskNote.task_id == t.id)
                           .order_by(FeedbackTaskNote.at.desc(), FeedbackTaskNote.id.desc()).limit(1)).first()
        if latest is not None and at < latest.at:
            raise TaskRefused(f"at: {at:%Y-%m-%d %H:%M} is before the task's latest history entry ({latest.kind} at "
                              f"{latest.at:%Y-%m-%d %H:%M}); changes are recorded in time order")
        if assign is not None:
            t.assignee = assign.strip()
            s.add(FeedbackTaskNote(task_id=t.id, kind="assigned", at=at, author=author, text="",
                                   assignee=t.assignee, status=None, created_at=created))
        if note is not None:
            s.add(FeedbackTaskNote(task_id=t.id, kind="note", at=at, author=author, text=note.strip(),
                                   status=None, assignee=None, created_at=created))
        if status is not None:
            t.status = status
            t.closed_at = at if status == "done" else None
            s.add(FeedbackTaskNote(task_id=t.id, kind="status", at=at, author=author, text="", status=status,
                                   assignee=None, created_at=created))
    return get_task(store, task_id, now=at)


def task_frames(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every task and every history entry as frames (for the SLA metrics)."""
    from sqlalchemy import select

    from retentio.data.store.task_tables import FeedbackTask, FeedbackTaskNote

    with store.session() as s:
        tasks = pd.DataFrame([{"id": t.id, "customer_id": t.customer_id, "rule": t.rule, "trigger": t.trigger,
                               "triggered_at": t.triggered_at, "due_at": t.due_at, "status": t.status,
                               "closed_at": t.closed_at, "value": t.value} for t in s.scalars(select(FeedbackTask))],
                             columns=["id", "customer_id", "rule", "trigger", "triggered_at", "due_at", "status",
                                      "closed_at", "value"])
        notes = pd.DataFrame([{"task_id": n.task_id, "kind": n.kind, "at": n.at, "author": n.author,
                               "status": n.status} for n in s.scalars(select(FeedbackTaskNote))],
                             columns=["task_id", "kind", "at", "author", "status"])
    for c in ("triggered_at", "due_at", "closed_at"):
        tasks[c] = pd.to_datetime(tasks[c])
    notes["at"] = pd.to_datetime(notes["at"])
    return tasks, notes


__all__ = ["SYNC_AUTHOR", "Candidate", "TaskInputs", "TaskNotFound", "TaskRefused", "find_candidates", "get_task", "price",
           "list_tasks", "open_tasks", "task_frames", "task_history", "update_task"]
