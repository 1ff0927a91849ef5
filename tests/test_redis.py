"""The Redis cache: shared by exporter processes, and survivable when Redis goes away."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import requests

from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.providers.geocoding import Place
from multitarget_exporter.providers.open_meteo import parse_forecast
from multitarget_exporter.providers.openweathermap import parse_air, parse_current
from multitarget_exporter.upstream.rediscache import decode, encode
from tests.conftest import samples, unique_point
from tests.test_forecast import NOW, H, om_answer

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "owm"


def test_results_survive_the_trip_through_redis():
    for name in ("full", "rain_and_snow", "extra_conditions", "minimal"):
        result = parse_current(json.loads((FIXTURES / f"{name}.json").read_text()))
        assert decode(encode(result)) == result
    failure = ProbeResult(None, Failure(FailureReason.NOT_FOUND, "HTTP 404: city not found"), 404)
    assert decode(encode(failure)) == failure
    # Open-Meteo's readings and OWM's air quality make the trip too.
    meteo = json.loads((FIXTURES.parent / "open_meteo" / "full.json").read_text())
    result = parse_forecast(meteo, 200, Place("Berlin", "DE", 52.52437, 13.41053))
    assert decode(encode(result)) == result
    # Section 14's fields: fresh snow's depth (None: a provider without it), and when the
    # forecast was made.
    assert result.reading.snowfall_depth_meters == {"1h": 0.0}
    for depth in ({"1h": 0.007}, None):
        fresh = replace(
            result.reading,
            snowfall_depth_meters=depth,
            forecast_updated_timestamp_seconds=1795601564.0,
        )
        assert decode(encode(replace(result, reading=fresh))) == replace(result, reading=fresh)
    weather = parse_current(json.loads((FIXTURES / "full.json").read_text()))
    air = parse_air(json.loads((FIXTURES / "air.json").read_text()))
    with_air = replace(
        weather.reading, air_quality_index=air[0], air_pollutants_grams_per_cubic_meter=air[1]
    )
    for reading in (with_air, replace(weather.reading, missing="air_quality")):
        assert decode(encode(replace(weather, reading=reading))) == replace(
            weather, reading=reading
        )
    # Forecast steps (with their conditions), days, indexes and pollen too.
    forecast = parse_forecast(om_answer(), 200, None, (H["1h"], H["6h"]), NOW)
    assert forecast.reading.forecast and forecast.reading.daily
    pollen = replace(
        forecast.reading,
        air_quality_european_index=41.0,
        air_quality_usa_index=77.0,
        pollen_grains_per_cubic_meter={"birch": 12.5},
    )
    assert decode(encode(replace(forecast, reading=pollen))) == replace(forecast, reading=pollen)


def test_a_newer_versions_fields_are_left_out_and_each_form_has_its_own_keys():
    """In a rolling upgrade both versions share Redis: a reading with fields this version
    does not know still decodes (without them), and a reading in this version's form sits
    under keys an older version does not read (it would fail on the new fields)."""
    from multitarget_exporter.upstream.rediscache import PREFIX, READING_FORM, reading_key

    forecast = parse_forecast(om_answer(), 200, None, (H["1h"], H["6h"]), NOW)
    document = json.loads(encode(forecast))
    document["reading"]["a_later_field_meters"] = 1.0
    document["reading"]["forecast"][0]["a_later_step_field"] = 2.0
    conditions = document["reading"]["forecast"][0]["conditions"]
    assert conditions  # a condition of the step takes a later field too
    conditions[0]["a_later_condition_field"] = "x"
    document["reading"]["daily"][0]["a_later_day_field"] = 3
    assert decode(json.dumps(document)) == forecast
    for kind in ("r", "l", "f", "s"):
        key = reading_key(kind, "k")
        assert key.startswith(PREFIX) and READING_FORM in key
        assert key != f"{PREFIX}{kind}:k"  # the key of the form before fields were added


def shared_config(fake_url: str, redis_url: str) -> str:
    module = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}'"
    return f"""
modules:
  default: {{{module}}}
  short: {{{module}, cache_ttl: 1s}}
  limited: {{{module}, rate_limit: 3/h}}
cache:
  backend: redis
  url: {redis_url}
"""


def probe(exporter, target: str, module: str = "default") -> dict[str, float]:
    response = requests.get(
        f"{exporter.url}/probe",
        timeout=10,
        params={"target": target, "module": module},
        headers={"Connection": "close"},
    )
    return samples(response.text)


def test_two_exporters_share_one_upstream_call(exporter_factory, fake_upstream, redis_server):
    _, url = redis_server
    config = shared_config(fake_upstream.url, url)
    first = exporter_factory(config, args=["--workers", "2", "--threads", "8"])
    second = exporter_factory(config, args=["--workers", "2", "--threads", "8"])
    assert "settings accepted but not in force" not in first.log_text()
    place = unique_point()
    fake_upstream.fault("slow", place, delay=0.5)  # keep the first fetch in flight
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: probe((first, second)[i % 2], place), range(16)))
    assert all(r["probe_success"] == 1 for r in results)
    assert len(fake_upstream.requests_naming(place)) == 1
    assert [r["probe_cache_hit"] for r in results].count(0) == 1
    # Later probes of either exporter, any worker, are hits.
    for exporter in (first, second, first, second):
        assert probe(exporter, place)["probe_cache_hit"] == 1
    assert len(fake_upstream.requests_naming(place)) == 1


def test_expiry_in_redis(exporter_factory, fake_upstream, redis_server):
    _, url = redis_server
    exporter = exporter_factory(shared_config(fake_upstream.url, url))
    place = unique_point()
    assert probe(exporter, place, "short")["probe_cache_hit"] == 0
    assert probe(exporter, place, "short")["probe_cache_hit"] == 1
    time.sleep(1.2)
    assert probe(exporter, place, "short")["probe_cache_hit"] == 0
    assert len(fake_upstream.requests_naming(place)) == 2


def test_probes_go_on_when_redis_goes_away(exporter_factory, fake_upstream, redis_server):
    process, url = redis_server
    exporter = exporter_factory(shared_config(fake_upstream.url, url))
    assert probe(exporter, unique_point())["probe_success"] == 1
    process.terminate()
    process.wait(10)
    for _ in range(3):
        started = time.monotonic()
        assert probe(exporter, unique_point())["probe_success"] == 1
        assert time.monotonic() - started < 2  # no long wait on a dead Redis
    place = unique_point()
    probe(exporter, place)
    assert probe(exporter, place)["probe_cache_hit"] == 1  # the in-process cache stands in
    assert "redis cache unavailable" in exporter.log_text()
    errors = samples(requests.get(f"{exporter.url}/metrics", timeout=10).text)
    assert errors['multitarget_exporter_cache_backend_errors_total{backend="redis"}'] >= 1


def test_the_rate_limit_is_one_budget_for_every_process(
    exporter_factory, fake_upstream, redis_server
):
    _, url = redis_server
    config = shared_config(fake_upstream.url, url)
    first = exporter_factory(config, args=["--workers", "2", "--threads", "4"])
    second = exporter_factory(config, args=["--workers", "2", "--threads", "4"])
    places = [unique_point() for _ in range(6)]
    results = [probe((first, second)[i % 2], p, "limited") for i, p in enumerate(places)]
    assert [r["probe_success"] for r in results] == [1, 1, 1, 0, 0, 0]
    assert all(r['probe_failure_info{reason="rate_limited"}'] == 1 for r in results[3:])
    assert sum(len(fake_upstream.requests_naming(p)) for p in places) == 3


def test_a_result_published_just_before_the_lock_is_taken_costs_no_call(redis_server):
    """The race the issue's benchmark found: read (nothing), the other fetcher
    publishes and unlocks, then this process wins the lock. It must not fetch."""
    from multitarget_exporter.model.deadline import Deadline
    from multitarget_exporter.upstream.rediscache import RedisCache, reading_key

    cache = RedisCache(redis_server[1])
    published = parse_current(json.loads((FIXTURES / "full.json").read_text()))
    real_get = cache._client.get
    reads = []

    def get_as_if_earlier(key):
        reads.append(key)
        if len(reads) == 1:  # the first read happened before the other fetcher published
            cache._client.set(reading_key("r", "k"), encode(published), px=60_000)
            return None
        return real_get(key)

    cache._client.get = get_as_if_earlier
    fetched = []

    def fetch():
        fetched.append(1)
        return published

    entry, outcome = cache.fetch_through("k", fetch, lambda _: 600.0, Deadline(5))
    assert fetched == [] and outcome == "hit" and entry.result == published
    assert real_get(reading_key("l", "k")) is None  # and the lock it took is released


def test_each_process_keeps_what_it_read_from_redis_until_it_expires_there(redis_server):
    """A hit costs no Redis round trip once a process has the result, and never
    outlives the entry in Redis; a second process (another cache object) reads
    Redis once, then keeps its own copy."""
    from multitarget_exporter.model.deadline import Deadline
    from multitarget_exporter.upstream.rediscache import RedisCache, reading_key

    url = redis_server[1]
    first, second = RedisCache(url), RedisCache(url)
    reading = parse_current(json.loads((FIXTURES / "full.json").read_text()))
    fetched = []

    def fetch():
        fetched.append(1)
        return reading

    def ttl(_):
        return 1.5

    assert first.fetch_through("k", fetch, ttl, Deadline(5))[1] == "miss"
    assert second.fetch_through("k", fetch, ttl, Deadline(5))[1] == "hit"  # from Redis
    reads = []
    for cache in (first, second):
        real_get = cache._client.get
        cache._client.get = lambda key, real_get=real_get: reads.append(key) or real_get(key)
    for cache in (first, second):
        entry, outcome = cache.fetch_through("k", fetch, ttl, Deadline(5))
        assert outcome == "hit" and entry.result == reading
    assert reads == [] and fetched == [1]  # both served from their own copies
    redis.Redis.from_url(url).delete(reading_key("r", "k"))
    time.sleep(1.6)  # past the entry's expiry in Redis: the copies are gone too
    assert first.fetch_through("k", fetch, ttl, Deadline(5))[1] == "miss"
    assert fetched == [1, 1]
