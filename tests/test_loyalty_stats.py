"""Loyalty program statistics against hand computations: points, liability and breakage
on a tiny ledger; tiers and stamp cards; the matched retention effect on hand-made cases
(which control each member gets, the rates, the Abadie–Imbens variance) and on a
simulated program with a known effect and confounded joining."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from retentio.analytics import loyalty_stats as ls

T = pd.Timestamp
Z95 = stats.norm.ppf(0.975)


# ---------------------------------------------------------------- program statistics


def _movements() -> pd.DataFrame:
    rows = [
        # January
        ("2024-01-05", "c1", "earn", "pending", 100),
        ("2024-01-05", "c2", "earn", "available", 50),
        ("2024-01-20", "c1", "release", "pending", -100),
        ("2024-01-20", "c1", "release", "available", 100),
        ("2024-01-25", "c1", "redeem", "available", -30),
        # February
        ("2024-02-03", "c2", "expire", "available", -20),
        ("2024-02-10", "c1", "earn", "pending", 40),
        ("2024-02-15", "c1", "reverse", "pending", -40),
        ("2024-02-20", "c2", "adjust", "available", 5),
        ("2024-02-25", "c1", "redeem", "available", -50),
        ("2024-02-26", "c2", "earn", "pending", 30),
        ("2024-02-28", "c2", "earn", "available", 60),
        # after as_of: ignored
        ("2024-03-05", "c1", "redeem", "available", -10),
    ]
    frame = pd.DataFrame(rows, columns=["at", "customer_id", "kind", "bucket", "amount"])
    return frame.assign(at=pd.to_datetime(frame["at"]))


def _members() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4", "c5"],
        "joined_at": pd.to_datetime(["2024-01-02", "2024-01-04", "2024-02-10", "2024-03-10", "2024-02-12"]),
        "tier": ["silver", "gold", "silver", "gold", None],
    })


def _tier_changes() -> pd.DataFrame:
    return pd.DataFrame({
        "at": pd.to_datetime(["2024-01-20", "2024-02-05", "2024-02-20", "2024-02-21", "2024-03-03"]),
        "customer_id": ["c1", "c2", "c3", "c3", "c1"],
        "from_tier": ["bronze", "silver", "gold", "silver", "silver"],
        "to_tier": ["silver", "gold", "silver", "gold", "gold"],
        "direction": ["up", "up", "down", "override", "up"],
    })


def _cards() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["c1", "c2", "c1", "c3", "c2"],
        "started_at": pd.to_datetime(["2024-01-10", "2024-01-15", "2024-02-01", "2024-02-11", "2024-03-01"]),
        "stamps": [10, 3, 4, 0, 10],
        "required": [10, 10, 10, 10, 10],
        "completed": [True, False, False, False, True],
    })


def _orders() -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": [f"o{i}" for i in range(1, 9)],
        "customer_id": ["c1", "c2", "c2", "c3", "c1", "c9", "c1", "c3"],
        "ordered_at": pd.to_datetime(["2024-01-05", "2024-01-03", "2024-02-10", "2024-02-15", "2024-02-20",
                                      "2024-02-01", "2024-02-05", "2024-03-02"]),
        "amount": [100.0, 80.0, 60.0, 40.0, 30.0, 50.0, 25.0, 70.0],
        "status": ["completed", "completed", "returned", None, "cancelled", "completed", "completed", "completed"],
        "discount": [10.0, 5.0, 6.0, np.nan, 3.0, 7.0, 2.5, 100.0],
    })


def _stats(**kw) -> ls.LoyaltyStats:
    args = dict(point_value=0.5, as_of=T("2024-02-29"), tier_order=["bronze", "silver", "gold"], period="month")
    args.update(kw)
    return ls.program_stats(_movements(), _members(), _tier_changes(), _cards(), _orders(), **args)


def test_points_by_month_by_hand():
    p = _stats().periods
    assert list(p["period_start"]) == [T("2024-01-01"), T("2024-02-01")]
    # January: issued 100 + 50 = 150; redeemed 30; release moves 100 pending → available;
    #   net 100 + 50 − 100 + 100 − 30 = 120 outstanding; rate 30/150 = 0.2; liability 120 × 0.5 = 60
    # February: issued 40 + 30 + 60 = 130; redeemed 50; expired 20; reversed 40; adjusted +5;
    #   net −20 + 40 − 40 + 5 − 50 + 30 + 60 = +25 → 145; rate 50/130; liability 72.5
    assert list(p["issued"]) == [150, 130]
    assert list(p["redeemed"]) == [30, 50]
    assert list(p["expired"]) == [0, 20]
    assert list(p["reversed"]) == [0, 40]
    assert list(p["adjusted"]) == [0, 5]
    assert list(p["outstanding"]) == [120, 145]
    assert p["redemption_rate"].tolist() == pytest.approx([0.2, 50 / 130])
    assert p["liability"].tolist() == pytest.approx([60.0, 72.5])


def test_totals_liability_and_breakage_by_hand():
    s = _stats()
    assert (s.issued, s.redeemed, s.expired, s.reversed, s.adjusted) == (280, 80, 20, 40, 5)
    # what is outstanding is what was issued and not spent: 280 − 80 − 20 − 40 + 5 = 145
    assert s.outstanding == 145
    # pending: +100 − 100 (released) + 40 − 40 (reversed) + 30 = 30; available: c1 100 − 30 − 50 = 20,
    # c2 50 − 20 + 5 + 60 = 95 → 115 (the redemption on 5 March is after as_of)
    assert (s.outstanding_available, s.outstanding_pending) == (115, 30)
    assert s.redemption_rate == pytest.approx(80 / 280)
    assert s.liability == pytest.approx(72.5)
    # breakage: expired / (expired + redeemed) = 20 / 100
    assert s.breakage_rate == pytest.approx(0.2)
    assert s.liability_net_of_breakage == pytest.approx(72.5 * 0.8)
    assert s.reward_cost == pytest.approx(40.0)


def test_members_activity_and_discount_cost_by_hand():
    s = _stats()
    p = s.periods
    # c1, c2 join in January; c3 and c5 in February; c4 after as_of
    assert list(p["new_members"]) == [2, 2]
    assert list(p["members"]) == [2, 4]
    assert s.members == 4
    # January: c1's o1 (c2's o2 is before it joined); February: c3's o4 (missing status =
    # completed) and c1's o7 (c2's o3 is returned, c1's o5 cancelled, c9 is no member)
    assert list(p["active_members"]) == [1, 2]
    assert s.active_members == 2
    # discounts of o1 (10), o4 (missing = 0) and o7 (2.5); o8's 100 is after as_of
    assert s.discount_cost == pytest.approx(12.5)
    # the override on 21 February and the move up on 3 March do not count
    assert list(p["tier_ups"]) == [1, 1]
    assert list(p["tier_downs"]) == [0, 1]


def test_tier_distribution_with_an_empty_tier_and_stamp_cards():
    s = _stats()
    # c1, c3 silver, c2 gold; c5 has no tier, c4 joined after as_of; nobody is bronze
    assert s.tier_distribution == {"bronze": 0, "silver": 2, "gold": 1}
    assert list(s.tier_distribution) == ["bronze", "silver", "gold"]
    # four cards started by as_of, one of them completed (the fifth starts in March)
    assert s.cards == 4
    assert s.stamp_completion_rate == pytest.approx(0.25)
    # tiers not in tier_order follow it, sorted
    assert _stats(tier_order=["silver"]).tier_distribution == {"silver": 2, "gold": 1}


def test_quarter_is_the_sum_of_its_months():
    p = _stats(period="quarter").periods
    assert len(p) == 1 and p["period_start"].iloc[0] == T("2024-01-01")
    assert (p["issued"].iloc[0], p["redeemed"].iloc[0], p["outstanding"].iloc[0]) == (280, 80, 145)
    assert p["redemption_rate"].iloc[0] == pytest.approx(80 / 280)
    assert (p["members"].iloc[0], p["active_members"].iloc[0], p["tier_ups"].iloc[0]) == (4, 2, 2)


def test_nothing_settled_nothing_issued_and_no_cards():
    moves = _movements().iloc[:2]  # two earns: no point has been redeemed or expired
    tiers = _tier_changes().iloc[:0]
    s = ls.program_stats(moves, _members(), tiers, pd.DataFrame(), _orders(), point_value=2.0,
                         as_of=T("2024-02-29"), period="month")
    assert np.isnan(s.breakage_rate)
    assert s.liability == s.liability_net_of_breakage == pytest.approx(300.0)
    assert s.cards == 0 and np.isnan(s.stamp_completion_rate)
    # February issued nothing: its redemption rate is not 0 but undefined
    assert np.isnan(s.periods["redemption_rate"].iloc[1])
    assert list(s.periods["tier_ups"]) == [0, 0]
    # without a tier order, the tiers met, sorted
    assert s.tier_distribution == {"gold": 1, "silver": 2}


def test_formulas():
    assert ls.redemption_rate(30, 150) == pytest.approx(0.2)
    assert np.isnan(ls.redemption_rate(5, 0))
    assert ls.breakage_rate(20, 80) == pytest.approx(0.2)
    assert np.isnan(ls.breakage_rate(0, 0))


# ---------------------------------------------------------------- retention effect: hand-made cases

J = T("2024-03-01")
AS_OF = T("2024-06-30")


def _orders_of(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])
    return frame.assign(order_id=[f"o{i}" for i in range(len(frame))], ordered_at=pd.to_datetime(frame["ordered_at"], format="ISO8601"))


def _tiny() -> tuple[pd.DataFrame, pd.DataFrame]:
    members = pd.DataFrame({
        "customer_id": ["A", "B", "W", "E", "L", "N"],
        "joined_at": pd.to_datetime(["2024-03-01 14:30", "2024-03-01", "2024-03-01",
                                     "2024-05-15", "2024-06-15", "2024-06-15"], format="ISO8601"),
    })
    orders = _orders_of([
        # member A: two orders before joining, one after (retained)
        ("A", "2024-01-01", 10), ("A", "2024-02-01", 10), ("A", "2024-03-10", 10),
        # E joined within A's window (15 May ≤ 1 March + 90 days): never A's control, though its
        # history is A's exactly
        ("E", "2024-01-01", 10), ("E", "2024-02-01", 10),
        # X: A's history one day later; not retained
        ("X", "2024-01-02", 10), ("X", "2024-02-02", 10),
        # L joined after A's window ended: a candidate; not retained
        ("L", "2024-02-01", 20),
        # member B: one order long before joining; retained
        ("B", "2023-06-01", 50), ("B", "2024-04-01", 50),
        # Z: B's history one day later; retained
        ("Z", "2023-06-02", 50), ("Z", "2024-05-01", 50),
        # Y: an old big spender, far from everyone; retained
        ("Y", "2022-01-01", 500), ("Y", "2022-02-01", 500), ("Y", "2022-03-01", 500), ("Y", "2024-03-15", 50),
        # an order on the join day counts neither as history nor as retention; a returned
        # order counts for nothing
        ("B", "2024-03-01 10:00", 5),
    ])
    returned = _orders_of([("X", "2024-03-20", 10)]).assign(status="returned")
    return members, pd.concat([orders.assign(status="completed"), returned], ignore_index=True)


def test_tiny_match_by_hand():
    members, orders = _tiny()
    m = ls.match_members(members, orders, AS_OF)
    # A, B, W joined on 1 March (A in the afternoon: the join day counts); E, L, N joined too
    # late for their 90 days to be seen by 30 June; W has no order before joining
    assert m.n_eligible == 3 and m.excluded_no_history == 1 and m.unmatched_no_controls == 0
    assert sorted(m.treated["customer_id"]) == ["A", "B"]
    assert dict(zip(m.pairs["member_id"], m.pairs["control_id"])) == {"A": "X", "B": "Z"}
    t = m.treated.set_index("customer_id")
    # A on 1 March: last order 1 Feb (29 days), first 1 Jan (60 days), 2 orders, spend 20
    assert t.loc["A", "recency_days"] == 29 and t.loc["A", "tenure_days"] == 60
    assert t.loc["A", "log1p_frequency"] == pytest.approx(np.log1p(2))
    assert t.loc["A", "log1p_spend"] == pytest.approx(np.log1p(20))
    # B: the order on the join day is neither history (recency 274 days) nor retention
    # (B is retained by 1 April)
    assert t.loc["B", "recency_days"] == 274 and t.loc["B", "retained"] == 1
    assert t.loc["B", "orders_before"] == 0 and t.loc["B", "orders_after"] == 1


def test_joiners_at_the_till_are_compared_with_same_day_buyers():
    """A joins while paying on 1 March. X has A's history exactly but bought nothing that
    day; Q's history is further from A's, but Q also bought on 1 March. Matched at the
    till, A's control is Q; otherwise X."""
    members = pd.DataFrame({"customer_id": ["A"], "joined_at": pd.to_datetime(["2024-03-01 12:00"])})
    orders = _orders_of([
        ("A", "2024-01-01", 10), ("A", "2024-02-01", 10), ("A", "2024-03-01 11:59", 10),
        ("X", "2024-01-01", 10), ("X", "2024-02-01", 10),
        ("Q", "2023-12-01", 10), ("Q", "2024-01-20", 10), ("Q", "2024-03-01 09:00", 10),
    ]).assign(status="completed")
    assert ls.match_members(members, orders, AS_OF, at_checkout=False).pairs["control_id"].tolist() == ["X"]
    till = ls.match_members(members, orders, AS_OF, at_checkout=True)
    assert till.pairs["control_id"].tolist() == ["Q"] and till.at_checkout
    # left to the data: the only member ordered on its join day, so it is a till join
    assert ls.match_members(members, orders, AS_OF).at_checkout


def test_tiny_effect_by_hand():
    members, orders = _tiny()
    e = ls.retention_effect(members, orders, AS_OF, min_matched=2)
    assert e.reason is None
    assert (e.n_members_matched, e.n_controls_unique) == (2, 2)
    # members A, B both retained; controls X (no), Z (yes)
    assert e.member_rate == 1.0 and e.control_rate == 0.5
    # paired differences 1 − 0 = 1 and 1 − 1 = 0: mean 0.5, sd √0.5, se √0.5/√2 = 0.5
    assert e.effect == pytest.approx(0.5)
    assert e.se == pytest.approx(0.5)
    assert (e.effect_low, e.effect_high) == pytest.approx((0.5 - Z95 * 0.5, 0.5 + Z95 * 0.5))
    assert e.p_value == pytest.approx(2 * stats.norm.sf(1.0))
    # unmatched, every candidate on 1 March: X 0, Y 1, Z 1, L 0 → 0.5; naive 1 − 0.5
    assert e.naive_effect == pytest.approx(0.5)
    # orders in the 90 days before / after: A 2 → 1, X 2 → 0; B 0 → 1, Z 0 → 1
    # paired (after − before) differences: (−1) − (−2) = 1 and 1 − 1 = 0
    assert (e.member_orders_before, e.member_orders_after) == (1.0, 1.0)
    assert (e.control_orders_before, e.control_orders_after) == (1.0, 0.5)
    assert e.did == pytest.approx(0.5)
    assert (e.did_low, e.did_high) == pytest.approx((0.5 - Z95 * 0.5, 0.5 + Z95 * 0.5))
    assert set(e.balance["feature"]) == set(ls.FEATURES)


def test_too_few_members_give_nan_and_a_reason():
    members, orders = _tiny()
    e = ls.retention_effect(members, orders, AS_OF)
    assert np.isnan(e.effect) and np.isnan(e.effect_low) and np.isnan(e.did)
    assert e.n_members_matched == 2
    assert "only 2 members" in e.reason and "20" in e.reason
    assert "self-selection" in e.caveat and "самоотбор" in e.caveat_ru
    assert "randomised invitation" in e.caveat


def _tenure_only() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Members m1–m3 and controls c1–c5 alike but for the age of their first order:
    everyone ordered 10 days before 1 March; the first order is ``tenure`` days before."""
    tenure = {"m1": 500, "m2": 510, "m3": 700, "c1": 505, "c2": 520, "c3": 690, "c4": 1000, "c5": 2000}
    retained = {"m1": 1, "m2": 0, "m3": 1, "c1": 1, "c2": 0, "c3": 0, "c4": 1, "c5": 1}
    rows = []
    for cid, days in tenure.items():
        rows += [(cid, str((J - pd.Timedelta(days=days)).date()), 10.0), (cid, "2024-02-20", 10.0)]
        if retained[cid]:
            rows.append((cid, "2024-03-06", 10.0))
    members = pd.DataFrame({"customer_id": ["m1", "m2", "m3"], "joined_at": [J] * 3})
    return members, _orders_of(rows), tenure


def test_abadie_imbens_variance_by_hand():
    members, orders, _ = _tenure_only()
    m = ls.match_members(members, orders, AS_OF, ratio=2)
    got = m.pairs.groupby("member_id")["control_id"].apply(set).to_dict()
    # by tenure only: m1 (500) → c1 (505), c2 (520); m2 (510) → c1, c2; m3 (700) → c3 (690), c2
    assert got == {"m1": {"c1", "c2"}, "m2": {"c1", "c2"}, "m3": {"c3", "c2"}}
    e = ls.retention_effect(members, orders, AS_OF, ratio=2, min_matched=3)
    # Ŷ(0): m1 (1 + 0)/2, m2 (1 + 0)/2, m3 (0 + 0)/2; d = 0.5, −0.5, 1; τ = 1/3
    assert e.effect == pytest.approx(1 / 3)
    assert (e.member_rate, e.control_rate) == pytest.approx((2 / 3, 1 / 3))
    # Σ (d − τ)² = (1/6)² + (5/6)² + (2/3)² = 7/6
    # σ̂² from each control's nearest other control: c1 ↔ c2 (½ (1 − 0)²), c2 ↔ c1 (½), c3 → c2 (0)
    # K(K − 1)/M² σ̂²: c1 2·1/4·½ + c2 3·2/4·½ + c3 0 = 0.25 + 0.75 = 1
    # V = (7/6 + 1) / 3² = 13/54
    assert e.se == pytest.approx(np.sqrt(13 / 54))
    assert e.n_controls_unique == 3


def test_one_control_each_reuses_the_nearest():
    members, orders, _ = _tenure_only()
    m = ls.match_members(members, orders, AS_OF)
    assert dict(zip(m.pairs["member_id"], m.pairs["control_id"])) == {"m1": "c1", "m2": "c1", "m3": "c3"}
    # every feature but tenure is equal; the pool (c1–c5, weighted by the 3 members of the
    # day) is older than the members, matching brings it close
    b = ls.retention_effect(members, orders, AS_OF, min_matched=3).balance.set_index("feature")
    assert b.loc["recency_days", "smd_before"] == 0 and b.loc["recency_days", "smd_after"] == 0
    assert b.loc["tenure_days", "smd_before"] < -0.5
    assert abs(b.loc["tenure_days", "smd_after"]) < abs(b.loc["tenure_days", "smd_before"]) / 10


# ---------------------------------------------------------------- retention effect: a known truth


def _simulated(n: int = 4000, effect: float = 0.10, seed: int = 20261203):
    """Customers ordering as Poisson processes (rate capped at 8 a year, so the chance to
    order within 90 days stays ≤ 0.86 and a +0.10 effect is possible for everyone).

    Half the customers, at random, are invited on a random Monday; an invited customer
    joins with a probability rising with its orders in the 365 days before (confounding:
    frequent buyers join, and would have ordered anyway); invited customers who decline
    are left out, so the non-members are not selected on their history at other dates
    and matching's assumption — selection on the observed pre-join behaviour — holds.
    A member who would not have ordered within 90 days does with probability
    ``effect / (1 − p₀)``: joining adds exactly ``effect`` to the chance to order."""
    rng = np.random.default_rng(seed)
    t0, horizon = T("2022-01-03"), 900
    start = rng.uniform(0, 300, n)
    rate = np.minimum(rng.gamma(2.0, 1.5, n), 8.0) / 365
    counts = rng.poisson(rate * (horizon - start))
    who = np.repeat(np.arange(n), counts)
    day = np.floor(start[who] + rng.uniform(size=len(who)) * (horizon - start[who])).astype(int)
    invited_on = 7 * rng.integers(400 // 7, (horizon - 92) // 7, n)
    before = (day >= invited_on[who] - 365) & (day < invited_on[who])
    frequency = np.bincount(who, weights=before, minlength=n)
    invited = rng.uniform(size=n) < 0.3
    joined = invited & (rng.uniform(size=n) < np.clip(0.12 * frequency - 0.04, 0.01, 0.9))
    after = np.bincount(who, weights=(day > invited_on[who]) & (day <= invited_on[who] + 90), minlength=n)
    p0 = 1 - np.exp(-90 * rate)
    extra = np.flatnonzero(joined & (after == 0) & (rng.uniform(size=n) < effect / (1 - p0)))
    who = np.concatenate([who, extra])
    day = np.concatenate([day, invited_on[extra] + rng.integers(1, 91, len(extra))])
    kept = (~invited | joined)[who]
    who, day = who[kept], day[kept]
    orders = pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(who))],
        "customer_id": [f"k{i}" for i in who],
        "ordered_at": t0 + pd.to_timedelta(day, unit="D"),
        "amount": np.round(rng.gamma(3.0, 20.0, len(who)), 2),
    })
    members = pd.DataFrame({"customer_id": [f"k{i}" for i in np.flatnonzero(joined)],
                            "joined_at": t0 + pd.to_timedelta(invited_on[joined], unit="D")})
    return members, orders, t0 + pd.Timedelta(days=horizon)


@pytest.fixture(scope="module")
def simulated() -> ls.RetentionEffect:
    members, orders, as_of = _simulated()
    return ls.retention_effect(members, orders, as_of)


def test_matching_recovers_a_known_effect(simulated):
    e = simulated
    assert e.reason is None and e.n_members_matched > 250
    assert e.effect_low < 0.10 < e.effect_high
    # joining depends on frequency: the naive comparison is biased upwards, matching removes
    # most of it
    assert e.naive_effect - 0.10 > 0.05
    assert e.naive_effect - 0.10 > abs(e.effect - 0.10)
    # a member who would not have ordered orders once more: +0.10 orders per member
    assert e.did_low < 0.10 < e.did_high


def test_matching_balances_every_feature(simulated):
    b = simulated.balance.set_index("feature")
    assert list(b.index) == list(ls.FEATURES)
    assert (b["smd_after"].abs() < 0.1).all()
    assert b.loc["log1p_frequency", "smd_before"] > 0.2


def test_only_movements_after_the_day_leave_an_empty_program():
    """Movements and joins all after ``as_of`` (a till's request today, the data ending
    earlier) count for nothing — they once came back through an empty frame's index."""
    moves = _movements().assign(at=T("2030-01-01"))
    members = _members().assign(joined_at=T("2030-01-01"))
    s = ls.program_stats(moves, members, _tier_changes().iloc[:0], pd.DataFrame(), _orders(), point_value=0.5,
                         as_of=T("2024-02-29"), period="month")
    assert s.members == 0 and s.issued == 0 and s.outstanding == 0
    assert list(s.periods["period_start"]) == [T("2024-02-01")]
