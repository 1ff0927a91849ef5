"""Hostile requests, generated: never a 5xx, a traceback, a smuggled parameter or another host.

Hypothesis draws targets, modules, `debug`, extra parameters, scrape-timeout
and content headers, and methods; each request goes over HTTP to the real
exporter, and what the fake upstream then received is checked: only its own
paths, only the parameters the provider sends, the key the module holds, and
nothing at all reaching a canary listener whose address hostile targets name.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import OWM_KEY

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

DEADLINE = 2.0
ALLOWED = {
    "/data/2.5/weather": {"q", "id", "lat", "lon", "zip", "units", "lang", "appid"},
    "/data/2.5/air_pollution": {"lat", "lon", "appid"},
    "/v1/forecast": {
        "latitude",
        "longitude",
        "current",
        "hourly",
        "past_hours",
        "forecast_hours",
        "daily",
        "forecast_days",
        "wind_speed_unit",
        "timeformat",
        "timezone",
    },
    "/v1/search": {"name", "count", "language", "format"},
}


class Canary:
    """A listener nobody should ever reach: counts every connection."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.fixture(scope="module")
def canary():
    listener = Canary()
    yield listener
    listener.socket.close()


@pytest.fixture(scope="module")
def hostile(exporter_factory, fake_upstream):
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_upstream.url}'"
    url = fake_upstream.url
    meteo = f"provider: open_meteo, base_url: '{url}', geocoding_url: '{url}'"
    return exporter_factory(
        f"""
modules:
  default: {{{owm}, timeout: {DEADLINE:.0f}s, cache_ttl: 0}}
  air: {{{owm}, timeout: {DEADLINE:.0f}s, air_quality: true, cache_ttl: 0}}
  meteo: {{{meteo}, timeout: {DEADLINE:.0f}s, cache_ttl: 0}}
"""
    )


def hostile_targets(canary_port: int) -> st.SearchStrategy[str]:
    address = f"127.0.0.1:{canary_port}"
    crafted = [
        "London&appid=stolen&q=Paris",
        "London#fragment",
        "London?units=imperial",
        "../../../etc/passwd",
        f"http://{address}/",
        address,
        f"@{address}",
        f"London@{address}",
        f"//{address}/data",
        "id:1 OR 1=1",
        "id:99999999999999999999999",
        "zip:94040,US&lat=1",
        "London\r\nX-Injected: 1",
        "London\x00Paris",
        "%00%0d%0a",
        "91,0",
        "-90.0000,180.0000",
        "NaN,NaN",
        "inf,1",
        "1e5,1",
        "\u202eLondon",
        "x" * 256,
        "x" * 257,
        ",,",
        "London,,GB",
        "Springfield,IL,US,extra",
        "zip:",
        "id:",
        "prefix:value",
    ]
    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=300)
    places = st.builds(
        lambda name, country: f"{name},{country}",
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=0, max_size=3),
    )
    points = st.builds(
        lambda lat, lon: f"{lat},{lon}",
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    return st.one_of(st.sampled_from(crafted), text, places, points)


# Printable ASCII; HTTP itself trims a value's surrounding whitespace.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
).map(str.strip)
scrape_timeouts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["-1", "0", "1e309", "nan", "999999999999", "0.0001", "", "3 s", "3s"]),
    header_text,
)
extra_keys = st.one_of(
    st.sampled_from(["appid", "apikey", "base_url", "q", "lat", "units", "lang", "id", "url"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
)


def upstream_requests_since(fake_upstream, before: int) -> list[dict]:
    summary = fake_upstream.summary()
    new = summary["total"] - before
    return summary["requests"][-new:] if new else []


def check_upstream(entries: list[dict], fake_host: str) -> None:
    for entry in entries:
        assert entry["path"] in ALLOWED, entry["path"]
        assert set(entry["query"]) <= ALLOWED[entry["path"]], entry["query"]
        assert entry["headers"].get("Host") == fake_host
        if "appid" in entry["query"]:
            assert entry["query"]["appid"] == OWM_KEY


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_probe_requests(hostile, fake_upstream, canary, data):
    targets = data.draw(
        st.one_of(
            hostile_targets(canary.port).map(lambda t: [t]),
            st.lists(hostile_targets(canary.port), min_size=0, max_size=3),
        ),
        label="targets",
    )
    module = data.draw(
        st.one_of(
            st.none(),
            st.sampled_from(["default", "air", "meteo", "", "nope", "../default", "default\x00"]),
            st.text(max_size=70),
        ),
        label="module",
    )
    debug = data.draw(
        st.one_of(st.none(), st.sampled_from(["true", "TRUE", "1", ""])), label="debug"
    )
    extra = data.draw(st.dictionaries(extra_keys, st.text(max_size=50), max_size=4), label="extra")
    headers = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "X-Prometheus-Scrape-Timeout-Seconds": scrape_timeouts,
                "Accept": st.one_of(
                    st.just("application/openmetrics-text; version=1.0.0"), header_text
                ),
                "Accept-Encoding": st.one_of(st.just("gzip"), header_text),
            },
        ),
        label="headers",
    )
    params = [(k, v) for k, v in extra.items() if k not in ("target", "module", "debug")]
    params += [("target", t) for t in targets]
    if module is not None:
        params.append(("module", module))
    if debug is not None:
        params.append(("debug", debug))
    before = fake_upstream.summary()["total"]
    started = time.perf_counter()
    response = requests.get(
        f"{hostile.url}/probe", params=params, headers=headers, timeout=DEADLINE + 10
    )
    elapsed = time.perf_counter() - started
    event(f"status {response.status_code}")
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert elapsed < DEADLINE + 1.5
    if response.status_code == 200 and (debug or "").lower() != "true":
        families = list(text_string_to_metric_families(response.text))
        assert any(f.name == "probe_success" for f in families)
    elif response.status_code == 400:
        assert len(response.text) < 300 and response.text.count("\n") <= 1
    sent = upstream_requests_since(fake_upstream, before)
    event("reached the upstream" if sent else "no upstream call")
    check_upstream(sent, urlsplit(fake_upstream.url).netloc)
    assert canary.connections == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "X-FOO"]
    ),
    path=st.one_of(
        st.sampled_from(
            ["/probe", "/metrics", "/", "/config", "/logs", "/-/healthy", "/-/ready", "/-/reload"]
        ),
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(
            lambda p: "/" + p.lstrip("/")
        ),
    ),
    body=st.binary(max_size=2000),
)
def test_hostile_methods_and_paths(hostile, canary, method, path, body):
    if method == "POST" and path == "/-/reload":
        return  # a valid reload: tested in test_reload.py
    response = requests.request(
        method, f"{hostile.url}{path}", params={"target": "London"}, data=body, timeout=15
    )
    assert response.status_code < 500, (method, path, response.status_code, response.text[:200])
    assert "Traceback" not in response.text
    assert canary.connections == 0
