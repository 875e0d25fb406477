"""Running campaigns: plan every playbook of the run first, let them share the frequency
cap, then record each (one transaction) and deliver its messages through its channel.

An email channel is connected and logged in before anything is recorded, so wrong
credentials or an unreachable server record nothing. Delivery covers all due messages
of the campaign — also those a killed earlier run left behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retentio.actions.ledger import utcnow

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

Progress = Callable[[str], None]


def _quiet(_m: str) -> None:
    """Report nothing."""


@dataclass(frozen=True)
class RunResult:
    """A run: recorded (treatment, control, queued) and delivered (sent, failed, ...)."""

    run_id: int
    name: str
    as_of: dt.date
    treatment: int
    control: int
    sent: int
    failed: int
    retry: int
    deferred: int
    suppressed: dict[str, int]
    counts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "campaign": self.name, "as_of": self.as_of.isoformat(),
                "treatment": self.treatment, "control": self.control, "sent": self.sent, "failed": self.failed,
                "retry": self.retry, "deferred": self.deferred, "suppressed": self.suppressed}


def _channel(ws: Workspace, campaign: str, kind: str, env: Mapping[str, str]) -> Any:
    """The channel ``kind`` of the workspace; a CSV export goes to ``exports/CAMPAIGN.csv``."""
    from retentio.actions.channels import make_channel

    folder = Path(ws.settings.channels.csv.folder)
    folder = folder if folder.is_absolute() else ws.path / folder
    return make_channel(kind, ws.settings.channels, export_path=folder / f"{campaign}.csv", env=env)


def run_playbooks(ws: Workspace, names: list[str], as_of: dt.date | None = None, *, env: Mapping[str, str],
                  progress: Progress = _quiet, wait_s: float | None = None,
                  now: dt.datetime | None = None) -> list[RunResult]:
    """Run the playbooks ``names`` **together**: all are planned first and share the
    frequency cap, so where only one message fits a customer the one with the higher
    expected value goes (:func:`retentio.actions.campaigns.share_cap`); then each is
    recorded in one transaction and its messages delivered exactly once. Promo codes that
    orders carry are marked redeemed first. ``env`` holds the channels' secrets."""
    from retentio.actions.campaigns import finish, plan, record, share_cap, waiting, worker_name
    from retentio.actions.outbox import deliver
    from retentio.actions.playbooks import read_playbook
    from retentio.actions.promo import redeem

    books = [read_playbook(ws.path, n) for n in names]
    channels = [_channel(ws, pb.name, pb.channel.kind, env) for pb in books]
    for pb, channel in zip(books, channels):
        _check_links(ws, pb)
        if pb.channel.kind == "email":
            channel.open()  # ChannelError (refused login, no server) before anything is written
            channel.close()
    redeem(ws, ws.store)
    now = now or utcnow()
    plans = [plan(ws, pb, as_of, now=now, samples=0, progress=progress) for pb in books]
    share_cap(ws, plans)
    c = ws.settings.campaigns
    results = []
    for pb, p, channel in zip(books, plans, channels):
        rec = record(ws, p, progress=progress)
        counts = deliver(ws.store, channel, campaign_id=rec.campaign_id, worker=worker_name(),
                         max_attempts=c.max_attempts, retry_base_s=c.retry_base_s,
                         wait_s=c.retry_wait_s if wait_s is None else wait_s,
                         record_every=_record_every(pb.channel.kind), batch=_batch(pb.channel.kind),
                         quiet=_quiet_hours(ws), progress=progress)
        # each message's own not_before counts (a survey's weekday morning), not only the plan's quiet hours
        later = waiting(ws.store, rec.run_id)
        final = finish(ws, rec.run_id, counts.as_dict() | {"waiting": later})
        results.append(RunResult(rec.run_id, pb.name, p.as_of, rec.counts["treatment"], rec.counts["control"],
                                 counts.sent, counts.failed, counts.retry, later, rec.counts["suppressed"], final))
    credit_points(ws)
    return results


def credit_points(ws: Workspace) -> int:
    """Credit the bonus points of sent ``points`` offers to the workspace's points program
    (none when it has no points program); once per assignment."""
    from retentio.actions.loyalty.campaign_points import credit_sent_points, points_ledger

    book = points_ledger(ws.path, ws.store)
    return credit_sent_points(book) if book is not None else 0


#: hosts that reach this machine only: loopback, and the unspecified addresses (0.0.0.0, ::), which
#: a client connects to as this machine too
_LOCAL_HOSTS = ("localhost", "::1", "[::1]", "0.0.0.0", "::", "[::]", "0", "0:0:0:0:0:0:0:0", "0:0:0:0:0:0:0:1")


def _loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (loopback or unspecified, IPv4 or IPv6)."""
    name = (host or "").strip().lower().rstrip(".")
    if name in _LOCAL_HOSTS or name.startswith("127.") or name.endswith(".localhost"):
        return True
    import ipaddress

    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _check_links(ws: Workspace, pb: Any) -> None:
    """Email to the outside world must carry links the recipients can reach — the
    unsubscribe link of marketing mail, the answer link of a survey: refuse a loopback
    ``unsubscribe_url`` / ``survey_base_url`` (the defaults) unless the SMTP server is
    loopback too (a local test) — else every such link would be dead."""
    from urllib.parse import urlsplit

    from retentio.actions.channels.base import ChannelError

    if pb.channel.kind != "email" or _loopback(ws.settings.channels.email.host):
        return
    links = []
    if pb.message.message_class == "marketing":
        links.append((ws.settings.campaigns.unsubscribe_url, "unsubscribe", "unsubscribe_url",
                      "the address where `retentio serve` is reachable"))
    if pb.survey_kind is not None:
        links.append((ws.settings.campaigns.survey_base_url, "answer", "survey_base_url",
                      "the address where the survey page is served"))
    for url, verb, setting, where in links:
        if _loopback(urlsplit(url).hostname):
            raise ChannelError(f"{url!r} points at this machine, so recipients of {pb.name} could not {verb}; set "
                               f"it to {where}", f"[campaigns] {setting}")


def _quiet_hours(ws: Workspace) -> Callable[[dt.datetime], dt.datetime | None]:
    """When the workspace's quiet hours hold at a time: their end (else None)."""
    from retentio.actions.gates import quiet_until

    c = ws.settings.campaigns
    return lambda when: quiet_until(when, ws.settings.timezone, c.quiet_start, c.quiet_end)


def _record_every(kind: str) -> int:
    """Results recorded one by one, except for the CSV export, which recognises what it
    already wrote (so a lost group of records costs nothing)."""
    return 1000 if kind == "csv" else 1


def _batch(kind: str) -> int:
    """Rows claimed at a time: big for the file export, small where each message takes a
    network round trip (a claim held by a slow sender blocks nobody for long)."""
    return 5000 if kind == "csv" else 100


def deliver_due(ws: Workspace, *, env: Mapping[str, str], progress: Progress = _quiet,
                wait_s: float = 0.0) -> dict[str, dict[str, int]]:
    """Send every due message of every campaign (a killed run's, deferred ones, retries)."""
    from retentio.actions.campaigns import worker_name
    from retentio.actions.outbox import deliver

    c = ws.settings.campaigns
    out: dict[str, dict[str, int]] = {}
    # the outbox says which channel: a message queued before its playbook was edited or
    # removed still goes the way it was recorded
    for campaign_id, name, kind in _campaigns_with_due(ws):
        channel = _channel(ws, name, kind, env)
        counts = deliver(ws.store, channel, campaign_id=campaign_id, worker=worker_name(),
                         max_attempts=c.max_attempts, retry_base_s=c.retry_base_s, wait_s=wait_s,
                         progress=progress, record_every=_record_every(kind), batch=_batch(kind),
                         quiet=_quiet_hours(ws))
        out[name] = out.get(name, {}) | counts.as_dict()
    credit_points(ws)
    return out


def _campaigns_with_due(ws: Workspace) -> list[tuple[int, str, str]]:
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Campaign, OutboxMessage

    with ws.store.session() as s:
        rows = s.execute(select(Campaign.id, Campaign.name, OutboxMessage.channel)
                         .join(OutboxMessage, OutboxMessage.campaign_id == Campaign.id)
                         .where(OutboxMessage.status.in_(("pending", "sending", "retry"))).distinct()).all()
    return sorted((int(i), n, k) for i, n, k in rows)




__all__ = ["RunResult", "deliver_due", "run_playbooks"]
