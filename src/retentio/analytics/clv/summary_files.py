"""Fit a CLV model on a summary CSV: what ``retentio clv fit --summary FILE`` (or
``--survival FILE`` for sBG) computes.

:func:`fit_from_files` reads the columns the model needs and fits it by maximum
likelihood (see each model's module for its likelihood and published numbers):

=====================================  =============================================
model                                  file and columns (header names in any case)
=====================================  =============================================
bgnbd, mbgnbd, pareto_nbd              summary: frequency, recency, T [, weight]
bgbb                                   summary: frequency, recency, n_periods [, weight]
gamma_gamma                            summary: frequency, monetary_value [, weight]
sbg                                    survival: period, customers [, cohort]
=====================================  =============================================

frequency is the number of repeat purchases x, recency the time t_x of the last one
since the first, T the time observed since the first (any one time unit); weight, if
present, is how many customers have that row. In the survival file ``customers`` is the
number still active at the start of each ``period`` 0, 1, …, n of a cohort.

The CSV is read by Arrow (multithreaded, no pandas: a million rows in well under a
second with the fit). Every problem is a :class:`RetentioError` that names the file and,
for a bad value, the line (the header is line 1), the column and the value.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from retentio.analytics.clv.identify import NotIdentifiable
from retentio.data.errors import InvalidParameter, RetentioError

#: (required columns, optional columns) per model, in lower case
_COLUMNS = {
    "bgnbd": (("frequency", "recency", "t"), ("weight",)),
    "mbgnbd": (("frequency", "recency", "t"), ("weight",)),
    "pareto_nbd": (("frequency", "recency", "t"), ("weight",)),
    "bgbb": (("frequency", "recency", "n_periods"), ("weight",)),
    "gamma_gamma": (("frequency", "monetary_value"), ("weight",)),
    "sbg": (("period", "customers"), ("cohort",)),
}
#: what Arrow reads as missing in a number column: each is reported as not a number
_NULLS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
          "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"]
#: text columns (everything else is a number)
_TEXT = {"cohort"}


def fit_from_files(name: str, summary: Path | None = None, survival: Path | None = None):
    """Fit the model ``name`` (bgnbd, mbgnbd, pareto_nbd, bgbb, gamma_gamma or sbg) on a
    summary CSV, or for sbg on a survival CSV, and return the fitted model.

    The model is fitted on the columns of the table in the module docstring, by maximum
    likelihood; for sbg each cohort's ``customers``, in order of ``period``, are its
    survivor counts (all rows one cohort without a ``cohort`` column). Raises
    :class:`RetentioError` for a missing file or column, a value that is not a finite
    number (naming file, line, column and value), a row the model cannot take (naming
    its line), or sbg without a survival file.
    """
    from retentio.analytics.clv import make_model

    model = make_model(name)
    required, optional = _COLUMNS[name]
    if name == "sbg":
        if survival is None:
            raise InvalidParameter("survival", None, "a survival file (period,customers[,cohort]) for the sBG model")
        return _fit_survival(model, Path(survival), required, optional)
    if summary is None:
        cols = ",".join(c if c != "t" else "T" for c in required)
        raise InvalidParameter("summary", None, f"a summary file ({cols}[,weight]) for the {name} model"
                               + ("; a survival file is for the sBG model" if survival is not None else ""))
    path = Path(summary)
    table = _read(path, required, optional)
    weight = table.get("weight")
    try:
        if name == "gamma_gamma":
            return model.fit(table["frequency"], table["monetary_value"], weights=weight)
        if name == "bgbb":
            return model.fit(table["frequency"], table["recency"], table["n_periods"], weights=weight)
        return model.fit(table["frequency"], table["recency"], table["t"], weights=weight)
    except NotIdentifiable:
        raise  # about the whole file, not a row of it
    except RetentioError as e:
        where = _first_rejected_row(path, name, table)
        raise RetentioError(f"{path}{where[0] if where else ''}: {e}{where[1] if where else ''}") from None


def _fit_survival(model, path: Path, required, optional):
    table = _read(path, required, optional)
    period, customers = table["period"], table["customers"]
    cohorts = table.get("cohort")
    if cohorts is not None and np.any(cohorts == ""):
        raise _bad_value(path, int(np.argmax(cohorts == "")), "cohort", "", "the cohort's name")
    keys = [""] if cohorts is None else sorted(set(cohorts))
    groups = []
    for key in keys:
        rows = np.arange(len(period)) if cohorts is None else np.flatnonzero(cohorts == key)
        rows = rows[np.argsort(period[rows], kind="stable")]
        p = period[rows]
        label = "" if cohorts is None else f" of cohort {key!r}"
        wrong = np.flatnonzero(p != np.arange(len(p)))
        if len(wrong):
            i = wrong[0]
            line = _physical_line(path, int(rows[i]))
            what = ("appears twice" if i and p[i] == p[i - 1] else f"found where period {i} was expected")
            raise RetentioError(f"{path}, line {line}, column 'period': got {_number(p[i])!r}{label}: "
                                f"{what}; periods must run 0, 1, 2, … with the customers active at the start of each")
        counts = customers[rows]
        # survivors: positive at the start, never more than the period before
        bad: np.ndarray = np.flatnonzero((counts <= 0) | np.r_[False, np.diff(counts) > 0])
        if len(bad):
            i = int(bad[0])
            line = _physical_line(path, int(rows[i]))
            why = ("the cohort must start with a positive count" if i == 0 else
                   f"more than the {_number(counts[i - 1])} of period {i - 1}: survivors never increase")
            raise RetentioError(f"{path}, line {line}, column 'customers': got {_number(counts[i])!r}{label}; {why}")
        groups.append(counts)
    try:
        return model.fit(groups)
    except RetentioError as e:
        raise RetentioError(f"{path}: {e}") from None


# ---------------------------------------------------------------------- reading
def _read(path: Path, required, optional) -> dict[str, np.ndarray]:
    """The required (and present optional) columns as arrays keyed by lower-case name:
    numbers as float64, text columns as arrays of str."""
    import pyarrow as pa
    import pyarrow.csv as pv

    from retentio.analytics.clv._arrow import to_numpy

    header = _header(path)
    names: dict[str, str] = {}
    for raw in header:
        key = raw.strip().lower()
        if key in names and key in (*required, *optional):
            raise RetentioError(f"{path}: the header names column {key!r} twice ({names[key]!r} and {raw!r})")
        names.setdefault(key, raw)
    missing = [c for c in required if c not in names]
    if missing:
        shown = ["T" if c == "t" else c for c in missing]
        hint = "; separate the columns with commas" if len(header) == 1 and ";" in header[0] else ""
        raise RetentioError(f"{path}: missing column(s) {shown}; it has {[h.strip() for h in header]}{hint}")
    wanted = [c for c in (*required, *optional) if c in names]
    types = {names[c]: (pa.string() if c in _TEXT else pa.float64()) for c in wanted}
    try:
        table = pv.read_csv(path, read_options=pv.ReadOptions(use_threads=True, block_size=1 << 22),
                            convert_options=pv.ConvertOptions(include_columns=[names[c] for c in wanted],
                                                              column_types=types, null_values=_NULLS,
                                                              strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise _diagnose(path, header, names, wanted, e) from None
    if table.num_rows == 0:
        raise RetentioError(f"{path}: no rows below the header")
    out = {}
    for c in wanted:
        col = table.column(names[c])
        if c in _TEXT:
            out[c] = np.asarray(col.to_pylist(), dtype=object)
            continue
        values = to_numpy(col) if col.null_count == 0 else None
        if values is None or not np.all(np.isfinite(values)):
            raise _diagnose(path, header, names, wanted, None)
        out[c] = values
    for c in wanted:  # counts of customers cannot be negative
        if c in ("weight", "customers") and np.any(out[c] < 0):
            row = int(np.argmax(out[c] < 0))
            raise _bad_value(path, row, names[c], _number(out[c][row]), "a number ≥ 0")
    return out


def _header(path: Path) -> list[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except FileNotFoundError:
        raise RetentioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RetentioError(f"{path}: is a folder, not a CSV file") from None
    except OSError as e:
        raise RetentioError(f"{path}: cannot be read ({e.strerror})") from None
    if b"\x00" in head:
        raise RetentioError(f"{path}: not a text CSV file (it has NUL bytes; a workbook or binary file?)")
    if not head.strip():
        raise RetentioError(f"{path}: the file is empty; expected a CSV with a header line")
    if b"\n" not in head and len(head) == 1 << 16:
        raise RetentioError(f"{path}: the first line is longer than 64 KiB; is this a CSV file?")
    try:
        first = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RetentioError(f"{path}, line 1: the header is not UTF-8 text; save the file as UTF-8 CSV") from None
    return next(csv.reader(io.StringIO(first)))


def _number(v) -> str:
    """A value as the user would have typed it (1, not 1.0)."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _bad_value(path: Path, row: int, column: str, value: str, expected: str) -> RetentioError:
    line = _physical_line(path, row)
    return RetentioError(f"{path}, line {line}, column {column.strip()!r}: got {value!r}; expected {expected}")


def _diagnose(path: Path, header, names, wanted, error) -> RetentioError:
    """The precise error for a file the fast read refused (or read with missing or
    non-finite numbers): the first bad value, or the first line with a wrong number of
    fields, found by reading the columns again as text. Only runs on failure."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv

    try:
        table = pv.read_csv(path, convert_options=pv.ConvertOptions(
            include_columns=[names[c] for c in wanted], column_types={names[c]: pa.string() for c in wanted},
            null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return _structure_error(path, len(header), error)
    first = None  # (row, column order, column, value, expected)
    nulls = pa.array(_NULLS)
    for order, c in enumerate(wanted):
        if c in _TEXT:
            continue
        text = pc.utf8_trim_whitespace(table.column(names[c]).combine_chunks())
        row = _first_bad_number(text, nulls)
        if row is not None and (first is None or row < first[0]):
            value = table.column(names[c])[row].as_py()
            try:
                expected = "a finite number" if not np.isfinite(float(value)) else "a number"
            except ValueError:
                expected = "a number"
            first = (row, order, names[c], value, expected)
    if first is None:
        return RetentioError(f"{path}: could not be read as CSV ({error})")
    row, _, column, value, expected = first
    return _bad_value(path, row, column, value, expected)


def _first_bad_number(text, nulls) -> int | None:
    """Index of the first value that is missing, not a number or not finite: the whole
    column is checked at once, then halves of it until one value is left (O(n log n)
    only on failure)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def bad(part) -> bool:
        if len(part) == 0:
            return False
        if pc.any(pc.is_in(part, value_set=nulls)).as_py():
            return True
        try:
            numbers = pc.cast(part, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return True
        return not pc.all(pc.is_finite(numbers)).as_py()

    if not bad(text):
        return None
    lo, hi = 0, len(text)  # the first bad value is in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bad(text.slice(lo, mid - lo)):
            hi = mid
        else:
            lo = mid
    return lo


def _structure_error(path: Path, n_fields: int, error) -> RetentioError:
    """The first line whose number of fields differs from the header's, or Arrow's message."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader, None)
            start = reader.line_num + 1
            for fields in reader:
                if fields and len(fields) != n_fields:
                    return RetentioError(f"{path}, line {start}: {len(fields)} field(s) where the header has "
                                         f"{n_fields}: {','.join(fields)[:80]!r}")
                start = reader.line_num + 1
    except UnicodeDecodeError:
        return RetentioError(f"{path}: not UTF-8 text; save it as UTF-8 CSV")
    except csv.Error as e:
        return RetentioError(f"{path}, line {reader.line_num}: {e}")
    return RetentioError(f"{path}: could not be read as CSV ({error})")


def _physical_line(path: Path, row: int) -> int:
    """The line (1-based, header = line 1) on which data row ``row`` (0-based) starts, as
    an editor shows it: blank lines, which the reader skips, and line breaks inside
    quoted fields are counted. Only called to report an error."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        next(reader, None)
        start, seen = reader.line_num + 1, -1
        for fields in reader:
            if fields:
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1
    return row + 2  # pragma: no cover - the row was read, so it exists


# ---------------------------------------------------------------------- rows a model refuses
def _first_rejected_row(path: Path, name: str, table: dict[str, np.ndarray]) -> tuple[str, str] | None:
    """(", line N", " (its values)") for the first row that breaks the model's input rules
    (the model's own message says which rule), or None when the problem is not one row's."""
    x = table["frequency"]
    with np.errstate(invalid="ignore"):
        if name == "gamma_gamma":
            columns: tuple[str, ...] = ("frequency", "monetary_value")
            bad = (x > 0) & (table["monetary_value"] <= 0)
        elif name == "bgbb":
            columns = ("frequency", "recency", "n_periods")
            t_x, n = table["recency"], table["n_periods"]
            bad = (x > t_x) | (t_x > n) | (x < 0) | ((x == 0) & (t_x != 0))
        else:
            columns = ("frequency", "recency", "t")
            t_x, T = table["recency"], table["t"]
            bad = (x < 0) | (np.round(x) != x) | (t_x < 0) | (T < 0) | (t_x > T + 1e-9) | ((x == 0) & (t_x > 0))
    rows = np.flatnonzero(bad)
    if not len(rows):
        return None
    row = int(rows[0])
    values = ", ".join(f"{'T' if c == 't' else c} {_number(table[c][row])}" for c in columns)
    return f", line {_physical_line(path, row)}", f" (got {values})"
