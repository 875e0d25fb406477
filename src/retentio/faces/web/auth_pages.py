"""Signing in and out, and the user's page language.

* ``GET /login`` — the form; a fresh double-submit CSRF cookie when there is none.
* ``POST /login`` — checks the form's CSRF token against the cookie, then the
  credentials (:func:`retentio.services.accounts.sign_in`: throttled after 5 failures in
  15 minutes per account and per address, one message for every refusal). Success sets
  the session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS, no lifetime of its own:
  the server decides when it ends) and redirects to ``next`` — a path on this site only.
* ``POST /logout`` — ends the session in the store (the cookie no longer signs in, even
  if a copy was kept) and removes the cookie.
* ``POST /settings/language`` — the signed-in user's page language.
* ``GET /settings/csrf`` — the session's CSRF token as JSON (for scripts).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from retentio.faces.web.context import web_of
from retentio.faces.web.i18n_app import APP_WORDS
from retentio.faces.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    client_address,
    cookie_secure,
    current,
    need,
    new_login_csrf,
    safe_next,
)
from retentio.services.accounts import (
    AccessRefused,
    Principal,
    Throttled,
    csrf_matches,
    set_language,
    sign_in,
    sign_out,
)


def add_routes(app: FastAPI) -> None:
    from retentio.faces.web.pages import PAGE_HEADERS, page_language, render

    def form(request: Request, *, status: int = 200, error: str | None = None, email: str = "",
             next_path: str = "/") -> HTMLResponse:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
        words = APP_WORDS[page_language(request, None)]
        response = render(request, None, "login.html.j2", words["signin_title"], status=status, error=error,
                          email=email, next_path=safe_next(next_path), login_csrf=token)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login",
                            secure=cookie_secure(request))
        return response

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query's name
        if current(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303, headers=PAGE_HEADERS)
        return form(request, next_path=next)

    @app.post("/login", response_class=HTMLResponse, include_in_schema=False)
    def login(request: Request, email: Annotated[str, Form(max_length=254)] = "",
              password: Annotated[str, Form(max_length=1024)] = "",
              csrf_token: Annotated[str, Form(max_length=200)] = "",
              next: Annotated[str, Form(max_length=2000)] = "/") -> Response:  # noqa: A002
        words = APP_WORDS[page_language(request, None)]
        if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
            return form(request, status=403, error=words["signin_csrf"], email=email, next_path=next)
        try:
            token, who = sign_in(web_of(request).store, email, password, address=client_address(request),
                                 user_agent=request.headers.get("user-agent"),
                                 previous=request.cookies.get(SESSION_COOKIE))
        except Throttled as exc:
            response = form(request, status=429, email=email, next_path=next,
                            error=words["signin_throttled"].format(minutes=(exc.retry_after + 59) // 60))
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except AccessRefused:
            return form(request, status=401, error=words["signin_wrong"], email=email, next_path=next)
        done = RedirectResponse(safe_next(next), status_code=303, headers=PAGE_HEADERS)
        done.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                            secure=cookie_secure(request))
        done.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        request.state.principal = who
        return done

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, who: Principal = need(None)) -> Response:
        sign_out(web_of(request).store, who)
        response = RedirectResponse("/login", status_code=303, headers=PAGE_HEADERS)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
        return response

    @app.get("/settings/csrf", include_in_schema=False)
    def csrf(who: Principal = need(None)) -> JSONResponse:
        """The session's CSRF token, for scripts that send changes with fetch() (a
        cross-origin page cannot read it: no CORS headers are ever sent)."""
        return JSONResponse({"csrf_token": who.csrf_token or ""}, headers=PAGE_HEADERS)

    @app.post("/settings/language", include_in_schema=False)
    def language(request: Request, language: Annotated[str, Form(max_length=2)] = "en",
                 back: Annotated[str, Form(max_length=2000)] = "/", who: Principal = need(None)) -> Response:
        if who.user_id is not None:
            set_language(web_of(request).store, who.user_id, language, actor=who)
        return RedirectResponse(safe_next(back), status_code=303, headers=PAGE_HEADERS)


__all__ = ["add_routes"]
