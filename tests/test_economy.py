"""Upstream economy through the real server: cache, single-flight, rate limit, LRU."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import samples, unique, unique_point

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

CALLS = "/data/2.5/weather"


def config(fake_url: str, max_entries: int = 100) -> str:
    module = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}'"
    return f"""
modules:
  default: {{{module}}}
  short: {{{module}, cache_ttl: 1s}}
  limited: {{{module}, rate_limit: 3/h}}
cache:
  max_entries: {max_entries}
"""


@pytest.fixture(scope="module")
def economy(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


def calls_for(fake_upstream, place: str) -> int:
    return len(fake_upstream.requests_naming(place))


def metric(exporter, name: str) -> float:
    return samples(exporter.get("/metrics").text).get(name, 0.0)


def test_many_concurrent_probes_of_a_new_place_cost_one_call(economy, fake_upstream):
    place = unique()
    fake_upstream.fault("slow", place, delay=0.5)  # keep the first fetch in flight
    miss = 'multitarget_exporter_cache_requests_total{result="miss"}'
    coalesced = 'multitarget_exporter_cache_requests_total{result="coalesced"}'
    before = (metric(economy, miss), metric(economy, coalesced))

    def probe(_):
        return requests.get(f"{economy.url}/probe", params={"target": place}, timeout=10)

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(probe, range(16)))
    assert all(samples(r.text)["probe_success"] == 1 for r in responses)
    assert calls_for(fake_upstream, place) == 1
    hits = [samples(r.text)["probe_cache_hit"] for r in responses]
    assert hits.count(0) == 1 and hits.count(1) == 15
    assert metric(economy, miss) - before[0] == 1
    assert metric(economy, coalesced) - before[1] == 15


def test_a_second_probe_within_the_ttl_is_a_hit(economy, fake_upstream):
    first = samples(economy.probe("Reykjavik,IS").text)
    second = samples(economy.probe("Reykjavik,IS").text)
    assert second["probe_cache_hit"] == 1 and second["probe_success"] == 1
    assert second["weather_temperature_celsius"] == first["weather_temperature_celsius"]
    assert second["probe_upstream_status_code"] == 200
    assert calls_for(fake_upstream, "Reykjavik,IS") == 1


def test_expiry_refetches(economy, fake_upstream):
    place = "Dubai"
    assert samples(economy.probe(place, module="short").text)["probe_cache_hit"] == 0
    assert samples(economy.probe(place, module="short").text)["probe_cache_hit"] == 1
    time.sleep(1.2)
    assert samples(economy.probe(place, module="short").text)["probe_cache_hit"] == 0
    assert calls_for(fake_upstream, place) == 2


def test_modules_do_not_share_entries(economy, fake_upstream):
    economy.probe("New York,NY,US")
    economy.probe("New York,NY,US", module="short")
    assert calls_for(fake_upstream, "New York,NY,US") == 2


def test_unknown_places_are_remembered_briefly_and_failures_not_at_all(economy, fake_upstream):
    nowhere = unique("Atlantis")
    economy.probe(nowhere)
    again = samples(economy.probe(nowhere).text)
    assert again['probe_failure_info{reason="not_found"}'] == 1 and again["probe_cache_hit"] == 1
    assert calls_for(fake_upstream, nowhere) == 1
    flaky = unique_point()
    fake_upstream.fault("json_500", flaky, times=1)
    assert samples(economy.probe(flaky).text)["probe_success"] == 0
    assert samples(economy.probe(flaky).text)["probe_success"] == 1
    assert calls_for(fake_upstream, flaky) == 2


def test_rate_limit_refuses_exactly_past_the_budget(economy, fake_upstream):
    before = fake_upstream.summary()["by_path"].get(CALLS, 0)
    places = [unique_point() for _ in range(5)]
    results = [samples(economy.probe(p, module="limited").text) for p in places]
    assert [r["probe_success"] for r in results] == [1, 1, 1, 0, 0]
    for refused in results[3:]:
        assert refused['probe_failure_info{reason="rate_limited"}'] == 1
        assert refused["probe_upstream_status_code"] == 0
    assert fake_upstream.summary()["by_path"][CALLS] - before == 3  # no call past the budget
    # What is cached is still served with the bucket empty.
    assert samples(economy.probe(places[0], module="limited").text)["probe_cache_hit"] == 1
    key = 'multitarget_exporter_rate_limited_total{module="limited"}'
    assert metric(economy, key) == 2


def test_the_lru_bound_holds(exporter_factory, fake_upstream):
    small = exporter_factory(config(fake_upstream.url, max_entries=3))
    places = ["London,GB", "Berlin,DE", "Tokyo,JP", "Sydney,AU"]
    before = {p: calls_for(fake_upstream, p) for p in places}
    for place in places:
        small.probe(place)
    assert metric(small, "multitarget_exporter_cache_entries") == 3
    assert samples(small.probe("Sydney,AU").text)["probe_cache_hit"] == 1
    assert samples(small.probe("London,GB").text)["probe_cache_hit"] == 0  # pushed out
    assert calls_for(fake_upstream, "London,GB") - before["London,GB"] == 2


def test_upstream_requests_are_counted(economy, fake_upstream):
    key = (
        "multitarget_exporter_upstream_requests_total"
        '{code="200",endpoint="weather",provider="openweathermap"}'
    )
    before = metric(economy, key)
    economy.probe(unique_point())
    economy.probe(unique_point(), module="short")
    assert metric(economy, key) - before == 2
    count = (
        "multitarget_exporter_upstream_request_duration_seconds_count"
        '{endpoint="weather",provider="openweathermap"}'
    )
    assert metric(economy, count) >= 2
