"""Delivering the outbox: every message is committed to the store before it is sent
(:func:`retentio.actions.campaigns.record`); a sender claims due rows, sends each, and
records each result in its own transaction.

Exactly once, and its one window
--------------------------------
A row goes ``pending`` → ``sending`` (claimed: ``claimed_by``, ``claimed_at``) →
``sent`` / ``retry`` / ``failed``. A sender killed at any point leaves its claimed rows
in ``sending``; the next sender takes them back (at once when the claimer's process on
this host is gone, otherwise after ``lease_s``) and sends them. Every message is
therefore delivered, and none twice — except the one message that was *in flight* when
the process died: accepted by the server but not yet recorded as sent. That one is sent
again, with the same ``Message-ID`` / idempotency key, so a provider (or the receiver)
can drop the copy. Channels that can check for themselves (the CSV export reads the
ids it already wrote) close even that window.

Transient failures (SMTP 4xx, HTTP 429/5xx, timeouts) go back to ``retry`` with
exponential backoff (``retry_base_s`` × 2^(attempt−1)) until ``max_attempts``; permanent
ones are ``failed`` with the server's words. On PostgreSQL several senders run at once:
rows are claimed with ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers instead.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retentio.actions.channels.base import Channel, ChannelError, Delivery, OutgoingMessage
from retentio.actions.ledger import utcnow

if TYPE_CHECKING:
    from retentio.data.store import Store

Progress = Callable[[str], None]


@dataclass
class DeliveryCounts:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0
    retry: int = 0
    reclaimed: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "retry": self.retry, "reclaimed": self.reclaimed,
                "deferred": self.deferred}


def _alive(claimer: str | None) -> bool:
    """Whether the process that claimed a row may still be sending it."""
    if not claimer:
        return False
    host, _, rest = claimer.partition(":")
    pid = rest.split(":")[0]
    if host != os.uname().nodename or not pid.isdigit():
        return True  # another machine: only the lease tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(store: Store, worker: str, channel: str, scope: dict[str, int | None], limit: int, lease_s: float,
           counts: DeliveryCounts) -> list[Any]:
    from sqlalchemy import select, update

    from retentio.data.store.campaign_tables import OutboxMessage as M

    now = utcnow()
    with store.session() as s:
        # candidates through the (status, not_before) index: no ORDER BY id, which would walk
        # every message already sent before reaching the due ones (quadratic over a big run)
        q = _scoped(select(M.id, M.status, M.claimed_by, M.claimed_at)
                    .where(M.status.in_(("pending", "retry", "sending")), M.channel == channel,
                           M.not_before <= now), scope).limit(limit * 4)
        if s.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids = []
        for row_id, status, claimer, claimed_at in s.execute(q):
            if status == "sending":
                stale = claimed_at is None or (now - _aware(claimed_at)).total_seconds() > lease_s
                if _alive(claimer) and not stale:
                    continue
                counts.reclaimed += 1
            ids.append(row_id)
            if len(ids) >= limit:
                break
        if not ids:
            return []
        s.execute(update(M).where(M.id.in_(ids)).values(status="sending", claimed_by=worker, claimed_at=now))
        rows = s.execute(select(M.id, M.message_id, M.payload, M.customer_id, M.to_address, M.subject, M.body_text,
                                M.body_html, M.unsubscribe_url, M.attempts).where(M.id.in_(ids)).order_by(M.id)).all()
        return [(r.id, OutgoingMessage(r.message_id, str((r.payload or {}).get("campaign", "")), r.customer_id,
                                       r.to_address, r.subject, r.body_text, r.body_html, r.unsubscribe_url,
                                       dict(r.payload or {}) | {"customer_id": r.customer_id}), r.attempts)
                for r in rows]


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _release(store: Store, ids: list[int]) -> None:
    """Give claimed rows back untouched (the channel could not open)."""
    from sqlalchemy import update

    from retentio.data.store.campaign_tables import OutboxMessage as M

    if ids:
        with store.session() as s:
            s.execute(update(M).where(M.id.in_(ids), M.status == "sending")
                      .values(status="pending", claimed_by=None, claimed_at=None))


def _record(conn: Any, worker: str, results: list[tuple[int, str, str, int, dt.datetime | None]]) -> None:
    """Each result, in one transaction on the sender's connection, on rows this sender
    still holds (never over another sender's claim)."""
    from sqlalchemy import bindparam, func, update

    from retentio.data.store.campaign_tables import OutboxMessage as M

    now = utcnow()
    statement = (update(M).where(M.id == bindparam("row_id"), M.claimed_by == worker)
                 .values(status=bindparam("new_status"), detail=bindparam("new_detail"),
                         attempts=bindparam("new_attempts"),
                         sent_at=func.coalesce(bindparam("new_sent_at", type_=M.sent_at.type), M.sent_at),
                         not_before=func.coalesce(bindparam("new_not_before", type_=M.not_before.type),
                                                  M.not_before),
                         claimed_by=None, claimed_at=None))
    params = [{"row_id": row_id, "new_status": status, "new_detail": detail[:2000], "new_attempts": attempts,
               "new_sent_at": now if status == "sent" else None, "new_not_before": when}
              for row_id, status, detail, attempts, when in results]
    with conn.begin():
        conn.execute(statement, params)


def _scoped(q: Any, scope: dict[str, int | None]) -> Any:
    """Only the messages of one campaign and/or one run (when given)."""
    from retentio.data.store.campaign_tables import OutboxMessage as M

    if scope.get("campaign_id") is not None:
        q = q.where(M.campaign_id == scope["campaign_id"])
    if scope.get("run_id") is not None:
        q = q.where(M.run_id == scope["run_id"])
    return q


def deliver(store: Store, channel: Channel, *, campaign_id: int | None = None, run_id: int | None = None,
            worker: str, max_attempts: int = 5, retry_base_s: float = 30.0, wait_s: float = 0.0,
            lease_s: float = 600.0, batch: int = 100, record_every: int = 1,
            quiet: Callable[[dt.datetime], dt.datetime | None] | None = None,
            progress: Progress = lambda _m: None) -> DeliveryCounts:
    """Send the due messages of ``channel`` (of one campaign, one run, or all), recording
    each result.

    ``record_every`` > 1 records results in groups: only for channels that recognise a
    message they already delivered (the CSV export), where a lost group costs nothing.
    ``wait_s``: how long to wait for retries that become due (0: leave them for the next
    pass). ``quiet(now)`` gives the end of quiet hours when they hold: then nothing is
    sent (the messages wait), and a retry that would fall in them waits for their end.
    A sender renews its claim on a batch while it works through it (every third of the
    lease), so a slow but live sender never has its rows taken over; a row another
    sender took back is skipped. An error while building or sending one message fails
    that message, not the pass. Raises :class:`ChannelError` when the channel cannot
    open; the rows it had claimed are given back, nothing is sent."""
    counts = DeliveryCounts()
    scope = {"campaign_id": campaign_id, "run_id": run_id}
    opened = False
    deadline = time.monotonic() + wait_s
    recorder = store.engine.connect()  # one connection for the per-message records
    try:
        while True:
            if quiet is not None and quiet(utcnow()) is not None:
                counts.deferred += _due_count(store, channel.name, scope)
                break
            claimed = _claim(store, worker, channel.name, scope, batch, lease_s, counts)
            if not claimed:
                wait = _next_retry(store, channel.name, scope)
                if wait is None or time.monotonic() + wait > deadline:
                    break
                time.sleep(max(wait, 0.01))
                continue
            if not opened:
                try:
                    channel.open()
                except ChannelError:
                    _release(store, [i for i, _, _ in claimed])
                    raise
                opened = True
            pending: list[tuple[int, str, str, int, dt.datetime | None]] = []
            renewed_at = time.monotonic()
            mine = {i for i, _, _ in claimed}
            for row_id, message, attempts in claimed:
                if time.monotonic() - renewed_at > lease_s / 3:
                    mine = _renew(store, worker, [i for i in mine])
                    renewed_at = time.monotonic()
                if row_id not in mine:
                    continue  # taken over by another sender: it is theirs to send
                try:
                    d = channel.send(message)
                except Exception as e:  # noqa: BLE001 - one message's problem must not stop the others
                    d = Delivery("failed", f"{type(e).__name__}: {e}")
                attempts += 1
                when = None
                status = d.status
                if status == "retry":
                    if attempts >= max_attempts:
                        status = "failed"
                    else:
                        when = utcnow() + dt.timedelta(seconds=retry_base_s * 2 ** (attempts - 1))
                        if quiet is not None:
                            when = quiet(when) or when
                setattr(counts, status, getattr(counts, status) + 1)
                pending.append((row_id, status, d.detail, attempts, when))
                if len(pending) >= record_every:
                    _flush(channel)
                    _record(recorder, worker, pending)
                    for _ in pending:
                        progress("sent")
                    pending = []
            if pending:
                _flush(channel)
                _record(recorder, worker, pending)
                for _ in pending:
                    progress("sent")
    finally:
        recorder.close()
        if opened:
            channel.close()
    return counts


def _renew(store: Store, worker: str, ids: list[int]) -> set[int]:
    """Extend this sender's claim on ``ids``; returns the ids it still holds."""
    from sqlalchemy import select, update

    from retentio.data.store.campaign_tables import OutboxMessage as M

    if not ids:
        return set()
    with store.session() as s:
        s.execute(update(M).where(M.id.in_(ids), M.claimed_by == worker, M.status == "sending")
                  .values(claimed_at=utcnow()))
        return set(s.scalars(select(M.id).where(M.id.in_(ids), M.claimed_by == worker, M.status == "sending")))


def _due_count(store: Store, channel: str, scope: dict[str, int | None]) -> int:
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import OutboxMessage as M

    with store.session() as s:
        return int(s.scalar(_scoped(select(func.count()).select_from(M).where(
            M.status.in_(("pending", "retry", "sending")), M.channel == channel), scope)) or 0)


def _flush(channel: Channel) -> None:
    """Make what the channel wrote durable before the store says it was sent."""
    flush = getattr(channel, "flush", None)
    if flush is not None:
        flush()


def _next_retry(store: Store, channel: str, scope: dict[str, int | None]) -> float | None:
    """Seconds until the next retry of ``channel`` is due (None: none waiting)."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import OutboxMessage as M

    with store.session() as s:
        when = s.scalar(_scoped(select(func.min(M.not_before)).where(M.status == "retry", M.channel == channel),
                                scope))
    if when is None:
        return None
    return max((_aware(when) - utcnow()).total_seconds(), 0.0)


def waiting(store: Store, run_id: int | None = None) -> dict[str, int]:
    """Messages per outbox status (of one run, or all)."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import OutboxMessage as M

    with store.session() as s:
        q = select(M.status, func.count()).group_by(M.status)
        if run_id is not None:
            q = q.where(M.run_id == run_id)
        return {k: int(v) for k, v in s.execute(q).all()}


__all__ = ["DeliveryCounts", "deliver", "waiting"]
