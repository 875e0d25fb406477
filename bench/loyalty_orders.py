"""apply-orders at scale: a points program with pending points, expiry, returns and tiers
run over N synthetic orders (default 10 million, one customer per 10 orders, three years,
6 % returned, 2 % cancelled) in one process, on a SQLite store (and on PostgreSQL at
``--pg-orders``). Reported: wall time, orders per second, operations and entries written,
peak memory, store size, the time of a repeat over the same period (which must write
nothing) and ``check()``.

The peer is the same ledger driven the way a till or a naive import would: one request
(one transaction) per order through ``Ledger.earn`` — run on ``--peer-orders`` orders,
since at its rate 10 million would take hours.

    python bench/loyalty_orders.py [--orders 10000000] [--pg-orders 1000000] [--peer-orders 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from _report import log, peak_mb, table, write_section

PROGRAM = """kind = "points"
point_value = 0.01
[earn]
per_amount = 1
pending_days = 14
[redeem]
max_share = 0.3
[expiry]
days = 365
[returns]
policy = "other_lots"
[tiers]
basis = "spend"
window_days = 365
review_days = 90
downgrade = "one_level"
levels = [{ name = "Bronze", threshold = 0 }, { name = "Silver", threshold = 300, earn_multiplier = 1.25 },
          { name = "Gold", threshold = 1000, earn_multiplier = 1.5 }]
"""
START = dt.datetime(2023, 10, 1)


def orders(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    customers = max(n // 10, 1)
    seconds = rng.integers(0, 3 * 365 * 86400, n)
    status = rng.choice(np.array(["completed", "returned", "cancelled"]), n, p=[0.92, 0.06, 0.02])
    return pd.DataFrame({
        "order_id": np.char.add("o", np.arange(n).astype(str)),
        "customer_id": np.char.add("c", rng.integers(0, customers, n).astype(str)),
        "ordered_at": np.datetime64(START, "s") + seconds.astype("timedelta64[s]"),
        "amount": np.round(rng.lognormal(3.3, 0.7, n), 2),
        "status": status,
    })


def store_size(url: str, path: Path | None) -> str:
    if path is not None:
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return f"{size / 1e9:.2f} GB"
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as c:
        size = c.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    engine.dispose()
    return f"{size / 1e9:.2f} GB"


def count(store, table_name: str) -> int:
    with store.engine.connect() as c:
        return int(c.exec_driver_sql(f"SELECT count(*) FROM {table_name}").scalar())


def bulk(label: str, url: str, frame: pd.DataFrame, sqlite_path: Path | None) -> dict:
    from retentio.actions.loyalty.ledger import Ledger
    from retentio.actions.loyalty.orders import OrderInputs, apply_orders
    from retentio.actions.loyalty.programs import parse_program
    from retentio.data.store import Store

    store = Store.open(url)
    book = Ledger(store, parse_program(PROGRAM, "club.toml", "club"), actor="bench")
    inputs = OrderInputs(orders=frame)
    end = START + dt.timedelta(days=3 * 365 + 1)
    log(f"{label}: apply-orders over {len(frame):,} orders")
    t = time.perf_counter()
    result = apply_orders(book, inputs, START, end, batch_size=5000,
                          progress=lambda i, n: log(f"  batch {i}/{n}") if i % 20 == 0 or i == n else None)
    wall = time.perf_counter() - t
    log(f"{label}: {wall:.0f} s, {result.operations:,} operations; repeating")
    t = time.perf_counter()
    again = apply_orders(book, inputs, START, end, batch_size=5000)
    repeat = time.perf_counter() - t
    check = book.check()
    row = {"store": label, "orders": f"{len(frame):,}", "members": f"{result.members:,}",
           "wall, s": f"{wall:,.0f}", "orders/s": f"{len(frame) / wall:,.0f}",
           "operations": f"{result.operations:,}", "entries": f"{count(store, 'loyalty_entries'):,}",
           "repeat, s (writes)": f"{repeat:,.0f} ({again.operations})", "check": "ok" if check["ok"] else "FAILED",
           "store size": store_size(url, sqlite_path), "peak RSS, MB": f"{peak_mb():,.0f}"}
    store.close()
    return row


def per_request(url: str, frame: pd.DataFrame) -> dict:
    """The peer: one Ledger.earn (one transaction) per completed order."""
    from retentio.actions.loyalty.ledger import Ledger
    from retentio.actions.loyalty.programs import parse_program
    from retentio.actions.loyalty.rules import order_points
    from retentio.data.store import Store

    store = Store.open(url)
    book = Ledger(store, parse_program(PROGRAM, "club.toml", "club"), actor="bench")
    done = frame[frame.status == "completed"].sort_values("ordered_at")
    t = time.perf_counter()
    for r in done.itertuples(index=False):
        at = pd.Timestamp(r.ordered_at).to_pydatetime()
        points = order_points(book.program, float(r.amount), at)
        if points:
            book.earn(r.customer_id, points, key=f"till:{r.order_id}", order_id=r.order_id, at=at, pending=True)
    wall = time.perf_counter() - t
    store.close()
    return {"store": "SQLite, one request per order (peer)", "orders": f"{len(done):,}", "wall, s": f"{wall:,.1f}",
            "orders/s": f"{len(done) / wall:,.0f}"}


def postgres_url() -> str | None:
    import sqlalchemy as sa

    server = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    try:
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        name = f"retentio_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        return sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    except Exception as exc:  # noqa: BLE001 - no server: the PostgreSQL row is left out, and said so
        log(f"PostgreSQL not reachable ({exc}); its row is skipped")
        return None


def drop(url: str) -> None:
    import sqlalchemy as sa

    u = sa.make_url(url)
    admin = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--pg-orders", type=int, default=1_000_000)
    parser.add_argument("--peer-orders", type=int, default=20_000)
    args = parser.parse_args()
    rows: list[dict] = []
    peer: list[dict] = []

    def publish() -> None:
        # after every row, so a long run leaves what it has measured
        body = ("apply-orders (a points program with 14 pending days, 365-day expiry, returns by `other_lots`, "
                "three tiers reviewed every 90 days) over synthetic orders: one customer per 10 orders over three "
                "years, 6 % returned, 2 % cancelled; batches of 5,000 members, one transaction each. The frames "
                "are passed in memory (reading them from the engine is not timed). A repeat over the same period "
                "must write nothing.\n\n" + (table(rows) if rows else "(running)") +
                "\n\nThe peer: the same ledger driven one request (one transaction) per order, as a till or a "
                "naive import would do it:\n\n" + (table(peer) if peer else "(running)") + "\n")
        write_section("Loyalty: apply-orders", body)

    with tempfile.TemporaryDirectory(prefix="retentio-bench-") as tmp:
        path = Path(tmp) / "store.sqlite"
        peer.append(per_request(f"sqlite:///{Path(tmp) / 'peer.sqlite'}", orders(args.peer_orders, seed=3)))
        log(f"peer: {peer[-1]}")
        frame = orders(args.orders)
        rows.append(bulk("SQLite", f"sqlite:///{path}", frame, path))
        del frame
        publish()
        if args.pg_orders:
            url = postgres_url()
            if url:
                try:
                    rows.append(bulk("PostgreSQL", url, orders(args.pg_orders, seed=2), None))
                finally:
                    drop(url)
                publish()


if __name__ == "__main__":
    main()
