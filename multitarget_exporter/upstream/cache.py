"""Upstream economy: readings cached per location, one fetch in flight per key.

A location's weather changes about every ten minutes, so a reading is reused
for the module's `cache_ttl` however many scrapers, HA pairs or modules ask.
Probes of a key whose fetch is in flight wait for that fetch and share its
result (single-flight), so a burst of new targets costs one call each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from multitarget_exporter.config.modules import ModuleConfig
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.ratelimit import RateLimit, TokenBucket
from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.model.targets import Location
from multitarget_exporter.upstream.revalidation import (
    MAX_KEPT_ANSWERS,
    MemoryValidators,
    Validators,
)
from multitarget_exporter.upstream.singleflight import SingleFlight
from multitarget_exporter.upstream.store import ExpiringStore
from multitarget_exporter.upstream.tallies import MemoryTallies, Tallies

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
            str(module.stale_if_error_seconds),
            module.air_quality_url,
            ",".join(horizon.label for horizon in module.forecast),
            location.key,
        )
    )


def ttl_for(module: ModuleConfig, result: ProbeResult) -> float:
    """How long a result may be reused: readings for cache_ttl, not_found and partial
    readings briefly, other failures not at all."""
    if result.reading is not None:
        if result.reading.missing or result.stale:
            # A stale answer is kept as briefly: scrapes meanwhile answer stale at once.
            return min(module.cache_ttl_seconds, SHORT_TTL_SECONDS)
        if result.expires_at is not None and module.cache_ttl_seconds > 0:
            # The provider said until when (the later of its Expires and cache_ttl, or the
            # next forecast step): a reading past it is made again from the kept answer.
            return max(1.0, result.expires_at - time.time())
        return module.cache_ttl_seconds
    if result.failure is not None and result.failure.reason is FailureReason.NOT_FOUND:
        return min(module.cache_ttl_seconds, SHORT_TTL_SECONDS)
    return 0.0


@dataclass(slots=True)
class CacheEntry:
    """A kept result, and its metric lines once encoded (per exposition format), so
    a cache hit encodes only its few `probe_*` lines."""

    result: ProbeResult
    encoded: dict[str, bytes] = field(default_factory=dict)


class ReadingCache(Protocol):
    """Where results are kept, and how concurrent fetches of one key are merged."""

    def fetch_through(
        self,
        key: str,
        fetch: Callable[[], ProbeResult],
        ttl: Callable[[ProbeResult], float],
        deadline: Deadline,
    ) -> tuple[CacheEntry, Outcome]:
        """A cached result, the one from a fetch in flight, or a new fetch's."""
        ...

    def __len__(self) -> int: ...

    def bucket(self, name: str, rate: RateLimit) -> Bucket:
        """A budget of upstream calls, as widely shared as the cache is."""
        ...

    @property
    def validators(self) -> Validators:
        """Validated upstream answers, as widely shared as the cache is."""
        ...

    @property
    def warnings(self) -> Validators:
        """Points' warnings answers (and which source covers them), as widely shared as the
        cache is, apart from the readings and from `validators`' bound."""
        ...

    @property
    def tallies(self) -> Tallies:
        """Budget counts and Retry-After holds, as widely shared as the cache is."""
        ...

    def keep_last(self, key: str, result: ProbeResult, seconds: float) -> None:
        """Keep a successful result for `seconds`, to answer stale with when refreshes fail."""
        ...

    def last(self, key: str) -> ProbeResult | None:
        """The last successful result kept for `key`, if it is not too old."""
        ...


class Bucket(Protocol):
    """A budget of upstream calls."""

    rate: RateLimit

    def take(self, count: int = 1) -> bool:
        """Spend `count` calls (at most the whole budget), or say there are not enough left."""
        ...


Flights = SingleFlight[tuple[CacheEntry, Outcome]]


def in_flight(
    flights: Flights, key: str, work: Callable[[], tuple[CacheEntry, Outcome]], deadline: Deadline
) -> tuple[CacheEntry, Outcome]:
    """`work()` for `key`, or a share of the run in flight (`coalesced`); a timeout when the
    deadline passes waiting for it."""
    shared, led = flights.run(key, work, deadline)
    if shared is None:
        failure = Failure(FailureReason.TIMEOUT, "deadline passed waiting for a fetch in flight")
        return CacheEntry(ProbeResult(None, failure)), "coalesced"
    return shared if led else (shared[0], "coalesced")


class MemoryCache:
    """One process's cache: least recently used out past `max_entries`."""

    def __init__(self, max_entries: int = 10000) -> None:
        self.max_entries = max_entries
        self._entries: ExpiringStore[CacheEntry] = ExpiringStore(max_entries)
        self._flights: Flights = SingleFlight()
        # Apart from max_entries: a reading pushed out must not take its point's Expires along.
        self._validators = MemoryValidators(MAX_KEPT_ANSWERS)
        self._warnings = MemoryValidators(max_entries)
        self._last: ExpiringStore[ProbeResult] = ExpiringStore(max_entries)
        self._tallies = MemoryTallies()

    @property
    def tallies(self) -> MemoryTallies:
        return self._tallies

    @property
    def validators(self) -> MemoryValidators:
        return self._validators

    @property
    def warnings(self) -> MemoryValidators:
        return self._warnings

    def keep_last(self, key: str, result: ProbeResult, seconds: float) -> None:
        self._last.put(key, result, seconds)

    def last(self, key: str) -> ProbeResult | None:
        return self._last.get(key)

    def __len__(self) -> int:
        return len(self._entries)

    def bucket(self, name: str, rate: RateLimit) -> TokenBucket:
        """This process's budget of upstream calls for `name`."""
        return TokenBucket(rate)

    def get(self, key: str) -> CacheEntry | None:
        """The fresh entry for `key`, if there is one."""
        return self._entries.get(key)

    def store(self, key: str, entry: CacheEntry, ttl_seconds: float) -> None:
        self._entries.put(key, entry, ttl_seconds)

    def fetch_through(
        self,
        key: str,
        fetch: Callable[[], ProbeResult],
        ttl: Callable[[ProbeResult], float],
        deadline: Deadline,
    ) -> tuple[CacheEntry, Outcome]:
        cached = self._entries.get(key)
        if cached is not None:
            return cached, "hit"

        def fetch_and_keep() -> tuple[CacheEntry, Outcome]:
            cached = self._entries.get(key)  # kept by a flight that ended a moment ago
            if cached is not None:
                return cached, "hit"
            entry = CacheEntry(fetch())
            self._entries.put(key, entry, ttl(entry.result))
            return entry, "miss"

        return in_flight(self._flights, key, fetch_and_keep, deadline)
