"""The fake upstream itself: the shapes, units and checks the tests rely on."""

import pytest
import requests

import fake_upstream

KEY = "fake-test-key"


@pytest.fixture(scope="module")
def fake():
    server = fake_upstream.start(api_key=KEY, hang_seconds=2)
    yield server
    fake_upstream.stop(server)


def weather(fake, **params):
    return requests.get(f"{fake.url}/data/2.5/weather", params={"appid": KEY, **params}, timeout=5)


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
    response = requests.get(f"{fake.url}/data/2.5/weather", params={"q": "London"}, timeout=5)
    assert response.status_code == 401
    assert response.json()["cod"] == 401  # a number here, a string in 404s: as upstream
    assert weather(fake, q="Nowhere").json() == {"cod": "404", "message": "city not found"}


def test_lookups(fake):
    assert weather(fake, id="2950159").json()["name"] == "Berlin"
    assert weather(fake, zip="10001,US").json()["name"] == "New York"
    assert weather(fake, q="Springfield,MO,US").json()["id"] == 4409896
    assert weather(fake, q="sao paulo").json()["name"] == "São Paulo"
    assert weather(fake, q="Zurich", lang="de").json()["name"] == "Zürich"
    sea = weather(fake, lat="0", lon="-20").json()
    assert sea["name"] == "" and "country" not in sea["sys"]
    assert weather(fake, lat="95", lon="0").status_code == 400
    assert weather(fake).json()["message"] == "Nothing to geocode"
    polar = weather(fake, q="Longyearbyen").json()
    assert "sunrise" not in polar["sys"]


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
    forecast = requests.get(
        f"{fake.url}/v1/forecast",
        timeout=5,
        params={
            "latitude": 52.52,
            "longitude": 13.41,
            "current": "temperature_2m,wind_speed_10m,snowfall",
            "timeformat": "unixtime",
        },
    ).json()
    assert forecast["current_units"]["wind_speed_10m"] == "km/h"
    assert forecast["current"]["wind_speed_10m"] == pytest.approx(4.1 * 3.6)
    assert isinstance(forecast["current"]["time"], int)
    bad = requests.get(f"{fake.url}/v1/forecast", params={"latitude": 1}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"] is True
    found = requests.get(f"{fake.url}/v1/search", params={"name": "Berlin"}, timeout=5).json()
    assert found["results"][0]["country_code"] == "DE"
    assert (
        "results"
        not in requests.get(f"{fake.url}/v1/search", params={"name": "Qqq"}, timeout=5).json()
    )


def test_open_meteo_hours_days_and_time_zones(fake):
    params = {
        "latitude": 52.52,
        "longitude": 13.41,
        "hourly": "rain,showers,snowfall",
        "past_hours": 1,
        "forecast_hours": 1,
        "daily": "sunrise,sunset",
        "forecast_days": 1,
        "timeformat": "unixtime",
    }
    gmt = requests.get(f"{fake.url}/v1/forecast", params=params, timeout=5).json()
    assert gmt["utc_offset_seconds"] == 0 and gmt["timezone"] == "GMT"  # as the real default
    local = requests.get(
        f"{fake.url}/v1/forecast", params={**params, "timezone": "auto"}, timeout=5
    ).json()
    assert local["utc_offset_seconds"] == 3600 and local["timezone"] == "Europe/Berlin"
    times = local["hourly"]["time"]
    assert len(times) == 2 and times[1] - times[0] == 3600 and times[1] % 3600 == 0
    assert local["hourly"]["rain"] == [0.3, 0.3] and local["hourly_units"]["snowfall"] == "cm"
    assert local["daily"]["sunrise"][0] < local["daily"]["sunset"][0]
    polar = requests.get(
        f"{fake.url}/v1/forecast",
        params={**params, "latitude": 78.2232, "longitude": 15.6469},
        timeout=5,
    ).json()
    assert polar["daily"]["sunrise"] == [None]  # polar night: no sunrise
    for wrong in ({"hourly": "rain,fog_machine"}, {"past_hours": "x"}, {"forecast_days": 17}):
        refused = requests.get(f"{fake.url}/v1/forecast", params={**params, **wrong}, timeout=5)
        assert refused.status_code == 400 and refused.json()["error"] is True


def test_open_meteo_search_by_postal_code_and_language(fake):
    found = requests.get(f"{fake.url}/v1/search", params={"name": "94040"}, timeout=5).json()
    assert found["results"][0]["name"] == "Mountain View"
    assert "94040" in found["results"][0]["postcodes"]
    german = requests.get(
        f"{fake.url}/v1/search", params={"name": "Zürich", "language": "de"}, timeout=5
    ).json()
    assert german["results"][0]["name"] == "Zürich"
    short = requests.get(f"{fake.url}/v1/search", params={"name": "B"}, timeout=5).json()
    assert "results" not in short


def test_open_meteo_faults_speak_open_meteo(fake):
    requests.post(
        f"{fake.url}/_fake/faults",
        json={"fault": "json_503", "match": "Berlin", "path": "/v1/search", "times": 1},
        timeout=5,
    ).raise_for_status()
    answer = requests.get(f"{fake.url}/v1/search", params={"name": "Berlin"}, timeout=5)
    assert answer.status_code == 503
    assert answer.json()["error"] is True and answer.json()["reason"]


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
    assert (
        requests.post(f"{fake.url}/_fake/faults", json={"fault": "nope"}, timeout=5).status_code
        == 400
    )
