"""The loyalty ledger on the store: earn, redeem, adjust, transfer, reverse, expire,
balance and history, each in one transaction, idempotent by key, safe under concurrency.

How a request is made safe (see SQLAlchemy's "Session Basics — managing transactions"
and PostgreSQL's "Explicit Locking"):

* **Idempotency.** Every request carries a key, unique per program in
  ``loyalty_operations``. The member's account row is locked first, then the key is
  looked up: a repeat finds it and returns the stored result, writing nothing; the same
  key with a different request (its SHA-256 differs) is refused. Two processes sending
  one key at once queue on the account lock, so the second sees the first's row; the
  unique constraint is the last guard (an integrity error retries the transaction, which
  then finds the row).
* **No overdraft.** The account row is the lock: ``SELECT … FOR UPDATE`` on PostgreSQL;
  SQLite's ``BEGIN IMMEDIATE`` (set on every store transaction) serialises writers.
  The balance is checked under the lock; the account's CHECK constraint
  (``available >= 0`` unless the program allows negative balances) would reject an
  overdraft that slipped past the code. Serialisation failures and deadlocks are retried.
* **Sums.** Expiry and the release of pending points are posted as their own entries
  (keys ``expire:LOT`` and ``release:LOT``) before any request that reads the balance,
  so the ledger always sums to the balance the account row caches; :meth:`Ledger.check`
  verifies it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retentio.actions.loyalty import book
from retentio.actions.loyalty.book import LedgerError, Lot, Member, Posting
from retentio.actions.loyalty.programs import Program

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from retentio.data.store import Store

#: PostgreSQL's serialization_failure and deadlock_detected: the transaction is retried
_RETRY_SQLSTATES = ("40001", "40P01")


#: key prefixes of the operations the ledger and apply-orders write themselves
SYSTEM_KEYS = ("release:", "expire:", "order:", "return:", "reward:", "welcome:", "birthday:", "cashback:",
               "referral:", "event:")


class KeyConflict(LedgerError):
    """The same idempotency key with a different request."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def now_naive() -> dt.datetime:
    """Business time of a request made now (naive UTC, like the ledger's ``at``)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Op:
    """One operation to write: its key, request, result, lines and state events."""

    key: str
    kind: str
    customer_id: str
    request: dict[str, Any]
    result: dict[str, Any]
    at: dt.datetime
    postings: list[Posting] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    order_id: str | None = None


class Batch:
    """Members loaded (and locked) in one transaction, the operations made on them, and
    their writing at the end. Used by every request and by ``apply-orders``."""

    def __init__(self, session: Session, program: Program, actor: str):
        self.session, self.program, self.actor = session, program, actor
        self.members: dict[str, Member] = {}
        self.ops: list[Op] = []
        self.keys: set[str] = set()
        self.event_keys: set[str] = set()
        self._events: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ loading
    def load(self, customers: Iterable[str], *, create_at: dt.datetime | Mapping[str, dt.datetime] | None = None,
             lock: bool = True, since: dt.datetime | None = None, orders: Iterable[str] = ()) -> None:
        """Load (and lock) the accounts of ``customers`` with their lots; with
        ``create_at`` (a time, or a time per customer) the missing ones are created,
        joined at that time.

        With ``since`` only the lots that can still matter are read (a long history
        need not be): those with points left, those of ``orders`` (returns to reverse),
        and those a tier's rolling window may count — earned after ``since`` (or the
        oldest pending tier review) minus the window."""
        from sqlalchemy import select
        from sqlalchemy.dialects import postgresql, sqlite

        from retentio.data.store.loyalty_tables import LoyaltyAccount, LoyaltyLot

        wanted = sorted(set(customers) - set(self.members))
        if not wanted:
            return
        s, name = self.session, self.program.name
        if create_at is not None:
            dialect = postgresql if _dialect(s) == "postgresql" else sqlite
            when = create_at if isinstance(create_at, Mapping) else dict.fromkeys(wanted, create_at)
            rows = [{"program": name, "customer_id": c, "joined_at": when[c], "available": 0, "pending": 0,
                     "negative_ok": self.program.negative_ok, "spend": 0, "state": {}} for c in wanted]
            for i in range(0, len(rows), 5000):
                statement = dialect.insert(LoyaltyAccount).on_conflict_do_nothing(
                    index_elements=["program", "customer_id"])
                result = s.execute(statement.returning(LoyaltyAccount.customer_id), rows[i:i + 5000])
                for (created,) in result:
                    self.event(created, "join", None, None, f"join:{created}", when[created], {})
        accounts: list[LoyaltyAccount] = []
        for i in range(0, len(wanted), 5000):
            query = select(LoyaltyAccount).where(LoyaltyAccount.program == name,
                                                 LoyaltyAccount.customer_id.in_(wanted[i:i + 5000]))
            if lock and _dialect(s) == "postgresql":
                query = query.order_by(LoyaltyAccount.id).with_for_update()
            accounts += list(s.execute(query.execution_options(populate_existing=True)).scalars())
        by_id: dict[int, Member] = {}
        for a in accounts:
            m = Member(customer_id=a.customer_id, joined_at=a.joined_at, account_id=a.id, available=a.available,
                       pending=a.pending, negative_ok=a.negative_ok, tier=a.tier, tier_override=a.tier_override,
                       tier_reviewed_at=a.tier_reviewed_at, discount_level=a.discount_level, spend=float(a.spend),
                       last_purchase_at=a.last_purchase_at, card_started_at=a.card_started_at,
                       member_until=a.member_until, referral_code=a.referral_code, referred_by=a.referred_by,
                       state=dict(a.state or {}))
            self.members[a.customer_id] = m
            by_id[a.id] = m
        ids = sorted(by_id)
        cols = (LoyaltyLot.id, LoyaltyLot.account_id, LoyaltyLot.earned_at, LoyaltyLot.available_at,
                LoyaltyLot.expires_at, LoyaltyLot.points, LoyaltyLot.remaining, LoyaltyLot.released,
                LoyaltyLot.source, LoyaltyLot.order_id, LoyaltyLot.spend, LoyaltyLot.spent, LoyaltyLot.reversed)
        keep = None
        if since is not None:
            horizon = min([since] + [a.tier_reviewed_at for a in accounts if a.tier_reviewed_at is not None])
            if self.program.tiers is not None:
                horizon -= dt.timedelta(days=self.program.tiers.window_days)
            keep = (LoyaltyLot.remaining > 0) | (LoyaltyLot.earned_at > horizon)
            wanted_orders = sorted(set(orders))
            if wanted_orders:
                keep = keep | LoyaltyLot.order_id.in_(wanted_orders)
        for i in range(0, len(ids), 5000):
            lots = select(*cols).where(LoyaltyLot.account_id.in_(ids[i:i + 5000]))
            for row in s.execute(lots if keep is None else lots.where(keep)):
                by_id[row.account_id].lots.append(Lot(
                    id=row.id, earned_at=row.earned_at, available_at=row.available_at, expires_at=row.expires_at,
                    points=row.points, remaining=row.remaining, released=row.released, source=row.source,
                    order_id=row.order_id, spend=float(row.spend), spent=row.spent, reversed=row.reversed))

    def member(self, customer: str) -> Member:
        try:
            return self.members[customer]
        except KeyError:
            raise LedgerError(f"{customer} is not a member of the {self.program.name} program") from None

    # ------------------------------------------------------------------ keys
    def find(self, key: str) -> Any:
        """The stored operation of ``key`` (None when there is none)."""
        from sqlalchemy import select

        from retentio.data.store.loyalty_tables import LoyaltyOperation

        return self.session.execute(select(LoyaltyOperation).where(
            LoyaltyOperation.program == self.program.name, LoyaltyOperation.key == key)).scalar_one_or_none()

    def known(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are stored already."""
        return self._stored("loyalty_operations", keys)

    def known_events(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are stored already as state events."""
        return self._stored("loyalty_events", keys)

    def _stored(self, table: str, keys: Iterable[str]) -> set[str]:
        # driver SQL with one placeholder per key: SQLAlchemy's expanding IN costs more to
        # render for 5,000 keys than the query takes to run
        keys = list(dict.fromkeys(keys))
        mark = "?" if _dialect(self.session) == "sqlite" else "%s"
        connection = self.session.connection()
        found: set[str] = set()
        for i in range(0, len(keys), 5000):
            chunk = keys[i:i + 5000]
            sql = f'SELECT "key" FROM {table} WHERE program = {mark} AND "key" IN ({", ".join([mark] * len(chunk))})'
            found.update(k for (k,) in connection.exec_driver_sql(sql, (self.program.name, *chunk)))
        return found

    # ------------------------------------------------------------------ recording
    def add(self, op: Op) -> Op:
        book.check_balanced(op.postings)
        self.ops.append(op)
        self.keys.add(op.key)
        return op

    def event(self, customer: str, kind: str, from_value: Any, to_value: Any, key: str, at: dt.datetime,
              detail: dict[str, Any]) -> None:
        """A state change that moves no points (once per key)."""
        if key in self.event_keys:
            return
        self.event_keys.add(key)
        self._events.append({"program": self.program.name, "customer_id": customer, "kind": kind,
                             "from_value": None if from_value is None else str(from_value),
                             "to_value": None if to_value is None else str(to_value), "detail": detail,
                             "key": key, "actor": self.actor, "at": at})

    def settle(self, member: Member, at: dt.datetime) -> None:
        """Post the releases and expiries due by ``at`` (each its own operation)."""
        to_release, to_expire = book.due(member, at)
        for lot in to_release:
            lines = book.release(member, lot)
            if lines:
                self.add(Op(f"release:{lot.id}", "release", member.customer_id, {"lot": lot.id},
                            {"released": lot.remaining}, max(lot.available_at, lot.earned_at), lines,
                            reason="return window over", order_id=lot.order_id))
        for lot in to_expire:
            points = lot.remaining
            lines = book.expire(member, lot)
            if lines:
                assert lot.expires_at is not None
                self.add(Op(f"expire:{lot.id}", "expire", member.customer_id, {"lot": lot.id},
                            {"expired": points}, lot.expires_at, lines, reason="expired", order_id=lot.order_id))
            if self.program.kind == "stamps" and member.card_started_at is not None:
                member.card_started_at, member.dirty = None, True

    # ------------------------------------------------------------------ writing
    def flush(self) -> None:
        """Write the operations, entries, events, lots and changed accounts (one
        ``executemany`` per table: see :func:`_executemany`)."""
        from retentio.data.store.loyalty_tables import (
            LoyaltyAccount,
            LoyaltyEntry,
            LoyaltyEvent,
            LoyaltyLot,
            LoyaltyOperation,
        )

        s, name, created = self.session, self.program.name, utcnow()

        def insert(table: Any, rows: list[dict[str, Any]]) -> None:
            _executemany(s, table.__table__, rows)
        insert(LoyaltyOperation, [
            {"program": name, "key": op.key, "kind": op.kind, "customer_id": op.customer_id, "request": op.request,
             "request_hash": request_hash(op.request), "result": op.result, "actor": self.actor, "at": op.at,
             "created_at": created} for op in self.ops])
        insert(LoyaltyEntry, [
            {"program": name, "customer_id": p.customer_id, "account": p.account, "kind": op.kind,
             "amount": p.amount, "lot_id": p.lot_id, "order_id": op.order_id, "reason": op.reason[:200],
             "actor": self.actor, "key": op.key, "policy": p.policy, "at": op.at}
            for op in self.ops for p in op.postings])
        insert(LoyaltyEvent, self._events)
        members = list(self.members.values())
        insert(LoyaltyLot, [
            {"id": lot.id, "program": name, "account_id": m.account_id, "customer_id": m.customer_id,
             "earned_at": lot.earned_at, "available_at": lot.available_at, "expires_at": lot.expires_at,
             "points": lot.points, "remaining": lot.remaining, "spent": lot.spent, "released": lot.released,
             "reversed": lot.reversed, "order_id": lot.order_id, "source": lot.source, "spend": lot.spend}
            for m in members for lot in m.lots if lot.new])
        changed = [{"lot": lot.id, "remaining": lot.remaining, "spent": lot.spent, "released": lot.released,
                    "reversed": lot.reversed} for m in members for lot in m.lots if lot.dirty and not lot.new]
        if changed:
            _executemany(s, LoyaltyLot.__table__, changed, where="lot")
        accounts = [{"account": m.account_id, "available": m.available, "pending": m.pending, "tier": m.tier,
                     "tier_override": m.tier_override, "tier_reviewed_at": m.tier_reviewed_at,
                     "discount_level": m.discount_level, "spend": round(m.spend, 4),
                     "last_purchase_at": m.last_purchase_at, "card_started_at": m.card_started_at,
                     "member_until": m.member_until, "referral_code": m.referral_code,
                     "referred_by": m.referred_by, "state": m.state} for m in members if m.dirty]
        if accounts:
            _executemany(s, LoyaltyAccount.__table__, accounts, where="account")
        for m in members:
            m.dirty = False
            for lot in m.lots:
                lot.new = lot.dirty = False
        self.ops, self._events = [], []


def _executemany(session: Session, table: Any, rows: list[dict[str, Any]], *, where: str | None = None) -> None:
    """INSERT ``rows`` into ``table`` — or, with ``where``, UPDATE the row whose ``id``
    is ``row[where]`` — with the driver's ``executemany`` and the values converted as
    SQLAlchemy's column types would (JSON text; on SQLite, datetimes in SQLAlchemy's
    storage format, so comparisons in SQL stay right). The same statements through
    SQLAlchemy's compiler cost three times as long for a million lines (apply-orders)."""
    if not rows:
        return
    from sqlalchemy import JSON, DateTime

    sqlite = _dialect(session) == "sqlite"
    mark = "?" if sqlite else "%s"
    columns = [c for c in rows[0] if c != where]
    converters: list[Any] = []
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, JSON):
            converters.append(lambda v: None if v is None else json.dumps(v, default=str))
        elif sqlite and isinstance(kind, DateTime):
            converters.append(_sqlite_time)
        else:
            converters.append(None)
    if where is None:
        sql = f'INSERT INTO {table.name} ({", ".join(chr(34) + c + chr(34) for c in columns)}) ' \
              f'VALUES ({", ".join([mark] * len(columns))})'
    else:
        sql = f'UPDATE {table.name} SET {", ".join(chr(34) + c + chr(34) + " = " + mark for c in columns)} ' \
              f'WHERE id = {mark}'
    by_column = [[r[c] for r in rows] if f is None else [f(r[c]) for r in rows] for c, f in zip(columns, converters)]
    if where:
        by_column.append([r[where] for r in rows])
    values = list(zip(*by_column))
    connection = session.connection()
    for i in range(0, len(values), 20000):
        connection.exec_driver_sql(sql, values[i:i + 20000])


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _sqlite_time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def _retryable(exc: Exception) -> bool:
    from sqlalchemy.exc import IntegrityError, OperationalError

    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, OperationalError):
        code = getattr(exc.orig, "sqlstate", None)
        return code in _RETRY_SQLSTATES or "database is locked" in str(exc.orig)
    return False


class Ledger:
    """The ledger of one program on a store (the module docstring says how it stays
    correct). ``actor`` is written on every entry (who did it: a cashier, a job)."""

    def __init__(self, store: Store, program: Program, *, actor: str = "retentio"):
        self.store, self.program, self.actor = store, program, actor

    # ------------------------------------------------------------------ plumbing
    def transaction(self, work: Callable[[Batch], Any], *, attempts: int = 8) -> Any:
        """Run ``work`` on a fresh batch in one transaction; retried on serialisation
        failures, deadlocks and key races (the retry then finds the stored key)."""
        for attempt in range(attempts):
            try:
                with self.store.session() as session:
                    batch = Batch(session, self.program, self.actor)
                    result = work(batch)
                    batch.flush()
                    return result
            except Exception as exc:
                if attempt + 1 < attempts and _retryable(exc):
                    time.sleep(0.01 * (attempt + 1))
                    continue
                raise
        raise AssertionError("unreachable")

    def _request(self, kind: str, key: str, customers: list[str], request: dict[str, Any], at: dt.datetime | None,
                 do: Callable[[Batch, dt.datetime], Op], *, create: bool = True) -> dict[str, Any]:
        if not key or len(key) > 200:
            raise LedgerError("an idempotency key (--key) of 1 to 200 characters is needed")
        if key.split(":", 1)[0] + ":" in SYSTEM_KEYS and key != f"return:{request.get('order')}":
            raise LedgerError(f"key {key!r}: keys starting with {', '.join(SYSTEM_KEYS)} are the ledger's own "
                              "(expiry, releases, apply-orders); choose another")
        when = at or now_naive()
        request = {"kind": kind, **request}

        def work(batch: Batch) -> dict[str, Any]:
            batch.load(customers, create_at=when if create else None)
            stored = batch.find(key)
            if stored is not None:
                if stored.request_hash != request_hash(request):
                    raise KeyConflict(f"key {key!r} was used for a different request: {stored.request}")
                return {**stored.result, "replayed": True}
            for c in customers:
                if c in batch.members:
                    batch.settle(batch.members[c], when)
            op = do(batch, when)
            op.key, op.kind, op.request = key, kind, request
            batch.add(op)
            return {**op.result, "replayed": False}

        return self.transaction(work)

    def _expiry(self, at: dt.datetime) -> dt.datetime | None:
        return expiry_of(self.program, at)

    # ------------------------------------------------------------------ requests
    def earn(self, customer: str, points: int, *, key: str, order_id: str | None = None, at: dt.datetime | None = None,
             reason: str = "manual", pending: bool = False, source: str = "manual") -> dict[str, Any]:
        """Credit ``points`` as a new lot (pending for the program's return window when
        ``pending``); expiry by the program's rule."""
        def do(batch: Batch, when: dt.datetime) -> Op:
            m = batch.member(customer)
            ready = when + dt.timedelta(days=self.program.earn.pending_days) if pending else None
            lot_id = f"{self.program.name}:{key}"
            lines = book.earn(m, lot_id, points, when, source=source, available_at=ready,
                              expires_at=self._expiry(when), order_id=order_id)
            return Op(key, "earn", customer, {}, {"customer": customer, "earned": points, "lot": lot_id,
                                                  "available": m.available, "pending": m.pending}, when, lines,
                      reason=reason, order_id=order_id)

        return self._request("earn", key, [customer], {"customer": customer, "points": points, "order": order_id,
                                                       "pending": pending}, at, do)

    def redeem(self, customer: str, points: int, *, key: str, order_id: str | None = None,
               order_amount: float | None = None, at: dt.datetime | None = None,
               reason: str = "redemption") -> dict[str, Any]:
        """Spend ``points`` FIFO from the oldest-expiring lots. Refused, writing nothing,
        when the available balance is short (:class:`~book.InsufficientPoints`) or when
        the points would pay more than the program's share of ``order_amount``."""
        if points < self.program.redeem.min_points:
            raise LedgerError(f"the smallest redemption is {self.program.redeem.min_points} {self.program.unit}")
        if order_amount is not None:
            cap = self.program.redeem.max_share * order_amount
            if points * self.program.point_value > cap + 1e-9:
                raise LedgerError(f"{points} points are worth {points * self.program.point_value:g}; at most "
                                  f"{self.program.redeem.max_share:.0%} of the order ({cap:g}) may be paid with points")

        def do(batch: Batch, when: dt.datetime) -> Op:
            m = batch.member(customer)
            lines, lots = book.take(m, points, when, to="redeemed", unit=self.program.unit)
            return Op(key, "redeem", customer, {}, {"customer": customer, "redeemed": points, "lots": lots,
                                                    "available": m.available,
                                                    "value": round(points * self.program.point_value, 4)},
                      when, lines, reason=reason, order_id=order_id)

        return self._request("redeem", key, [customer], {"customer": customer, "points": points, "order": order_id},
                             at, do, create=False)

    def redeem_many(self, requests: Iterable[tuple[str, int, str, dt.datetime]], *, batch_size: int = 2000,
                    reason: str = "redemption") -> dict[str, int]:
        """Many redemptions — (customer, points, key, at), in time order per customer —
        in one transaction per ``batch_size`` customers (an import of a till's day, the
        demo's history). Each is checked like :meth:`redeem`; a refused one is counted,
        not raised; a known key is skipped."""
        by_customer: dict[str, list[tuple[int, str, dt.datetime]]] = {}
        for customer, points, key, at in requests:
            by_customer.setdefault(customer, []).append((points, key, at))
        totals = dict.fromkeys(("redeemed", "points", "refused", "replayed"), 0)
        customers = sorted(by_customer)

        def work(chunk: list[str]) -> Callable[[Batch], dict[str, int]]:
            def run(batch: Batch) -> dict[str, int]:
                # counted per attempt: a retried transaction starts again from nothing
                counts = dict.fromkeys(("redeemed", "points", "refused", "replayed"), 0)
                batch.load(chunk)
                known = batch.known(key for c in chunk for _, key, _ in by_customer[c])
                for c in chunk:
                    m = batch.members.get(c)
                    for points, key, at in by_customer[c]:
                        if key in known or key in batch.keys:
                            counts["replayed"] += 1
                            continue
                        if m is None:
                            counts["refused"] += 1
                            continue
                        batch.settle(m, at)
                        if points > m.available or points < self.program.redeem.min_points:
                            counts["refused"] += 1
                            continue
                        lines, lots = book.take(m, points, at, to="redeemed", unit=self.program.unit)
                        batch.add(Op(key, "redeem", c, {"kind": "redeem", "customer": c, "points": points,
                                                        "order": None},
                                     {"customer": c, "redeemed": points, "lots": lots, "available": m.available},
                                     at, lines, reason=reason))
                        counts["redeemed"] += 1
                        counts["points"] += points
                return counts
            return run

        for i in range(0, len(customers), batch_size):
            for k, v in self.transaction(work(customers[i:i + batch_size])).items():
                totals[k] += v
        return totals

    def adjust(self, customer: str, points: int, *, key: str, reason: str, at: dt.datetime | None = None) -> dict:
        """A manual correction with a reason (audited by actor and key): a positive one is
        a new lot, a negative one is taken FIFO and may not overdraw."""
        if not reason.strip():
            raise LedgerError("an adjustment needs a reason (--reason)")
        if points == 0:
            raise LedgerError("an adjustment of 0 points changes nothing")

        def do(batch: Batch, when: dt.datetime) -> Op:
            m = batch.member(customer)
            if points > 0:
                lines = book.earn(m, f"{self.program.name}:{key}", points, when, source="adjust",
                                  expires_at=self._expiry(when))
                lots: list[dict] = []
            else:
                lines, lots = book.take(m, -points, when, to="issued", unit=self.program.unit)
            return Op(key, "adjust", customer, {}, {"customer": customer, "adjusted": points, "lots": lots,
                                                    "available": m.available}, when, lines, reason=reason)

        return self._request("adjust", key, [customer], {"customer": customer, "points": points, "reason": reason},
                             at, do)

    def transfer(self, source: str, target: str, points: int, *, key: str, at: dt.datetime | None = None,
                 reason: str = "transfer") -> dict[str, Any]:
        """Move ``points`` from one member to another (FIFO out of the source; one new lot
        for the target with the program's expiry from today)."""
        if source == target:
            raise LedgerError("a transfer needs two different customers")

        def do(batch: Batch, when: dt.datetime) -> Op:
            giver, taker = batch.member(source), batch.member(target)
            lines, lots = book.take(giver, points, when, to="issued", unit=self.program.unit, spends=True)
            # the giver's lines go to "issued" and the taker's lot comes from it: net zero
            lines += book.earn(taker, f"{self.program.name}:{key}", points, when, source="transfer",
                               expires_at=self._expiry(when))
            return Op(key, "transfer", source, {}, {"from": source, "to": target, "points": points, "lots": lots},
                      when, lines, reason=reason)

        return self._request("transfer", key, [source, target], {"from": source, "to": target, "points": points},
                             at, do, create=False)

    def reverse_order(self, customer: str, order_id: str, *, key: str | None = None,
                      at: dt.datetime | None = None) -> dict[str, Any]:
        """Take back what an order earned (its return), by the program's returns policy."""
        key = key or f"return:{order_id}"

        def do(batch: Batch, when: dt.datetime) -> Op:
            m = batch.member(customer)
            lot = next((x for x in m.lots if x.order_id == order_id and x.source == "order"), None)
            if lot is None:
                raise LedgerError(f"order {order_id} earned no points for {customer}")
            lines, result = book.reverse(m, lot, when, self.program.returns.policy)
            return Op(key, "reverse", customer, {}, {"customer": customer, "order": order_id, **result,
                                                     "available": m.available}, when, lines,
                      reason="order returned", order_id=order_id)

        return self._request("reverse", key, [customer], {"customer": customer, "order": order_id}, at, do,
                             create=False)

    def expire(self, as_of: dt.datetime, *, batch_size: int = 2000) -> dict[str, int]:
        """Post every release and expiry due by ``as_of`` (in batches of members; a repeat
        finds nothing due)."""
        from sqlalchemy import or_, select

        from retentio.data.store.loyalty_tables import LoyaltyLot

        with self.store.session() as s:
            customers = sorted(set(s.execute(select(LoyaltyLot.customer_id).where(
                LoyaltyLot.program == self.program.name, LoyaltyLot.remaining > 0,
                or_(LoyaltyLot.expires_at <= as_of, (LoyaltyLot.released.is_(False))
                    & (LoyaltyLot.available_at <= as_of)))).scalars()))
        totals = {"released": 0, "expired": 0, "members": len(customers)}

        def work(chunk: list[str]) -> Callable[[Batch], None]:
            def run(batch: Batch) -> None:
                batch.load(chunk)
                for c in chunk:
                    batch.settle(batch.members[c], as_of)
                for op in batch.ops:
                    totals["released" if op.kind == "release" else "expired"] += \
                        op.result.get("released", 0) + op.result.get("expired", 0)
            return run

        for i in range(0, len(customers), batch_size):
            self.transaction(work(customers[i:i + batch_size]))
        return totals

    # ------------------------------------------------------------------ reading
    def balance(self, customer: str, at: dt.datetime | None = None) -> dict[str, Any]:
        """The member's balance as of ``at`` (releases and expiries due by then counted,
        not written): available, pending, tier, points expiring by date, discount %."""
        when = at or now_naive()

        def read(batch: Batch) -> dict[str, Any]:
            batch.load([customer], lock=False)
            m = batch.member(customer)
            batch.settle(m, when)
            batch.ops.clear()  # a read writes nothing
            batch.members.clear()
            expiring: dict[str, int] = {}
            for lot in book.spendable(m, when):
                if lot.expires_at is not None:
                    day = lot.expires_at.date().isoformat()
                    expiring[day] = expiring.get(day, 0) + lot.remaining
            return {"customer": customer, "program": self.program.name, "unit": self.program.unit,
                    "available": m.available, "pending": m.pending, "tier": m.tier_effective,
                    "tier_override": m.tier_override is not None,
                    "expiring": [{"date": d, "points": p} for d, p in sorted(expiring.items())],
                    "discount_pct": discount_pct(self.program, m, when),
                    "free_shipping": free_shipping(self.program, m, when),
                    "value": round(m.available * self.program.point_value, 4),
                    "referral_code": m.referral_code,
                    "member_until": m.member_until.isoformat() if m.member_until else None}

        with self.store.session() as session:
            return read(Batch(session, self.program, self.actor))

    def history(self, customer: str) -> list[dict[str, Any]]:
        """The member's entries and state events, oldest first."""
        from sqlalchemy import select

        from retentio.data.store.loyalty_tables import LoyaltyEntry, LoyaltyEvent

        name = self.program.name
        with self.store.session() as s:
            entries = s.execute(select(LoyaltyEntry).where(
                LoyaltyEntry.program == name, LoyaltyEntry.customer_id == customer,
                LoyaltyEntry.account.in_(("available", "pending"))).order_by(LoyaltyEntry.at, LoyaltyEntry.id)
            ).scalars().all()
            events = s.execute(select(LoyaltyEvent).where(
                LoyaltyEvent.program == name, LoyaltyEvent.customer_id == customer).order_by(
                LoyaltyEvent.at, LoyaltyEvent.id)).scalars().all()
        rows = [{"at": e.at.isoformat(), "kind": e.kind, "account": e.account, "points": e.amount, "lot": e.lot_id,
                 "order": e.order_id, "reason": e.reason, "policy": e.policy, "actor": e.actor, "key": e.key}
                for e in entries]
        rows += [{"at": e.at.isoformat(), "kind": e.kind, "account": None, "points": 0, "lot": None, "order": None,
                  "reason": f"{e.from_value or '-'} → {e.to_value or '-'}", "policy": None, "actor": e.actor,
                  "key": e.key} for e in events]
        return sorted(rows, key=lambda r: r["at"])

    def check(self) -> dict[str, Any]:
        """Verify the ledger: every operation balances, and each account's cached balances
        equal the sums of its entries (and its lots). Returns the mismatches (none = ok)."""
        from sqlalchemy import func, select

        from retentio.data.store.loyalty_tables import LoyaltyAccount, LoyaltyEntry, LoyaltyLot

        name = self.program.name
        with self.store.session() as s:
            unbalanced = s.execute(select(LoyaltyEntry.key).where(LoyaltyEntry.program == name)
                                   .group_by(LoyaltyEntry.key)
                                   .having(func.sum(LoyaltyEntry.amount) != 0)).scalars().all()
            sums = {(c, a): int(v) for c, a, v in s.execute(
                select(LoyaltyEntry.customer_id, LoyaltyEntry.account, func.sum(LoyaltyEntry.amount))
                .where(LoyaltyEntry.program == name, LoyaltyEntry.account.in_(("available", "pending")))
                .group_by(LoyaltyEntry.customer_id, LoyaltyEntry.account))}
            lots = {(c, r): int(v) for c, r, v in s.execute(
                select(LoyaltyLot.customer_id, LoyaltyLot.released, func.sum(LoyaltyLot.remaining))
                .where(LoyaltyLot.program == name).group_by(LoyaltyLot.customer_id, LoyaltyLot.released))}
            debt = {c: int(v) for c, v in s.execute(
                select(LoyaltyEntry.customer_id, func.sum(LoyaltyEntry.amount)).where(
                    LoyaltyEntry.program == name, LoyaltyEntry.account == "available",
                    LoyaltyEntry.lot_id.is_(None)).group_by(LoyaltyEntry.customer_id))}
            accounts = s.execute(select(LoyaltyAccount.customer_id, LoyaltyAccount.available,
                                        LoyaltyAccount.pending).where(LoyaltyAccount.program == name)).all()
        mismatches = []
        for customer, available, pending in accounts:
            ledger_available = sums.get((customer, "available"), 0)
            ledger_pending = sums.get((customer, "pending"), 0)
            lots_available = lots.get((customer, True), 0) + debt.get(customer, 0)
            lots_pending = lots.get((customer, False), 0)
            if (available, pending) != (ledger_available, ledger_pending) or \
                    (lots_available, lots_pending) != (ledger_available, ledger_pending):
                mismatches.append({"customer": customer, "cached": [available, pending],
                                   "ledger": [ledger_available, ledger_pending],
                                   "lots": [lots_available, lots_pending]})
        return {"program": name, "accounts": len(accounts), "unbalanced_operations": list(unbalanced),
                "mismatches": mismatches, "ok": not unbalanced and not mismatches}


def expiry_of(program: Program, at: dt.datetime) -> dt.datetime | None:
    """When points earned at ``at`` expire under the program's rule: N days later, or at
    the end of the month / year they were earned in (the first instant of the next)."""
    rule = program.expiry
    if program.kind == "stamps":
        return None
    if rule.rule == "never":
        return None
    if rule.rule == "days":
        assert rule.days is not None
        return at + dt.timedelta(days=rule.days)
    if rule.rule == "end_of_month":
        first = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (first + dt.timedelta(days=32)).replace(day=1)
    else:
        end = dt.datetime(at.year + 1, 1, 1)
    if rule.days:
        end = max(end, at + dt.timedelta(days=rule.days))
    return end


def _membership_active(program: Program, member: Member, at: dt.datetime) -> bool:
    return program.membership is not None and member.member_until is not None and \
        at <= member.member_until + dt.timedelta(days=program.membership.grace_days)


def free_shipping(program: Program, member: Member, at: dt.datetime) -> bool:
    """Whether the member's tier, or a paid membership, gives free shipping at ``at``."""
    if program.tiers is not None and member.tier_effective is not None:
        tier = next((t for t in program.tiers.levels if t.name == member.tier_effective), None)
        if tier is not None and tier.free_shipping:
            return True
    return _membership_active(program, member, at) and program.membership is not None and \
        program.membership.perks.free_shipping


def discount_pct(program: Program, member: Member, at: dt.datetime) -> float:
    """The member's discount on an order at ``at``: the discount card's level (or fixed
    percentage), the tier's, or the membership's while it is paid — the largest applies."""
    pct = 0.0
    if program.discount is not None:
        if program.discount.percent is not None:
            pct = program.discount.percent
        elif member.discount_level is not None and member.discount_level >= 0:
            pct = program.discount.levels[member.discount_level].percent
    if program.tiers is not None and member.tier_effective is not None:
        tier = next((t for t in program.tiers.levels if t.name == member.tier_effective), None)
        if tier is not None:
            pct = max(pct, tier.discount_pct)
    if _membership_active(program, member, at) and program.membership is not None:
        pct = max(pct, program.membership.perks.discount_pct)
    return pct


__all__ = ["Batch", "KeyConflict", "Ledger", "Op", "discount_pct", "expiry_of", "free_shipping", "now_naive",
           "request_hash"]
