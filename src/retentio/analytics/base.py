"""Building blocks shared by the analyses: the canonical selections every metric uses."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import ibis
import pandas as pd

from retentio.data.errors import InvalidParameter

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from retentio.data.workspace import Workspace


def completed_orders(ws: Workspace) -> ir.Table:
    """Orders that count as purchases: status completed (an empty status means completed)."""
    o = ws.table("orders")
    return o.filter(o.status.fill_null("completed") == "completed")


def paid_subscriptions(ws: Workspace) -> ir.Table:
    """Subscriptions that bring revenue: not trials, MRR above zero."""
    s = ws.table("subscriptions")
    return s.filter(~s.is_trial.fill_null(False) & (s.mrr > 0))


def groups(ws: Workspace, by: str | None) -> ir.Table | None:
    """(customer_id, group) for a customer column such as ``acquisition_channel``."""
    if by is None:
        return None
    customers = ws.customers()
    if by not in customers.columns or by == "customer_id":
        options = [c for c in customers.columns if c != "customer_id"]
        raise InvalidParameter("by", by, f"a customer column: {', '.join(options)}")
    return customers.select(gid=customers.customer_id, group=customers[by].cast("string"))


def with_group(t: ir.Table, g: ir.Table | None) -> ir.Table:
    """Attach the customer's group (null when unknown) to rows holding ``customer_id``."""
    if g is None:
        return t
    return t.left_join(g, t.customer_id == g.gid).drop("gid")


def to_float(x: ir.Value) -> ir.Value:
    """Money sums come back as DECIMAL (and as NUMERIC on PostgreSQL): report floats."""
    return x.cast("float64")


def span(ws: Workspace, tables: tuple[str, ...]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last time across the loaded tables (by their time column)."""
    from retentio.data.schema import TABLES

    lo, hi = [], []
    for name in tables:
        if not ws.is_loaded(name):
            continue
        col = TABLES[name].time_column
        t = ws.table(name)
        row = t.aggregate(a=t[col].min(), b=t[col].max()).to_pyarrow().to_pylist()[0]
        if row["a"] is not None:
            lo.append(pd.Timestamp(row["a"]))
            hi.append(pd.Timestamp(row["b"]))
    if not lo:
        return None
    return min(lo), max(hi)


def last_time(ws: Workspace, table: str, needed_by: str) -> pd.Timestamp:
    """The latest time in ``table`` (its time column); :class:`NotLoaded` when it is empty."""
    found = span(ws, (table,))
    if found is None:
        from retentio.data.errors import NotLoaded

        raise NotLoaded(table, needed_by)
    return found[1]


def cached(ws: Workspace, expr: ir.Table) -> contextlib.AbstractContextManager:
    """Materialise an expression used by several queries, where that is safe: on DuckDB a
    temporary table. Spark's cache is lazy and would outlive the temporary views Ibis makes
    for in-memory tables, so there the expression is simply reused (Spark recomputes it)."""
    if ws.engine == "duckdb":
        return expr.cache()
    return contextlib.nullcontext(expr)


def rate(num: pd.Series, den: pd.Series, scale: float = 100.0) -> pd.Series:
    """num / den × scale, null where the denominator is 0 or missing."""
    den = den.astype("float64")
    out = num.astype("float64") * scale / den.where(den != 0)
    return out.astype("float64")


def lit_ts(value: pd.Timestamp) -> ir.Value:
    return ibis.literal(pd.Timestamp(value).to_pydatetime(), type="timestamp")
