"""Commands of the ``feedback`` group for follow-up tasks (see
:mod:`retentio.faces.cli_feedback`): ``feedback tasks`` (the list), ``feedback tasks
sync`` (open tasks from the data), ``feedback tasks rules`` (show or write the rules),
``feedback task ID`` (show, assign, note, start, close) and ``feedback sla`` (SLA and
follow-up metrics). Thin: each calls :mod:`retentio.services.feedback_tasks` and prints
(tables on the terminal, ``--json`` on stdout). A refused request — an unknown task id,
a done task asked to start — exits 2 and writes nothing.
"""

from __future__ import annotations

import datetime
import getpass
import math
from typing import Annotated, Any, Literal

import typer

from retentio.faces.cli import HELP, DayOpt, JsonOpt, WorkspaceOpt, _workspace
from retentio.faces.cli_feedback import feedback_app
from retentio.faces.output import err, escape, out, print_json, print_table

tasks_app = typer.Typer(help="Follow-up tasks for unhappy customers: the list (no command), sync, rules.",
                        invoke_without_command=True, **HELP)
feedback_app.add_typer(tasks_app, name="tasks")

AsOfOpt = Annotated[datetime.date | None, DayOpt("--as-of", "As of the end of this day [default: now]")]


def _author(author: str | None) -> str:
    if author:
        return author
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _parse_time(text: str, timezone: str) -> datetime.datetime:
    """A time as written (workspace time), or with an offset (converted to workspace time)."""
    from zoneinfo import ZoneInfo

    from retentio.data.errors import InvalidParameter

    try:
        value = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidParameter("at", text, "a time such as 2026-03-01T14:30 (workspace time)") from None
    if value.tzinfo is not None:
        value = value.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return value


def _fmt(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:,.2f}"
    return value


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _fmt(v) for k, v in r.items()} for r in rows]


@tasks_app.callback()
def tasks_list(
    ctx: typer.Context,
    status: Annotated[Literal["open", "in_progress", "done"] | None,
                      typer.Option("--status", help="Only tasks of this status")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only tasks not done and past their due time")] = False,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's tasks")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Follow-up tasks, highest value at stake first, then the earliest due (without a command: the list)."""
    if ctx.invoked_subcommand is not None:
        return
    from retentio.services.feedback_tasks import tasks

    with _workspace(ctx, workspace) as ws:
        rows = tasks(ws, status=status, overdue=overdue, customer=customer)
    if json:
        print_json(rows)
        return
    if not rows:
        err.print("no follow-up tasks" + (" matching" if status or overdue or customer else "")
                  + "; open them from the data with `retentio feedback tasks sync`")
        return
    print_table(_rows(rows), title="Follow-up tasks",
                columns=["id", "customer_id", "rule", "value", "due_at", "status", "overdue", "assignee"],
                caption="highest value at stake first, then the earliest due; --json for every field")


@tasks_app.command("sync")
def tasks_sync(ctx: typer.Context, as_of: AsOfOpt = None, workspace: WorkspaceOpt = None,
               json: JsonOpt = False) -> None:
    """Open a task for every new trigger occurrence the rules find; a repeat opens nothing new."""
    from retentio.services.feedback_tasks import sync_tasks

    with _workspace(ctx, workspace) as ws:
        result = sync_tasks(ws, as_of)
    if json:
        print_json(result)
        return
    print_table([{"rule": k, "found": v} for k, v in result["found_per_rule"].items()],
                title=f"Task sync as of {result['as_of']} (rules: {escape(str(result['rules']))})",
                columns=["rule", "found"])
    out.print(f"opened {result['opened']} new tasks; {result['already_open']} were already there")
    answers = result["survey_answers"]
    if "error" in answers:
        err.print(f"[yellow]warning:[/] survey answers taken by link could not be copied into the surveys table "
                  f"({escape(str(answers['error']))}); tasks were opened from the table as it is")
    else:
        if answers.get("appended"):
            err.print(f"{answers['appended']} survey answers taken by link were copied into the surveys table first")
        if answers.get("failed"):
            err.print(f"[yellow]warning:[/] {len(answers['failed'])} survey answers taken by link were refused by "
                      "the surveys table (see `retentio feedback sync`); they open no task yet")


@tasks_app.command("rules")
def tasks_rules(
    ctx: typer.Context,
    init: Annotated[bool, typer.Option("--init", help="Write the default rules to feedback/task_rules.toml")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --init: replace an existing file")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """The task rules in effect (validated), or --init to write the defaults to edit."""
    from retentio.services.feedback_tasks import rules_overview

    with _workspace(ctx, workspace) as ws:
        data, rows = rules_overview(ws, init=init, force=force)
    if json:
        print_json(data)
        return
    if data["written"]:
        err.print(f"[green]written:[/] {escape(data['written'])} — edit it, then `retentio feedback tasks sync`")
    elif data["default"]:
        err.print("no feedback/task_rules.toml: the default rules apply (write them with --init)")
    print_table(rows, title="Follow-up task rules",
                columns=["rule", "trigger", "enabled", "threshold", "owner", "sla_hours", "business_hours"])


@feedback_app.command("task")
def task_command(
    ctx: typer.Context,
    task_id: Annotated[int, typer.Argument(help="The task's id (see `retentio feedback tasks`)")],
    assign: Annotated[str | None, typer.Option("--assign", help="Assign the task to this user")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Append a note (what was done, what was said)")] = None,
    start: Annotated[bool, typer.Option("--start", help="Mark it in progress")] = False,
    done: Annotated[bool, typer.Option("--done", help="Mark it done (closes it; the SLA is measured here)")] = False,
    author: Annotated[str | None, typer.Option("--as", help="Who does it [default: the system user]",
                                               show_default=False)] = None,
    at: Annotated[str | None, typer.Option("--at", help="When it happened, workspace time, e.g. 2026-03-01T14:30 "
                                                        "[default: now]. At most 24 hours back, and not before the "
                                                        "task's latest history entry (the SLA is measured on it)",
                                           show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show a task and its history; or assign it, add a note, start it or close it."""
    from retentio.data.errors import RetentioError
    from retentio.services.feedback_tasks import change_task, task

    if start and done:
        raise RetentioError("say --start or --done, not both")
    status = "in_progress" if start else "done" if done else None
    with _workspace(ctx, workspace) as ws:
        when = _parse_time(at, ws.settings.timezone) if at else None
        if assign is None and note is None and status is None:
            row = task(ws, task_id)
        else:
            row = change_task(ws, task_id, author=_author(author), at=when, assign=assign, note=note, status=status)
    if json:
        print_json(row)
        return
    facts = {k: v for k, v in row.items() if k not in ("history", "source")}
    facts.update({f"source.{k}": v for k, v in row["source"].items() if v is not None})
    print_table([{"": k, "value": _fmt(v)} for k, v in facts.items()], title=f"Task {task_id}",
                columns=["", "value"])
    print_table(_rows(row["history"]), title="History", columns=["at", "kind", "author", "status", "assignee", "text"])


@feedback_app.command("sla")
def sla(
    ctx: typer.Context,
    period: Annotated[Literal["week", "month", "quarter", "year"], typer.Option(help="Rows per period")] = "month",
    as_of: AsOfOpt = None,
    window: Annotated[int, typer.Option("--window", min=1, max=730, help="Days after the trigger in which a "
                                                                       "detractor's retention and later NPS count")]
    = 90,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Tasks opened and closed, share closed within SLA, median time to close; and detractors followed up in time
    against those not (observational, with Newcombe intervals)."""
    from retentio.services.feedback_tasks import sla_report

    with _workspace(ctx, workspace) as ws:
        r = sla_report(ws, period=period, as_of=as_of, window_days=window)
    if json:
        print_json(r)
        return
    print_table(_rows(r["periods"]), title=f"Follow-up SLA per {period}",
                columns=["period_start", "opened", "closed", "closed_within_sla", "within_sla",
                         "median_hours_to_close", "overdue_open"])
    print_table([{"": k, "value": _fmt(v)} for k, v in r["totals"].items()], title="Totals", columns=["", "value"])
    f = r["followup"]
    rows = [{"group": name, **{k: _fmt(v) for k, v in f[key].items()}}
            for name, key in (("followed up in time", "followed_up_in_time"),
                              ("not followed up in time", "not_followed_up_in_time"))]
    print_table(rows, title=f"Detractors: outcome within {f['window_days']} days",
                columns=["group", "tasks", "retained", "retention_rate", "answered_again", "later_nps_mean",
                         "no_longer_detractor_rate"])
    d = f["retention_difference"]
    if d["difference"] is None or (isinstance(d["difference"], float) and math.isnan(d["difference"])):
        err.print("retention difference: not measurable (a group is empty)")
    else:
        err.print(f"retention difference: {100 * d['difference']:+.1f} pp, 95 % CI [{100 * d['low']:+.1f}, "
                  f"{100 * d['high']:+.1f}] ({d['method']})")
    err.print(escape(f["caveat"]))
