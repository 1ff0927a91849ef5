"""Counts and holds on upstream calls, shared as widely as the cache is.

Two things every process must agree on (spec section 14): how many calls a
module has made today (its `daily_budget`), and until when a provider asked
not to be called (`Retry-After`). In memory they are one process's; the Redis
backend shares them (upstream/rediscache.py) and falls back to these while
Redis is away.
"""

from __future__ import annotations

import threading
from typing import Protocol

from multitarget_exporter.upstream.store import ExpiringStore

# Keys are a module's day or a provider's host and key: a few hundred at most.
_MOST_KEYS = 10000


class Tallies(Protocol):
    """A count of calls per key, and holds on keys until a time."""

    def spend(self, key: str, allowed: int, keep_seconds: float) -> int | None:
        """Count one call against `key` if fewer than `allowed` are counted: the count
        after it, or None (refused, nothing counted). The count lives `keep_seconds`."""
        ...

    def spent(self, key: str) -> int:
        """The calls counted against `key` (0 when none or forgotten)."""
        ...

    def hold(self, key: str, until: float, seconds: float) -> None:
        """No call for `key` before `until` (a Unix time, `seconds` from now); a later
        hold wins."""
        ...

    def held(self, key: str) -> float:
        """Until when `key` is held (a Unix time); 0 when it is not."""
        ...


class MemoryTallies:
    """One process's counts and holds."""

    def __init__(self, max_keys: int = _MOST_KEYS) -> None:
        self._counts: ExpiringStore[int] = ExpiringStore(max_keys)
        self._holds: ExpiringStore[float] = ExpiringStore(max_keys)
        self._lock = threading.Lock()

    def spend(self, key: str, allowed: int, keep_seconds: float) -> int | None:
        with self._lock:
            count = self._counts.get(key) or 0
            if count >= allowed:
                return None
            self._counts.put(key, count + 1, keep_seconds)
            return count + 1

    def spent(self, key: str) -> int:
        return self._counts.get(key) or 0

    def hold(self, key: str, until: float, seconds: float) -> None:
        with self._lock:
            if until > self.held(key):
                self._holds.put(key, until, seconds)

    def held(self, key: str) -> float:
        return self._holds.get(key) or 0.0
