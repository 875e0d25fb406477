"""Property-based tests (Hypothesis) of the loyalty ledger: random sequences of requests
(earn, pending or not, on an order or not; redeem; adjust up and down; the return of an
order; expiry runs at advancing times; transfers between three customers) against a
small reference model kept by the test.

The model holds per customer the available and pending totals, the lots it was told of
(points, when they become available and expire, whether reversed) and the refusal rule
(a spend larger than the available balance is refused). It does not re-implement FIFO:
how much of a lot is left when it expires depends on which lots paid for what, so the
model takes the expired amount from the ledger's read path (``balance(at=…)``) and only
checks its bounds (never more than the lots expiring hold, never leaving more than the
live lots hold), then demands that the write path posts exactly that. Everything else —
releases, earnings, redemptions, adjustments, transfers, the amounts a return takes
under its policy, refusals — the model predicts and the ledger must match after every
step: the account rows, ``check()``, no negative balance unless the program allows one,
and a refused request writes nothing. Finally the whole sequence is sent again with the
same keys: every answer is the stored one (``replayed``) and nothing in the store moves.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from retentio.actions.loyalty.book import InsufficientPoints, LedgerError
from retentio.actions.loyalty.ledger import Ledger
from retentio.actions.loyalty.programs import Program, parse_program
from retentio.data.store import Store

EXPIRY_DAYS, PENDING_DAYS = 30, 7
OTHER_LOTS = f'kind = "points"\n[earn]\npending_days = {PENDING_DAYS}\n[expiry]\ndays = {EXPIRY_DAYS}\n' \
             '[returns]\npolicy = "other_lots"\n'
NEGATIVE = OTHER_LOTS.replace('"other_lots"', '"negative"')
T0 = dt.datetime(2026, 1, 1, 9, 0)
CUSTOMERS = ("c0", "c1", "c2")

# ---------------------------------------------------------------------- the requests
customer = st.sampled_from(("c0", "c0", "c1", "c1", "c2"))
#: hours the clock moves before a step (expiry is 30 days, the return window 7)
advance = st.sampled_from([0, 0, 0, 5, 24, 72, 24 * 8, 24 * 20, 24 * 31])
earn = st.tuples(st.just("earn"), customer, st.integers(1, 200), st.booleans(), st.booleans())  # pending, on an order
request = st.one_of(
    earn,
    st.tuples(st.just("redeem"), customer, st.integers(1, 120)),
    st.tuples(st.just("adjust"), customer, st.integers(1, 100).flatmap(lambda n: st.sampled_from((n, -n)))),
    st.tuples(st.just("reverse"), customer, st.integers(0, 7)),
    st.tuples(st.just("expire")),
    st.tuples(customer, st.integers(1, 2), st.integers(1, 100)).map(
        lambda r: ("transfer", r[0], CUSTOMERS[(CUSTOMERS.index(r[0]) + r[1]) % len(CUSTOMERS)], r[2])),
)
#: two members with points first (so that spending, returns and transfers have something to work on)
sequences = st.tuples(
    st.tuples(st.just(0), st.tuples(st.just("earn"), st.just("c0"), st.integers(1, 300), st.booleans(), st.just(True))),
    st.tuples(st.just(0), st.tuples(st.just("earn"), st.just("c1"), st.integers(1, 300), st.just(False), st.booleans())),
    st.lists(st.tuples(advance, request), max_size=12),
).map(lambda t: [t[0], t[1], *t[2]])


# ---------------------------------------------------------------------- the model
@dataclass
class MLot:
    key: str
    points: int
    available_at: dt.datetime
    expires_at: dt.datetime
    order: str | None
    released: bool
    reversed: bool = False
    #: its expiry (whatever was left of it) has been posted
    expired: bool = False


@dataclass
class MCustomer:
    available: int = 0
    pending: int = 0
    lots: list[MLot] = field(default_factory=list)
    redeemed: int = 0
    expired: int = 0


@dataclass
class Settled:
    """A customer as a request at ``at`` sees them once releases and expiries are posted."""

    available: int
    pending: int
    released: list[MLot]
    expiring: list[MLot]
    expired: int


class Model:
    def __init__(self, program: Program):
        self.program = program
        self.customers: dict[str, MCustomer] = {}

    def settled(self, ledger: Ledger, name: str, at: dt.datetime) -> Settled:
        """The model's view of ``name`` at ``at``: releases predicted exactly, the expired
        amount read from the ledger's ``balance(at=…)`` and checked against its bounds."""
        m = self.customers[name]
        released = [lot for lot in m.lots if not lot.released and not lot.reversed and lot.available_at <= at]
        expiring = [lot for lot in m.lots if not lot.expired and not lot.reversed and lot.expires_at <= at]
        available = m.available + sum(lot.points for lot in released)
        pending = m.pending - sum(lot.points for lot in released)
        balance = ledger.balance(name, at=at)
        assert balance["pending"] == pending, (name, balance, m)
        expired = available - balance["available"]
        assert 0 <= expired <= sum(lot.points for lot in expiring), (name, expired, expiring, balance)
        # what is left available is held by lots still alive (a debt only lowers it)
        now_released = {id(lot) for lot in released}
        live = sum(lot.points for lot in m.lots if (lot.released or id(lot) in now_released) and not lot.reversed
                   and not lot.expired and lot.expires_at > at)
        assert balance["available"] <= live, (name, balance, m)
        return Settled(balance["available"], pending, released, expiring, expired)

    def apply_settled(self, name: str, s: Settled) -> None:
        m = self.customers[name]
        for lot in s.released:
            lot.released = True
        for lot in s.expiring:
            lot.expired = True
        m.available, m.pending = s.available, s.pending
        m.expired += s.expired

    def lot(self, name: str, key: str, points: int, at: dt.datetime, *, pending: bool, order: str | None) -> None:
        ready = at + dt.timedelta(days=self.program.earn.pending_days) if pending else at
        self.customers[name].lots.append(MLot(key, points, ready, at + dt.timedelta(days=EXPIRY_DAYS), order,
                                              released=ready <= at))


# ---------------------------------------------------------------------- the store
TABLES = ("loyalty_operations", "loyalty_entries", "loyalty_lots", "loyalty_accounts", "loyalty_events")
#: plain SQL (each example has an engine of its own, so SQLAlchemy's statement cache would start empty)
COUNTS = sa.text("SELECT " + ", ".join(f"(SELECT count(*) FROM {t} WHERE program = :p)" for t in TABLES)
                 + ", (SELECT count(*) FROM loyalty_lots WHERE program = :p AND remaining < 0)")
ACCOUNTS = sa.text("SELECT customer_id, available, pending FROM loyalty_accounts WHERE program = :p")
EXPIRED = sa.text("SELECT customer_id, sum(amount) FROM loyalty_entries WHERE program = :p AND kind = 'expire' "
                  "AND account IN ('available', 'pending') GROUP BY customer_id")


def state(store: Store, program: str) -> dict[str, Any]:
    """Row counts of the program's tables, its accounts' cached balances and what expired."""
    with store.engine.connect() as c:
        *counts, negative_lots = c.execute(COUNTS, {"p": program}).one()
        accounts = {cid: (a, p) for cid, a, p in c.execute(ACCOUNTS, {"p": program})}
        expired = {cid: -int(v) for cid, v in c.execute(EXPIRED, {"p": program})}
    return {"counts": dict(zip(TABLES, counts)), "accounts": accounts, "expired": expired,
            "negative_lots": negative_lots}


def run_sequence(url: str, program_toml: str, steps: list[tuple[int, tuple]]) -> None:
    name = f"p{uuid.uuid4().hex[:12]}"  # the program's rows are its own, even in a shared database
    program = parse_program(program_toml, f"{name}.toml", name)
    with Store.open(url) as store:
        ledger = Ledger(store, program, actor="hypothesis")
        model = Model(program)
        done: list[tuple[str, tuple, dict, dict]] = []  # what succeeded, to send again
        at = T0
        after = state(store, name)
        for i, (hours, req) in enumerate(steps):
            at += dt.timedelta(hours=hours)
            before = after  # reads write nothing: the state after the last step
            outcome = step(ledger, model, name, f"k{i}", req, at)
            if currently_in_test_context():  # what the examples did: --hypothesis-show-statistics
                event(f"{req[0]}: {'refused' if outcome is None else 'done'}")
            after = state(store, name)
            if outcome is None:  # refused: nothing written, not even the releases and expiries it saw
                assert after == before, (req, before, after)
            else:
                done.append(outcome)
            assert after["accounts"] == {c: (m.available, m.pending) for c, m in model.customers.items()}, \
                (req, after["accounts"], model.customers)
            assert after["expired"] == {c: m.expired for c, m in model.customers.items() if m.expired}
            assert after["negative_lots"] == 0
            for c, (available, pending) in after["accounts"].items():
                assert pending >= 0
                assert available >= 0 or program.negative_ok, (c, available)
            check = ledger.check()
            assert check["ok"], check

        # the same requests again, with the same keys: the stored answers, nothing written
        final = state(store, name)
        balances = {c: ledger.balance(c, at=at) for c in model.customers}
        for method, args, kwargs, result in done:
            again = getattr(ledger, method)(*args, **kwargs)
            if method == "expire":
                assert again == {"released": 0, "expired": 0, "members": 0}
            else:
                assert again == {**result, "replayed": True}, (method, args, kwargs)
        assert state(store, name) == final
        assert {c: ledger.balance(c, at=at) for c in model.customers} == balances
        assert ledger.check()["ok"]


def step(ledger: Ledger, model: Model, program: str, key: str, req: tuple,
         at: dt.datetime) -> tuple[str, tuple, dict, dict] | None:
    """Send one request, check its answer against the model and update the model.
    Returns what to send again (None when it was refused)."""
    kind = req[0]
    members = model.customers

    if kind == "expire":
        views = {c: model.settled(ledger, c, at) for c in members}
        result = ledger.expire(at)
        assert result["released"] == sum(lot.points for v in views.values() for lot in v.released)
        assert result["expired"] == sum(v.expired for v in views.values())
        for c, v in views.items():
            model.apply_settled(c, v)
        return "expire", (at,), {}, result

    if kind == "earn":
        _, c, points, pending, on_order = req
        order = f"o-{key}" if on_order else None
        if c not in members:
            members[c] = MCustomer()
            view = Settled(0, 0, [], [], 0)
        else:
            view = model.settled(ledger, c, at)
        kwargs = {"key": key, "at": at, "pending": pending, "order_id": order,
                  "source": "order" if on_order else "manual"}
        result = ledger.earn(c, points, **kwargs)
        model.apply_settled(c, view)
        model.lot(c, f"{program}:{key}", points, at, pending=pending, order=order)
        m = members[c]
        if pending:
            m.pending += points
        else:
            m.available += points
        assert result == {"customer": c, "earned": points, "lot": f"{program}:{key}", "available": m.available,
                          "pending": m.pending, "replayed": False}
        return "earn", (c, points), kwargs, result

    if kind in ("redeem", "adjust") and (kind == "redeem" or req[2] < 0):
        _, c, points = req
        wanted = abs(points)
        call: tuple[str, tuple, dict] = ("redeem", (c, wanted), {"key": key, "at": at}) if kind == "redeem" else \
            ("adjust", (c, points), {"key": key, "at": at, "reason": "correction"})
        if c not in members:
            with pytest.raises(LedgerError):  # no member to redeem from / nothing to take back
                getattr(ledger, call[0])(*call[1], **call[2])
            return None
        view = model.settled(ledger, c, at)
        if wanted > view.available:
            with pytest.raises(InsufficientPoints):
                getattr(ledger, call[0])(*call[1], **call[2])
            return None
        result = getattr(ledger, call[0])(*call[1], **call[2])
        model.apply_settled(c, view)
        m = members[c]
        m.available -= wanted
        if kind == "redeem":
            m.redeemed += wanted
            assert result["redeemed"] == wanted
        else:
            assert result["adjusted"] == points
        assert result["available"] == m.available and result["replayed"] is False
        assert sum(lot["points"] for lot in result["lots"]) == wanted
        return call[0], call[1], call[2], result

    if kind == "adjust":  # a positive correction: a new lot, available at once
        _, c, points = req
        if c not in members:
            members[c] = MCustomer()
            view = Settled(0, 0, [], [], 0)
        else:
            view = model.settled(ledger, c, at)
        kwargs = {"key": key, "at": at, "reason": "goodwill"}
        result = ledger.adjust(c, points, **kwargs)
        model.apply_settled(c, view)
        model.lot(c, f"{program}:{key}", points, at, pending=False, order=None)
        members[c].available += points
        assert result == {"customer": c, "adjusted": points, "lots": [], "available": members[c].available,
                          "replayed": False}
        return "adjust", (c, points), kwargs, result

    if kind == "transfer":
        _, source, target, points = req
        kwargs = {"key": key, "at": at}
        if source not in members or target not in members:
            with pytest.raises(LedgerError):
                ledger.transfer(source, target, points, **kwargs)
            return None
        views = {c: model.settled(ledger, c, at) for c in (source, target)}
        if points > views[source].available:
            with pytest.raises(InsufficientPoints):
                ledger.transfer(source, target, points, **kwargs)
            return None
        result = ledger.transfer(source, target, points, **kwargs)
        for c, v in views.items():
            model.apply_settled(c, v)
        members[source].available -= points
        members[source].redeemed += points  # points given away count as used: a return may take them back
        members[target].available += points
        model.lot(target, f"{program}:{key}", points, at, pending=False, order=None)
        assert result["points"] == points and sum(lot["points"] for lot in result["lots"]) == points
        return "transfer", (source, target, points), kwargs, result

    assert kind == "reverse"
    _, c, which = req
    orders = [lot for lot in members[c].lots if lot.order] if c in members else []
    kwargs = {"key": key, "at": at}
    if not orders:  # no such order (or no such member): refused
        with pytest.raises(LedgerError):
            ledger.reverse_order(c, "no-such-order", **kwargs)
        return None
    lot = orders[which % len(orders)]
    view = model.settled(ledger, c, at)
    result = ledger.reverse_order(c, lot.order, **kwargs)
    model.apply_settled(c, view)
    m = members[c]
    policy = model.program.returns.policy
    if lot.reversed:
        assert result == {"reversed": 0, "shortfall": 0, "policy": policy, "customer": c, "order": lot.order,
                          "available": m.available, "replayed": False}
        return "reverse_order", (c, lot.order), kwargs, result
    reversed_, shortfall = result["reversed"], result["shortfall"]
    assert reversed_ >= 0 and shortfall >= 0 and reversed_ + shortfall <= lot.points, (result, lot)
    assert shortfall <= m.redeemed  # only what redemptions and transfers took from it is a shortfall
    if not lot.released:  # still in its return window: nothing of it could be spent
        assert (reversed_, shortfall) == (lot.points, 0), (result, lot)
        m.pending -= reversed_
    else:
        m.available -= reversed_
        if lot.expired:
            assert reversed_ == 0
    if policy == "negative":
        assert (result["taken"], result["written_off"]) == (shortfall, 0)
    else:
        assert result["taken"] == min(shortfall, max(m.available, 0)), (result, m.available)
        assert result["written_off"] == shortfall - result["taken"]
    m.available -= result["taken"]
    lot.reversed = True
    assert result["available"] == m.available
    return "reverse_order", (c, lot.order), kwargs, result


# ---------------------------------------------------------------------- the properties
@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory) -> Path:
    """An empty store with the schema (copied for each example: migrating takes a while)."""
    path = tmp_path_factory.mktemp("loyalty") / "template.sqlite"
    Store.open(f"sqlite:///{path}").close()
    return path


def fresh_sqlite(template: Path) -> tuple[str, str]:
    folder = tempfile.mkdtemp(prefix="retentio-loyalty-")
    shutil.copy(template, Path(folder) / "store.sqlite")
    return folder, f"sqlite:///{folder}/store.sqlite"


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@examples(40)
@given(steps=sequences)
def test_the_ledger_matches_the_model_with_other_lots_returns(sqlite_template, steps):
    folder, url = fresh_sqlite(sqlite_template)
    try:
        run_sequence(url, OTHER_LOTS, steps)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@examples(40)
@given(steps=sequences)
def test_the_ledger_matches_the_model_with_negative_returns(sqlite_template, steps):
    folder, url = fresh_sqlite(sqlite_template)
    try:
        run_sequence(url, NEGATIVE, steps)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@examples(8)
@given(steps=sequences, negative=st.booleans())
def test_the_ledger_matches_the_model_on_postgresql(postgres_url, steps, negative):
    # the database is the test's, shared by the examples: each example has a program of its own
    run_sequence(postgres_url, NEGATIVE if negative else OTHER_LOTS, steps)


# ---------------------------------------------------------------------- what the properties found
def small_ledger(tmp_path: Path, toml: str) -> Ledger:
    return Ledger(Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}"), parse_program(toml, "club.toml", "club"))


def test_points_that_repaid_a_debt_do_not_expire_again(tmp_path):
    ledger = small_ledger(tmp_path, 'kind = "points"\n[expiry]\ndays = 30\n[returns]\npolicy = "negative"\n')
    ledger.earn("a", 100, key="e1", at=T0, order_id="o1", source="order")
    ledger.redeem("a", 100, key="r1", at=T0 + dt.timedelta(days=1))
    assert ledger.reverse_order("a", "o1", key="ret1", at=T0 + dt.timedelta(days=2))["available"] == -100
    assert ledger.earn("a", 100, key="e2", at=T0 + dt.timedelta(days=3))["available"] == 0  # the debt is repaid
    later = T0 + dt.timedelta(days=40)
    ledger.expire(later)
    assert ledger.balance("a", at=later)["available"] == 0  # the repaid points do not expire again
    assert ledger.check()["ok"]


def test_a_request_key_cannot_block_the_expiry_of_a_lot(tmp_path):
    ledger = small_ledger(tmp_path, 'kind = "points"\n[expiry]\ndays = 30\n')
    ledger.earn("a", 100, key="k1", at=T0)
    with pytest.raises(LedgerError, match="the ledger's own"):
        ledger.redeem("a", 10, key="expire:club:k1", at=T0 + dt.timedelta(days=1))
    later = T0 + dt.timedelta(days=31)
    assert ledger.expire(later)["expired"] == 100  # the refused redemption took nothing
    assert ledger.balance("a", at=later)["available"] == 0


def test_a_return_recovers_points_that_were_transferred_away(tmp_path):
    ledger = small_ledger(tmp_path, 'kind = "points"\n[returns]\npolicy = "negative"\n')
    ledger.earn("a", 100, key="e1", at=T0, order_id="o1", source="order")
    ledger.earn("b", 1, key="e2", at=T0)
    ledger.transfer("a", "b", 100, key="t1", at=T0 + dt.timedelta(days=1))
    r = ledger.reverse_order("a", "o1", at=T0 + dt.timedelta(days=2))
    # the 100 left a's account as a transfer: the return takes them from a's balance (policy "negative")
    assert (r["shortfall"], r["available"]) == (100, -100)
    assert ledger.check()["ok"]
