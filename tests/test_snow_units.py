"""Snow in one unit for every provider: `weather_snow_meters` is liquid water equivalent.

Open-Meteo gives `snowfall` as centimetres of fresh snow, and says 7 cm of it
is 10 mm of water: its depth goes to `weather_snowfall_depth_meters`, its
water to `weather_snow_meters`. OpenWeatherMap's `snow.1h`/`snow.3h` are
millimetres of precipitation (water) already; MET Norway (a forecast) and the
stations (NWS, Bright Sky: no snow of their own) have no snow families at all.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from multitarget_exporter.model import units
from multitarget_exporter.model.reading import ProbeResult, Reading
from multitarget_exporter.providers.open_meteo import parse_forecast
from multitarget_exporter.providers.openweathermap import parse_current
from multitarget_exporter.web.collector import ProbeCollector
from tests.conftest import promtool_check, samples

FIXTURES = Path(__file__).parent / "fixtures"
SNOW = 'weather_snow_meters{window="1h"}'
DEPTH = 'weather_snowfall_depth_meters{window="1h"}'


def exposition(result: ProbeResult) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(result))
    text = generate_latest(registry).decode("utf-8")
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return text


@pytest.mark.parametrize(
    ("centimetres", "depth", "water"),
    [
        (7.0, 0.07, 0.01),  # Open-Meteo's own example: 7 cm of snow, 10 mm of water
        (0.7, 0.007, 0.001),
        (2.1, 0.021, 0.003),
        (0.01, 0.0001, 0.000014286),  # to the nanometre, without float noise
        (0.0, 0.0, 0.0),
    ],
)
def test_fresh_snow_as_depth_and_as_water(centimetres, depth, water):
    assert units.snow_depth_metres(centimetres) == depth
    assert units.snow_water_metres(centimetres) == water


@pytest.mark.parametrize("nothing", [None, -0.1])
def test_no_or_negative_snow_is_no_value(nothing):
    assert units.snow_depth_metres(nothing) is None
    assert units.snow_water_metres(nothing) is None


def open_meteo_with_snowfall(centimetres: float | None) -> dict:
    """The recorded-shape fixture with `centimetres` of snow in the last full hour."""
    document = json.loads((FIXTURES / "open_meteo" / "full.json").read_text("utf-8"))
    document = copy.deepcopy(document)
    document["hourly"]["snowfall"] = [centimetres, centimetres]
    return document


def test_open_meteo_snowfall_is_exported_as_depth_and_as_water():
    result = parse_forecast(open_meteo_with_snowfall(3.5), 200)
    found = samples(exposition(result))
    assert found[DEPTH] == pytest.approx(0.035)  # 3.5 cm of snow
    assert found[SNOW] == pytest.approx(0.005)  # 5 mm of water
    # Rain is untouched: 0.6 mm of rain and 0.1 mm of showers in the fixture's hour.
    assert found['weather_rain_meters{window="1h"}'] == pytest.approx(0.0007)


def test_open_meteo_without_the_hour_has_both_families_at_zero():
    """As rain: `window="1h"` is always there for a provider that gives it, 0 when none."""
    result = parse_forecast(open_meteo_with_snowfall(None), 200)
    assert result.reading is not None
    assert result.reading.snow_meters == {} and result.reading.snowfall_depth_meters == {}
    found = samples(exposition(result))
    assert found[SNOW] == 0.0 and found[DEPTH] == 0.0


def test_openweathermap_snow_is_water_already_and_has_no_depth():
    document = json.loads((FIXTURES / "owm" / "rain_and_snow.json").read_text("utf-8"))
    document["snow"] = {"1h": 0.5, "3h": 2.1}  # millimetres of precipitation (water)
    found = samples(exposition(parse_current(document)))
    assert found[SNOW] == pytest.approx(0.0005)
    assert found['weather_snow_meters{window="3h"}'] == pytest.approx(0.0021)
    assert not [name for name in found if name.startswith("weather_snowfall_depth")]


@pytest.mark.parametrize(
    ("flags", "families"),
    [
        ({}, {"weather_rain_meters", "weather_snow_meters", "weather_snowfall_depth_meters"}),
        # A station that measures precipitation but no snow of its own (NWS, Bright Sky).
        ({"observes_snow": False}, {"weather_rain_meters"}),
        # A forecast that observes nothing (MET Norway).
        ({"observes_precipitation": False}, set()),
    ],
)
def test_providers_without_snow_have_no_snow_families(flags, families):
    reading = Reading(
        provider="p",
        temperature_celsius=1.0,
        snow_meters={"1h": 0.001},
        snowfall_depth_meters={"1h": 0.007},
        **flags,
    )
    text = exposition(ProbeResult(reading, None, 200))
    present = {name for name in samples(text) if name.startswith(("weather_rain", "weather_snow"))}
    assert {name.split("{")[0] for name in present} == families


def test_the_depth_family_is_only_for_providers_that_give_depth():
    reading = Reading(provider="p", temperature_celsius=1.0, snow_meters={"1h": 0.001})
    text = exposition(ProbeResult(reading, None, 200))
    assert "weather_snowfall_depth_meters" not in text
    deep = exposition(ProbeResult(replace(reading, snowfall_depth_meters={}), None, 200))
    assert f"{DEPTH} 0.0" in deep
