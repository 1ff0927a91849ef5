"""Station observations (`nws`, `bright_sky`) through the real exporter under gunicorn,
against the fake NWS and Bright Sky.

The fake's stations behave by the last letter of their id (Q silent for 3 hours, X
no temperature, R wind rejected, vowels no precipitation) and its named points show
each rule (fake_upstream/nws.py). Its counts (`national.by_point`, per path) are
read before and after, so tests that share the fake do not cross. Distances are
worked out here again from the fake's own station coordinates, with a formula other
than the exporter's. Every answer passes `promtool check metrics`.
"""

from __future__ import annotations

import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from fake_upstream import bright_sky as fake_bright_sky
from fake_upstream import nws as fake_nws
from multitarget_exporter import __version__
from tests.conftest import after_faults, promtool_check, samples

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

CONTACT = "stations-ops@example.com"
SILENT, NO_TEMPERATURE, REJECTED, NO_PRECIPITATION = (
    "36.25,-87.25",  # nearest KLSQ
    "36.75,-95.25",  # nearest KYWX
    "36.25,-96.75",  # nearest KXDR
    "36.25,-99.25",  # nearest KQOU
)
HAMBURG = "53.5511,9.9937"


def config(fake_url: str, cache: str = "") -> str:
    where = f"base_url: '{fake_url}', geocoding_url: '{fake_url}'"
    return f"""
modules:
  us: {{provider: nws, contact: '{CONTACT}', {where}, timeout: 3s}}
  us_short: {{provider: nws, contact: '{CONTACT}', {where}, cache_ttl: 1s, timeout: 3s}}
  us_quick: {{provider: nws, contact: '{CONTACT}', {where}, timeout: 2s}}
  de: {{provider: bright_sky, {where}, timeout: 3s}}
  de_named: {{provider: bright_sky, contact: '{CONTACT}', {where}, timeout: 3s}}
  om: {{provider: open_meteo, {where}, timeout: 3s}}
  yr: {{provider: met_norway, contact: '{CONTACT}', {where}, timeout: 3s}}
  owm: {{provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}'}}
{cache}"""


@pytest.fixture(scope="module")
def exporter(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


@pytest.fixture(autouse=True)
def clean(request, fake_upstream):
    yield
    fake_upstream.clear_faults()
    if "exporter" in request.fixturenames:
        # A fresh US point: its /points, station list and observations all answer.
        bits = uuid.uuid4().int
        fresh = f"35.{bits % 997:03d}1,-106.{bits % 991:03d}1"
        after_faults(fake_upstream, request.getfixturevalue("exporter"), [(fresh, "us_quick")])


def probe(exporter, target: str, module: str = "us") -> dict[str, float]:
    response = exporter.probe(target, module=module)
    assert response.status_code == 200, response.text
    checked = promtool_check(response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return samples(response.text)


def by_point(fake_upstream) -> dict[str, int]:
    return dict(fake_upstream.summary()["national"]["by_point"])


def calls_since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        key: count - before.get(key, 0)
        for key, count in after.items()
        if count > before.get(key, 0)
    }


def station_of(found: dict[str, float]) -> str:
    (info,) = [name for name in found if name.startswith("weather_station_info{")]
    return info.split('station="')[1].split('"')[0]


def cosines_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The spherical law of cosines, not the exporter's haversine."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    cosine = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return 6371008.8 * math.acos(min(1.0, cosine))


def point_of(text: str) -> tuple[float, float]:
    latitude, longitude = text.split(",")
    return float(latitude), float(longitude)


def nearest_stations(point: str) -> list[fake_nws.Station]:
    """The fake's stations for a point, nearest the point first (as the exporter orders)."""
    latitude, longitude = point_of(point)
    listed = fake_nws.stations_for(fake_nws.cell_of(latitude, longitude))
    return sorted(
        listed, key=lambda s: cosines_meters(latitude, longitude, s.latitude, s.longitude)
    )


def set_station(fake_upstream, **behaviour) -> None:
    response = fake_upstream.control.post(
        f"{fake_upstream.url}/_fake/stations", json=behaviour, timeout=5
    )
    response.raise_for_status()


# -- which station answers -----------------------------------------------------------------


def test_a_silent_nearest_station_is_passed_over_and_the_answer_names_the_next(
    exporter, fake_upstream
):
    started = time.time()
    found = probe(exporter, SILENT)
    stations = nearest_stations(SILENT)
    assert stations[0].identifier == "KLSQ"
    assert found["probe_success"] == 1
    answered = station_of(found)
    assert answered == stations[1].identifier
    station = fake_nws.station(answered)
    latitude, longitude = point_of(SILENT)
    by_hand = cosines_meters(latitude, longitude, station.latitude, station.longitude)
    assert found["weather_station_distance_meters"] == pytest.approx(by_hand, rel=0.01)
    assert found["weather_station_elevation_meters"] == pytest.approx(station.elevation)
    assert found["weather_observation_age_seconds"] < 2 * 3600
    assert (
        f'weather_station_info{{name="{station.name}",provider="nws",station="{answered}"}}'
        in found
    )
    # Both stations were asked, with 4 decimals, naming us, for GeoJSON, gzip accepted.
    asked = [r for r in fake_upstream.summary()["requests"] if r["time"] >= started]
    paths = [r["path"] for r in asked]
    assert "/points/36.25,-87.25" in paths
    assert "/stations/KLSQ/observations/latest" in paths
    assert f"/stations/{answered}/observations/latest" in paths
    for request in asked:
        if request["path"].startswith(("/points", "/gridpoints", "/stations")):
            headers = request["headers"]
            assert headers["User-Agent"] == f"multitarget_exporter/{__version__} {CONTACT}"
            assert headers["Accept"] == "application/geo+json"
            assert "gzip" in headers["Accept-Encoding"]


def test_a_station_without_temperature_sends_the_probe_to_the_next(exporter):
    found = probe(exporter, NO_TEMPERATURE)
    stations = nearest_stations(NO_TEMPERATURE)
    assert stations[0].identifier == "KYWX"
    assert station_of(found) == stations[1].identifier
    assert found["weather_temperature_celsius"] > -60


def test_a_rejected_wind_speed_is_left_out(exporter):
    found = probe(exporter, REJECTED)
    assert station_of(found) == "KXDR"
    assert "weather_wind_speed_meters_per_second" not in found
    assert "weather_wind_direction_degrees" in found  # the other values stay


def test_a_station_that_measures_no_precipitation_has_no_rain_family(exporter):
    found = probe(exporter, NO_PRECIPITATION)
    assert station_of(found) == "KQOU"
    assert not [name for name in found if name.startswith(("weather_rain", "weather_snow"))]
    ordinary = probe(exporter, SILENT)  # its answering station measures it: 0 or more
    assert 'weather_rain_meters{window="1h"}' in ordinary
    assert not [name for name in ordinary if name.startswith("weather_snow")]


def test_a_station_target_asks_that_station_alone_and_has_no_distance(exporter, fake_upstream):
    before = by_point(fake_upstream)
    found = probe(exporter, "station:klsq")
    assert found["probe_success"] == 1
    assert station_of(found) == "KLSQ"
    assert "weather_station_distance_meters" not in found
    assert found["weather_observation_age_seconds"] > 2 * 3600  # silent: its age shows
    station = fake_nws.station("KLSQ")
    assert found["weather_location_latitude_degrees"] == pytest.approx(station.latitude)
    calls = calls_since(before, by_point(fake_upstream))
    assert set(calls) <= {"/stations/KLSQ/observations/latest"}  # no /points, no list
    unknown = probe(exporter, "station:KQQQ9")
    assert unknown['probe_failure_info{reason="not_found"}'] == 1


def test_a_point_outside_the_us_is_not_found(exporter):
    found = probe(exporter, "51.5074,-0.1278")
    assert found["probe_success"] == 0
    assert found['probe_failure_info{reason="not_found"}'] == 1
    assert found["probe_upstream_status_code"] == 404


# -- economy ---------------------------------------------------------------------------------


def nearby_points(latitude: float, longitude: float) -> list[str]:
    """Ten points within one half-degree cell: one station list."""
    # As the exporter writes them: no trailing zeros (41.1, not 41.10).
    return [
        f"{round(latitude + 0.03 * i, 2)!r},{round(longitude - 0.03 * i, 2)!r}" for i in range(10)
    ]


def assert_economy(fake_upstream, before: dict[str, int], points: list[str]) -> None:
    calls = calls_since(before, by_point(fake_upstream))
    for point in points:
        assert calls.get(f"/points/{point}") == 1, (point, calls)
    lists = {key: n for key, n in calls.items() if key.startswith("/gridpoints/")}
    assert list(lists.values()) == [1], lists
    observations = {key: n for key, n in calls.items() if key.startswith("/stations/")}
    assert observations and set(observations.values()) == {1}, observations
    cell = fake_nws.cell_of(*point_of(points[0]))
    assert len(observations) <= len(fake_nws.stations_for(cell))


def test_fifty_scrapes_of_ten_nearby_points_cost_a_call_per_point_list_and_station(
    exporter, fake_upstream
):
    points = nearby_points(41.01, -100.02)
    before = by_point(fake_upstream)
    # One after another first (a later point finds its station's observation kept), then
    # forty at once (they share the calls in flight).
    found = [probe(exporter, point) for point in points]
    with ThreadPoolExecutor(16) as pool:
        found += list(pool.map(lambda i: probe(exporter, points[i % 10]), range(40)))
    assert all(f["probe_success"] == 1 for f in found)
    assert_economy(fake_upstream, before, points)
    # Another module on the same base URL reuses the day's points and list too.
    again = by_point(fake_upstream)
    probe(exporter, points[3], module="us_quick")
    assert not [
        k for k in calls_since(again, by_point(fake_upstream)) if not k.startswith("/stations/")
    ]


def test_an_observation_is_asked_again_per_cache_ttl_and_the_point_per_day(exporter, fake_upstream):
    point = "38.11,-104.61"
    before = by_point(fake_upstream)
    answered = set()
    ended = time.monotonic() + 3.5
    while time.monotonic() < ended:
        found = probe(exporter, point, module="us_short")
        answered.add(station_of(found))
        time.sleep(0.25)
    calls = calls_since(before, by_point(fake_upstream))
    assert calls[f"/points/{point}"] == 1
    assert [n for k, n in calls.items() if k.startswith("/gridpoints/")] == [1]
    (station,) = answered
    asked = calls[f"/stations/{station}/observations/latest"]
    assert 3 <= asked <= 5, calls  # 3.5 s at cache_ttl 1s


def test_the_redis_cache_shares_points_lists_and_observations(
    exporter_factory, fake_upstream, redis_server
):
    _, url = redis_server
    shared = config(fake_upstream.url, f"cache: {{backend: redis, url: '{url}'}}")
    first = exporter_factory(shared, args=["--workers", "2", "--threads", "8"])
    second = exporter_factory(shared, args=["--workers", "2", "--threads", "8"])
    points = nearby_points(44.01, -90.02)
    before = by_point(fake_upstream)
    found = [probe((first, second)[i % 2], point) for i, point in enumerate(points)]
    with ThreadPoolExecutor(16) as pool:
        found += list(pool.map(lambda i: probe((first, second)[i % 2], points[i % 10]), range(40)))
    assert all(f["probe_success"] == 1 for f in found)
    assert_economy(fake_upstream, before, points)


def test_upstream_calls_are_counted_by_endpoint(exporter):
    probe(exporter, "39.31,-98.11")
    counted = samples(exporter.get("/metrics").text)
    for endpoint in ("points", "stations", "observations"):
        name = (
            'multitarget_exporter_upstream_requests_total{code="200",'
            f'endpoint="{endpoint}",provider="nws"}}'
        )
        assert counted[name] >= 1, endpoint
    probe(exporter, "50.1109,8.6821", module="de")
    counted = samples(exporter.get("/metrics").text)
    name = (
        'multitarget_exporter_upstream_requests_total{code="200",'
        'endpoint="current_weather",provider="bright_sky"}'
    )
    assert counted[name] >= 1


# -- faults on each call -----------------------------------------------------------------


FAULTS = {"json_500": "upstream_error", "rate_limited": "rate_limited", "hang": "timeout"}
CALLS = ("points", "stations", "observations")


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_on_each_call_gives_a_clear_reason_within_the_deadline(
    exporter, fake_upstream, call, fault
):
    index = CALLS.index(call) * 3 + sorted(FAULTS).index(fault)
    latitude, longitude = (
        round(33.26 + index // 3 * 1.5, 2),
        round(-84.26 - index % 3 * 2.5 - index // 3, 2),
    )
    point = f"{latitude!r},{longitude!r}"
    # A 429 asks for a 1 s wait (Retry-After): the exporter honours it for every point.
    wait = {"delay": 1} if fault == "rate_limited" else {}
    if call == "points":
        fake_upstream.fault(fault, point, path="/points", **wait)
    elif call == "stations":
        office, x, y = fake_nws.grid(fake_nws.cell_of(latitude, longitude))
        fake_upstream.fault(fault, f"{office}/{x},{y}", path="/gridpoints", **wait)
    else:
        nearest = nearest_stations(point)[0].identifier
        fake_upstream.fault(fault, nearest, path="/stations", **wait)
    started = time.monotonic()
    found = probe(exporter, point, module="us_quick")
    elapsed = time.monotonic() - started
    assert found["probe_success"] == 0
    assert found[f'probe_failure_info{{reason="{FAULTS[fault]}"}}'] == 1
    assert elapsed < 3.0  # the module's 2 s deadline, and a little
    fake_upstream.clear_faults()
    time.sleep(1.1 if wait else 0)
    assert probe(exporter, point, module="us_quick")["probe_success"] == 1


def test_a_failed_call_to_the_next_station_leaves_the_old_one_answering(exporter, fake_upstream):
    point = "45.26,-110.26"
    first, second, *_ = nearest_stations(point)
    set_station(fake_upstream, id=first.identifier, age_seconds=4 * 3600)
    fake_upstream.fault("json_500", second.identifier, path="/stations")
    found = probe(exporter, point)
    assert found["probe_success"] == 1
    assert station_of(found) == first.identifier
    assert found["weather_observation_age_seconds"] > 4 * 3600 - 120


# -- Bright Sky --------------------------------------------------------------------------


def bright_sky_requests(fake_upstream, since: float) -> list[dict]:
    return [
        r
        for r in fake_upstream.summary()["requests"]
        if r["path"] == "/current_weather" and r["time"] >= since
    ]


def test_bright_sky_by_point(exporter, fake_upstream):
    started = time.time()
    found = probe(exporter, HAMBURG, module="de")
    assert found["probe_success"] == 1
    latitude, longitude = point_of(HAMBURG)
    station = fake_bright_sky.nearest(latitude, longitude)
    assert station_of(found) == station.dwd_station_id
    by_hand = cosines_meters(latitude, longitude, station.latitude, station.longitude)
    assert found["weather_station_distance_meters"] == pytest.approx(by_hand, rel=0.01)
    assert found["weather_station_elevation_meters"] == pytest.approx(station.height)
    assert 'weather_sunshine_duration_seconds{window="1h"}' in found
    assert 'weather_rain_meters{window="1h"}' in found
    assert [name for name in found if name.startswith("weather_condition_info{")]
    assert 0 <= found["weather_observation_age_seconds"] < 900
    (request,) = bright_sky_requests(fake_upstream, started)
    assert request["query"] == {"lat": "53.5511", "lon": "9.9937", "units": "dwd"}
    assert request["headers"]["User-Agent"] == f"multitarget_exporter/{__version__}"
    assert "gzip" in request["headers"]["Accept-Encoding"]
    assert probe(exporter, HAMBURG, module="de")["probe_cache_hit"] == 1
    assert len(bright_sky_requests(fake_upstream, started)) == 1


def test_bright_sky_by_station_keeps_borrowed_values_and_has_no_distance(exporter, fake_upstream):
    started = time.time()
    found = probe(exporter, "station:01000", module="de_named")  # index 0: borrows
    assert found["probe_success"] == 1
    assert station_of(found) == "01000"
    assert "weather_station_distance_meters" not in found
    assert "weather_temperature_celsius" in found  # from the neighbour, kept
    (request,) = bright_sky_requests(fake_upstream, started)
    assert request["query"] == {"dwd_station_id": "01000", "units": "dwd"}
    assert request["headers"]["User-Agent"] == f"multitarget_exporter/{__version__} {CONTACT}"
    # The probe's log says whose values they are (index 5 borrows too).
    params = {"target": "station:01185", "module": "de", "debug": "true"}
    debug = exporter.get("/probe", params=params).text
    assert 'msg="values from another station"' in debug
    assert "temperature from" in debug


def test_bright_sky_outside_germany_is_not_found(exporter):
    found = probe(exporter, "40.7128,-74.006", module="de")
    assert found['probe_failure_info{reason="not_found"}'] == 1


# -- the observation's age, for every provider --------------------------------------------


@pytest.mark.parametrize(
    ("module", "target"),
    [("om", "-33.4411,-150.1111"), ("yr", "-34.4411,-151.1111"), ("owm", "-35.4411,-152.1111"),
     ("de", "52.5201,13.4051"), ("us", "35.0811,-106.6511")],
)  # fmt: skip
def test_the_observation_age_grows_between_cached_probes(exporter, module, target):
    first = probe(exporter, target, module=module)
    time.sleep(1.2)
    second = probe(exporter, target, module=module)
    assert second["probe_cache_hit"] == 1
    assert (
        second["weather_observation_timestamp_seconds"]
        == first["weather_observation_timestamp_seconds"]
    )
    grown = second["weather_observation_age_seconds"] - first["weather_observation_age_seconds"]
    assert 1.0 <= grown <= 3.0
    assert (
        abs(
            time.time()
            - second["weather_observation_timestamp_seconds"]
            - second["weather_observation_age_seconds"]
        )
        < 2.0
    )
