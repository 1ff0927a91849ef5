"""The OpenWeatherMap parser on recorded-shape answers."""

import json
from pathlib import Path

import pytest

from multitarget_exporter.model.reading import Condition, FailureReason
from multitarget_exporter.model.targets import parse_target
from multitarget_exporter.providers.openweathermap import parse_air, parse_current, query_for

FIXTURES = Path(__file__).parent / "fixtures" / "owm"


def load(name):
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))


def reading_of(name):
    result = parse_current(load(name))
    assert result.failure is None, result.failure
    return result.reading


def test_full_answer_in_base_units():
    r = reading_of("full")
    assert r.provider == "openweathermap"
    assert r.temperature_celsius == 25.33
    assert r.apparent_temperature_celsius == 25.59
    assert (r.temperature_min_celsius, r.temperature_max_celsius) == (24.41, 26.9)
    assert r.relative_humidity_ratio == pytest.approx(0.64)
    assert r.pressure_pascals == pytest.approx(101500)
    assert r.ground_pressure_pascals == pytest.approx(93300)
    assert (r.wind_speed_meters_per_second, r.wind_gust_meters_per_second) == (0.62, 1.18)
    assert r.wind_direction_degrees == 349
    assert r.cloud_cover_ratio == pytest.approx(1.0)
    assert r.visibility_meters == 10000
    assert r.rain_meters == {"1h": pytest.approx(0.00316)}
    assert r.snow_meters == {}
    assert r.conditions == (Condition(501, "Rain", "moderate rain"),)
    assert r.observation_timestamp_seconds == 1661870592
    assert (r.sunrise_timestamp_seconds, r.sunset_timestamp_seconds) == (1661834187, 1661882248)
    assert (r.location_name, r.location_country) == ("Zocca", "IT")
    assert (r.latitude_degrees, r.longitude_degrees) == (44.34, 10.99)
    assert r.utc_offset_seconds == 7200
    # OWM's current weather has no dew point: computed from 25.33 C and 64 %.
    assert r.dew_point_celsius == pytest.approx(18.0, abs=0.2)


def test_minimal_answer_leaves_everything_else_out():
    r = reading_of("minimal")
    assert r.temperature_celsius == 12.5
    assert r.apparent_temperature_celsius is None
    assert r.dew_point_celsius is None  # no humidity, no dew point
    assert r.pressure_pascals is None
    assert r.conditions == ()
    assert r.rain_meters == {} and r.snow_meters == {}
    assert r.latitude_degrees is None and r.observation_timestamp_seconds is None
    assert (r.location_name, r.location_country) == ("", "")


def test_nulls_are_omissions():
    r = reading_of("nulls")
    assert r.temperature_celsius == 3.2
    for value in (
        r.apparent_temperature_celsius,
        r.relative_humidity_ratio,
        r.pressure_pascals,
        r.wind_speed_meters_per_second,
        r.wind_gust_meters_per_second,
        r.cloud_cover_ratio,
        r.visibility_meters,
        r.sunrise_timestamp_seconds,
        r.utc_offset_seconds,
        r.latitude_degrees,
        r.observation_timestamp_seconds,
        r.dew_point_celsius,
    ):
        assert value is None
    assert r.conditions == ()
    assert r.location_name == ""


def test_extra_conditions_kept_in_order_without_duplicates_or_junk():
    r = reading_of("extra_conditions")
    assert r.conditions == (
        Condition(741, "Fog", "fog"),
        Condition(300, "Drizzle", "light intensity drizzle"),
    )
    assert r.location_name == "St. John's"
    assert r.relative_humidity_ratio == 1.0
    assert r.dew_point_celsius == pytest.approx(4.45, abs=0.01)  # saturated air


def test_rain_and_snow_windows_in_metres():
    r = reading_of("rain_and_snow")
    assert r.rain_meters == {"1h": pytest.approx(0.0005), "3h": pytest.approx(0.0012)}
    assert r.snow_meters == {"3h": pytest.approx(0.0021)}


def test_missing_blocks_and_polar_night():
    r = reading_of("missing_blocks")
    assert r.temperature_celsius == -15.0
    assert r.wind_speed_meters_per_second is None and r.cloud_cover_ratio is None
    assert r.visibility_meters is None and r.ground_pressure_pascals is None
    assert r.pressure_pascals == pytest.approx(100100)  # main.pressure when no sea_level
    # OWM writes 0 for "no sunrise" in polar night: not a 1970 sunrise.
    assert r.sunrise_timestamp_seconds is None and r.sunset_timestamp_seconds is None


def test_point_at_sea_has_no_name_or_country():
    r = reading_of("at_sea")
    assert (r.location_name, r.location_country) == ("", "")
    assert (r.latitude_degrees, r.longitude_degrees) == (10, -30)


def test_wrong_types_are_omitted_not_trusted():
    r = reading_of("wrong_types")
    assert r.temperature_celsius == 18
    assert r.apparent_temperature_celsius is None
    assert r.relative_humidity_ratio is None
    assert r.pressure_pascals is None
    assert r.latitude_degrees is None and r.longitude_degrees is None  # "10.99" and true
    assert r.cloud_cover_ratio is None  # false is not 0 %
    assert r.rain_meters == {}  # negative rain is nonsense
    assert r.conditions == ()
    assert r.location_name == "" and r.utc_offset_seconds is None


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (load("no_temperature"), FailureReason.INVALID_RESPONSE),
        (load("error_in_body"), FailureReason.NOT_FOUND),
        ({"cod": 401, "message": "Invalid API key"}, FailureReason.UNAUTHORIZED),
        ({"cod": "429"}, FailureReason.RATE_LIMITED),
        ({"cod": "500"}, FailureReason.UPSTREAM_ERROR),
        ([1, 2, 3], FailureReason.INVALID_RESPONSE),
        ("a string", FailureReason.INVALID_RESPONSE),
        ({"main": {"temp": "20"}}, FailureReason.INVALID_RESPONSE),
        ({"main": {"temp": True}}, FailureReason.INVALID_RESPONSE),
        ({"main": "hot"}, FailureReason.INVALID_RESPONSE),
    ],
)
def test_answers_that_are_not_readings(document, reason):
    result = parse_current(document)
    assert result.reading is None
    assert result.failure.reason is reason


@pytest.mark.parametrize(
    ("target", "query"),
    [
        ("London", {"q": "London"}),
        ("Springfield,IL,US", {"q": "Springfield,IL,US"}),
        ("id:2643743", {"id": "2643743"}),
        ("51.5085,-0.1257", {"lat": "51.5085", "lon": "-0.1257"}),
        ("zip:94040,US", {"zip": "94040,US"}),
        ("zip:94040", {"zip": "94040"}),
        ("São Paulo&appid=x", {"q": "São Paulo&appid=x"}),  # a value, never a parameter
    ],
)
def test_query_parameters(target, query):
    assert query_for(parse_target(target)) == query


def test_air_pollution_in_grams_per_cubic_metre():
    index, pollutants = parse_air(load("air"))
    assert index == 2
    assert set(pollutants) == {"co", "no", "no2", "o3", "so2", "pm2_5", "pm10", "nh3"}
    assert pollutants["co"] == pytest.approx(230.31e-6)  # micrograms to grams
    assert pollutants["pm2_5"] == pytest.approx(6.9e-6)


def test_air_pollution_keeps_only_known_sound_values():
    index, pollutants = parse_air(load("air_odd"))
    assert index == 4
    # null, negative, a string, an unknown pollutant and a hostile key are all left out
    assert set(pollutants) == {"o3", "pm2_5"}


@pytest.mark.parametrize(
    "document",
    [
        {"list": []},
        {"list": "x"},
        {"list": [{"main": {"aqi": 0}}]},
        {"list": [{"main": {"aqi": 6}}]},
        {"list": [{"main": {"aqi": "2"}}]},
        {"cod": 401, "message": "Invalid API key"},
        [],
        None,
    ],
)
def test_air_pollution_that_is_not_an_answer(document):
    assert isinstance(parse_air(document), str)
