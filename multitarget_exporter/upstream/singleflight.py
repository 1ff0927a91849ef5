"""One run of a piece of work per key at a time; whoever asks meanwhile shares its result.

Both caches put this in front of the upstream, so a burst of probes of a new
place costs one call. A caller that is not the one running waits only until
its own deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from multitarget_exporter.model.deadline import Deadline

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None


class SingleFlight(Generic[T]):
    """Runs of work by key, merged while one is in flight."""

    def __init__(self) -> None:
        self._flights: dict[str, _Flight[T]] = {}
        self._lock = threading.Lock()

    def run(self, key: str, work: Callable[[], T], deadline: Deadline) -> tuple[T | None, bool]:
        """`work()`'s result and True if this call ran it; another run's result and False
        if one was in flight; (None, False) if the deadline passed while waiting for it."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait(max(deadline.remaining(), 0))
            return flight.result, False
        try:
            flight.result = work()
            return flight.result, True
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
