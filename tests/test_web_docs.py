"""docs/web.md lists every route of the web app with the permission it needs (taken
from the app's own route table, so a new route without documentation fails here)."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "web.md"


def route_rows(app) -> list[tuple[str, str, str]]:
    """(method, path, permission) of every route, as docs/web.md shows them."""
    from fastapi.routing import APIRoute

    from retentio.faces.web.security import route_permission

    rows = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            declared, permission = route_permission(route)
            shown = (permission or "signed in") if declared else "public"
            for method in sorted(route.methods - {"HEAD"}):
                rows.append((method, route.path, shown))
    return sorted(rows, key=lambda r: (r[1], r[0]))


def test_every_route_is_documented_with_its_permission(tmp_path):
    from retentio import Workspace
    from tests.web_helpers import client_for

    Workspace.init(tmp_path / "ws").close()
    text = DOC.read_text(encoding="utf-8")
    with client_for(tmp_path / "ws") as client:
        missing = [f"| {m} | `{p}` | {perm} |" for m, p, perm in route_rows(client.app)
                   if f"| {m} | `{p}` | {perm} |" not in text]
    assert not missing, "docs/web.md lacks these rows:\n" + "\n".join(missing)
