"""The ``retentio`` command line. Thin: every command calls the Python API and prints.

Exit status: 0 ok, 2 bad input or usage, 1 internal error. ``--json`` writes only JSON
to stdout; tables, progress and messages go to the terminal.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

try:  # Typer >= 0.2x vendors Click; older releases depend on it
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException as _ClickException

from retentio import __version__
from retentio.data.errors import RetentioError, ValidationError
from retentio.data.schema import TABLES
from retentio.data.workspace import Workspace, default_path
from retentio.faces.output import err, escape, print_json, print_table, progress

app = typer.Typer(
    name="retentio",
    help="Customer retention analytics and retention marketing on your own data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

WorkspaceOpt = Annotated[
    Optional[Path],
    typer.Option("-w", "--workspace", help="Workspace folder [default: $RETENTIO_WORKSPACE, else the current directory]",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Write JSON to stdout (for scripts).")]


def _workspace(ctx: typer.Context, path: Path | None) -> Workspace:
    return Workspace.open(path or (ctx.obj or {}).get("workspace") or default_path())


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
    currency: Annotated[str, typer.Option(help="Currency of all amounts (ISO 4217)")] = "USD",
    window: Annotated[int, typer.Option(help="Activity window in days (non-contractual 'active')")] = 90,
    engine: Annotated[str, typer.Option(help="duckdb (embedded file) or spark")] = "duckdb",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create a workspace: retentio.toml and, for DuckDB, the embedded database file."""
    target = path or workspace or (ctx.obj or {}).get("workspace") or default_path()
    ws = Workspace.init(target, timezone=timezone, currency=currency, activity_window_days=window, engine=engine)
    info = {"workspace": str(ws.path.resolve()), "engine": ws.engine, "timezone": timezone,
            "currency": currency, "activity_window_days": window}
    ws.close()
    if json:
        print_json(info)
    else:
        err.print(f"[green]Created workspace[/] {info['workspace']} ({engine}, {timezone}, {currency}, window {window} days)")


# ---------------------------------------------------------------------- load
def _parse_map(items: list[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        if "=" not in item:
            raise RetentioError(f"--map takes their_column=our_column, got {item!r}")
        theirs, ours = item.split("=", 1)
        mapping[theirs.strip()] = ours.strip()
    return mapping


@app.command()
def load(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help=f"Canonical table: {', '.join(TABLES)}")],
    file: Annotated[Path, typer.Argument(help="CSV, Parquet (file or folder) or JSON-lines file")],
    map: Annotated[Optional[list[str]], typer.Option("--map", help="Rename a column: their_col=our_col (repeatable)")] = None,
    mode: Annotated[str, typer.Option(help="append (refuse stored ids), replace (the whole table) or upsert (replace matching ids)")] = "append",
    skip_invalid: Annotated[Optional[Path], typer.Option("--skip-invalid", help="Store the valid rows; write rejected rows with reasons to this CSV")] = None,
    delimiter: Annotated[Optional[str], typer.Option(help="CSV delimiter [default: detected]")] = None,
    decimal: Annotated[Optional[str], typer.Option(help="Decimal separator, . or , [default: detected]")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="csv, parquet or jsonl [default: from the file name]")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Validate a file and store it into a canonical table (all or nothing)."""
    with _workspace(ctx, workspace) as ws:
        with progress(f"loading {table}", total=3) as step:
            report = ws.load(table, file, mapping=_parse_map(map or []), mode=mode, skip_invalid=skip_invalid,
                             delimiter=delimiter, decimal=decimal, fmt=format, step=step)
    if json:
        print_json(report.as_dict())
        return
    for w in report.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    err.print(f"[green]Stored[/] {report.rows_stored:,} of {report.rows_read:,} rows into {table} ({mode}).")
    if report.rows_rejected:
        err.print(f"[yellow]Rejected[/] {report.rows_rejected:,} rows, written with their reasons to {report.rejects_file}")
    if report.attributes_added:
        err.print(f"Kept extra columns as customer attributes: {', '.join(report.attributes_added)}")


# ---------------------------------------------------------------------- tables
@app.command()
def tables(ctx: typer.Context, workspace: WorkspaceOpt = None, json: JsonOpt = False) -> None:
    """Show what is loaded: rows, customers and date range of each table."""
    with _workspace(ctx, workspace) as ws:
        rows = ws.summary()
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
    format: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Write the canonical tables to files another workspace (e.g. Spark) or tool can read."""
    with _workspace(ctx, workspace) as ws:
        with progress("exporting", total=len(TABLES)) as step:
            written = ws.export(to, format, step=step)
    if json:
        print_json(written)
    else:
        print_table(written, title=f"Exported to {to}")


# ---------------------------------------------------------------------- demo
@app.command()
def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(help="Number of customers to generate")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data")] = 7,
    csv_dir: Annotated[Optional[Path], typer.Option("--csv-dir", help="Also write the generated CSVs here")] = None,
    workspace: WorkspaceOpt = None,
    json: JsonOpt = False,
) -> None:
    """Generate a demo business (shop + subscriptions, 3 years) and load it into a workspace."""
    from retentio.data.demo import generate

    target = workspace or (ctx.obj or {}).get("workspace") or Path("retentio-demo")
    if customers < 10:
        raise RetentioError("--customers must be at least 10")
    with progress("demo", total=8) as step:
        step("generating")
        data = generate(customers, seed)
        if csv_dir:
            data.write_csv(csv_dir)
        ws = Workspace.init(target, timezone="Europe/Moscow", currency="RUB", exist_ok=True)
        with ws:
            for name, frame in data.tables().items():
                step(f"loading {name}")
                ws.load(name, frame, mode="replace")
            step("summarising")
            summary = ws.summary()
    result = {"workspace": str(Path(target).resolve()), "customers": customers, "seed": seed, "tables": summary}
    if csv_dir:
        result["csv_dir"] = str(csv_dir)
    if json:
        print_json(result)
        return
    print_table(summary, title=f"Demo workspace {result['workspace']}",
                columns=["table", "rows", "customers", "from", "to"])
    err.print(f"Workspace ready: [bold]{result['workspace']}[/]  (try: retentio -w {target} tables)")


# ---------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Run the CLI: user errors exit 2 without a traceback, internal errors exit 1."""
    args = sys.argv[1:] if argv is None else argv
    wants_json = "--json" in args
    try:
        app(args=args, prog_name="retentio", standalone_mode=False)
    except RetentioError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        if wants_json:
            payload = {"error": str(exc).splitlines()[0]}
            if isinstance(exc, ValidationError):
                payload["errors"] = [e.as_dict() for e in exc.errors]
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
        sys.exit(130)
    except Exception:  # an internal error: say so, keep the details for a bug report
        if os.environ.get("RETENTIO_DEBUG"):
            traceback.print_exc()
        else:
            err.print("[red]internal error[/] (a bug in Retentio): "
                      f"{escape(traceback.format_exc().strip().splitlines()[-1])}\n"
                      "Run again with RETENTIO_DEBUG=1 for the full traceback.", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
