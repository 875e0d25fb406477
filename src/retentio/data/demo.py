"""A realistic demo business: an online shop with a subscription side.

The generating process is the one the analyses assume, so that every analysis has
something true to find:

* **Acquisition** — sign-ups grow over the three years with a winter peak; each comes
  through a channel with its own cost (CAC) and its own customer quality.
* **Purchases** — a buy-till-you-die process (Fader, Hardie & Lee 2005, BG/NBD):
  each customer buys as a Poisson process with a gamma-distributed rate, thinned by a
  yearly season (November–December peak), and after every purchase leaves for good with
  a beta-distributed probability. Spend per order follows the Gamma-Gamma model
  (Fader & Hardie 2013). Some orders are returned or cancelled; returns are likelier
  shortly before a customer leaves.
* **Leaving** — a customer who leaves does so at a time L after their last purchase.
  Before L, planted signals: logins fade over the last 60 days, support tickets triple
  in the last 90, NPS/CSAT answers are lower, and subscribers often downgrade first.
* **Subscriptions** — about a third subscribe (basic / standard / premium), most after
  a 14-day trial; upgrades and downgrades start new rows; subscribers who leave cancel
  voluntarily with a reason, and a few lose their subscription to a failed payment
  (involuntary, preceded by ``payment_failed`` events).

The same seed gives the same data, independent of today's date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DEMO_START = dt.date(2023, 10, 1)
DEMO_END = dt.date(2026, 10, 1)  # exclusive: three full years

CHANNELS = {
    # name: (share of sign-ups, CAC, purchase-rate multiplier, dropout multiplier)
    "organic": (0.30, 0.0, 1.00, 1.00),
    "paid_search": (0.22, 28.0, 0.95, 1.15),
    "social": (0.18, 19.0, 0.80, 1.40),
    "referral": (0.10, 12.0, 1.25, 0.70),
    "email": (0.08, 6.0, 1.10, 0.90),
    "marketplace": (0.12, 34.0, 0.85, 1.30),
}
PLANS = {"basic": 9.90, "standard": 19.90, "premium": 39.90}
CITIES = ["Moscow", "Saint Petersburg", "Kazan", "Novosibirsk", "Yekaterinburg",
          "Nizhny Novgorod", "Samara", "Krasnodar"]
CANCEL_REASONS = ["too_expensive", "not_using_enough", "found_alternative",
                  "missing_features", "delivery_problems"]
TICKET_TOPICS = ["delivery", "payment", "product_quality", "app_bug", "refund", "account"]
COMMENTS = {
    "low": ["Delivery was late again", "Too expensive for what you get",
            "Support never answered my ticket", "The app keeps logging me out",
            "Product quality has dropped", "Refund took weeks"],
    "mid": ["It's fine", "Okay prices, slow delivery sometimes", "Decent selection",
            "Could be cheaper"],
    "high": ["Great prices and fast delivery", "Love the loyalty bonuses",
             "Excellent support, solved my issue in minutes", "Best shop in town",
             "Wide choice and quick delivery"],
}


@dataclass
class DemoData:
    customers: pd.DataFrame
    orders: pd.DataFrame
    subscriptions: pd.DataFrame
    events: pd.DataFrame
    surveys: pd.DataFrame
    tickets: pd.DataFrame
    #: the lines of each order: item, quantity, amount, name and category
    order_items: pd.DataFrame | None = None
    #: the latent truth, never loaded: when each customer left (NaT if still a customer)
    truth: pd.DataFrame | None = None
    #: the truth of the survey comments, never loaded: one row per commented answer —
    #: ``survey_row`` (index into ``surveys``), ``theme`` it was written from (one of
    #: :data:`COMMENT_THEMES`), ``language`` (ru/en), ``churn_driver`` and ``leaving``
    comment_truth: pd.DataFrame | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """In load order: customers first, so every other table can be checked against it."""
        names = ("customers", "orders", "order_items", "subscriptions", "events", "surveys", "tickets")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def write_csv(self, directory: str | Path) -> list[Path]:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in self.tables().items():
            path = directory / f"{name}.csv"
            frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
            paths.append(path)
        return paths


_START_DOY = DEMO_START.timetuple().tm_yday


def _seasonality(day: np.ndarray) -> np.ndarray:
    """Relative demand on a day offset from DEMO_START: a peak in mid-December."""
    doy = (_START_DOY + day) % 365.25
    return 1.0 + 0.45 * np.cos(2 * np.pi * (doy - 350) / 365.25)


def generate(n_customers: int = 20_000, seed: int = 7) -> DemoData:
    """Generate the demo business; the same ``seed`` gives the same data."""
    rng = np.random.default_rng(seed)
    horizon = (DEMO_END - DEMO_START).days
    origin = np.datetime64(DEMO_START.isoformat(), "s")

    def ts(days: np.ndarray) -> np.ndarray:
        return origin + np.round(np.asarray(days) * 86400).astype("timedelta64[s]")

    n = n_customers
    ids = np.array([f"C{i:06d}" for i in range(1, n + 1)])

    # ---- acquisition: growth x season, by thinning uniform days
    grid = np.arange(horizon)
    weight = (1 + 1.2 * grid / horizon) * _seasonality(grid)
    signup_day = rng.choice(grid, size=n, p=weight / weight.sum()) + rng.random(n)
    signup_day.sort()
    names = list(CHANNELS)
    shares = np.array([CHANNELS[c][0] for c in names])
    ch_idx = rng.choice(len(names), size=n, p=shares / shares.sum())
    channel = np.array(names)[ch_idx]
    cac = np.array([CHANNELS[c][1] for c in names])[ch_idx]
    cac = np.round(cac * rng.lognormal(0, 0.25, n), 2)
    rate_mult = np.array([CHANNELS[c][2] for c in names])[ch_idx]
    drop_mult = np.array([CHANNELS[c][3] for c in names])[ch_idx]

    # ---- BG/NBD latent traits: lambda ~ Gamma(r, 1/alpha) per day, p ~ Beta(a, b)
    lam = rng.gamma(0.9, 1 / 38.0, n) * rate_mult
    p_drop = np.clip(rng.beta(0.8, 4.0, n) * drop_mult, 0, 0.98)
    # Gamma-Gamma spend: nu ~ Gamma(q, 1/gamma), order value ~ Gamma(p, 1/nu)
    nu = rng.gamma(3.8, 1 / 15.0, n)
    buyer = rng.random(n) > 0.08  # 8 % register but never buy

    order_cust, order_day = [], []
    leave_day = np.full(n, np.inf)
    for i in range(n):
        if not buyer[i]:
            leave_day[i] = signup_day[i] + rng.exponential(30)
            continue
        t = signup_day[i] + rng.exponential(2.0)
        peak = lam[i] * 1.45
        while t < horizon:
            order_cust.append(i)
            order_day.append(t)
            if rng.random() < p_drop[i]:
                # leaves some time after this purchase, before they would have bought again
                leave_day[i] = t + rng.uniform(0.3, 1.0) * min(rng.exponential(1 / lam[i]), 400)
                break
            # seasonal thinning of a homogeneous process at the peak rate
            while True:
                t += rng.exponential(1 / peak)
                if t >= horizon or rng.random() < _seasonality(np.array([t]))[0] / 1.45:
                    break
    order_cust = np.array(order_cust, dtype=np.int64)
    order_day = np.array(order_day)
    left = leave_day < horizon
    # "about to leave" at time t: within `days` before the customer's leaving time
    def near_leave(cust: np.ndarray, day: np.ndarray, days: float) -> np.ndarray:
        lv = leave_day[cust]
        return (lv < horizon) & (day > lv - days) & (day <= lv)

    # ---- orders
    m = len(order_cust)
    amount = rng.gamma(6.0, 1 / nu[order_cust])
    amount = np.round(np.clip(amount, 3, None), 2)
    ret_p = np.where(near_leave(order_cust, order_day, 120), 0.12, 0.04)
    u = rng.random(m)
    status = np.where(u < ret_p, "returned", np.where(u < ret_p + 0.02, "cancelled", "completed"))
    discounted = rng.random(m) < np.where(near_leave(order_cust, order_day, 120), 0.45, 0.22)
    discount = np.where(discounted, np.round(amount * rng.uniform(0.05, 0.2, m), 2), 0.0)
    orders = pd.DataFrame({
        "order_id": [f"O{j:07d}" for j in range(1, m + 1)],
        "customer_id": ids[order_cust],
        "ordered_at": ts(order_day),
        "amount": amount,
        "cost": np.round(amount * rng.uniform(0.55, 0.72, m), 2),
        "discount": discount,
        "status": status,
        "channel": rng.choice(["web", "app", "store"], size=m, p=[0.55, 0.35, 0.10]),
        "items": 1 + rng.poisson(1.4, m),
    })

    # ---- customers
    age = rng.integers(18, 71, n)
    birth = pd.to_datetime(pd.Timestamp(DEMO_END) - pd.to_timedelta(age * 365.25 + rng.uniform(0, 365, n), unit="D")).normalize()
    customers = pd.DataFrame({
        "customer_id": ids,
        "signup_at": ts(signup_day),
        "acquisition_channel": channel,
        "acquisition_cost": cac,
        "birth_date": birth.date,
        "gender": rng.choice(["female", "male"], size=n, p=[0.56, 0.44]),
        "city": rng.choice(CITIES, size=n, p=[0.30, 0.16, 0.09, 0.09, 0.09, 0.09, 0.09, 0.09]),
        "email": [f"{c.lower()}@example.com" for c in ids],
        "phone": [f"+7900{int(c[1:]):07d}" for c in ids],
        "consent_email": rng.random(n) < 0.72,
        "consent_sms": rng.random(n) < 0.45,
        # an attribute outside the canonical columns, kept as such on load
        "loyalty_member": np.where(rng.random(n) < 0.35, "yes", "no"),
    })

    # ---- subscriptions
    subs, sub_events = _subscriptions(rng, n, ids, signup_day, leave_day, horizon, ts)

    # ---- events: logins fade over the 60 days before leaving
    events = _events(rng, n, ids, signup_day, leave_day, horizon, ts, lam)
    events = pd.concat([events, sub_events], ignore_index=True)

    # ---- tickets: three times as frequent in the 90 days before leaving
    tickets = _tickets(rng, n, ids, signup_day, leave_day, horizon, ts, near_leave)

    # ---- surveys: lower scores among those about to leave
    surveys = _surveys(rng, n, ids, signup_day, leave_day, horizon, ts, near_leave)

    # comments around planted themes, from their own stream (see _comments): the other
    # columns of surveys and every other table stay what they were for a seed
    hidden = surveys[["_leaving", "_commented"]].to_numpy()
    surveys = surveys.drop(columns=["_leaving", "_commented"])
    comment_truth = _comments(np.random.default_rng([seed, 2]), surveys, hidden[:, 0].astype(bool),
                              hidden[:, 1].astype(bool))

    truth = pd.DataFrame({
        "customer_id": ids,
        "left_at": pd.Series(ts(np.where(left, leave_day, 0)), dtype="datetime64[s]").where(left),
    })
    # drawn from their own stream, so the tables above stay what they were for a seed
    extra = np.random.default_rng([seed, 1])
    customers.insert(1, "first_name", extra.choice(FIRST_NAMES, size=n))
    items = _order_items(extra, orders, ids)
    return DemoData(customers, orders, subs, events.sort_values("occurred_at", kind="stable").reset_index(drop=True),
                    surveys, tickets, items, truth, comment_truth)


#: the catalogue: SKU1000–SKU1399 (the items events refer to); the first 60 are consumables
CATALOGUE_SIZE = 400
CONSUMABLES = 60
FIRST_NAMES = ["Anna", "Ivan", "Maria", "Dmitry", "Elena", "Sergey", "Olga", "Alexey", "Natalia", "Pavel",
               "Tatiana", "Mikhail", "Irina", "Andrey", "Ekaterina", "Nikolai"]
_KINDS = {"consumables": ["Coffee beans", "Green tea", "Laundry capsules", "Dish tablets", "Cat food", "Shampoo",
                          "Toothpaste", "Vitamins", "Printer ink", "Water filter"],
          "home": ["Candle", "Towel set", "Mug", "Cushion", "Lamp"],
          "apparel": ["T-shirt", "Socks", "Scarf", "Hoodie", "Cap"],
          "electronics": ["Headphones", "Charger", "Power bank", "Speaker", "Cable"]}


def _catalogue() -> pd.DataFrame:
    """Item id, name and category of every catalogue item."""
    rows = []
    for k in range(CATALOGUE_SIZE):
        category = "consumables" if k < CONSUMABLES else ("home", "apparel", "electronics")[k % 3]
        names = _KINDS[category]
        rows.append({"item_id": f"SKU{1000 + k}", "name": f"{names[k % len(names)]} {k % 7 + 1}",
                     "category": category})
    return pd.DataFrame(rows)


def _order_items(rng, orders: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """``items`` lines per order: each customer has a favourite consumable bought again in
    about half of their orders (replenishment), the other lines drawn from the catalogue."""
    cat = _catalogue()
    favourite = dict(zip(ids, rng.integers(0, CONSUMABLES, len(ids))))
    n_lines = orders["items"].to_numpy()
    order_idx = np.repeat(np.arange(len(orders)), n_lines)
    first_line = np.r_[0, np.cumsum(n_lines)[:-1]]
    is_first = np.zeros(order_idx.size, dtype=bool)
    is_first[first_line] = True
    fav = np.array([favourite[c] for c in orders.customer_id.to_numpy()])[order_idx]
    pick = rng.integers(0, CATALOGUE_SIZE, order_idx.size)
    item = np.where(is_first & (rng.random(order_idx.size) < 0.55), fav, pick)
    amounts = orders.amount.to_numpy()[order_idx] / n_lines[order_idx]
    quantity = 1 + rng.poisson(0.3, order_idx.size)
    # lines with the same item in one order are one line
    out = pd.DataFrame({"order_id": orders.order_id.to_numpy()[order_idx], "k": item, "quantity": quantity,
                        "amount": amounts})
    out = out.groupby(["order_id", "k"], sort=False, as_index=False).agg(quantity=("quantity", "sum"),
                                                                          amount=("amount", "sum"))
    out["amount"] = out.amount.round(2)
    out = out.join(cat, on="k").drop(columns="k")
    return out[["order_id", "item_id", "quantity", "amount", "name", "category"]]


def _subscriptions(rng, n, ids, signup_day, leave_day, horizon, ts):
    rows = []
    ev_c, ev_d = [], []
    plan_names = list(PLANS)
    subscriber = rng.random(n) < 0.33
    for i in np.flatnonzero(subscriber):
        start = signup_day[i] + rng.exponential(20)
        if start >= horizon or start >= leave_day[i]:
            continue
        sid = len(rows)
        if rng.random() < 0.6:
            trial_end = start + 14
            if trial_end >= horizon:  # still on trial when the data end
                rows.append((f"S{sid + 1:06d}", ids[i], start, 0.0, "trial", None, None, None, True))
                continue
            converted = rng.random() < 0.65 and trial_end < leave_day[i]
            rows.append((f"S{sid + 1:06d}", ids[i], start, 0.0, "trial", trial_end,
                         None if converted else "trial_not_converted",
                         None if converted else "voluntary", True))
            if not converted:
                continue
            start = trial_end
        plan = rng.choice(3, p=[0.5, 0.35, 0.15])
        # involuntary loss: a monthly 1.2 % chance of a payment that never goes through
        invol = start + rng.geometric(0.012) * 30.4
        end = min(leave_day[i], invol)
        t = start
        # plan changes: occasional upgrades while engaged; a downgrade often precedes leaving
        changes = []
        u = t + rng.exponential(240)
        while u < min(end, horizon) - 60:
            changes.append(u)
            u += rng.exponential(300)
        down_before_leave = leave_day[i] < horizon and end == leave_day[i] and rng.random() < 0.45
        for c in changes:
            new = min(plan + 1, 2) if rng.random() < 0.7 else max(plan - 1, 0)
            if new == plan:
                continue
            rows.append((f"S{len(rows) + 1:06d}", ids[i], t, PLANS[plan_names[plan]], plan_names[plan], c,
                         None, None, False))
            t, plan = c, new
        if down_before_leave and plan > 0:
            c = max(t + 1, end - rng.uniform(30, 90))
            if c < end:
                rows.append((f"S{len(rows) + 1:06d}", ids[i], t, PLANS[plan_names[plan]], plan_names[plan], c,
                             None, None, False))
                t, plan = c, plan - 1
        if end < horizon:
            involuntary = end == invol
            reason = "payment_failed" if involuntary else str(rng.choice(CANCEL_REASONS))
            rows.append((f"S{len(rows) + 1:06d}", ids[i], t, PLANS[plan_names[plan]], plan_names[plan], end,
                         reason, "involuntary" if involuntary else "voluntary", False))
            if involuntary:
                k = rng.integers(1, 4)
                ev_c.extend([i] * k)
                ev_d.extend(end - np.sort(rng.uniform(0, 10, k)))
        else:
            rows.append((f"S{len(rows) + 1:06d}", ids[i], t, PLANS[plan_names[plan]], plan_names[plan], None,
                         None, None, False))
    subs = pd.DataFrame(rows, columns=["subscription_id", "customer_id", "started_at", "mrr", "plan",
                                       "ended_at", "cancel_reason", "churn_type", "is_trial"])
    subs["started_at"] = ts(subs["started_at"].to_numpy(dtype=float))
    ended = subs["ended_at"].to_numpy(dtype=float)
    subs["ended_at"] = pd.Series(ts(np.nan_to_num(ended)), dtype="datetime64[s]").where(~np.isnan(ended))
    sub_events = pd.DataFrame({
        "customer_id": ids[np.array(ev_c, dtype=np.int64)],
        "occurred_at": ts(np.array(ev_d, dtype=float)),
        "event_type": "payment_failed",
        "value": np.nan,
        "item_id": None,
    })
    return subs, sub_events


def _events(rng, n, ids, signup_day, leave_day, horizon, ts, lam):
    # login rate per day, related to (but noisier than) the purchase rate
    mu = np.clip(rng.gamma(2.0, 0.05, n) * (0.6 + 8 * lam), 0.01, 0.8)
    start = signup_day
    stop = np.minimum(leave_day, horizon)
    span = np.clip(stop - start, 0, None)
    k = rng.poisson(mu * span)
    cust = np.repeat(np.arange(n), k)
    day = start[cust] + rng.random(cust.size) * span[cust]
    # fade: acceptance falls linearly from 1 to 0.15 over the last 60 days before leaving
    lv = leave_day[cust]
    fade = np.where((lv < horizon) & (day > lv - 60), 0.15 + 0.85 * (lv - day) / 60, 1.0)
    keep = rng.random(cust.size) < fade
    cust, day = cust[keep], day[keep]
    m = cust.size
    kind = rng.choice(["login", "view_item", "cart_add", "wishlist_add", "usage"], size=m,
                      p=[0.55, 0.25, 0.08, 0.04, 0.08])
    item = np.where(np.isin(kind, ["view_item", "cart_add", "wishlist_add"]),
                    np.char.add("SKU", rng.integers(1000, 1400, m).astype(str)), None)
    value = np.where(kind == "usage", np.round(rng.gamma(2, 12, m), 1), np.nan)
    return pd.DataFrame({"customer_id": ids[cust], "occurred_at": ts(day), "event_type": kind,
                         "value": value, "item_id": item})


def _tickets(rng, n, ids, signup_day, leave_day, horizon, ts, near_leave):
    stop = np.minimum(leave_day, horizon)
    span = np.clip(stop - signup_day, 0, None)
    base = 0.0025
    k = rng.poisson(base * span) + rng.poisson(base * 2 * np.minimum(span, 90) * (leave_day < horizon))
    cust = np.repeat(np.arange(n), k)
    # the extra tickets of leavers fall in their last 90 days
    day = signup_day[cust] + rng.random(cust.size) * span[cust]
    late = (leave_day[cust] < horizon) & (rng.random(cust.size) < 0.66)
    day = np.where(late, np.maximum(signup_day[cust], stop[cust] - rng.random(cust.size) * 90), day)
    m = cust.size
    unhappy = near_leave(cust, day, 90)
    resolved = day + rng.exponential(np.where(unhappy, 6.0, 1.5), m)
    unresolved = rng.random(m) < np.where(unhappy, 0.3, 0.08)
    resolved_ok = (~unresolved) & (resolved < horizon)
    sat = np.where(unhappy, rng.integers(1, 4, m), rng.integers(3, 6, m)).astype(float)
    r = pd.Series(ts(resolved), dtype="datetime64[s]").where(resolved_ok)
    return pd.DataFrame({
        "customer_id": ids[cust],
        "opened_at": ts(day),
        "resolved_at": r,
        "topic": rng.choice(TICKET_TOPICS, size=m),
        "satisfaction": np.where(resolved_ok, sat, np.nan),
    }).sort_values("opened_at", kind="stable").reset_index(drop=True)


def _surveys(rng, n, ids, signup_day, leave_day, horizon, ts, near_leave):
    stop = np.minimum(leave_day, horizon)
    span = np.clip(stop - signup_day, 0, None)
    k = rng.poisson(np.minimum(span, 720) / 365 * 0.9)
    cust = np.repeat(np.arange(n), k)
    day = signup_day[cust] + rng.random(cust.size) * span[cust]
    # leavers are asked (and answer) more often as they go: exit and relationship surveys
    extra = np.flatnonzero((leave_day < horizon) & (rng.random(n) < 0.35) & (span > 5))
    cust = np.concatenate([cust, extra])
    day = np.concatenate([day, np.maximum(signup_day[extra], stop[extra] - rng.random(extra.size) * 60)])
    m = cust.size
    leaving = near_leave(cust, day, 120)
    nps = np.clip(np.round(np.where(leaving, rng.normal(4.8, 2.3, m), rng.normal(8.1, 1.7, m))), 0, 10)
    kind = rng.choice(["nps", "csat", "ces"], size=m, p=[0.6, 0.3, 0.1])
    csat = np.clip(np.round(np.where(leaving, rng.normal(2.6, 1.0, m), rng.normal(4.2, 0.8, m))), 1, 5)
    ces = np.clip(np.round(np.where(leaving, rng.normal(5.0, 1.2, m), rng.normal(2.6, 1.2, m))), 1, 7)
    score = np.where(kind == "nps", nps, np.where(kind == "csat", csat, ces))
    mood = np.where(kind == "nps", np.where(score <= 6, "low", np.where(score <= 8, "mid", "high")),
                    np.where(kind == "csat", np.where(score <= 2, "low", np.where(score <= 3, "mid", "high")),
                             np.where(score >= 5, "low", np.where(score >= 3, "mid", "high"))))
    has_comment = rng.random(m) < 0.4
    # the first demo's one-line comments: still drawn so that the stream (and with it who is
    # anonymous) stays as it was; generate() replaces them with the planted-theme comments
    comment = np.array([rng.choice(COMMENTS[md]) if hc else None for md, hc in zip(mood, has_comment)],
                       dtype=object)
    customer = ids[cust].astype(object)
    anonymous = rng.random(m) < 0.05
    customer[anonymous] = None
    return pd.DataFrame({
        "answered_at": ts(day), "kind": kind, "score": score,
        "customer_id": customer, "comment": comment, "_leaving": leaving, "_commented": has_comment,
    }).sort_values("answered_at", kind="stable").reset_index(drop=True)


#: the planted themes of the comments; the first five are complaints
COMMENT_THEMES = ("delivery", "price", "app", "support", "quality", "praise")
#: the complaints that drive churn: twice as frequent among customers about to leave
CHURN_DRIVERS = ("delivery", "price")
#: share of each complaint theme among the complaints of customers staying / about to leave
_COMPLAINTS = {"delivery": (0.15, 0.32), "price": (0.15, 0.32), "app": (0.25, 0.10), "support": (0.25, 0.10),
               "quality": (0.20, 0.16)}
PHRASES = {
    "en": {
        "delivery": ["Delivery was late again", "My order arrived three days late", "The courier was late and did "
                     "not call", "Still waiting for my parcel", "Shipping takes forever", "Delivery dates are "
                     "never kept", "The package came a week after the promised date", "Slow delivery, waited two "
                     "weeks"],
        "price": ["Too expensive for what you get", "Prices went up again", "The subscription price is too high",
                  "Much cheaper at other shops, your prices are too high", "Overpriced, found the same for less "
                  "elsewhere", "Your prices are higher than competitors", "Not worth the price",
                  "Prices are too expensive now"],
        "app": ["The app keeps crashing", "The app logs me out all the time", "Cannot pay in the app, it freezes "
                "at checkout", "The new app update is buggy", "Search in the app does not work",
                "App is slow and crashes on my phone", "Login error in the app every time"],
        "support": ["Support never answered my ticket", "Waited an hour in the support chat",
                    "The support operator was rude", "Nobody from support called me back",
                    "Support agents just copy-paste answers", "Support closed my request without solving it"],
        "quality": ["Product quality has dropped", "The item broke after a week", "Received a damaged product",
                    "The goods are of poor quality", "Products look cheap and fall apart",
                    "The fabric is thin and the stitching came apart", "Got a defective item again"],
        "praise": ["Great shop, I recommend it to everyone", "Love this shop, thank you!", "Everything is great, "
                   "keep it up", "Very happy with my purchases", "Best shop in town", "Excellent shop, always "
                   "satisfied", "Wonderful shop, will buy again"],
    },
    "ru": {
        "delivery": ["Доставка опять опоздала", "Заказ привезли на три дня позже", "Курьер опоздал и не "
                     "позвонил", "Посылку ждала две недели", "Доставка идёт слишком долго", "Сроки доставки "
                     "постоянно срываются", "Курьер привёз заказ не в тот день", "Очень долгая доставка"],
        "price": ["Слишком дорого", "Цены опять выросли", "Подписка стоит слишком дорого",
                  "В других магазинах дешевле", "Цены выше, чем у конкурентов", "Не стоит своих денег",
                  "Цены кусаются", "Дорого, нашла то же самое дешевле"],
        "app": ["Приложение постоянно вылетает", "Приложение выкидывает из аккаунта", "Не могу оплатить в "
                "приложении, всё зависает", "После обновления приложение глючит", "Поиск в приложении не "
                "работает", "Приложение тормозит и вылетает на телефоне", "Ошибка входа в приложении"],
        "support": ["Поддержка так и не ответила на обращение", "Час ждала ответа в чате поддержки",
                    "Оператор поддержки был груб", "Никто из службы поддержки не перезвонил",
                    "Поддержка отвечает шаблонными отписками", "Поддержка закрыла обращение, не решив проблему"],
        "quality": ["Качество товаров упало", "Вещь сломалась через неделю", "Пришёл бракованный товар",
                    "Товары низкого качества", "Товар выглядит дёшево и разваливается", "Ткань тонкая, швы "
                    "разошлись", "Опять прислали брак"],
        "praise": ["Отличный магазин, всем рекомендую", "Всё нравится, спасибо!", "Всё отлично, так держать",
                   "Очень довольна покупками", "Лучший магазин в городе", "Прекрасно, всегда довольна",
                   "Замечательно, буду заказывать ещё"],
    },
}
_CLOSERS = {"en": ["Please fix it.", "Disappointed.", "What a shame."],
            "ru": ["Исправьте, пожалуйста.", "Разочарована.", "Обидно."]}


def _comments(rng, surveys: pd.DataFrame, leaving: np.ndarray, commented: np.ndarray) -> pd.DataFrame:
    """Write the comment of every commented answer (in place) around the planted themes and
    return their truth. Complaints come with low and middling scores, praise with high
    ones; among customers about to leave (the 120 days before) the churn drivers
    (:data:`CHURN_DRIVERS`) are twice as frequent. 55 % are in Russian; one complaint in
    eight also mentions a second complaint (a mixed comment: its truth is the first)."""
    rows = np.flatnonzero(commented)
    m = rows.size
    kind = surveys["kind"].to_numpy()[rows]
    score = surveys["score"].to_numpy()[rows]
    # the share of praise by how good the score is on its own scale
    good = np.where(kind == "nps", score / 10, np.where(kind == "csat", (score - 1) / 4, (7 - score) / 6))
    praise = rng.random(m) < np.clip((good - 0.55) / 0.4, 0, 0.9)
    names = list(_COMPLAINTS)
    stay_p = np.array([_COMPLAINTS[c][0] for c in names])
    leave_p = np.array([_COMPLAINTS[c][1] for c in names])
    lv = leaving[rows]
    u = rng.random(m)
    cum_stay, cum_leave = np.cumsum(stay_p / stay_p.sum()), np.cumsum(leave_p / leave_p.sum())
    pick = np.where(lv, np.searchsorted(cum_leave, u, side="right"), np.searchsorted(cum_stay, u, side="right"))
    theme = np.where(praise, "praise", np.array(names)[np.minimum(pick, len(names) - 1)])
    lang = np.where(rng.random(m) < 0.55, "ru", "en")
    second = rng.random(m) < 0.125
    closer = rng.random(m) < 0.3
    texts = []
    for th, lg, sec, cl in zip(theme, lang, second, closer):
        phrases = PHRASES[lg][th]
        parts = [phrases[rng.integers(len(phrases))]]
        if sec and th != "praise":
            other = names[rng.integers(len(names))]
            if other != th:
                ph = PHRASES[lg][other]
                parts.append(ph[rng.integers(len(ph))].lower())
        elif rng.random() < 0.4:
            more = phrases[rng.integers(len(phrases))]
            if more != parts[0]:
                parts.append(more.lower())
        text = ", ".join(parts)
        if cl and th != "praise":
            text += ". " + _CLOSERS[lg][rng.integers(3)]
        texts.append(text)
    surveys["comment"] = surveys["comment"].astype(object)
    surveys.loc[rows, "comment"] = texts
    return pd.DataFrame({"survey_row": rows, "theme": theme, "language": lang,
                         "churn_driver": np.isin(theme, CHURN_DRIVERS), "leaving": lv})
