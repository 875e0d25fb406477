"""``apply-orders``: the program's rules run over the orders of a period.

For every member, in time order: releases and expiries due, then per order — a
completed order earns points (or a stamp, or raises the discount card's spend), may
upgrade the tier at once and may pay a referral; a returned (or cancelled) order that
had earned is reversed by the returns policy. At the end of the period (``to``): the
scheduled tier reviews, the discount card's fall-backs, cashback for the periods that
closed, birthday bonuses, membership lapses, and releases and expiries due.

Every operation has a key derived from what caused it (``order:ID``, ``return:ID``,
``cashback:CUSTOMER:2026-03``, ``tier_review:CUSTOMER:DATE`` …), so running the same
period twice changes nothing, and a run killed midway and started again ends with the
same ledger as one uninterrupted run: members are processed in batches, each batch
one transaction, and a batch that committed is skipped key by key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from retentio.actions.loyalty import book, rules
from retentio.actions.loyalty.book import Member
from retentio.actions.loyalty.ledger import Batch, Ledger, Op, expiry_of

if TYPE_CHECKING:
    from retentio.actions.loyalty.programs import Program


@dataclass(frozen=True)
class OrderInputs:
    """What ``apply-orders`` reads (frames from the analytics engine).

    ``orders``: order_id, customer_id, ordered_at, amount, status (completed, returned,
    cancelled; missing = completed) — every order the cashback periods need, from the
    start of ``from_``'s period. ``categories``: order_id, category, amount (optional).
    ``customers``: customer_id, birth_date (optional). ``events``: customer_id,
    occurred_at, event_type (optional). ``segments``: customer → RFM segment."""

    orders: pd.DataFrame
    categories: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    segments: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ApplyResult:
    orders: int = 0
    members: int = 0
    operations: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"orders": self.orders, "members": self.members, "operations": self.operations,
                "batches": self.batches, **self.counts}


def _ts(value: Any) -> dt.datetime:
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


class _Run:
    """One batch's work on its members."""

    def __init__(self, batch: Batch, program: Program, known: set[str], inputs: OrderInputs):
        self.batch, self.program, self.known, self.inputs = batch, program, known, inputs

    # ----------------------------------------------------------------- helpers
    def done(self, key: str) -> bool:
        return key in self.known or key in self.batch.keys

    def add(self, op: Op) -> None:
        self.batch.add(op)

    def earn(self, m: Member, key: str, points: int, at: dt.datetime, *, source: str, order_id: str | None = None,
             spend: float = 0.0, pending: bool = False, reason: str = "") -> None:
        if points <= 0 or self.done(key):
            return
        p = self.program
        ready = at + dt.timedelta(days=p.earn.pending_days) if pending and p.earn.pending_days else None
        expires = expiry_of(p, at)
        if p.kind == "stamps" and p.stamps is not None and p.stamps.period_days:
            if m.card_started_at is None:
                m.card_started_at, m.dirty = at, True
            expires = m.card_started_at + dt.timedelta(days=p.stamps.period_days)
        lot_id = f"{p.name}:{key}"
        lines = book.earn(m, lot_id, points, at, source=source, available_at=ready, expires_at=expires,
                          order_id=order_id, spend=spend)
        self.add(Op(key, "earn", m.customer_id, {"customer": m.customer_id, "points": points, "order": order_id},
                    {"customer": m.customer_id, "earned": points, "lot": lot_id}, at, lines,
                    reason=reason or source, order_id=order_id))

    def settle(self, m: Member, at: dt.datetime) -> None:
        self.batch.settle(m, at)

    # ----------------------------------------------------------------- per order
    def order(self, m: Member, row: tuple[str, dt.datetime, float, str], categories: Mapping[str, float] | None,
              from_: dt.datetime) -> None:
        p = self.program
        order_id, at, amount, status = row
        self.settle(m, at)
        self.housekeeping(m, at)
        if status != "completed":
            self.reverse(m, order_id, at)
            return
        if at < from_ or at < m.joined_at:
            return  # outside the period, or before the customer joined
        if self.done(f"order:{order_id}") or f"order:{order_id}" in self.batch.event_keys:
            return  # acted on by an earlier run (its earning, or the discount card's spend)
        if p.kind == "points":
            points = rules.order_points(p, amount, at, categories=categories,
                                        segment=self.inputs.segments.get(m.customer_id),
                                        tier_multiplier=rules.earn_multiplier(p, m))
            self.earn(m, f"order:{order_id}", points, at, source="order", order_id=order_id, spend=amount,
                      pending=True)
            self.tier_upgrade(m, at, order_id)
            self.referral(m, at, order_id)
        elif p.kind == "stamps":
            if rules.stamp_qualifies(p, amount, categories):
                self.earn(m, f"order:{order_id}", 1, at, source="order", order_id=order_id, spend=amount)
                self.stamp_reward(m, at, order_id)
        elif p.kind == "discount":
            self.discount_purchase(m, at, order_id, amount)
        if m.last_purchase_at is None or at > m.last_purchase_at:
            m.last_purchase_at, m.dirty = at, True

    def reverse(self, m: Member, order_id: str, at: dt.datetime) -> None:
        key = f"return:{order_id}"
        lot = next((x for x in m.lots if x.order_id == order_id and x.source == "order"), None)
        if lot is None or lot.reversed or self.done(key):
            return
        lines, result = book.reverse(m, lot, at, self.program.returns.policy)
        self.add(Op(key, "reverse", m.customer_id, {"customer": m.customer_id, "order": order_id},
                    {"customer": m.customer_id, "order": order_id, **result}, at, lines, reason="order returned",
                    order_id=order_id))

    def tier_upgrade(self, m: Member, at: dt.datetime, order_id: str) -> None:
        p = self.program
        if p.tiers is None:
            return
        current = rules.tier_of(p, m.tier)
        qualifies = rules.tier_index(p, rules.qualifying(p, m.lots, at))
        if qualifies > current:
            new = p.tiers.levels[qualifies].name
            self.batch.event(m.customer_id, "tier_up", m.tier, new, f"tier_up:{order_id}", at,
                             {"qualifying": rules.qualifying(p, m.lots, at)})
            m.tier, m.dirty = new, True

    def referral(self, m: Member, at: dt.datetime, order_id: str) -> None:
        p = self.program
        if p.referral is None or not m.referred_by or m.state.get("referral_rewarded"):
            return
        m.state = {**m.state, "referral_rewarded": order_id}
        m.dirty = True
        self.earn(m, f"referral:{m.customer_id}:referee", p.referral.referee_points, at, source="referral",
                  reason=f"referred by {m.referred_by}")
        key = f"referral:{m.customer_id}:referrer"
        if p.referral.referrer_points and not self.done(key) and self.batch.find(key) is None:
            self.batch.load([m.referred_by])
            referrer = self.batch.members.get(m.referred_by)
            if referrer is not None:
                self.settle(referrer, at)
                self.earn(referrer, key, p.referral.referrer_points, at, source="referral",
                          reason=f"referred {m.customer_id}")
        self.batch.event(m.customer_id, "referral", m.referred_by, m.customer_id, f"referral:{m.customer_id}", at,
                         {"order": order_id})

    def stamp_reward(self, m: Member, at: dt.datetime, order_id: str) -> None:
        p = self.program
        assert p.stamps is not None
        key = f"reward:{order_id}"
        if m.available < p.stamps.required or self.done(key):
            return
        lines, lots = book.take(m, p.stamps.required, at, to="redeemed", unit="stamps")
        self.add(Op(key, "reward", m.customer_id, {"customer": m.customer_id, "order": order_id},
                    {"customer": m.customer_id, "reward": p.stamps.reward, "lots": lots}, at, lines,
                    reason=p.stamps.reward, order_id=order_id))
        self.batch.event(m.customer_id, "stamp_reward", p.stamps.required, p.stamps.reward, key, at,
                         {"order": order_id})
        m.card_started_at, m.dirty = None, True

    def discount_purchase(self, m: Member, at: dt.datetime, order_id: str, amount: float) -> None:
        p = self.program
        assert p.discount is not None
        if not p.discount.levels:
            return
        before = m.discount_level if m.discount_level is not None else -1
        if p.discount.basis == "lifetime":
            m.spend += amount
            level = max(before, rules.discount_level_by_spend(p, m.spend))
        else:
            purchases = [(t, a) for t, a in m.state.get("purchases", [])
                         if dt.datetime.fromisoformat(t) > at - dt.timedelta(days=365)]
            purchases.append((at.isoformat(), amount))
            m.state = {**m.state, "purchases": purchases}
            m.spend = sum(a for _, a in purchases)
            level = rules.discount_level_by_spend(p, m.spend)
        m.state = {**m.state, "fallbacks": 0}
        self.batch.event(m.customer_id, "spend", None, round(m.spend, 2), f"order:{order_id}", at,
                         {"amount": amount})
        if level != before:
            self.batch.event(m.customer_id, "discount_level", before, level, f"discount_level:{order_id}", at,
                             {"spend": round(m.spend, 2)})
        m.discount_level, m.dirty = level, True

    # ----------------------------------------------------------------- time-driven
    def housekeeping(self, m: Member, at: dt.datetime) -> None:
        """What the passing of time does by ``at``: tier reviews, discount fall-backs,
        membership lapses."""
        p = self.program
        if p.tiers is not None:
            if m.tier is None:
                m.tier, m.tier_reviewed_at, m.dirty = p.tiers.levels[0].name, m.joined_at, True
            step = dt.timedelta(days=p.tiers.review_days)
            while m.tier_reviewed_at is not None and m.tier_reviewed_at + step <= at:
                when = m.tier_reviewed_at + step
                current = rules.tier_of(p, m.tier)
                qualifies = rules.tier_index(p, rules.qualifying(p, m.lots, when))
                new = rules.after_review(p.tiers.downgrade, current, qualifies)
                if new != current:
                    self.batch.event(m.customer_id, "tier_down" if new < current else "tier_up", m.tier,
                                     p.tiers.levels[new].name, f"tier_review:{m.customer_id}:{when.date()}", when,
                                     {"qualifying": rules.qualifying(p, m.lots, when), "policy": p.tiers.downgrade})
                    m.tier = p.tiers.levels[new].name
                m.tier_reviewed_at, m.dirty = when, True
        if p.discount is not None and p.discount.levels and p.discount.fallback_days:
            due = rules.fallbacks_due(p, m.last_purchase_at, at)
            applied = int(m.state.get("fallbacks", 0))
            for k in range(applied, due):
                level = m.discount_level if m.discount_level is not None else -1
                if level < 0:
                    break
                assert m.last_purchase_at is not None
                when = m.last_purchase_at + dt.timedelta(days=p.discount.fallback_days * (k + 1))
                self.batch.event(m.customer_id, "discount_level", level, level - 1,
                                 f"fallback:{m.customer_id}:{m.last_purchase_at.isoformat()}:{k + 1}", when,
                                 {"days_without_purchase": p.discount.fallback_days * (k + 1)})
                m.discount_level = level - 1
                if p.discount.basis == "lifetime":
                    m.spend = p.discount.levels[level - 1].threshold if level >= 1 else 0.0
                m.dirty = True
            if due > applied:
                m.state = {**m.state, "fallbacks": due}
                m.dirty = True
        if p.membership is not None and m.member_until is not None:
            end = m.member_until + dt.timedelta(days=p.membership.grace_days)
            if end < at and m.state.get("lapsed") != m.member_until.isoformat():
                self.batch.event(m.customer_id, "membership_lapsed", m.member_until.date(), None,
                                 f"lapse:{m.customer_id}:{m.member_until.isoformat()}", end, {})
                m.state = {**m.state, "lapsed": m.member_until.isoformat()}
                m.dirty = True

    def period_end(self, m: Member, to: dt.datetime, spend: pd.Series | None, birth: Any,
                   from_: dt.datetime) -> None:
        p = self.program
        self.settle(m, to)
        self.housekeeping(m, to)
        if p.cashback is not None and spend is not None:
            for start, value in spend.items():
                start = pd.Timestamp(start).to_pydatetime()
                end = rules.next_period(start, p.cashback.period)
                if end > to or end <= m.joined_at:
                    continue
                points = rules.cashback_points(p, float(value))
                self.earn(m, f"cashback:{m.customer_id}:{start.date()}", points, end, source="cashback",
                          reason=f"cashback for the {p.cashback.period} from {start.date()}")
        if p.earn.birthday and birth is not None and not pd.isna(birth):
            born = pd.Timestamp(birth)
            for year in range(from_.year, to.year + 1):
                try:
                    day = dt.datetime(year, born.month, born.day)
                except ValueError:  # 29 February in a common year
                    day = dt.datetime(year, 3, 1)
                if from_ <= day < to and day >= m.joined_at:
                    self.settle(m, day)
                    self.earn(m, f"birthday:{m.customer_id}:{year}", p.earn.birthday, day, source="birthday",
                              reason="birthday")
        self.settle(m, to)


def _rows_by_customer(customers: pd.Series, *columns: pd.Series) -> dict[str, list[tuple]]:
    """Per customer, the rows as plain tuples (Python datetimes, floats, strings): the
    per-order loop then touches no pandas objects, which is what made it slow."""
    out: dict[str, list[tuple]] = {}
    values = [c.dt.to_pydatetime().tolist() if pd.api.types.is_datetime64_any_dtype(c) else c.tolist()
              for c in columns]
    for customer, *row in zip(customers.astype(str).tolist(), *values):
        out.setdefault(customer, []).append(tuple(row))
    return out


def _chunk_rows(act_on: pd.DataFrame, spans: list[tuple[int, int]]) -> dict[str, list[tuple]]:
    """A batch's orders per customer, as tuples; its customers' rows are one slice of
    ``act_on`` (both are sorted by customer)."""
    if not spans:
        return {}
    part = act_on.iloc[spans[0][0]:spans[-1][1]]
    return _rows_by_customer(part["customer_id"], part["order_id"], part["ordered_at"],
                             part["amount"].astype(float), part["status"])


def apply_orders(ledger: Ledger, inputs: OrderInputs, from_: dt.datetime, to: dt.datetime, *,
                 batch_size: int = 2000, progress: Callable[[int, int], None] | None = None) -> ApplyResult:
    """Run the program over ``inputs`` for orders in ``[from_, to)`` (see the module
    docstring); one transaction per batch of ``batch_size`` members."""
    from sqlalchemy import select

    from retentio.data.store.loyalty_tables import LoyaltyAccount

    program = ledger.program
    orders = inputs.orders
    status = orders["status"] if "status" in orders else pd.Series("completed", index=orders.index)
    orders = orders.assign(status=status.fillna("completed"), customer_id=orders["customer_id"].astype(str),
                           order_id=orders["order_id"].astype(str))
    orders = orders[orders["ordered_at"] < to].sort_values(["customer_id", "ordered_at", "order_id"], kind="stable")
    in_period = orders[orders["ordered_at"] >= from_]
    # a status change (a return) of an older order is acted on too: it reverses what it earned
    with ledger.store.session() as s:
        accounts = dict(s.execute(select(LoyaltyAccount.customer_id, LoyaltyAccount.joined_at)
                                  .where(LoyaltyAccount.program == program.name)).all())
    if program.enrolment == "all":
        completed = in_period[in_period["status"] == "completed"]
        first = completed.groupby("customer_id")["ordered_at"].min()
        joins = {c: _ts(t) for c, t in first.items() if c not in accounts}
    else:
        joins = {}
    customers = sorted(set(accounts) | set(joins))
    act_on = orders[orders["customer_id"].isin(customers)]
    # orders before the period matter only if their status is no longer "completed" (returns)
    act_on = act_on[(act_on["ordered_at"] >= from_) | (act_on["status"] != "completed")]
    act_on = act_on[["customer_id", "order_id", "ordered_at", "amount", "status"]].reset_index(drop=True)
    # one customer's rows are contiguous (sorted by customer): a batch turns only its own slice
    # into tuples, so memory holds the frame, not one tuple per order
    firsts = act_on["customer_id"].drop_duplicates(keep="first")
    lasts = act_on["customer_id"].drop_duplicates(keep="last")
    spans = dict(zip(firsts.tolist(), zip(firsts.index.tolist(), (lasts.index + 1).tolist())))
    categories: dict[str, dict[str, float]] = {}
    if inputs.categories is not None and not inputs.categories.empty:
        cats = inputs.categories[inputs.categories["order_id"].astype(str).isin(set(act_on["order_id"]))]
        for (order, cat), value in cats.groupby([cats["order_id"].astype(str), "category"])["amount"].sum().items():
            categories.setdefault(order, {})[str(cat)] = float(value)
    spend_by: dict[str, pd.Series] = {}
    if program.cashback is not None:
        done = orders[orders["status"] == "completed"]
        freq = {"month": "M", "quarter": "Q", "year": "Y"}[program.cashback.period]
        starts = done["ordered_at"].dt.to_period(freq).dt.start_time
        sums = done.assign(start=starts).groupby(["customer_id", "start"])["amount"].sum()
        spend_by = {str(c): g.droplevel(0) for c, g in sums.groupby(level=0)}
    births: dict[str, Any] = {}
    if inputs.customers is not None and "birth_date" in inputs.customers:
        births = dict(zip(inputs.customers["customer_id"].astype(str), inputs.customers["birth_date"]))
    e = _event_rows(program, inputs.events, from_, to)
    events = _rows_by_customer(e["customer_id"], e["event_type"], e["occurred_at"])
    result = ApplyResult(orders=int(len(in_period[in_period["customer_id"].isin(customers)])),
                         members=len(customers))

    def work(chunk: list[str]) -> Callable[[Batch], dict[str, int]]:
        def run(batch: Batch) -> dict[str, int]:
            by_customer = _chunk_rows(act_on, [spans[c] for c in chunk if c in spans])
            undone = [row[0] for c in chunk for row in by_customer.get(c, ()) if row[3] != "completed"]
            batch.load([c for c in chunk if c in accounts], since=from_, orders=undone)
            batch.load([c for c in chunk if c not in accounts], create_at={c: joins[c] for c in chunk if c in joins})
            # the keys this batch could write, looked up (not every key its members ever had)
            ops, marks = [], []
            for c in chunk:
                ops += [f"welcome:{c}", f"referral:{c}:referee"]
                for row in by_customer.get(c, ()):
                    ops += [f"order:{row[0]}", f"return:{row[0]}", f"reward:{row[0]}"]
                    marks += [f"order:{row[0]}", f"tier_up:{row[0]}", f"discount_level:{row[0]}",
                              f"reward:{row[0]}"]
                ops += [f"event:{c}:{r[0]}:{r[1].isoformat()}" for r in events.get(c, ())]
                if c in spend_by:
                    ops += [f"cashback:{c}:{pd.Timestamp(t).date()}" for t in spend_by[c].index]
                ops += [f"birthday:{c}:{y}" for y in range(from_.year, to.year + 1)]
                marks += [f"join:{c}", f"referral:{c}"]
            known = batch.known(ops)
            batch.event_keys.update(batch.known_events(marks))
            worker = _Run(batch, program, known, inputs)
            for c in chunk:
                m = batch.members.get(c)
                if m is None:
                    continue
                if program.earn.welcome and program.kind == "points":
                    worker.earn(m, f"welcome:{c}", program.earn.welcome, m.joined_at, source="welcome",
                                reason="welcome bonus")
                rows = by_customer.get(c)
                timeline = _timeline(rows, events.get(c))
                for kind, row in timeline:
                    if kind == "order":
                        worker.order(m, row, categories.get(row[0]), from_)
                    else:
                        event_type, at = row[0], row[1]
                        worker.settle(m, at)
                        worker.earn(m, f"event:{c}:{event_type}:{at.isoformat()}", program.earn.events[event_type],
                                    at, source="event", reason=str(event_type))
                worker.period_end(m, to, spend_by.get(c), births.get(c), from_)
            counts: dict[str, int] = {}  # per attempt: a retried transaction starts again
            for op in batch.ops:
                counts[op.kind] = counts.get(op.kind, 0) + 1
            return counts

        return run

    chunks = [customers[i:i + batch_size] for i in range(0, len(customers), batch_size)]
    for i, chunk in enumerate(chunks):
        for kind, ops in ledger.transaction(work(chunk)).items():
            result.counts[kind] = result.counts.get(kind, 0) + ops
            result.operations += ops
        if i == 0:
            _analyze(ledger)
        result.batches += 1
        if progress:
            progress(i + 1, len(chunks))
    return result


def _analyze(ledger: Ledger) -> None:
    """Fresh statistics after the first batch on PostgreSQL, so the planner sees the
    loyalty tables' real sizes (on a new store it otherwise plans for empty tables for
    the rest of the run)."""
    if ledger.store.engine.dialect.name != "postgresql":
        return
    with ledger.store.engine.connect() as c:
        c.exec_driver_sql("ANALYZE loyalty_operations, loyalty_entries, loyalty_lots, loyalty_accounts, loyalty_events")
        c.commit()


def _event_rows(program: Program, events: pd.DataFrame | None, from_: dt.datetime, to: dt.datetime) -> pd.DataFrame:
    if events is None or events.empty or not program.earn.events:
        return pd.DataFrame(columns=["customer_id", "occurred_at", "event_type"])
    e = events[events["event_type"].isin(list(program.earn.events)) & (events["occurred_at"] >= from_)
               & (events["occurred_at"] < to)]
    return e.assign(customer_id=e["customer_id"].astype(str))


def _timeline(orders: list[tuple] | None, events: list[tuple] | None) -> list[tuple[str, tuple]]:
    """A member's orders (order_id, at, amount, status) and point-earning events
    (event_type, at) in time order, orders first on ties."""
    if not events:
        return [("order", r) for r in orders or []]
    items = [(r[1], 0, "order", r) for r in orders or []] + [(r[1], 1, "event", r) for r in events]
    items.sort(key=lambda x: (x[0], x[1]))
    return [(kind, row) for _, _, kind, row in items]


__all__ = ["ApplyResult", "OrderInputs", "apply_orders"]
