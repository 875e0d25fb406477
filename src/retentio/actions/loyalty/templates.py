"""Commented, ready-to-use program files for ``retentio loyalty program add KIND NAME``."""

from __future__ import annotations

_COMMON = '''# Loyalty program "{name}" ({kind}). Every key is explained; delete what you do not need.
kind = "{kind}"
description = "{description}"
# members: "all" customers with a completed order, or only those who `loyalty join`
enrolment = "all"
'''

_POINTS = '''# money per point: what a point pays and what the liability counts
point_value = 0.01

[earn]
# points per currency unit of a completed order, rounded: "floor" (default), "half_up" or "ceil"
per_amount = 1.0
rounding = "floor"
min_amount = 0
# points stay pending for the return window, then become available
pending_days = 14
welcome = 100
birthday = 500
# points for events (events.event_type): a review, a survey answer
events = {{ review = 50, survey = 20 }}
# multipliers: by item category, RFM segment or weekday (several multiply)
multipliers = [
  {{ category = "shoes", factor = 2.0 }},
  {{ weekday = "mon", factor = 1.5 }},
]

[redeem]
# points may pay at most this share of an order
max_share = 0.3
min_points = 100

[expiry]
# "days" after earning, "end_of_month", "end_of_year" (the oldest-expiring points are spent first)
rule = "days"
days = 365

[returns]
# a return reverses the order's points; if they were spent: "negative" (balance may go below 0),
# "other_lots" (taken from the other points; what they cannot cover is written off), "write_off"
policy = "other_lots"

[tiers]
# qualify on "points" earned or "spend" in the last window_days; upgrade at once;
# re-evaluated every review_days: downgrade "none", "one_level" or "to_qualifying"
basis = "spend"
window_days = 365
review_days = 90
downgrade = "one_level"
levels = [
  {{ name = "Bronze", threshold = 0 }},
  {{ name = "Silver", threshold = 500, discount_pct = 3, earn_multiplier = 1.25 }},
  {{ name = "Gold", threshold = 1500, discount_pct = 5, earn_multiplier = 1.5, free_shipping = true }},
]

[referral]
# the referee's first completed order rewards both, once
referrer_points = 500
referee_points = 250
'''

_DISCOUNT = '''[discount]
# a fixed card: percent = 5. A cumulative card: levels by spend ("lifetime" or "rolling_12m")
# that fall back one level after every fallback_days without a purchase
basis = "lifetime"
fallback_days = 180
levels = [
  {{ threshold = 0, percent = 3 }},
  {{ threshold = 300, percent = 5 }},
  {{ threshold = 1000, percent = 7 }},
]
'''

_STAMPS = '''[stamps]
# one stamp per purchase of at least min_amount (and of the category, if set); required stamps → reward
required = 6
min_amount = 5
reward = "a free coffee"
# a card lasts period_days from its first stamp; then its stamps expire
period_days = 90
'''

_MEMBERSHIP = '''[membership]
# a fee per period; perks while paid; lapse after the period (plus grace_days) unpaid
fee = 9.99
period_days = 30
grace_days = 3

[membership.perks]
discount_pct = 5
free_shipping = true
'''

_CASHBACK = '''# "balance" cashback counts in minor units (point_value 0.01); "points" at point_value
point_value = 0.01

[cashback]
# a share of each period's completed spend, credited when the period ends
share = 0.03
period = "month"
credit = "points"
'''

_BODY = {"points": _POINTS, "discount": _DISCOUNT, "stamps": _STAMPS, "membership": _MEMBERSHIP,
         "cashback": _CASHBACK}
_DESCRIPTION = {"points": "bonus points with tiers and referrals", "discount": "a cumulative discount card",
                "stamps": "a stamp card", "membership": "a paid membership", "cashback": "monthly cashback"}


def program_text(kind: str, name: str) -> str:
    """The TOML of a new program of ``kind``."""
    return _COMMON.format(name=name, kind=kind, description=_DESCRIPTION[kind]) + "\n" + \
        _BODY[kind].format()


__all__ = ["program_text"]
