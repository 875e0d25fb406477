"""Follow-up task rules: which customer signals open a task, for whom, due when.

The rules live in the workspace's ``feedback/task_rules.toml``, one table per rule
(``[rules.detractor]``). When the file does not exist the default set below is used —
``retentio feedback tasks rules --init`` writes it out to be edited. The file is
validated as a whole when read: an unknown key, a wrong type, an impossible value or a
key that does not belong to the rule's trigger is refused naming the file and the field
(``[rules] detractor.max_score``).

Triggers (SPEC.md, "Close the loop"):

=============  ===========================================================================
trigger        opens a task for
=============  ===========================================================================
nps            an NPS answer with score ≤ ``max_score`` (a detractor: 0–6)
csat           a CSAT answer with score ≤ ``max_score`` (1–5 scale; 1–2 = unhappy)
ces            a CES answer with score ≥ ``min_score`` (1–7 scale, Dixon et al. 2010:
               high = much effort)
ticket         a ticket whose topic contains one of ``topics`` (case-insensitive), or whose
               satisfaction is ≤ ``max_satisfaction``
cancellation   a subscription that ended (or will end) with a cancel reason, optionally
               of the given ``churn_types`` and containing one of ``reasons``
churn_risk     a customer *entering* the churn band ``high`` in the stored score
               snapshots (high in a snapshot, not high in the one before), whose value at
               risk is in the top ``top_share`` of that snapshot and ≥ ``min_value``
=============  ===========================================================================

Each rule says the owner role and the SLA: hours from the trigger to the due time,
counted on the calendar or, with ``business_hours = true``, only inside the workspace's
``[business_hours]`` (days, opening and closing time, holidays) — see :func:`add_hours`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from retentio.actions.playbooks import StrictSection, TomlFileError, file_name, parse_toml

TASKS_DIR = "feedback"
RULES_FILE = "task_rules.toml"

Trigger = Literal["nps", "csat", "ces", "ticket", "cancellation", "churn_risk"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = Weekday.__args__  # type: ignore[attr-defined]

#: the keys each trigger reads (besides the common ones): any other is refused
TRIGGER_KEYS: dict[str, set[str]] = {
    "nps": {"max_score"}, "csat": {"max_score"}, "ces": {"min_score"},
    "ticket": {"topics", "max_satisfaction"},
    "cancellation": {"reasons", "churn_types"},
    "churn_risk": {"min_value", "top_share"},
}
_SPECIFIC = set().union(*TRIGGER_KEYS.values())
#: the scales of the survey kinds (data.schema.SURVEY_SCALES)
_SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


class TaskRulesError(TomlFileError):
    """A task rules file that cannot be used: the file, the field and what is wrong."""


class Rule(StrictSection):
    """One rule: a trigger with its threshold, the owner role and the SLA."""

    trigger: Trigger
    enabled: bool = True
    #: nps / csat: scores at most this open a task
    max_score: float | None = None
    #: ces: scores at least this open a task
    min_score: float | None = None
    #: ticket: words, any of which in the topic makes it a complaint (case-insensitive)
    topics: tuple[str, ...] = ()
    #: ticket: a satisfaction (1–5) at most this opens a task too
    max_satisfaction: float | None = Field(None, ge=1, le=5)
    #: cancellation: words, one of which must be in the reason (empty: any reason given)
    reasons: tuple[str, ...] = ()
    #: cancellation: the churn types that count (voluntary, involuntary; a missing type counts)
    churn_types: tuple[Literal["voluntary", "involuntary"], ...] = ("voluntary",)
    #: churn_risk: value at risk at least this
    min_value: float | None = Field(None, ge=0)
    #: churn_risk: only the top share of the snapshot by value at risk ("high-value")
    top_share: float | None = Field(None, gt=0, le=1)
    owner: str = Field("customer_success", min_length=1, max_length=80)
    sla_hours: float = Field(..., gt=0, le=24 * 90)
    business_hours: bool = False
    #: occurrences older than this many days before the sync's as-of day are not acted on
    #: (a first sync over years of history would otherwise open thousands of stale tasks)
    lookback_days: int = Field(14, ge=1, le=3650)

    @model_validator(mode="before")
    @classmethod
    def _only_its_keys(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("trigger") in TRIGGER_KEYS:
            foreign = sorted((set(raw) & _SPECIFIC) - TRIGGER_KEYS[raw["trigger"]])
            if foreign:
                raise ValueError(f"{foreign[0]} does not apply to trigger {raw['trigger']!r} "
                                 f"(it reads {', '.join(sorted(TRIGGER_KEYS[raw['trigger']]))})")
        return raw

    @model_validator(mode="after")
    def _thresholds(self) -> Rule:
        if self.trigger in ("nps", "csat"):
            if self.max_score is None:
                raise ValueError(f"max_score is needed for trigger {self.trigger!r}")
            lo, hi = _SCALES[self.trigger]
            if not lo <= self.max_score <= hi:
                raise ValueError(f"max_score must be on the {self.trigger} scale {lo}–{hi}")
        if self.trigger == "ces":
            if self.min_score is None:
                raise ValueError("min_score is needed for trigger 'ces'")
            if not 1 <= self.min_score <= 7:
                raise ValueError("min_score must be on the CES scale 1–7")
        if self.trigger == "ticket" and not self.topics and self.max_satisfaction is None:
            raise ValueError("a ticket rule needs topics (words of a complaint) or max_satisfaction")
        return self


class BusinessHours(StrictSection):
    """When SLA clocks of ``business_hours = true`` rules run (workspace time)."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: dt.time = dt.time(9)
    end: dt.time = dt.time(18)
    holidays: tuple[dt.date, ...] = ()

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        # TOML has a local-time type, but people write "09:00"
        if isinstance(value, str):
            try:
                return dt.time.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a time of day; write \"09:00\"") from None
        return value

    @field_validator("days")
    @classmethod
    def _some_day(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # a calendar with no open hours would never let a business-hours SLA run out
        if not value:
            raise ValueError("at least one working day (the business hours would never open)")
        return value

    @model_validator(mode="after")
    def _open(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("end must be after start (a working day within one calendar day)")
        return self

    def daily(self) -> dt.timedelta:
        """The open hours of one working day."""
        return dt.datetime.combine(dt.date.min, self.end) - dt.datetime.combine(dt.date.min, self.start)

    def weekly(self) -> dt.timedelta:
        """The open hours of a week without holidays."""
        return len(set(self.days)) * self.daily()


class TaskRules(StrictSection):
    """The rules of a workspace, as read and validated."""

    rules: dict[str, Rule]
    business_hours: BusinessHours = BusinessHours()
    name: str = "task_rules"
    path: str = ""

    @field_validator("rules")
    @classmethod
    def _names(cls, value: dict[str, Rule]) -> dict[str, Rule]:
        for key in value:
            file_name(key)
        if not value:
            raise ValueError("at least one rule")
        return value

    def enabled(self) -> dict[str, Rule]:
        return {k: r for k, r in self.rules.items() if r.enabled}

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


DEFAULT_RULES = '''\
# Follow-up task rules: each rule opens a task when a customer signal appears in the data.
# `retentio feedback tasks sync` reads this file; `retentio feedback tasks rules` checks it.
# Keys per trigger:
#   nps, csat: max_score       ces: min_score
#   ticket: topics (words in the topic), max_satisfaction
#   cancellation: reasons (words in the reason; empty = any reason), churn_types
#   churn_risk: min_value (value at risk), top_share (top share of the snapshot by value at risk)
# Common: owner (a role), sla_hours, business_hours (count only [business_hours]),
#   lookback_days (older occurrences are not acted on), enabled.

[business_hours]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "18:00"
holidays = []

[rules.detractor]
trigger = "nps"
max_score = 6          # NPS 0-6 = detractor
owner = "customer_success"
sla_hours = 48

[rules.low_csat]
trigger = "csat"
max_score = 2          # CSAT 1-2 on the 1-5 scale
owner = "support"
sla_hours = 24

[rules.high_effort]
trigger = "ces"
min_score = 5          # CES 5-7 on the 1-7 scale: much effort
owner = "support"
sla_hours = 16
business_hours = true

[rules.complaint]
trigger = "ticket"
topics = ["complaint", "refund", "жалоба", "претензия", "возврат"]
owner = "support_lead"
sla_hours = 8
business_hours = true

[rules.cancellation]
trigger = "cancellation"
reasons = []           # any reason given
churn_types = ["voluntary"]
owner = "retention"
sla_hours = 24

[rules.high_value_at_risk]
trigger = "churn_risk"
top_share = 0.2        # the top 20 % by value at risk of the snapshot
owner = "account_manager"
sla_hours = 72
lookback_days = 7
'''


def rules_path(workspace: Path) -> Path:
    return Path(workspace) / TASKS_DIR / RULES_FILE


def parse_rules(text: str, path: Path | str) -> TaskRules:
    """Rules from their TOML text; :class:`TaskRulesError` naming the file and the field."""
    return parse_toml(text, path, "task_rules", TaskRules, TaskRulesError)


def read_rules(workspace: Path) -> tuple[TaskRules, bool]:
    """The workspace's rules and whether they are the defaults (no file written yet)."""
    path = rules_path(workspace)
    if path.exists():
        return parse_rules(path.read_text(encoding="utf-8"), path), False
    return parse_rules(DEFAULT_RULES, "(default task rules)"), True


def write_default_rules(workspace: Path, *, force: bool = False) -> Path:
    """Write the default rules to ``feedback/task_rules.toml`` (refused when it exists)."""
    from retentio.data.errors import RetentioError

    path = rules_path(workspace)
    if path.exists() and not force:
        raise RetentioError(f"{path} exists; nothing was written (edit it, or replace it with --force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEFAULT_RULES, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ SLA clock
def add_hours(start: dt.datetime, hours: float, hours_of: BusinessHours | None = None) -> dt.datetime:
    """The due time ``hours`` after ``start``.

    Without ``hours_of`` it is calendar time: ``start + hours``. With it only working time
    counts — the working days (not holidays) between ``start`` and ``end`` o'clock: a clock
    started outside working time starts at the next opening, and an SLA that runs out at
    closing time is due at closing time (not the next morning). This is the usual
    help-desk reading of a "business-hours SLA" (e.g. Zendesk's and Jira Service
    Management's SLA calendars).

    Example (Mon–Fri 09:00–18:00): 8 business hours from Friday 15:00 are 3 on Friday
    and 5 on Monday → Monday 14:00.
    """
    if hours_of is None:
        return start + dt.timedelta(hours=hours)
    remaining = dt.timedelta(hours=hours)
    days = {WEEKDAYS.index(d) for d in hours_of.days}
    holidays = set(hours_of.holidays)
    daily, weekly = hours_of.daily(), hours_of.weekly()
    cursor = start
    # No bound on the loop: validation guarantees a working day each week and holidays
    # are finitely many, so the clock always runs out. A sparse calendar (one hour a
    # week) with a long SLA spans years, so whole weeks are skipped at once.
    while True:
        day = cursor.date()
        if cursor == dt.datetime.combine(day, dt.time()) and remaining > weekly:
            # skip whole weeks, leaving a remainder > 0 to be counted day by day (an SLA that
            # runs out at a closing time is due then, not at the next midnight); a holiday
            # on a working day inside the skipped weeks gives its hours back
            weeks = (remaining - dt.timedelta(microseconds=1)) // weekly
            stop = day + dt.timedelta(weeks=weeks)
            off = sum(1 for h in holidays if day <= h < stop and h.weekday() in days)
            remaining -= weeks * weekly - off * daily
            cursor = dt.datetime.combine(stop, dt.time())
            continue
        opens = dt.datetime.combine(day, hours_of.start)
        closes = dt.datetime.combine(day, hours_of.end)
        if day.weekday() in days and day not in holidays and cursor < closes:
            cursor = max(cursor, opens)
            available = closes - cursor
            if remaining <= available:
                return cursor + remaining
            remaining -= available
        cursor = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def due_time(rule: Rule, rules: TaskRules, triggered_at: dt.datetime) -> dt.datetime:
    """When a task of ``rule`` triggered at ``triggered_at`` is due (its SLA)."""
    return add_hours(triggered_at, rule.sla_hours, rules.business_hours if rule.business_hours else None)


__all__ = ["DEFAULT_RULES", "RULES_FILE", "TASKS_DIR", "TRIGGER_KEYS", "BusinessHours", "Rule", "TaskRules", "TaskRulesError",
           "add_hours", "due_time", "parse_rules", "read_rules", "rules_path", "write_default_rules"]
