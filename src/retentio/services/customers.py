"""Customer use cases for the web app's "Customers", "customer profile" and "At risk"
pages and the ``/api/v1/customers`` API: find customers, everything known about one,
and who is most valuable among those about to leave.

Every function only reads — the canonical tables through Ibis (:meth:`Workspace.table`,
so a workspace opened ``read_only=True`` and a Spark workspace both work) and the
operational store through the existing readers (model registry and score snapshots,
loyalty ledger, campaign tables, follow-up tasks). Results are plain dicts and lists of
JSON values: times as ISO strings, money as floats, missing values as None (never NaN).

Whole-population computations that a single profile needs a slice of — RFM segments,
customer value from a stored CLV model, a score snapshot's rows — are cached in this
process, keyed by the workspace path and :meth:`Workspace.data_fingerprint` (or, for a
snapshot, the store and its id: snapshots never change), in a small bounded LRU shared
by threads (:func:`clear_cache` empties it).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from retentio.data.errors import InvalidParameter, RetentioError
from retentio.data.workspace import iso_date
from retentio.services.memo import Memo, data_key

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd

    from retentio.data.store.registry import Snapshot
    from retentio.data.workspace import Workspace

#: tables of a customer's history shown on the profile (their time column orders them)
HISTORY_TABLES = ("orders", "subscriptions", "events", "surveys", "tickets")
#: at most this many rows of each list on a profile (the ``counts`` say how many there are)
PROFILE_ROWS = 200
#: loyalty ledger entries shown per program, newest first
LEDGER_ROWS = 50
#: attribute columns read as the customer's name, first found wins (else first_name + last_name)
NAME_COLUMNS = ("name", "full_name", "customer_name")
#: the churn bands, lowest risk first (as the score snapshots store them)
BANDS = ("low", "medium", "high")


class UnknownCustomer(RetentioError):
    """No customer with this id in the workspace (the web layer answers 404)."""

    def __init__(self, customer_id: str):
        self.customer_id = customer_id
        super().__init__(f"no customer {customer_id!r} in this workspace")


# ------------------------------------------------------------------------------ cache
#: entries kept (segments, CLV, snapshots, loaded tables of a few workspaces and days)
CACHE_SIZE = 32
_MEMO: Memo[Any] = Memo(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every cached whole-population result (segments, CLV, snapshots)."""
    _MEMO.clear()


def _cached(key: tuple, compute: Callable[[], Any]) -> Any:
    return _MEMO.get(key, compute)


def _data_key(ws: Workspace) -> tuple[str, str]:
    return data_key(ws)


# ------------------------------------------------------------------------------ JSON values
def _plain(value: Any) -> Any:
    """A JSON value: None for missing (None, NaN, NaT, ±inf), floats for money, ISO
    strings for times, lists and dicts cleaned recursively."""
    import numpy as np
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, Decimal)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta)):
        return pd.Timedelta(value).total_seconds()
    if isinstance(value, str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _rows(t: ir.Table) -> list[dict[str, Any]]:
    """The rows of an expression as JSON-safe dicts."""
    return [_plain(r) for r in t.to_pyarrow().to_pylist()]


def _check_page(limit: int, offset: int, most: int = 1000) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= most:
        raise InvalidParameter("limit", limit, f"a whole number from 1 to {most}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidParameter("offset", offset, "a whole number from 0")


# ------------------------------------------------------------------------------ tables
#: per open workspace: (its backend, the data's fingerprint, table expressions); building
#: ``ws.table(name)`` reads the table's schema from the engine, a few ms each time
_TABLES: weakref.WeakKeyDictionary[Any, tuple[Any, str, dict[str, Any]]] = weakref.WeakKeyDictionary()
_TABLES_LOCK = threading.Lock()


def _table(ws: Workspace, name: str, key: tuple[str, str]) -> ir.Table:
    """``ws.table(name)``, reused while the workspace's backend and data stay the same."""
    backend = ws.backend
    with _TABLES_LOCK:
        held = _TABLES.get(ws)
        if held is None or held[0] is not backend or held[1] != key[1]:
            held = (backend, key[1], {})
            _TABLES[ws] = held
        tables = held[2]
    if name not in tables:
        tables[name] = ws.table(name)
    return tables[name]

def _loaded(ws: Workspace, key: tuple[str, str] | None = None) -> dict[str, bool]:
    """Which canonical tables hold rows (cached with the data's fingerprint)."""
    from retentio.data.schema import TABLES

    return _cached(("loaded", *(key or _data_key(ws))), lambda: {name: ws.is_loaded(name) for name in TABLES})


def _present(ws: Workspace, table: str, key: tuple[str, str]) -> frozenset[str]:
    """The customers with at least one row in ``table`` (cached): a profile skips the
    tables a customer has no rows in instead of querying each."""

    def compute() -> frozenset[str]:
        if not _loaded(ws, key)[table]:
            return frozenset()
        t = ws.table(table)
        ids = t.select(cid=t.customer_id.cast("string")).filter(lambda x: x.cid.notnull()).distinct()
        return frozenset(str(c) for c in ids.to_pyarrow().column("cid").to_pylist())

    return _cached(("present", *key, table), compute)


def _customers_table(ws: Workspace, key: tuple[str, str] | None = None) -> ir.Table:
    """The customers table, or the one derived from the activity tables when none is
    loaded (:meth:`Workspace.customers`), with a ``name`` column (null when there is none)."""
    key = key or _data_key(ws)
    t = _table(ws, "customers", key) if _loaded(ws, key)["customers"] else ws.customers()
    return t.mutate(name=_name_expr(t)) if "name" not in t.columns else t.mutate(name=t["name"].cast("string"))


def _name_expr(t: ir.Table) -> ir.Value:
    import ibis

    for column in NAME_COLUMNS:
        if column in t.columns:
            return t[column].cast("string")
    parts = [t[c].cast("string") for c in ("first_name", "last_name") if c in t.columns]
    if not parts:
        return ibis.null().cast("string")
    joined = parts[0].fill_null("")
    for p in parts[1:]:
        joined = joined + " " + p.fill_null("")
    joined = joined.strip()
    return ibis.ifelse(joined == "", ibis.null().cast("string"), joined)


def _column(t: ir.Table, name: str, kind: str = "string") -> ir.Value:
    """A column of ``t`` (read as ``kind``), or nulls when the table lacks it."""
    import ibis

    return t[name].cast(kind) if name in t.columns else ibis.null().cast(kind)


def _order_stats(ws: Workspace, ids: list[str] | None = None,
                 key: tuple[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Per customer (of ``ids``, or all): completed orders, their revenue, and the first
    and last completed order — the figures RFM counts."""
    if not _loaded(ws, key)["orders"] or (ids is not None and not ids):
        return {}
    from retentio.analytics.base import completed_orders

    o = completed_orders(ws)
    if ids is not None:
        o = o.filter(o.customer_id.isin(ids))
    g = o.group_by("customer_id").agg(orders=o.count(), revenue=o.amount.sum().cast("float64"),
                                      first_order=o.ordered_at.min(), last_order=o.ordered_at.max())
    return {str(r["customer_id"]): r for r in _rows(g)}


# ------------------------------------------------------------------------------ search
def search_customers(ws: Workspace, query: str = "", *, limit: int = 50, offset: int = 0,
                     match_email: bool = True) -> dict[str, Any]:
    """Customers whose id, name or e-mail contains ``query`` (case-insensitive; an empty
    query matches everyone), sorted by customer_id, ``limit`` of them from ``offset``.
    ``match_email`` False leaves the e-mail out of the match — for someone who may not
    see contacts, who could otherwise spell an address out one character at a time.

    Returns ``{"query", "total", "limit", "offset", "items"}``; ``total`` counts every
    match, ``items`` hold the page: customer_id, name, email, phone, signup_date (the
    signup day, or the first activity when no customers table is loaded),
    acquisition_channel, orders and revenue (completed orders and their sum, as RFM
    counts them) and last_order (the last completed order's time). Columns the data
    lack are None; a workspace without customers gives ``total`` 0."""
    _check_page(limit, offset)
    query = (query or "").strip()
    key = _data_key(ws)
    loaded = _loaded(ws, key)
    empty = {"query": query, "total": 0, "limit": limit, "offset": offset, "items": []}
    if not any(loaded.values()):
        return empty
    t = _customers_table(ws, key)
    t = t.select(customer_id=t.customer_id.cast("string"), name=t["name"], email=_column(t, "email"),
                 phone=_column(t, "phone"), signup_at=_column(t, "signup_at", "timestamp"),
                 acquisition_channel=_column(t, "acquisition_channel"))
    if query:
        needle = query.lower()
        hit = (t.customer_id.lower().contains(needle).fill_null(False)
               | t["name"].lower().contains(needle).fill_null(False))
        if match_email:
            hit = hit | t.email.lower().contains(needle).fill_null(False)
        t = t.filter(hit)
    total = int(t.count().execute())
    if total == 0 or offset >= total:
        return empty | {"total": total}
    page = _rows(t.order_by("customer_id").limit(limit, offset=offset))
    stats = _order_stats(ws, [r["customer_id"] for r in page], key)
    items = []
    for r in page:
        s = stats.get(r["customer_id"], {})
        items.append({"customer_id": r["customer_id"], "name": r["name"], "email": r["email"], "phone": r["phone"],
                      "signup_date": iso_date(r["signup_at"]), "acquisition_channel": r["acquisition_channel"],
                      "orders": int(s.get("orders") or 0), "revenue": float(s.get("revenue") or 0.0),
                      "last_order": s.get("last_order")})
    return {"query": query, "total": total, "limit": limit, "offset": offset, "items": items}


# ------------------------------------------------------------------------------ segments
def _segments(ws: Workspace, as_of: dt.date | None, key: tuple[str, str] | None = None) -> dict[str, Any]:
    """RFM per customer as ``retentio segments`` computes it (cached): ``{"as_of",
    "scoring", "by_customer": {id: {segment, r/f/m scores, key_customer, sleeping}},
    "note"}``; ``by_customer`` is None, with the reason in ``note``, when the data cannot
    be segmented (no completed orders, an as-of day before them)."""
    from retentio.services.retention import customer_segments

    def compute() -> dict[str, Any]:
        try:
            result = customer_segments(ws, as_of)
        except RetentioError as exc:
            return {"as_of": as_of.isoformat() if as_of else None, "scoring": None, "by_customer": None,
                    "note": str(exc)}
        frame = result.customers
        cols = ["segment", "r_score", "f_score", "m_score", "key_customer", "sleeping"]
        by = {str(cid): _plain(dict(zip(cols, values)))
              for cid, *values in zip(frame.customer_id, *(frame[c] for c in cols))}
        return {"as_of": result.as_of, "scoring": result.scoring, "by_customer": by, "note": result.note}

    return _cached(("segments", *(key or _data_key(ws)), as_of, ws.settings.activity_window_days), compute)


def _segment_of(ws: Workspace, customer_id: str, as_of: dt.date | None,
                key: tuple[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    seg = _segments(ws, as_of, key)
    if seg["by_customer"] is None:
        return None, seg["note"]
    row = seg["by_customer"].get(customer_id)
    if row is None:
        return None, f"no completed order before {seg['as_of']}: RFM segments score customers who bought"
    return {"name": row["segment"], **row, "as_of": seg["as_of"], "scoring": seg["scoring"]}, seg["note"]


# ------------------------------------------------------------------------------ churn snapshots
def _newest_snapshot(ws: Workspace, as_of: dt.date | None = None) -> Snapshot | None:
    """The score snapshot of the latest day (the latest made on that day), up to ``as_of``."""
    from retentio.data.store.registry import snapshots

    found = [s for s in snapshots(ws.store) if as_of is None or s.as_of <= as_of]
    return max(found, key=lambda s: (s.as_of, s.id)) if found else None


def _snapshot_frame(ws: Workspace, snap: Snapshot) -> pd.DataFrame:
    """A snapshot's scores, by value at risk then probability (cached: never changes)."""
    from retentio.data.store.registry import snapshot_scores

    def compute() -> pd.DataFrame:
        frame = snapshot_scores(ws.store, snap)
        frame["customer_id"] = frame.customer_id.astype(str)
        frame["_var"] = frame.value_at_risk.fillna(-math.inf)
        frame = frame.sort_values(["_var", "churn_probability", "customer_id"], ascending=[False, False, True],
                                  ignore_index=True).drop(columns="_var")
        return frame

    return _cached(("snapshot", ws.store.url, snap.id), compute)


def _score_item(row: Any) -> dict[str, Any]:
    return {"customer_id": str(row.customer_id), "probability": _plain(row.churn_probability),
            "score": _plain(row.score), "band": row.band, "value_at_risk": _plain(row.value_at_risk),
            "reasons": [str(r) for r in (row.reasons or [])]}


# ------------------------------------------------------------------------------ CLV
def _clv_fitted(ws: Workspace) -> dict[str, Any]:
    """Customer value as ``retentio clv predict`` gives it (BG/NBD + Gamma-Gamma fitted on
    the data now, the workspace's horizon and discount rate), for a workspace whose
    registry holds no CLV model; a refusal (data that cannot identify the model) is the note."""
    from retentio.services.clv import value_customers

    try:
        valued = value_customers(ws)
    except RetentioError as exc:
        return {"model_version": None, "by_customer": None, "note": f"CLV not available: {exc}"}
    frame = valued.frame
    cols = ["expected_purchases", "p_alive", "expected_spend", "clv"]
    by = {str(cid): _plain(dict(zip(cols, values)))
          for cid, *values in zip(frame.customer_id, *(frame[c] for c in cols))}
    return {"model_version": None, "by_customer": by, "note": None, "horizon": int(valued.horizon),
            "unit": valued.unit, "fitted": "bgnbd + gamma_gamma on the current data"}


def _clv_values(ws: Workspace, key: tuple[str, str]) -> dict[str, Any]:
    """Customer value from the newest CLV model in the registry (cached per model and
    data): ``{"model_version", "by_customer": {id: {clv, p_alive, ...}}, "note"}``;
    ``by_customer`` None with the reason in ``note`` when there is no usable model.

    The model's payload is read as JSON ``{"purchase": {"model": "bgnbd", "params":
    {...}}, "spend": {"model": "gamma_gamma", "params": {...}}, "unit": "week"}``, and
    customers are valued over the workspace's ``[analysis]`` horizon and discount rate,
    as ``clv predict`` values them."""
    from retentio.data.store.registry import latest_model

    model = latest_model(ws.store, "clv")
    if model is None:
        return _cached(("clv-fitted", *key), lambda: _clv_fitted(ws))

    def compute() -> dict[str, Any]:
        import json

        from retentio.analytics.clv import make_model
        from retentio.analytics.clv.from_orders import customer_value, rfm_summary

        try:
            payload = json.loads(model.payload)
            purchase = make_model(payload["purchase"]["model"])
            purchase.params_ = {k: float(v) for k, v in payload["purchase"]["params"].items()}
            spend = make_model(payload.get("spend", {}).get("model", "gamma_gamma"))
            spend.params_ = {k: float(v) for k, v in payload["spend"]["params"].items()}
            unit = payload.get("unit", "week")
            summary = rfm_summary(ws, unit=unit)
            frame = customer_value(ws, purchase, spend, fit_unit=unit, summary=summary)
        except (RetentioError, KeyError, TypeError, ValueError, AttributeError) as exc:
            return {"model_version": model.version, "by_customer": None,
                    "note": f"the CLV model version {model.version} in the registry cannot be used: "
                            f"{type(exc).__name__}: {exc}"}
        cols = ["expected_purchases", "p_alive", "expected_spend", "clv"]
        by = {str(cid): _plain(dict(zip(cols, values)))
              for cid, *values in zip(frame.customer_id, *(frame[c] for c in cols))}
        return {"model_version": model.version, "by_customer": by, "note": None,
                "horizon": int(frame.attrs.get("horizon", 0)), "unit": frame.attrs.get("unit")}

    return _cached(("clv", *key, model.id), compute)


# ------------------------------------------------------------------------------ profile
def _history(ws: Workspace, table: str, customer_id: str, order_by: list[str],
             key: tuple[str, str]) -> tuple[int, list[dict[str, Any]]]:
    """(rows of ``table`` for the customer, the newest :data:`PROFILE_ROWS` of them)."""
    import ibis

    if customer_id not in _present(ws, table, key):
        return 0, []
    t = _table(ws, table, key)
    t = t.filter(t.customer_id == customer_id)
    rows = _rows(t.order_by([ibis.desc(c) for c in order_by]).limit(PROFILE_ROWS))
    total = len(rows) if len(rows) < PROFILE_ROWS else int(t.count().execute())
    return total, rows


def _stats_of(orders: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`_order_stats` of one customer from all their order rows (completed: status
    completed or empty, as :func:`retentio.analytics.base.completed_orders` counts)."""
    done = [o for o in orders if (o.get("status") or "completed") == "completed"]
    if not done:
        return {}
    times = [o["ordered_at"] for o in done if o.get("ordered_at") is not None]
    revenue = sum((Decimal(str(o["amount"])) for o in done if o.get("amount") is not None), Decimal(0))
    return {"orders": len(done), "revenue": float(revenue), "first_order": min(times, default=None),
            "last_order": max(times, default=None)}


def _customer_row(ws: Workspace, customer_id: str, key: tuple[str, str]) -> dict[str, Any]:
    if not any(_loaded(ws, key).values()):
        raise UnknownCustomer(customer_id)
    t = _customers_table(ws, key)
    rows = _rows(t.filter(t.customer_id.cast("string") == customer_id).limit(1))
    if not rows:
        raise UnknownCustomer(customer_id)
    return rows[0]


def _loyalty(ws: Workspace, customer_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Per program the customer is a member of: balance, tier and the last entries."""
    from sqlalchemy import select

    from retentio.actions.loyalty.ledger import Ledger
    from retentio.actions.loyalty.programs import read_program
    from retentio.data.store.loyalty_tables import LoyaltyAccount

    with ws.store.reading() as s:
        accounts = s.execute(select(LoyaltyAccount.program, LoyaltyAccount.available, LoyaltyAccount.pending,
                                    LoyaltyAccount.tier, LoyaltyAccount.tier_override, LoyaltyAccount.joined_at)
                             .where(LoyaltyAccount.customer_id == customer_id)
                             .order_by(LoyaltyAccount.program)).all()
    out, notes = [], []
    for program, available, pending, tier, override, joined in accounts:
        try:
            book = Ledger(ws.store, read_program(ws.path, program), actor="web")
        except RetentioError as exc:  # the program's file is gone: the account's cached balance
            notes.append(f"loyalty program {program}: {exc}")
            out.append({"program": program, "available": int(available), "pending": int(pending),
                        "tier": override or tier, "joined_at": _plain(joined), "balance": None, "entries": [],
                        "entries_total": None})
            continue
        balance = book.balance(customer_id)
        entries = book.history(customer_id)
        out.append({"program": program, "available": balance["available"], "pending": balance["pending"],
                    "tier": balance["tier"], "joined_at": _plain(joined), "balance": _plain(balance),
                    "entries": _plain(entries[::-1][:LEDGER_ROWS]), "entries_total": len(entries)})
    return out, notes


def _messages(ws: Workspace, customer_id: str) -> list[dict[str, Any]]:
    """The customer's outbox messages, newest first (control-arm messages recorded as
    ``withheld`` were never sent)."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Campaign, OutboxMessage

    with ws.store.reading() as s:
        rows = s.execute(select(OutboxMessage.id, Campaign.name, Campaign.kind, OutboxMessage.run_id,
                                OutboxMessage.channel, OutboxMessage.message_class, OutboxMessage.status,
                                OutboxMessage.subject, OutboxMessage.not_before, OutboxMessage.sent_at,
                                OutboxMessage.attempts, OutboxMessage.detail)
                         .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
                         .where(OutboxMessage.customer_id == customer_id)
                         .order_by(OutboxMessage.id.desc()).limit(PROFILE_ROWS)).all()
    keys = ("id", "campaign", "kind", "run_id", "channel", "message_class", "status", "subject", "not_before",
            "sent_at", "attempts", "detail")
    return [_plain(dict(zip(keys, r))) for r in rows]


def _campaigns(ws: Workspace, customer_id: str) -> list[dict[str, Any]]:
    """The campaign runs the customer was assigned in, newest first, with the arm."""
    from sqlalchemy import select

    from retentio.data.store.campaign_tables import Assignment, Campaign, CampaignRun

    with ws.store.reading() as s:
        rows = s.execute(select(Campaign.name, Campaign.kind, Assignment.run_id, CampaignRun.as_of, Assignment.arm,
                                Assignment.reason, Assignment.occurrence, Assignment.promo_code,
                                Assignment.expected_value, Assignment.offer, Assignment.created_at)
                         .join(Campaign, Campaign.id == Assignment.campaign_id)
                         .join(CampaignRun, CampaignRun.id == Assignment.run_id)
                         .where(Assignment.customer_id == customer_id)
                         .order_by(Assignment.id.desc()).limit(PROFILE_ROWS)).all()
    keys = ("campaign", "kind", "run_id", "run_as_of", "arm", "reason", "occurrence", "promo_code",
            "expected_value", "offer", "decided_at")
    return [_plain(dict(zip(keys, r))) for r in rows]


def customer_profile(ws: Workspace, customer_id: str, *, as_of: dt.date | None = None) -> dict[str, Any]:
    """Everything known about one customer.

    ``as_of`` (default: the end of the data) is the day the derived facts refer to: the
    RFM segment as of that day (as ``retentio segments --as-of``) and the churn score of
    the newest snapshot on or before it; the lists are the whole history.

    Returns a dict with:

    * ``customer_id``, ``customer`` — the customers row (every column, ``name`` added;
      derived from the activity when no customers table is loaded);
    * ``summary`` — completed orders, revenue, first/last completed order, AOV;
    * ``orders``, ``subscriptions``, ``events``, ``surveys``, ``tickets`` — rows of each
      table, newest first, at most :data:`PROFILE_ROWS`; ``counts`` gives each table's
      full count (tables not loaded: empty lists, count 0);
    * ``segment`` — RFM segment ``name``, scores, key_customer, sleeping, ``as_of``;
    * ``clv`` — expected_purchases, p_alive, expected_spend, clv, model_version from the
      newest CLV model in the registry;
    * ``churn`` — probability, score, band, value_at_risk, reasons, as_of,
      model_version, snapshot_id of the newest score snapshot;
    * ``loyalty`` — per program: available, pending, tier, the ledger balance and the
      last :data:`LEDGER_ROWS` entries (newest first);
    * ``messages`` — outbox messages (campaign, channel, status, sent_at), newest first;
    * ``campaigns`` — campaign runs the customer was in, with arm (treatment/control);
    * ``tasks`` — follow-up tasks not done yet;
    * ``notes`` — for ``segment``, ``clv`` and ``churn`` when None, why.

    Raises :class:`UnknownCustomer` when the workspace has no such customer."""
    from retentio.services.feedback_tasks import tasks

    customer_id = str(customer_id)
    key = _data_key(ws)
    customer = _customer_row(ws, customer_id, key)
    notes: dict[str, str] = {}
    counts: dict[str, int] = {}
    lists: dict[str, list[dict[str, Any]]] = {}
    order_keys = {"orders": ["ordered_at", "order_id"], "subscriptions": ["started_at", "subscription_id"],
                  "events": ["occurred_at"], "surveys": ["answered_at"], "tickets": ["opened_at"]}
    for table in HISTORY_TABLES:
        counts[table], lists[table] = _history(ws, table, customer_id, order_keys[table], key)
    if counts["orders"] <= len(lists["orders"]):  # every order is on the page: no second query
        stats = _stats_of(lists["orders"])
    else:
        stats = _order_stats(ws, [customer_id], key).get(customer_id, {})
    n_orders, revenue = int(stats.get("orders") or 0), float(stats.get("revenue") or 0.0)
    summary = {"orders": n_orders, "revenue": revenue, "aov": revenue / n_orders if n_orders else None,
               "first_order": stats.get("first_order"), "last_order": stats.get("last_order"),
               "orders_all_statuses": counts["orders"]}

    segment, why = _segment_of(ws, customer_id, as_of, key)
    if segment is None and why:
        notes["segment"] = why

    values = _clv_values(ws, key)
    clv = None
    if values["by_customer"] is None:
        notes["clv"] = values["note"]
    else:
        mine = values["by_customer"].get(customer_id)
        if mine is None:
            notes["clv"] = "not valued: no completed order to value the customer on"
        else:
            clv = {**mine, "model_version": values["model_version"], "horizon": values.get("horizon"),
                   "unit": values.get("unit")}

    churn = None
    snap = _newest_snapshot(ws, as_of)
    if snap is None:
        notes["churn"] = "never scored: no churn score snapshot yet (run `retentio churn score`)"
    else:
        frame = _snapshot_frame(ws, snap)
        hit = frame[frame.customer_id == customer_id]
        if hit.empty:
            notes["churn"] = (f"not in the churn snapshot of {snap.as_of.isoformat()}: only customers active at "
                              "the cutoff are scored")
        else:
            churn = _score_item(next(hit.itertuples(index=False))) | {
                "as_of": snap.as_of.isoformat(), "model_version": snap.model_version, "snapshot_id": snap.id}
            churn.pop("customer_id")

    loyalty, loyalty_notes = _loyalty(ws, customer_id)
    if loyalty_notes:
        notes["loyalty"] = "; ".join(loyalty_notes)
    open_tasks = [_plain(t) for t in tasks(ws, customer=customer_id) if t["status"] != "done"]
    result = {
        "customer_id": customer_id,
        "customer": customer,
        "summary": _plain(summary),
        **lists,
        "counts": counts,
        "segment": segment,
        "clv": clv,
        "churn": churn,
        "loyalty": loyalty,
        "messages": _messages(ws, customer_id),
        "campaigns": _campaigns(ws, customer_id),
        "tasks": open_tasks,
        "notes": notes,
    }
    return _plain(result)


# ------------------------------------------------------------------------------ at risk
def _channels(ws: Workspace, key: tuple[str, str]) -> dict[str, str | None]:
    """Acquisition channel per customer (cached; empty when the data have none)."""

    def compute() -> dict[str, str | None]:
        if not _loaded(ws, key)["customers"]:
            return {}
        t = ws.table("customers")
        if "acquisition_channel" not in t.columns:
            return {}
        frame = t.select(cid=t.customer_id.cast("string"), ch=t.acquisition_channel.cast("string")).to_pandas()
        return {str(c): (None if v is None or v != v else str(v)) for c, v in zip(frame.cid, frame.ch)}

    return _cached(("channels", *key), compute)


def at_risk(ws: Workspace, *, band: str | None = None, segment: str | None = None, channel: str | None = None,
            limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """The customers of the newest churn score snapshot, most value at risk first (then
    the most likely to leave), filtered by churn ``band`` (low, medium, high), RFM
    ``segment`` (as of the end of the data) and ``acquisition_channel``.

    Returns ``{"as_of", "model_version", "snapshot_id", "total", "limit", "offset",
    "bands", "items", "note"}``: ``total`` counts every match, ``bands`` the matches per
    band before the band filter (for tabs), and each item has customer_id, name, email,
    acquisition_channel, segment, probability, score, band, value_at_risk, reasons.
    Without a snapshot ``total`` is 0 and ``note`` says to run ``retentio churn score``."""
    _check_page(limit, offset)
    if band is not None and band not in BANDS:
        raise InvalidParameter("band", band, f"one of {', '.join(BANDS)}")
    out: dict[str, Any] = {"as_of": None, "model_version": None, "snapshot_id": None, "total": 0, "limit": limit,
                           "offset": offset, "bands": dict.fromkeys(BANDS, 0), "items": [], "note": None}
    snap = _newest_snapshot(ws)
    if snap is None:
        return out | {"note": "no churn scores yet: run `retentio churn score` to score the customers"}
    frame = _snapshot_frame(ws, snap)
    out |= {"as_of": snap.as_of.isoformat(), "model_version": snap.model_version, "snapshot_id": snap.id}
    key = _data_key(ws)
    segments = _segments(ws, None, key)
    by_segment = segments["by_customer"] or {}
    if segment is not None:
        from retentio.analytics.segments import SEGMENTS

        if segment not in SEGMENTS:
            raise InvalidParameter("segment", segment, f"one of {', '.join(SEGMENTS)}")
        frame = frame[frame.customer_id.map(lambda c: (by_segment.get(c) or {}).get("segment") == segment)]
    channels = _channels(ws, key)
    if channel is not None:
        frame = frame[frame.customer_id.map(channels.get) == channel]
    counts = frame.band.value_counts()
    out["bands"] = {b: int(counts.get(b, 0)) for b in BANDS}
    if band is not None:
        frame = frame[frame.band == band]
    out["total"] = len(frame)
    page = frame.iloc[offset:offset + limit]
    if page.empty:
        return out
    ids = page.customer_id.tolist()
    t = _customers_table(ws, key)
    t = t.filter(t.customer_id.cast("string").isin(ids))
    who = {r["customer_id"]: r for r in _rows(t.select(customer_id=t.customer_id.cast("string"), name=t["name"],
                                                       email=_column(t, "email")))}
    items = []
    for row in page.itertuples(index=False):
        cid = str(row.customer_id)
        person = who.get(cid, {})
        items.append(_score_item(row) | {"name": person.get("name"), "email": person.get("email"),
                                         "acquisition_channel": channels.get(cid),
                                         "segment": (by_segment.get(cid) or {}).get("segment")})
    out["items"] = items
    return _plain(out)


__all__ = ["UnknownCustomer", "at_risk", "clear_cache", "customer_profile", "search_customers"]


def warm_up(ws: Workspace) -> int:
    """Fill the in-process caches the profile and the at-risk list read (RFM segments, CLV
    values, the newest snapshot): a long-running server calls it once at start, so its
    first visitor does not wait for the whole population's computations. Returns how many
    customers the at-risk list holds."""
    found = at_risk(ws, limit=1)
    sample = found["items"][0]["customer_id"] if found["items"] else None
    if sample is None:
        hits = search_customers(ws, limit=1)["items"]
        sample = hits[0]["customer_id"] if hits else None
    if sample is not None:
        customer_profile(ws, sample)
    return int(found["total"])
