"""Several gunicorn workers: /metrics adds every worker up, on every request."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import exporter_env, samples, standard_config, users_gunicorn

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parent.parent / "examples" / "gunicorn.conf.py"
PROBES = 'multitarget_exporter_probes_total{module="nocache",result="success"}'
CALLS = (
    "multitarget_exporter_upstream_requests_total"
    '{code="200",endpoint="weather",provider="openweathermap"}'
)


def fresh_metrics(exporter) -> dict[str, float]:
    """/metrics on a new connection, so successive reads reach different workers."""
    response = requests.get(f"{exporter.url}/metrics", timeout=10, headers={"Connection": "close"})
    return samples(response.text)


def spread_probes(exporter, count: int) -> None:
    for _ in range(count):
        response = requests.get(
            f"{exporter.url}/probe",
            timeout=10,
            params={"target": "Berlin", "module": "nocache"},
            headers={"Connection": "close"},
        )
        assert samples(response.text)["probe_success"] == 1


def assert_totals_everywhere(exporter, before: dict[str, float], count: int) -> None:
    for _ in range(12):
        now = fresh_metrics(exporter)
        assert now[PROBES] - before.get(PROBES, 0) == count
        assert now[CALLS] - before.get(CALLS, 0) == count
        assert now['multitarget_exporter_build_info{version="0.1.0"}'] == 1
        assert now["multitarget_exporter_config_last_reload_successful"] == 1


def test_three_workers_add_up_on_every_request(exporter_factory, fake_upstream):
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--workers", "3", "--threads", "4"],
    )
    before = fresh_metrics(exporter)
    spread_probes(exporter, 12)
    assert_totals_everywhere(exporter, before, 12)
    # Counters outlive the workers a reload replaces.
    assert exporter.request("POST", "/-/reload").status_code == 200
    time.sleep(2)
    spread_probes(exporter, 3)
    assert_totals_everywhere(exporter, before, 15)


def test_the_example_gunicorn_conf_adds_up_too(exporter_factory, fake_upstream, tmp_path):
    config = tmp_path / "exporter.yml"
    config.write_text(standard_config(fake_upstream.url, exporter_factory.dead_port))
    env = exporter_env(MULTITARGET_EXPORTER_CONFIG=str(config))
    command = users_gunicorn("-c", str(EXAMPLE), "--workers", "3", worker_class=None)
    exporter = exporter_factory(None, env=env, command=command)
    before = fresh_metrics(exporter)
    spread_probes(exporter, 9)
    assert_totals_everywhere(exporter, before, 9)
    # The history is shared too: the latest Berlin probe is found by any worker.
    for _ in range(6):
        found = requests.get(
            f"{exporter.url}/logs",
            timeout=10,
            headers={"Connection": "close"},
            params={"target": "Berlin", "module": "nocache"},
        )
        assert found.status_code == 200


def test_the_example_gunicorn_conf_keeps_a_given_state_directory(
    exporter_factory, fake_upstream, tmp_path
):
    config = tmp_path / "exporter.yml"
    config.write_text(standard_config(fake_upstream.url, exporter_factory.dead_port))
    state = tmp_path / "state"
    (state / "metrics").mkdir(parents=True)
    # Left by an earlier run that was killed: must not be added to this run's counters.
    stale = state / "metrics" / "counter_999999.db"
    stale.write_bytes(b"stale")
    env = exporter_env(
        MULTITARGET_EXPORTER_CONFIG=str(config), MULTITARGET_EXPORTER_STATE_DIR=str(state)
    )
    command = users_gunicorn("-c", str(EXAMPLE), "--workers", "2", worker_class=None)
    exporter = exporter_factory(None, env=env, command=command)
    assert not stale.exists()
    spread_probes(exporter, 2)
    assert fresh_metrics(exporter)[PROBES] == 2
    assert "logger=gunicorn.error" in exporter.log_text()  # gunicorn's lines in our format
    assert exporter.stop() == 0
    assert state.is_dir() and (state / "history.sqlite").exists()  # yours: kept
    assert list((state / "metrics").iterdir()) == []


def test_the_example_gunicorn_conf_serves_gevent_and_reloads_in_place(
    exporter_factory, fake_upstream, tmp_path
):
    config = tmp_path / "exporter.yml"
    config.write_text(standard_config(fake_upstream.url, exporter_factory.dead_port))
    env = exporter_env(MULTITARGET_EXPORTER_CONFIG=str(config))
    command = users_gunicorn("-c", str(EXAMPLE), "--workers", "3", worker_class=None)
    exporter = exporter_factory(None, env=env, command=command)
    assert "Using worker: gevent" in exporter.log_text()
    extra = "  later:\n    provider: open_meteo\n    base_url: " + fake_upstream.url + "\n"
    config.write_text(config.read_text() + extra)
    assert exporter.request("POST", "/-/reload").status_code == 200
    assert_every_worker_serves_later(exporter)  # the moment the reload answered
    # SIGHUP with a broken file: gunicorn restarts the workers, on the last good file.
    config.write_text("modules: [broken")
    exporter.process.send_signal(signal.SIGHUP)
    time.sleep(3)
    assert exporter.process.poll() is None
    assert_every_worker_serves_later(exporter)
    assert "is not valid YAML" in exporter.log_text()


def assert_every_worker_serves_later(exporter) -> None:
    for _ in range(9):  # fresh connections, spread over the workers
        answer = requests.get(
            f"{exporter.url}/probe",
            params={"target": "52.52,13.41", "module": "later"},
            timeout=10,
            headers={"Connection": "close"},
        )
        assert answer.status_code == 200, answer.text
