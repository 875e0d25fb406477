"""Reasons in plain words: the features that push a customer's churn score up the most
(positive SHAP contributions, see :mod:`retentio.analytics.churn.model`), each written
as a statement that is true of that customer's data — or skipped when the value does
not support the statement (a contribution from "logins rose" is not written as a
warning sign).

Writers work column-wise: each gets the candidate rows' values as arrays, decides with
NumPy where its statement holds and formats text only for those rows, so reasons for
a million customers cost seconds rather than a Python loop over every row.
"""

from __future__ import annotations

from typing import Callable

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


def _order_gap(r: _Rows) -> np.ndarray:
    rec, ratio = r.num("recency_days"), r.num("overdue_ratio")
    overdue = ratio >= 1.2  # NaN compares False
    return _text(~np.isnan(rec) & ((rec >= 14) | overdue),
                 lambda d, q, o: f"no order for {d:.0f} days" + (f" — {q:.1f}× their usual gap" if o else ""),
                 rec, ratio, overdue)


def _orders_trend(r: _Rows) -> np.ndarray:
    now, before = r.num("orders_30"), r.num("orders_prev_30")
    return _text(now < before, lambda a, b: f"{_plural(a, 'order')} in the last 30 days against {b:.0f} in the 30 before",
                 now, before)


def _spend_trend(r: _Rows) -> np.ndarray:
    p = r.num("spend_trend_90_pct")
    return _text(p <= -10, lambda v: f"spend down {-v:.0f} % over the last 90 days", p)


def _few_orders(r: _Rows) -> np.ndarray:
    f = r.num("frequency")
    return _text((f > 0) & (f <= 2), lambda v: f"only {_plural(v, 'order')} so far", f)


def _logins(r: _Rows) -> np.ndarray:
    now, before, p = r.num("logins_30"), r.num("logins_prev_30"), r.num("login_trend_pct")
    since = r.num("days_since_login")
    return _first(
        _text(p <= -20, lambda v, a, b: f"logins down {-v:.0f} % over the last 30 days ({a:.0f} against {b:.0f} in "
                                        "the 30 before)", p, now, before),
        _text(since >= 30, lambda d: f"no login for {d:.0f} days", since))


def _usage(r: _Rows) -> np.ndarray:
    p = r.num("usage_trend_pct")
    return _text(p <= -20, lambda v: f"product usage down {-v:.0f} % over the last 30 days", p)


def _payments(r: _Rows) -> np.ndarray:
    n = r.num("payment_failures_90")
    return _text(_nonzero(n), lambda v: f"{_plural(v, 'failed payment')} in the last 90 days", n)


def _downgrade(r: _Rows) -> np.ndarray:
    n, when = r.num("downgrades_90"), r.raw("last_downgrade_at")
    change, before = r.num("mrr_change_90"), r.num("mrr_90_ago")
    return _first(
        _text(_nonzero(n), lambda v, w: f"downgraded their plan {_plural(v, 'time')} in the last 90 days"
                                        + (f", last on {_day(w)}" if not pd.isna(w) else ""), n, when),
        _text((change < 0) & _nonzero(before), lambda c, b: f"MRR down from {b:.2f} to {b + c:.2f} over 90 days",
              change, before))


def _unsubscribed(r: _Rows) -> np.ndarray:
    sub, before = r.num("subscribed"), r.num("mrr_90_ago")
    return _text((sub == 0) & _nonzero(before), lambda b: f"subscription ended (MRR was {b:.2f} 90 days ago)", before)


def _involuntary(r: _Rows) -> np.ndarray:
    n = r.num("involuntary_cancels")
    return _text(_nonzero(n), lambda v: f"lost a subscription to a failed payment before ({_plural(v, 'time')})", n)


def _tickets(r: _Rows) -> np.ndarray:
    open_, n90 = r.num("tickets_unresolved"), r.num("tickets_90")
    return _first(_text(_nonzero(open_), lambda v: f"{_plural(v, 'support ticket')} still open", open_),
                  _text(_nonzero(n90), lambda v: f"{_plural(v, 'support ticket')} in the last 90 days", n90))


def _nps(r: _Rows) -> np.ndarray:
    s, when = r.num("last_nps"), r.raw("last_nps_at")
    return _text((s <= 6) & _has(when), lambda v, w: f"gave NPS {v:.0f} on {_day(w)}", s, when)


def _csat(r: _Rows) -> np.ndarray:
    s, when = r.num("last_csat"), r.raw("last_csat_at")
    return _text((s <= 3) & _has(when), lambda v, w: f"rated satisfaction {v:.0f}/5 on {_day(w)}", s, when)


def _returns(r: _Rows) -> np.ndarray:
    p = r.num("return_share")
    return _text(p >= 0.15, lambda v: f"returned {100 * v:.0f} % of their orders", p)


def _discounts(r: _Rows) -> np.ndarray:
    p = r.num("discount_share")
    return _text(p >= 0.4, lambda v: f"{100 * v:.0f} % of their orders were discounted", p)


def _p_alive(r: _Rows) -> np.ndarray:
    p = r.num("p_alive")
    return _text(p < 0.5, lambda v: f"purchase pattern says only a {100 * v:.0f} % chance they are still buying", p)


def _tenure(r: _Rows) -> np.ndarray:
    d = r.num("tenure_days")
    return _text(d < 60, lambda v: f"a customer for only {v:.0f} days", d)


def _attribute(name: str) -> Callable[[_Rows], np.ndarray]:
    """A customer attribute (a categorical feature): say what it is."""
    label = name.replace("_", " ")

    def write(r: _Rows) -> np.ndarray:
        v = r.raw(name)
        return _text(_has(v), lambda x: f"{label}: {x}", v)
    return write


#: reason group → (its name where reasons are counted, writer, the features that feed it);
#: the features of one group give at most one reason
GROUPS: dict[str, tuple[str, Callable[[_Rows], np.ndarray], tuple[str, ...]]] = {
    "gap": ("order gap", _order_gap, ("recency_days", "overdue_ratio", "mean_gap_days")),
    "orders": ("fewer orders", _orders_trend, ("orders_30", "orders_prev_30", "order_trend_30")),
    "spend": ("spend down", _spend_trend, ("spend_trend_90_pct",)),
    "few": ("few orders", _few_orders, ("frequency",)),
    "logins": ("logins", _logins, ("logins_30", "logins_prev_30", "login_trend_pct", "days_since_login")),
    "usage": ("usage", _usage, ("usage_30", "usage_trend_pct")),
    "payments": ("payments", _payments, ("payment_failures_90",)),
    "plan": ("downgrade", _downgrade, ("downgrades_90", "mrr_change_90", "mrr_now")),
    "ended": ("subscription ended", _unsubscribed, ("subscribed",)),
    "payments_past": ("payments", _involuntary, ("involuntary_cancels",)),
    "tickets": ("tickets", _tickets, ("tickets_90", "tickets_30", "tickets_unresolved")),
    "nps": ("low NPS", _nps, ("last_nps", "days_since_nps")),
    "csat": ("low CSAT", _csat, ("last_csat",)),
    "returns": ("returns", _returns, ("return_share",)),
    "discounts": ("discounts", _discounts, ("discount_share",)),
    "alive": ("P(alive)", _p_alive, ("p_alive",)),
    "tenure": ("new customer", _tenure, ("tenure_days",)),
}
_GROUP_OF = {f: g for g, (_, _, features) in GROUPS.items() for f in features}


def top_reasons(contrib: pd.DataFrame, frame: pd.DataFrame, k: int = 3,
                with_groups: bool = False) -> list[list[str]] | tuple[list[list[str]], list[list[str]]]:
    """For each row: up to ``k`` plain-word reasons, strongest push towards churn first;
    with ``with_groups`` also each reason's group name (the first item of :data:`GROUPS`).

    A group's strength is the largest positive contribution among its features (a group
    says one thing, e.g. the order gap, however many of its features push). Groups are
    visited strongest first; one whose statement does not hold for the row is skipped.
    """
    frame = frame.reset_index(drop=True)
    n = len(frame)
    # the groups present (a customer attribute is a group of its own, named after it)
    writers: dict[str, tuple[str, Callable[[_Rows], np.ndarray]]] = {}
    member = []
    for name in contrib.columns:
        group = _GROUP_OF.get(name, name)
        if group not in writers:
            label, writer, _ = GROUPS.get(group, (name, _attribute(name), ()))
            writers[group] = (label, writer)
        member.append(list(writers).index(group))
    values = contrib.to_numpy("float64")
    strength = np.full((n, len(writers)), -np.inf)
    for j, g in enumerate(member):
        np.maximum(strength[:, g], values[:, j], out=strength[:, g])
    rank = np.argsort(-strength, axis=1, kind="stable")
    names = list(writers)
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
            text = writer(_Rows(frame, rows, cache))
            ok = ~pd.isna(text)
            rows, text = rows[ok], text[ok]
            texts[rows, found[rows]] = text
            kinds[rows, found[rows]] = label
            found[rows] += 1
    out = [list(t[:m]) for t, m in zip(texts, found)]
    if with_groups:
        return out, [list(t[:m]) for t, m in zip(kinds, found)]
    return out


__all__ = ["GROUPS", "top_reasons"]
