"""Churn end to end on 1M customers / 30M orders: point-in-time features for every cutoff
of the training plan, LightGBM training with calibration and the out-of-time test, then
scoring — Retentio (features in DuckDB through Ibis) against a straightforward pandas
feature pipeline of the same order features feeding the same model, in the same run.

    python bench/churn.py --customers 1000000 --orders 30000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import table, write_section  # noqa: E402

START = "2023-01-01"
#: about a quarter of the generated orders fall after the data end and are dropped
RAW_PER_KEPT = 1.35
DAYS = 1095


def make_data(folder: Path, customers: int, orders: int) -> None:
    """Customers live from a start day to an end day (some beyond the data); orders fall
    uniformly inside each life, so leaving shows as a widening gap."""
    con = duckdb.connect()
    con.sql(f"""
        CREATE TABLE c AS
        SELECT i AS k, 'C' || i::VARCHAR AS customer_id,
               (hash(i) % {DAYS - 60})::INT AS s,
               least((hash(i) % {DAYS - 60})::INT + 30 + (hash(i * 3) % 1400)::INT, {DAYS + 400}) AS e,
               (hash(i * 5) % 4)::VARCHAR AS segment
        FROM range({customers}) t(i)
    """)
    con.sql(f"""
        COPY (
          SELECT 'O' || i::VARCHAR AS order_id, c.customer_id,
                 TIMESTAMP '{START}' + to_seconds(((c.s + (hash(i * 7) % (c.e - c.s)) ) * 86400
                                                   + hash(i * 11) % 86400)::BIGINT) AS ordered_at,
                 round((hash(i * 13) % 20000) / 100.0 + 1, 2)::DECIMAL(18,4) AS amount,
                 'completed' AS status
          FROM range({int(orders * RAW_PER_KEPT)}) t(i) JOIN c ON c.k = i % {customers}
          WHERE c.s + (hash(i * 7) % (c.e - c.s)) < {DAYS}
        ) TO '{folder / "orders.parquet"}' (FORMAT parquet)
    """)
    con.sql(f"""COPY (SELECT customer_id, TIMESTAMP '{START}' + to_seconds(s::BIGINT * 86400) AS signup_at, segment
                      FROM c) TO '{folder / "customers.parquet"}' (FORMAT parquet)""")


# ----------------------------------------------------------------------------- implementations
def run_retentio(folder: Path, out: Path) -> dict:
    from retentio import Workspace
    from retentio.analytics.churn import train as churn

    ws = Workspace.init(out / "ws", tables={"orders": str(folder / "orders.parquet"),
                                            "customers": str(folder / "customers.parquet")})
    t0 = time.perf_counter()
    report = churn.train(ws, threads=2, backtest=1)
    t1 = time.perf_counter()
    scored = churn.score(ws)
    t2 = time.perf_counter()
    again = churn.score(ws)  # the same model, day and data: the snapshot is read back
    t3 = time.perf_counter()
    assert again.attrs["snapshot_reused"] and len(again) == len(scored)
    return {"train_s": t1 - t0, "score_s": t2 - t1, "rescore_s": t3 - t2, "roc_auc": report["roc_auc"],
            "n_train": report["n_train"], "scored": len(scored)}


def pandas_features(orders, customers, cutoff):
    """The order features of retentio.analytics.churn.features, in plain pandas."""
    import numpy as np
    import pandas as pd

    o = orders[orders.ordered_at < cutoff]
    age = (cutoff - o.ordered_at).dt.total_seconds() / 86400
    o = o.assign(age=age, day=o.ordered_at.dt.normalize())
    g = o.groupby("customer_id")
    f = pd.DataFrame({
        "last_age": g.age.min(), "first_age": g.age.max(), "frequency": g.size(),
        "revenue_total": g.amount.sum(),
        "revenue_365": o[o.age < 365].groupby("customer_id").amount.sum(),
        "orders_30": o[o.age < 30].groupby("customer_id").size(),
        "orders_prev_30": o[(o.age >= 30) & (o.age < 60)].groupby("customer_id").size(),
        "spend_90": o[o.age < 90].groupby("customer_id").amount.sum(),
        "spend_prev_90": o[(o.age >= 90) & (o.age < 180)].groupby("customer_id").amount.sum(),
    })
    for c in ("revenue_365", "orders_30", "orders_prev_30", "spend_90", "spend_prev_90"):
        f[c] = f[c].fillna(0)
    out = pd.DataFrame(index=f.index)
    out["recency_days"] = f.last_age
    out["frequency"] = f.frequency.astype(float)
    out["monetary_avg"] = f.revenue_total / f.frequency
    out["orders_30"], out["orders_prev_30"] = f.orders_30, f.orders_prev_30
    out["order_trend_30"] = f.orders_30 - f.orders_prev_30
    prev = f.spend_prev_90.where(f.spend_prev_90 > 0)
    out["spend_trend_90_pct"] = 100 * (f.spend_90 - f.spend_prev_90) / prev
    gap = (f.first_age - f.last_age) / (f.frequency - 1).where(f.frequency > 1)
    out["mean_gap_days"] = gap
    out["overdue_ratio"] = f.last_age / gap.where(gap > 0)
    c = customers.set_index("customer_id")
    tenure = (cutoff - c.signup_at).dt.total_seconds() / 86400
    out["tenure_days"] = np.fmax(f.first_age, tenure.reindex(out.index))
    out["segment"] = c.segment.reindex(out.index).astype("string")
    return out.reset_index()


def run_pandas(folder: Path, out: Path) -> dict:
    import numpy as np
    import pandas as pd

    from retentio.analytics.churn.model import ChurnModel
    from retentio.analytics.churn.train import plan

    t0 = time.perf_counter()
    orders = pd.read_parquet(folder / "orders.parquet", columns=["customer_id", "ordered_at", "amount"])
    orders["amount"] = orders.amount.astype("float64")
    customers = pd.read_parquet(folder / "customers.parquet")
    as_of = orders.ordered_at.max().normalize() + pd.Timedelta(days=1)
    p = plan(as_of, 90)

    def labelled(cut):
        f = pandas_features(orders, customers, cut)
        f = f[f.recency_days < 90]
        after = orders[(orders.ordered_at >= cut) & (orders.ordered_at < cut + pd.Timedelta(days=90))]
        f["churned"] = (~f.customer_id.isin(after.customer_id)).astype(int)
        return f

    train = pd.concat([labelled(c) for c in p.train], ignore_index=True)
    cal, test = labelled(p.calibration), labelled(p.test)
    cols = [c for c in train.columns if c not in ("customer_id", "churned")]
    model = ChurnModel(threads=2).fit(train[cols], train.churned, cal[cols], cal.churned)
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(test.churned, model.predict_proba(test[cols]))
    t1 = time.perf_counter()
    now = pandas_features(orders, customers, as_of)
    now = now[now.recency_days < 90]
    prob = model.predict_proba(now[cols])
    model.contributions(now[cols])
    t2 = time.perf_counter()
    return {"train_s": t1 - t0, "score_s": t2 - t1, "roc_auc": float(auc), "n_train": len(train),
            "scored": int(np.size(prob))}


IMPLS = {"retentio": run_retentio, "pandas": run_pandas}


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=30_000_000)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        res = IMPLS[args.child[0]](Path(args.child[1]), Path(args.child[2]))
        res["peak_mb"] = peak_mb()
        print(json.dumps(res))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="retentio-churn-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        make_data(folder, args.customers, args.orders)
        n_orders = duckdb.sql(f"SELECT count(*) FROM '{folder / 'orders.parquet'}'").fetchall()[0][0]
        print(f"{n_orders:,} orders generated in {time.perf_counter() - t:.0f}s", flush=True)
        for impl in IMPLS:
            out = folder / f"out_{impl}"
            out.mkdir()
            proc = subprocess.run([sys.executable, __file__, "--child", impl, str(folder), str(out)],
                                  capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{impl} failed")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(impl, r, flush=True)
            rows.append({"implementation": impl, "customers": f"{args.customers:,}", "orders": f"{n_orders:,}",
                         "features + training (s)": f"{r['train_s']:.1f}", "scoring (s)": f"{r['score_s']:.1f}",
                         "end to end (s)": f"{r['train_s'] + r['score_s']:.1f}",
                         "scoring again (s)": f"{r['rescore_s']:.1f}" if "rescore_s" in r else "—",
                         "peak memory (MB)": f"{r['peak_mb']:,.0f}",
                         "training rows": f"{r['n_train']:,}", "test ROC-AUC": f"{r['roc_auc']:.3f}"})
    body = (table(rows) + "\n\nBoth build point-in-time features at the 8 cutoffs of the training plan (6 training, "
            "calibration, test; 90-day horizon), train the same LightGBM model (2 threads) with isotonic calibration "
            "and score the customers active at the end of the data. Retentio computes its features in DuckDB through "
            "Ibis and also fits a BG/NBD P(alive) per cutoff, the logistic baseline, and a 12-month CLV (BG/NBD + "
            "Gamma-Gamma) for value at risk, writes reasons for every scored customer and saves them all as a score "
            "snapshot in the workspace's store (SQLite), which scoring again on the same model, day and data reads "
            "back; the pandas pipeline builds "
            "only the order features (no P(alive), no baseline, no CLV, no reasons). Data: orders only plus a "
            "customers table with a signup date and a segment. Target: under 3 minutes end to end.")
    write_section("Churn: features, training and scoring at 1M customers", body)


if __name__ == "__main__":
    main()
