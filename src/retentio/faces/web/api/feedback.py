"""The feedback API: survey answers by token, the follow-up task inbox and its changes,
survey results and the themes of comments.

* ``POST /feedback/answers`` (feedback.answer) — ``{token, score, comment?}``, recorded
  by :func:`retentio.services.surveys.answer_survey` with source ``link`` (the store's
  answer sources are link, cli and import: an answer through the API is one given
  through its personal link, relayed). Refusals as the CLI's: a tampered or unknown
  token 400, an expired link 410, a second answer 409 (the first stands), a score off
  the scale or an over-long comment 422 naming the field. Nothing is written by any.
* ``GET /feedback/tasks`` (feedback.read), ``GET /feedback/tasks/{task_id}``
  (feedback.read), ``POST /feedback/tasks/{task_id}`` (feedback.tasks; audited).
* ``GET /feedback/surveys``, ``GET /feedback/themes`` (feedback.read).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from retentio.faces.web.context import web_of
from retentio.faces.web.security import WebError, need
from retentio.services.accounts import Principal

TAGS: list[str | Any] = ["feedback"]
#: the store's answer sources (data/store/survey_tables.py ANSWER_SOURCES) have no "api":
#: an answer relayed through the API is one given through the invitation's personal link
API_ANSWER_SOURCE = "link"
MAX_ID = 2**31 - 1


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


# ---------------------------------------------------------------------------- models
class AnswerIn(BaseModel):
    token: str = Field(min_length=1, max_length=2000, description="The token of the personal answer link (/s/TOKEN)")
    score: float = Field(description="NPS 0–10, CSAT 1–5, CES 1–7 (the invitation's kind), a whole number")
    comment: str | None = Field(None, max_length=20000, description="The comment, as plain text")


class AnswerOut(BaseModel):
    customer_id: str
    kind: str
    score: int
    comment: str | None
    playbook: str
    answered_at: str


class Task(BaseModel):
    id: int
    customer_id: str
    rule: str
    trigger: str
    occurrence: str
    source: dict[str, Any]
    triggered_at: dt.datetime
    due_at: dt.datetime
    value: float
    value_basis: str
    owner_role: str
    assignee: str | None
    status: str
    closed_at: dt.datetime | None
    overdue: bool
    closed_late: bool


class HistoryEntry(BaseModel):
    at: dt.datetime
    kind: str
    author: str
    text: str | None
    status: str | None
    assignee: str | None


class TaskDetail(Task):
    history: list[HistoryEntry]


class TaskList(BaseModel):
    total: int
    items: list[Task]


class TaskChange(BaseModel):
    action: Literal["assign", "note", "start", "done"] = Field(
        description="assign (with assignee), note (with note), start (in progress) or done (closes it; "
                    "a note may go with either)")
    assignee: str | None = Field(None, max_length=254, description="With assign: who (a user's email)")
    note: str | None = Field(None, max_length=5000, description="With note: the text")


class SurveyRow(BaseModel):
    playbook: str
    channel: str
    kind: str
    invited: int
    queued: int
    failed: int
    answered: int
    response_rate: float | None
    score: float | None = Field(description="NPS, CSAT (% satisfied) or mean CES: the kind's measure")


class SurveyList(BaseModel):
    total: int
    items: list[SurveyRow]


class Theme(BaseModel):
    theme: int
    language: str
    label: str
    words: list[str]
    count: int
    share: float | None
    score_mean: float | None
    nps: float | None
    nps_answers: int
    sentiment: str
    trend: str
    trend_pp: float | None
    examples: list[str]


class Themes(BaseModel):
    kind: str | None
    since: dt.date | None
    comments: int
    without_words: int
    languages: dict[str, int]
    sources: dict[str, int]
    notes: dict[str, str]
    themes: list[Theme]


def _task(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["source"] = {k: (_num(v) if isinstance(v, float) else v) for k, v in (row.get("source") or {}).items()}
    out["value"] = _num(row.get("value")) or 0.0
    return out


# ---------------------------------------------------------------------------- routes
def add_routes(router: APIRouter) -> None:

    @router.post("/feedback/answers", response_model=AnswerOut, tags=TAGS,
                 responses={400: {"description": "A tampered or unknown token"},
                            409: {"description": "Already answered (the first answer stands)"},
                            410: {"description": "The link expired"}})
    def answer(request: Request, body: AnswerIn, who: Principal = need("feedback.answer")) -> AnswerOut:
        """Record a survey answer by its signed token (one per invitation). Refused, nothing written: a tampered
        or unknown token (400), an expired link (410), a second answer (409; the first stands), a score off the
        invitation's scale or an over-long comment (422 naming the field). The answer reaches the surveys table
        with `retentio feedback sync`."""
        from retentio.actions.feedback.surveys import AlreadyAnswered, LinkExpired, SurveyRefused
        from retentio.services.accounts import audit
        from retentio.services.surveys import answer_survey

        web = web_of(request)
        if _num(body.score) is None:
            raise WebError(422, "invalid", "score: a number, please", field="score")
        try:
            with web.read() as ws:
                done = answer_survey(ws, body.token, body.score, body.comment, source=API_ANSWER_SOURCE,
                                     env=web.env, sync=False)
        except LinkExpired as exc:
            raise WebError(410, "expired", str(exc), field="token") from None
        except AlreadyAnswered as exc:
            raise WebError(409, "already_answered", str(exc), field="token") from None
        except SurveyRefused as exc:
            if exc.field == "token":
                raise WebError(400, "bad_token", str(exc), field="token") from None
            raise WebError(422, "invalid", str(exc), field=exc.field) from None
        audit(web.store, who, "survey.answer", str(done.get("customer_id")),
              {"kind": done.get("kind"), "playbook": done.get("playbook"), "score": done.get("score")})
        at = done.get("answered_at")
        return AnswerOut(customer_id=str(done["customer_id"]), kind=str(done["kind"]), score=int(done["score"]),
                         comment=done.get("comment"), playbook=str(done.get("playbook")),
                         answered_at=at.isoformat() if at is not None and hasattr(at, "isoformat") else str(at))

    @router.get("/feedback/tasks", response_model=TaskList, tags=TAGS)
    def tasks_list(request: Request,
                   view: Literal["all", "mine", "role", "overdue"] = Query(
                       "all", description="mine: assigned to the caller; role: owned by the caller's role; "
                                          "overdue: not done and past due"),
                   status: Literal["open", "in_progress", "done"] | None = Query(None),
                   limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10**9),
                   who: Principal = need("feedback.read")) -> TaskList:
        """Follow-up tasks, highest value at stake first, then the earliest due."""
        from retentio.services.feedback_tasks import inbox

        with web_of(request).read() as ws:
            rows = inbox(ws, view, user=who.name, role=who.role, status=status)
        return TaskList(total=len(rows), items=[Task(**_task(r)) for r in rows[offset:offset + limit]])

    def _detail(request: Request, task_id: int) -> TaskDetail:
        from retentio.actions.feedback.tasks import TaskNotFound
        from retentio.services.feedback_tasks import task

        try:
            with web_of(request).read() as ws:
                row = task(ws, task_id)
        except TaskNotFound as exc:
            raise WebError(404, "not_found", str(exc)) from None
        return TaskDetail(**_task(row))

    @router.get("/feedback/tasks/{task_id}", response_model=TaskDetail, tags=TAGS)
    def task_get(request: Request, task_id: int = Path(ge=1, le=MAX_ID),
                 who: Principal = need("feedback.read")) -> TaskDetail:
        """One task with its history (oldest first)."""
        return _detail(request, task_id)

    @router.post("/feedback/tasks/{task_id}", response_model=TaskDetail, tags=TAGS)
    def task_post(request: Request, body: TaskChange, task_id: int = Path(ge=1, le=MAX_ID),
                  who: Principal = need("feedback.tasks")) -> TaskDetail:
        """Assign, note, start or close a task; the author is the caller (a user's email, or the key). Each change
        is appended to the task's history and written to the audit log. A done task takes notes only (422)."""
        from retentio.actions.feedback.tasks import TaskNotFound
        from retentio.faces.web.pages.feedback import change_and_audit, task_change_args

        try:
            change_and_audit(request, who, task_id, task_change_args(body.action, body.assignee, body.note))
        except TaskNotFound as exc:
            raise WebError(404, "not_found", str(exc)) from None
        return _detail(request, task_id)

    @router.get("/feedback/surveys", response_model=SurveyList, tags=TAGS)
    def surveys(request: Request, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10**9),
                who: Principal = need("feedback.read")) -> SurveyList:
        """Per survey playbook, channel and question: invited (sent), answered, response rate and the score."""
        from retentio.services.surveys import survey_report

        with web_of(request).read() as ws:
            rows = survey_report(ws)
        items = [SurveyRow(playbook=r["playbook"], channel=r["channel"], kind=r["kind"], invited=r["invited"],
                           queued=r["queued"], failed=r["failed"], answered=r["answered"],
                           response_rate=_num(r["response_rate"]), score=_num(r.get(r["kind"])))
                 for r in rows]
        return SurveyList(total=len(items), items=items[offset:offset + limit])

    @router.get("/feedback/themes", response_model=Themes, tags=TAGS)
    def themes(request: Request,
               kind: Literal["nps", "csat", "ces", "ticket", "exit"] | None = Query(None),
               since: dt.date | None = Query(None, description="Comments from this day on"),
               n: int = Query(6, ge=1, le=30, alias="themes", description="Themes per language"),
               who: Principal = need("feedback.read")) -> Themes:
        """Themes of customers' comments (Snowball stems, TF-IDF, NMF; Russian and English): key words, count,
        share, score, NPS, sentiment, trend and quotes (as written: plain text)."""
        from retentio.faces.web.pages.feedback import cached_themes
        from retentio.services.feedback_insights import ThemesParams

        with web_of(request).read() as ws:
            r = cached_themes(ws, ThemesParams(kind=kind, since=since, themes=n))
        items = [Theme(theme=int(t["theme"]), language=str(t["language"]), label=str(t["label"]),
                       words=[str(x) for x in t["words"]], count=int(t["count"]), share=_num(t["share"]),
                       score_mean=_num(t["score_mean"]), nps=_num(t["nps"]),
                       nps_answers=int(_num(t["nps_answers"]) or 0), sentiment=str(t["sentiment"]),
                       trend=str(t["trend"]), trend_pp=_num(t["trend_pp"]),
                       examples=[str(x) for x in t["examples"]])
                 for t in r.themes.to_dict("records")]
        return Themes(kind=r.kind, since=r.since, comments=int(r.n_comments), without_words=int(r.n_without_words),
                      languages={str(k): int(v) for k, v in r.languages.items()},
                      sources={str(k): int(v) for k, v in r.sources.items()},
                      notes={str(k): str(v) for k, v in r.notes.items()}, themes=items)


__all__ = ["API_ANSWER_SOURCE", "add_routes"]
