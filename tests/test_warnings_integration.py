"""Official warnings against the fake NWS, MetAlerts and Bright Sky, through the real exporter.

The exporter runs under gunicorn on `open_meteo` modules with warnings; the
fake serves each service on its own paths, with the scenario table of
`fake_upstream/alerts.py` (a US, a Norwegian and a German point per state,
times relative to the current hour) and `POST /_fake/alerts` for exact ones.
Every answer passes `promtool check metrics`; faults never touch the weather.
"""

from __future__ import annotations

import os
import time

import pytest

from multitarget_exporter import __version__
from tests.conftest import after_faults, promtool_check, samples, unique, unique_point

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

CONTACT = "warnings-ops@example.com"
DENVER, MIAMI, MINNEAPOLIS, OKLAHOMA, SEATTLE, PHOENIX = (
    "39.7392,-104.9903",
    "25.7617,-80.1918",
    "44.9778,-93.265",
    "35.4676,-97.5164",
    "47.6062,-122.3321",
    "33.4484,-112.074",
)
BERGEN, NARVIK, HAMBURG, MUNICH = (
    "60.3913,5.3221",
    "68.4385,17.4273",
    "53.5511,9.9937",
    "48.1351,11.582",
)


def config(fake_url: str, cache: str = "") -> str:
    weather = f"provider: open_meteo, base_url: '{fake_url}', geocoding_url: '{fake_url}'"
    urls = f"{{nws: '{fake_url}', met_norway: '{fake_url}', dwd: '{fake_url}'}}"
    every = f"warnings: [nws, dwd, met_norway], warnings_urls: {urls}, contact: '{CONTACT}'"
    return f"""
modules:
  all: {{{weather}, {every}, timeout: 3s}}
  short: {{{weather}, {every}, warnings_ttl: 1s, cache_ttl: 1s, timeout: 3s}}
  kept: {{{weather}, {every}, warnings_ttl: 1s, cache_ttl: 1s, stale_if_error: 1h, timeout: 3s}}
  dwd_only: {{{weather}, warnings: [dwd], warnings_urls: {urls}, timeout: 3s}}
  plain: {{{weather}, timeout: 3s}}
{cache}"""


@pytest.fixture(scope="module")
def exporter(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


@pytest.fixture(autouse=True)
def clean(request, fake_upstream):
    yield
    fake_upstream.clear_faults()
    if "exporter" in request.fixturenames:
        # A fresh point inside the NWS's area: the weather, /points and alerts answer.
        fresh = f"41.{int(time.time() * 1000) % 997:03d}1,-100.{os.getpid() % 991:03d}1"
        after_faults(fake_upstream, request.getfixturevalue("exporter"), [(fresh, "all")])
    fake_upstream.control.post(
        f"{fake_upstream.url}/_fake/alerts", json={"source": "nws", "match": "*", "alerts": None}
    )


def set_alerts(fake_upstream, source: str, point: str, alerts: list[dict]) -> None:
    response = fake_upstream.control.post(
        f"{fake_upstream.url}/_fake/alerts",
        json={"source": source, "match": point, "alerts": alerts},
        timeout=5,
    )
    response.raise_for_status()


def probe(exporter, target: str, module: str = "all") -> tuple[dict[str, float], str]:
    response = exporter.probe(target, module=module)
    assert response.status_code == 200, response.text
    checked = promtool_check(response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return samples(response.text), response.text


def national(fake_upstream) -> dict:
    return fake_upstream.summary()["national"]


def asked(fake_upstream, path: str, since: float) -> list[dict]:
    return [
        entry
        for entry in fake_upstream.summary()["requests"]
        if entry["path"].startswith(path) and entry["time"] >= since
    ]


def kinds(found: dict[str, float], family: str) -> dict[str, float]:
    return {name: value for name, value in found.items() if name.startswith(family + "{")}


def test_a_us_point_gets_the_nws_warning_in_effect(exporter, fake_upstream):
    started = time.time()
    found, _ = probe(exporter, DENVER)
    assert found["probe_success"] == 1 and found["probe_warnings_success"] == 1
    assert found["weather_warnings_covered"] == 1
    assert found['weather_warnings{state="in_effect"}'] == 1
    assert found['weather_warnings{state="upcoming"}'] == 0
    assert found['weather_warning_level{state="in_effect"}'] == 3
    assert found['weather_warning_level{state="upcoming"}'] == 0
    (info,) = kinds(found, "weather_warning_info")
    assert 'source="nws"' in info and 'event="High Wind Warning"' in info
    assert 'severity="severe"' in info and 'state="in_effect"' in info
    hour = time.time() // 3600 * 3600  # the fake's times are relative to the current hour
    onset = found[info.replace("weather_warning_info", "weather_warning_onset_timestamp_seconds")]
    ends = found[info.replace("weather_warning_info", "weather_warning_ends_timestamp_seconds")]
    assert (onset, ends) == (hour - 2 * 3600, hour + 6 * 3600)
    # Coverage first (/points), then the alerts: both name us and ask for GeoJSON.
    (points,) = asked(fake_upstream, "/points/", started)
    (alerts,) = asked(fake_upstream, "/alerts/active", started)
    assert points["path"] == "/points/39.7392,-104.9903"
    assert alerts["query"] == {"point": "39.7392,-104.9903"}
    for request in (points, alerts):
        assert request["headers"]["User-Agent"] == f"multitarget_exporter/{__version__} {CONTACT}"
        assert request["headers"]["Accept"] == "application/geo+json"
        assert "gzip" in request["headers"]["Accept-Encoding"]
    counted = samples(exporter.get("/metrics").text)
    assert (
        counted[
            'multitarget_exporter_upstream_requests_total{code="200",endpoint="alerts",provider="nws"}'
        ]
        >= 1
    )
    assert (
        counted[
            'multitarget_exporter_upstream_requests_total{code="200",endpoint="points",provider="nws"}'
        ]
        >= 1
    )


def test_a_norwegian_point_passes_nws_and_dwd_and_gets_metalerts(exporter, fake_upstream):
    started = time.time()
    found, _ = probe(exporter, BERGEN)
    (info,) = kinds(found, "weather_warning_info")
    assert 'source="met_norway"' in info and 'event="wind"' in info
    assert 'severity="severe"' in info  # orange
    assert found['weather_warning_level{state="in_effect"}'] == 3
    # Outside the NWS's and DWD's areas: one /points 404 and one Bright Sky 404.
    assert len(asked(fake_upstream, "/points/", started)) == 1
    assert [r["path"] for r in asked(fake_upstream, "/alerts", started)] == ["/alerts"]
    (metalerts,) = asked(fake_upstream, "/weatherapi/metalerts/", started)
    assert metalerts["query"] == {"lat": "60.3913", "lon": "5.3221", "lang": "en"}
    # "Outside" is remembered: the next probe asks neither NWS nor Bright Sky again.
    again = time.time()
    probe(exporter, BERGEN, module="short")
    assert asked(fake_upstream, "/points/", again) == []
    assert [r for r in asked(fake_upstream, "/alerts", again) if r["path"] == "/alerts"] == []


def test_a_german_point_gets_dwd_warnings_and_upcoming_ones_count_apart(exporter, fake_upstream):
    found, _ = probe(exporter, HAMBURG)
    (info,) = kinds(found, "weather_warning_info")
    assert 'source="dwd"' in info and 'state="in_effect"' in info
    upcoming, _ = probe(exporter, MUNICH)
    assert upcoming['weather_warnings{state="in_effect"}'] == 0
    assert upcoming['weather_warnings{state="upcoming"}'] == 1
    assert upcoming['weather_warning_level{state="upcoming"}'] == 4
    assert upcoming['weather_warning_level{state="in_effect"}'] == 0


def test_a_point_at_sea_is_covered_by_none(exporter):
    found, _ = probe(exporter, unique_point())
    assert found["probe_warnings_success"] == 1
    assert found["weather_warnings_covered"] == 0
    assert not kinds(found, "weather_warnings") and "weather_warning_level" not in str(found)


@pytest.mark.parametrize("point", [MINNEAPOLIS, OKLAHOMA, SEATTLE], ids=["ended", "cancel", "test"])
def test_ended_cancelled_and_test_messages_are_left_out(exporter, point):
    found, _ = probe(exporter, point)
    assert found["weather_warnings_covered"] == 1
    assert found['weather_warnings{state="in_effect"}'] == 0
    assert found['weather_warnings{state="upcoming"}'] == 0
    assert not kinds(found, "weather_warning_info")


def test_several_warnings_and_one_without_an_end(exporter):
    found, _ = probe(exporter, PHOENIX)
    assert found['weather_warnings{state="in_effect"}'] == 2
    assert found['weather_warnings{state="upcoming"}'] == 1
    assert found['weather_warning_level{state="upcoming"}'] == 3
    assert len(kinds(found, "weather_warning_info")) == 3
    # The Air Quality Alert has no `ends`: its `expires` is its end, as the spec says.
    assert len(kinds(found, "weather_warning_ends_timestamp_seconds")) == 3


def test_a_warning_without_any_end_is_in_effect_with_no_end_series(exporter, fake_upstream):
    point = "40.3333,-101.4444"
    set_alerts(
        fake_upstream,
        "nws",
        point,
        [
            {"event": "Heat Advisory", "severity": "Moderate", "ends_in": None},
            {"event": "Fire Weather Watch", "severity": "Severe", "onset_in": 7200},
        ],
    )
    found, _ = probe(exporter, point)
    assert found['weather_warnings{state="in_effect"}'] == 1
    assert found['weather_warnings{state="upcoming"}'] == 1
    assert len(kinds(found, "weather_warning_onset_timestamp_seconds")) == 2
    (ends,) = kinds(found, "weather_warning_ends_timestamp_seconds")
    assert 'event="Fire Weather Watch"' in ends


def test_headlines_go_to_the_log_and_debug_never_to_labels(exporter, fake_upstream):
    point = "40.1111,-100.2222"
    headline = 'Storm "Zanzibar"\nat 5 PM'
    set_alerts(
        fake_upstream,
        "nws",
        point,
        [{"event": "Winter\x07 Storm Warning", "severity": "Severe", "headline": headline}],
    )
    found, text = probe(exporter, point)
    (info,) = kinds(found, "weather_warning_info")
    assert 'event="Winter Storm Warning"' in info
    assert "Zanzibar" not in text
    debug = exporter.get("/probe", params={"target": point, "module": "all", "debug": "true"}).text
    assert "Zanzibar" in debug


def test_a_failed_warnings_call_keeps_the_weather(exporter, fake_upstream):
    point = "41.5001,-99.5001"
    fake_upstream.fault("json_500", match=point, path="/alerts/active")
    found, _ = probe(exporter, point)
    assert found["probe_success"] == 1 and "weather_temperature_celsius" in found
    assert found["probe_warnings_success"] == 0
    assert "weather_warnings_covered" not in found  # nothing good, nothing kept


@pytest.mark.parametrize("fault", ["hang", "malformed", "partial", "oversize", "rate_limited"])
def test_every_warnings_fault_is_probe_warnings_success_0_within_the_deadline(
    exporter, fake_upstream, fault
):
    # Four decimals ending in 1: the point as sent, so the fault rule matches it.
    point = f"42.{int(time.time() * 1000) % 1000:03d}1,-98.5001"
    wait = {"delay": 1} if fault == "rate_limited" else {}  # Retry-After: 1
    fake_upstream.fault(fault, match=point, path="/alerts/active", **wait)
    started = time.monotonic()
    found, _ = probe(exporter, point)
    assert time.monotonic() - started < 4.5  # the module's 3 s timeout, and some
    assert found["probe_success"] == 1 and "weather_temperature_celsius" in found
    assert found["probe_warnings_success"] == 0
    assert "weather_warnings_covered" not in found


def test_a_kept_answer_serves_within_stale_if_error(exporter, fake_upstream):
    point = "43.2001,-97.3001"
    set_alerts(fake_upstream, "nws", point, [{"event": "Blizzard Warning", "severity": "Extreme"}])
    first, _ = probe(exporter, point, module="kept")
    assert first['weather_warning_level{state="in_effect"}'] == 4
    time.sleep(1.2)  # past warnings_ttl
    fake_upstream.fault("json_503", match=point, path="/alerts/active")
    found, _ = probe(exporter, point, module="kept")
    assert found["probe_warnings_success"] == 0
    assert found['weather_warning_level{state="in_effect"}'] == 4  # the kept answer
    log = exporter.get("/logs", params={"target": point, "module": "kept"}).text
    assert "warnings_failed" in log or "warnings call failed" in log


def test_a_target_whose_weather_failed_still_gets_warnings_once_its_point_is_known(
    exporter, fake_upstream
):
    fake_upstream.fault("json_500", match=DENVER, path="/v1/forecast")
    found, _ = probe(exporter, DENVER, module="short")
    assert found["probe_success"] == 0
    assert found["probe_warnings_success"] == 1
    assert found['weather_warning_level{state="in_effect"}'] == 3
    # A name that never resolved has no point: only probe_warnings_success 0.
    nowhere, _ = probe(exporter, unique("Nowhere"))
    assert nowhere["probe_success"] == 0 and nowhere["probe_warnings_success"] == 0
    assert "weather_warnings_covered" not in nowhere


def test_a_module_without_warnings_reports_none(exporter):
    found, _ = probe(exporter, DENVER, module="plain")
    assert "probe_warnings_success" not in found


def test_a_dwd_only_module_names_the_exporter_without_a_contact(exporter, fake_upstream):
    started = time.time()
    probe(exporter, "52.5201,13.4101", module="dwd_only")
    (request,) = [r for r in asked(fake_upstream, "/alerts", started) if r["path"] == "/alerts"]
    assert request["headers"]["User-Agent"] == f"multitarget_exporter/{__version__}"


def test_metalerts_is_never_asked_twice_within_ten_minutes(exporter, fake_upstream):
    """Scrapes every half second with warnings_ttl 1s: MET Norway's 10 minutes hold."""
    point = "61.2345,7.1234"
    before = national(fake_upstream)["metalerts_early"]
    started = time.time()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        probe(exporter, point, module="short")
        time.sleep(0.5)
    assert len(asked(fake_upstream, "/weatherapi/metalerts/", started)) == 1
    assert national(fake_upstream)["metalerts_early"] == before


def test_two_workers_on_redis_share_answers_and_coverage(
    exporter_factory, fake_upstream, redis_server
):
    cache = f"cache: {{backend: redis, url: '{redis_server[1]}'}}"
    shared = exporter_factory(config(fake_upstream.url, cache), args=["--workers", "2"])
    started = time.time()
    points = [DENVER.replace("104.9903", "104.9913"), BERGEN.replace("5.3221", "5.3231")]
    for _ in range(6):
        for point in points:
            found, _ = probe(shared, point)
            assert found["weather_warnings_covered"] == 1
    # One call per point and source, whichever worker answered.
    assert len(asked(fake_upstream, "/alerts/active", started)) == 1
    assert len(asked(fake_upstream, "/weatherapi/metalerts/", started)) == 1
    assert len(asked(fake_upstream, "/points/", started)) == 2  # Denver inside, Bergen outside


def test_the_upstream_counters_are_what_the_fake_saw(exporter, fake_upstream):
    started = time.time()
    probe(exporter, "36.1001,-95.9001")
    metrics = exporter.get("/metrics").text
    assert 'endpoint="alerts",provider="nws"' in metrics
    assert len(asked(fake_upstream, "/alerts/active", started)) == 1
