"""Who may open what: every route of the web app walked from the app's own route table
(a new route is covered without editing this file) — without credentials, and with
each role — against the role matrix below; and the security properties of sign-in,
sessions, CSRF, API keys, throttling and the audit log."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import pytest

from tests.web_helpers import PASSWORD, add_key, add_users, client_for, csrf_of, sign_in

PEOPLE = ("admin", "analyst", "marketer", "support")
MACHINES = ("pos", "integration")
ALL = frozenset(PEOPLE + MACHINES)

#: the role matrix: which roles hold each permission (an independent statement of the
#: policy: a change to retentio.services.access that disagrees fails here)
MATRIX: dict[str | None, frozenset[str]] = {
    None: ALL,
    "analytics": frozenset({"admin", "analyst", "marketer", "integration"}),
    "customers": frozenset({"admin", "analyst", "marketer", "support", "integration"}),
    "contacts": frozenset({"admin", "support"}),
    "models": frozenset({"admin", "analyst"}),
    "campaigns.read": frozenset({"admin", "analyst", "marketer"}),
    "campaigns.edit": frozenset({"admin", "marketer"}),
    "campaigns.run": frozenset({"admin", "marketer"}),
    "loyalty.read": frozenset({"admin", "analyst", "marketer", "support", "integration"}),
    "loyalty.pos": frozenset({"admin", "support", "pos", "integration"}),
    "loyalty.adjust": frozenset({"admin", "support"}),
    "feedback.read": frozenset({"admin", "analyst", "marketer", "support"}),
    "feedback.tasks": frozenset({"admin", "support"}),
    "feedback.answer": frozenset({"admin", "support", "integration"}),
    "data.read": frozenset({"admin", "analyst", "marketer", "integration"}),
    "data.load": frozenset({"admin", "integration"}),
    "admin": frozenset({"admin"}),
}
#: routes anyone may open (each protected by the signed token it carries, or harmless)
PUBLIC = {"/login", "/s/{token}", "/u/{token}", "/unsubscribe", "/health", "/api/v1/openapi.json"}
#: sample values of path parameters (none names anything that exists: a walk changes nothing)
SAMPLES = {"customer_id": "no-such-customer", "name": "no-such-playbook", "run_id": "999999", "task_id": "999999",
           "token": "not-a-token", "table": "no_such_table", "program": "no-such-program", "chart": "none"}
#: routes the walk does not call with an allowed role (calling them changes the session under test)
SESSION_ENDING = {("POST", "/logout")}


def test_the_matrix_is_the_policy():
    from retentio.services.access import PERMISSIONS, ROLE_PERMISSIONS

    assert set(MATRIX) - {None} == set(PERMISSIONS)
    for permission in PERMISSIONS:
        assert {r for r, held in ROLE_PERMISSIONS.items() if permission in held} == MATRIX[permission], permission


@pytest.fixture(scope="module")
def site(tmp_path_factory, demo_ws_path):
    path = tmp_path_factory.mktemp("web-access") / "ws"
    shutil.copytree(demo_ws_path, path)
    emails = add_users(path, PEOPLE)
    keys = {role: add_key(path, role) for role in MACHINES}
    with client_for(path) as client:
        yield client, path, emails, keys


def _routes(app):
    from fastapi.routing import APIRoute

    for route in app.routes:
        if isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLES.get(m.group(1), "x"), path)


def test_every_route_declares_who_may_use_it(site):
    from retentio.faces.web.security import route_permission

    client, *_ = site
    undeclared = [f"{m} {r.path}" for m, r in _routes(client.app)
                  if r.path not in PUBLIC and not route_permission(r)[0]]
    assert not undeclared, f"routes without need(permission): {undeclared}"
    assert sum(r.path.startswith("/api/") for _, r in _routes(client.app)) > 25


def test_without_credentials_api_is_401_and_pages_go_to_sign_in(site):
    client, *_ = site
    client.cookies.clear()
    checked = 0
    for method, route in _routes(client.app):
        if route.path in PUBLIC:
            continue
        r = client.request(method, _url(route.path), follow_redirects=False)
        if route.path.startswith("/api/"):
            assert r.status_code == 401, (method, route.path, r.status_code)
            assert r.json()["error"]["code"] == "unauthenticated"
            assert r.headers["www-authenticate"].startswith("Bearer")
        else:
            assert r.status_code == 303, (method, route.path, r.status_code)
            assert r.headers["location"].startswith("/login?next=")
        checked += 1
    assert checked > 60
    for path in ("/login", "/health", "/api/v1/openapi.json"):
        assert client.get(path).status_code == 200, path


def _as(client, role, emails, keys):
    """Headers for ``role``: an API key for machines, a fresh session for people."""
    client.cookies.clear()
    if role in keys:
        return {"Authorization": f"Bearer {keys[role]}"}
    assert sign_in(client, emails[role]).status_code == 303
    return {"X-CSRF-Token": client.get("/settings/csrf").json()["csrf_token"]}


@pytest.mark.parametrize("role", PEOPLE + MACHINES)
def test_each_role_gets_what_the_matrix_says(site, role):
    from retentio.faces.web.security import route_permission

    client, _, emails, keys = site
    headers = _as(client, role, emails, keys)
    seen = 0
    for method, route in _routes(client.app):
        if route.path in PUBLIC:
            continue
        permission = route_permission(route)[1]
        may = role in MATRIX[permission]
        if may and (method, route.path) in SESSION_ENDING:
            continue
        r = client.request(method, _url(route.path), headers=headers, follow_redirects=False)
        if may:
            assert r.status_code not in (401, 403), (role, method, route.path, r.status_code, r.text[:300])
            assert r.status_code < 500, (role, method, route.path, r.status_code, r.text[:300])
        else:
            assert r.status_code == 403, (role, method, route.path, permission, r.status_code)
            if route.path.startswith("/api/"):
                assert r.json()["error"]["code"] == "forbidden"
        seen += 1
        if role in PEOPLE and client.get("/settings/csrf").status_code != 200:  # a route ended the session
            headers = _as(client, role, emails, keys)
    assert seen > 60


# ---------------------------------------------------------------------- security
def test_csrf_missing_or_wrong_is_refused(site):
    client, path, emails, _ = site
    client.cookies.clear()
    assert sign_in(client, emails["admin"]).status_code == 303
    token = client.get("/settings/csrf").json()["csrf_token"]
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        r = client.post("/settings/language", data={"language": "ru"}, headers=headers, follow_redirects=False)
        assert r.status_code == 403, headers
        r = client.post("/api/v1/loyalty/members/x/redeem", json={"points": 1}, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf", headers
    r = client.post("/settings/language", data={"language": "ru", "csrf_token": "wrong"}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/settings/language", data={"language": "en", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    # the sign-in form itself: a POST without the double-submit cookie's token is refused
    client.cookies.clear()
    r = client.post("/login", data={"email": emails["admin"], "password": PASSWORD, "csrf_token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403 and "retentio_session" not in r.headers.get("set-cookie", "")


def test_session_cookie_flags(site, tmp_path):
    client, path, emails, _ = site
    client.cookies.clear()
    cookie = sign_in(client, emails["analyst"]).headers["set-cookie"]
    session = next(c for c in cookie.split(", retentio") if "retentio_session=" in c)
    assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
    assert "Secure" not in session  # plain http on loopback
    assert "Max-Age" not in session and "expires" not in session.lower()  # the server decides when it ends
    # over HTTPS the cookie is Secure
    from tests.web_helpers import client_for as make

    with make(path) as https:
        https.base_url = https.base_url.copy_with(scheme="https")
        form = https.get("/login")
        r = https.post("/login", data={"email": emails["analyst"], "password": PASSWORD,
                                       "csrf_token": csrf_of(form.text)}, follow_redirects=False)
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_logout_ends_the_session_on_the_server(site):
    client, _, emails, _ = site
    client.cookies.clear()
    sign_in(client, emails["marketer"])
    stolen = client.cookies.get("retentio_session")
    token = client.get("/settings/csrf").json()["csrf_token"]
    assert client.get("/api/v1/me").json()["name"] == emails["marketer"]
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set("retentio_session", stolen)  # a kept copy of the cookie no longer signs in
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/settings/csrf", follow_redirects=False).status_code == 303


def test_sign_in_throttled_after_five_failures_per_account_and_address(tmp_path):
    from retentio import Workspace

    Workspace.init(tmp_path / "ws").close()
    emails = add_users(tmp_path / "ws", ["admin", "support"])
    with client_for(tmp_path / "ws") as client:
        statuses = [sign_in(client, emails["admin"], "wrong password!").status_code for _ in range(5)]
        assert statuses == [401] * 5
        r = sign_in(client, emails["admin"])  # the right password, but throttled
        assert r.status_code == 429 and "retentio_session" not in r.headers.get("set-cookie", "")
        assert int(r.headers["retry-after"]) > 0
        # the same address is throttled for other accounts too (per-address limit)
        assert sign_in(client, emails["support"]).status_code == 429
    from retentio.services.accounts import AccessRefused, Throttled
    from retentio.services.accounts import sign_in as service_sign_in

    with Workspace.open(tmp_path / "ws") as ws:
        # from another address, the account is still throttled (per-account limit)
        with pytest.raises(Throttled):
            service_sign_in(ws.store, emails["admin"], PASSWORD, address="10.0.0.9")
        # and after the window it signs in again
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
        token, who = service_sign_in(ws.store, emails["admin"], PASSWORD, address="10.0.0.9", at=later)
        assert who.role == "admin" and token
        messages = set()
        for email in (emails["support"], "nobody@example.com"):
            with pytest.raises(AccessRefused) as refused:
                service_sign_in(ws.store, email, "wrong password!", address="10.0.0.10")
            messages.add(str(refused.value))
        assert messages == {"wrong email or password"}


def test_expired_idle_and_disabled_sessions_end(tmp_path):
    from retentio import Workspace
    from retentio.services.accounts import (
        IDLE_MINUTES,
        SESSION_HOURS,
        cli_principal,
        session_principal,
        set_disabled,
    )
    from retentio.services.accounts import sign_in as service_sign_in

    Workspace.init(tmp_path / "ws").close()
    emails = add_users(tmp_path / "ws", ["support"])
    with Workspace.open(tmp_path / "ws") as ws:
        t0 = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
        token, _ = service_sign_in(ws.store, emails["support"], PASSWORD, address="1.2.3.4", at=t0)
        step = dt.timedelta(minutes=IDLE_MINUTES - 5)
        t = t0
        while t + step < t0 + dt.timedelta(hours=SESSION_HOURS):  # active use keeps it alive ...
            t += step
            assert session_principal(ws.store, token, at=t) is not None
        # ... until the absolute expiry
        assert session_principal(ws.store, token, at=t0 + dt.timedelta(hours=SESSION_HOURS)) is None
        token2, _ = service_sign_in(ws.store, emails["support"], PASSWORD, address="1.2.3.4", at=t0)
        assert session_principal(ws.store, token2, at=t0 + dt.timedelta(minutes=IDLE_MINUTES + 1)) is None  # idle
        token3, _ = service_sign_in(ws.store, emails["support"], PASSWORD, address="1.2.3.4")
        assert session_principal(ws.store, token3) is not None
        set_disabled(ws.store, emails["support"], True, actor=cli_principal())
        assert session_principal(ws.store, token3) is None


def test_old_password_hashes_are_upgraded_on_sign_in(tmp_path):
    from argon2 import PasswordHasher
    from sqlalchemy import select, update

    from retentio import Workspace
    from retentio.data.store.access_tables import User
    from retentio.services.accounts import sign_in as service_sign_in

    Workspace.init(tmp_path / "ws").close()
    emails = add_users(tmp_path / "ws", ["analyst"])
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with Workspace.open(tmp_path / "ws") as ws:
        with ws.store.session() as s:
            s.execute(update(User).values(password_hash=weak))
        service_sign_in(ws.store, emails["analyst"], PASSWORD, address="x")
        with ws.store.session() as s:
            stored = s.scalar(select(User.password_hash))
    assert stored != weak and stored.startswith("$argon2id$") and "m=65536" in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_pos_key_is_loyalty_only_and_revoked_keys_stop(site):
    from retentio import Workspace
    from retentio.services.accounts import cli_principal, revoke_key

    client, path, _, keys = site
    client.cookies.clear()
    pos = {"Authorization": f"Bearer {keys['pos']}"}
    assert client.get("/api/v1/me", headers=pos).json()["permissions"] == ["loyalty.pos"]
    r = client.get("/api/v1/customers", headers=pos)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.get("/customers", headers=pos, follow_redirects=False).status_code == 403
    key = add_key(path, "pos", "to revoke")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with Workspace.open(path) as ws:
        revoke_key(ws.store, key.split("_")[1], actor=cli_principal())
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}x"}).status_code == 401


def test_tampered_survey_and_unsubscribe_tokens_are_refused(site):
    client, *_ = site
    assert client.get("/s/eyJhIjoxfQ.tampered.sig").status_code == 400
    assert client.post("/s/eyJhIjoxfQ.tampered.sig", data={"score": "9"}).status_code == 400
    assert client.post("/u/tampered.token").status_code == 400


def test_next_after_sign_in_stays_on_this_site(site):
    client, _, emails, _ = site
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example/", "/"), ("/customers", "/customers")):
        client.cookies.clear()
        r = sign_in(client, emails["analyst"], next_path=target)
        assert r.headers["location"] == expected, target


def test_audit_log_records_changes_and_is_append_only(site):
    import sqlalchemy as sa

    from retentio import Workspace
    from retentio.services.accounts import audit_entries

    client, path, emails, _ = site
    with Workspace.open(path) as ws:
        log = audit_entries(ws.store, limit=1000)
        actions = {e["action"] for e in log["items"]}
        assert {"user.add", "apikey.create", "signin"} <= actions
        signins = [e for e in log["items"] if e["action"] == "signin"]
        assert signins[0]["address"] == "testclient" and signins[0]["actor"].startswith("user:")
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with ws.store.session() as s:
                s.execute(sa.text("UPDATE audit_log SET action = 'x'"))
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with ws.store.session() as s:
                s.execute(sa.text("DELETE FROM audit_log"))
        assert audit_entries(ws.store, limit=1)["total"] == log["total"]


def test_user_commands(tmp_path, monkeypatch):
    import json

    from tests.conftest import run_cli

    ws = str(tmp_path / "ws")
    assert run_cli("init", ws)[0] == 0
    monkeypatch.setenv("RETENTIO_PASSWORD", "short")
    code, out, err = run_cli("user", "add", "Ann@Example.com", "--role", "support", "-w", ws, "--json")
    assert code == 2 and "at least 10 characters" in err
    monkeypatch.setenv("RETENTIO_PASSWORD", PASSWORD)
    code, out, _ = run_cli("user", "add", "Ann@Example.com", "--role", "support", "-w", ws, "--json")
    assert code == 0 and json.loads(out)["email"] == "ann@example.com"
    code, _, err = run_cli("user", "add", "ann@example.com", "-w", ws)
    assert code == 2 and "already exists" in err
    monkeypatch.delenv("RETENTIO_PASSWORD")
    code, _, err = run_cli("user", "reset", "ann@example.com", "-w", ws)  # no terminal, no variable
    assert code == 2 and "RETENTIO_PASSWORD" in err
    code, out, _ = run_cli("apikey", "create", "--role", "pos", "--name", "till-1", "-w", ws, "--json")
    made = json.loads(out)
    assert code == 0 and made["key"].startswith("rk_" + made["prefix"] + "_")
    code, out, _ = run_cli("apikey", "list", "-w", ws, "--json")
    assert made["key"] not in out and json.loads(out)[0]["prefix"] == made["prefix"]
    assert run_cli("user", "disable", "ann@example.com", "-w", ws)[0] == 0
    code, out, _ = run_cli("user", "list", "-w", ws, "--json")
    assert json.loads(out)[0]["disabled"] is True
    code, out, _ = run_cli("audit", "-w", ws, "--json")
    assert [e["action"] for e in json.loads(out)][:3] == ["user.disable", "apikey.create", "user.add"]


def test_simultaneous_wrong_passwords_check_at_most_five(tmp_path):
    """Attempts made at the same moment reserve their place before the password is
    looked at: 12 parallel wrong passwords get 5 checks and 7 throttled refusals."""
    from concurrent.futures import ThreadPoolExecutor

    from retentio import Workspace
    from retentio.services.accounts import AccessRefused, Throttled
    from retentio.services.accounts import sign_in as service_sign_in

    Workspace.init(tmp_path / "ws").close()
    emails = add_users(tmp_path / "ws", ["admin"])
    with Workspace.open(tmp_path / "ws") as ws:
        def attempt(i):
            try:
                service_sign_in(ws.store, emails["admin"], "wrong password!", address=f"10.1.0.{i}")
            except Throttled:
                return "throttled"
            except AccessRefused:
                return "checked"
            return "signed in"

        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count("checked") == 5 and outcomes.count("throttled") == 7


def test_signing_in_again_ends_the_previous_session(site):
    """A sign-in from a browser that still holds a session cookie ends that session (a
    copy of the old cookie kept elsewhere no longer signs in)."""
    from retentio import Workspace
    from retentio.services.accounts import session_principal
    from retentio.services.accounts import sign_in as service_sign_in

    _, path, emails, _ = site
    with Workspace.open(path) as ws:
        first, _ = service_sign_in(ws.store, emails["analyst"], PASSWORD, address="10.2.0.1")
        second, _ = service_sign_in(ws.store, emails["analyst"], PASSWORD, address="10.2.0.1", previous=first)
        assert session_principal(ws.store, first) is None
        assert session_principal(ws.store, second) is not None


def test_roles_without_contacts_cannot_search_by_email(site):
    from retentio import Workspace

    client, path, emails, _ = site
    with Workspace.open(path, read_only=True) as ws:
        someone = ws.table("customers").filter(lambda t: t.email.notnull()).limit(1).to_pandas().iloc[0]
    needle = someone.email.split("@")[1]  # the domain: in no id or name
    for role, expect_hit in (("analyst", False), ("support", True)):
        headers = _as(client, role, emails, {})
        found = client.get("/api/v1/customers", params={"q": needle}, headers=headers).json()
        assert (found["total"] > 0) is expect_hit, (role, found["total"])
