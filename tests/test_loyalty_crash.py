"""``apply-orders`` killed with SIGKILL midway and run again ends with the same ledger as
one uninterrupted run (on SQLite and on a real PostgreSQL server).

Synthetic, deterministic data: 1,200 customers, 12,000 orders over two years, ~6 %
returned and ~2 % cancelled. Store A first gets a history, in this process: the first
year as it was known at its end (the orders returned later still completed), then
redemptions by members who will return an order. So the crash-tested run — the second
year with the final statuses — also reverses first-year orders, some of them already
spent (the returns policy ``other_lots`` takes the shortfall from the other lots, or
writes it off). Store B starts as a copy of A (the SQLite file copied, or a PostgreSQL
database made with A as its template). Then the second year runs, each run a process
of ``tests/loyalty_crash_worker.py``: on A without interruption; on B in batches of 50
members, killed with SIGKILL between a quarter and three quarters of the way, run
again to the end, and once more, which must write nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from retentio.actions.loyalty.ledger import Ledger
from retentio.actions.loyalty.orders import OrderInputs, apply_orders
from retentio.actions.loyalty.programs import parse_program
from retentio.data.store import Store

WORKER = Path(__file__).with_name("loyalty_crash_worker.py")
NAME = "club"
PROGRAM = """kind = "points"
[earn]
per_amount = 1.0
pending_days = 14
welcome = 100
[expiry]
days = 180
[returns]
policy = "other_lots"
[tiers]
basis = "spend"
window_days = 365
review_days = 90
downgrade = "one_level"
levels = [
  { name = "Bronze", threshold = 0 },
  { name = "Silver", threshold = 500, earn_multiplier = 1.25 },
  { name = "Gold", threshold = 1500, earn_multiplier = 1.5 },
]
"""
START, MID, END = dt.datetime(2024, 1, 1), dt.datetime(2025, 1, 1), dt.datetime(2026, 1, 1)
CUSTOMERS, ORDERS, BATCH = 1200, 12000, 50
#: a worker that takes longer is stuck
RUN_TIMEOUT = 180


# ---------------------------------------------------------------------- data
def synthetic_orders(seed: int = 20260301) -> pd.DataFrame:
    """Orders of CUSTOMERS customers (some buy far more often than others) spread over
    START … END: order_id, customer_id, ordered_at, amount, status."""
    rng = np.random.default_rng(seed)
    weights = rng.gamma(0.7, size=CUSTOMERS)
    # every customer orders at least once; the rest of the orders go by the weights
    customer = rng.permutation(np.concatenate([np.arange(CUSTOMERS), rng.choice(
        CUSTOMERS, size=ORDERS - CUSTOMERS, p=weights / weights.sum())]))
    seconds = rng.integers(0, int((END - START).total_seconds()), size=ORDERS)
    frame = pd.DataFrame({
        "order_id": [f"o{i:06d}" for i in range(ORDERS)],
        "customer_id": [f"c{c:05d}" for c in customer],
        "ordered_at": pd.Timestamp(START) + pd.to_timedelta(seconds, unit="s"),
        "amount": np.round(rng.lognormal(3.8, 0.8, size=ORDERS), 2),
        "status": rng.choice(["completed", "returned", "cancelled"], size=ORDERS, p=[0.92, 0.06, 0.02]),
    })
    assert frame["ordered_at"].dtype.kind == "M"
    return frame


def first_year(url: str, orders: pd.DataFrame) -> int:
    """The first year as it was known at its end (the orders returned later still
    completed); then, at its end, every other member who will return a first-year order
    redeems four fifths of the available points. The number of redemptions."""
    year = orders[orders["ordered_at"] < MID]
    as_known = year.assign(status=year["status"].replace({"returned": "completed"}))
    returning = sorted(set(year.loc[year["status"] == "returned", "customer_id"]))
    redeemed = 0
    with Store.open(url) as store:
        ledger = Ledger(store, parse_program(PROGRAM, f"{NAME}.toml", NAME), actor="crash-test")
        apply_orders(ledger, OrderInputs(orders=as_known), START, MID, batch_size=CUSTOMERS)
        for customer in returning[::2]:
            available = ledger.balance(customer, at=MID)["available"]
            if available >= 20:
                ledger.redeem(customer, available - available // 5, key=f"redeem:{customer}", at=MID)
                redeemed += 1
    return redeemed


# ---------------------------------------------------------------------- the worker
def start_worker(tmp_path: Path, url: str, orders_file: Path, tag: str) -> subprocess.Popen:
    """A worker process running the second year on ``url`` (tests/loyalty_crash_worker.py)."""
    task = tmp_path / f"task-{tag}.json"
    task.write_text(json.dumps({"url": url, "orders": str(orders_file), "program": PROGRAM, "name": NAME,
                                "from": MID.isoformat(), "to": END.isoformat(), "batch_size": BATCH}),
                    encoding="utf-8")
    return subprocess.Popen([sys.executable, str(WORKER), str(task)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict[str, Any]:
    """Wait for a worker to end well; the run's result."""
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the worker did not finish in {RUN_TIMEOUT} s:\n{err}")
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "ready", out
    return json.loads(lines[-1])


def operations(engine: sa.Engine) -> int:
    """loyalty_operations' rows, read outside any writer's transaction."""
    for attempt in range(50):
        try:
            with engine.connect() as c:
                return int(c.exec_driver_sql("SELECT count(*) FROM loyalty_operations").scalar())
        except sa.exc.OperationalError:  # SQLite busy for a moment (a checkpoint)
            if attempt == 49:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")


def kill_midway(proc: subprocess.Popen, engine: sa.Engine, low: int, high: int) -> int:
    """SIGKILL the worker as soon as loyalty_operations holds between ``low`` and
    ``high`` rows; the count after the kill."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the worker ended ({proc.returncode}) before it was killed:\n{proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the worker made no progress")
        n = operations(engine)
        if n > high:
            proc.kill()
            proc.wait()
            pytest.fail(f"the run went past {high} operations ({n}) before it could be killed: poll faster")
        if n >= low:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return operations(engine)


# ---------------------------------------------------------------------- the ledger as data
def snapshot(engine: sa.Engine) -> dict[str, Any]:
    """Everything the ledger holds, without the ids and creation times that depend on
    how the rows were written: sets of the rows with unique keys, multisets of the rest
    (JSON as the text stored, which both runs write the same way)."""
    with engine.connect() as c:
        def rows(sql: str) -> list[tuple]:
            return [tuple(r) for r in c.exec_driver_sql(sql)]

        def unique(sql: str) -> set[tuple]:
            found = rows(sql)
            assert len(set(found)) == len(found), sql
            return set(found)

        return {
            "operations": unique("SELECT program, key, kind, customer_id, CAST(request AS TEXT), "
                                 "CAST(result AS TEXT), request_hash, at FROM loyalty_operations"),
            "entries": Counter(rows("SELECT program, key, customer_id, account, kind, amount, lot_id, order_id, "
                                    "policy, reason, at FROM loyalty_entries")),
            "lots": unique("SELECT id, program, customer_id, points, remaining, spent, released, reversed, "
                           "earned_at, available_at, expires_at, order_id, source FROM loyalty_lots"),
            "accounts": unique("SELECT program, customer_id, available, pending, tier, tier_reviewed_at, "
                               "last_purchase_at, joined_at FROM loyalty_accounts"),
            "events": unique("SELECT program, key, kind, customer_id, from_value, to_value, CAST(detail AS TEXT), at "
                             "FROM loyalty_events"),
        }


def check_ok(url: str) -> None:
    with Store.open(url) as store:
        report = Ledger(store, parse_program(PROGRAM, f"{NAME}.toml", NAME)).check()
    assert report["ok"], report
    assert report["accounts"] > CUSTOMERS * 0.9


# ---------------------------------------------------------------------- stores
def analyze(url: str) -> None:
    """Gather the planner's statistics, as a store in use has them. Without any (a new
    database that autovacuum has not analysed yet) PostgreSQL looks operations up on the
    index (program, customer_id) with only ``program`` as its condition, reading every
    operation of the program: for a batch's known keys, and — in a plan kept for the
    whole session — for the foreign key check of every entry written, which makes a run
    quadratic in the operations it writes."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def copy_store(url: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A second store holding what the store at ``url`` holds (no process may be using
    it): a copy of the SQLite file, or a PostgreSQL database made from it as a template
    on the same server (dropped by the function returned)."""
    if url.startswith("sqlite"):
        copy = tmp_path / "store-b.sqlite"
        source, target = sqlite3.connect(sa.make_url(url).database), sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return f"sqlite:///{copy}", lambda: None
    name = f"retentio_crash_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(request.getfixturevalue("postgres_server"), isolation_level="AUTOCOMMIT")
    template = sa.make_url(url).database
    for attempt in range(100):  # the last worker's server process may take a moment to end
        try:
            with admin.connect() as c:
                c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            break
        except sa.exc.OperationalError as exc:
            if "is being accessed by other users" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.1)

    def drop() -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return sa.make_url(url).set(database=name).render_as_string(hide_password=False), drop


# ---------------------------------------------------------------------- the test
def test_apply_orders_killed_midway_and_run_again_equals_one_uninterrupted_run(store_url, tmp_path, request):
    orders = synthetic_orders()
    assert orders["customer_id"].nunique() == CUSTOMERS
    assert 0.05 < (orders["status"] == "returned").mean() < 0.07
    assert 0.015 < (orders["status"] == "cancelled").mean() < 0.025
    orders_file = tmp_path / "orders.parquet"
    orders.to_parquet(orders_file, index=False)
    # the first year on A; B starts as a copy of it
    url_a = store_url
    assert first_year(url_a, orders) > 50
    analyze(url_a)
    url_b, drop_b = copy_store(url_a, request, tmp_path)
    engine_a, engine_b = sa.create_engine(url_a), sa.create_engine(url_b)
    try:
        before = snapshot(engine_a)
        assert snapshot(engine_b) == before
        base = len(before["operations"])
        assert operations(engine_b) == base

        # A: the second year in one uninterrupted run
        result_a = finish(start_worker(tmp_path, url_a, orders_file, "a"))
        a = snapshot(engine_a)
        total = len(a["operations"])
        assert result_a["operations"] == total - base > 12000
        assert result_a["batches"] >= 20
        # the run does what the crash must not spoil: joins, earnings, releases, expiries,
        # tier changes both ways, reversals of spent first-year orders under the policy
        kinds = Counter(op[2] for op in a["operations"] - before["operations"])
        assert {"earn", "release", "expire", "reverse"} <= set(kinds), kinds
        events = Counter(e[2] for e in a["events"] - before["events"])
        assert {"join", "tier_up", "tier_down"} <= set(events), events
        policies = Counter(entry[8] for entry in (a["entries"] - before["entries"]).elements())
        assert {"other_lots", "write_off"} <= set(policies), policies

        # B: the same run killed midway (a quarter to three quarters of the way) …
        proc = start_worker(tmp_path, url_b, orders_file, "b1")
        span = total - base
        killed_at = kill_midway(proc, engine_b, base + span // 4, base + span * 3 // 4)
        assert base < killed_at < total
        # … and run again to the end
        result_b = finish(start_worker(tmp_path, url_b, orders_file, "b2"))
        b = snapshot(engine_b)
        for part in ("operations", "entries", "lots", "accounts", "events"):
            assert b[part] == a[part], f"{part} differ: only in A {_diff(a[part], b[part])}, " \
                                       f"only in B {_diff(b[part], a[part])}"
        assert result_b["operations"] == total - killed_at
        check_ok(url_a)
        check_ok(url_b)

        # once more: nothing new anywhere
        result_c = finish(start_worker(tmp_path, url_b, orders_file, "b3"))
        assert result_c["operations"] == 0
        assert snapshot(engine_b) == b
    finally:
        engine_a.dispose()
        engine_b.dispose()
        drop_b()


def _diff(x: Any, y: Any) -> list:
    """A few of what ``x`` holds and ``y`` does not (for the failure message)."""
    rest = x - y
    return sorted(rest, key=str)[:5] if isinstance(rest, set) else list(rest.items())[:5]
