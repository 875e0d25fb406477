"""The REST API, ``/api/v1/…``: one module per area, each with an ``add_routes(router)``.

Every route authenticates (an API key, ``Authorization: Bearer rk_…``, or a signed-in
browser session with its CSRF token for changes) and declares its permission
(:func:`retentio.faces.web.security.need`). Errors have one shape,
``{"error": {"status", "code", "message", "field"}}`` (:class:`ErrorBody`), with the
same sentences as the CLI; lists are paginated with ``limit``/``offset`` and say their
``total``. The OpenAPI document is served at :data:`OPENAPI_URL`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.security import HTTPBearer
from pydantic import BaseModel

PREFIX = "/api/v1"
OPENAPI_URL = f"{PREFIX}/openapi.json"


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    error: ErrorDetail


#: the error answers every API route may give (declared so the document is complete)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in ((401, "No or unknown credentials"), (403, "The role may not do this, or a CSRF token "
                                                                   "is missing"),
                         (404, "Not found"), (422, "Invalid input (the field is named)"),
                         (503, "The analytics database is busy (a load is running); try again"))
}

#: declares the bearer scheme in the OpenAPI document (the check itself is need())
bearer = HTTPBearer(auto_error=False, description="An API key from `retentio apikey create`")


def add_routes(app: FastAPI) -> None:
    """Every API area's routes, under :data:`PREFIX`."""
    from retentio.faces.web.api import admin, campaigns, customers, feedback, loads, loyalty, me, metrics

    router = APIRouter(prefix=PREFIX, dependencies=[Depends(bearer)], responses=ERRORS)
    for area in (me, customers, metrics, campaigns, loyalty, feedback, loads, admin):
        area.add_routes(router)
    # the router's routes already carry the prefix, its dependencies and its responses:
    # they join the app's own route table (where the route-walk test and the OpenAPI
    # document read them), not a lazily included router
    app.router.routes.extend(router.routes)


__all__ = ["ERRORS", "ErrorBody", "OPENAPI_URL", "PREFIX", "add_routes"]
