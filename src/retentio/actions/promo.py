"""Promo codes: personal, unguessable, one-time, with an expiry.

A code is 12 symbols of Douglas Crockford's Base32 alphabet (digits and capitals without
I, L, O, U, so it reads aloud and types without confusion), drawn from the operating
system's CSPRNG (``os.urandom``, which :mod:`secrets` also uses): 60 bits, so guessing one live code among a million
takes on the order of 10^12 tries, and two codes of a million-customer run collide with
probability about n²/2^61 ≈ 4·10⁻⁷ (the store's primary key refuses a collision; the run
then records nothing and can simply be repeated). Shown as ``XXXX-XXXX-XXXX`` (with the
playbook's prefix, if any); :func:`normalize_code` reads back what a customer or a till
types (lower case, spaces, missing dashes, O for 0, I/L for 1).

Redemption (:func:`redeem`): an order whose ``promo_code`` matches an issued code, by the
customer it was issued to, before it expired, marks it redeemed — once: the earliest such
order wins, and the store's unique ``redeemed_order_id`` refuses a second.

Reference: D. Crockford, "Base 32" (https://www.crockford.com/base32.html).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from retentio.data.store import Store
    from retentio.data.workspace import Workspace

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 12
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def _batch(n: int, prefix: str) -> list[str]:
    """``n`` codes: 60 bits each from the OS CSPRNG, written as 12 Base32 symbols."""
    bits = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) >> np.uint64(4)
    digits = np.stack([(bits >> np.uint64(5 * k)) & np.uint64(31) for k in range(LENGTH - 1, -1, -1)], axis=1)
    letters = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)[digits.astype(np.intp)]
    body = np.ascontiguousarray(letters).view(f"S{LENGTH}").ravel().astype(str)
    return [f"{prefix}{b[:4]}-{b[4:8]}-{b[8:]}" for b in body]


def new_codes(n: int, prefix: str = "") -> list[str]:
    """``n`` distinct new codes (see the module docstring)."""
    prefix = normalize_prefix(prefix)
    out: set[str] = set()
    while len(out) < n:
        out.update(_batch(n - len(out), prefix))
    return list(out)


def normalize_prefix(prefix: str) -> str:
    p = re.sub(r"[^A-Za-z0-9]", "", prefix or "").upper()
    return f"{p}-" if p else ""


def normalize_code(text: str) -> str:
    """The canonical form of a typed code: ``abcd efgh ijk1`` → ``ABCD-EFGH-1JK1``."""
    raw = re.sub(r"[^A-Za-z0-9]", "", str(text)).upper()
    if len(raw) < LENGTH:
        return raw
    prefix, body = raw[:-LENGTH], raw[-LENGTH:].translate(_READ_AS)
    code = f"{body[:4]}-{body[4:8]}-{body[8:]}"
    return f"{prefix}-{code}" if prefix else code


def redeem(ws: Workspace, store: Store) -> dict[str, int]:
    """Mark the codes that completed orders carry as redeemed (see the module docstring).
    Returns how many were redeemed now, and how many order codes were unknown, expired,
    someone else's, or already used."""
    from sqlalchemy import select, update

    from retentio.analytics.base import completed_orders
    from retentio.data.store.campaign_tables import PromoCode

    if not ws.is_loaded("orders"):
        return {"redeemed": 0, "unknown": 0, "expired": 0, "other_customer": 0, "already_used": 0}
    o = completed_orders(ws)
    o = o.filter(o.promo_code.notnull())
    orders = o.select("order_id", "customer_id", "ordered_at", "promo_code").order_by("ordered_at").to_pandas()
    counts = {"redeemed": 0, "unknown": 0, "expired": 0, "other_customer": 0, "already_used": 0}
    if orders.empty:
        return counts
    orders["code"] = orders.promo_code.map(normalize_code)
    with store.session() as s:
        issued = {c.code: c for c in s.scalars(select(PromoCode).where(PromoCode.code.in_(set(orders.code))))}
        used_orders = set(s.scalars(select(PromoCode.redeemed_order_id).where(PromoCode.redeemed_order_id.isnot(None))))
        for order_id, customer, at, code in zip(orders.order_id.astype(str), orders.customer_id.astype(str),
                                                orders.ordered_at, orders.code):
            c = issued.get(code)
            if c is None:
                counts["unknown"] += 1
                continue
            if order_id in used_orders and c.redeemed_order_id == order_id:
                continue  # redeemed by this very order on an earlier pass
            if c.redeemed_at is not None:
                counts["already_used"] += 1
                continue
            if c.customer_id != customer:
                counts["other_customer"] += 1
                continue
            when = pd.Timestamp(at)  # workspace times are local wall-clock times
            when = (when.tz_localize(ws.settings.timezone) if when.tzinfo is None else when).tz_convert("UTC")
            expires = pd.Timestamp(c.expires_at)
            expires = expires.tz_localize("UTC") if expires.tzinfo is None else expires
            if when > expires:
                counts["expired"] += 1
                continue
            s.execute(update(PromoCode).where(PromoCode.code == code, PromoCode.redeemed_at.is_(None))
                      .values(redeemed_at=when.to_pydatetime(), redeemed_order_id=order_id))
            c.redeemed_at, c.redeemed_order_id = when.to_pydatetime(), order_id
            counts["redeemed"] += 1
    return counts


__all__ = ["ALPHABET", "new_codes", "normalize_code", "redeem"]
