"""Staging: any input (CSV in any common encoding, Excel, Parquet, JSON lines, a data
frame) becomes one temporary DuckDB table of text columns plus ``__line``, the place of
each row as the user would look it up.

``__line`` is what an editor shows for text files (the header is line 1, and a quoted
field spanning several lines moves the rows after it), the sheet's row number for Excel
workbooks, and the 1-based row for Parquet and frames. Rows the CSV parser cannot split
into the header's number of fields are not staged; they come back as
:class:`Malformed` rows so the loader can report them (or skip them) with the reason.

DuckDB reads only UTF-8 text here (its encodings extension cannot be installed), so
other encodings are transcoded first (:func:`retentio.data.readers.as_utf8`).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retentio.data.errors import RetentioError, option

if TYPE_CHECKING:
    import duckdb

LINE = "__line"
_DELIMITERS = (",", ";", "\t", "|")
_EXCEL = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Malformed:
    """A CSV line that does not split into the header's fields."""

    line: int
    text: str
    reason: str


@dataclass
class Staged:
    """What staging learned about the input."""

    source: str
    #: "line" (text files), "row" (sheet rows, Parquet and frames)
    unit: str
    fmt: str
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    #: columns that arrived typed (Parquet, frames, Excel numbers): their text is canonical
    typed_columns: set[str] = field(default_factory=set)
    #: column -> staged boolean column: whether that row's cell arrived typed (spreadsheets
    #: whose column mixes number cells and text cells)
    typed_masks: dict[str, str] = field(default_factory=dict)
    malformed: list[Malformed] = field(default_factory=list)
    #: content fingerprint of a file input (SHA-256), size in bytes
    checksum: str | None = None
    size: int | None = None


def format_of(path: Path, fmt: str | None = None) -> str:
    """csv, excel, parquet or jsonl, from ``fmt`` or the file name."""
    if fmt:
        fmt = fmt.lower()
        if fmt in ("xlsx", "xls", "ods", "excel"):
            return "excel"
        if fmt in ("csv", "tsv", "txt"):
            return "csv"
        if fmt in ("json", "jsonl", "ndjson"):
            return "jsonl"
        if fmt == "parquet":
            return "parquet"
        raise RetentioError(f"unknown format {fmt!r}; use csv, xlsx, parquet or jsonl")
    if path.is_dir():
        return "parquet"
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if suffixes and suffixes[-1] in _EXCEL:
        return "excel"
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    return "csv"


def describe(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__module__.split('.')[0]} {type(source).__name__}>"


def fingerprint(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def stage(
    con: duckdb.DuckDBPyConnection,
    source: Any,
    *,
    delimiter: str | None = None,
    fmt: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> Staged:
    """Create ``TEMP TABLE _stage`` (all text, plus ``__line``) from ``source``."""
    import duckdb

    con.execute("DROP TABLE IF EXISTS _stage")
    delimiter = _delimiter(delimiter)
    if not isinstance(source, (str, Path)):
        return _stage_frame(con, source)
    path = Path(source)
    if not path.exists():
        raise RetentioError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise RetentioError(f"{path}: the file is empty (expected a header line and data rows)")
    kind = format_of(path, fmt)
    if sheet is not None and kind != "excel":
        raise RetentioError(f"{path}: a sheet ({option('sheet', repr(sheet))}) applies to Excel workbooks, and this "
                            f"is read as {kind}")
    staged = Staged(source=str(path), unit="row", fmt=kind)
    if path.is_file():
        staged.checksum, staged.size = fingerprint(path)
    if kind == "csv":
        _stage_csv(con, path, staged, delimiter, encoding)
    elif kind == "excel":
        _stage_excel(con, path, staged, sheet)
    else:
        if kind == "parquet":
            glob = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
            rel = f"read_parquet({lit(glob)})"
        else:
            rel = f"read_json({lit(str(path))}, format = 'newline_delimited')"
            staged.unit = "line"
        try:
            con.execute(f"CREATE TEMP TABLE _stage AS SELECT * FROM {rel}")
        except duckdb.Error as exc:
            raise RetentioError(f"{path}: cannot be read as {kind}: {str(exc).splitlines()[0]}") from None
        _texts(con, staged)
    return staged


def _delimiter(delimiter: str | None) -> str | None:
    """The delimiter as one character: ``\\t`` and ``tab`` (as typed in a shell) are a tab."""
    if delimiter is None:
        return None
    named = {"\\t": "\t", "tab": "\t", "\\x09": "\t", "semicolon": ";", "comma": ",", "pipe": "|", "space": " "}
    delimiter = named.get(delimiter.lower(), delimiter)
    if len(delimiter) != 1 or delimiter in ('"', "\n", "\r"):
        raise RetentioError(f"{option('delimiter', repr(delimiter))}: give one character, such as , ; | or \\t (a tab)")
    return delimiter


# --------------------------------------------------------------------------- frames, Excel


def _stage_frame(con: duckdb.DuckDBPyConnection, frame: Any) -> Staged:
    staged = Staged(source=describe(frame), unit="row", fmt="frame")
    arrow = _to_arrow(frame)
    con.register("_source_frame", arrow)
    try:
        con.execute("CREATE TEMP TABLE _stage AS SELECT * FROM _source_frame")
    finally:
        con.unregister("_source_frame")
    _texts(con, staged)
    return staged


def _to_arrow(frame: Any):
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    mod = type(frame).__module__
    if mod.startswith("pandas"):
        return pa.Table.from_pandas(_exact_decimals(frame), preserve_index=False)
    if mod.startswith("polars"):
        return frame.to_arrow()
    if hasattr(frame, "__arrow_c_stream__"):
        return pa.table(frame)
    raise RetentioError(
        f"cannot load a {type(frame).__name__}: pass a file path, or a pandas, Polars or Arrow table"
    )


def _exact_decimals(frame: Any) -> Any:
    """Object columns that mix Decimals (money read back from a workspace) with floats or
    ints (rows added by hand) as Decimals throughout, each number by its shortest repr
    (Arrow refuses the mix)."""
    import decimal

    fixed = None
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        values = column.dropna()
        if values.empty or not any(isinstance(v, decimal.Decimal) for v in values):
            continue
        if all(isinstance(v, decimal.Decimal) for v in values):
            continue
        if fixed is None:
            fixed = frame.copy()
        fixed[name] = [decimal.Decimal(repr(v)) if isinstance(v, (float, int)) and not isinstance(v, bool) else v
                       for v in column]
    return frame if fixed is None else fixed


def _stage_excel(con: duckdb.DuckDBPyConnection, path: Path, staged: Staged, sheet: str | None) -> None:
    from retentio.data.readers import read_excel

    book = read_excel(path, sheet)
    staged.sheet = book.sheet
    if staged.checksum is not None:  # each sheet of a workbook is its own content
        staged.checksum = hashlib.sha256(f"{staged.checksum}:{book.sheet}".encode()).hexdigest()
    staged.typed_columns = set(book.typed_columns)
    staged.typed_masks = dict(book.typed_masks)
    staged.source = f"{path} [sheet {book.sheet}]"
    if book.table.num_rows == 0:
        raise RetentioError(f"{staged.source}: no data rows below the header on row {book.header_row}")
    con.register("_source_sheet", book.table)
    try:
        con.execute("CREATE TEMP TABLE _stage AS SELECT * FROM _source_sheet")
    finally:
        con.unregister("_source_sheet")


def _texts(con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """Number the rows (1-based) and make every value text: the same text parser then
    applies, with one set of rules and messages, whatever the source's types; typed
    columns are remembered (their text is canonical, e.g. a decimal point)."""
    cols = con.execute("SELECT name, type FROM pragma_table_info('_stage')").fetchall()
    staged.typed_columns = {n for n, t in cols if t != "VARCHAR"}
    casts = ", ".join(f"CAST({q(n)} AS VARCHAR) AS {q(n)}" if n in staged.typed_columns else q(n) for n, _ in cols)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT {casts}, CAST(rowid + 1 AS BIGINT) AS {LINE} "
                "FROM _stage ORDER BY rowid")


# --------------------------------------------------------------------------- CSV


def detect_delimiter(path: Path) -> str:
    """The delimiter that splits the first lines into the same, largest number of fields.

    DuckDB's sniffer gives up on a file with one malformed row (and then reads the whole
    line as one column), so the delimiter is chosen here from the header and the first
    rows, and the parser is told.
    """
    with path.open(encoding="utf-8", newline="") as fh:
        head = []
        for line in fh:
            if line.strip():
                head.append(line)
            if len(head) >= 50:
                break
    text = "".join(head)
    best, best_score = ",", (-1, -1)
    for d in _DELIMITERS:
        rows = [r for r in csv.reader(text.splitlines(), delimiter=d) if r]
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = sum(1 for r in rows if len(r) == width)
        score = (consistent, width)
        if score > best_score:
            best, best_score = d, score
    return best


def _stage_csv(con, path: Path, staged: Staged, delimiter: str | None, encoding: str | None) -> None:
    import duckdb

    from retentio.data.readers import as_utf8

    text = as_utf8(path, encoding)
    staged.encoding = text.encoding
    staged.unit = "line"
    try:
        staged.delimiter = delimiter or detect_delimiter(text.path)
        # The header is read here and the columns given, so DuckDB's sniffer (which gives up
        # on a file with a malformed line in its sample) does not run: bad lines are rejects.
        header = _header(text.path, staged.delimiter, path)
        columns = "{" + ", ".join(f"{lit(name)}: 'VARCHAR'" for name in header) + "}"
        opts = ["header = true", "auto_detect = false", f"columns = {columns}", f"delim = {lit(staged.delimiter)}",
                "quote = '\"'", "escape = '\"'", "store_rejects = true",
                "rejects_table = '_stage_rejects'", "rejects_scan = '_stage_scan'"]
        con.execute("DROP TABLE IF EXISTS _stage_rejects")
        con.execute("DROP TABLE IF EXISTS _stage_scan")
        try:
            con.execute(
                f"CREATE TEMP TABLE _stage AS SELECT * FROM read_csv({lit(str(text.path))}, {', '.join(opts)})"
            )
        except duckdb.Error as exc:
            raise RetentioError(f"{path}: cannot be read as CSV: {str(exc).splitlines()[0]}") from None
        rejects = con.execute(
            "SELECT line, error_type, csv_line, error_message FROM _stage_rejects ORDER BY line"
        ).fetchall()
        con.execute("DROP TABLE IF EXISTS _stage_rejects")
        con.execute("DROP TABLE IF EXISTS _stage_scan")
        rows = con.execute("SELECT count(*) FROM _stage").fetchall()[0][0]
        header_fields = len(con.execute("SELECT * FROM _stage LIMIT 0").description)
        _number_lines(con, text.path, staged, rows, rejects, header_fields)
    finally:
        if text.temporary:
            text.path.unlink(missing_ok=True)


def _header(path: Path, delimiter: str, source: Path) -> list[str]:
    """The header's column names (the first non-blank record), made unique and non-empty."""
    with path.open(encoding="utf-8", newline="") as fh:
        try:
            first = next((r for r in csv.reader(fh, delimiter=delimiter, quotechar='"') if r), None)
        except csv.Error as exc:
            raise RetentioError(f"{source}, line 1: the header cannot be read as CSV ({exc})") from None
    if not first:
        raise RetentioError(f"{source}: no header line (expected column names on line 1)")
    names = [n.strip() or f"column {i + 1}" for i, n in enumerate(first)]
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        raise RetentioError(f"{source}, line 1: two columns have the same name {sorted(seen)}; rename one of them")
    return names


def _count_lines(path: Path) -> int:
    n, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (0 if last == b"\n" else 1)


def _number_lines(con, path: Path, staged: Staged, rows: int, rejects: list, header_fields: int) -> None:
    """Attach each staged row's physical line number and describe malformed lines.

    The common file (one line per row, nothing malformed) is numbered from its row
    order. Otherwise one pass of Python's csv reader, which counts physical lines, gives
    each record's first line; DuckDB numbers records, not lines, in its rejects.
    """
    if not rejects and _count_lines(path) == rows + 1:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT *, CAST(rowid + 2 AS BIGINT) AS {LINE} FROM _stage")
        return
    starts: list[int] = []  # the first physical line of each record, header included
    texts: dict[int, str] = {}
    widths: dict[int, int] = {}  # fields of each malformed record, as Python's parser counts them
    bad_records = {int(r[0]) for r in rejects}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=staged.delimiter or ",", quotechar='"', doublequote=True)
        previous = 0
        try:
            for record in reader:
                starts.append(previous + 1)
                if len(starts) in bad_records:
                    texts[len(starts)] = staged.delimiter.join(record) if staged.delimiter else ""
                    widths[len(starts)] = len(record)
                if not record:
                    starts[-1] = -1  # blank line: not a record for DuckDB's row order
                previous = reader.line_num
        except csv.Error:
            starts = []
    # records DuckDB staged = non-blank records after the header that it did not reject
    kept = [line for k, line in enumerate(starts, start=1) if k > 1 and line > 0 and k not in bad_records]
    reported: set[int] = set()
    for rec, error_type, csv_line, message in rejects:
        rec = int(rec)
        if rec in reported:  # DuckDB rejects a record once per missing or extra field
            continue
        reported.add(rec)
        line = starts[rec - 1] if 0 < rec <= len(starts) and starts[rec - 1] > 0 else rec
        staged.malformed.append(Malformed(line, (csv_line or texts.get(rec, ""))[:200],
                                          _malformed_reason(error_type, message, header_fields, widths.get(rec))))
    if len(kept) == rows:
        import pyarrow as pa

        con.register("_lines", pa.table({"_rowid": pa.array(range(rows), pa.int64()),
                                         LINE: pa.array(kept, pa.int64())}))
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT s.*, l.{LINE} FROM "
                        f"(SELECT *, rowid AS _rowid FROM _stage) s JOIN _lines l USING (_rowid) ORDER BY _rowid")
            con.execute("ALTER TABLE _stage DROP COLUMN _rowid")
        finally:
            con.unregister("_lines")
    else:  # the two parsers disagree on this file: number rows by record, and say so
        staged.unit = "record"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT *, CAST(rowid + 2 AS BIGINT) AS {LINE} FROM _stage")


def _malformed_reason(error_type: str, message: str, header_fields: int, width: int | None = None) -> str:
    found = message.rsplit("Found:", 1)[-1].strip() if "Found:" in (message or "") else "?"
    if width is not None:
        found = str(width)
    if error_type == "TOO MANY COLUMNS":
        return (f"{header_fields} fields like the header; found {found} (an extra field: a delimiter "
                "inside a value that is not in quotes?)")
    if error_type == "MISSING COLUMNS":
        return f"{header_fields} fields like the header; found {found} (a missing field)"
    if error_type == "UNQUOTED VALUE":
        return "a quoted value to end before the next delimiter (a stray quote character)"
    return f"a well-formed CSV line ({(message or error_type).splitlines()[0]})"
