"""Every upstream fault against every provider, with and without the cache.

For each: the failure reason, the answer time against the probe's deadline,
and the next probe of the same place, the fault gone. The exporter runs at
debug log level with recognisable keys for both providers, and at the end
every response, header and log line of the whole matrix, `/config`, every
`/logs` page and `debug=true` output are searched for them.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import OWM_KEY, samples, unique_point

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

METEO_KEY = "OM-matrix-KEY-8c41f07d"
DEADLINE = 1.0
SLACK = 0.6  # scheduling on a shared machine; the cut itself is at the deadline

# fault -> (openweathermap's reason, open_meteo's reason); None: the probe succeeds.
FAULTS = {
    "hang": ("timeout", "timeout"),
    "trickle": ("timeout", "timeout"),
    "trickle_headers": ("timeout", "timeout"),
    "slow": (None, None),
    "reset": ("connection_error", "connection_error"),
    "close": ("connection_error", "connection_error"),
    "html_502": ("upstream_error", "upstream_error"),
    "json_500": ("upstream_error", "upstream_error"),
    "json_503": ("upstream_error", "upstream_error"),
    "bad_request": ("upstream_error", "upstream_error"),
    "unauthorized": ("unauthorized", "unauthorized"),
    "not_found": ("not_found", "not_found"),
    "rate_limited": ("rate_limited", "rate_limited"),
    "malformed": ("invalid_response", "invalid_response"),
    "empty": ("invalid_response", "invalid_response"),
    "partial": ("invalid_response", "invalid_response"),
    "nulls": (None, None),
    "no_temperature": ("invalid_response", "invalid_response"),
    "error_in_body": ("not_found", "upstream_error"),  # OWM's {"cod":"404"}; Open-Meteo's error
    "oversize": ("too_large", "too_large"),
    "oversize_chunked": ("too_large", "too_large"),
}
SLOW_FAULTS = {"hang", "trickle", "trickle_headers"}
PATHS = {"openweathermap": "/data/2.5/weather", "open_meteo": "/v1/forecast"}


def config(url: str, dead_port: int) -> str:
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', timeout: {DEADLINE:.0f}s"
    meteo = f"provider: open_meteo, api_key: {METEO_KEY}, timeout: {DEADLINE:.0f}s"
    modules = []
    for name, settings in (("openweathermap", owm), ("open_meteo", meteo)):
        where = f"base_url: '{url}'"
        if name == "open_meteo":
            where += f", geocoding_url: '{url}'"
        modules.append(f"  {name}_cached: {{{settings}, {where}}}")
        modules.append(f"  {name}_nocache: {{{settings}, {where}, cache_ttl: 0}}")
        modules.append(
            f"  {name}_refused: {{{settings}, base_url: 'http://127.0.0.1:{dead_port}'}}"
        )
    return "modules:\n" + "\n".join(modules) + "\n"


@pytest.fixture(scope="module")
def matrix(exporter_factory, fake_upstream):
    return exporter_factory(
        config(fake_upstream.url, exporter_factory.dead_port), args=["--log.level", "debug"]
    )


def timed_probe(exporter, target: str, module: str) -> tuple[dict[str, float], float, str]:
    started = time.perf_counter()
    response = exporter.probe(target, module=module)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return samples(response.text), elapsed, response.text


@pytest.mark.parametrize("cache", ["cached", "nocache"])
@pytest.mark.parametrize("provider", ["openweathermap", "open_meteo"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault(matrix, fake_upstream, fault, provider, cache):
    reason = FAULTS[fault][provider == "open_meteo"]
    module = f"{provider}_{cache}"
    point = unique_point()
    # A trickle sends a byte every 0.3 s; a hang holds until the fake stops.
    options = {"delay": 0.3} if fault.startswith(("trickle", "slow")) else {}
    fake_upstream.fault(fault, point, path=PATHS[provider], times=1, **options)
    metrics, elapsed, text = timed_probe(matrix, point, module)
    assert elapsed < DEADLINE + SLACK, (fault, elapsed)
    if reason is None:
        assert metrics["probe_success"] == 1, text
        assert "weather_temperature_celsius" in metrics
    else:
        assert metrics["probe_success"] == 0, text
        assert metrics[f'probe_failure_info{{reason="{reason}"}}'] == 1, text
        assert "weather_" not in text
    if fault in SLOW_FAULTS:
        assert elapsed >= DEADLINE * 0.9, (fault, elapsed)  # cut at the deadline, not before
        assert metrics["probe_duration_seconds"] == pytest.approx(DEADLINE, abs=0.3)
    # The fault is gone: the next probe of the same place.
    after, elapsed, text = timed_probe(matrix, point, module)
    assert elapsed < DEADLINE, elapsed
    if reason == "not_found" and cache == "cached":
        # An unknown place is remembered for a minute, by design (README, "The cache").
        assert after['probe_failure_info{reason="not_found"}'] == 1
        assert after["probe_cache_hit"] == 1
    else:
        assert after["probe_success"] == 1, (fault, text)
        # A failure is never cached: the next probe fetched again, unless it had a reading.
        assert after["probe_cache_hit"] == (1 if reason is None and cache == "cached" else 0)


@pytest.mark.parametrize("provider", ["openweathermap", "open_meteo"])
def test_refused_connection(matrix, provider):
    metrics, elapsed, _ = timed_probe(matrix, unique_point(), f"{provider}_refused")
    assert metrics['probe_failure_info{reason="connection_error"}'] == 1
    assert elapsed < DEADLINE


def test_no_key_anywhere_after_the_matrix(matrix, fake_upstream):
    """Runs after the matrix in this module: everything it produced, searched for both keys."""
    for fault in FAULTS:
        for provider in PATHS:
            point = unique_point()
            options = {"delay": 0.1} if fault.startswith(("trickle", "slow")) else {}
            fake_upstream.fault(fault, point, path=PATHS[provider], times=1, **options)
            matrix.get(
                "/probe", params={"target": point, "module": f"{provider}_nocache", "debug": "true"}
            )
    for provider in PATHS:
        matrix.get(
            "/probe", params={"target": "London", "module": f"{provider}_refused", "debug": "true"}
        )
    landing = matrix.get("/").text
    assert 'href="logs?id=' in landing
    for probe_id in range(1, 300):
        matrix.get("/logs", params={"id": str(probe_id)})
    matrix.get("/config")
    matrix.get("/metrics")
    assert len(matrix.responses) > 300
    for response in matrix.responses:
        for key in (OWM_KEY, METEO_KEY):
            assert key not in response.text, response.url
            assert key not in str(response.headers)
    log = matrix.log_text()
    assert "appid=<secret>" in log and "apikey=<secret>" in log  # the URLs were logged, masked
    assert OWM_KEY not in log and METEO_KEY not in log
