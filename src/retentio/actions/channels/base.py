"""What every channel shares: the message it is given, the result it reports, and the
protocol a channel implements.

A channel is opened once per sending pass (one SMTP connection, one HTTP client), is
given messages one at a time from the outbox, and reports for each whether it was
delivered, should be tried again later (a transient failure: SMTP 4xx, HTTP 429/5xx, a
timeout, a dropped connection) or failed for good (SMTP 5xx, HTTP 4xx other than 429).
A problem with the channel itself (wrong password, unknown host, a missing setting) is
a :class:`ChannelError` raised by :meth:`Channel.open`, before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from retentio.data.errors import RetentioError


class ChannelError(RetentioError):
    """The channel cannot send at all (its settings, credentials or server); ``field``
    names the setting to fix, e.g. ``[channels.email] password_env``."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message for one customer, as the outbox holds it.

    ``message_id`` is unique and stable across retries (the SMTP ``Message-ID`` and the
    webhook's idempotency key), so a provider can drop a duplicate; ``to`` is the email
    address or phone number; ``payload`` carries the facts a webhook receiver needs
    (campaign, customer, offer, promo code)."""

    message_id: str
    campaign: str
    customer_id: str
    to: str
    subject: str
    text: str
    html: str | None = None
    unsubscribe_url: str | None = None
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """What happened to one message: ``sent``, ``retry`` (transient; try again later) or
    ``failed`` (permanent), with the server's words in ``detail``."""

    status: Literal["sent", "retry", "failed"]
    detail: str = ""
    provider_id: str | None = None


class Channel(Protocol):
    """A way of delivering messages: open, send each, close."""

    name: str

    def open(self) -> None:
        """Connect (and log in); :class:`ChannelError` when that is impossible."""

    def send(self, message: OutgoingMessage) -> Delivery:
        """Deliver one message; never raises for a failure of that message."""

    def close(self) -> None:
        """Release the connection (also after a failure)."""


__all__ = ["Channel", "ChannelError", "Delivery", "OutgoingMessage"]
