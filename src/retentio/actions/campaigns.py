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
STAGES = ("triggered", "audience", "excluded", "already", "gated", "message")


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
            "eligible": int(len(e)),
            "treatment": int((e.arm == "treatment").sum()),
            "control": int((e.arm == "control").sum()),
            "messages": int(len(self.messages)),
            "control_would_receive": int((e.reason == "holdout").sum()),
            "suppressed": {k: int(v) for k, v in stopped[stopped.arm == "treatment"].reason.value_counts().items()},
            "deferred": int(len(self.messages)) if self.deferred else 0,
            "estimated_cost": round(len(self.messages) * self.cost_per_message, 2),
        }


def _address_column(pb: Playbook) -> str:
    if pb.channel.kind == "email" or (pb.channel.kind == "csv" and pb.channel.consent == "email"):
        return "email"
    return "phone"


def latest_scores(ws: Workspace, store: Store, as_of: dt.date) -> aud.Scores | None:
    """The newest churn snapshot as of ``as_of`` or before (scoring now when the newest
    model has none yet); None when no churn model is trained."""
    from sqlalchemy import select

    from retentio.data.store.registry import latest_model, snapshot_scores, snapshots
    from retentio.data.store.tables import ScoreSnapshot

    model = latest_model(store, "churn")
    if model is None:
        return None
    with store.session() as s:
        newest = s.scalars(select(ScoreSnapshot.id).where(ScoreSnapshot.model_version_id == model.id,
                                                          ScoreSnapshot.as_of <= as_of)
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
    done = ledger.assigned(store, pb.name)
    if done:
        keys = pd.Series(list(zip(frame.customer_id, frame.occurrence)), index=frame.index)
        again = (frame.stage == "triggered") & keys.isin(done)
        frame.loc[again, "stage"] = "already"
        frame.loc[again, "reason"] = "already acted on this occurrence"
    progress("randomising and gates")
    frame["arm"] = None
    frame["address"] = frame[_address_column(pb)]
    live = frame.stage == "triggered"
    if live.any():
        e = frame[live]
        frame.loc[live, "arm"] = gates.arms(pb.name, e.customer_id, pb.holdout.percent)
        since = now - dt.timedelta(days=settings.frequency_days)
        reason = gates.apply_gates(
            frame[live], channel=pb.channel.kind, consent=pb.channel.consent if pb.channel.kind != "email" else "email",
            message_class=pb.message.message_class,
            suppressed=ledger.suppressed(store, "email" if _address_column(pb) == "email" else "sms",
                                         settings.soft_bounce_limit),
            global_pct=settings.global_control_pct, sent_recently=ledger.recent_counts(store, since),
            cap=settings.frequency_cap)
        frame.loc[live, "reason"] = reason
        frame.loc[live, "stage"] = np.where(reason.isna() | (reason == "holdout"), "message", "gated")
    quiet = gates.quiet_until(now, ws.settings.timezone, settings.quiet_start, settings.quiet_end)
    channel_settings = getattr(ws.settings.channels, pb.channel.kind)
    out = Plan(pb, instant.date(), instant, now, frame.reset_index(drop=True), quiet or now,
               scores.snapshot_id if scores else None, scores.model_version if scores else None,
               float(channel_settings.cost_per_message))
    if samples:
        out.samples = render_samples(ws, out, samples)
    return out


def share_cap(ws: Workspace, plans: list[Plan]) -> int:
    """Campaigns decided together share the frequency cap: across ``plans``, each
    customer's open marketing messages (treatment, and control's would-be ones) are
    ranked by expected value, and those beyond the cap — counting what the customer was
    already sent in the window — are stopped with ``frequency_cap``. So when two campaigns
    want the same customer and only one fits, the more valuable one goes, not whichever
    ran first. Returns how many were stopped."""
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
        f = plans[int(i)].frame
        f.loc[part.row, "reason"] = "frequency_cap"
        f.loc[part.row, "stage"] = "gated"
    return int(len(over))


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
    rendered = _render(ws, p, chosen, {c: "XXXXX-XXXXX" for c in chosen.customer_id}, None)
    return [{"customer_id": c, "to": a, **r} for c, a, r in zip(chosen.customer_id, chosen.address, rendered)]


def _render(ws: Workspace, p: Plan, rows: pd.DataFrame, codes: dict[str, str],
            links: dict[str, str] | None) -> list[dict]:
    from retentio.actions.context import message_context, picks
    from retentio.actions.offers import offer_for

    pb = p.playbook
    template = _templates(ws, pb)
    picked = picks(ws, rows, pb, p.instant)
    valid_until = (p.now + dt.timedelta(days=pb.offer.valid_days)).date()
    out = []
    for row in rows.to_dict("records"):
        offer = offer_for(pb.offer, row.get("segment"), row.get("churn_band"), lang=pb.message.lang,
                          currency=ws.settings.currency)
        code = codes.get(row["customer_id"]) if offer["code"] else None
        ctx = message_context(row, offer, code, valid_until if code else None, picked.get(row["customer_id"], []),
                              (links or {}).get(row["customer_id"], "https://example.com/unsubscribe"))
        out.append(template.render(ctx))
    return out


@dataclass(frozen=True)
class Recorded:
    """A run written to the store."""

    run_id: int
    campaign_id: int
    counts: dict[str, Any]
    queued: int
    withheld: int


def record(ws: Workspace, p: Plan, progress: Progress = lambda _m: None) -> Recorded:
    """Write the plan's run, assignments, promo codes and outbox in one transaction."""
    from sqlalchemy import insert, select

    from retentio.actions.offers import offer_for
    from retentio.actions.promo import new_codes
    from retentio.actions.unsubscribe import make_token, unsubscribe_link, workspace_secret
    from retentio.data.store.campaign_tables import Assignment, CampaignRun, OutboxMessage, PromoCode

    pb = p.playbook
    store = ws.store
    e = p.eligible.copy()
    settings = ws.settings
    lang, currency = pb.message.lang, settings.currency
    offers = [offer_for(pb.offer, s, b, lang=lang, currency=currency) for s, b in zip(e.segment, e.churn_band)]
    e["_offer"] = offers
    needs_code = np.array([o["code"] for o in offers], dtype=bool) & e.reason.isna().to_numpy()
    codes = dict(zip(e.customer_id[needs_code], new_codes(int(needs_code.sum()), pb.offer.code_prefix)))
    secret = workspace_secret(ws.path)
    unsubscribe_channel = "email" if _address_column(pb) == "email" else "sms"
    speaking = e[e.stage == "message"]
    links = {c: unsubscribe_link(settings.campaigns.unsubscribe_url,
                                 make_token(secret, c, unsubscribe_channel, pb.name)) for c in speaking.customer_id}
    progress(f"rendering {len(speaking):,} messages")
    rendered = _render(ws, p, speaking, codes, links)
    now = p.now
    valid_until = now + dt.timedelta(days=pb.offer.valid_days)
    progress("recording")
    with store.session() as s:
        cid = ledger.campaign_id(s, pb.name, pb.kind, pb.as_dict(), now)
        run = CampaignRun(campaign_id=cid, as_of=p.as_of, started_at=now, status="assigning", seed=pb.name,
                          holdout_pct=pb.holdout.percent, snapshot_id=p.snapshot_id, model_version=p.model_version,
                          counts=p.counts())
        s.add(run)
        s.flush()
        rows = [{"campaign_id": cid, "run_id": run.id, "customer_id": c, "occurrence": o, "arm": a, "reason": r,
                 "expected_value": float(v), "offer": {k: off[k] for k in ("kind", "value", "gift", "text")},
                 "promo_code": codes.get(c), "snapshot_id": p.snapshot_id, "model_version": p.model_version,
                 "created_at": now}
                for c, o, a, r, v, off in zip(e.customer_id, e.occurrence, e.arm, e.reason, e.expected_value.fillna(0.0),
                                              e._offer)]
        ledger._insert_ignoring(s, Assignment.__table__, rows, ["campaign_id", "customer_id", "occurrence"])
        ids = dict(((c, o), i) for i, c, o in s.execute(select(Assignment.id, Assignment.customer_id,
                                                               Assignment.occurrence).where(Assignment.run_id == run.id)))
        if codes:
            s.execute(insert(PromoCode), [
                {"code": code, "campaign_id": cid, "assignment_id": ids[(c, o)], "customer_id": c,
                 "offer": {k: off[k] for k in ("kind", "value", "gift", "text")}, "issued_at": now,
                 "expires_at": valid_until}
                for c, o, off in zip(e.customer_id, e.occurrence, e._offer)
                if c in codes and (c, o) in ids for code in (codes[c],)])
        cost = p.cost_per_message
        outbox = []
        for (c, o, a, address), msg in zip(zip(speaking.customer_id, speaking.occurrence, speaking.arm,
                                               speaking.address), rendered):
            if (c, o) not in ids:  # another run recorded this occurrence meanwhile
                continue
            outbox.append({
                "assignment_id": ids[(c, o)], "campaign_id": cid, "run_id": run.id, "customer_id": c,
                "message_id": uuid.uuid4().hex, "channel": pb.channel.kind, "message_class": pb.message.message_class,
                "to_address": str(address), "subject": msg.get("subject", ""), "body_text": msg.get("text", ""),
                "body_html": msg.get("html"), "unsubscribe_url": links.get(c),
                "payload": {"campaign": pb.name, "occurrence": o, "promo_code": codes.get(c) if a == "treatment" else None},
                "status": "pending" if a == "treatment" else "withheld", "attempts": 0, "not_before": p.not_before,
                "cost": cost if a == "treatment" else 0.0,
            })
        for i in range(0, len(outbox), 20_000):
            s.execute(insert(OutboxMessage), outbox[i:i + 20_000])
        run.status = "sending"
        queued = sum(1 for m in outbox if m["status"] == "pending")
        counts = p.counts() | {"recorded": len(ids), "queued": queued}
        run.counts = counts
        run_id = int(run.id)
    return Recorded(run_id, cid, counts, queued, len(outbox) - queued)


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
           "worker_name"]
