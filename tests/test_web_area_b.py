"""The web app's campaigns and loyalty areas (pages and API), on a copy of the demo
workspace with a points program and a win-back playbook on the CSV channel (nothing is
really sent; quiet hours off so a run never waits for the morning)."""

from __future__ import annotations

import re
import shutil
import warnings

import pytest

PASSWORD = "correct horse battery staple"
ROLES = ("admin", "analyst", "marketer", "support")
NO_QUIET = '\n[campaigns]\nquiet_start = "00:00"\nquiet_end = "00:00"\n'
PROGRAM = ('kind = "points"\npoint_value = 0.01\n[earn]\nper_amount = 1\n[redeem]\nmax_share = 0.5\n'
           '[expiry]\ndays = 365\n')
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token on the page"
    return found.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_ws_path):
    """The app on a copy of the demo workspace: a client per role, a pos key, a program."""
    from retentio import Workspace
    from retentio.faces.web.app import create_app
    from retentio.services.accounts import add_user, cli_principal, create_key
    from retentio.services.campaigns import new_playbook

    path = tmp_path_factory.mktemp("web_b") / "ws"
    shutil.copytree(demo_ws_path, path)
    toml = path / "retentio.toml"
    assert "[campaigns]" not in toml.read_text(encoding="utf-8")
    with toml.open("a", encoding="utf-8") as f:
        f.write(NO_QUIET)
    (path / "loyalty").mkdir(exist_ok=True)
    (path / "loyalty" / "club.toml").write_text(PROGRAM, encoding="utf-8")
    with Workspace.open(path) as ws:
        for role in ROLES:
            add_user(ws.store, f"{role}@example.com", PASSWORD, role, actor=cli_principal())
        pos_key = create_key(ws.store, "till", "pos", actor=cli_principal())["key"]
        new_playbook(ws, "winback", "wb", channel="csv")
        customers = ws.table("customers").select("customer_id", "first_name").order_by("customer_id") \
            .limit(5).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    app = create_app(path, env={})
    clients = {}
    for role in ROLES:
        c = TestClient(app, raise_server_exceptions=False)
        form = c.get("/login")
        r = c.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD,
                                   "csrf_token": _csrf(form.text), "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        c.headers["X-CSRF-Token"] = c.get("/settings/csrf").json()["csrf_token"]
        clients[role] = c
    pos = TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {pos_key}"})
    return {"path": path, "app": app, "c": clients, "pos": pos, "customers": customers}


def _audit(site, action, target=None):
    from retentio.services.accounts import audit_entries

    rows = audit_entries(site["app"].state.web.store, action=action, limit=500)["items"]
    return [r for r in rows if target is None or r["target"] == target]


def _available(site, customer) -> int:
    from retentio import Workspace
    from retentio.services.loyalty import ledger

    with Workspace.open(site["path"], read_only=True) as ws:
        return ledger(ws, "club").balance(customer)["available"]


def _entries(site, customer) -> int:
    from sqlalchemy import func, select

    from retentio.data.store.loyalty_tables import LoyaltyEntry

    with site["app"].state.web.store.session() as s:
        return s.scalar(select(func.count()).select_from(LoyaltyEntry).where(LoyaltyEntry.customer_id == customer))


# ---------------------------------------------------------------------- loyalty
def test_earn_then_redeem_changes_the_balance_and_shows_in_the_ledger(site):
    customer = site["customers"].customer_id[0]
    pos = site["pos"]
    r = pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 500, "program": "club"})
    assert r.status_code == 200, r.text
    assert r.json()["earned"] == 500 and r.json()["available"] == 500
    r = pos.post(f"/api/v1/loyalty/members/{customer}/redeem", json={"points": 120, "note": "till 3"})
    assert r.status_code == 200, r.text
    assert r.json()["available"] == 380 == _available(site, customer)
    assert pos.get(f"/api/v1/loyalty/members/{customer}").json()["programs"][0]["available"] == 380
    history = site["c"]["support"].get(f"/api/v1/loyalty/members/{customer}/history").json()
    assert [(h["kind"], h["points"]) for h in history["items"] if h["account"] == "available"][:2] == \
        [("redeem", -120), ("earn", 500)]
    page = site["c"]["support"].get(f"/loyalty/members/{customer}")
    assert page.status_code == 200
    ledger = page.text[page.text.index('id="ledger"'):]
    assert ledger.index('data-points="-120"') < ledger.index('data-points="500"')  # newest first
    assert 'data-available="380"' in page.text
    assert _audit(site, "loyalty.earn", customer) and _audit(site, "loyalty.redeem", customer)


def test_the_same_idempotency_key_twice_is_one_entry_and_the_same_answer(site):
    customer = site["customers"].customer_id[1]
    pos = site["pos"]
    headers = {"Idempotency-Key": "till-7-receipt-1"}
    first = pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 70}, headers=headers)
    n = _entries(site, customer)
    again = pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 70}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert _entries(site, customer) == n and _available(site, customer) == 70
    other = pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 71}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    # without a key every call is new
    pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 5})
    pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 5})
    assert _available(site, customer) == 80


def test_redeem_never_overdraws(site):
    customer = site["customers"].customer_id[2]
    pos = site["pos"]
    pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 50})
    n = _entries(site, customer)
    r = pos.post(f"/api/v1/loyalty/members/{customer}/redeem", json={"points": 51})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "insufficient_points"
    assert error["message"] == f"{customer} has 50 points available; 51 cannot be redeemed (nothing was written)"
    assert _available(site, customer) == 50 and _entries(site, customer) == n
    huge = pos.post(f"/api/v1/loyalty/members/{customer}/redeem", json={"points": 10**30})
    assert huge.status_code == 422
    assert pos.post("/api/v1/loyalty/members/nobody-here/earn", json={"points": 5}).status_code == 404
    assert pos.post(f"/api/v1/loyalty/members/{customer}/earn", json={"points": 5, "program": "nope"}
                    ).status_code == 404


def test_pos_key_may_use_the_till_only(site):
    pos = site["pos"]
    assert pos.get("/api/v1/campaigns").status_code == 403
    assert pos.get("/api/v1/loyalty/programs").status_code == 403
    assert pos.post(f"/api/v1/loyalty/members/{site['customers'].customer_id[2]}/adjust",
                    json={"points": 5, "reason": "x"}).status_code == 403
    assert pos.post(f"/api/v1/loyalty/members/{site['customers'].customer_id[2]}/redeem",
                    json={"points": 10}).status_code == 200


def test_adjust_needs_a_reason_and_is_audited_with_before_and_after(site):
    customer = site["customers"].customer_id[3]
    support = site["c"]["support"]
    page = support.get(f"/loyalty/members/{customer}")
    assert 'id="adjust"' in page.text
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    form = {"csrf_token": _csrf(page.text), "points": "40", "reason": "  ", "program": "club", "key": key}
    r = support.post(f"/loyalty/members/{customer}/adjust", data=form, follow_redirects=False)
    assert r.status_code == 422 and 'data-field="reason"' in r.text
    assert _entries(site, customer) == 0 and not _audit(site, "loyalty.adjust", customer)
    api = support.post(f"/api/v1/loyalty/members/{customer}/adjust", json={"points": 40, "reason": ""})
    assert api.status_code == 422 and api.json()["error"]["field"] == "reason"
    r = support.post(f"/loyalty/members/{customer}/adjust", data=form | {"reason": "goodwill: late parcel"},
                     follow_redirects=False)
    assert r.status_code == 303, r.text
    assert _available(site, customer) == 40 and _entries(site, customer) == 2  # customer and program lines
    (row,) = _audit(site, "loyalty.adjust", customer)
    assert row["detail"]["before"] == 0 and row["detail"]["after"] == 40
    assert row["detail"]["reason"] == "goodwill: late parcel" and row["actor"] == "user:support@example.com"
    r = support.post(f"/api/v1/loyalty/members/{customer}/adjust", json={"points": -15, "reason": "typo"})
    assert r.status_code == 200 and r.json()["before"] == 40 and r.json()["available"] == 25
    assert _audit(site, "loyalty.adjust", customer)[0]["detail"]["after"] == 25
    # the analyst reads but may not adjust
    assert site["c"]["analyst"].post(f"/api/v1/loyalty/members/{customer}/adjust",
                                     json={"points": 1, "reason": "x"}).status_code == 403


def test_loyalty_overview_and_lookup(site):
    support = site["c"]["support"]
    page = support.get("/loyalty")
    assert page.status_code == 200 and "club" in page.text
    found = support.get(f"/loyalty/members?customer={site['customers'].customer_id[0]}", follow_redirects=False)
    assert found.status_code == 303
    assert support.get("/loyalty/members?customer=nobody").status_code == 404
    assert support.get("/loyalty/members/nobody").status_code == 404
    programs = support.get("/api/v1/loyalty/programs").json()
    assert programs["total"] == 1 and programs["items"][0]["name"] == "club"


# ---------------------------------------------------------------------- campaigns
def test_invalid_playbook_edit_shows_the_field_and_writes_nothing(site):
    marketer = site["c"]["marketer"]
    path = site["path"] / "playbooks" / "wb.toml"
    before = path.read_text(encoding="utf-8")
    page = marketer.get("/campaigns/wb")
    assert page.status_code == 200 and "<textarea" in page.text
    bad = before.replace("percent = 10", "percent = 150")
    r = marketer.post("/campaigns/wb", data={"csrf_token": _csrf(page.text), "text": bad}, follow_redirects=False)
    assert r.status_code == 422
    assert '<strong id="error-field">[holdout] percent</strong>' in r.text
    assert path.read_text(encoding="utf-8") == before
    assert not _audit(site, "playbook.edit", "wb")
    # the analyst may view, not save
    assert site["c"]["analyst"].post("/campaigns/wb", data={"text": before}).status_code == 403


def test_valid_playbook_edit_is_saved_and_audited_and_escaped(site):
    import hashlib

    marketer = site["c"]["marketer"]
    path = site["path"] / "playbooks" / "wb.toml"
    before = path.read_text(encoding="utf-8")
    after = before.replace('description = ""', 'description = "<script>alert(1)</script>"') \
        .replace("percent = 10", "percent = 20")
    page = marketer.get("/campaigns/wb")
    r = marketer.post("/campaigns/wb", data={"csrf_token": _csrf(page.text), "text": after}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/campaigns/wb?saved=1"
    assert path.read_text(encoding="utf-8") == after
    (row,) = _audit(site, "playbook.edit", "wb")
    assert row["detail"]["before_sha256"] == hashlib.sha256(before.encode()).hexdigest()
    assert row["detail"]["after_sha256"] == hashlib.sha256(after.encode()).hexdigest()
    assert row["detail"]["lines_added"] == 2 == row["detail"]["lines_removed"]
    shown = marketer.get("/campaigns/wb?saved=1").text
    assert "<script>alert(1)</script>" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    api = marketer.get("/api/v1/campaigns/wb").json()
    assert api["text"] == after and api["playbook"]["holdout"]["percent"] == 20
    assert marketer.get("/campaigns/..%2Fretentio").status_code in (404, 422)
    assert marketer.get("/api/v1/campaigns/nope").status_code == 404


def test_preview_renders_the_message_for_a_real_customer(site):
    marketer = site["c"]["marketer"]
    path = site["path"] / "playbooks" / "wb.toml"
    text = path.read_text(encoding="utf-8").replace(
        'subject = "We miss you, {{ first_name }}"', 'subject = "We miss you, {{ first_name }} <script>x</script>"')
    page = marketer.get("/campaigns/wb")
    assert marketer.post("/campaigns/wb", data={"csrf_token": _csrf(page.text), "text": text},
                         follow_redirects=False).status_code == 303
    row = site["customers"].iloc[0]
    r = marketer.get(f"/campaigns/wb/preview?customer={row.customer_id}")
    assert r.status_code == 200, r.text
    subject = re.search(r'<span id="subject">(.*?)</span>', r.text).group(1)
    assert subject == f"We miss you, {row.first_name} &lt;script&gt;x&lt;/script&gt;"
    assert marketer.get("/campaigns/wb/preview?customer=nobody").status_code == 404


def test_plan_page_shows_the_services_numbers(site):
    from retentio import Workspace
    from retentio.services.campaigns import plan_campaign

    with Workspace.open(site["path"], read_only=True) as ws:
        c = plan_campaign(ws, "wb").counts
    r = site["c"]["analyst"].get("/campaigns/wb/plan")
    assert r.status_code == 200
    assert c["triggered"] > 0
    for step in ("triggered", "eligible", "treatment", "control", "messages"):
        assert f'<tr data-step="{step}"><td>' in r.text
        cell = re.search(rf'<tr data-step="{step}"><td>[^<]*</td><td class="num">(\d+)</td>', r.text).group(1)
        assert int(cell) == c[step], step
    assert re.search(r'id="kpi-cost">([\d.]+) [A-Z]{3}<', r.text).group(1) == f"{c['estimated_cost']:.2f}"
    api = site["c"]["analyst"].get("/api/v1/campaigns/wb/plan").json()
    assert api["counts"]["messages"] == c["messages"] and api["counts"]["suppressed"] == c["suppressed"]
    assert "/campaigns/wb/run" not in r.text  # the analyst is not offered the run


def test_run_by_marketer_goes_to_the_run_page_and_analyst_is_refused(site):
    analyst, marketer = site["c"]["analyst"], site["c"]["marketer"]
    page = analyst.get("/campaigns/wb/plan")
    assert analyst.post("/campaigns/wb/run", data={"csrf_token": _csrf(page.text)}).status_code == 403
    assert analyst.post("/api/v1/campaigns/wb/run").status_code == 403
    page = marketer.get("/campaigns/wb/plan")
    assert 'data-confirm="' in page.text and 'action="/campaigns/wb/run"' in page.text
    r = marketer.post("/campaigns/wb/run", data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    run_id = int(r.headers["location"].rsplit("/", 1)[1])
    (row,) = _audit(site, "campaign.run", "wb")
    assert row["detail"]["run_id"] == run_id and row["detail"]["treatment"] > 0
    shown = marketer.get(r.headers["location"])
    assert shown.status_code == 200 and 'id="results"' in shown.text
    assert f'id="run-treatment">{row["detail"]["treatment"]}<' in shown.text
    api = marketer.get(f"/api/v1/campaigns/runs/{run_id}").json()
    assert api["counts"]["treatment"] == row["detail"]["treatment"]
    assert marketer.get("/api/v1/campaigns/runs").json()["items"][0]["run_id"] == run_id
    assert marketer.get("/api/v1/campaigns/runs/999999").status_code == 404
    assert marketer.get("/campaigns").status_code == 200
    from retentio import Workspace
    from retentio.data.errors import RetentioError
    from retentio.services.measurement import MeasureParams, measure_campaigns

    m = marketer.get("/api/v1/campaigns/measure?campaign=wb")
    try:
        with Workspace.open(site["path"], read_only=True) as ws:
            direct = measure_campaigns(ws, MeasureParams(["wb"]))
    except RetentioError as exc:
        assert m.status_code in (404, 422) and m.json()["error"]["message"] == str(exc)
        assert "Not measured yet" in shown.text
        return
    assert m.status_code == 200, m.text
    total = direct.rows[-1]
    assert m.json()["rows"][-1]["treatment_n"] == total["treatment_n"]
    table = shown.text[shown.text.index('id="measure"'):]
    assert f'<td class="num">{total["treatment_n"]}</td><td class="num">{total["control_n"]}</td>' in table


def test_a_fresh_at_risk_playbook_opens_its_plan(site):
    """The At-risk page writes a churn-risk playbook and redirects to its plan: the plan,
    the playbook and the preview pages open it at once (no churn model trained here)."""
    from retentio import Workspace

    try:
        from retentio.services.overview import at_risk_playbook
    except ImportError:  # pragma: no cover - the other area not there yet
        pytest.skip("services.overview.at_risk_playbook is not there")
    with Workspace.open(site["path"]) as ws:
        name = at_risk_playbook(ws, band="high").stem
    marketer = site["c"]["marketer"]
    plan = marketer.get(f"/campaigns/{name}/plan")
    assert plan.status_code in (200, 422), plan.text
    if plan.status_code == 422:  # without a churn model the plan says so, as the CLI does
        assert "churn" in plan.text.lower()
    assert marketer.get(f"/campaigns/{name}").status_code == 200
    assert name in marketer.get("/campaigns").text


def test_pages_speak_russian(site):
    support, analyst = site["c"]["support"], site["c"]["analyst"]
    customer = site["customers"].customer_id[0]
    assert "Журнал операций" in support.get(f"/loyalty/members/{customer}?lang=ru").text
    assert "Программы" in support.get("/loyalty?lang=ru").text
    assert "Сценарии" in analyst.get("/campaigns?lang=ru").text
    page = analyst.get("/campaigns/wb?lang=ru")
    assert "Ваша роль позволяет просматривать сценарии" in page.text and "readonly" in page.text


def test_a_broken_program_file_is_reported_not_a_server_error(site):
    broken = site["path"] / "loyalty" / "broken.toml"
    broken.write_text('point_value = "bad"\n', encoding="utf-8")
    try:
        page = site["c"]["support"].get("/loyalty")
        assert page.status_code == 200 and "broken" in page.text and 'class="error"' in page.text
        ru = site["c"]["support"].get("/loyalty?lang=ru")
        assert ru.status_code == 200
        # Russian numbers: a space groups thousands and a comma marks decimals (never "5,947")
        assert not re.search(r"\d,\d{3}\b", re.sub(r"<[^>]+>", " ", ru.text.split('id="programs"')[0]))
    finally:
        broken.unlink()
