"""Planning and recording a campaign run.

:func:`plan` is the dry run: trigger → audience → exclusions → randomisation → gates,
one row per triggered customer with the stage they reached and the reason they stopped
(nothing is written). :func:`record` writes a plan into the store in one transaction —
the run, an assignment per eligible customer (treatment and control), a one-time promo
code per treatment customer whose offer needs one, and the rendered message of every
customer who passed the gates (``pending`` for treatment, ``withheld`` for control) — so
the outbox holds every message before anything is sent (:mod:`retentio.actions.outbox`).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retentio.actions import audience as aud
from retentio.actions import gates, ledger
from retentio.actions.playbooks import Playbook
from retentio.actions.triggers import as_of_instant, triggered

if TYPE_CHECKING:
    from retentio.data.store import Store
    from retentio.data.workspace import Workspace

Progress = Callable[[str], None]

#: the stages a triggered customer goes through, in order
STAGES = ("triggered", "audience", "excluded", "already", "targeting", "gated", "message")


@dataclass
class Plan:
    """A campaign's decisions as of a day, before anything is written.

    ``frame`` has one row per triggered customer: customer_id, occurrence, stage (how far
    they got), reason (why they stopped there; None for a message), arm, address,
    expected_value, the offer and the facts the message uses."""

    playbook: Playbook
    as_of: dt.date
    instant: pd.Timestamp
    now: dt.datetime
    frame: pd.DataFrame
    not_before: dt.datetime
    snapshot_id: int | None = None
    model_version: int | None = None
    cost_per_message: float = 0.0
    samples: list[dict] = field(default_factory=list)
    #: with target = "uplift": the version of the uplift model that chose the persuadable
    uplift_model_version: int | None = None

    @property
    def eligible(self) -> pd.DataFrame:
        """Customers randomised into an arm (past the audience, exclusions and earlier runs)."""
        return self.frame[self.frame.arm.notna()]

    @property
    def messages(self) -> pd.DataFrame:
        """Treatment customers a message goes to."""
        e = self.eligible
        return e[e.reason.isna()]

    @property
    def deferred(self) -> bool:
        return self.not_before > self.now

    def counts(self) -> dict[str, Any]:
        e = self.eligible
        f = self.frame
        stopped = e[e.reason.notna() & (e.reason != "holdout")]
        return {
            "triggered": int(len(f)),
            "not_in_audience": int((f.stage == "audience").sum()),
            "excluded": {k: int(v) for k, v in f[f.stage == "excluded"].reason.value_counts().items()},
            "already_acted_on": int((f.stage == "already").sum()),
            "not_persuadable": int((f.stage == "targeting").sum()),
            "eligible": int(len(e)),
            "treatment": int((e.arm == "treatment").sum()),
            "control": int((e.arm == "control").sum()),
            "messages": int(len(self.messages)),
            "control_would_receive": int(((e.reason == "holdout") & (e.stage == "message")).sum()),
            "suppressed": {k: int(v) for k, v in stopped[stopped.arm == "treatment"].reason.value_counts().items()},
            "deferred": int(len(self.messages)) if self.deferred else 0,
            "estimated_cost": round(len(self.messages) * self.cost_per_message, 2),
        }


def _consent(pb: Playbook) -> str:
    """The consent (and suppression list) a message needs: ``email`` or ``sms``."""
    return "email" if _address_column(pb) == "email" else "sms"


def _address_column(pb: Playbook) -> str:
    """Where a message goes follows whose consent it needs: email always for the email
    channel; for a webhook or a CSV export, the email address with ``consent = "email"``
    and the phone with ``consent = "sms"`` — never a phone on email consent."""
    if pb.channel.kind == "email" or pb.channel.consent == "email":
        return "email"
    return "phone"


#: a churn snapshot older than this (before the campaign's day) is not used: customers are scored afresh
SNAPSHOT_MAX_AGE_DAYS = 7


def latest_scores(ws: Workspace, store: Store, as_of: dt.date) -> aud.Scores | None:
    """The newest model's churn snapshot of ``as_of`` or the days just before it (at most
    :data:`SNAPSHOT_MAX_AGE_DAYS`); without one, the customers are scored as of ``as_of``
    (and that snapshot kept, so the run can name it). None when no churn model is trained."""
    from sqlalchemy import select

    from retentio.data.store.registry import latest_model, snapshot_scores, snapshots
    from retentio.data.store.tables import ScoreSnapshot

    model = latest_model(store, "churn")
    if model is None:
        return None
    with store.session() as s:
        oldest = as_of - dt.timedelta(days=SNAPSHOT_MAX_AGE_DAYS)
        newest = s.scalars(select(ScoreSnapshot.id).where(ScoreSnapshot.model_version_id == model.id,
                                                          ScoreSnapshot.as_of <= as_of, ScoreSnapshot.as_of >= oldest)
                           .order_by(ScoreSnapshot.as_of.desc(), ScoreSnapshot.id.desc()).limit(1)).first()
    if newest is None:
        from retentio.analytics.churn.train import score

        frame = score(ws, as_of)
        return aud.Scores(frame, frame.attrs.get("snapshot_id"), frame.attrs.get("model_version"))
    snap = next(x for x in snapshots(store) if x.id == newest)
    return aud.Scores(snapshot_scores(store, snap), snap.id, snap.model_version)


def plan(ws: Workspace, pb: Playbook, as_of: dt.date | None = None, *, now: dt.datetime | None = None,
         samples: int = 3, progress: Progress = lambda _m: None) -> Plan:
    """Decide, without writing anything, what a run of ``pb`` as of ``as_of`` would do."""
    settings = ws.settings.campaigns
    store = ws.store
    now = now or ledger.utcnow()
    instant = as_of_instant(ws, as_of)
    progress("trigger")
    scores = latest_scores(ws, store, instant.date()) if aud.needs_scores(pb) else None
    trig = triggered(ws, pb, instant, scores.frame if scores is not None else None)
    progress("audience")
    facts = aud.facts(ws, trig.customer_id, instant, pb, scores)
    frame = trig.merge(facts, on="customer_id", how="left")
    frame["stage"] = "triggered"
    frame["reason"] = None
    ok, why = aud.audience_mask(frame, pb)
    frame.loc[~ok, "stage"] = "audience"
    frame.loc[~ok, "reason"] = why[~ok]
    live = frame.stage == "triggered"
    if pb.exclude.other_campaign_within_days:
        since = now - dt.timedelta(days=pb.exclude.other_campaign_within_days)
        others = set(ledger.recent_counts(store, since, exclude_campaign=pb.name, marketing_only=False).index)
    else:
        others = set()
    excluded = aud.exclusions(ws, frame[live], pb, instant, others)
    hit = excluded.notna()
    frame.loc[hit[hit].index, "stage"] = "excluded"
    frame.loc[hit[hit].index, "reason"] = excluded[hit]
    if pb.survey_kind is not None:
        _throttle(store, pb, frame, now)
    done = ledger.assigned(store, pb.name)
    if done:
        keys = pd.Series(list(zip(frame.customer_id, frame.occurrence)), index=frame.index)
        again = (frame.stage == "triggered") & keys.isin(done)
        frame.loc[again, "stage"] = "already"
        frame.loc[again, "reason"] = "already acted on this occurrence"
    uplift_version = None
    if pb.target == "uplift":
        progress("targeting by uplift")
        uplift_version = _target(ws, pb, frame, instant)
    progress("randomising and gates")
    frame["arm"] = None
    frame["capped"] = False
    frame["address"] = frame[_address_column(pb)]
    live = frame.stage == "triggered"
    if live.any():
        e = frame[live]
        frame.loc[live, "arm"] = gates.arms(pb.name, e.customer_id, pb.holdout.percent)
        since = now - dt.timedelta(days=settings.frequency_days)
        reason, capped = gates.apply_gates(
            frame[live], channel=pb.channel.kind, consent=_consent(pb), message_class=pb.message.message_class,
            suppressed=ledger.suppressed(store, _consent(pb), settings.soft_bounce_limit),
            global_pct=settings.global_control_pct, sent_recently=ledger.recent_counts(store, since),
            cap=settings.frequency_cap)
        frame.loc[live, "reason"] = reason
        frame.loc[live, "capped"] = capped
        would = reason.isna().to_numpy() | ((reason == "holdout").to_numpy() & ~capped)
        frame.loc[live, "stage"] = np.where(would, "message", "gated")
    quiet = gates.quiet_until(now, ws.settings.timezone, settings.quiet_start, settings.quiet_end)
    channel_settings = getattr(ws.settings.channels, pb.channel.kind)
    out = Plan(pb, instant.date(), instant, now, frame.reset_index(drop=True), quiet or now,
               scores.snapshot_id if scores else None, scores.model_version if scores else None,
               float(channel_settings.cost_per_message), uplift_model_version=uplift_version)
    if samples:
        out.samples = render_samples(ws, out, samples)
    return out


#: the reason a survey's customer is left out: asked (by any survey playbook) too recently
SURVEYED_RECENTLY = "surveyed recently (any survey, [survey] min_days_between)"


def _throttle(store: Store, pb: Playbook, frame: pd.DataFrame, now: dt.datetime, session: Any = None) -> int:
    """Survey playbooks: leave out (stage ``excluded``, reason :data:`SURVEYED_RECENTLY`) the
    live rows of customers invited to any survey in the last ``[survey]
    min_days_between`` days — asking too often wears out the answers and the people.
    Returns how many rows it stopped."""
    from retentio.actions.feedback.surveys import recently_invited

    since = now - dt.timedelta(days=pb.survey.min_days_between)
    recent = recently_invited(store, since, session=session)
    live = frame.stage.isin(("triggered", "message", "gated")) if session is not None else frame.stage == "triggered"
    hit = live & frame.customer_id.isin(recent)
    frame.loc[hit, "stage"] = "excluded"
    frame.loc[hit, "reason"] = SURVEYED_RECENTLY
    if "arm" in frame:
        frame.loc[hit, "arm"] = None
    return int(hit.sum())


def _target(ws: Workspace, pb: Playbook, frame: pd.DataFrame, instant: pd.Timestamp) -> int | None:
    """Keep the persuadable (and the explore slice) of the still-live rows; the rest stop
    at stage ``targeting``. Predicted uplift goes into ``predicted_uplift`` and, for the
    kept, expected value becomes predicted uplift × value (the frequency cap then keeps
    the messages that persuade most). Returns the model version."""
    from retentio.actions.targeting import persuadable

    frame["predicted_uplift"] = np.nan
    live = (frame.stage == "triggered").to_numpy()
    if not live.any():
        return None
    cost = float(getattr(ws.settings.channels, pb.channel.kind).cost_per_message)
    keep, predicted, version = persuadable(ws, pb, frame[live], instant, cost)
    idx = frame.index[live]
    frame.loc[idx, "predicted_uplift"] = predicted
    frame.loc[idx[~keep], "stage"] = "targeting"
    frame.loc[idx[~keep], "reason"] = "not persuadable (predicted uplift)"
    kept = idx[keep]
    scored = kept[np.isfinite(frame.loc[kept, "predicted_uplift"].to_numpy(dtype="float64"))]
    frame.loc[scored, "expected_value"] = (frame.loc[scored, "predicted_uplift"].clip(lower=0)
                                           * frame.loc[scored, "value"].fillna(0.0))
    return version


def share_cap(ws: Workspace, plans: list[Plan]) -> int:
    """Campaigns decided together share the frequency cap: across ``plans``, each
    customer's open marketing messages (treatment, and control's would-be ones) are
    ranked by expected value, and those beyond the cap — counting what the customer
    already had in the window — are stopped (``frequency_cap`` for treatment; control
    keeps ``holdout`` and records no would-be message). So when two campaigns want the
    same customer and only one fits, the more valuable one goes, not whichever ran
    first. Returns how many were stopped."""
    settings = ws.settings.campaigns
    parts = []
    for i, p in enumerate(plans):
        if p.playbook.message.message_class != "marketing":
            continue
        f = p.frame
        open_ = (f.stage == "message").to_numpy()
        parts.append(pd.DataFrame({"plan": i, "row": f.index[open_], "customer_id": f.customer_id[open_],
                                   "ev": f.expected_value[open_].astype("float64").fillna(0.0).to_numpy()}))
    if len(parts) < 2:
        return 0
    rows = pd.concat(parts, ignore_index=True).sort_values(["ev", "plan"], ascending=[False, True], kind="stable")
    earliest = min(p.now for p in plans) - dt.timedelta(days=settings.frequency_days)
    already = rows.customer_id.map(ledger.recent_counts(ws.store, earliest)).fillna(0).to_numpy()
    rank = rows.groupby("customer_id").cumcount().to_numpy() + 1
    over = rows[already + rank > settings.frequency_cap]
    for i, part in over.groupby("plan"):
        _stop_by_cap(plans[int(i)].frame, part.row)
    return int(len(over))


def _stop_by_cap(frame: pd.DataFrame, rows: Any) -> None:
    """The frequency cap stops these rows: treatment gets the reason, control keeps
    ``holdout`` and loses its would-be message."""
    frame.loc[rows, "capped"] = True
    frame.loc[rows, "stage"] = "gated"
    treated = frame.index.isin(rows) & (frame.arm == "treatment").to_numpy()
    frame.loc[treated, "reason"] = "frequency_cap"


def _templates(ws: Workspace, pb: Playbook) -> Any:
    from retentio.actions.templates import MessageTemplate

    fields = {"subject": pb.message.subject, "text": pb.message.text}
    if pb.message.html:
        fields["html"] = pb.message.html
    return MessageTemplate.compile(pb.path, fields, lang=pb.message.lang, currency=ws.settings.currency)


def render_samples(ws: Workspace, p: Plan, n: int) -> list[dict]:
    """Up to ``n`` messages as the first treatment customers would get them (promo code
    shown as a placeholder: codes are issued by the run)."""
    chosen = p.messages.head(n)
    if chosen.empty:
        return []
    survey = {c: "https://example.com/s/TOKEN" for c in chosen.customer_id} if p.playbook.survey_kind else None
    rendered = _render(ws, p, chosen, {c: "XXXXX-XXXXX" for c in chosen.customer_id}, None, survey)
    return [{"customer_id": c, "to": a, **r} for c, a, r in zip(chosen.customer_id, chosen.address, rendered)]


def _render(ws: Workspace, p: Plan, rows: pd.DataFrame, codes: dict[str, str],
            links: dict[str, str] | None, survey_links: dict[str, str] | None = None) -> list[dict]:
    from retentio.actions.context import message_context, picks
    from retentio.actions.offers import offer_for

    pb = p.playbook
    template = _templates(ws, pb)
    picked = picks(ws, rows, pb, p.instant)
    valid_until = code_expiry(ws, p)[0]
    out = []
    for start in range(0, len(rows), 20_000):  # rows as dicts a chunk at a time (memory at 1M)
        for row in rows.iloc[start:start + 20_000].to_dict("records"):
            offer = offer_for(pb.offer, row.get("segment"), row.get("churn_band"), lang=pb.message.lang,
                              currency=ws.settings.currency)
            code = codes.get(row["customer_id"]) if offer["code"] else None
            ctx = message_context(row, offer, code, valid_until if code else None, picked.get(row["customer_id"], []),
                                  (links or {}).get(row["customer_id"], "https://example.com/unsubscribe"),
                                  (survey_links or {}).get(row["customer_id"]))
            out.append(template.render(ctx))
    return out


def code_expiry(ws: Workspace, p: Plan) -> tuple[dt.date, dt.datetime]:
    """The last day a run's promo codes are valid, in the workspace's timezone (the day
    the message names), and the instant they expire: the end of that local day, in UTC."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(ws.settings.timezone)
    last = p.now.astimezone(tz).date() + dt.timedelta(days=p.playbook.offer.valid_days)
    ends = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
    return last, ends


@dataclass(frozen=True)
class Recorded:
    """A run written to the store."""

    run_id: int
    campaign_id: int
    counts: dict[str, Any]
    queued: int
    withheld: int


#: the PostgreSQL advisory lock that serialises recording runs (SQLite's BEGIN IMMEDIATE does it there)
RECORD_LOCK = 7_104_217


def record(ws: Workspace, p: Plan, progress: Progress = lambda _m: None) -> Recorded:
    """Write the plan's run, assignments, promo codes and outbox in one transaction.

    Every message is rendered first (a template that fails records nothing). Inside the
    transaction — serialised with any other run being recorded — the frequency cap is
    checked again against what is in the store *now*, so two campaigns planned at the
    same time by two processes cannot both fill a customer's last place. Treatment codes
    are issued and stored; a control customer's would-be message carries a code of the
    same form that is never issued (so it could not be redeemed)."""
    from sqlalchemy import insert, select, text

    from retentio.actions.offers import offer_for
    from retentio.actions.promo import new_codes
    from retentio.actions.unsubscribe import make_token, unsubscribe_link, workspace_secret
    from retentio.data.store.campaign_tables import Assignment, CampaignRun, OutboxMessage, PromoCode

    pb = p.playbook
    store = ws.store
    e = p.eligible
    settings = ws.settings
    lang, currency = pb.message.lang, settings.currency
    offers = {c: offer_for(pb.offer, s, b, lang=lang, currency=currency)
              for c, s, b in zip(e.customer_id, e.segment, e.churn_band)}
    speaking = e[e.stage == "message"]
    with_code = speaking[np.array([offers[c]["code"] for c in speaking.customer_id], dtype=bool)]
    codes = dict(zip(with_code.customer_id, new_codes(len(with_code), pb.offer.code_prefix)))
    secret = workspace_secret(ws.path)
    links = {c: unsubscribe_link(settings.campaigns.unsubscribe_url, make_token(secret, c, _consent(pb), pb.name))
             for c in speaking.customer_id}
    survey_ids, survey_links = _survey_links(ws, pb, speaking)
    progress(f"rendering {len(speaking):,} messages")
    rendered = dict(zip(zip(speaking.customer_id, speaking.occurrence),
                        _render(ws, p, speaking, codes, links, survey_links)))
    send_at = _send_times(ws, p, speaking)
    now = p.now
    _, expires = code_expiry(ws, p)
    progress("recording")
    with store.session() as s:
        if s.bind.dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RECORD_LOCK})
        if pb.message.message_class == "marketing":
            _recheck_cap(ws, p, s)
        if pb.survey_kind is not None:  # another survey recorded since the plan (or earlier in this run)
            _throttle(store, pb, p.frame, now, session=s)
        e = p.eligible
        issued = e.reason.isna().to_numpy() & (e.stage == "message").to_numpy()
        cid = ledger.campaign_id(s, pb.name, pb.kind, pb.as_dict(), now)
        run = CampaignRun(campaign_id=cid, as_of=p.as_of, started_at=now, status="assigning", seed=pb.name,
                          holdout_pct=pb.holdout.percent, snapshot_id=p.snapshot_id, model_version=p.model_version,
                          counts=p.counts())
        s.add(run)
        s.flush()

        def offer_of(c: str) -> dict:
            return {k: offers[c][k] for k in ("kind", "value", "gift", "text")}

        rows = [{"campaign_id": cid, "run_id": run.id, "customer_id": c, "occurrence": o, "arm": a, "reason": r,
                 "expected_value": float(v), "offer": offer_of(c), "promo_code": codes.get(c) if ok else None,
                 "snapshot_id": p.snapshot_id, "model_version": p.model_version, "created_at": now}
                for c, o, a, r, v, ok in zip(e.customer_id, e.occurrence, e.arm, e.reason,
                                             e.expected_value.astype("float64").fillna(0.0), issued)]
        ledger._insert_ignoring(s, Assignment.__table__, rows, ["campaign_id", "customer_id", "occurrence"])
        ids = {(c, o): i for i, c, o in s.execute(select(Assignment.id, Assignment.customer_id, Assignment.occurrence)
                                                  .where(Assignment.run_id == run.id))}
        treated = [(c, o) for c, o, ok in zip(e.customer_id, e.occurrence, issued) if ok and c in codes]
        if treated:
            s.execute(insert(_table(PromoCode)), [
                {"code": codes[c], "campaign_id": cid, "assignment_id": ids[(c, o)], "customer_id": c,
                 "offer": offer_of(c), "issued_at": now, "expires_at": expires}
                for c, o in treated if (c, o) in ids])
        cost = p.cost_per_message
        sending = e[e.stage == "message"]
        queued = withheld = 0

        def outbox_rows() -> Any:
            for c, o, a, address in zip(sending.customer_id, sending.occurrence, sending.arm, sending.address):
                if (c, o) not in ids:  # another run recorded this occurrence meanwhile
                    continue
                msg = rendered.pop((c, o))
                yield {
                    "assignment_id": ids[(c, o)], "campaign_id": cid, "run_id": run.id, "customer_id": c,
                    "message_id": uuid.uuid4().hex, "channel": pb.channel.kind,
                    "message_class": pb.message.message_class, "to_address": str(address),
                    "subject": msg.get("subject", ""), "body_text": msg.get("text", ""), "body_html": msg.get("html"),
                    "unsubscribe_url": links.get(c),
                    "payload": {"campaign": pb.name, "occurrence": o,
                                "promo_code": codes.get(c) if a == "treatment" else None},
                    "status": "pending" if a == "treatment" else "withheld", "attempts": 0,
                    "not_before": send_at.get(c, p.not_before), "cost": cost if a == "treatment" else 0.0,
                }

        chunk: list[dict] = []
        for row in outbox_rows():  # inserted 20,000 at a time, never all held at once
            chunk.append(row)
            queued += row["status"] == "pending"
            withheld += row["status"] == "withheld"
            if len(chunk) == 20_000:
                s.execute(insert(_table(OutboxMessage)), chunk)
                chunk = []
        if chunk:
            s.execute(insert(_table(OutboxMessage)), chunk)
        if survey_ids:
            _record_invitations(s, pb, cid, sending, ids, survey_ids, send_at, p.not_before)
        run.status = "sending"
        counts = p.counts() | {"recorded": len(ids), "queued": queued}
        run.counts = counts
        run_id = int(run.id)
    return Recorded(run_id, cid, counts, queued, withheld)


def _survey_links(ws: Workspace, pb: Playbook, speaking: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """Survey playbooks: a random invitation id per customer and their signed personal
    answer link (see :mod:`retentio.actions.feedback.surveys`); empty for other kinds."""
    from retentio.actions.feedback.surveys import make_token, new_token_id, survey_link, survey_secret

    if pb.survey_kind is None or speaking.empty:
        return {}, {}
    secret = survey_secret(ws.path)
    base = ws.settings.campaigns.survey_base_url
    ids = {c: new_token_id() for c in speaking.customer_id}
    return ids, {c: survey_link(base, make_token(secret, t)) for c, t in ids.items()}


def _send_times(ws: Workspace, p: Plan, speaking: pd.DataFrame) -> dict[str, dt.datetime]:
    """Survey playbooks with ``[survey] weekday_mornings``: each invitation's own time on
    a weekday morning (:func:`retentio.actions.feedback.surveys.morning_slots`); empty
    otherwise (every message goes at the plan's ``not_before``)."""
    from retentio.actions.feedback.surveys import morning_slots

    pb = p.playbook
    if pb.survey_kind is None or not pb.survey.weekday_mornings or speaking.empty:
        return {}
    slots = morning_slots(speaking.customer_id, p.not_before, ws.settings.timezone, pb.survey.morning_start,
                          pb.survey.morning_end)
    return dict(zip(speaking.customer_id, slots))


def _record_invitations(session: Any, pb: Playbook, campaign_id: int, sending: pd.DataFrame,
                        ids: dict[tuple[str, str], int], token_ids: dict[str, str],
                        send_at: dict[str, dt.datetime], not_before: dt.datetime) -> int:
    """One invitation per treatment message of a survey playbook, in the run's
    transaction (a control customer's withheld message asked nobody). The invitation
    counts from when its message may go out (its ``not_before``: the weekday morning,
    the end of quiet hours), not from the run: a run on a Friday evening whose message
    waits for Monday keeps the link's full ``[survey] valid_days``."""
    from sqlalchemy import insert

    from retentio.data.store.survey_tables import SurveyInvitation

    days = dt.timedelta(days=pb.survey.valid_days)
    rows = []
    for c, o, a in zip(sending.customer_id, sending.occurrence, sending.arm):
        if a != "treatment" or (c, o) not in ids or c not in token_ids:
            continue
        at = send_at.get(c, not_before)
        rows.append({"token_id": token_ids[c], "assignment_id": ids[(c, o)], "campaign_id": campaign_id,
                     "customer_id": c, "kind": pb.survey_kind, "channel": pb.channel.kind, "occurrence": o,
                     "invited_at": at, "expires_at": at + days})
    if rows:
        session.execute(insert(_table(SurveyInvitation)), rows)
    return len(rows)


def _table(model: Any) -> Any:
    """The Core table of a mapped class: bulk inserts through Core skip the ORM's
    per-row bookkeeping (a third of recording a big run)."""
    return model.__table__


def _recheck_cap(ws: Workspace, p: Plan, session: Any) -> int:
    """Stop, by the frequency cap, the plan's messages that no longer fit: counted again
    inside the recording transaction (see :func:`record`). Returns how many."""
    f = p.frame
    live = (f.stage == "message").to_numpy()
    if not live.any():
        return 0
    settings = ws.settings.campaigns
    since = p.now - dt.timedelta(days=settings.frequency_days)
    now_counts = ledger.recent_counts(ws.store, since, session=session)
    already = f.customer_id.map(now_counts).fillna(0).to_numpy()
    over = live & (already + gates.cap_ranks(f, live) > settings.frequency_cap)
    if over.any():
        _stop_by_cap(f, f.index[over])
    return int(over.sum())


def waiting(store: Store, run_id: int, now: dt.datetime | None = None) -> int:
    """The run's messages still ``pending`` whose time has not come (``not_before``
    after ``now``): quiet hours, a survey's weekday morning. They go out with
    ``retentio campaign send`` — the run's *deferred* count."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import OutboxMessage as M

    now = now or ledger.utcnow()
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(M).where(
            M.run_id == run_id, M.status == "pending", M.not_before > now)) or 0)


def finish(ws: Workspace, run_id: int, delivery: dict[str, int]) -> dict[str, Any]:
    """Mark a run done with what its delivery achieved; returns its counts."""
    from retentio.data.store.campaign_tables import CampaignRun

    with ws.store.session() as s:
        run = s.get(CampaignRun, run_id)
        if run is None:
            return {}
        run.counts = dict(run.counts) | {"delivery": delivery}
        run.status = "done"
        run.finished_at = ledger.utcnow()
        return dict(run.counts)


def worker_name() -> str:
    """This process as a sender: host, process id and a random part."""
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


__all__ = ["STAGES", "Plan", "Recorded", "finish", "latest_scores", "plan", "record", "render_samples", "share_cap",
           "waiting", "worker_name"]
