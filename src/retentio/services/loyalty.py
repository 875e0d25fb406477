"""Loyalty use cases: programs (add, list, show), the ledger's requests (earn, redeem,
adjust, transfer, balance, history, expire, check), members (join, tier override,
membership payment), ``apply-orders`` over the workspace's orders, and the program's
statistics. Typed parameters in, results out; the rules are in
:mod:`retentio.actions.loyalty`, the records in the store's loyalty tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from retentio.actions.loyalty.ledger import Ledger
from retentio.actions.loyalty.programs import Program, list_programs, loyalty_dir, parse_program, read_program
from retentio.data.errors import RetentioError

if TYPE_CHECKING:
    from retentio.actions.loyalty.orders import ApplyResult
    from retentio.analytics.loyalty_stats import LoyaltyStats, RetentionEffect
    from retentio.data.workspace import Workspace


# ------------------------------------------------------------------------------ programs
def add_program(ws: Workspace, kind: str, name: str, *, force: bool = False) -> Path:
    """Write ``loyalty/NAME.toml``: a commented program of ``kind`` that reads back."""
    from retentio.actions.loyalty.templates import program_text

    text = program_text(kind, name)
    path = loyalty_dir(ws.path) / f"{name}.toml"
    parse_program(text, path, name)
    if path.exists() and not force:
        raise RetentioError(f"{path} exists; nothing was written (choose another name, or replace it on purpose)")
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def program(ws: Workspace, name: str | None = None) -> Program:
    """The program ``name`` (or the workspace's only one)."""
    return read_program(ws.path, name)


def program_summaries(ws: Workspace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in list_programs(ws.path):
        try:
            p = read_program(ws.path, name)
        except RetentioError as exc:
            rows.append({"name": name, "kind": None, "point_value": None, "tiers": None, "expiry": None,
                         "expiry_days": None, "returns": None, "problem": str(exc)})
            continue
        rows.append({"name": name, "kind": p.kind, "point_value": p.point_value,
                     "tiers": ", ".join(t.name for t in p.tiers.levels) if p.tiers else "",
                     "expiry": p.expiry.rule if p.expiry.rule != "days" else f"{p.expiry.days} days",
                     "expiry_days": p.expiry.days if p.expiry.rule == "days" else None,
                     "returns": p.returns.policy, "problem": None})
    return rows


def ledger(ws: Workspace, name: str | None = None, *, actor: str = "cli") -> Ledger:
    """The ledger of a program on the workspace's store."""
    return Ledger(ws.store, program(ws, name), actor=actor)


# ------------------------------------------------------------------------------ members
def contacts(ws: Workspace, customers: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """E-mail and phone of ``customers`` (for the referral guard), when loaded."""
    if not ws.is_loaded("customers"):
        return {}
    t = ws.table("customers")
    cols = [c for c in ("email", "phone") if c in t.columns]
    if not cols:
        return {}
    frame = t.filter(t.customer_id.isin(customers)).select("customer_id", *cols).to_pandas()
    return {str(r.customer_id): (getattr(r, "email", None), getattr(r, "phone", None))
            for r in frame.itertuples(index=False)}


def join(ws: Workspace, customer: str, *, name: str | None = None, referral_code: str | None = None,
         at: dt.datetime | None = None, actor: str = "cli") -> dict[str, Any]:
    """Enrol ``customer`` (with a referral code: guarded against self-referral and a
    second account of the referrer by e-mail or phone)."""
    from retentio.actions.loyalty.members import join as do_join
    from retentio.data.store.loyalty_tables import LoyaltyAccount

    book = ledger(ws, name, actor=actor)
    people = [customer]
    if referral_code:
        from sqlalchemy import select

        with ws.store.session() as s:
            referrer = s.execute(select(LoyaltyAccount.customer_id).where(
                LoyaltyAccount.program == book.program.name,
                LoyaltyAccount.referral_code == referral_code.strip().upper())).scalar_one_or_none()
        if referrer:
            people.append(referrer)
    return do_join(book, customer, at=at, referred_by_code=referral_code, contacts=contacts(ws, people))


# ------------------------------------------------------------------------------ apply-orders
def _frame(ws: Workspace, table: str, columns: list[str], where: Callable[[Any], Any] | None = None) -> pd.DataFrame:
    """Columns of a table (money as float: exact decimals cost seconds per million rows
    to convert, and points are rounded from floats anyway)."""
    t = ws.table(table)
    if where is not None:
        t = t.filter(where(t))
    cols = [t[c].cast("float64").name(c) if t[c].type().is_decimal() else t[c] for c in columns if c in t.columns]
    return t.select(*cols).to_pandas()


def order_inputs(ws: Workspace, p: Program, start: dt.datetime, end: dt.datetime) -> Any:
    """The frames ``apply-orders`` reads from the engine: the orders up to ``end`` that
    may still change the ledger (from the start of the cashback period holding
    ``start``; older orders only when they are no longer completed — returns), item
    categories when a rule needs them, birthdays, events and segments."""
    from retentio.actions.loyalty import rules
    from retentio.actions.loyalty.orders import OrderInputs

    since = rules.period_start(start, p.cashback.period) if p.cashback else start
    orders = _frame(ws, "orders", ["order_id", "customer_id", "ordered_at", "amount", "status"],
                    lambda t: (t.ordered_at < end) & ((t.ordered_at >= since) | (t.status != "completed"))
                    if "status" in t.columns else (t.ordered_at < end) & (t.ordered_at >= since))
    categories = None
    wants_categories = any(m.category for m in p.earn.multipliers) or (p.stamps is not None and p.stamps.category)
    if wants_categories and ws.is_loaded("order_items"):
        categories = _frame(ws, "order_items", ["order_id", "category", "amount"], lambda t: t.category.notnull())
    customers = None
    if p.earn.birthday and ws.is_loaded("customers") and "birth_date" in ws.table("customers").columns:
        customers = _frame(ws, "customers", ["customer_id", "birth_date"], lambda t: t.birth_date.notnull())
    events = None
    if p.earn.events and ws.is_loaded("events"):
        kinds = list(p.earn.events)
        events = _frame(ws, "events", ["customer_id", "occurred_at", "event_type"],
                        lambda t: t.event_type.isin(kinds) & (t.occurred_at >= start) & (t.occurred_at < end))
    segments: dict[str, str] = {}
    if any(m.segment for m in p.earn.multipliers):
        from retentio.analytics.segments import rfm

        table = rfm(ws, as_of=(end - dt.timedelta(days=1)).date())
        segments = dict(zip(table["customer_id"].astype(str), table["segment"].astype(str)))
    return OrderInputs(orders=orders, categories=categories, customers=customers, events=events, segments=segments)


def data_range(ws: Workspace) -> tuple[dt.datetime, dt.datetime]:
    """First order and the day after the last one (the default period)."""
    t = ws.table("orders")
    row = t.aggregate(first=t.ordered_at.min(), last=t.ordered_at.max()).to_pandas().iloc[0]
    if pd.isna(row["first"]):
        raise RetentioError("no orders are loaded (retentio load orders FILE)")
    last = pd.Timestamp(row["last"]).normalize() + pd.Timedelta(days=1)
    return pd.Timestamp(row["first"]).normalize().to_pydatetime(), last.to_pydatetime()


def apply_orders(ws: Workspace, *, name: str | None = None, start: dt.date | None = None,
                 end: dt.date | None = None, batch_size: int = 2000, actor: str = "apply-orders",
                 progress: Callable[[int, int], None] | None = None) -> ApplyResult:
    """Run the program over the orders of ``[start, end]`` (days, inclusive; default: all
    the data) — earning, returns, stamps, tiers, cashback; a repeat changes nothing."""
    from retentio.actions.loyalty.orders import apply_orders as run

    first, after_last = data_range(ws)
    since = dt.datetime.combine(start, dt.time()) if start else first
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time()) if end else after_last
    if until <= since:
        raise RetentioError(f"--to ({until.date() - dt.timedelta(days=1)}) is before --from ({since.date()})")
    book = ledger(ws, name, actor=actor)
    return run(book, order_inputs(ws, book.program, since, until), since, until, batch_size=batch_size,
               progress=progress)


# ------------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class StatsResult:
    program: str
    stats: LoyaltyStats
    effect: RetentionEffect | None
    point_value: float = 0.01

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``periods`` (rows), ``totals`` and ``effect`` (with its balance rows)."""
        import dataclasses
        import math

        def clean(v: Any) -> Any:
            if isinstance(v, float) and math.isnan(v):
                return None
            if isinstance(v, pd.Timestamp):
                return v.date().isoformat()
            if hasattr(v, "item"):
                return clean(v.item())
            return v

        def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: clean(v) for k, v in row.items()} for row in df.to_dict("records")]

        out: dict[str, Any] = {"program": self.program, "point_value": self.point_value}
        totals: dict[str, Any] = {}
        for f in dataclasses.fields(self.stats):
            v = getattr(self.stats, f.name)
            if isinstance(v, pd.DataFrame):
                out[f.name] = rows(v)
            else:
                totals[f.name] = {k: clean(x) for k, x in v.items()} if isinstance(v, dict) else clean(v)
        out["totals"] = totals
        if self.effect is not None:
            out["effect"] = {f.name: rows(getattr(self.effect, f.name))
                             if isinstance(getattr(self.effect, f.name), pd.DataFrame)
                             else clean(getattr(self.effect, f.name)) for f in dataclasses.fields(self.effect)}
        return out


def ledger_frames(ws: Workspace, p: Program) -> dict[str, pd.DataFrame]:
    """The store's loyalty tables as frames for :mod:`retentio.analytics.loyalty_stats`."""
    from sqlalchemy import select

    from retentio.data.store.loyalty_tables import LoyaltyAccount, LoyaltyEntry, LoyaltyEvent

    with ws.store.session() as s:
        conn = s.connection()
        movements = pd.read_sql(select(LoyaltyEntry.at, LoyaltyEntry.customer_id, LoyaltyEntry.kind,
                                       LoyaltyEntry.account.label("bucket"), LoyaltyEntry.amount).where(
            LoyaltyEntry.program == p.name, LoyaltyEntry.account.in_(("available", "pending"))), conn)
        members = pd.read_sql(select(LoyaltyAccount.customer_id, LoyaltyAccount.joined_at,
                                     LoyaltyAccount.tier, LoyaltyAccount.tier_override).where(
            LoyaltyAccount.program == p.name), conn)
        events = pd.read_sql(select(LoyaltyEvent.at, LoyaltyEvent.customer_id, LoyaltyEvent.kind,
                                    LoyaltyEvent.from_value, LoyaltyEvent.to_value).where(
            LoyaltyEvent.program == p.name), conn)
        stamp_expiries = pd.read_sql(select(LoyaltyEntry.customer_id, LoyaltyEntry.at).where(
            LoyaltyEntry.program == p.name, LoyaltyEntry.kind == "expire",
            LoyaltyEntry.account == "available"), conn) if p.kind == "stamps" else pd.DataFrame()
    movements["amount"] = movements["amount"].astype("int64")
    movements["at"] = pd.to_datetime(movements["at"])
    members["joined_at"] = pd.to_datetime(members["joined_at"])
    members["tier"] = members["tier_override"].where(members["tier_override"].notna(), members["tier"])
    events["at"] = pd.to_datetime(events["at"])
    tiers = events[events["kind"].isin(["tier_up", "tier_down", "tier_override"])]
    tier_changes = pd.DataFrame({"at": tiers["at"], "customer_id": tiers["customer_id"],
                                 "from_tier": tiers["from_value"], "to_tier": tiers["to_value"],
                                 "direction": tiers["kind"].str.removeprefix("tier_")})
    rewards = events[events["kind"] == "stamp_reward"]
    cards = pd.DataFrame({"customer_id": rewards["customer_id"], "started_at": rewards["at"],
                          "stamps": p.stamps.required if p.stamps else 0,
                          "required": p.stamps.required if p.stamps else 0, "completed": True})
    if not stamp_expiries.empty and p.stamps is not None:
        lapsed = stamp_expiries.drop_duplicates(["customer_id", "at"])
        cards = pd.concat([cards, pd.DataFrame({"customer_id": lapsed["customer_id"],
                                                "started_at": pd.to_datetime(lapsed["at"]), "stamps": 0,
                                                "required": p.stamps.required, "completed": False})],
                          ignore_index=True)
    return {"movements": movements, "members": members[["customer_id", "joined_at", "tier"]],
            "tier_changes": tier_changes, "stamp_cards": cards}


def stats(ws: Workspace, *, name: str | None = None, period: str = "month", as_of: dt.date | None = None,
          effect: bool = True, window_days: int = 90) -> StatsResult:
    """How the program performs (see :func:`retentio.analytics.loyalty_stats.program_stats`)
    and, with ``effect``, its effect on retention against matched non-members."""
    from retentio.analytics.loyalty_stats import program_stats, retention_effect

    p = program(ws, name)
    frames = ledger_frames(ws, p)
    orders = _frame(ws, "orders", ["order_id", "customer_id", "ordered_at", "amount", "status", "discount"])
    for column in ("amount", "discount"):
        if column in orders:
            orders[column] = orders[column].astype(float)
    orders["customer_id"] = orders["customer_id"].astype(str)
    end = pd.Timestamp(as_of) if as_of else pd.Timestamp(data_range(ws)[1]) - pd.Timedelta(days=1)
    tier_order = [t.name for t in p.tiers.levels] if p.tiers else []
    result = program_stats(frames["movements"], frames["members"], frames["tier_changes"], frames["stamp_cards"],
                           orders, point_value=p.point_value, tier_order=tier_order, period=period, as_of=end)
    measured = retention_effect(frames["members"], orders, as_of=end, window_days=window_days) if effect else None
    return StatsResult(p.name, result, measured, p.point_value)




# ------------------------------------------------------------------------------ a member across programs
def is_customer(ws: Workspace, customer: str) -> bool:
    """Whether ``customer`` is a loaded customer (or, without a customers table, has an
    order, or a loyalty account)."""
    from sqlalchemy import select

    from retentio.data.store.loyalty_tables import LoyaltyAccount

    for table in ("customers", "orders"):
        if ws.is_loaded(table):
            t = ws.table(table)
            if t.filter(t.customer_id.cast("string") == str(customer)).count().to_pyarrow().as_py() > 0:
                return True
            if table == "customers":
                break
    with ws.store.session() as s:
        return s.execute(select(LoyaltyAccount.id).where(LoyaltyAccount.customer_id == str(customer)).limit(1)
                         ).first() is not None


def member_programs(ws: Workspace, customer: str) -> list[str]:
    """The programs (of the workspace's files) ``customer`` has an account in."""
    from sqlalchemy import select

    from retentio.data.store.loyalty_tables import LoyaltyAccount

    with ws.store.session() as s:
        names = set(s.execute(select(LoyaltyAccount.program).where(
            LoyaltyAccount.customer_id == str(customer))).scalars())
    return [n for n in list_programs(ws.path) if n in names]


def member_balances(ws: Workspace, customer: str) -> list[dict[str, Any]]:
    """The member's balance in each program they belong to (see :meth:`Ledger.balance`)."""
    return [ledger(ws, name).balance(str(customer)) for name in member_programs(ws, customer)]


def member_history(ws: Workspace, customer: str, program_name: str | None = None) -> list[dict[str, Any]]:
    """The member's entries and state events in every program (or one), newest first,
    each with its ``program``."""
    names = [program(ws, program_name).name] if program_name else member_programs(ws, customer)
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for name in names:
        # oldest first per program (entries by time, then id): the position breaks ties in time
        rows += [(r["at"], i, {"program": name, **r})
                 for i, r in enumerate(ledger(ws, name).history(str(customer)))]
    return [r for _, _, r in sorted(rows, key=lambda x: (x[0], x[1]), reverse=True)]


# ------------------------------------------------------------------------------ the demo
#: the demo shop's program: 5 points per currency unit at 0.01 (5 % back), tiers by 12 months' spend
DEMO_PROGRAM = """# The demo shop's bonus program (written by `retentio demo`).
kind = "points"
description = "5 % back in points, three tiers"
point_value = 0.01
# customers join at the till (the demo: half of those who come back, on their second order)
enrolment = "join"

[earn]
per_amount = 5
rounding = "floor"
pending_days = 14
welcome = 100
birthday = 200

[redeem]
max_share = 0.3
min_points = 100

[expiry]
rule = "days"
days = 365

[returns]
policy = "other_lots"

[tiers]
basis = "spend"
window_days = 365
review_days = 90
downgrade = "one_level"
levels = [
  { name = "Bronze", threshold = 0 },
  { name = "Silver", threshold = 150, discount_pct = 3, earn_multiplier = 1.25 },
  { name = "Gold", threshold = 400, discount_pct = 5, earn_multiplier = 1.5, free_shipping = true },
]
"""


def demo_loyalty(ws: Workspace, *, seed: int = 7, name: str = "club",
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Give the demo shop a points program with a history: the program over the orders
    month by month, and after each month a tenth of the members with 500 points or
    more redeem 30–100 % of them (in hundreds) — so earning, pending points,
    redemptions, expiries, returns and tier moves all appear in ``stats`` and the report."""
    import dataclasses

    import numpy as np

    from retentio.actions.loyalty.orders import apply_orders as run

    path = loyalty_dir(ws.path) / f"{name}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(DEMO_PROGRAM, encoding="utf-8")
    book = ledger(ws, name, actor="demo")
    first, end = data_range(ws)
    inputs = order_inputs(ws, book.program, first, end)
    rng = np.random.default_rng(seed)
    joins = _demo_joins(inputs.orders, rng)
    step = pd.Timestamp(first).to_period("M").start_time.to_pydatetime()
    totals = {"redeemed": 0, "operations": 0}
    while step < end:
        nxt = min((pd.Timestamp(step) + pd.offsets.MonthBegin(1)).to_pydatetime(), end)
        if progress:
            progress(f"loyalty {step.date()}")
        joining = {c: t for c, t in joins.items() if step <= t < nxt}
        if joining:
            def enrol(batch: Any, joining: dict[str, dt.datetime] = joining) -> None:
                batch.load(sorted(joining), create_at=joining)

            book.transaction(enrol)
        # a return becomes known about ten days after the order: until then it earned as completed
        late = (inputs.orders["ordered_at"] >= nxt - dt.timedelta(days=10)) & (inputs.orders["status"] == "returned")
        seen = dataclasses.replace(inputs, orders=inputs.orders.assign(
            status=inputs.orders["status"].where(~late, "completed")))
        totals["operations"] += run(book, seen, step, nxt, batch_size=5000).operations
        if nxt < end:
            totals["redeemed"] += _demo_redemptions(book, nxt, rng)
        step = nxt
    return totals


def _demo_joins(orders: pd.DataFrame, rng: Any) -> dict[str, dt.datetime]:
    """Half of the customers who order a second time join just before that order."""
    done = orders[orders["status"] == "completed"].sort_values(["customer_id", "ordered_at"])
    frame = done[done.groupby("customer_id").cumcount() == 1]
    pick = rng.random(len(frame)) < 0.5
    return {str(c): (pd.Timestamp(t) - pd.Timedelta(minutes=1)).to_pydatetime()
            for c, t in zip(frame["customer_id"][pick], frame["ordered_at"][pick])}


def _demo_redemptions(book: Ledger, at: dt.datetime, rng: Any) -> int:
    from sqlalchemy import select

    from retentio.data.store.loyalty_tables import LoyaltyAccount

    with book.store.session() as s:
        rows = s.execute(select(LoyaltyAccount.customer_id, LoyaltyAccount.available).where(
            LoyaltyAccount.program == book.program.name, LoyaltyAccount.available >= 500)).all()
    requests = []
    for customer, available in rows:
        if rng.random() < 0.1:
            points = int(available * rng.uniform(0.3, 1.0)) // 100 * 100
            when = at - dt.timedelta(hours=float(rng.uniform(1, 12)))
            if points >= 100:
                requests.append((customer, points, f"demo-redeem:{customer}:{at.date()}", when))
    return book.redeem_many(requests, reason="paid part of an order")["redeemed"]


__all__ = ["DEMO_PROGRAM", "StatsResult", "add_program", "apply_orders", "contacts", "data_range", "demo_loyalty", "join",
           "is_customer", "ledger", "ledger_frames", "member_balances", "member_history",
           "member_programs", "order_inputs", "program", "program_summaries", "stats"]
