"""The Feedback pages: the follow-up task inbox, one task with its history and the
changes a person makes to it, the themes of what customers wrote, and the surveys'
response rates and scores.

* ``GET /feedback?view=all|mine|role|overdue&status=&offset=`` (feedback.read) — the
  inbox (:func:`retentio.services.feedback_tasks.inbox`): *mine* is assigned to the
  signed-in user's email, *role* owned by their role, *overdue* not done and past due.
* ``GET /feedback/tasks/{task_id}`` (feedback.read) — the task, its trigger (the
  customer's words shown as text) and its history.
* ``POST /feedback/tasks/{task_id}`` (feedback.tasks) — ``action`` assign (``assignee``),
  note (``note``), start or done; the author is the user's email; audited
  (``task.change``, before and after).
* ``GET /feedback/themes`` (feedback.read) — themes of comments; computing them takes a
  while, so they are kept in-process per data fingerprint and parameters.
* ``GET /feedback/surveys`` (feedback.read) — per survey playbook and channel.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from retentio.faces.web.context import web_of
from retentio.faces.web.i18n_app import APP_WORDS
from retentio.faces.web.pages import PAGE_HEADERS, page_language, render
from retentio.faces.web.security import WebError, need
from retentio.services.access import allowed
from retentio.services.accounts import Principal, audit
from retentio.services.memo import Memo

PAGE_SIZE = 50
VIEWS = ("all", "mine", "role", "overdue")
STATUSES = ("open", "in_progress", "done")
THEME_KINDS = ("nps", "csat", "ces", "ticket", "exit")
ACTIONS = ("assign", "note", "start", "done")

# ---------------------------------------------------------------------------- shared helpers
_THEMES_KEEP = 16
_THEMES: Memo[Any] = Memo(_THEMES_KEEP)


def cached_themes(ws: Any, params: Any) -> Any:
    """:func:`retentio.services.feedback_insights.feedback_themes`, kept in-process per
    workspace, data fingerprint and parameters (a new load or a new answer computes them
    again; the last :data:`_THEMES_KEEP` results are kept)."""
    from retentio.services.feedback_insights import feedback_themes, themes_fingerprint

    key = (str(ws.path), themes_fingerprint(ws), params)
    return _THEMES.get(key, lambda: feedback_themes(ws, params))


def author_of(who: Principal) -> str:
    """Who a task change is written as: the user's email (an API key: its actor name)."""
    return who.name if who.kind == "user" else who.actor


def parse_task_id(text: str) -> int:
    """A task id from a path: anything but a positive whole number is no task (404)."""
    t = (text or "").strip()
    if not t.isdigit() or len(t) > 18 or int(t) < 1:
        raise WebError(404, "not_found", f"no follow-up task {text[:40]!r}")
    return int(t)


def task_change_args(action: str, assignee: str | None, note: str | None) -> dict[str, Any]:
    """The keyword arguments of :func:`retentio.services.feedback_tasks.change_task` for
    one action of the page or the API (refused naming the field when one is missing)."""
    if action == "assign":
        if not (assignee or "").strip():
            raise WebError(422, "invalid", "assignee: say who (a user's email)", field="assignee")
        return {"assign": assignee}
    if action == "note":
        if not (note or "").strip():
            raise WebError(422, "invalid", "note: an empty note says nothing", field="note")
        return {"note": note}
    if action == "start":
        return {"status": "in_progress", "note": note if (note or "").strip() else None}
    if action == "done":
        return {"status": "done", "note": note if (note or "").strip() else None}
    raise WebError(422, "invalid", f"action: one of {', '.join(ACTIONS)}", field="action")


def change_and_audit(request: Request, who: Principal, task_id: int, args: dict[str, Any]) -> dict[str, Any]:
    """Apply a task change (author: :func:`author_of`) and write it to the audit log."""
    from retentio.services.feedback_tasks import change_task, task

    web = web_of(request)
    with web.read() as ws:
        before = task(ws, task_id)
        after = change_task(ws, task_id, author=author_of(who), **args)
    audit(web.store, who, "task.change", str(task_id),
          {"change": {k: v for k, v in args.items() if v is not None},
           "before": {"status": before["status"], "assignee": before["assignee"]},
           "after": {"status": after["status"], "assignee": after["assignee"]}})
    return after


def fmt_time(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def fmt_num(value: Any, digits: int = 2, lang: str = "en") -> str:
    """A number for a page: 1,234.50 in English, 1 234,50 in Russian; "—" when missing."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(f):
        return "—"
    text = f"{f:,.{digits}f}"
    return text.replace(",", "\u00a0").replace(".", ",") if lang == "ru" else text


def _fmt_for(lang: str) -> Any:
    return lambda value, digits=2: fmt_num(value, digits, lang)


def _words(request: Request, who: Principal) -> dict[str, str]:
    return APP_WORDS[page_language(request, who)]


def _count(lang: str, n: int, key: str) -> str:
    from retentio.faces.report.i18n import plural

    forms = {"en": {"task": {"one": "task", "other": "tasks"},
                    "comment": {"one": "comment", "other": "comments"}},
             "ru": {"task": {"one": "задача", "few": "задачи", "many": "задач", "other": "задачи"},
                    "comment": {"one": "комментарий", "few": "комментария", "many": "комментариев",
                                "other": "комментария"}}}
    return f"{n:,} {plural(lang, n, forms[lang][key])}".replace(",", "\u00a0" if lang == "ru" else ",")


# ---------------------------------------------------------------------------- routes
def add_routes(app: FastAPI) -> None:

    @app.get("/feedback", response_class=HTMLResponse, include_in_schema=False)
    def inbox_page(request: Request, view: str = "all", status: str = "", offset: int = 0,
                   who: Principal = need("feedback.read")) -> HTMLResponse:
        from retentio.services.feedback_tasks import inbox, local_now

        w = _words(request, who)
        if view not in VIEWS:
            raise WebError(422, "invalid", w["fb_bad_view"].format(views=", ".join(VIEWS)), field="view")
        if status and status not in STATUSES:
            raise WebError(422, "invalid", w["fb_bad_status"].format(statuses=", ".join(STATUSES)), field="status")
        offset = max(0, offset)
        with web_of(request).read() as ws:
            now = local_now(ws)
            counts = {v: len(inbox(ws, v, user=who.name, role=who.role, status=status or None, now=now))
                      for v in VIEWS if v != view}
            rows = inbox(ws, view, user=who.name, role=who.role, status=status or None, now=now)
        counts[view] = len(rows)
        lang = page_language(request, who)
        num = _fmt_for(lang)
        return render(request, who, "feedback_inbox.html.j2", w["fb_title"], active="/feedback",
                      view=view, views=VIEWS, status_filter=status, statuses=STATUSES, counts=counts,
                      rows=rows[offset:offset + PAGE_SIZE], total=len(rows), offset=offset, page_size=PAGE_SIZE,
                      total_text=_count(lang, len(rows), "task"), fmt_time=fmt_time, fmt_num=num)

    def task_page(request: Request, who: Principal, task_id: int, *, status: int = 200, error: str | None = None,
                  field: str | None = None, form: dict[str, str] | None = None) -> HTMLResponse:
        from retentio.actions.feedback.tasks import TaskNotFound
        from retentio.services.feedback_tasks import task

        w = _words(request, who)
        try:
            with web_of(request).read() as ws:
                row = task(ws, task_id)
        except TaskNotFound as exc:
            raise WebError(404, "not_found", str(exc)) from None
        source = [(k, v) for k, v in (row.get("source") or {}).items() if v is not None and k != "comment"]
        return render(request, who, "feedback_task.html.j2", w["fb_task_title"].format(id=task_id),
                      status=status, active="/feedback", task=row, source=source,
                      comment=(row.get("source") or {}).get("comment"),
                      may_change=allowed(who.role, "feedback.tasks"), error=error, field=field,
                      form=form or {"assignee": "", "note": ""},
                      fmt_time=fmt_time, fmt_num=_fmt_for(page_language(request, who)))

    @app.get("/feedback/tasks/{task_id}", response_class=HTMLResponse, include_in_schema=False)
    def task_view(request: Request, task_id: str, who: Principal = need("feedback.read")) -> HTMLResponse:
        return task_page(request, who, parse_task_id(task_id))

    @app.post("/feedback/tasks/{task_id}", response_class=HTMLResponse, include_in_schema=False)
    def task_change(request: Request, task_id: str, action: Annotated[str, Form(max_length=20)] = "",
                    assignee: Annotated[str | None, Form(max_length=254)] = None,
                    note: Annotated[str | None, Form(max_length=5000)] = None,
                    who: Principal = need("feedback.tasks")) -> Response:
        from retentio.actions.feedback.tasks import TaskNotFound
        from retentio.data.errors import RetentioError

        tid = parse_task_id(task_id)
        form = {"assignee": assignee or "", "note": note or ""}
        try:
            change_and_audit(request, who, tid, task_change_args(action, assignee, note))
        except TaskNotFound as exc:
            raise WebError(404, "not_found", str(exc)) from None
        except WebError as exc:
            if exc.status != 422:
                raise
            return task_page(request, who, tid, status=422, error=exc.message, field=exc.field, form=form)
        except RetentioError as exc:
            return task_page(request, who, tid, status=422, error=str(exc), field=getattr(exc, "field", None),
                             form=form)
        return RedirectResponse(f"/feedback/tasks/{tid}", status_code=303, headers=PAGE_HEADERS)

    @app.get("/feedback/themes", response_class=HTMLResponse, include_in_schema=False)
    def themes_page(request: Request, kind: str = "", since: str = "", themes: int = 6,
                    who: Principal = need("feedback.read")) -> HTMLResponse:
        from retentio.data.errors import NotLoaded
        from retentio.services.feedback_insights import ThemesParams

        w = _words(request, who)
        if kind and kind not in THEME_KINDS:
            raise WebError(422, "invalid", w["fb_bad_kind"].format(kinds=", ".join(THEME_KINDS)), field="kind")
        day: dt.date | None = None
        if since:
            try:
                day = dt.date.fromisoformat(since)
            except ValueError:
                raise WebError(422, "invalid", w["fb_bad_since"], field="since") from None
        if not 1 <= themes <= 30:
            raise WebError(422, "invalid", w["fb_bad_themes"], field="themes")
        params = ThemesParams(kind=kind or None, since=day, themes=themes)  # type: ignore[arg-type]
        result, empty = None, None
        try:
            with web_of(request).read() as ws:
                result = cached_themes(ws, params)
        except NotLoaded as exc:
            empty = str(exc)
        lang = page_language(request, who)
        num = _fmt_for(lang)
        rows = []
        if result is not None:
            for r in result.themes.to_dict("records"):
                rows.append({"theme": int(r["theme"]), "language": r["language"], "label": r["label"],
                             "count": int(r["count"]), "share": num(100 * float(r["share"]), 1),
                             "score": num(r["score_mean"], 1), "nps": num(r["nps"], 0),
                             "sentiment": r["sentiment"], "trend": r["trend"],
                             "trend_pp": num(r["trend_pp"], 1), "examples": list(r["examples"] or [])})
        return render(request, who, "feedback_themes.html.j2", w["fb_themes_title"], active="/feedback",
                      result=result, rows=rows, empty=empty, kind=kind, kinds=THEME_KINDS, since=since,
                      themes=themes,
                      total_text=_count(lang, result.n_comments, "comment") if result is not None else "")

    @app.get("/feedback/surveys", response_class=HTMLResponse, include_in_schema=False)
    def surveys_page(request: Request, who: Principal = need("feedback.read")) -> HTMLResponse:
        from retentio.services.surveys import survey_report

        w = _words(request, who)
        with web_of(request).read() as ws:
            rows = survey_report(ws)
        num = _fmt_for(page_language(request, who))
        shown = [{**r, "rate": "—" if r["response_rate"] is None else num(100 * r["response_rate"], 1),
                  "score": num(r.get(r["kind"]), 1)} for r in rows]
        return render(request, who, "feedback_surveys.html.j2", w["fb_surveys_title"], active="/feedback",
                      rows=shown)


__all__ = ["add_routes", "author_of", "cached_themes", "change_and_audit", "parse_task_id", "task_change_args"]
