"""How a loyalty program performs: points issued and redeemed, the liability of the
points still outstanding, breakage, tiers, stamp cards, cost, and the program's effect on
retention. Frames in, frames and dataclasses out; nothing here reads a workspace.

* **Points** — from the customer-side ledger movements (one row per movement, signed
  amounts): issued = Σ positive ``earn``; redeemed = −Σ ``redeem``; expired = −Σ
  ``expire``; reversed = −Σ ``reverse``; adjusted = Σ ``adjust``. A ``release`` (pending
  → available) and a ``transfer`` move points without issuing or spending them.
  Outstanding at ``t`` = Σ amounts with ``at ≤ t`` (both buckets).
* **Redemption rate** = redeemed / issued (the project SPEC's "rewards redeemed /
  rewards issued"), per period and over the whole history; NaN when nothing was issued.
* **Liability** = outstanding × point value: the points the program still owes, at what
  a point is worth when redeemed (IFRS 15 ¶B40 and ASC 606-10-55-42: a customer option
  that is a material right is a separate performance obligation).
* **Breakage** — the share of issued points that will never be redeemed: the rights a
  customer leaves unexercised (IFRS 15 ¶B44–B47, in particular ¶B46, which recognises
  expected breakage; ASC 606-10-55-46 to 55-49, in particular 55-48; the likelihood of
  redemption enters the points' price by IFRS 15 ¶B42 and its Illustrative Example 52,
  a customer loyalty programme). Here it is estimated from the program's own history by
  the **observed expiry ratio**: among points whose fate is settled,
  ``breakage = expired / (expired + redeemed)``. Reversed points (an earn undone, e.g. a
  returned order) were never the customer's and settle nothing. The liability net of
  breakage is ``outstanding × point value × (1 − breakage)``; with nothing settled yet
  the rate is NaN and the net liability is the gross one.
* **Retention effect** — members against comparable non-members, by nearest-neighbour
  matching with replacement on pre-join behaviour (Abadie & Imbens 2006, "Large Sample
  Properties of Matching Estimators for Average Treatment Effects", *Econometrica*
  74(1):235–267). The estimand is the effect on the treated (ATT):
  ``τ = (1/N₁) Σᵢ (Yᵢ − Ŷᵢ(0))`` with ``Ŷᵢ(0)`` the mean outcome of member i's matched
  controls. Its variance: for one control per member the paired-difference variance
  ``s²_d / N₁``; for ``ratio`` M > 1 the Abadie–Imbens estimator without the
  bias-correction term, ``V = (1/N₁²) [Σᵢ (Yᵢ − Ŷᵢ(0) − τ)² + Σⱼ (K_j(K_j − 1)/M²) σ̂²ⱼ]``,
  where K_j counts the members control j is matched to and ``σ̂²ⱼ = ½ (Yⱼ − Y_l(j))²``
  uses j's nearest other control l(j) (the matching estimator of the conditional
  variance with one same-group neighbour; Abadie, Drukker, Herr & Imbens 2004,
  "Implementing Matching Estimators for Average Treatment Effects in Stata", *Stata
  Journal* 4(3):290–311, give the ATT form). Intervals are normal (the estimators' limit law). Balance is checked by
  the standardized mean difference ``(x̄_m − x̄_c) / √((s²_m + s²_c)/2)`` before and after
  matching, with the same (before-matching) denominator for both, and |SMD| < 0.1 taken
  as balanced (Austin 2011, "An Introduction to Propensity Score Methods for Reducing
  the Effects of Confounding in Observational Studies", *Multivariate Behavioral
  Research* 46(3):399–424; Stuart 2010, *Statistical Science* 25(1):1–21).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.neighbors import NearestNeighbors

from retentio.analytics.periods import Periods, check_period
from retentio.data.errors import InvalidParameter

__all__ = [
    "FEATURES",
    "LoyaltyStats",
    "Matches",
    "RetentionEffect",
    "breakage_rate",
    "match_members",
    "program_stats",
    "redemption_rate",
    "retention_effect",
    "tier_distribution",
]

#: the periods program statistics are reported by
PERIODS = ("week", "month", "quarter", "year")
#: the pre-join features members are matched on, as matched (frequency and spend log1p)
FEATURES = ("recency_days", "log1p_frequency", "log1p_spend", "tenure_days")
#: fewer matched members than this and the retention effect is not estimated
MIN_MATCHED = 20
_DAY = pd.Timedelta(days=1)
_Z95 = float(stats.norm.ppf(0.975))
_NAN = float("nan")


# ---------------------------------------------------------------- program statistics


@dataclass(frozen=True)
class LoyaltyStats:
    """A loyalty program over its history up to ``as_of``.

    ``periods`` has one row per period (``period_start``, ``period_end`` exclusive):
    members (joined by the period's end), new_members, active_members (members with a
    completed order in the period at or after joining), issued, redeemed, expired,
    reversed, adjusted, redemption_rate, outstanding (points at the period's end, or at
    ``as_of`` for the last one), liability, tier_ups, tier_downs (overrides are neither).
    The other fields are the whole history; points are counts, costs money.
    """

    periods: pd.DataFrame
    members: int
    #: members with a completed order in the last period
    active_members: int
    issued: int
    redeemed: int
    expired: int
    reversed: int
    adjusted: int
    redemption_rate: float
    outstanding_available: int
    outstanding_pending: int
    outstanding: int
    #: outstanding × point value
    liability: float
    #: expired / (expired + redeemed): the observed expiry ratio (NaN if nothing settled)
    breakage_rate: float
    liability_net_of_breakage: float
    #: redeemed × point value
    reward_cost: float
    #: discounts on members' completed orders placed at or after joining
    discount_cost: float
    #: members by current tier, in the program's tier order (tiers with none included)
    tier_distribution: dict[str, int]
    #: completed cards / cards (NaN without cards)
    stamp_completion_rate: float
    cards: int


def redemption_rate(redeemed: float, issued: float) -> float:
    """Redeemed / issued (SPEC: "rewards redeemed / rewards issued"); NaN when nothing
    was issued."""
    return float(redeemed) / float(issued) if issued else _NAN


def breakage_rate(expired: float, redeemed: float) -> float:
    """The observed expiry ratio ``expired / (expired + redeemed)`` over points whose fate
    is settled (IFRS 15 ¶B46, ASC 606-10-55-48: breakage estimated from historical
    experience); NaN when no point has settled yet."""
    settled = float(expired) + float(redeemed)
    return float(expired) / settled if settled else _NAN


def program_stats(movements: pd.DataFrame, members: pd.DataFrame, tier_changes: pd.DataFrame,
                  stamp_cards: pd.DataFrame, orders: pd.DataFrame, *, point_value: float,
                  as_of: pd.Timestamp, tier_order: Sequence[str] = (),
                  period: str = "month") -> LoyaltyStats:
    """The program's statistics per period and in total, from everything at or before
    ``as_of`` (see the module notes for every formula).

    Parameters
    ----------
    movements : DataFrame
        ``at``, ``customer_id``, ``kind``, ``bucket`` ("available" | "pending"), signed
        integer ``amount``.
    members : DataFrame
        ``customer_id``, ``joined_at``, ``tier`` (current tier or missing).
    tier_changes : DataFrame
        ``at``, ``customer_id``, ``from_tier``, ``to_tier``, ``direction``
        ("up" | "down" | "override").
    stamp_cards : DataFrame
        ``customer_id``, ``started_at``, ``stamps``, ``required``, ``completed``; may be
        empty.
    orders : DataFrame
        Canonical orders: ``customer_id``, ``ordered_at``, ``amount``, optional
        ``status`` (missing = completed) and ``discount`` (missing = 0).
    point_value : float
        Money per point.
    as_of : Timestamp
        The end of the analysis (inclusive).
    tier_order : sequence of str
        Tier names, lowest first; tiers met in ``members`` but not named follow, sorted.
    period : str
        "week", "month", "quarter" or "year".
    """
    check_period(period, PERIODS)
    as_of = pd.Timestamp(as_of)
    movements = _columns(movements, "movements", ("at", "customer_id", "kind", "bucket", "amount"))
    members = _columns(members, "members", ("customer_id", "joined_at"))
    tier_changes = _columns(tier_changes, "tier_changes", ("at", "customer_id", "direction"))
    stamp_cards = _columns(stamp_cards, "stamp_cards", ("customer_id", "started_at", "completed"))
    orders = _columns(orders, "orders", ("customer_id", "ordered_at", "amount"))
    moves = _until(movements, "at", as_of)
    joined = _until(members.drop_duplicates("customer_id"), "joined_at", as_of)
    bounds = _bounds(period, [moves["at"], joined["joined_at"]], as_of)
    points = _points(moves)
    table = _period_points(points, moves["at"], bounds)
    table.insert(0, "period_start", bounds[:-1])
    table.insert(1, "period_end", bounds[1:])
    completed = _completed_orders(orders, as_of)
    mine = _member_orders(completed, joined)
    _add_membership(table, joined["joined_at"], mine, bounds)
    _add_tier_moves(table, _until(tier_changes, "at", as_of), bounds)
    table["liability"] = table["outstanding"] * float(point_value)
    table = table[["period_start", "period_end", "members", "new_members", "active_members", "issued", "redeemed",
                   "expired", "reversed", "adjusted", "redemption_rate", "outstanding", "liability", "tier_ups",
                   "tier_downs"]]
    return _totals(table, points, joined, mine, _until(stamp_cards, "started_at", as_of),
                   float(point_value), tier_order)


def _columns(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the columns it needs: an empty frame may lack them, a frame with
    rows may not."""
    missing = [c for c in columns if c not in frame.columns]
    if missing and len(frame):
        raise InvalidParameter(name, f"a frame without {', '.join(missing)}", f"columns {', '.join(columns)}")
    return frame.assign(**{c: pd.Series(dtype="object") for c in missing})


def _until(frame: pd.DataFrame, column: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rows at or before ``as_of`` (missing times dropped)."""
    at = pd.to_datetime(frame[column])
    keep = at.notna() & (at <= as_of)
    # at[keep], not at: pandas gives a frame left with no rows the index of a Series
    # assigned to it, which brought back every row dropped here
    return frame.loc[keep].assign(**{column: at[keep]})


def _bounds(period: str, times: list[pd.Series], as_of: pd.Timestamp) -> list[pd.Timestamp]:
    firsts = [t.min() for t in times if len(t)]
    first = min(firsts) if firsts else as_of
    return Periods.covering(period, first, as_of, as_of).bounds


def _period_of(times: pd.Series, bounds: list[pd.Timestamp]) -> np.ndarray:
    """The index of the period holding each time."""
    edges = np.array(bounds, dtype="datetime64[ns]")
    return np.searchsorted(edges, times.to_numpy("datetime64[ns]"), side="right") - 1


def _points(moves: pd.DataFrame) -> pd.DataFrame:
    """Per movement, its part in each points total (all non-negative but ``adjusted``)."""
    kind = moves["kind"].astype("string")
    amount = moves["amount"].astype("int64")

    def part(name: str, sign: int) -> pd.Series:
        return (sign * amount).where(kind == name, 0)

    return pd.DataFrame({
        "issued": amount.where((kind == "earn") & (amount > 0), 0),
        "redeemed": part("redeem", -1),
        "expired": part("expire", -1),
        "reversed": part("reverse", -1),
        "adjusted": part("adjust", 1),
        "net": amount,
        "pending": amount.where(moves["bucket"].astype("string") == "pending", 0),
    }, index=moves.index)


def _period_points(points: pd.DataFrame, at: pd.Series, bounds: list[pd.Timestamp]) -> pd.DataFrame:
    k = len(bounds) - 1
    sums = points.groupby(_period_of(at, bounds)).sum().reindex(range(k), fill_value=0)
    table = sums[["issued", "redeemed", "expired", "reversed", "adjusted"]].astype("int64")
    table["redemption_rate"] = [redemption_rate(r, i) for r, i in zip(table["redeemed"], table["issued"])]
    table["outstanding"] = sums["net"].cumsum().astype("int64")
    return table.reset_index(drop=True)


def _completed_orders(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Completed orders (a missing status counts as completed) at or before ``as_of``,
    with ``discount`` filled (missing = 0)."""
    done = _until(orders, "ordered_at", as_of)
    if "status" in done:
        done = done.loc[done["status"].astype("string").fillna("completed") == "completed"]
    discount = done["discount"] if "discount" in done else pd.Series(0.0, index=done.index)
    return done.assign(discount=pd.to_numeric(discount).astype("float64").fillna(0.0))


def _member_orders(completed: pd.DataFrame, joined: pd.DataFrame) -> pd.DataFrame:
    """Members' completed orders placed at or after joining."""
    both = completed.merge(joined[["customer_id", "joined_at"]], on="customer_id", how="inner")
    return both.loc[both["ordered_at"] >= both["joined_at"]]


def _add_membership(table: pd.DataFrame, joined_at: pd.Series, mine: pd.DataFrame,
                    bounds: list[pd.Timestamp]) -> None:
    k = len(table)
    new = pd.Series(_period_of(joined_at, bounds)).value_counts().reindex(range(k), fill_value=0)
    active = (mine.assign(k=_period_of(mine["ordered_at"], bounds)).groupby("k")["customer_id"]
              .nunique().reindex(range(k), fill_value=0))
    table["members"] = new.cumsum().to_numpy()
    table["new_members"] = new.to_numpy()
    table["active_members"] = active.to_numpy()


def _add_tier_moves(table: pd.DataFrame, changes: pd.DataFrame, bounds: list[pd.Timestamp]) -> None:
    k = len(table)
    period_index = _period_of(changes["at"], bounds)
    direction = changes["direction"].astype("string").to_numpy()
    for name, column in (("up", "tier_ups"), ("down", "tier_downs")):
        hits = period_index[direction == name]
        table[column] = np.bincount(hits, minlength=k)[:k].astype("int64")


def tier_distribution(tiers: pd.Series, tier_order: Sequence[str]) -> dict[str, int]:
    """Members per tier, in ``tier_order`` (with zeros), then tiers not named there,
    sorted; members without a tier are not counted."""
    counts = tiers.dropna().astype(str).value_counts()
    names = list(tier_order) + sorted(set(counts.index) - set(tier_order))
    return {name: int(counts.get(name, 0)) for name in names}


def _totals(table: pd.DataFrame, points: pd.DataFrame, joined: pd.DataFrame,
            mine: pd.DataFrame, cards: pd.DataFrame, point_value: float,
            tier_order: Sequence[str]) -> LoyaltyStats:
    total = {name: int(points[name].sum()) for name in ("issued", "redeemed", "expired", "reversed", "adjusted")}
    pending = int(points["pending"].sum())
    outstanding = int(points["net"].sum())
    rate = breakage_rate(total["expired"], total["redeemed"])
    liability = outstanding * point_value
    n_cards = len(cards)
    done = int(cards["completed"].astype(bool).sum()) if n_cards else 0
    return LoyaltyStats(
        periods=table, members=len(joined), active_members=int(table["active_members"].iloc[-1]),
        **total, redemption_rate=redemption_rate(total["redeemed"], total["issued"]),
        outstanding_available=outstanding - pending, outstanding_pending=pending, outstanding=outstanding,
        liability=liability, breakage_rate=rate,
        liability_net_of_breakage=liability if np.isnan(rate) else liability * (1 - rate),
        reward_cost=total["redeemed"] * point_value, discount_cost=float(mine["discount"].sum()),
        tier_distribution=tier_distribution(joined["tier"] if "tier" in joined else pd.Series(), tier_order),
        stamp_completion_rate=done / n_cards if n_cards else _NAN, cards=n_cards)


# ---------------------------------------------------------------- retention effect


def _caveat(lookback_days: int) -> str:
    return ("This is an observational comparison, not an experiment. Matching balances only the "
            f"observed pre-join behaviour: days since the last order (recency), the number of orders and "
            f"the spend in the {lookback_days} days before joining (frequency, spend), and days since the "
            "first order (tenure). Customers who choose to join may be more loyal in ways these do not "
            "measure (self-selection), so the effect is likely an upper bound of the program's true "
            "effect. Only a randomised invitation, with a random holdout of customers who are not "
            "invited, proves causality.")


def _caveat_ru(lookback_days: int) -> str:
    return ("Это наблюдательное сравнение, а не эксперимент. Сопоставление выравнивает только "
            "наблюдаемое поведение до вступления: дни с последнего заказа (давность), число заказов и "
            f"сумму покупок за {lookback_days} дней до вступления (частота, сумма) и дни с первого заказа "
            "(стаж). Клиенты, которые сами решают вступить, могут быть лояльнее в том, что здесь не "
            "измерено (самоотбор), поэтому эффект — скорее всего, верхняя граница истинного эффекта "
            "программы. Причинность доказывает только рандомизированное приглашение: случайная "
            "контрольная группа клиентов, которым приглашение не отправляют.")


@dataclass(frozen=True)
class Matches:
    """Members matched to non-members on pre-join behaviour (see :func:`match_members`).

    ``treated`` has one row per matched member: ``customer_id``, ``joined_on`` (the join
    day every measure is taken at), the :data:`FEATURES`, ``retained`` (0/1),
    ``orders_before`` and ``orders_after`` (orders in the ``window_days`` before and
    after the join day). ``pairs`` has one row per (member, control): ``member`` (row of
    ``treated``), ``member_id``, ``control_id``, ``joined_on``, ``weight`` (1 / the
    member's number of controls), the control's features and outcomes measured at the
    member's join day, and ``sigma2``, its conditional outcome variance from its nearest
    other control (computed for ``ratio`` > 1 only). ``pool`` holds, per feature, the
    mean and variance of all candidate controls (every non-member with history at each
    member's join day, each day weighted by its members) and ``naive_control_rate``
    their retention.
    """

    treated: pd.DataFrame
    pairs: pd.DataFrame
    pool: pd.DataFrame
    naive_control_rate: float
    #: members whose whole window lies before as_of
    n_eligible: int
    #: eligible members without a completed order before joining: not matched
    excluded_no_history: int
    #: members with history but no candidate control on their join day
    unmatched_no_controls: int
    #: per feature, the pooled standard deviation: the unit of distance and of the SMD
    scale: np.ndarray
    #: members who ordered on their join day against non-members who ordered that day
    at_checkout: bool = False


@dataclass(frozen=True)
class RetentionEffect:
    """The program's effect on retention: matched members against comparable
    non-members (an observational estimate; read ``caveat``).

    ``effect`` is the ATT: ``member_rate − control_rate``, the difference in the share
    retained (a completed order within ``window_days`` after the join day). ``did`` is
    the difference-in-differences of orders per customer (after − before the join day),
    members minus matched controls. Intervals are 95 %. ``balance`` lists each feature's
    SMD before and after matching. When fewer than 20 members are matched, the estimates
    are NaN and ``reason`` says why (otherwise ``reason`` is None).
    """

    n_members_eligible: int
    excluded_no_history: int
    unmatched_no_controls: int
    n_members_matched: int
    n_controls_unique: int
    window_days: int
    ratio: int
    caveat: str
    caveat_ru: str
    member_rate: float = _NAN
    control_rate: float = _NAN
    effect: float = _NAN
    effect_low: float = _NAN
    effect_high: float = _NAN
    se: float = _NAN
    p_value: float = _NAN
    #: member rate minus the rate of every non-member with history at the same join days
    naive_effect: float = _NAN
    balance: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"feature": list(FEATURES), "smd_before": _NAN, "smd_after": _NAN}))
    member_orders_before: float = _NAN
    member_orders_after: float = _NAN
    control_orders_before: float = _NAN
    control_orders_after: float = _NAN
    did: float = _NAN
    did_low: float = _NAN
    did_high: float = _NAN
    reason: str | None = None
    #: the comparison design: joiners at the till against same-day buyers (see match_members)
    at_checkout: bool = False


@dataclass(frozen=True)
class _Orders:
    """Completed orders sorted by customer, then time, for vectorised counts at a date.

    ``keys = code × (U + 1) + rank of the order's time among the U distinct times``, so
    one ``searchsorted`` finds, for every customer at once, where its orders before a
    time end."""

    customers: np.ndarray
    keys: np.ndarray
    times: np.ndarray
    distinct: np.ndarray
    cum_amount: np.ndarray
    start: np.ndarray

    @classmethod
    def of(cls, completed: pd.DataFrame) -> _Orders:
        customers, code = np.unique(completed["customer_id"].astype(str).to_numpy(), return_inverse=True)
        times = completed["ordered_at"].to_numpy("datetime64[ns]")
        distinct, rank = np.unique(times, return_inverse=True)
        keys = code.astype("int64") * (len(distinct) + 1) + rank
        order = np.argsort(keys, kind="stable")
        amount = completed["amount"].astype("float64").fillna(0.0).to_numpy()[order]
        start = np.searchsorted(keys[order], np.arange(len(customers), dtype="int64") * (len(distinct) + 1))
        return cls(customers, keys[order], times[order], distinct,
                   np.concatenate([[0.0], np.cumsum(amount)]), start)

    def before(self, codes: np.ndarray, at: pd.Timestamp) -> np.ndarray:
        """For each customer, the position just past its last order strictly before ``at``."""
        q = np.searchsorted(self.distinct, np.datetime64(at.as_unit("ns")), side="left")
        return np.searchsorted(self.keys, codes * (len(self.distinct) + 1) + q, side="left")

    def codes_of(self, ids: pd.Series) -> np.ndarray:
        """The code of each customer id, −1 for customers without completed orders."""
        ids = ids.astype(str).to_numpy()
        pos = np.searchsorted(self.customers, ids).clip(0, max(len(self.customers) - 1, 0))
        found = (self.customers[pos] == ids) if len(self.customers) else np.zeros(len(ids), bool)
        return np.where(found, pos, -1)


#: the columns of a day's measures, one row per customer (all float64)
_COLUMNS = ("code", "history", *FEATURES, "retained", "orders_before", "orders_after")
_X = slice(2, 2 + len(FEATURES))
_Y = _COLUMNS.index("retained")


def _measures(book: _Orders, codes: np.ndarray, day: pd.Timestamp, window_days: int,
              lookback_days: int) -> np.ndarray:
    """Per customer (rows) the :data:`_COLUMNS` at ``day``: features from orders strictly
    before it, outcomes over the ``window_days`` days after it (the join day itself is in
    neither)."""
    at = np.datetime64(day.as_unit("ns"))
    now = book.before(codes, day)
    first = book.start[codes]
    back = book.before(codes, day - pd.Timedelta(days=lookback_days))
    window = pd.Timedelta(days=window_days)
    after = book.before(codes, day + window + _DAY) - book.before(codes, day + _DAY)
    one_day = np.timedelta64(1, "D")
    return np.column_stack([
        codes,
        now - first,
        (at - book.times[np.maximum(now - 1, 0)]) / one_day,
        np.log1p(now - back),
        np.log1p(np.maximum(book.cum_amount[now] - book.cum_amount[back], 0.0)),
        (at - book.times[np.minimum(first, max(len(book.times) - 1, 0))]) / one_day,
        after > 0,
        now - book.before(codes, day - window),
        after,
    ]).astype("float64").reshape(len(codes), len(_COLUMNS))


def _eligible_members(members: pd.DataFrame, as_of: pd.Timestamp, window_days: int) -> pd.DataFrame:
    """Members (first row per customer) whose join day plus the window lies before as_of."""
    first = members.dropna(subset=["joined_at"]).sort_values("joined_at").drop_duplicates("customer_id")
    day = pd.to_datetime(first["joined_at"]).dt.normalize()
    keep = day + pd.Timedelta(days=window_days) <= as_of
    return pd.DataFrame({"customer_id": first["customer_id"].astype(str), "joined_on": day}).loc[keep]


def _join_days(book: _Orders, members: pd.DataFrame) -> np.ndarray:
    """Per customer code, the day it first joined (NaT: never)."""
    joins = members.dropna(subset=["joined_at"])
    codes = book.codes_of(joins["customer_id"])
    days = pd.Series(pd.to_datetime(joins["joined_at"]).dt.normalize().to_numpy("datetime64[ns]"))
    first = days[codes >= 0].groupby(codes[codes >= 0]).min()
    return first.reindex(range(len(book.customers))).to_numpy("datetime64[ns]")


@dataclass(frozen=True)
class _Day:
    """One join day: its members with history (``ids`` and their measures) and its pool
    of candidate controls (measures), rows as :data:`_COLUMNS`."""

    day: pd.Timestamp
    ids: np.ndarray
    treated: np.ndarray
    pool: np.ndarray


def _ordered_on(book: _Orders, codes: np.ndarray, day: pd.Timestamp) -> np.ndarray:
    """Whether each customer has a completed order on ``day``."""
    return (book.before(codes, day + _DAY) - book.before(codes, day)) > 0


def _days(book: _Orders, join_day: np.ndarray, eligible: pd.DataFrame, window_days: int,
          lookback_days: int, at_checkout: bool = False) -> Iterator[_Day]:
    """Per join day, its members with history and its pool: customers with an order
    before the day who were not members by the end of the window. ``at_checkout``:
    members who ordered on their join day, against non-members who ordered that day."""
    everyone = np.arange(len(book.customers), dtype="int64")
    first_order = book.times[book.start] if len(book.times) else np.array([], "datetime64[ns]")
    window = np.timedelta64(window_days, "D")
    for day, group in eligible.groupby("joined_on", sort=True):
        day = pd.Timestamp(day)
        at = np.datetime64(day.as_unit("ns"))
        codes = book.codes_of(group["customer_id"])
        treated = _measures(book, codes[codes >= 0], day, window_days, lookback_days)
        ids = group["customer_id"].to_numpy()[codes >= 0]
        outside = (np.isnat(join_day) | (join_day > at + window)) & (first_order < at)
        pool_codes = everyone[outside]
        has = treated[:, 1] > 0
        if at_checkout:
            has &= _ordered_on(book, codes[codes >= 0], day)
            pool_codes = pool_codes[_ordered_on(book, pool_codes, day)]
        pool = _measures(book, pool_codes, day, window_days, lookback_days)
        yield _Day(day, ids[has], treated[has], pool[pool[:, 1] > 0])


def _first_pass(days: Iterator[_Day]) -> tuple[np.ndarray, pd.DataFrame, float]:
    """The features of the members that have candidates; each feature's mean and
    variance over the pools, each day weighted by those members; the pools' retention,
    weighted alike."""
    cols = [*range(_X.start, _X.stop), _Y]
    first = np.zeros(len(cols))
    second = np.zeros(len(cols))
    parts = []
    for d in days:
        if len(d.treated) and len(d.pool):
            x = d.pool[:, cols]
            first += len(d.treated) * x.mean(axis=0)
            second += len(d.treated) * (x**2).mean(axis=0)
            parts.append(d.treated[:, _X])
    weight = sum(len(p) for p in parts)
    if not weight:
        nan = pd.DataFrame({"mean": _NAN, "var": _NAN}, index=list(FEATURES))
        return np.empty((0, len(FEATURES))), nan, _NAN
    mean = first / weight
    var = np.maximum(second / weight - mean**2, 0.0)
    table = pd.DataFrame({"mean": mean[:-1], "var": var[:-1]}, index=list(FEATURES))
    return np.concatenate(parts), table, float(mean[-1])


def _scale(treated: np.ndarray, pool_var: np.ndarray) -> np.ndarray:
    """The pooled standard deviation ``√((s²_m + s²_c)/2)`` of each feature (members and
    candidate controls): the unit of the matching distance and the SMD denominator; 1
    where it is 0."""
    var_t = treated.var(axis=0, ddof=1) if len(treated) > 1 else np.zeros(treated.shape[1])
    sd = np.sqrt((var_t + pool_var) / 2)
    return np.where(sd > 0, sd, 1.0)


def _match_day(treated: np.ndarray, pool: np.ndarray, scale: np.ndarray, ratio: int,
               rng: np.random.Generator, with_sigma2: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each member's ``ratio`` nearest candidates (rows of ``pool``; Euclidean on scaled
    features, ties broken by a random order of the pool) and, with ``with_sigma2``, each
    used candidate's ``σ̂² = ½ (Y_j − Y_l(j))²`` from its nearest other candidate l(j)."""
    order = rng.permutation(len(pool))
    x_pool = pool[order][:, _X] / scale
    nn = NearestNeighbors(n_neighbors=min(ratio, len(pool))).fit(x_pool)
    _, idx = nn.kneighbors(treated[:, _X] / scale)
    sigma2 = np.full(len(pool), _NAN)
    if with_sigma2 and len(pool) > 1:
        used = np.unique(idx)
        _, near = nn.kneighbors(x_pool[used], n_neighbors=2)
        other = np.where(near[:, 0] == used, near[:, 1], near[:, 0])
        y = pool[order, _Y]
        sigma2[order[used]] = (y[used] - y[other]) ** 2 / 2
    return order[idx], sigma2


def match_members(members: pd.DataFrame, orders: pd.DataFrame, as_of: pd.Timestamp,
                  window_days: int = 90, lookback_days: int = 365, ratio: int = 1,
                  seed: int = 0, at_checkout: bool | None = None) -> Matches:
    """Match each member to ``ratio`` comparable non-members, with replacement.

    Every measure is taken at the member's join day J (``joined_at`` at day resolution):
    features from completed orders on days before J — recency and tenure in days since
    the last and first order, frequency and spend over the ``lookback_days`` before J
    (matched as log1p); the outcome ``retained`` is a completed order on days J + 1 …
    J + ``window_days`` (the join day itself, where sign-up often happens at checkout,
    counts for neither). A member is measured when J + ``window_days`` ≤ ``as_of``.
    Candidate controls at J are customers with a completed order before J who were not
    members by J + ``window_days`` (never joined, or joined later), measured at the same
    J, so the match is exact on the join day (hence on its calendar month). Members
    sharing a join day share the pool. Distances are Euclidean on features divided by
    their pooled standard deviation; ``seed`` orders the pool to break ties at random.

    Joining at the till: a member who signs up while paying is, by that act, a customer
    buying *today* — compared with customers who merely bought before, they look more
    loyal for no reason of the program's. With ``at_checkout`` the comparison is kept
    like with like: members who ordered on their join day against non-members who
    ordered on that day (and members who joined without ordering are left out). Left
    as None it is chosen from the data: on when at least half of the members ordered on
    their join day.

    Parameters
    ----------
    members : DataFrame
        ``customer_id``, ``joined_at``.
    orders : DataFrame
        Canonical orders (completed ones count: a missing status is completed).
    as_of : Timestamp
        The end of the data (inclusive).
    window_days, lookback_days : int
        The outcome window after joining and the history window for frequency and spend.
    ratio : int
        Controls per member.
    seed : int
        Seed of the tie-breaking order.
    """
    if ratio < 1:
        raise InvalidParameter("ratio", ratio, "a number of controls per member, 1 or more")
    if window_days < 1 or lookback_days < 1:
        raise InvalidParameter("window_days" if window_days < 1 else "lookback_days",
                               min(window_days, lookback_days), "a number of days, 1 or more")
    as_of = pd.Timestamp(as_of)
    book = _Orders.of(_completed_orders(orders, as_of))
    eligible = _eligible_members(members, as_of, window_days)
    join_day = _join_days(book, members)
    if at_checkout is None:
        on_day = [int(_ordered_on(book, codes[codes >= 0], pd.Timestamp(d)).sum())
                  for d, codes in ((d, book.codes_of(g["customer_id"])) for d, g in eligible.groupby("joined_on"))]
        at_checkout = len(eligible) > 0 and sum(on_day) >= 0.5 * len(eligible)
    checkout = bool(at_checkout)

    def days() -> Iterator[_Day]:
        return _days(book, join_day, eligible, window_days, lookback_days, checkout)

    treated_x, pool, naive = _first_pass(days())
    scale = _scale(treated_x, pool["var"].to_numpy())
    rng = np.random.default_rng(seed)
    treated, pairs = _Collected(), _Collected()
    with_history, unmatched = 0, 0
    for d in days():
        with_history += len(d.ids)
        if not len(d.pool):
            unmatched += len(d.ids)
        if not len(d.ids) or not len(d.pool):
            continue
        rows, sigma2 = _match_day(d.treated, d.pool, scale, ratio, rng, ratio > 1)
        local = np.repeat(np.arange(len(d.ids)), rows.shape[1])
        pairs.add(d.pool[rows.ravel()], d.day, member=treated.n + local, member_id=d.ids[local],
                  weight=np.full(rows.size, 1.0 / rows.shape[1]), sigma2=sigma2[rows.ravel()])
        treated.add(d.treated, d.day, customer_id=d.ids)
    treated_frame = treated.frame(["customer_id", "joined_on", *_COLUMNS[2:]])
    pair_frame = pairs.frame(["member", "member_id", "control_id", "joined_on", "weight", *_COLUMNS[2:],
                              "sigma2", "code"])
    pair_frame["control_id"] = book.customers[pair_frame["code"].to_numpy("int64")]
    return Matches(treated_frame, pair_frame, pool, naive, len(eligible), len(eligible) - with_history,
                   unmatched, scale, checkout)


class _Collected:
    """Rows of measures gathered day by day, made one frame at the end."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.days: list[np.ndarray] = []
        self.extra: dict[str, list[np.ndarray]] = {}

    @property
    def n(self) -> int:
        return sum(len(p) for p in self.parts)

    def add(self, measures: np.ndarray, day: pd.Timestamp, **columns: np.ndarray) -> None:
        self.parts.append(measures)
        self.days.append(np.full(len(measures), np.datetime64(day.as_unit("ns"))))
        for name, values in columns.items():
            self.extra.setdefault(name, []).append(values)

    def frame(self, columns: list[str]) -> pd.DataFrame:
        """The rows as a frame of ``columns`` (counts as integers)."""
        width = len(_COLUMNS)
        measures = np.concatenate(self.parts) if self.parts else np.empty((0, width))
        frame = pd.DataFrame(measures, columns=list(_COLUMNS))
        ints = ["code", "history", "retained", "orders_before", "orders_after"]
        frame[ints] = frame[ints].astype("int64")
        frame["joined_on"] = np.concatenate(self.days) if self.days else np.array([], "datetime64[ns]")
        for name, values in self.extra.items():
            frame[name] = np.concatenate(values)
        frame = frame.reindex(columns=columns)
        if not len(frame):  # typed like a filled one
            typed = {"member": "int64", "member_id": "str", "customer_id": "str", "control_id": "str"}
            frame = frame.astype({c: t for c, t in typed.items() if c in frame})
        return frame


def _normal(estimate: float, se: float) -> tuple[float, float, float]:
    """95 % normal interval and two-sided p-value."""
    if not np.isfinite(se):
        return _NAN, _NAN, _NAN
    if se == 0:
        return estimate, estimate, 1.0 if estimate == 0 else 0.0
    return estimate - _Z95 * se, estimate + _Z95 * se, float(2 * stats.norm.sf(abs(estimate) / se))


def _paired_se(d: np.ndarray) -> float:
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else _NAN


def _abadie_imbens_se(d: np.ndarray, pairs: pd.DataFrame) -> float:
    """√V of the ATT (module notes): residual term plus each reused control's
    ``(w_j² − Σ_i 1/M_i²) σ̂²_j`` (= K_j(K_j − 1)/M² σ̂²_j when every member has M controls).
    A control unit is a customer at a join day; one alone in its pool has no neighbour to
    estimate σ̂² from and adds nothing."""
    n = len(d)
    unit = pairs.groupby(["joined_on", "code"]).agg(w=("weight", "sum"), w2=("weight", lambda w: (w**2).sum()),
                                                    sigma2=("sigma2", "first"))
    extra = float(((unit["w"] ** 2 - unit["w2"]) * unit["sigma2"].fillna(0.0)).sum())
    return float(np.sqrt((((d - d.mean()) ** 2).sum() + extra) / n**2))


def _imputed(pairs: pd.DataFrame, column: str, n: int) -> np.ndarray:
    """Per member, the weighted mean of its controls' ``column``."""
    values = (pairs[column].astype("float64") * pairs["weight"]).groupby(pairs["member"]).sum()
    return values.reindex(range(n)).to_numpy()


def _balance(matches: Matches) -> pd.DataFrame:
    treated = matches.treated[list(FEATURES)].astype("float64")
    w = matches.pairs["weight"].to_numpy() / len(treated)
    after = (matches.pairs[list(FEATURES)].astype("float64").to_numpy() * w[:, None]).sum(axis=0)
    mean_t = treated.mean().to_numpy()
    return pd.DataFrame({"feature": list(FEATURES),
                         "smd_before": (mean_t - matches.pool["mean"].to_numpy()) / matches.scale,
                         "smd_after": (mean_t - after) / matches.scale})


def retention_effect(members: pd.DataFrame, orders: pd.DataFrame, as_of: pd.Timestamp,
                     window_days: int = 90, lookback_days: int = 365, ratio: int = 1,
                     seed: int = 0, *, min_matched: int = MIN_MATCHED,
                     at_checkout: bool | None = None) -> RetentionEffect:
    """The loyalty program's effect on retention: members against matched non-members
    (:func:`match_members`), as the ATT with a 95 % interval (paired differences for
    ``ratio`` 1, Abadie & Imbens 2006 otherwise), the balance of every feature and a
    difference-in-differences of orders per customer. Fewer than ``min_matched``
    matched members: estimates NaN, with the ``reason``.

    The paired-difference interval (``ratio`` 1) treats the pairs as independent; a
    control matched to several members makes their differences dependent and the
    interval somewhat narrow. The Abadie–Imbens variance (``ratio`` > 1) accounts for
    that reuse.

    Parameters
    ----------
    members, orders, as_of, window_days, lookback_days, ratio, seed
        As in :func:`match_members`.
    min_matched : int
        The fewest matched members an effect is estimated from.
    """
    matches = match_members(members, orders, as_of, window_days, lookback_days, ratio, seed, at_checkout)
    n = len(matches.treated)
    base = RetentionEffect(
        n_members_eligible=matches.n_eligible, excluded_no_history=matches.excluded_no_history,
        unmatched_no_controls=matches.unmatched_no_controls, n_members_matched=n,
        n_controls_unique=int(matches.pairs["control_id"].nunique()), window_days=window_days, ratio=ratio,
        caveat=_caveat(lookback_days), caveat_ru=_caveat_ru(lookback_days), at_checkout=matches.at_checkout)
    if n < min_matched:
        return replace(base, reason=(
            f"only {n} members could be matched (at least {min_matched} are needed): "
            f"{matches.n_eligible} joined at least {window_days} days before {pd.Timestamp(as_of).date()}, "
            f"{matches.excluded_no_history} of them had no completed order before joining, "
            f"{matches.unmatched_no_controls} had no candidate non-member on their join day"))
    return replace(base, **_estimates(matches, ratio))


def _estimates(matches: Matches, ratio: int) -> dict[str, Any]:
    treated, pairs = matches.treated, matches.pairs
    n = len(treated)
    y = treated["retained"].to_numpy("float64")
    d = y - _imputed(pairs, "retained", n)
    effect = float(d.mean())
    se = _paired_se(d) if ratio == 1 else _abadie_imbens_se(d, pairs)
    low, high, p = _normal(effect, se)
    before = _imputed(pairs, "orders_before", n)
    after = _imputed(pairs, "orders_after", n)
    change = (treated["orders_after"] - treated["orders_before"]).to_numpy("float64") - (after - before)
    did = float(change.mean())
    did_low, did_high, _ = _normal(did, _paired_se(change))
    return dict(member_rate=float(y.mean()), control_rate=float(y.mean() - effect), effect=effect,
                effect_low=low, effect_high=high, se=se, p_value=p,
                naive_effect=float(y.mean() - matches.naive_control_rate), balance=_balance(matches),
                member_orders_before=float(treated["orders_before"].mean()),
                member_orders_after=float(treated["orders_after"].mean()),
                control_orders_before=float(before.mean()), control_orders_after=float(after.mean()),
                did=did, did_low=did_low, did_high=did_high)
