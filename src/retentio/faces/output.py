"""Terminal output shared by the commands: Rich tables and progress on stderr, JSON on stdout."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape  # noqa: F401 - re-exported for the commands
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

#: human output; stdout stays clean for --json
err = Console(stderr=True)
out = Console()


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (NaN becomes null)."""
    sys.stdout.write(json.dumps(_clean(data), default=_default, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (float, decimal.Decimal)):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.2f}"
    return str(value)


def print_table(rows: Sequence[dict], title: str | None = None, columns: Sequence[str] | None = None,
                caption: str | None = None) -> None:
    """Print dict rows as a Rich table on stdout. Cells are literal text, never Rich
    markup: they hold customers' words (comments, ticket topics, notes), and a ``[/]`` or
    ``[link=…]`` in them must show as typed, not break the table or become a link."""
    columns = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title, caption=caption, header_style="bold")
    for i, c in enumerate(columns):
        numeric = any(isinstance(r.get(c), (int, float, decimal.Decimal)) and not isinstance(r.get(c), bool)
                      for r in rows)
        table.add_column(c.replace("_", " "), justify="right" if numeric else "left", no_wrap=i == 0)
    for r in rows:
        table.add_row(*(Text(fmt(r.get(c))) for c in columns))
    out.print(table)


@contextlib.contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Any]:
    """A progress bar on stderr; yields ``step(msg)`` which advances it by one."""
    bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                   TextColumn("{task.fields[stage]}"), TimeElapsedColumn(),
                   console=err, transient=True, disable=not err.is_terminal)
    with bar:
        task = bar.add_task(description, total=total, stage="")

        def step(stage: str) -> None:
            bar.update(task, advance=1, stage=stage)

        yield step
