"""The web app in a real browser (Debian's chromium through Playwright), served by uvicorn
in its own process on loopback: sign in, the overview, a customer found by search and
their profile with churn reasons, "start a campaign for this list" from the At risk page
landing on the campaign's plan, points redeemed at a till through the API (pos key,
Idempotency-Key) appearing in the member's ledger — with no console error, no page error
and no request anywhere but the app; screenshots of the main pages (to $RETENTIO_SCREENSHOTS
when set, e.g. docs/); a Russian pass switched by the header's language button; and every
navigation page and the pages it links to opened in the browser with no console error (a
Content-Security-Policy violation is one).

Chromium is Debian's (``make system-deps``); RETENTIO_CHROMIUM names another binary."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest

from tests.servers import free_port

#: Debian's chromium (``make system-deps`` installs it); RETENTIO_CHROMIUM names another binary
CHROMIUM = os.environ.get("RETENTIO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ADMIN = ("admin@example.com", "admin password 1")
MARKETER = ("marketer@example.com", "marketer password 1")
VIEWPORT = {"width": 1280, "height": 900}
REDEEM = 100  # points redeemed at the till


@pytest.fixture(scope="module")
def web_ws(tmp_path_factory, demo_ws_path: Path) -> dict:
    """A copy of the small demo with a trained churn model and its scores (so profiles
    have reasons), the demo's points program "club" with members and a history, an admin,
    a marketer and a pos API key. Returns the path, the key and the chosen customer (at
    risk, with reasons, a loyalty member with enough points to redeem)."""
    warnings.simplefilter("ignore")
    from sqlalchemy import select

    from retentio import Workspace
    from retentio.data.store.loyalty_tables import LoyaltyAccount
    from retentio.services.accounts import add_user, cli_principal, create_key
    from retentio.services.churn import TrainParams, score_churn, train_churn
    from retentio.services.feedback_tasks import sync_tasks
    from retentio.services.loyalty import demo_loyalty, ledger

    path = tmp_path_factory.mktemp("web_browser") / "ws"
    shutil.copytree(demo_ws_path, path)
    with Workspace.open(path) as ws:
        train_churn(ws, TrainParams(threads=1, seed=0))
        scores = score_churn(ws).frame
        demo_loyalty(ws)
        # follow-up tasks opened by the default rules as of the scores' day (the inbox's content)
        day = dt.date.fromisoformat(str(score_churn(ws).as_of)[:10])
        opened = sync_tasks(ws, day, now=dt.datetime.combine(day, dt.time(12)))["opened"]
        book = ledger(ws, "club", actor="test")
        with ws.store.session() as s:
            rich = set(s.execute(select(LoyaltyAccount.customer_id).where(
                LoyaltyAccount.program == "club", LoyaltyAccount.available >= 2 * REDEEM)).scalars())
        chosen = None
        for row in scores.itertuples(index=False):  # most likely to leave first
            if len(row.reasons) and str(row.customer_id) in rich:
                chosen = row
                break
        assert chosen is not None, "no scored customer is a member with points"
        customer = str(chosen.customer_id)
        add_user(ws.store, ADMIN[0], ADMIN[1], "admin", actor=cli_principal())
        add_user(ws.store, MARKETER[0], MARKETER[1], "marketer", actor=cli_principal())
        key = create_key(ws.store, "till 1", "pos", actor=cli_principal())["key"]
        balance = book.balance(customer)["available"]
        table = ws.table("customers")
        customers = int(table.count().execute())
        first_name = str(table.filter(table.customer_id == customer).first_name.execute().iloc[0])
    return {"path": path, "key": key, "customer": customer, "high": int((scores.band == "high").sum()),
            "tasks": opened, "customers": customers, "first_name": first_name,
            "reasons": [str(r) for r in chosen.reasons], "band": str(chosen.band), "balance": balance}


@pytest.fixture(scope="module")
def server(web_ws, tmp_path_factory) -> str:
    """The real app under uvicorn in a subprocess on a free loopback port; its base URL."""
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    code = ("import sys, warnings; warnings.simplefilter('ignore'); import uvicorn; "
            "from retentio.faces.web.app import create_app; "
            "uvicorn.run(create_app(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')")
    env = dict(os.environ, RETENTIO_SECRET_KEY="browser-test-" + uuid.uuid4().hex)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code, str(web_ws["path"]), str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server stopped: {log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > end:
                pytest.fail(f"the server did not answer in 60 s: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # nothing went wrong on the server's side either (uvicorn logs unhandled errors)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-5000:]


class Watched:
    """A page with everything it reports collected: console errors, page errors, and the
    URL of every request it makes."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text} {m.location.get('url')}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.failed: list[str] = []  # answers >= 400 (which resource a console error is about)
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        # a form with data-confirm asks first (static/app.js): say yes, and keep the question
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.accept()))

    def go(self, path: str, status: int = 200):
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == status, (path, response and response.status)
        return response

    def sign_in(self, email: str, password: str) -> None:
        self.go("/login")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.click("form[action='/login'] button[type=submit]")
        assert "/login" not in self.page.url, self.page.content()[:2000]

    def shot(self, folder: Path, name: str) -> None:
        target = folder / f"web-{name}.png"
        self.page.screenshot(path=str(target), full_page=False)
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def check_clean(self) -> None:
        assert self.errors == [], self.failed
        assert self.failed == []
        # nothing but the app itself: no CDN, no font, no analytics (data: images are not requests out)
        outside = [u for u in self.requests if not (u == self.base or u.startswith(self.base + "/"))
                   and not u.startswith("data:")]
        assert outside == []


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def shots_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RETENTIO_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def text_of(locator) -> str:
    return " ".join(locator.all_inner_texts())


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_the_main_flow_in_chromium(server, web_ws, browser, tmp_path):
    import httpx

    from retentio import Workspace
    from retentio.services.loyalty import ledger

    shots = shots_folder(tmp_path)
    customer = web_ws["customer"]
    w = Watched(browser, server)
    page = w.page

    # not signed in: the overview sends to the sign-in form
    w.go("/")
    assert "/login" in page.url
    w.sign_in(*ADMIN)

    # overview: KPI cards with numbers
    w.go("/")
    kpis = page.locator(".kpi")
    assert kpis.count() >= 3
    assert re.search(r"\d", text_of(page.locator(".kpi .value")))
    assert f"{web_ws['customers']:,}" in page.locator("main").inner_text()  # "Customers: 1,500"
    for img in page.locator("img.chart").all():  # the trend charts (server-rendered SVG) load
        assert page.evaluate("(i) => i.complete && i.naturalWidth > 0", img.element_handle())
    w.shot(shots, "overview")

    # customers: a search by first name lists them (and others), one by id only them; the row
    # links to the profile
    w.go(f"/customers?q={web_ws['first_name']}")
    assert page.locator("main table tbody tr").count() > 1
    w.shot(shots, "customers")
    w.go(f"/customers?q={customer.lower()}")
    link = page.locator(f"a[href='/customers/{customer}']")
    assert page.locator("main table tbody tr").count() == 1 and link.count() >= 1, page.content()[:3000]
    with page.expect_navigation():
        link.first.click()
    assert page.url.endswith(f"/customers/{customer}")

    # profile: the churn section shows the model's reasons (the same as score_churn's)
    churn = page.locator("#churn")
    assert churn.count() == 1
    shown = churn.inner_text()
    assert web_ws["reasons"][0] in shown, (web_ws["reasons"], shown)
    for section in ("orders", "value", "loyalty", "timeline"):
        assert page.locator(f"#{section}").count() == 1, section
    w.shot(shots, "profile")

    # at risk: start a campaign for this list, land on its plan with audience numbers
    high = web_ws["high"]  # the customers the model put in the high band
    w.go("/at-risk?band=high")
    assert page.locator("main table tbody tr").count() == min(high, 50)
    w.shot(shots, "at-risk")
    form = page.locator("form[action='/at-risk/campaign']")
    assert form.count() == 1, page.content()[:3000]
    with page.expect_navigation():
        form.locator("button[type=submit], input[type=submit]").first.click()
    assert re.search(r"/campaigns/[^/]+/plan$", page.url), page.url
    assert len(w.dialogs) == 1 and str(high) in w.dialogs[0], w.dialogs  # asked, naming the list's size
    # the plan's audience is that list: every high-risk customer is triggered
    assert page.locator("#kpi-triggered").inner_text().strip() == str(high)
    assert page.locator("#kpi-messages").inner_text().strip().isdigit()
    w.shot(shots, "campaign-plan")

    # a till redeems through the API with its pos key; the same key again is the same answer
    key = f"till-1-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {web_ws['key']}", "Idempotency-Key": key}
    url = f"{server}/api/v1/loyalty/members/{customer}/redeem"
    first = httpx.post(url, json={"points": REDEEM, "note": "paid at till 1"}, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    assert first.json()["redeemed"] == REDEEM and first.json()["available"] == web_ws["balance"] - REDEEM
    again = httpx.post(url, json={"points": REDEEM, "note": "paid at till 1"}, headers=headers, timeout=30)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    with Workspace.open(web_ws["path"], read_only=True) as ws:
        assert ledger(ws, "club").balance(customer)["available"] == web_ws["balance"] - REDEEM
    w.go(f"/loyalty/members/{customer}")
    rows = page.locator("#ledger tbody tr")
    assert rows.count() >= 1
    newest = rows.first.inner_text()  # newest first: the till's redemption, once
    assert re.search(rf"(-|\u2212)\s*{REDEEM}\b", newest) and "paid at till 1" in newest, newest
    assert "redeem" in newest.lower()
    assert sum("paid at till 1" in r for r in rows.all_inner_texts()) == 1
    balance = re.sub(r"(?<=\d)[,\u00a0\u202f ](?=\d{3})", "", page.locator("main table").first.inner_text())
    assert re.search(rf"\b{web_ws['balance'] - REDEEM}\b", balance), balance
    w.shot(shots, "loyalty-member")

    # the task inbox holds the tasks the rules opened; the data page; the users
    assert web_ws["tasks"] > 0
    w.go("/feedback?view=all")
    assert page.locator("#total").get_attribute("data-total") == str(web_ws["tasks"])
    assert page.locator("#tasks tbody tr").count() == min(web_ws["tasks"], 50)
    w.shot(shots, "feedback")
    w.go("/data")
    assert "orders" in page.locator("main").inner_text()
    w.shot(shots, "data")
    w.go("/admin/users")
    assert ADMIN[0] in page.locator("main").inner_text() and MARKETER[0] in page.locator("main").inner_text()
    w.shot(shots, "admin-users")

    # the pages name their icon (else a browser asks for /favicon.ico, a 404 and a console error)
    assert page.locator("head link[rel~='icon']").count() == 1
    w.check_clean()
    w.context.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_russian_pass_by_the_language_button(server, browser, tmp_path):
    w = Watched(browser, server)
    page = w.page
    w.sign_in(*MARKETER)
    w.go("/")
    assert page.locator("html").get_attribute("lang") == "en"
    button = page.locator("form[action='/settings/language'] button[value=ru]")
    assert button.count() == 1
    with page.expect_navigation():
        button.click()
    assert page.url.rstrip("/") == server  # back where it was
    assert page.locator("html").get_attribute("lang") == "ru"
    main = page.locator("main").inner_text()
    assert "Обзор" in page.locator("header").inner_text()
    assert re.search("[а-яё]{4,}", main.lower()) and page.locator(".kpi").count() >= 3
    assert not re.search(r"\b(Retention|Revenue|Orders|previous)\b", main), main  # no English left over
    w.shot(shots_folder(tmp_path), "overview-ru")
    # the setting stays with the user: another page is Russian too
    w.go("/customers")
    assert page.locator("html").get_attribute("lang") == "ru" and "Клиенты" in page.locator("h1").inner_text()
    w.check_clean()
    w.context.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_every_page_a_click_away_renders_cleanly(server, web_ws, browser):
    """Every navigation page and every page it links to (one click deeper) opens in the
    browser with no console error (a Content-Security-Policy violation is one), no page
    error and nothing fetched from elsewhere."""
    w = Watched(browser, server)
    page = w.page
    w.sign_in(*ADMIN)
    nav = [a.get_attribute("href") for a in page.locator("header nav a").all()]
    assert len(nav) == 8, nav
    seen: dict[str, int] = {}
    shapes: dict[str, int] = {}  # at most two pages of one shape (/customers/C000001 and one more)
    queue = list(nav)
    while queue and len(seen) < 80:
        path = queue.pop(0)
        shape = re.sub(r"\d+", "#", path.split("?")[0])
        if path in seen or (path not in nav and shapes.get(shape, 0) >= 2):
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
        response = page.goto(server + path)
        seen[path] = response.status if response else 0
        if path in nav:  # one level deeper: the links of each navigation page
            for a in page.locator("main a[href^='/']").all():
                href = a.get_attribute("href")
                if href and not href.split("?")[0].endswith(".csv") and "offset=" not in href and href not in seen:
                    queue.append(href)
    bad = {p: s for p, s in seen.items() if s != 200}
    assert bad == {}, bad
    assert len(seen) > len(nav)
    w.check_clean()
    w.context.close()
