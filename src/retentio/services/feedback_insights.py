"""What customers are saying: themes of their comments and the reasons they leave.

* :func:`feedback_themes` — themes of survey comments, ticket topics and cancel reasons
  (:mod:`retentio.analytics.text.themes`: Snowball stems, TF-IDF, NMF; Russian and
  English), per kind or all together, from a day on.
* :func:`exit_reasons` — cancel reasons and exit-survey answers per period, plan or RFM
  segment, voluntary and involuntary churn apart (:mod:`retentio.analytics.exit_reasons`).

Typed results: the faces read fields, never ``DataFrame.attrs``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pandas as pd

from retentio.data.errors import InvalidParameter, NotLoaded

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

CommentKind = Literal["nps", "csat", "ces", "ticket", "exit"]
KINDS: tuple[str, ...] = ("nps", "csat", "ces", "ticket", "exit")
#: survey kinds whose comments are themed ("exit" is not one: exit-survey answers are read from
#: the store's answers to ``exit_survey`` playbooks and join the cancel reasons)
SURVEY_KINDS = ("nps", "csat", "ces")


@dataclass(frozen=True)
class ThemesParams:
    """``kind`` (None: every source), comments from ``since`` on, themes per language."""

    kind: CommentKind | None = None
    since: dt.date | None = None
    themes: int = 6
    period: Literal["week", "month", "quarter"] = "month"
    #: with ``kind`` None, the kinds taken together (the report themes the survey comments only:
    #: ticket topics and cancel reasons are categories already, shown as such)
    include: tuple[str, ...] = KINDS


@dataclass
class FeedbackThemes:
    #: one row per theme: theme, language, label, words, count, share, score_mean, nps, nps_answers,
    #: polarity, sentiment, trend, trend_pp, examples
    themes: pd.DataFrame
    #: theme, period_start, comments, share
    trend: pd.DataFrame
    n_comments: int
    n_without_words: int
    languages: dict[str, int]
    #: comments per source kind (nps, csat, ces, ticket, exit)
    sources: dict[str, int]
    kind: str | None
    since: dt.date | None
    #: language -> why it has no themes
    notes: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "since": self.since, "comments": self.n_comments,
                "without_words": self.n_without_words, "languages": self.languages, "sources": self.sources,
                "notes": self.notes, "themes": self.themes.to_dict("records"),
                "trend": self.trend.to_dict("records")}


def _frame(ws: Workspace, name: str, columns: list[str], since: dt.date | None, time_col: str,
           where=None) -> pd.DataFrame:
    if not ws.is_loaded(name):
        return pd.DataFrame(columns=columns)
    t = ws.table(name)
    if where is not None:
        t = t.filter(where(t))
    if since is not None:
        t = t.filter(t[time_col] >= dt.datetime.combine(since, dt.time()))
    return t.select(*columns).to_pandas()


def _exit_answers(ws: Workspace, since: dt.date | None) -> pd.DataFrame:
    """Exit-survey answers: the store's answers to invitations of ``exit_survey`` playbooks
    (:func:`retentio.actions.feedback.surveys.exit_answers`) — customer_id,
    subscription_id, answered_at (workspace time), score, reason (the comment).

    The canonical ``surveys`` table cannot say which answers were exit surveys: its kinds
    are nps/csat/ces only, and an exit survey asks (and exports as) ``nps``. The former
    reading of ``surveys.kind == "exit"`` matched nothing a workspace can hold, and is gone.
    A workspace without a store has no exit-survey answers (none is created to find out)."""
    from retentio.actions.feedback.surveys import exit_answers
    from retentio.services.data import _store_in_use

    columns = ["customer_id", "subscription_id", "answered_at", "score", "reason"]
    if not _store_in_use(ws):
        return pd.DataFrame(columns=columns)
    a = exit_answers(ws.store, since, ws.settings.timezone)
    return a.rename(columns={"comment": "reason"})[columns]


def _answer_keys(frame: pd.DataFrame) -> pd.Series:
    """An answer's natural key as the surveys sync matches it: customer, kind, score, second."""
    at = pd.to_datetime(frame["answered_at"]).dt.floor("s").astype(str)
    return (frame["customer_id"].astype(str) + "|" + frame["kind"].astype(str) + "|"
            + frame["score"].astype("float64").astype(str) + "|" + at).reset_index(drop=True)


def gather_comments(ws: Workspace, kind: str | None = None, since: dt.date | None = None,
                    include: tuple[str, ...] = KINDS) -> pd.DataFrame:
    """Every comment of the workspace as text, kind, score, at: survey comments, ticket
    topics (scored by their satisfaction), cancel reasons (codes written as words:
    "too_expensive" → "too expensive") and exit-survey answers with a comment (the store's
    answers to ``exit_survey`` playbooks, see :func:`_exit_answers`). With survey kinds and
    exits both wanted, an exit-survey answer already synced to the ``surveys`` table (as
    ``nps``) is taken once, as an exit."""
    if kind is not None and kind not in KINDS:
        raise InvalidParameter("kind", kind, " | ".join(KINDS))
    wanted = {kind} if kind is not None else set(include)
    parts = []
    answers = _exit_answers(ws, since) if "exit" in wanted else None
    if wanted & set(SURVEY_KINDS):
        s = _frame(ws, "surveys", ["customer_id", "answered_at", "kind", "score", "comment"], since, "answered_at",
                   lambda t: t.comment.notnull())
        s = s[s.kind.isin(wanted)]
        if answers is not None and len(answers) and len(s):
            # an exit-survey answer synced to the surveys table (as kind nps) is taken once: as an exit
            s = s[~_answer_keys(s).isin(_answer_keys(answers.assign(kind="nps"))).to_numpy()]
        parts.append(pd.DataFrame({"text": s.comment, "kind": s.kind, "score": s.score, "at": s.answered_at}))
    if "ticket" in wanted:
        t = _frame(ws, "tickets", ["opened_at", "topic", "satisfaction"], since, "opened_at",
                   lambda t: t.topic.notnull())
        parts.append(pd.DataFrame({"text": t.topic.astype(str).str.replace("_", " "), "kind": "ticket",
                                   "score": t.satisfaction, "at": t.opened_at}))
    if "exit" in wanted:
        c = _frame(ws, "subscriptions", ["ended_at", "cancel_reason"], since, "ended_at",
                   lambda t: t.cancel_reason.notnull() & t.ended_at.notnull())
        parts.append(pd.DataFrame({"text": c.cancel_reason.astype(str).str.replace("_", " "), "kind": "exit",
                                   "score": float("nan"), "at": c.ended_at}))
        a = answers if answers is not None else _exit_answers(ws, since)
        a = a[a.reason.notna() & (a.reason.astype(str).str.strip() != "")]
        parts.append(pd.DataFrame({"text": a.reason, "kind": "exit", "score": float("nan"), "at": a.answered_at}))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["text", "kind", "score", "at"])
    out = pd.concat(parts, ignore_index=True)
    out["at"] = pd.to_datetime(out["at"])
    # a fixed order, so the same workspace always gives the same themes and quotes
    return out.sort_values(["at", "kind", "text"], kind="stable").reset_index(drop=True)


def feedback_themes(ws: Workspace, params: ThemesParams = ThemesParams()) -> FeedbackThemes:
    """Themes of what customers wrote (see :mod:`retentio.analytics.text.themes`)."""
    from retentio.analytics.text.themes import ThemeParams, find_themes

    if params.themes < 1 or params.themes > 30:
        raise InvalidParameter("themes", params.themes, "a number of themes from 1 to 30")
    if params.period not in ("week", "month", "quarter"):
        raise InvalidParameter("period", params.period, "week | month | quarter")
    comments = gather_comments(ws, params.kind, params.since, params.include)
    if comments.empty:
        raise NotLoaded("comments" if params.kind is None else f"{params.kind} comments",
                        "themes of what customers say")
    freq = {"week": "W-MON", "month": "M", "quarter": "Q"}[params.period]
    found = find_themes(comments, ThemeParams(themes=params.themes, period=freq))
    return FeedbackThemes(found.themes, found.trend, found.n_comments, found.n_without_words, found.languages,
                          {str(k): int(v) for k, v in comments.kind.value_counts().sort_index().items()},
                          params.kind, params.since, found.notes)


@dataclass(frozen=True)
class ExitParams:
    period: Literal["week", "month", "quarter", "year"] = "month"
    by: Literal["plan", "segment"] | None = None
    since: dt.date | None = None
    include_trials: bool = False


@dataclass
class ExitReasons:
    #: period_start, churn_type, [plan|segment], source, reason, exits, share
    periods: pd.DataFrame
    #: churn_type, reason, exits, share (all periods)
    totals: pd.DataFrame
    voluntary: int
    involuntary: int
    unknown: int
    period: str
    by: str | None

    def as_dict(self) -> dict:
        return {"period": self.period, "by": self.by, "voluntary": self.voluntary,
                "involuntary": self.involuntary, "unknown": self.unknown,
                "totals": self.totals.to_dict("records"), "periods": self.periods.to_dict("records")}


def _segments_at_exit(ws: Workspace, rows: pd.DataFrame, period: str) -> pd.Series:
    """The RFM segment each leaving customer was in when the period of their exit began
    (their segment now would say "lost" for all of them)."""
    from retentio.analytics.exit_reasons import FREQ
    from retentio.analytics.segments import rfm

    if not ws.is_loaded("orders"):
        raise NotLoaded("orders", "exit reasons by RFM segment")
    starts = rows.ended_at.dt.to_period(FREQ[period]).dt.start_time
    seg = pd.Series("(no orders yet)", index=rows.index, dtype="object")
    for start in sorted(starts.unique()):
        idx = starts.index[starts == start]
        # no completed order before that day gives an empty table: nobody has a segment yet.
        # Any other failure (the engine, the data) is the user's to see, not a label.
        r = rfm(ws, pd.Timestamp(start).date())
        m = dict(zip(r.customer_id.astype(str), r.segment))
        seg[idx] = [m.get(c, "(no orders yet)") for c in rows.customer_id[idx]]
    return seg


def exit_reasons(ws: Workspace, params: ExitParams = ExitParams()) -> ExitReasons:
    """Why customers left, per period (and plan or segment), voluntary and involuntary apart."""
    from retentio.analytics import exit_reasons as er

    if params.by not in (None, "plan", "segment"):
        raise InvalidParameter("by", params.by, "plan | segment")
    if params.period not in er.FREQ:
        raise InvalidParameter("period", params.period, " | ".join(er.FREQ))
    subs = _frame(ws, "subscriptions", ["subscription_id", "customer_id", "ended_at", "plan", "cancel_reason",
                                        "churn_type", "is_trial"], params.since, "ended_at")
    answers = _exit_answers(ws, params.since)
    if subs.empty and answers.empty:
        raise NotLoaded("subscriptions", "exit reasons")
    rows = er.exits(subs, answers, include_trials=params.include_trials, period=params.period)
    if params.by == "segment" and len(rows):
        rows["segment"] = _segments_at_exit(ws, rows, params.period)
    counts = rows.churn_type.value_counts()
    return ExitReasons(er.exit_reasons(rows, params.period, params.by), er.reason_totals(rows),
                       int(counts.get("voluntary", 0)), int(counts.get("involuntary", 0)),
                       int(counts.get("unknown", 0)), params.period, params.by)


def themes_fingerprint(ws: Workspace) -> str:
    """What the themes are computed from, as one string: the analytics data's fingerprint
    and the store's survey answers (exit-survey answers are read from there). Equal
    fingerprints give equal themes for equal parameters (a cache may keep them)."""
    from sqlalchemy import func, select

    from retentio.data.store.survey_tables import SurveyAnswer
    from retentio.services.data import _store_in_use

    answers: tuple[object, ...] = ()
    if _store_in_use(ws):
        with ws.store.session() as s:
            answers = tuple(s.execute(select(func.count(SurveyAnswer.id), func.max(SurveyAnswer.id))).one())
    return f"{ws.data_fingerprint()}|{answers}"
