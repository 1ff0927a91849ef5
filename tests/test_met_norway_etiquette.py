"""MET Norway's terms, kept against the fake upstream: identification, 4 decimals, gzip,
no request before Expires, If-Modified-Since with the stored Last-Modified, 304s; on one
process and on two workers sharing Redis; and every fault its answers can bring.

The fake counts the breaches itself (`met`: requests before the Expires it gave for a
point, coordinates with more than 4 decimals) and the 304s it gave. Loads are bounded:
scrapes about every half second for a few seconds, with Expires cut to 2 to 3 s.
"""

from __future__ import annotations

import http.server
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from multitarget_exporter import __version__
from tests.conftest import samples

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

PATH = "/weatherapi/locationforecast/2.0/complete"
CONTACT = "weather-ops@example.com"


def config(fake_url: str, cache: str = "") -> str:
    met = (
        f"provider: met_norway, contact: '{CONTACT}', base_url: '{fake_url}', "
        f"geocoding_url: '{fake_url}'"
    )
    return f"""
modules:
  yr: {{{met}, cache_ttl: 1s, forecast: [1h, 6h, 24h, 72h]}}
  yr_again: {{{met}, cache_ttl: 1s}}
  yr_quick: {{{met}, cache_ttl: 1s, timeout: 1s}}
  yr_limited: {{{met}, cache_ttl: 1s, rate_limit: 2/h}}
{cache}"""


@pytest.fixture(scope="module")
def exporter(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


@pytest.fixture(autouse=True)
def met_settings(fake_upstream):
    yield
    fake_upstream.met(expires_seconds=1800, update_seconds=10**7)  # no update within the test
    fake_upstream.clear_faults()


def met_requests(fake_upstream, since: float = 0.0) -> list[dict]:
    return [
        r for r in fake_upstream.summary()["requests"] if r["path"] == PATH and r["time"] >= since
    ]


def counts(fake_upstream) -> dict:
    return fake_upstream.summary()["met"]


def revalidations(exporter) -> float:
    found = samples(exporter.get("/metrics").text)
    name = (
        'multitarget_exporter_upstream_requests_total{code="304",'
        'endpoint="locationforecast",provider="met_norway"}'
    )
    return found.get(name, 0.0)


def probe(exporter, target: str, module: str = "yr") -> dict[str, float]:
    return samples(exporter.probe(target, module=module).text)


def test_the_request_names_us_and_keeps_to_four_decimals(exporter, fake_upstream):
    started = time.time()
    found = probe(exporter, "59.913868,10.752245")
    assert found["probe_success"] == 1
    (request,) = met_requests(fake_upstream, started)
    assert request["query"] == {"lat": "59.9139", "lon": "10.7522"}
    agent = request["headers"]["User-Agent"]
    assert agent == f"multitarget_exporter/{__version__} {CONTACT}"
    assert "gzip" in request["headers"]["Accept-Encoding"]
    assert "If-Modified-Since" not in request["headers"]
    assert counts(fake_upstream)["long_coordinates"] == 0
    # The reading is the point's, and what it lacks is left out rather than zero.
    assert found["weather_location_latitude_degrees"] == 59.9139
    assert not [name for name in found if name.startswith(("weather_rain", "weather_snow"))]
    assert 'weather_location_info{country="",name="",provider="met_norway"}' in found


def test_targets_and_modules_on_one_point_share_its_answer(exporter, fake_upstream):
    started = time.time()
    first = probe(exporter, "60.12341,9.98761")
    # Another spelling of the point, and another module: no request before Expires.
    second = probe(exporter, "60.123409,9.987612", module="yr_again")
    third = probe(exporter, "60.1234,9.9876", module="yr_quick")
    assert first["probe_cache_hit"] == 0
    assert second["probe_cache_hit"] == 1 and third["probe_cache_hit"] == 1
    assert second["weather_temperature_celsius"] == first["weather_temperature_celsius"]
    assert len(met_requests(fake_upstream, started)) == 1


def test_concurrent_probes_of_one_point_make_one_request(exporter, fake_upstream):
    """Two modules and two spellings of one point, sixteen probes at once: one request."""
    started = time.time()
    asks = [("67.12341,14.5", "yr"), ("67.123409,14.500001", "yr_again")] * 8
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda ask: probe(exporter, *ask), asks))
    assert all(f["probe_success"] == 1 for f in found)
    assert len(met_requests(fake_upstream, started)) == 1


def test_after_expires_a_304_renews_the_answer(exporter, fake_upstream):
    fake_upstream.met(expires_seconds=2, update_seconds=10**7)  # no update within the test
    target, started = "61.5,8.25", time.time()
    before = counts(fake_upstream)
    revalidated_before = revalidations(exporter)
    first = probe(exporter, target)
    seen = []
    deadline = time.monotonic() + 6.5
    while time.monotonic() < deadline:  # scrapes every 0.4 s for 6.5 s
        seen.append(probe(exporter, target))
        time.sleep(0.4)
    asked = met_requests(fake_upstream, started)
    after = counts(fake_upstream)
    assert after["early"] == before["early"]
    # One request per Expires (2 s) at most: 6.5 s of scrapes make 3 or 4 in all.
    assert 3 <= len(asked) <= 5, [r["time"] - started for r in asked]
    revalidated = [r for r in asked if "If-Modified-Since" in r["headers"]]
    assert len(revalidated) == len(asked) - 1
    assert first["probe_upstream_status_code"] == 200
    statuses = {s["probe_upstream_status_code"] for s in seen if s["probe_cache_hit"] == 0}
    assert statuses == {304}
    assert after["not_modified"] - before["not_modified"] == len(revalidated)
    # The exporter counts them too, as many.
    assert revalidations(exporter) - revalidated_before == len(revalidated)
    # A 304 keeps the time series: every horizon is still there.
    assert all('weather_forecast_temperature_celsius{horizon="72h"}' in s for s in seen)


def test_a_304_counts_against_rate_limit(exporter, fake_upstream):
    """Two calls an hour: the first answer and one 304 spend them; the third refresh is
    refused without a request."""
    fake_upstream.met(expires_seconds=1, update_seconds=10**7)  # no update within the test
    target, started = "62.75,6.25", time.time()
    assert probe(exporter, target, "yr_limited")["probe_upstream_status_code"] == 200
    time.sleep(1.3)
    assert probe(exporter, target, "yr_limited")["probe_upstream_status_code"] == 304
    time.sleep(1.3)
    refused = probe(exporter, target, "yr_limited")
    assert refused['probe_failure_info{reason="rate_limited"}'] == 1
    assert len(met_requests(fake_upstream, started)) == 2


def test_if_modified_since_is_the_last_modified_exactly(exporter, fake_upstream):
    update = 10**7  # the fake's data last changed at the last multiple of this
    fake_upstream.met(expires_seconds=1, update_seconds=update)
    target, started = "62.25,7.5", time.time()
    probe(exporter, target)
    time.sleep(1.3)
    probe(exporter, target)
    first, second = met_requests(fake_upstream, started)[:2]
    assert "If-Modified-Since" not in first["headers"]
    modified = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(started // update * update))
    assert second["headers"]["If-Modified-Since"] == modified


@pytest.mark.parametrize(
    ("fault", "reason", "status"),
    [
        ("unauthorized", "unauthorized", 403),
        ("rate_limited", "rate_limited", 429),
        ("hang", "timeout", 0),
        ("json_500", "upstream_error", 500),
        ("met_no_timeseries", "invalid_response", 200),
        ("met_empty_timeseries", "invalid_response", 200),
        ("met_no_instant", "invalid_response", 200),
        ("wrong_content_type", "invalid_response", 200),
        ("malformed", "invalid_response", 200),
        ("partial", "invalid_response", 200),
    ],
)
def test_faults_give_their_reason(exporter, fake_upstream, fault, reason, status):
    fake_upstream.met(expires_seconds=1, update_seconds=10**7)
    early = counts(fake_upstream)["early"]
    target = f"63.{int(time.time() * 1000) % 900 + 100}1,5.5"  # as sent: no trailing 0
    fake_upstream.fault(fault, target, path=PATH, times=1, delay=3)
    found = probe(exporter, target, module="yr_quick")
    assert found[f'probe_failure_info{{reason="{reason}"}}'] == 1, found
    assert found["probe_upstream_status_code"] == status
    if fault == "unauthorized":
        page = exporter.get("/logs", params={"target": target, "module": "yr_quick"}).text
        assert "refuses unidentified or blocked clients" in page
    asked = len(met_requests(fake_upstream))
    again = probe(exporter, target, module="yr_quick")
    if status == 200:
        # A useless answer is kept until its Expires all the same: no request before it.
        assert again[f'probe_failure_info{{reason="{reason}"}}'] == 1
        assert len(met_requests(fake_upstream)) == asked
        time.sleep(1.2)
        again = probe(exporter, target, module="yr_quick")
    # Nothing else broke: the next probe after Expires reads the point.
    assert again["probe_success"] == 1
    assert counts(fake_upstream)["early"] == early


def test_nulls_give_a_partial_reading(exporter, fake_upstream):
    target = "64.5,11.5"
    fake_upstream.fault("nulls", target, path=PATH, times=1)
    found = probe(exporter, target)
    assert found["probe_success"] == 1 and "weather_temperature_celsius" in found
    assert "weather_relative_humidity_ratio" not in found
    assert "weather_wind_speed_meters_per_second" not in found


def test_a_deprecated_product_answers_and_is_said_once(exporter, fake_upstream):
    for target in ("65.25,12.25", "65.5,12.5"):
        fake_upstream.fault("deprecated", target, path=PATH, times=1)
        found = probe(exporter, target)
        assert found["probe_success"] == 1 and found["probe_upstream_status_code"] == 203
    log = exporter.log_text()
    assert log.count("MET Norway answers 203") == 1


def test_without_expires_or_last_modified_it_falls_back_to_cache_ttl(exporter_factory):
    """A server that sends neither header: the answer is kept for cache_ttl, and the next
    request after it is a plain one (nothing to revalidate with)."""
    hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime())
    document = (
        '{"type":"Feature","geometry":{"type":"Point","coordinates":[10.0,60.0,20]},'
        f'"properties":{{"meta":{{"updated_at":"{hour}","units":{{}}}},'
        f'"timeseries":[{{"time":"{hour}","data":{{"instant":{{"details":'
        '{"air_temperature":4.5}}}}]}}'
    ).encode()
    seen: list[dict] = []

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Expires", "soon")  # unparsable
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        exporter = exporter_factory(
            f"modules:\n  plain: {{provider: met_norway, contact: '{CONTACT}', "
            f"base_url: '{url}', cache_ttl: 1s}}\n"
        )
        assert probe(exporter, "60,10", "plain")["weather_temperature_celsius"] == 4.5
        assert probe(exporter, "60,10", "plain")["probe_cache_hit"] == 1
        assert len(seen) == 1
        time.sleep(1.2)
        assert probe(exporter, "60,10", "plain")["probe_cache_hit"] == 0
        assert len(seen) == 2 and "If-Modified-Since" not in seen[1]
    finally:
        server.shutdown()
        server.server_close()


def test_two_workers_on_redis_never_ask_early(exporter_factory, fake_upstream, redis_server):
    """Many places, two workers sharing Redis, scrapes about every half second for 8 s,
    Expires cut to 3 s: no early request, no long coordinate, and 304s after the first."""
    _, url = redis_server
    fake_upstream.met(expires_seconds=3, update_seconds=10**7)  # no update within the test
    exporter = exporter_factory(
        config(fake_upstream.url, f"cache:\n  backend: redis\n  url: {url}\n"),
        args=["--workers", "2"],
    )
    places = [f"66.{index:04d}7,{10 + index}.123456" for index in range(12)]
    before, started = counts(fake_upstream), time.time()

    def scrape(target: str) -> float:
        found = samples(
            requests.get(
                f"{exporter.url}/probe",
                params={"target": target, "module": ("yr", "yr_again")[hash(target) % 2]},
                headers={"Connection": "close"},  # each scrape may meet either worker
                timeout=10,
            ).text
        )
        return found["probe_success"]

    rounds = 0
    with ThreadPoolExecutor(12) as pool:
        while time.time() - started < 8:
            assert list(pool.map(scrape, places)) == [1.0] * len(places)
            rounds += 1
            time.sleep(0.5)
    after = counts(fake_upstream)
    asked = met_requests(fake_upstream, started)
    assert after["early"] == before["early"] and after["long_coordinates"] == 0
    # One plain request per point, then one revalidation per Expires at most.
    plain = [r for r in asked if "If-Modified-Since" not in r["headers"]]
    assert len(plain) == len(places)
    assert 0 < after["not_modified"] - before["not_modified"] == len(asked) - len(plain)
    assert len(asked) <= len(places) * (8 // 3 + 2)
    assert rounds >= 6
