"""Real servers on loopback for the channel tests: an SMTP server (aiosmtpd) that keeps
what it receives, and an HTTP server whose answer per customer the test decides."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def self_signed(folder) -> tuple:
    """A certificate for 127.0.0.1 (and its key), made by the system's openssl."""
    import subprocess

    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it accepts (parsed),
    optionally slowly (``delay_s`` per message), refusing logins, or answering 451 for the
    first attempt to chosen recipients."""

    delay_s: float = 0.0
    require_auth: bool = False
    password: str = "secret"
    temporary_failures: set[str] = field(default_factory=set)
    #: None, "starttls" (required) or "ssl" (implicit TLS), with ``cert`` = (certificate, key) files
    tls: str | None = None
    cert: tuple | None = None
    messages: list = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        to = envelope.rcpt_tos[0]
        if to in self.temporary_failures:
            self.temporary_failures.discard(to)
            return "451 4.3.0 try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 2.0.0 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        ok = getattr(auth_data, "password", b"") == self.password.encode()
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        kwargs: dict = {}
        if self.require_auth:
            kwargs = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        if self.tls:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.cert)
            kwargs |= {"tls_context": context, "require_starttls": True} if self.tls == "starttls" else \
                {"ssl_context": context}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def settings(self, *, username: str = "", ca_file: str = "") -> str:
        auth = f'username = "{username}"\npassword_env = "TEST_SMTP_PASSWORD"\n' if username else ""
        ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
        return (f'[channels.email]\nhost = "127.0.0.1"\nport = {self.port}\nsecurity = "{self.tls or "none"}"\n'
                f'sender = "shop@example.com"\nreply_to = "care@example.com"\ntimeout_s = 5\n{auth}{ca}')

    def wait_for(self, n: int, timeout_s: float = 30.0) -> None:
        end = time.monotonic() + timeout_s
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.01)


@dataclass
class HookServer:
    """An HTTP server on 127.0.0.1 that records every request; ``answer(customer_id,
    attempt)`` gives the status (and ``delay_s`` slows every answer)."""

    answer: Callable[[str, int], int] = lambda _c, _n: 200
    delay_s: float = 0.0
    requests: list = field(default_factory=list)

    def __enter__(self) -> HookServer:
        outer = self
        attempts: dict[str, int] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                data = json.loads(body)
                n = attempts[data["message_id"]] = attempts.get(data["message_id"], 0) + 1
                outer.requests.append({"headers": dict(self.headers), "body": body, "json": data, "attempt": n})
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                status = outer.answer(data["customer_id"], n)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def settings(self, timeout_s: float = 5) -> str:
        return (f'[channels.webhook]\nurl = "{self.url}"\nsecret_env = "TEST_HOOK_SECRET"\ntimeout_s = {timeout_s}\n'
                "cost_per_message = 0.05\n")
