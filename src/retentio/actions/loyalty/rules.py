"""The rules of a program as pure functions: points for an order, the tier a member
qualifies for, the discount card's level, a stamp's eligibility, cashback for a period.

Rounding of points (stated, because customers check it): an order earns
``amount × per_amount × multipliers`` points, rounded by the program's ``rounding`` —
``floor`` by default (a customer never gets a point more than the rule gives; Open
Loyalty and most tills round down), ``half_up`` or ``ceil``. Category multipliers
apply to the amount of the order's items of that category (``order_items``); the
segment, weekday, tier and membership multipliers to the whole order; several
multipliers multiply.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from retentio.actions.loyalty.book import Lot, Member
from retentio.actions.loyalty.programs import WEEKDAYS, Program

_ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceil": ROUND_CEILING}


def round_points(value: float, rounding: str) -> int:
    """Points as a whole number by the program's rule (in decimal, so 2.675 × 100 is
    267.5 and not 267.49999…)."""
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=_ROUNDING[rounding]))


def order_points(program: Program, amount: float, at: dt.datetime, *, categories: Mapping[str, float] | None = None,
                 segment: str | None = None, tier_multiplier: float = 1.0) -> int:
    """Points a completed order of ``amount`` at ``at`` earns (see the module docstring).

    ``categories`` maps item category → amount of the order's items in it (the rest of
    the amount earns the base rate)."""
    earn = program.earn
    if amount < earn.min_amount or amount <= 0:
        return 0
    whole = 1.0
    by_category: dict[str, float] = {}
    for rule in earn.multipliers:
        if rule.category is not None:
            by_category[rule.category] = by_category.get(rule.category, 1.0) * rule.factor
            continue
        if rule.segment is not None and rule.segment != segment:
            continue
        if rule.weekday is not None and WEEKDAYS[at.weekday()] != rule.weekday:
            continue
        whole *= rule.factor
    base = amount
    if categories and by_category:
        boosted = sum(value * (by_category.get(cat, 1.0) - 1.0) for cat, value in categories.items())
        base = amount + boosted
    return max(round_points(base * earn.per_amount * whole * tier_multiplier, earn.rounding), 0)


def qualifying(program: Program, lots: Iterable[Lot], at: dt.datetime) -> float:
    """What counts towards a tier at ``at``: points earned (or the spend of the orders
    that earned them) in the rolling window ``(at − window_days, at]``; returned
    orders' lots do not count."""
    assert program.tiers is not None
    start = at - dt.timedelta(days=program.tiers.window_days)
    use_points = program.tiers.basis == "points"
    return sum((lot.points if use_points else lot.spend) for lot in lots
               if lot.source == "order" and not lot.reversed and start < lot.earned_at <= at)


def tier_index(program: Program, value: float) -> int:
    """The highest tier whose threshold ``value`` reaches (0 = the first tier)."""
    assert program.tiers is not None
    return max(i for i, t in enumerate(program.tiers.levels) if t.threshold <= value)


def after_review(policy: str, current: int, qualifies: int) -> int:
    """The tier after a scheduled review (Open Loyalty's downgrade modes): ``none`` keeps
    the higher of the two, ``one_level`` drops at most one level, ``to_qualifying``
    goes to the level qualified for."""
    if policy == "none":
        return max(current, qualifies)
    if policy == "one_level":
        return max(qualifies, current - 1)
    return qualifies


def tier_of(program: Program, name: str | None) -> int:
    assert program.tiers is not None
    names = [t.name for t in program.tiers.levels]
    return names.index(name) if name in names else 0


def earn_multiplier(program: Program, member: Member) -> float:
    """The member's tier multiplier (the override's tier when set)."""
    if program.tiers is None or member.tier_effective is None:
        return 1.0
    return program.tiers.levels[tier_of(program, member.tier_effective)].earn_multiplier


def discount_level_by_spend(program: Program, spend: float) -> int:
    """The discount card's level for ``spend`` (−1: below the first threshold)."""
    assert program.discount is not None
    reached = [i for i, lv in enumerate(program.discount.levels) if lv.threshold <= spend + 1e-9]
    return max(reached) if reached else -1


def stamp_qualifies(program: Program, amount: float, categories: Mapping[str, float] | None) -> bool:
    """A purchase earns a stamp when it reaches the minimum amount and, if the card is
    for a category, contains an item of it."""
    assert program.stamps is not None
    if amount < program.stamps.min_amount or amount <= 0:
        return False
    return program.stamps.category is None or bool(categories and categories.get(program.stamps.category, 0) > 0)


def period_start(at: dt.datetime | dt.date, period: str) -> dt.datetime:
    """The first instant of the calendar period (month, quarter, year) holding ``at``."""
    d = at if isinstance(at, dt.date) and not isinstance(at, dt.datetime) else at.date()  # type: ignore[union-attr]
    if period == "month":
        first = d.replace(day=1)
    elif period == "quarter":
        first = d.replace(month=3 * ((d.month - 1) // 3) + 1, day=1)
    else:
        first = d.replace(month=1, day=1)
    return dt.datetime.combine(first, dt.time())


def next_period(start: dt.datetime, period: str) -> dt.datetime:
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1, day=1)


def cashback_points(program: Program, spend: float) -> int:
    """Cashback for a period's completed spend: ``share × spend`` in money, as points at
    the program's point value, rounded down (a balance is counted in minor units)."""
    assert program.cashback is not None
    if spend <= 0:
        return 0
    return round_points(program.cashback.share * spend / program.point_value, "floor")


def fallbacks_due(program: Program, last_purchase: dt.datetime | None, at: dt.datetime) -> int:
    """How many times a cumulative card has fallen back one level by ``at``: once for
    every full ``fallback_days`` without a purchase since the last one."""
    if program.discount is None or not program.discount.fallback_days or last_purchase is None:
        return 0
    return max(math.floor((at - last_purchase).total_seconds() / 86400 / program.discount.fallback_days), 0)


__all__ = ["after_review", "cashback_points", "discount_level_by_spend", "earn_multiplier", "fallbacks_due",
           "next_period", "order_points", "period_start", "qualifying", "round_points", "stamp_qualifies",
           "tier_index", "tier_of"]
