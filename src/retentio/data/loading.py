"""Loading a canonical table into the embedded DuckDB store, validated and atomic.

The input (CSV in any common encoding, Excel, Parquet, JSON lines, or a pandas/Polars/
Arrow frame) is staged by DuckDB as text (:mod:`retentio.data.staging`), parsed and
checked there in SQL — one flag column per rule — and only then written into the store
inside one transaction. Nothing is half-written: a file with errors changes nothing,
unless the caller asks to store the valid rows and write the rejected ones with their
reasons (``skip_invalid``).

Nothing is changed silently either. Numbers are read exactly as written or refused
(:mod:`retentio.data.numbers`); day/month-ambiguous dates need a stated format; ids
written as integral floats (``17850.0``) are normalised and counted in the report; the
same file loaded twice, or rows already stored in a table without ids, are refused or
skipped and counted; an upsert changes only the columns the file has; a replace that
would keep only a small part of the file needs ``force``.

Line numbers are what an editor shows: the header is line 1, so the first data row of
a CSV is line 2, also after quoted fields that span lines. Excel rows are the sheet's
row numbers; Parquet and frames use 1-based rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from retentio.data.errors import RetentioError, RowError, ValidationError, option, plain_option, render
from retentio.data.numbers import CURRENCY_SIGNS, NumberSQL, currency_tokens
from retentio.data.schema import SURVEY_SCALES, Column, Kind, TableSchema
from retentio.data.staging import LINE, Staged, lit, q, stage

MODES = ("append", "replace", "upsert")
MAX_REPORTED_ERRORS = 50
#: a replace that would keep less than this share of the file's rows needs ``force``
MIN_REPLACE_SHARE = 0.5

_TS_FORMATS = ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y%m%d"]
_TS_EXPECTED = "a date-time such as 2024-03-01 14:30:00, 2024-03-01T14:30:00+03:00 or 01.03.2024"
_DATE_EXPECTED = "a date such as 2024-03-01 or 01.03.2024"
_SLASHED = "^\\d{1,2}[/-]\\d{1,2}[/-]\\d{2,4}(\\D.*)?$"
_BOOL_TRUE = ("true", "t", "1", "yes", "y", "да")
_BOOL_FALSE = ("false", "f", "0", "no", "n", "нет")
_INTEGRAL_FLOAT = "^-?\\d+\\.0+$"

__all__ = ["LoadReport", "load_table", "read_mapping_file", "normalise_name", "q", "lit", "MODES"]


def normalise_name(name: str) -> str:
    """Header matching is forgiving: ' Customer ID ' matches customer_id."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def attribute_name(name: str) -> str:
    """The stored name of an extra customer column: the user's own words, lower-case,
    with runs of spaces or punctuation made one ``_`` (``Город доставки`` →
    ``город_доставки``). Any script is kept; DuckDB quotes identifiers."""
    cleaned = re.sub(r"[^\w]+", "_", normalise_name(name)).strip("_")
    return cleaned or "attribute"


@dataclass
class LoadReport:
    """What a load did: rows read, stored, rejected, skipped and normalised, and how the
    input was read (delimiter, decimal, encoding, sheet)."""

    table: str
    source: str
    mode: str
    rows_read: int = 0
    rows_stored: int = 0
    rows_rejected: int = 0
    #: rows identical to rows already stored (tables without ids), not stored again
    rows_skipped_duplicate: int = 0
    rows_updated: int = 0
    rejects_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    attributes_added: list[str] = field(default_factory=list)
    #: file column -> canonical column, for every column that was stored
    columns: dict[str, str] = field(default_factory=dict)
    #: column -> number of values rewritten (e.g. ids 17850.0 -> 17850)
    normalised: dict[str, int] = field(default_factory=dict)
    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    date_format: str | None = None
    format: str | None = None

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


def read_mapping_file(path: str | Path) -> dict[str, str]:
    """Column renames from a file: TOML (``"Номер заказа" = "order_id"``, at the top or
    under a ``[map]`` table) or plain lines ``their name = our_name`` (``#`` comments)."""
    path = Path(path)
    if not path.is_file():
        raise RetentioError(f"{path}: no such mapping file")
    from retentio.data.readers import detect_encoding

    text = path.read_bytes().decode(detect_encoding(path))  # Notepad may save it as cp1251 or UTF-16
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RetentioError(f"{path}: not valid TOML: {exc}") from None
        data = data.get("map", data)
        bad = [k for k, v in data.items() if not isinstance(v, str)]
        if bad:
            raise RetentioError(f"{path}: each entry must be \"their column\" = \"our_column\"; not so for {bad}")
        return {str(k): v for k, v in data.items()}
    mapping: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise RetentioError(f"{path}, line {n}: expected their_column=our_column, got {line!r}")
        theirs, ours = (part.strip().strip('"') for part in line.split("=", 1))
        mapping[theirs] = ours
    return mapping


# --------------------------------------------------------------------------- parsing


def _date_sql(kind: Kind, raw: str, timezone: str, date_format: str | None, excel: bool) -> str:
    """SQL parsing a date or date-time written in one of the accepted forms (NULL if none)."""
    formats = "[" + ", ".join(lit(x) for x in ([date_format] if date_format else []) + _TS_FORMATS) + "]"
    # Times with an offset are instants: convert them to workspace wall-clock time.
    with_offset = "'\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?\\s*(Z|[+-]\\d\\d(:?\\d\\d)?)$'"
    ts = (f"(CASE WHEN regexp_matches({raw}, {with_offset}) THEN timezone({lit(timezone)}, TRY_CAST({raw} AS TIMESTAMPTZ)) "
          f"ELSE coalesce(TRY_CAST({raw} AS TIMESTAMP), try_strptime({raw}, {formats})) END)")
    if excel:  # a date cell typed as a number: days since 1899-12-30 (Excel's 1900 date system)
        serial = (f"TIMESTAMP '1899-12-30' + to_microseconds(CAST(round(TRY_CAST({raw} AS DOUBLE) * 86400000000) AS BIGINT))")
        ts = f"(CASE WHEN regexp_matches({raw}, '^\\d{{5}}(\\.\\d+)?$') THEN {serial} ELSE {ts} END)"
    return ts if kind == Kind.TIMESTAMP else f"CAST({ts} AS DATE)"


def _expected_type(col: Column, currency: str) -> str:
    return {
        Kind.MONEY: f"a number such as 1234.50, 1,234.50 or 1 234,50 (in {currency} if a currency is written)",
        Kind.FLOAT: "a number",
        Kind.INT: "a whole number",
        Kind.BOOL: "true/false, yes/no or 1/0",
        Kind.TIMESTAMP: _TS_EXPECTED,
        Kind.DATE: _DATE_EXPECTED,
    }.get(col.kind, "text")


def _decide_decimal(con, staged: Staged, numeric: list[str]) -> tuple[str, list[tuple[int, str, str]], bool]:
    """The file's decimal separator from all its numeric text values (module
    :mod:`retentio.data.numbers`): ".", ",", "mixed", or "" when ambiguous (with
    examples of the ambiguous values, and whether the file also mixes both)."""
    text_cols = [c for c in numeric if c not in staged.typed_columns]
    if not text_cols:
        return ".", [], False
    evidence = {c: NumberSQL("NULLIF(trim(" + q(c) + "), '')").evidence() for c in text_cols}
    # a typed cell (a number cell of a workbook) is written with a decimal point: no evidence
    evidence = {c: (f"(CASE WHEN {q(staged.typed_masks[c])} THEN NULL ELSE {e} END)" if c in staged.typed_masks else e)
                for c, e in evidence.items()}
    kinds = ", ".join(f"{kind} AS {q(c)}" for c, kind in evidence.items())
    counts = ", ".join(f"count(*) FILTER (WHERE {q(c)} = {lit(k)})" for k in "pca" for c in text_cols)
    n = len(text_cols)
    totals = con.execute(f"SELECT {counts} FROM (SELECT {kinds} FROM _stage)").fetchall()[0]
    points, commas, ambs = (sum(totals[i * n:(i + 1) * n]) for i in range(3))
    examples = []
    if points and commas and not ambs:
        verdict = "mixed"
    elif not ambs or (points and not commas):
        verdict = "," if commas and not points else "."
    elif commas and not points:
        verdict = ","
    else:
        verdict = ""
        for c, kind in evidence.items():
            examples += con.execute(f"SELECT {LINE}, {lit(c)}, trim({q(c)}) FROM _stage WHERE {kind} = 'a' "
                                    f"ORDER BY {LINE} LIMIT 3").fetchall()
        examples = sorted(examples)[:3]
    return verdict, examples, bool(points and commas)


def _ambiguous_decimal_error(staged: Staged, examples, points_and_commas: bool) -> RetentioError:
    shown = "; ".join(f"{staged.unit} {line}, column {c!r}: {v!r}" for line, c, v in examples)
    why = ("the file writes decimals both with a point and with a comma, so" if points_and_commas
           else "no value in the file shows which is the decimal separator, and")
    return RetentioError(
        f"{staged.source}: cannot tell the decimal separator: {why} values such as {shown} could be read "
        "two ways (1,200 is 1200 with a decimal point and 1.2 with a decimal comma). Nothing was stored. "
        f"Say which it is with {option('decimal', '.')} or {option('decimal', ',')}"
    )


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
    encoding: str | None = None,
    sheet: str | None = None,
    date_format: str | None = None,
    allow_duplicates: bool = False,
    force: bool = False,
    timezone: str = "UTC",
    currency: str = "USD",
    now: dt.datetime | None = None,
    step: Callable[[str], None] = lambda _msg: None,
    max_errors: int = MAX_REPORTED_ERRORS,
    protected: tuple[Path, ...] = (),
) -> LoadReport:
    """Validate ``source`` against ``schema`` and store it into the table of that name.

    Raises :class:`ValidationError` (nothing stored) when any row is invalid and
    ``skip_invalid`` is not given; otherwise stores the valid rows and writes the
    rejected ones, with a ``reasons`` column, to the ``skip_invalid`` CSV. ``protected``
    are files the rejects must never overwrite (the workspace's own).
    """
    if mode not in MODES:
        raise RetentioError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "upsert" and schema.primary_key is None:
        raise RetentioError(
            f"table {schema.name} has no primary key, so rows cannot be matched for upsert; use append or replace"
        )
    if decimal not in (None, ".", ","):
        raise RetentioError(f"decimal separator must be '.' or ',', got {decimal!r}")
    if date_format is not None:
        _check_date_format(con, date_format)
    if skip_invalid is not None:
        _check_rejects_target(Path(skip_invalid), source, protected)

    step("reading")
    staged = stage(con, source, delimiter=delimiter, fmt=fmt, encoding=encoding, sheet=sheet)
    report = LoadReport(table=schema.name, source=staged.source, mode=mode, delimiter=staged.delimiter,
                        encoding=staged.encoding, sheet=staged.sheet, date_format=date_format, format=staged.fmt)
    try:
        _refuse_repeat(con, schema, staged, mode, allow_duplicates)
        _validate_and_store(con, schema, report, staged, mapping or {}, mode, skip_invalid, decimal,
                            date_format, allow_duplicates, force, timezone, currency, now, step, max_errors)
    finally:
        con.execute("DROP TABLE IF EXISTS _stage")
        con.execute("DROP TABLE IF EXISTS _typed")
    return report


def _check_date_format(con, date_format: str) -> None:
    try:
        con.execute("SELECT try_strptime('2024-01-01', ?)", [date_format]).fetchall()
    except duckdb.Error as exc:
        raise RetentioError(f"{option('date_format', repr(date_format))} is not a strptime format such as %d/%m/%Y: "
                            f"{str(exc).splitlines()[0]}") from None
    if "%" not in date_format:
        raise RetentioError(f"{option('date_format', repr(date_format))} is not a strptime format such as %d/%m/%Y")


def _check_rejects_target(target: Path, source: Any, protected: tuple[Path, ...]) -> None:
    """Before any work: the rejects file goes into an existing folder and never over
    the input or the workspace's own files."""
    if not target.parent.exists():
        raise RetentioError(f"{option('skip_invalid', str(target))}: the folder {target.parent} does not exist; "
                            "nothing was stored")
    if target.is_dir():
        raise RetentioError(f"{option('skip_invalid', str(target))}: is a folder; give a file name such as rejects.csv")
    guarded = list(protected)
    if isinstance(source, (str, Path)):
        guarded.append(Path(source))
    for p in guarded:
        if target.exists() and p.exists() and os.path.samefile(target, p) or target.resolve() == p.resolve():
            raise RetentioError(f"{option('skip_invalid', str(target))} would overwrite {p}; write the rejected rows "
                                "to another file")


def _refuse_repeat(con, schema: TableSchema, staged: Staged, mode: str, allow_duplicates: bool) -> None:
    """The same content appended twice would count every row twice (tables without ids)
    or fail on every id: refuse, naming the earlier load."""
    if mode != "append" or allow_duplicates or staged.checksum is None:
        return
    earlier = con.execute(
        "SELECT loaded_at, source, rows_stored FROM _retentio_loads l WHERE table_name = ? AND checksum = ? "
        "AND loaded_at >= coalesce((SELECT max(loaded_at) FROM _retentio_loads "
        "WHERE table_name = l.table_name AND mode = 'replace'), TIMESTAMP '1900-01-01') "
        "ORDER BY loaded_at DESC LIMIT 1",
        [schema.name, staged.checksum],
    ).fetchall()
    if earlier:
        when, src, stored = earlier[0]
        hint = (f"use {option('mode', 'upsert')} to update those rows" if schema.primary_key
                else f"add {option('allow_duplicates')} if you really mean to store every row a second time")
        raise RetentioError(
            f"{staged.source}: the same content was already loaded into {schema.name} on "
            f"{when:%Y-%m-%d %H:%M} from {src} ({stored:,} rows stored); loading it again would count "
            f"those rows twice. Nothing was stored; {hint}."
        )


def _resolve_columns(con, schema: TableSchema, report: LoadReport, staged: Staged,
                     mapping: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Map staged column names to canonical ones; returns (canonical → staged, attributes)."""
    masks = set(staged.typed_masks.values())
    staged_cols = [r[0] for r in con.execute("SELECT name FROM pragma_table_info('_stage')").fetchall()
                   if r[0] != LINE and r[0] not in masks]
    mapping_n = {normalise_name(k): v.strip() for k, v in mapping.items()}
    unknown_targets = sorted(
        v for v in mapping_n.values() if v not in schema.names and not schema.keeps_attributes
    )
    if unknown_targets:
        raise RetentioError(
            f"the column mapping names unknown column(s) {unknown_targets} of table {schema.name}; "
            f"its columns are: {', '.join(schema.names)}"
        )
    missing_sources = sorted(k for k in mapping_n if k not in {normalise_name(s) for s in staged_cols})
    if missing_sources:
        raise RetentioError(
            f"{report.source}: the column mapping refers to column(s) {missing_sources} that are not in the "
            f"file; its columns are: {', '.join(staged_cols)}"
        )
    by_canonical: dict[str, str] = {}
    attributes: list[str] = []
    extras: list[str] = []
    for col in staged_cols:
        target = mapping_n.get(normalise_name(col), normalise_name(col))
        if target not in schema.names and attribute_name(target) in schema.names:
            target = attribute_name(target)  # "City:" or "Customer.ID": the canonical column, written loosely
        if target in schema.names:
            if target in by_canonical:
                raise RetentioError(
                    f"{report.source}: columns {by_canonical[target]!r} and {col!r} both map to {target!r}"
                )
            by_canonical[target] = col
        elif schema.keeps_attributes:
            name = attribute_name(target)
            if name in by_canonical:
                raise RetentioError(
                    f"{report.source}: columns {by_canonical[name]!r} and {col!r} would both be stored as the "
                    f"customer attribute {name!r}; rename one of them (a mapping to another name)"
                )
            attributes.append(name)
            by_canonical[name] = col
        else:
            extras.append(col)
    if extras:
        report.warnings.append(
            f"ignored column(s) not in the {schema.name} table: {', '.join(extras)} "
            f"(map them to canonical columns if that is what they are)"
        )
    missing = [c for c in schema.required if c not in by_canonical]
    if missing:
        header_line = 1 if staged.unit == "line" else None
        errors = [
            RowError(report.source, header_line, c, None,
                     f"a column named {c!r} (map yours with {option('mapping', 'their_name=' + c)}); "
                     f"the columns are: {', '.join(staged_cols)}")
            for c in missing
        ]
        raise ValidationError(report.source, errors)
    report.columns = {by_canonical[c]: c for c in by_canonical}
    return by_canonical, attributes


def _validate_and_store(con, schema, report: LoadReport, staged: Staged, mapping, mode, skip_invalid, decimal,
                        date_format, allow_duplicates, force, timezone, currency, now, step, max_errors) -> None:
    step("validating")
    label = staged.unit
    by_canonical, attributes = _resolve_columns(con, schema, report, staged, mapping)
    report.rows_read = con.execute("SELECT count(*) FROM _stage").fetchall()[0][0] + len(staged.malformed)
    if report.rows_read == 0:
        raise RetentioError(f"{report.source}: no data rows (expected a header line and at least one row)")

    numeric = [by_canonical[c.name] for c in schema.columns
               if c.name in by_canonical and c.kind in (Kind.MONEY, Kind.FLOAT, Kind.INT)]
    if decimal:
        report.decimal = decimal
    else:
        verdict, examples, mixed = _decide_decimal(con, staged, numeric)
        if not verdict:
            raise _ambiguous_decimal_error(staged, examples, mixed)
        report.decimal = verdict
        if verdict == "mixed":
            report.warnings.append("the file writes decimals both with a point and with a comma; "
                                   "each value was read as written")

    now_local = (now or dt.datetime.now(ZoneInfo(timezone))).astimezone(ZoneInfo(timezone))
    # "In the future" means after the end of today in the workspace's timezone.
    horizon = (now_local.date() + dt.timedelta(days=1)).isoformat()
    tokens = currency_tokens(currency)
    known_marks = sorted(set(CURRENCY_SIGNS))
    excel = staged.fmt == "excel"

    selects = [f"{LINE} AS _line"]
    checks: list[_Check] = []
    normalising: list[str] = []
    #: money columns: values written with more than the 4 decimals money is stored with
    rounding: list[str] = []
    present = [c for c in schema.columns if c.name in by_canonical]
    for col in present:
        raw_name = f"_raw_{col.name}"
        src = q(by_canonical[col.name])
        selects.append(f"NULLIF(trim({src}), '') AS {q(raw_name)}")
        raw = q(raw_name)
        v = q(col.name)
        number = NumberSQL(raw)
        col_decimal = "." if by_canonical[col.name] in staged.typed_columns else report.decimal
        if col.kind == Kind.ID:
            parsed = _id_sql(raw)
            normalising.append(col.name)
        elif col.kind == Kind.STRING:
            parsed = raw
        elif col.kind in (Kind.MONEY, Kind.FLOAT, Kind.INT):
            sql_type = {Kind.MONEY: "DECIMAL(18,4)", Kind.FLOAT: "DOUBLE", Kind.INT: "DOUBLE"}[col.kind]
            parsed = number.parsed(col_decimal, sql_type)
            mask = staged.typed_masks.get(by_canonical[col.name])
            if mask and col_decimal != ".":
                parsed = f"(CASE WHEN {q(mask)} THEN {number.value('.', sql_type)} ELSE {parsed} END)"
            if col.kind == Kind.MONEY:
                rounding.append(col.name)
            if col.kind == Kind.INT:
                parsed = f"(CASE WHEN {parsed} = round({parsed}) THEN CAST({parsed} AS BIGINT) END)"
        elif col.kind == Kind.BOOL:
            t = ", ".join(lit(x) for x in _BOOL_TRUE)
            f = ", ".join(lit(x) for x in _BOOL_FALSE)
            parsed = f"(CASE WHEN lower({raw}) IN ({t}) THEN TRUE WHEN lower({raw}) IN ({f}) THEN FALSE END)"
        else:
            parsed = _date_sql(col.kind, raw, timezone, date_format, excel)
        if col.choices:
            parsed = f"lower({raw})"
        selects.append(f"{parsed} AS {v}")
        if col.required:
            checks.append(_Check(f"{raw} IS NULL", col.name, None, "a value (it is required)"))
        if col.kind in (Kind.MONEY, Kind.FLOAT, Kind.INT):
            marks = ", ".join(lit(m) for m in known_marks)
            other_currency = (f"(CASE WHEN NOT {number.has_currency} OR {number.currency_ok(tokens)} THEN FALSE "
                              f"ELSE (lower({number.prefix}) IN ({marks}) OR lower({number.suffix}) IN ({marks}) "
                              f"OR regexp_matches({number.prefix} || {number.suffix}, '^[A-Z]{{3}}$')) END)")
            if col.kind == Kind.MONEY:
                checks.append(_Check(
                    f"(CASE WHEN {raw} IS NULL OR {v} IS NULL THEN FALSE ELSE {other_currency} END)", col.name, raw,
                    f"an amount in {currency}, the workspace's currency (this one names another currency; "
                    "amounts are never converted)"))
                bad_number = (f"(CASE WHEN {raw} IS NULL THEN FALSE WHEN {v} IS NULL THEN TRUE "
                              f"WHEN {number.currency_ok(tokens)} THEN FALSE ELSE NOT {other_currency} END)")
            else:
                bad_number = f"(CASE WHEN {raw} IS NULL THEN FALSE WHEN {v} IS NULL THEN TRUE ELSE {number.has_currency} END)"
            expected = _expected_type(col, currency)
            if col_decimal in (".", ","):
                expected += f" (this file's decimal separator is {col_decimal!r})"
            checks.append(_Check(bad_number, col.name, raw, expected))
        elif col.kind in (Kind.TIMESTAMP, Kind.DATE):
            slashed = f"regexp_matches({raw}, '{_SLASHED}')"
            checks.append(_Check(f"(CASE WHEN {raw} IS NULL OR {v} IS NOT NULL THEN FALSE ELSE NOT {slashed} END)",
                                 col.name, raw, _expected_type(col, currency)))
            checks.append(_Check(
                f"(CASE WHEN {raw} IS NULL OR {v} IS NOT NULL THEN FALSE ELSE {slashed} END)", col.name, raw,
                "a date whose day and month cannot be confused: 03/01/2024 may be 3 January or 1 March. "
                f"Say which with {option('date_format', '%d/%m/%Y')} or {option('date_format', '%m/%d/%Y')}"
                if not date_format else
                f"a date in the format {date_format}"))
        elif col.kind == Kind.BOOL:
            checks.append(_Check(f"{raw} IS NOT NULL AND {v} IS NULL", col.name, raw, _expected_type(col, currency)))
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
    if pk and _has_repeated_ids(con, by_canonical[pk]):
        # Ranking rows per id is the costly part of validation: done only when an id repeats.
        extra_cols.append(f"row_number() OVER (PARTITION BY p.{q(pk)} ORDER BY p._line) AS _dup_rank")
        extra_cols.append(f"min(p._line) OVER (PARTITION BY p.{q(pk)}) AS _dup_first")
        checks.append(_Check(f"{q(pk)} IS NOT NULL AND _dup_rank > 1", pk, q(f"_raw_{pk}"),
                             "a unique id", f"'a unique id ({label} ' || _dup_first || ' has the same one)'"))
    # joins against what is stored are only needed when something is stored
    stored_rows = _count(con, schema.name) if mode == "append" else 0
    if pk:
        if mode == "append" and stored_rows:
            extra_cols.append(f"(s.{q(pk)} IS NOT NULL) AS _stored_dup")
            joins.append(f"LEFT JOIN (SELECT DISTINCT {q(pk)} FROM {q(schema.name)}) s ON s.{q(pk)} = p.{q(pk)}")
            checks.append(_Check("_stored_dup", pk, q(f"_raw_{pk}"),
                                 f"an id not already stored (use {option('mode', 'upsert')} to replace stored rows)"))
    elif mode == "append" and not allow_duplicates and stored_rows:
        # A table without ids: a row equal in every column to a stored row is the same
        # event/answer/ticket loaded again (an overlapping export), not a new one.
        names = [c.name for c in schema.columns]
        on = " AND ".join(f"s.{q(n)} IS NOT DISTINCT FROM " + (f"p.{q(n)}" if n in has else "NULL") for n in names)
        extra_cols.append("(s._stored IS NOT NULL) AS _already_stored")
        joins.append(f"LEFT JOIN (SELECT DISTINCT {', '.join(q(n) for n in names)}, TRUE AS _stored "
                     f"FROM {q(schema.name)}) s ON {on}")
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
    any_bad = " OR ".join(f"_e{i}" for i in range(n_checks))
    norm_counts = [f"count(*) FILTER (WHERE {q('_raw_' + c)} <> {q(c)})" for c in normalising]
    norm_counts += [f"count(*) FILTER (WHERE {q(c)} IS NOT NULL AND regexp_matches({q('_raw_' + c)}, "
                    f"'[.,]\\d{{5,}}(\\D|$)'))" for c in rounding]
    dup_count = [f"count(*) FILTER (WHERE _already_stored AND NOT ({any_bad}))"] if "_already_stored" in extra else []
    counts = con.execute(
        "SELECT " + ", ".join([f"count(*) FILTER (WHERE _e{i})" for i in range(n_checks)]
                              + [f"count(*) FILTER (WHERE {any_bad})"] + norm_counts + dup_count)
        + " FROM _typed"
    ).fetchall()[0]
    per_check = counts[:n_checks]
    bad_rows = counts[n_checks] + len(staged.malformed)
    for name, n in zip(normalising, counts[n_checks + 1:n_checks + 1 + len(normalising)]):
        if n:
            report.normalised[name] = int(n)
            report.warnings.append(f"{n:,} {name} value(s) written as whole-number floats (such as 17850.0) "
                                   f"were stored as whole numbers (17850)")
    first = n_checks + 1 + len(normalising)
    for name, n in zip(rounding, counts[first:first + len(rounding)]):
        if n:
            report.normalised[f"{name} (rounded)"] = int(n)
            report.warnings.append(f"{n:,} {name} value(s) have more than 4 decimals and were stored rounded to "
                                   "4 (money is kept to 1/10,000 of the currency unit)")
    duplicates = int(counts[-1]) if dup_count else 0

    errors: list[RowError] = [RowError(report.source, m.line, None, m.text, m.reason, label)
                              for m in staged.malformed[:max_errors]]
    for i, c in enumerate(checks):
        if per_check[i] and len(errors) < max_errors:
            value = f"CAST({c.value_sql} AS VARCHAR)" if c.value_sql else "NULL"
            rows = con.execute(
                f"SELECT _line, {value}, {c.expected_expr} FROM _typed WHERE _e{i} ORDER BY _line "
                f"LIMIT {max_errors - len(errors)}"
            ).fetchall()
            errors.extend(RowError(report.source, line, c.column, val, exp, label) for line, val, exp in rows)
    errors.sort(key=lambda e: (e.line or 0, e.column or ""))
    total_errors = sum(per_check) + len(staged.malformed) if checks else len(staged.malformed)

    if bad_rows and skip_invalid is None:
        raise ValidationError(report.source, errors, total_errors)

    valid = report.rows_read - bad_rows
    if mode == "replace" and not force and bad_rows and valid < MIN_REPLACE_SHARE * report.rows_read:
        stored_now = _count(con, schema.name)
        raise RetentioError(
            f"{report.source}: only {valid:,} of {report.rows_read:,} rows are valid; replacing {schema.name} "
            f"would delete its {stored_now:,} stored rows and keep {valid:,}. Nothing was stored. Fix the file "
            f"(the first problem: {errors[0] if errors else 'see the rejects'}), or replace anyway with {option('force')}."
        )

    if bad_rows:
        report.rows_rejected = bad_rows
        report.rejects_file = str(skip_invalid)
        _write_rejects(con, checks, present, staged, label, any_bad, Path(skip_invalid))

    step("storing")
    keep = f"NOT ({any_bad})" + (" AND NOT _already_stored" if dup_count else "")
    target_cols = [c.name for c in present] + attributes
    cols = ", ".join(q(c) for c in target_cols)
    committed = False
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
            # Only the columns the file has change; the stored values of the others stay.
            updates = ", ".join(f"{q(c)} = u.{q(c)}" for c in target_cols if c != pk)
            report.rows_updated = con.execute(
                f"SELECT count(*) FROM _typed u JOIN {q(schema.name)} t USING ({q(pk)}) WHERE {keep}"
            ).fetchall()[0][0]
            if updates:
                con.execute(f"UPDATE {q(schema.name)} t SET {updates} FROM (SELECT * FROM _typed WHERE {keep}) u "
                            f"WHERE t.{q(pk)} = u.{q(pk)}")
            keep += f" AND {q(pk)} NOT IN (SELECT {q(pk)} FROM {q(schema.name)})"
        con.execute(f"INSERT INTO {q(schema.name)} ({cols}) SELECT {cols} FROM _typed WHERE {keep} ORDER BY _line")
        report.rows_stored = valid - duplicates
        report.rows_skipped_duplicate = duplicates
        if duplicates:
            report.warnings.append(
                f"{duplicates:,} row(s) are identical to rows already stored in {schema.name} (an overlapping "
                "export?) and were not stored again; allow duplicates to store them anyway")
        con.execute(
            "INSERT INTO _retentio_loads (loaded_at, table_name, source, mode, rows_read, rows_stored, "
            "rows_rejected, checksum, bytes, rows_skipped) VALUES (now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [schema.name, report.source, mode, report.rows_read, report.rows_stored, report.rows_rejected,
             staged.checksum, staged.size, duplicates],
        )
        # Ctrl-C waits until the commit is done and said so: a load is then stored or not,
        # and the caller knows which (never "nothing stored" after a commit).
        with _signals_deferred():
            con.execute("COMMIT")
            committed = True
            step("stored")
    except BaseException:
        if not committed:
            import duckdb

            # an interrupted statement may already have ended the transaction (DuckDB rolls
            # it back itself); then there is nothing left to undo
            with contextlib.suppress(duckdb.TransactionException):
                con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT and SIGTERM (main thread only) until the block ends; a signal that
    arrives meanwhile is delivered right after it."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _write_rejects(con, checks: list[_Check], present: list[Column], staged: Staged, label: str,
                   any_bad: str, target: Path) -> None:
    """The rejected rows with their reasons; malformed lines keep their text."""
    reasons = ", ".join(
        f"CASE WHEN _e{i} THEN {lit((c.column or '') + ': expected ')} || "
        f"{c.expected_sql or lit(render(c.expected, plain_option))} END"
        for i, c in enumerate(checks)
    ) or "NULL"
    raw_cols = ", ".join(q(f"_raw_{c.name}") + " AS " + q(c.name) for c in present)
    query = (f"SELECT _line AS {q(label)}, {raw_cols}, CAST(NULL AS VARCHAR) AS raw_line, "
             f"concat_ws('; ', {reasons}) AS reasons FROM _typed WHERE {any_bad}")
    if staged.malformed:
        import pyarrow as pa

        bad = pa.table({"line": [m.line for m in staged.malformed], "text": [m.text for m in staged.malformed],
                        "reason": [m.reason for m in staged.malformed]})
        con.register("_malformed", bad)
        nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {q(c.name)}" for c in present)
        query += (f" UNION ALL SELECT line, {nulls}, text, 'line: expected ' || reason FROM _malformed")
    try:
        con.execute(f"COPY ({query} ORDER BY 1) TO {lit(str(target))} (HEADER, DELIMITER ',')")
    finally:
        if staged.malformed:
            con.unregister("_malformed")


def _id_sql(raw: str) -> str:
    """An id as stored: Excel and pandas write whole-number ids as floats, and 17850.0 is
    customer 17850."""
    return (f"(CASE WHEN contains({raw}, '.') AND regexp_matches({raw}, '{_INTEGRAL_FLOAT}') "
            f"THEN regexp_replace({raw}, '\\.0+$', '') ELSE {raw} END)")


def _has_repeated_ids(con, column: str) -> bool:
    """Whether any id of the staged file (as it will be stored) occurs twice: one hash
    aggregate, much cheaper than ranking every row."""
    ids = _id_sql(f"NULLIF(trim({q(column)}), '')")
    return bool(con.execute(f"SELECT count(x) <> count(DISTINCT x) FROM (SELECT {ids} AS x FROM _stage)")
                .fetchall()[0][0])


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {q(table)}").fetchall()[0][0]
