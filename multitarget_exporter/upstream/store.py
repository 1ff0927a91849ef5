"""One expiring, bounded store for everything the exporter keeps for a while.

cachetools' `TLRUCache` does the work: each value lives until its own expiry,
and past `max_entries` the least recently used goes first. It is not
thread-safe, so a lock guards it (a gevent lock under gevent: nothing inside
waits on I/O).
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from cachetools import TLRUCache

V = TypeVar("V")


def _expiry(key: str, value: tuple[float, object], now: float) -> float:
    return value[0]


class ExpiringStore(Generic[V]):
    """At most `max_entries` values, each kept until its own time is up."""

    def __init__(self, max_entries: int) -> None:
        self._values: TLRUCache[str, tuple[float, V]] = TLRUCache(
            maxsize=max_entries, ttu=_expiry, timer=time.monotonic
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._values.expire()
            return len(self._values)

    def get(self, key: str) -> V | None:
        """The value for `key` if it is still there."""
        with self._lock:
            kept = self._values.get(key)
        return None if kept is None else kept[1]

    def put(self, key: str, value: V, seconds: float) -> None:
        """Keep `value` for `seconds` (not at all if that is not positive)."""
        if seconds <= 0:
            return
        with self._lock:
            self._values[key] = (time.monotonic() + seconds, value)
