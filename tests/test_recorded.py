"""Every recorded real upstream answer (../shared/realdata/recorded) through the parsers.

The recordings are other people's real API answers (SOURCES.md there says
whose); they are read from where they are published, never copied here. Each
expected value below is the recorded number with the conversion done by
hand: Kelvin less 273.15 (the exporter asks OpenWeatherMap for `units=metric`,
so the answers are converted first, as a replay server does), hPa times 100,
% over 100, mm over 1000, km/h over 3.6, µg over a million, ISO local times
less the answer's UTC offset.
"""

from __future__ import annotations

import calendar
import copy
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from multitarget_exporter.config.modules import Horizon
from multitarget_exporter.model.reading import FailureReason, ProbeResult
from multitarget_exporter.model.targets import parse_target
from multitarget_exporter.providers import openweathermap
from multitarget_exporter.providers.geocoding import Place, pick_place
from multitarget_exporter.providers.open_meteo import parse_forecast
from multitarget_exporter.providers.open_meteo_air import parse_air as parse_open_meteo_air
from multitarget_exporter.web.collector import ProbeCollector
from tests.conftest import promtool_check, recorded, recordings

KELVIN = 273.15


def manifest_units(name: str) -> str:
    entries = recorded("manifest.json")["owm_weather"]
    return next(entry["units"] for entry in entries if entry["fixture"] == name)


def as_metric(name: str):
    """An OWM weather recording as `units=metric` would have answered it."""
    document = copy.deepcopy(recorded(name))
    if manifest_units(name) == "standard":
        for key in ("temp", "feels_like", "temp_min", "temp_max"):
            if key in document["main"]:
                document["main"][key] = document["main"][key] - KELVIN
    return document


def utc(text: str) -> float:
    """`2026-10-03T10:30` read as UTC."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M")))


def exposition(result: ProbeResult) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(result))
    return generate_latest(registry).decode("utf-8")


def check_exposition(result: ProbeResult) -> str:
    text = exposition(result)
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return text


def test_every_recording_is_covered_here():
    """A recording added to the folder must get its own case below."""
    names = {path.name for path in recordings().glob("*.json")} - {"manifest.json"}
    covered = set(OWM_WEATHER) | {
        "owm_air_pyowm_london.json",
        "om_forecast_frenck_enschede_excerpt.json",
        "om_forecast_gsaprod_lisbon.json",
        "om_forecast_myweather_current_weather.json",
        "om_search_frenck_enschede.json",
        "om_search_frenck_missing_fields.json",
        # OWM's own geocoding: the exporter resolves names in the weather call (`q=`).
        "owm_geo_direct_pyowm_london.json",
        "owm_geo_zip_cltjared_28105_us.json",
        "owm_geo_zip_rails_stimulus_33760.json",
        # Warnings: one test each in tests/test_warnings_parsing.py.
        "nws_alerts_nwsalerts_phoenix.json",
        "nws_alerts_pynws_zone_orz004.json",
        "metalerts_docs_ana_sira_obrestad.json",
        "metalerts_wictk_maloy_fedje.json",
        "brightsky_alerts_weewx_weiherhammer_rain.json",
        "brightsky_alerts_weewx_weiherhammer_heat.json",
        "brightsky_alerts_weewx_weiherhammer_empty.json",
        # Station observations: one test each in tests/test_stations.py.
        "nws_points_pynws_30_-85.json",
        "nws_stations_pynws_columbus_oh.json",
        "nws_obs_pynws_kfll.json",
        "brightsky_current_phpweather_feldberg.json",
    }
    assert names <= covered, names - covered


# name -> expected (temp C, feels_like C, humidity, sea-level Pa, ground Pa, wind, gust,
# direction, clouds, visibility, rain 1h m, condition ids, dt, utc offset, name, country)
OWM_WEATHER = {
    "owm_weather_pyowm_london_2013.json": (
        288.44 - KELVIN, None, 0.75, 102200, None, 1.54, 2.57, 31, 0.92, None, None,
        [804], 1378895177, None, "London", "GB",
    ),
    "owm_weather_weatherly_philadelphia.json": (
        292.91 - KELVIN, None, 0.82, 102000, None, 1.5, None, 130, 0.75, 16093, 0.00063,
        [521], 1558627007, -14400, "Philadelphia", "US",
    ),
    "owm_weather_newsag_tver_metric.json": (
        17.76, 17.58, 0.76, 100500, 99000, 4.09, 12.45, 115, 0.48, 10000, None,
        [802], 1621374636, 10800, "Tver'", "RU",
    ),
    "owm_weather_lambdas_shuzenji.json": (
        288.48 - KELVIN, None, 0.93, 100900, None, 10.8, 15.9, 10, 0.75, 3000, 0.00584,
        [521, 701], 1571973229, 32400, "Shuzenji", "JP",
    ),
    "owm_weather_rails_stimulus_globe_0_0.json": (
        300.24 - KELVIN, 302.43 - KELVIN, 0.73, 101000, 101000, 2.91, 3.21, 263, 1.0, 10000,
        None, [804], 1768396543, 0, "Globe", "",
    ),
    "owm_weather_bikeweather_london_emptyrain.json": (
        278.18 - KELVIN, None, 0.81, 100600, None, 2.6, None, 300, 0.14, 10000, None,
        [801], 1573009962, 0, "London", "GB",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OWM_WEATHER))
def test_openweathermap_weather_recordings(name):
    (temp, feels, humidity, sea, ground, wind, gust, direction, clouds, visibility, rain,
     ids, observed, offset, place, country) = OWM_WEATHER[name]  # fmt: skip
    result = openweathermap.parse_current(as_metric(name))
    r = result.reading
    assert r is not None, result.failure
    assert r.temperature_celsius == pytest.approx(temp)
    assert r.apparent_temperature_celsius == (None if feels is None else pytest.approx(feels))
    assert r.relative_humidity_ratio == pytest.approx(humidity)
    assert r.pressure_pascals == pytest.approx(sea)
    assert r.ground_pressure_pascals == (None if ground is None else pytest.approx(ground))
    assert (r.wind_speed_meters_per_second, r.wind_gust_meters_per_second) == (wind, gust)
    assert r.wind_direction_degrees == direction
    assert r.cloud_cover_ratio == pytest.approx(clouds)
    assert r.visibility_meters == visibility
    # `"rain": {}` and no `rain` at all both mean no rain reported.
    assert r.rain_meters == ({} if rain is None else {"1h": pytest.approx(rain)})
    assert [c.id for c in r.conditions] == ids
    assert r.observation_timestamp_seconds == observed
    assert r.utc_offset_seconds == offset
    assert (r.location_name, r.location_country) == (place, country)
    # The version-2 fields OpenWeatherMap's current weather does not give stay out, and so
    # do a snow depth (its snow is mm of water) and a time its model ran (it gives none).
    assert r.uv_index is None and r.precipitation_probability_ratio is None
    assert r.snowfall_depth_meters is None and r.forecast_updated_timestamp_seconds is None
    text = check_exposition(result)
    assert 'weather_rain_meters{window="1h"}' in text  # 0 when none reported
    assert "weather_snowfall_depth_meters" not in text


def test_openweathermap_air_recording():
    index, pollutants = openweathermap.parse_air(recorded("owm_air_pyowm_london.json"))
    assert index == 1
    assert pollutants == {
        "co": pytest.approx(250.34e-6),
        "no": pytest.approx(0.19e-6),
        "no2": pytest.approx(35.99e-6),
        "o3": pytest.approx(30.76e-6),
        "so2": pytest.approx(8.11e-6),
        "pm2_5": pytest.approx(3.15e-6),
        "pm10": pytest.approx(3.81e-6),
        "nh3": pytest.approx(0.74e-6),
    }


ENSCHEDE_NOW = utc("2026-10-03T10:30")  # its current.time, 12:30 at UTC+2


def test_open_meteo_enschede_recording_iso_times_and_kmh():
    """Asked for every variable, answered in km/h with ISO local times at UTC+2."""
    document = recorded("om_forecast_frenck_enschede_excerpt.json")
    horizons = (Horizon("1h", 3600),)
    result = parse_forecast(document, 200, None, horizons, ENSCHEDE_NOW)
    r = result.reading
    assert r is not None, result.failure
    assert r.temperature_celsius == 17.7
    assert r.apparent_temperature_celsius == 17.6
    assert r.dew_point_celsius == 11.3
    assert r.relative_humidity_ratio == pytest.approx(0.66)
    assert r.pressure_pascals == pytest.approx(103040)
    assert r.ground_pressure_pascals == pytest.approx(102690)
    assert r.wind_speed_meters_per_second == 1.0  # 3.6 km/h
    assert r.wind_gust_meters_per_second == pytest.approx(3.306)  # 11.9 km/h
    assert r.wind_direction_degrees == 259
    assert r.cloud_cover_ratio == pytest.approx(0.73)
    assert r.visibility_meters == 36080.0
    assert [(c.id, c.main) for c in r.conditions] == [(2, "Clouds")]
    assert r.observation_timestamp_seconds == ENSCHEDE_NOW
    assert r.utc_offset_seconds == 7200
    assert r.sunrise_timestamp_seconds == utc("2026-10-03T05:36")
    assert r.sunset_timestamp_seconds == utc("2026-10-03T17:05")
    assert r.uv_index == 2.75
    assert r.precipitation_probability_ratio == 0.0
    # Its hourly values end at 02:00 local, ten hours before: no last hour to report.
    assert r.rain_meters == {} and r.snow_meters == {} and r.snowfall_depth_meters == {}
    # Open-Meteo does not say when its model ran: no time is made up for it.
    assert r.forecast_updated_timestamp_seconds is None
    # ... nor a step 1 h ahead; the local days are today (3 Oct) and tomorrow.
    assert r.forecast == ()
    assert [(d.day, d.uv_index_max) for d in r.daily] == [("today", 3.3), ("tomorrow", 3.2)]
    assert all(d.temperature_max_celsius is None for d in r.daily)  # not in the excerpt
    check_exposition(result)


def test_open_meteo_enschede_recording_steps_when_now_is_within_its_hours():
    document = recorded("om_forecast_frenck_enschede_excerpt.json")
    midnight = utc("2026-10-02T22:00")  # 00:00 local
    horizons = (Horizon("1h", 3600), Horizon("2h", 7200), Horizon("3h", 10800))
    r = parse_forecast(document, 200, None, horizons, midnight + 60).reading
    # 01:01 and 02:01 local fall in the recorded hours; 03:01 is past the last. The 02:00
    # hour's chance of rain would be stamped 03:00, which the excerpt does not hold.
    assert [(s.horizon, s.uv_index, s.precipitation_probability_ratio) for s in r.forecast] == [
        ("1h", 0.0, 0.0),
        ("2h", 0.0, None),
    ]


LISBON_NOW = 1706264100  # its current.time: 2024-01-26 10:15 UTC, Lisbon at UTC+0


def test_open_meteo_lisbon_recording_without_hourly_or_sun_times():
    document = recorded("om_forecast_gsaprod_lisbon.json")
    horizons = (Horizon("3h", 10800),)
    result = parse_forecast(document, 200, None, horizons, LISBON_NOW)
    r = result.reading
    assert r is not None, result.failure
    assert r.temperature_celsius == 12.1
    assert r.relative_humidity_ratio == pytest.approx(0.83)
    assert r.wind_speed_meters_per_second == pytest.approx(1.639)  # 5.9 km/h
    assert r.wind_direction_degrees == 38
    assert [c.id for c in r.conditions] == [3]
    assert r.observation_timestamp_seconds == LISBON_NOW
    for absent in ("apparent_temperature_celsius", "pressure_pascals", "cloud_cover_ratio",
                   "visibility_meters", "sunrise_timestamp_seconds", "uv_index"):  # fmt: skip
        assert getattr(r, absent) is None, absent
    # No hourly block: no steps, and the reading says so; the days are there.
    assert r.forecast == () and r.missing == "forecast"
    days = [(d.day, d.temperature_max_celsius, d.temperature_min_celsius, d.uv_index_max)
            for d in r.daily]  # fmt: skip
    assert days == [("today", 17.7, 9.6, 3.2), ("tomorrow", 18.5, 9.0, 3.6)]
    text = check_exposition(result)
    assert 'weather_forecast_temperature_max_celsius{day="tomorrow"} 18.5' in text


def test_open_meteo_legacy_current_weather_recording_is_not_a_reading():
    """The legacy `current_weather=true` shape answers another question than ours."""
    result = parse_forecast(recorded("om_forecast_myweather_current_weather.json"))
    assert result.failure is not None
    assert result.failure.reason is FailureReason.INVALID_RESPONSE
    assert "current.temperature_2m" in result.failure.detail


def test_open_meteo_geocoding_recordings():
    enschede = recorded("om_search_frenck_enschede.json")
    place = pick_place(enschede, parse_target("Enschede,NL"))
    assert place is not None and (place.name, place.country) == ("Enschede", "NL")
    missing = recorded("om_search_frenck_missing_fields.json")
    # No country_code, country or admin1 at all: still a place, with no country.
    assert pick_place(missing, parse_target("Antarctica")) == Place(
        "Antarctica", "", -78.15856, 16.40626
    )
    # A country asked for matches the code where the name is missing ...
    found = pick_place(missing, parse_target("Île MacMurdo,TF"))
    assert found is not None and found.country == "TF"
    # ... a result without a country cannot match one, and a state matches admin1.
    assert pick_place(missing, parse_target("Antarctica,AQ")) is None
    found = pick_place(missing, parse_target("Atlantic Point,ME,US"))
    assert found is not None and (found.latitude, found.longitude) == (44.09647, -69.10087)


def test_open_meteo_air_quality_shape_has_no_recording_but_parses_nulls():
    """No recorded air-quality answer exists; its documented shape, with nulls."""
    document = {
        "latitude": 52.52, "longitude": 13.4, "utc_offset_seconds": 3600,
        "current_units": {"time": "unixtime", "interval": "seconds", "pm10": "μg/m³"},
        "current": {"time": 1795581900, "interval": 900, "european_aqi": 38, "us_aqi": 61,
                    "pm10": 17.5, "pm2_5": 12.25, "carbon_monoxide": 219.0,
                    "nitrogen_dioxide": 22.1, "sulphur_dioxide": 2.4, "ozone": 41.0,
                    "ammonia": None, "dust": 0.0, "alder_pollen": None, "birch_pollen": 12.5,
                    "grass_pollen": 0.0, "mugwort_pollen": None, "olive_pollen": None,
                    "ragweed_pollen": None},
    }  # fmt: skip
    air = parse_open_meteo_air(document)
    assert not isinstance(air, str)
    assert (air.european_index, air.usa_index) == (38, 61)
    assert air.pollutants == {
        "pm10": pytest.approx(17.5e-6), "pm2_5": pytest.approx(12.25e-6),
        "co": pytest.approx(219e-6), "no2": pytest.approx(22.1e-6),
        "so2": pytest.approx(2.4e-6), "o3": pytest.approx(41e-6), "dust": 0.0,
    }  # fmt: skip
    assert air.pollen == {"birch": 12.5, "grass": 0.0}
