"""The store's loyalty tables: a double-entry, append-only ledger of points.

* ``loyalty_operations`` — one row per operation (earn, redeem, expire, reverse, adjust,
  transfer, release …) with its **idempotency key**, unique per program: a repeated
  request finds its row and returns the stored result instead of writing again. The
  request's hash tells a retry from a different request under the same key.
* ``loyalty_entries`` — the ledger proper, append-only: every movement is a set of
  entries whose amounts sum to zero (double entry). A customer's balance lives in the
  accounts ``available`` and ``pending``; the program's side in ``issued`` (points
  created), ``redeemed``, ``expired`` and ``written_off``. Each entry names the lot it
  moves, the order, the reason, the actor, the operation's key and — for the reversal
  of a return — the policy that applied.
* ``loyalty_lots`` — one row per earning (an order's points, a bonus, an adjustment):
  when it becomes available, when it expires, how much of it is left. Redemptions take
  the oldest-expiring lots first (FIFO), and say which lots they consumed.
* ``loyalty_accounts`` — one row per member and program: the cached balances (updated in
  the same transaction as the entries, so they always equal the ledger's sums), and the
  member's state: tier and its override, discount-card level, membership period, stamp
  card, referral code. The cache is what a redemption locks (``SELECT … FOR UPDATE``
  on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers), and its CHECK
  constraint (``available >= 0`` unless the program allows a negative balance) is the
  database's last guard against an overdraft.
* ``loyalty_events`` — the member's state changes that are not points (tier up/down,
  override, discount level, stamp-card reward, membership paid/lapsed, referral),
  append-only, for the history and the program's statistics.

Nothing in entries, operations or events is ever updated or deleted. Created by
migration ``0004``. The anchor designs are Open Loyalty's points transfers, Odoo's
loyalty history with FIFO expiry and ERPNext's loyalty point entries (points as a
liability).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from retentio.data.store.tables import Base, check_in

#: the customer's accounts and the program's accounts of the double entry
CUSTOMER_ACCOUNTS = ("available", "pending")
PROGRAM_ACCOUNTS = ("issued", "redeemed", "expired", "written_off")
#: kinds of operation (and of entry)
OPERATION_KINDS = ("earn", "redeem", "release", "expire", "reverse", "adjust", "transfer", "reward")
#: what a return does to points already spent
RETURN_POLICIES = ("negative", "other_lots", "write_off")


class LoyaltyOperation(Base):
    """One request to the ledger, once per (program, key)."""

    __tablename__ = "loyalty_operations"
    __table_args__ = (
        UniqueConstraint("program", "key", name="uq_loyalty_operations_key"),
        CheckConstraint(check_in("kind", OPERATION_KINDS), name="ck_loyalty_operations_kind"),
        Index("ix_loyalty_operations_customer", "customer_id", "program"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(String(200))
    #: the request's content (what a retry must repeat) and its SHA-256
    request: Mapped[dict] = mapped_column(JSON)
    request_hash: Mapped[str] = mapped_column(String(64))
    #: what the operation returned (a repeated request gets the same)
    result: Mapped[dict] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(100))
    #: business time of the operation (an order's time, the as-of of an expiry run)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class LoyaltyAccount(Base):
    """A member of a program: cached balances and the member's state."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (
        UniqueConstraint("program", "customer_id", name="uq_loyalty_accounts_member"),
        UniqueConstraint("program", "referral_code", name="uq_loyalty_accounts_referral_code"),
        CheckConstraint("available >= 0 OR negative_ok", name="ck_loyalty_accounts_no_overdraft"),
        CheckConstraint("pending >= 0", name="ck_loyalty_accounts_pending"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[str] = mapped_column(String(200))
    joined_at: Mapped[dt.datetime] = mapped_column(DateTime)
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    negative_ok: Mapped[bool] = mapped_column(Boolean, default=False)
    tier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    tier_override: Mapped[str | None] = mapped_column(String(40), nullable=True)
    tier_reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: discount card: the level held (0-based) and the spend that qualifies
    discount_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    spend: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    last_purchase_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: stamp card: when the current card got its first stamp
    card_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: paid membership: perks until
    member_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    referral_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    referred_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the member's state as one document (cashback periods paid, birthdays credited …)
    state: Mapped[dict] = mapped_column(JSON, default=dict)


class LoyaltyLot(Base):
    """One earning: when it is spendable, when it expires, what is left of it."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        CheckConstraint("points > 0", name="ck_loyalty_lots_points"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="ck_loyalty_lots_remaining"),
        Index("ix_loyalty_lots_account", "account_id", "expires_at"),
        Index("ix_loyalty_lots_order", "program", "order_id"),
    )

    #: the key of the operation that earned it (unique per program)
    id: Mapped[str] = mapped_column(String(220), primary_key=True)
    program: Mapped[str] = mapped_column(String(80))
    account_id: Mapped[int] = mapped_column(ForeignKey("loyalty_accounts.id", ondelete="RESTRICT"))
    customer_id: Mapped[str] = mapped_column(String(200))
    earned_at: Mapped[dt.datetime] = mapped_column(DateTime)
    available_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    #: how much of it redemptions took (a return's shortfall is what was spent)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    released: Mapped[bool] = mapped_column(Boolean)
    reversed: Mapped[bool] = mapped_column(Boolean, default=False)
    order_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: what earned it: order, welcome, birthday, event, adjust, transfer, cashback, referral, campaign
    source: Mapped[str] = mapped_column(String(40))
    #: the order's amount (what a spend-based tier counts)
    spend: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))


class LoyaltyEntry(Base):
    """One line of the ledger (never updated, never deleted)."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="ck_loyalty_entries_amount"),
        CheckConstraint(check_in("account", ("available", "pending", "issued", "redeemed", "expired", "written_off")),
                        name="ck_loyalty_entries_account"),
        CheckConstraint(check_in("kind", OPERATION_KINDS), name="ck_loyalty_entries_kind"),
        CheckConstraint(f"policy IS NULL OR {check_in('policy', RETURN_POLICIES)}", name="ck_loyalty_entries_policy"),
        Index("ix_loyalty_entries_customer", "customer_id", "program"),
        Index("ix_loyalty_entries_operation", "program", "key"),
        # the operation's key names it (no id to read back: entries are written in bulk)
        ForeignKeyConstraint(["program", "key"], ["loyalty_operations.program", "loyalty_operations.key"],
                             name="fk_loyalty_entries_operation", ondelete="RESTRICT"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    lot_id: Mapped[str | None] = mapped_column(String(220), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    policy: Mapped[str | None] = mapped_column(String(20), nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)


class LoyaltyEvent(Base):
    """A member's state change that moves no points (tiers, levels, cards, membership)."""

    __tablename__ = "loyalty_events"
    __table_args__ = (
        UniqueConstraint("program", "key", name="uq_loyalty_events_key"),
        Index("ix_loyalty_events_customer", "customer_id", "program"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program: Mapped[str] = mapped_column(String(80))
    customer_id: Mapped[str] = mapped_column(String(200))
    #: join, tier_up, tier_down, tier_override, discount_level, stamp_reward, membership_paid,
    #: membership_lapsed, referral
    kind: Mapped[str] = mapped_column(String(30))
    from_value: Mapped[str | None] = mapped_column(String(60), nullable=True)
    to_value: Mapped[str | None] = mapped_column(String(60), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON)
    key: Mapped[str] = mapped_column(String(220))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
