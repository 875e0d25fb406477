"""The command line as a user runs it: start-up of ``--help`` and a whole-process CLV fit,
each a fresh process timed from start to exit.

    python bench/cli_process.py --customers 1000000

(a) ``retentio --help``, ``retentio load --help``, ``retentio clv fit --help`` and
``retentio churn score --help``: median of 7 runs each (target: under 0.25 s).

(b) A 1,000,000-customer summary CSV (frequency, recency, T in weeks) simulated from
BG/NBD with CDNOW's published parameters (r 0.243, α 4.414, a 0.793, b 2.426; Fader,
Hardie & Lee 2005), T uniform over 1..78 weeks in whole days, seeded, written to a
temporary folder. Timed, median of 3, interleaved: ``retentio clv fit --summary FILE
--json`` against the same work done with lifetimes — ``pd.read_csv`` then
``BetaGeoFitter().fit(df.frequency, df.recency, df["T"])`` in a fresh Python (target:
Retentio at least 10x faster). Both fits' parameters are reported with their largest
relative difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import table, write_section  # noqa: E402

#: CDNOW's BG/NBD estimates (Fader, Hardie & Lee 2005), weeks
CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
HELP = [["--help"], ["load", "--help"], ["clv", "fit", "--help"], ["churn", "score", "--help"]]
PEER = """\
import json, sys
import pandas as pd
from lifetimes import BetaGeoFitter
df = pd.read_csv(sys.argv[1])
m = BetaGeoFitter().fit(df.frequency, df.recency, df["T"])
print(json.dumps({k: float(v) for k, v in m.params_.items()}))
"""


def simulate(n: int, path: Path, seed: int = 2005) -> None:
    """BG/NBD customers: λ ~ Gamma(r, α), p ~ Beta(a, b); K ~ Poisson(λT) purchases, of
    which the first min(K, D) happen, D ~ Geometric(p) the purchase after which the
    customer leaves; the last purchase is the x-th of K uniform order statistics. Times
    in weeks, recorded to the day, written with two decimals as CDNOW's summary is."""
    rng = np.random.default_rng(seed)
    T = np.floor(rng.uniform(7, 78 * 7 + 1, n)) / 7
    lam = rng.gamma(CDNOW["r"], 1 / CDNOW["alpha"], n)
    p = rng.beta(CDNOW["a"], CDNOW["b"], n)
    k = rng.poisson(lam * T)
    x = np.minimum(k, rng.geometric(p))
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(k - x + 1, 1)), 0.0)
    t_x = np.minimum(np.floor(t_x * 7) / 7, T)
    with open(path, "w") as f:
        f.write("frequency,recency,T\n")
        np.savetxt(f, np.column_stack([x, t_x, T]), fmt=["%d", "%.2f", "%.2f"], delimiter=",")


def timed(cmd: list[str]) -> tuple[float, str]:
    """Seconds from start to exit of ``cmd``, and its stdout (a failure stops the bench)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return seconds, proc.stdout


def retentio_command() -> str:
    beside = Path(sys.executable).with_name("retentio")
    found = str(beside) if beside.exists() else shutil.which("retentio")
    if not found:
        raise SystemExit("the retentio command is not installed: pip install -e .")
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3, help="whole-process fits per implementation")
    ap.add_argument("--startup-runs", type=int, default=7, help="runs per --help command")
    args = ap.parse_args()
    retentio = retentio_command()
    load = os.getloadavg()[0]

    # (a) start-up
    start_rows = []
    base = [timed([sys.executable, "-c", "pass"])[0] for _ in range(args.startup_runs)]
    start_rows.append({"command": "`python -c pass` (the interpreter alone)",
                       "median (s)": f"{statistics.median(base):.3f}", "min (s)": f"{min(base):.3f}",
                       "target": "", "met": ""})
    for argv in HELP:
        cmd = [retentio, *argv]
        timed(cmd)  # warm the file cache
        runs = [timed(cmd)[0] for _ in range(args.startup_runs)]
        med = statistics.median(runs)
        start_rows.append({"command": f"`retentio {' '.join(argv)}`", "median (s)": f"{med:.3f}",
                           "min (s)": f"{min(runs):.3f}", "target": "< 0.25 s",
                           "met": "yes" if med < 0.25 else "**no**"})
        print(start_rows[-1], flush=True)

    # (b) whole-process CLV fit
    with tempfile.TemporaryDirectory(prefix="retentio-cli-") as tmp:
        data = Path(tmp) / "summary.csv"
        simulate(args.customers, data)
        peer = Path(tmp) / "lifetimes_fit.py"
        peer.write_text(PEER)
        size_mb = data.stat().st_size / 1e6
        ours_cmd = [retentio, "clv", "fit", "--summary", str(data), "--json"]
        peer_cmd = [sys.executable, str(peer), str(data)]
        timed(ours_cmd)  # warm the file cache (and check that it runs)
        ours, theirs = [], []
        for _ in range(args.runs):
            seconds, out = timed(ours_cmd)
            ours.append(seconds)
            ours_fit = json.loads(out)
            seconds, out = timed(peer_cmd)
            theirs.append(seconds)
            peer_params = json.loads(out.strip().splitlines()[-1])
            print(f"retentio {ours[-1]:.2f} s, lifetimes {theirs[-1]:.2f} s", flush=True)
    params = ours_fit["params"]
    rel = max(abs(peer_params[k] / params[k] - 1) for k in params)
    ratio = statistics.median(theirs) / statistics.median(ours)
    fit_rows = [
        {"implementation": "`retentio clv fit --summary FILE --json`", "median (s)": f"{statistics.median(ours):.2f}",
         "runs (s)": ", ".join(f"{s:.2f}" for s in ours), "vs retentio": "",
         "parameters": ", ".join(f"{k} {v:.4g}" for k, v in params.items())},
        {"implementation": "python + pandas.read_csv + lifetimes `BetaGeoFitter().fit`",
         "median (s)": f"{statistics.median(theirs):.2f}", "runs (s)": ", ".join(f"{s:.2f}" for s in theirs),
         "vs retentio": f"{ratio:.1f}x slower", "parameters": f"max rel. diff {rel:.1e}"},
    ]
    body = (
        "Start-up: each command is a fresh process, timed from start to exit "
        f"(median and minimum of {args.startup_runs} runs after one warm-up).\n\n"
        + table(start_rows)
        + f"\n\nWhole-process BG/NBD fit of {args.customers:,} customers: a {size_mb:.0f} MB summary CSV "
        "(frequency, recency, T) simulated from BG/NBD with CDNOW's parameters (r 0.243, α 4.414, a 0.793, "
        "b 2.426), T uniform over 1..78 weeks in whole days, seed 2005. Each run is a fresh process from start "
        f"to exit — imports, reading the CSV, the fit and the output — median of {args.runs}, the two "
        "implementations interleaved. The lifetimes run is what a lifetimes user writes: `pd.read_csv` then "
        "`BetaGeoFitter().fit(df.frequency, df.recency, df[\"T\"])`.\n\n"
        + table(fit_rows)
        + f"\n\nRetentio is **{ratio:.1f}x** faster as a whole process (target: at least 10x; "
        f"{'met' if ratio >= 10 else '**not met**'}). Load average when the bench started: {load:.2f}."
    )
    write_section("Command-line start-up and whole-process CLV fit", body)


if __name__ == "__main__":
    main()
