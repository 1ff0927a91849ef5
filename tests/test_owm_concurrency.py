"""OpenWeatherMap's calls on a miss go out side by side (spec section 14).

The forecast call takes the target's own query and starts with the weather
call; the air call starts with them for a `lat,lon` target, and right after
the weather answer otherwise. Shown against the fake upstream with `slow`
faults of 1 s on each path: a miss takes about the slowest call, not the sum.
The margins are wide (a shared, noisy machine): side by side is under 1.8 s,
one after another at least 2 s.

The first tests drive the provider itself, in plain threads; the last ones
the real exporter under gunicorn, with gevent's workers and with gthread's.
"""

from __future__ import annotations

import threading
import time

import pytest

from multitarget_exporter.config.modules import parse_config
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.reading import FailureReason
from multitarget_exporter.model.targets import parse_target
from multitarget_exporter.providers.openweathermap import OpenWeatherMap
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.upstream.gate import Gate
from multitarget_exporter.upstream.tallies import MemoryTallies
from tests.conftest import OWM_KEY, promtool_check, samples, unique, unique_point

# Starts the fake upstream (and, below, exporters): left out of the quick run.
pytestmark = pytest.mark.slow

WEATHER, FORECAST, AIR = "/data/2.5/weather", "/data/2.5/forecast", "/data/2.5/air_pollution"
SIDE_BY_SIDE = 1.8  # three calls of 1 s each: about 1 s together, 3 s in a row


def provider(fake_upstream, forecast: bool = True, air: bool = True) -> OpenWeatherMap:
    module = {
        "provider": "openweathermap",
        "api_key": OWM_KEY,
        "base_url": fake_upstream.url,
        "timeout": "5s",
    }
    if forecast:
        module["forecast"] = ["3h", "24h"]
    if air:
        module["air_quality"] = True
    config = parse_config({"modules": {"m": module}})
    return OpenWeatherMap(config.modules["m"])


def counts(fake_upstream) -> dict[str, int]:
    by_path = fake_upstream.summary()["by_path"]
    return {path: by_path.get(path, 0) for path in (WEATHER, FORECAST, AIR)}


def spent(fake_upstream, before: dict[str, int]) -> dict[str, int]:
    return {path: count - before[path] for path, count in counts(fake_upstream).items()}


def slow(fake_upstream, match: str, *paths: str, delay: float = 1.0) -> None:
    for path in paths:
        fake_upstream.fault("slow", match, path=path, times=1, delay=delay)


def beside_threads(within: float = 2.0) -> list[str]:
    """The calls beside a probe still running, once they had `within` seconds to end
    (a call that has handed back its outcome may take a moment to end its thread)."""
    ends = time.monotonic() + within
    while True:
        running = [t.name for t in threading.enumerate() if t.name.startswith("owm-")]
        if not running or time.monotonic() > ends:
            return running
        time.sleep(0.02)


def fetch(owm: OpenWeatherMap, target: str, seconds: float = 5.0):
    log = ProbeLog()
    started = time.monotonic()
    result = owm.fetch(parse_target(target), Deadline(seconds), log)
    return result, time.monotonic() - started, log


def test_a_lat_lon_miss_takes_its_slowest_call_not_the_sum(fake_upstream):
    point = unique_point()
    slow(fake_upstream, point, WEATHER, FORECAST, AIR)
    before = counts(fake_upstream)
    try:
        result, elapsed, _ = fetch(provider(fake_upstream), point)
    finally:
        fake_upstream.clear_faults()
    reading = result.reading
    assert reading is not None, result.failure
    assert reading.forecast and reading.air_quality_index is not None
    assert reading.missing == ""
    assert 0.95 <= elapsed < SIDE_BY_SIDE, elapsed
    assert spent(fake_upstream, before) == {WEATHER: 1, FORECAST: 1, AIR: 1}
    assert beside_threads() == []


def test_the_forecast_asks_with_the_targets_own_query(fake_upstream):
    """The forecast needs nothing from the weather answer: it names the place as the
    weather call does, so the two start together."""
    slow(fake_upstream, "London,GB", WEATHER, FORECAST)
    try:
        result, elapsed, _ = fetch(provider(fake_upstream, air=False), "London,GB")
    finally:
        fake_upstream.clear_faults()
    assert result.reading is not None and result.reading.forecast
    assert 0.95 <= elapsed < SIDE_BY_SIDE, elapsed  # two calls of 1 s: together, not 2 s
    asked = [e for e in fake_upstream.summary()["requests"] if e["path"] == FORECAST]
    assert asked[-1]["query"]["q"] == "London,GB"
    assert "lat" not in asked[-1]["query"]


def test_without_coordinates_the_air_call_waits_for_the_weather_answer(fake_upstream):
    """A place name's point comes with the weather answer: the air call follows it, while
    the forecast went out with the weather call."""
    slow(fake_upstream, "Tokyo,JP", WEATHER, FORECAST)
    slow(fake_upstream, "*", AIR)
    before = counts(fake_upstream)
    try:
        result, elapsed, _ = fetch(provider(fake_upstream), "Tokyo,JP")
    finally:
        fake_upstream.clear_faults()
    reading = result.reading
    assert reading is not None and reading.forecast and reading.air_quality_index is not None
    # Weather then air, in a row (2 s); the forecast beside them, not a third second.
    assert 1.9 <= elapsed < 2.0 + SIDE_BY_SIDE - 1.0, elapsed
    assert spent(fake_upstream, before) == {WEATHER: 1, FORECAST: 1, AIR: 1}
    asked = [e for e in fake_upstream.summary()["requests"] if e["path"] == AIR]
    point = asked[-1]["query"]
    assert (float(point["lat"]), float(point["lon"])) == (
        reading.latitude_degrees,
        reading.longitude_degrees,
    )


@pytest.mark.parametrize(
    ("fault", "why"),
    [("json_500", "upstream_error"), ("malformed", "invalid_response"), ("hang", "timeout")],
)
def test_a_failed_forecast_or_air_call_leaves_the_weather_intact(fake_upstream, fault, why):
    point = unique_point()
    fake_upstream.fault(fault, point, path=FORECAST, times=1, delay=5)
    fake_upstream.fault(fault, point, path=AIR, times=1, delay=5)
    try:
        result, elapsed, log = fetch(provider(fake_upstream), point, seconds=1.5)
    finally:
        fake_upstream.clear_faults()
    reading = result.reading
    assert reading is not None, result.failure
    assert reading.temperature_celsius == pytest.approx(14.85)
    assert reading.forecast == () and reading.air_quality_index is None
    assert set(reading.missing.split(",")) == {"forecast", "air_quality"}
    assert elapsed < 1.5 + 0.8, elapsed  # a hang is cut at the deadline
    text = log.text()
    for part in ("forecast", "air_quality"):
        assert why in text.split(f"{part} left out", 1)[1].splitlines()[0], text
    assert beside_threads() == []


def test_a_failed_weather_call_leaves_no_call_running_past_the_deadline(fake_upstream):
    """The weather call fails at once (an unknown place) while the forecast call hangs:
    the probe fails as before, and waits for the forecast call, which ends at the deadline
    (the client's watchdog cuts it), so nothing it started runs on after it."""
    place = unique()
    fake_upstream.fault("hang", place, path=FORECAST, times=1, delay=10)
    try:
        result, elapsed, log = fetch(provider(fake_upstream), place, seconds=1.0)
    finally:
        fake_upstream.clear_faults()
    assert result.failure is not None and result.failure.reason == FailureReason.NOT_FOUND
    assert result.upstream_status_code == 404
    assert 0.9 <= elapsed < 1.0 + 0.8, elapsed
    assert beside_threads() == []
    # The forecast call's own end is in the log: cut at the deadline.
    forecast_lines = [line for line in log.text().splitlines() if "/data/2.5/forecast" in line]
    assert any("timeout" in line for line in forecast_lines), log.text()


def budgeted(fake_upstream, budget: int) -> OpenWeatherMap:
    """The provider with forecast and air on a module with a daily budget, at midnight UTC
    (a tenth of the budget may be spent then)."""
    module = {
        "provider": "openweathermap",
        "api_key": OWM_KEY,
        "base_url": fake_upstream.url,
        "timeout": "5s",
        "forecast": ["3h"],
        "air_quality": True,
        "daily_budget": budget,
    }
    config = parse_config({"modules": {"m": module}})
    midnight = 86400.0 * 20_000
    gate = Gate("m", budget, MemoryTallies(), clock=lambda: midnight)
    return OpenWeatherMap(config.modules["m"], gate=gate)


def test_the_budgets_last_call_goes_to_the_weather_not_to_a_call_beside_it(fake_upstream):
    """With one call left, the weather call has it and the forecast and air calls are not
    made; with none left, no call at all. A call beside it never takes the weather's."""
    owm = budgeted(fake_upstream, 10)  # at midnight: 1 call
    point = unique_point()
    before = counts(fake_upstream)
    result, _, log = fetch(owm, point)
    assert result.reading is not None, result.failure
    assert set(result.reading.missing.split(",")) == {"forecast", "air_quality"}
    assert "daily budget" in log.text()
    assert spent(fake_upstream, before) == {WEATHER: 1, FORECAST: 0, AIR: 0}
    result, _, log = fetch(owm, unique_point())
    assert result.failure is not None and result.failure.reason == FailureReason.RATE_LIMITED
    assert spent(fake_upstream, before) == {WEATHER: 1, FORECAST: 0, AIR: 0}
    assert beside_threads() == []


def test_with_calls_left_every_call_goes_out(fake_upstream):
    owm = budgeted(fake_upstream, 30)  # at midnight: 3 calls
    before = counts(fake_upstream)
    result, _, _ = fetch(owm, unique_point())
    assert result.reading is not None and result.reading.missing == ""
    assert spent(fake_upstream, before) == {WEATHER: 1, FORECAST: 1, AIR: 1}


def test_an_error_in_a_call_beside_it_is_that_parts_reason_not_the_probes(
    fake_upstream, monkeypatch
):
    """A bug in the forecast's handling leaves the forecast out, saying so; it neither
    fails a good weather reading nor hides why a bad one failed."""
    owm = provider(fake_upstream, air=False)

    def broken(*args):
        raise KeyError("surprise")

    monkeypatch.setattr(owm, "_forecast", broken)
    result, _, log = fetch(owm, unique_point())
    assert result.reading is not None, result.failure
    assert result.reading.missing == "forecast"
    assert "internal error: KeyError" in log.text()
    result, _, _ = fetch(owm, unique())  # a place the fake does not know
    assert result.failure is not None and result.failure.reason == FailureReason.NOT_FOUND


# -- through the real exporter ----------------------------------------------------------


def config(fake_url: str) -> str:
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}'"
    return f"""
modules:
  owm_all: {{{owm}, forecast: [3h, 24h], air_quality: true, cache_ttl: 10m, timeout: 5s}}
"""


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_a_miss_through_the_exporter_takes_its_slowest_call(
    exporter_factory, fake_upstream, worker_class
):
    exporter = exporter_factory(config(fake_upstream.url), args=["--worker-class", worker_class])
    point = unique_point()
    slow(fake_upstream, point, WEATHER, FORECAST, AIR)
    before = counts(fake_upstream)
    try:
        started = time.monotonic()
        response = exporter.probe(point, module="owm_all")
        elapsed = time.monotonic() - started
    finally:
        fake_upstream.clear_faults()
    assert response.status_code == 200
    checked = promtool_check(response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = samples(response.text)
    assert found["probe_success"] == 1 and found["probe_cache_hit"] == 0
    assert 'weather_forecast_temperature_celsius{horizon="3h"}' in found
    assert "weather_air_quality_index" in found
    assert 0.95 <= found["probe_duration_seconds"] < SIDE_BY_SIDE, found
    assert elapsed < SIDE_BY_SIDE + 0.5, elapsed
    assert spent(fake_upstream, before) == {WEATHER: 1, FORECAST: 1, AIR: 1}
    # The reading is whole in the cache: a hit costs nothing and has every part.
    again = samples(exporter.probe(point, module="owm_all").text)
    assert again["probe_cache_hit"] == 1 and "weather_air_quality_index" in again
    assert spent(fake_upstream, before) == {WEATHER: 1, FORECAST: 1, AIR: 1}
