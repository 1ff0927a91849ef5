"""Spec section 14's reading changes through the real exporter and the fake upstream.

- `weather_forecast_updated_timestamp_seconds`: MET Norway's `meta.updated_at`
  (the fake's is the last multiple of its `update_seconds`), on a miss and on
  every hit, from memory and from another process through Redis; no other
  provider says when its forecast was made.
- Open-Meteo's `snowfall` (cm of fresh snow) as `weather_snowfall_depth_meters`
  and, as water (7 cm to 10 mm), in `weather_snow_meters`: recomputed here from
  the fake's own answer to the question the exporter asked.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import promtool_check, samples, unique_point

# Starts real servers (gunicorn, Redis, the fake upstream): left out of the quick run.
pytestmark = pytest.mark.slow

UPDATED = "weather_forecast_updated_timestamp_seconds"
SNOW = 'weather_snow_meters{window="1h"}'
DEPTH = 'weather_snowfall_depth_meters{window="1h"}'


def config(fake_url: str, cache: str = "") -> str:
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}'"
    om = f"provider: open_meteo, base_url: '{fake_url}', geocoding_url: '{fake_url}'"
    met = f"provider: met_norway, contact: ops@example.com, base_url: '{fake_url}'"
    return f"""
modules:
  owm: {{{owm}, forecast: [3h]}}
  om: {{{om}, forecast: [3h]}}
  om_nocache: {{{om}, cache_ttl: 0s}}
  met: {{{met}}}
{cache}"""


@pytest.fixture(scope="module")
def exporter(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


def probe(exporter, target: str, module: str) -> dict[str, float]:
    response = exporter.probe(target, module=module)
    assert response.status_code == 200, response.text
    checked = promtool_check(response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return samples(response.text)


def made_between(fake_upstream, started: float, ended: float) -> set[float]:
    """The fake's `updated_at` for an answer given between the two times."""
    every = fake_upstream.met()["update_seconds"]
    return {float(started // every * every), float(ended // every * every)}


def test_met_norway_says_when_its_forecast_was_made_on_a_miss_and_a_hit(exporter, fake_upstream):
    point = unique_point()
    started = time.time()
    miss = probe(exporter, point, "met")
    hit = probe(exporter, point, "met")
    assert (miss["probe_cache_hit"], hit["probe_cache_hit"]) == (0, 1)
    assert miss[UPDATED] in made_between(fake_upstream, started, time.time())
    assert hit[UPDATED] == miss[UPDATED]
    assert miss[UPDATED] <= time.time()  # made before the answer came


@pytest.mark.parametrize(("target", "module"), [("London,GB", "owm"), ("Berlin,DE", "om")])
def test_providers_that_do_not_say_have_no_forecast_updated(exporter, target, module):
    found = probe(exporter, target, module)
    assert found["probe_success"] == 1 and UPDATED not in found


def test_a_reading_shared_through_redis_keeps_updated_at_and_snowfall_depth(
    exporter_factory, fake_upstream, redis_server
):
    """Readings travel between processes as JSON: the new fields must make the trip."""
    _, url = redis_server
    shared = config(fake_upstream.url, f"cache:\n  backend: redis\n  url: {url}\n")
    first, second = exporter_factory(shared), exporter_factory(shared)
    point = unique_point()
    asked = probe(first, point, "met")
    answered = probe(second, point, "met")
    assert answered["probe_cache_hit"] == 1 and answered[UPDATED] == asked[UPDATED]
    berlin = probe(first, "52.52,13.41", "om")
    again = probe(second, "52.52,13.41", "om")
    assert again["probe_cache_hit"] == 1
    assert (again[SNOW], again[DEPTH]) == (berlin[SNOW], berlin[DEPTH])


def last_hour_snowfall(fake_upstream, since: float) -> float | None:
    """The centimetres of snow the fake's answer to the exporter's last /v1/forecast
    question gives for the last full hour before its current time."""
    asked = [r for r in fake_upstream.summary()["requests"] if r["path"] == "/v1/forecast"]
    assert asked and asked[-1]["time"] >= since
    answer = requests.get(f"{fake_upstream.url}/v1/forecast", params=asked[-1]["query"], timeout=5)
    answer.raise_for_status()
    document = answer.json()
    now = document["current"]["time"]
    hourly = document["hourly"]
    hours = [i for i, at in enumerate(hourly["time"]) if now - 3600 < at <= now]
    return hourly["snowfall"][hours[-1]] if hours else None


# Cold places of the fake's world (Zurich with snow now, the Arctic), and a warm one.
@pytest.mark.parametrize(
    "target", ["47.3667,8.55", "78.2232,15.6469", "69.6496,18.956", "52.52,13.41"]
)
def test_open_meteo_snowfall_as_depth_and_as_water(exporter, fake_upstream, target):
    for _ in range(3):  # again if the fake's hour turned between the probe and the check
        started = time.time()
        found = probe(exporter, target, "om_nocache")
        centimetres = last_hour_snowfall(fake_upstream, started)
        if centimetres is not None and found[DEPTH] == pytest.approx(centimetres / 100):
            break
    assert centimetres is not None
    assert found[DEPTH] == pytest.approx(centimetres / 100)  # cm of snow, in metres
    assert found[SNOW] == pytest.approx(centimetres / 700)  # 7 cm is 10 mm of water


def test_openweathermap_snow_is_water_and_has_no_depth(exporter):
    found = probe(exporter, "Zurich,CH", "owm")
    assert found[SNOW] == pytest.approx(0.0008)  # the fake's snow.1h: 0.8 mm
    assert not [name for name in found if name.startswith("weather_snowfall_depth")]
