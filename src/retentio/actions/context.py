"""What a message template can say about its customer: the variables of the message
context, and the product picks.

**Picks** are up to three items: ``bought`` — the items the customer bought most
(quantity, then recency); ``trigger`` — the items of the trigger (the cart, the
wishlist, the viewed items, the item due); ``segment`` — the best sellers of the
customer's RFM segment over the last 90 days; ``none``. Picks need the ``order_items``
table; without it they are empty.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd

from retentio.actions.playbooks import Playbook
from retentio.analytics.base import completed_orders, lit_ts

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

#: the variables every message context has (None when the trigger has no such fact)
VARIABLES = ("first_name", "customer", "segment", "churn_band", "clv", "offer", "promo_code", "valid_until",
             "picks", "items", "days_since_order", "birthday", "plan", "renewal_date", "due_item", "due_date",
             "step", "order_id", "score", "unsubscribe_url", "survey_url", "answer_comment")

_INTERNAL = {"expected_value", "value", "arm", "reason", "occurrence", "address", "_offer", "stage", "deferred",
             "last_order_at", "r_score", "f_score", "m_score", "aov", "revenue", "recency_days"}
#: ``answer_comment`` is a survey answer's text (feedback_reply): plain text, escaped in HTML like every
#: variable; not ``comment``, so a customers table's own ``comment`` attribute stays ``customer.comment``
_TRIGGER_FACTS = ("days_since_order", "birthday", "plan", "renewal_date", "due_item", "due_date", "step", "order_id",
                  "score", "answer_comment")


def picks(ws: Workspace, customers: pd.DataFrame, pb: Playbook, instant: pd.Timestamp) -> dict[str, list[dict]]:
    """Up to three items per customer of ``customers`` (customer_id, segment, items)."""
    how = pb.message.picks
    if how == "none" or customers.empty:
        return {}
    if how == "trigger":
        return {c: list(v)[:3] for c, v in zip(customers.customer_id, customers["items"]) if isinstance(v, list)}
    if not (ws.is_loaded("order_items") and ws.is_loaded("orders")):
        return {}
    o = completed_orders(ws)
    o = o.filter(o.ordered_at < lit_ts(instant))
    lines = ws.table("order_items").join(o, "order_id")
    if how == "bought":
        wanted = ibis.memtable(pd.DataFrame({"customer_id": customers.customer_id.astype(str).unique()}))
        lines = lines.join(wanted, lines.customer_id.cast("string") == wanted.customer_id).select(lines)
        per = lines.group_by(["customer_id", "item_id"]).agg(q=lines.quantity.fill_null(1).sum(),
                                                            last=lines.ordered_at.max(), name=lines.name.max())
        rank = ibis.row_number().over(group_by=per.customer_id, order_by=[ibis.desc(per.q), ibis.desc(per.last)])
        top = per.mutate(k=rank).filter(lambda t: t.k < 3).order_by(["customer_id", "k"]).to_pandas()
        out: dict[str, list[dict]] = {}
        for c, item, name in zip(top.customer_id.astype(str), top.item_id, top.name):
            out.setdefault(c, []).append({"item_id": str(item), "name": name if isinstance(name, str) else str(item)})
        return out
    # segment best sellers: the last 90 days of everyone's orders, by the buyers' segment
    since = instant - pd.Timedelta(days=90)
    recent = lines.filter(lines.ordered_at >= lit_ts(since))
    seg = customers[["customer_id", "segment"]].dropna().astype(str)
    if seg.empty:
        return {}
    memberships = ibis.memtable(seg)
    joined = recent.join(memberships, recent.customer_id.cast("string") == memberships.customer_id)
    per = joined.group_by(["segment", "item_id"]).agg(q=joined.quantity.fill_null(1).sum(), name=joined.name.max())
    rank = ibis.row_number().over(group_by=per.segment, order_by=ibis.desc(per.q))
    top = per.mutate(k=rank).filter(lambda t: t.k < 3).order_by(["segment", "k"]).to_pandas()
    best: dict[str, list[dict]] = {}
    for s, item, name in zip(top.segment, top.item_id, top.name):
        best.setdefault(s, []).append({"item_id": str(item), "name": name if isinstance(name, str) else str(item)})
    return {c: best.get(s, []) for c, s in zip(seg.customer_id, seg.segment)}


def _plain(value: Any) -> Any:
    """A value a template can print: no NaN/NaT, dates as dates, numpy scalars as Python."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    return value


def message_context(row: dict[str, Any], offer: dict[str, Any], promo_code: str | None,
                    valid_until: dt.date | None, picked: list[dict], unsubscribe_url: str | None,
                    survey_url: str | None = None) -> dict[str, Any]:
    """The variables of one message (see :data:`VARIABLES`); ``survey_url`` is the
    personal answer link of a survey playbook's message (empty for other kinds)."""
    customer = {k: _plain(v) for k, v in row.items() if k not in _INTERNAL and k not in _TRIGGER_FACTS
                and k != "items"}
    first = customer.get("first_name") or customer.get("name") or ""
    first = str(first).split(" ")[0] if first else ""
    ctx = {
        "first_name": first,
        "customer": customer,
        "segment": _plain(row.get("segment")),
        "churn_band": _plain(row.get("churn_band")),
        "clv": _plain(row.get("clv")),
        "offer": offer,
        "promo_code": promo_code,
        "valid_until": valid_until,
        "picks": picked,
        "items": row.get("items") if isinstance(row.get("items"), list) else [],
        "unsubscribe_url": unsubscribe_url or "",
        "survey_url": survey_url or "",
    }
    for k in _TRIGGER_FACTS:
        ctx[k] = _plain(row.get(k))
    return ctx


def sample_context(pb: Playbook) -> dict[str, Any]:
    """A context with every variable filled, to check a playbook's templates before a run."""
    today = dt.date.today()
    return message_context(
        {"customer_id": "C1", "first_name": "Anna", "email": "anna@example.com", "segment": "at risk",
         "churn_band": "high", "clv": 120.0, "days_since_order": 60, "birthday": today, "plan": "basic",
         "renewal_date": today, "due_item": "Coffee beans", "due_date": today, "step": 1, "order_id": "O1",
         "score": 3, "answer_comment": "Delivery was late",
         "items": [{"item_id": "SKU1", "name": "Coffee beans"}]},
        {"kind": pb.offer.kind, "value": pb.offer.value, "gift": pb.offer.gift, "text": "10 % off", "code": True},
        "ABCDE-12345", today, [{"item_id": "SKU1", "name": "Coffee beans"}], "https://example.com/u?token=x",
        "https://example.com/s/TOKEN")


__all__ = ["VARIABLES", "message_context", "picks", "sample_context"]
