"""Station observations (`nws`, `bright_sky`): the recorded real answers, the unit table,
the choice of station, and bad input.

The recordings are read where they are published (../shared/realdata/recorded,
SOURCES.md there says whose). Each expected value is the recorded number with the
conversion done by hand: km/h over 3.6, hPa times 100, % over 100, mm over 1000,
minutes times 60, ISO times in UTC. The NWS points and stations recordings are a
pairing (the TAE point at 30,-85 with a list for central Ohio): the nearest station
of that list to the point is worked out here with a formula of its own.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from werkzeug.test import Client

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import parse_config
from multitarget_exporter.model import units
from multitarget_exporter.model.reading import FailureReason, ProbeResult, Reading
from multitarget_exporter.model.targets import (
    CityId,
    Coordinates,
    StationId,
    TargetError,
    parse_target,
)
from multitarget_exporter.providers import bright_sky, nws
from multitarget_exporter.providers.met_norway import MetNorway
from multitarget_exporter.providers.open_meteo import OpenMeteo
from multitarget_exporter.providers.openweathermap import OpenWeatherMap
from multitarget_exporter.upstream.rediscache import decode, encode
from multitarget_exporter.upstream.revalidation import MemoryValidators, Validated
from multitarget_exporter.web.app import ExporterApp
from multitarget_exporter.web.collector import ProbeCollector, observation_age
from tests.conftest import promtool_check, recorded, samples

KFLL_TIME = 1646265180.0  # 2022-03-02T23:53:00+00:00
FELDBERG_TIME = 1658676600.0  # 2022-07-24T15:30:00+00:00
BASE = "https://api.weather.gov"


def exposition(result: ProbeResult) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(result))
    text = generate_latest(registry).decode("utf-8")
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return text


def module(provider: str, **settings: object) -> object:
    raw = {"provider": provider, **settings}
    if provider == "nws":
        raw.setdefault("contact", "ops@example.com")
    return parse_config({"modules": {"m": raw}}).modules["m"]


# -- the recorded answers --------------------------------------------------------------


def test_the_recorded_kfll_observation_converted_by_hand():
    observation = nws.parse_observation(recorded("nws_obs_pynws_kfll.json"), "KFLL")
    assert isinstance(observation, nws.Observation)
    assert observation.timestamp == KFLL_TIME
    assert observation.temperature == 22.8
    assert observation.dew_point == 18.3
    assert observation.humidity == pytest.approx(0.75770935807607, abs=1e-9)
    assert observation.wind_speed == 2.1  # 7.56 km/h / 3.6
    assert observation.wind_gust is None  # null, qualityControl Z
    assert observation.wind_direction == 20
    assert observation.ground_pressure == 101860  # barometricPressure, Pa
    assert observation.sea_level_pressure == 101870
    assert observation.visibility == 16090  # metres, qualityControl C
    assert observation.apparent == pytest.approx(23.114, abs=1e-3)  # heatIndex; windChill null
    assert observation.precipitation_hour is None  # null: not measured
    assert observation.text == "Mostly Cloudy"
    assert observation.elevation == 3
    assert (observation.latitude, observation.longitude) == (26.07, pytest.approx(-80.15))

    reading = nws.reading_of(observation, None, None, None, None, None)
    assert reading.pressure_pascals == 101870 and reading.ground_pressure_pascals == 101860
    assert reading.station_id == "KFLL" and reading.station_distance_meters is None
    found = samples(exposition(ProbeResult(reading, None, 200)))
    assert found["weather_wind_speed_meters_per_second"] == 2.1
    assert "weather_wind_gust_meters_per_second" not in found
    assert found["weather_visibility_meters"] == 16090
    assert found["weather_station_elevation_meters"] == 3
    assert 'weather_station_info{name="",provider="nws",station="KFLL"}' in found
    assert 'weather_condition_info{description="",id="",main="Mostly Cloudy"}' in found
    # No precipitation measured: no rain family at all, and a station gives no snow.
    assert not [name for name in found if name.startswith(("weather_rain", "weather_snow"))]
    assert "weather_station_distance_meters" not in found  # a station: target has no point


def test_the_recorded_points_answer_names_its_station_list_by_path_only():
    document = recorded("nws_points_pynws_30_-85.json")
    assert nws.stations_path(document) == "/gridpoints/TAE/58,65/stations"
    # Another host in the answer changes nothing: only the path is used, on base_url.
    steered = copy.deepcopy(document)
    steered["properties"]["observationStations"] = (
        "https://evil.example/gridpoints/TAE/58,65/stations"
    )
    assert nws.stations_path(steered) == "/gridpoints/TAE/58,65/stations"
    for path in ("https://api.weather.gov/../admin", "https://a.example/stations?x=1", "/x"):
        steered["properties"]["observationStations"] = path
        assert nws.stations_path(steered) is None, path
    # Without observationStations, the grid cell names the list.
    del steered["properties"]["observationStations"]
    assert nws.stations_path(steered) == "/gridpoints/TAE/58,65/stations"


def haversine_free(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The spherical law of cosines: another formula than the exporter's haversine."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    cosine = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371008.8 * math.acos(min(1.0, cosine))


def test_the_nearest_recorded_station_to_the_recorded_point_by_great_circle():
    point = recorded("nws_points_pynws_30_-85.json")["geometry"]["coordinates"]
    longitude, latitude = point
    stations = nws.parse_stations(recorded("nws_stations_pynws_columbus_oh.json"))
    assert isinstance(stations, list) and len(stations) == 41
    assert stations[0].identifier == "KCMH"  # the list's own first: nearest Columbus, not us
    assert stations[0].elevation == pytest.approx(245.9736)
    chosen = nws.nearest(stations, latitude, longitude)
    assert next(s.identifier for s, _ in chosen) == "KLEX"
    expected = min(
        stations, key=lambda s: haversine_free(latitude, longitude, s.latitude, s.longitude)
    )
    assert chosen[0][0] == expected
    # By hand: 8.0339 deg of latitude and 0.3885 deg of longitude at 34 N, 111.195 km a
    # degree: about 894.0 km.
    assert chosen[0][1] == pytest.approx(894_000, rel=0.01)
    distances = [distance for _, distance in chosen]
    assert distances == sorted(distances) and len(chosen) == nws.STATIONS_ASKED


def test_the_recorded_feldberg_answer_keeps_the_fallback_stations_values():
    current = bright_sky.parse_current(recorded("brightsky_current_phpweather_feldberg.json"))
    assert isinstance(current, bright_sky.Current)
    assert current.timestamp == FELDBERG_TIME
    assert current.temperature == 32.1  # from Freiburg, 20.9 km away: kept
    assert (current.station, current.name) == ("01346", "Feldberg/Schwarzwald")
    assert (current.distance, current.elevation) == (117.0, 1489.6)
    assert current.dew_point == 13.85
    assert current.humidity == 0.33
    assert current.pressure == pytest.approx(101450)  # 1014.5 hPa
    assert current.wind_speed == pytest.approx(6.1 / 3.6, abs=1e-3)
    assert current.wind_gust == pytest.approx(10.1 / 3.6, abs=1e-3)
    assert current.wind_direction == 10
    assert current.cloud_cover == 0.5
    assert current.visibility == 51515
    assert current.precipitation_hour == 0.0
    assert current.sunshine_hour == 36 * 60
    assert current.condition == "dry"
    assert "temperature from 01443 Freiburg" in current.borrowed

    by_point = bright_sky.reading_of(current, 47.8739, 8.0044, None)
    found = samples(exposition(ProbeResult(by_point, None, 200)))
    assert found["weather_station_distance_meters"] == 117
    assert found["weather_station_elevation_meters"] == 1489.6
    assert found['weather_sunshine_duration_seconds{window="1h"}'] == 2160
    assert found['weather_rain_meters{window="1h"}'] == 0  # a measured dry hour
    assert not [name for name in found if name.startswith("weather_snow")]
    assert found["weather_pressure_pascals"] == pytest.approx(101450)
    assert 'weather_condition_info{description="",id="",main="dry"}' in found
    assert (
        'weather_station_info{name="Feldberg/Schwarzwald",provider="bright_sky",'
        'station="01346"}' in found
    )
    by_station = bright_sky.reading_of(current, None, None, None)
    assert by_station.station_distance_meters is None
    assert (by_station.latitude_degrees, by_station.longitude_degrees) == (47.8749, 8.00382)


# -- the unit table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "kind", "expected"),
    [
        (22.8, "wmoUnit:degC", "temperature", 22.8),
        (22.8, "unit:degC", "temperature", 22.8),  # older answers' prefix
        (75.5, "wmoUnit:percent", "ratio", 0.755),
        (101860, "wmoUnit:Pa", "pressure", 101860),
        (7.56, "wmoUnit:km_h-1", "speed", 2.1),
        (2.1, "wmoUnit:m_s-1", "speed", 2.1),
        (20, "wmoUnit:degree_(angle)", "angle", 20),
        (16090, "wmoUnit:m", "length", 16090),
        (2.5, "wmoUnit:mm", "length", 0.0025),
        (72.0, "wmoUnit:degF", "temperature", None),  # a unit not known here
        (30.1, "wmoUnit:inHg", "pressure", None),
        (10, "wmoUnit:kt", "speed", None),
        (22.8, "degC", "temperature", None),  # not a WMO unit code
        (22.8, "wmoUnit:Pa", "temperature", None),  # measures something else
        (None, "wmoUnit:degC", "temperature", None),
        (22.8, None, "temperature", None),
    ],
)
def test_the_wmo_unit_table(value, unit, kind, expected):
    assert units.wmo_quantity(value, unit, kind) == expected


def test_rejected_null_and_unknown_values_are_left_out_of_an_observation():
    document = copy.deepcopy(recorded("nws_obs_pynws_kfll.json"))
    properties = document["properties"]
    properties["windSpeed"]["qualityControl"] = "X"  # rejected: its value is still there
    properties["dewpoint"]["unitCode"] = "wmoUnit:degF"
    properties["relativeHumidity"]["value"] = None
    del properties["visibility"]["qualityControl"]  # no qualityControl key: still a value
    observation = nws.parse_observation(document, "KFLL")
    assert isinstance(observation, nws.Observation)
    assert observation.wind_speed is None
    assert observation.dew_point is None and observation.humidity is None
    assert observation.visibility == 16090
    reading = nws.reading_of(observation, None, None, None, None, None)
    assert reading.dew_point_celsius is None  # no humidity to compute one from either


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ({"features": []}, "the station list is empty"),
        ({"type": "FeatureCollection"}, "the station list has no features"),
        (
            {"features": [{"properties": {"stationIdentifier": "KABC"}, "geometry": None}]},
            "no station of the list has an id and coordinates",
        ),
        (
            {
                "features": [
                    {
                        "properties": {"stationIdentifier": "K-ABC"},
                        "geometry": {"coordinates": [-80, 30]},
                    },
                    {
                        "properties": {"stationIdentifier": "KABD"},
                        "geometry": {"coordinates": ["x", 30]},
                    },
                ]
            },
            "no station of the list has an id and coordinates",
        ),
    ],
)
def test_a_station_list_without_usable_stations_says_why(document, why):
    assert nws.parse_stations(document) == why


@pytest.mark.parametrize("stamp", ["yesterday", "2022-03-02T23:53:00", None, 1646265180])
def test_an_observation_whose_timestamp_does_not_parse_is_not_used(stamp):
    document = copy.deepcopy(recorded("nws_obs_pynws_kfll.json"))
    document["properties"]["timestamp"] = stamp
    assert "is not a time" in nws.parse_observation(document, "KFLL")
    weather = copy.deepcopy(recorded("brightsky_current_phpweather_feldberg.json"))
    weather["weather"]["timestamp"] = stamp
    assert "is not a time" in bright_sky.parse_current(weather)


def test_every_value_null_gives_no_temperature():
    document = copy.deepcopy(recorded("nws_obs_pynws_kfll.json"))
    for value in document["properties"].values():
        if isinstance(value, dict) and "value" in value:
            value["value"] = None
    observation = nws.parse_observation(document, "KFLL")
    assert isinstance(observation, nws.Observation)
    assert observation.temperature is None and observation.wind_speed is None
    weather = copy.deepcopy(recorded("brightsky_current_phpweather_feldberg.json"))
    weather["weather"] = {
        key: None if key not in ("timestamp", "source_id") else value
        for key, value in weather["weather"].items()
    }
    assert bright_sky.parse_current(weather) == "the answer has no temperature"
    assert bright_sky.parse_current({"sources": []}) == "the answer has no weather"


@pytest.mark.parametrize(
    "target", ["station:", "station:" + "K" * 17, "station:K-SEA", "station:K SEA"]
)
def test_a_malformed_station_target_is_refused_before_any_call(target):
    with pytest.raises(TargetError, match="station: wants a station id of 1 to 16"):
        parse_target(target)


def test_station_targets_parse_in_upper_case():
    assert parse_target("station:ksea") == StationId("KSEA")
    assert parse_target(" station:01766 ") == StationId("01766")
    assert parse_target("station:" + "A" * 16).key == "station:" + "A" * 16


def test_who_takes_which_target_form():
    station, city = StationId("KSEA"), CityId(2643743)
    for provider in (
        OpenWeatherMap(module("openweathermap")),
        OpenMeteo(module("open_meteo")),
        MetNorway(module("met_norway", contact="a@b.example")),
    ):
        assert "station: targets name a weather station" in provider.unsupported(station)
    for provider in (nws.Nws(module("nws")), bright_sky.BrightSky(module("bright_sky"))):
        assert provider.unsupported(station) is None
        assert provider.unsupported(Coordinates(1, 2)) is None
        assert "id: targets are OpenWeatherMap city ids" in provider.unsupported(city)


def test_the_app_answers_400_for_bad_station_targets_and_forms():
    config = parse_config(
        yaml.safe_load("""
modules:
  us: {provider: nws, contact: ops@example.com, base_url: "http://127.0.0.1:9"}
  om: {provider: open_meteo, base_url: "http://127.0.0.1:9"}
""")
    )
    client = Client(ExporterApp(config))
    for query, words in (
        ("target=station:K-SEA&module=us", "bad target: station: wants a station id"),
        ("target=station:&module=us", "bad target: station: wants a station id"),
        ("target=id:2643743&module=us", "bad target for module us: id: targets"),
        ("target=station:KSEA&module=om", "bad target for module om: station: targets"),
    ):
        response = client.get(f"/probe?{query}")
        assert response.status_code == 400, query
        assert words in response.get_data(as_text=True), query


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"provider": "nws"}, "modules.m.contact: required for nws"),
        ({"provider": "open_meteo", "warnings": ["dwd"], "contact": "a\nb"},
         "modules.m.contact: must be"),
        ({"provider": "open_meteo", "contact": "a@b.example"}, "modules.m.contact: the open_meteo"),
        ({"provider": "nws", "contact": "a@b.example", "api_key": "k"},
         "modules.m.api_key: the nws"),
        ({"provider": "bright_sky", "air_quality": True}, "modules.m.air_quality: the bright_sky"),
        ({"provider": "bright_sky", "forecast": ["3h"]}, "modules.m.forecast: the bright_sky"),
        ({"provider": "nws", "contact": "ops@x.example", "forecast": ["1h"]}, "modules.m.forecast"),
        ({"provider": "met_norway", "contact": "a@b.example", "cache_ttl": "0"},
         "modules.m.cache_ttl: must be above 0"),
    ],
)  # fmt: skip
def test_station_module_errors_name_the_key(settings, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config({"modules": {"m": settings}})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_station_modules_that_load():
    config = parse_config(
        {
            "modules": {
                "us": {"provider": "nws", "contact": "ops@example.com", "cache_ttl": "0"},
                "de": {"provider": "bright_sky"},
                "de_named": {"provider": "bright_sky", "contact": "ops@example.com"},
            }
        }
    )
    us, de = config.modules["us"], config.modules["de"]
    assert (us.base_url, us.geocoding_url, us.cache_ttl_seconds) == (
        "https://api.weather.gov",
        "https://geocoding-api.open-meteo.com",
        0.0,
    )
    assert de.base_url == "https://api.brightsky.dev" and de.contact == ""
    assert config.modules["de_named"].contact == "ops@example.com"


# -- the choice of station, from kept answers (stored: no call) --------------------------


def keep(store: MemoryValidators, key: str, answer: object, fetched_at: float) -> None:
    store.put(
        key,
        Validated(fetched_at + 3600, "", 200, {"fetched_at": fetched_at, "answer": answer}),
        3600,
    )


def observation(station: str, age: float, temperature: float | None = 12.5) -> dict:
    found = nws.Observation(station, time.time() - age, temperature=temperature)
    return asdict(found)


def point_store(observations: dict[str, dict]) -> MemoryValidators:
    """Kept answers for the point 40,-83 (Columbus) with the recorded Ohio list."""
    store = MemoryValidators(100)
    now = time.time()
    path = "/gridpoints/ILN/1,1/stations"
    keep(store, f"nws|{BASE}|points|40.0000,-83.0000", {"path": path}, now)
    stations = nws.parse_stations(recorded("nws_stations_pynws_columbus_oh.json"))
    keep(store, f"nws|{BASE}|stations|{path}", [asdict(s) for s in stations], now)
    for station, document in observations.items():
        keep(store, f"nws|{BASE}|observation|{station}", document, now)
    return store


def nearest_three() -> list[str]:
    stations = nws.parse_stations(recorded("nws_stations_pynws_columbus_oh.json"))
    return [s.identifier for s, _ in nws.nearest(stations, 40.0, -83.0)]


def stored(observations: dict[str, dict]) -> ProbeResult | None:
    provider = nws.Nws(module("nws"), point_store(observations))
    return provider.stored(Coordinates(40.0, -83.0))


def test_the_nearest_current_station_answers_and_names_itself():
    first, second, _ = nearest_three()
    assert first == "KCMH"
    result = stored({first: observation(first, 600), second: observation(second, 60)})
    assert result is not None and result.reading is not None and result.cache_hit
    assert result.reading.station_id == first
    assert result.reading.station_name == "John Glenn Columbus International Airport"
    by_hand = haversine_free(40.0, -83.0, 39.9906999, -82.87691)
    assert result.reading.station_distance_meters == pytest.approx(by_hand, rel=0.01)


def test_a_silent_or_thermometerless_station_sends_the_probe_to_the_next():
    first, second, third = nearest_three()
    silent = stored(
        {
            first: observation(first, 3 * 3600),
            second: observation(second, 60, temperature=None),
            third: observation(third, 300),
        }
    )
    assert silent is not None and silent.reading is not None
    assert silent.reading.station_id == third


def test_when_every_station_is_old_the_freshest_answers_and_without_temperature_none():
    first, second, third = nearest_three()
    old = stored(
        {
            first: observation(first, 5 * 3600),
            second: observation(second, 3 * 3600),
            third: observation(third, 4 * 3600),
        }
    )
    assert old is not None and old.reading is not None
    assert old.reading.station_id == second
    age = samples(exposition(old))  # the reading itself shows no age; the probe adds it
    assert "weather_observation_age_seconds" not in age
    (family,) = observation_age(old, time.time())
    assert family.samples[0].value == pytest.approx(3 * 3600, abs=5)
    none = stored({s: observation(s, 60, temperature=None) for s in (first, second, third)})
    assert none is not None and none.failure is not None
    assert none.failure.reason is FailureReason.INVALID_RESPONSE
    assert "no station has a temperature" in none.failure.detail
    unusable = stored(
        {
            s: {"unusable": "the observation's timestamp 'x' is not a time"}
            for s in (first, second, third)
        }
    )
    assert unusable is not None and unusable.failure is not None
    assert unusable.failure.reason is FailureReason.INVALID_RESPONSE


def test_a_station_not_kept_means_a_call_is_needed():
    first, *_ = nearest_three()
    # The nearest is silent and the next one's observation is not kept: stored says no.
    assert stored({first: observation(first, 3 * 3600)}) is None
    assert stored({}) is None


# -- the new values through Redis and the age at the probe -------------------------------


def test_station_readings_survive_the_trip_through_redis():
    current = bright_sky.parse_current(recorded("brightsky_current_phpweather_feldberg.json"))
    assert isinstance(current, bright_sky.Current)
    reading = bright_sky.reading_of(current, 47.8739, 8.0044, None)
    result = ProbeResult(reading, None, 200)
    back = decode(encode(result))
    assert back.reading == reading
    assert back.reading.sunshine_duration_seconds == {"1h": 2160.0}
    assert back.reading.station_id == "01346" and back.reading.observes_snow is False


def test_the_observation_age_is_made_at_each_probe():
    reading = Reading(provider="x", temperature_celsius=1.0, observation_timestamp_seconds=1000.0)
    result = ProbeResult(reading, None, 200)
    assert [f.samples[0].value for f in observation_age(result, 1060.5)] == [60.5]
    assert [f.samples[0].value for f in observation_age(result, 1120.0)] == [120.0]
    assert [f.samples[0].value for f in observation_age(result, 900.0)] == [0.0]  # clock behind
    assert list(observation_age(ProbeResult(None, None), 1000.0)) == []
    without = ProbeResult(Reading(provider="x", temperature_celsius=1.0), None)
    assert list(observation_age(without, 1000.0)) == []
