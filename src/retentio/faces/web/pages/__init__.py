"""The signed-in pages (server-rendered, Jinja2): one module per area, each with an
``add_routes(app)``. Shared here: :func:`render` (the layout with the navigation the
role may use, the language, the CSRF token for forms) and :func:`error_page`.

Every page sends the same strict Content-Security-Policy: styles and scripts only from
``/static`` on this server, images from this server (charts are SVG files rendered on
the server from the report's Vega-Lite specs), forms only to this server, no frames —
so no page can load or send anything elsewhere.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from retentio.faces.web.context import web_of
from retentio.faces.web.i18n import choose
from retentio.faces.web.i18n_app import APP_WORDS, NAV
from retentio.faces.web.security import current
from retentio.services.access import allowed
from retentio.services.accounts import Principal

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def page_language(request: Request, who: Principal | None) -> str:
    """``?lang=`` when given, else the user's setting, else the browser's Accept-Language."""
    asked = request.query_params.get("lang")
    if asked in APP_WORDS:
        return asked
    if who is not None and who.kind == "user" and who.language in APP_WORDS:
        return who.language
    return choose(None, request.headers.get("accept-language"))


def render(request: Request, who: Principal | None, template: str, title: str, *, status: int = 200,
           active: str | None = None, **context: Any) -> HTMLResponse:
    """A signed-in page: ``template`` (extending ``layout.html.j2``) with ``w`` (the
    words of the page's language), ``who``, ``csrf`` (the form token), ``nav`` (the
    areas the role may open) and ``context``."""
    lang = page_language(request, who)
    words = APP_WORDS[lang]
    nav = [(path, words[key], path == active or (active is None and request.url.path == path))
           for path, key, permission in NAV
           if who is not None and (permission is None or allowed(who.role, permission))]
    html = web_of(request).templates.get_template(template).render(
        lang=lang, w=words, title=title, who=who, csrf=(who.csrf_token if who else None) or "", nav=nav,
        path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS | {"Content-Language": lang})


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """A refusal or failure as a page (the API answers JSON instead)."""
    who = current(request)
    words = APP_WORDS[page_language(request, who)]
    title = words.get(f"error_{status}", words["error"])
    return render(request, who, "error.html.j2", title, status=status, message=message)


def add_routes(app: FastAPI) -> None:
    """Every page area's routes."""
    from retentio.faces.web.pages import admin, at_risk, campaigns, customers, data, feedback, loyalty, overview

    for area in (overview, customers, at_risk, campaigns, loyalty, feedback, data, admin):
        area.add_routes(app)


__all__ = ["PAGE_HEADERS", "add_routes", "error_page", "page_language", "render"]
