"""The Data page (``/data``): the canonical tables loaded, every load (newest first) and
the upload form (POST ``/data/upload``, multipart ``table``, ``mode``, ``file``) — the
same validated, all-or-nothing load as ``retentio load``: the file is saved to a
temporary folder under its own name (its extension says its format), loaded while the
app holds the analytics database for writing, and audited ``data.load``. A file that
fails validation stores nothing; each invalid value is shown with its line and column.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from retentio.faces.web.context import web_of
from retentio.faces.web.i18n_app import APP_WORDS
from retentio.faces.web.pages import page_language, render
from retentio.faces.web.security import WebError, need
from retentio.services.access import allowed
from retentio.services.accounts import Principal, audit

if TYPE_CHECKING:
    from retentio.data.loading import LoadReport

#: the largest file an upload may be (bytes)
MAX_UPLOAD = 200 * 1024 * 1024
MODES = ("append", "replace", "upsert")


def _safe_name(filename: str | None) -> str:
    """The upload's own file name without any folder, in safe characters."""
    name = Path((filename or "upload.csv").replace("\\", "/")).name
    name = re.sub(r"[^\w.\-]+", "_", name).lstrip(".") or "upload.csv"
    return name[:120]


def store_upload(request: Request, who: Principal, table: str, mode: str, upload: UploadFile) -> LoadReport:
    """Load an uploaded file into ``table`` (validated, all or nothing) and audit it;
    :class:`~retentio.data.errors.RetentioError` (e.g. a
    :class:`~retentio.data.errors.ValidationError`) when refused — nothing stored."""
    from retentio.data.errors import InvalidParameter
    from retentio.data.schema import TABLES
    from retentio.services.data import LoadParams, load_table

    if table not in TABLES:
        raise InvalidParameter("table", table, f"one of {', '.join(TABLES)}")
    if mode not in MODES:
        raise InvalidParameter("mode", mode, "append, replace or upsert")
    name = _safe_name(upload.filename)
    web = web_of(request)
    with tempfile.TemporaryDirectory(prefix="retentio-upload-") as folder:
        path = Path(folder) / name
        size = 0
        with path.open("wb") as out:
            while chunk := upload.file.read(1024 * 1024):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise WebError(413, "too_large", f"the file is larger than {MAX_UPLOAD // (1024 * 1024)} MB",
                                   field="file")
                out.write(chunk)
        if size == 0:
            raise InvalidParameter("file", name, "a file with a header line and rows (this one is empty)")
        with web.write() as ws:
            report = load_table(ws, table, path, LoadParams(mode=mode))  # type: ignore[arg-type]
    audit(web.store, who, "data.load", table, {"table": table, "file": name, "mode": mode,
                                               "rows_read": report.rows_read, "rows": report.rows_stored,
                                               "rows_updated": report.rows_updated})
    return report


def _page(request: Request, who: Principal, *, status: int = 200, **extra: Any) -> HTMLResponse:
    from retentio.data.schema import TABLES
    from retentio.services.data import describe_tables

    words = APP_WORDS[page_language(request, who)]
    with web_of(request).read() as ws:
        tables = describe_tables(ws)
        history = list(reversed(ws.load_history()))
    context: dict[str, Any] = {"report": None, "errors": None, "error": None, "total_errors": 0,
                               "chosen_table": "orders", "chosen_mode": "append"} | extra
    return render(request, who, "data.html.j2", words["data_title"], status=status, active="/data",
                  tables=tables, history=history[:200], history_total=len(history), table_names=list(TABLES),
                  modes=MODES, can_load=allowed(who.role, "data.load"), **context)


def add_routes(app: FastAPI) -> None:
    @app.get("/data", response_class=HTMLResponse, include_in_schema=False)
    def data_page(request: Request, who: Principal = need("data.read")) -> Response:
        return _page(request, who)

    @app.post("/data/upload", response_class=HTMLResponse, include_in_schema=False)
    def data_upload(request: Request, table: Annotated[str, Form(max_length=40)],
                    file: Annotated[UploadFile, File()],
                    mode: Annotated[str, Form(max_length=20)] = "append",
                    who: Principal = need("data.load")) -> Response:
        from retentio.data.errors import RetentioError, ValidationError

        try:
            report = store_upload(request, who, table, mode, file)
        except ValidationError as exc:
            errors = [e.as_dict() for e in exc.errors]
            return _page(request, who, status=422, errors=errors, total_errors=exc.total,
                         error=str(exc).splitlines()[0], chosen_table=table, chosen_mode=mode)
        except RetentioError as exc:
            if " is busy:" in str(exc):
                raise
            return _page(request, who, status=422, error=str(exc), chosen_table=table, chosen_mode=mode)
        return _page(request, who, report=report.as_dict(), chosen_table=table, chosen_mode=mode)


__all__ = ["MAX_UPLOAD", "MODES", "add_routes", "store_upload"]
