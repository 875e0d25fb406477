"""HTML and JavaScript in anything a user or a customer supplied — a customer's fields
and id, a survey comment, a playbook's text — is shown as text on every page of the web
app: every GET page of the app's route table is opened (as an admin, who sees the most)
with the planted records, and the raw markup appears nowhere."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from tests.web_helpers import add_users, client_for, sign_in

PAYLOAD = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;"
CUSTOMER = "XSS-<b>1</b>"


@pytest.fixture(scope="module")
def planted(tmp_path_factory, demo_ws_path):
    from retentio import Workspace
    from retentio.services.campaigns import new_playbook

    path = tmp_path_factory.mktemp("web-xss") / "ws"
    shutil.copytree(demo_ws_path, path)
    with Workspace.open(path) as ws:
        customers = ws.table("customers").limit(1).to_pandas()
        row = customers.iloc[0].to_dict() | {"customer_id": CUSTOMER, "city": PAYLOAD,
                                             "acquisition_channel": PAYLOAD, "email": "xss@example.com"}
        ws.load("customers", pd.DataFrame([row]), mode="append")
        ws.load("orders", pd.DataFrame([{"order_id": "XSS-order", "customer_id": CUSTOMER,
                                         "ordered_at": pd.Timestamp("2025-06-01 10:00"), "amount": 100.0,
                                         "status": "completed"}]), mode="append")
        ws.load("surveys", pd.DataFrame([{"answered_at": pd.Timestamp("2025-06-02 10:00"), "kind": "nps", "score": 3,
                                          "customer_id": CUSTOMER, "comment": PAYLOAD}]), mode="append")
        pb = new_playbook(ws, "winback", "xss-winback", channel="csv", force=True)
    text = pb.read_text(encoding="utf-8")
    # a TOML literal string: the payload's double quotes stay as they are
    text = re.sub(r"(?m)^subject = .*$", lambda _m: f"subject = '{PAYLOAD}'", text, count=1)
    pb.write_text(text, encoding="utf-8")
    emails = add_users(path, ["admin"])
    with client_for(path) as client:
        assert sign_in(client, emails["admin"]).status_code == 303
        yield client


def _pages(app):
    from fastapi.routing import APIRoute

    for route in app.routes:
        if isinstance(route, APIRoute) and "GET" in route.methods and not route.path.startswith("/api/") \
                and route.path not in ("/s/{token}", "/u/{token}", "/unsubscribe", "/health", "/settings/csrf"):
            yield route.path


def test_planted_markup_is_escaped_on_every_page(planted):
    from urllib.parse import quote

    client = planted
    values = {"customer_id": quote(CUSTOMER, safe=""), "name": "xss-winback", "run_id": "1", "task_id": "1"}
    opened, shown = [], 0
    for path in _pages(client.app):
        url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)
        for extra in ("", f"?q={quote('XSS-', safe='')}", f"?customer={quote(CUSTOMER, safe='')}"):
            r = client.get(url + extra)
            if r.headers.get("content-type", "").startswith("text/html"):
                assert "<script>alert" not in r.text, (url + extra)
                assert "<img src=x onerror" not in r.text, (url + extra)
                shown += r.text.count(ESCAPED)
                opened.append(url + extra)
    assert len(opened) > 5
    assert shown > 0  # the planted text was shown somewhere, escaped
