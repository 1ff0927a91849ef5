"""Stale readings and fallback modules (spec section 10) through the real server.

A refresh that fails while the place is fine answers with the last reading kept up to
`stale_if_error` old (probe_stale 1), on the memory and on the Redis cache; without one,
a module's `fallback` is asked within what is left of the deadline (probe_fallback 1).
"""

from __future__ import annotations

import time

import pytest
import yaml

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import parse_config
from tests.conftest import samples, unique_point

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def config(fake_url: str, cache: str = "") -> str:
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}'"
    om = f"provider: open_meteo, base_url: '{fake_url}', geocoding_url: '{fake_url}'"
    met = f"provider: met_norway, contact: ops@example.com, base_url: '{fake_url}'"
    return f"""
modules:
  stale: {{{owm}, cache_ttl: 1s, stale_if_error: 1h}}
  plain: {{{owm}, cache_ttl: 1s}}
  falls: {{{owm}, cache_ttl: 1s, timeout: 2s, fallback: meteo}}
  both: {{{owm}, cache_ttl: 1s, stale_if_error: 1h, fallback: meteo}}
  meteo: {{{om}}}
  narrow: {{{om}, allowed_targets: ['nowhere']}}
  guarded: {{{owm}, cache_ttl: 1s, timeout: 2s, fallback: narrow}}
  yr_a: {{{met}, cache_ttl: 1s, stale_if_error: 1h}}
  yr_b: {{{met}, cache_ttl: 1s, stale_if_error: 1h}}
{cache}"""


@pytest.fixture(scope="module")
def exporter(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


@pytest.fixture(autouse=True)
def no_faults(fake_upstream):
    yield
    fake_upstream.clear_faults()


def probe(exporter, target: str, module: str) -> dict[str, float]:
    return samples(exporter.probe(target, module=module).text)


def counter(exporter, name: str) -> float:
    return samples(exporter.get("/metrics").text).get(name, 0.0)


def weather_calls(fake_upstream, target: str) -> int:
    return len(fake_upstream.requests_naming(target))


def test_a_failed_refresh_answers_stale_and_says_why(exporter, fake_upstream):
    target = unique_point()
    fresh = probe(exporter, target, "stale")
    assert fresh["probe_success"] == 1 and fresh["probe_stale"] == 0
    fake_upstream.fault("json_503", target)
    time.sleep(1.2)  # past cache_ttl
    name = 'multitarget_exporter_stale_answers_total{module="stale",reason="upstream_error"}'
    before = counter(exporter, name)
    stale = probe(exporter, target, "stale")
    assert stale["probe_success"] == 1 and stale["probe_stale"] == 1
    assert stale["probe_cache_hit"] == 1 and stale["probe_upstream_status_code"] == 200
    assert not [k for k in stale if k.startswith("probe_failure_info")]
    assert stale["weather_temperature_celsius"] == fresh["weather_temperature_celsius"]
    assert counter(exporter, name) == before + 1
    line = [entry for entry in exporter.log_text().splitlines() if target in entry][-1]
    assert "stale_because=" in line and "upstream_error" in line and "level=warn" in line
    page = exporter.get("/logs", params={"target": target, "module": "stale"}).text
    assert "its refresh failed" in page
    # The failed refresh is remembered: the next scrapes answer stale at once.
    calls = weather_calls(fake_upstream, target)
    again = probe(exporter, target, "stale")
    assert again["probe_stale"] == 1 and weather_calls(fake_upstream, target) == calls
    assert counter(exporter, name) == before + 2


def test_an_unknown_place_is_never_answered_stale(exporter, fake_upstream):
    target = unique_point()
    assert probe(exporter, target, "stale")["probe_success"] == 1
    fake_upstream.fault("not_found", target)
    time.sleep(1.2)
    found = probe(exporter, target, "stale")
    assert found['probe_failure_info{reason="not_found"}'] == 1 and found["probe_stale"] == 0


def test_without_stale_if_error_a_failed_refresh_fails(exporter, fake_upstream):
    target = unique_point()
    assert probe(exporter, target, "plain")["probe_success"] == 1
    fake_upstream.fault("json_503", target)
    time.sleep(1.2)
    found = probe(exporter, target, "plain")
    assert found['probe_failure_info{reason="upstream_error"}'] == 1
    assert "probe_stale" not in found and "probe_fallback" not in found


def test_the_fallback_answers_within_the_deadline(exporter, fake_upstream):
    target = unique_point()
    fake_upstream.fault("hang", target, path="/data/2.5/weather")
    name = 'multitarget_exporter_fallbacks_total{module="falls",reason="timeout"}'
    before = counter(exporter, name)
    started = time.monotonic()
    found = probe(exporter, target, "falls")
    took = time.monotonic() - started
    assert found["probe_success"] == 1 and found["probe_fallback"] == 1
    info = [k for k in found if k.startswith("weather_location_info")]
    assert info and 'provider="open_meteo"' in info[0]
    assert took < 2.0 + 0.6  # half the 2 s to the first, the rest to the fallback
    assert found["probe_duration_seconds"] >= 0.9  # the first had its half
    assert counter(exporter, name) == before + 1
    healthy = probe(exporter, unique_point(), "falls")
    assert healthy["probe_fallback"] == 0 and "openweathermap" in str(healthy)


def test_a_target_the_fallback_cannot_take_keeps_the_first_failure(exporter, fake_upstream):
    fake_upstream.fault("unauthorized", "2643743")
    found = probe(exporter, "id:2643743", "falls")  # Open-Meteo takes no city ids
    assert found['probe_failure_info{reason="unauthorized"}'] == 1
    assert found["probe_fallback"] == 0


def test_the_fallbacks_allowed_targets_hold(exporter, fake_upstream):
    target = unique_point()
    fake_upstream.fault("json_503", target, path="/data/2.5/weather")
    found = probe(exporter, target, "guarded")
    assert found['probe_failure_info{reason="upstream_error"}'] == 1
    assert found["probe_fallback"] == 0
    asked = [
        f"{r['query'].get('latitude')},{r['query'].get('longitude')}"
        for r in fake_upstream.summary()["requests"]
        if r["path"] == "/v1/forecast"
    ]
    assert target not in asked  # Open-Meteo never asked


def test_a_fallback_answer_says_it_is_not_stale(exporter, fake_upstream):
    target = unique_point()  # nothing kept: the fallback answers
    fake_upstream.fault("json_503", target, path="/data/2.5/weather")
    found = probe(exporter, target, "both")
    assert found["probe_fallback"] == 1 and found["probe_stale"] == 0


def test_a_point_shared_by_two_modules_answers_stale_for_both(exporter, fake_upstream):
    """The second module reads the point's kept answer without a call; it keeps the
    reading for itself all the same, and answers stale with it when refreshes fail."""
    fake_upstream.met(expires_seconds=1, update_seconds=10**7)
    try:
        target = "68.4321,16.1234"
        assert probe(exporter, target, "yr_a")["probe_success"] == 1
        assert probe(exporter, target, "yr_b")["probe_cache_hit"] == 1  # the kept answer
        fake_upstream.fault("json_503", target, path="/weatherapi/locationforecast/2.0/complete")
        time.sleep(1.3)
        for module in ("yr_b", "yr_a"):
            found = probe(exporter, target, module)
            assert found["probe_stale"] == 1 and found["probe_success"] == 1, module
    finally:
        fake_upstream.met(expires_seconds=1800, update_seconds=3600)


def test_a_kept_reading_comes_before_the_fallback(exporter, fake_upstream):
    target = unique_point()
    assert probe(exporter, target, "both")["probe_stale"] == 0
    fake_upstream.fault("json_500", target)
    time.sleep(1.2)
    found = probe(exporter, target, "both")
    assert found["probe_stale"] == 1 and found["probe_fallback"] == 0


def test_stale_readings_are_shared_through_redis(exporter_factory, fake_upstream, redis_server):
    _, url = redis_server
    text = config(fake_upstream.url, f"cache:\n  backend: redis\n  url: {url}\n")
    first, second = exporter_factory(text), exporter_factory(text)
    target = unique_point()
    assert probe(first, target, "stale")["probe_success"] == 1
    fake_upstream.fault("rate_limited", target)
    time.sleep(1.2)
    found = probe(second, target, "stale")  # a process that never had the reading itself
    assert found["probe_stale"] == 1 and found["probe_success"] == 1
    assert 'multitarget_exporter_stale_answers_total{module="stale",reason="rate_limited"}' in (
        second.get("/metrics").text
    )


@pytest.mark.parametrize(
    ("modules", "problem"),
    [
        ({"a": {"fallback": "nowhere"}}, "modules.a.fallback: 'nowhere' is not a module"),
        ({"a": {"fallback": "a"}}, "modules.a.fallback: a cycle: a -> a"),
        (
            {"a": {"fallback": "b"}, "b": {"fallback": "a"}},
            "modules.a.fallback: a cycle: a -> b -> a",
        ),
        (
            {"a": {"cache_ttl": "10m", "stale_if_error": "5m"}},
            "modules.a.stale_if_error: must be at least cache_ttl (10m)",
        ),
        (
            {"a": {"cache_ttl": 0, "stale_if_error": "1h"}},
            "modules.a.stale_if_error: needs a cache: cache_ttl is 0",
        ),
        ({"a": {"stale_if_error": "soon"}}, "modules.a.stale_if_error: 'soon' is not a duration"),
    ],
)
def test_stale_and_fallback_errors_name_the_key(modules, problem):
    document = {
        "modules": {
            name: {"provider": "open_meteo", **settings} for name, settings in modules.items()
        }
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_a_chain_is_one_hop_and_not_a_cycle():
    config = parse_config(
        yaml.safe_load(
            "modules:\n  a: {provider: open_meteo, fallback: b, stale_if_error: 2h}\n"
            "  b: {provider: open_meteo, fallback: c}\n  c: {provider: open_meteo}\n"
        )
    )
    assert (
        config.modules["a"].fallback == "b" and config.modules["a"].stale_if_error_seconds == 7200
    )
    assert config.redacted()["modules"]["a"]["stale_if_error"] == "2h"
