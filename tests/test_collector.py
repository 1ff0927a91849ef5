"""The collector against golden exposition files.

Set UPDATE_GOLDEN=1 to rewrite the files after an intended change, then read
the diff: the golden files are the review.
"""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.providers.geocoding import Place
from multitarget_exporter.providers.open_meteo import parse_forecast
from multitarget_exporter.providers.openweathermap import parse_air, parse_current
from multitarget_exporter.web.collector import ProbeCollector

FIXTURES = Path(__file__).parent / "fixtures"


def exposition(result: ProbeResult) -> str:
    registry = CollectorRegistry()
    registry.register(ProbeCollector(result))
    return generate_latest(registry).decode("utf-8")


def check_golden(name: str, text: str) -> None:
    path = FIXTURES / "golden" / f"{name}.prom"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, "utf-8")
    assert text == path.read_text("utf-8")


def owm_result(fixture: str) -> ProbeResult:
    document = json.loads((FIXTURES / "owm" / f"{fixture}.json").read_text("utf-8"))
    return replace(parse_current(document), duration_seconds=0.25)


@pytest.mark.parametrize("fixture", ["full", "minimal", "rain_and_snow", "extra_conditions"])
def test_success_golden(fixture):
    check_golden(f"owm_{fixture}", exposition(owm_result(fixture)))


def test_open_meteo_golden():
    document = json.loads((FIXTURES / "open_meteo" / "full.json").read_text("utf-8"))
    result = parse_forecast(document, 200, Place("Berlin", "DE", 52.52437, 13.41053))
    check_golden("open_meteo_full", exposition(replace(result, duration_seconds=0.25)))


def test_air_quality_golden():
    result = owm_result("full")
    index, pollutants = parse_air(json.loads((FIXTURES / "owm" / "air.json").read_text("utf-8")))
    reading = replace(
        result.reading, air_quality_index=index, air_pollutants_grams_per_cubic_meter=pollutants
    )
    check_golden("owm_air", exposition(replace(result, reading=reading)))


def test_no_air_metrics_without_air_quality():
    text = exposition(owm_result("full"))
    assert "weather_air_" not in text


def test_failure_golden():
    result = ProbeResult(None, Failure(FailureReason.RATE_LIMITED, "HTTP 429"), 429, False, 0.5)
    check_golden("failure_rate_limited", exposition(result))


def test_failure_has_no_weather_and_one_reason():
    result = ProbeResult(None, Failure(FailureReason.TIMEOUT), 0, False, 1.0)
    text = exposition(result)
    assert "weather_" not in text
    assert text.count("probe_failure_info{") == 1
    assert 'probe_failure_info{reason="timeout"} 1.0' in text


def test_success_has_no_failure_info():
    assert "probe_failure_info" not in exposition(owm_result("full"))


def test_rain_1h_is_always_present():
    text = exposition(owm_result("minimal"))
    assert 'weather_rain_meters{window="1h"} 0.0' in text
    assert 'weather_snow_meters{window="1h"} 0.0' in text
    assert 'window="3h"' not in text


def test_unknown_reason_is_a_bug_not_a_label():
    result = ProbeResult(None, Failure("made_up"), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        exposition(result)


def test_label_values_are_escaped():
    result = owm_result("full")
    odd = replace(result.reading, location_name='Quote " and \\ backslash\nnewline')
    text = exposition(replace(result, reading=odd))
    assert 'name="Quote \\" and \\\\ backslash\\nnewline"' in text


def test_forecast_updated_only_where_the_provider_says():
    """MET Norway says when its forecast was made; OpenWeatherMap and Open-Meteo do not."""
    result = owm_result("full")
    assert "weather_forecast_updated_timestamp_seconds" not in exposition(result)
    made = replace(result.reading, forecast_updated_timestamp_seconds=1795601564.0)
    text = exposition(replace(result, reading=made))
    assert "\nweather_forecast_updated_timestamp_seconds 1.795601564e+09\n" in text
