"""Email over SMTP (RFC 5321) with :mod:`smtplib`: one connection per sending pass.

Each message is a MIME ``multipart/alternative`` (text, then HTML when the playbook has
one; RFC 2046 §5.1.4) built by :mod:`email.message.EmailMessage`, with a ``Message-ID``
made from the outbox's stable id (the same on a retry, so a receiving server or the
recipient's client can spot a copy), ``Date``, ``From``, ``Reply-To``, and — for
marketing — ``List-Unsubscribe: <https://…>`` with
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).

Security: ``none`` (plain, for a local relay), ``starttls`` (RFC 3207; refused if the
server does not offer it) or ``ssl`` (implicit TLS, port 465). The password is read from
the environment variable the settings name, never from the file.

Outcomes: a 2xx is ``sent``; a 4xx reply, a dropped connection or a timeout is a
transient ``retry`` (the connection is reopened for the next message); a 5xx reply,
including a refused recipient, is ``failed`` with the server's words. A refused login,
an unreachable server or a missing password is a :class:`ChannelError` at :meth:`open`,
before any message is claimed for sending.

``rate_per_second`` spaces messages evenly (a token bucket of one), for providers that
throttle.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Mapping
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formatdate

from retentio.actions.channels.base import ChannelError, Delivery, OutgoingMessage
from retentio.data.settings import EmailChannelSettings

F = "[channels.email]"
#: UTF-8 bodies, quoted-printable (readable in the raw message, 7-bit safe)
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP
#: headers not folded below RFC 5322's 998-character limit (a folded List-Unsubscribe
#: confuses some receivers); CRLF line ends as SMTP wants them
_WIRE = compat32.clone(max_line_length=998, linesep="\r\n")


class EmailChannel:
    """Send outbox messages through one SMTP server (see the module docstring)."""

    name = "email"

    def __init__(self, settings: EmailChannelSettings, env: Mapping[str, str]):
        self.settings = settings
        if not settings.host:
            raise ChannelError("no SMTP server configured", f"{F} host")
        if not settings.sender:
            raise ChannelError("no sender address configured", f"{F} sender")
        self.password: str | None = None
        if settings.username:
            if not settings.password_env:
                raise ChannelError("a username needs password_env: the name of the environment variable that "
                                   "holds the password", f"{F} password_env")
            self.password = env.get(settings.password_env)
            if self.password is None:
                raise ChannelError(f"the environment variable {settings.password_env} is not set",
                                   f"{F} password_env")
        self.smtp: smtplib.SMTP | None = None
        self._next_at = 0.0
        self.domain = settings.sender.rpartition("@")[2] or "retentio.local"

    # ------------------------------------------------------------------ connection
    def open(self) -> None:
        s = self.settings
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._tls())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
                if s.security == "starttls":
                    smtp.ehlo()
                    if not smtp.has_extn("starttls"):
                        smtp.quit()
                        raise ChannelError(f"{s.host}:{s.port} does not offer STARTTLS; set security = \"ssl\" "
                                           "or \"none\" for a local relay", f"{F} security")
                    smtp.starttls(context=self._tls())
            if s.username:
                try:
                    smtp.login(s.username, self.password or "")
                except smtplib.SMTPAuthenticationError as e:
                    smtp.close()
                    raise ChannelError(f"{s.host}:{s.port} refused the login of {s.username!r}: "
                                       f"{e.smtp_code} {_words(e.smtp_error)}", f"{F} username/password_env") from None
                except smtplib.SMTPNotSupportedError:
                    smtp.close()
                    raise ChannelError(f"{s.host}:{s.port} does not offer AUTH (on this security setting)",
                                       f"{F} security") from None
        except ChannelError:
            raise
        except ssl.SSLError as e:  # before OSError, its base: a certificate the client does not trust
            raise ChannelError(f"TLS with {s.host}:{s.port} failed: {e}", f"{F} security/ca_file") from None
        except (OSError, smtplib.SMTPException) as e:
            raise ChannelError(f"cannot connect to {s.host}:{s.port}: {e}", f"{F} host") from None
        self.smtp = smtp

    def _tls(self) -> ssl.SSLContext:
        """Certificates verified against the system's authorities, or ``ca_file``."""
        try:
            return ssl.create_default_context(cafile=self.settings.ca_file or None)
        except (OSError, ssl.SSLError) as e:
            raise ChannelError(f"cannot read the CA bundle {self.settings.ca_file!r}: {e}", f"{F} ca_file") from None

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None

    # ------------------------------------------------------------------ messages
    def mime(self, m: OutgoingMessage) -> Message:
        """The MIME message for one outbox row. Built with the ``email.mime`` classes
        (several times faster than :class:`email.message.EmailMessage`'s header
        folding, which dominated sending); bodies quoted-printable UTF-8, the subject an
        RFC 2047 encoded word when it is not ASCII. A header value with a line break is
        refused (it would inject headers)."""
        for name, value in (("To", m.to), ("Subject", m.subject), ("List-Unsubscribe", m.unsubscribe_url or "")):
            if "\n" in value or "\r" in value:
                raise ValueError(f"the {name} header may not contain a line break: {value!r}")
        text = MIMEText(m.text, "plain", _UTF8)  # type: ignore[arg-type]  # a Charset is accepted (email docs)
        if m.html:
            msg: Message = MIMEMultipart("alternative")
            msg.attach(text)
            msg.attach(MIMEText(m.html, "html", _UTF8))  # type: ignore[arg-type]
        else:
            msg = text
        msg["From"] = self.settings.sender
        msg["To"] = m.to
        if self.settings.reply_to:
            msg["Reply-To"] = self.settings.reply_to
        msg["Subject"] = m.subject if m.subject.isascii() else Header(m.subject, "utf-8").encode()
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = f"<{m.message_id}@{self.domain}>"
        if m.unsubscribe_url:
            msg["List-Unsubscribe"] = f"<{m.unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["X-Retentio-Campaign"] = m.campaign
        return msg

    def _pace(self) -> None:
        rate = self.settings.rate_per_second
        if rate > 0:
            now = time.monotonic()
            if now < self._next_at:
                time.sleep(self._next_at - now)
            self._next_at = max(now, self._next_at) + 1.0 / rate

    def send(self, message: OutgoingMessage) -> Delivery:
        self._pace()
        if self.smtp is None:
            try:
                self.open()
            except ChannelError as e:
                return Delivery("retry", f"reconnecting: {e}")
        assert self.smtp is not None
        try:
            mime = self.mime(message)
        except (ValueError, TypeError) as e:  # an address or header no message can carry
            return Delivery("failed", f"cannot build the message: {e}")
        try:
            refused = self.smtp.sendmail(self.settings.sender, [message.to], mime.as_bytes(policy=_WIRE))
        except smtplib.SMTPRecipientsRefused as e:
            code, words = next(iter(e.recipients.values()))
            return _by_code(code, words)
        except smtplib.SMTPResponseException as e:  # sender refused, data refused, ...
            return _by_code(e.smtp_code, e.smtp_error)
        except smtplib.SMTPNotSupportedError as e:  # e.g. a non-ASCII address without SMTPUTF8: never works
            return Delivery("failed", f"the server cannot take this message: {e}")
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self.smtp = None  # reconnect for the next message
            return Delivery("retry", f"connection lost: {e}")
        if refused:
            code, words = next(iter(refused.values()))
            return _by_code(code, words)
        return Delivery("sent", "250 accepted", f"<{message.message_id}@{self.domain}>")


def _words(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _by_code(code: int, words: bytes | str) -> Delivery:
    text = f"{code} {_words(words)}"
    return Delivery("retry" if 400 <= code < 500 else "failed", text)


__all__ = ["EmailChannel"]
