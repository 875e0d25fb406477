"""Campaign use cases: write a playbook, check it, plan a campaign (dry run), run it
(record, then deliver), deliver what is due, list runs, say why a customer did or did
not get a message, and keep the suppression lists. Typed parameters in, typed results out.

The decisions are in :mod:`retentio.actions` (playbooks, triggers, audience, gates,
campaigns, outbox); the records in the store's campaign tables.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retentio.actions.runs import RunResult as CampaignRunResult
from retentio.data.errors import InvalidParameter, RetentioError

if TYPE_CHECKING:
    import pandas as pd

    from retentio.actions.playbooks import Playbook
    from retentio.data.workspace import Workspace

Progress = Callable[[str], None]


def _quiet(_m: str) -> None:
    """Report nothing."""


# ------------------------------------------------------------------------------ playbooks
def new_playbook(ws: Workspace, kind: str, name: str, *, channel: str = "csv", lang: str = "en",
                 force: bool = False) -> Path:
    """Write ``playbooks/NAME.toml``: a commented, ready-to-run playbook of ``kind``."""
    from retentio.actions.playbook_templates import playbook_text
    from retentio.actions.playbooks import parse_playbook, playbooks_dir

    text = playbook_text(kind, name, channel, lang)
    folder = playbooks_dir(ws.path)
    path = folder / f"{name}.toml"
    parse_playbook(text, path, name)  # what is written always reads back
    if path.exists() and not force:
        raise RetentioError(f"{path} exists; nothing was written (choose another name, or replace it on purpose)")
    folder.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class PlaybookCheck:
    """A playbook that reads, whose templates render with every variable set."""

    playbook: Playbook
    sample: dict[str, str]


def check_playbook(ws: Workspace, name: str) -> PlaybookCheck:
    """Read and validate a playbook and render its templates once with a full context."""
    from retentio.actions.campaigns import _templates
    from retentio.actions.context import sample_context
    from retentio.actions.playbooks import read_playbook

    pb = read_playbook(ws.path, name)
    if pb.exclude.customers_file:
        from retentio.actions.audience import read_customer_list

        read_customer_list(ws.path, pb.exclude.customers_file, pb)
    if pb.channel.kind == "email" and not ws.settings.channels.email.host:
        raise RetentioError(f"{pb.path}: [channel] kind = \"email\" needs [channels.email] host and sender in "
                            f"{ws.path / 'retentio.toml'}")
    if pb.channel.kind == "webhook" and not ws.settings.channels.webhook.url:
        raise RetentioError(f"{pb.path}: [channel] kind = \"webhook\" needs [channels.webhook] url in "
                            f"{ws.path / 'retentio.toml'}")
    return PlaybookCheck(pb, _templates(ws, pb).render(sample_context(pb)))


def playbook_names(ws: Workspace) -> list[str]:
    from retentio.actions.playbooks import list_playbooks

    return list_playbooks(ws.path)


def read(ws: Workspace, name: str) -> Playbook:
    """The playbook ``name`` as Retentio reads it (defaults filled in)."""
    from retentio.actions.playbooks import read_playbook

    return read_playbook(ws.path, name)


def playbook_summaries(ws: Workspace) -> list[dict[str, Any]]:
    """One row per playbook file: name, kind, channel, offer, holdout — or the problem
    that keeps it from being read."""
    from retentio.actions.playbooks import PlaybookError, list_playbooks, read_playbook

    rows: list[dict[str, Any]] = []
    for name in list_playbooks(ws.path):
        try:
            pb = read_playbook(ws.path, name)
        except PlaybookError as e:
            rows.append({"name": name, "kind": None, "channel": None, "offer": None, "holdout_pct": None,
                         "problem": str(e)})
            continue
        offer = pb.offer.kind if pb.offer.kind in ("none", "free_shipping") else f"{pb.offer.kind} {pb.offer.value:g}"
        rows.append({"name": name, "kind": pb.kind, "channel": pb.channel.kind, "offer": offer,
                     "holdout_pct": pb.holdout.percent, "problem": None})
    return rows


# ------------------------------------------------------------------------------ plan and run
@dataclass(frozen=True)
class CampaignPlan:
    """A dry run: counts by stage and reason, the estimated cost, sample messages, and the
    per-customer decisions (``frame``)."""

    name: str
    as_of: dt.date
    counts: dict[str, Any]
    samples: list[dict]
    frame: pd.DataFrame
    snapshot_id: int | None
    model_version: int | None


def plan_campaign(ws: Workspace, name: str, as_of: dt.date | None = None, *,
                  progress: Progress = _quiet) -> CampaignPlan:
    """What a run would do, writing nothing."""
    from retentio.actions.campaigns import plan
    from retentio.actions.playbooks import read_playbook

    pb = read_playbook(ws.path, name)
    p = plan(ws, pb, as_of, progress=progress)
    return CampaignPlan(name, p.as_of, p.counts(), p.samples, p.frame, p.snapshot_id, p.model_version)


def run_campaign(ws: Workspace, name: str, as_of: dt.date | None = None, *, env: Mapping[str, str] | None = None,
                 progress: Progress = _quiet, wait_s: float | None = None,
                 now: dt.datetime | None = None) -> CampaignRunResult:
    """Record a run (one transaction), then deliver the campaign's messages (see
    :func:`retentio.actions.runs.run_playbooks`)."""
    return run_campaigns(ws, [name], as_of, env=env, progress=progress, wait_s=wait_s, now=now)[0]


def run_campaigns(ws: Workspace, names: list[str] | None = None, as_of: dt.date | None = None, *,
                  env: Mapping[str, str] | None = None, progress: Progress = _quiet, wait_s: float | None = None,
                  now: dt.datetime | None = None) -> list[CampaignRunResult]:
    """Run several playbooks (default: every one) together, sharing the frequency cap
    (see :func:`retentio.actions.runs.run_playbooks`)."""
    from retentio.actions.playbooks import list_playbooks
    from retentio.actions.runs import run_playbooks

    names = list_playbooks(ws.path) if names is None else names
    if not names:
        raise RetentioError(f"{ws.path}: no playbooks to run (create one with `playbook new KIND NAME`)")
    return run_playbooks(ws, names, as_of, env=os.environ if env is None else env, progress=progress,
                         wait_s=wait_s, now=now)


def deliver_due(ws: Workspace, *, env: Mapping[str, str] | None = None, progress: Progress = _quiet,
                wait_s: float = 0.0) -> dict[str, dict[str, int]]:
    """Send every due message of every campaign (a killed run's, deferred ones, retries)."""
    from retentio.actions.runs import deliver_due as due

    return due(ws, env=os.environ if env is None else env, progress=progress, wait_s=wait_s)


# ------------------------------------------------------------------------------ reading back
def list_runs(ws: Workspace) -> list[dict[str, Any]]:
    """Every run, newest first, with its counts and its messages by status."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import Campaign, CampaignRun, OutboxMessage

    with ws.store.session() as s:
        status: dict[int, dict[str, int]] = {}
        for run_id, st, n in s.execute(select(OutboxMessage.run_id, OutboxMessage.status, func.count())
                                       .group_by(OutboxMessage.run_id, OutboxMessage.status)).all():
            status.setdefault(run_id, {})[st] = int(n)
        rows = s.execute(select(CampaignRun, Campaign.name).join(Campaign, Campaign.id == CampaignRun.campaign_id)
                         .order_by(CampaignRun.id.desc())).all()
        return [{"run_id": r.id, "campaign": name, "as_of": r.as_of.isoformat(), "status": r.status,
                 "started_at": r.started_at.isoformat(), "treatment": r.counts.get("treatment", 0),
                 "control": r.counts.get("control", 0), "messages": status.get(r.id, {}),
                 "snapshot_id": r.snapshot_id, "model_version": r.model_version}
                for r, name in rows]


def show_run(ws: Workspace, run_id: int) -> dict[str, Any]:
    """One run: its counts, its messages by status and the failures' reasons."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import Assignment, Campaign, CampaignRun, OutboxMessage, PromoCode

    with ws.store.session() as s:
        run = s.get(CampaignRun, run_id)
        if run is None:
            raise InvalidParameter("run_id", run_id, "the id of a run (see campaign list)")
        name = s.scalar(select(Campaign.name).where(Campaign.id == run.campaign_id))
        by_status = dict(s.execute(select(OutboxMessage.status, func.count()).where(OutboxMessage.run_id == run_id)
                                   .group_by(OutboxMessage.status)).all())
        issued, redeemed = s.execute(select(func.count(PromoCode.code), func.count(PromoCode.redeemed_at))
                                     .join(Assignment, Assignment.id == PromoCode.assignment_id)
                                     .where(Assignment.run_id == run_id)).one()
        failures = [{"customer_id": c, "to": a, "detail": d} for c, a, d in s.execute(
            select(OutboxMessage.customer_id, OutboxMessage.to_address, OutboxMessage.detail)
            .where(OutboxMessage.run_id == run_id, OutboxMessage.status == "failed").limit(20)).all()]
        return {"run_id": run.id, "campaign": name, "as_of": run.as_of.isoformat(), "status": run.status,
                "counts": run.counts, "messages": {k: int(v) for k, v in by_status.items()}, "failures": failures,
                "promo_codes": {"issued": int(issued), "redeemed": int(redeemed)},
                "snapshot_id": run.snapshot_id, "model_version": run.model_version}


def why(ws: Workspace, customer_id: str, name: str | None = None, as_of: dt.date | None = None) -> list[dict]:
    """Why did (or didn't) this customer get a message: each recorded assignment with its
    arm, reason and delivery; for a named campaign without one, where a plan as of today
    stops them (not triggered, not in the audience, excluded, a gate)."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Assignment, Campaign, OutboxMessage

    with ws.store.session() as s:
        q = select(Campaign.name, Assignment.occurrence, Assignment.arm, Assignment.reason, Assignment.created_at,
                   OutboxMessage.status, OutboxMessage.sent_at, OutboxMessage.detail, Assignment.promo_code) \
            .join(Campaign, Campaign.id == Assignment.campaign_id) \
            .join(OutboxMessage, OutboxMessage.assignment_id == Assignment.id, isouter=True) \
            .where(Assignment.customer_id == customer_id).order_by(Assignment.id)
        if name:
            q = q.where(Campaign.name == name)
        rows = s.execute(q).all()
    out = [{"campaign": c, "occurrence": o, "arm": a, "reason": r or "sent", "decided_at": when.isoformat(),
            "message": st, "sent_at": sent.isoformat() if sent else None, "detail": d, "promo_code": code,
            "explanation": _explain(a, r, st, d)}
           for c, o, a, r, when, st, sent, d, code in rows]
    if out or not name:
        return out
    p = plan_campaign(ws, name, as_of)
    me = p.frame[p.frame.customer_id == str(customer_id)]
    if me.empty:
        return [{"campaign": name, "occurrence": None, "arm": None, "reason": "not triggered", "message": None,
                 "explanation": f"the {name} trigger does not fire for {customer_id} as of {p.as_of}"}]
    r = me.iloc[0]
    return [{"campaign": name, "occurrence": r.occurrence, "arm": r.arm, "reason": r.reason or "would be sent",
             "message": None, "explanation": f"planned as of {p.as_of}: stopped at {r.stage}" +
             (f" ({r.reason})" if r.reason else "; a run would send it")}]


def _explain(arm: str, reason: str | None, status: str | None, detail: str | None) -> str:
    if reason == "holdout" and status is None:
        return "in the control group, and over the frequency cap: no message would have gone"
    if reason == "holdout":
        return "in the control group: the message was recorded but not sent, to measure the campaign"
    if reason:
        return f"not sent: {reason.replace('_', ' ')}"
    if status == "sent":
        return "sent"
    if status == "failed":
        return f"sending failed: {detail}"
    return f"queued ({status})"


# ------------------------------------------------------------------------------ suppression
def suppress(ws: Workspace, address: str | None, *, channel: str | None = None, kind: str = "manual",
             customer_id: str | None = None, source: str = "manual") -> int:
    """Put an address (or a customer) on a channel's suppression list; the channel of an
    address defaults to email when it has an @, else sms (a customer id needs it named)."""
    from retentio.actions.ledger import add_suppressions

    if channel is None:
        if not address:
            raise InvalidParameter("channel", None, "email or sms (needed for a customer id)")
        channel = "email" if "@" in address else "sms"

    if channel not in ("email", "sms"):
        raise InvalidParameter("channel", channel, "email or sms")
    if not address and not customer_id:
        raise InvalidParameter("address", address, "an email address, a phone number or a customer id")
    return add_suppressions(ws.store, [{"channel": channel, "address": address, "customer_id": customer_id,
                                        "kind": kind}], source)


def unsubscribe(ws: Workspace, token: str) -> dict[str, str]:
    """What the one-click unsubscribe (RFC 8058 POST) does: verify the link's token and
    suppress that customer on that channel for good. Returns who and which channel (the
    web page's :func:`retentio.services.unsubscribe.unsubscribe_by_token`, without its count)."""
    from retentio.services.unsubscribe import unsubscribe_by_token

    done = unsubscribe_by_token(ws, token)
    return {"customer_id": str(done["customer_id"]), "channel": str(done["channel"]),
            "campaign": str(done["campaign"])}


def import_suppressions(ws: Workspace, path: Path, channel: str | None = None) -> dict[str, int]:
    """Import an unsubscribe, bounce or complaint list (CSV or one address per line)."""
    from retentio.actions.ledger import add_suppressions
    from retentio.actions.suppression_files import read_suppression_file

    frame = read_suppression_file(path, channel=channel)
    rows = [{"channel": c, "address": a, "kind": k,
             "occurred_at": t.to_pydatetime() if t is not None and t == t else None}
            for a, c, k, t in zip(frame.address, frame.channel, frame["kind"], frame.occurred_at)]
    added = add_suppressions(ws.store, rows, f"file:{Path(path).name}")
    return {"read": len(frame), "added": added} | {f"kind:{k}": int(v) for k, v in frame["kind"].value_counts().items()}


def suppressions(ws: Workspace) -> pd.DataFrame:
    from retentio.actions.ledger import suppression_list

    return suppression_list(ws.store)


__all__ = ["CampaignPlan", "CampaignRunResult", "PlaybookCheck", "check_playbook", "deliver_due",
           "import_suppressions", "list_runs", "new_playbook", "plan_campaign", "playbook_names", "run_campaign",
           "playbook_summaries", "read", "run_campaigns", "show_run", "suppress", "suppressions", "unsubscribe", "why"]


# ------------------------------------------------------------------------------ editing and previews
def _playbook_path(ws: Workspace, name: str) -> Path:
    """``playbooks/NAME.toml`` of a valid name (a name is a file's stem: never a path)."""
    from retentio.actions.playbooks import PlaybookError, file_name, playbooks_dir

    try:
        file_name(name)
    except ValueError as exc:
        raise PlaybookError(playbooks_dir(ws.path), str(exc), "name") from None
    return playbooks_dir(ws.path) / f"{name}.toml"


def playbook_text(ws: Workspace, name: str) -> str:
    """The TOML text of the playbook ``name`` as written (:class:`PlaybookError` when
    there is no such file)."""
    from retentio.actions.playbooks import PlaybookError, list_playbooks

    path = _playbook_path(ws, name)
    if not path.is_file():
        known = ", ".join(list_playbooks(ws.path)) or "none yet; create one with `playbook new KIND NAME`"
        raise PlaybookError(path, f"no such playbook (known: {known})")
    return path.read_text(encoding="utf-8")


def validate_playbook_text(ws: Workspace, name: str, text: str) -> Playbook:
    """The playbook ``text`` would be as ``playbooks/NAME.toml``, checked in full the way
    :func:`check_playbook` checks a file (fields, templates rendered once with every
    variable, the channel's settings); :class:`PlaybookError` naming the field. Writes nothing."""
    from retentio.actions.campaigns import _templates
    from retentio.actions.context import sample_context
    from retentio.actions.playbooks import PlaybookError, parse_playbook

    path = _playbook_path(ws, name)
    pb = parse_playbook(text, path, name)
    if pb.name != name:
        raise PlaybookError(path, f"the name must stay {name!r} (the file's name); got {pb.name!r}", "name")
    if pb.channel.kind == "email" and not ws.settings.channels.email.host:
        raise PlaybookError(path, f"kind = \"email\" needs [channels.email] host and sender in "
                                  f"{ws.path / 'retentio.toml'}", "[channel] kind")
    if pb.channel.kind == "webhook" and not ws.settings.channels.webhook.url:
        raise PlaybookError(path, f"kind = \"webhook\" needs [channels.webhook] url in {ws.path / 'retentio.toml'}",
                            "[channel] kind")
    _templates(ws, pb).render(sample_context(pb))
    return pb


@dataclass(frozen=True)
class SavedPlaybook:
    """A playbook written after validation: the SHA-256 of the text before and after,
    and how many lines changed."""

    name: str
    path: Path
    before_sha256: str | None
    after_sha256: str
    lines_added: int
    lines_removed: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "before_sha256": self.before_sha256, "after_sha256": self.after_sha256,
                "lines_added": self.lines_added, "lines_removed": self.lines_removed}


def save_playbook(ws: Workspace, name: str, text: str) -> SavedPlaybook:
    """Validate ``text`` in full (:func:`validate_playbook_text`) and only then replace
    ``playbooks/NAME.toml`` atomically (a new file in the folder, renamed over the old)."""
    import difflib
    import hashlib

    path = _playbook_path(ws, name)
    text = text.replace("\r\n", "\n")
    validate_playbook_text(ws, name, text)
    before = path.read_text(encoding="utf-8") if path.is_file() else None
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{name}.toml.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    added = removed = 0
    for line in difflib.unified_diff((before or "").splitlines(), text.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1

    def sha(value: str) -> str:
        return hashlib.sha256(value.encode("utf-8")).hexdigest()

    return SavedPlaybook(name, path, sha(before) if before is not None else None, sha(text), added, removed)


def preview_message(ws: Workspace, name: str, customer_id: str, as_of: dt.date | None = None) -> dict[str, Any]:
    """The message of playbook ``name`` rendered for one real customer, as a run would
    render it (the customer's facts, segment, offer and picks; the promo code and links
    as placeholders, since a run issues them). ``triggered``: whether the trigger fires
    for the customer as of the day (their trigger facts are used when it does).
    :class:`InvalidParameter` (field ``customer``) for an unknown customer."""
    import pandas as pd

    from retentio.actions import audience as aud
    from retentio.actions.campaigns import _templates, latest_scores
    from retentio.actions.context import message_context, picks
    from retentio.actions.offers import offer_for
    from retentio.actions.playbooks import read_playbook
    from retentio.actions.triggers import as_of_instant, triggered

    pb = read_playbook(ws.path, name)
    customer_id = str(customer_id)
    if not ws.is_loaded("customers"):
        raise InvalidParameter("customer", customer_id, "a customer id (no customers are loaded)")
    t = ws.table("customers")
    if t.filter(t.customer_id.cast("string") == customer_id).count().to_pyarrow().as_py() == 0:
        raise InvalidParameter("customer", customer_id, "the id of a loaded customer")
    instant = as_of_instant(ws, as_of)
    scores = latest_scores(ws, ws.store, instant.date()) if aud.needs_scores(pb) else None
    who = pd.Series([customer_id])
    row = aud.facts(ws, who, instant, pb, scores)
    row = row[row.customer_id.astype(str) == customer_id]
    trig = triggered(ws, pb, instant, scores.frame if scores is not None else None)
    trig = trig[trig.customer_id.astype(str) == customer_id]
    fired = not trig.empty
    values: dict[str, Any] = trig.iloc[0].to_dict() if fired else {}
    if not row.empty:
        values.update(row.iloc[0].to_dict())
    values["customer_id"] = customer_id

    def fact(key: str) -> Any:
        v = values.get(key)
        return None if v is None or (isinstance(v, float) and v != v) else v

    offer = offer_for(pb.offer, fact("segment"), fact("churn_band"), lang=pb.message.lang,
                      currency=ws.settings.currency)
    code = "XXXXX-XXXXX" if offer["code"] else None
    valid_until = (instant + pd.Timedelta(days=pb.offer.valid_days)).date() if code else None
    picked = picks(ws, pd.DataFrame([values]), pb, instant).get(customer_id, [])
    ctx = message_context(values, offer, code, valid_until, picked, "https://example.com/unsubscribe",
                          "https://example.com/s/TOKEN" if pb.survey_kind else None)
    rendered = _templates(ws, pb).render(ctx)
    return {"campaign": name, "customer_id": customer_id, "as_of": instant.date().isoformat(), "triggered": fired,
            "channel": pb.channel.kind, **rendered}


__all__ += ["SavedPlaybook", "playbook_text", "preview_message", "save_playbook", "validate_playbook_text"]
