"""Reasons in plain words: the features that push a customer's churn score up the most
(positive SHAP contributions, see :mod:`retentio.analytics.churn.model`), each written
as a statement that is true of that customer's data — or skipped when the value does
not support the statement (a contribution from "logins rose" is not written as a
warning sign).
"""

from __future__ import annotations

import math

import pandas as pd


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _day(v) -> str:
    return pd.Timestamp(v).date().isoformat()


def _plural(n: float, word: str) -> str:
    n = int(round(n))
    return f"{n} {word}{'' if n == 1 else 's'}"


def _order_gap(r) -> str | None:
    rec, ratio = _num(r.get("recency_days")), _num(r.get("overdue_ratio"))
    if rec is None:
        return None
    text = f"no order for {rec:.0f} days"
    if ratio is not None and ratio >= 1.2:
        text += f" — {ratio:.1f}× their usual gap"
    return text if rec >= 14 or (ratio or 0) >= 1.2 else None


def _orders_trend(r) -> str | None:
    now, before = _num(r.get("orders_30")), _num(r.get("orders_prev_30"))
    if now is None or before is None or now >= before:
        return None
    return f"{_plural(now, 'order')} in the last 30 days against {before:.0f} in the 30 before"


def _spend_trend(r) -> str | None:
    p = _num(r.get("spend_trend_90_pct"))
    return f"spend down {-p:.0f} % over the last 90 days" if p is not None and p <= -10 else None


def _few_orders(r) -> str | None:
    f = _num(r.get("frequency"))
    return f"only {_plural(f, 'order')} so far" if f is not None and 0 < f <= 2 else None


def _logins(r) -> str | None:
    now, before = _num(r.get("logins_30")), _num(r.get("logins_prev_30"))
    p = _num(r.get("login_trend_pct"))
    if p is not None and p <= -20:
        return f"logins down {-p:.0f} % over the last 30 days ({now:.0f} against {before:.0f} in the 30 before)"
    since = _num(r.get("days_since_login"))
    if since is not None and since >= 30:
        return f"no login for {since:.0f} days"
    return None


def _usage(r) -> str | None:
    p = _num(r.get("usage_trend_pct"))
    return f"product usage down {-p:.0f} % over the last 30 days" if p is not None and p <= -20 else None


def _payments(r) -> str | None:
    n = _num(r.get("payment_failures_90"))
    return f"{_plural(n, 'failed payment')} in the last 90 days" if n else None


def _downgrade(r) -> str | None:
    n, when = _num(r.get("downgrades_90")), r.get("last_downgrade_at")
    if n:
        on = f", last on {_day(when)}" if when is not None and not pd.isna(when) else ""
        return f"downgraded their plan {_plural(n, 'time')} in the last 90 days{on}"
    change, before = _num(r.get("mrr_change_90")), _num(r.get("mrr_90_ago"))
    if change is not None and change < 0 and before:
        return f"MRR down from {before:.2f} to {before + change:.2f} over 90 days"
    return None


def _unsubscribed(r) -> str | None:
    sub, before = _num(r.get("subscribed")), _num(r.get("mrr_90_ago"))
    if sub == 0 and before:
        return f"subscription ended (MRR was {before:.2f} 90 days ago)"
    return None


def _involuntary(r) -> str | None:
    n = _num(r.get("involuntary_cancels"))
    return f"lost a subscription to a failed payment before ({_plural(n, 'time')})" if n else None


def _tickets(r) -> str | None:
    open_, n90 = _num(r.get("tickets_unresolved")), _num(r.get("tickets_90"))
    if open_:
        return f"{_plural(open_, 'support ticket')} still open"
    if n90:
        return f"{_plural(n90, 'support ticket')} in the last 90 days"
    return None


def _nps(r) -> str | None:
    s, when = _num(r.get("last_nps")), r.get("last_nps_at")
    if s is None or s > 6 or when is None or pd.isna(when):
        return None
    return f"gave NPS {s:.0f} on {_day(when)}"


def _csat(r) -> str | None:
    s, when = _num(r.get("last_csat")), r.get("last_csat_at")
    if s is None or s > 3 or when is None or pd.isna(when):
        return None
    return f"rated satisfaction {s:.0f}/5 on {_day(when)}"


def _returns(r) -> str | None:
    p = _num(r.get("return_share"))
    return f"returned {100 * p:.0f} % of their orders" if p is not None and p >= 0.15 else None


def _discounts(r) -> str | None:
    p = _num(r.get("discount_share"))
    return f"{100 * p:.0f} % of their orders were discounted" if p is not None and p >= 0.4 else None


def _p_alive(r) -> str | None:
    p = _num(r.get("p_alive"))
    return f"purchase pattern says only a {100 * p:.0f} % chance they are still buying" if p is not None and p < 0.5 \
        else None


def _tenure(r) -> str | None:
    d = _num(r.get("tenure_days"))
    return f"a customer for only {d:.0f} days" if d is not None and d < 60 else None


#: feature → (reason group, writer); features of one group give one reason
WRITERS = {
    "recency_days": ("gap", _order_gap), "overdue_ratio": ("gap", _order_gap), "mean_gap_days": ("gap", _order_gap),
    "orders_30": ("orders", _orders_trend), "orders_prev_30": ("orders", _orders_trend),
    "order_trend_30": ("orders", _orders_trend), "spend_trend_90_pct": ("spend", _spend_trend),
    "frequency": ("few", _few_orders),
    "logins_30": ("logins", _logins), "logins_prev_30": ("logins", _logins), "login_trend_pct": ("logins", _logins),
    "days_since_login": ("logins", _logins), "usage_30": ("usage", _usage), "usage_trend_pct": ("usage", _usage),
    "payment_failures_90": ("payments", _payments), "downgrades_90": ("plan", _downgrade),
    "mrr_change_90": ("plan", _downgrade), "subscribed": ("plan", _unsubscribed),
    "mrr_now": ("plan", _downgrade), "involuntary_cancels": ("payments_past", _involuntary),
    "tickets_90": ("tickets", _tickets), "tickets_30": ("tickets", _tickets), "tickets_unresolved": ("tickets", _tickets),
    "last_nps": ("nps", _nps), "days_since_nps": ("nps", _nps), "last_csat": ("csat", _csat),
    "return_share": ("returns", _returns), "discount_share": ("discounts", _discounts),
    "p_alive": ("alive", _p_alive), "tenure_days": ("tenure", _tenure),
}


#: what each reason group is called where reasons are counted (customer attributes keep their name)
GROUP_NAMES = {
    "gap": "order gap", "orders": "fewer orders", "spend": "spend down", "few": "few orders", "logins": "logins",
    "usage": "usage", "payments": "payments", "plan": "downgrade", "payments_past": "payments",
    "tickets": "tickets", "nps": "low NPS", "csat": "low CSAT", "returns": "returns", "discounts": "discounts",
    "alive": "P(alive)", "tenure": "new customer",
}


def top_reasons(contrib: pd.DataFrame, frame: pd.DataFrame, k: int = 3,
                with_groups: bool = False) -> list[list[str]] | tuple[list[list[str]], list[list[str]]]:
    """For each row: up to ``k`` plain-word reasons, strongest push towards churn first;
    with ``with_groups`` also each reason's group name (:data:`GROUP_NAMES`)."""
    out, out_groups = [], []
    names = list(contrib.columns)
    values = contrib.to_numpy()
    records = frame.to_dict("records")
    for i, rec in enumerate(records):
        order = values[i].argsort()[::-1]
        groups, reasons = [], []
        for j in order:
            if values[i, j] <= 0 or len(reasons) >= k:
                break
            group, writer = WRITERS.get(names[j], (names[j], None))
            if group in groups:
                continue
            if writer is None:  # a customer attribute: say what it is
                value = rec.get(names[j])
                text = None if value is None or pd.isna(value) else f"{names[j].replace('_', ' ')}: {value}"
            else:
                text = writer(rec)
            if text:
                groups.append(group)
                reasons.append(text)
        out.append(reasons)
        out_groups.append([GROUP_NAMES.get(g, g) for g in groups])
    return (out, out_groups) if with_groups else out


__all__ = ["GROUP_NAMES", "WRITERS", "top_reasons"]
