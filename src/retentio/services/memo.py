"""Results kept in-process: a small thread-safe least-recently-used memo for the long-
running web app, keyed by what a result depends on (typically :func:`data_key`: the
workspace and the fingerprint of the data it holds, so a new load computes afresh).

A missing key is computed outside the lock, so other keys are not held up; two threads
asking for the same missing key at once may both compute it once, which costs time,
never a wrong answer."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from retentio.data.workspace import Workspace

V = TypeVar("V")


class Memo(Generic[V]):
    """At most ``size`` results, the least recently used dropped first."""

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The result kept under ``key``, else ``compute()``, kept."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def data_key(ws: Workspace) -> tuple[str, str]:
    """What an analysis of ``ws`` depends on: the workspace and the data it holds."""
    return str(ws.path.resolve()), ws.data_fingerprint()


__all__ = ["Memo", "data_key"]
