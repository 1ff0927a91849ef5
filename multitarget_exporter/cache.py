"""Upstream economy: readings cached per location, one fetch in flight per key.

A location's weather changes about every ten minutes, so a reading is reused
for the module's `cache_ttl` however many scrapers, HA pairs or modules ask.
Probes of a key whose fetch is in flight wait for that fetch and share its
result (single-flight), so a burst of new targets costs one call each.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from multitarget_exporter.config import ModuleConfig
from multitarget_exporter.deadline import Deadline
from multitarget_exporter.ratelimit import RateLimit, TokenBucket
from multitarget_exporter.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.targets import Location

# An unknown place stays unknown: remember that briefly, so a typo in a
# Prometheus target list does not cost a call every scrape. A reading that
# lacks a part asked for (air quality) is kept as briefly, so the part returns soon.
SHORT_TTL_SECONDS = 60.0

Outcome = Literal["hit", "miss", "coalesced"]


def cache_key(module: ModuleConfig, location: Location) -> str:
    """Everything that shapes an answer: the module's provider settings and the place."""
    return "|".join(
        (
            module.name,
            module.provider,
            module.base_url,
            module.geocoding_url,
            module.language,
            str(module.air_quality),
            location.key,
        )
    )


def ttl_for(module: ModuleConfig, result: ProbeResult) -> float:
    """How long a result may be reused: readings for cache_ttl, not_found and partial
    readings briefly, other failures not at all."""
    if result.reading is not None:
        if result.reading.missing:
            return min(module.cache_ttl_seconds, SHORT_TTL_SECONDS)
        return module.cache_ttl_seconds
    if result.failure is not None and result.failure.reason is FailureReason.NOT_FOUND:
        return min(module.cache_ttl_seconds, SHORT_TTL_SECONDS)
    return 0.0


class ReadingCache(Protocol):
    """Where results are kept, and how concurrent fetches of one key are merged."""

    def fetch_through(
        self,
        key: str,
        fetch: Callable[[], ProbeResult],
        ttl: Callable[[ProbeResult], float],
        deadline: Deadline,
    ) -> tuple[ProbeResult, Outcome]:
        """A cached result, the one from a fetch in flight, or a new fetch's."""
        ...

    def __len__(self) -> int: ...

    def bucket(self, name: str, rate: RateLimit) -> Bucket:
        """A budget of upstream calls, as widely shared as the cache is."""
        ...


class Bucket(Protocol):
    """A budget of upstream calls."""

    rate: RateLimit

    def take(self, count: int = 1) -> bool:
        """Spend `count` calls (at most the whole budget), or say there are not enough left."""
        ...


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: ProbeResult | None = None


class MemoryCache:
    """One process's cache: least recently used out past `max_entries`."""

    def __init__(self, max_entries: int = 10000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, ProbeResult]] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def bucket(self, name: str, rate: RateLimit) -> TokenBucket:
        """This process's budget of upstream calls for `name`."""
        return TokenBucket(rate)

    def _fresh(self, key: str, now: float) -> ProbeResult | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def get(self, key: str) -> ProbeResult | None:
        """The fresh result for `key`, if there is one."""
        with self._lock:
            return self._fresh(key, time.monotonic())

    def store(self, key: str, result: ProbeResult, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl_seconds, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def fetch_through(
        self,
        key: str,
        fetch: Callable[[], ProbeResult],
        ttl: Callable[[ProbeResult], float],
        deadline: Deadline,
    ) -> tuple[ProbeResult, Outcome]:
        with self._lock:
            cached = self._fresh(key, time.monotonic())
            if cached is not None:
                return cached, "hit"
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if flight.done.wait(max(deadline.remaining(), 0)) and flight.result is not None:
                return flight.result, "coalesced"
            failure = Failure(
                FailureReason.TIMEOUT, "deadline passed waiting for a fetch in flight"
            )
            return ProbeResult(None, failure), "coalesced"
        result: ProbeResult | None = None
        try:
            result = fetch()
            self.store(key, result, ttl(result))
            return result, "miss"
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.result = result
            flight.done.set()
