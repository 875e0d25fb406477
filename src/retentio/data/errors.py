"""Errors a user can fix. Faces print them without a traceback and exit with status 2."""

from __future__ import annotations

from dataclasses import dataclass


class RetentioError(Exception):
    """Bad input or usage: the message says what is wrong and how to fix it."""


class NotFitted(RetentioError):
    """A model was asked for results before ``fit`` (one error for every model)."""

    def __init__(self, model: object):
        self.model = type(model).__name__
        super().__init__(f"{self.model} is not fitted yet: call fit(...) first")


@dataclass(frozen=True)
class RowError:
    """One invalid value: where it is (file, 1-based line as an editor shows it,
    column), what it is and what was expected."""

    source: str
    line: int | None
    column: str | None
    value: str | None
    expected: str
    #: "line" for text files (an editor's line number), "row" for Parquet and frames
    unit: str = "line"

    def __str__(self) -> str:
        where = [self.source]
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        got = "" if self.value is None else f": got {self.value!r}"
        return f"{', '.join(where)}{got}; expected {self.expected}"

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "expected": self.expected,
            "unit": self.unit,
        }


class ValidationError(RetentioError):
    """A file failed validation; nothing of it was stored."""

    def __init__(self, source: str, errors: list[RowError], total: int | None = None):
        self.source = source
        self.errors = errors
        self.total = total if total is not None else len(errors)
        shown = "\n".join(f"  {e}" for e in errors)
        more = (
            f"\n  ... and {self.total - len(errors)} more"
            if self.total > len(errors)
            else ""
        )
        super().__init__(
            f"{source}: {self.total} invalid value(s); nothing was stored.\n{shown}{more}\n"
            "Fix the file, or store the valid rows with --skip-invalid REJECTS.csv."
        )
