"""Campaigns at scale: a win-back campaign planned and run for 1M eligible customers into
the CSV export channel, then 100k messages through SMTP to a local sink server.

1. A workspace with N customers (email, consent_email for 95 %) and their orders, every
   customer's last order more than 60 days before the as-of day, and a ``winback``
   playbook (``[trigger] days = 60``, no segment filter, channel csv, holdout 10 %):
   ``plan_campaign`` and ``run_campaign`` (record + CSV delivery), each in its own
   process (peak memory is that process's high-water mark), then ``run_campaign`` again,
   which must send nothing.
2. A workspace with M customers, ``[channels.email]`` pointing at an SMTP sink on
   127.0.0.1 (aiosmtpd's Controller with a handler that only counts, in its own process;
   ``--sink fast`` adds a minimal asyncio SMTP sink to show whether aiosmtpd is the
   bottleneck) and an email playbook with holdout 0: ``run_campaign``; the sink must have
   received exactly the messages the outbox marks sent, each Message-ID once.

There is no peer to run beside these (Braze, Klaviyo and the like are SaaS); the
numbers are compared with the targets of the product issue instead.

    python bench/campaigns.py --customers 1000000 --smtp-messages 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import table, write_section  # noqa: E402

#: the as-of day of every plan and run (every order is before AS_OF - 60 days)
AS_OF = dt.date(2026, 1, 1)
LAST_ORDER_BEFORE = dt.date(2025, 10, 31)
FIRST_ORDER = dt.date(2023, 1, 1)
CONSENT_SHARE = 0.95
NAMES = ("Anna", "Boris", "Clara", "David", "Elena", "Farid", "Galina", "Hugo", "Irina", "Jon", "Katya", "Leo")
TARGETS = {"plan_s": 30.0, "smtp_per_s": 500.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_mb() -> float:
    """This process's RSS high-water mark (VmHWM: of this process's own memory, unlike
    ru_maxrss, which Linux carries over from the parent across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- data
def make_workspace(folder: Path, customers: int, *, consent_share: float, seed: int = 7):
    """A workspace with ``customers`` customers and 1-5 completed orders each, all
    before LAST_ORDER_BEFORE, loaded through Workspace.load(..., mode="replace")."""
    import numpy as np
    import pandas as pd

    from retentio import Workspace

    rng = np.random.default_rng(seed)
    ws = Workspace.init(folder)
    n = customers
    idx = np.arange(n)
    ids = np.char.add("C", np.char.zfill(idx.astype("U8"), 8))
    signup = np.datetime64(FIRST_ORDER) + rng.integers(0, 365, n).astype("timedelta64[D]")
    cust = pd.DataFrame({
        "customer_id": ids.astype(object),
        "signup_at": signup.astype("datetime64[s]"),
        "email": np.char.add(np.char.add("c", idx.astype("U8")), "@example.com").astype(object),
        "consent_email": rng.random(n) < consent_share,
        "first_name": np.array(NAMES, dtype=object)[rng.integers(0, len(NAMES), n)],
    })
    t0 = time.perf_counter()
    ws.load("customers", cust, mode="replace")
    log(f"customers: {n:,} loaded in {time.perf_counter() - t0:.1f}s")
    k = rng.integers(1, 6, n)  # orders per customer
    owner = np.repeat(idx, k)
    m = len(owner)
    # each customer's orders fall between their signup and LAST_ORDER_BEFORE
    span_s = (np.datetime64(LAST_ORDER_BEFORE) - signup).astype("timedelta64[s]").astype("int64")
    at = signup[owner].astype("datetime64[s]") + (rng.random(m) * span_s[owner]).astype("timedelta64[s]")
    orders = pd.DataFrame({
        "order_id": np.char.add("O", np.char.zfill(np.arange(m).astype("U9"), 9)).astype(object),
        "customer_id": ids[owner].astype(object),
        "ordered_at": at,
        "amount": np.round(rng.gamma(2.0, 30.0, m) + 1.0, 2),
        "status": np.full(m, "completed", dtype=object),
    })
    del cust
    t0 = time.perf_counter()
    ws.load("orders", orders, mode="replace")
    log(f"orders: {m:,} loaded in {time.perf_counter() - t0:.1f}s")
    return ws, m


def configure(ws, *, smtp_port: int | None = None) -> None:
    """No quiet hours (a run at any hour sends at once); the SMTP sink for email."""
    from retentio.data.settings import SETTINGS_FILE

    s = ws.settings
    s.campaigns.quiet_start = s.campaigns.quiet_end = "00:00"  # equal: no quiet hours
    if smtp_port is not None:
        e = s.channels.email
        e.host, e.port, e.security, e.sender = "127.0.0.1", smtp_port, "none", "news@retentio.example"
        e.timeout_s = 30.0
    s.write(ws.path / SETTINGS_FILE)


def write_playbook(ws, name: str, channel: str, holdout_pct: int) -> Path:
    """``playbook new winback`` with channel ``channel``, edited: a fixed 60-day trigger,
    no segment filter (every lapsed customer with an order is in the audience), and the
    holdout share."""
    from retentio.services.campaigns import new_playbook, read

    path = new_playbook(ws, "winback", name, channel=channel)
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'^days = "auto"\ngap_multiplier = 2.0\nmin_days = 45$', "days = 60", text, flags=re.M)
    text = re.sub(r"^segments = \[.*\]\n", "", text, flags=re.M)
    text = re.sub(r"^percent = 10$", f"percent = {holdout_pct}", text, flags=re.M)
    path.write_text(text, encoding="utf-8")
    pb = read(ws, name)
    assert pb.trigger.days == 60 and not pb.audience.segments and pb.holdout.percent == holdout_pct, pb
    assert pb.channel.kind == channel
    return path


# ----------------------------------------------------------------------------- children
class Stages:
    """Wall time of plan / record / deliver inside run_campaign (the functions it calls
    are wrapped, nothing else changes)."""

    def __init__(self) -> None:
        import retentio.actions.campaigns as c
        import retentio.actions.outbox as o

        self.marks: dict[str, float] = {}
        for module, name in ((c, "plan"), (c, "record"), (o, "deliver")):
            setattr(module, name, self._wrap(name, getattr(module, name)))
        self.sent = 0
        self.last_log = time.perf_counter()

    def _wrap(self, name, fn):
        def wrapped(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.marks[name] = self.marks.get(name, 0.0) + time.perf_counter() - t0
        return wrapped

    def progress(self, message: str) -> None:
        if message == "sent":  # once per message recorded
            self.sent += 1
            if time.perf_counter() - self.last_log > 10:
                self.last_log = time.perf_counter()
                log(f"  delivery: {self.sent:,} results recorded")
        else:
            log(f"  {message}")


def child(step: str, folder: Path, name: str, profile: Path | None) -> dict:
    from retentio import Workspace
    from retentio.services import campaigns as svc

    ws = Workspace.open(folder)
    stages = Stages()
    prof = None
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    if step == "plan":
        p = svc.plan_campaign(ws, name, AS_OF, progress=stages.progress)
        out = {"counts": p.counts, "samples": len(p.samples)}
    else:
        r = svc.run_campaign(ws, name, AS_OF, progress=stages.progress)
        out = {"result": r.as_dict(), "counts": r.counts}
    elapsed = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(profile))
    if step != "plan":
        from retentio.actions.outbox import waiting

        out["outbox"] = waiting(ws.store, out["result"]["run_id"])
    ws.close()
    return out | {"seconds": elapsed, "stages": stages.marks, "peak_mb": peak_mb()}


def run_child(step: str, folder: Path, name: str, timeout: float, profile: Path | None = None) -> dict | None:
    cmd = [sys.executable, __file__, "--child", step, str(folder), name]
    if profile is not None:
        cmd += ["--child-profile", str(profile)]
    log(f"{step} {name} ...")
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{step} {name}: did not finish in {timeout:.0f}s")
        return None
    if proc.returncode != 0:
        raise SystemExit(f"{step} {name} failed (exit {proc.returncode})")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"{step} {name}: {res['seconds']:.1f}s, peak {res['peak_mb']:,.0f} MB, stages "
        + ", ".join(f"{k} {v:.1f}s" for k, v in res["stages"].items()))
    return res


# ----------------------------------------------------------------------------- SMTP sinks
def sink_main(kind: str, ids_file: Path) -> None:
    """An SMTP sink on 127.0.0.1 that counts messages and keeps their Message-IDs; prints
    ``ready PORT``, then on a line ``report`` on stdin writes the ids to ``ids_file`` and
    prints counts and its CPU time as JSON."""
    ids: list[bytes] = []
    pattern = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.M | re.I)

    def take(content: bytes) -> None:
        head = content.split(b"\r\n\r\n", 1)[0]
        m = pattern.search(head)
        ids.append(m.group(1) if m else b"")

    if kind == "aiosmtpd":
        from aiosmtpd.controller import Controller

        class Counter:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
                take(envelope.original_content or envelope.content)
                return "250 OK"

        import socket

        with socket.socket() as probe:  # a free port (the Controller cannot take port 0)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(Counter(), hostname="127.0.0.1", port=port, ready_timeout=10)
        controller.start()
        stop = controller.stop
    else:
        import asyncio
        import threading

        loop = asyncio.new_event_loop()

        class Fast(asyncio.Protocol):
            """Just enough SMTP for smtplib: greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET,
            NOOP, QUIT; no pipelining, no extensions."""

            def connection_made(self, transport):
                self.t, self.buf, self.data = transport, b"", None
                transport.write(b"220 sink ESMTP\r\n")

            def data_received(self, chunk):
                self.buf += chunk
                while True:
                    if self.data is not None:
                        end = self.buf.find(b"\r\n.\r\n")
                        if end < 0:
                            return
                        take(self.buf[:end + 2])
                        self.buf, self.data = self.buf[end + 5:], None
                        self.t.write(b"250 OK\r\n")
                        continue
                    line_end = self.buf.find(b"\r\n")
                    if line_end < 0:
                        return
                    line, self.buf = self.buf[:line_end], self.buf[line_end + 2:]
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        self.t.write(b"250-sink\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        self.data = True
                        self.t.write(b"354 go ahead\r\n")
                    elif verb == b"QUIT":
                        self.t.write(b"221 bye\r\n")
                        self.t.close()
                        return
                    else:
                        self.t.write(b"250 OK\r\n")

        server = loop.run_until_complete(loop.create_server(Fast, "127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        def stop():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)

    print(f"ready {port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "report":
            break
    stop()
    ids_file.write_bytes(b"\n".join(ids))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"messages": len(ids), "distinct": len(set(ids)), "cpu_s": ru.ru_utime + ru.ru_stime,
                      "peak_mb": peak_mb()}), flush=True)


class Sink:
    def __init__(self, kind: str, work: Path):
        self.kind, self.ids_file = kind, work / f"sink_{kind}.ids"
        self.proc = subprocess.Popen([sys.executable, __file__, "--sink-server", kind, str(self.ids_file)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            self.proc.kill()
            raise SystemExit(f"the {kind} SMTP sink did not start")
        self.port = int(line[1])

    def report(self) -> tuple[dict, list[str]]:
        self.proc.stdin.write("report\n")
        self.proc.stdin.flush()
        res = json.loads(self.proc.stdout.readline())
        self.proc.wait(30)
        ids = [x for x in self.ids_file.read_text().split("\n") if x]
        return res, ids

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ----------------------------------------------------------------------------- checks
def csv_export_check(path: Path) -> tuple[int, int]:
    """Rows and distinct message ids of the CSV export (quoted newlines included)."""
    import duckdb

    return duckdb.sql(f"SELECT count(*), count(DISTINCT message_id) FROM read_csv('{path}', header = true, "
                      "all_varchar = true, quote = '\"', escape = '\"', strict_mode = false)").fetchall()[0]


def sent_message_ids(folder: Path, run_id: int) -> list[str]:
    from sqlalchemy import select

    from retentio import Workspace
    from retentio.data.store.campaign_tables import OutboxMessage as M

    ws = Workspace.open(folder)
    with ws.store.session() as s:
        ids = list(s.scalars(select(M.message_id).where(M.run_id == run_id, M.status == "sent")))
    ws.close()
    return ids


# ----------------------------------------------------------------------------- main
def fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def bench_csv(work: Path, n: int, timeout: float, profile: bool) -> tuple[list[dict], dict]:
    folder = work / "ws_csv"
    t0 = time.perf_counter()
    ws, n_orders = make_workspace(folder, n, consent_share=CONSENT_SHARE)
    configure(ws)
    write_playbook(ws, "winback", "csv", 10)
    ws.close()
    build_s = time.perf_counter() - t0
    log(f"workspace with {n:,} customers, {n_orders:,} orders built in {build_s:.0f}s")
    prof = (lambda s: work / f"{s}.prof") if profile else (lambda s: None)
    plan = run_child("plan", folder, "winback", timeout, prof("plan"))
    run = run_child("run", folder, "winback", timeout, prof("run"))
    rerun = run_child("run", folder, "winback", timeout, prof("rerun")) if run else None
    rows = []
    info = {"customers": n, "orders": n_orders, "build_s": build_s}
    if plan:
        c = plan["counts"]
        info["plan_counts"] = c
        rows.append({"step": "plan_campaign (dry run, 3 samples)", "customers": f"{c['triggered']:,}",
                     "messages": f"{c['messages']:,} would go", "seconds": fmt_s(plan["seconds"]),
                     "customers/s": f"{c['triggered'] / plan['seconds']:,.0f}", "messages/s": "—",
                     "peak RSS (MB)": f"{plan['peak_mb']:,.0f}", "target": "< 30 s",
                     "met": "yes" if plan["seconds"] < TARGETS["plan_s"] else "no"})
    else:
        rows.append({"step": "plan_campaign (dry run, 3 samples)", "customers": f"{n:,}", "messages": "—",
                     "seconds": f"did not finish in {timeout:.0f}", "customers/s": "—", "messages/s": "—",
                     "peak RSS (MB)": "—", "target": "< 30 s", "met": "no"})
    if run:
        r, st = run["result"], run["stages"]
        sent = r["sent"]
        export = folder / "exports" / "winback.csv"
        rows_csv, distinct_csv = csv_export_check(export)
        assert rows_csv == distinct_csv == sent, (rows_csv, distinct_csv, sent)
        info.update(run=r, outbox=run["outbox"], stages=st, export_mb=export.stat().st_size / 1e6,
                    export_rows=rows_csv)
        eligible = r["treatment"] + r["control"]
        rows.append({"step": "run_campaign (plan + record + CSV delivery)", "customers": f"{eligible:,}",
                     "messages": f"{sent:,} sent", "seconds": fmt_s(run["seconds"]),
                     "customers/s": f"{eligible / run['seconds']:,.0f}", "messages/s": f"{sent / run['seconds']:,.0f}",
                     "peak RSS (MB)": f"{run['peak_mb']:,.0f}", "target": "—", "met": "—"})
        for label, key in (("  of which plan", "plan"), ("  of which record (render, codes, insert)", "record"),
                           ("  of which CSV delivery", "deliver")):
            s = st.get(key)
            rows.append({"step": label, "customers": "", "messages": "", "seconds": fmt_s(s),
                         "customers/s": f"{eligible / s:,.0f}" if s and key != "deliver" else "—",
                         "messages/s": f"{sent / s:,.0f}" if s and key == "deliver" else "—",
                         "peak RSS (MB)": "", "target": "", "met": ""})
    else:
        rows.append({"step": "run_campaign (plan + record + CSV delivery)", "customers": f"{n:,}", "messages": "—",
                     "seconds": f"did not finish in {timeout:.0f}", "customers/s": "—", "messages/s": "—",
                     "peak RSS (MB)": "—", "target": "—", "met": "—"})
    if rerun:
        rr = rerun["result"]
        info["rerun"] = rr
        rows.append({"step": "run_campaign again (same day)", "customers": f"{rr['treatment'] + rr['control']:,}",
                     "messages": f"{rr['sent']:,} sent", "seconds": fmt_s(rerun["seconds"]), "customers/s": "—",
                     "messages/s": "—", "peak RSS (MB)": f"{rerun['peak_mb']:,.0f}", "target": "sends 0",
                     "met": "yes" if rr["sent"] == 0 and rr["treatment"] + rr["control"] == 0 else "no"})
    return rows, info


def bench_smtp(work: Path, n: int, sinks: list[str], timeout: float, profile: bool) -> tuple[list[dict], dict]:
    rows, info = [], {}
    base = work / "ws_smtp_base"
    t0 = time.perf_counter()
    ws, _ = make_workspace(base, n, consent_share=1.0, seed=11)
    ws.close()
    log(f"SMTP workspace with {n:,} customers built in {time.perf_counter() - t0:.0f}s")
    for kind in sinks:
        folder = work / f"ws_smtp_{kind}"
        shutil.copytree(base, folder)
        sink = Sink(kind, work)
        try:
            from retentio import Workspace

            ws = Workspace.open(folder)
            configure(ws, smtp_port=sink.port)
            write_playbook(ws, "winback_email", "email", 0)
            ws.close()
            res = run_child("run", folder, "winback_email", timeout,
                            work / f"smtp_{kind}.prof" if profile else None)
            got, got_ids = sink.report()
        finally:
            sink.kill()
        if res is None:
            rows.append({"sink": kind, "messages sent": "—", "received": f"{got['messages']:,}",
                         "run (s)": f"did not finish in {timeout:.0f}", "delivery (s)": "—", "messages/s": "—",
                         "sender peak RSS (MB)": "—", "sink CPU (s)": f"{got['cpu_s']:.1f}", "checks": "—",
                         "target": "≥ 500 msg/s", "met": "no"})
            continue
        r = res["result"]
        sent_ids = sent_message_ids(folder, r["run_id"])
        domain = "retentio.example"
        expected = sorted(f"<{m}@{domain}>" for m in sent_ids)
        exact = (r["sent"] == got["messages"] == got["distinct"] == len(sent_ids)
                 and sorted(got_ids) == expected)
        deliver_s = res["stages"]["deliver"]
        rate = r["sent"] / deliver_s
        info[kind] = {"result": r, "outbox": res["outbox"], "stages": res["stages"], "sink": got, "exact": exact}
        log(f"{kind}: sent {r['sent']:,}, sink got {got['messages']:,} ({got['distinct']:,} distinct ids), "
            f"delivery {rate:,.0f} msg/s, sink CPU {got['cpu_s']:.1f}s; exact match: {exact}")
        rows.append({"sink": kind, "messages sent": f"{r['sent']:,}", "received": f"{got['messages']:,}",
                     "run (s)": fmt_s(res["seconds"]), "delivery (s)": fmt_s(deliver_s),
                     "messages/s": f"{rate:,.0f}", "sender peak RSS (MB)": f"{res['peak_mb']:,.0f}",
                     "sink CPU (s)": f"{got['cpu_s']:.1f}",
                     "checks": "sent = received, each Message-ID once" if exact else "MISMATCH",
                     "target": "≥ 500 msg/s", "met": "yes" if rate >= TARGETS["smtp_per_s"] and exact else "no"})
    return rows, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000, help="customers of the CSV campaign")
    ap.add_argument("--smtp-messages", type=int, default=100_000, help="messages sent through SMTP")
    ap.add_argument("--sink", choices=("aiosmtpd", "fast", "both"), default="both",
                    help="SMTP sink(s): aiosmtpd, a minimal asyncio sink, or both (one run each)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed per step")
    ap.add_argument("--profile", action="store_true", help="cProfile every step; print the top functions")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--child", nargs=3, metavar=("STEP", "WORKSPACE", "PLAYBOOK"), help=argparse.SUPPRESS)
    ap.add_argument("--sink-server", nargs=2, metavar=("KIND", "IDS"), help=argparse.SUPPRESS)
    ap.add_argument("--child-profile", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.child[2], args.child_profile), default=str))
        return
    if args.sink_server:
        sink_main(args.sink_server[0], Path(args.sink_server[1]))
        return
    sinks = ["aiosmtpd", "fast"] if args.sink == "both" else [args.sink]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retentio-bench-campaigns-") as tmp:
        work = Path(tmp)
        csv_rows, csv_info = bench_csv(work, args.customers, args.timeout, args.profile) if args.customers else ([], {})
        smtp_rows, smtp_info = (bench_smtp(work, args.smtp_messages, sinks, args.timeout, args.profile)
                                if args.smtp_messages else ([], {}))
        if args.profile:
            import pstats

            for p in sorted(work.glob("*.prof")):
                print(f"\n== profile {p.stem}")
                pstats.Stats(str(p)).sort_stats("cumulative").print_stats(25)
                pstats.Stats(str(p)).sort_stats("tottime").print_stats(20)
    total = time.perf_counter() - started
    log(f"done in {total:.0f}s")
    print(json.dumps({"csv": csv_info, "smtp": smtp_info}, default=str, indent=1))
    if args.no_doc:
        return
    body = section(csv_rows, csv_info, smtp_rows, smtp_info, total)
    write_section("Campaigns: 1M-customer win-back into CSV, 100k messages over SMTP", body)


def section(csv_rows, csv_info, smtp_rows, smtp_info, total) -> str:
    parts = []
    if csv_rows:
        c = csv_info
        parts.append(f"**Win-back into the CSV export**: {c['customers']:,} customers, {c['orders']:,} orders "
                     f"(workspace built and loaded in {c['build_s']:.0f} s, not counted).\n\n" + table(csv_rows))
    if smtp_rows:
        parts.append("**Email over SMTP to a local sink** (loopback, security none, one connection):\n\n"
                     + table(smtp_rows))
    return "\n\n".join(parts) + "\n\n" + NOTES + f" The whole script took {total / 60:.0f} min."


NOTES = (
    "There is no peer to run in the same run (Braze, Klaviyo and similar tools are SaaS), so each number is "
    "compared with the target of the product issue. Data: synthetic customers (email; email consent for 95 %) "
    "with 1–5 completed orders each, every last order more than 60 days before the as-of day, loaded with "
    "`Workspace.load(..., mode=\"replace\")`; no `order_items` (so message picks are empty). Playbook: "
    "`playbook new winback` edited to `[trigger] days = 60` without the segment filter (`min_orders = 1`, "
    "`other_campaign_within_days = 3` kept), percent offer with a promo code per treatment customer, holdout 10 % "
    "(0 % for the SMTP run, so every customer is one message); quiet hours switched off in `retentio.toml`. "
    "Each step runs in its own process; peak RSS is that process's high-water mark (`ru_maxrss`). The run's "
    "split into plan / record / delivery is timed around those functions inside `run_campaign`. The CSV export "
    "is checked to hold exactly the sent messages, each once; the second run must record and send nothing. "
    "The SMTP sink runs in its own process (aiosmtpd `Controller` with a handler that only counts, and a "
    "minimal asyncio SMTP sink to show whether aiosmtpd limits the rate); messages/s is over the delivery "
    "(claim, build MIME, SMTP, record each result)."
)


if __name__ == "__main__":
    main()
