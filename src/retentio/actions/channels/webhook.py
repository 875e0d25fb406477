"""Webhook: each message as an HTTP POST of JSON, for SMS gateways, messengers and push
providers Retentio does not speak to directly.

The body is ``{"message_id", "campaign", "customer_id", "to", "subject", "text",
"unsubscribe_url", "payload"}``. Headers: ``Content-Type: application/json``,
``Idempotency-Key: <message_id>`` (the same on every retry, so a receiver can drop a
copy), ``X-Retentio-Timestamp: <unix seconds>`` and ``X-Retentio-Signature:
sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` (RFC 2104) — signing the
timestamp with the body lets a receiver refuse replays (see :func:`verify_signature`,
the check a receiver runs, with a tolerance window).

Outcomes: 2xx is ``sent``; 429, 5xx, a timeout or a refused connection is ``retry``
(transient); any other 4xx is ``failed`` (the receiver refuses this message — retrying
would not change that). The secret comes from the environment variable ``secret_env``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

import httpx

from retentio.actions.channels.base import ChannelError, Delivery, OutgoingMessage
from retentio.data.settings import WebhookChannelSettings

F = "[channels.webhook]"
SIGNATURE_HEADER = "X-Retentio-Signature"
TIMESTAMP_HEADER = "X-Retentio-Timestamp"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300.0,
                     now: float | None = None) -> bool:
    """What a receiver checks: the signature matches (constant-time) and the timestamp is
    within ``tolerance_s`` of now."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    """POST each outbox message to one URL (see the module docstring)."""

    name = "webhook"

    def __init__(self, settings: WebhookChannelSettings, env: Mapping[str, str]):
        if not settings.url:
            raise ChannelError("no URL configured", f"{F} url")
        if not settings.url.startswith(("http://", "https://")):
            raise ChannelError(f"{settings.url!r} is not an http(s) URL", f"{F} url")
        if not settings.secret_env:
            raise ChannelError("name the environment variable that holds the signing secret", f"{F} secret_env")
        secret = env.get(settings.secret_env)
        if not secret:
            raise ChannelError(f"the environment variable {settings.secret_env} is not set", f"{F} secret_env")
        self.settings = settings
        self.secret = secret.encode()
        self.client: httpx.Client | None = None

    def open(self) -> None:
        self.client = httpx.Client(timeout=self.settings.timeout_s)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def body(self, m: OutgoingMessage) -> bytes:
        return json.dumps({"message_id": m.message_id, "campaign": m.campaign, "customer_id": m.customer_id,
                           "to": m.to, "subject": m.subject, "text": m.text, "unsubscribe_url": m.unsubscribe_url,
                           "payload": m.payload}, ensure_ascii=False, default=str).encode()

    def send(self, message: OutgoingMessage) -> Delivery:
        if self.client is None:
            self.open()
        assert self.client is not None
        body = self.body(message)
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.message_id,
                   TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(self.secret, stamp, body)}
        try:
            r = self.client.post(self.settings.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Delivery("retry", f"timed out after {self.settings.timeout_s:g} s ({F} timeout_s)")
        except httpx.TransportError as e:
            return Delivery("retry", f"connection failed: {e}")
        words = f"HTTP {r.status_code} {r.text[:200]}".strip()
        if 200 <= r.status_code < 300:
            return Delivery("sent", words, r.headers.get("x-message-id"))
        if r.status_code == 429 or r.status_code >= 500:
            return Delivery("retry", words)
        return Delivery("failed", words)


__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookChannel", "sign", "verify_signature"]
