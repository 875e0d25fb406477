"""Reasons in plain words: the features that push a customer's churn score up the most
(positive SHAP contributions, see :mod:`retentio.analytics.churn.model`), each written
as a statement that is true of that customer's data — or skipped when the value does
not support the statement (a contribution from "logins rose" is not written as a
warning sign).

Writers work column-wise: each gets the candidate rows' values as arrays, decides with
NumPy where its statement holds and formats text only for those rows, so reasons for
a million customers cost seconds rather than a Python loop over every row. The words
come from a :class:`Phrasebook`: :data:`ENGLISH` here, other languages where the faces
need them (the report's Russian).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


class _Rows:
    """Column values of a subset of rows: ``num(col)`` as float64 (NaN when missing or
    when the frame lacks the column), ``raw(col)`` as stored."""

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray, cache: dict):
        self.frame, self.rows, self._cache = frame, rows, cache

    def __len__(self) -> int:
        return len(self.rows)

    def num(self, col: str) -> np.ndarray:
        if col not in self._cache:
            self._cache[col] = (pd.to_numeric(self.frame[col], errors="coerce").to_numpy("float64", na_value=np.nan)
                                if col in self.frame else np.full(len(self.frame), np.nan))
        return self._cache[col][self.rows]

    def raw(self, col: str) -> np.ndarray:
        key = ("raw", col)
        if key not in self._cache:
            self._cache[key] = (self.frame[col].to_numpy(object) if col in self.frame
                                else np.full(len(self.frame), None, dtype=object))
        return self._cache[key][self.rows]


def _text(where: np.ndarray, fmt: Callable[..., str], *cols: np.ndarray) -> np.ndarray:
    """An object array: ``fmt(*values)`` where ``where`` holds, None elsewhere."""
    out = np.full(len(where), None, dtype=object)
    idx = np.flatnonzero(where)
    if len(idx):
        out[idx] = [fmt(*v) for v in zip(*(c[idx] for c in cols))]
    return out


def _first(*parts: np.ndarray) -> np.ndarray:
    """Element-wise the first non-None of several text arrays."""
    out = parts[0].copy()
    for p in parts[1:]:
        empty = pd.isna(out)
        out[empty] = p[empty]
    return out


def _day(v) -> str:
    return pd.Timestamp(v).date().isoformat()


def _has(v: np.ndarray) -> np.ndarray:
    return ~pd.isna(v)


def _plural(n: float, word: str) -> str:
    n = int(round(n))
    return f"{n} {word}{'' if n == 1 else 's'}"


def _nonzero(v: np.ndarray) -> np.ndarray:
    return np.nan_to_num(v) != 0


@dataclass(frozen=True)
class Phrasebook:
    """How reasons are worded: ``say[key](*values)`` writes one statement (the keys and
    their values are those of :data:`ENGLISH`); ``groups`` names each reason group where
    reasons are counted. Other languages live with the faces that need them."""

    say: Mapping[str, Callable[..., str]]
    groups: Mapping[str, str]


ENGLISH = Phrasebook(
    say={
        "gap": lambda days: f"no order for {days:.0f} days",
        "gap_overdue": lambda days, ratio: f"no order for {days:.0f} days — {ratio:.1f}× their usual gap",
        "fewer_orders": lambda now, before: (f"{_plural(now, 'order')} in the last 30 days against {before:.0f} "
                                             "in the 30 before"),
        "spend_down": lambda pct: f"spend down {pct:.0f} % over the last 90 days",
        "few_orders": lambda n: f"only {_plural(n, 'order')} so far",
        "basket": lambda value: f"average order {value:,.2f}",
        "logins_down": lambda pct, now, before: (f"logins down {pct:.0f} % over the last 30 days ({now:.0f} against "
                                                 f"{before:.0f} in the 30 before)"),
        "no_login": lambda days: f"no login for {days:.0f} days",
        "usage_down": lambda pct: f"product usage down {pct:.0f} % over the last 30 days",
        "failed_payments": lambda n: f"{_plural(n, 'failed payment')} in the last 90 days",
        "downgraded": lambda n, when: (f"downgraded their plan {_plural(n, 'time')} in the last 90 days"
                                       + (f", last on {_day(when)}" if not pd.isna(when) else "")),
        "mrr_down": lambda before, now: f"MRR down from {before:.2f} to {now:.2f} over 90 days",
        "subscription_ended": lambda before: f"subscription ended (MRR was {before:.2f} 90 days ago)",
        "involuntary": lambda n: f"lost a subscription to a failed payment before ({_plural(n, 'time')})",
        "tickets_open": lambda n: f"{_plural(n, 'support ticket')} still open",
        "tickets_recent": lambda n: f"{_plural(n, 'support ticket')} in the last 90 days",
        "nps": lambda score, when: f"gave NPS {score:.0f} on {_day(when)}",
        "csat": lambda score, when: f"rated satisfaction {score:.0f}/5 on {_day(when)}",
        "returns": lambda pct: f"returned {pct:.0f} % of their orders",
        "discounts": lambda pct: f"{pct:.0f} % of their orders were discounted",
        "p_alive": lambda pct: f"purchase pattern says only a {pct:.0f} % chance they are still buying",
        "tenure": lambda days: f"a customer for only {days:.0f} days",
        "attribute": lambda name, value: f"{name.replace('_', ' ')}: {value}",
    },
    groups={
        "gap": "order gap", "orders": "fewer orders", "spend": "spend down", "few": "few orders",
        "basket": "average order", "logins": "logins", "usage": "usage", "payments": "payments",
        "plan": "downgrade", "ended": "subscription ended", "payments_past": "payments", "tickets": "tickets", "nps": "low NPS", "csat": "low CSAT", "returns": "returns",
        "discounts": "discounts", "alive": "P(alive)", "tenure": "new customer",
    },
)


# Each writer decides where its statement holds and hands the values to the phrasebook.
def _order_gap(r: _Rows, say) -> np.ndarray:
    rec, ratio = r.num("recency_days"), r.num("overdue_ratio")
    overdue = ratio >= 1.2  # NaN compares False
    return _first(_text(~np.isnan(rec) & overdue, say["gap_overdue"], rec, ratio),
                  _text(rec >= 14, say["gap"], rec))


def _orders_trend(r: _Rows, say) -> np.ndarray:
    now, before = r.num("orders_30"), r.num("orders_prev_30")
    return _text(now < before, say["fewer_orders"], now, before)


def _spend_trend(r: _Rows, say) -> np.ndarray:
    p = r.num("spend_trend_90_pct")
    return _text(p <= -10, say["spend_down"], -p)


def _few_orders(r: _Rows, say) -> np.ndarray:
    f = r.num("frequency")
    return _text((f > 0) & (f <= 2), say["few_orders"], f)


def _basket(r: _Rows, say) -> np.ndarray:
    v = r.num("monetary_avg")
    return _text(~np.isnan(v), say["basket"], v)


def _logins(r: _Rows, say) -> np.ndarray:
    now, before, p = r.num("logins_30"), r.num("logins_prev_30"), r.num("login_trend_pct")
    since = r.num("days_since_login")
    return _first(_text(p <= -20, say["logins_down"], -p, now, before),
                  _text(since >= 30, say["no_login"], since))


def _usage(r: _Rows, say) -> np.ndarray:
    p = r.num("usage_trend_pct")
    return _text(p <= -20, say["usage_down"], -p)


def _payments(r: _Rows, say) -> np.ndarray:
    n = r.num("payment_failures_90")
    return _text(_nonzero(n), say["failed_payments"], n)


def _downgrade(r: _Rows, say) -> np.ndarray:
    n, when = r.num("downgrades_90"), r.raw("last_downgrade_at")
    change, before = r.num("mrr_change_90"), r.num("mrr_90_ago")
    return _first(_text(_nonzero(n), say["downgraded"], n, when),
                  _text((change < 0) & _nonzero(before), say["mrr_down"], before, before + change))


def _unsubscribed(r: _Rows, say) -> np.ndarray:
    sub, before = r.num("subscribed"), r.num("mrr_90_ago")
    return _text((sub == 0) & _nonzero(before), say["subscription_ended"], before)


def _involuntary(r: _Rows, say) -> np.ndarray:
    n = r.num("involuntary_cancels")
    return _text(_nonzero(n), say["involuntary"], n)


def _tickets(r: _Rows, say) -> np.ndarray:
    open_, n90 = r.num("tickets_unresolved"), r.num("tickets_90")
    return _first(_text(_nonzero(open_), say["tickets_open"], open_),
                  _text(_nonzero(n90), say["tickets_recent"], n90))


def _nps(r: _Rows, say) -> np.ndarray:
    s, when = r.num("last_nps"), r.raw("last_nps_at")
    return _text((s <= 6) & _has(when), say["nps"], s, when)


def _csat(r: _Rows, say) -> np.ndarray:
    s, when = r.num("last_csat"), r.raw("last_csat_at")
    return _text((s <= 3) & _has(when), say["csat"], s, when)


def _returns(r: _Rows, say) -> np.ndarray:
    p = r.num("return_share")
    return _text(p >= 0.15, say["returns"], 100 * p)


def _discounts(r: _Rows, say) -> np.ndarray:
    p = r.num("discount_share")
    return _text(p >= 0.4, say["discounts"], 100 * p)


def _p_alive(r: _Rows, say) -> np.ndarray:
    p = r.num("p_alive")
    return _text(p < 0.5, say["p_alive"], 100 * p)


def _tenure(r: _Rows, say) -> np.ndarray:
    d = r.num("tenure_days")
    return _text(d < 60, say["tenure"], d)


def _attribute(name: str) -> Callable[[_Rows, Mapping], np.ndarray]:
    """A customer attribute (a categorical feature): say what it is."""
    def write(r: _Rows, say) -> np.ndarray:
        v = r.raw(name)
        return _text(_has(v), lambda x: say["attribute"](name, x), v)
    return write


#: reason group → (writer, the features that feed it); the features of one group give at
#: most one reason
GROUPS: dict[str, tuple[Callable[[_Rows, Mapping], np.ndarray], tuple[str, ...]]] = {
    "gap": (_order_gap, ("recency_days", "overdue_ratio", "mean_gap_days")),
    "orders": (_orders_trend, ("orders_30", "orders_prev_30", "order_trend_30")),
    "spend": (_spend_trend, ("spend_trend_90_pct",)),
    "few": (_few_orders, ("frequency",)),
    "basket": (_basket, ("monetary_avg",)),
    "logins": (_logins, ("logins_30", "logins_prev_30", "login_trend_pct", "days_since_login")),
    "usage": (_usage, ("usage_30", "usage_trend_pct")),
    "payments": (_payments, ("payment_failures_90",)),
    "plan": (_downgrade, ("downgrades_90", "mrr_change_90", "mrr_now")),
    "ended": (_unsubscribed, ("subscribed",)),
    "payments_past": (_involuntary, ("involuntary_cancels",)),
    "tickets": (_tickets, ("tickets_90", "tickets_30", "tickets_unresolved")),
    "nps": (_nps, ("last_nps", "days_since_nps")),
    "csat": (_csat, ("last_csat",)),
    "returns": (_returns, ("return_share",)),
    "discounts": (_discounts, ("discount_share",)),
    "alive": (_p_alive, ("p_alive",)),
    "tenure": (_tenure, ("tenure_days",)),
}
_GROUP_OF = {f: g for g, (_, features) in GROUPS.items() for f in features}


def top_reasons(contrib: pd.DataFrame, frame: pd.DataFrame, k: int = 3, with_groups: bool = False,
                phrases: Phrasebook = ENGLISH) -> list[list[str]] | tuple[list[list[str]], list[list[str]]]:
    """For each row: up to ``k`` plain-word reasons, strongest push towards churn first,
    worded by ``phrases``; with ``with_groups`` also each reason's group name.

    A group's strength is the largest positive contribution among its features (a group
    says one thing, e.g. the order gap, however many of its features push). Groups are
    visited strongest first; one whose statement does not hold for the row is skipped.
    """
    frame = frame.reset_index(drop=True)
    n = len(frame)
    # the groups present (a customer attribute is a group of its own, named after it)
    names = list(dict.fromkeys(_GROUP_OF.get(c, c) for c in contrib.columns))
    writers = {g: (phrases.groups.get(g, g.replace("_", " ")), GROUPS[g][0] if g in GROUPS else _attribute(g))
               for g in names}
    values = contrib.to_numpy("float64")
    strength = np.full((n, len(names)), -np.inf)
    for j, name in enumerate(contrib.columns):
        g = names.index(_GROUP_OF.get(name, name))
        np.maximum(strength[:, g], values[:, j], out=strength[:, g])
    rank = np.argsort(-strength, axis=1, kind="stable")
    found = np.zeros(n, int)
    texts = np.full((n, k), None, dtype=object)
    kinds = np.full((n, k), None, dtype=object)
    cache: dict = {}
    for step in range(len(names)):
        g_at = rank[:, step]
        live = (found < k) & (strength[np.arange(n), g_at] > 0)
        if not live.any():
            break
        for g in np.unique(g_at[live]):
            rows = np.flatnonzero(live & (g_at == g))
            label, writer = writers[names[g]]
            text = writer(_Rows(frame, rows, cache), phrases.say)
            ok = ~pd.isna(text)
            rows, text = rows[ok], text[ok]
            texts[rows, found[rows]] = text
            kinds[rows, found[rows]] = label
            found[rows] += 1
    out = [list(t[:m]) for t, m in zip(texts, found)]
    if with_groups:
        return out, [list(t[:m]) for t, m in zip(kinds, found)]
    return out


__all__ = ["ENGLISH", "GROUPS", "Phrasebook", "top_reasons"]
