"""The Admin pages (permission ``admin``): users, API keys and the audit log. Every
change goes through :mod:`retentio.services.accounts`, which writes it to the audit log
in the change's own transaction, with the signed-in admin as the actor.

* ``GET /admin`` → 303 ``/admin/users``.
* ``GET /admin/users`` — the users and the add form; ``POST /admin/users`` adds one
  (email, role, password, language; refusals shown by field); ``POST
  /admin/users/disable`` (ends the user's sessions at once), ``/admin/users/enable``,
  ``/admin/users/reset`` (a new password; ends the sessions too). An admin cannot
  disable themself.
* ``GET /admin/keys`` — the API keys and the create form; ``POST /admin/keys`` creates
  one and shows the key on that answer only (never again: only its hash is kept);
  ``POST /admin/keys/revoke``.
* ``GET /admin/audit?actor=&action=&offset=`` — the audit log, newest first, 50 a page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retentio.data.errors import RetentioError
from retentio.faces.web.context import web_of
from retentio.faces.web.i18n_app import APP_WORDS
from retentio.faces.web.pages import PAGE_HEADERS, page_language, render
from retentio.faces.web.security import need
from retentio.services.access import KEY_ROLES, ROLES
from retentio.services.accounts import (
    Principal,
    add_user,
    audit_entries,
    create_key,
    keys,
    normal_email,
    reset_password,
    revoke_key,
    set_disabled,
    users,
)

AUDIT_PAGE = 50
LANGUAGES = ("en", "ru")
#: the flash messages a redirect may carry (``?done=``)
DONE = ("added", "disabled", "enabled", "reset", "revoked")


def field_of(exc: Exception) -> tuple[str | None, str]:
    """The field a service's refusal names (``"email: …"`` → ``email``) and its message."""
    text = str(exc)
    head, sep, _rest = text.partition(":")
    field = getattr(exc, "field", None) or (head.strip() if sep and head.strip().isidentifier() else None)
    return field, text


def _words(request: Request, who: Principal) -> dict[str, str]:
    return APP_WORDS[page_language(request, who)]


def _done(request: Request) -> str | None:
    done = request.query_params.get("done")
    return done if done in DONE else None


def add_routes(app: FastAPI) -> None:

    @app.get("/admin", include_in_schema=False)
    def admin_home(who: Principal = need("admin")) -> Response:
        return RedirectResponse("/admin/users", status_code=303, headers=PAGE_HEADERS)

    # ------------------------------------------------------------------ users
    def users_page(request: Request, who: Principal, *, status: int = 200, errors: dict[str, str] | None = None,
                   form: dict[str, str] | None = None, message: str | None = None,
                   target: str | None = None) -> HTMLResponse:
        w = _words(request, who)
        rows = users(web_of(request).store)
        return render(request, who, "admin_users.html.j2", w["adm_users_title"], status=status, active="/admin",
                      rows=rows, roles=ROLES, languages=LANGUAGES, errors=errors or {},
                      form=form or {"email": "", "role": "analyst", "language": "en"},
                      message=message, target=target, done=_done(request))

    @app.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    def users_list(request: Request, who: Principal = need("admin")) -> HTMLResponse:
        return users_page(request, who)

    @app.post("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    def users_add(request: Request, email: Annotated[str, Form(max_length=254)] = "",
                  role: Annotated[str, Form(max_length=20)] = "",
                  password: Annotated[str, Form(max_length=1024)] = "",
                  language: Annotated[str, Form(max_length=2)] = "en",
                  who: Principal = need("admin")) -> Response:
        form = {"email": email, "role": role, "language": language}
        try:
            add_user(web_of(request).store, email, password, role, actor=who, language=language)
        except RetentioError as exc:
            field, text = field_of(exc)
            return users_page(request, who, status=422, errors={field or "form": text}, form=form)
        return RedirectResponse("/admin/users?done=added", status_code=303, headers=PAGE_HEADERS)

    def _set(request: Request, who: Principal, email: str, disabled: bool) -> Response:
        w = _words(request, who)
        try:
            if disabled and normal_email(email) == normal_email(who.name):
                return users_page(request, who, status=409, message=w["adm_not_yourself"], target=email)
            set_disabled(web_of(request).store, email, disabled, actor=who)
        except RetentioError as exc:
            return users_page(request, who, status=422, message=str(exc), target=email)
        return RedirectResponse(f"/admin/users?done={'disabled' if disabled else 'enabled'}", status_code=303,
                                headers=PAGE_HEADERS)

    @app.post("/admin/users/disable", response_class=HTMLResponse, include_in_schema=False)
    def users_disable(request: Request, email: Annotated[str, Form(max_length=254)] = "",
                      who: Principal = need("admin")) -> Response:
        return _set(request, who, email, True)

    @app.post("/admin/users/enable", response_class=HTMLResponse, include_in_schema=False)
    def users_enable(request: Request, email: Annotated[str, Form(max_length=254)] = "",
                     who: Principal = need("admin")) -> Response:
        return _set(request, who, email, False)

    @app.post("/admin/users/reset", response_class=HTMLResponse, include_in_schema=False)
    def users_reset(request: Request, email: Annotated[str, Form(max_length=254)] = "",
                    password: Annotated[str, Form(max_length=1024)] = "",
                    who: Principal = need("admin")) -> Response:
        try:
            reset_password(web_of(request).store, email, password, actor=who)
        except RetentioError as exc:
            return users_page(request, who, status=422, message=str(exc), target=email)
        return RedirectResponse("/admin/users?done=reset", status_code=303, headers=PAGE_HEADERS)

    # ------------------------------------------------------------------ API keys
    def keys_page(request: Request, who: Principal, *, status: int = 200, errors: dict[str, str] | None = None,
                  form: dict[str, str] | None = None, created: dict[str, Any] | None = None,
                  message: str | None = None) -> HTMLResponse:
        w = _words(request, who)
        return render(request, who, "admin_keys.html.j2", w["adm_keys_title"], status=status, active="/admin",
                      rows=keys(web_of(request).store), roles=KEY_ROLES, errors=errors or {},
                      form=form or {"name": "", "role": "integration"}, created=created, message=message,
                      done=_done(request))

    @app.get("/admin/keys", response_class=HTMLResponse, include_in_schema=False)
    def keys_list(request: Request, who: Principal = need("admin")) -> HTMLResponse:
        return keys_page(request, who)

    @app.post("/admin/keys", response_class=HTMLResponse, include_in_schema=False)
    def keys_create(request: Request, name: Annotated[str, Form(max_length=200)] = "",
                    role: Annotated[str, Form(max_length=20)] = "",
                    who: Principal = need("admin")) -> HTMLResponse:
        try:
            created = create_key(web_of(request).store, name, role, actor=who)
        except RetentioError as exc:
            field, text = field_of(exc)
            return keys_page(request, who, status=422, errors={field or "form": text}, form={"name": name,
                                                                                           "role": role})
        # the key is on this answer only (no-store): a reload or a later visit never shows it again
        return keys_page(request, who, status=201, created=created)

    @app.post("/admin/keys/revoke", response_class=HTMLResponse, include_in_schema=False)
    def keys_revoke(request: Request, prefix: Annotated[str, Form(max_length=40)] = "",
                    who: Principal = need("admin")) -> Response:
        try:
            revoke_key(web_of(request).store, prefix, actor=who)
        except RetentioError as exc:
            return keys_page(request, who, status=422, message=str(exc))
        return RedirectResponse("/admin/keys?done=revoked", status_code=303, headers=PAGE_HEADERS)

    # ------------------------------------------------------------------ audit log
    @app.get("/admin/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, actor: str = "", action: str = "", offset: int = 0,
                   who: Principal = need("admin")) -> HTMLResponse:
        w = _words(request, who)
        offset = min(max(0, offset), 10**9)
        actor, action = actor.strip()[:300], action.strip()[:100]
        found = audit_entries(web_of(request).store, limit=AUDIT_PAGE, offset=offset, actor=actor or None,
                              action=action or None)
        return render(request, who, "admin_audit.html.j2", w["adm_audit_title"], active="/admin",
                      rows=found["items"], total=found["total"], offset=offset, page_size=AUDIT_PAGE,
                      actor=actor, action=action, done=None, message=None)


__all__ = ["add_routes", "field_of"]
