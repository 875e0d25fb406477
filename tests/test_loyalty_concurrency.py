"""The loyalty ledger under real concurrency: several processes (multiprocessing, "spawn"),
each with its own store and ledger, released together by a barrier, on SQLite and on a
real PostgreSQL server. No overdraft, one operation per idempotency key, a key reused for
a different request is refused without writing, opposite transfers do not deadlock."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from retentio.actions.loyalty.ledger import Ledger
from retentio.actions.loyalty.programs import parse_program
from retentio.data.store import Store
from retentio.data.store.loyalty_tables import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyEvent,
    LoyaltyLot,
    LoyaltyOperation,
)
from tests import loyalty_worker

PROGRAM = "club"
PROGRAM_TOML = 'kind = "points"\n[returns]\npolicy = "other_lots"\n'
T0 = dt.datetime(2026, 3, 1, 12, 0)
#: a process that has not reported by then is stuck (a deadlock, a lock never released)
PROCESS_TIMEOUT = 60


@pytest.fixture
def ledger(store_url):
    with Store.open(store_url) as store:
        yield Ledger(store, parse_program(PROGRAM_TOML, f"{PROGRAM}.toml", PROGRAM), actor="test")


class Workers:
    """Worker processes ("spawn") started once for the module; each test hands some of them
    a list of requests, and they start it together (a barrier per number of processes)."""

    SIZES = (4, 6, 8)

    def __init__(self) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.processes: list[Any] = []

    def start(self) -> None:
        self.barriers = {n: self.ctx.Barrier(n) for n in self.SIZES}
        self.results = self.ctx.Queue()
        self.tasks = [self.ctx.Queue() for _ in range(max(self.SIZES))]
        self.processes = [self.ctx.Process(target=loyalty_worker.serve, args=(i, q, self.results, self.barriers),
                                           daemon=True) for i, q in enumerate(self.tasks)]
        for p in self.processes:
            p.start()
        # importing SQLAlchemy and Alembic in 8 new processes at once takes a while on a busy machine
        ready = {self.results.get(timeout=3 * PROCESS_TIMEOUT) for _ in self.processes}
        assert ready == {(i, "ready") for i in range(len(self.processes))}

    def stop(self, *, kill: bool = False) -> None:
        for q, p in zip(self.tasks, self.processes):
            if kill:
                p.terminate()
            else:
                q.put(None)
        for p in self.processes:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
        self.processes = []

    def run(self, url: str, requests: list[list[loyalty_worker.Request]]) -> list[list[tuple[str, Any]]]:
        """One process per list of requests, all started together; their outcomes in order.
        Fails on any unexpected error, and when a process does not finish in time."""
        n = len(requests)
        assert n in self.SIZES
        if not self.processes:
            self.start()
        self.barriers[n].reset()
        for i, reqs in enumerate(requests):
            self.tasks[i].put((url, PROGRAM_TOML, PROGRAM, reqs, n))
        results: dict[int, list[tuple[str, Any]]] = {}
        try:
            for _ in range(n):
                index, outcomes = self.results.get(timeout=PROCESS_TIMEOUT)
                results[index] = outcomes
        except queue.Empty:
            self.stop(kill=True)
            pytest.fail(f"processes {sorted(set(range(n)) - set(results))} did not finish in "
                        f"{PROCESS_TIMEOUT} s (a deadlock?)")
        errors = [(i, o) for i, outcomes in results.items() for o in outcomes if o[0] == "error"]
        assert errors == [], errors
        return [results[i] for i in range(n)]


@pytest.fixture(scope="module")
def workers():
    pool = Workers()
    pool.start()
    yield pool
    pool.stop()


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as c:
        return {t.__tablename__: c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (LoyaltyOperation, LoyaltyEntry, LoyaltyLot, LoyaltyAccount, LoyaltyEvent)}


def customer_entry_sum(store: Store, customer: str) -> int:
    with store.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.coalesce(sa.func.sum(LoyaltyEntry.amount), 0)).where(
            LoyaltyEntry.program == PROGRAM, LoyaltyEntry.customer_id == customer,
            LoyaltyEntry.account.in_(("available", "pending")))).scalar_one())


def without_replayed(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "replayed"}


# ---------------------------------------------------------------------- no overdraft
def test_concurrent_redemptions_never_overdraw(workers, ledger, store_url):
    ledger.earn("alice", 1000, key="seed", at=T0)
    requests = [[("redeem", ("alice", 10), {"key": f"r-{p}-{i}", "at": T0 + dt.timedelta(minutes=1)})
                 for i in range(25)] for p in range(8)]

    outcomes = [o for per_process in workers.run(store_url, requests) for o in per_process]

    assert Counter(status for status, _ in outcomes) == {"ok": 100, "insufficient": 100}
    assert all(not result["replayed"] and result["redeemed"] == 10 for status, result in outcomes if status == "ok")
    # every success saw a different balance after it: 990, 980, …, 0 — one at a time
    assert sorted(result["available"] for status, result in outcomes if status == "ok") == list(range(0, 1000, 10))
    assert ledger.balance("alice", at=T0 + dt.timedelta(minutes=2))["available"] == 0
    check = ledger.check()
    assert check["ok"], check
    assert customer_entry_sum(ledger.store, "alice") == 0
    with ledger.store.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(LoyaltyLot).where(
            LoyaltyLot.remaining < 0)).scalar_one() == 0
        assert c.execute(sa.select(sa.func.count()).select_from(LoyaltyOperation).where(
            LoyaltyOperation.kind == "redeem")).scalar_one() == 100
        assert c.execute(sa.select(sa.func.sum(LoyaltyEntry.amount)).where(
            LoyaltyEntry.account == "redeemed")).scalar_one() == 1000
        account = c.execute(sa.select(LoyaltyAccount.available, LoyaltyAccount.pending).where(
            LoyaltyAccount.customer_id == "alice")).one()
    assert tuple(account) == (0, 0)


# ---------------------------------------------------------------------- one key, one operation
@pytest.mark.parametrize("kind", ["earn_new_member", "redeem", "transfer"])
def test_one_key_sent_by_many_processes_at_once_is_done_once(workers, ledger, store_url, kind):
    ledger.earn("alice", 500, key="seed-a", at=T0)
    ledger.earn("bob", 10, key="seed-b", at=T0)
    at = T0 + dt.timedelta(hours=1)
    request: loyalty_worker.Request = {
        # the member does not exist yet: every process tries to create the account too
        "earn_new_member": ("earn", ("carol", 70), {"key": "same", "at": at}),
        "redeem": ("redeem", ("alice", 120), {"key": "same", "at": at, "order_id": "o-1"}),
        "transfer": ("transfer", ("alice", "bob", 130), {"key": "same", "at": at}),
    }[kind]
    before = counts(ledger.store)

    outcomes = [o for per_process in workers.run(store_url, [[request]] * 6) for o in per_process]

    assert [status for status, _ in outcomes] == ["ok"] * 6, outcomes
    results = [result for _, result in outcomes]
    assert sum(not r["replayed"] for r in results) == 1
    assert all(without_replayed(r) == without_replayed(results[0]) for r in results)
    after = counts(ledger.store)
    with ledger.store.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(LoyaltyOperation).where(
            LoyaltyOperation.key == "same")).scalar_one() == 1
        entries = c.execute(sa.select(LoyaltyEntry.customer_id, LoyaltyEntry.account, LoyaltyEntry.amount).where(
            LoyaltyEntry.key == "same")).all()
    # one set of lines: earn and redeem (from one lot) write two, a transfer two for each side
    assert len(entries) == (4 if kind == "transfer" else 2), entries
    assert sum(e.amount for e in entries) == 0
    assert after["loyalty_operations"] == before["loyalty_operations"] + 1
    assert after["loyalty_entries"] == before["loyalty_entries"] + len(entries)
    moved = Counter()
    for e in entries:
        if e.account in ("available", "pending"):
            moved[e.customer_id] += e.amount
    if kind == "earn_new_member":
        assert moved == {"carol": 70}
        assert after["loyalty_accounts"] == before["loyalty_accounts"] + 1
        assert after["loyalty_lots"] == before["loyalty_lots"] + 1
        assert after["loyalty_events"] == before["loyalty_events"] + 1  # one "join"
        assert ledger.balance("carol", at=at)["available"] == 70
    elif kind == "redeem":
        assert moved == {"alice": -120}
        assert after["loyalty_lots"] == before["loyalty_lots"]
        assert ledger.balance("alice", at=at)["available"] == 380
    else:
        assert moved == {"alice": -130, "bob": 130}
        assert after["loyalty_lots"] == before["loyalty_lots"] + 1
        assert (ledger.balance("alice", at=at)["available"], ledger.balance("bob", at=at)["available"]) == (370, 140)
    assert after["loyalty_accounts"] == before["loyalty_accounts"] + (kind == "earn_new_member")
    check = ledger.check()
    assert check["ok"], check


def test_a_key_reused_for_a_different_request_is_refused_and_writes_nothing(workers, ledger, store_url):
    ledger.earn("alice", 300, key="seed", at=T0)
    at = T0 + dt.timedelta(hours=1)
    ledger.redeem("alice", 50, key="used", at=at)
    before = counts(ledger.store)
    different: list[loyalty_worker.Request] = [
        ("redeem", ("alice", 60), {"key": "used", "at": at}),  # other points
        ("redeem", ("alice", 50), {"key": "used", "at": at, "order_id": "o-9"}),  # other order
        ("earn", ("alice", 50), {"key": "used", "at": at}),  # other kind
        ("earn", ("zed", 50), {"key": "used", "at": at}),  # a new member: the account is not kept
        ("adjust", ("alice", -50), {"key": "used", "reason": "typo", "at": at}),
        ("transfer", ("alice", "bob", 50), {"key": "used", "at": at}),  # bob is no member: refused either way
    ]

    outcomes = workers.run(store_url, [[r] for r in different])

    statuses = [o[0][0] for o in outcomes]
    assert statuses[:5] == ["conflict"] * 5, outcomes
    assert statuses[5] in ("conflict", "refused"), outcomes
    assert counts(ledger.store) == before
    assert ledger.balance("alice", at=at)["available"] == 250
    with ledger.store.engine.connect() as c:
        assert c.execute(sa.select(LoyaltyAccount.customer_id)).scalars().all() == ["alice"]
    assert ledger.redeem("alice", 50, key="used", at=at)["replayed"] is True


def test_one_new_key_raced_with_different_requests_is_won_by_exactly_one(workers, ledger, store_url):
    ledger.earn("alice", 1000, key="seed", at=T0)
    at = T0 + dt.timedelta(hours=1)
    before = counts(ledger.store)

    outcomes = workers.run(store_url, [[("redeem", ("alice", 10 * (p + 1)), {"key": "race", "at": at})]
                                         for p in range(6)])

    statuses = [o[0][0] for o in outcomes]
    assert sorted(statuses) == ["conflict"] * 5 + ["ok"], outcomes
    winner = next(o[0][1] for o in outcomes if o[0][0] == "ok")
    assert winner["replayed"] is False
    after = counts(ledger.store)
    assert after["loyalty_operations"] == before["loyalty_operations"] + 1
    assert after["loyalty_entries"] == before["loyalty_entries"] + 2
    assert ledger.balance("alice", at=at)["available"] == 1000 - winner["redeemed"]
    assert customer_entry_sum(ledger.store, "alice") == 1000 - winner["redeemed"]
    assert ledger.check()["ok"]


# ---------------------------------------------------------------------- no deadlock
def test_opposite_transfers_do_not_deadlock_and_conserve_points(workers, ledger, store_url):
    ledger.earn("a", 1000, key="seed-a", at=T0)
    ledger.earn("b", 1000, key="seed-b", at=T0)
    at = T0 + dt.timedelta(hours=1)
    requests = []
    for p in range(4):
        source, target = ("a", "b") if p % 2 == 0 else ("b", "a")
        requests.append([("transfer", (source, target, 17 + 13 * ((p * 7 + i) % 11)), {"key": f"t-{p}-{i}", "at": at})
                         for i in range(30)])

    outcomes = workers.run(store_url, requests)

    flat = [o for per_process in outcomes for o in per_process]
    assert {status for status, _ in flat} <= {"ok", "insufficient"}
    ok = [result for status, result in flat if status == "ok"]
    assert ok, "no transfer went through"
    a, b = (ledger.balance(c, at=at)["available"] for c in ("a", "b"))
    assert a + b == 2000
    assert a >= 0 and b >= 0
    net_to_b = sum(r["points"] if r["from"] == "a" else -r["points"] for r in ok)
    assert (a, b) == (1000 - net_to_b, 1000 + net_to_b)
    assert customer_entry_sum(ledger.store, "a") + customer_entry_sum(ledger.store, "b") == 2000
    with ledger.store.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(LoyaltyOperation).where(
            LoyaltyOperation.kind == "transfer")).scalar_one() == len(ok)
        assert c.execute(sa.select(sa.func.count()).select_from(LoyaltyLot).where(
            LoyaltyLot.remaining < 0)).scalar_one() == 0
    check = ledger.check()
    assert check["ok"], check
