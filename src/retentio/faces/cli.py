"""The ``retentio`` command line. Thin: every command calls the Python API and prints.

Exit status: 0 ok, 2 bad input or usage, 1 internal error. ``--json`` writes only JSON
to stdout; tables, progress and messages go to the terminal.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import signal
import sys
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Optional

import typer

try:  # Typer >= 0.2x vendors Click; older releases depend on it
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException as _ClickException

from retentio import __version__
from retentio.data.errors import RetentioError, ValidationError
from retentio.data.schema import TABLES
from retentio.data.settings import default_path
from retentio.faces.output import err, escape, out, print_json, print_table, progress

if TYPE_CHECKING:
    from retentio.workspace import Workspace

#: Plain help (Click's layout): it prints at once, shows flags as flags and keeps
#: "[default: ...]" texts (Rich markup would take them for style tags).
HELP = {"rich_markup_mode": None, "context_settings": {"help_option_names": ["-h", "--help"]}}

app = typer.Typer(
    name="retentio",
    help="Customer retention analytics and retention marketing on your own data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    **HELP,
)

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("-w", "--workspace", help="Workspace folder [default: $RETENTIO_WORKSPACE, else the current folder]",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Write JSON to stdout (for scripts).")]

#: what a command was doing, for the message when it is interrupted (Ctrl-C)
_DOING = {"writes": False, "stored": False}


def _interrupted_message() -> str:
    if _DOING["stored"]:
        return "interrupted after the data had been stored (the load is complete)"
    return "interrupted, nothing stored" if _DOING["writes"] else "interrupted"


def _workspace(ctx: typer.Context, path: Path | None, *, read_only: bool = True) -> Workspace:
    """Open the workspace; commands that only read open its database read-only, so they
    work on a read-only folder and beside each other."""
    from retentio.workspace import Workspace

    _DOING["writes"] = not read_only
    return Workspace.open(path or (ctx.obj or {}).get("workspace") or default_path(), read_only=read_only)


_DAY_FORMATS = (("%Y-%m-%d", r"\d{4}-\d{1,2}-\d{1,2}"), ("%d.%m.%Y", r"\d{1,2}\.\d{1,2}\.\d{4}"),
                ("%Y%m%d", r"\d{8}"))


def parse_day(text: str) -> datetime.date:
    """A day as loading accepts it: 2024-03-01, 01.03.2024 or 20240301 (never 03/01/2024,
    whose day and month can be confused)."""
    if isinstance(text, datetime.date):
        return text
    for fmt, pattern in _DAY_FORMATS:
        if re.fullmatch(pattern, text.strip()):
            try:
                return datetime.datetime.strptime(text.strip(), fmt).date()
            except ValueError:
                break
    raise typer.BadParameter(f"{text!r} is not a day; write 2024-03-01, 01.03.2024 or 20240301")


def DayOpt(name: str, help: str):  # noqa: N802 - reads as a type in signatures
    return typer.Option(name, parser=parse_day, metavar="DATE", help=help + " (2024-03-01, 01.03.2024 or 20240301)",
                        show_default=False)


def _positive(value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be a positive number of days, got {value}")
    return value


def _show_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", is_eager=True,
                                          callback=_show_version)] = False,
) -> None:
    ctx.obj = {"workspace": workspace}


# ---------------------------------------------------------------------- init
@app.command()
def init(
    ctx: typer.Context,
    path: Annotated[Optional[Path], typer.Argument(help="Folder to create [default: -w, else the current directory]")] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone of the business, e.g. Europe/Moscow")] = "UTC",
    currency: Annotated[str, typer.Option(help="Currency of all amounts: an ISO 4217 code such as RUB, USD, EUR")] = "USD",
    window: Annotated[int, typer.Option(min=1, help="Activity window in days (non-contractual 'active')")] = 90,
    engine: Annotated[Literal["duckdb", "spark"], typer.Option(help="duckdb (embedded file) or spark")] = "duckdb",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create a workspace: retentio.toml and, for DuckDB, the embedded database file."""
    from retentio.services.data import WorkspaceParams, create_workspace

    _DOING["writes"] = True
    target = path or workspace or (ctx.obj or {}).get("workspace") or default_path()
    made = create_workspace(target, WorkspaceParams(timezone, currency, window, engine))
    info = {"workspace": str(made.path), "engine": made.engine, "timezone": made.timezone,
            "currency": made.currency, "activity_window_days": made.activity_window_days}
    if json:
        print_json(info)
    else:
        err.print(f"[green]Created workspace[/] {info['workspace']} ({engine}, {timezone}, {currency}, window {window} days)")


# ---------------------------------------------------------------------- load
@app.command()
def load(
    ctx: typer.Context,
    table: Annotated[Literal[tuple(TABLES)], typer.Argument(help="Canonical table", show_default=False)],
    file: Annotated[Path, typer.Argument(help="CSV (any common encoding), Excel (.xlsx/.xls/.ods), Parquet (file or folder) or JSON-lines file")],
    map: Annotated[Optional[list[str]], typer.Option("--map", metavar="THEIRS=OURS", help="Rename a column: their_col=our_col (repeatable)")] = None,
    map_file: Annotated[Optional[Path], typer.Option("--map-file", help="Renames from a file: lines their_col=our_col, or TOML \"their col\" = \"our_col\"")] = None,
    mode: Annotated[Literal["append", "replace", "upsert"], typer.Option(help="append (refuse stored ids and repeated files), replace (the whole table) or upsert (update matching ids, only the file's columns)")] = "append",
    skip_invalid: Annotated[Optional[Path], typer.Option("--skip-invalid", help="Store the valid rows; write rejected rows with reasons to this CSV")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --mode replace: replace even when fewer than half of the rows are valid")] = False,
    allow_duplicates: Annotated[bool, typer.Option("--allow-duplicates", help="Append a file already loaded, or rows identical to stored ones, again")] = False,
    delimiter: Annotated[Optional[str], typer.Option(help="CSV delimiter [default: detected from the first lines]")] = None,
    decimal: Annotated[Optional[Literal[".", ","]], typer.Option(help="Decimal separator, . or , [default: detected from all values; an ambiguous file is refused]", show_default=False)] = None,
    encoding: Annotated[Optional[str], typer.Option(help="Text encoding, e.g. cp1251 or utf-16 [default: detected]")] = None,
    date_format: Annotated[Optional[str], typer.Option("--date-format", help="strptime format for dates such as 03/01/2024, e.g. %d/%m/%Y [default: ISO, 01.03.2024 or 20240301]")] = None,
    sheet: Annotated[Optional[str], typer.Option(help="Excel sheet name [default: the first sheet]")] = None,
    format: Annotated[Optional[Literal["csv", "xlsx", "xls", "ods", "parquet", "jsonl"]], typer.Option("--format", help="File format [default: from the file name]", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Validate a file and store it into a canonical table (all or nothing)."""
    from retentio.services.data import LoadParams, load_table, parse_renames, read_renames

    mapping = {}
    if map_file is not None:
        mapping.update(read_renames(map_file))
    mapping.update(parse_renames(map or []))
    params = LoadParams(mapping, mode, skip_invalid, force, allow_duplicates, delimiter, decimal, encoding,
                        date_format, sheet, format)
    with _workspace(ctx, workspace, read_only=False) as ws:
        with progress(f"loading {table}", total=4) as step:
            def stage(message: str) -> None:
                if message == "stored":  # committed: from here an interruption stores nothing less
                    _DOING["stored"] = True
                step(message)

            report = load_table(ws, table, file, params, progress=stage)
    if json:
        print_json(report.as_dict())
        return
    for w in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}")
    print_table(_load_summary(report), title=f"Loaded {report.source} into {table} ({mode})",
                columns=["", "value"])
    if report.attributes_added:
        err.print(f"Kept extra columns as customer attributes: {', '.join(report.attributes_added)}")


def _load_summary(report) -> list[dict]:
    """What was stored, skipped and normalised, and how the file was read."""
    decimal = {".": "point", ",": "comma", "mixed": "as written per value (both occur)"}.get(report.decimal or "", "")
    rows = [("rows read", f"{report.rows_read:,}"), ("rows stored", f"{report.rows_stored:,}")]
    if report.rows_updated:
        rows.append(("of which updated", f"{report.rows_updated:,}"))
    if report.rows_rejected:
        rows.append(("rows rejected", f"{report.rows_rejected:,} (reasons in {report.rejects_file})"))
    if report.rows_skipped_duplicate:
        rows.append(("rows already stored, skipped", f"{report.rows_skipped_duplicate:,}"))
    for column, n in report.normalised.items():
        if column.endswith("(rounded)"):
            rows.append((column, f"{n:,} values with more than 4 decimals stored rounded to 4"))
        else:
            rows.append((f"{column} normalised", f"{n:,} whole-number floats such as 17850.0 stored as 17850"))
    renamed = {k: v for k, v in report.columns.items() if k != v}
    if renamed:
        rows.append(("columns renamed", ", ".join(f"{k} → {v}" for k, v in renamed.items())))
    read_as = [x for x in (report.format, report.encoding and f"encoding {report.encoding}",
                           report.sheet and f"sheet {report.sheet}",
                           report.delimiter and f"delimiter {report.delimiter!r}", decimal and f"decimal {decimal}",
                           report.date_format and f"dates {report.date_format}") if x]
    rows.append(("read as", ", ".join(read_as)))
    return [{"": k, "value": v} for k, v in rows]


# ---------------------------------------------------------------------- tables
@app.command()
def tables(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Show what is loaded: rows, customers and date range of each table."""
    from retentio.services.data import describe_tables

    with _workspace(ctx, workspace) as ws:
        rows = [r.as_dict() for r in describe_tables(ws)]
        settings = ws.settings
        engine = ws.engine
    if json:
        print_json(rows)
        return
    print_table(rows, title=f"Workspace tables ({engine}, {settings.timezone}, {settings.currency})",
                columns=["table", "rows", "customers", "from", "to", "source"])


# ---------------------------------------------------------------------- export
@app.command()
def export(
    ctx: typer.Context,
    to: Annotated[Path, typer.Option("--to", help="Folder to write TABLE.parquet / TABLE.csv into")],
    format: Annotated[Literal["parquet", "csv"], typer.Option("--format", help="File format")] = "parquet",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write the canonical tables to files another workspace (e.g. Spark) or tool can read."""
    from retentio.services.data import export_tables

    with _workspace(ctx, workspace) as ws:
        with progress("exporting", total=len(TABLES)) as step:
            written = [{"table": e.table, "path": str(e.path), "rows": e.rows}
                       for e in export_tables(ws, to, format, progress=step)]
    if json:
        print_json(written)
    else:
        print_table(written, title=f"Exported to {to}")


# ---------------------------------------------------------------------- demo
@app.command()
def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=10, help="Number of customers to generate")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data")] = 7,
    csv_dir: Annotated[Optional[Path], typer.Option("--csv-dir", help="Also write the generated CSVs here")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the data of a workspace that already holds some")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Generate a demo business (shop + subscriptions, 3 years), load it, run the whole analysis
    (metrics, cohorts, segments, CLV, churn model) and write the report; prints its path.
    [default workspace: ./retentio-demo]"""
    from retentio.faces.report import build
    from retentio.services.data import DEMO_LOGIN_FILE, DemoParams, prepare_demo
    from retentio.workspace import Workspace

    target = workspace or (ctx.obj or {}).get("workspace") or Path("retentio-demo")
    _DOING["writes"] = True
    with progress("demo", total=36) as step:
        made = prepare_demo(target, DemoParams(customers, seed, csv_dir, force), progress=step)
        with Workspace.open(target) as ws:
            report = build(ws, Path(target) / "report.html", progress=step)
    summary = [t.as_dict() for t in made.tables]
    result = {"workspace": str(made.path), "customers": customers, "seed": seed, "tables": summary,
              "churn_model_version": made.churn_model_version, "playbooks": made.playbooks,
              "report": str(Path(report["report"]).resolve()),
              "web": {"command": f"retentio -w {target} serve", "url": "http://127.0.0.1:8000",
                      "email": made.login[0] if made.login else None,
                      "password": made.login[1] if made.login else None}}
    if csv_dir:
        result["csv_dir"] = str(csv_dir)
    if json:
        print_json(result)
        return
    print_table(summary, title=f"Demo workspace {result['workspace']}",
                columns=["table", "rows", "customers", "from", "to"])
    err.print(f"Workspace ready: [bold]{result['workspace']}[/]  (try: retentio -w {target} churn score --top 10)")
    if made.login:
        err.print(f"Web app: [bold]retentio -w {target} serve[/]  then open http://127.0.0.1:8000 and sign in as "
                  f"[bold]{made.login[0]}[/] with password [bold]{made.login[1]}[/] (also in "
                  f"{Path(target) / DEMO_LOGIN_FILE})", highlight=False, soft_wrap=True)
    err.print(f"{len(made.playbooks)} playbooks written (CSV export; try: retentio -w {target} campaign plan winback)")
    err.print("Report (open it in a browser):")
    print(result["report"])


# ---------------------------------------------------------------------- analytics
ByOpt = Annotated[Optional[str], typer.Option("--by", help="Break down by a customer column, e.g. acquisition_channel")]
PeriodOpt = Annotated[Literal["day", "week", "month", "quarter", "year"], typer.Option(help="Period length")]
UnitOpt = Annotated[Literal["day", "week", "month", "quarter", "year"],
                    typer.Option(help="Time unit (a month is 365.25/12 days)")]
ModelOpt = Annotated[Literal["bgnbd", "mbgnbd", "pareto_nbd"], typer.Option(help="Purchase model (spend: gamma_gamma)")]
WindowOpt = Annotated[Optional[int], typer.Option(min=1, help="Activity window in days [default: the workspace's]",
                                                  show_default=False)]


def _records(df) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


def _metrics_rows(df, keys: list[str], last: int) -> list[dict]:
    """Metrics down, the last periods across: a table a person can read in a terminal."""
    from retentio.analytics.metrics import BENCHMARKS

    recent = df.tail(last)
    rows = []
    for key in keys:
        if key not in df.columns:
            continue
        row = {"metric": key}
        for _, r in recent.iterrows():
            row[r["period_start"][:7] if len(recent) > 1 else r["period_start"]] = r[key]
        row["reference"] = BENCHMARKS.get(key, "")
        rows.append(row)
    return rows


@app.command()
def metrics(
    ctx: typer.Context,
    period: PeriodOpt = "month",
    from_: Annotated[Optional[datetime.date], DayOpt("--from", "First day")] = None,
    to: Annotated[Optional[datetime.date], DayOpt("--to", "Last day")] = None,
    window: WindowOpt = None,
    by: ByOpt = None,
    last: Annotated[int, typer.Option(min=1, help="Periods shown in the terminal table")] = 6,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Retention metrics per period: CRR, churn, new/lost/reactivated, revenue, MRR movements, NPS."""
    from retentio.analytics.metrics import ORDER_KEYS, SUB_KEYS, SURVEY_KEYS
    from retentio.services.retention import MetricsParams, retention_metrics

    with _workspace(ctx, workspace) as ws:
        with progress("metrics"):
            result = retention_metrics(ws, MetricsParams(period, from_, to, window, by))
    df = result.frame
    if json:
        print_json(_records(df))
        return
    keys = ORDER_KEYS + SUB_KEYS + SURVEY_KEYS
    if by:
        latest = df[df.period_start == df[df.complete].period_start.max()] if df.complete.any() else df
        print_table(_records(latest), title=f"Metrics by {by}, {latest.period_start.iloc[0]} ({period})",
                    columns=["group", "customers_start", "customers_new", "customers_end", "crr_pct", "churn_pct",
                             "revenue", "repeat_purchase_rate_pct", *[k for k in ("mrr_end", "nrr_pct", "nps") if k in df]])
    else:
        print_table(_metrics_rows(df, keys, last), title=f"Retention metrics per {period} (last {min(last, len(df))})")
    err.print(f"[dim]{result.definition}. Rates are %; empty = no denominator. "
              f"Full series: --json.[/]")


@app.command()
def cohorts(
    ctx: typer.Context,
    period: Annotated[Literal["week", "month", "quarter"], typer.Option(help="Cohort and offset length")] = "month",
    mode: Annotated[Literal["bounded", "unbounded"], typer.Option(help="bounded (active in that period) or unbounded (that period or later)")] = "bounded",
    source: Annotated[Literal["orders", "subscriptions"], typer.Option(help="What makes a customer active")] = "orders",
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Acquisition cohorts: retention and revenue per customer by months since the first purchase."""
    from retentio.services.retention import CohortParams, cohort_retention

    with _workspace(ctx, workspace) as ws:
        with progress("cohorts"):
            result = cohort_retention(ws, CohortParams(period, mode, source, by))
    df, curve = result.frame, result.average_curve
    if json:
        print_json({"cohorts": _records(df), "average_curve": _records(curve),
                    "period": period, "mode": mode, "source": source})
        return
    from rich.table import Table

    from retentio.faces.output import out

    shown = df if not by else df[df["group"] == df["group"].dropna().iloc[0]]
    offsets = sorted(shown.offset.unique())[:13]
    table = Table(title=f"{mode.capitalize()} retention % by {period} cohort ({source})", header_style="bold")
    table.add_column("cohort")
    table.add_column("size", justify="right")
    for k in offsets:
        table.add_column(f"+{k}", justify="right")
    for cohort, g in shown.groupby("cohort"):
        cells = {int(r.offset): (r.retention_pct, r.complete) for r in g.itertuples()}
        row = [cohort, f"{int(g.cohort_size.iloc[0]):,}"]
        for k in offsets:
            if k not in cells:
                row.append("")
                continue
            pct, complete = cells[k]
            shade = "green" if pct >= 40 else "yellow" if pct >= 20 else "red"
            row.append(f"[{shade}]{pct:.0f}[/]" + ("" if complete else "*"))
        table.add_row(*row)
    avg = ["average", ""] + [f"{curve.set_index('offset').retention_pct.get(k, float('nan')):.0f}" for k in offsets]
    table.add_row(*avg, style="bold")
    out.print(table)
    err.print("[dim]* period not complete when the data end. Full table: --json.[/]")


@app.command()
def segments(
    ctx: typer.Context,
    as_of: Annotated[Optional[datetime.date], DayOpt("--as-of", "Score as of this day [default: the end of the data]")] = None,
    summary: Annotated[bool, typer.Option("--summary", help="Counts, revenue and share per segment")] = False,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """RFM scores and segments per customer (champions, loyal, at risk, ...)."""
    from retentio.services.retention import customer_segments

    with _workspace(ctx, workspace) as ws:
        with progress("segments"):
            result = customer_segments(ws, as_of)
    rows = _records(result.summary if summary or not json else result.customers)
    if json:
        # scores on fixed thresholds (too few customers for quintiles): each row says so
        print_json([r | {"note": result.note} for r in rows] if result.note else rows)
    else:
        print_table(rows, title=f"RFM segments as of {result.as_of}",
                    columns=["segment", "customers", "share_pct", "revenue", "revenue_share_pct", "action"])
        err.print(f"[dim]{result.key_customers:,} key customers; {result.sleeping:,} sleeping "
                  f"(no order for over {result.activity_window_days} days). Per customer: --json.[/]")
    if result.note:
        err.print(f"[yellow]note:[/] {escape(result.note)}", highlight=False, soft_wrap=True)


@app.command()
def lifecycle(
    ctx: typer.Context,
    period: PeriodOpt = "month",
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Lifecycle per period: new, retained, reactivated, dormant customers and the quick ratio."""
    from retentio.services.retention import customer_lifecycle

    with _workspace(ctx, workspace) as ws:
        with progress("lifecycle"):
            df = customer_lifecycle(ws, period, by).frame
    if json:
        print_json(_records(df))
    else:
        print_table(_records(df.tail(12)), title=f"Customer lifecycle per {period}")


@app.command()
def funnel(
    ctx: typer.Context,
    max_orders: Annotated[int, typer.Option(min=1, help="Deepest order number shown")] = 6,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Where customers drop out: 1st → 2nd → 3rd order; trial → paid → renewal."""
    from retentio.services.retention import funnels

    with _workspace(ctx, workspace) as ws:
        with progress("funnel"):
            result = funnels(ws, max_orders)
    orders, subs, worst = result.orders, result.subscriptions, result.largest_drop
    if json:
        print_json({"orders": _records(orders), "subscriptions": _records(subs) if subs is not None else None,
                    "largest_drop": worst.step if worst is not None else None, "note": result.note})
        return
    if result.note:  # subscriptions only, or no completed order: say why there is no order funnel
        err.print(f"[yellow]note:[/] {escape(result.note)}", highlight=False, soft_wrap=True)
    else:
        print_table(_records(orders), title="Repeat-purchase funnel")
    if subs is not None:
        print_table(_records(subs), title="Subscription funnel")
    if worst is not None:
        err.print(f"Most customers are lost before [bold]{worst.step}[/]: {worst.lost:,} "
                  f"({worst.lost_pct:.0f} % of the step before).")
    elif len(orders) == 1:
        err.print("No customer has a second completed order yet.")
    elif len(orders) > 1:
        err.print(f"No customer is lost between order 1 and order {len(orders)}.")


# ---------------------------------------------------------------------- clv
clv_app = typer.Typer(help="Customer lifetime value: fit buy-till-you-die models, predict CLV, validate.",
                      no_args_is_help=True, **HELP)
app.add_typer(clv_app, name="clv")

@clv_app.command("fit")
def clv_fit(
    ctx: typer.Context,
    model: Annotated[Literal["bgnbd", "mbgnbd", "pareto_nbd", "bgbb", "gamma_gamma", "sbg"], typer.Option(help="Model to fit")] = "bgnbd",
    calibration_end: Annotated[Optional[datetime.date], DayOpt("--calibration-end", "Fit on orders up to this day (inclusive)")] = None,
    summary: Annotated[Optional[Path], typer.Option(help="CSV frequency,recency,T (bgbb: n_periods; gamma_gamma: frequency,monetary_value; optional weight) instead of the workspace; its times are in its own unit")] = None,
    survival: Annotated[Optional[Path], typer.Option(help="CSV period,customers[,cohort] for --model sbg")] = None,
    unit: UnitOpt = "month",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Fit a model by maximum likelihood; prints parameters, standard errors, log-likelihood.
    Workspace orders by default; --summary (or --survival for sbg) fits a file instead."""
    from retentio.services.clv import FitParams, fit_model

    params = FitParams(model, calibration_end, unit, summary, survival)
    with progress(f"fitting {model}"):
        if summary is not None or survival is not None or model in ("sbg", "bgbb"):
            fitted = fit_model(None, params)
        else:
            with _workspace(ctx, workspace) as ws:
                fitted = fit_model(ws, params)
    result = fitted.summary
    if json:
        print_json({k: result[k] for k in ("model", "params", "std_errors", "log_likelihood", "n_customers",
                                            "converged")} | {"message": result["message"]})
        return
    rows = [{"parameter": k, "estimate": v, "std_error": result["std_errors"][k]} for k, v in result["params"].items()]
    print_table(rows, title=f"{model}: {int(result['n_customers']):,} customers, LL {result['log_likelihood']:,.1f}")
    if result["converged"]:
        err.print("[green]converged[/]")
    else:
        err.print(f"[red]did not converge:[/] {escape(result['message'])}")


@clv_app.command("predict")
def clv_predict(
    ctx: typer.Context,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Number of units ahead [default: the workspace's clv_horizon_months, 12 unless set]", show_default=False)] = None,
    unit: UnitOpt = "month",
    discount_rate: Annotated[Optional[float], typer.Option("--discount-rate", min=0.0, help="Discount rate per unit [default: the workspace's clv_discount_rate, 1 % a month unless set]", show_default=False)] = None,
    model: ModelOpt = "bgnbd",
    top: Annotated[int, typer.Option(min=1, help="Rows shown in the terminal")] = 15,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Per customer: expected purchases, P(alive), expected spend and discounted CLV."""
    from retentio.analytics.clv.from_orders import unit_days
    from retentio.services.clv import ValueParams, value_customers

    with _workspace(ctx, workspace) as ws:
        with progress("CLV"):
            valued = value_customers(ws, ValueParams(model, unit, horizon, discount_rate))
            values, m = valued.frame, valued.purchase_model
    cols = ["customer_id", "expected_purchases", "p_alive", "expected_spend", "clv"]
    if json:
        print_json(_records(values[cols]))
        return
    print_table(_records(values.sort_values("clv", ascending=False).head(top)[cols]),
                title=f"Top {top} customers by CLV, next {valued.horizon} {unit}s at "
                      f"{valued.discount_rate:.2%} per {unit}")
    err.print(f"Total CLV {values.clv.sum():,.0f} over {len(values):,} customers; "
              f"{unit} = {unit_days(unit):.4g} days; models {m.model_name} + {valued.spend_model.model_name}.")


@clv_app.command("validate")
def clv_validate(
    ctx: typer.Context,
    calibration_end: Annotated[datetime.date, DayOpt("--calibration-end", "Last day of the calibration period")],
    observation_end: Annotated[Optional[datetime.date], DayOpt("--observation-end", "Last day of the holdout [default: the end of the data]")] = None,
    model: ModelOpt = "bgnbd",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Holdout validation: predicted vs actual purchases per calibration frequency, and tracking."""
    import math

    from retentio.services.clv import check_holdout

    with _workspace(ctx, workspace) as ws:
        with progress("validating"):
            check = check_holdout(ws, calibration_end, observation_end, model)
    by, tracking = check.by_frequency, check.tracking
    if json:
        print_json({"model": check.model_summary, "by_frequency": _records(by), "tracking": _records(tracking)})
        return
    print_table(_records(by), title=f"Holdout purchases per customer by calibration frequency ({model})")
    last = tracking.iloc[-1]
    actual, predicted = int(last["actual"]), float(last["predicted"])
    # a percentage only where it means something: a model figure, and actual purchases to compare with
    versus = f" ({100 * (predicted / actual - 1):+.1f} %)" if actual > 0 and math.isfinite(predicted) else ""
    shown = f"{predicted:,.0f}" if math.isfinite(predicted) else "— (the model gives no figure)"
    err.print(f"Cumulative repeat purchases at {last['date']}: actual {actual:,}, model {shown}{versus}.")


@clv_app.command("channels")
def clv_channels(
    ctx: typer.Context,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Units of future value counted [default: the workspace's clv_horizon_months, 12 unless set]", show_default=False)] = None,
    unit: UnitOpt = "month",
    discount_rate: Annotated[Optional[float], typer.Option("--discount-rate", min=0.0, help="Discount rate per unit [default: the workspace's clv_discount_rate, 1 % a month unless set]", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """LTV : CAC and ROMI per acquisition channel (LTV = revenue so far + discounted future CLV)."""
    from retentio.services.clv import ValueParams, value_channels

    with _workspace(ctx, workspace) as ws:
        with progress("channels"):
            channels = value_channels(ws, ValueParams("bgnbd", unit, horizon, discount_rate))
    table = channels.frame
    if json:
        print_json(_records(table))
        return
    print_table(_records(table), title=f"LTV : CAC by acquisition channel, {channels.horizon} {channels.unit}s of "
                                       "future value (healthy ≥ 3)",
                columns=["acquisition_channel", "customers", "cac", "ltv", "ltv_to_cac", "romi_pct", "healthy"])


# ---------------------------------------------------------------------- churn
churn_app = typer.Typer(help="Churn risk: train a calibrated model out of time, score customers with reasons.",
                        no_args_is_help=True, **HELP)
app.add_typer(churn_app, name="churn")

CHURN_KEYS = ("model", "model_name", "warning", "roc_auc", "pr_auc", "brier", "top_decile_lift", "baseline_roc_auc",
              "lightgbm_roc_auc", "logistic_roc_auc", "average_roc_auc", "n_train", "n_test", "n_customers",
              "positive_rate", "label")


@churn_app.command("train")
def churn_train(
    ctx: typer.Context,
    as_of: Annotated[Optional[datetime.date], DayOpt("--as-of", "Evaluate as of this day [default: the end of the data]")] = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Days without activity after the cutoff that count as churn [default: the activity window]", show_default=False)] = None,
    event: Annotated[Optional[str], typer.Option(help="Label churn by an event type instead (e.g. login)")] = None,
    table: Annotated[Optional[Path], typer.Option(help="Train on a snapshot CSV/Parquet (one row per customer) instead of a workspace")] = None,
    label: Annotated[Optional[str], typer.Option(help="With --table: the churn column (1/0, yes/no, true/false)")] = None,
    threads: Annotated[int, typer.Option(help="LightGBM threads (results are deterministic for a given count)")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Train the churn model: stacked cutoffs, calibration on a later slice, out-of-time test
    against recency-only and logistic baselines, backtest; the model is saved in the workspace."""
    from retentio.services.churn import TrainParams, cross_validate_table, train_churn

    if table is not None:
        with progress("5-fold cross-validation"):
            report = cross_validate_table(table, label, threads=threads, seed=seed)
    else:
        with _workspace(ctx, workspace) as ws:
            with progress("churn model", total=None) as step:
                report = train_churn(ws, TrainParams(as_of, horizon, event, threads, seed), progress=step)
    if report.get("warning"):
        # loud and on stderr, so it is seen even when the JSON goes to a file
        err.print(f"[bold red]WARNING: {escape(report['warning'])}[/]")
    if json:
        print_json({k: report[k] for k in CHURN_KEYS if k in report}
                   | {k: report[k] for k in ("candidates", "selection", "backtest_spread", "calibration", "backtest",
                                             "plan") if k in report})
        return
    out.print(f"[bold]Churn label:[/] {escape(report['label']['definition'])}")
    if "candidates" in report:
        out.print(f"[bold]Model:[/] {escape(report['model_name'])} — chosen by {escape(report['selection']['by'])}"
                  + (f", ahead by {report['selection']['margin']:.3f}" if report["selection"]["margin"] is not None
                     else ""))
        rows = [{"model": c["model"] + (" ← chosen" if c["chosen"] else ""),
                 "cal_roc_auc": c["calibration_roc_auc"], "roc_auc": c["roc_auc"]}
                | ({"pr_auc": report["pr_auc"], "brier": report["brier"], "top_decile_lift": report["top_decile_lift"]}
                   if c["chosen"] else {}) for c in report["candidates"]]
    else:
        rows = [{"model": "LightGBM (calibrated)", "roc_auc": report["roc_auc"], "pr_auc": report["pr_auc"],
                 "brier": report["brier"], "top_decile_lift": report["top_decile_lift"]},
                {"model": "logistic regression", "roc_auc": report["logistic_roc_auc"]}]
    rows.append({"model": "recency only" if table is None else "best single column",
                 "roc_auc": report["baseline_roc_auc"]})
    print_table(rows, title=f"Out-of-time test: {report['n_test']:,} customers, churn rate "
                            f"{100 * report['positive_rate']:.1f} % (trained on {report['n_train']:,} rows)",
                columns=["model", "cal_roc_auc", "roc_auc", "pr_auc", "brier", "top_decile_lift"])
    print_table(report["calibration"], title="Calibration (test)")
    if report.get("backtest"):
        print_table(report["backtest"], title="Backtest over the last cutoffs")


@churn_app.command("score")
def churn_score(
    ctx: typer.Context,
    as_of: Annotated[Optional[datetime.date], DayOpt("--as-of", "Score as of this day [default: the end of the data]")] = None,
    top: Annotated[Optional[int], typer.Option(min=1, help="Only the N customers most at risk [default: all]", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Churn probability, 0–100 score, band, value at risk and the top three reasons per customer."""
    from retentio.services.churn import score_churn

    with _workspace(ctx, workspace) as ws:
        with progress("scoring"):
            scores = score_churn(ws, as_of, top)
    if scores.warning:
        err.print(f"[bold red]WARNING: {escape(scores.warning)}[/]")
    frame = scores.frame
    if json:
        print_json(_records(frame))
        return
    rows = _records(frame)
    for r in rows:
        r["reasons"] = "; ".join(r["reasons"])
    print_table(rows, title=f"Churn risk as of {scores.as_of} — {scores.label}; "
                            f"value at risk = probability × {scores.value_basis}")
    if scores.snapshot_id is not None:
        how = "read back from" if scores.snapshot_reused else "saved as"
        err.print(f"[dim]model version {scores.model_version}; scores {how} snapshot {scores.snapshot_id}[/]")


# ---------------------------------------------------------------------- report
@app.command("report")
def report_cmd(
    ctx: typer.Context,
    out_path: Annotated[Path, typer.Option("--out", help="The HTML file to write")] = Path("report.html"),
    period: Annotated[Literal["week", "month", "quarter"], typer.Option(help="Period of the time series")] = "month",
    lang: Annotated[Literal["en", "ru"], typer.Option(help="Language of the report")] = "en",
    png: Annotated[Optional[Path], typer.Option(help="Also export every chart as PNG into this folder")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write the retention report: one self-contained HTML file (works offline) with twelve sections."""
    for target, what in ((out_path.parent, "--out"), (png.parent if png else None, "--png")):
        if target is not None and not target.resolve().is_dir():
            raise RetentioError(f"{what}: the folder {target} does not exist; nothing was written")
    from retentio.faces.report import build

    with _workspace(ctx, workspace) as ws:
        with progress("report", total=13) as step:
            result = build(ws, out_path, period=period, lang=lang, png_dir=png, progress=step)
    if json:
        print_json(result)
        return
    err.print(f"[green]report written:[/] {result['charts']} charts, {result['bytes'] / 1e6:.1f} MB")
    print(Path(result["report"]).resolve())


# the campaign command groups register themselves on ``app``
from retentio.faces import (  # noqa: E402,F401
    cli_access,
    cli_campaigns,
    cli_feedback,
    cli_feedback_tasks,
    cli_feedback_themes,
    cli_loyalty,
    cli_serve,
    cli_surveys,
    cli_uplift,
)


# ---------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Run the CLI: user errors exit 2 without a traceback, internal errors exit 1."""
    args = sys.argv[1:] if argv is None else argv
    wants_json = "--json" in args
    # a fit that stops short is reported by the command itself ("did not converge: ...")
    warnings.filterwarnings("ignore", message=r".* did not converge")
    try:
        code = app(args=args, prog_name="retentio", standalone_mode=False)
        # Not standalone, Typer turns Ctrl-C into a returned 130 (and ctx.exit(n) into n)
        if code == 130:
            raise KeyboardInterrupt
        # The work is done and reported: a late Ctrl-C (while the interpreter shuts down)
        # must not turn it into a failure.
        if argv is None:  # the executable (never a caller's process)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if isinstance(code, int) and code:
            sys.exit(code)
    except RetentioError as exc:
        message = _worded(exc)
        err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        if wants_json:
            payload = {"error": message.splitlines()[0]}
            if isinstance(exc, ValidationError):
                payload["errors"] = [e.as_dict(cli_option) for e in exc.errors]
                payload["total_errors"] = exc.total
            print_json(payload)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except _ClickException as exc:  # usage errors: unknown option, missing argument, ...
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        # Loads store in one transaction, so an interrupted one stored nothing.
        err.print(_interrupted_message(), highlight=False)
        sys.exit(130)
    except OSError as exc:  # a file that cannot be written or read: the user can fix it
        if exc.errno not in _USER_ERRNOS:
            _internal_error()
        err.print(f"[red]error:[/] {escape(exc.filename or '')}: {escape(exc.strerror or str(exc))}",
                  highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # an internal error: say so, keep the details for a bug report
        if _interrupted_query(exc):
            err.print(_interrupted_message(), highlight=False)
            sys.exit(130)
        _internal_error()


def _interrupted_query(exc: BaseException) -> bool:
    """DuckDB stops a running query on Ctrl-C and raises its own error instead."""
    return type(exc).__name__ == "InterruptException" or (
        isinstance(exc, RuntimeError) and "Query interrupted" in str(exc))


#: parameters whose option is not simply --name
_OPTIONS = {"start": "--from", "end": "--to", "mapping": "--map", "fmt": "--format"}


def _worded(exc: RetentioError) -> str:
    """A domain error in the command line's terms: parameters as options, and the command
    that fixes a missing table or model."""
    from retentio.data.errors import InvalidParameter, ModelMissing, NotLoaded

    if isinstance(exc, InvalidParameter):
        return exc.named(_flag(exc.name))
    if isinstance(exc, NotLoaded):
        return f"{exc} (retentio load TABLE FILE)"
    if isinstance(exc, ModelMissing):
        return f"{exc} (retentio {exc.kind} train -w {exc.where})"
    return exc.worded(cli_option)


def _flag(name: str) -> str:
    return _OPTIONS.get(name, "--" + name.replace("_", "-"))


def cli_option(name: str, value: str | None) -> str:
    """A parameter named in a message, as this command line spells it (--decimal ,)."""
    return _flag(name) if value is None else f"{_flag(name)} {value}"


def _internal_error() -> None:
    if os.environ.get("RETENTIO_DEBUG"):
        traceback.print_exc()
    else:
        err.print("[red]internal error[/] (a bug in Retentio): "
                  f"{escape(traceback.format_exc().strip().splitlines()[-1])}\n"
                  "Run again with RETENTIO_DEBUG=1 for the full traceback.", highlight=False)
    sys.exit(1)


#: errors of the file system a user fixes: permission, read-only, no space, missing path
_USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


if __name__ == "__main__":
    # run as a script, this file is __main__ and the command groups registered themselves
    # on the imported retentio.faces.cli: use that one
    from retentio.faces.cli import main as _main

    _main()
