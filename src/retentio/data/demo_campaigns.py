"""Past campaigns of the demo business, with holdouts and a known truth.

Three playbooks ran before the demo's data ends, each randomising its eligible
customers into treatment (80 %) and control (20 %):

* ``winback_discount`` — 15 % off, on 2026-03-01 and 2026-06-01, to customers with no
  order for 60 days or more. It brings back customers who lapsed recently (60–180 days:
  +12 pp of buying within the window — RFM's "about to sleep", "promising", "loyal")
  much more than those gone longer (180–365 days: +4 pp) and not at all the "lost"
  (over a year).
* ``churn_risk_offer`` — 5 RUB off (a fifth of a typical order), on 2026-05-01, to repeat buyers whose last order
  was 30–120 days ago: +8 pp for those with three or more orders, +2 pp otherwise.
* ``birthday_points`` — 20 bonus points (worth 2 RUB at the demo's point value), on the 15th of each month from February to
  August, to customers whose birthday falls in the next 28 days: +6 pp for buyers of the
  last year who are not recent regulars, nothing for the regulars (ordered in the last
  30 days, three or more orders: they buy anyway — a discount wasted on champions).

**The truth is per customer**: each assignment has both potential outcomes. Its
control outcome is the demo's own orders in the window; its treatment outcome adds, with
the probability above, one extra order (of the customer's usual size) within the first
three weeks. The extra order is written only for treated customers; the individual
effect ``tau_conversion = Y(1) − Y(0)`` (and ``tau_revenue``) is kept for everyone, so
the effect in any group of customers — the sample average of ``tau`` — is exactly known
(Imbens & Rubin 2015, *Causal Inference*, ch. 6: the finite-population estimand).
Treated customers who would have bought anyway use their code on that order in 60 % of
cases: a redeemed discount that brought nothing.

Campaigns are simulated in time order, each on the orders as the earlier ones left them.
The same seed gives the same history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

WINDOW_DAYS = 30
BIRTHDAY_WINDOW_DAYS = 28
HOLDOUT_PCT = 20.0


@dataclass(frozen=True)
class PastCampaign:
    name: str
    kind: str
    offer_kind: str
    offer_value: float
    channel: str
    window_days: int
    #: the as-of days it ran on
    runs: tuple[dt.date, ...]


CAMPAIGNS = (
    PastCampaign("winback_discount", "winback", "percent", 15.0, "email", WINDOW_DAYS,
                 (dt.date(2026, 3, 1), dt.date(2026, 6, 1))),
    PastCampaign("churn_risk_offer", "churn_risk", "fixed", 5.0, "email", WINDOW_DAYS, (dt.date(2026, 5, 1),)),
    PastCampaign("birthday_points", "birthday", "points", 20.0, "csv", BIRTHDAY_WINDOW_DAYS,
                 tuple(dt.date(2026, m, 15) for m in range(2, 9))),
)


@dataclass
class DemoHistory:
    """The past campaigns: their definitions, one row per assignment (arm, offer, code
    and the order that redeemed it), the truth per assignment, and the orders with the
    treated customers' extra orders and codes added."""

    campaigns: tuple[PastCampaign, ...]
    assignments: pd.DataFrame
    truth: pd.DataFrame
    orders: pd.DataFrame


def _state(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per customer with a completed order before ``as_of``: days since the last one,
    the number of orders and their mean amount."""
    done = orders[(orders.status == "completed") & (orders.ordered_at < as_of)]
    g = done.groupby("customer_id").agg(last=("ordered_at", "max"), n=("order_id", "size"), mean=("amount", "mean"))
    g["recency"] = (as_of - g["last"]).dt.total_seconds() / 86400
    return g


def _eligible(c: PastCampaign, state: pd.DataFrame, customers: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """The true uplift in conversion probability of each eligible customer (index)."""
    r, n = state.recency, state.n
    if c.kind == "winback":
        chosen = state[r >= 60]
        rr = chosen.recency
        return pd.Series(np.where(rr < 180, 0.12, np.where(rr < 365, 0.04, 0.0)), index=chosen.index)
    if c.kind == "churn_risk":
        chosen = state[(n >= 2) & (r >= 30) & (r < 120)]
        return pd.Series(np.where(chosen.n >= 3, 0.08, 0.02), index=chosen.index)
    birth = pd.to_datetime(customers.set_index("customer_id").birth_date)
    this_year = pd.to_datetime({"year": as_of.year, "month": birth.dt.month,
                                "day": np.minimum(birth.dt.day, 28)}, errors="coerce")
    days = (this_year - as_of).dt.days
    soon = birth.index[(days >= 0) & (days < BIRTHDAY_WINDOW_DAYS)]
    chosen = state.reindex(state.index.intersection(soon))
    regular = (chosen.recency <= 30) & (chosen.n >= 3)
    return pd.Series(np.where(regular, 0.0, np.where(chosen.recency < 365, 0.06, 0.0)), index=chosen.index)


def past_campaigns(customers: pd.DataFrame, orders: pd.DataFrame, seed: int = 7) -> DemoHistory:
    """Simulate the campaigns of :data:`CAMPAIGNS` on the demo's ``customers`` and
    ``orders`` (see the module notes)."""
    rng = np.random.default_rng([seed, 14])
    orders = orders.copy()
    orders["promo_code"] = pd.Series(None, index=orders.index, dtype=object)
    added: list[dict] = []
    rows: list[pd.DataFrame] = []
    runs = sorted(((as_of, c) for c in CAMPAIGNS for as_of in c.runs), key=lambda r: (r[0], r[1].name))
    position = pd.Series(orders.index, index=orders.order_id)
    serial = 0
    for as_of_day, c in runs:
        as_of = pd.Timestamp(as_of_day)
        end = as_of + pd.Timedelta(days=c.window_days)
        current = pd.concat([orders, pd.DataFrame(added, columns=orders.columns)], ignore_index=True) \
            if added else orders
        state = _state(current, as_of)
        uplift = _eligible(c, state, customers, as_of)
        if uplift.empty:
            continue
        ids = uplift.index.to_numpy()
        n = len(ids)
        arm = np.where(rng.random(n) < HOLDOUT_PCT / 100, "control", "treatment")
        # Y(0): the customer's own completed orders in the window
        window = current[(current.status == "completed") & (current.ordered_at >= as_of) & (current.ordered_at < end)]
        first = window.sort_values("ordered_at").drop_duplicates("customer_id").set_index("customer_id")
        natural = np.isin(ids, first.index)
        # Y(1) adds an extra order with probability `uplift` (drawn for both arms: the truth)
        extra = rng.random(n) < uplift.to_numpy()
        size = state.loc[ids, "mean"].to_numpy() * rng.lognormal(0, 0.25, n)
        amount = np.round(np.clip(size, 5, None), 2)
        when = as_of + pd.to_timedelta(rng.uniform(0.5, 21, n), unit="D")
        codes = np.array([f"DEMO{serial + i:07d}" for i in range(n)]) if c.offer_kind != "points" else \
            np.full(n, None, dtype=object)
        serial += n
        redeemed = np.full(n, None, dtype=object)
        redeemed_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        treated = arm == "treatment"
        for i in np.flatnonzero(treated & extra):
            oid = f"X{serial}-{i}"
            discount = _discount(c, amount[i])
            added.append({"order_id": oid, "customer_id": ids[i], "ordered_at": when[i], "amount": amount[i],
                          "cost": round(amount[i] * 0.63, 2), "discount": discount, "status": "completed",
                          "channel": "web", "items": 1, "promo_code": codes[i]})
            if codes[i] is not None:
                redeemed[i], redeemed_at[i] = oid, when[i]
        # the treated who buy anyway use the code on their first order in the window
        anyway = treated & natural & ~extra & (rng.random(n) < 0.6) & (codes != None)  # noqa: E711
        for i in np.flatnonzero(anyway):
            oid = first.loc[ids[i], "order_id"]
            at = position.get(oid)
            if at is not None:  # (an extra order of an earlier campaign keeps that campaign's code)
                orders.loc[at, "promo_code"] = codes[i]
                orders.loc[at, "discount"] = _discount(c, float(orders.loc[at, "amount"]))
                redeemed[i], redeemed_at[i] = oid, orders.loc[at, "ordered_at"]
        tau_conv = (extra & ~natural).astype("int64")
        rows.append(pd.DataFrame({
            "campaign": c.name, "as_of": as_of_day, "customer_id": ids, "arm": arm,
            "offer_kind": c.offer_kind, "offer_value": c.offer_value, "channel": c.channel,
            "promo_code": np.where(treated, codes, np.full(n, None, dtype=object)), "redeemed_order_id": redeemed,
            "redeemed_at": redeemed_at,
            "true_uplift": uplift.to_numpy(), "tau_conversion": tau_conv,
            "tau_revenue": np.where(extra, amount, 0.0),
        }))
    if added:
        orders = pd.concat([orders, pd.DataFrame(added, columns=orders.columns)], ignore_index=True)
        orders = orders.sort_values("ordered_at", kind="stable").reset_index(drop=True)
    history = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=[
        "campaign", "as_of", "customer_id", "arm", "offer_kind", "offer_value", "channel", "promo_code",
        "redeemed_order_id", "redeemed_at", "true_uplift", "tau_conversion", "tau_revenue"])
    truth = history[["campaign", "as_of", "customer_id", "arm", "true_uplift", "tau_conversion", "tau_revenue"]]
    return DemoHistory(CAMPAIGNS, history.drop(columns=["true_uplift", "tau_conversion", "tau_revenue"]), truth, orders)


def _discount(c: PastCampaign, amount: float) -> float:
    if c.offer_kind == "percent":
        return round(amount * c.offer_value / 100, 2)
    if c.offer_kind == "fixed":
        return round(min(c.offer_value, amount), 2)
    return 0.0


__all__ = ["CAMPAIGNS", "DemoHistory", "PastCampaign", "past_campaigns"]
