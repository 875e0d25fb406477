"""``GET /api/v1/me``: who the credentials belong to and what they may do."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from retentio.faces.web.security import need
from retentio.services.access import ROLE_PERMISSIONS
from retentio.services.accounts import Principal


class Me(BaseModel):
    kind: str
    name: str
    role: str | None
    permissions: list[str]


def add_routes(router: APIRouter) -> None:
    @router.get("/me", response_model=Me, tags=["access"])
    def me(who: Principal = need(None)) -> Me:
        """The caller: a user (by session) or an API key (by its prefix), its role and permissions."""
        return Me(kind=who.kind, name=who.name, role=who.role,
                  permissions=sorted(ROLE_PERMISSIONS.get(who.role or "", frozenset())))
