"""Offers: what a message gives the customer — a percentage or fixed discount, free
shipping, a gift, bonus points or nothing — chosen per customer from the playbook's
offer and its per-segment (or per-churn-band) variants, and worded for the message.
"""

from __future__ import annotations

from typing import Any

from retentio.actions.playbooks import Offer

_WORDS = {
    "en": {"percent": "{value:g} % off", "fixed": "{value:g} {currency} off", "free_shipping": "free shipping",
           "gift": "a gift: {gift}", "points": "{value:g} bonus points", "none": ""},
    "ru": {"percent": "скидка {value:g} %", "fixed": "скидка {value:g} {currency}", "free_shipping": "бесплатная доставка",
           "gift": "подарок: {gift}", "points": "{value:g} бонусных баллов", "none": ""},
}


def offer_for(offer: Offer, segment: str | None, band: str | None, *, lang: str = "en",
              currency: str = "USD") -> dict[str, Any]:
    """The offer for a customer of RFM ``segment`` and churn ``band``: a variant keyed by
    the segment wins over one keyed by the band, which wins over the playbook's offer.
    Returns kind, value, gift, text and whether it carries a promo code."""
    kind, value, gift = offer.kind, offer.value, offer.gift
    for key in (segment, band):
        variant = offer.variants.get(key) if key else None
        if variant is not None:
            kind = variant.kind or kind
            value = variant.value if variant.value is not None else value
            gift = variant.gift or gift
            break
    text = _WORDS.get(lang, _WORDS["en"])[kind].format(value=value, gift=gift or "", currency=currency)
    return {"kind": kind, "value": float(value), "gift": gift, "text": text,
            "code": kind in ("percent", "fixed", "free_shipping", "gift")}


__all__ = ["offer_for"]
