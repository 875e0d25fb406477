"""Surveys out and in: signed answer links, invitations, answers, throttling, response
rates, and the hand-over of answers to the workspace's canonical ``surveys`` table.

**Links.** Each survey message carries a personal link ``{survey_base_url}/s/{token}``.
The token is an itsdangerous ``URLSafeTimedSerializer`` signature (HMAC-SHA1 over the
payload and a timestamp, RFC 2104) of a random invitation id only — no customer id or
address in clear — with a salt of its own, so an unsubscribe token can never pass as a
survey token nor the other way round. The key is ``RETENTIO_SECRET_KEY`` when set (a
deployment that keeps secrets outside the folder), else the workspace's 0600 key file
(:func:`retentio.actions.unsubscribe.workspace_secret`). A token is refused when its
signature does not match (tampered, or another workspace's) or when its invitation's
``expires_at`` has passed (``[survey] valid_days`` after the invitation).

**Answers.** One per invitation, in one transaction; the uniqueness is in the schema,
so a second answer — also a racing one — is **refused** (:class:`AlreadyAnswered`) and
the first stands: a survey is a vote, and silently replacing it would let a forwarded
link change someone else's answer. The score must lie on the kind's scale
(:data:`retentio.data.schema.SURVEY_SCALES`: NPS 0–10, CSAT 1–5, CES 1–7).

**Throttling.** Nobody is asked twice within a playbook's ``[survey] min_days_between``
days, counting the invitations of *every* survey playbook whose message was sent or is
on its way — not those that failed or were cancelled (:func:`recently_invited`).

**Response rate** per playbook and channel = answered ÷ invited, where invited counts
the invitations whose message was sent (a message still queued or failed was never a
question asked).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from retentio.data.errors import RetentioError

#: the path of the answer page under the workspace's survey_base_url
LINK_PATH = "/s/"
#: keeps survey tokens apart from every other token signed with the same key
SALT = "retentio.survey-answer"
#: the environment variable that, when set, holds the signing key instead of the workspace's file
SECRET_ENV = "RETENTIO_SECRET_KEY"
#: a comment longer than this is refused (a page's text box, not a file upload)
MAX_COMMENT = 5000


class SurveyRefused(RetentioError):
    """An answer that cannot be taken: the field and why (nothing was written)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class AlreadyAnswered(SurveyRefused):
    """The invitation has its answer already; the first answer stands."""


class LinkExpired(SurveyRefused):
    """The invitation's link is past its ``expires_at`` (field ``token``; nothing was written)."""


def survey_secret(workspace: Path, env: Mapping[str, str] | None = None) -> bytes:
    """The key survey links are signed with: ``RETENTIO_SECRET_KEY`` if set (at least
    16 characters), else the workspace's key file (created on first use, mode 0600)."""
    from retentio.actions.unsubscribe import workspace_secret

    value = (os.environ if env is None else env).get(SECRET_ENV, "")
    if value:
        if len(value) < 16:
            raise RetentioError(f"{SECRET_ENV}: the signing key must be at least 16 characters, got {len(value)}")
        return value.encode()
    return workspace_secret(workspace)


def _serializer(secret: bytes) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(secret, salt=SALT)


def new_token_id() -> str:
    """A random invitation id (96 bits: guessing one is hopeless)."""
    return secrets.token_urlsafe(12)


def make_token(secret: bytes, token_id: str) -> str:
    """The signed token of invitation ``token_id``."""
    return str(_serializer(secret).dumps({"i": token_id}))


def read_token(secret: bytes, token: str) -> str:
    """The invitation id a token carries; :class:`SurveyRefused` (field ``token``) when
    the signature does not match. Expiry is the invitation's (see :func:`answer`)."""
    from itsdangerous import BadData

    try:
        data = _serializer(secret).loads(token.strip())
    except BadData:
        raise SurveyRefused("token", "the signature does not match (the link was altered, or it is another "
                                     "workspace's); nothing was written") from None
    if not isinstance(data, dict) or not isinstance(data.get("i"), str):
        raise SurveyRefused("token", "not a survey token; nothing was written")
    return data["i"]


def survey_link(base_url: str, token: str) -> str:
    """``{base_url}/s/{token}`` (the web app serves the page)."""
    return base_url.rstrip("/") + LINK_PATH + token


def check_score(kind: str, score: float) -> int:
    """The score as a whole number on the kind's scale; :class:`SurveyRefused` naming
    ``score`` otherwise."""
    from retentio.data.schema import SURVEY_SCALES

    low, high = SURVEY_SCALES[kind]
    if isinstance(score, bool) or not float(score).is_integer() or not low <= score <= high:
        raise SurveyRefused("score", f"{float(score):g} is not on the {kind.upper()} scale: a whole number from {low} to "
                                     f"{high}; nothing was written")
    return int(score)


def check_comment(comment: str | None) -> str | None:
    """The comment as stored: plain text, stripped; None when empty. Refused (field
    ``comment``) when longer than :data:`MAX_COMMENT` or holding a NUL byte (which
    PostgreSQL cannot store in text)."""
    if comment is None:
        return None
    text = comment.strip()
    if len(text) > MAX_COMMENT:
        raise SurveyRefused("comment", f"{len(text)} characters; at most {MAX_COMMENT}; nothing was written")
    if "\x00" in text:
        raise SurveyRefused("comment", "contains a NUL character; nothing was written")
    return text or None


@dataclass(frozen=True)
class Answered:
    """An answer as stored."""

    answer_id: int
    invitation_id: int
    customer_id: str
    campaign: str
    kind: str
    score: int
    comment: str | None
    answered_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {"answer_id": self.answer_id, "invitation_id": self.invitation_id, "customer_id": self.customer_id,
                "playbook": self.campaign, "kind": self.kind, "score": self.score, "comment": self.comment,
                "answered_at": self.answered_at.isoformat()}


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands timezone-aware columns back naive (in UTC): make them aware again."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def answer(store: Any, secret: bytes, token: str, score: float, comment: str | None = None, *,
           now: dt.datetime | None = None, source: str = "link") -> Answered:
    """Record the answer to the invitation ``token`` stands for, in one transaction.

    Refused, writing nothing (:class:`SurveyRefused` naming the field): a token whose
    signature does not match, an unknown or expired invitation (``token``), a score off
    the kind's scale (``score``), an over-long comment (``comment``), and — as
    :class:`AlreadyAnswered` — a second answer to the same invitation."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from retentio.data.store.campaign_tables import Campaign
    from retentio.data.store.survey_tables import SurveyAnswer, SurveyInvitation

    now = now or dt.datetime.now(dt.UTC)
    token_id = read_token(secret, token)
    text = check_comment(comment)
    invitation_id: int | None = None
    try:
        with store.session() as s:
            inv = s.scalars(select(SurveyInvitation).where(SurveyInvitation.token_id == token_id)).first()
            if inv is None:
                raise SurveyRefused("token", "no such invitation in this workspace's store; nothing was written")
            invitation_id = int(inv.id)
            if _aware(inv.expires_at) <= now:
                raise LinkExpired("token", f"the link expired on {_aware(inv.expires_at):%Y-%m-%d %H:%M} UTC; "
                                           "nothing was written")
            value = check_score(inv.kind, score)
            done = s.scalars(select(SurveyAnswer).where(SurveyAnswer.invitation_id == inv.id)).first()
            if done is not None:
                raise AlreadyAnswered("token", f"this survey was already answered on "
                                               f"{_aware(done.answered_at):%Y-%m-%d %H:%M} UTC; the first answer "
                                               "stands and nothing was written")
            row = SurveyAnswer(invitation_id=inv.id, customer_id=inv.customer_id, kind=inv.kind, score=value,
                               comment=text, answered_at=now, source=source)
            s.add(row)
            s.flush()
            name = s.scalar(select(Campaign.name).where(Campaign.id == inv.campaign_id)) or ""
            return Answered(int(row.id), int(inv.id), inv.customer_id, name, inv.kind, value, text, now)
    except IntegrityError:
        # only the unique key on the invitation means a racing answer won between our check
        # and insert; any other violation (a check, a foreign key) is a real error
        if invitation_id is None or not _has_answer(store, invitation_id):
            raise
        raise AlreadyAnswered("token", "this survey was already answered; the first answer stands and nothing "
                                       "was written") from None


@dataclass(frozen=True)
class Invitation:
    """What an answer page shows about the invitation a token stands for."""

    kind: str
    low: int
    high: int
    campaign: str
    expires_at: dt.datetime
    answered: bool


def look_up(store: Any, secret: bytes, token: str, *, now: dt.datetime | None = None) -> Invitation:
    """The invitation ``token`` stands for, read only (nothing is written): its kind and
    scale, its playbook, and whether it has its answer. Refused like :func:`answer`:
    :class:`SurveyRefused` (``token``) for a signature that does not match or an unknown
    invitation, :class:`LinkExpired` once ``expires_at`` has passed."""
    from sqlalchemy import select

    from retentio.data.schema import SURVEY_SCALES
    from retentio.data.store.campaign_tables import Campaign
    from retentio.data.store.survey_tables import SurveyAnswer, SurveyInvitation

    now = now or dt.datetime.now(dt.UTC)
    token_id = read_token(secret, token)
    with store.session() as s:
        inv = s.scalars(select(SurveyInvitation).where(SurveyInvitation.token_id == token_id)).first()
        if inv is None:
            raise SurveyRefused("token", "no such invitation in this workspace's store; nothing was written")
        expires = _aware(inv.expires_at)
        if expires <= now:
            raise LinkExpired("token", f"the link expired on {expires:%Y-%m-%d %H:%M} UTC; nothing was written")
        answered = s.scalar(select(SurveyAnswer.id).where(SurveyAnswer.invitation_id == inv.id).limit(1)) is not None
        name = s.scalar(select(Campaign.name).where(Campaign.id == inv.campaign_id)) or ""
        low, high = SURVEY_SCALES[inv.kind]
        return Invitation(inv.kind, low, high, name, expires, answered)


def _has_answer(store: Any, invitation_id: int) -> bool:
    """Whether the invitation has an answer stored (read afresh, after a failed insert)."""
    from sqlalchemy import select

    from retentio.data.store.survey_tables import SurveyAnswer

    with store.session() as s:
        return s.scalar(select(SurveyAnswer.id).where(SurveyAnswer.invitation_id == invitation_id).limit(1)) \
            is not None


#: the outbox states of an invitation that asked (or is about to ask) its customer: sent, or on its way
ASKING = ("sent", "pending", "sending", "retry")


def recently_invited(store: Any, since: dt.datetime, session: Any = None) -> set[str]:
    """Customers invited to any survey at or after ``since`` (UTC): the throttle. Only
    invitations whose message was sent or is on its way (:data:`ASKING`) count — one
    that failed, was cancelled or withheld asked nobody."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import OutboxMessage
    from retentio.data.store.survey_tables import SurveyInvitation

    query = (select(SurveyInvitation.customer_id)
             .join(OutboxMessage, OutboxMessage.assignment_id == SurveyInvitation.assignment_id)
             .where(SurveyInvitation.invited_at >= since, OutboxMessage.status.in_(ASKING)).distinct())
    if session is not None:
        return set(session.scalars(query))
    with store.session() as s:
        return set(s.scalars(query))


def morning_slots(customers: pd.Series, start: dt.datetime, timezone: str, first_hour: int,
                  last_hour: int) -> list[dt.datetime]:
    """When each customer's invitation goes: the first weekday morning (``first_hour`` to
    ``last_hour``, workspace time) not before ``start``, at a minute within it given by a
    hash of the customer — spread evenly so a big run does not land on the inbox (and
    the support desk) at once, and a person who is asked on a Tuesday at 10:40 is asked
    at the same time of morning on every run. Times already past today's morning move to
    the next weekday. UTC."""
    from retentio.actions.gates import unit_hash

    tz = ZoneInfo(timezone)
    local = start.astimezone(tz)
    width = (last_hour - first_hour) * 60
    offsets = unit_hash("survey-morning", customers) * width
    out = []
    for offset in offsets:
        day = local.date()
        while True:
            at = dt.datetime.combine(day, dt.time(first_hour), tzinfo=tz) + dt.timedelta(minutes=int(offset))
            if day.weekday() < 5 and at >= local:
                break
            day += dt.timedelta(days=1)
        out.append(at.astimezone(dt.UTC))
    return out


def answers_between(store: Any, since: dt.datetime, until: dt.datetime, timezone: str) -> pd.DataFrame:
    """Answers given in [since, until) — both naive in the workspace's time, as the
    triggers read time: answer_id, customer_id, kind, score, comment, answered_at (naive,
    workspace time)."""
    from sqlalchemy import select

    from retentio.data.store.survey_tables import SurveyAnswer

    tz = ZoneInfo(timezone)
    lo = since.replace(tzinfo=tz).astimezone(dt.UTC)
    hi = until.replace(tzinfo=tz).astimezone(dt.UTC)
    with store.session() as s:
        rows = s.execute(select(SurveyAnswer.id, SurveyAnswer.customer_id, SurveyAnswer.kind, SurveyAnswer.score,
                                SurveyAnswer.comment, SurveyAnswer.answered_at)
                         .where(SurveyAnswer.answered_at >= lo, SurveyAnswer.answered_at < hi)).all()
    frame = pd.DataFrame([{"answer_id": r[0], "customer_id": str(r[1]), "kind": r[2], "score": int(r[3]),
                           "comment": r[4], "answered_at": _aware(r[5]).astimezone(tz).replace(tzinfo=None)}
                          for r in rows],
                         columns=["answer_id", "customer_id", "kind", "score", "comment", "answered_at"])
    return frame


#: the playbook kind whose answers are exit-survey answers (asked with the NPS question:
#: :data:`retentio.actions.playbooks.SURVEY_PLAYBOOKS`; the canonical schema has no "exit" kind)
EXIT_PLAYBOOK = "exit_survey"
#: the occurrence prefix of an exit survey: ``exit:{subscription_id}`` (:func:`retentio.actions.triggers.exit_survey`)
EXIT_OCCURRENCE = "exit:"


def exit_answers(store: Any, since: dt.date | None = None, timezone: str = "UTC") -> pd.DataFrame:
    """Exit-survey answers: the answers (``survey_answers``) to invitations
    (``survey_invitations``) whose campaign — via the assignment — is a playbook of kind
    ``exit_survey``. These are stored (and exported to the canonical ``surveys`` table) as
    kind ``nps``, the question an exit survey asks; only this join tells them apart.

    Columns: customer_id, subscription_id (the subscription whose end was asked about,
    from the invitation's occurrence; None when not known), answered_at (naive, in
    ``timezone`` — the workspace's time, as the canonical tables read time), score,
    comment. ``since``: answers from that day on (workspace time)."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Assignment, Campaign
    from retentio.data.store.survey_tables import SurveyAnswer, SurveyInvitation

    tz = ZoneInfo(timezone)
    query = (select(SurveyAnswer.customer_id, SurveyInvitation.occurrence, SurveyAnswer.answered_at,
                    SurveyAnswer.score, SurveyAnswer.comment)
             .join(SurveyInvitation, SurveyInvitation.id == SurveyAnswer.invitation_id)
             .join(Assignment, Assignment.id == SurveyInvitation.assignment_id)
             .join(Campaign, Campaign.id == Assignment.campaign_id)
             .where(Campaign.kind == EXIT_PLAYBOOK))
    if since is not None:
        query = query.where(SurveyAnswer.answered_at >= dt.datetime.combine(since, dt.time(), tzinfo=tz)
                            .astimezone(dt.UTC))
    with store.session() as s:
        rows = s.execute(query.order_by(SurveyAnswer.answered_at, SurveyAnswer.id)).all()
    columns = ["customer_id", "subscription_id", "answered_at", "score", "comment"]
    return pd.DataFrame([{"customer_id": str(r[0]),
                          "subscription_id": (r[1][len(EXIT_OCCURRENCE):] if str(r[1] or "").startswith(EXIT_OCCURRENCE)
                                              else None),
                          "answered_at": pd.Timestamp(_aware(r[2]).astimezone(tz).replace(tzinfo=None)),
                          "score": int(r[3]), "comment": r[4]} for r in rows], columns=columns)


# ------------------------------------------------------------------------------ response rates
def nps_of(scores: list[int]) -> float | None:
    """NPS = % promoters (9–10) − % detractors (0–6) of the answers (Reichheld 2003,
    "The One Number You Need to Grow", HBR); None without answers."""
    from retentio.analytics.metrics import DETRACTOR_MAX, PROMOTER_MIN

    if not scores:
        return None
    promoters = sum(s >= PROMOTER_MIN for s in scores)
    detractors = sum(s <= DETRACTOR_MAX for s in scores)
    return round(100.0 * (promoters - detractors) / len(scores), 1)


def csat_of(scores: list[int]) -> float | None:
    """CSAT = % of answers 4 or 5 on the 1–5 scale (the "top-two-box" share); None without answers."""
    return round(100.0 * sum(s >= 4 for s in scores) / len(scores), 1) if scores else None


def ces_of(scores: list[int]) -> float | None:
    """CES = mean score on the 1–7 scale (Dixon, Freeman & Toman 2010, HBR "Stop Trying
    to Delight Your Customers"; the 7-point CES 2.0); None without answers."""
    return round(sum(scores) / len(scores), 2) if scores else None


def survey_stats(store: Any) -> list[dict[str, Any]]:
    """Per survey playbook, channel and question kind: invited (messages sent),
    answered, response rate (answered ÷ invited, None when none were invited), and the
    NPS, CSAT or CES of the answers. Also ``queued`` (not sent yet) and ``failed``
    (failed or cancelled)."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Campaign, OutboxMessage
    from retentio.data.store.survey_tables import SurveyAnswer, SurveyInvitation

    with store.session() as s:
        rows = s.execute(
            select(Campaign.name, SurveyInvitation.channel, SurveyInvitation.kind, OutboxMessage.status,
                   SurveyAnswer.score)
            .join(Campaign, Campaign.id == SurveyInvitation.campaign_id)
            .join(OutboxMessage, OutboxMessage.assignment_id == SurveyInvitation.assignment_id)
            .outerjoin(SurveyAnswer, SurveyAnswer.invitation_id == SurveyInvitation.id)).all()
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name, channel, kind, status, score in rows:
        g = groups.setdefault((name, channel, kind), {"invited": 0, "queued": 0, "failed": 0, "scores": []})
        if status == "sent":
            g["invited"] += 1
        elif status in ("failed", "cancelled"):  # never reached the person
            g["failed"] += 1
        else:  # pending, sending, retry: on its way (a weekday morning, a retry)
            g["queued"] += 1
        if score is not None:
            g["scores"].append(int(score))
    out = []
    for (name, channel, kind), g in sorted(groups.items()):
        scores = g.pop("scores")
        answered = len(scores)
        rate = round(answered / g["invited"], 4) if g["invited"] else None
        score = {"nps": nps_of, "csat": csat_of, "ces": ces_of}[kind](scores)
        out.append({"playbook": name, "channel": channel, "kind": kind, **g, "answered": answered,
                    "response_rate": rate, kind: score})
    return out


# ------------------------------------------------------------------------------ to the analytics
def unexported_answers(store: Any) -> list[dict[str, Any]]:
    """Answers not yet appended to the canonical surveys table (answered_at UTC-aware)."""
    from sqlalchemy import select

    from retentio.data.store.survey_tables import SurveyAnswer

    with store.session() as s:
        rows = s.execute(select(SurveyAnswer.id, SurveyAnswer.answered_at, SurveyAnswer.kind, SurveyAnswer.score,
                                SurveyAnswer.customer_id, SurveyAnswer.comment)
                         .where(SurveyAnswer.exported_at.is_(None)).order_by(SurveyAnswer.id)).all()
    return [{"id": r[0], "answered_at": _aware(r[1]), "kind": r[2], "score": int(r[3]), "customer_id": r[4],
             "comment": r[5]} for r in rows]


def mark_exported(store: Any, ids: list[int], when: dt.datetime) -> None:
    """Record that these answers are in the canonical surveys table."""
    from sqlalchemy import update

    from retentio.data.store.survey_tables import SurveyAnswer

    if not ids:
        return
    with store.session() as s:
        for start in range(0, len(ids), 1000):
            s.execute(update(SurveyAnswer).where(SurveyAnswer.id.in_(ids[start:start + 1000]))
                      .values(exported_at=when))


__all__ = ["ASKING", "EXIT_OCCURRENCE", "EXIT_PLAYBOOK", "LINK_PATH", "SALT", "SECRET_ENV", "AlreadyAnswered",
           "Answered", "Invitation", "LinkExpired", "SurveyRefused", "answer", "answers_between", "ces_of",
           "check_comment", "check_score", "csat_of", "exit_answers", "look_up", "make_token", "mark_exported",
           "morning_slots", "new_token_id", "nps_of", "read_token", "recently_invited", "survey_link", "survey_secret",
           "survey_stats", "unexported_answers"]
