"""Errors a user can fix. Faces print them without a traceback and exit with status 2."""

from __future__ import annotations

from dataclasses import dataclass


class RetentioError(Exception):
    """Bad input or usage: the message says what is wrong and how to fix it."""


class InvalidParameter(RetentioError):
    """A use case was given a parameter value it cannot take. The message is in domain
    terms; each face words the parameter its own way (:meth:`worded`): the command line
    as its option (``--window``), an API as its field."""

    def __init__(self, name: str, value: object, expected: str):
        self.name, self.value, self.expected = name, value, expected
        super().__init__(self.worded(name))

    def worded(self, parameter: str) -> str:
        if self.value is None:
            return f"{parameter} is missing: expected {self.expected}"
        return f"{parameter} {self.value!r}: expected {self.expected}"


class NotLoaded(RetentioError):
    """An analysis needs a table that holds no rows."""

    def __init__(self, tables: str, needed_by: str):
        self.tables, self.needed_by = tables, needed_by
        super().__init__(f"no {tables} loaded: {needed_by} needs them; load them first")


class ModelMissing(RetentioError):
    """Scoring needs a trained model and the workspace has none."""

    def __init__(self, kind: str, where: object):
        self.kind, self.where = kind, where
        super().__init__(f"no {kind} model in {where}: train one first")


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
