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


def run_processes(url: str, requests: list[list[loyalty_worker.Request]]) -> list[list[tuple[str, Any]]]:
    """Run one process per list of requests, all started together; their outcomes in order."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(requests))
    out = ctx.Queue()
    processes = [ctx.Process(target=loyalty_worker.run, args=(i, url, PROGRAM_TOML, PROGRAM, reqs, barrier, out),
                             daemon=True) for i, reqs in enumerate(requests)]
    for p in processes:
        p.start()
    results: dict[int, list[tuple[str, Any]]] = {}
    try:
        for _ in processes:
            index, outcomes = out.get(timeout=PROCESS_TIMEOUT)
            results[index] = outcomes
    except queue.Empty:
        pytest.fail(f"processes {sorted(set(range(len(processes))) - set(results))} did not finish in "
                    f"{PROCESS_TIMEOUT} s (a deadlock?)")
    finally:
        for p in processes:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    errors = [(i, o) for i, outcomes in results.items() for o in outcomes if o[0] == "error"]
    assert errors == [], errors
    return [results[i] for i in range(len(processes))]


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
def test_concurrent_redemptions_never_overdraw(ledger, store_url):
    ledger.earn("alice", 1000, key="seed", at=T0)
    requests = [[("redeem", ("alice", 10), {"key": f"r-{p}-{i}", "at": T0 + dt.timedelta(minutes=1)})
                 for i in range(25)] for p in range(8)]

    outcomes = [o for per_process in run_processes(store_url, requests) for o in per_process]

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
def test_one_key_sent_by_many_processes_at_once_is_done_once(ledger, store_url, kind):
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

    outcomes = [o for per_process in run_processes(store_url, [[request]] * 6) for o in per_process]

    assert [status for status, _ in outcomes] == ["ok"] * 6, outcomes
    results = [result for _, result in outcomes]
    assert sum(not r["replayed"] for r in results) == 1
    assert all(without_replayed(r) == without_replayed(results[0]) for r in results)
    after = counts(ledger.store)
    with ledger.store.engine.connect() as c:
        operations = c.execute(sa.select(LoyaltyOperation.id).where(LoyaltyOperation.key == "same")).scalars().all()
        assert len(operations) == 1
        entries = c.execute(sa.select(LoyaltyEntry.operation_id, LoyaltyEntry.customer_id, LoyaltyEntry.account,
                                      LoyaltyEntry.amount).where(LoyaltyEntry.key == "same")).all()
    assert {e.operation_id for e in entries} == set(operations)
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


def test_a_key_reused_for_a_different_request_is_refused_and_writes_nothing(ledger, store_url):
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

    outcomes = run_processes(store_url, [[r] for r in different])

    statuses = [o[0][0] for o in outcomes]
    assert statuses[:5] == ["conflict"] * 5, outcomes
    assert statuses[5] in ("conflict", "refused"), outcomes
    assert counts(ledger.store) == before
    assert ledger.balance("alice", at=at)["available"] == 250
    with ledger.store.engine.connect() as c:
        assert c.execute(sa.select(LoyaltyAccount.customer_id)).scalars().all() == ["alice"]
    assert ledger.redeem("alice", 50, key="used", at=at)["replayed"] is True


def test_one_new_key_raced_with_different_requests_is_won_by_exactly_one(ledger, store_url):
    ledger.earn("alice", 1000, key="seed", at=T0)
    at = T0 + dt.timedelta(hours=1)
    before = counts(ledger.store)

    outcomes = run_processes(store_url, [[("redeem", ("alice", 10 * (p + 1)), {"key": "race", "at": at})]
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
def test_opposite_transfers_do_not_deadlock_and_conserve_points(ledger, store_url):
    ledger.earn("a", 1000, key="seed-a", at=T0)
    ledger.earn("b", 1000, key="seed-b", at=T0)
    at = T0 + dt.timedelta(hours=1)
    requests = []
    for p in range(4):
        source, target = ("a", "b") if p % 2 == 0 else ("b", "a")
        requests.append([("transfer", (source, target, 17 + 13 * ((p * 7 + i) % 11)), {"key": f"t-{p}-{i}", "at": at})
                         for i in range(30)])

    outcomes = run_processes(store_url, requests)

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
