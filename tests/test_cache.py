"""The in-memory cache, single-flight and the token bucket, in one process."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from multitarget_exporter.config.modules import ModuleConfig
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.ratelimit import RateLimit, TokenBucket
from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult, Reading
from multitarget_exporter.upstream.cache import MemoryCache, ttl_for

READING = ProbeResult(Reading(provider="test", temperature_celsius=1.0), None, 200)
MODULE = ModuleConfig("m", "openweathermap", "http://127.0.0.1:1", cache_ttl_seconds=600)


def counting(result=READING, delay=0.0):
    calls = []

    def fetch():
        calls.append(1)
        time.sleep(delay)
        return result

    return fetch, calls


def through(cache, key, fetch, ttl=600.0, seconds=5.0):
    """(result, outcome), as a probe sees them."""
    entry, outcome = cache.fetch_through(key, fetch, lambda _: ttl, Deadline(seconds))
    return entry.result, outcome


def test_hit_within_ttl_and_refetch_after():
    cache = MemoryCache()
    fetch, calls = counting()
    assert through(cache, "k", fetch, ttl=0.2)[1] == "miss"
    assert through(cache, "k", fetch, ttl=0.2) == (READING, "hit")
    time.sleep(0.25)
    assert through(cache, "k", fetch, ttl=0.2)[1] == "miss"
    assert len(calls) == 2


def test_least_recently_used_goes_first():
    cache = MemoryCache(max_entries=3)
    fetch, calls = counting()
    for key in ("a", "b", "c"):
        through(cache, key, fetch)
    through(cache, "a", fetch)  # a is now the most recently used
    through(cache, "d", fetch)  # b goes
    assert len(cache) == 3
    assert through(cache, "a", fetch)[1] == "hit"
    assert through(cache, "b", fetch)[1] == "miss"
    assert len(calls) == 5


def test_concurrent_misses_share_one_fetch():
    cache = MemoryCache()
    fetch, calls = counting(delay=0.3)
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: through(cache, "k", fetch), range(20)))
    assert len(calls) == 1
    assert sorted(o for _, o in outcomes).count("miss") == 1
    assert all(result is READING for result, _ in outcomes)


def test_probes_of_one_entry_share_where_its_encodings_are_kept():
    cache = MemoryCache()
    fetch, _ = counting()
    first, _ = cache.fetch_through("k", fetch, lambda _: 600.0, Deadline(5))
    first.encoded["text/plain"] = b"kept"
    again, outcome = cache.fetch_through("k", fetch, lambda _: 600.0, Deadline(5))
    assert outcome == "hit" and again.encoded == {"text/plain": b"kept"}
    other, _ = cache.fetch_through("other", fetch, lambda _: 600.0, Deadline(5))
    assert other.encoded == {}


def test_a_waiter_gives_up_at_its_own_deadline():
    cache = MemoryCache()
    release = threading.Event()

    def slow():
        release.wait(5)
        return READING

    leader = threading.Thread(target=lambda: through(cache, "k", slow))
    leader.start()
    time.sleep(0.05)
    started = time.monotonic()
    result, outcome = through(cache, "k", slow, seconds=0.2)
    assert outcome == "coalesced" and result.failure.reason is FailureReason.TIMEOUT
    assert time.monotonic() - started < 1
    release.set()
    leader.join()


def test_what_is_cached_for_how_long():
    not_found = ProbeResult(None, Failure(FailureReason.NOT_FOUND), 404)
    timeout = ProbeResult(None, Failure(FailureReason.TIMEOUT), 0)
    assert ttl_for(MODULE, READING) == 600
    assert ttl_for(MODULE, not_found) == 60
    assert ttl_for(MODULE, timeout) == 0
    # A reading served without a part asked for (air quality) is kept as briefly.
    partial = ProbeResult(replace(READING.reading, missing="air_quality"), None, 200)
    assert ttl_for(MODULE, partial) == 60
    assert ttl_for(replace(MODULE, cache_ttl_seconds=30), partial) == 30
    cache = MemoryCache()
    fetch, calls = counting(timeout)
    through(cache, "t", fetch, ttl=0)
    through(cache, "t", fetch, ttl=0)
    assert len(calls) == 2  # failures are fetched again


def test_token_bucket_refuses_exactly_past_the_budget():
    bucket = TokenBucket(RateLimit(3, 3600.0))
    assert [bucket.take() for _ in range(5)] == [True, True, True, False, False]
    fast = TokenBucket(RateLimit(100, 1.0))
    for _ in range(100):
        assert fast.take()
    assert not fast.take()
    time.sleep(0.05)  # refills at 100 a second
    assert fast.take()


def test_token_bucket_takes_several_calls_at_once():
    bucket = TokenBucket(RateLimit(5, 3600.0))
    assert [bucket.take(2) for _ in range(3)] == [True, True, False]
    assert bucket.take(1) and not bucket.take(1)
    # A fetch dearer than the whole budget is let through alone, not refused forever.
    tiny = TokenBucket(RateLimit(1, 3600.0))
    assert tiny.take(2) and not tiny.take(2)
