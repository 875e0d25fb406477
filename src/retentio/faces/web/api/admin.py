"""The admin API (permission ``admin``): the audit log and the users.

* ``GET /audit?limit&offset&actor&action`` — the audit log, newest first.
* ``GET /users?limit&offset`` — the users (no password hashes, ever).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from retentio.faces.web.context import web_of
from retentio.faces.web.security import need
from retentio.services.accounts import audit_entries, users

TAGS: list[str | Any] = ["admin"]


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    role: str | None
    address: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


class AuditList(BaseModel):
    total: int
    items: list[AuditEntry]


class User(BaseModel):
    id: int
    email: str
    role: str
    language: str
    created_at: str
    disabled: bool


class UserList(BaseModel):
    total: int
    items: list[User]


def add_routes(router: APIRouter) -> None:

    @router.get("/audit", response_model=AuditList, tags=TAGS, dependencies=[need("admin")])
    def audit_log(request: Request, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10**9),
                  actor: str | None = Query(None, max_length=300, description="e.g. user:anna@example.com"),
                  action: str | None = Query(None, max_length=100, description="e.g. user.add, task.change")
                  ) -> AuditList:
        """The audit log, newest first: who (actor, role, address), what (action, target, detail), when."""
        found = audit_entries(web_of(request).store, limit=limit, offset=offset, actor=actor or None,
                              action=action or None)
        return AuditList(total=found["total"],
                         items=[AuditEntry(**{**e, "detail": e["detail"] or {}}) for e in found["items"]])

    @router.get("/users", response_model=UserList, tags=TAGS, dependencies=[need("admin")])
    def user_list(request: Request, limit: int = Query(50, ge=1, le=500),
                  offset: int = Query(0, ge=0, le=10**9)) -> UserList:
        """The users of the web app: email, role, page language, created, disabled."""
        rows = users(web_of(request).store)
        return UserList(total=len(rows), items=[User(**r) for r in rows[offset:offset + limit]])


__all__ = ["add_routes"]
