"""Message templates: Jinja2 in a sandbox, every variable required.

A playbook's ``[message]`` fields (``subject``, ``text``, ``html``) are Jinja2 templates
compiled in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` — a template cannot
reach Python internals (``__class__``, ``__globals__``, ``mro()``…) nor change the
objects it is given — with :class:`jinja2.StrictUndefined`, so a misspelt or missing
variable is an error instead of an empty string. The HTML field is autoescaped (a
customer's name cannot inject markup); the text fields are not.

Problems are found as early as possible and always before anything is written:

* at compile time, a syntax error, or a variable that is not in the message context
  (:data:`retentio.actions.context.VARIABLES`), names the playbook file, the field and the
  line (of the field and of the file);
* at render time — e.g. ``customer.city`` for a customer without that attribute, or a
  blocked attribute — the same, for the customer concerned. A run renders every message
  before it records any (:func:`retentio.actions.campaigns.record`), so a failing
  template stops the run with nothing half-sent.

Filters: ``money`` (``{{ clv | money }}`` → ``1,234.50 USD`` / ``1 234,50 RUB``), ``date``
(``{{ valid_until | date }}`` → ``17 December 2026`` / ``17 декабря 2026``) and
``first_name`` (the first word of a name, capitalised).

References: Jinja2 documentation, "Sandbox" (https://jinja.palletsprojects.com/en/stable/sandbox/).
"""

from __future__ import annotations

import datetime as dt
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from retentio.actions.context import VARIABLES
from retentio.actions.playbooks import PlaybookError

_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
           "ноября", "декабря"),
}


class TemplateProblem(PlaybookError):
    """A message template that cannot be compiled or rendered: file, field and line."""

    def __init__(self, path: Path | str | None, field: str, message: str, line: int | None = None,
                 file_line: int | None = None):
        self.line, self.file_line = line, file_line
        where = f"[message] {field}"
        if line is not None:
            where += f", line {line}" + (f" (line {file_line} of the file)" if file_line else "")
        super().__init__(path or "<template>", message, where)


def _money(lang: str, currency: str) -> Any:
    def money(value: Any, code: str | None = None) -> str:
        if value is None:
            return ""
        number = f"{float(value):,.2f}"
        if lang == "ru":  # 1 234,50: thin space for thousands, comma for decimals
            number = number.replace(",", "\u202f").replace(".", ",")
        return f"{number} {code or currency}"

    return money


def _date(lang: str) -> Any:
    months = _MONTHS.get(lang, _MONTHS["en"])

    def date(value: Any, fmt: str | None = None) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            value = dt.date.fromisoformat(value[:10])
        if fmt:
            return value.strftime(fmt)
        return f"{value.day} {months[value.month - 1]} {value.year}"

    return date


def _first_name(value: Any) -> str:
    text = str(value or "").strip()
    return text.split()[0].capitalize() if text else ""


def _environment(lang: str, currency: str, html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=html, keep_trailing_newline=True)
    env.filters.update(money=_money(lang, currency), date=_date(lang), first_name=_first_name)
    return env


def _bound_names(tree: nodes.Template) -> set[str]:
    """Names a template defines itself ({% set %}, {% for %}, macros)."""
    names = set()
    for node in tree.find_all(nodes.Name):
        if node.ctx in ("store", "param"):
            names.add(node.name)
    return names


def _line_of(tree: nodes.Template, name: str) -> int | None:
    for node in tree.find_all(nodes.Name):
        if node.name == name and node.ctx == "load":
            return int(node.lineno)
    return None


def _file_line(path: Path | str | None, source: str, line: int | None) -> int | None:
    """The line of the playbook file that holds line ``line`` of template ``source``."""
    if path is None or line is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return None
    lines = source.splitlines()
    if not lines or line > len(lines):
        return None
    anchor = next((x for x in lines if x.strip()), "")
    at = text.find(anchor.strip()) if anchor else -1
    if at < 0:
        return None
    first = text.count("\n", 0, at) + 1
    return first + (line - 1 - lines.index(anchor))


@dataclass
class MessageTemplate:
    """The compiled fields of one playbook's message; :meth:`render` gives each field's text."""

    path: Path | str | None
    sources: dict[str, str]
    compiled: dict[str, jinja2.Template]

    @classmethod
    def compile(cls, path: Path | str | None, fields: dict[str, str], *, lang: str = "en",
                currency: str = "USD") -> MessageTemplate:
        """Compile ``fields`` (name → template source); :class:`TemplateProblem` when one
        does not parse or uses a variable the message context does not have."""
        text_env, html_env = _environment(lang, currency, False), _environment(lang, currency, True)
        compiled = {}
        for name, source in fields.items():
            env = html_env if name == "html" else text_env
            try:
                tree = env.parse(source)
            except jinja2.TemplateSyntaxError as e:
                raise TemplateProblem(path, name, f"template syntax error: {e.message}", e.lineno,
                                      _file_line(path, source, e.lineno)) from None
            unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES) - _bound_names(tree))
            if unknown:
                line = _line_of(tree, unknown[0])
                raise TemplateProblem(path, name, f"unknown variable {unknown[0]!r} (a message knows: "
                                      f"{', '.join(VARIABLES)})", line, _file_line(path, source, line))
            compiled[name] = env.from_string(source)
        return cls(path, dict(fields), compiled)

    def render(self, context: dict[str, Any]) -> dict[str, str]:
        """Every field rendered with ``context``; :class:`TemplateProblem` (naming the
        customer when the context has one) instead of a half-rendered message."""
        out = {}
        for name, template in self.compiled.items():
            try:
                out[name] = template.render(context)
            except Exception as e:  # noqa: BLE001 - whatever a template does wrong, it is the template's problem
                line = _template_line(e)
                who = (context.get("customer") or {}).get("customer_id")
                kind = "blocked by the sandbox" if isinstance(e, SecurityError) else "cannot render"
                raise TemplateProblem(self.path, name, f"{kind}: {e}" + (f" (customer {who})" if who else ""),
                                      line, _file_line(self.path, self.sources[name], line)) from None
        subject = out.get("subject", "")
        if "\n" in subject or "\r" in subject:  # a header is one line (RFC 5322 §2.2)
            who = (context.get("customer") or {}).get("customer_id")
            raise TemplateProblem(self.path, "subject", "a subject must be one line; this one renders with a line "
                                  "break" + (f" (customer {who})" if who else ""))
        return out


def _template_line(error: BaseException) -> int | None:
    """The template line of the innermost template frame of ``error``'s traceback."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line


__all__ = ["MessageTemplate", "TemplateProblem"]
