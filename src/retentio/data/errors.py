"""Errors a user can fix. Faces print them without a traceback and exit with status 2.

Messages are in domain terms. Where a message tells the user to set one of the use
case's parameters, it names it with :func:`option` (a marker such as ``⟨decimal=,⟩``),
and each face words it its own way: Python as ``decimal=','`` (the default ``str``), the
command line as ``--decimal ,`` (:meth:`RetentioError.worded`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_OPTION = re.compile(r"⟨([a-z_]+)(?:=([^⟩]*))?⟩")

#: how a face writes a parameter (name, value or None for a flag)
OptionStyle = Callable[[str, "str | None"], str]


def option(name: str, value: str | None = None) -> str:
    """A parameter named in a message, for each face to word (see the module docstring)."""
    return f"⟨{name}⟩" if value is None else f"⟨{name}={value}⟩"


def python_option(name: str, value: str | None) -> str:
    """A parameter as Python callers write it."""
    if value is None:
        return f"{name}=True"
    if name == "mapping" and "=" in value:
        theirs, ours = value.split("=", 1)
        return f"mapping={{{theirs!r}: {ours!r}}}"
    return f"{name}={value!r}"


def plain_option(name: str, value: str | None) -> str:
    """A parameter in words, for files written for people (the rejects file)."""
    words = name.replace("_", " ")
    return words if value is None else f"{words} {value}"


def render(text: str, style: OptionStyle = python_option) -> str:
    """``text`` with every :func:`option` marker worded by ``style``."""
    return _OPTION.sub(lambda m: style(m.group(1), m.group(2)), text)


class RetentioError(Exception):
    """Bad input or usage: the message says what is wrong and how to fix it."""

    def __str__(self) -> str:
        return render(super().__str__())

    def worded(self, style: OptionStyle) -> str:
        """The message with its parameters worded by a face's ``style``."""
        return render(super().__str__(), style)


class InvalidParameter(RetentioError):
    """A use case was given a parameter value it cannot take. The message is in domain
    terms; each face words the parameter its own way (:meth:`named`): the command line
    as its option (``--window``), an API as its field."""

    def __init__(self, name: str, value: object, expected: str):
        self.name, self.value, self.expected = name, value, expected
        super().__init__(self.named(name))

    def named(self, parameter: str) -> str:
        """The message with the parameter called ``parameter`` (a face's own name for it)."""
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
    #: what was expected, with parameters as :func:`option` markers (see :attr:`expected`)
    expected_text: str
    #: "line" for text files (an editor's line number), "row" for Parquet and frames
    unit: str = "line"

    @property
    def expected(self) -> str:
        """What was expected, worded for Python callers."""
        return render(self.expected_text)

    def __str__(self) -> str:
        return render(self.raw())

    def raw(self) -> str:
        """The text with its parameter markers (see :func:`option`)."""
        where = [self.source]
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        got = "" if self.value is None else f": got {self.value!r}"
        return f"{', '.join(where)}{got}; expected {self.expected_text}"

    def as_dict(self, style: OptionStyle = python_option) -> dict:
        return {
            "source": self.source,
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "expected": render(self.expected_text, style),
            "unit": self.unit,
        }


class ValidationError(RetentioError):
    """A file failed validation; nothing of it was stored."""

    def __init__(self, source: str, errors: list[RowError], total: int | None = None):
        self.source = source
        self.errors = errors
        self.total = total if total is not None else len(errors)
        shown = "\n".join(f"  {e.raw()}" for e in errors)
        more = (
            f"\n  ... and {self.total - len(errors)} more"
            if self.total > len(errors)
            else ""
        )
        super().__init__(
            f"{source}: {self.total} invalid value(s); nothing was stored.\n{shown}{more}\n"
            f"Fix the file, or store the valid rows with {option('skip_invalid', 'REJECTS.csv')}."
        )
