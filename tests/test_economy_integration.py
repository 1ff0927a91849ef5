"""The upstream economy through the real exporter: daily budget, Retry-After, the breaker.

Each test starts its own exporter under gunicorn against the fake upstream
(a provider's hold or open breaker covers every module of an exporter that
asks that host), counts what reached the fake, and checks what the probes
answered meanwhile. The rules' arithmetic, over a compressed day with an
injected clock, is in tests/test_gate.py.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from multitarget_exporter.upstream.gate import allowance
from tests.conftest import promtool_check, samples, unique_point

# Starts real servers (gunicorn, Redis, the fake upstream): left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def owm(fake_url: str, extra: str = "") -> str:
    return (
        f"{{provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{fake_url}', "
        f"timeout: 2s{extra}}}"
    )


def weather_calls(fake_upstream, since: float) -> list[dict]:
    return [
        entry
        for entry in fake_upstream.summary()["requests"]
        if entry["path"] == "/data/2.5/weather" and entry["time"] >= since
    ]


def probe(exporter, target: str, module: str, fresh_connection: bool = False):
    """One probe's samples; a fresh connection lets either worker answer."""
    if fresh_connection:
        response = requests.get(
            f"{exporter.url}/probe", params={"target": target, "module": module}, timeout=10
        )
    else:
        response = exporter.probe(target, module=module)
    assert response.status_code == 200, response.text
    checked = promtool_check(response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return samples(response.text), response


def failure_reason(found: dict[str, float]) -> str:
    [name] = [k for k in found if k.startswith("probe_failure_info{")]
    return name.split('reason="')[1].split('"')[0]


def test_a_module_spends_no_more_than_its_paced_budget(exporter_factory, fake_upstream):
    """Every probe a new point, so every probe would call: the module calls as often as
    the budget allows at this hour of the UTC day, then answers `rate_limited` with no
    call, and /metrics shows the refusals and what is left."""
    budget = 40
    config = (
        "modules:\n"
        f"  paced: {owm(fake_upstream.url, f', daily_budget: {budget}')}\n"
        f"  free: {owm(fake_upstream.url)}\n"
    )
    exporter = exporter_factory(config)
    started = time.time()
    allowed = allowance(budget, started)
    assert allowed >= 4  # a tenth of the budget at least, whatever the hour
    outcomes = [probe(exporter, unique_point(), "paced")[0] for _ in range(allowed + 5)]
    assert [o["probe_success"] for o in outcomes[:allowed]] == [1.0] * allowed
    for refused in outcomes[allowed:]:
        assert refused["probe_success"] == 0
        assert failure_reason(refused) == "rate_limited"
        assert "weather_temperature_celsius" not in refused
    assert len(weather_calls(fake_upstream, started)) == allowed
    # Another module of the same exporter has its own allowance (none).
    assert probe(exporter, unique_point(), "free")[0]["probe_success"] == 1
    metrics = samples(exporter.get("/metrics").text)
    remaining = 'multitarget_exporter_upstream_budget_remaining_calls{module="paced"}'
    assert metrics[remaining] == budget - allowed
    assert metrics['multitarget_exporter_budget_refusals_total{module="paced"}'] == 5
    log = exporter.log_text()
    assert log.count("daily budget") >= 5
    assert "Traceback" not in log


def test_a_refused_refresh_answers_stale_then_the_fallback(exporter_factory, fake_upstream):
    """Past its allowance a module answers with its kept reading (`probe_stale 1`), and a
    place with none goes to the fallback, which has budget of its own."""
    budget = 40
    keep = ", cache_ttl: 1s, stale_if_error: 1h, fallback: spare"
    config = (
        "modules:\n"
        f"  kept: {owm(fake_upstream.url, f', daily_budget: {budget}{keep}')}\n"
        f"  spare: {owm(fake_upstream.url)}\n"
    )
    exporter = exporter_factory(config)
    known = unique_point()
    assert probe(exporter, known, "kept")[0]["probe_success"] == 1
    for _ in range(allowance(budget, time.time())):  # spend the rest on other places
        probe(exporter, unique_point(), "kept")
    time.sleep(1.2)  # past cache_ttl: a refresh is due, and refused
    started = time.time()
    found, _ = probe(exporter, known, "kept")
    assert found["probe_success"] == 1 and found["probe_stale"] == 1
    assert "weather_temperature_celsius" in found
    assert weather_calls(fake_upstream, started) == []
    elsewhere, _ = probe(exporter, unique_point(), "kept")
    assert elsewhere["probe_success"] == 1 and elsewhere["probe_fallback"] == 1
    assert len(weather_calls(fake_upstream, started)) == 1  # the fallback's own call


def test_retry_after_stops_every_worker_calling_until_then(
    exporter_factory, fake_upstream, redis_server
):
    """A 429 with `Retry-After: 5`: no call to the provider for 5 s from either of two
    workers sharing Redis, probes answering `rate_limited` at once; then calls resume."""
    cache = f"cache: {{backend: redis, url: '{redis_server[1]}'}}\n"
    config = f"modules:\n  held: {owm(fake_upstream.url, ', cache_ttl: 0s')}\n{cache}"
    exporter = exporter_factory(config, args=["--workers", "2"])
    first = unique_point()
    fake_upstream.fault("rate_limited", first, path="/data/2.5/weather", times=1, retry_after="5")
    started = time.time()
    found, _ = probe(exporter, first, "held")
    assert failure_reason(found) == "rate_limited"
    held_from = time.time()
    quick = []
    while time.time() < held_from + 4.0:
        began = time.monotonic()
        found, _ = probe(exporter, unique_point(), "held", fresh_connection=True)
        quick.append(time.monotonic() - began)
        assert found["probe_success"] == 0 and failure_reason(found) == "rate_limited"
        time.sleep(0.1)
    assert len(quick) >= 20
    assert max(quick) < 1.0
    assert len(weather_calls(fake_upstream, started)) == 1  # the 429 alone
    time.sleep(max(started + 5.5 - time.time(), 0))
    found, _ = probe(exporter, unique_point(), "held", fresh_connection=True)
    assert found["probe_success"] == 1
    assert len(weather_calls(fake_upstream, started)) == 2
    assert "Traceback" not in exporter.log_text()


@pytest.mark.parametrize("header", ["", "-3", "tomorrow", "0"])
def test_a_useless_retry_after_holds_nothing(exporter_factory, fake_upstream, header):
    """Missing, negative, unreadable or zero: the next probe calls again."""
    config = f"modules:\n  m: {owm(fake_upstream.url, ', cache_ttl: 0s')}\n"
    exporter = exporter_factory(config)
    point = unique_point()
    fake_upstream.fault(
        "rate_limited", point, path="/data/2.5/weather", times=1, retry_after=header
    )
    started = time.time()
    assert failure_reason(probe(exporter, point, "m")[0]) == "rate_limited"
    assert probe(exporter, point, "m")[0]["probe_success"] == 1
    assert len(weather_calls(fake_upstream, started)) == 2


def test_a_dead_upstream_costs_five_calls_while_scrapes_answer_at_once(
    exporter_factory, fake_upstream
):
    """Connections reset on every call: after 5, no more calls; probes answer in well
    under a second with the last failure's reason, and /metrics shows the breaker open."""
    config = f"modules:\n  m: {owm(fake_upstream.url, ', cache_ttl: 0s')}\n"
    exporter = exporter_factory(config)
    fake_upstream.fault("reset", "*", path="/data/2.5/weather")
    try:
        started = time.time()
        answers = []
        for _ in range(30):
            began = time.monotonic()
            found, _ = probe(exporter, unique_point(), "m")
            answers.append((time.monotonic() - began, failure_reason(found)))
        assert len(weather_calls(fake_upstream, started)) == 5
        assert all(reason == "connection_error" for _, reason in answers)
        assert max(seconds for seconds, _ in answers[5:]) < 1.0
        metrics = samples(exporter.get("/metrics").text)
        assert metrics['multitarget_exporter_upstream_open{provider="openweathermap"}'] == 1
        assert "no call for" in exporter.log_text()
    finally:
        fake_upstream.clear_faults()


def test_a_budget_shared_through_redis_survives_a_redis_restart(
    exporter_factory, fake_upstream, redis_server, tmp_path
):
    """Redis goes away and comes back on the same port: probes keep answering (the budget
    counts in each process meanwhile), nothing crashes, and the count is shared again."""
    process, url = redis_server
    port = url.rsplit(":", 1)[1].split("/")[0]
    cache = f"cache: {{backend: redis, url: '{url}'}}\n"
    budget = ", daily_budget: 100000, cache_ttl: 0s"
    config = f"modules:\n  shared: {owm(fake_upstream.url, budget)}\n{cache}"
    exporter = exporter_factory(config, args=["--workers", "2"])
    for _ in range(3):
        assert probe(exporter, unique_point(), "shared")[0]["probe_success"] == 1
    process.terminate()
    process.wait(10)
    for _ in range(6):
        found, _ = probe(exporter, unique_point(), "shared", fresh_connection=True)
        assert found["probe_success"] == 1
    restarted = subprocess.Popen(
        ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        import redis

        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        time.sleep(5.5)  # the exporter leaves Redis alone 5 s after an error
        for _ in range(4):
            found, _ = probe(exporter, unique_point(), "shared", fresh_connection=True)
            assert found["probe_success"] == 1
        counted = [key for key in client.keys("*") if b"budget|shared|" in key]
        assert counted, client.keys("*")
        assert 1 <= int(client.get(counted[0])) <= 4
        metrics = samples(exporter.get("/metrics").text)
        assert 'multitarget_exporter_upstream_budget_remaining_calls{module="shared"}' in metrics
        assert "Traceback" not in exporter.log_text()
    finally:
        restarted.terminate()
        restarted.wait(10)


def test_a_compressed_day_against_the_fake_spends_the_budget_evenly(fake_upstream):
    """The module's real provider and gate, the clock moved a minute a probe over one UTC
    day of 1,440 probes that would each call: the fake sees at most the budget, and hour
    by hour the same pace after the tenth spent at midnight."""
    from multitarget_exporter.config.modules import parse_config
    from multitarget_exporter.model.targets import parse_target
    from multitarget_exporter.probing.probe import run_probe
    from multitarget_exporter.providers.registry import PROVIDERS
    from multitarget_exporter.runtime.probelog import ProbeLog
    from multitarget_exporter.upstream.gate import Gate
    from multitarget_exporter.upstream.tallies import MemoryTallies
    from tests.conftest import OWM_KEY

    budget, midnight = 96, 1_796_342_400.0
    document = {
        "modules": {
            "day": {
                "provider": "openweathermap",
                "api_key": OWM_KEY,
                "base_url": fake_upstream.url,
                "daily_budget": budget,
                "cache_ttl": "0s",
            }
        }
    }
    module = parse_config(document).modules["day"]
    now = [midnight]
    gate = Gate("day", budget, MemoryTallies(), clock=lambda: now[0])
    provider = PROVIDERS["openweathermap"](module, None, gate)
    point = unique_point()
    started = time.time()
    by_hour = [0] * 24
    for minute in range(1440):
        now[0] = midnight + minute * 60.0
        result, _ = run_probe(module, provider, parse_target(point), 2.0, ProbeLog())
        if result.failure is None:
            by_hour[minute // 60] += 1
        else:
            assert result.failure.reason.value == "rate_limited"
            assert "daily budget" in result.failure.detail
    calls = len(weather_calls(fake_upstream, started))
    assert calls == sum(by_hour)
    assert budget - 1 <= calls <= budget
    pace = budget * 0.9 / 24
    assert budget // 10 <= by_hour[0] <= budget // 10 + pace + 1
    assert all(pace - 1 <= hour <= pace + 1 for hour in by_hour[1:]), by_hour
