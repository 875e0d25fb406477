"""What every route of the web app shares: the workspace, brief access to its analytics
database, the templates and the rendering of signed-in pages.

**Analytics access.** DuckDB lets one process write a database file, or any number read
it. A server that kept the file open would lock ``retentio load`` and every other
writing command out for as long as it runs, so a request opens a read-only view
(:meth:`Workspace.reader`, sharing the app's store connections) for the time it reads
and closes it after. A write inside the app (an upload on the Data page) takes the
write side of a readers–writer lock, so it waits for running reads and new reads wait
for it. A writer in another process makes a read fail with "busy" (HTTP 503, "try
again"), never wait forever.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace


class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that arrive after
    it (so a stream of page views cannot starve an upload)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def templates() -> jinja2.Environment:
    """The app's Jinja2 environment: every ``*.html.j2`` autoescaped (names, comments and
    playbook text are shown as text), undefined names are errors."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=jinja2.select_autoescape(["html", "html.j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


class Web:
    """The app's shared state (``request.app.state.web``)."""

    def __init__(self, ws: Workspace, env: Mapping[str, str] | None = None, *, secure_cookies: bool | None = None):
        self.ws = ws
        self.env = env
        self.lock = ReadWriteLock()
        self.templates = templates()
        #: None: decide per request (Secure when the request came over HTTPS)
        self.secure_cookies = secure_cookies

    @property
    def store(self) -> Any:
        return self.ws.store

    @contextlib.contextmanager
    def read(self) -> Iterator[Workspace]:
        """A read-only view of the workspace for one request (see the module docstring)."""
        with self.lock.read():
            view = self.ws.reader()
            try:
                yield view
            finally:
                view.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Workspace]:
        """The workspace open for writing, alone (see the module docstring)."""
        with self.lock.write():
            view = self.ws.writer()
            try:
                yield view
            finally:
                view.close()


def web_of(request: Any) -> Web:
    """The :class:`Web` of the app serving ``request``."""
    web: Web = request.app.state.web
    return web


__all__ = ["ReadWriteLock", "Web", "templates", "web_of"]
