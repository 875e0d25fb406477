"""Reading suppression lists: unsubscribes, bounces and complaints exported by an email
or SMS provider, or a plain list of addresses.

Accepted shapes:

* a plain list, one address per line (``#`` comments allowed): every line is a
  ``manual`` suppression (or the ``kind`` the caller gives);
* a CSV file with a header. The address is in ``email``, ``address``, ``phone``,
  ``recipient`` or ``to``; the kind in ``kind``, ``type``, ``event`` or ``reason``, read
  leniently — ``unsubscribe``/``unsubscribed``/``optout``, ``hard_bounce``/``hard``/
  ``bounce`` (+ ``bounce_type`` soft or hard), ``soft_bounce``/``soft``,
  ``complaint``/``spam``/``spamreport``, ``manual``; the time, when given, in
  ``occurred_at``, ``timestamp``, ``date``, ``time`` or ``created_at``.

The channel is ``email`` when the address has an ``@`` and ``sms`` otherwise, unless
given. Anything else — an empty address, an unknown kind, an unreadable time, an email
address that is not one — is refused naming the file, the line and the column, and
nothing is stored.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from retentio.actions.gates import normalize_address
from retentio.data.errors import RetentioError

_ADDRESS = ("email", "address", "phone", "recipient", "to", "email_address")
_KIND = ("kind", "type", "event", "reason")
_TIME = ("occurred_at", "timestamp", "date", "time", "created_at")
_KINDS = {
    "unsubscribe": "unsubscribe", "unsubscribed": "unsubscribe", "optout": "unsubscribe", "opt_out": "unsubscribe",
    "opt-out": "unsubscribe", "hard_bounce": "hard_bounce", "hard": "hard_bounce", "hardbounce": "hard_bounce",
    "bounce": "hard_bounce", "bounced": "hard_bounce", "soft_bounce": "soft_bounce", "soft": "soft_bounce",
    "softbounce": "soft_bounce", "complaint": "complaint", "spam": "complaint", "spamreport": "complaint",
    "spam_report": "complaint", "abuse": "complaint", "manual": "manual",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{5,20}$")


class SuppressionFileError(RetentioError):
    def __init__(self, path: Path, line: int, column: str | None, message: str):
        self.path, self.line, self.column = path, line, column
        super().__init__(f"{path}, line {line}{f', column {column!r}' if column else ''}: {message}")


def _pick(header: Sequence[str], names: tuple[str, ...]) -> str | None:
    lower = {h.strip().lower(): h for h in header}
    return next((lower[n] for n in names if n in lower), None)


def read_suppression_file(path: Path | str, *, channel: str | None = None, kind: str = "manual") -> pd.DataFrame:
    """The entries of a suppression file: columns address, channel, kind, occurred_at."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RetentioError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise RetentioError(f"{path}: not UTF-8 text (byte {e.start})") from None
    lines = text.splitlines()
    first = next((x for x in lines if x.strip() and not x.lstrip().startswith("#")), "")
    rows: list[tuple[int, str, str, str | None, str | None]] = []  # line, address, kind, time, kind column
    if "," in first or ";" in first or "\t" in first:
        dialect = csv.Sniffer().sniff(first, delimiters=",;\t")
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        header = reader.fieldnames or []
        address_col = _pick(header, _ADDRESS)
        if address_col is None:
            raise SuppressionFileError(path, 1, None, f"no address column; expected one of {', '.join(_ADDRESS)} "
                                       f"(the header has {', '.join(header)})")
        kind_col, time_col = _pick(header, _KIND), _pick(header, _TIME)
        bounce_col = _pick(header, ("bounce_type", "bouncetype", "bounce_class"))
        for record in reader:
            line = reader.line_num
            raw_kind = (record.get(kind_col) or "").strip().lower() if kind_col else kind
            if raw_kind in ("bounce", "bounced") and bounce_col and (record.get(bounce_col) or "").strip():
                raw_kind = f"{record[bounce_col].strip().lower()}_bounce"
            rows.append((line, (record.get(address_col) or "").strip(), raw_kind,
                         (record.get(time_col) or "").strip() or None if time_col else None,
                         kind_col or address_col))
        address_name, time_name = address_col, time_col
    else:
        for i, x in enumerate(lines, start=1):
            if x.strip() and not x.lstrip().startswith("#"):
                rows.append((i, x.strip(), kind, None, None))
        address_name, time_name = None, None
    out = []
    for line, address, raw_kind, when, kind_name in rows:
        if not address:
            raise SuppressionFileError(path, line, address_name, "empty address")
        k = _KINDS.get(raw_kind.replace(" ", "_"))
        if k is None:
            raise SuppressionFileError(path, line, kind_name, f"unknown kind {raw_kind!r}; known: "
                                       "unsubscribe, hard_bounce, soft_bounce, complaint, manual")
        ch = channel or ("email" if "@" in address else "sms")
        if ch == "email" and not _EMAIL.match(address):
            raise SuppressionFileError(path, line, address_name, f"{address!r} is not an email address")
        if ch == "sms" and not _PHONE.match(address):
            raise SuppressionFileError(path, line, address_name, f"{address!r} is not a phone number")
        t = None
        if when:
            t = pd.to_datetime(when, utc=True, errors="coerce")
            if pd.isna(t):
                raise SuppressionFileError(path, line, time_name, f"{when!r} is not a date or time")
        out.append((normalize_address(address, channel=ch), ch, k, t))
    return pd.DataFrame(out, columns=["address", "channel", "kind", "occurred_at"])


__all__ = ["SuppressionFileError", "read_suppression_file"]
