"""The web app's public pages on the survey shop of :mod:`tests.test_feedback_surveys`:
a survey answered through its page (stored once, counted by ``feedback surveys``),
tampered, expired, twice and off-scale answers refused with nothing written, a comment
shown back as text; the unsubscribe page (a GET never unsubscribes, the RFC 8058
one-click POST does, a tampered token is refused, repeating changes nothing); the
language by Accept-Language and ``?lang``; no page asks anything of another origin;
and ``retentio serve`` answering a survey over real HTTP."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import warnings

import pytest
from sqlalchemy import select, update

from tests.conftest import run_cli
from tests.servers import free_port
from tests.test_feedback_surveys import answers_count, make_ws, run, survey_playbook, token_of, write_playbook

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def client_for(path):
    from retentio.faces.web.app import create_app

    with warnings.catch_warnings():  # starlette's test client prefers httpx2; httpx works
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    return TestClient(create_app(path, env={}), raise_server_exceptions=False)


@pytest.fixture
def nps(tmp_path):
    """A workspace whose NPS playbook invited customer B (now: the link is valid 30 days);
    yields (path, token)."""
    ws = make_ws(tmp_path / "ws")
    write_playbook(ws.path, "nps", survey_playbook("nps_survey"))
    run(ws, "nps", now=dt.datetime.now(dt.UTC))
    token = token_of(ws, "B")
    path = ws.path
    ws.close()
    return path, token


@pytest.fixture
def web(nps):
    path, token = nps
    with client_for(path) as client:
        yield client, path, token


def stored_answers(path) -> list[tuple]:
    from retentio.data.store.survey_tables import SurveyAnswer
    from retentio.data.workspace import Workspace

    with Workspace.open(path) as ws, ws.store.session() as s:
        return [tuple(r) for r in s.execute(select(SurveyAnswer.customer_id, SurveyAnswer.score, SurveyAnswer.comment,
                                                   SurveyAnswer.source))]


def survey_counts(path) -> list[dict]:
    code, out, err = run_cli("feedback", "surveys", "-w", str(path), "--json")
    assert code == 0, err
    return json.loads(out)


def tampered(token: str) -> str:
    return token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]


# ---------------------------------------------------------------------- surveys
def test_a_survey_answered_through_its_page_is_stored_and_counted(web):
    client, path, token = web
    page = client.get(f"/s/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "recommend us" in page.text
    assert re.findall(r'name="score" value="(\d+)"', page.text) == [str(i) for i in range(11)]
    assert '<textarea id="comment" name="comment"' in page.text and "<form method=\"post\">" in page.text
    assert answers_count_of(path) == 0  # showing the page wrote nothing
    done = client.post(f"/s/{token}", data={"score": "9", "comment": "Fast delivery"})
    assert done.status_code == 200 and "your answer is recorded" in done.text and "Fast delivery" in done.text
    assert stored_answers(path) == [("B", 9, "Fast delivery", "link")]
    counts = survey_counts(path)
    assert [(r["playbook"], r["invited"], r["answered"], r["nps"]) for r in counts] == [("nps", 1, 1, 100.0)]
    # opening the answered link again: a thank-you, no form; answering again: 409, the first stands
    again = client.get(f"/s/{token}")
    assert again.status_code == 200 and "answered already" in again.text and "<form" not in again.text
    twice = client.post(f"/s/{token}", data={"score": "0"})
    assert twice.status_code == 409 and "The first answer stands" in twice.text
    assert stored_answers(path) == [("B", 9, "Fast delivery", "link")]


def answers_count_of(path) -> int:
    from retentio.data.workspace import Workspace

    with Workspace.open(path) as ws:
        return answers_count(ws)


def test_a_tampered_or_expired_link_is_refused_and_nothing_is_written(web):
    from retentio.data.store.survey_tables import SurveyInvitation

    client, path, token = web
    for method in ("get", "post"):
        page = getattr(client, method)(f"/s/{tampered(token)}", **({"data": {"score": "5"}} if method == "post" else {}))
        assert page.status_code == 400 and "This link is not valid" in page.text
        assert "Traceback" not in page.text and "itsdangerous" not in page.text
    assert client.get("/s/not-a-token").status_code == 400
    ws = client.app.state.workspace
    with ws.store.session() as s:
        s.execute(update(SurveyInvitation).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    page = client.get(f"/s/{token}")
    assert page.status_code == 410 and "expired" in page.text
    late = client.post(f"/s/{token}", data={"score": "10"})
    assert late.status_code == 410 and "Traceback" not in late.text
    assert answers_count_of(path) == 0


def test_a_score_off_the_scale_is_refused_naming_the_field(web):
    client, path, token = web
    for score in ("11", "-1", "4.5", "ten", "", "nan"):
        page = client.post(f"/s/{token}", data={"score": score, "comment": "kept"})
        assert page.status_code == 422, score
        assert "field score" in page.text and "from 0 to 10" in page.text
        assert ">kept</textarea>" in page.text  # the comment typed is not lost
    assert client.post(f"/s/{token}", data={"comment": "no score"}).status_code == 422
    long = client.post(f"/s/{token}", data={"score": "5", "comment": "x" * 5001})
    assert long.status_code == 422 and "field comment" in long.text
    assert answers_count_of(path) == 0
    assert survey_counts(path)[0]["answered"] == 0


def test_a_comment_is_shown_back_as_text(web):
    client, path, token = web
    evil = "<script>alert('x')</script> & <b>bold</b>"
    page = client.post(f"/s/{token}", data={"score": "3", "comment": evil})
    assert page.status_code == 200
    assert "<script>" not in page.text and "<b>" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page.text
    assert stored_answers(path) == [("B", 3, evil, "link")]  # stored as typed
    # and re-shown escaped on a refused form too
    off = client.post(f"/s/{tampered(token)}", data={"score": "99", "comment": evil})
    assert "<script>" not in off.text


# ---------------------------------------------------------------------- unsubscribe
def unsubscribe_token(path, customer: str = "B", channel: str = "email") -> str:
    from retentio.actions.unsubscribe import make_token, workspace_secret

    return make_token(workspace_secret(path), customer, channel, "winback")


def suppressed(path) -> list[tuple]:
    from retentio.data.store.campaign_tables import Suppression
    from retentio.data.workspace import Workspace

    with Workspace.open(path) as ws, ws.store.session() as s:
        return [tuple(r) for r in s.execute(select(Suppression.channel, Suppression.customer_id, Suppression.kind,
                                                   Suppression.source))]


def test_unsubscribe_get_asks_and_the_one_click_post_unsubscribes_once(web):
    client, path, _ = web
    token = unsubscribe_token(path)
    for url in (f"/u/{token}", f"/unsubscribe?token={token}"):
        page = client.get(url)  # what a mail scanner does: nothing changes
        assert page.status_code == 200 and "Stop receiving our messages by email?" in page.text
        assert '<form method="post">' in page.text and ">Unsubscribe</button>" in page.text
    assert suppressed(path) == []
    # RFC 8058: the one-click POST carries List-Unsubscribe=One-Click and nothing else
    done = client.post(f"/u/{token}", data=ONE_CLICK)
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert suppressed(path) == [("email", "B", "unsubscribe", "link:winback")]
    # repeating — the button, the query form of the link, an empty body — changes nothing
    for again in (client.post(f"/u/{token}", data={"confirm": "yes"}),
                  client.post(f"/unsubscribe?token={token}", data=ONE_CLICK),
                  client.post(f"/u/{token}")):
        assert again.status_code == 200 and "already unsubscribed" in again.text
    assert suppressed(path) == [("email", "B", "unsubscribe", "link:winback")]
    # the query form of the link unsubscribes too (another customer, by SMS)
    sms = unsubscribe_token(path, "C", "sms")
    assert client.post(f"/unsubscribe?token={sms}", data=ONE_CLICK).status_code == 200
    assert ("sms", "C", "unsubscribe", "link:winback") in suppressed(path)


def test_a_tampered_unsubscribe_token_is_refused_and_nothing_is_written(web):
    client, path, survey_token = web
    token = unsubscribe_token(path)
    forged = unsubscribe_token(path, "A")
    swapped = forged.split(".")[0] + "." + token.split(".")[1]  # A's payload with B's signature
    for bad in (tampered(token), swapped, survey_token, "x", "%FF%FE.abc"):
        for method in ("get", "post"):
            page = getattr(client, method)(f"/u/{bad}", **({"data": ONE_CLICK} if method == "post" else {}))
            assert page.status_code == 400, (bad, method)
            assert "unsubscribe link is not valid" in page.text and "Traceback" not in page.text
    assert client.post("/unsubscribe", data=ONE_CLICK).status_code == 400  # no token at all
    assert suppressed(path) == []


# ---------------------------------------------------------------------- language, origins, health
def test_the_language_follows_accept_language_and_lang(web):
    client, path, token = web
    ru = client.get(f"/s/{token}", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert ru.headers["content-language"] == "ru" and '<html lang="ru">' in ru.text
    assert "порекомендуете" in ru.text and "Отправить" in ru.text
    assert "порекомендуете" not in client.get(f"/s/{token}", headers={"Accept-Language": "de, en;q=0.5"}).text
    assert "Ваш отзыв" in client.get(f"/s/{token}", headers={"Accept-Language": "en;q=0.3, ru;q=0.7"}).text
    assert "Your feedback" in client.get(f"/s/{token}?lang=en", headers={"Accept-Language": "ru"}).text
    assert "Ваш отзыв" in client.get(f"/s/{token}?lang=ru").text
    assert "Your feedback" in client.get(f"/s/{token}?lang=xx", headers={"Accept-Language": "ru;q=0"}).text
    off = client.post(f"/s/{token}?lang=ru", data={"score": "12"})
    assert off.status_code == 422 and "поле score" in off.text
    done = client.post(f"/s/{token}", data={"score": "8"}, headers={"Accept-Language": "ru"})
    assert "Спасибо, ваш ответ записан" in done.text
    unsub = client.get(f"/u/{unsubscribe_token(path)}", headers={"Accept-Language": "ru"})
    assert "Отписаться" in unsub.text and "электронная почта" in unsub.text
    assert "Ссылка недействительна" in client.get("/s/bad", headers={"Accept-Language": "ru"}).text


def test_no_page_loads_or_links_anything_from_another_origin(web):
    client, path, token = web
    pages = [client.get(f"/s/{token}"), client.get(f"/s/{token}?lang=ru"), client.get("/s/bad"),
             client.post(f"/s/{token}", data={"score": "42"}), client.get(f"/u/{unsubscribe_token(path)}"),
             client.get("/u/bad"), client.get("/nowhere"), client.post(f"/s/{token}", data={"score": "7"}),
             client.post(f"/u/{unsubscribe_token(path)}", data=ONE_CLICK)]
    for page in pages:
        assert page.headers["content-type"].startswith("text/html")
        assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page.text, re.I), page.text
        assert "http://" not in page.text and "https://" not in page.text
        assert "@import" not in page.text and "url(" not in page.text and "<script" not in page.text.lower()
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert pages[6].status_code == 404
    for docs in ("/docs", "/redoc", "/openapi.json"):  # FastAPI's docs load a CDN: off
        assert client.get(docs).status_code == 404


def test_health(web):
    client, _, _ = web
    page = client.get("/health")
    assert page.status_code == 200 and page.json() == {"status": "ok"}


def test_the_app_refuses_a_folder_that_is_no_workspace(tmp_path):
    from retentio.data.errors import RetentioError
    from retentio.faces.web.app import create_app

    with pytest.raises(RetentioError, match="is not a Retentio workspace"):
        create_app(tmp_path)
    code, _, err = run_cli("serve", "-w", str(tmp_path), "--port", "1")  # refused before listening
    assert code == 2 and "is not a Retentio workspace" in err


# ---------------------------------------------------------------------- the real server
def test_retentio_serve_answers_a_survey_over_http(nps):
    import httpx

    path, token = nps
    code, out, _ = run_cli("serve", "--help")
    assert code == 0 and "--port" in out and "--host" in out
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RETENTIO_SECRET_KEY"}
    proc = subprocess.Popen([sys.executable, "-c", "from retentio.faces.entry import main; main()", "serve",
                             "-w", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if httpx.get(f"{base}/health", timeout=1).json() == {"status": "ok"}:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /health in 30 s"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as http:
            page = http.get(f"/s/{token}")
            assert page.status_code == 200 and "recommend us" in page.text
            assert "server" not in {k.lower() for k in page.headers}
            done = http.post(f"/s/{token}", data={"score": "10", "comment": "over the wire"})
            assert done.status_code == 200 and "over the wire" in done.text
            assert http.post(f"/s/{token}", data={"score": "1"}).status_code == 409
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert stored_answers(path) == [("B", 10, "over the wire", "link")]
    assert survey_counts(path)[0]["answered"] == 1


def test_an_internal_error_shows_a_plain_page_without_a_traceback(web, monkeypatch):
    import retentio.services.surveys as surveys

    def boom(*args, **kwargs):
        raise RuntimeError("secret detail of the bug")

    monkeypatch.setattr(surveys, "survey_invitation", boom)
    client, path, token = web
    page = client.get(f"/s/{token}", headers={"Accept-Language": "ru"})
    assert page.status_code == 500 and "Что-то пошло не так" in page.text
    assert "secret detail" not in page.text and "Traceback" not in page.text
    assert answers_count_of(path) == 0
