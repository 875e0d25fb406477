"""Follow-up tasks: rules, sync (each trigger, idempotent), SLA clock and metrics, the
follow-up comparison, the store on SQLite and PostgreSQL, and the commands end to end.
Every expected number below is worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from retentio import Workspace
from retentio.actions.feedback.task_metrics import FollowupInputs, followup_effect, newcombe, sla_metrics, wilson
from retentio.actions.feedback.task_rules import (
    DEFAULT_RULES,
    BusinessHours,
    TaskRulesError,
    add_hours,
    parse_rules,
    rules_path,
)
from retentio.actions.feedback.tasks import (
    Candidate,
    TaskInputs,
    TaskNotFound,
    TaskRefused,
    find_candidates,
    list_tasks,
    open_tasks,
    task_frames,
    update_task,
)
from tests.conftest import run_cli

T = dt.datetime
AS_OF = dt.date(2026, 3, 10)  # a Tuesday; the default look-back (14 days) starts 2026-02-25
NOW = T(2026, 3, 10, 12)


# ---------------------------------------------------------------------- the fixture business
def _frames() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(1, 12)]})
    orders = pd.DataFrame({
        "order_id": ["O1", "O2", "O3", "O4"],
        "customer_id": ["C1", "C1", "C2", "C4"],
        "ordered_at": [T(2026, 1, 5), T(2026, 2, 1), T(2026, 2, 10), T(2026, 2, 20)],
        "amount": [1000.0, 500.0, 200.0, 300.0],
    })
    surveys = pd.DataFrame([
        (T(2026, 3, 2, 10), "nps", 3, "C1", "slow delivery"),   # detractor
        (T(2026, 3, 3, 12), "nps", 6, "C2", None),              # detractor (6 is the boundary)
        (T(2026, 3, 3, 13), "nps", 7, "C3", None),              # passive: no task
        (T(2026, 3, 4, 9, 30), "csat", 2, "C4", "rude"),        # low CSAT
        (T(2026, 3, 4, 10), "csat", 3, "C4", None),             # neutral: no task
        (T(2026, 3, 5, 17), "ces", 5, "C5", None),              # high effort (Thursday 17:00)
        (T(2026, 3, 5, 18), "ces", 4, "C5", None),              # below 5: no task
        (T(2026, 3, 6, 8), "nps", 0, None, "anonymous"),        # nobody to follow up
        (T(2026, 2, 1, 10), "nps", 2, "C1", "old"),             # before the look-back window
    ], columns=["answered_at", "kind", "score", "customer_id", "comment"])
    tickets = pd.DataFrame({
        "customer_id": ["C6", "C6"],
        "opened_at": [T(2026, 3, 6, 16), T(2026, 3, 6, 17)],      # Friday 16:00
        "topic": ["Complaint about the courier", "question about an invoice"],
    })
    subscriptions = pd.DataFrame({
        "subscription_id": ["S1", "S2", "S3", "S4"],
        "customer_id": ["C7", "C8", "C8", "C6"],
        "started_at": [T(2025, 6, 1), T(2025, 6, 1), T(2025, 7, 1), T(2025, 1, 1)],
        "mrr": [10.0, 10.0, 10.0, 50.0],
        "ended_at": [T(2026, 3, 8), T(2026, 3, 7), T(2026, 3, 7), None],
        "cancel_reason": ["too expensive", "card declined", None, None],
        "churn_type": ["voluntary", "involuntary", "voluntary", None],
    })
    return {"customers": customers, "orders": orders, "surveys": surveys, "tickets": tickets,
            "subscriptions": subscriptions}


def _scores(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [r[0] for r in rows], "churn_probability": [0.5] * len(rows),
                         "score": [50] * len(rows), "band": [r[1] for r in rows],
                         "value_at_risk": [r[2] for r in rows], "reasons": [[] for _ in rows]})


def _save_snapshots(store) -> None:
    from retentio.data.store.registry import register_model, save_snapshot

    model = register_model(store, "churn", "x", settings={}, metrics={}, data_fingerprint="f")
    save_snapshot(store, model, dt.date(2026, 3, 1), "f", {},
                  _scores([("C1", "high", 900.0), ("C2", "medium", 300.0), ("C9", "low", 1.0)]))
    # C2 enters high and is the top 20 % (1 of 5) by value at risk; C1 stays high; C9 enters
    # high but is not valuable enough
    save_snapshot(store, model, dt.date(2026, 3, 8), "f", {},
                  _scores([("C2", "high", 2000.0), ("C1", "high", 950.0), ("C9", "high", 10.0),
                           ("C10", "medium", 50.0), ("C11", "low", 5.0)]))


@pytest.fixture
def fws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    with Workspace.init(path, timezone="UTC", currency="EUR") as w:
        for name, frame in _frames().items():
            w.load(name, frame)
        _save_snapshots(w.store)
    return path


# ---------------------------------------------------------------------- rules
def test_default_rules_parse_and_cover_every_trigger():
    rules = parse_rules(DEFAULT_RULES, "default")
    assert {r.trigger for r in rules.rules.values()} == {"nps", "csat", "ces", "ticket", "cancellation",
                                                          "churn_risk"}
    assert rules.rules["detractor"].max_score == 6 and rules.rules["high_effort"].min_score == 5


@pytest.mark.parametrize("text, field, words", [
    ('[rules.x]\ntrigger = "nps"\nmax_score = 6\nsla_hours = 4\ncolour = "red"\n', "[rules] x.colour", "unknown key"),
    ('[rules.x]\ntrigger = "nps"\nmax_score = 6\n', "[rules] x.sla_hours", "missing"),
    ('[rules.x]\ntrigger = "nps"\nmin_score = 6\nsla_hours = 4\n', "[rules] x", "min_score does not apply"),
    ('[rules.x]\ntrigger = "csat"\nmax_score = 9\nsla_hours = 4\n', "[rules] x", "1–5"),
    ('[rules.x]\ntrigger = "ticket"\nsla_hours = 4\n', "[rules] x", "topics"),
    ('[rules.x]\ntrigger = "sms"\nsla_hours = 4\n', "[rules] x.trigger", "sms"),
    ('[rules.x]\ntrigger = "nps"\nmax_score = 6\nsla_hours = 0\n', "[rules] x.sla_hours", "greater than 0"),
    ('[business_hours]\nstart = "18:00"\nend = "09:00"\n[rules.x]\ntrigger = "nps"\nmax_score = 6\nsla_hours = 1\n',
     "business_hours", "end must be after start"),
    ('[business_hours]\ndays = []\n[rules.x]\ntrigger = "nps"\nmax_score = 6\nsla_hours = 1\n',
     "[business_hours] days", "never open"),
    ("[rules.x\n", None, "not valid TOML"),
])
def test_rules_errors_name_the_file_and_field(text, field, words):
    with pytest.raises(TaskRulesError) as e:
        parse_rules(text, "feedback/task_rules.toml")
    assert str(e.value).startswith("feedback/task_rules.toml: ")
    assert e.value.field == field
    assert words in str(e.value)


# ---------------------------------------------------------------------- the SLA clock
HOURS = BusinessHours(holidays=(dt.date(2026, 3, 9),))  # Mon–Fri 09:00–18:00, Monday 9 March off


def test_calendar_sla_is_plain_addition():
    assert add_hours(T(2026, 3, 6, 16), 24) == T(2026, 3, 7, 16)
    assert add_hours(T(2026, 3, 6, 16), 1.5) == T(2026, 3, 6, 17, 30)


@pytest.mark.parametrize("start, hours, due", [
    (T(2026, 3, 4, 10), 3, T(2026, 3, 4, 13)),          # inside one day
    (T(2026, 3, 4, 15), 3, T(2026, 3, 4, 18)),          # runs out at closing: due at closing, not next morning
    (T(2026, 3, 4, 7), 2, T(2026, 3, 4, 11)),           # before opening: the clock starts at 09:00
    (T(2026, 3, 4, 20), 2, T(2026, 3, 5, 11)),          # after closing: next morning
    (T(2026, 3, 5, 17), 16, T(2026, 3, 10, 15)),        # Thu 1 h + Fri 9 h + (Sat, Sun, holiday Mon) + Tue 6 h
    (T(2026, 3, 7, 12), 1, T(2026, 3, 10, 10)),         # Saturday: weekend and holiday skipped
    (T(2026, 3, 6, 17, 30), 0.5, T(2026, 3, 6, 18)),    # half an hour before closing
])
def test_business_hours_sla(start, hours, due):
    assert add_hours(start, hours, HOURS) == due


def test_business_hours_without_holidays():
    # 8 business hours from Friday 15:00: 3 on Friday, 5 on Monday → Monday 14:00
    assert add_hours(T(2026, 3, 6, 15), 8, BusinessHours()) == T(2026, 3, 9, 14)


SPARSE = ('[business_hours]\ndays = ["mon"]\nstart = "09:00"\nend = "10:00"\nholidays = [{holidays}]\n'
          '[rules.x]\ntrigger = "nps"\nmax_score = 6\nsla_hours = 600\nbusiness_hours = true\n')


def test_a_sparse_calendar_with_a_long_sla_is_due_years_later():
    from retentio.actions.feedback.task_rules import due_time

    # one open hour a week (Monday 09:00–10:00) and 600 business hours: the 1st hour is
    # Monday 2 March 2026 09:00–10:00, the 600th the Monday 599 weeks later — 4193 days on,
    # Monday 24 August 2037 — due at its 10:00 (more than 3,660 days: the old bound crashed)
    rules = parse_rules(SPARSE.format(holidays=""), "feedback/task_rules.toml")
    assert due_time(rules.rules["x"], rules, T(2026, 3, 2, 8)) == T(2037, 8, 24, 10)
    assert dt.date(2026, 3, 2) + dt.timedelta(weeks=599) == dt.date(2037, 8, 24)
    # started during the open hour: 30 minutes that Monday, then 599 more Mondays and 30 minutes of the 600th after
    assert add_hours(T(2026, 3, 2, 9, 30), 600, rules.business_hours) == T(2037, 8, 31, 9, 30)
    # two Monday holidays inside the span (one more on a Sunday changes nothing) each push it a week later
    rules = parse_rules(SPARSE.format(holidays='"2026-03-09", "2030-01-07", "2030-01-06"'), "f.toml")
    assert due_time(rules.rules["x"], rules, T(2026, 3, 2, 8)) == T(2037, 9, 7, 10)
    # a holiday on the week the SLA runs out, after the weeks skipped at once: a week later too
    rules = parse_rules(SPARSE.format(holidays='"2037-08-24"'), "f.toml")
    assert due_time(rules.rules["x"], rules, T(2026, 3, 2, 8)) == T(2037, 8, 31, 10)


def test_skipping_whole_weeks_matches_counting_day_by_day():
    # Mon–Fri 09:00–18:00 is 45 h a week: 90 h from Monday 00:00 are exactly two weeks → due
    # at the second Friday's closing, not the Monday after
    assert add_hours(T(2026, 3, 2), 90, BusinessHours()) == T(2026, 3, 13, 18)
    # 91 h: one more hour on the third Monday; with that week's Tuesday off too it is unchanged,
    # with the first Monday off it moves to the third Tuesday 10:00
    assert add_hours(T(2026, 3, 2), 91, BusinessHours()) == T(2026, 3, 16, 10)
    assert add_hours(T(2026, 3, 2), 91, BusinessHours(holidays=(dt.date(2026, 3, 17),))) == T(2026, 3, 16, 10)
    assert add_hours(T(2026, 3, 2), 91, BusinessHours(holidays=(dt.date(2026, 3, 2),))) == T(2026, 3, 17, 10)


# ---------------------------------------------------------------------- each rule on the fixture
EXPECTED = {
    # (customer, occurrence): (rule, due, value, basis)
    ("C1", "nps@2026-03-02T10:00:00"): ("detractor", T(2026, 3, 4, 10), 950.0, "value_at_risk"),
    ("C2", "nps@2026-03-03T12:00:00"): ("detractor", T(2026, 3, 5, 12), 2000.0, "value_at_risk"),
    ("C4", "csat@2026-03-04T09:30:00"): ("low_csat", T(2026, 3, 5, 9, 30), 300.0, "revenue_12m"),
    # CES Thu 17:00 + 16 business hours: Thu 1 + Fri 9 + Mon 6 → Mon 15:00
    ("C5", "ces@2026-03-05T17:00:00"): ("high_effort", T(2026, 3, 9, 15), 0.0, "none"),
    # complaint Fri 16:00 + 8 business hours: Fri 2 + Mon 6 → Mon 15:00; value 12 × MRR 50
    ("C6", "ticket@2026-03-06T16:00:00"): ("complaint", T(2026, 3, 9, 15), 600.0, "mrr_12m"),
    ("C7", "cancellation@S1"): ("cancellation", T(2026, 3, 9), 0.0, "none"),
    ("C2", "churn_risk@2026-03-08"): ("high_value_at_risk", T(2026, 3, 11), 2000.0, "value_at_risk"),
}


def test_sync_opens_one_task_per_rule_occurrence(fws):
    from retentio.services.feedback_tasks import sync_tasks, tasks

    with Workspace.open(fws) as ws:
        first = sync_tasks(ws, AS_OF, now=NOW)
        rows = tasks(ws, now=NOW)
    assert first["opened"] == 7 and first["already_open"] == 0 and first["rules"] == "default"
    got = {(r["customer_id"], r["occurrence"]): (r["rule"], r["due_at"], r["value"], r["value_basis"])
           for r in rows}
    assert got == EXPECTED
    c1 = next(r for r in rows if r["customer_id"] == "C1")
    assert c1["source"]["score"] == 3 and c1["source"]["comment"] == "slow delivery"
    assert c1["owner_role"] == "customer_success" and c1["status"] == "open"
    # value first (2000, 2000, 950, 600, 300, 0, 0), then the earlier due time
    assert [(r["customer_id"], r["trigger"]) for r in rows] == [
        ("C2", "nps"), ("C2", "churn_risk"), ("C1", "nps"), ("C6", "ticket"), ("C4", "csat"),
        ("C7", "cancellation"), ("C5", "ces")]


def test_sync_is_idempotent_and_overdue_is_by_due_time(fws):
    from retentio.services.feedback_tasks import sync_tasks, tasks

    with Workspace.open(fws) as ws:
        sync_tasks(ws, AS_OF, now=NOW)
        again = sync_tasks(ws, AS_OF, now=NOW)
        later = sync_tasks(ws, dt.date(2026, 3, 12), now=T(2026, 3, 12, 9))
        rows = tasks(ws, now=NOW)
        overdue = tasks(ws, overdue=True, now=T(2026, 3, 9, 12))
    assert (again["opened"], again["already_open"]) == (0, 7)
    assert later["opened"] == 0
    assert len(rows) == 7
    # not done and due before Monday 12:00: C1 (Wed), C2 (Thu), C4 (Thu), C7 (Mon 00:00)
    assert sorted(r["customer_id"] for r in overdue) == ["C1", "C2", "C4", "C7"]


def test_lookback_and_disabled_rules(fws):
    from retentio.services.feedback_tasks import sync_tasks, tasks

    path = rules_path(fws)
    path.parent.mkdir(exist_ok=True)
    path.write_text('[rules.detractor]\ntrigger = "nps"\nmax_score = 6\nsla_hours = 24\nlookback_days = 60\n'
                    '[rules.effort]\ntrigger = "ces"\nmin_score = 5\nsla_hours = 2\nenabled = false\n',
                    encoding="utf-8")
    with Workspace.open(fws) as ws:
        result = sync_tasks(ws, AS_OF, now=NOW)
        rows = tasks(ws, now=NOW)
    # 60 days back reaches C1's old answer of 1 February too; the CES rule is off
    assert result["opened"] == 3
    assert {r["occurrence"] for r in rows} == {"nps@2026-03-02T10:00:00", "nps@2026-03-03T12:00:00",
                                               "nps@2026-02-01T10:00:00"}
    assert result["rules"].endswith("task_rules.toml")


def test_ticket_satisfaction_and_cancellation_words():
    rules = parse_rules('[rules.unhappy]\ntrigger = "ticket"\nmax_satisfaction = 2\nsla_hours = 4\n'
                        '[rules.price]\ntrigger = "cancellation"\nreasons = ["expensive", "дорого"]\n'
                        'churn_types = ["voluntary", "involuntary"]\nsla_hours = 24\n', "r.toml")
    inputs = TaskInputs(
        tickets=pd.DataFrame({"customer_id": ["A", "B"], "opened_at": [T(2026, 3, 9, 10), T(2026, 3, 9, 11)],
                              "topic": ["x", "y"], "satisfaction": [1.0, 3.0]}),
        subscriptions=pd.DataFrame({
            "subscription_id": ["S1", "S2", "S3"], "customer_id": ["A", "B", "C"],
            "started_at": [T(2025, 1, 1)] * 3,
            # S3 ends after the as-of day: announced, the customer is still there
            "ended_at": [T(2026, 3, 9), T(2026, 3, 9), T(2026, 4, 1)],
            "cancel_reason": ["Слишком ДОРОГО", "moving abroad", "too expensive"],
            "churn_type": ["involuntary", "voluntary", None]}))
    got = {(c.customer_id, c.occurrence): c for c in find_candidates(rules, inputs, AS_OF, NOW)}
    assert set(got) == {("A", "ticket@2026-03-09T10:00:00"), ("A", "cancellation@S1"), ("C", "cancellation@S3")}
    assert got[("A", "ticket@2026-03-09T10:00:00")].source["matched"] == "satisfaction"
    announced = got[("C", "cancellation@S3")]
    assert announced.triggered_at == NOW and announced.due_at == NOW + dt.timedelta(hours=24)


def test_churn_rule_with_minimum_value_and_no_previous_snapshot():
    rules = parse_rules('[rules.risk]\ntrigger = "churn_risk"\nmin_value = 100\nsla_hours = 48\n', "r.toml")
    first = pd.DataFrame({"customer_id": ["A", "B", "C"], "band": ["high", "high", "low"],
                          "value_at_risk": [150.0, 99.0, 500.0]})
    first.attrs.update({"as_of": dt.date(2026, 3, 5), "id": 1})
    got = find_candidates(rules, TaskInputs(snapshots=[first]), AS_OF, NOW)
    # a first snapshot: every high customer enters; B is below the minimum value
    assert [(c.customer_id, c.occurrence, c.value) for c in got] == [("A", "churn_risk@2026-03-05", 150.0)]


# ---------------------------------------------------------------------- task changes
def test_assign_note_start_done_and_history(fws):
    from retentio.services.feedback_tasks import change_task, sync_tasks, task

    synced = T(2026, 3, 2, 10, 30)  # half an hour after C1's answer
    with Workspace.open(fws) as ws:
        sync_tasks(ws, dt.date(2026, 3, 2), now=synced)
        tid = _task_id(ws, "nps@2026-03-02T10:00:00", now=synced)
        change_task(ws, tid, author="lead", at=T(2026, 3, 2, 11), assign="anna", now=T(2026, 3, 2, 11))
        change_task(ws, tid, author="anna", at=T(2026, 3, 2, 12), status="in_progress", note="called, no answer",
                    now=T(2026, 3, 2, 12, 5))
        done = change_task(ws, tid, author="anna", at=T(2026, 3, 3, 9), status="done", now=T(2026, 3, 3, 9))
        with pytest.raises(TaskRefused, match="done"):
            change_task(ws, tid, author="anna", at=T(2026, 3, 3, 10), status="in_progress", now=T(2026, 3, 3, 10))
        change_task(ws, tid, author="anna", at=T(2026, 3, 3, 10), note="customer happy now", now=T(2026, 3, 3, 10))
        with pytest.raises(TaskNotFound, match="no follow-up task 999"):
            task(ws, 999)
        shown = task(ws, tid)
    assert done["status"] == "done" and done["closed_at"] == T(2026, 3, 3, 9) and done["assignee"] == "anna"
    assert not done["closed_late"]
    assert [(h["kind"], h["author"], h["status"], h["assignee"], h["text"]) for h in shown["history"]] == [
        ("created", "sync", "open", None, "opened by rule detractor"),
        ("assigned", "lead", None, "anna", ""),
        ("note", "anna", None, None, "called, no answer"),
        ("status", "anna", "in_progress", None, ""),
        ("status", "anna", "done", None, ""),
        ("note", "anna", None, None, "customer happy now"),
    ]
    # the sync's "created" entry is at the sync's time
    assert shown["history"][0]["at"] == synced


def _task_id(ws, occurrence: str, now: dt.datetime) -> int:
    from retentio.services.feedback_tasks import tasks

    return next(r["id"] for r in tasks(ws, now=now) if r["occurrence"] == occurrence)


def test_a_change_cannot_be_backdated_past_the_history_or_the_window(fws):
    """A late close cannot be dated back into the SLA: ``at`` is at most MAX_BACKDATE
    (24 h) before the recording time and never before the latest history entry."""
    from retentio.data.errors import InvalidParameter
    from retentio.services.feedback_tasks import MAX_BACKDATE, change_task, sla_report, sync_tasks, task

    assert MAX_BACKDATE == dt.timedelta(hours=24)
    synced = T(2026, 3, 2, 10, 30)
    with Workspace.open(fws) as ws:
        sync_tasks(ws, dt.date(2026, 3, 2), now=synced)
        tid = _task_id(ws, "nps@2026-03-02T10:00:00", now=synced)  # C1: due Wednesday 4 March 10:00
        # before the sync's "created" entry: refused naming the field and that entry's time
        with pytest.raises(TaskRefused, match=r"at: 2026-03-02 10:15 is before the task's latest history entry "
                                              r"\(created at 2026-03-02 10:30\)"):
            change_task(ws, tid, author="anna", at=T(2026, 3, 2, 10, 15), note="x", now=T(2026, 3, 2, 11))
        change_task(ws, tid, author="anna", at=T(2026, 3, 3, 12), status="in_progress", now=T(2026, 3, 3, 12))
        # done dated before the in-progress entry
        with pytest.raises(TaskRefused, match=r"latest history entry \(status at 2026-03-03 12:00\)"):
            change_task(ws, tid, author="anna", at=T(2026, 3, 3, 11), status="done", now=T(2026, 3, 3, 13))
        # closed a week late (recorded 11 March) but dated before the due time: beyond the 24-hour window
        with pytest.raises(InvalidParameter) as e:
            change_task(ws, tid, author="anna", at=T(2026, 3, 4, 9), status="done", now=T(2026, 3, 11, 9))
        assert e.value.name == "at" and "at most 24 hours before now" in str(e.value)
        assert "2026-03-10T09:00" in str(e.value)
        # exactly 24 hours back is still fine; it is late (due 4 March 10:00) and counts as such
        closed = change_task(ws, tid, author="anna", at=T(2026, 3, 10, 9), status="done", now=T(2026, 3, 11, 9))
        assert closed["closed_late"] and task(ws, tid)["history"][-1]["at"] == T(2026, 3, 10, 9)
        report = sla_report(ws, as_of=dt.date(2026, 3, 31))
    assert report["totals"]["closed"] == 1 and report["totals"]["within_sla"] == 0.0


def test_sync_first_copies_link_answers_into_the_surveys_table(tmp_path):
    """A detractor who answered through a survey link (in the store, not yet in the
    canonical surveys table) gets a task: the sync appends the link answers first."""
    from retentio.actions.feedback.surveys import answer, survey_secret
    from retentio.services.feedback_tasks import sync_tasks, tasks
    from tests.campaign_data import write_playbook
    from tests.test_feedback_surveys import make_ws, run, survey_playbook, token_of

    ws = make_ws(tmp_path / "ws")
    try:
        write_playbook(ws.path, "csat", survey_playbook("csat_after_ticket"))
        run(ws, "csat")
        # CSAT 1 by link at 15:00 UTC = 18:00 Moscow (the workspace's time)
        answer(ws.store, survey_secret(ws.path, env={}), token_of(ws, "E"), 1,
               now=dt.datetime(2026, 6, 14, 15, tzinfo=dt.UTC))
        result = sync_tasks(ws, dt.date(2026, 6, 14), now=T(2026, 6, 14, 20))
        rows = tasks(ws, now=T(2026, 6, 14, 20))
    finally:
        ws.close()
    assert result["survey_answers"]["appended"] == 1 and not result["survey_answers"].get("failed")
    assert ("E", "low_csat", "csat@2026-06-14T18:00:00") in {(r["customer_id"], r["rule"], r["occurrence"])
                                                             for r in rows}


def test_a_failing_answer_sync_is_reported_and_the_task_sync_goes_on(fws, monkeypatch):
    import retentio.services.surveys as surveys
    from retentio.services.feedback_tasks import sync_tasks

    def broken(ws, **_):
        raise OSError("disk full")

    monkeypatch.setattr(surveys, "sync_answers", broken)
    with Workspace.open(fws) as ws:
        result = sync_tasks(ws, AS_OF, now=NOW)
    assert result["opened"] == 7 and result["survey_answers"] == {"error": "OSError: disk full"}
    code, _, err = run_cli("feedback", "tasks", "sync", "--as-of", "2026-03-10", "-w", str(fws))
    assert code == 0 and "disk full" in err and "could not be copied" in err


# ---------------------------------------------------------------------- SLA metrics by hand
def test_sla_metrics_hand_computed():
    tasks = pd.DataFrame({
        "trigger": ["nps"] * 5,
        "triggered_at": pd.to_datetime(["2026-01-10", "2026-01-20", "2026-01-30", "2026-02-05", "2026-02-10"]),
        "due_at": pd.to_datetime(["2026-01-11", "2026-01-21", "2026-01-31", "2026-02-06", "2026-02-11"]),
        "closed_at": pd.to_datetime(["2026-01-10 12:00", "2026-01-22 00:00", "2026-02-02 00:00", "2026-02-05 06:00",
                                     None]),
        "status": ["done", "done", "done", "done", "open"],
    })
    r = sla_metrics(tasks, T(2026, 3, 1), "month")
    jan, feb = r["periods"]
    # January: T1 (12 h, on time) and T2 (48 h, late) closed; T3 open and past due at 1 Feb
    assert jan == {"period_start": "2026-01-01", "opened": 3, "closed": 2, "closed_within_sla": 1,
                   "within_sla": 0.5, "median_hours_to_close": 30.0, "overdue_open": 1}
    # February: T3 (72 h, late) and T4 (6 h, on time) closed; T5 open and past due at 1 March
    assert feb == {"period_start": "2026-02-01", "opened": 2, "closed": 2, "closed_within_sla": 1,
                   "within_sla": 0.5, "median_hours_to_close": 39.0, "overdue_open": 1}
    # all four closed: 6, 12, 48, 72 h → median (12 + 48) / 2 = 30
    assert r["totals"] == {"opened": 5, "closed": 4, "closed_within_sla": 2, "within_sla": 0.5,
                           "median_hours_to_close": 30.0, "open": 1, "overdue_open": 1}
    # one quarter holds both months: the totals
    (q1,) = sla_metrics(tasks, T(2026, 3, 1), "quarter")["periods"]
    assert q1 == {"period_start": "2026-01-01", "opened": 5, "closed": 4, "closed_within_sla": 2, "within_sla": 0.5,
                  "median_hours_to_close": 30.0, "overdue_open": 1}
    # weeks (Monday to Sunday): T1 on Sat 10 January is in the week of 5 January, closed the same day
    weeks = sla_metrics(tasks, T(2026, 3, 1), "week")["periods"]
    assert weeks[0]["period_start"] == "2026-01-05" and (weeks[0]["opened"], weeks[0]["closed"]) == (1, 1)
    assert sum(w["opened"] for w in weeks) == 5 and sum(w["closed"] for w in weeks) == 4
    # as of 1 February, T3 was not yet closed (its closing is after the end)
    early = sla_metrics(tasks, T(2026, 2, 1), "month")
    assert early["totals"]["closed"] == 2 and early["totals"]["open"] == 1 and len(early["periods"]) == 1


# ---------------------------------------------------------------------- follow-up comparison by hand
def test_wilson_and_newcombe_match_the_published_examples():
    # Newcombe (1998a), Statistics in Medicine 17:857–872, 81/263: Wilson 0.2553 to 0.3662
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    # Newcombe (1998b), Statistics in Medicine 17:873–890, 56/70 − 48/80, method 10: 0.0524 to 0.3339
    d, low, high = newcombe(56, 70, 48, 80)
    assert (round(d, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)
    assert all(math.isnan(v) for v in wilson(0, 0))  # no answers, no interval


def test_followup_effect_hand_computed():
    tasks = pd.DataFrame({
        "id": [1, 2, 3, 4, 5, 6],
        "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
        "trigger": ["nps", "nps", "nps", "nps", "nps", "csat"],
        "triggered_at": pd.to_datetime(["2026-03-01"] * 4 + ["2026-05-20", "2026-03-01"]),
        "due_at": pd.to_datetime(["2026-03-03"] * 4 + ["2026-05-22", "2026-03-03"]),
    })
    notes = pd.DataFrame({
        "task_id": [1, 1, 2, 3, 4],
        "kind": ["created", "note", "status", "note", "assigned"],
        "at": pd.to_datetime(["2026-03-01", "2026-03-02", "2026-03-02", "2026-03-05", "2026-03-01"]),
    })
    facts = FollowupInputs(
        orders=pd.DataFrame({"customer_id": ["C1", "C4"], "ordered_at": pd.to_datetime(["2026-03-20", "2026-04-15"])}),
        subscriptions=pd.DataFrame({"customer_id": ["C3", "C4"],
                                    "started_at": pd.to_datetime(["2025-01-01", "2025-01-01"]),
                                    "ended_at": pd.to_datetime([None, "2026-03-15"])}),
        nps=pd.DataFrame({"customer_id": ["C1", "C2", "C4"],
                          "answered_at": pd.to_datetime(["2026-03-25", "2026-03-10", "2026-03-20"]),
                          "score": [9.0, 5.0, 8.0]}))
    r = followup_effect(tasks, notes, facts, T(2026, 6, 1), window_days=30)
    # in time: C1 (note before due; ordered on 20 March; later NPS 9) and C2 (done before due; no order,
    # no subscription; later NPS 5). Not in time: C3 (note after due; subscription still active: retained)
    # and C4 (only assigned; ordered after the 30 days, subscription ended inside them; later NPS 8).
    # C5's 30 days have not ended; C6 is not a detractor task.
    assert r["detractor_tasks"] == 4 and r["not_yet_measurable"] == 1
    assert r["followed_up_in_time"] == {"tasks": 2, "retained": 1, "retention_rate": 0.5, "answered_again": 2,
                                        "later_nps_mean": 7.0, "no_longer_detractor": 1,
                                        "no_longer_detractor_rate": 0.5}
    assert r["not_followed_up_in_time"] == {"tasks": 2, "retained": 1, "retention_rate": 0.5, "answered_again": 1,
                                            "later_nps_mean": 8.0, "no_longer_detractor": 1,
                                            "no_longer_detractor_rate": 1.0}
    # 1/2 − 1/2: Wilson(1, 2) = 0.5 ± 1.96·√(0.125 + 0.2401)/2.9207 = (0.0945, 0.9055), so the bounds are
    # 0 ∓ √(2 × 0.4055²) = ∓0.5734
    diff = r["retention_difference"]
    assert diff["difference"] == 0.0
    assert diff["low"] == pytest.approx(-0.5734, abs=1e-4) and diff["high"] == pytest.approx(0.5734, abs=1e-4)
    assert "Observational" in r["caveat"]


# ---------------------------------------------------------------------- the store on SQLite and PostgreSQL
def _candidate(customer: str, occurrence: str, value: float = 10.0) -> Candidate:
    return Candidate("detractor", "nps", customer, occurrence, {"score": 3}, T(2026, 3, 1, 10), T(2026, 3, 3, 10),
                     "customer_success", value, "revenue_12m")


def test_task_tables_on_both_stores(store_url):
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    from retentio.data.store import Store
    from retentio.data.store.task_tables import FeedbackTask, FeedbackTaskNote

    with Store.open(store_url) as store:
        wanted = [_candidate("A", "nps@1", 5.0), _candidate("B", "nps@1", 50.0), _candidate("A", "nps@2", 5.0)]
        assert open_tasks(store, wanted, at=T(2026, 3, 2)) == {"found": 3, "opened": 3, "already_open": 0}
        assert open_tasks(store, wanted, at=T(2026, 3, 2)) == {"found": 3, "opened": 0, "already_open": 3}
        rows = list_tasks(store, now=T(2026, 3, 4))
        assert [r["customer_id"] for r in rows] == ["B", "A", "A"] and all(r["overdue"] for r in rows)
        tid = rows[0]["id"]
        update_task(store, tid, author="anna", at=T(2026, 3, 2, 9), status="done", note="solved")
        assert list_tasks(store, status="done", now=T(2026, 3, 4))[0]["id"] == tid
        assert [r["id"] for r in list_tasks(store, overdue=True, now=T(2026, 3, 4))] == [rows[1]["id"], rows[2]["id"]]
        tasks, notes = task_frames(store)
        assert len(tasks) == 3 and sorted(notes.kind) == ["created", "created", "created", "note", "status"]
        # the schema itself refuses a second task for one occurrence, and a done task without a closing time
        with pytest.raises(IntegrityError), store.session() as s:
            s.add(FeedbackTask(rule="r", trigger="nps", customer_id="A", occurrence="nps@1", source={},
                               triggered_at=T(2026, 3, 1), due_at=T(2026, 3, 2), value=0, value_basis="none",
                               owner_role="x", status="open", created_at=dt.datetime.now(dt.UTC)))
        with pytest.raises(IntegrityError), store.session() as s:
            s.execute(sa.update(FeedbackTask).where(FeedbackTask.id == rows[1]["id"]).values(status="done"))
        # the history is append-only in the schema (a trigger refuses UPDATE and DELETE)
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.session() as s:
            s.execute(sa.update(FeedbackTaskNote).values(text="rewritten"))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.session() as s:
            s.execute(sa.delete(FeedbackTaskNote))
        with pytest.raises(IntegrityError), store.session() as s:
            s.add(FeedbackTask(rule="r", trigger="email", customer_id="Z", occurrence="x", source={},
                               triggered_at=T(2026, 3, 1), due_at=T(2026, 3, 2), value=0, value_basis="none",
                               owner_role="x", status="open", created_at=dt.datetime.now(dt.UTC)))


# ---------------------------------------------------------------------- the commands end to end
def test_cli_end_to_end(fws, monkeypatch):
    import retentio.services.feedback_tasks as service

    clock = [NOW]  # the wall clock, in workspace time (UTC here)
    monkeypatch.setattr(service, "local_now", lambda ws: clock[0])
    w = ["-w", str(fws)]
    code, out, err = run_cli("feedback", "tasks", "sync", "--as-of", "2026-03-10", "--json", *w)
    assert code == 0, err
    assert json.loads(out)["opened"] == 7
    code, out, _ = run_cli("feedback", "tasks", "sync", "--as-of", "2026-03-10", "--json", *w)
    assert json.loads(out)["opened"] == 0
    code, out, _ = run_cli("feedback", "tasks", "--status", "open", "--json", *w)
    rows = json.loads(out)
    assert code == 0 and len(rows) == 7 and rows[0]["customer_id"] == "C2"
    tid = next(r["id"] for r in rows if r["customer_id"] == "C1")

    clock[0] = T(2026, 3, 10, 15)
    code, out, err = run_cli("feedback", "task", str(tid), "--assign", "anna", "--as", "lead", "--at",
                             "2026-03-10T16:00+03:00", "--json", *w)
    assert code == 0, err
    shown = json.loads(out)
    # an offset is converted to workspace time (UTC here)
    assert shown["assignee"] == "anna" and shown["history"][-1]["at"] == "2026-03-10T13:00:00"
    assert shown["history"][-1]["author"] == "lead"
    code, _, err = run_cli("feedback", "task", str(tid), "--note", "x", "--at", "yesterday", *w)
    assert code == 2 and "yesterday" in err
    code, _, err = run_cli("feedback", "task", str(tid), "--note", "x", "--at", "2026-01-01T00:00", *w)
    assert code == 2 and "24 hours" in err
    code, _, err = run_cli("feedback", "task", str(tid), "--note", "x", "--at", "2026-03-10T12:45", *w)
    assert code == 2 and "latest history entry" in err and "2026-03-10 13:00" in err
    code, _, err = run_cli("feedback", "task", str(tid), "--note", "x", "--at", "2099-01-01T00:00", *w)
    assert code == 2 and "up to now" in err
    code, out, _ = run_cli("feedback", "task", str(tid), "--note", "called", "--start", "--at", "2026-03-10T13:30",
                           *w)
    assert code == 0 and "in_progress" in out
    code, out, _ = run_cli("feedback", "task", str(tid), "--done", "--at", "2026-03-10T14:00", "--json", *w)
    assert code == 0 and json.loads(out)["status"] == "done"
    code, _, err = run_cli("feedback", "task", str(tid), "--start", *w)
    assert code == 2 and "done" in err

    code, _, err = run_cli("feedback", "task", "9999", "--done", *w)
    assert code == 2 and "no follow-up task 9999" in err
    code, _, err = run_cli("feedback", "task", "9999", *w)
    assert code == 2 and "no follow-up task 9999" in err

    # not done and due before 10 March 15:00: C2 nps, C4, C5, C6, C7 (C2's churn task is due 11 March; C1's is done)
    code, out, _ = run_cli("feedback", "tasks", "--overdue", "--json", *w)
    assert code == 0 and len(json.loads(out)) == 5
    code, out, _ = run_cli("feedback", "tasks", *w)
    assert code == 0 and "Follow-up tasks" in out

    code, out, err = run_cli("feedback", "sla", "--as-of", "2026-03-31", "--json", *w)
    assert code == 0, err
    r = json.loads(out)
    # C1: triggered 2 March 10:00, closed 10 March 14:00 (8 days 4 h = 196 h, due 4 March): late
    assert r["totals"]["closed"] == 1 and r["totals"]["within_sla"] == 0.0
    assert r["totals"]["median_hours_to_close"] == 196.0 and r["totals"]["opened"] == 7
    assert "Observational" in r["followup"]["caveat"]
    code, out, err = run_cli("feedback", "sla", "--as-of", "2026-03-31", *w)
    assert code == 0 and "SLA" in out and "Observational" in err


def test_cli_rules_init_and_errors(fws):
    w = ["-w", str(fws)]
    code, out, _ = run_cli("feedback", "tasks", "rules", "--json", *w)
    assert code == 0 and json.loads(out)["default"] is True
    code, out, err = run_cli("feedback", "tasks", "rules", *w)
    assert code == 0 and "default rules apply" in err and "high_value_at_risk" in out
    code, out, err = run_cli("feedback", "tasks", "rules", "--init", *w)
    assert code == 0 and rules_path(fws).exists()
    code, _, err = run_cli("feedback", "tasks", "rules", "--init", *w)
    assert code == 2 and "exists" in err
    rules_path(fws).write_text('[rules.x]\ntrigger = "nps"\nmax_score = 11\nsla_hours = 4\n', encoding="utf-8")
    code, _, err = run_cli("feedback", "tasks", "sync", "--as-of", "2026-03-10", *w)
    assert code == 2 and "task_rules.toml" in err and "[rules] x" in err and "0–10" in err
    code, _, err = run_cli("feedback", "tasks", "sync", "--as-of", "2099-01-01", *w)
    assert code == 2


@pytest.mark.parametrize("args", [("feedback", "tasks"), ("feedback", "tasks", "sync"), ("feedback", "tasks", "rules"),
                                  ("feedback", "task"), ("feedback", "sla")])
def test_cli_help(args):
    code, out, _ = run_cli(*args, "--help")
    assert code == 0 and "--json" in out


def test_the_rules_listing_writes_each_threshold_out(fws):
    from retentio.services.feedback_tasks import rules_overview

    with Workspace.open(fws) as ws:
        data, rows = rules_overview(ws)
    assert data["default"] is True and data["written"] is None and set(data["rules"]) == {r["rule"] for r in rows}
    thresholds = {r["rule"]: r["threshold"] for r in rows}
    # only the keys the trigger reads, unset ones left out (churn_risk: no min_value)
    assert thresholds["detractor"] == "max_score=6.0" and thresholds["high_effort"] == "min_score=5.0"
    assert thresholds["high_value_at_risk"] == "top_share=0.2"
    assert thresholds["cancellation"] == "churn_types=['voluntary']"


def test_the_task_help_states_the_backdating_window():
    import re

    from retentio.services.feedback_tasks import MAX_BACKDATE

    code, out, _ = run_cli("feedback", "task", "--help")
    text = re.sub(r"[\s│]+", " ", out)
    assert code == 0 and f"At most {MAX_BACKDATE.total_seconds() / 3600:g} hours back" in text


def test_the_report_shows_the_sla_figures_in_both_languages(tmp_path, monkeypatch):
    import retentio.services.feedback_tasks as service

    path = tmp_path / "ws"
    with Workspace.init(path, timezone="UTC", currency="EUR") as ws:
        for name, frame in _frames().items():
            ws.load(name, frame)
    w = ["-w", str(path)]
    clock = [T(2026, 3, 2, 10, 30)]  # the wall clock: C1's task is synced half an hour after the answer
    monkeypatch.setattr(service, "local_now", lambda ws: clock[0])
    assert run_cli("feedback", "tasks", "sync", "--as-of", "2026-03-02", *w)[0] == 0
    rows = json.loads(run_cli("feedback", "tasks", "--json", *w)[1])
    tid = next(r["id"] for r in rows if r["customer_id"] == "C1")  # due 2026-03-04 10:00 (48 h)
    clock[0] = T(2026, 3, 3, 10, 5)
    assert run_cli("feedback", "task", str(tid), "--done", "--at", "2026-03-03T10:00", *w)[0] == 0  # 24 h, in time
    clock[0] = NOW
    assert run_cli("feedback", "tasks", "sync", "--as-of", "2026-03-10", *w)[0] == 0  # the other five
    for lang, says in (("en", "Follow-up: 6 tasks opened, 1 closed, 100 % of them within the SLA, median 24"),
                       ("ru", "Работа с отзывами: открыто — 6 задач, закрыто — 1, из них в срок — 100 %, медиана "
                              "до закрытия — 24")):
        out = tmp_path / f"{lang}.html"
        code, _, err = run_cli("report", "--lang", lang, "--out", str(out), *w)
        assert code == 0, err
        text = " ".join(out.read_text(encoding="utf-8").split()).replace("\u00a0", " ").replace("\u202f", " ")
        assert says in text, lang
