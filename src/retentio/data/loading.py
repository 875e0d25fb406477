"""Loading a canonical table into the embedded DuckDB store, validated and atomic.

The input (CSV, Parquet, JSON lines, or a pandas/Polars/Arrow frame) is streamed by
DuckDB into a staging table of text columns, parsed and checked there in SQL — one
flag column per rule — and only then inserted into the store inside one transaction.
Nothing is half-written: a file with errors changes nothing, unless the caller asks to
store the valid rows and write the rejected ones with their reasons (``skip_invalid``).

Line numbers are what an editor shows: the header is line 1, so the first data row of
a CSV is line 2 (a quoted field spanning several lines shifts later rows; the rejects
file carries the row number too). For Parquet and frames positions are 1-based rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from retentio.data.errors import RetentioError, RowError, ValidationError
from retentio.data.schema import SURVEY_SCALES, Column, Kind, TableSchema

MODES = ("append", "replace", "upsert")
MAX_REPORTED_ERRORS = 50

_TS_FORMATS = ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y%m%d"]
_TS_EXPECTED = "a date-time such as 2024-03-01 14:30:00, 2024-03-01T14:30:00+03:00 or 01.03.2024"
_DATE_EXPECTED = "a date such as 2024-03-01 or 01.03.2024"
_BOOL_TRUE = ("true", "t", "1", "yes", "y", "да")
_BOOL_FALSE = ("false", "f", "0", "no", "n", "нет")


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def normalise_name(name: str) -> str:
    """Header matching is forgiving: ' Customer ID ' matches customer_id."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


@dataclass
class LoadReport:
    table: str
    source: str
    mode: str
    rows_read: int = 0
    rows_stored: int = 0
    rows_rejected: int = 0
    rejects_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    attributes_added: list[str] = field(default_factory=list)
    delimiter: str | None = None
    decimal: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class _Check:
    """One validation rule: a SQL condition true for bad rows, the column it concerns,
    the SQL expression of the offending value and what was expected."""

    condition: str
    column: str | None
    value_sql: str | None
    expected: str
    #: SQL computing the expectation per row, when it names something of that row
    expected_sql: str | None = None

    @property
    def expected_expr(self) -> str:
        return self.expected_sql or lit(self.expected)


# --------------------------------------------------------------------------- staging


def _describe_source(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__module__.split('.')[0]} {type(source).__name__}>"


def _stage(
    con: duckdb.DuckDBPyConnection,
    source: Any,
    *,
    delimiter: str | None,
    fmt: str | None,
) -> tuple[str, str, str | None]:
    """Create TEMP TABLE _stage (all text) from the source.

    Returns (source description, position label, detected delimiter).
    """
    con.execute("DROP TABLE IF EXISTS _stage")
    label = "row"
    detected = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise RetentioError(f"{path}: no such file")
        if path.is_file() and path.stat().st_size == 0:
            raise RetentioError(f"{path}: the file is empty (expected a header line and data rows)")
        kind = fmt or _format_of(path)
        if kind == "csv":
            opts = ["header = true", "all_varchar = true", "auto_detect = true"]
            if delimiter:
                opts.append(f"delim = {lit(delimiter)}")
            rel = f"read_csv({lit(str(path))}, {', '.join(opts)})"
            label = "line"
            try:
                sniff = con.execute(f"SELECT Delimiter FROM sniff_csv({lit(str(path))})").fetchone()
                detected = delimiter or (sniff[0] if sniff else None)
            except duckdb.Error:
                detected = delimiter
        elif kind == "parquet":
            glob = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
            rel = f"read_parquet({lit(glob)})"
        elif kind == "jsonl":
            rel = f"read_json({lit(str(path))}, format = 'newline_delimited')"
            label = "line"
        else:
            raise RetentioError(f"{path}: unknown file format {kind!r}; use csv, parquet or jsonl")
        try:
            con.execute(f"CREATE TEMP TABLE _stage AS SELECT * FROM {rel}")
        except duckdb.Error as exc:
            raise RetentioError(f"{path}: cannot be read as {kind}: {str(exc).splitlines()[0]}") from None
    else:
        arrow = _to_arrow(source)
        con.register("_source_frame", arrow)
        try:
            con.execute("CREATE TEMP TABLE _stage AS SELECT * FROM _source_frame")
        finally:
            con.unregister("_source_frame")
    # Every value goes through the same text parser, whatever the source's types, so
    # one set of rules (and messages) applies to CSV, Parquet and frames alike.
    cols = con.execute("SELECT name, type FROM pragma_table_info('_stage')").fetchall()
    if any(t != "VARCHAR" for _, t in cols):
        casts = ", ".join(
            f"CAST({q(n)} AS VARCHAR) AS {q(n)}" if t != "VARCHAR" else q(n) for n, t in cols
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT {casts} FROM _stage")
    return _describe_source(source), label, detected


def _format_of(path: Path) -> str:
    if path.is_dir():
        return "parquet"
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    return "csv"


def _to_arrow(frame: Any):
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    mod = type(frame).__module__
    if mod.startswith("pandas"):
        return pa.Table.from_pandas(frame, preserve_index=False)
    if mod.startswith("polars"):
        return frame.to_arrow()
    if hasattr(frame, "__arrow_c_stream__"):
        return pa.table(frame)
    raise RetentioError(
        f"cannot load a {type(frame).__name__}: pass a file path, or a pandas, Polars or Arrow table"
    )


# --------------------------------------------------------------------------- parsing


def _number_sql(raw: str, decimal: str) -> str:
    """Text → normalised number text: spaces (also non-breaking) removed, the decimal
    separator made a dot and thousands separators dropped."""
    s = f"replace(replace(replace({raw}, ' ', ''), chr(160), ''), chr(8239), '')"
    if decimal == ",":
        return f"replace(replace({s}, '.', ''), ',', '.')"
    return f"replace({s}, ',', '')"


def _parse_sql(col: Column, raw: str, decimal: str, timezone: str) -> str:
    """SQL that parses the trimmed text ``raw`` into the column's type (NULL if it cannot)."""
    k = col.kind
    if k in (Kind.ID, Kind.STRING):
        return raw
    if k == Kind.MONEY:
        return f"TRY_CAST({_number_sql(raw, decimal)} AS DECIMAL(18,4))"
    if k == Kind.FLOAT:
        return f"TRY_CAST({_number_sql(raw, decimal)} AS DOUBLE)"
    if k == Kind.INT:
        return f"TRY_CAST(TRY_CAST({_number_sql(raw, decimal)} AS DECIMAL(38,6)) AS BIGINT)"
    if k == Kind.BOOL:
        t = ", ".join(lit(v) for v in _BOOL_TRUE)
        f = ", ".join(lit(v) for v in _BOOL_FALSE)
        return f"(CASE WHEN lower({raw}) IN ({t}) THEN TRUE WHEN lower({raw}) IN ({f}) THEN FALSE END)"
    formats = "[" + ", ".join(lit(x) for x in _TS_FORMATS) + "]"
    if k == Kind.TIMESTAMP:
        # Times with an offset are instants: convert them to workspace wall-clock time.
        return (
            f"(CASE WHEN regexp_matches({raw}, '\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?\\s*(Z|[+-]\\d\\d(:?\\d\\d)?)$') "
            f"THEN timezone({lit(timezone)}, TRY_CAST({raw} AS TIMESTAMPTZ)) "
            f"ELSE coalesce(TRY_CAST({raw} AS TIMESTAMP), try_strptime({raw}, {formats})) END)"
        )
    if k == Kind.DATE:
        return f"coalesce(TRY_CAST({raw} AS DATE), CAST(try_strptime({raw}, {formats}) AS DATE))"
    raise AssertionError(k)


def _expected_type(col: Column) -> str:
    return {
        Kind.MONEY: "a number such as 1234.50 (a decimal comma is accepted with --decimal ,)",
        Kind.FLOAT: "a number",
        Kind.INT: "a whole number",
        Kind.BOOL: "true/false, yes/no or 1/0",
        Kind.TIMESTAMP: _TS_EXPECTED,
        Kind.DATE: _DATE_EXPECTED,
    }.get(col.kind, "text")


def _detect_decimal(con: duckdb.DuckDBPyConnection, columns: list[str]) -> str:
    """A decimal comma when numeric columns hold values like 12,50 and none like 12.50."""
    if not columns:
        return "."
    comma = " OR ".join(f"regexp_matches(trim({q(c)}), '^-?\\d+,\\d{{1,4}}$')" for c in columns)
    dot = " OR ".join(f"regexp_matches(trim({q(c)}), '^-?\\d+\\.\\d+$')" for c in columns)
    n_comma, n_dot = con.execute(
        f"SELECT count(*) FILTER (WHERE {comma}), count(*) FILTER (WHERE {dot}) FROM _stage"
    ).fetchone()
    return "," if n_comma > 0 and n_dot == 0 else "."


# --------------------------------------------------------------------------- the load


def load_table(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    source: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    mode: str = "append",
    skip_invalid: str | Path | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    fmt: str | None = None,
    timezone: str = "UTC",
    now: dt.datetime | None = None,
    step: Callable[[str], None] = lambda _msg: None,
    max_errors: int = MAX_REPORTED_ERRORS,
) -> LoadReport:
    """Validate ``source`` against ``schema`` and store it into the table of that name.

    Raises :class:`ValidationError` (nothing stored) when any row is invalid and
    ``skip_invalid`` is not given; otherwise stores the valid rows and writes the
    rejected ones, with a ``reasons`` column, to the ``skip_invalid`` CSV.
    """
    if mode not in MODES:
        raise RetentioError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "upsert" and schema.primary_key is None:
        raise RetentioError(
            f"table {schema.name} has no primary key, so rows cannot be matched for upsert; use append or replace"
        )
    if decimal not in (None, ".", ","):
        raise RetentioError(f"decimal separator must be '.' or ',', got {decimal!r}")

    step("reading")
    name, label, detected_delim = _stage(con, source, delimiter=delimiter, fmt=fmt)
    report = LoadReport(table=schema.name, source=name, mode=mode, delimiter=detected_delim)
    try:
        _validate_and_store(con, schema, report, label, mapping or {}, mode, skip_invalid,
                            decimal, timezone, now, step, max_errors)
    finally:
        con.execute("DROP TABLE IF EXISTS _stage")
        con.execute("DROP TABLE IF EXISTS _typed")
    return report


def _resolve_columns(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    report: LoadReport,
    mapping: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """Map staged column names to canonical ones; returns (canonical → staged, attributes)."""
    staged = [r[0] for r in con.execute("SELECT name FROM pragma_table_info('_stage')").fetchall()]
    mapping_n = {normalise_name(k): v for k, v in mapping.items()}
    unknown_targets = sorted(
        v for v in mapping.values() if v not in schema.names and not schema.keeps_attributes
    )
    if unknown_targets:
        raise RetentioError(
            f"--map names unknown column(s) {unknown_targets} of table {schema.name}; "
            f"its columns are: {', '.join(schema.names)}"
        )
    missing_sources = sorted(k for k in mapping_n if k not in {normalise_name(s) for s in staged})
    if missing_sources:
        raise RetentioError(
            f"{report.source}: --map refers to column(s) {missing_sources} that are not in the file; "
            f"its columns are: {', '.join(staged)}"
        )
    by_canonical: dict[str, str] = {}
    attributes: list[str] = []
    extras: list[str] = []
    for col in staged:
        target = mapping_n.get(normalise_name(col), normalise_name(col))
        if target in schema.names:
            if target in by_canonical:
                raise RetentioError(
                    f"{report.source}: columns {by_canonical[target]!r} and {col!r} both map to {target!r}"
                )
            by_canonical[target] = col
        elif schema.keeps_attributes:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", target):
                target = re.sub(r"[^a-z0-9_]", "_", target) or "attribute"
            attributes.append(target)
            by_canonical[target] = col
        else:
            extras.append(col)
    if extras:
        report.warnings.append(
            f"ignored column(s) not in the {schema.name} table: {', '.join(extras)} "
            f"(map them with --map their_name=canonical_name if they are canonical columns)"
        )
    missing = [c for c in schema.required if c not in by_canonical]
    if missing:
        errors = [
            RowError(report.source, 1 if report.delimiter is not None else None, c, None,
                     f"a column named {c!r} (map yours with --map their_name={c})")
            for c in missing
        ]
        raise ValidationError(report.source, errors)
    return by_canonical, attributes


def _validate_and_store(con, schema, report, label, mapping, mode, skip_invalid,
                        decimal, timezone, now, step, max_errors) -> None:
    step("validating")
    by_canonical, attributes = _resolve_columns(con, schema, report, mapping)
    report.rows_read = con.execute("SELECT count(*) FROM _stage").fetchone()[0]
    if report.rows_read == 0:
        raise RetentioError(f"{report.source}: no data rows (expected a header line and at least one row)")

    numeric = [by_canonical[c.name] for c in schema.columns
               if c.name in by_canonical and c.kind in (Kind.MONEY, Kind.FLOAT, Kind.INT)]
    report.decimal = decimal or _detect_decimal(con, numeric)

    offset = 2 if label == "line" and report.delimiter is not None else 1
    now_local = (now or dt.datetime.now(ZoneInfo(timezone))).astimezone(ZoneInfo(timezone))
    # "In the future" means after the end of today in the workspace's timezone.
    horizon = (now_local.date() + dt.timedelta(days=1)).isoformat()

    selects = [f"rowid + {offset} AS _line"]
    checks: list[_Check] = []
    present = [c for c in schema.columns if c.name in by_canonical]
    for col in present:
        raw_name = f"_raw_{col.name}"
        src = q(by_canonical[col.name])
        selects.append(f"NULLIF(trim({src}), '') AS {q(raw_name)}")
        raw = q(raw_name)
        parsed = _parse_sql(col, raw, report.decimal, timezone)
        if col.choices:
            parsed = f"lower({raw})"
        selects.append(f"{parsed} AS {q(col.name)}")
        v = q(col.name)
        if col.required:
            checks.append(_Check(f"{raw} IS NULL", col.name, None, "a value (it is required)"))
        if col.kind not in (Kind.ID, Kind.STRING):
            checks.append(_Check(f"{raw} IS NOT NULL AND {v} IS NULL", col.name, raw, _expected_type(col)))
        if col.choices:
            checks.append(_Check(
                f"{v} IS NOT NULL AND {v} NOT IN ({', '.join(lit(c) for c in col.choices)})",
                col.name, raw, "one of " + ", ".join(col.choices)))
        if col.minimum is not None:
            checks.append(_Check(f"{v} < {col.minimum}", col.name, raw, f"a value of at least {col.minimum:g}"))
        if col.maximum is not None:
            checks.append(_Check(f"{v} > {col.maximum}", col.name, raw, f"a value of at most {col.maximum:g}"))
        if col.kind in (Kind.TIMESTAMP, Kind.DATE) and not col.future_ok:
            checks.append(_Check(f"{v} >= TIMESTAMP {lit(horizon)}", col.name, raw,
                                 f"a date not in the future (today is {now_local.date().isoformat()})"))
    for attr in attributes:
        selects.append(f"NULLIF(trim({q(by_canonical[attr])}), '') AS {q(attr)}")

    has = set(by_canonical)
    if "amount_not_negative_when_completed" in schema.checks:
        status = "coalesce(status, 'completed')" if "status" in has else "'completed'"
        checks.append(_Check(f"amount < 0 AND {status} = 'completed'", "amount", q("_raw_amount"),
                             "an amount of at least 0 on a completed order (record refunds as status 'returned')"))
    if "ended_after_started" in schema.checks and "ended_at" in has:
        checks.append(_Check("ended_at < started_at", "ended_at", q("_raw_ended_at"),
                             "an end not before started_at"))
    if "resolved_after_opened" in schema.checks and "resolved_at" in has:
        checks.append(_Check("resolved_at < opened_at", "resolved_at", q("_raw_resolved_at"),
                             "a resolution not before opened_at"))
    if "score_in_range" in schema.checks:
        cases = " ".join(f"WHEN kind = {lit(k)} THEN score NOT BETWEEN {lo} AND {hi}"
                         for k, (lo, hi) in SURVEY_SCALES.items())
        scales = ", ".join(f"{k.upper()} {lo}-{hi}" for k, (lo, hi) in SURVEY_SCALES.items())
        checks.append(_Check(f"(CASE {cases} ELSE FALSE END)", "score", q("_raw_score"),
                             f"a score on the scale of its kind ({scales})"))

    pk = schema.primary_key
    extra_cols: list[str] = []
    joins: list[str] = []
    if pk:
        extra_cols.append(f"row_number() OVER (PARTITION BY p.{q(pk)} ORDER BY p._line) AS _dup_rank")
        extra_cols.append(f"min(p._line) OVER (PARTITION BY p.{q(pk)}) AS _dup_first")
        checks.append(_Check(f"{q(pk)} IS NOT NULL AND _dup_rank > 1", pk, q(f"_raw_{pk}"),
                             "a unique id", f"'a unique id ({label} ' || _dup_first || ' has the same one)'"))
        if mode == "append":
            extra_cols.append(f"(s.{q(pk)} IS NOT NULL) AS _stored_dup")
            joins.append(f"LEFT JOIN (SELECT DISTINCT {q(pk)} FROM {q(schema.name)}) s ON s.{q(pk)} = p.{q(pk)}")
            checks.append(_Check("_stored_dup", pk, q(f"_raw_{pk}"),
                                 "an id not already stored (use --mode upsert to replace stored rows)"))
    ref = schema.customer_ref
    if ref and ref in has and _count(con, "customers") > 0:
        extra_cols.append("(p.customer_id IS NOT NULL AND k.customer_id IS NULL) AS _unknown_customer")
        joins.append("LEFT JOIN (SELECT customer_id FROM customers) k ON k.customer_id = p.customer_id")
        checks.append(_Check("_unknown_customer", "customer_id", q("_raw_customer_id"),
                             "a customer_id present in the customers table"))

    flags = [f"({c.condition}) IS TRUE AS _e{i}" for i, c in enumerate(checks)]
    extra = (", " + ", ".join(extra_cols)) if extra_cols else ""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _typed AS
        WITH p AS (SELECT {', '.join(selects)} FROM _stage),
             j AS (SELECT p.*{extra} FROM p {' '.join(joins)})
        SELECT *, {', '.join(flags) if flags else 'FALSE AS _e0'} FROM j"""
    )
    n_checks = max(len(checks), 1)
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE _e{i})" for i in range(n_checks))
        + ", count(*) FILTER (WHERE " + " OR ".join(f"_e{i}" for i in range(n_checks)) + ") FROM _typed"
    ).fetchone()
    bad_rows = counts[-1]
    errors: list[RowError] = []
    for i, c in enumerate(checks):
        if counts[i] and len(errors) < max_errors:
            value = f"CAST({c.value_sql} AS VARCHAR)" if c.value_sql else "NULL"
            expected = c.expected_expr
            rows = con.execute(
                f"SELECT _line, {value}, {expected} FROM _typed WHERE _e{i} ORDER BY _line LIMIT {max_errors - len(errors)}"
            ).fetchall()
            errors.extend(RowError(report.source, line, c.column, val, exp, label) for line, val, exp in rows)
    errors.sort(key=lambda e: (e.line or 0, e.column or ""))
    total_errors = sum(counts[:-1]) if checks else 0

    if bad_rows and skip_invalid is None:
        raise ValidationError(report.source, errors, total_errors)

    any_bad = " OR ".join(f"_e{i}" for i in range(n_checks))
    if bad_rows:
        report.rows_rejected = bad_rows
        report.rejects_file = str(skip_invalid)
        reasons = ", ".join(
            f"CASE WHEN _e{i} THEN {lit((c.column or '') + ': expected ')} || {c.expected_expr} END"
            for i, c in enumerate(checks)
        )
        raw_cols = ", ".join(q(f"_raw_{c.name}") + " AS " + q(c.name) for c in present)
        con.execute(
            f"COPY (SELECT _line AS {q(label)}, {raw_cols}, concat_ws('; ', {reasons}) AS reasons "
            f"FROM _typed WHERE {any_bad} ORDER BY _line) TO {lit(str(skip_invalid))} (HEADER, DELIMITER ',')"
        )

    step("storing")
    target_cols = [c.name for c in present] + attributes
    where = f"WHERE NOT ({any_bad})" if bad_rows else ""
    con.execute("BEGIN TRANSACTION")
    try:
        stored = {r[0] for r in con.execute(
            f"SELECT name FROM pragma_table_info({lit(schema.name)})").fetchall()}
        for attr in attributes:
            if attr not in stored:
                con.execute(f"ALTER TABLE {q(schema.name)} ADD COLUMN {q(attr)} VARCHAR")
                report.attributes_added.append(attr)
        if mode == "replace":
            con.execute(f"DELETE FROM {q(schema.name)}")
        elif mode == "upsert":
            con.execute(
                f"DELETE FROM {q(schema.name)} WHERE {q(pk)} IN (SELECT {q(pk)} FROM _typed {where})"
            )
        cols = ", ".join(q(c) for c in target_cols)
        con.execute(f"INSERT INTO {q(schema.name)} ({cols}) SELECT {cols} FROM _typed {where}")
        report.rows_stored = report.rows_read - bad_rows
        con.execute(
            "INSERT INTO _retentio_loads VALUES (now()::TIMESTAMP, ?, ?, ?, ?, ?, ?)",
            [schema.name, report.source, mode, report.rows_read, report.rows_stored, report.rows_rejected],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]
