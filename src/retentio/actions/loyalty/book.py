"""The ledger's bookkeeping in memory: a member's lots and balances, and the entries each
movement writes (double entry: every movement's amounts sum to zero).

The store (:mod:`retentio.actions.loyalty.ledger`) loads a member — locked — into a
:class:`Member`, these functions change it and return the :class:`Posting` lines, and
the store writes lines and changed rows in the same transaction. The single-request
path (a cashier's redemption) and the bulk path (``apply-orders`` over millions of
orders) run the same code.

Accounts and signs: a customer's points sit in ``available`` or ``pending`` (positive =
held by the customer); the program's side is ``issued`` (negative = points created),
``redeemed``, ``expired`` and ``written_off``. So the customer's outstanding points equal
minus the sum of the program's accounts — the liability (ERPNext keeps loyalty points
as a liability the same way).

FIFO: a redemption spends the **oldest-expiring** spendable lot first (lots that never
expire last; ties by earning time, then lot id), as Odoo's loyalty history does, so
customers lose as few points to expiry as the rules allow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from retentio.data.errors import RetentioError


class LedgerError(RetentioError):
    """A request the ledger refuses (nothing was written)."""


class InsufficientPoints(LedgerError):
    """A redemption (or a negative adjustment) larger than the available balance."""

    def __init__(self, customer: str, wanted: int, available: int, unit: str = "points"):
        self.customer, self.wanted, self.available = customer, wanted, available
        super().__init__(f"{customer} has {available} {unit} available; {wanted} cannot be redeemed "
                         f"(nothing was written)")


@dataclass
class Lot:
    """One earning (see ``loyalty_lots``)."""

    id: str
    earned_at: dt.datetime
    available_at: dt.datetime
    expires_at: dt.datetime | None
    points: int
    remaining: int
    released: bool
    source: str
    order_id: str | None = None
    spend: float = 0.0
    spent: int = 0
    reversed: bool = False
    #: not yet in the store / changed since loaded
    new: bool = False
    dirty: bool = False

    def fifo_key(self) -> tuple:
        return (self.expires_at is None, self.expires_at or dt.datetime.max, self.earned_at, self.id)


@dataclass
class Member:
    """A member's account row and lots, as loaded (and locked) for a change."""

    customer_id: str
    joined_at: dt.datetime
    account_id: int | None = None
    available: int = 0
    pending: int = 0
    negative_ok: bool = False
    tier: str | None = None
    tier_override: str | None = None
    tier_reviewed_at: dt.datetime | None = None
    discount_level: int | None = None
    spend: float = 0.0
    last_purchase_at: dt.datetime | None = None
    card_started_at: dt.datetime | None = None
    member_until: dt.datetime | None = None
    referral_code: str | None = None
    referred_by: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    lots: list[Lot] = field(default_factory=list)
    new: bool = False
    dirty: bool = False

    @property
    def tier_effective(self) -> str | None:
        return self.tier_override or self.tier

    def lot(self, lot_id: str) -> Lot | None:
        for lot in self.lots:
            if lot.id == lot_id:
                return lot
        return None


@dataclass(frozen=True)
class Posting:
    """One ledger line to write."""

    customer_id: str
    account: str
    amount: int
    lot_id: str | None = None
    policy: str | None = None


def _bucket(lot: Lot) -> str:
    return "available" if lot.released else "pending"


def _move(member: Member, account: str, amount: int) -> None:
    if account == "available":
        member.available += amount
    elif account == "pending":
        member.pending += amount
    member.dirty = True


def spendable(member: Member, at: dt.datetime) -> list[Lot]:
    """Released lots with points left that have not expired at ``at``, FIFO order."""
    lots = [lot for lot in member.lots if lot.released and lot.remaining > 0
            and (lot.expires_at is None or lot.expires_at > at)]
    return sorted(lots, key=Lot.fifo_key)


def earn(member: Member, lot_id: str, points: int, at: dt.datetime, *, source: str,
         available_at: dt.datetime | None = None, expires_at: dt.datetime | None = None,
         order_id: str | None = None, spend: float = 0.0) -> list[Posting]:
    """A new lot of ``points``: pending until ``available_at`` (when that is later than
    ``at``), else available at once. Lines: customer +points, ``issued`` −points."""
    if points <= 0:
        raise LedgerError(f"points to earn must be positive, got {points}")
    ready = available_at is None or available_at <= at
    lot = Lot(id=lot_id, earned_at=at, available_at=available_at or at, expires_at=expires_at, points=points,
              remaining=points, released=ready, source=source, order_id=order_id, spend=spend, new=True)
    debt = _debt(member) if ready else 0
    member.lots.append(lot)
    account = _bucket(lot)
    _move(member, account, points)
    lines = [Posting(member.customer_id, account, points, lot.id), Posting(member.customer_id, "issued", -points, lot.id)]
    return lines + _repay(member, lot, debt)


def _debt(member: Member) -> int:
    """What a return under the "negative" policy left the member owing: the points the
    spendable lots hold beyond the available balance."""
    held = sum(lot.remaining for lot in member.lots if lot.released)
    return max(held - member.available, 0)


def _repay(member: Member, lot: Lot, debt: int) -> list[Posting]:
    """Newly spendable points pay a debt first: the lot gives up what the debt takes (a
    move inside ``available`` from the lot to the debt, so the balance is unchanged and
    those points can neither be spent nor expire again)."""
    n = min(debt, lot.remaining)
    if n <= 0:
        return []
    lot.remaining -= n
    lot.dirty = True
    return [Posting(member.customer_id, "available", -n, lot.id, "negative"),
            Posting(member.customer_id, "available", n, None, "negative")]


def release(member: Member, lot: Lot) -> list[Posting]:
    """A pending lot becomes spendable: pending −r, available +r."""
    r = lot.remaining
    debt = _debt(member)
    lot.released, lot.dirty = True, True
    if r == 0:
        return []
    _move(member, "pending", -r)
    _move(member, "available", r)
    return [Posting(member.customer_id, "pending", -r, lot.id), Posting(member.customer_id, "available", r, lot.id),
            *_repay(member, lot, debt)]


def expire(member: Member, lot: Lot) -> list[Posting]:
    """What is left of a lot expires: customer −r, ``expired`` +r."""
    r = lot.remaining
    if r == 0:
        return []
    account = _bucket(lot)
    lot.remaining, lot.dirty = 0, True
    _move(member, account, -r)
    return [Posting(member.customer_id, account, -r, lot.id), Posting(member.customer_id, "expired", r, lot.id)]


def due(member: Member, at: dt.datetime) -> tuple[list[Lot], list[Lot]]:
    """Lots to release and lots to expire as of ``at`` (a lot is released before it
    expires, so its points are expired from ``available``)."""
    to_release = sorted((lot for lot in member.lots if not lot.released and lot.available_at <= at),
                        key=lambda lot: (lot.available_at, lot.id))
    to_expire = sorted((lot for lot in member.lots if lot.remaining > 0 and lot.expires_at is not None
                        and lot.expires_at <= at), key=lambda lot: (lot.expires_at, lot.id))
    return to_release, to_expire


def take(member: Member, points: int, at: dt.datetime, *, to: str, allow_negative: bool = False,
         unit: str = "points", spends: bool | None = None) -> tuple[list[Posting], list[dict[str, Any]]]:
    """Spend ``points`` from the spendable lots, FIFO: per lot available −n and ``to`` +n.
    Refuses (:class:`InsufficientPoints`, nothing changed) when the available balance is
    short, unless ``allow_negative`` (then what the lots lack is taken without a lot).
    ``spends`` (default: when redeemed) counts the points as used by the customer — a
    return of the order that earned them then has them to make good."""
    spends = to == "redeemed" if spends is None else spends
    if points <= 0:
        raise LedgerError(f"points must be positive, got {points}")
    if points > member.available and not allow_negative:
        raise InsufficientPoints(member.customer_id, points, member.available, unit)
    postings: list[Posting] = []
    consumed: list[dict[str, Any]] = []
    left = points
    for lot in spendable(member, at):
        if left == 0:
            break
        n = min(lot.remaining, left)
        lot.remaining -= n
        lot.dirty = True
        if spends:
            lot.spent += n
        left -= n
        postings += [Posting(member.customer_id, "available", -n, lot.id), Posting(member.customer_id, to, n, lot.id)]
        consumed.append({"lot": lot.id, "points": n, "expires_at": lot.expires_at.isoformat() if lot.expires_at
                         else None})
    if left:
        # only with a debt on the account (a return under the "negative" policy) or when allowed
        if not allow_negative:
            raise LedgerError(f"{member.customer_id}: the lots hold less than the available balance "
                              f"({points - left} of {points}); run `loyalty check`")
        postings += [Posting(member.customer_id, "available", -left), Posting(member.customer_id, to, left)]
    _move(member, "available", -points)
    return postings, consumed


def reverse(member: Member, lot: Lot, at: dt.datetime, policy: str) -> tuple[list[Posting], dict[str, Any]]:
    """Take back the points an order earned (its return). What is left of the lot is
    reversed; what was already **spent** from it (the shortfall) is handled by
    ``policy``: ``negative`` takes it from the balance even below zero, ``other_lots``
    takes it from the customer's other lots FIFO (what they cannot cover is written
    off), ``write_off`` leaves it with the customer and books it as the program's loss.
    Points that expired from the lot are not a shortfall: nobody benefited from them."""
    if lot.reversed:
        return [], {"reversed": 0, "shortfall": 0, "policy": policy}
    postings: list[Posting] = []
    r = lot.remaining
    if r:
        account = _bucket(lot)
        lot.remaining = 0
        _move(member, account, -r)
        postings += [Posting(member.customer_id, account, -r, lot.id), Posting(member.customer_id, "issued", r, lot.id)]
    lot.reversed, lot.dirty = True, True
    shortfall = lot.spent
    taken = written_off = 0
    if shortfall and policy == "negative":
        _move(member, "available", -shortfall)
        postings += [Posting(member.customer_id, "available", -shortfall, None, "negative"),
                     Posting(member.customer_id, "issued", shortfall, None, "negative")]
        taken = shortfall
    elif shortfall and policy == "other_lots":
        cover = min(shortfall, sum(x.remaining for x in spendable(member, at)), max(member.available, 0))
        if cover:
            lines, _ = take(member, cover, at, to="issued")
            postings += [Posting(p.customer_id, p.account, p.amount, p.lot_id, "other_lots") for p in lines]
        taken = cover
        written_off = shortfall - cover
    elif shortfall:
        written_off = shortfall
    if written_off:
        postings += [Posting(member.customer_id, "issued", written_off, None, "write_off"),
                     Posting(member.customer_id, "written_off", -written_off, None, "write_off")]
    return postings, {"reversed": r, "shortfall": shortfall, "taken": taken, "written_off": written_off,
                      "policy": policy if shortfall else None}


def check_balanced(postings: list[Posting]) -> None:
    """Double entry: the lines of one movement sum to zero."""
    total = sum(p.amount for p in postings)
    if total != 0:
        raise AssertionError(f"unbalanced postings (sum {total}): {postings}")


__all__ = ["InsufficientPoints", "LedgerError", "Lot", "Member", "Posting", "check_balanced", "due", "earn",
           "expire", "release", "reverse", "spendable", "take"]
