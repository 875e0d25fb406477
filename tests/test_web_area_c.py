"""The web app's Feedback and Admin areas: the task inbox's views against the service's
task list, a task worked through its page (history by the signed-in user, audit rows),
survey answers through the API (once; twice 409; tampered 400; expired 410; off-scale
422), themes and surveys; users added, disabled (their open session stops at once),
reset; API keys shown once, working, revoked; the audit log; non-admins refused; a
customer's ``<script>`` comment shown as text.

The task business is :mod:`tests.test_feedback_tasks`'s (7 tasks as of 2026-03-10, all
past due by now), with C1's detractor comment holding a script tag and twelve January
comments (outside the rules' look-back, so no more tasks) for the themes."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, update

from retentio import Workspace
from tests.test_feedback_tasks import AS_OF, NOW, _frames, _save_snapshots
from tests.web_helpers import PASSWORD, add_key, add_users, csrf_of, sign_in

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TASK_ROW = re.compile(r'<tr data-task="(\d+)">')


def app_for(path: Path):
    from retentio.faces.web.app import create_app

    return create_app(path, env={})


def client(app):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    return TestClient(app, raise_server_exceptions=False)


def signed_in(app, email: str, password: str = PASSWORD):
    c = client(app)
    r = sign_in(c, email, password)
    assert r.status_code == 303, r.text
    return c


def page_csrf(c) -> str:
    """The session's CSRF token, from the sign-out form of a page."""
    page = c.get("/feedback/surveys")
    assert page.status_code == 200
    return csrf_of(page.text.split('action="/logout"', 1)[1])


# ---------------------------------------------------------------------------- workspaces
@pytest.fixture(scope="module")
def tasks_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("c") / "ws"
    frames = _frames()
    s = frames["surveys"]
    s.loc[s.customer_id == "C1", "comment"] = f"slow delivery {SCRIPT}"
    days = [dt.datetime(2026, 1, d, 10) for d in range(2, 14)]
    extra = pd.DataFrame({
        "answered_at": days, "kind": ["csat"] * 12, "score": [4] * 12,
        "customer_id": [f"C{i}" for i in range(1, 12)] + ["C1"],
        "comment": [f"courier late again {w} {SCRIPT}" for w in ("monday", "tuesday", "friday", "morning", "evening",
                                                                 "weekend")]
                   + [f"great coffee tasty {w}" for w in ("beans", "aroma", "roast", "cup", "latte", "espresso")]})
    frames["surveys"] = pd.concat([s, extra], ignore_index=True)
    from retentio.services.accounts import add_user, cli_principal
    from retentio.services.feedback_tasks import change_task, sync_tasks, tasks

    with Workspace.init(path, timezone="UTC", currency="EUR") as w:
        for name, frame in frames.items():
            w.load(name, frame)
        _save_snapshots(w.store)
    with Workspace.open(path) as ws:
        assert sync_tasks(ws, AS_OF, now=NOW)["opened"] == 7
        rows = tasks(ws)
        # two tasks assigned to the support user, one of them by somebody else's hand; one task closed
        by_customer = {(r["customer_id"], r["trigger"]): r["id"] for r in rows}
        change_task(ws, by_customer[("C2", "nps")], author="lead", assign="support@example.com")
        change_task(ws, by_customer[("C6", "ticket")], author="lead", assign="support@example.com")
        change_task(ws, by_customer[("C7", "cancellation")], author="lead", assign="other@example.com",
                    status="done")
    add_users(path, ["admin", "support", "analyst"])
    with Workspace.open(path) as ws:
        add_user(ws.store, "marketer@example.com", PASSWORD, "marketer", actor=cli_principal())
    return path


@pytest.fixture
def tws(tasks_template, tmp_path) -> Path:
    path = tmp_path / "ws"
    shutil.copytree(tasks_template, path)
    return path


def audit_rows(path: Path, action: str) -> list[dict]:
    from retentio.services.accounts import audit_entries

    with Workspace.open(path) as ws:
        return audit_entries(ws.store, limit=500, action=action)["items"]


# ---------------------------------------------------------------------------- the inbox
def test_inbox_views_count_the_services_tasks(tws):
    from retentio.services.feedback_tasks import tasks

    with Workspace.open(tws) as ws:
        every = tasks(ws)
        overdue = tasks(ws, overdue=True)
    mine = [r["id"] for r in every if r["assignee"] == "support@example.com"]
    role = [r["id"] for r in every if r["owner_role"] == "support"]
    # by hand: C2 (nps) and C6 (ticket) assigned; low_csat (C4) and high_effort (C5) owned by support;
    # everything is past due by now except the closed cancellation
    assert len(every) == 7 and len(mine) == 2 and len(role) == 2 and len(overdue) == 6
    app = app_for(tws)
    c = signed_in(app, "support@example.com")
    for view, want in (("all", [r["id"] for r in every]), ("mine", mine), ("role", role),
                       ("overdue", [r["id"] for r in overdue])):
        page = c.get(f"/feedback?view={view}")
        assert page.status_code == 200
        assert [int(x) for x in TASK_ROW.findall(page.text)] == want, view  # the service's order too
        assert f'data-total="{len(want)}"' in page.text
        assert f'data-count="{len(want)}"' in page.text
    done = c.get("/feedback?view=all&status=done")
    assert len(TASK_ROW.findall(done.text)) == 1
    # the customer links, and the API's list agrees
    assert 'href="/customers/C2"' in c.get("/feedback?view=mine").text
    api = c.get("/api/v1/feedback/tasks", params={"view": "mine"}).json()
    assert api["total"] == 2 and [t["id"] for t in api["items"]] == mine
    api = c.get("/api/v1/feedback/tasks", params={"view": "overdue", "limit": 2, "offset": 1}).json()
    assert api["total"] == 6 and [t["id"] for t in api["items"]] == [r["id"] for r in overdue][1:3]
    assert c.get("/feedback?view=nobody").status_code == 422
    assert c.get("/api/v1/feedback/tasks", params={"view": "nobody"}).status_code == 422


def test_a_task_worked_on_its_page_has_history_by_the_user_and_audit_rows(tws):
    from retentio.services.feedback_tasks import tasks

    with Workspace.open(tws) as ws:
        tid = next(r["id"] for r in tasks(ws) if r["customer_id"] == "C1")
    app = app_for(tws)
    c = signed_in(app, "support@example.com")
    page = c.get(f"/feedback/tasks/{tid}")
    assert page.status_code == 200
    assert ESCAPED in page.text and SCRIPT not in page.text  # the customer's words, as text
    token = page_csrf(c)
    for data in ({"action": "assign", "assignee": "support@example.com"},
                 {"action": "note", "note": f"called back {SCRIPT}"},
                 {"action": "start"}, {"action": "done"}):
        r = c.post(f"/feedback/tasks/{tid}", data={**data, "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303, (data, r.text)
    # a refused change is shown on the page, nothing written
    r = c.post(f"/feedback/tasks/{tid}", data={"action": "start", "csrf_token": token})
    assert r.status_code == 422 and "is done" in r.text
    r = c.post(f"/feedback/tasks/{tid}", data={"action": "note", "note": "  ", "csrf_token": token})
    assert r.status_code == 422 and 'data-field="note"' in r.text
    # without the CSRF token: refused
    assert c.post(f"/feedback/tasks/{tid}", data={"action": "note", "note": "x"}).status_code == 403
    with Workspace.open(tws) as ws:
        from retentio.services.feedback_tasks import task

        shown = task(ws, tid)
    mine = [(h["kind"], h["status"], h["assignee"], h["text"]) for h in shown["history"]
            if h["author"] == "support@example.com"]
    assert mine == [("assigned", None, "support@example.com", ""), ("note", None, None, f"called back {SCRIPT}"),
                    ("status", "in_progress", None, ""), ("status", "done", None, "")]
    assert shown["status"] == "done"
    rows = [e for e in audit_rows(tws, "task.change") if e["target"] == str(tid)]
    assert len(rows) == 4 and {e["actor"] for e in rows} == {"user:support@example.com"}
    assert rows[0]["detail"]["before"]["status"] == "in_progress" and rows[0]["detail"]["after"]["status"] == "done"
    page = c.get(f"/feedback/tasks/{tid}")
    assert page.text.count('data-author="support@example.com"') == 4 and SCRIPT not in page.text
    # the API: one task, a change, bad ids
    api = c.get(f"/api/v1/feedback/tasks/{tid}").json()
    assert api["status"] == "done" and len(api["history"]) == len(shown["history"])
    r = c.post(f"/api/v1/feedback/tasks/{tid}", json={"action": "note", "note": "by API"},
               headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["history"][-1]["text"] == "by API"
    assert c.post(f"/api/v1/feedback/tasks/{tid}", json={"action": "start"},
                  headers={"X-CSRF-Token": token}).status_code == 422
    for bad in ("999999", "abc", "-1", "0", "1" * 40):
        assert c.get(f"/feedback/tasks/{bad}").status_code == 404, bad
    assert c.get("/api/v1/feedback/tasks/999999").status_code == 404
    assert c.get("/api/v1/feedback/tasks/abc").status_code == 422
    assert c.post("/api/v1/feedback/tasks/999999", json={"action": "note", "note": "x"},
                  headers={"X-CSRF-Token": token}).json()["error"]["code"] == "not_found"
    # the analyst reads the task but may not change it
    a = signed_in(app, "analyst@example.com")
    assert a.get(f"/feedback/tasks/{tid}").status_code == 200
    assert 'name="action"' not in a.get(f"/feedback/tasks/{tid}").text
    assert a.post(f"/feedback/tasks/{tid}", data={"action": "note", "note": "x", "csrf_token": page_csrf(a)}
                  ).status_code == 403


def test_themes_show_comments_as_text_and_are_cached(tws):
    from retentio.faces.web.pages.feedback import cached_themes
    from retentio.services.feedback_insights import ThemesParams

    app = app_for(tws)
    c = signed_in(app, "analyst@example.com")
    page = c.get("/feedback/themes")
    assert page.status_code == 200
    assert ESCAPED in page.text and SCRIPT not in page.text
    with Workspace.open(tws, read_only=True) as ws:
        first = cached_themes(ws, ThemesParams())
        assert cached_themes(ws, ThemesParams()) is first  # same data: kept
    assert f'data-comments="{first.n_comments}"' in page.text
    api = c.get("/api/v1/feedback/themes").json()
    assert api["comments"] == first.n_comments and len(api["themes"]) == len(first.themes)
    assert any(SCRIPT in q for t in api["themes"] for q in t["examples"])  # JSON carries the text as written
    assert c.get("/feedback/themes?kind=sms").status_code == 422
    assert c.get("/api/v1/feedback/themes", params={"themes": 99}).status_code == 422


# ---------------------------------------------------------------------------- survey answers
@pytest.fixture
def survey_ws(tmp_path):
    from tests.test_feedback_surveys import make_ws, run, survey_playbook, token_of, write_playbook

    ws = make_ws(tmp_path / "sws")
    write_playbook(ws.path, "nps", survey_playbook("nps_survey"))
    run(ws, "nps", now=dt.datetime.now(dt.UTC))
    token = token_of(ws, "B")
    path = ws.path
    ws.close()
    add_users(path, ["support", "analyst"])
    return path, token


def test_an_answer_through_the_api_is_recorded_once(survey_ws):
    from retentio.data.store.survey_tables import SurveyAnswer, SurveyInvitation
    from retentio.services.surveys import survey_report

    path, token = survey_ws
    key = add_key(path, "integration")
    c = client(app_for(path))
    auth = {"Authorization": f"Bearer {key}"}
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    r = c.post("/api/v1/feedback/answers", json={"token": tampered, "score": 9}, headers=auth)
    assert r.status_code == 400 and r.json()["error"]["field"] == "token"
    r = c.post("/api/v1/feedback/answers", json={"token": token, "score": 11}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["field"] == "score"
    assert r.json()["error"]["message"].startswith("score: 11 is not on the NPS scale")
    r = c.post("/api/v1/feedback/answers", json={"token": token, "score": 9, "comment": SCRIPT}, headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["customer_id"], r.json()["score"], r.json()["comment"]) == ("B", 9, SCRIPT)
    r = c.post("/api/v1/feedback/answers", json={"token": token, "score": 0}, headers=auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_answered"
    with Workspace.open(path) as ws:
        with ws.store.session() as s:
            stored = s.execute(select(SurveyAnswer.customer_id, SurveyAnswer.score, SurveyAnswer.source)).all()
            s.execute(update(SurveyInvitation).values(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
        report = survey_report(ws)
    assert [tuple(x) for x in stored] == [("B", 9, "link")]  # once, the first stands
    r = c.post("/api/v1/feedback/answers", json={"token": token, "score": 3}, headers=auth)
    assert r.status_code == 410
    assert len(audit_rows(path, "survey.answer")) == 1
    # the surveys page and API agree with the service
    s = signed_in(c.app, "support@example.com")
    page = s.get("/feedback/surveys")
    assert page.status_code == 200 and 'data-playbook="nps"' in page.text
    api = s.get("/api/v1/feedback/surveys").json()
    assert api["total"] == len(report) == 1
    assert (api["items"][0]["invited"], api["items"][0]["answered"], api["items"][0]["score"]) == (
        report[0]["invited"], report[0]["answered"], report[0]["nps"])
    # a role without feedback.answer
    analyst = add_key(path, "analyst")
    assert c.post("/api/v1/feedback/answers", json={"token": token, "score": 9},
                  headers={"Authorization": f"Bearer {analyst}"}).status_code == 403


# ---------------------------------------------------------------------------- admin
def test_admin_adds_disables_and_resets_users(tws):
    app = app_for(tws)
    admin = signed_in(app, "admin@example.com")
    assert admin.get("/admin", follow_redirects=False).headers["location"] == "/admin/users"
    token = page_csrf(admin)
    # refusals by field, nothing written
    r = admin.post("/admin/users", data={"email": "new@example.com", "role": "support", "password": "short",
                                         "language": "ru", "csrf_token": token})
    assert r.status_code == 422 and 'data-field="password"' in r.text
    r = admin.post("/admin/users", data={"email": "not an email", "role": "support", "password": "x" * 12,
                                         "language": "ru", "csrf_token": token})
    assert r.status_code == 422 and 'data-field="email"' in r.text
    r = admin.post("/admin/users", data={"email": "new@example.com", "role": "wizard", "password": "x" * 12,
                                         "language": "ru", "csrf_token": token})
    assert r.status_code == 422 and 'data-field="role"' in r.text
    r = admin.post("/admin/users", data={"email": "New@Example.com", "role": "support",
                                         "password": "new user password", "language": "ru", "csrf_token": token},
                   follow_redirects=False)
    assert r.status_code == 303
    assert 'data-user="new@example.com" data-disabled="no"' in admin.get("/admin/users").text
    # the new user signs in, in Russian, and works
    new = signed_in(app, "new@example.com", "new user password")
    assert new.get("/feedback").status_code == 200 and 'lang="ru"' in new.get("/feedback").text
    assert new.get("/api/v1/me").json()["name"] == "new@example.com"
    # disabled: their open session stops at once
    r = admin.post("/admin/users/disable", data={"email": "new@example.com", "csrf_token": token},
                   follow_redirects=False)
    assert r.status_code == 303
    assert new.get("/feedback", follow_redirects=False).status_code == 303
    assert new.get("/api/v1/me").status_code == 401
    assert sign_in(client(app), "new@example.com", "new user password").status_code == 401
    # an admin cannot disable themself
    r = admin.post("/admin/users/disable", data={"email": "admin@example.com", "csrf_token": token})
    assert r.status_code == 409 and 'id="message"' in r.text
    assert admin.get("/admin/users").status_code == 200  # still signed in
    # enable and reset: the old password no longer signs in, the new one does
    assert admin.post("/admin/users/enable", data={"email": "new@example.com", "csrf_token": token},
                      follow_redirects=False).status_code == 303
    r = admin.post("/admin/users/reset", data={"email": "new@example.com", "password": "short",
                                               "csrf_token": token})
    assert r.status_code == 422
    assert admin.post("/admin/users/reset", data={"email": "new@example.com", "password": "another long one",
                                                  "csrf_token": token}, follow_redirects=False).status_code == 303
    assert sign_in(client(app), "new@example.com", "new user password").status_code == 401
    assert sign_in(client(app), "new@example.com", "another long one").status_code == 303
    # the audit log lists these, by the admin
    page = admin.get("/admin/audit")
    for action in ("user.add", "user.disable", "user.enable", "user.reset"):
        assert f'data-action="{action}"' in page.text
    only = admin.get("/admin/audit", params={"action": "user.add"}).text
    assert set(re.findall(r'data-action="([^"]+)"', only)) == {"user.add"}
    added = audit_rows(tws, "user.add")
    assert f'data-total="{len(added)}"' in only
    assert [e["actor"] for e in added if e["target"] == "new@example.com"] == ["user:admin@example.com"]
    api = admin.get("/api/v1/audit", params={"action": "user.disable"}).json()
    assert api["total"] == 1 and api["items"][0]["target"] == "new@example.com"
    users = admin.get("/api/v1/users").json()
    assert users["total"] == 5 and "password_hash" not in users["items"][0]


def test_an_api_key_is_shown_once_works_and_stops_when_revoked(tws):
    app = app_for(tws)
    admin = signed_in(app, "admin@example.com")
    token = page_csrf(admin)
    r = admin.post("/admin/keys", data={"name": "", "role": "pos", "csrf_token": token})
    assert r.status_code == 422 and 'data-field="name"' in r.text
    r = admin.post("/admin/keys", data={"name": "till 1", "role": "integration", "csrf_token": token})
    assert r.status_code == 201
    key = re.search(r'<pre id="new-key">(rk_[^<]+)</pre>', r.text).group(1)
    assert key not in admin.get("/admin/keys").text  # never again
    api = client(app)
    auth = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/me", headers=auth).json()["role"] == "integration"
    prefix = key.split("_")[1]
    assert admin.post("/admin/keys/revoke", data={"prefix": prefix, "csrf_token": token},
                      follow_redirects=False).status_code == 303
    assert api.get("/api/v1/me", headers=auth).status_code == 401
    assert f'data-key="{prefix}" data-revoked="yes"' in admin.get("/admin/keys").text
    page = admin.get("/admin/audit").text
    assert 'data-action="apikey.create"' in page and 'data-action="apikey.revoke"' in page


def test_non_admins_are_refused(tws):
    app = app_for(tws)
    for email in ("support@example.com", "marketer@example.com"):
        c = signed_in(app, email)
        for path in ("/admin", "/admin/users", "/admin/keys", "/admin/audit", "/api/v1/audit", "/api/v1/users"):
            assert c.get(path, follow_redirects=False).status_code == 403, (email, path)
        assert c.post("/admin/users/disable", data={"email": "admin@example.com", "csrf_token": page_csrf(c)}
                      ).status_code == 403
    key = add_key(tws, "analyst")
    assert client(app).get("/api/v1/audit", headers={"Authorization": f"Bearer {key}"}).status_code == 403
    assert client(app).get("/api/v1/users").status_code == 401
    with Workspace.open(tws) as ws:
        from retentio.services.accounts import users

        assert not any(u["disabled"] for u in users(ws.store))
