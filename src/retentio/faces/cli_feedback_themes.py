"""Commands of the ``feedback`` group (see :mod:`retentio.faces.cli_feedback`): what
customers are saying (``themes``) and why they leave (``exits``). Thin: calls
:mod:`retentio.services.feedback_insights` and prints (a table on the terminal, ``--json``
on stdout). Customers' words are printed as text, never as Rich markup."""

from __future__ import annotations

import datetime
from typing import Annotated, Literal, Optional

import typer

from retentio.faces.cli import DayOpt, JsonOpt, WorkspaceOpt, _workspace
from retentio.faces.cli_feedback import feedback_app
from retentio.faces.output import err, escape, print_json, print_table


def _num(v, digits: int = 1) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if f != f else f"{f:.{digits}f}"


@feedback_app.command("themes")
def feedback_themes(
    ctx: typer.Context,
    kind: Annotated[Optional[Literal["nps", "csat", "ces", "ticket", "exit"]],  # noqa: UP045 - Typer reads it
                    typer.Option(help="Only comments of this kind: survey kind, ticket topics, or exit "
                                      "(cancel reasons and exit-survey answers) [default: all]")] = None,
    from_: Annotated[Optional[datetime.date], DayOpt("--from", "Comments from this day on")] = None,  # noqa: UP045
    themes: Annotated[int, typer.Option("--themes", min=1, max=30, help="Themes per language")] = 6,
    period: Annotated[Literal["week", "month", "quarter"], typer.Option(help="Period of the trend")] = "month",
    examples: Annotated[bool, typer.Option("--examples/--no-examples", help="Print three quotes per theme")] = True,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Themes of free-text comments in Russian and English (Snowball stems, TF-IDF, NMF; offline,
    deterministic): key words, count, share, average score, NPS, sentiment, trend and quotes."""
    from retentio.services.feedback_insights import ThemesParams
    from retentio.services.feedback_insights import feedback_themes as run

    with _workspace(ctx, workspace) as ws:
        result = run(ws, ThemesParams(kind=kind, since=from_, themes=themes, period=period))
    if json:
        print_json(result.as_dict())
        return
    rows = [{"#": int(r.theme), "lang": r.language, "theme": escape(r.label), "comments": int(r.count),
             "share %": _num(100 * r.share), "score 0-10": _num(r.score_mean), "NPS": _num(r.nps, 0),
             "sentiment": r.sentiment, "trend": f"{r.trend} ({r.trend_pp:+.1f} pp)"}
            for r in result.themes.itertuples()]
    langs = ", ".join(f"{k} {v:,}" for k, v in sorted(result.languages.items()))
    print_table(rows, title=f"Themes of {result.n_comments:,} comments ({langs})",
                caption="share: of all comments (a comment may have several themes); score on 0-10; "
                        "sentiment from a ru/en word lexicon")
    if examples:
        for r in result.themes.itertuples():
            err.print(f"[bold]{int(r.theme)}. {escape(r.label)}[/bold]")
            for q in r.examples:
                err.print(f"   “{escape(q)}”")
    if result.n_without_words:
        err.print(f"{result.n_without_words:,} comments have no words to theme (empty, emoji or stop words only).")
    for lang, note in result.notes.items():
        err.print(f"No {lang} themes: {escape(note)}")


@feedback_app.command("exits")
def feedback_exits(
    ctx: typer.Context,
    period: Annotated[Literal["week", "month", "quarter", "year"], typer.Option(help="Period")] = "month",
    by: Annotated[Optional[Literal["plan", "segment"]],  # noqa: UP045 - Typer reads it
                  typer.Option(help="Also per plan, or per RFM segment at the start of the exit's period")] = None,
    from_: Annotated[Optional[datetime.date], DayOpt("--from", "Exits from this day on")] = None,  # noqa: UP045
    trials: Annotated[bool, typer.Option("--trials", help="Count trials that were not converted")] = False,
    last: Annotated[int, typer.Option(min=1, help="Periods shown on the terminal (all with --json)")] = 3,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Why customers leave: cancel reasons and exit-survey answers per period (and plan or segment),
    voluntary and involuntary (failed payments: a dunning problem) churn apart."""
    from retentio.services.feedback_insights import ExitParams, exit_reasons

    with _workspace(ctx, workspace) as ws:
        result = exit_reasons(ws, ExitParams(period=period, by=by, since=from_, include_trials=trials))
    if json:
        print_json(result.as_dict())
        return
    print_table([{"churn": r.churn_type, "reason": escape(str(r.reason)), "exits": int(r.exits),
                  "share %": _num(r.share)} for r in result.totals.itertuples()],
                title=f"Exit reasons: {result.voluntary:,} voluntary, {result.involuntary:,} involuntary"
                      + (f", {result.unknown:,} unknown" if result.unknown else ""),
                caption="involuntary = failed payments (a dunning problem, not a product problem)")
    p = result.periods
    if len(p):
        recent = sorted(p.period_start.unique())[-last:]
        p = p[p.period_start.isin(recent)]
        cols = ["period_start", "churn_type", *([by] if by else []), "reason", "exits", "share"]
        print_table([{c: (escape(str(v)) if isinstance(v, str) else
                          str(v.date()) if hasattr(v, "date") else _num(v) if c == "share" else v)
                      for c, v in zip(cols, r)} for r in p[cols].itertuples(index=False)],
                    title=f"By {period}" + (f" and {by}" if by else "") + f" (last {len(recent)})")
