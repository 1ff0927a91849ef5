"""The fake's national services (US NWS, MET Norway's MetAlerts, Bright Sky for DWD)
through real HTTP: their shapes held against the answers recorded in
../shared/realdata/recorded/, coverage, stations, warning scenarios, control endpoints,
etiquette, counts and faults."""

import gzip
import http.client
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

import pytest
import requests

import fake_upstream
from fake_upstream import alerts, bright_sky, nws, places
from tests.conftest import ROOT, recorded

AGENT = {
    "User-Agent": "multitarget_exporter/3.0 (ops@example.com)",
    "Accept": "application/geo+json",
}
METALERTS = "/weatherapi/metalerts/2.0/current.json"
ALBUQUERQUE = "35.1,-106.6"  # cell 35.0-35.5 N, 107.0-106.5 W
UNITS = {
    "temperature": "degC",
    "dewpoint": "degC",
    "windDirection": "degree_(angle)",
    "windSpeed": "km_h-1",
    "windGust": "km_h-1",
    "barometricPressure": "Pa",
    "seaLevelPressure": "Pa",
    "visibility": "m",
    "maxTemperatureLast24Hours": "degC",
    "minTemperatureLast24Hours": "degC",
    "precipitationLastHour": "mm",
    "precipitationLast3Hours": "mm",
    "precipitationLast6Hours": "mm",
    "relativeHumidity": "percent",
    "windChill": "degC",
    "heatIndex": "degC",
}


@pytest.fixture(scope="module")
def fake():
    server = fake_upstream.start(hang_seconds=2)
    yield server
    fake_upstream.stop(server)


@pytest.fixture(autouse=True)
def fresh(fake):
    requests.post(f"{fake.url}/_fake/reset", timeout=5).raise_for_status()


def get(fake, path, headers=AGENT, redirects=True, timeout=5.0, **params):
    return requests.get(
        f"{fake.url}{path}",
        params=params or None,
        headers=headers,
        timeout=timeout,
        allow_redirects=redirects,
    )


def counts(fake) -> dict:
    return requests.get(f"{fake.url}/_fake/requests", timeout=5).json()["national"]


def control(fake, name: str, body) -> requests.Response:
    return requests.post(f"{fake.url}/_fake/{name}", json=body, timeout=5)


def fault(fake, name: str, match: str, path: str, **options) -> None:
    rule = {"fault": name, "match": match, "path": path, "times": 1, **options}
    control(fake, "faults", rule).raise_for_status()


def moment(text: str) -> float:
    assert re.search(r"[+-]\d\d:\d\d$", text), text  # ISO with an offset
    return datetime.fromisoformat(text).timestamp()


def kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def differences(ours, real, where: str = "") -> list[str]:
    """Where a key both answers hold has values of different JSON types (null matches
    anything: both services send it for what they lack; lists: their first items)."""
    if isinstance(ours, dict) and isinstance(real, dict):
        found = []
        for key in ours.keys() & real.keys():
            found += differences(ours[key], real[key], f"{where}.{key}")
        return found
    if isinstance(ours, list) and isinstance(real, list) and ours and real:
        return differences(ours[0], real[0], f"{where}[0]")
    if None not in (ours, real) and kind(ours) != kind(real):
        return [f"{where}: ours {ours!r}, real {real!r}"]
    return []


def stations_of(fake, point: str) -> list[str]:
    url = get(fake, f"/points/{point}").json()["properties"]["observationStations"]
    listing = requests.get(url, headers=AGENT, timeout=5).json()
    return [f["properties"]["stationIdentifier"] for f in listing["features"]]


def latest(fake, station: str) -> dict:
    answer = get(fake, f"/stations/{station}/observations/latest")
    assert answer.status_code == 200, answer.text
    return answer.json()["properties"]


def ordinary(point: str) -> str:
    """A station of the point's list whose letter gives it no special behaviour."""
    cell = nws.cell_of(*map(float, point.split(",")))
    return next(s.identifier for s in nws.stations_for(cell) if s.identifier[-1] not in "QXRAEIOU")


# -- NWS: points, stations, observations -----------------------------------------------------


def test_nws_points_in_the_recorded_shape(fake):
    real = recorded("nws_points_pynws_30_-85.json")
    answer = get(fake, f"/points/{ALBUQUERQUE}")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/geo+json"
    ours = answer.json()
    assert set(ours) == set(real) and set(ours["properties"]) == set(real["properties"])
    location, real_location = ours["properties"]["relativeLocation"], real["properties"]
    assert set(location["properties"]) == set(real_location["relativeLocation"]["properties"])
    assert differences(ours, real) == []
    properties = ours["properties"]
    grid = f"{properties['gridId']}/{properties['gridX']},{properties['gridY']}"
    assert re.fullmatch(r"[A-Z]{3}/\d+,\d+", grid)
    assert properties["observationStations"] == f"{fake.url}/gridpoints/{grid}/stations"
    assert ours["geometry"]["coordinates"] == [-106.6, 35.1]
    assert properties["timeZone"] == "America/Denver"
    assert location["properties"]["distance"]["unitCode"] == "wmoUnit:m"
    # Alaska and Hawaii are covered too, in their own time zones.
    assert get(fake, "/points/61.2181,-149.9003").json()["properties"]["timeZone"] == (
        "America/Anchorage"
    )
    assert get(fake, "/points/21.3069,-157.8583").json()["properties"]["timeZone"] == (
        "Pacific/Honolulu"
    )


def test_nws_points_redirects_more_than_four_decimals(fake):
    moved = get(fake, "/points/35.12345,-106.600049", redirects=False)
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/points/35.1235,-106.6"
    assert moved.headers["Content-Type"] == "application/problem+json"
    assert moved.json()["title"] == "Adjusting Precision Of Point Coordinate"
    followed = get(fake, "/points/35.12345,-106.600049")
    assert [r.status_code for r in followed.history] == [301]
    assert followed.status_code == 200
    assert followed.json()["id"] == f"{fake.url}/points/35.1235,-106.6"
    assert get(fake, "/points/35.1235,-106.6", redirects=False).status_code == 200
    seen = counts(fake)
    assert seen["long_coordinates"] == 2 and seen["nws_points"] == 4
    assert seen["by_point"]["/points/35.1235,-106.6"] == 2


def test_outside_their_areas_each_service_says_so(fake):
    london = get(fake, "/points/51.5074,-0.1278")
    assert london.status_code == 404
    assert london.headers["Content-Type"] == "application/problem+json"
    problem = london.json()
    assert problem["title"] == "Data Unavailable For Requested Point"
    assert set(problem) == {"correlationId", "title", "type", "status", "detail", "instance"}
    assert problem["status"] == 404 and problem["type"].endswith("/InvalidPoint")
    outside = get(fake, "/alerts/active", point="51.5074,-0.1278")
    assert outside.status_code == 200 and outside.json()["features"] == []
    berlin = get(fake, METALERTS, lat="52.52", lon="13.41", lang="en")
    assert berlin.status_code == 422 and berlin.headers["Content-Type"] == "text/plain"
    new_york = get(fake, "/alerts", lat="40.7143", lon="-74.006")
    assert new_york.status_code == 404 and set(new_york.json()) == {"detail"}
    oslo = get(fake, "/current_weather", lat="59.9139", lon="10.7522")
    assert oslo.status_code == 404 and set(oslo.json()) == {"detail"}
    # Inside, each answers.
    assert get(fake, "/points/40.7143,-74.006").status_code == 200
    assert get(fake, METALERTS, lat="59.9139", lon="10.7522").status_code == 200
    empty = recorded("brightsky_alerts_weewx_weiherhammer_empty.json")
    here = get(fake, "/alerts", lat="52.52", lon="13.41").json()
    assert here["alerts"] == [] and set(here["location"]) == set(empty["location"])
    assert differences(here, empty) == []
    assert get(fake, "/current_weather", lat="52.52", lon="13.41").status_code == 200


def test_nws_station_lists_are_shared_within_a_cell_nearest_first(fake):
    real = recorded("nws_stations_pynws_columbus_oh.json")
    urls = {
        point: get(fake, f"/points/{point}").json()["properties"]["observationStations"]
        for point in (ALBUQUERQUE, "35.4,-106.9", "35.6,-106.6")
    }
    assert urls[ALBUQUERQUE] == urls["35.4,-106.9"] != urls["35.6,-106.6"]
    answer = requests.get(urls[ALBUQUERQUE], headers=AGENT, timeout=5)
    assert answer.headers["Content-Type"] == "application/geo+json"
    listing = answer.json()
    assert set(listing) == set(real)
    assert set(listing["features"][0]) == set(real["features"][0])
    assert set(listing["features"][0]["properties"]) == set(real["features"][0]["properties"])
    assert differences(listing, real) == []
    ids = [f["properties"]["stationIdentifier"] for f in listing["features"]]
    assert 3 <= len(ids) <= 6 and all(re.fullmatch(r"K[A-Z]{3}", i) for i in ids)
    assert listing["observationStations"] == [f"{fake.url}/stations/{i}" for i in ids]
    assert listing["observationStations"] == [f["id"] for f in listing["features"]]
    assert "cursor=" in listing["pagination"]["next"]
    centre = (35.25, -106.75)
    distances = [
        places.great_circle_m(*centre, *reversed(f["geometry"]["coordinates"]))
        for f in listing["features"]
    ]
    assert distances == sorted(distances) and distances[0] < 40_000
    assert {f["properties"]["elevation"]["unitCode"] for f in listing["features"]} == {"wmoUnit:m"}
    assert stations_of(fake, "35.4,-106.9") == ids  # the same list, through HTTP again


def test_nws_observation_in_the_recorded_shape_units_and_model(fake):
    real = recorded("nws_obs_pynws_kfll.json")
    station = ordinary(ALBUQUERQUE)
    answer = get(fake, f"/stations/{station}/observations/latest")
    assert answer.headers["Content-Type"] == "application/geo+json"
    ours = answer.json()
    assert set(ours) == set(real) and set(ours["properties"]) == set(real["properties"])
    assert differences(ours, real) == []
    observation = ours["properties"]
    assert {name: observation[name]["unitCode"] for name in UNITS} == {
        name: f"wmoUnit:{unit}" for name, unit in UNITS.items()
    }
    assert observation["station"] == f"{fake.url}/stations/{station}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:53:00\+00:00", observation["timestamp"])
    taken = moment(observation["timestamp"])
    assert 0 <= time.time() - taken < 3600
    assert observation["temperature"]["qualityControl"] == "V"
    assert "qualityControl" not in observation["maxTemperatureLast24Hours"]
    assert observation["textDescription"] and observation["rawMessage"].startswith(station)
    # The values are the fake world's model at the station's point and time.
    longitude, latitude = ours["geometry"]["coordinates"]
    hour = places.model_hour(places.site_at(places.World.load(), latitude, longitude), int(taken))
    assert observation["temperature"]["value"] == hour.temperature
    assert observation["windSpeed"]["value"] == pytest.approx(hour.wind_speed * 3.6, abs=0.01)
    assert observation["seaLevelPressure"]["value"] == round(hour.pressure_msl * 100)
    assert observation["barometricPressure"]["value"] < observation["seaLevelPressure"]["value"]
    assert 0 <= observation["relativeHumidity"]["value"] <= 100


@pytest.mark.parametrize(
    ("point", "letter"),
    [("36.25,-87.25", "Q"), ("36.75,-95.25", "X"), ("36.25,-96.75", "R"), ("36.25,-99.25", "U")],
)
def test_nws_station_behaviour_by_last_letter(fake, point, letter):
    """The named points of nws.py's docstring: their nearest station shows one rule."""
    first, second, *_ = stations_of(fake, point)
    assert first[-1] == letter
    observation, fallback = latest(fake, first), latest(fake, second)
    assert time.time() - moment(fallback["timestamp"]) < 3600
    assert fallback["temperature"]["value"] is not None
    age = time.time() - moment(observation["timestamp"])
    if letter == "Q":
        assert nws.SILENT_SECONDS <= age < nws.SILENT_SECONDS + 60
    else:
        assert age < 3600
    temperature, wind = observation["temperature"], observation["windSpeed"]
    if letter == "X":
        assert temperature == {"unitCode": "wmoUnit:degC", "value": None, "qualityControl": "Z"}
    else:
        assert temperature["value"] is not None and temperature["qualityControl"] == "V"
    assert (wind["qualityControl"] == "X") == (letter == "R") and wind["value"] is not None
    rain = observation["precipitationLastHour"]["value"]
    assert (rain is None) == (letter == "U")


def test_station_control_endpoint_and_reset(fake):
    station = ordinary(ALBUQUERQUE)
    setting = {"age_seconds": 10800, "nulls": ["temperature"], "rejected": ["windSpeed"]}
    answer = control(fake, "stations", {"id": station.lower(), **setting})
    assert answer.status_code == 200 and answer.json()["id"] == station
    changed = latest(fake, station)
    assert 10800 <= time.time() - moment(changed["timestamp"]) < 10860
    assert changed["temperature"]["value"] is None
    assert changed["windSpeed"]["qualityControl"] == "X"
    for wrong, status in (
        ({"id": station, "nulls": ["colour"]}, 400),
        ({"id": station, "age_seconds": -5}, 400),
        ({"id": station, "since": 3}, 400),
        ({"id": "KZZZZ"}, 404),
        ({"nulls": []}, 400),
        ({"id": "01000", "rejected": ["temperature"]}, 400),
    ):
        assert control(fake, "stations", wrong).status_code == status, wrong
    # A DWD station (five digits) takes age_seconds and nulls.
    assert control(fake, "stations", {"id": "01037", **setting, "rejected": []}).status_code == (
        200
    )
    weather = get(fake, "/current_weather", dwd_station_id="01037").json()["weather"]
    assert weather["temperature"] is None
    assert 10800 <= time.time() - moment(weather["timestamp"]) < 10800 + 600
    requests.post(f"{fake.url}/_fake/reset", timeout=5).raise_for_status()
    again = latest(fake, station)
    assert (
        again["temperature"]["value"] is not None
        and time.time() - moment(again["timestamp"]) < 3600
    )
    assert get(fake, "/current_weather", dwd_station_id="01037").json()["weather"]["temperature"]


def test_unknown_stations_and_grids_are_not_found(fake):
    for path in (
        "/stations/KZZZ9/observations/latest",
        "/stations/EGLL/observations/latest",
        "/gridpoints/AAA/11,10/stations",
        "/stations/KABC",
    ):
        answer = get(fake, path)
        assert answer.status_code == 404, path
        assert answer.headers["Content-Type"] == "application/problem+json", path
        assert answer.json()["status"] == 404, path
    assert get(fake, "/current_weather", dwd_station_id="99999").status_code == 404
    assert get(fake, "/current_weather", dwd_station_id="01001").status_code == 404


# -- warnings ----------------------------------------------------------------------------------


def states(features: list[dict], onset, end) -> list[str]:
    now = time.time()
    found = []
    for feature in features:
        start, stop = onset(feature), end(feature)
        if stop is not None and moment(stop) <= now:
            found.append("ended")
        else:
            found.append("in_effect" if moment(start) <= now else "upcoming")
    return found


def test_nws_alert_scenarios(fake):
    real = recorded("nws_alerts_nwsalerts_phoenix.json")
    seen = {}
    for (latitude, longitude), (name, _) in alerts.POINTS["nws"].items():
        answer = get(fake, "/alerts/active", point=f"{latitude},{longitude}")
        assert answer.headers["Content-Type"] == "application/geo+json"
        collection = answer.json()
        assert set(collection) == set(real), name
        for feature in collection["features"]:
            assert set(feature) == set(real["features"][0]), name
            assert set(feature["properties"]) == set(real["features"][0]["properties"]), name
            assert differences(feature, real["features"][0]) == [], name
        seen[name] = [f["properties"] for f in collection["features"]]

    def listed(name):
        found = seen[name]
        return found, states(found, lambda p: p["onset"], lambda p: p["ends"] or p["expires"])

    found, state = listed("Denver")
    assert state == ["in_effect"] and found[0]["severity"] == "Severe"
    assert (found[0]["status"], found[0]["messageType"]) == ("Actual", "Alert")
    found, state = listed("Miami")
    assert state == ["upcoming"] and found[0]["severity"] == "Extreme"
    assert moment(found[0]["onset"]) <= time.time() + 6 * 3600
    assert moment(found[0]["expires"]) < moment(found[0]["onset"])  # the recorded quirk
    assert listed("Minneapolis")[1] == ["ended"]
    found, state = listed("Oklahoma City")
    assert found[0]["messageType"] == "Cancel" and state == ["in_effect"]
    found, state = listed("Seattle")
    assert found[0]["status"] == "Test" and state == ["in_effect"]
    found, state = listed("Phoenix")
    assert state == ["in_effect", "upcoming", "in_effect"]
    assert [p["severity"] for p in found] == ["Moderate", "Severe", "Unknown"]
    assert found[2]["ends"] is None and found[2]["instruction"] is None
    assert get(fake, "/alerts/active", point="40.7143,-74.006").json()["features"] == []


def test_metalerts_scenarios(fake):
    docs = recorded("metalerts_docs_ana_sira_obrestad.json")
    wictk = recorded("metalerts_wictk_maloy_fedje.json")
    seen = {}
    for (latitude, longitude), (name, _) in alerts.POINTS["met_norway"].items():
        answer = get(fake, METALERTS, lat=str(latitude), lon=str(longitude), lang="en")
        assert answer.headers["Content-Type"] == "application/geo+json"
        collection = answer.json()
        assert set(collection) == set(docs) and collection["lang"] == "en", name
        for feature in collection["features"]:
            assert set(feature) == set(docs["features"][0]), name
            assert set(feature["properties"]) == set(docs["features"][0]["properties"]), name
            assert differences(feature, wictk["features"][1]) == [], name  # a Polygon
        seen[name] = collection["features"]

    def level(name):
        found = seen[name]
        interval = states(
            found, lambda f: f["when"]["interval"][0], lambda f: f["when"]["interval"][1]
        )
        return [f["properties"]["awareness_level"] for f in found], interval

    assert level("Bergen") == (["3; orange; Severe"], ["in_effect"])
    assert level("Narvik") == (["4; red; Extreme"], ["upcoming"])
    onset = moment(seen["Narvik"][0]["when"]["interval"][0])
    assert onset <= time.time() + 6 * 3600
    assert level("Trondheim") == (["2; yellow; Moderate"], ["ended"])
    assert seen["Oslo"][0]["properties"]["type"] == "Cancel"
    assert seen["Stavanger"][0]["properties"]["status"] == "Test"
    assert level("Ålesund") == (
        ["2; yellow; Moderate", "3; orange; Severe"],
        ["in_effect", "upcoming"],
    )
    assert [f["properties"]["event"] for f in seen["Ålesund"]] == ["gale", "forestFire"]
    assert seen["Ålesund"][0]["properties"]["awareness_type"] == "1; Wind"
    assert get(fake, METALERTS, lat="69.6496", lon="18.956").json()["features"] == []
    everything = get(fake, METALERTS).json()["features"]  # all of Norway
    assert len(everything) == sum(len(found) for found in seen.values()) == 7
    assert get(fake, METALERTS, lat="60.1").status_code == 400


def test_bright_sky_alert_scenarios(fake):
    real = recorded("brightsky_alerts_weewx_weiherhammer_rain.json")
    seen = {}
    for (latitude, longitude), (name, _) in alerts.POINTS["dwd"].items():
        answer = get(fake, "/alerts", lat=str(latitude), lon=str(longitude))
        assert answer.headers["Content-Type"] == "application/json"
        document = answer.json()
        assert set(document) == set(real) and set(document["location"]) == set(real["location"])
        for alert in document["alerts"]:
            assert set(alert) == set(real["alerts"][0]) | {"status"}, name
            assert differences(alert, real["alerts"][0]) == [], name
            for key in ("status", "severity", "urgency", "certainty"):
                assert alert[key] == alert[key].lower(), (name, key)
        assert document["location"]["name_short"] == name
        seen[name] = document["alerts"]

    def listed(name):
        found = seen[name]
        return [a["severity"] for a in found], states(
            found, lambda a: a["onset"], lambda a: a["expires"]
        )

    assert listed("Hamburg") == (["severe"], ["in_effect"])
    assert listed("München") == (["extreme"], ["upcoming"])
    assert listed("Köln") == (["moderate"], ["ended"])
    assert seen["Frankfurt am Main"][0]["status"] == "test"
    assert listed("Nürnberg") == (
        ["minor", "severe", "minor"],
        ["in_effect", "upcoming", "in_effect"],
    )
    assert seen["Nürnberg"][2]["expires"] is None
    assert seen["Hamburg"][0]["event_en"] == "severe storm gusts"


def test_alert_settings_in_each_source_shape(fake):
    setting = {
        "event": "Winter Storm Warning",
        "severity": "severe",
        "urgency": "EXPECTED",
        "certainty": "Likely",
        "onset_in": -600,
        "ends_in": 7200,
        "headline": "Set by a test",
    }
    for source in alerts.SOURCES:
        body = {"source": source, "match": "35.10,-106.6000", "alerts": [setting]}
        answer = control(fake, "alerts", body)
        assert answer.status_code == 200 and answer.json()["match"] == "35.1,-106.6"
    now = time.time()
    nws_alert = get(fake, "/alerts/active", point=ALBUQUERQUE).json()["features"][0]["properties"]
    assert (nws_alert["event"], nws_alert["severity"], nws_alert["urgency"]) == (
        "Winter Storm Warning",
        "Severe",
        "Expected",
    )
    assert moment(nws_alert["onset"]) == pytest.approx(now - 600, abs=5)
    assert moment(nws_alert["ends"]) == pytest.approx(now + 7200, abs=5)
    assert nws_alert["headline"] == "Set by a test"
    # Points outside an area stay outside: the Norwegian and German settings go unseen.
    assert get(fake, METALERTS, lat="35.1", lon="-106.6").status_code == 422
    for source, point, path, params in (
        ("met_norway", "60.1,9.58", METALERTS, {"lat": "60.1", "lon": "9.58"}),
        ("dwd", "52.1,9.58", "/alerts", {"lat": "52.1", "lon": "9.58"}),
    ):
        control(fake, "alerts", {"source": source, "match": point, "alerts": [setting]})
        document = get(fake, path, **params).json()
        if source == "dwd":
            alert = document["alerts"][0]
            assert (alert["event_en"], alert["severity"], alert["urgency"]) == (
                "Winter Storm Warning",
                "severe",
                "expected",
            )
            assert moment(alert["expires"]) == pytest.approx(now + 7200, abs=5)
        else:
            properties = document["features"][0]["properties"]
            assert properties["awareness_level"] == "3; orange; Severe"
            interval = document["features"][0]["when"]["interval"]
            assert moment(interval[0]) == pytest.approx(now - 600, abs=5)
    # "*" for every point of the area; an exact match wins; null removes a setting.
    control(fake, "alerts", {"source": "dwd", "match": "*", "alerts": []})
    assert get(fake, "/alerts", lat="53.5511", lon="9.9937").json()["alerts"] == []
    assert len(get(fake, "/alerts", lat="52.1", lon="9.58").json()["alerts"]) == 1
    control(fake, "alerts", {"source": "dwd", "match": "*", "alerts": None})
    assert len(get(fake, "/alerts", lat="53.5511", lon="9.9937").json()["alerts"]) == 1
    cancel = {**setting, "message_type": "cancel"}
    control(fake, "alerts", {"source": "dwd", "match": "52.1,9.58", "alerts": [cancel]})
    assert get(fake, "/alerts", lat="52.1", lon="9.58").json()["alerts"] == []  # DWD: gone
    for wrong in (
        {"source": "meteoalarm", "alerts": []},
        {"source": "nws", "match": "somewhere", "alerts": []},
        {"source": "nws", "alerts": [{"event": "Fog"}]},  # no severity
        {"source": "nws", "alerts": [{**setting, "severity": "Dire"}]},
        {"source": "nws", "alerts": [{**setting, "onset_in": "soon"}]},
        {"source": "nws", "alerts": [{**setting, "colour": "red"}]},
    ):
        assert control(fake, "alerts", wrong).status_code == 400, wrong
    requests.post(f"{fake.url}/_fake/reset", timeout=5).raise_for_status()
    assert get(fake, "/alerts/active", point=ALBUQUERQUE).json()["features"] == []


# -- Bright Sky current weather ---------------------------------------------------------------


def test_bright_sky_current_weather_shape_units_and_fallback(fake):
    real = recorded("brightsky_current_phpweather_feldberg.json")
    answer = get(fake, "/current_weather", lat="50.1109", lon="8.6821")
    document = answer.json()
    assert set(document) == set(real) and set(document["weather"]) == set(real["weather"])
    assert set(document["sources"][0]) == set(real["sources"][0])
    assert differences(document, real) == []
    weather, source = document["weather"], document["sources"][0]
    assert weather["source_id"] == source["id"]
    stamp = moment(weather["timestamp"])
    assert stamp % 600 == 0 and 0 <= time.time() - stamp < 600
    nearest = bright_sky.nearest(50.1109, 8.6821)
    assert source["dwd_station_id"] == nearest.dwd_station_id
    distance = places.great_circle_m(50.1109, 8.6821, source["lat"], source["lon"])
    assert source["distance"] == pytest.approx(distance, abs=1)
    # A station without thermometer: its temperature comes from another, named.
    lacking = get(fake, "/current_weather", dwd_station_id="01000").json()
    helper = lacking["sources"][1]
    assert lacking["weather"]["fallback_source_ids"] == {
        key: helper["id"]
        for key in ("dew_point", "pressure_msl", "relative_humidity", "temperature")
    }
    own = get(fake, "/current_weather", dwd_station_id=helper["dwd_station_id"]).json()
    if own["weather"]["timestamp"] == lacking["weather"]["timestamp"]:
        assert own["weather"]["temperature"] == lacking["weather"]["temperature"]
        assert own["weather"]["fallback_source_ids"] == {}
    dwd = get(fake, "/current_weather", dwd_station_id="01037").json()["weather"]
    si = get(fake, "/current_weather", dwd_station_id="01037", units="si").json()["weather"]
    if dwd["timestamp"] == si["timestamp"]:
        assert si["temperature"] == pytest.approx(dwd["temperature"] + 273.15, abs=0.01)
        assert si["pressure_msl"] == pytest.approx(dwd["pressure_msl"] * 100, abs=1)
        assert si["wind_speed_10"] == pytest.approx(dwd["wind_speed_10"] / 3.6, abs=0.06)
        assert si["sunshine_60"] == pytest.approx(dwd["sunshine_60"] * 60)
    by_wmo = get(fake, "/current_weather", wmo_station_id="10001").json()
    assert by_wmo["sources"][0]["dwd_station_id"] == "01037"
    assert get(fake, "/current_weather", dwd_station_id="01037", units="us").status_code == 400
    assert get(fake, "/current_weather").status_code == 400


# -- etiquette, gzip, counts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "allowed"),
    [
        (None, False),
        ("python-requests/2.32.3", False),
        ("curl/8.5.0", False),
        ("python-requests/2.32.3 ops@example.com", True),
        ("multitarget_exporter/3.0 (+https://example.com/contact)", True),
    ],
)
def test_nws_and_metalerts_refuse_clients_without_a_contact(fake, agent, allowed):
    for path, service in (
        (f"/points/{ALBUQUERQUE}", "nws"),
        (f"{METALERTS}?lat=60.1&lon=9.6", "metalerts"),
    ):
        if agent is None:  # http.client sends no User-Agent at all
            connection = http.client.HTTPConnection(*fake.server_address[:2], timeout=5)
            connection.request("GET", path)
            response = connection.getresponse()
            status, content_type = response.status, response.headers["Content-Type"]
            response.read()
            connection.close()
        else:
            answer = requests.get(f"{fake.url}{path}", headers={"User-Agent": agent}, timeout=5)
            status, content_type = answer.status_code, answer.headers["Content-Type"]
        forbidden = counts(fake)[f"{service}_forbidden"]
        if allowed:
            assert status == 200 and forbidden == 0, path
        else:
            assert status == 403 and forbidden == 1, path
            kind = "application/problem+json" if service == "nws" else "text/html"
            assert content_type == kind
    # Bright Sky asks for no identification.
    assert requests.get(f"{fake.url}/alerts?lat=52.52&lon=13.41", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"/points/{ALBUQUERQUE}",
        "/alerts/active?point=33.4484,-112.074",
        f"{METALERTS}?lat=60.3913&lon=5.3221",
        "/alerts?lat=49.4521&lon=11.0767",
        "/current_weather?lat=52.52&lon=13.41",
    ],
)
def test_gzip_when_asked(fake, path):
    for encoding, compressed in (("gzip", True), ("gzip;q=0", False), ("identity", False)):
        request = urllib.request.Request(
            f"{fake.url}{path}", headers={**AGENT, "Accept-Encoding": encoding}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            assert (response.headers.get("Content-Encoding") == "gzip") == compressed, encoding
            assert int(response.headers["Content-Length"]) == len(body)
            assert "Accept-Encoding" in response.headers["Vary"]
        text = gzip.decompress(body) if compressed else body
        assert text.startswith(b"{"), encoding


def test_counts_per_service_per_point_and_early_metalerts(fake):
    get(fake, f"/points/{ALBUQUERQUE}")
    get(fake, "/points/35.4,-106.9")
    get(fake, "/alerts/active", point=ALBUQUERQUE)
    first = get(fake, f"/points/{ALBUQUERQUE}").json()["properties"]["observationStations"]
    requests.get(first, headers=AGENT, timeout=5)
    get(fake, f"/stations/{ordinary(ALBUQUERQUE)}/observations/latest")
    for _ in range(2):
        get(fake, METALERTS, lat="60.3913", lon="5.3221", lang="en")  # the second is early
    get(fake, METALERTS, lat="60.39130", lon="5.3221", lang="en")  # another point as sent
    get(fake, METALERTS, lat="63.4305", lon="10.3951", lang="en")
    get(fake, "/alerts", lat="53.5511", lon="9.9937")
    get(fake, "/current_weather", dwd_station_id="01037")
    get(fake, "/current_weather", lat="52.52", lon="13.41")
    seen = counts(fake)
    assert {key: value for key, value in seen.items() if key != "by_point"} == {
        "nws_points": 3,
        "nws_stations": 1,
        "nws_observations": 1,
        "nws_alerts": 1,
        "metalerts": 4,
        "metalerts_early": 1,
        "brightsky_alerts": 1,
        "brightsky_current": 2,
        "long_coordinates": 1,
        "nws_forbidden": 0,
        "metalerts_forbidden": 0,
    }
    points = seen["by_point"]
    assert points[f"/points/{ALBUQUERQUE}"] == 2 and points["/points/35.4,-106.9"] == 1
    assert points[f"/alerts/active?point={ALBUQUERQUE}"] == 1
    assert points[f"{METALERTS}?lat=60.3913&lon=5.3221"] == 2
    assert points["/current_weather?dwd_station_id=01037"] == 1
    assert points["/alerts?lat=53.5511&lon=9.9937"] == 1


# -- faults ------------------------------------------------------------------------------------

STATION = ordinary(ALBUQUERQUE)
FAULT_CASES = {  # service: (path asked, its parameters, the rule's path, the rule's match)
    "nws_points": (f"/points/{ALBUQUERQUE}", {}, "/points", ALBUQUERQUE),
    "nws_stations": (f"/stations/{STATION}/observations/latest", {}, "/stations", STATION),
    "nws_alerts": (
        "/alerts/active",
        {"point": "39.7392,-104.9903"},
        "/alerts/active",
        "39.7392,-104.9903",
    ),
    "metalerts": (METALERTS, {"lat": "60.3913", "lon": "5.3221"}, METALERTS, "60.3913,5.3221"),
    "brightsky_alerts": (
        "/alerts",
        {"lat": "53.5511", "lon": "9.9937"},
        "/alerts",
        "53.5511,9.9937",
    ),
    "brightsky_current": (
        "/current_weather",
        {"dwd_station_id": "01037"},
        "/current_weather",
        "01037",
    ),
}


@pytest.mark.parametrize("service", FAULT_CASES)
def test_faults_on_each_service(fake, service):
    path, params, rule_path, match = FAULT_CASES[service]

    def ask(**options):
        return get(fake, path, **params, **options)

    fault(fake, "json_500", match, rule_path)
    failed = ask()
    assert failed.status_code == 500
    if service.startswith("nws"):
        assert failed.headers["Content-Type"] == "application/problem+json"
        assert failed.json()["status"] == 500
    elif service.startswith("brightsky"):
        assert set(failed.json()) == {"detail"}
    fault(fake, "rate_limited", match, rule_path, delay=7)
    limited = ask()
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    fault(fake, "rate_limited", match, rule_path)
    assert ask().headers["Retry-After"] == "60"
    fault(fake, "hang", match, rule_path, delay=0.6)
    with pytest.raises(requests.RequestException):
        ask(timeout=0.3)
    assert ask().status_code == 200  # every rule was used up
    fault(fake, "json_503", "0.0,0.0", rule_path)  # another subject: not this request
    assert ask().status_code == 200
    control(fake, "faults", {"fault": "json_503", "match": "*", "path": "/nowhere"})
    assert ask().status_code == 200


def test_fault_paths_are_prefixes_only_for_parametrised_nws_paths(fake):
    fault(fake, "json_503", "*", "/alerts")  # Bright Sky's path: not NWS's /alerts/active
    assert get(fake, "/alerts/active", point=ALBUQUERQUE).status_code == 200
    assert get(fake, "/alerts", lat="52.52", lon="13.41").status_code == 503
    fault(fake, "json_503", f"{nws.grid(nws.cell_of(35.1, -106.6))[0]}/50,130", "/gridpoints")
    listing = get(fake, f"/points/{ALBUQUERQUE}").json()["properties"]["observationStations"]
    assert requests.get(listing, headers=AGENT, timeout=5).status_code == 503
    fault(fake, "json_503", STATION.lower(), f"/stations/{STATION}")  # any case, longer prefix
    assert get(fake, f"/stations/{STATION}/observations/latest").status_code == 503
    fault(fake, "json_503", "*", "/point")  # not a whole segment
    assert get(fake, f"/points/{ALBUQUERQUE}").status_code == 200


def test_shaping_faults_on_the_national_answers(fake):
    station_path = f"/stations/{STATION}/observations/latest"
    fault(fake, "nulls", STATION, "/stations")
    values = get(fake, station_path).json()["properties"]
    assert values["temperature"]["value"] is not None
    assert values["dewpoint"]["value"] is None and values["windSpeed"]["value"] is None
    fault(fake, "no_temperature", "01037", "/current_weather")
    weather = get(fake, "/current_weather", dwd_station_id="01037").json()["weather"]
    assert weather["temperature"] is None and weather["wind_speed_10"] is None
    fault(fake, "partial", ALBUQUERQUE, "/points")
    cut = get(fake, f"/points/{ALBUQUERQUE}")
    assert cut.status_code == 200 and cut.content.startswith(b'{"@context"')
    assert not cut.content.endswith(b"}")
    fault(fake, "wrong_content_type", "60.3913,5.3221", METALERTS)
    wrong = get(fake, METALERTS, lat="60.3913", lon="5.3221")
    assert wrong.headers["Content-Type"] == "text/html" and wrong.json()["features"]
    for name, check in (
        ("malformed", lambda r: r.content == b"<<<this is not json>>>"),
        ("empty", lambda r: r.content == b""),
        ("oversize", lambda r: len(r.content) > 2 * 1024 * 1024),
    ):
        fault(fake, name, "53.5511,9.9937", "/alerts")
        answer = get(fake, "/alerts", lat="53.5511", lon="9.9937")
        assert answer.status_code == 200 and check(answer), name
    fault(fake, "unauthorized", "60.3913,5.3221", METALERTS)
    refused = get(fake, METALERTS, lat="60.3913", lon="5.3221")
    assert refused.status_code == 403 and counts(fake)["metalerts_forbidden"] == 0


def test_help_names_the_new_services():
    shown = subprocess.run(
        [sys.executable, "-m", "fake_upstream", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=True,
    ).stdout
    assert "NWS" in shown and "MetAlerts" in shown and "Bright Sky" in shown
