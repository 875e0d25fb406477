"""Who is asking, and may they: sign-in by browser session or API key, the permission
each route needs, CSRF protection, and the answers to the unauthenticated and the
forbidden.

* **Credentials.** ``Authorization: Bearer rk_…`` (an API key; machines) or the
  ``retentio_session`` cookie (a signed-in browser). Both are checked against the store
  on every request (:mod:`retentio.services.accounts`), so a revoked key or an ended
  session stops working at once.
* **Permissions.** A route declares the one permission it needs with
  ``dependencies=[need("loyalty.pos")]`` (or takes the principal as a parameter:
  ``who: Principal = need("customers")``); :data:`retentio.services.access.ROLE_PERMISSIONS`
  says which roles hold it. The route-walk test reads the declarations from the app's
  own route table. Without credentials an API route answers 401 (JSON, with
  ``WWW-Authenticate: Bearer``) and a page redirects to the sign-in page; with
  credentials that lack the permission, 403.
* **CSRF** (OWASP's synchroniser token): a state-changing request (POST, PUT, PATCH,
  DELETE) made with a session cookie must carry the session's token, in the
  ``X-CSRF-Token`` header or the ``csrf_token`` form field; API-key requests carry no
  cookie, so a forged cross-site request cannot use one. The sign-in form, made before
  any session exists, uses a double-submit cookie. SameSite=Lax on the cookies is a
  second line, not the only one.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request

from retentio.faces.web.context import web_of
from retentio.services.access import PERMISSIONS, allowed
from retentio.services.accounts import Principal, csrf_matches, key_principal, session_principal

SESSION_COOKIE = "retentio_session"
LOGIN_CSRF_COOKIE = "retentio_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: paths anyone may open (each protected otherwise: survey and unsubscribe links by their
#: signed token); every other route must declare a permission (the route-walk test checks)
PUBLIC_PREFIXES = ("/login", "/s/", "/u/", "/unsubscribe", "/health", "/static/", "/api/v1/openapi.json")


class WebError(Exception):
    """An answer other than success: JSON ``{"error": {...}}`` on the API, a page elsewhere.

    ``code`` is stable (clients branch on it); ``message`` is the same sentence the CLI
    would print; ``field`` names the parameter at fault when there is one."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


class NotSignedIn(WebError):
    def __init__(self) -> None:
        super().__init__(401, "unauthenticated", "sign in or send an API key (Authorization: Bearer rk_…)",
                         headers={"WWW-Authenticate": 'Bearer realm="retentio"'})


class Forbidden(WebError):
    def __init__(self, permission: str) -> None:
        super().__init__(403, "forbidden", f"your role may not do this (it needs the {permission!r} permission)")


class CsrfRefused(WebError):
    def __init__(self) -> None:
        super().__init__(403, "csrf", "the form's security token is missing or wrong; reload the page and try again")


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def client_address(request: Request) -> str:
    """The peer's address (proxy headers are not trusted: ``serve`` runs uvicorn without
    them; behind a proxy, configure the ASGI server's forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


def current(request: Request) -> Principal | None:
    """The principal of ``request`` (checked once per request), or None."""
    if hasattr(request.state, "principal"):
        found: Principal | None = request.state.principal
        return found
    store = web_of(request).store
    address = client_address(request)
    who: Principal | None = None
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() == "bearer":
            who = key_principal(store, credential.strip(), address=address)
    else:
        who = session_principal(store, request.cookies.get(SESSION_COOKIE), address=address)
    request.state.principal = who
    return who


async def _csrf_token_of(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette keeps it: the route's Form() parameters read it again
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


class Need:
    """The dependency behind :func:`need` (its ``permission`` is what the route needs)."""

    def __init__(self, permission: str | None):
        if permission is not None and permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        who = current(request)
        if who is None:
            raise NotSignedIn()
        if who.kind == "user" and request.method not in SAFE_METHODS:
            if not csrf_matches(who.csrf_token, await _csrf_token_of(request)):
                raise CsrfRefused()
        if self.permission is not None and not allowed(who.role, self.permission):
            raise Forbidden(self.permission)
        return who


def need(permission: str | None) -> Any:
    """A FastAPI dependency: the principal, who must hold ``permission`` (None: anybody
    signed in). Use as a parameter default or in ``dependencies=[...]``."""
    return Depends(Need(permission))


def route_permission(route: Any) -> tuple[bool, str | None]:
    """``(declared, permission)`` of a route of the app: whether a :class:`Need` guards
    it, and the permission it needs (the route-walk test uses this)."""
    stack = [getattr(route, "dependant", None)]
    while stack:
        d = stack.pop()
        if d is None:
            continue
        if isinstance(d.call, Need):
            return True, d.call.permission
        stack.extend(d.dependencies)
    return False, None


def login_redirect_target(request: Request) -> str:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(path, safe='')}"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def cookie_secure(request: Request) -> bool:
    setting = web_of(request).secure_cookies
    return request.url.scheme == "https" if setting is None else setting


__all__ = ["CSRF_FIELD", "CSRF_HEADER", "CsrfRefused", "Forbidden", "LOGIN_CSRF_COOKIE", "Need", "NotSignedIn",
           "PUBLIC_PREFIXES", "SESSION_COOKIE", "WebError", "client_address", "cookie_secure", "current", "is_api",
           "login_redirect_target", "need", "new_login_csrf", "route_permission", "safe_next"]
