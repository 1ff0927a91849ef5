"""The fake upstream itself: the shapes, units and checks the tests rely on, held against
the real answers recorded in ../shared/realdata/recorded/."""

import itertools
import re
import time

import pytest
import requests

import fake_upstream
from tests.conftest import RECORDED, recorded

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
    for name in sorted(RECORDED.glob("owm_weather_*.json")):
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
