"""CSV export: the audience with each rendered message and promo code, appended to one
file per campaign, for tools Retentio does not talk to (a mailing service's import, a
call centre's list).

"Sending" a message is writing its row; the file is flushed and fsynced when the channel
closes and after every batch the outbox records. On :meth:`open` the channel reads the
``message_id`` column of the file as it is, so a row written by a sender that was killed
before it could record the result is recognised and not written twice — for this
channel even the one in-flight message of :mod:`retentio.actions.outbox` is exactly once.
A record left half-written by a kill in mid-write is cut off before appending (and
its message, not recorded as sent, is written again whole).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import IO

from retentio.actions.channels.base import ChannelError, Delivery, OutgoingMessage

COLUMNS = ("message_id", "campaign", "customer_id", "to", "subject", "text", "html", "promo_code", "unsubscribe_url",
           "payload")


class CsvChannel:
    """Append outbox messages to ``path`` (see the module docstring)."""

    name = "csv"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.file: IO[str] | None = None
        self.writer: csv.writer | None = None  # type: ignore[valid-type]
        self.written: set[str] = set()

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            if not fresh:
                self._cut_partial_line()
                with self.path.open(newline="", encoding="utf-8") as f:
                    self.written = {row["message_id"] for row in csv.DictReader(f) if row.get("message_id")}
            self.file = self.path.open("a", newline="", encoding="utf-8")
        except OSError as e:
            raise ChannelError(f"cannot write {self.path}: {e}", "[channels.csv] folder") from None
        self.writer = csv.writer(self.file)
        if fresh:
            self.writer.writerow(COLUMNS)

    def _cut_partial_line(self) -> None:
        """Cut a record a killed writer left half-written. Records end with CRLF and
        start with the message id (32 hex digits, never quoted), which message text does
        not produce; the last such start is parsed, and cut off unless it is one whole
        record ending the file."""
        import re

        data = self.path.read_bytes()
        starts = [m.start() + 2 for m in re.finditer(rb"\r\n[0-9a-f]{32},", data)]
        if not starts:
            return  # only the header
        last = starts[-1]
        try:
            records = list(csv.reader(io.StringIO(data[last:].decode("utf-8"), newline=""), strict=True))
            whole = data.endswith(b"\r\n") and len(records) == 1 and len(records[0]) == len(COLUMNS)
        except (csv.Error, UnicodeDecodeError):
            whole = False
        if not whole:
            with self.path.open("rb+") as f:
                f.truncate(last)

    def send(self, message: OutgoingMessage) -> Delivery:
        if message.message_id in self.written:
            return Delivery("sent", "already in the export")
        assert self.writer is not None
        self.writer.writerow((message.message_id, message.campaign, message.customer_id, message.to, message.subject,
                              message.text, message.html or "", message.payload.get("promo_code") or "",
                              message.unsubscribe_url or "", json.dumps(message.payload, default=str)))
        self.written.add(message.message_id)
        return Delivery("sent", f"written to {self.path.name}")

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def close(self) -> None:
        if self.file is not None:
            self.flush()
            self.file.close()
            self.file = None


__all__ = ["COLUMNS", "CsvChannel"]
