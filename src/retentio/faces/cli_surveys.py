"""Commands of the ``feedback`` group (see :mod:`retentio.faces.cli_feedback`): answer a
survey by its token, the surveys' response rates and scores, and the hand-over of link
answers to the canonical surveys table. Thin: each calls :mod:`retentio.services.surveys`."""

from __future__ import annotations

from typing import Annotated

import typer

from retentio.faces.cli import JsonOpt, WorkspaceOpt, _workspace
from retentio.faces.cli_feedback import feedback_app
from retentio.faces.output import err, escape, print_json, print_table

#: the columns of `retentio feedback surveys` on the terminal (--json has every field)
COLUMNS = ["playbook", "channel", "kind", "invited", "answered", "response %", "score", "queued", "failed"]


@feedback_app.command("answer")
def feedback_answer(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="The token of the personal answer link (/s/TOKEN)")],
    score: Annotated[float, typer.Argument(help="The score: NPS 0-10, CSAT 1-5, CES 1-7 (the invitation's kind)")],
    comment: Annotated[str | None, typer.Option(help="The comment, as plain text")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Answer a survey by its signed token (for tests and imports; the web app serves
    /s/TOKEN). One answer per invitation: a second is refused and the first stands. A
    tampered or expired token or a score off the scale is refused (exit 2), nothing
    written. The answer is appended to the surveys table at once, so the metrics count it."""
    from retentio.services.surveys import answer_survey

    with _workspace(ctx, workspace, read_only=False) as ws:
        done = answer_survey(ws, token, score, comment)
    if done["sync_error"]:
        err.print(f"[yellow]the answer is recorded, but not yet in the surveys table:[/] {escape(done['sync_error'])}"
                  " — fix that and run retentio feedback sync", highlight=False)
    if json:
        print_json(done)
        return
    err.print(f"[green]recorded:[/] {done['kind'].upper()} {done['score']} from customer "
              f"{escape(str(done['customer_id']))} for {escape(done['playbook'])}", highlight=False)


@feedback_app.command("surveys")
def feedback_surveys(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Per survey playbook and channel: invited (messages sent), answered, response rate
    (answered / invited) and the answers' NPS, CSAT or CES; queued and failed messages."""
    from retentio.services.surveys import survey_report

    with _workspace(ctx, workspace) as ws:
        rows = survey_report(ws)
    if json:
        print_json(rows)
        return
    if not rows:
        err.print("no survey invitations yet: retentio playbook new nps_survey NAME, then retentio campaign run NAME")
        return
    shown = [{"playbook": r["playbook"], "channel": r["channel"], "kind": r["kind"], "invited": r["invited"],
              "answered": r["answered"],
              "response %": None if r["response_rate"] is None else round(100 * r["response_rate"], 1),
              "score": r[r["kind"]], "queued": r["queued"], "failed": r["failed"]} for r in rows]
    print_table(shown, title="Surveys (score: NPS, CSAT % satisfied or mean CES)", columns=COLUMNS)


@feedback_app.command("sync")
def feedback_sync(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Append survey answers taken through links (and not yet appended) to the
    workspace's surveys table, so NPS, CSAT and CES in the metrics and the report count
    them. Safe to repeat: an answer is appended once."""
    from retentio.services.surveys import sync_answers

    with _workspace(ctx, workspace, read_only=False) as ws:
        done = sync_answers(ws)
    if json:
        print_json(done)
        return
    err.print(f"appended {done['appended']} answer(s) to the surveys table"
              + (f" ({done['already']} were there already)" if done["already"] else ""))
    for f in done["failed"]:
        err.print(f"[yellow]answer {f['id']} not appended (kept in the store, tried again next time):[/] "
                  f"{escape(f['reason'])}", highlight=False)
