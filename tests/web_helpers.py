"""Helpers of the web app's tests: an app on a workspace, users and keys, signing in."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def client_for(path: Path, **kwargs):
    """A test client of the app on the workspace at ``path`` (server errors become 500s)."""
    from retentio.faces.web.app import create_app

    with warnings.catch_warnings():  # starlette's test client prefers httpx2; httpx works
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    return TestClient(create_app(path, env={}, **kwargs), raise_server_exceptions=False)


def add_users(path: Path, roles, *, domain: str = "example.com") -> dict[str, str]:
    """One user per role (``ROLE@domain``, password :data:`PASSWORD`); returns role → email."""
    from retentio import Workspace
    from retentio.services.accounts import add_user, cli_principal

    made = {}
    with Workspace.open(path) as ws:
        for role in roles:
            email = f"{role}@{domain}"
            add_user(ws.store, email, PASSWORD, role, actor=cli_principal())
            made[role] = email
    return made


def add_key(path: Path, role: str, name: str = "test") -> str:
    from retentio import Workspace
    from retentio.services.accounts import cli_principal, create_key

    with Workspace.open(path) as ws:
        return create_key(ws.store, name, role, actor=cli_principal())["key"]


def csrf_of(html: str) -> str:
    """The first CSRF token in a page's forms."""
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(client, email: str, password: str = PASSWORD, *, next_path: str = "/"):
    """Sign ``client`` in through the form; returns the POST's response (303 on success)."""
    form = client.get("/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text),
                                       "next": next_path}, follow_redirects=False)


def session_csrf(client) -> str:
    """The signed-in session's CSRF token (from the language form every page carries)."""
    page = client.get("/settings/csrf")
    return page.json()["csrf_token"]
