"""Forecasts, UV and air quality through the real server against the fake upstream.

Each expected value is recomputed here from the fake's own answer: the test
asks the fake the question the exporter asked (the query it recorded) and
applies spec section 8's rules to that JSON by hand. The calls each module
option costs are counted at the fake and compared with the table in
docs/configuration.md.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import promtool_check, samples, unique_point

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
HORIZONS = ["1h", "3h", "6h", "12h", "24h", "120h"]
SECONDS = {label: int(label[:-1]) * 3600 for label in HORIZONS}


def config(fake_url: str) -> str:
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}'"
    om = f"provider: open_meteo, base_url: '{fake_url}', geocoding_url: '{fake_url}'"
    forecast = f"forecast: [{', '.join(HORIZONS)}]"
    air = f"air_quality: true, air_quality_url: '{fake_url}'"
    met = f"provider: met_norway, contact: ops@example.com, base_url: '{fake_url}'"
    return f"""
modules:
  owm: {{{owm}}}
  owm_forecast: {{{owm}, {forecast}}}
  owm_air: {{{owm}, air_quality: true}}
  owm_forecast_air: {{{owm}, {forecast}, air_quality: true}}
  owm_fragile: {{{owm}, {forecast}, cache_ttl: 0s, timeout: 2s}}
  owm_limited: {{{owm}, {forecast}, rate_limit: 3/h}}
  om: {{{om}}}
  om_forecast: {{{om}, {forecast}}}
  om_air: {{{om}, {air}}}
  om_forecast_air: {{{om}, {forecast}, {air}}}
  om_fragile: {{{om}, {air}, cache_ttl: 0s, timeout: 2s}}
  met: {{{met}}}
  met_forecast: {{{met}, {forecast}}}
"""


@pytest.fixture(scope="module")
def exporter(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


def probe(exporter, target: str, module: str) -> dict[str, float]:
    response = exporter.probe(target, module=module)
    assert response.status_code == 200, response.text
    checked = promtool_check(response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return samples(response.text)


def forecasts(found: dict[str, float]) -> list[str]:
    return [name for name in found if name.startswith("weather_forecast_")]


# -- what each option costs -------------------------------------------------------------


def cost_table() -> list[tuple[str, frozenset[str], int, float | None]]:
    """docs/configuration.md's "What each option costs" rows."""
    text = DOCS.read_text("utf-8")
    section = text.split("### What each option costs", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        if cells[0] in ("`nws`", "`bright_sky`"):
            continue  # per station and day: tests/test_stations_integration.py counts them
        options = frozenset(re.findall(r"`(\w+)`", cells[1]))
        weight = float(cells[3]) if cells[3] else None
        requests_per_reading = int(cells[2].split(",")[0])  # "1, at most one per ..."
        rows.append((cells[0].strip("`"), options, requests_per_reading, weight))
    return rows


OPTIONS = (("forecast", "forecast"), ("air_quality", "air"))


def test_the_documented_call_costs_are_what_the_fake_counts(exporter, fake_upstream):
    rows = cost_table()
    assert len(rows) == 9, rows
    for provider, options, requests_per_reading, weight in rows:
        parts = [{"openweathermap": "owm", "open_meteo": "om", "met_norway": "met"}[provider]]
        parts += [short for option, short in OPTIONS if option in options]
        module = "_".join(parts)
        before = fake_upstream.summary()
        found = probe(exporter, unique_point(), module)  # coordinates: no geocoding call
        after = fake_upstream.summary()
        assert found["probe_success"] == 1 and found["probe_cache_hit"] == 0, module
        assert after["total"] - before["total"] == requests_per_reading, module
        if weight is not None:
            spent = sum(after["weighted"].values()) - sum(before["weighted"].values())
            assert spent == pytest.approx(weight), module
        # A second probe is a hit: no call at all.
        assert probe(exporter, target_of(after), module)["probe_cache_hit"] == 1
        assert fake_upstream.summary()["total"] == after["total"]


def target_of(summary: dict) -> str:
    query = summary["requests"][-1]["query"]
    latitude = query.get("lat", query.get("latitude"))
    longitude = query.get("lon", query.get("longitude"))
    return f"{latitude},{longitude}"


def test_rate_limit_counts_the_forecast_call(exporter, fake_upstream):
    """Three calls an hour: a reading with its forecast takes two, so a second place
    finds one left, too few, and costs nothing upstream."""
    assert probe(exporter, unique_point(), "owm_limited")["probe_success"] == 1
    before = fake_upstream.summary()["total"]
    refused = probe(exporter, unique_point(), "owm_limited")
    assert refused['probe_failure_info{reason="rate_limited"}'] == 1
    assert fake_upstream.summary()["total"] == before


# -- values recomputed from the fake's own answer ---------------------------------------


def answer_to(fake_upstream, path: str, since: float) -> dict:
    """The fake's answer to the last question the exporter asked at `path`, asked again."""
    asked = [r for r in fake_upstream.summary()["requests"] if r["path"] == path]
    assert asked and asked[-1]["time"] >= since, path
    response = requests.get(f"{fake_upstream.url}{path}", params=asked[-1]["query"], timeout=5)
    response.raise_for_status()
    return response.json()


def step_of(times: list[int], at: float, length: int) -> int | None:
    for index, start in enumerate(times):
        end = times[index + 1] if index + 1 < len(times) else start + length
        if start <= at < end:
            return index
    return None


def expected_open_meteo(answer: dict, now: float) -> dict[str, float]:
    hourly, daily, current = answer["hourly"], answer["daily"], answer["current"]
    found = {
        "weather_uv_index": current["uv_index"],
        "weather_uv_index_clear_sky": current["uv_index_clear_sky"],
        "weather_precipitation_probability_ratio": current["precipitation_probability"] / 100,
    }
    for label in HORIZONS:
        i = step_of(hourly["time"], now + SECONDS[label], 3600)
        if i is None:
            continue
        h = f'{{horizon="{label}"}}'
        found[f"weather_forecast_temperature_celsius{h}"] = hourly["temperature_2m"][i]
        found[f"weather_forecast_apparent_temperature_celsius{h}"] = hourly["apparent_temperature"][
            i
        ]
        found[f"weather_forecast_relative_humidity_ratio{h}"] = (
            hourly["relative_humidity_2m"][i] / 100
        )
        # Open-Meteo stamps an hour's sum and chance at its end: the entry an hour later.
        if i + 1 < len(hourly["time"]) and hourly["time"][i + 1] == hourly["time"][i] + 3600:
            found[f"weather_forecast_precipitation_probability_ratio{h}"] = (
                hourly["precipitation_probability"][i + 1] / 100
            )
            found[f'weather_forecast_precipitation_meters{{horizon="{label}",window="1h"}}'] = (
                hourly["precipitation"][i + 1] / 1000
            )
        found[f"condition id{h}"] = hourly["weather_code"][i]  # its words: the WMO table
        found[f"weather_forecast_wind_speed_meters_per_second{h}"] = hourly["wind_speed_10m"][i]
        found[f"weather_forecast_wind_gust_meters_per_second{h}"] = hourly["wind_gusts_10m"][i]
        found[f"weather_forecast_cloud_cover_ratio{h}"] = hourly["cloud_cover"][i] / 100
        found[f"weather_forecast_uv_index{h}"] = hourly["uv_index"][i]
    today = step_of(daily["time"], now, 86400)
    assert today is not None
    for day, index in (("today", today), ("tomorrow", today + 1)):
        d = f'{{day="{day}"}}'
        found[f"weather_forecast_temperature_max_celsius{d}"] = daily["temperature_2m_max"][index]
        found[f"weather_forecast_temperature_min_celsius{d}"] = daily["temperature_2m_min"][index]
        found[f"weather_forecast_precipitation_sum_meters{d}"] = (
            daily["precipitation_sum"][index] / 1000
        )
        found[f"weather_forecast_uv_index_max{d}"] = daily["uv_index_max"][index]
    return found


def expected_openweathermap(answer: dict, now: float) -> dict[str, float]:
    entries = answer["list"]
    times = [entry["dt"] for entry in entries]
    found = {}
    for label in HORIZONS:
        i = step_of(times, now + SECONDS[label], 10800)
        if i is None:
            continue
        entry, h = entries[i], f'{{horizon="{label}"}}'
        found[f"weather_forecast_temperature_celsius{h}"] = entry["main"]["temp"]
        found[f"weather_forecast_apparent_temperature_celsius{h}"] = entry["main"]["feels_like"]
        found[f"weather_forecast_relative_humidity_ratio{h}"] = entry["main"]["humidity"] / 100
        found[f"weather_forecast_precipitation_probability_ratio{h}"] = entry["pop"]
        if i + 1 < len(entries):
            after = entries[i + 1]
            millimetres = after.get("rain", {}).get("3h", 0) + after.get("snow", {}).get("3h", 0)
            found[f'weather_forecast_precipitation_meters{{horizon="{label}",window="3h"}}'] = (
                millimetres / 1000
            )
        found[f"weather_forecast_wind_speed_meters_per_second{h}"] = entry["wind"]["speed"]
        found[f"weather_forecast_wind_gust_meters_per_second{h}"] = entry["wind"]["gust"]
        found[f"weather_forecast_cloud_cover_ratio{h}"] = entry["clouds"]["all"] / 100
        condition = entry["weather"][0]
        labels = (
            f'description="{condition["description"]}",horizon="{label}",'
            f'id="{condition["id"]}",main="{condition["main"]}"'
        )
        found[f"weather_forecast_condition_info{{{labels}}}"] = 1.0
    return found


def probed_and_expected(exporter, fake_upstream, target, module, path, expected_from):
    """The probe's samples and the values recomputed from the fake's answer; again if the
    probe straddled a step's boundary (the horizons' steps differ at its two ends).

    The fake's answer is asked for again to recompute: its current values move every
    15 minutes (and hourly ones every hour), so the probe starts well clear of such a
    moment, or both answers could come from different steps (a cached probe cannot be
    tried again)."""
    left = 900 - time.time() % 900
    if left < 10:
        time.sleep(left + 0.1)
    for _ in range(3):
        started = time.time()
        found = probe(exporter, target, module)
        ended = time.time()
        answer = answer_to(fake_upstream, path, started)
        early, late = expected_from(answer, started), expected_from(answer, ended)
        if early == late:
            return found, early
    raise AssertionError("every try straddled a step boundary")


@pytest.mark.parametrize("target", ["Berlin,DE", "-12.5,130.8"])
def test_open_meteo_forecast_values_are_the_fakes(exporter, fake_upstream, target):
    found, expected = probed_and_expected(
        exporter, fake_upstream, target, "om_forecast_air", "/v1/forecast", expected_open_meteo
    )
    assert found["probe_success"] == 1
    codes = {k: v for k, v in expected.items() if k.startswith("condition id")}
    values = {k: v for k, v in expected.items() if k not in codes}
    assert {k: v for k, v in found.items() if k in values} == pytest.approx(values)
    # One condition per step, its id the step's WMO code; nothing beyond what the rules give.
    conditions = {k for k in forecasts(found) if k.startswith("weather_forecast_condition_info")}
    assert {
        (re.search(r'horizon="(\w+)"', k)[1], int(re.search(r'id="(\d+)"', k)[1]))
        for k in conditions
    } == {(k.split('"')[1], int(v)) for k, v in codes.items()}
    assert set(forecasts(found)) - set(values) == conditions
    for label in HORIZONS:  # hourly steps reach every horizon, 120h included
        assert f'weather_forecast_temperature_celsius{{horizon="{label}"}}' in found


def test_openweathermap_forecast_values_are_the_fakes(exporter, fake_upstream):
    found, expected = probed_and_expected(
        exporter,
        fake_upstream,
        "London,GB",
        "owm_forecast",
        "/data/2.5/forecast",
        expected_openweathermap,
    )
    assert found["probe_success"] == 1
    assert expected, "no horizon in the fake's answer"
    assert {k: v for k, v in found.items() if k in expected} == pytest.approx(expected)
    assert set(forecasts(found)) == set(expected)
    # The free plan has no UV and no daily figures, and OWM's current weather no UV.
    assert not [name for name in found if "uv_index" in name or "{day=" in name]


def test_open_meteo_air_quality_values_are_the_fakes(exporter, fake_upstream):
    started = time.time()
    found = probe(exporter, "Berlin,DE", "om_air")
    current = answer_to(fake_upstream, "/v1/air-quality", started)["current"]
    assert found["weather_air_quality_european_index"] == current["european_aqi"]
    assert found["weather_air_quality_usa_index"] == current["us_aqi"]
    names = {"carbon_monoxide": "co", "nitrogen_dioxide": "no2", "sulphur_dioxide": "so2",
             "ozone": "o3", "pm2_5": "pm2_5", "pm10": "pm10", "ammonia": "nh3",
             "dust": "dust"}  # fmt: skip
    for variable, label in names.items():
        name = f'weather_air_pollutant_grams_per_cubic_meter{{pollutant="{label}"}}'
        if current[variable] is None:
            assert name not in found
        else:
            assert found[name] == pytest.approx(current[variable] / 1e6)
    species = [key for key in current if key.endswith("_pollen")]
    assert len(species) == 6
    for variable in species:
        name = f'weather_pollen_grains_per_cubic_meter{{species="{variable[:-7]}"}}'
        if current[variable] is None:
            assert name not in found
        else:
            assert found[name] == pytest.approx(current[variable])
    assert "weather_air_quality_index" not in found  # OpenWeatherMap's 1-to-5 only


def test_pollen_is_left_out_where_open_meteo_gives_none(exporter, fake_upstream):
    found = probe(exporter, unique_point(), "om_air")  # the open South Pacific
    assert found["probe_success"] == 1
    assert not [name for name in found if name.startswith("weather_pollen")]
    assert "weather_air_quality_european_index" in found


# -- faults: the weather still answers ---------------------------------------------------


@pytest.mark.parametrize("fault", ["malformed", "empty", "partial", "json_500", "hang"])
def test_a_failed_forecast_call_keeps_the_weather(exporter, fake_upstream, fault):
    target = unique_point()
    fake_upstream.fault(fault, "*", path="/data/2.5/forecast", times=1, delay=5)
    try:
        found = probe(exporter, target, "owm_fragile")
    finally:
        fake_upstream.clear_faults()
    assert found["probe_success"] == 1 and "weather_temperature_celsius" in found
    assert forecasts(found) == []
    log = exporter.log_text()
    line = [entry for entry in log.splitlines() if "missing=forecast" in entry]
    assert line and "level=warn" in line[-1]
    page = exporter.get("/logs", params={"target": target, "module": "owm_fragile"}).text
    assert "forecast left out" in page
    words = {"hang": "timeout", "json_500": "upstream_error"}.get(fault, "invalid_response")
    assert words in page.split("forecast left out", 1)[1]
    # Nothing else broke: the next probe of the place has its forecast again.
    again = probe(exporter, target, "owm_fragile")
    assert again["probe_success"] == 1 and forecasts(again)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("malformed", "invalid_response"),
        ("partial", "invalid_response"),
        ("json_503", "upstream_error"),
        ("bad_request", "upstream_error"),
        ("error_in_body", "upstream_error"),  # {"error": true} with a 200
    ],
)
def test_a_failed_open_meteo_air_call_keeps_the_weather(exporter, fake_upstream, fault, words):
    target = unique_point()
    fake_upstream.fault(fault, "*", path="/v1/air-quality", times=1)
    try:
        found = probe(exporter, target, "om_fragile")
    finally:
        fake_upstream.clear_faults()
    assert found["probe_success"] == 1 and "weather_temperature_celsius" in found
    assert "weather_air_quality_european_index" not in found
    page = exporter.get("/logs", params={"target": target, "module": "om_fragile"}).text
    assert "air_quality left out" in page
    assert words in page.split("air_quality left out", 1)[1]
    again = probe(exporter, target, "om_fragile")
    assert "weather_air_quality_european_index" in again
