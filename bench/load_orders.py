"""Loading a large orders CSV: Retentio's validated load against a pandas pipeline.

The peer is what people write by hand: ``pandas.read_csv`` with date parsing, the same
checks done with pandas, then storing into DuckDB. Both read the same file in one run.

    python bench/load_orders.py --rows 10000000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_section  # noqa: E402

from retentio import Workspace  # noqa: E402


def make_csv(path: Path, rows: int) -> None:
    customers = max(rows // 10, 1)
    duckdb.sql(f"""
        COPY (
          SELECT 'O' || lpad(i::VARCHAR, 9, '0') AS order_id,
                 'C' || lpad((hash(i) % {customers})::VARCHAR, 8, '0') AS customer_id,
                 strftime(TIMESTAMP '2022-01-01' + INTERVAL (hash(i * 7) % (3 * 365 * 86400)) SECOND,
                          '%Y-%m-%d %H:%M:%S') AS ordered_at,
                 round((hash(i * 13) % 20000) / 100.0 + 1, 2) AS amount,
                 CASE WHEN hash(i * 17) % 100 < 5 THEN 'returned' ELSE 'completed' END AS status
          FROM range({rows}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')
    """)


def retentio_load(path: Path, workdir: Path) -> float:
    ws = Workspace.init(workdir / "ws")
    t0 = time.perf_counter()
    report = ws.load("orders", path)
    elapsed = time.perf_counter() - t0
    assert report.rows_stored == report.rows_read, report
    ws.close()
    return elapsed


def pandas_load(path: Path, workdir: Path) -> float:
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_csv(path, dtype={"order_id": str, "customer_id": str, "status": str})
    df["ordered_at"] = pd.to_datetime(df["ordered_at"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    df["amount"] = pd.to_numeric(df["amount"], errors="coerce")
    bad = (df.ordered_at.isna() | df.amount.isna() | df.order_id.isna() | df.customer_id.isna()
           | ((df.amount < 0) & (df.status == "completed")) | df.order_id.duplicated(keep=False))
    assert not bad.any()
    con = duckdb.connect(str(workdir / "pandas.duckdb"))
    con.register("df", df)
    con.execute("CREATE TABLE orders AS SELECT * FROM df")
    con.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="retentio-bench-"))
    try:
        csv = work / "orders.csv"
        t0 = time.perf_counter()
        make_csv(csv, args.rows)
        print(f"generated {args.rows:,} rows ({csv.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s")
        ours = retentio_load(csv, work)
        print(f"retentio load: {ours:.1f}s")
        peak_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        theirs = pandas_load(csv, work)
        print(f"pandas pipeline: {theirs:.1f}s")
        rows = [
            {"pipeline": "retentio load (validated, atomic)", "rows": f"{args.rows:,}",
             "seconds": f"{ours:.1f}", "rows/s": f"{args.rows / ours:,.0f}"},
            {"pipeline": "pandas read_csv + checks + DuckDB insert", "rows": f"{args.rows:,}",
             "seconds": f"{theirs:.1f}", "rows/s": f"{args.rows / theirs:,.0f}"},
        ]
        body = (table(rows) + f"\n\nCSV of {csv.stat().st_size / 1e6:.0f} MB (5 columns). Peak RSS of the process "
                f"after the Retentio load: {peak_ours:,.0f} MB. Target: well under a minute for 10 million rows.")
        write_section("Loading an orders CSV", body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
