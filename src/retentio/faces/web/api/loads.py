"""The loads API: what is loaded and every load (GET ``/loads``), and a file upload into
a canonical table (POST ``/loads/{table}``, multipart ``file``, ``mode`` append, replace
or upsert) — the same validated, all-or-nothing load as ``retentio load``, audited
``data.load``. A file with invalid values stores nothing and answers 422 with every
error's line and column (``error.errors``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from retentio.faces.web.context import web_of
from retentio.faces.web.security import need
from retentio.services.accounts import Principal

TableName = Literal["customers", "orders", "order_items", "subscriptions", "events", "surveys", "tickets"]


class TableRow(BaseModel):
    table: str
    rows: int
    customers: int
    first_day: str | None = None
    last_day: str | None = None
    source: str | None = None


class LoadRow(BaseModel):
    loaded_at: str
    table: str
    source: str | None = None
    mode: str | None = None
    rows_read: int | None = None
    rows_stored: int | None = None
    rows_rejected: int | None = None


class LoadHistory(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[LoadRow]


class Loads(BaseModel):
    """Every canonical table (rows, customers, first and last day) and the loads, newest first."""

    tables: list[TableRow]
    history: LoadHistory


class LoadResult(BaseModel):
    table: str
    source: str
    mode: str
    rows_read: int
    rows_stored: int
    rows_rejected: int
    rows_updated: int
    rows_skipped_duplicate: int
    warnings: list[str]
    columns: dict[str, str]
    format: str | None = None


class RowErrorModel(BaseModel):
    source: str
    line: int | None = None
    column: str | None = None
    value: str | None = None
    expected: str
    unit: str


class ValidationDetail(BaseModel):
    status: int
    code: str
    message: str
    field: str | None = None
    #: code "invalid_rows": every invalid value (other 422s, e.g. an unreadable file, have none)
    errors: list[RowErrorModel] = []
    total_errors: int | None = None


class ValidationBody(BaseModel):
    """A refused file: nothing was stored; with code "invalid_rows", each invalid value is listed."""

    error: ValidationDetail


def add_routes(router: APIRouter) -> None:
    from retentio.data.schema import TABLES

    assert set(TableName.__args__) == set(TABLES)  # type: ignore[attr-defined]

    @router.get("/loads", response_model=Loads, tags=["loads"])
    def loads(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0, who: Principal = need("data.read")) -> Any:
        """The canonical tables loaded and the load history (newest first, paginated)."""
        from retentio.services.data import describe_tables

        with web_of(request).read() as ws:
            tables = describe_tables(ws)
            history = list(reversed(ws.load_history()))
        return {"tables": [t.__dict__ for t in tables],
                "history": {"total": len(history), "limit": limit, "offset": offset,
                            "items": history[offset:offset + limit]}}

    @router.post("/loads/{table}", response_model=LoadResult, tags=["loads"],
                 responses={422: {"model": ValidationBody, "description": "Invalid values (nothing stored), or "
                                                                          "invalid input"}})
    def upload(request: Request, table: Annotated[TableName, Path()], file: Annotated[UploadFile, File()],
               mode: Annotated[Literal["append", "replace", "upsert"], Query()] = "append",
               who: Principal = need("data.load")) -> Any:
        """Load a file (CSV, Excel, ODS, Parquet, JSON Lines; the file name's extension
        says which) into ``table``: validated first, stored in one transaction or not at all."""
        from retentio.data.errors import ValidationError
        from retentio.faces.web.pages.data import store_upload

        try:
            report = store_upload(request, who, table, mode, file)
        except ValidationError as exc:
            body = {"error": {"status": 422, "code": "invalid_rows", "message": str(exc).splitlines()[0],
                              "field": "file", "errors": [e.as_dict() for e in exc.errors],
                              "total_errors": exc.total}}
            return JSONResponse(body, status_code=422)
        return report.as_dict()
