"""Upstream answers kept for HTTP revalidation, apart from the readings.

An upstream that says how long its answer stays fresh (`Expires`) and how to
ask whether it changed (`Last-Modified`, then `If-Modified-Since` and a
`304`) has its answers kept here per resource, by the provider, in its own
compact form. The store is as widely shared as the cache: one process's
memory, or Redis (rediscache.RedisValidators) for every worker and replica.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.upstream.store import ExpiringStore

# Answers kept in one process's memory (MET Norway's: about 36 KiB each).
MAX_KEPT_ANSWERS = 2000
# How often a process waiting for another's answer looks for it.
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Validated:
    """An upstream answer kept for HTTP revalidation, apart from the readings: until when
    it is fresh (`Expires`), its `Last-Modified` exactly as sent, its status, and the
    provider's own compact form of its body (plain JSON data), to read it again."""

    expires_at: float
    last_modified: str
    status_code: int
    document: Any


class Validators(Protocol):
    """Validated answers by upstream resource (say, a base URL and a rounded point)."""

    def get(self, key: str) -> Validated | None: ...

    def put(self, key: str, value: Validated, keep_seconds: float) -> None: ...

    def claim(self, key: str, seconds: float) -> bool:
        """Whether this process may ask for `key` now: no other process holds a claim on it
        (it ends with `release`, or by itself after `seconds`)."""
        ...

    def release(self, key: str) -> None: ...


class MemoryValidators:
    """One process's validated answers, least recently used out past a bound of their own."""

    def __init__(self, max_entries: int) -> None:
        self._kept: ExpiringStore[Validated] = ExpiringStore(max_entries)

    def get(self, key: str) -> Validated | None:
        return self._kept.get(key)

    def put(self, key: str, value: Validated, keep_seconds: float) -> None:
        self._kept.put(key, value, keep_seconds)

    def claim(self, key: str, seconds: float) -> bool:
        return True  # one process: its own single-flight keeps to one request per key

    def release(self, key: str) -> None:
        pass


def kept_or_claimed(
    validators: Validators, key: str, fresh: Callable[[Validated], bool], deadline: Deadline
) -> tuple[Validated | None, bool] | None:
    """The answer kept for `key` and whether this process must ask for a new one.

    `(kept, False)`: `kept` is fresh, no call. `(kept or None, True)`: this process
    holds the claim on `key` (across processes: one asks while the others wait for its
    answer) and must ask, then `release` it. None: the deadline passed while another
    process was asking."""
    while True:
        kept = validators.get(key)
        if kept is not None and fresh(kept):
            return kept, False
        if validators.claim(key, max(deadline.remaining(), 1.0)):
            # Another process may have kept its answer and let go between the read above
            # and this claim: read again before spending a call.
            again = validators.get(key)
            if again is not None and fresh(again):
                validators.release(key)
                return again, False
            return again if again is not None else kept, True
        if deadline.remaining() <= POLL_SECONDS:
            return None
        time.sleep(POLL_SECONDS)  # another process is asking: its answer is coming
