"""Bonus points a campaign promised: when a message whose offer is ``points`` has been
sent, the points are credited to the customer in the workspace's points program — once
per assignment (key ``campaign:ASSIGNMENT``), however often delivery runs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from retentio.actions.loyalty import book
from retentio.actions.loyalty.ledger import Batch, Ledger, Op
from retentio.actions.loyalty.programs import list_programs, read_program

if TYPE_CHECKING:
    from pathlib import Path

    from retentio.data.store import Store


def points_ledger(workspace: Path, store: Store) -> Ledger | None:
    """The ledger campaigns credit: the workspace's first points program (by name), if any."""
    for name in list_programs(workspace):
        try:
            program = read_program(workspace, name)
        except Exception:  # a broken program file is reported by `loyalty program list`, not here
            continue
        if program.kind == "points":
            return Ledger(store, program, actor="campaigns")
    return None


def credit_sent_points(ledger: Ledger, *, batch_size: int = 2000) -> int:
    """Credit every sent ``points`` offer not credited yet; returns how many were."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Assignment, Campaign, OutboxMessage

    with ledger.store.session() as s:
        rows = s.execute(select(Assignment.id, Assignment.customer_id, Assignment.offer, OutboxMessage.sent_at,
                                Campaign.name)
                         .join(OutboxMessage, OutboxMessage.assignment_id == Assignment.id)
                         .join(Campaign, Campaign.id == Assignment.campaign_id)
                         .where(OutboxMessage.status == "sent")).all()
    due = [(f"campaign:{i}", str(c), int(float(offer.get("value") or 0)), _naive(sent), name)
           for i, c, offer, sent, name in rows
           if (offer or {}).get("kind") == "points" and float(offer.get("value") or 0) >= 1]
    done = 0
    for start in range(0, len(due), batch_size):
        chunk = due[start:start + batch_size]

        def work(batch: Batch, chunk: list[tuple[str, str, int, dt.datetime, str]] = chunk) -> int:
            known = batch.known(k for k, *_ in chunk)
            todo = [x for x in chunk if x[0] not in known]
            batch.load({c for _, c, *_ in todo}, create_at={c: at for _, c, _, at, _ in todo})
            for key, customer, points, at, campaign in todo:
                m = batch.member(customer)
                batch.settle(m, at)
                lot = f"{ledger.program.name}:{key}"
                lines = book.earn(m, lot, points, at, source="campaign", expires_at=_expiry(ledger, at))
                batch.add(Op(key, "earn", customer, {"kind": "earn", "customer": customer, "points": points,
                                                     "campaign": campaign},
                             {"customer": customer, "earned": points, "lot": lot}, at, lines,
                             reason=f"campaign {campaign}"))
            return len(todo)

        done += ledger.transaction(work)
    return done


def _expiry(ledger: Ledger, at: dt.datetime) -> Any:
    from retentio.actions.loyalty.ledger import expiry_of

    return expiry_of(ledger.program, at)


def _naive(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


__all__ = ["credit_sent_points", "points_ledger"]
