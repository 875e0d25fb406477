"""Channels that deliver campaign messages: email over SMTP, a signed webhook (SMS,
messengers, push), and a CSV export. :func:`make_channel` builds one from the
workspace's ``[channels.*]`` settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from retentio.actions.channels.base import Channel, ChannelError, Delivery, OutgoingMessage

if TYPE_CHECKING:
    from retentio.data.settings import ChannelSettings


def make_channel(kind: str, settings: ChannelSettings, *, export_path: Path, env: Mapping[str, str]) -> Channel:
    """The channel ``kind`` (email, webhook, csv) configured by ``settings``;
    :class:`ChannelError` naming the setting when it cannot work."""
    if kind == "email":
        from retentio.actions.channels.email import EmailChannel

        return EmailChannel(settings.email, env)
    if kind == "webhook":
        from retentio.actions.channels.webhook import WebhookChannel

        return WebhookChannel(settings.webhook, env)
    if kind == "csv":
        from retentio.actions.channels.csv_export import CsvChannel

        return CsvChannel(export_path)
    raise ChannelError(f"unknown channel {kind!r}; known: email, webhook, csv", "[channel] kind")


__all__ = ["Channel", "ChannelError", "Delivery", "OutgoingMessage", "make_channel"]
