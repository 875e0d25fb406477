"""The loyalty ledger's rules with hand-computed balances, on SQLite and on a real
PostgreSQL server (the ``store_url`` fixture runs each test on both)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import func, select

from retentio.actions.loyalty.book import InsufficientPoints, LedgerError
from retentio.actions.loyalty.ledger import KeyConflict, Ledger
from retentio.actions.loyalty.members import join, referral_code, set_tier
from retentio.actions.loyalty.orders import OrderInputs, apply_orders
from retentio.actions.loyalty.programs import ProgramError, parse_program
from retentio.data.store import Store
from retentio.data.store.loyalty_tables import LoyaltyEntry, LoyaltyEvent

T0 = dt.datetime(2026, 1, 5, 12, 0)


def day(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def ledger(url: str, toml: str, name: str = "club") -> Ledger:
    return Ledger(Store.open(url), parse_program(toml, f"{name}.toml", name), actor="test")


def orders(*rows: tuple) -> OrderInputs:
    """(order_id, customer, day, amount[, status]) rows."""
    frame = pd.DataFrame([{"order_id": r[0], "customer_id": r[1], "ordered_at": pd.Timestamp(day(r[2])),
                           "amount": float(r[3]), "status": r[4] if len(r) > 4 else "completed"} for r in rows])
    return OrderInputs(orders=frame)


def entries(book: Ledger, customer: str) -> list[tuple]:
    with book.store.session() as s:
        return [tuple(r) for r in s.execute(select(LoyaltyEntry.kind, LoyaltyEntry.account, LoyaltyEntry.amount,
                                                   LoyaltyEntry.policy).where(
            LoyaltyEntry.program == book.program.name, LoyaltyEntry.customer_id == customer).order_by(
            LoyaltyEntry.id))]


def events(book: Ledger, customer: str) -> list[tuple]:
    with book.store.session() as s:
        return [tuple(r) for r in s.execute(select(LoyaltyEvent.kind, LoyaltyEvent.from_value, LoyaltyEvent.to_value)
                                            .where(LoyaltyEvent.customer_id == customer).order_by(LoyaltyEvent.id))]


def available(book: Ledger, customer: str, at: dt.datetime) -> int:
    return book.balance(customer, at=at)["available"]


def sums_to_balance(book: Ledger) -> None:
    report = book.check()
    assert report["ok"], report


POINTS = """kind = "points"
[earn]
per_amount = 1.0
[expiry]
days = {days}
[returns]
policy = "{policy}"
"""


# ---------------------------------------------------------------------- FIFO, pending, expiry
def test_redemption_takes_the_oldest_expiring_lot_first(store_url):
    # the program's expiry was shortened between two earnings: lot b (earned later) expires first
    long = ledger(store_url, POINTS.format(days=365, policy="other_lots"))
    long.earn("c1", 100, key="a", at=day(0))               # expires day 365
    short = ledger(store_url, POINTS.format(days=30, policy="other_lots"))
    short.earn("c1", 50, key="b", at=day(10))              # expires day 40
    short.earn("c1", 70, key="c", at=day(20))              # expires day 50
    r = short.redeem("c1", 90, key="r", at=day(21))
    # 50 from b (day 40), then 40 from c (day 50); a (day 365) untouched
    assert [(x["lot"], x["points"]) for x in r["lots"]] == [("club:b", 50), ("club:c", 40)]
    assert r["available"] == 130
    b = short.balance("c1", at=day(21))
    assert b["expiring"] == [{"date": "2026-02-24", "points": 30}, {"date": "2027-01-05", "points": 100}]
    # day 51: c's 30 left have expired (counted in the balance before they are posted)
    assert available(short, "c1", day(51)) == 100
    assert short.expire(day(51)) == {"released": 0, "expired": 30, "members": 1}
    assert short.expire(day(51))["expired"] == 0            # a repeat finds nothing due
    assert entries(short, "c1")[-2:] == [("expire", "available", -30, None), ("expire", "expired", 30, None)]
    sums_to_balance(short)


def test_pending_points_become_available_after_the_return_window(store_url):
    book = ledger(store_url, POINTS.format(days=365, policy="other_lots").replace(
        "per_amount = 1.0", "per_amount = 1.0\npending_days = 14"))
    book.earn("c1", 200, key="o1", at=day(0), pending=True)
    b = book.balance("c1", at=day(5))
    assert (b["available"], b["pending"]) == (0, 200)
    with pytest.raises(InsufficientPoints, match="has 0 points available"):
        book.redeem("c1", 10, key="too-early", at=day(5))
    assert book.balance("c1", at=day(14))["available"] == 200   # released at day 14 exactly
    r = book.redeem("c1", 150, key="r1", at=day(15))
    assert r["available"] == 50
    assert [e for e in entries(book, "c1") if e[0] == "release"] == [("release", "pending", -200, None),
                                                                    ("release", "available", 200, None)]
    sums_to_balance(book)


def test_expiry_at_the_end_of_the_month():
    p = parse_program('kind = "points"\n[expiry]\nrule = "end_of_month"\n', "x.toml", "x")
    from retentio.actions.loyalty.ledger import expiry_of

    assert expiry_of(p, dt.datetime(2026, 2, 10, 15)) == dt.datetime(2026, 3, 1)
    p = parse_program('kind = "points"\n[expiry]\nrule = "end_of_year"\n', "x.toml", "x")
    assert expiry_of(p, dt.datetime(2026, 12, 31, 23)) == dt.datetime(2027, 1, 1)


def test_idempotent_requests_and_conflicting_keys(store_url):
    book = ledger(store_url, POINTS.format(days=365, policy="other_lots"))
    first = book.earn("c1", 100, key="k1", at=day(0))
    again = book.earn("c1", 100, key="k1", at=day(3))
    assert again == {**first, "replayed": True}
    with pytest.raises(KeyConflict, match="different request"):
        book.earn("c1", 101, key="k1", at=day(0))
    assert available(book, "c1", day(4)) == 100
    with pytest.raises(InsufficientPoints):
        book.redeem("c1", 101, key="r", at=day(4))
    with book.store.session() as s:
        assert s.execute(select(func.count()).select_from(LoyaltyEntry)).scalar() == 2
    with pytest.raises(LedgerError, match="not a member"):
        book.redeem("nobody", 1, key="r2")


# ---------------------------------------------------------------------- returns
@pytest.mark.parametrize("policy, balance_after, lines", [
    # order 1 earned 100 and all 100 were spent; order 2's lot has 20 left
    ("negative", -80, [("reverse", "available", -100, "negative"), ("reverse", "issued", 100, "negative")]),
    ("other_lots", 0, [("reverse", "available", -20, "other_lots"), ("reverse", "issued", 20, "other_lots"),
                       ("reverse", "issued", 80, "write_off"), ("reverse", "written_off", -80, "write_off")]),
    ("write_off", 20, [("reverse", "issued", 100, "write_off"), ("reverse", "written_off", -100, "write_off")]),
])
def test_a_return_after_a_partial_spend_under_each_policy(store_url, policy, balance_after, lines):
    book = ledger(store_url, POINTS.format(days=365, policy=policy))
    apply_orders(book, orders(("o1", "c1", 0, 100), ("o2", "c1", 1, 40)), day(0), day(2))
    assert available(book, "c1", day(2)) == 140
    book.redeem("c1", 120, key="r", at=day(3))             # FIFO: 100 from o1, 20 from o2
    returned = orders(("o1", "c1", 0, 100, "returned"), ("o2", "c1", 1, 40))
    result = apply_orders(book, returned, day(0), day(5))
    assert result.counts == {"reverse": 1}
    assert available(book, "c1", day(5)) == balance_after
    assert entries(book, "c1")[-len(lines):] == lines
    sums_to_balance(book)
    # the same period again changes nothing
    assert apply_orders(book, returned, day(0), day(5)).operations == 0
    assert available(book, "c1", day(5)) == balance_after


def test_a_return_within_the_window_takes_back_the_pending_points(store_url):
    book = ledger(store_url, POINTS.format(days=365, policy="negative").replace(
        "per_amount = 1.0", "per_amount = 1.0\npending_days = 14"))
    apply_orders(book, orders(("o1", "c1", 0, 300)), day(0), day(1))
    assert book.balance("c1", at=day(1))["pending"] == 300
    apply_orders(book, orders(("o1", "c1", 0, 300, "returned")), day(0), day(3))
    b = book.balance("c1", at=day(30))
    assert (b["available"], b["pending"]) == (0, 0)
    assert entries(book, "c1")[-2:] == [("reverse", "pending", -300, None), ("reverse", "issued", 300, None)]


# ---------------------------------------------------------------------- earning rules
def test_order_points_rounding_and_multipliers():
    from retentio.actions.loyalty.rules import order_points

    p = parse_program('kind = "points"\n[earn]\nper_amount = 0.1\nrounding = "floor"\nmultipliers = ['
                      '{category = "shoes", factor = 2.0}, {weekday = "sat", factor = 1.5}]\n', "x.toml", "x")
    saturday, monday = dt.datetime(2026, 1, 10), dt.datetime(2026, 1, 12)
    # 0.1 per unit: 1,234.56 → 123.456 → 123 (floor)
    assert order_points(p, 1234.56, monday) == 123
    # shoes 100 of 250 count double: (250 + 100) × 0.1 = 35; on Saturday × 1.5 = 52.5 → 52
    assert order_points(p, 250, monday, categories={"shoes": 100, "socks": 150}) == 35
    assert order_points(p, 250, saturday, categories={"shoes": 100}) == 52
    half = parse_program('kind = "points"\n[earn]\nper_amount = 0.1\nrounding = "half_up"\n', "x.toml", "x")
    assert order_points(half, 25, monday) == 3                   # 2.5 → 3
    assert order_points(half, 24.9, monday, tier_multiplier=1.25) == 3  # 3.1125 → 3


TIERS = """kind = "points"
[tiers]
basis = "spend"
window_days = 365
review_days = 90
downgrade = "{policy}"
levels = [
  {{ name = "Bronze", threshold = 0 }},
  {{ name = "Silver", threshold = 500, earn_multiplier = 1.5, discount_pct = 3 }},
  {{ name = "Gold", threshold = 1500, discount_pct = 5, free_shipping = true }},
]
"""


@pytest.mark.parametrize("policy, at_450, at_540", [("one_level", "Silver", "Bronze"),
                                                    ("to_qualifying", "Bronze", "Bronze"),
                                                    ("none", "Gold", "Gold")])
def test_tier_upgrade_at_once_and_downgrade_on_review(store_url, policy, at_450, at_540):
    book = ledger(store_url, TIERS.format(policy=policy))
    data = orders(("o1", "c1", 0, 600), ("o2", "c1", 10, 1000))
    apply_orders(book, data, day(0), day(5))
    assert book.balance("c1", at=day(5))["tier"] == "Silver"     # 600 ≥ 500: at once
    apply_orders(book, data, day(0), day(11))
    # o2 earns at Silver's × 1.5: 1,000 × 1.5 = 1,500 points; 1,600 spend → Gold at once
    assert entries(book, "c1")[2] == ("earn", "available", 1500, None)
    assert book.balance("c1", at=day(11))["tier"] == "Gold"
    # reviews every 90 days from joining (day 0): up to day 360 the window (365 days) holds both orders
    apply_orders(book, data, day(0), day(361))
    assert book.balance("c1", at=day(361))["tier"] == "Gold"
    # day 450: the window starts at day 85, both orders are out
    apply_orders(book, data, day(0), day(451))
    assert book.balance("c1", at=day(451))["tier"] == at_450
    apply_orders(book, data, day(0), day(541))
    assert book.balance("c1", at=day(541))["tier"] == at_540


def test_a_manual_tier_override_stays_until_removed(store_url):
    book = ledger(store_url, TIERS.format(policy="to_qualifying"))
    data = orders(("o1", "c1", 0, 100))
    apply_orders(book, data, day(0), day(1))
    set_tier(book, "c1", "Gold", reason="key account")
    apply_orders(book, data, day(0), day(400))                   # reviews find Bronze
    b = book.balance("c1", at=day(400))
    assert (b["tier"], b["tier_override"], b["discount_pct"], b["free_shipping"]) == ("Gold", True, 5.0, True)
    set_tier(book, "c1", None, reason="no longer")
    assert book.balance("c1", at=day(400))["tier"] == "Bronze"
    with pytest.raises(LedgerError, match="no tier 'Platinum'"):
        set_tier(book, "c1", "Platinum", reason="x")


DISCOUNT = """kind = "discount"
[discount]
basis = "lifetime"
fallback_days = 180
levels = [{ threshold = 0, percent = 3 }, { threshold = 300, percent = 5 }, { threshold = 1000, percent = 7 }]
"""


def test_the_cumulative_discount_rises_with_spend_and_falls_back_after_inactivity(store_url):
    book = ledger(store_url, DISCOUNT)
    data = orders(("o1", "c1", 0, 200), ("o2", "c1", 10, 150))
    apply_orders(book, data, day(0), day(1))
    assert book.balance("c1", at=day(1))["discount_pct"] == 3      # 200: level 0
    apply_orders(book, data, day(0), day(11))
    assert book.balance("c1", at=day(11))["discount_pct"] == 5     # 350 ≥ 300
    # 180 days without a purchase after day 10: one level down (spend reset to 0, level 0's threshold)
    apply_orders(book, data, day(0), day(191))
    assert book.balance("c1", at=day(191))["discount_pct"] == 3
    # another 180 days: below the first level
    apply_orders(book, data, day(0), day(371))
    assert book.balance("c1", at=day(371))["discount_pct"] == 0
    # a purchase of 300 climbs back to 5 %
    data = orders(("o1", "c1", 0, 200), ("o2", "c1", 10, 150), ("o3", "c1", 380, 300))
    apply_orders(book, data, day(0), day(381))
    assert book.balance("c1", at=day(381))["discount_pct"] == 5
    assert [e for e in events(book, "c1") if e[0] == "discount_level"] == [
        ("discount_level", "-1", "0"), ("discount_level", "0", "1"), ("discount_level", "1", "0"),
        ("discount_level", "0", "-1"), ("discount_level", "-1", "1")]


STAMPS = """kind = "stamps"
[stamps]
required = 3
min_amount = 5
reward = "a free coffee"
period_days = 90
"""


def test_stamp_card_completion_and_expiry_with_the_card(store_url):
    book = ledger(store_url, STAMPS)
    data = orders(("o1", "c1", 0, 10), ("o2", "c1", 1, 3), ("o3", "c1", 2, 10), ("o4", "c1", 3, 10),
                  ("o5", "c1", 10, 8))
    result = apply_orders(book, data, day(0), day(11))
    # o2 (3 < 5) earns no stamp; o4 completes the card (3 stamps → reward); o5 starts a new card
    assert result.counts == {"earn": 4, "reward": 1}
    assert available(book, "c1", day(11)) == 1
    assert ("stamp_reward", "3", "a free coffee") in events(book, "c1")
    # the new card started on day 10 ends on day 100: its one stamp expires with it
    assert available(book, "c1", day(100)) == 0
    apply_orders(book, data, day(0), day(101))
    assert entries(book, "c1")[-2:] == [("expire", "available", -1, None), ("expire", "expired", 1, None)]
    sums_to_balance(book)


REFERRAL = """kind = "points"
enrolment = "join"
[referral]
referrer_points = 500
referee_points = 250
"""


def test_referral_rewards_both_once_and_refuses_self_and_duplicates(store_url):
    book = ledger(store_url, REFERRAL)
    code = join(book, "alice", at=day(0))["referral_code"]
    assert code == referral_code("club", "alice")
    with pytest.raises(LedgerError, match="own referral code"):
        join(book, "alice", referred_by_code=code)
    people = {"alice": ("Alice@Example.com", None), "alice2": ("alice@example.com ", None), "bob": (None, None)}
    with pytest.raises(LedgerError, match="same e-mail as the referrer alice"):
        join(book, "alice2", referred_by_code=code, contacts=people)
    assert join(book, "bob", referred_by_code=code.lower(), contacts=people, at=day(1))["referred_by"] == "alice"
    data = orders(("b1", "bob", 2, 50), ("b2", "bob", 3, 70))
    apply_orders(book, data, day(0), day(4))
    apply_orders(book, data, day(0), day(4))
    # bob: 50 + 70 points for the orders and 250 for being referred; alice: 500, once
    assert available(book, "bob", day(5)) == 50 + 70 + 250
    assert available(book, "alice", day(5)) == 500
    with pytest.raises(LedgerError, match="already a member"):
        join(book, "bob", referred_by_code=code)
    sums_to_balance(book)


CASHBACK = """kind = "cashback"
point_value = 0.01
[cashback]
share = 0.03
period = "month"
"""


def test_cashback_is_credited_when_the_period_closes(store_url):
    book = ledger(store_url, CASHBACK)
    jan, feb = dt.datetime(2026, 1, 10), dt.datetime(2026, 2, 3)
    frame = pd.DataFrame({"order_id": ["a", "b", "c", "d"], "customer_id": ["c1"] * 4,
                          "ordered_at": [jan, jan + dt.timedelta(days=5), jan + dt.timedelta(days=6), feb],
                          "amount": [100.50, 20.0, 55.0, 10.0],
                          "status": ["completed", "completed", "returned", "completed"]})
    apply_orders(book, OrderInputs(frame), jan, dt.datetime(2026, 2, 15))
    # January: (100.50 + 20) × 0.03 = 3.615 money = 361.5 points of 0.01 → 361, credited on 1 February
    assert available(book, "c1", dt.datetime(2026, 2, 15)) == 361
    apply_orders(book, OrderInputs(frame), jan, dt.datetime(2026, 2, 15))        # a repeat adds nothing
    assert available(book, "c1", dt.datetime(2026, 2, 15)) == 361
    apply_orders(book, OrderInputs(frame), jan, dt.datetime(2026, 3, 1))
    # February: 10 × 3 = 30
    assert available(book, "c1", dt.datetime(2026, 3, 1)) == 391


def test_paid_membership_gives_perks_while_paid(store_url):
    from retentio.actions.loyalty.members import pay_membership

    book = ledger(store_url, 'kind = "membership"\n[membership]\nfee = 9.99\nperiod_days = 30\ngrace_days = 3\n'
                             '[membership.perks]\ndiscount_pct = 5\n')
    r = pay_membership(book, "c1", key="pay-1", at=day(0))
    assert r["member_until"] == day(30).isoformat()
    assert pay_membership(book, "c1", key="pay-1", at=day(0))["replayed"] is True
    pay_membership(book, "c1", key="pay-2", at=day(25))                 # renewal before the end extends
    assert book.balance("c1", at=day(59))["discount_pct"] == 5
    assert book.balance("c1", at=day(59))["free_shipping"] is False        # perks give a discount only
    assert book.balance("c1", at=day(64))["discount_pct"] == 0          # 60 + 3 days of grace passed
    apply_orders(book, orders(("o", "c1", 1, 10)), day(0), day(64))
    assert ("membership_lapsed", day(60).date().isoformat(), None) in events(book, "c1")
    pay_membership(book, "c1", key="pay-3", at=day(70))                 # after a lapse it starts afresh
    assert book.balance("c1", at=day(99))["member_until"] == day(100).isoformat()


def test_a_program_file_is_checked_as_a_whole():
    with pytest.raises(ProgramError, match=r"x.toml: tiers: levels must be listed lowest first"):
        parse_program('kind = "points"\n[tiers]\nlevels = [{name = "A", threshold = 0}, {name = "B", threshold = 0}]',
                      "x.toml", "x")
    with pytest.raises(ProgramError, match=r"needs a \[stamps\] section"):
        parse_program('kind = "stamps"\n', "x.toml", "x")
    with pytest.raises(ProgramError, match=r"\[earn\] per_amout: unknown key"):
        parse_program('kind = "points"\n[earn]\nper_amout = 1\n', "x.toml", "x")
