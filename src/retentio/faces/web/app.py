"""The web app's factory: :func:`create_app` builds a FastAPI app on one workspace, with
the signed-in pages (:mod:`retentio.faces.web.pages`), the REST API
(:mod:`retentio.faces.web.api`), sign-in (:mod:`retentio.faces.web.auth_pages`), the
access rules (:mod:`retentio.faces.web.security`) and the error answers: JSON
``{"error": {"status", "code", "message", "field"}}`` under ``/api/``, a page elsewhere.

**Public pages** (no sign-in; each protected by the signed token its link carries):

* ``GET /s/{token}`` — a survey's answer page: the question of the invitation's kind
  (NPS 0–10, CSAT 1–5, CES 1–7), the score buttons and an optional comment. ``POST``
  records the answer (:func:`retentio.services.surveys.answer_survey`, source ``link``)
  and thanks. Status: a tampered or unknown token 400, an expired link 410, a second
  answer 409 (the first stands; opening an answered link is a 200 page saying so), a
  score off the scale or an over-long comment 422 naming the field. Nothing is written
  by any refusal.
* ``GET /u/{token}`` (and ``/unsubscribe?token=…``, the form the campaign machinery's
  ``List-Unsubscribe`` links take today) — a confirmation page only: mail scanners open
  links, so a GET never unsubscribes. ``POST`` unsubscribes, with or without a body —
  RFC 8058's one-click ``List-Unsubscribe=One-Click`` needs no other field; repeating it
  changes nothing. A tampered token: 400, nothing written.
* ``GET /health`` — ``{"status": "ok"}``.

**The workspace.** The app holds the workspace's operational store open for its life
(SQLAlchemy's pooled engine is thread-safe; SQLite runs in WAL mode with a busy timeout,
PostgreSQL as usual), opened — and migrated — when the app is built, so a store that
cannot be reached fails the start, not the first visitor. The analytics database is
opened read-only for the moment of a request only (:mod:`retentio.faces.web.context`):
DuckDB allows one writing process, and a server holding it would lock out ``retentio
load``. Survey answers taken here reach the canonical ``surveys`` table with ``retentio
feedback sync`` (as :mod:`retentio.services.surveys` describes); ``feedback surveys``
counts them at once.

**Pages.** Jinja2 templates with autoescape on (a customer's comment is shown as text),
English or Russian by ``?lang=en|ru`` or the Accept-Language header, inline CSS and
nothing loaded from anywhere else (no CDN, no web fonts, no scripts; the CSP says so),
no-store caching and no referrer (the URL carries the token). FastAPI's interactive
docs are off: they load their JavaScript from a CDN.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from retentio.data.errors import RetentioError
from retentio.faces.web.i18n import WORDS, choose

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

#: the pages' only style: inline, allowed by its hash in the Content-Security-Policy
CSS = ("body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;"
       "background:#f4f5f7}main{max-width:34rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;"
       "border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin-top:0}"
       "fieldset{border:0;padding:0;margin:0 0 1rem}legend{font-weight:600;margin-bottom:.5rem}"
       ".hint{color:#5b6372;margin:.25rem 0}.scale{display:flex;flex-wrap:wrap;gap:.35rem}"
       ".scale label{position:relative}.scale input{position:absolute;opacity:0}"
       ".scale span{display:inline-block;min-width:2.4rem;padding:.5rem 0;text-align:center;border:1px solid #b9c0cc;"
       "border-radius:6px;cursor:pointer}.scale input:checked+span{background:#2456c9;color:#fff;border-color:#2456c9}"
       ".scale input:focus-visible+span{outline:2px solid #2456c9;outline-offset:2px}"
       ".ends{display:flex;justify-content:space-between;color:#5b6372;font-size:.85rem;margin:.25rem 0 0}"
       "textarea{width:100%;box-sizing:border-box;font:inherit;margin:.35rem 0 1rem}"
       "button{font:inherit;padding:.55rem 1.4rem;border:0;border-radius:6px;background:#2456c9;color:#fff;"
       "cursor:pointer}.error{color:#a51d24;font-weight:600}.comment{white-space:pre-wrap}dt{font-weight:600}"
       "dd{margin:0 0 .5rem}")
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retentio")
    except PackageNotFoundError:
        return "0"


def create_app(workspace_path: str | Path, *, env: Mapping[str, str] | None = None,
               secure_cookies: bool | None = None, warm: bool = False) -> FastAPI:
    """The web app on the workspace at ``workspace_path`` (opened and its store migrated
    now: :class:`RetentioError` when it is not a workspace or its store cannot be
    reached). ``env`` stands for the environment when reading ``RETENTIO_SECRET_KEY``
    (default: the process's). ``secure_cookies``: mark cookies Secure always (True),
    never (False) or when the request came over HTTPS (None). ``warm``: on start, compute
    in the background what the overview and the customer pages cache (a server's first
    visitor then does not wait for whole-population computations)."""
    from fastapi.staticfiles import StaticFiles

    from retentio.data.workspace import Workspace
    from retentio.faces.web import api, auth_pages, pages
    from retentio.faces.web.context import Web
    from retentio.faces.web.security import WebError, is_api, login_redirect_target

    ws = Workspace.open(Path(workspace_path), read_only=False)
    try:
        _ = ws.store
    except BaseException:
        ws.close()
        raise
    web = Web(ws, env, secure_cookies=secure_cookies)
    templates = web.templates

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        warming = _warm_up(web) if warm else None
        try:
            yield
        finally:
            if warming is not None:
                warming.join()
            ws.close()

    app = FastAPI(title="Retentio", version=_version(), docs_url=None, redoc_url=None,
                  openapi_url=api.OPENAPI_URL, lifespan=lifespan,
                  description="The REST API of Retentio: customers' risk and value, metrics, campaigns, "
                              "loyalty (earn, redeem, balance), feedback and data loads. Authenticate with "
                              "`Authorization: Bearer rk_…` (`retentio apikey create`).")
    app.state.workspace = ws
    app.state.web = web

    def language(request: Request) -> str:
        return choose(request.query_params.get("lang"), request.headers.get("accept-language"))

    def page(request: Request, template: str, status: int, title_key: str, **context: Any) -> HTMLResponse:
        lang = language(request)
        words = WORDS[lang]
        html = templates.get_template(template).render(lang=lang, w=words, title=words[title_key], css=CSS,
                                                       **context)
        return HTMLResponse(html, status_code=status,
                            headers=HEADERS | {"Content-Language": lang, "Vary": "Accept-Language"})

    def message(request: Request, status: int, title_key: str, text_key: str, **fmt: Any) -> HTMLResponse:
        words = WORDS[language(request)]
        return page(request, "message.html.j2", status, title_key, message=words[text_key].format(**fmt),
                    tone="note" if status < 400 else "error", score=None, comment=None)

    def api_error(status: int, code: str, text: str, field: str | None = None,
                  headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"status": status, "code": code, "message": text, "field": field}},
                            status_code=status, headers=dict(HEADERS) | dict(headers or {}))

    # ------------------------------------------------------------------ errors
    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError) -> Response:
        if is_api(request):
            return api_error(exc.status, exc.code, exc.message, exc.field, exc.headers)
        if exc.status == 401:
            return RedirectResponse(login_redirect_target(request), status_code=303, headers=HEADERS)
        return pages.error_page(request, exc.status, exc.message)

    @app.exception_handler(RetentioError)
    async def refused_input(request: Request, exc: RetentioError) -> Response:
        # a RetentioError is the user's input or data (the CLI's exit 2); "busy" is another
        # process writing the analytics database
        status, code = (503, "busy") if " is busy:" in str(exc) else (422, "invalid")
        if is_api(request):
            return api_error(status, code, str(exc), getattr(exc, "field", None))
        return pages.error_page(request, status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request):
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            return api_error(exc.status_code, code, str(exc.detail), headers=exc.headers)
        if exc.status_code == 404:
            return message(request, 404, "not_found_title", "not_found")
        return Response(status_code=exc.status_code, headers=HEADERS | dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request):
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(x) for x in first.get("loc", ())[1:]) or None
            return api_error(422, "invalid", f"{where or 'request'}: {first.get('msg', 'invalid')}", where)
        return message(request, 400, "invalid_title", "invalid")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # never a traceback in a page or an answer (uvicorn logs it)
        if is_api(request):
            return api_error(500, "server_error", "something went wrong on our side; it is logged")
        return message(request, 500, "server_error_title", "server_error")

    # ------------------------------------------------------------------ health
    @app.get("/health", include_in_schema=False)
    def health() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=HEADERS)

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    auth_pages.add_routes(app)
    pages.add_routes(app)
    api.add_routes(app)

    # ------------------------------------------------------------------ surveys
    def survey_form(request: Request, inv: dict[str, Any], status: int, *, error: str | None = None,
                    chosen: str | None = None, comment: str | None = None) -> HTMLResponse:
        from retentio.actions.feedback.surveys import MAX_COMMENT

        words = WORDS[language(request)]
        kind = inv["kind"]
        return page(request, "survey.html.j2", status, "title_survey", question=words[f"q_{kind}"],
                    scale_hint=words["scale"].format(low=inv["low"], high=inv["high"]),
                    scores=list(range(inv["low"], inv["high"] + 1)), low_label=words[f"low_{kind}"],
                    high_label=words[f"high_{kind}"], error=error, chosen=chosen, comment=comment,
                    max_comment=MAX_COMMENT)

    def refused(request: Request, exc: RetentioError) -> HTMLResponse:
        """The page of a refused token: expired 410, already answered 409, else 400."""
        from retentio.actions.feedback.surveys import AlreadyAnswered, LinkExpired

        if isinstance(exc, LinkExpired):
            return message(request, 410, "expired_title", "expired")
        if isinstance(exc, AlreadyAnswered):
            return message(request, 409, "answered_title", "answered")
        return message(request, 400, "invalid_title", "invalid")

    @app.get("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
    def survey_page(request: Request, token: str) -> HTMLResponse:
        from retentio.services.surveys import survey_invitation

        try:
            inv = survey_invitation(ws, token, env=env)
        except RetentioError as exc:
            return refused(request, exc)
        if inv["answered"]:  # opening one's answered link again is no error: say so
            return message(request, 200, "answered_title", "answered")
        return survey_form(request, inv, 200)

    @app.post("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
    def survey_answer(request: Request, token: str, score: Annotated[str | None, Form()] = None,
                      comment: Annotated[str | None, Form()] = None) -> HTMLResponse:
        from retentio.actions.feedback.surveys import MAX_COMMENT, SurveyRefused
        from retentio.services.surveys import answer_survey, survey_invitation

        try:  # the link first: a bad link is refused whatever the form holds
            inv = survey_invitation(ws, token, env=env)
        except RetentioError as exc:
            return refused(request, exc)
        if inv["answered"]:
            return message(request, 409, "answered_title", "answered")
        words = WORDS[language(request)]
        score_error = words["err_score"].format(low=inv["low"], high=inv["high"])
        try:
            value = float((score or "").strip())
        except ValueError:
            return survey_form(request, inv, 422, error=score_error, chosen=score, comment=comment)
        try:
            done = answer_survey(ws, token, value, comment, source="link", env=env, sync=False)
        except SurveyRefused as exc:
            if exc.field == "score":
                return survey_form(request, inv, 422, error=score_error, chosen=score, comment=comment)
            if exc.field == "comment":
                return survey_form(request, inv, 422, error=words["err_comment"].format(max=MAX_COMMENT),
                                   chosen=score, comment=comment)
            return refused(request, exc)
        return page(request, "message.html.j2", 200, "thanks_title", message=words["thanks"], tone="note",
                    score=done["score"], comment=done["comment"])

    # ------------------------------------------------------------------ unsubscribe
    def channel_name(request: Request, channel: str) -> str:
        return WORDS[language(request)].get(f"ch_{channel}", channel)

    def unsubscribe_page(request: Request, token: str | None) -> HTMLResponse:
        from retentio.services.unsubscribe import unsubscribe_request

        try:
            asked = unsubscribe_request(ws, token or "")
        except (RetentioError, ValueError):
            return message(request, 400, "invalid_title", "unsub_invalid")
        words = WORDS[language(request)]
        return page(request, "unsubscribe.html.j2", 200, "title_unsub",
                    question=words["unsub_ask"].format(channel=channel_name(request, asked["channel"])))

    def unsubscribe_now(request: Request, token: str | None) -> HTMLResponse:
        from retentio.services.unsubscribe import unsubscribe_by_token

        try:
            done = unsubscribe_by_token(ws, token or "")
        except (RetentioError, ValueError):
            return message(request, 400, "invalid_title", "unsub_invalid")
        return message(request, 200, "unsub_done_title", "unsub_done" if done["added"] else "unsub_again",
                       channel=channel_name(request, str(done["channel"])))

    @app.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
    def unsubscribe_confirm(request: Request, token: str) -> HTMLResponse:
        return unsubscribe_page(request, token)

    @app.post("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
    def unsubscribe_post(request: Request, token: str) -> HTMLResponse:
        # the body is not read: RFC 8058's "List-Unsubscribe=One-Click", the page's button
        # or nothing at all — the signed token is the authority
        return unsubscribe_now(request, token)

    @app.get("/unsubscribe", response_class=HTMLResponse, include_in_schema=False)
    def unsubscribe_confirm_query(request: Request, token: str | None = None) -> HTMLResponse:
        return unsubscribe_page(request, token)

    @app.post("/unsubscribe", response_class=HTMLResponse, include_in_schema=False)
    def unsubscribe_post_query(request: Request, token: str | None = None) -> HTMLResponse:
        return unsubscribe_now(request, token)

    return app


def _warm_up(web: Any) -> Any:
    """A daemon thread filling the overview's and the customer pages' caches; a failure
    only means the first visitor computes them (uvicorn logs it)."""
    import logging
    import threading

    def run() -> None:
        from retentio.services.customers import warm_up
        from retentio.services.overview import overview

        try:
            with web.read() as view:
                overview(view)
                warm_up(view)
        except Exception:  # noqa: BLE001 - warming is an optimisation
            logging.getLogger("retentio.web").warning("warming the caches failed", exc_info=True)

    thread = threading.Thread(target=run, name="retentio-warm-up", daemon=True)
    thread.start()
    return thread


def workspace_of(app: FastAPI) -> Workspace:
    """The workspace an app built by :func:`create_app` holds."""
    ws: Workspace = app.state.workspace
    return ws


__all__ = ["CSS", "HEADERS", "create_app", "workspace_of"]
