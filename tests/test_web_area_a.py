"""The web app's Overview, Customers, At-risk and Data pages and the customers, metrics
and loads API: real numbers against the services and direct queries, masking, audited
exports, the at-risk campaign, uploads (good and bad) and escaping."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retentio import Workspace
from tests.web_helpers import PASSWORD, add_key, add_users, csrf_of

XSS = "<script>alert(1)</script>"
ROLES = ("admin", "analyst", "support", "marketer", "pos")


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_ws_path: Path):
    """One app on a copy of the small demo with a churn score snapshot, a customer whose
    name is a script, users of every role and an integration key."""
    from retentio.data.store.registry import register_model, save_snapshot

    path = tmp_path_factory.mktemp("area_a") / "ws"
    shutil.copytree(demo_ws_path, path)
    with Workspace.open(path) as ws:
        ws.load("customers", pd.DataFrame({"customer_id": ["ZZXSS1"], "first_name": [XSS],
                                           "email": ["xss@example.com"], "acquisition_channel": ["email"]}),
                mode="append")
        ids = ws.table("customers").customer_id.to_pandas().astype(str).sort_values().tolist()
        rng = np.random.default_rng(5)
        n = 200
        p = rng.uniform(0.01, 0.95, n)
        scores = pd.DataFrame({
            "customer_id": ids[:n], "churn_probability": p, "score": np.round(p * 100).astype(int),
            "band": np.where(p >= 0.5, "high", np.where(p >= 0.25, "medium", "low")),
            "value_at_risk": [float(round(rng.uniform(0, 50)) * 10) for _ in range(n)],
            "reasons": [[f"reason {i}"] for i in range(n)],
        })
        model = register_model(ws.store, "churn", "{}", settings={}, metrics={}, data_fingerprint=ws.data_fingerprint())
        save_snapshot(ws.store, model, dt.date(2026, 9, 1), ws.data_fingerprint(), {}, scores)
    users = add_users(path, ROLES)
    key = add_key(path, "integration")
    from retentio.faces.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    app = create_app(path, env={})
    clients = {}
    for role, email in users.items():
        c = TestClient(app, raise_server_exceptions=False)
        form = c.get("/login")
        r = c.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        clients[role] = c
    api = TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {key}"})
    return {"path": path, "app": app, "c": clients, "api": api, "ids": ids}


def sql(site, query: str, *params):
    with Workspace.open(site["path"], read_only=True) as ws:
        return ws.con.execute(query, list(params)).fetchall()


def csrf(client) -> str:
    return client.get("/settings/csrf").json()["csrf_token"]


def audit_of(site, action: str) -> list[dict]:
    from retentio.services.accounts import audit_entries

    with Workspace.open(site["path"], read_only=True) as ws:
        return audit_entries(ws.store, action=action)["items"]


# ------------------------------------------------------------------------------ overview
def test_overview_shows_the_services_kpis_and_charts(site):
    from retentio.services.overview import overview

    c = site["c"]["analyst"]
    t = time.perf_counter()
    page = c.get("/?period=quarter")
    first = time.perf_counter() - t
    assert page.status_code == 200, page.text
    t = time.perf_counter()
    assert c.get("/?period=quarter").status_code == 200
    cached = time.perf_counter() - t
    with Workspace.open(site["path"], read_only=True) as ws:
        data = overview(ws, "quarter")
    cards = dict(re.findall(r'data-kpi="([a-z_]+)" data-value="([^"]+)"', page.text))
    assert {k["kpi"] for k in data.kpis} == set(cards) and "crr_pct" in cards
    for k in data.kpis:
        assert float(cards[k["kpi"]]) == pytest.approx(k["value"])
    # the same CRR as the report's headline of the metrics service
    from retentio.analytics.trends import headline
    from retentio.services.retention import MetricsParams, retention_metrics

    with Workspace.open(site["path"], read_only=True) as ws:
        h = headline(retention_metrics(ws, MetricsParams(period="quarter")).frame, "quarter")
    crr = next(k for k in h["kpis"] if k["kpi"] == "crr_pct")["value"]
    assert float(cards["crr_pct"]) == pytest.approx(crr)
    # a segment filter narrows the numbers
    seg = c.get("/?period=quarter&segment=email")
    assert seg.status_code == 200
    seg_cards = dict(re.findall(r'data-kpi="([a-z_]+)" data-value="([^"]+)"', seg.text))
    assert float(seg_cards["customers_end"]) < float(cards["customers_end"])
    assert c.get("/?segment=nowhere").status_code == 422
    assert c.get("/?period=decade").status_code == 400
    # charts: SVG, served by the chart route the page links
    srcs = re.findall(r'<img class="chart" src="([^"]+)"', page.text)
    assert srcs
    svg = c.get(srcs[0].replace("&amp;", "&"))
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<svg") and "http://" not in svg.text.replace("http://www.w3.org", "")
    assert c.get("/charts/nothing.svg").status_code == 404
    print(f"overview first {first:.2f}s, cached {cached:.3f}s")


def test_roles_without_analytics_land_on_their_first_page(site):
    r = site["c"]["support"].get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/customers"
    pos = site["c"]["pos"].get("/", follow_redirects=False)
    assert pos.status_code == 200 and "API" in pos.text
    assert site["c"]["support"].get("/charts/retention.svg").status_code == 403


# ------------------------------------------------------------------------------ customers
def test_search_finds_by_part_of_the_id_and_pages(site):
    c = site["c"]["analyst"]
    cid = site["ids"][10]
    found = c.get(f"/customers?q={cid[-4:].lower()}")
    assert found.status_code == 200 and f'href="/customers/{cid}"' in found.text
    total = sql(site, "SELECT count(*) FROM customers")[0][0]
    first = c.get("/customers")
    assert f'data-total="{total}"' in first.text
    ids1 = re.findall(r'<a href="/customers/([^"]+)">', first.text)
    second = c.get("/customers?offset=50")
    ids2 = re.findall(r'<a href="/customers/([^"]+)">', second.text)
    assert len(ids1) == 50 and ids2 and ids1[-1] < ids2[0] and 'rel="prev"' in second.text
    assert c.get("/customers?offset=-1").status_code == 400


def test_profile_numbers_masking_and_404(site):
    cid = site["ids"][10]
    t = time.perf_counter()
    page = site["c"]["analyst"].get(f"/customers/{cid}")
    took = time.perf_counter() - t
    assert page.status_code == 200, page.text
    n = sql(site, "SELECT count(*) FROM orders WHERE customer_id = ?", cid)[0][0]
    assert f'id="orders" data-count="{n}"' in page.text
    for section in ("orders", "churn", "value", "loyalty", "messages", "surveys", "tasks", "timeline"):
        assert f'id="{section}"' in page.text
    prob = float(re.search(r'data-probability="([^"]+)"', page.text).group(1))
    email = sql(site, "SELECT email FROM customers WHERE customer_id = ?", cid)[0][0]
    assert email not in page.text and email[0] + "•••@" in page.text
    full = site["c"]["support"].get(f"/customers/{cid}")
    assert full.status_code == 200 and email in full.text
    assert site["c"]["analyst"].get("/customers/NO-SUCH-ONE").status_code == 404
    api = site["api"].get(f"/api/v1/customers/{cid}/risk")
    assert api.status_code == 200 and api.json()["churn"]["probability"] == pytest.approx(prob)
    missing = site["api"].get("/api/v1/customers/NO-SUCH-ONE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert site["api"].get("/api/v1/customers/" + "x" * 300).status_code == 422
    print(f"profile page {took:.2f}s")


def test_a_script_in_a_name_is_shown_as_text(site):
    c = site["c"]["analyst"]
    for url in ("/customers?q=ZZXSS", "/customers/ZZXSS1"):
        page = c.get(url)
        assert page.status_code == 200
        assert XSS not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_the_customers_export_is_audited_and_needs_contacts(site):
    before = len(audit_of(site, "export.customers"))
    r = site["c"]["support"].get("/customers/export.csv?q=C0000")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    expected = sql(site, "SELECT count(*) FROM customers WHERE lower(customer_id) LIKE '%c0000%' "
                         "OR lower(first_name) LIKE '%c0000%' OR lower(email) LIKE '%c0000%'")[0][0]
    assert len(rows) == expected and "@" in rows[0]["email"] and "•" not in rows[0]["email"]
    entries = audit_of(site, "export.customers")
    assert len(entries) == before + 1 and entries[0]["detail"]["rows"] == expected
    assert entries[0]["actor"] == "user:support@example.com"
    assert site["c"]["analyst"].get("/customers/export.csv").status_code == 403


# ------------------------------------------------------------------------------ at risk
def test_at_risk_is_sorted_by_value_at_risk_and_filters_by_band(site):
    c = site["c"]["analyst"]
    page = c.get("/at-risk")
    assert page.status_code == 200
    values = [float(v) for v in re.findall(r'data-value-at-risk="([^"]*)"', page.text)]
    assert len(values) == 50 and values == sorted(values, reverse=True)
    assert 'data-total="200"' in page.text
    high = c.get("/at-risk?band=high")
    from retentio.services.customers import at_risk

    with Workspace.open(site["path"], read_only=True) as ws:
        expected = at_risk(ws, band="high")["total"]
    assert f'data-total="{expected}"' in high.text
    assert "band-medium" not in high.text.split('id="at-risk"')[1]
    assert c.get("/at-risk?band=extreme").status_code == 422
    # the analyst cannot start a campaign or export: no form, no link
    assert 'action="/at-risk/campaign"' not in page.text and "/at-risk/export.csv" not in page.text


def test_at_risk_export_is_audited(site):
    r = site["c"]["admin"].get("/at-risk/export.csv?band=high")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows and {row["band"] for row in rows} == {"high"}
    entry = audit_of(site, "export.at_risk")[0]
    assert entry["detail"]["rows"] == len(rows) and entry["detail"]["band"] == "high"
    assert site["c"]["analyst"].get("/at-risk/export.csv").status_code == 403


def test_start_a_campaign_for_the_list_writes_a_playbook(site):
    from retentio.actions.playbooks import read_playbook

    c = site["c"]["marketer"]
    page = c.get("/at-risk?band=high&channel=email")
    assert 'action="/at-risk/campaign"' in page.text
    r = c.post("/at-risk/campaign", data={"band": "high", "segment": "", "channel": "email",
                                          "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    name = re.fullmatch(r"/campaigns/([^/]+)/plan", r.headers["location"]).group(1)
    pb = read_playbook(site["path"], name)
    assert pb.kind == "churn_risk" and pb.trigger.bands == ("high",)
    assert pb.audience.where == {"acquisition_channel": ("email",)}
    entry = audit_of(site, "playbook.create")[0]
    assert entry["target"] == name and entry["actor"] == "user:marketer@example.com"
    # without the CSRF token, or for a role that may not edit campaigns: refused
    assert c.post("/at-risk/campaign", data={"band": "high"}).status_code == 403
    analyst = site["c"]["analyst"]
    assert analyst.post("/at-risk/campaign", data={"csrf_token": csrf(analyst)}).status_code == 403


# ------------------------------------------------------------------------------ data
def test_upload_of_a_good_and_a_bad_file(site):
    c = site["c"]["admin"]
    page = c.get("/data")
    assert page.status_code == 200 and 'id="history"' in page.text
    before = sql(site, "SELECT count(*) FROM tickets")[0][0]
    good = ("customer_id,opened_at,resolved_at,topic,satisfaction\n"
            f"{site['ids'][1]},2026-09-10 10:00,2026-09-11 10:00,delivery,4\n"
            f"{site['ids'][2]},2026-09-12 10:00,,refund,\n")
    r = c.post("/data/upload", data={"table": "tickets", "mode": "append", "csrf_token": csrf_of(page.text)},
               files={"file": ("new tickets.csv", good.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    assert 'id="load-result" data-rows="2"' in r.text
    assert sql(site, "SELECT count(*) FROM tickets")[0][0] == before + 2
    assert "new_tickets.csv" in r.text  # the load history names the file
    entry = audit_of(site, "data.load")[0]
    assert entry["target"] == "tickets" and entry["detail"]["rows"] == 2
    bad = ("customer_id,opened_at,resolved_at,topic,satisfaction\n"
           f"{site['ids'][3]},2026-09-10 10:00,,delivery,4\n"
           f"{site['ids'][4]},not a date,,refund,\n")
    r = c.post("/data/upload", data={"table": "tickets", "mode": "append", "csrf_token": csrf(c)},
               files={"file": ("bad.csv", bad.encode(), "text/csv")})
    assert r.status_code == 422
    errors = r.text.split('id="load-errors"')[1]
    assert "opened_at" in errors and "line 3" in errors and "not a date" in errors
    assert sql(site, "SELECT count(*) FROM tickets")[0][0] == before + 2
    # the API: the same refusal as JSON, every error with its line and column
    api = site["api"].post("/api/v1/loads/tickets", files={"file": ("bad.csv", bad.encode(), "text/csv")})
    assert api.status_code == 422
    body = api.json()["error"]
    assert body["code"] == "invalid_rows" and body["errors"][0]["line"] == 3
    assert body["errors"][0]["column"] == "opened_at"
    assert sql(site, "SELECT count(*) FROM tickets")[0][0] == before + 2
    assert site["c"]["analyst"].post("/data/upload", data={"table": "tickets", "csrf_token": csrf(
        site["c"]["analyst"])}, files={"file": ("x.csv", b"a\n1\n")}).status_code == 403


# ------------------------------------------------------------------------------ API
def test_api_shapes(site):
    api = site["api"]
    listed = api.get("/api/v1/customers?limit=5&offset=5")
    assert listed.status_code == 200
    body = listed.json()
    total = sql(site, "SELECT count(*) FROM customers")[0][0]
    assert body["total"] == total and len(body["items"]) == 5
    assert "•••" in body["items"][0]["email"]  # the integration role sees no contacts
    assert api.get("/api/v1/customers?limit=501").status_code == 422
    cid = site["ids"][10]
    prof = api.get(f"/api/v1/customers/{cid}").json()
    n = sql(site, "SELECT count(*) FROM orders WHERE customer_id = ?", cid)[0][0]
    assert prof["counts"]["orders"] == n and len(prof["orders"]) == n
    value = api.get(f"/api/v1/customers/{cid}/value").json()
    assert set(value) == {"customer_id", "value", "segment", "notes"}
    risk = api.get("/api/v1/at-risk?band=high&limit=3").json()
    assert len(risk["items"]) == 3 and all(i["band"] == "high" for i in risk["items"])
    assert risk["bands"]["high"] == risk["total"]
    metrics = api.get("/api/v1/metrics?period=month").json()
    assert metrics["kpis"] and metrics["total"] == len(metrics["items"])
    assert api.get("/api/v1/metrics?period=century").status_code == 422
    segs = api.get("/api/v1/segments").json()
    assert sum(s["customers"] for s in segs["items"]) > 0
    cohorts = api.get("/api/v1/cohorts?period=quarter&limit=10").json()
    assert len(cohorts["items"]) == 10 and cohorts["average"]
    loads = api.get("/api/v1/loads").json()
    assert {t["table"] for t in loads["tables"]} >= {"customers", "orders"} and loads["history"]["total"] > 0
    # a support user reading a profile through the API sees contacts: audited
    support = site["c"]["support"]
    before = len(audit_of(site, "customer.view"))
    assert "@" in support.get(f"/api/v1/customers/{cid}").json()["customer"]["email"]
    assert len(audit_of(site, "customer.view")) == before + 1


def test_the_customer_count_follows_the_channel_filter(site):
    c = site["c"]["analyst"]
    channel, count = sql(site, "SELECT acquisition_channel, count(*) FROM customers "
                               "WHERE acquisition_channel IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1")[0]
    everyone = c.get("/api/v1/metrics").json()["customers"]
    one = c.get("/api/v1/metrics", params={"segment": channel}).json()["customers"]
    assert one == count < everyone
