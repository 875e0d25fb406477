"""Members: joining (welcome bonus, referral code, referral guards), the manual tier
override, and paying for a membership period.

Referral guards: a code cannot be used by its owner (self-referral), nor by a new member
who shares the referrer's e-mail or phone (a second account of the same person —
addresses compared normalised: lower-case e-mail, digits of the phone); only a customer
who was not a member before can be referred, and the reward is paid once, on the
referee's first completed order (``apply-orders``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from retentio.actions.gates import normalize_address
from retentio.actions.loyalty.book import LedgerError
from retentio.actions.loyalty.ledger import Batch, Ledger, Op, now_naive


def referral_code(program: str, customer: str) -> str:
    """A member's referral code: 8 characters of base32 of SHA-256(program:customer) —
    stable, not guessable from the id, unique in the schema."""
    digest = hashlib.sha256(f"{program}:{customer}".encode()).digest()
    return base64.b32encode(digest).decode()[:8]


def _same_person(a: tuple[str | None, str | None], b: tuple[str | None, str | None]) -> str | None:
    for label, channel, x, y in (("e-mail", "email", a[0], b[0]), ("phone", "sms", a[1], b[1])):
        x, y = normalize_address(x, channel=channel), normalize_address(y, channel=channel)
        if x and x == y:
            return label
    return None


def join(ledger: Ledger, customer: str, *, at: dt.datetime | None = None, referred_by_code: str | None = None,
         contacts: Mapping[str, tuple[str | None, str | None]] | None = None) -> dict[str, Any]:
    """Make ``customer`` a member (once: joining again returns the membership as it is).
    ``contacts`` maps customer → (e-mail, phone) for the duplicate-account guard."""
    from sqlalchemy import select

    from retentio.data.store.loyalty_tables import LoyaltyAccount

    program, when = ledger.program, at or now_naive()

    def work(batch: Batch) -> dict[str, Any]:
        s = batch.session
        existing = s.execute(select(LoyaltyAccount.id).where(LoyaltyAccount.program == program.name,
                                                             LoyaltyAccount.customer_id == customer)).first()
        referrer: str | None = None
        if referred_by_code:
            referrer = s.execute(select(LoyaltyAccount.customer_id).where(
                LoyaltyAccount.program == program.name,
                LoyaltyAccount.referral_code == referred_by_code.strip().upper())).scalar_one_or_none()
            if referrer is None:
                raise LedgerError(f"no member has the referral code {referred_by_code!r}")
            if referrer == customer:
                raise LedgerError(f"{customer} cannot use their own referral code")
            if existing is not None:
                raise LedgerError(f"{customer} is already a member; only a new member can be referred")
            contact = (contacts or {}).get(customer, (None, None))
            why = _same_person(contact, (contacts or {}).get(referrer, (None, None)))
            if why:
                raise LedgerError(f"{customer} has the same {why} as the referrer {referrer}: "
                                  "a second account of one person cannot be referred")
        batch.load([customer], create_at=when)
        m = batch.member(customer)
        if existing is None:
            if program.referral is not None:
                m.referral_code = referral_code(program.name, customer)
            if referrer:
                m.referred_by = referrer
            if program.tiers is not None:
                m.tier, m.tier_reviewed_at = program.tiers.levels[0].name, when
            m.dirty = True
            if program.earn.welcome and program.kind == "points":
                from retentio.actions.loyalty import book
                lot = f"{program.name}:welcome:{customer}"
                lines = book.earn(m, lot, program.earn.welcome, m.joined_at, source="welcome")
                batch.add(Op(f"welcome:{customer}", "earn", customer, {"customer": customer, "welcome": True},
                             {"customer": customer, "earned": program.earn.welcome, "lot": lot}, m.joined_at,
                             lines, reason="welcome bonus"))
        return {"customer": customer, "program": program.name, "joined_at": m.joined_at.isoformat(),
                "new": existing is None, "referral_code": m.referral_code, "referred_by": m.referred_by,
                "available": m.available}

    return ledger.transaction(work)


def set_tier(ledger: Ledger, customer: str, tier: str | None, *, reason: str) -> dict[str, Any]:
    """A manual tier override that stays until removed (``tier=None`` removes it)."""
    program = ledger.program
    if program.tiers is None:
        raise LedgerError(f"the {program.name} program has no tiers")
    names = [t.name for t in program.tiers.levels]
    if tier is not None and tier not in names:
        raise LedgerError(f"no tier {tier!r} (tiers: {', '.join(names)})")
    if not reason.strip():
        raise LedgerError("an override needs a reason (--reason)")

    def work(batch: Batch) -> dict[str, Any]:
        batch.load([customer])
        m = batch.member(customer)
        when = now_naive()
        batch.event(customer, "tier_override", m.tier_override, tier,
                    f"override:{customer}:{dt.datetime.now(dt.UTC).isoformat()}", when, {"reason": reason})
        m.tier_override, m.dirty = tier, True
        return {"customer": customer, "tier": m.tier_effective, "override": tier, "earned_tier": m.tier}

    return ledger.transaction(work)


def pay_membership(ledger: Ledger, customer: str, *, key: str, at: dt.datetime | None = None,
                   periods: int = 1) -> dict[str, Any]:
    """Record a paid membership period (or several): perks run to the end of the paid
    time; a renewal before the end extends it, one after a lapse starts afresh."""
    program = ledger.program
    if program.membership is None:
        raise LedgerError(f"the {program.name} program is not a paid membership")
    if periods < 1:
        raise LedgerError("periods must be at least 1")
    when = at or now_naive()
    step = dt.timedelta(days=program.membership.period_days)

    def work(batch: Batch) -> dict[str, Any]:
        batch.load([customer], create_at=when)
        if key in batch.known_events([key]):
            m = batch.member(customer)
            return {"customer": customer, "member_until": m.member_until.isoformat() if m.member_until else None,
                    "replayed": True}
        m = batch.member(customer)
        grace = dt.timedelta(days=program.membership.grace_days)  # type: ignore[union-attr]
        start = m.member_until if m.member_until is not None and m.member_until + grace >= when else when
        until = start + step * periods
        batch.event(customer, "membership_paid", m.member_until.date() if m.member_until else None, until.date(),
                    key, when, {"fee": program.membership.fee * periods, "periods": periods})  # type: ignore[union-attr]
        m.member_until, m.dirty = until, True
        return {"customer": customer, "member_until": until.isoformat(), "fee": program.membership.fee * periods,  # type: ignore[union-attr]
                "replayed": False}

    return ledger.transaction(work)


__all__ = ["join", "pay_membership", "referral_code", "set_tier"]
