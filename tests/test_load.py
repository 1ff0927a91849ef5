"""Under load: isolation from a stuck upstream, bounded memory, graceful shutdown.

Each runs the real CLI (embedded gunicorn, default worker and thread model)
against the fake upstream over loopback.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import samples, unique, unique_point

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def config(url: str, max_entries: int = 10000) -> str:
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{url}'"
    return f"""
modules:
  default: {{{owm}, timeout: 5s}}
  stuck: {{{owm}, timeout: 4s, cache_ttl: 0}}
cache:
  max_entries: {max_entries}
"""


def fresh_get(url: str, **params) -> tuple[requests.Response, float]:
    """A GET on a new connection (as a new scrape would), and how long it took."""
    started = time.perf_counter()
    response = requests.get(url, params=params, timeout=30, headers={"Connection": "close"})
    return response, time.perf_counter() - started


def test_a_stuck_upstream_does_not_hold_up_healthy_places(exporter_factory, fake_upstream):
    exporter = exporter_factory(config(fake_upstream.url))  # default --workers and --threads
    stuck = [unique("stuck") for _ in range(64)]  # twice the old default of 32 threads
    for place in stuck:
        fake_upstream.fault("hang", place)
    exporter.probe("London,GB")  # cached before the storm
    with ThreadPoolExecutor(len(stuck)) as pool:
        hanging = [
            pool.submit(fresh_get, f"{exporter.url}/probe", target=p, module="stuck") for p in stuck
        ]
        time.sleep(1.0)  # every stuck probe is now waiting on the upstream
        assert not any(f.done() for f in hanging)
        timings = []
        for target in ["London,GB", "Berlin,DE", "Tokyo,JP", "London,GB", "Dubai"]:
            response, elapsed = fresh_get(f"{exporter.url}/probe", target=target)
            assert samples(response.text)["probe_success"] == 1
            timings.append(elapsed)
        health, elapsed_health = fresh_get(f"{exporter.url}/-/healthy")
        metrics, elapsed_metrics = fresh_get(f"{exporter.url}/metrics")
        assert health.status_code == 200 and metrics.status_code == 200
        assert max([*timings, elapsed_health, elapsed_metrics]) < 0.5, timings
        results = [f.result() for f in hanging]
    for response, elapsed in results:
        assert samples(response.text)['probe_failure_info{reason="timeout"}'] == 1
        assert 3.5 < elapsed < 5.0, elapsed


def rss(exporter) -> float:
    return samples(exporter.get("/metrics").text)["process_resident_memory_bytes"]


def test_memory_stays_bounded_over_many_places(exporter_factory, fake_upstream):
    """10,000 distinct places through a cache of 500: the resident size levels off.

    (bench/soak.py runs longer, with more places, and reports the same figures.)
    """
    exporter = exporter_factory(config(fake_upstream.url, max_entries=500))
    session = requests.Session()

    def probe(_):
        response = session.get(
            f"{exporter.url}/probe", params={"target": unique_point()}, timeout=30
        )
        assert response.status_code == 200

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(probe, range(2000)))  # warm: the cache fills, pools and arenas settle
        warm = rss(exporter)
        list(pool.map(probe, range(8000)))
    after = rss(exporter)
    metrics = samples(exporter.get("/metrics").text)
    assert metrics["multitarget_exporter_cache_entries"] == 500
    assert metrics['multitarget_exporter_cache_requests_total{result="miss"}'] >= 10000
    growth = after - warm
    # 8,000 more readings kept would be several MB; a bounded cache holds the line.
    assert growth < 4 * 1024 * 1024, f"grew {growth / 1e6:.1f} MB over 8,000 more places"


def test_sigterm_lets_probes_in_flight_finish(exporter_factory, fake_upstream):
    exporter = exporter_factory(config(fake_upstream.url))
    places = [unique_point() for _ in range(6)]
    for place in places:
        fake_upstream.fault("slow", place, delay=1.5)
    with ThreadPoolExecutor(len(places)) as pool:
        flying = [
            pool.submit(fresh_get, f"{exporter.url}/probe", target=p, module="stuck")
            for p in places
        ]
        time.sleep(0.5)
        exporter.process.send_signal(signal.SIGTERM)
        results = [f.result() for f in flying]
    for response, elapsed in results:
        assert response.status_code == 200
        assert samples(response.text)["probe_success"] == 1  # finished, not cut
        assert elapsed >= 1.4
    assert exporter.process.wait(15) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{exporter.url}/-/healthy", timeout=2)
    assert "probe finished" in exporter.log_text()
