"""The web app under load (issue 17): one hot loyalty balance drained by 16 concurrent
tills through the REST API while signed-in users keep opening that customer's profile
page — on SQLite and on PostgreSQL.

Per store (the workspace's own SQLite store; a throwaway ``retentio_bench_<random>``
database on the PostgreSQL server named by ``--pg``, set as the workspace's ``[store]
url`` and dropped ``WITH (FORCE)`` at the end):

1. The fixture (timed, not measured): a generated demo shop (``--customers``, default
   5,000) loaded into a DuckDB workspace, a churn model trained and scored (so the
   profile page shows a risk with reasons, as in use), a points program ``club``
   (365-day expiry, no pending days), an admin user, a pos API key.
2. The app: ``uvicorn`` in a subprocess on a free loopback port, ONE process (uvicorn's
   default: one event loop, the sync routes in its thread pool), as ``retentio serve``
   runs it. Every client runs in this script's process (asyncio + ``httpx.AsyncClient``,
   one connection per client), sharing the machine's cores with the server.
3. Baseline (the repo's rule is to run the peer in the same run; there is no peer product
   to run here, so the baseline is the same calls with no concurrency): ONE client, one
   request after another — ``--baseline`` redemptions of 1 point on another member, then
   ``--baseline`` loads of the profile page.
4. Load: the hot member earns ``--balance`` points through the API (``POST .../earn``);
   then 16 redeeming clients (``--redeemers``) each send ``POST
   /api/v1/loyalty/members/{id}/redeem`` with a distinct ``Idempotency-Key`` and 1–10
   points, one request after another; after a refusal (409 ``insufficient_points``) a
   client asks for 1 point, and stops when even that is refused — so the balance must
   end at exactly 0. Every 20th successful redemption is sent again with the same key
   (a till retrying after a lost answer): it must return the same body with
   ``Idempotent-Replayed: true`` and move nothing. Meanwhile ``--page-clients`` signed-in
   browsers (each its own session) load ``/customers/{id}`` until the redeemers are done.
5. Checks: final balance == start − sum of the successful redemptions (≥ 0; here 0);
   the ledger's ``check()`` is ok; the audit log holds one ``loyalty.redeem`` entry per
   200 answer (replays included); no answer other than 200 and 409 (redeem) or 200
   (page).

Prints a table; writes its section of docs/benchmarks.md (``--no-doc``: only print).

    python bench/web_load.py                      # both stores, 5,000 customers
    python bench/web_load.py --stores sqlite --no-doc --balance 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _report import log, table, vm_hwm, write_section  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SECTION = "Web app under load (issue 17)"
PROGRAM_TOML = 'kind = "points"\n[expiry]\ndays = 365\n'
ADMIN = ("bench@example.com", "bench password 1")
REPLAY_EVERY = 20


# ----------------------------------------------------------------------------- fixture
def build_base(folder: Path, customers: int, seed: int) -> tuple[Path, dict]:
    """A DuckDB workspace with a generated demo shop (no store content yet)."""
    from retentio import Workspace
    from retentio.data.demo import generate

    t0 = time.perf_counter()
    data = generate(n_customers=customers, seed=seed)
    path = folder / "base"
    with Workspace.init(path, timezone="Europe/Moscow", currency="RUB") as w:
        for name, frame in data.tables().items():
            w.load(name, frame)
        rows = {name: len(frame) for name, frame in data.tables().items()}
    return path, {"seconds": time.perf_counter() - t0, "rows": rows}


def prepare(base: Path, path: Path, store_url: str | None) -> dict:
    """Copy the base workspace, point it at ``store_url``, train and score churn, add the
    program, an admin and a pos key; returns the key, the hot member and the baseline
    member (two customers with reasons in the churn scores)."""
    from retentio import Workspace
    from retentio.services.accounts import add_user, cli_principal, create_key
    from retentio.services.churn import TrainParams, score_churn, train_churn

    shutil.copytree(base, path)
    if store_url:
        with open(path / "retentio.toml", "a", encoding="utf-8") as f:
            f.write(f'\n[store]\nurl = "{store_url}"\n')
    t0 = time.perf_counter()
    with Workspace.open(path) as ws:
        train_churn(ws, TrainParams(threads=1, seed=0))
        scores = score_churn(ws).frame
        (path / "loyalty").mkdir(exist_ok=True)
        (path / "loyalty" / "club.toml").write_text(PROGRAM_TOML, encoding="utf-8")
        add_user(ws.store, ADMIN[0], ADMIN[1], "admin", actor=cli_principal())
        key = create_key(ws.store, "bench till", "pos", actor=cli_principal())["key"]
    with_reasons = [str(c) for c, r in zip(scores.customer_id, scores.reasons) if len(r)]
    return {"key": key, "hot": with_reasons[0], "other": with_reasons[1], "seconds": time.perf_counter() - t0,
            "scored": len(scores)}


def pg_database(server: str):
    import sqlalchemy as sa

    name = f"retentio_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        log(f"PostgreSQL at {server} does not answer: {str(exc.orig).strip().splitlines()[0]}")
        admin.dispose()
        return None

    def drop() -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return sa.make_url(server).set(database=name).render_as_string(hide_password=False), drop


def server_version(url: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            if engine.dialect.name == "postgresql":
                return "PostgreSQL " + c.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
            return "SQLite " + c.exec_driver_sql("SELECT sqlite_version()").scalar_one()
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- the server
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path, log_file: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    code = ("import sys, warnings; warnings.simplefilter('ignore'); import uvicorn; "
            "from retentio.faces.web.app import create_app; "
            "uvicorn.run(create_app(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')")
    env = dict(os.environ, RETENTIO_SECRET_KEY="bench-" + uuid.uuid4().hex)
    with open(log_file, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped: {log_file.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > end:
            proc.kill()
            raise RuntimeError("the server did not answer in 90 s")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------------- clients
async def signed_in(base: str):
    """An httpx.AsyncClient with a browser session of the admin."""
    import httpx

    client = httpx.AsyncClient(base_url=base, timeout=120)
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = await client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token,
                                                "next": "/"})
    if answer.status_code != 303 or "retentio_session" not in client.cookies:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:300]}")
    return client


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def baseline(base: str, key: str, member: str, hot: str, n: int) -> dict:
    """One client, one request after another: redemptions of 1 point on ``member``, then
    loads of ``hot``'s profile page."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as api:
        r = await api.post(f"/api/v1/loyalty/members/{member}/earn", json={"points": n + 10},
                           headers={"Idempotency-Key": f"base-earn-{uuid.uuid4().hex}"})
        assert r.status_code == 200, r.text
        for i in range(3):  # warm-up (imports, caches), not timed
            await api.post(f"/api/v1/loyalty/members/{member}/redeem", json={"points": 1},
                           headers={"Idempotency-Key": f"base-warm-{i}-{uuid.uuid4().hex}"})
        redeem = []
        for i in range(n):
            t = time.perf_counter()
            r = await api.post(f"/api/v1/loyalty/members/{member}/redeem", json={"points": 1},
                               headers={"Idempotency-Key": f"base-{i}-{uuid.uuid4().hex}"})
            redeem.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    browser = await signed_in(base)
    try:
        for _ in range(3):
            r = await browser.get(f"/customers/{hot}")
            assert r.status_code == 200, (r.status_code, r.text[:500])
        pages = []
        for _ in range(n):
            t = time.perf_counter()
            r = await browser.get(f"/customers/{hot}")
            pages.append(time.perf_counter() - t)
            assert r.status_code == 200, r.status_code
    finally:
        await browser.aclose()
    return {"redeem": redeem, "page": pages}


async def load(base: str, key: str, hot: str, balance: int, redeemers: int, page_clients: int,
               seed: int) -> dict:
    """The hot balance drained by ``redeemers`` tills while ``page_clients`` browsers load
    the profile page."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/loyalty/members/{hot}/redeem"
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as api:
        r = await api.post(f"/api/v1/loyalty/members/{hot}/earn", json={"points": balance},
                           headers={"Idempotency-Key": f"hot-earn-{uuid.uuid4().hex}"})
        assert r.status_code == 200, r.text
        start = (await api.get(f"/api/v1/loyalty/members/{hot}")).json()["programs"][0]["available"]
    browsers = [await signed_in(base) for _ in range(page_clients)]
    for b in browsers:  # warm (the profile's caches), not timed
        assert (await b.get(f"/customers/{hot}")).status_code == 200
    out = {"start": start, "redeem": [], "redeem_409": [], "page": [], "success_points": 0, "successes": 0,
           "refused": 0, "replays": 0, "replay_mismatch": 0, "other": [], "page_other": []}
    done = asyncio.Event()

    async def till(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as c:
            points = rng.randint(1, 10)
            i = 0
            while True:
                i += 1
                k = f"till{n}-{i}-{uuid.uuid4().hex[:8]}"
                t = time.perf_counter()
                r = await c.post(url, json={"points": points}, headers={"Idempotency-Key": k})
                took = time.perf_counter() - t
                if r.status_code == 200:
                    out["redeem"].append(took)
                    out["successes"] += 1
                    out["success_points"] += r.json()["redeemed"]
                    if out["successes"] % REPLAY_EVERY == 0:  # a till retrying after a lost answer
                        again = await c.post(url, json={"points": points}, headers={"Idempotency-Key": k})
                        out["replays"] += 1
                        if again.status_code != 200 or again.json() != r.json() or \
                                again.headers.get("Idempotent-Replayed") != "true":
                            out["replay_mismatch"] += 1
                    points = rng.randint(1, 10)
                elif r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points":
                    out["redeem_409"].append(took)
                    out["refused"] += 1
                    if points == 1:
                        return
                    points = 1
                else:
                    out["other"].append((r.status_code, r.text[:200]))
                    return

    async def browse(b) -> None:
        while not done.is_set():
            t = time.perf_counter()
            r = await b.get(f"/customers/{hot}")
            took = time.perf_counter() - t
            if r.status_code == 200 and hot in r.text:
                out["page"].append(took)
            else:
                out["page_other"].append(r.status_code)

    t0 = time.perf_counter()
    pages = [asyncio.create_task(browse(b)) for b in browsers]
    await asyncio.gather(*(till(n) for n in range(redeemers)))
    out["seconds"] = time.perf_counter() - t0
    done.set()
    await asyncio.gather(*pages)
    for b in browsers:
        await b.aclose()
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as api:
        out["final"] = (await api.get(f"/api/v1/loyalty/members/{hot}")).json()["programs"][0]["available"]
    return out


def verify(path: Path, hot: str) -> dict:
    """The ledger's own check and the audit log's redeem entries for ``hot``."""
    from sqlalchemy import func, select

    from retentio import Workspace
    from retentio.data.store.access_tables import AuditEntry
    from retentio.services.loyalty import ledger

    with Workspace.open(path, read_only=True) as ws:
        check = ledger(ws, "club").check()
        with ws.store.session() as s:
            audited = s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "loyalty.redeem", AuditEntry.target == hot))
        balance = ledger(ws, "club").balance(hot)["available"]
    return {"check": check, "audited": int(audited or 0), "balance": balance}


# ----------------------------------------------------------------------------- one store
def bench_store(kind: str, base: Path, folder: Path, store_url: str | None, args) -> dict:
    path = folder / f"ws-{kind.lower()}"
    log(f"{kind}: preparing the workspace (churn model, program, users)")
    fixture = prepare(base, path, store_url)
    log(f"{kind}: ready in {fixture['seconds']:.1f}s; hot member {fixture['hot']}")
    from retentio.data.store import default_url

    version = server_version(store_url or default_url(path))
    log_file = folder / f"server-{kind.lower()}.log"
    proc, url = start_server(path, log_file)
    try:
        log(f"{kind}: server {url} (pid {proc.pid}); baseline: {args.baseline} sequential calls each")
        single = asyncio.run(baseline(url, fixture["key"], fixture["other"], fixture["hot"], args.baseline))
        log(f"{kind}: load: {args.redeemers} tills drain {args.balance:,} points, {args.page_clients} browsers")
        loaded = asyncio.run(load(url, fixture["key"], fixture["hot"], args.balance, args.redeemers,
                                  args.page_clients, args.seed))
        rss = vm_hwm(proc.pid)
    finally:
        stop_server(proc)
    server_log = log_file.read_text(errors="replace")
    checked = verify(path, fixture["hot"])
    expected = loaded["start"] - loaded["success_points"]
    result = {
        "kind": kind, "version": version, "fixture": fixture, "single": single, "load": loaded, "rss": rss,
        "checked": checked, "expected": expected,
        "ok": (loaded["final"] == expected == checked["balance"] and expected >= 0 and checked["check"]["ok"]
               and not loaded["other"] and not loaded["page_other"] and loaded["replay_mismatch"] == 0
               and checked["audited"] == loaded["successes"] + loaded["replays"]
               and "Traceback" not in server_log),
        "tracebacks": server_log.count("Traceback"),
    }
    log(f"{kind}: {loaded['successes']} redemptions ({loaded['success_points']:,} points) and "
        f"{loaded['refused']} refusals in {loaded['seconds']:.1f}s; final balance {loaded['final']} "
        f"(expected {expected}); check ok: {checked['check']['ok']}; all ok: {result['ok']}")
    return result


def ms(x: float) -> str:
    return f"{x * 1000:,.1f}"


def rows_of(results: list[dict], args) -> list[dict]:
    rows = []
    for r in results:
        s, x = r["single"], r["load"]
        rows.append({"store": r["kind"], "run": "baseline: 1 client, sequential", "call": "redeem (API)",
                     "requests": len(s["redeem"]), "per s": f"{len(s['redeem']) / sum(s['redeem']):,.0f}",
                     "p50, ms": ms(statistics.median(s["redeem"])), "p95, ms": ms(pct(s["redeem"], 0.95)),
                     "max, ms": ms(max(s["redeem"])), "200": len(s["redeem"]), "409": 0})
        rows.append({"store": r["kind"], "run": "baseline: 1 client, sequential", "call": "profile page",
                     "requests": len(s["page"]), "per s": f"{len(s['page']) / sum(s['page']):,.0f}",
                     "p50, ms": ms(statistics.median(s["page"])), "p95, ms": ms(pct(s["page"], 0.95)),
                     "max, ms": ms(max(s["page"])), "200": len(s["page"]), "409": 0})
        both = x["redeem"] + x["redeem_409"]
        label = f"load: {args.redeemers} tills + {args.page_clients} browsers"
        rows.append({"store": r["kind"], "run": label, "call": "redeem (API)",
                     "requests": len(both), "per s": f"{len(both) / x['seconds']:,.0f}",
                     "p50, ms": ms(statistics.median(both)), "p95, ms": ms(pct(both, 0.95)),
                     "max, ms": ms(max(both)), "200": x["successes"], "409": x["refused"]})
        rows.append({"store": r["kind"], "run": label, "call": "profile page",
                     "requests": len(x["page"]), "per s": f"{len(x['page']) / x['seconds']:,.0f}",
                     "p50, ms": ms(statistics.median(x["page"])) if x["page"] else "—",
                     "p95, ms": ms(pct(x["page"], 0.95)) if x["page"] else "—",
                     "max, ms": ms(max(x["page"])) if x["page"] else "—", "200": len(x["page"]),
                     "409": "—"})
    return rows


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--balance", type=int, default=10_000, help="the hot member's points before the load")
    parser.add_argument("--redeemers", type=int, default=16)
    parser.add_argument("--page-clients", type=int, default=4)
    parser.add_argument("--baseline", type=int, default=50, help="sequential calls of each kind in the baseline")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--pg", default=PG_SERVER, help="the PostgreSQL server for the throwaway database")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()

    t_all = time.perf_counter()
    load_start = load_average()
    folder = Path(tempfile.mkdtemp(prefix="retentio-web-load-"))
    results: list[dict] = []
    try:
        log(f"building a demo shop of {args.customers:,} customers")
        base, built = build_base(folder, args.customers, args.seed)
        log(f"built in {built['seconds']:.1f}s: {built['rows']}")
        for kind in args.stores:
            if kind == "sqlite":
                results.append(bench_store("SQLite", base, folder, None, args))
                continue
            made = pg_database(args.pg)
            if made is None:
                continue
            url, drop = made
            try:
                results.append(bench_store("PostgreSQL", base, folder, url, args))
            finally:
                drop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    minutes = (time.perf_counter() - t_all) / 60
    rows = rows_of(results, args)
    print(table(rows))
    failed = [r["kind"] for r in results if not r["ok"]]
    for r in results:
        x, c = r["load"], r["checked"]
        print(f"{r['kind']} ({r['version']}): start {x['start']:,}, redeemed {x['success_points']:,} in "
              f"{x['successes']:,} redemptions, final {x['final']:,} (expected {r['expected']:,}); check ok "
              f"{c['check']['ok']}; audited {c['audited']}; replays {x['replays']} (mismatches "
              f"{x['replay_mismatch']}); other answers {x['other'][:3]} / pages {x['page_other'][:3]}; server "
              f"peak RSS {r['rss'] or 0:,.0f} MB; tracebacks in the server log {r['tracebacks']}")
    if not args.no_doc and results:
        write_section(SECTION, doc_body(results, rows, built, args, minutes, load_start))
    if failed:
        sys.exit(f"checks failed on: {', '.join(failed)}")


def doc_body(results: list[dict], rows: list[dict], built: dict, args, minutes: float, load_start: str) -> str:
    facts = []
    for r in results:
        x, c = r["load"], r["checked"]
        facts.append(
            f"{r['kind']} ({r['version']}): the hot member started with {x['start']:,} points; {x['successes']:,} "
            f"redemptions succeeded ({x['success_points']:,} points) and {x['refused']} were refused (409 "
            f"`insufficient_points`) in {x['seconds']:.1f} s; final balance {x['final']:,} = start − successful "
            f"redemptions ({r['expected']:,}), never below 0; `ledger.check()` "
            f"{'ok' if c['check']['ok'] else 'FAILED'} ({c['check']['accounts']} accounts); {x['replays']} replays "
            f"with the same key returned the first answer and moved nothing ({x['replay_mismatch']} mismatches); "
            f"the audit log holds {c['audited']:,} `loyalty.redeem` entries for the member (one per 200 answer, "
            f"replays included); answers other than 200/409: {len(x['other']) + len(x['page_other'])}; "
            f"server peak RSS {r['rss'] or 0:,.0f} MB. Fixture: churn model trained and scored in "
            f"{r['fixture']['seconds']:.0f} s ({r['fixture']['scored']:,} customers scored).")
    return f"""
A generated demo shop of {args.customers:,} customers ({built['rows'].get('orders', 0):,} orders; built and loaded
into DuckDB in {built['seconds']:.0f} s) served by the web app under uvicorn — **one process** (one event loop; the
sync routes run in its thread pool), as `retentio serve` runs it — on loopback. Every client runs in the bench's own
process (asyncio + `httpx.AsyncClient`, one connection each), on the same cores as the server and the database.

Load: {args.redeemers} tills redeem 1–10 points at a time from ONE member's balance through
`POST /api/v1/loyalty/members/{{id}}/redeem` (pos API key, a distinct `Idempotency-Key` per request; every
{REPLAY_EVERY}th success is replayed with its key), each until even 1 point is refused, while {args.page_clients}
signed-in browsers (a session each) keep loading that customer's profile page `/customers/{{id}}`. Latency is one
request as the client sees it; "per s" is requests over the load phase's wall time. The baseline is the same calls
from ONE client, one after another, before the load (there is no peer product to run here; the redemptions of the
baseline go to another member).

{table(rows)}

{chr(10).join('- ' + f for f in facts)}

The machine has {os.cpu_count()} cores shared by the server, its database and every client, so under load the
latencies show queueing for the CPU as much as the app's own cost: all redemptions of the one member serialise on
its account lock, and in the one server process they share the interpreter with the profile pages being rendered.
Load average (1 min) {load_start} at the start, {load_average()} at the end (above the core count: other jobs were
running beside this one, so compare the rows of one run, not across runs); the whole script took {minutes:.1f} min.

Why a generated shop and not `retentio demo`: the demo (20,000 customers, with campaign history, loyalty and the
report) took 1 min 46 s on this machine (2026-12-03) and would be needed once per store, since the models and
snapshots the profile shows live in the store; `--customers 20000` runs this bench on the demo's size.
"""


if __name__ == "__main__":
    main()
