"""The Open-Meteo parser and geocoding choice against recorded-shape answers."""

import json
from pathlib import Path

import pytest

from multitarget_exporter.model.reading import FailureReason
from multitarget_exporter.model.targets import parse_target
from multitarget_exporter.providers import wmo
from multitarget_exporter.providers.geocoding import Place, pick_place, search_query
from multitarget_exporter.providers.open_meteo import (
    CURRENT,
    OpenMeteo,
    forecast_query,
    parse_forecast,
)

FIXTURES = Path(__file__).parent / "fixtures" / "open_meteo"


def load(name: str):
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))


def reading(name: str, place: Place | None = None):
    result = parse_forecast(load(name), 200, place)
    assert result.failure is None, result.failure
    return result.reading


def test_every_unit_conversion():
    r = reading("full")
    assert r.provider == "open_meteo"
    assert r.temperature_celsius == 7.4
    assert r.apparent_temperature_celsius == 4.9
    assert r.dew_point_celsius == 4.4  # the provider's own, not computed
    assert r.relative_humidity_ratio == pytest.approx(0.81)  # % to ratio
    assert r.pressure_pascals == pytest.approx(101320.0)  # hPa to Pa
    assert r.ground_pressure_pascals == pytest.approx(100860.0)
    assert r.wind_speed_meters_per_second == 3.2  # asked for in m/s
    assert r.wind_gust_meters_per_second == 7.6
    assert r.wind_direction_degrees == 248
    assert r.cloud_cover_ratio == 1.0
    assert r.visibility_meters == 24140.0
    # The hour ending at or before the current time: rain 0.6 mm + showers 0.1 mm.
    assert r.rain_meters == {"1h": pytest.approx(0.0007)}
    assert r.snow_meters == {"1h": 0.0}  # no snow in the hour: 0 of water and of depth
    assert r.snowfall_depth_meters == {"1h": 0.0}
    assert [(c.id, c.main, c.description) for c in r.conditions] == [(63, "Rain", "moderate rain")]
    assert r.observation_timestamp_seconds == 1795581900
    assert (r.sunrise_timestamp_seconds, r.sunset_timestamp_seconds) == (1795588312, 1795617896)
    assert r.utc_offset_seconds == 3600
    # A lat,lon target: the forecast's grid point, no name.
    assert (r.latitude_degrees, r.longitude_degrees) == (52.52, 13.419998)
    assert (r.location_name, r.location_country) == ("", "")
    assert r.temperature_min_celsius is None and r.temperature_max_celsius is None


def test_a_named_place_keeps_its_geocoded_name_and_position():
    r = reading("full", Place("Berlin", "DE", 52.52437, 13.41053))
    assert (r.location_name, r.location_country) == ("Berlin", "DE")
    assert (r.latitude_degrees, r.longitude_degrees) == (52.52437, 13.41053)


def test_snowfall_in_centimetres_becomes_depth_and_water_and_wind_in_kmh_is_converted():
    r = reading("kmh_iso")
    assert r.wind_speed_meters_per_second == 5.0  # 18 km/h
    assert r.wind_gust_meters_per_second == 10.0
    # ISO times (not asked for) are local times at the answer's UTC offset.
    assert r.observation_timestamp_seconds == 1795585500  # 2026-11-25T05:45Z
    # The 05:00 hour: 0.7 cm of fresh snow, which is 1 mm of water (7 cm to 10 mm).
    assert r.snowfall_depth_meters == {"1h": pytest.approx(0.007)}
    assert r.snow_meters == {"1h": pytest.approx(0.001)}
    # A code the WMO table lacks keeps its number.
    assert [(c.id, c.main) for c in r.conditions] == [(4, "Unknown")]


def test_snow_hour_is_picked_by_time():
    document = load("kmh_iso")
    document["current"]["time"] = 1795581900
    document["hourly"]["time"] = [1795575600, 1795579200]
    picked = parse_forecast(document).reading
    assert picked.snowfall_depth_meters == {"1h": pytest.approx(0.007)}
    assert picked.snow_meters == {"1h": pytest.approx(0.001)}
    # Every hourly slot after the current time: none is the last hour.
    document["hourly"]["time"] = [1795585200, 1795588800]
    none = parse_forecast(document).reading
    assert none.snow_meters == {} and none.snowfall_depth_meters == {}


def test_minimal_answer_leaves_out_what_is_absent():
    r = reading("minimal")
    assert r.temperature_celsius == 21.3
    assert r.dew_point_celsius is None and r.relative_humidity_ratio is None
    assert r.wind_speed_meters_per_second is None and r.conditions == ()
    assert r.rain_meters == {} and r.snow_meters == {}
    assert r.sunrise_timestamp_seconds is None and r.utc_offset_seconds is None


def test_dew_point_is_computed_when_not_given():
    document = load("minimal")
    document["current"]["relative_humidity_2m"] = 50
    assert parse_forecast(document).reading.dew_point_celsius == pytest.approx(10.5, abs=0.2)


def test_nulls_are_left_out():
    r = reading("nulls")
    assert r.temperature_celsius == -12.5
    for attribute in (
        "apparent_temperature_celsius",
        "dew_point_celsius",
        "pressure_pascals",
        "wind_speed_meters_per_second",
        "visibility_meters",
        "observation_timestamp_seconds",
        "sunrise_timestamp_seconds",
        "latitude_degrees",
        "utc_offset_seconds",
    ):
        assert getattr(r, attribute) is None, attribute
    assert r.rain_meters == {} and r.snow_meters == {} and r.conditions == ()


def test_wrong_types_are_left_out():
    r = reading("wrong_types")
    assert r.temperature_celsius == 7.4
    assert r.relative_humidity_ratio is None and r.pressure_pascals is None
    assert r.wind_speed_meters_per_second is None  # in a unit nobody knows
    assert r.wind_direction_degrees is None and r.cloud_cover_ratio is None
    assert r.conditions == ()  # 2.5 is not a WMO code
    assert r.latitude_degrees is None and r.longitude_degrees is None
    assert r.utc_offset_seconds is None and r.sunrise_timestamp_seconds is None
    assert r.rain_meters == {}


def test_no_temperature_is_not_a_reading():
    result = parse_forecast(load("no_temperature"), 200)
    assert result.failure.reason is FailureReason.INVALID_RESPONSE
    assert "temperature_2m" in result.failure.detail


@pytest.mark.parametrize("document", [[], "text", None, 7, {"current": "now"}])
def test_not_an_answer(document):
    assert parse_forecast(document).failure.reason is FailureReason.INVALID_RESPONSE


def test_error_body_is_upstream_error_with_its_reason():
    result = parse_forecast(load("error"), 200)
    assert result.failure.reason is FailureReason.UPSTREAM_ERROR
    assert "invalid String value temperature_3m" in result.failure.detail


@pytest.mark.parametrize(
    ("target", "state"),
    [
        ("Springfield,MO,US", "Missouri"),
        ("Springfield,IL,US", "Illinois"),
        ("Springfield,illinois,US", "Illinois"),
        ("Springfield,US", "Missouri"),  # the geocoder's first, as it ranks them
        ("Springfield", "Missouri"),
    ],
)
def test_pick_place_honours_state_and_country(target, state):
    document = load("geocoding_springfield")
    place = pick_place(document, parse_target(target))
    chosen = next(e for e in document["results"] if e.get("latitude") == place.latitude)
    assert chosen["admin1"] == state
    assert (place.name, place.country) == ("Springfield", "US")


def test_pick_place_by_country_name_and_other_countries():
    document = load("geocoding_springfield")
    assert pick_place(document, parse_target("Springfield,AU")).country == "AU"
    assert pick_place(document, parse_target("Springfield,Australia")).country == "AU"
    assert pick_place(document, parse_target("Springfield,XX")) is None
    # The GB entry has no latitude: not a place to fetch the weather of.
    assert pick_place(document, parse_target("Springfield,GB")) is None
    assert pick_place(document, parse_target("Springfield,TX,US")) is None


def test_pick_place_for_a_postal_code_defaults_to_the_us():
    document = load("geocoding_springfield")
    assert pick_place(document, parse_target("zip:65801")).country == "US"
    assert pick_place(document, parse_target("zip:4300,AU")).country == "AU"


@pytest.mark.parametrize("document", [load("geocoding_empty"), {"results": "x"}, [], None])
def test_nothing_found(document):
    assert pick_place(document, parse_target("Atlantis")) is None


def test_queries():
    query = forecast_query(51.5085, -0.1257)
    assert query["current"].split(",") == list(CURRENT)
    assert (query["latitude"], query["longitude"]) == ("51.5085", "-0.1257")
    assert query["wind_speed_unit"] == "ms" and query["timeformat"] == "unixtime"
    assert query["timezone"] == "auto"
    assert search_query(parse_target("Berlin"), "zh_cn") == {
        "name": "Berlin",
        "count": "1",
        "language": "zh",
        "format": "json",
    }
    assert search_query(parse_target("Berlin,DE"), "de")["count"] == "100"
    assert search_query(parse_target("zip:10115,DE"), "en")["name"] == "10115"


def test_city_ids_are_refused_other_forms_accepted():
    from multitarget_exporter.config.modules import parse_config

    module = parse_config({"modules": {"m": {"provider": "open_meteo"}}}).modules["m"]
    provider = OpenMeteo(module)
    assert "OpenWeatherMap city ids" in provider.unsupported(parse_target("id:2643743"))
    for target in ("London", "London,GB", "51.5,-0.12", "zip:94040,US"):
        assert provider.unsupported(parse_target(target)) is None


DOCUMENTED_WMO_CODES = (0, 1, 2, 3, 45, 48, 51, 53, 55, 56, 57, 61, 63, 65, 66, 67)
DOCUMENTED_WMO_CODES += (71, 73, 75, 77, 80, 81, 82, 85, 86, 95, 96, 99)


@pytest.mark.parametrize("code", DOCUMENTED_WMO_CODES)
def test_every_documented_wmo_code_has_words(code):
    condition = wmo.condition(code)
    assert condition.id == code
    assert condition.main in ("Clear", "Clouds", "Fog", "Drizzle", "Rain", "Snow", "Thunderstorm")
    assert condition.description and condition.description == condition.description.lower()


def test_not_wmo_codes():
    assert wmo.condition(-1) is None and wmo.condition(100) is None
    assert wmo.condition(42).main == "Unknown"
