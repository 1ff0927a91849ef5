"""The cache in Redis: one reading per location per TTL for every worker and replica.

In front of Redis, the in-process single-flight keeps one process to one
Redis round trip per key. Across processes, a short lock (`SET NX PX`) makes
one of them the fetcher; the others poll for its result, which is published
under the cache key (when cacheable) or briefly under a flight key (a
failure), so they share it either way. When Redis cannot be reached, probes
go on against the upstream through the in-process cache, the log says so
(at most every ten seconds) and the errors are counted on /metrics.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any, TypeVar

import redis

from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.ratelimit import RateLimit, TokenBucket
from multitarget_exporter.model.reading import (
    Condition,
    DailyForecast,
    Failure,
    FailureReason,
    ForecastStep,
    ProbeResult,
    Reading,
)
from multitarget_exporter.runtime import selfmetrics
from multitarget_exporter.upstream.cache import CacheEntry, Flights, MemoryCache, Outcome, in_flight
from multitarget_exporter.upstream.revalidation import MemoryValidators, Validated
from multitarget_exporter.upstream.singleflight import SingleFlight
from multitarget_exporter.upstream.tallies import MemoryTallies

log = logging.getLogger("multitarget_exporter")

T = TypeVar("T")

PREFIX = "multitarget_exporter:v1:"
# The form a result is kept in, part of its keys: a process of an older version sharing
# Redis in a rolling upgrade would fail on a reading with fields it does not know (and
# take Redis for down), so each form has keys of its own. Raise it when Reading changes.
READING_FORM = "2"
_POLL_SECONDS = 0.02
_FLIGHT_RESULT_SECONDS = 5
_BACKOFF_SECONDS = 5.0  # after an error, leave Redis alone this long
_LOG_EVERY_SECONDS = 10.0


def encode(result: ProbeResult, expires_at: float | None = None) -> bytes:
    """A ProbeResult as JSON (duration and cache_hit are the serving probe's own), with
    the Unix time it expires at, so every process can keep it as long and no longer."""
    return json.dumps(
        {
            "reading": _reading_document(result.reading) if result.reading else None,
            "failure": _failure_document(result.failure),
            "status": result.upstream_status_code,
            "expires": expires_at,
            "stale": result.stale,
            "refresh_failure": _failure_document(result.refresh_failure),
        },
        ensure_ascii=False,
    ).encode("utf-8")


def _failure_document(failure: Failure | None) -> list[str] | None:
    return [failure.reason.value, failure.detail] if failure else None


def _failure(document: Any) -> Failure | None:
    return Failure(FailureReason(document[0]), document[1]) if document else None


def _reading_document(reading: Reading) -> dict[str, Any]:
    return asdict(reading)  # nested steps, days and conditions as objects too


def reading_key(kind: str, key: str) -> str:
    """The Redis key of a result (`r`), its lock (`l`), its flight (`f`) or the last one
    kept (`s`), in this version's form."""
    return f"{PREFIX}{kind}{READING_FORM}:{key}"


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(field.name for field in fields(cls))


def _known(cls: type, document: dict[str, Any]) -> dict[str, Any]:
    """The document's fields that `cls` has: a newer version's extra fields are left out."""
    names = _field_names(cls)
    return {name: value for name, value in document.items() if name in names}


def decode(data: bytes | str) -> ProbeResult:
    """The inverse of `encode`; ValueError for anything else."""
    return decode_entry(data)[0]


def _conditions(documents: list[dict[str, Any]]) -> tuple[Condition, ...]:
    return tuple(Condition(**_known(Condition, document)) for document in documents)


def decode_entry(data: bytes | str) -> tuple[ProbeResult, float | None]:
    """The result and the Unix time it expires at (None if not recorded)."""
    document = json.loads(data)
    reading = None
    if document["reading"] is not None:
        found = _known(Reading, document["reading"])
        found["conditions"] = _conditions(found["conditions"])
        found["forecast"] = tuple(
            ForecastStep(
                **(_known(ForecastStep, step) | {"conditions": _conditions(step["conditions"])})
            )
            for step in found.get("forecast", ())
        )
        found["daily"] = tuple(
            DailyForecast(**_known(DailyForecast, day)) for day in found.get("daily", ())
        )
        reading = Reading(**found)
    expires = document.get("expires")
    expires_at = float(expires) if isinstance(expires, int | float) else None
    stale = document.get("stale")
    result = ProbeResult(
        reading,
        _failure(document["failure"]),
        int(document["status"]),
        stale=stale if isinstance(stale, bool) else None,
        refresh_failure=_failure(document.get("refresh_failure")),
    )
    return result, expires_at


# A token bucket kept in Redis, on Redis' own clock, so every process and replica
# spends one budget: refill by elapsed time, take ARGV[3] tokens if there are as many.
_BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(now - at, 0) * per_ms)
local taken = 0
if tokens >= count then
  tokens = tokens - count
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return taken
"""


class _Health:
    """Whether Redis is to be left alone for a while, after an error; logged sparingly."""

    def __init__(self) -> None:
        self._down_until = 0.0
        self._logged_at = 0.0
        self._lock = threading.Lock()

    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def attempt(self, work: Callable[[], T], otherwise: T) -> T:
        """`work()`, or `otherwise` while Redis is left alone or when it fails (noted here).
        Bad data read back counts as a failure too: it is our own JSON, so it is not ours."""
        if self.down():
            return otherwise
        try:
            return work()
        except (redis.RedisError, ValueError, KeyError, TypeError) as error:
            self.trouble(error)
            return otherwise

    def trouble(self, error: Exception) -> None:
        selfmetrics.CACHE_BACKEND_ERRORS.labels("redis").inc()
        now = time.monotonic()
        with self._lock:
            self._down_until = now + _BACKOFF_SECONDS
            if now - self._logged_at < _LOG_EVERY_SECONDS:
                return
            self._logged_at = now
        log.warning(
            "redis cache unavailable; probing the upstream directly for a while",
            extra={"fields": {"error": f"{type(error).__name__}: {error}"[:300]}},
        )


class RedisTokenBucket:
    """A module's budget shared through Redis; the process's own bucket when Redis is down."""

    def __init__(self, client: redis.Redis, health: _Health, key: str, rate: RateLimit) -> None:
        self.rate = rate
        self._health = health
        self._key = key
        self._script = client.register_script(_BUCKET_SCRIPT)
        self._fallback = TokenBucket(rate)

    def take(self, count: int = 1) -> bool:
        count = min(count, self.rate.calls)
        if not self._health.down():
            per_ms = self.rate.calls / (self.rate.period_seconds * 1000)
            args = [self.rate.calls, per_ms, count]
            try:
                return bool(self._script(keys=[self._key], args=args))
            except redis.RedisError as error:
                self._health.trouble(error)
        return self._fallback.take(count)


class RedisValidators:
    """Validated answers in Redis, shared by every process and replica; this process's
    own copy when Redis cannot be reached."""

    def __init__(
        self,
        client: redis.Redis,
        health: _Health,
        fallback: MemoryValidators,
        namespace: str = "v",
    ) -> None:
        self._client, self._health, self._fallback = client, health, fallback
        self._prefix = f"{PREFIX}{namespace}"

    def get(self, key: str) -> Validated | None:
        found = self._health.attempt(lambda: self._read(key), None)
        return found if found is not None else self._fallback.get(key)

    def _read(self, key: str) -> Validated | None:
        data = self._client.get(f"{self._prefix}:{key}")
        if data is None:
            return None
        document = json.loads(data)
        return Validated(
            float(document["expires_at"]),
            str(document["last_modified"]),
            int(document["status_code"]),
            document["document"],
        )

    def put(self, key: str, value: Validated, keep_seconds: float) -> None:
        self._fallback.put(key, value, keep_seconds)
        data = json.dumps(asdict(value), ensure_ascii=False).encode("utf-8")
        milliseconds = max(int(keep_seconds * 1000), 1)
        self._health.attempt(
            lambda: self._client.set(f"{self._prefix}:{key}", data, px=milliseconds), None
        )

    def claim(self, key: str, seconds: float) -> bool:
        milliseconds = int(seconds * 1000)

        def take() -> bool:
            return bool(self._client.set(f"{self._prefix}c:{key}", b"1", nx=True, px=milliseconds))

        # Without Redis, this process's own single-flight is all there is.
        return self._health.attempt(take, True)

    def release(self, key: str) -> None:
        self._health.attempt(lambda: self._client.delete(f"{self._prefix}c:{key}"), None)


_AWAY = -2  # what `spend` hears while Redis is away
_SPEND_SCRIPT = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent >= tonumber(ARGV[1]) then
  return -1
end
spent = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return spent
"""


class RedisTallies:
    """Budget counts and Retry-After holds in Redis, for every process and replica; this
    process's own while Redis cannot be reached (a restarted Redis starts the day's count
    afresh)."""

    def __init__(self, client: redis.Redis, health: _Health, fallback: MemoryTallies) -> None:
        self._client, self._health, self._fallback = client, health, fallback
        self._script = client.register_script(_SPEND_SCRIPT)

    def spend(self, key: str, allowed: int, keep_seconds: float) -> int | None:
        milliseconds = max(int(keep_seconds * 1000), 1)

        def shared() -> int:  # the count after, or -1: refused
            return int(self._script(keys=[f"{PREFIX}t:{key}"], args=[allowed, milliseconds]))

        spent = self._health.attempt(shared, _AWAY)
        if spent == _AWAY:
            return self._fallback.spend(key, allowed, keep_seconds)
        return None if spent < 0 else spent

    def spent(self, key: str) -> int:
        data = self._health.attempt(lambda: self._client.get(f"{PREFIX}t:{key}"), None)
        return int(data) if data is not None else self._fallback.spent(key)

    def hold(self, key: str, until: float, seconds: float) -> None:
        self._fallback.hold(key, until, seconds)
        milliseconds = int(seconds * 1000)
        if milliseconds <= 0:
            return
        # A later hold wins: GT keeps the longer expiry of two workers' holds.
        data = repr(until).encode()

        def shared() -> None:
            pipe = self._client.pipeline(transaction=True)
            pipe.set(f"{PREFIX}h:{key}", data, px=milliseconds, nx=True)
            pipe.get(f"{PREFIX}h:{key}")
            _, kept = pipe.execute()
            if kept is not None and float(kept) < until:
                self._client.set(f"{PREFIX}h:{key}", data, px=milliseconds)

        self._health.attempt(shared, None)

    def held(self, key: str) -> float:
        data = self._health.attempt(lambda: self._client.get(f"{PREFIX}h:{key}"), None)
        shared = float(data) if data is not None else 0.0
        return max(shared, self._fallback.held(key))


class RedisCache:
    """Results in Redis, shared by every process that points at the same server."""

    def __init__(self, url: str, fallback_entries: int = 10000) -> None:
        self.url = url
        # Bytes in, bytes out (no decode_responses): entries are our own JSON.
        self._client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        # Results this process has had from Redis, kept until they expire there, so a
        # hit costs no round trip; and the cache itself when Redis is down.
        self._local = MemoryCache(fallback_entries)
        # In front of Redis: one process, one Redis round trip per key at a time.
        self._flights: Flights = SingleFlight()
        self._health = _Health()
        self._validators = RedisValidators(self._client, self._health, self._local.validators)
        self._warnings = RedisValidators(
            self._client, self._health, self._local.warnings, namespace="w"
        )
        self._tallies = RedisTallies(self._client, self._health, self._local.tallies)

    @property
    def tallies(self) -> RedisTallies:
        return self._tallies

    @property
    def validators(self) -> RedisValidators:
        return self._validators

    @property
    def warnings(self) -> RedisValidators:
        return self._warnings

    def keep_last(self, key: str, result: ProbeResult, seconds: float) -> None:
        self._local.keep_last(key, result, seconds)
        data, milliseconds = encode(result, time.time() + seconds), max(int(seconds * 1000), 1)
        self._health.attempt(
            lambda: self._client.set(reading_key("s", key), data, px=milliseconds), None
        )

    def last(self, key: str) -> ProbeResult | None:
        data = self._health.attempt(lambda: self._client.get(reading_key("s", key)), None)
        found = self._health.attempt(lambda: decode(data), None) if data is not None else None
        return found if found is not None else self._local.last(key)

    def __len__(self) -> int:
        return len(self._local)

    def bucket(self, name: str, rate: RateLimit) -> RedisTokenBucket:
        """The shared budget of upstream calls for `name`."""
        return RedisTokenBucket(self._client, self._health, f"{PREFIX}b:{name}", rate)

    def fetch_through(
        self,
        key: str,
        fetch: Callable[[], ProbeResult],
        ttl: Callable[[ProbeResult], float],
        deadline: Deadline,
    ) -> tuple[CacheEntry, Outcome]:
        near = self._local.get(key)
        if near is not None:
            return near, "hit"
        if self._health.down():
            return self._local.fetch_through(key, fetch, ttl, deadline)
        return in_flight(
            self._flights, key, lambda: self._shared(key, fetch, ttl, deadline), deadline
        )

    def _shared(
        self,
        key: str,
        fetch: Callable[[], ProbeResult],
        ttl: Callable[[ProbeResult], float],
        deadline: Deadline,
    ) -> tuple[CacheEntry, Outcome]:
        result_key, lock_key, flight_key = (reading_key(kind, key) for kind in ("r", "l", "f"))
        try:
            cached = self._client.get(result_key)
            if cached is not None:
                return self._keep(key, cached, ttl), "hit"
            # The lock outlives the fetch's deadline a little, then frees itself.
            lock_ms = max(int(deadline.remaining() * 1000) + 1000, 1000)
            if self._client.set(lock_key, b"1", nx=True, px=lock_ms):
                # A fetcher may have published and unlocked between the read above
                # and this lock: read again before spending a call.
                cached = self._client.get(result_key)
                if cached is not None:
                    self._client.delete(lock_key)
                    return self._keep(key, cached, ttl), "hit"
                entry, seconds = self._lead(fetch, ttl, result_key, lock_key, flight_key)
                self._local.store(key, entry, seconds)
                return entry, "miss"
            waited = self._follow(key, ttl, result_key, lock_key, flight_key, deadline)
            if waited is not None:
                return waited, "coalesced"
        except (redis.RedisError, ValueError, KeyError, TypeError) as error:
            self._health.trouble(error)
            return self._local.fetch_through(key, fetch, ttl, deadline)
        # The fetcher vanished (its lock expired) with nothing published: fetch here.
        return CacheEntry(fetch()), "miss"

    def _keep(self, key: str, data: bytes | str, ttl: Callable[[ProbeResult], float]) -> CacheEntry:
        """A result read from Redis, kept here too for what is left of its time there."""
        result, expires_at = decode_entry(data)
        entry = CacheEntry(result)
        if expires_at is not None:
            # Never longer than its own ttl, whatever another host's clock said.
            self._local.store(key, entry, min(expires_at - time.time(), ttl(result)))
        return entry

    def _lead(
        self,
        fetch: Callable[[], ProbeResult],
        ttl: Callable[[ProbeResult], float],
        result_key: str,
        lock_key: str,
        flight_key: str,
    ) -> tuple[CacheEntry, float]:
        result = fetch()
        seconds = ttl(result)
        try:
            pipe = self._client.pipeline()
            if seconds > 0:
                data = encode(result, time.time() + seconds)
                pipe.set(result_key, data, px=max(int(seconds * 1000), 1))
            else:
                pipe.set(flight_key, encode(result), ex=_FLIGHT_RESULT_SECONDS)
            pipe.delete(lock_key)
            pipe.execute()
        except redis.RedisError as error:
            self._health.trouble(error)  # the lock expires by itself
        return CacheEntry(result), seconds

    def _follow(
        self,
        key: str,
        ttl: Callable[[ProbeResult], float],
        result_key: str,
        lock_key: str,
        flight_key: str,
        deadline: Deadline,
    ) -> CacheEntry | None:
        while deadline.remaining() > 0:
            time.sleep(min(_POLL_SECONDS, max(deadline.remaining(), 0)))
            pipe = self._client.pipeline()
            pipe.get(result_key)
            pipe.get(flight_key)
            pipe.exists(lock_key)
            found, shared, locked = pipe.execute()
            if found is not None:
                return self._keep(key, found, ttl)
            if shared is not None:
                return CacheEntry(decode(shared))
            if not locked:
                return None
        failure = Failure(FailureReason.TIMEOUT, "deadline passed waiting for another fetch")
        return CacheEntry(ProbeResult(None, failure))
