"""Unsubscribe links: a signed token per customer, channel and campaign.

The token is ``base64url(customer \\x1f channel \\x1f campaign \\x1f issued-day)`` + ``.`` +
``base64url(HMAC-SHA256(secret, payload))`` (RFC 2104), verified in constant time
(:func:`hmac.compare_digest`), so nobody can unsubscribe someone else by editing a link,
and the link carries no address in clear. The secret is the workspace's, in
``.retentio-secret`` (32 random bytes, created on first use, readable by its owner only).

Following the link (GET) must only show a confirmation page — mail scanners open links —
and the one-click POST of RFC 8058 (``List-Unsubscribe-Post: List-Unsubscribe=One-Click``)
unsubscribes; the web app serves both pages and calls :func:`verify_token`.

References: RFC 2104 (HMAC); RFC 8058, "Signaling One-Click Functionality for List Email
Headers".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from retentio.data.errors import RetentioError

SECRET_FILE = ".retentio-secret"
_SEP = "\x1f"


def workspace_secret(workspace: Path) -> bytes:
    """The workspace's signing secret: 32 random bytes in ``.retentio-secret`` (mode
    0600), created on first use. Written to a temporary file and linked into place, so a
    crash never leaves an empty key and two first uses agree on one."""
    path = Path(workspace) / SECRET_FILE
    if not path.exists():
        tmp = path.with_name(f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process linked its key first: theirs stands
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes()
    if len(key) < 32:
        raise RetentioError(f"{path}: the signing key is {len(key)} bytes, not 32; remove the file to make a new "
                            "one (links already sent will stop working)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: bytes, customer_id: str, channel: str, campaign: str, issued: dt.date | None = None) -> str:
    """A token that says "``customer_id`` may unsubscribe from ``channel``"."""
    issued = issued or dt.date.today()
    payload = _SEP.join((str(customer_id), channel, campaign, issued.isoformat())).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


@dataclass(frozen=True)
class UnsubscribeRequest:
    customer_id: str
    channel: str
    campaign: str
    issued: dt.date


def verify_token(secret: bytes, token: str) -> UnsubscribeRequest:
    """What a token asks for; :class:`RetentioError` when it was not signed with ``secret``."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except ValueError:
        raise RetentioError("unsubscribe token: malformed") from None
    if not hmac.compare_digest(hmac.new(secret, payload, hashlib.sha256).digest(), mac):
        raise RetentioError("unsubscribe token: signature does not match (tampered, or another workspace's)")
    customer, channel, campaign, issued = payload.decode().split(_SEP)
    return UnsubscribeRequest(customer, channel, campaign, dt.date.fromisoformat(issued))


def unsubscribe_link(base_url: str, token: str) -> str:
    """``base_url`` with the token as the ``token`` query parameter."""
    parts = urlsplit(base_url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query + urlencode({"token": token}), parts.fragment))


__all__ = ["SECRET_FILE", "UnsubscribeRequest", "make_token", "unsubscribe_link", "verify_token", "workspace_secret"]
