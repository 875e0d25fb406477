"""Survey use cases: answer a survey by its signed token, report response rates and
scores per survey playbook and channel, and hand the answers to the analytics.

Sending is the campaign machinery's (a survey playbook runs with ``retentio campaign
run``); this module is what happens after: the answer, and where it goes.

**How link answers reach the metrics.** Answers live in the store (``survey_answers``,
linked to their invitation) and are *appended* to the workspace's canonical ``surveys``
table by :func:`sync_answers` — run by ``retentio feedback answer`` right after each
answer and by ``retentio feedback sync`` for answers the web app took. So NPS, CSAT
and CES in ``retentio metrics`` and the report count them with no change to the
analytics. Re-running never duplicates: an answer is appended once (its
``exported_at`` is set afterwards), and should a crash fall between the append and that
mark, the next sync recognises the rows already in the table by their natural key
(customer, kind, score, answered_at to the second) and only marks them. An answer the
table refuses (e.g. its customer is no longer in ``customers``) stays in the store,
unmarked and reported with the reason; it never blocks the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace


def answer_survey(ws: Workspace, token: str, score: float, comment: str | None = None, *,
                  now: dt.datetime | None = None, source: str = "cli", env: Mapping[str, str] | None = None,
                  sync: bool = True) -> dict[str, Any]:
    """Record the answer ``token`` stands for (one transaction; refused naming the field,
    nothing written: tampered or expired token, score off the scale, a second answer)
    and, with ``sync``, append it to the canonical surveys table. The answer as stored,
    plus ``synced`` (rows appended) and ``sync_error`` (why it could not be appended yet,
    else None: the answer is kept all the same — it was committed first)."""
    from retentio.actions.feedback.surveys import answer, survey_secret
    from retentio.data.errors import RetentioError

    done = answer(ws.store, survey_secret(ws.path, env), token, score, comment, now=now, source=source)
    synced, error = 0, None
    if sync:
        try:
            result = sync_answers(ws, now=now)
            synced = result["appended"]
            error = next((f["reason"] for f in result["failed"] if f["id"] == done.answer_id), None)
        except RetentioError as exc:  # the answer is stored; `feedback sync` appends it later
            error = _why(exc)
    return done.as_dict() | {"synced": synced, "sync_error": error}


def survey_invitation(ws: Workspace, token: str, *, now: dt.datetime | None = None,
                      env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the answer page of ``token`` shows, read only: ``kind`` (nps, csat, ces),
    its scale ``low``–``high``, ``playbook``, ``expires_at`` and ``answered``. Refused
    like :func:`answer_survey` (a tampered or unknown token; an expired link as
    :class:`retentio.actions.feedback.surveys.LinkExpired`)."""
    from retentio.actions.feedback.surveys import look_up, survey_secret

    inv = look_up(ws.store, survey_secret(ws.path, env), token, now=now)
    return {"kind": inv.kind, "low": inv.low, "high": inv.high, "playbook": inv.campaign,
            "expires_at": inv.expires_at, "answered": inv.answered}


def _why(exc: Exception) -> str:
    """The table's reason, on one line, without the loader's "nothing was stored" (the
    answer *is* stored — in the store)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = [ln for ln in lines[1:] if "nothing was stored" not in ln] or lines[:1]
    return "the surveys table refused it: " + " ".join(detail)


def survey_report(ws: Workspace) -> list[dict[str, Any]]:
    """Per survey playbook, channel and question: invited (sent), answered, response
    rate and the answers' NPS / CSAT / CES (see
    :func:`retentio.actions.feedback.surveys.survey_stats`)."""
    from retentio.actions.feedback.surveys import survey_stats

    return survey_stats(ws.store)


def _key_frame(frame: Any) -> Any:
    out = frame[["customer_id", "kind", "score", "answered_at"]].copy()
    out["customer_id"] = out.customer_id.astype(str)
    out["score"] = out.score.astype("float64")
    out["answered_at"] = out.answered_at.map(lambda v: v.floor("s") if hasattr(v, "floor") else v).astype(str)
    return out


def sync_answers(ws: Workspace, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Append the store's answers not yet in the canonical ``surveys`` table to it
    (answered_at in the workspace's time), then mark them; ``{"appended", "already",
    "failed"}`` (``already``: found in the table by their natural key, only marked;
    ``failed``: ``{"id", "reason"}`` of answers the table refused, left unmarked).
    Refused at once when ``surveys`` is an external table ([tables] in retentio.toml)."""
    from zoneinfo import ZoneInfo

    import pandas as pd

    from retentio.actions.feedback.surveys import mark_exported, unexported_answers
    from retentio.data.errors import RetentioError

    if "surveys" in ws.settings.tables:
        raise RetentioError(f"the surveys table is read from {ws.settings.tables['surveys']!r} ([tables] in "
                            "retentio.toml): answers taken through links stay in the store; add them to that "
                            "source, or remove the line to keep the table in the workspace")
    rows = unexported_answers(ws.store)
    if not rows:
        return {"appended": 0, "already": 0, "failed": []}
    tz = ZoneInfo(ws.settings.timezone)
    frame = pd.DataFrame({
        "answered_at": [pd.Timestamp(r["answered_at"].astimezone(tz).replace(tzinfo=None)) for r in rows],
        "kind": [r["kind"] for r in rows], "score": [float(r["score"]) for r in rows],
        "customer_id": [str(r["customer_id"]) for r in rows], "comment": [r["comment"] for r in rows]})
    ids = [int(r["id"]) for r in rows]
    present = pd.Series(False, index=frame.index)
    if ws.is_loaded("surveys"):
        s = ws.table("surveys")
        lo = frame.answered_at.min().floor("s")
        # only the answers' time span is compared: the table may hold millions of imported answers
        held = s.filter(s.answered_at >= lo.to_pydatetime()).select("customer_id", "kind", "score",
                                                                     "answered_at").to_pandas()
        if not held.empty:
            keys = set(map(tuple, _key_frame(held).itertuples(index=False)))
            present = pd.Series([tuple(k) in keys for k in _key_frame(frame).itertuples(index=False)],
                                index=frame.index)
    new = frame[~present.to_numpy()]
    stored = [i for i, held in zip(ids, present) if held]
    failed: list[dict[str, Any]] = []
    if not new.empty:
        try:
            ws.load("surveys", new, mode="append")
            stored += [ids[i] for i in new.index]
        except RetentioError:
            # one refused row fails the whole load: append one by one, so the others go in
            for i in new.index:
                try:
                    ws.load("surveys", new.loc[[i]], mode="append")
                    stored.append(ids[i])
                except RetentioError as exc:
                    failed.append({"id": ids[i], "reason": _why(exc)})
    if stored:
        mark_exported(ws.store, stored, now or dt.datetime.now(dt.UTC))
    return {"appended": len(stored) - int(present.sum()), "already": int(present.sum()), "failed": failed}


__all__ = ["answer_survey", "survey_invitation", "survey_report", "sync_answers"]
