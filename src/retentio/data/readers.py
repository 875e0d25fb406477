"""Reading the files people have: text in any common encoding, and spreadsheets.

DuckDB's CSV reader takes UTF-8 only here (its encodings extension cannot be
installed), and it cannot read workbooks. This module brings both to what the staging
step can use:

* :func:`as_utf8` tells the encoding of a text file — a byte-order mark (UTF-8, UTF-16
  as Excel's "Unicode text" writes it), strict UTF-8, then Windows-1251 (1C and Russian
  Excel) when the non-ASCII characters it gives are Russian letters and typography, then
  what ``charset-normalizer`` finds most plausible — and transcodes anything but plain
  UTF-8 to a temporary UTF-8 file. A file that is not text at all (a workbook, Parquet,
  a PDF, NUL bytes) is refused with what it looks like; bytes that the encoding cannot
  decode are refused naming their line.
* :func:`read_excel` reads one sheet of an ``.xlsx``/``.xlsm``/``.xlsb``/``.xls``/``.ods``
  workbook with ``python-calamine`` (the Rust ``calamine`` reader) into an Arrow table of
  text columns plus the sheet's row numbers. Numbers are written with a decimal point
  (whole numbers without ``.0``, as Excel shows them), date cells in ISO form, booleans
  as true/false. The header is the first row that names most columns, so title rows
  above it ("Выгрузка из 1С") are skipped.
"""

from __future__ import annotations

import codecs
import datetime as dt
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retentio.data.errors import RetentioError, option

_CHUNK = 1 << 22
#: prefix of the staged per-cell "was a typed cell" columns of spreadsheets
TYPED_MASK = "__typed:"
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_SAMPLE = 1 << 20
#: Russian letters and the typography Russian exports carry (№, «», dashes, no-break space)
_WESTERN = set("€‚„…†‡‰‹›‘’“”•–—˜™°«»§©®±·¿¡£¥¢\u00a0")
_RUSSIAN = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ№«»–—…“”„’\u00a0")


@dataclass(frozen=True)
class Utf8Text:
    """A UTF-8 version of a text file: the original when it already was UTF-8 without
    a byte-order mark, else a temporary copy the caller deletes (``temporary``)."""

    path: Path
    #: the encoding the original was read in (a Python codec name: utf-8, utf-8-sig, utf-16, cp1251, ...)
    encoding: str
    temporary: bool


# --------------------------------------------------------------------------- what is this file


def _not_text(path: Path, head: bytes) -> str | None:
    """What the file is when it is clearly not a text file, else None."""
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            names = []
        if any(n.startswith("xl/") for n in names):
            return f"an Excel workbook (.xlsx); give it the .xlsx extension or pass {option('fmt', 'xlsx')}"
        if "content.xml" in names:
            return f"an OpenDocument spreadsheet (.ods); give it the .ods extension or pass {option('fmt', 'ods')}"
        return "a zip archive; unpack it and load the file inside"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return f"an Excel 97-2003 workbook (.xls); give it the .xls extension or pass {option('fmt', 'xls')}"
    if head.startswith(b"PAR1"):
        return f"a Parquet file; give it the .parquet extension or pass {option('fmt', 'parquet')}"
    if head.startswith(b"%PDF"):
        return "a PDF document; export the table from the program that made it as CSV or Excel"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf")):
        return "a compressed archive; unpack it and load the file inside"
    return None


def _bom(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a byte-order mark: mostly ASCII, so every other byte is 0."""
    even, odd = head[0::2], head[1::2]
    if len(head) < 4:
        return None
    if odd.count(0) > 0.7 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.7 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _valid(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _looks_russian(sample: bytes) -> bool:
    """True when cp1251 reads the sample as Russian text: every non-ASCII character a
    Russian letter or Russian typography, and the letters forming words of their own.

    The second test matters because cp1251 maps every byte 0xC0–0xFF to a Cyrillic
    letter, the very range where Latin-1/cp1252 put é, ü, ç: "München" in cp1252 reads
    "Mьnchen", a word mixing scripts, which Russian text almost never has."""
    try:
        text = sample.decode("cp1251")
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ord(ch) > 127]
    if not wide or sum(ch in _RUSSIAN for ch in wide) < 0.95 * len(wide):
        return False
    words = [w for w in re.findall(r"[^\W\d_]+", text) if any(ch in _RUSSIAN for ch in w)]
    mixed = sum(1 for w in words if re.search(r"[A-Za-z]", w))
    return mixed <= 0.05 * len(words)


def _looks_western(sample: bytes) -> bool:
    """True when cp1252 (Windows' Western European, a superset of Latin-1's letters)
    reads the sample as text in a Latin script: every non-ASCII character a Latin letter
    with a diacritic or common typography, inside words written in Latin letters."""
    try:
        text = sample.decode("cp1252")
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ord(ch) > 127]
    if not wide or sum(ch in _WESTERN or ("\u00c0" <= ch <= "\u017f" and ch.isalpha()) for ch in wide) < 0.95 * len(wide):
        return False
    words = [w for w in re.findall(r"[^\W\d_]+", text) if any(ord(ch) > 127 for ch in w)]
    latin = sum(1 for w in words if re.search(r"[A-Za-z]", w))
    return latin >= 0.5 * len(words)


def _mostly_utf8(sample: bytes) -> bool:
    """True when the sample is UTF-8 text with a few broken bytes, rather than text in a
    single-byte encoding: its valid multi-byte UTF-8 sequences outnumber the invalid
    bytes (in cp1251 or Latin-1 text nearly every non-ASCII byte is invalid UTF-8)."""
    valid = len(_UTF8_MULTIBYTE.findall(sample))
    invalid = sample.decode("utf-8", errors="replace").count("\ufffd")
    return valid > 0 and valid >= invalid


def _guess(path: Path, sample: bytes) -> str:
    """The encoding of a file that is not UTF-8 (a UTF-8 file with a few broken bytes is
    refused, naming the line of the first: decoding it otherwise would garble it whole)."""
    if _mostly_utf8(sample):
        _transcode(path, "utf-8", None)  # raises, naming the line
    if _looks_russian(sample) and _valid(path, "cp1251"):
        return "cp1251"
    if _looks_western(sample) and _valid(path, "cp1252"):
        return "cp1252"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is not None and best.encoding not in ("utf_8", "ascii") and _valid(path, best.encoding):
        return best.encoding
    raise RetentioError(
        f"{path}: cannot tell the text encoding (it is not UTF-8, and no other encoding reads it "
        f"cleanly); pass it, e.g. {option('encoding', 'cp1251')} or {option('encoding', 'latin-1')}"
    )


def detect_encoding(path: Path) -> str:
    """The encoding of a text file, or a :class:`RetentioError` saying what the file is."""
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE)
    bom = _bom(sample)
    if bom:
        return bom
    what = _not_text(path, sample[:16])
    if what:
        raise RetentioError(f"{path}: not a text file: this is {what}")
    if b"\x00" in sample[:65536]:
        utf16 = _utf16_without_bom(sample[:65536])
        if utf16:
            return utf16
        raise RetentioError(
            f"{path}: not a text file (it holds binary data, such as NUL bytes); load a CSV, Excel, "
            "Parquet or JSON-lines file"
        )
    if _valid(path, "utf-8"):
        return "utf-8"
    return _guess(path, sample)


# --------------------------------------------------------------------------- transcoding


def _decode_error(path: Path, encoding: str, line: int, bad: bytes) -> RetentioError:
    return RetentioError(
        f"{path}, line {line}: the bytes {bad.hex(' ')} cannot be decoded as {encoding}: the file is in "
        "another encoding (Windows exports are often cp1251, cp1252 or utf-16), or this line is damaged. Pass "
        f"the right encoding, e.g. {option('encoding', 'cp1251')}, leave the encoding out to detect it, or repair "
        "the line"
    )


def as_utf8(path: Path, encoding: str | None = None) -> Utf8Text:
    """The file as UTF-8 text (see the module docstring); ``encoding`` forces one."""
    path = Path(path)
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise RetentioError(f"{option('encoding', repr(encoding))}: unknown encoding; use e.g. utf-8, cp1251, utf-16, "
                                "latin-1") from None
        with path.open("rb") as fh:
            head = fh.read(16)
        what = _not_text(path, head)
        if what:
            raise RetentioError(f"{path}: not a text file: this is {what}")
        if encoding == "utf-8" and head.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        if encoding == "utf-8":
            _transcode(path, encoding, None)  # validates, naming the line of a bad byte
    else:
        encoding = detect_encoding(path)  # "utf-8" only after the whole file decoded cleanly
    if encoding == "utf-8":
        return Utf8Text(path, encoding, temporary=False)
    fd, name = tempfile.mkstemp(prefix="retentio-", suffix=".csv")
    os.close(fd)
    target = Path(name)
    try:
        _transcode(path, encoding, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Utf8Text(target, encoding, temporary=True)


def _transcode(path: Path, encoding: str, target: Path | None) -> None:
    """Decode ``path`` strictly, in chunks; write UTF-8 to ``target`` (or only check)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    newline = "\n"
    lines_before = 0
    out = target.open("w", encoding="utf-8", newline="") if target is not None else None
    try:
        with path.open("rb") as fh:
            while True:
                chunk = fh.read(_CHUNK)
                final = not chunk
                try:
                    text = decoder.decode(chunk, final=final)
                except UnicodeDecodeError as exc:
                    # the line: newlines decoded before this chunk plus those before the bad byte
                    good = exc.object[: max(exc.start, 0)]
                    before = good.decode(encoding, errors="replace").count(newline)
                    raise _decode_error(path, encoding, lines_before + before + 1,
                                        exc.object[exc.start:exc.end]) from None
                lines_before += text.count(newline)
                if out is not None and text:
                    out.write(text)
                if final:
                    break
    finally:
        if out is not None:
            out.close()


# --------------------------------------------------------------------------- spreadsheets


@dataclass
class Sheet:
    """One sheet as text columns plus ``__line`` (the sheet's row numbers)."""

    sheet: str
    header_row: int
    table: Any  # pyarrow.Table
    #: columns whose every value came from a number or date cell (their text is canonical)
    typed_columns: set[str] = field(default_factory=set)
    #: column -> name of a boolean column telling, per row, whether its cell was typed
    #: (for columns that mix number cells with text cells)
    typed_masks: dict[str, str] = field(default_factory=dict)


def _cell_text(value: Any) -> tuple[str | None, bool]:
    """(text, typed): how a cell is staged, and whether it was a typed cell."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, False
    if isinstance(value, bool):
        return ("true" if value else "false"), True
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value)), True  # Excel stores every number as a float; 17850 is shown as 17850
        return repr(value), True
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, dt.datetime):
        return (value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")), True
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat(), True
    if isinstance(value, dt.timedelta):
        return str(value), False
    return str(value), False


def _header_index(rows: list[list[Any]]) -> int | None:
    """The header: the first row (of the first 30 non-empty ones) that fills at least
    half as many cells as the fullest of them, and at least two when any row does."""
    counts = [(i, sum(1 for v in row if v not in (None, ""))) for i, row in enumerate(rows)]
    counts = [(i, n) for i, n in counts if n][:30]
    if not counts:
        return None
    widest = max(n for _, n in counts)
    need = max(math.ceil(widest / 2), min(widest, 2))
    return next(i for i, n in counts if n >= need)


def read_excel(path: Path, sheet: str | None = None) -> Sheet:
    """The sheet ``sheet`` (default: the first) of a workbook; see the module docstring."""
    import pyarrow as pa
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine's own error names the problem (not a workbook, encrypted, ...)
        raise RetentioError(f"{path}: cannot be read as an Excel workbook: {exc}") from None
    names = list(book.sheet_names)
    if not names:
        raise RetentioError(f"{path}: the workbook has no sheets")
    if sheet is None:
        name = names[0]
    elif sheet in names:
        name = sheet
    else:
        raise RetentioError(f"{path}: no sheet named {sheet!r}; the sheets are: {', '.join(names)}")
    try:
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception as exc:
        raise RetentioError(f"{path} [sheet {name}]: cannot be read: {exc}") from None
    where = f"{path} [sheet {name}]"
    h = _header_index(rows)
    if h is None:
        raise RetentioError(f"{where}: the sheet is empty (expected a header row and data rows)")
    header = rows[h]
    width = max(len(r) for r in rows)
    columns: list[str] = []
    keep: list[int] = []
    for j in range(width):
        title, _ = _cell_text(header[j] if j < len(header) else None)
        if title is None:
            if any(j < len(r) and r[j] not in (None, "") for r in rows[h + 1:]):
                title = f"column {_letters(j)}"  # data without a name: kept, and reported as an unknown column
            else:
                continue
        title = title.strip()
        if title in columns:
            raise RetentioError(f"{where}, row {h + 1}: two columns are named {title!r}; rename one of them")
        columns.append(title)
        keep.append(j)
    values: list[list[str | None]] = [[] for _ in keep]
    typed: list[list[bool]] = [[] for _ in keep]
    lines: list[int] = []
    for i in range(h + 1, len(rows)):
        row = rows[i]
        cells = [_cell_text(row[j] if j < len(row) else None) for j in keep]
        if all(text is None for text, _ in cells):
            continue  # blank rows are not data
        lines.append(i + 1)
        for k, (text, is_typed) in enumerate(cells):
            values[k].append(text)
            typed[k].append(is_typed)
    data = {c: pa.array(v, pa.string()) for c, v in zip(columns, values)}
    all_typed, masks = set(), {}
    for c, v, t in zip(columns, values, typed):
        filled = [flag for text, flag in zip(v, t) if text is not None]
        if filled and all(filled):
            all_typed.add(c)
        elif any(filled):  # number cells beside text cells: which is which, per cell
            masks[c] = TYPED_MASK + c
            data[masks[c]] = pa.array(t, pa.bool_())
    data["__line"] = pa.array(lines, pa.int64())
    return Sheet(sheet=name, header_row=h + 1, table=pa.table(data), typed_columns=all_typed, typed_masks=masks)


def _letters(j: int) -> str:
    """Excel's column letters for the 0-based column ``j`` (0 → A, 26 → AA)."""
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s
