"""The fake upstream itself: the shapes, units and checks the tests rely on, held against
the real answers recorded in ../shared/realdata/recorded/."""

import calendar
import dataclasses
import email.utils
import gzip
import http.client
import itertools
import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
import requests

import fake_upstream
from fake_upstream import met_norway, places
from tests.conftest import ROOT, met_example, recorded, recordings

KEY = "fake-test-key"
SINGAPORE = {"latitude": 1.2897, "longitude": 103.8501}  # UTC+8, afternoon storms
BERLIN = {"latitude": 52.52437, "longitude": 13.41053}
FORECAST_HOURLY_TYPE = (
    "SurfacePressureAndHeightVariable<VariableAndPreviousDay, "
    "VariableOrSpread<ForecastPressureVariable>, ForecastHeightVariable>"
)
AIR = (
    "european_aqi,us_aqi,pm10,pm2_5,carbon_monoxide,nitrogen_dioxide,sulphur_dioxide,ozone,"
    "ammonia,dust,alder_pollen,birch_pollen,grass_pollen,mugwort_pollen,olive_pollen,ragweed_pollen"
)
POLLEN = [name for name in AIR.split(",") if name.endswith("_pollen")]


@pytest.fixture(scope="module")
def fake():
    server = fake_upstream.start(api_key=KEY, hang_seconds=2)
    yield server
    fake_upstream.stop(server)


def weather(fake, **params):
    return requests.get(f"{fake.url}/data/2.5/weather", params={"appid": KEY, **params}, timeout=5)


def owm_forecast(fake, **params):
    return requests.get(f"{fake.url}/data/2.5/forecast", params={"appid": KEY, **params}, timeout=5)


def meteo(fake, path="/v1/forecast", **params):
    return requests.get(f"{fake.url}{path}", params=params, timeout=5)


def kind(value) -> str:
    """A JSON value's type, numbers as one (upstreams write 35 and 35.0 alike)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_differences(fake, real, where: str = "") -> list[str]:
    """Where a key both answers hold has values of different types (lists: their first items)."""
    if isinstance(fake, dict) and isinstance(real, dict):
        found = []
        for key in fake.keys() & real.keys():
            found += shape_differences(fake[key], real[key], f"{where}.{key}")
        return found
    if isinstance(fake, list) and isinstance(real, list) and fake and real:
        return shape_differences(fake[0], real[0], f"{where}[0]")
    if kind(fake) != kind(real):
        return [f"{where}: fake {kind(fake)} {fake!r}, real {kind(real)} {real!r}"]
    return []


# -- OpenWeatherMap: current weather ---------------------------------------------------


def test_units_are_honoured(fake):
    standard = weather(fake, q="London,GB").json()
    metric = weather(fake, q="London,GB", units="metric").json()
    imperial = weather(fake, q="London,GB", units="imperial").json()
    assert standard["main"]["temp"] == pytest.approx(283.15)
    assert metric["main"]["temp"] == pytest.approx(10.0)
    assert imperial["main"]["temp"] == pytest.approx(50.0)
    assert metric["wind"]["speed"] == pytest.approx(4.63)
    assert imperial["wind"]["speed"] == pytest.approx(10.36, abs=0.01)


def test_appid_is_checked(fake):
    for path in ("/data/2.5/weather", "/data/2.5/forecast"):
        response = requests.get(f"{fake.url}{path}", params={"q": "London"}, timeout=5)
        assert response.status_code == 401
        assert response.json()["cod"] == 401  # a number here, a string in 404s: as upstream
    assert weather(fake, q="Nowhere").json() == {"cod": "404", "message": "city not found"}


def test_lookups(fake):
    assert weather(fake, id="2950159").json()["name"] == "Berlin"
    assert weather(fake, zip="10001,US").json()["name"] == "New York"
    assert weather(fake, q="Springfield,MO,US").json()["id"] == 4409896
    assert weather(fake, q="sao paulo").json()["name"] == "São Paulo"
    assert weather(fake, q="Zurich", lang="de").json()["name"] == "Zürich"
    assert weather(fake, lat="95", lon="0").status_code == 400
    assert weather(fake).json()["message"] == "Nothing to geocode"
    polar = weather(fake, q="Longyearbyen").json()
    assert "sunrise" not in polar["sys"]


def test_a_point_at_sea_is_the_globe(fake):
    real = recorded("owm_weather_rails_stimulus_globe_0_0.json")
    sea = weather(fake, lat="0", lon="-20").json()
    assert (sea["name"], sea["id"]) == (real["name"], real["id"]) == ("Globe", 6295630)
    assert set(sea["sys"]) == set(real["sys"]) == {"sunrise", "sunset"}
    assert sea["coord"] == {"lon": -20.0, "lat": 0.0}
    assert sea["sys"]["sunrise"] < sea["sys"]["sunset"]
    assert shape_differences(sea, real) == []


def test_current_weather_has_the_recorded_shapes(fake):
    london = weather(fake, q="London,GB").json()
    tver = weather(fake, q="Berlin,DE", units="metric").json()
    for name in sorted(recordings().glob("owm_weather_*.json")):
        real = recorded(name.name)
        ours = tver if "metric" in name.name else london
        assert shape_differences(ours, real) == [], name.name
        assert set(real) - {"rain"} <= set(ours), name.name


def test_old_answers_are_served_in_their_old_shape(fake):
    old = recorded("owm_weather_pyowm_london_2013.json")
    shuzenji = weather(fake, q="Shuzenji,JP").json()
    assert set(shuzenji) == set(old)  # no visibility, no timezone
    assert set(shuzenji["main"]) == set(old["main"])  # no feels_like
    assert set(shuzenji["sys"]) == set(old["sys"]) == {"country", "sunrise", "sunset"}
    assert shuzenji["base"] == old["base"] == "gdps stations"
    assert shape_differences(shuzenji, old) == []
    empty = recorded("owm_weather_bikeweather_london_emptyrain.json")
    davis = weather(fake, q="Davis,US").json()
    assert set(davis) == set(empty) and set(davis["main"]) == set(empty["main"])
    assert davis["rain"] == empty["rain"] == {}
    assert shape_differences(davis, empty) == []


# -- OpenWeatherMap: 5-day / 3-hour forecast --------------------------------------------


def test_owm_forecast_steps_every_three_hours_from_the_next_one(fake):
    before = time.time()
    answer = owm_forecast(fake, q="London,GB", units="metric").json()
    assert (answer["cod"], answer["message"], answer["cnt"]) == ("200", 0, 40)
    steps = answer["list"]
    assert len(steps) == 40
    assert before < steps[0]["dt"] <= before + 10800
    for step, following in itertools.pairwise(steps):
        assert following["dt"] - step["dt"] == 10800
    for step in steps:
        assert step["dt"] % 10800 == 0
        assert step["dt_txt"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(step["dt"]))
        assert set(step["main"]) == {
            "temp",
            "feels_like",
            "temp_min",
            "temp_max",
            "pressure",
            "sea_level",
            "grnd_level",
            "humidity",
            "temp_kf",
        }
        assert step["main"]["temp_min"] <= step["main"]["temp"] <= step["main"]["temp_max"]
        assert set(step["wind"]) == {"speed", "deg", "gust"} and 0 <= step["clouds"]["all"] <= 100
        assert 0 <= step["pop"] <= 1 and step["sys"]["pod"] in ("d", "n")
        assert step["weather"][0]["icon"].endswith(step["sys"]["pod"])
        for amount in ("rain", "snow"):
            assert amount not in step or step[amount]["3h"] > 0  # absent, never 0
    assert len({step["main"]["temp"] for step in steps}) > 5  # it varies from step to step
    city = answer["city"]
    assert (city["id"], city["name"], city["country"], city["timezone"]) == (
        2643743,
        "London",
        "GB",
        0,
    )
    assert city["coord"] == {"lat": 51.5085, "lon": -0.1257}
    assert city["sunrise"] < city["sunset"]


def test_owm_forecast_parameters_and_errors(fake):
    metric = owm_forecast(fake, id="2950159", units="metric", cnt="3").json()
    imperial = owm_forecast(fake, zip="10115,DE", units="imperial", cnt="3").json()
    standard = owm_forecast(fake, lat="52.52437", lon="13.41053", cnt="3").json()
    assert metric["cnt"] == len(metric["list"]) == 3
    for c, f, k in zip(metric["list"], imperial["list"], standard["list"], strict=True):
        assert f["main"]["temp"] == pytest.approx(c["main"]["temp"] * 9 / 5 + 32, abs=0.02)
        assert k["main"]["temp"] == pytest.approx(c["main"]["temp"] + 273.15, abs=0.02)
        assert f["wind"]["speed"] == pytest.approx(c["wind"]["speed"] * 2.2369363, abs=0.02)
    assert owm_forecast(fake, q="Zurich", lang="de", cnt="1").json()["city"]["name"] == "Zürich"
    assert len(owm_forecast(fake, q="Berlin", cnt="99").json()["list"]) == 40
    assert owm_forecast(fake, q="Nowhere").json() == {"cod": "404", "message": "city not found"}
    assert owm_forecast(fake, lat="91", lon="0").json()["message"] == "wrong latitude"
    assert owm_forecast(fake).status_code == 400


def test_owm_forecast_at_sea(fake):
    sea = owm_forecast(fake, lat="-40.5", lon="-120.25", cnt="2").json()
    assert (sea["city"]["id"], sea["city"]["name"]) == (6295630, "Globe")
    assert "country" not in sea["city"] and sea["city"]["timezone"] == 0
    assert sea["city"]["coord"] == {"lat": -40.5, "lon": -120.25} and len(sea["list"]) == 2


def test_owm_rain_is_the_sum_of_the_open_meteo_hours_before_it(fake):
    steps = owm_forecast(fake, q="Singapore", cnt="16").json()["list"]
    hourly = meteo(
        fake,
        **SINGAPORE,
        hourly="precipitation,precipitation_probability",
        past_hours="0",
        forecast_hours="60",
        timeformat="unixtime",
    ).json()["hourly"]
    at = dict(
        zip(
            hourly["time"],
            zip(hourly["precipitation"], hourly["precipitation_probability"], strict=True),
            strict=True,
        )
    )
    compared = wet = dry = 0
    for step in steps:
        hours = [step["dt"] - 7200, step["dt"] - 3600, step["dt"]]  # each: the hour before it
        ahead = [step["dt"] + 3600, step["dt"] + 7200, step["dt"] + 10800]  # the step's own
        if not all(h in at for h in hours + ahead):
            continue
        fallen = step.get("rain", {}).get("3h", 0) + step.get("snow", {}).get("3h", 0)
        assert fallen == pytest.approx(sum(at[h][0] for h in hours), abs=0.001), step["dt_txt"]
        assert step["pop"] == pytest.approx(max(at[h][1] for h in ahead) / 100, abs=0.006)
        compared += 1
        wet, dry = wet + (fallen > 0), dry + (fallen == 0)
    assert compared >= 12 and wet and dry
    assert any(isinstance(s["pop"], float) and 0 < s["pop"] < 1 for s in steps)


# -- Open-Meteo forecast ------------------------------------------------------------------


def test_other_endpoints(fake):
    direct = requests.get(
        f"{fake.url}/geo/1.0/direct", params={"q": "London,GB", "limit": 1, "appid": KEY}, timeout=5
    ).json()
    assert direct[0]["lat"] == pytest.approx(51.5085) and direct[0]["country"] == "GB"
    air = requests.get(
        f"{fake.url}/data/2.5/air_pollution",
        params={"lat": 39.9, "lon": 116.4, "appid": KEY},
        timeout=5,
    ).json()
    assert air["list"][0]["main"]["aqi"] == 4
    forecast = meteo(
        fake,
        latitude=52.52,
        longitude=13.41,
        current="temperature_2m,wind_speed_10m,snowfall",
        timeformat="unixtime",
    ).json()
    assert forecast["current_units"]["wind_speed_10m"] == "km/h"
    assert forecast["current"]["wind_speed_10m"] == pytest.approx(4.1 * 3.6, abs=0.05)
    assert isinstance(forecast["current"]["time"], int)
    bad = meteo(fake, latitude=1)
    assert bad.status_code == 400 and bad.json()["error"] is True
    found = meteo(fake, "/v1/search", name="Berlin").json()
    assert found["results"][0]["country_code"] == "DE"
    assert "results" not in meteo(fake, "/v1/search", name="Qqq").json()


def test_open_meteo_hours_days_and_time_zones(fake):
    params = {
        **BERLIN,
        "hourly": "rain,showers,snowfall",
        "past_hours": 1,
        "forecast_hours": 1,
        "daily": "sunrise,sunset",
        "forecast_days": 1,
        "timeformat": "unixtime",
    }
    gmt = meteo(fake, **params).json()
    assert gmt["utc_offset_seconds"] == 0 and gmt["timezone"] == "GMT"  # as the real default
    local = meteo(fake, **params, timezone="auto").json()
    assert local["utc_offset_seconds"] == 3600 and local["timezone"] == "Europe/Berlin"
    assert local["timezone_abbreviation"] == "GMT+1"
    times = local["hourly"]["time"]
    assert (
        len(times) == 2 and times[1] - times[0] == 3600 and times[1] == time.time() // 3600 * 3600
    )
    assert local["hourly_units"]["snowfall"] == "cm"
    assert local["daily"]["sunrise"][0] < local["daily"]["sunset"][0]
    polar = meteo(fake, **{**params, "latitude": 78.2232, "longitude": 15.6469}).json()
    assert polar["daily"]["sunrise"] == [None]  # polar night: no sunrise
    for wrong in ({"hourly": "rain,fog_machine"}, {"past_hours": "x"}, {"forecast_days": 17}):
        refused = meteo(fake, **{**params, **wrong})
        assert refused.status_code == 400 and refused.json()["error"] is True


def test_open_meteo_times_step_as_upstream(fake):
    before = time.time()
    answer = meteo(
        fake,
        **SINGAPORE,
        current="temperature_2m",
        hourly="temperature_2m",
        past_hours=3,
        forecast_hours=5,
        daily="sunrise",
        timezone="auto",
        timeformat="unixtime",
    ).json()
    after = time.time()
    offset, now = answer["utc_offset_seconds"], answer["current"]["time"]
    assert offset == 28800 and answer["current"]["interval"] == 900
    assert now % 900 == 0 and now in (before // 900 * 900, after // 900 * 900)
    hours = answer["hourly"]["time"]
    assert len(hours) == 8 and all(t % 3600 == 0 for t in hours)
    assert hours[3] == now // 3600 * 3600  # the current hour, after 3 past ones
    days = answer["daily"]["time"]
    assert len(days) == 7  # forecast_days defaults to 7
    assert all((day + offset) % 86400 == 0 for day in days)  # local midnight
    assert days[0] <= now < days[0] + 86400 and days[0] % 86400 != 0
    whole_days = meteo(
        fake, **SINGAPORE, hourly="uv_index", forecast_days=2, timezone="auto"
    ).json()
    assert (
        whole_days["hourly"]["time"][0].endswith("T00:00")
        and len(whole_days["hourly"]["time"]) == 48
    )
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d", meteo(fake, **SINGAPORE, daily="sunset").json()["daily"]["time"][0]
    )
    only_past = meteo(fake, **SINGAPORE, hourly="rain", past_hours=2).json()["hourly"]["time"]
    assert len(only_past) == 2 + 16 * 24  # forecast_hours then defaults to its maximum
    # Half-hour offset: local whole hours, as upstream shows them.
    st_johns = meteo(
        fake,
        latitude=47.5649,
        longitude=-52.7093,
        hourly="rain",
        past_hours=0,
        forecast_hours=3,
        daily="sunrise",
        timezone="auto",
        timeformat="unixtime",
    ).json()
    assert st_johns["utc_offset_seconds"] == -12600
    assert all(t % 3600 == 1800 for t in st_johns["hourly"]["time"])
    assert all((t - 12600) % 86400 == 0 for t in st_johns["daily"]["time"])


@pytest.mark.parametrize(
    ("point", "zone"),
    [(SINGAPORE, "auto"), ({"latitude": 44.34, "longitude": 10.99}, "GMT")],  # Zocca: fronts
)
def test_daily_figures_are_those_of_the_hours(fake, point, zone):
    answer = meteo(
        fake,
        **point,
        hourly="temperature_2m,precipitation,precipitation_probability,uv_index,weather_code",
        daily="temperature_2m_max,temperature_2m_min,precipitation_sum,uv_index_max,"
        "precipitation_probability_max,weather_code,sunrise,sunset",
        forecast_days=8,
        timezone=zone,
        timeformat="unixtime",
    ).json()
    hourly, daily = answer["hourly"], answer["daily"]
    index = {t: i for i, t in enumerate(hourly["time"])}
    for day, start in enumerate(daily["time"][:7]):
        instants = [index[start + h * 3600] for h in range(24)]
        fallen = [index[start + h * 3600] for h in range(1, 25)]  # stamped at the hour's end
        temperatures = [hourly["temperature_2m"][i] for i in instants]
        assert daily["temperature_2m_max"][day] == max(temperatures)
        assert daily["temperature_2m_min"][day] == min(temperatures)
        assert daily["uv_index_max"][day] == max(hourly["uv_index"][i] for i in instants)
        assert daily["precipitation_sum"][day] == pytest.approx(
            sum(hourly["precipitation"][i] for i in fallen), abs=0.05
        )
        assert daily["precipitation_probability_max"][day] == max(
            hourly["precipitation_probability"][i] for i in fallen
        )
        assert daily["weather_code"][day] == max(hourly["weather_code"][i] for i in fallen)
        assert start < daily["sunrise"][day] < daily["sunset"][day] < start + 86400
    assert max(daily["precipitation_sum"]) > 0 and max(daily["weather_code"]) >= 61


def test_the_model_has_frost_heavy_rain_dry_hours_and_sunshine(fake):
    ahead = {"past_hours": 0, "forecast_hours": 24, "timeformat": "unixtime", "timezone": "auto"}
    innsbruck = meteo(fake, latitude=47.2627, longitude=11.3945, hourly="temperature_2m", **ahead)
    temperatures = innsbruck.json()["hourly"]["temperature_2m"]
    assert min(temperatures) < 0 < max(temperatures)  # frost tonight, thaw by day
    variables = (
        "precipitation,precipitation_probability,weather_code,uv_index,uv_index_clear_sky,is_day"
    )
    singapore = meteo(fake, **SINGAPORE, hourly=variables, **ahead).json()["hourly"]
    hours = [
        dict(zip(singapore, values, strict=True))
        for values in zip(*singapore.values(), strict=True)
    ]
    assert any(h["precipitation"] >= 4 and h["precipitation_probability"] >= 70 for h in hours)
    assert any(h["precipitation"] == 0 for h in hours)
    # The code is an instant (the weather as the hour begins); the amount is stamped at
    # the hour's end, on the next entry.
    for hour, following in itertools.pairwise(hours):
        assert (following["precipitation"] > 0) == (hour["weather_code"] >= 51), hour
    for hour in hours:
        assert hour["uv_index"] <= hour["uv_index_clear_sky"]
        if not hour["is_day"]:
            assert hour["uv_index"] == 0
    assert max(h["uv_index"] for h in hours) >= 6  # the tropics at noon, all year
    assert sum(h["is_day"] for h in hours) >= 10


def test_open_meteo_current_hourly_and_daily_units_as_recorded(fake):
    real = recorded("om_forecast_frenck_enschede_excerpt.json")
    asked = {
        block: ",".join(real[block].keys() - {"time", "interval"})
        for block in ("current", "hourly", "daily")
    }
    ours = meteo(fake, **BERLIN, **asked, timezone="auto").json()
    for block in ("current_units", "hourly_units", "daily_units"):
        assert ours[block] == real[block], block
    assert set(ours) == set(real)
    for block in ("current", "hourly", "daily"):
        assert set(ours[block]) == set(real[block]), block
    assert shape_differences(ours, real) == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:(00|15|30|45)", ours["current"]["time"])
    for integer in ("is_day", "precipitation_probability", "weather_code", "relative_humidity_2m"):
        assert type(ours["current"][integer]) is int, integer
    lisbon = recorded("om_forecast_gsaprod_lisbon.json")
    del lisbon["current_units"]["is_day"]  # `true` there: a doubt SOURCES.md notes
    asked = {
        block: ",".join(lisbon[block].keys() - {"time", "interval"})
        for block in ("current", "daily")
    }
    ours = meteo(fake, **SINGAPORE, **asked, timezone="auto", timeformat="unixtime").json()
    assert set(ours) == set(lisbon) and shape_differences(ours, lisbon) == []
    assert ours["daily_units"] == lisbon["daily_units"]


def test_every_new_variable_is_served(fake):
    current = (
        "uv_index,uv_index_clear_sky,precipitation_probability,precipitation,rain,showers,"
        "snowfall,is_day"
    )
    hourly = (
        "temperature_2m,apparent_temperature,relative_humidity_2m,precipitation_probability,precipitation,"
        "rain,showers,snowfall,wind_speed_10m,wind_gusts_10m,cloud_cover,uv_index,uv_index_clear_sky,"
        "weather_code,dew_point_2m,pressure_msl,surface_pressure,visibility,wind_direction_10m"
    )
    answer = meteo(
        fake,
        latitude=47.3667,
        longitude=8.55,
        current=current,
        hourly=hourly,
        past_hours=0,
        forecast_hours=48,
        wind_speed_unit="ms",
        timeformat="unixtime",
    ).json()
    assert set(answer["current"]) == {"time", "interval", *current.split(",")}
    assert answer["hourly_units"]["wind_gusts_10m"] == "m/s"
    for variable in hourly.split(","):
        values = answer["hourly"][variable]
        assert len(values) == 48 and None not in values, variable
    assert weather(fake, q="Zurich").json()["snow"]["1h"] == 0.8
    assert answer["current"]["snowfall"] == pytest.approx(0.8 * 0.7)  # cm: 7 cm is 10 mm of water
    # At -15 °C what falls is snow, and it falls within two days.
    polar = meteo(
        fake,
        latitude=78.2232,
        longitude=15.6469,
        hourly="snowfall,precipitation,rain,uv_index,is_day",
        past_hours=0,
        forecast_hours=48,
    ).json()["hourly"]
    pairs = list(zip(polar["snowfall"], polar["precipitation"], strict=True))
    assert any(cm > 0 for cm, _ in pairs) and set(polar["rain"]) == {0.0}
    assert all(cm == pytest.approx(mm * 0.7, abs=0.01) for cm, mm in pairs)
    assert set(polar["uv_index"]) == {0.0} and set(polar["is_day"]) == {0}  # polar night


def test_unknown_variables_get_open_meteo_own_400(fake):
    cases = [
        ("/v1/forecast", "hourly", "rain,fog_machine", FORECAST_HOURLY_TYPE),
        ("/v1/forecast", "current", "temperature_2m,uv", FORECAST_HOURLY_TYPE),
        ("/v1/forecast", "daily", "uv_index", "ForecastVariableDaily"),
        (
            "/v1/air-quality",
            "current",
            "pm2_5,pollen",
            "VariableOrDerived<CamsVariable, CamsVariableDerived>",
        ),
    ]
    for path, block, value, parser in cases:
        refused = meteo(fake, path, **BERLIN, **{block: value})
        assert refused.status_code == 400
        assert refused.json() == {
            "error": True,
            "reason": "Data corrupted at path ''. "
            f"Cannot initialize {parser} from invalid String value {value}.",
        }
    assert meteo(fake, **BERLIN, hourly="rain", past_hours="x").json()["reason"] == (
        "Value was not of type 'Int' at path 'past_hours'. Data found at 'past_hours' was not Int."
    )
    assert meteo(fake, **BERLIN, daily="sunrise", forecast_days=17).json()["reason"] == (
        "Forecast days is invalid. Allowed range 0 to 16. Given 16."  # sic, as upstream
    )
    assert meteo(fake, "/v1/air-quality", latitude=91, longitude=0).json()["reason"] == (
        "Latitude must be in range of -90 to 90°. Given: 91.0."
    )


# -- Open-Meteo air quality ---------------------------------------------------------------


def test_air_quality_in_and_outside_europe(fake):
    london = meteo(
        fake,
        "/v1/air-quality",
        latitude=51.5085,
        longitude=-0.1257,
        current=AIR,
        timeformat="unixtime",
        timezone="auto",
    ).json()
    units = london["current_units"]
    assert (units["european_aqi"], units["us_aqi"], units["grass_pollen"]) == (
        "EAQI",
        "USAQI",
        "grains/m³",
    )
    assert {units[v] for v in ("pm10", "pm2_5", "ozone", "ammonia", "dust", "carbon_monoxide")} == {
        "μg/m³"
    }
    current = london["current"]
    assert current["interval"] == 3600 and current["time"] % 3600 == 0
    assert time.time() - 3600 < current["time"] <= time.time()
    assert current["carbon_monoxide"] == 230.31 and current["ammonia"] == 0.9
    assert current["grass_pollen"] == 0.4 and current["olive_pollen"] is None  # out of season
    assert 0 < current["european_aqi"] <= 40 and type(current["us_aqi"]) is int
    tokyo = meteo(
        fake, "/v1/air-quality", latitude=35.6895, longitude=139.6917, current=AIR, timezone="auto"
    ).json()
    assert all(tokyo["current"][species] is None for species in POLLEN)
    assert tokyo["current"]["ammonia"] is None and tokyo["current"]["pm2_5"] > 0
    assert tokyo["utc_offset_seconds"] == 32400
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00", tokyo["current"]["time"])
    sea = meteo(fake, "/v1/air-quality", latitude=-40.5, longitude=-120.25, current=AIR).json()
    assert all(sea["current"][species] is None for species in POLLEN)
    beijing = meteo(
        fake, "/v1/air-quality", latitude=39.9075, longitude=116.3972, current="european_aqi,us_aqi"
    ).json()
    assert beijing["current"]["european_aqi"] > 80 and beijing["current"]["us_aqi"] > 150
    hourly = meteo(
        fake, "/v1/air-quality", latitude=51.5085, longitude=-0.1257, hourly="pm2_5,birch_pollen"
    ).json()
    assert len(hourly["hourly"]["time"]) == 5 * 24 and hourly["hourly_units"]["pm2_5"] == "μg/m³"
    envelope = set(recorded("om_forecast_gsaprod_lisbon.json")) - {"daily", "daily_units"}
    assert set(london) == envelope


# -- Open-Meteo geocoding -----------------------------------------------------------------


def test_open_meteo_search_by_postal_code_and_language(fake):
    found = meteo(fake, "/v1/search", name="94040").json()
    assert found["results"][0]["name"] == "Mountain View"
    assert "94040" in found["results"][0]["postcodes"]
    german = meteo(fake, "/v1/search", name="Zürich", language="de").json()
    assert german["results"][0]["name"] == "Zürich"
    assert "results" not in meteo(fake, "/v1/search", name="B").json()


def test_geocoding_leaves_out_what_a_place_lacks(fake):
    real = {r["name"]: r for r in recorded("om_search_frenck_missing_fields.json")["results"]}
    for name in ("Antarctica", "Île MacMurdo", "Atlantic Point"):
        ours = meteo(fake, "/v1/search", name=name).json()["results"][0]
        assert set(ours) <= set(real[name]), name
        assert shape_differences(ours, real[name]) == [], name
    antarctica = meteo(fake, "/v1/search", name="Antarctica").json()["results"][0]
    assert set(antarctica) == set(real["Antarctica"])  # no country_code, country, admin1
    island = meteo(fake, "/v1/search", name="Île MacMurdo").json()["results"][0]
    assert island["country_code"] == "TF" and not {"country", "admin1"} & set(island)
    assert "elevation" not in meteo(fake, "/v1/search", name="Atlantic Point").json()["results"][0]
    enschede = recorded("om_search_frenck_enschede.json")["results"][0]
    for name in ("Berlin", "Springfield", "London", "Singapore"):
        for ours in meteo(fake, "/v1/search", name=name).json()["results"]:
            assert set(ours) <= set(enschede) and shape_differences(ours, enschede) == []
            assert "" not in ours.values()


# -- faults, counts and weights -------------------------------------------------------------


def test_open_meteo_faults_speak_open_meteo(fake):
    for path, params in (
        ("/v1/search", {"name": "Berlin"}),
        ("/v1/air-quality", {**BERLIN, "current": "pm10"}),
    ):
        requests.post(
            f"{fake.url}/_fake/faults",
            json={"fault": "json_503", "match": "*", "path": path, "times": 1},
            timeout=5,
        ).raise_for_status()
        answer = meteo(fake, path, **params)
        assert answer.status_code == 503
        assert answer.json()["error"] is True and answer.json()["reason"]


def fault(fake, name: str, match: str, path: str) -> None:
    rule = {"fault": name, "match": match, "path": path, "times": 1, "delay": 0.2}
    requests.post(f"{fake.url}/_fake/faults", json=rule, timeout=5).raise_for_status()


def test_faults_act_on_the_forecasts(fake):
    path = "/data/2.5/forecast"
    fault(fake, "json_500", "Berlin", path)
    assert owm_forecast(fake, q="Berlin").json() == {"cod": 500, "message": "Internal error"}
    for name, check in (
        ("malformed", lambda r: r.content == b"<<<this is not json>>>"),
        ("empty", lambda r: r.content == b""),
        ("partial", lambda r: r.content.startswith(b'{"coord"') and not r.content.endswith(b"}")),
        ("error_in_body", lambda r: r.json() == {"cod": "404", "message": "city not found"}),
    ):
        fault(fake, name, "Berlin", path)
        response = owm_forecast(fake, q="Berlin")
        assert response.status_code == 200 and check(response), name
    fault(fake, "nulls", "Berlin", path)
    nulls = owm_forecast(fake, q="Berlin", cnt="2").json()
    assert all(
        s["main"]["temp"] is not None and s["main"]["humidity"] is None for s in nulls["list"]
    )
    assert all(
        s["wind"] is None and s["pop"] is None and s["weather"] is None for s in nulls["list"]
    )
    fault(fake, "no_temperature", "Atlantis", path)  # a name the fake does not know
    unknown = owm_forecast(fake, q="Atlantis", cnt="2").json()
    assert unknown["city"]["name"] == "Globe" and unknown["list"][0]["main"]["temp"] is None
    fault(fake, "hang", "Berlin", path)
    with pytest.raises(requests.ConnectionError):
        owm_forecast(fake, q="Berlin")
    fault(fake, "nulls", "52.52437,13.41053", "/v1/forecast")
    answer = meteo(
        fake, **BERLIN, current="temperature_2m,uv_index", hourly="rain", daily="sunrise"
    ).json()
    assert answer["current"]["uv_index"] is None and answer["current"]["temperature_2m"] is not None
    assert set(answer["hourly"]["rain"]) == {None} and set(answer["daily"]["sunrise"]) == {None}


def test_counts_and_faults(fake):
    requests.post(f"{fake.url}/_fake/reset", timeout=5)
    requests.post(
        f"{fake.url}/_fake/faults",
        json={"fault": "json_500", "match": "Oslo", "times": 1},
        timeout=5,
    )
    assert weather(fake, q="Oslo").status_code == 500
    assert weather(fake, q="Oslo").status_code == 404  # the rule was used up
    summary = requests.get(f"{fake.url}/_fake/requests", timeout=5).json()
    assert summary["total"] == 2 and summary["by_path"] == {"/data/2.5/weather": 2}
    assert summary["weighted"] == {"/data/2.5/weather": 2}
    assert (
        requests.post(f"{fake.url}/_fake/faults", json={"fault": "nope"}, timeout=5).status_code
        == 400
    )


def test_weighted_counts_as_open_meteo_counts(fake):
    requests.post(f"{fake.url}/_fake/reset", timeout=5)
    fifteen = "temperature_2m,rain,showers,snowfall,uv_index"
    meteo(
        fake,
        **BERLIN,
        current=fifteen,
        hourly=fifteen,
        daily="sunrise,sunset,uv_index_max,weather_code,precipitation_sum",
    )
    meteo(fake, **BERLIN, current="temperature_2m")  # one variable: still one call
    meteo(
        fake,
        **BERLIN,
        hourly="rain,showers,snowfall,uv_index,is_day",
        forecast_days=16,
        past_days=12,
    )
    ten = (
        "temperature_2m,rain,showers,snowfall,uv_index,is_day,cloud_cover,visibility,"
        "pressure_msl,dew_point_2m"
    )
    meteo(fake, **BERLIN, hourly=ten, forecast_days=16, past_days=12)  # 10 variables, 28 days
    meteo(fake, "/v1/air-quality", **BERLIN, current=AIR)  # 16 variables
    meteo(fake, **BERLIN, hourly="nope")  # refused, and counted all the same
    owm_forecast(fake, q="Berlin", cnt="1")
    summary = requests.get(f"{fake.url}/_fake/requests", timeout=5).json()
    assert summary["by_path"] == {"/v1/forecast": 5, "/v1/air-quality": 1, "/data/2.5/forecast": 1}
    assert summary["weighted"] == {
        "/v1/forecast": pytest.approx(1.5 + 1 + 1 + 2 + 1),
        "/v1/air-quality": pytest.approx(1.6),
        "/data/2.5/forecast": 1,
    }


# -- MET Norway Locationforecast 2.0 ------------------------------------------------------

MET = "/weatherapi/locationforecast/2.0"
AGENT = {"User-Agent": "fake-upstream-tests/1.0 ops@example.com"}
TROMSO = {"lat": "69.6496", "lon": "18.956"}  # thunder in light winter showers around 0 °C
# Every symbol code MET Norway documents (github.com/metno/weathericons, legend.csv),
# the two misspelt ones as sent; True: it comes in _day, _night and _polartwilight.
MET_SYMBOLS = {
    "clearsky": True,
    "fair": True,
    "partlycloudy": True,
    "cloudy": False,
    "fog": False,
    **{
        f"{strength}{phase}showers{thunder}": True
        for strength in ("light", "", "heavy")
        for phase in ("rain", "sleet", "snow")
        for thunder in ("", "andthunder")
    },
    **{
        f"{strength}{phase}{thunder}": False
        for strength in ("light", "", "heavy")
        for phase in ("rain", "sleet", "snow")
        for thunder in ("", "andthunder")
    },
}
for _phase in ("sleet", "snow"):
    del MET_SYMBOLS[f"light{_phase}showersandthunder"]
    MET_SYMBOLS[f"lights{_phase}showersandthunder"] = True


def met(fake, variant="complete", headers=AGENT, timeout=5.0, **params):
    url = f"{fake.url}{MET}/{variant}"
    return requests.get(url, params=params, headers=headers, timeout=timeout)


def met_counts(fake) -> dict:
    return requests.get(f"{fake.url}/_fake/requests", timeout=5).json()["met"]


def met_settings(fake, **settings) -> requests.Response:
    return requests.post(f"{fake.url}/_fake/met", json=settings, timeout=5)


def http_time(value: str) -> float:
    return email.utils.parsedate_to_datetime(value).timestamp()


def periods(answer: dict, name: str) -> list[tuple[int, dict, dict]]:
    """(time, instant details, period) for every step that has the period `name`."""
    return [
        (
            calendar.timegm(time.strptime(step["time"], "%Y-%m-%dT%H:%M:%SZ")),
            step["data"]["instant"]["details"],
            step["data"][name],
        )
        for step in answer["properties"]["timeseries"]
        if name in step["data"]
    ]


def test_met_answers_in_the_documented_shape(fake):
    example = met_example()
    ours = met(fake, lat="59.9133", lon="10.7389", altitude="20").json()
    assert shape_differences(ours, example) == []
    assert ours["type"] == "Feature" and ours["geometry"]["type"] == "Point"
    assert ours["geometry"]["coordinates"] == [10.7389, 59.9133, 20]  # lon, lat, altitude
    properties, real = ours["properties"], example["properties"]
    assert set(properties) == {"meta", "timeseries"} and set(properties["meta"]) == {
        "updated_at",
        "units",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", properties["meta"]["updated_at"])
    assert real["meta"]["units"].items() <= properties["meta"]["units"].items()
    first = properties["timeseries"][0]
    assert set(first) == {"time", "data"} and set(first["data"]) == set(
        real["timeseries"][0]["data"]
    )
    for block, values in real["timeseries"][0]["data"].items():
        assert set(first["data"][block]) == set(values), block
        assert set(first["data"][block]["details"]) == set(values["details"]), block
        assert all(type(v) is float for v in first["data"][block]["details"].values()), block
    named = {
        name for step in properties["timeseries"] for name in step["data"]["instant"]["details"]
    }
    assert named <= set(properties["meta"]["units"])
    # compact: only the variables the data model marks bold.
    compact = met(fake, "compact", lat="59.9133", lon="10.7389").json()
    assert set(compact["properties"]["meta"]["units"]) == {
        "air_pressure_at_sea_level",
        "air_temperature",
        "cloud_area_fraction",
        "precipitation_amount",
        "relative_humidity",
        "wind_from_direction",
        "wind_speed",
    }
    data = compact["properties"]["timeseries"][0]["data"]
    assert set(data["instant"]["details"]) == set(compact["properties"]["meta"]["units"]) - {
        "precipitation_amount"
    }
    assert set(data["next_1_hours"]["details"]) == {"precipitation_amount"}
    assert set(data["next_6_hours"]["details"]) == {"precipitation_amount"}
    assert set(data["next_12_hours"]) == {"summary"}
    assert compact["geometry"]["coordinates"][2] == 0  # no place the fake knows: at sea


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"lat": "91", "lon": "10"}, "lat"),
        ({"lat": "59.9", "lon": "-180.5"}, "lon"),
        ({"lon": "10"}, "lat"),
        ({"lat": "59.9"}, "lon"),
        ({"lat": "north", "lon": "10"}, "lat"),
        ({"lat": "59.9", "lon": "10", "altitude": "high"}, "altitude"),
    ],
)
def test_met_refuses_bad_coordinates_as_met_does(fake, params, reason):
    refused = met(fake, **params)
    assert refused.status_code == 400
    assert refused.headers["Content-Type"] == "text/html"  # "an error message formatted as HTML"
    assert "400 Bad Request" in refused.text and reason in refused.text
    assert "Expires" not in refused.headers


def test_met_steps_hourly_then_six_hourly(fake):
    before = time.time()
    answer = met(fake, **TROMSO).json()
    steps = answer["properties"]["timeseries"]
    times = [calendar.timegm(time.strptime(s["time"], "%Y-%m-%dT%H:%M:%SZ")) for s in steps]
    assert times[0] in (before // 3600 * 3600, time.time() // 3600 * 3600)  # the current hour
    gaps = [b - a for a, b in itertools.pairwise(times)]
    hourly = gaps.index(21600)
    assert set(gaps[:hourly]) == {3600} and set(gaps[hourly:]) == {21600}
    assert 55 <= hourly + 1 <= 60  # hourly for about 2.5 days
    assert 80 <= len(steps) <= 90 and 9 * 86400 <= times[-1] - times[0] <= 10 * 86400
    assert all(t % 21600 == 0 for t in times[hourly:])  # 00, 06, 12 and 18 UTC
    for index, (moment, step) in enumerate(zip(times, steps, strict=True)):
        data = step["data"]
        assert ("next_1_hours" in data) == (index < hourly), step["time"]
        assert ("next_6_hours" in data) == (moment + 6 * 3600 <= times[-1]), step["time"]
        assert ("next_12_hours" in data) == (moment + 12 * 3600 <= times[-1]), step["time"]
    assert set(steps[-1]["data"]) == {"instant"}  # the last step: no period at all
    assert set(steps[-2]["data"]) == {"instant", "next_6_hours"}


def test_met_values_are_those_of_open_meteo(fake):
    hourly = meteo(
        fake,
        **SINGAPORE,
        hourly="temperature_2m,relative_humidity_2m,dew_point_2m,pressure_msl,cloud_cover,"
        "wind_speed_10m,wind_direction_10m,wind_gusts_10m,uv_index_clear_sky,precipitation,"
        "precipitation_probability",
        past_hours=0,
        forecast_hours=16 * 24,
        wind_speed_unit="ms",
        timeformat="unixtime",
    ).json()["hourly"]
    at = {t: i for i, t in enumerate(hourly["time"])}

    def om(variable: str, moment: int) -> float:
        return hourly[variable][at[moment]]

    answer = met(fake, lat="1.2897", lon="103.8501").json()
    pairs = {
        "air_temperature": "temperature_2m",
        "relative_humidity": "relative_humidity_2m",
        "dew_point_temperature": "dew_point_2m",
        "air_pressure_at_sea_level": "pressure_msl",
        "cloud_area_fraction": "cloud_cover",
        "wind_speed": "wind_speed_10m",
        "wind_from_direction": "wind_direction_10m",
        "wind_speed_of_gust": "wind_gusts_10m",
        "ultraviolet_index_clear_sky": "uv_index_clear_sky",
    }
    for moment, instant, _ in periods(answer, "next_6_hours"):
        for ours, theirs in pairs.items():
            assert instant[ours] == pytest.approx(om(theirs, moment), abs=0.051), (ours, moment)
    wet = 0
    for moment, _, hour in periods(answer, "next_1_hours"):  # Open-Meteo stamps it t + 1 h
        fallen = om("precipitation", moment + 3600)
        assert hour["details"]["precipitation_amount"] == pytest.approx(fallen, abs=0.001)
        assert hour["details"]["probability_of_precipitation"] == pytest.approx(
            om("precipitation_probability", moment + 3600), abs=0.51
        )
        wet += fallen > 0
    assert wet >= 3
    for moment, _, six in periods(answer, "next_6_hours"):
        hours = [moment + k * 3600 for k in range(1, 7)]
        assert six["details"]["precipitation_amount"] == pytest.approx(
            sum(om("precipitation", h) for h in hours), abs=0.051
        )
        instants = [om("temperature_2m", h - 3600) for h in hours]
        assert six["details"]["air_temperature_max"] == max(instants)
        assert six["details"]["air_temperature_min"] == min(instants)
    # Far from every place: at sea, as for the others.
    sea = met(fake, lat="-40.5", lon="-120.25").json()["properties"]["timeseries"][0]
    sea_om = meteo(
        fake,
        latitude=-40.5,
        longitude=-120.25,
        hourly="temperature_2m",
        past_hours=0,
        forecast_hours=1,
        timeformat="unixtime",
    ).json()["hourly"]
    assert sea["data"]["instant"]["details"]["air_temperature"] == sea_om["temperature_2m"][0]


def test_met_symbols_follow_the_model_and_the_sun(fake):
    seen: dict[str, set[str]] = {}
    points = (
        TROMSO,
        {"lat": "1.2897", "lon": "103.8501"},
        {"lat": "44.34", "lon": "10.99"},
        {"lat": "25.0772", "lon": "55.3093"},
        {"lat": "47.3667", "lon": "8.55"},
        {"lat": "-40.5", "lon": "-120.25"},
    )
    for point in points:
        answer = met(fake, **point).json()
        latitude = float(point["lat"])
        for name, hours in (("next_1_hours", 1), ("next_6_hours", 6), ("next_12_hours", 12)):
            for moment, _, period in periods(answer, name):
                code = period["summary"]["symbol_code"]
                base, _, suffix = code.partition("_")
                assert base in MET_SYMBOLS, code
                assert bool(suffix) == MET_SYMBOLS[base], code
                seen.setdefault(base, set()).add(suffix)
                if suffix:  # the sun at the middle of the period
                    middle = moment + hours * 1800
                    height = places.sun_elevation(latitude, float(point["lon"]), middle)
                    expected = (
                        "day"
                        if height > places.HORIZON_DEGREES
                        else "polartwilight"
                        if abs(latitude) >= 66.56 and height > -6
                        else "night"
                    )
                    assert suffix == expected, (code, point, moment)
    assert {"day", "night"} <= set().union(*seen.values())
    assert any(not MET_SYMBOLS[base] for base in seen)  # rain, cloudy, snow...: no suffix
    assert any(base.endswith("showersandthunder") for base in seen)  # the tropics' afternoons
    # Tromsø's light showers with thunder around 0 °C: the codes as MET Norway misspells them.
    answer = met(fake, **TROMSO).json()
    misspelt = {"lightssleetshowersandthunder": 0, "lightssnowshowersandthunder": 0}
    for _, instant, hour in periods(answer, "next_1_hours"):
        base = hour["summary"]["symbol_code"].partition("_")[0]
        assert base not in ("lightsleetshowersandthunder", "lightsnowshowersandthunder")
        if base in misspelt:
            misspelt[base] += 1
            assert 0 < hour["details"]["precipitation_amount"] < 1  # light
            temperature = instant["air_temperature"]
            assert (temperature <= 0.5) == (base == "lightssnowshowersandthunder"), temperature
            assert temperature <= 1.5
    assert all(misspelt.values()), misspelt


def test_met_polar_twilight_day_and_night():
    world = places.World.load()
    tromso = world.site(world.nearest(69.6496, 18.956))
    longyearbyen = world.site(world.nearest(78.2232, 15.6469))  # polar night: always night
    oslo = world.site(None, (59.9133, 10.7389))
    winter_noon = calendar.timegm((2026, 12, 10, 10, 30, 0))  # Tromsø: the sun 3° below
    midnight = calendar.timegm((2026, 12, 10, 23, 30, 0))
    sky = places.model_hour(oslo, winter_noon)  # a clear, dry hour, wherever it is
    dry = [dataclasses.replace(sky, rain=0, showers=0, snow=0, cloud_cover=0)]
    assert met_norway.symbol(tromso, dry, winter_noon - 1800) == "clearsky_polartwilight"
    assert met_norway.symbol(oslo, dry, winter_noon - 1800) == "clearsky_day"
    assert met_norway.symbol(tromso, dry, midnight - 1800) == "clearsky_night"
    assert met_norway.symbol(longyearbyen, dry, winter_noon - 1800) == "clearsky_night"
    cloudy = [dataclasses.replace(dry[0], cloud_cover=100)]
    assert met_norway.symbol(tromso, cloudy, winter_noon - 1800) == "cloudy"


def test_met_caching_headers_and_not_modified(fake):
    answer = met(fake, lat="60.1", lon="9.58")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    date, expires = http_time(answer.headers["Date"]), http_time(answer.headers["Expires"])
    modified = http_time(answer.headers["Last-Modified"])
    assert expires - date == pytest.approx(1800, abs=2)  # half an hour, as the service
    assert modified <= date and modified % 3600 == 0  # updated on the hour by default
    updated = answer.json()["properties"]["meta"]["updated_at"]
    assert calendar.timegm(time.strptime(updated, "%Y-%m-%dT%H:%M:%SZ")) == modified
    before = met_counts(fake)["not_modified"]
    same = met(
        fake,
        lat="60.1",
        lon="9.58",
        headers={**AGENT, "If-Modified-Since": answer.headers["Last-Modified"]},
    )
    assert same.status_code == 304 and same.content == b""
    assert same.headers["Last-Modified"] == answer.headers["Last-Modified"]
    assert http_time(same.headers["Expires"]) >= expires
    assert met_counts(fake)["not_modified"] == before + 1
    for other in (
        email.utils.formatdate(modified - 1, usegmt=True),  # a second earlier
        email.utils.formatdate(modified + 60, usegmt=True),  # later, not the same string
        answer.headers["Last-Modified"].replace("GMT", "UTC"),
    ):
        full = met(fake, lat="60.1", lon="9.58", headers={**AGENT, "If-Modified-Since": other})
        assert full.status_code == 200 and full.json()["properties"]["timeseries"], other
    assert met_counts(fake)["not_modified"] == before + 1


def test_met_gzip_when_asked(fake):
    url = f"{fake.url}{MET}/complete?lat=60.1&lon=9.58"
    for encoding, compressed in (
        ("gzip", True),
        ("gzip, deflate", True),
        ("identity", False),
        ("gzip;q=0", False),
    ):
        with urllib.request.urlopen(
            urllib.request.Request(url, headers={**AGENT, "Accept-Encoding": encoding}), timeout=5
        ) as response:
            body = response.read()
            assert (response.headers.get("Content-Encoding") == "gzip") == compressed, encoding
            assert "Accept-Encoding" in response.headers["Vary"]
            assert int(response.headers["Content-Length"]) == len(body)
        document = json.loads(gzip.decompress(body) if compressed else body)
        assert document["properties"]["timeseries"], encoding


@pytest.mark.parametrize(
    ("agent", "allowed"),
    [
        (None, False),
        ("", False),
        ("python-requests/2.32.3", False),
        ("Python-urllib/3.11", False),
        ("urllib3/2.2.1", False),
        ("python-urllib3/2.2.1", False),
        ("curl/8.5.0", False),
        ("okhttp/4.12.0", False),
        ("Go-http-client/1.1", False),
        ("Java/17.0.9", False),
        ("python-requests/2.32.3 ops@example.com", True),
        ("curl/8.5.0 (+https://example.com/contact)", True),
        ("Go-http-client/1.1 weather.example.org", True),
        ("AcmeWeatherApp/0.9 github.com/acmeweatherapp", True),
        ("multitarget_exporter/2.0 (ops@example.com)", True),
    ],
)
def test_met_refuses_unidentified_clients(fake, agent, allowed):
    before = met_counts(fake)["forbidden"]
    if agent is None:  # requests and urllib name themselves: http.client sends no agent
        connection = http.client.HTTPConnection(*fake.server_address[:2], timeout=5)
        connection.request("GET", f"{MET}/complete?lat=60.1&lon=9.58")
        response = connection.getresponse()
        status, content_type = response.status, response.headers["Content-Type"]
        text, expires = response.read().decode(), response.headers["Expires"]
        connection.close()
    else:
        answer = met(fake, lat="60.1", lon="9.58", headers={"User-Agent": agent})
        status, content_type = answer.status_code, answer.headers["Content-Type"]
        text, expires = answer.text, answer.headers.get("Expires")
    if allowed:
        assert status == 200 and met_counts(fake)["forbidden"] == before
    else:
        assert status == 403 and content_type == "text/html" and expires is None
        assert "User-Agent" in text
        assert met_counts(fake)["forbidden"] == before + 1


def test_met_counts_early_and_long_coordinates(fake):
    assert met_settings(fake, expires_seconds=1.5).status_code == 200
    try:
        before = met_counts(fake)
        point = {"lat": "58.1467", "lon": "7.9956"}
        met(fake, **point)
        met(fake, lat="58.1468", lon="7.9956")  # another point: its own Expires
        assert met_counts(fake)["early"] == before["early"]
        met(fake, **point)  # before the Expires just given
        assert met_counts(fake)["early"] == before["early"] + 1
        time.sleep(2.05)  # Expires is whole seconds: past it now
        met(fake, **point)
        assert met_counts(fake)["early"] == before["early"] + 1
        assert met_counts(fake)["long_coordinates"] == before["long_coordinates"]
        for lat, lon in (("58.14671", "7.9956"), ("58.1467", "7.99560"), ("58.1", "7.123456789")):
            assert met(fake, lat=lat, lon=lon).status_code == 200  # served, and counted
        met(fake, lat="58.1", lon="7.1234")
        assert met_counts(fake)["long_coordinates"] == before["long_coordinates"] + 3
    finally:
        met_settings(fake, expires_seconds=1800, update_seconds=3600)


def test_met_settings_at_runtime_and_reset(fake):
    assert met_settings(fake, expires_seconds=3, update_seconds=1).json() == {
        "expires_seconds": 3,
        "update_seconds": 1,
    }
    try:
        first = met(fake, lat="60.1", lon="9.58")
        date = http_time(first.headers["Date"])
        assert http_time(first.headers["Expires"]) - date == pytest.approx(3, abs=1.01)
        assert date - http_time(first.headers["Last-Modified"]) <= 1
        time.sleep(1.1)  # the data is "updated" every second now
        later = met(
            fake,
            lat="60.1",
            lon="9.58",
            headers={**AGENT, "If-Modified-Since": first.headers["Last-Modified"]},
        )
        assert later.status_code == 200
        assert later.headers["Last-Modified"] != first.headers["Last-Modified"]
        for wrong in (
            {"expires_seconds": -1},
            {"update_seconds": 0},
            {"expires": 3},
            {"update_seconds": "soon"},
        ):
            assert met_settings(fake, **wrong).status_code == 400, wrong
        assert requests.get(f"{fake.url}/_fake/met", timeout=5).json()["update_seconds"] == 1
    finally:
        requests.post(f"{fake.url}/_fake/reset", timeout=5).raise_for_status()
    assert requests.get(f"{fake.url}/_fake/met", timeout=5).json() == {
        "expires_seconds": 1800,
        "update_seconds": 3600,
    }
    assert met_counts(fake) == {
        "early": 0,
        "long_coordinates": 0,
        "not_modified": 0,
        "forbidden": 0,
    }


def test_met_settings_from_the_command_line():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fake_upstream",
            "--port",
            "0",
            "--met-expires-seconds",
            "3",
            "--met-update-seconds",
            "10",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        url = process.stdout.readline().split()[-1]
        assert requests.get(f"{url}/_fake/met", timeout=5).json() == {
            "expires_seconds": 3,
            "update_seconds": 10,
        }
        answer = requests.get(f"{url}{MET}/compact?lat=60.1&lon=9.58", headers=AGENT, timeout=5)
        date = http_time(answer.headers["Date"])
        assert http_time(answer.headers["Expires"]) - date == pytest.approx(3, abs=1.01)
        assert http_time(answer.headers["Last-Modified"]) % 10 == 0
        requests.post(f"{url}/_fake/met", json={"expires_seconds": 60}, timeout=5)
        requests.post(f"{url}/_fake/reset", timeout=5)  # back to the values it started with
        assert requests.get(f"{url}/_fake/met", timeout=5).json()["expires_seconds"] == 3
    finally:
        process.terminate()
        process.wait(10)


def met_fault(fake, name: str, match: str = "61.1,10.1", **options) -> None:
    rule = {"fault": name, "match": match, "path": f"{MET}/complete", "times": 1, **options}
    requests.post(f"{fake.url}/_fake/faults", json=rule, timeout=5).raise_for_status()


def faulty(fake, **kwargs) -> requests.Response:
    return met(fake, lat="61.1", lon="10.1", **kwargs)


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("html_502", lambda r: r.status_code == 502 and "Bad Gateway" in r.text),
        ("json_500", lambda r: r.status_code == 500 and r.json()),
        ("json_503", lambda r: r.status_code == 503 and r.json()),
        ("not_found", lambda r: r.status_code == 404),
        ("bad_request", lambda r: r.status_code == 400 and "400 Bad Request" in r.text),
        ("unauthorized", lambda r: r.status_code == 403 and "User-Agent" in r.text),
        ("rate_limited", lambda r: r.status_code == 429 and "Too Many Requests" in r.text),
        ("malformed", lambda r: r.status_code == 200 and r.content == b"<<<this is not json>>>"),
        ("empty", lambda r: r.status_code == 200 and r.content == b""),
        ("partial", lambda r: r.status_code == 200 and not r.content.endswith(b"}")),
        ("error_in_body", lambda r: r.status_code == 200 and "properties" not in r.json()),
        ("oversize", lambda r: len(r.content) > 2 * 1024 * 1024),
        ("oversize_chunked", lambda r: r.headers.get("Transfer-Encoding") == "chunked"),
        ("slow", lambda r: r.status_code == 200 and r.elapsed.total_seconds() >= 0.2),
    ],
)
def test_met_generic_faults(fake, name, check):
    forbidden = met_counts(fake)["forbidden"]
    met_fault(fake, name, delay=0.2)
    assert check(faulty(fake)), name
    assert faulty(fake).status_code == 200  # the rule was used up
    assert met_counts(fake)["forbidden"] == forbidden  # a fault's 403 is not etiquette


@pytest.mark.parametrize("name", ["hang", "reset", "close", "trickle", "trickle_headers"])
def test_met_faults_that_break_the_connection(fake, name):
    met_fault(fake, name, delay=0.5)
    with pytest.raises(requests.RequestException):
        faulty(fake, timeout=0.3)
    assert faulty(fake).status_code == 200  # the rule was used up


def test_met_shaping_faults(fake):
    """Each acts on the forecast, even for a request that would otherwise get a 304."""
    current = {**AGENT, "If-Modified-Since": faulty(fake).headers["Last-Modified"]}

    def shaped(name: str) -> requests.Response:
        met_fault(fake, name)
        return faulty(fake, headers=current)

    def instants(answer: requests.Response) -> list[dict]:
        return [s["data"]["instant"]["details"] for s in answer.json()["properties"]["timeseries"]]

    details = instants(shaped("nulls"))
    assert all(d["air_temperature"] is not None for d in details)
    assert {v for d in details for k, v in d.items() if k != "air_temperature"} == {None}
    assert {v for d in instants(shaped("no_temperature")) for v in d.values()} == {None}
    assert set(shaped("met_no_timeseries").json()["properties"]) == {"meta"}
    assert shaped("met_empty_timeseries").json()["properties"]["timeseries"] == []
    steps = shaped("met_no_instant").json()["properties"]["timeseries"]
    assert steps and not any("instant" in s["data"] for s in steps)
    assert all("next_6_hours" in s["data"] for s in steps[:-2])
    wrong = shaped("wrong_content_type")
    assert wrong.status_code == 200 and wrong.headers["Content-Type"] == "text/html"
    assert wrong.json()["properties"]["timeseries"] and "Expires" in wrong.headers
    deprecated = shaped("deprecated")  # a body even for a matching If-Modified-Since
    assert deprecated.status_code == 203 and deprecated.json()["properties"]["timeseries"]
    assert "Expires" in deprecated.headers and "Last-Modified" in deprecated.headers
    assert faulty(fake, headers=current).status_code == 304  # the rules are used up


def test_met_fault_rules_match_lat_lon_as_sent(fake):
    met_fault(fake, "json_503", match="61.1000,10.1")  # not "61.1,10.1": as sent, not as read
    assert faulty(fake).status_code == 200
    assert met(fake, lat="61.1000", lon="10.1").status_code == 503
    met_fault(fake, "json_503")
    assert met(fake, "compact", lat="61.1", lon="10.1").status_code == 200  # another path
    assert faulty(fake).status_code == 503


def test_each_upstream_keeps_its_own_words_on_a_kept_alive_connection(fake):
    session = requests.Session()
    assert session.get(f"{fake.url}/v1/forecast", params=BERLIN, timeout=5).status_code == 200
    met_fault(fake, "json_500")
    failed = session.get(f"{fake.url}{MET}/complete?lat=61.1&lon=10.1", headers=AGENT, timeout=5)
    assert failed.status_code == 500 and "reason" not in failed.json()  # not Open-Meteo's
    fault(fake, "unauthorized", "Berlin", "/data/2.5/weather")
    refused = session.get(
        f"{fake.url}/data/2.5/weather", params={"q": "Berlin", "appid": KEY}, timeout=5
    )
    assert refused.status_code == 401 and refused.json()["cod"] == 401  # not MET Norway's 403
