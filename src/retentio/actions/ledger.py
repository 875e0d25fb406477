"""Reading and writing the campaign tables of the store (see
:mod:`retentio.data.store.campaign_tables`): what was already assigned, who is
suppressed, how many messages a customer had lately, and recording a run — its
assignments, promo codes and outbox — in **one transaction**, so a run is either wholly
recorded or not at all, and nothing is sent before it is.

Inserts of assignments skip (campaign, customer, occurrence) keys that already exist
(``ON CONFLICT DO NOTHING`` on both SQLite and PostgreSQL): two runs of the same campaign
at once, or one repeated, record each occurrence once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from retentio.actions.gates import normalize_address

if TYPE_CHECKING:
    from retentio.data.store import Store

#: suppression kinds → the gate reason they give
SUPPRESSION_REASONS = {"unsubscribe": "unsubscribed", "hard_bounce": "bounced", "complaint": "complained",
                       "manual": "suppressed"}
#: outbox statuses of a message that went, or will go, out
LIVE = ("pending", "sending", "sent", "retry")
#: what takes a place under the frequency cap: live messages and control's withheld ones
COUNTED = (*LIVE, "withheld")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _insert_ignoring(session: Any, table: Any, rows: Sequence[dict], keys: list[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING, in chunks (SQLite's variable limit)."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=keys)
    for i in range(0, len(rows), 20_000):
        session.execute(statement, list(rows[i:i + 20_000]))


def assigned(store: Store, campaign: str) -> set[tuple[str, str]]:
    """(customer, occurrence) pairs the campaign has already acted on."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Assignment, Campaign

    with store.session() as s:
        rows = s.execute(select(Assignment.customer_id, Assignment.occurrence).join(
            Campaign, Campaign.id == Assignment.campaign_id).where(Campaign.name == campaign)).all()
    return {(c, o) for c, o in rows}


def suppressed(store: Store, channel: str, soft_limit: int) -> dict[str, set[str]]:
    """Per gate reason: the addresses and customer ids the channel must not send to.
    Soft bounces suppress an address once ``soft_limit`` came with no delivery since."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import OutboxMessage, Suppression

    kind = "email" if channel == "email" else "sms"
    out: dict[str, set[str]] = {r: set() for r in SUPPRESSION_REASONS.values()}
    with store.session() as s:
        rows = s.execute(select(Suppression.kind, Suppression.address, Suppression.customer_id, Suppression.created_at)
                         .where(Suppression.channel == kind)).all()
        last_sent = dict(s.execute(select(OutboxMessage.to_address, func.max(OutboxMessage.sent_at))
                                   .where(OutboxMessage.status == "sent").group_by(OutboxMessage.to_address)).all())
    soft: dict[str, int] = {}
    for k, address, customer, created in rows:
        if k == "soft_bounce":
            sent = last_sent.get(address)
            if address and (sent is None or _aware(created) > _aware(sent)):
                soft[address] = soft.get(address, 0) + 1
            continue
        target = out[SUPPRESSION_REASONS[k]]
        if address:
            target.add(normalize_address(address, channel=kind) or address)
        if customer:
            target.add(customer)
    out["bounced"] |= {a.lower() for a, n in soft.items() if n >= soft_limit}
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def recent_counts(store: Store, since: dt.datetime, *, exclude_campaign: str | None = None,
                  marketing_only: bool = True, session: Any = None) -> pd.Series:
    """Messages per customer sent, queued or withheld (a control customer's would-be
    message counts as if sent, so later campaigns treat both arms alike) since ``since``
    — marketing class only by default; all campaigns but ``exclude_campaign``. Read in
    ``session`` when given (inside a transaction), else in a session of its own."""
    from sqlalchemy import func, select

    from retentio.data.store.campaign_tables import Campaign, OutboxMessage

    when = func.coalesce(OutboxMessage.sent_at, OutboxMessage.not_before)
    q = select(OutboxMessage.customer_id, func.count()).where(OutboxMessage.status.in_(COUNTED), when >= since)
    if marketing_only:
        q = q.where(OutboxMessage.message_class == "marketing")
    if exclude_campaign is not None:
        q = q.join(Campaign, Campaign.id == OutboxMessage.campaign_id).where(Campaign.name != exclude_campaign)
    q = q.group_by(OutboxMessage.customer_id)
    if session is not None:
        rows = session.execute(q).all()
    else:
        with store.session() as s:
            rows = s.execute(q).all()
    return pd.Series({c: int(n) for c, n in rows}, dtype="int64")


def campaign_id(session: Any, name: str, kind: str, definition: dict, now: dt.datetime) -> int:
    """The id of campaign ``name``, created on its first run; its definition is updated."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Campaign

    row = session.scalars(select(Campaign).where(Campaign.name == name)).first()
    if row is None:
        row = Campaign(name=name, kind=kind, created_at=now, definition=definition)
        session.add(row)
        session.flush()
    else:
        row.definition = definition
        row.kind = kind
    return int(row.id)


def add_suppressions(store: Store, rows: Iterable[dict], source: str) -> int:
    """Store suppression entries (channel, address and/or customer_id, kind); returns how
    many were new (an entry already on the list is not stored twice)."""
    from sqlalchemy import insert, select

    from retentio.data.store.campaign_tables import Suppression

    now = utcnow()
    added = 0
    with store.session() as s:
        stored = s.execute(select(Suppression.channel, Suppression.address, Suppression.customer_id, Suppression.kind,
                                  Suppression.created_at)).all()
        have = {(c, a, cu, k) for c, a, cu, k, _ in stored}
        soft_seen: set[tuple] = {(c, a, cu, k, _aware(t).isoformat()) for c, a, cu, k, t in stored
                                 if k == "soft_bounce"}
        new = []
        for r in rows:
            address = normalize_address(r.get("address"), channel=r["channel"])
            created = r.get("occurred_at")
            created = created if isinstance(created, dt.datetime) else None
            key = (r["channel"], address, r.get("customer_id") or None, r["kind"])
            # a soft bounce counts each time it happened: the same bounce imported twice
            # (same address and time) is one
            soft_key = (*key, _aware(created).isoformat() if created else None)
            if r["kind"] != "soft_bounce" and key in have or r["kind"] == "soft_bounce" and created \
                    and soft_key in soft_seen:
                continue
            have.add(key)
            soft_seen.add(soft_key)
            new.append({"channel": r["channel"], "address": address, "customer_id": r.get("customer_id") or None,
                        "kind": r["kind"], "source": source, "created_at": created or now})
        if new:
            s.execute(insert(Suppression), new)
        added = len(new)
    return added


def assignments_frame(store: Store, campaign: str | None = None) -> pd.DataFrame:
    """Every assignment (of one campaign, or all): campaign, run, customer, occurrence,
    arm, reason, expected value, offer kind and value, promo code and its redemption,
    the score snapshot and model version, and the message's channel, status, time sent
    and cost — the data the measurement of a campaign starts from."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Assignment, Campaign, OutboxMessage, PromoCode

    q = (select(Campaign.name, Assignment.run_id, Assignment.customer_id, Assignment.occurrence, Assignment.arm,
                Assignment.reason, Assignment.expected_value, Assignment.offer, Assignment.promo_code,
                PromoCode.redeemed_at, PromoCode.redeemed_order_id, Assignment.snapshot_id, Assignment.model_version,
                Assignment.created_at, OutboxMessage.channel, OutboxMessage.status, OutboxMessage.sent_at,
                OutboxMessage.cost)
         .join(Campaign, Campaign.id == Assignment.campaign_id)
         .join(OutboxMessage, OutboxMessage.assignment_id == Assignment.id, isouter=True)
         .join(PromoCode, PromoCode.assignment_id == Assignment.id, isouter=True)
         .order_by(Assignment.id))
    if campaign is not None:
        q = q.where(Campaign.name == campaign)
    with store.session() as s:
        rows = s.execute(q).all()
    frame = pd.DataFrame(rows, columns=["campaign", "run_id", "customer_id", "occurrence", "arm", "reason",
                                        "expected_value", "offer", "promo_code", "redeemed_at", "redeemed_order_id",
                                        "snapshot_id", "model_version", "assigned_at", "channel", "message_status",
                                        "sent_at", "cost"])
    frame["offer_kind"] = frame.offer.map(lambda o: (o or {}).get("kind"))
    frame["offer_value"] = frame.offer.map(lambda o: (o or {}).get("value"))
    return frame.drop(columns=["offer"])


def runs_frame(store: Store) -> pd.DataFrame:
    """Every campaign run: run id, campaign, its kind, the as-of day, the planned control
    share (%) and the playbook's attribution window (None: the workspace default)."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Campaign, CampaignRun

    with store.session() as s:
        rows = s.execute(select(CampaignRun.id, Campaign.name, Campaign.kind, CampaignRun.as_of,
                                CampaignRun.holdout_pct, Campaign.definition)
                         .join(Campaign, Campaign.id == CampaignRun.campaign_id).order_by(CampaignRun.id)).all()
    return pd.DataFrame(
        [(r, n, k, a, float(h), ((d or {}).get("measure") or {}).get("window_days")) for r, n, k, a, h, d in rows],
        columns=["run_id", "campaign", "kind", "as_of", "holdout_pct", "window_days"])


def suppression_list(store: Store) -> pd.DataFrame:
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Suppression

    with store.session() as s:
        rows = s.execute(select(Suppression.channel, Suppression.address, Suppression.customer_id, Suppression.kind,
                                Suppression.source, Suppression.created_at).order_by(Suppression.id)).all()
    return pd.DataFrame(rows, columns=["channel", "address", "customer_id", "kind", "source", "created_at"])


__all__ = ["LIVE", "SUPPRESSION_REASONS", "add_suppressions", "assigned", "assignments_frame", "campaign_id",
           "recent_counts", "runs_frame", "suppressed", "suppression_list", "utcnow"]
