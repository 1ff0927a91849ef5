"""The command line, the embedded gunicorn, and the factory for a user's own gunicorn."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from multitarget_exporter import __version__
from multitarget_exporter.cli import gunicorn_bind
from tests.conftest import exporter_env, samples, standard_config, users_gunicorn

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

EXPORTER = [sys.executable, "-m", "multitarget_exporter"]


def run(args, **kwargs):
    return subprocess.run(
        [*EXPORTER, *args], capture_output=True, text=True, timeout=60, env=exporter_env(), **kwargs
    )


@pytest.mark.parametrize(
    ("address", "bind"),
    [
        (":9265", "0.0.0.0:9265"),
        ("127.0.0.1:9265", "127.0.0.1:9265"),
        ("[::1]:9265", "[::1]:9265"),
        ("localhost:80", "localhost:80"),
        ("127.0.0.1:0", "127.0.0.1:0"),
    ],
)
def test_listen_addresses(address, bind):
    assert gunicorn_bind(address) == bind


@pytest.mark.parametrize("address", ["9265", "host", ":99999", "a b:1", "http://x:1"])
def test_bad_listen_addresses(address):
    with pytest.raises(argparse.ArgumentTypeError):
        gunicorn_bind(address)


def test_version():
    result = run(["--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"multitarget_exporter {__version__}"


def test_invalid_config_stops_startup_with_one_line_per_problem(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("modules:\n  default:\n    provider: nope\n    timeout: forever\n")
    result = run(["--config.file", str(path), "--web.listen-address", "127.0.0.1:0"])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "multitarget-exporter: config error: modules.default.provider: "
        "'nope' is not one of bright_sky, met_norway, nws, open_meteo, openweathermap",
        "multitarget-exporter: config error: modules.default.timeout: "
        "'forever' is not a duration like 500ms, 10s, 10m or 1h",
    ]


def test_missing_config_file(tmp_path):
    result = run(["--config.file", str(tmp_path / "absent.yml")])
    assert result.returncode == 1
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "0"],
        ["--threads", "-1"],
        ["--log.level", "loud"],
        ["--timeout-offset", "x"],
        ["--web.listen-address", "nowhere"],
        ["--no-such-flag"],
    ],
)
def test_bad_flags(args):
    result = run(args)
    assert result.returncode == 2
    assert "usage: multitarget-exporter" in result.stderr


def test_builtin_modules_without_a_config_file(exporter_factory):
    exporter = exporter_factory(None, env=exporter_env(OWM_API_KEY="builtin-key-value"))
    page = exporter.get("/").text
    assert "openweathermap" in page and "default" in page
    assert "source=built-in" in exporter.log_text()
    assert "default_provider=openweathermap" in exporter.log_text()
    # No probe: the built-in modules talk to the real API, which tests never contact.


def test_builtin_without_a_key_serves_open_meteo_and_says_so(exporter_factory):
    exporter = exporter_factory(None)
    log = exporter.log_text()
    assert "default_provider=open_meteo" in log
    assert "no OWM_API_KEY: module default uses open_meteo" in log
    assert exporter.get("/-/healthy").status_code == 200
    config = exporter.get("/config").text
    assert "provider: open_meteo" in config and "geocoding-api.open-meteo.com" in config


def test_json_logs(exporter_factory, fake_upstream):
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--log.format", "json"],
    )
    exporter.probe("Berlin")
    import json

    lines = [json.loads(line) for line in exporter.log_text().splitlines() if line.startswith("{")]
    probes = [line for line in lines if line.get("msg") == "probe finished"]
    assert probes and probes[-1]["target"] == "Berlin" and probes[-1]["outcome"] == "success"


def test_several_workers_serve_probes(exporter_factory, fake_upstream):
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--workers", "2", "--threads", "4"],
    )
    for _ in range(6):
        assert samples(exporter.probe("Berlin").text)["probe_success"] == 1


def test_app_under_a_users_own_gunicorn(exporter_factory, fake_upstream, tmp_path):
    config = tmp_path / "exporter.yml"
    config.write_text(standard_config(fake_upstream.url, exporter_factory.dead_port))
    command = users_gunicorn("--threads", "8")
    env = exporter_env(MULTITARGET_EXPORTER_CONFIG=str(config))
    exporter = exporter_factory(None, env=env, command=command)
    metrics = samples(exporter.probe("Reykjavik", module="quick").text)
    assert metrics["probe_success"] == 1
    assert metrics["weather_wind_gust_meters_per_second"] == pytest.approx(25.2)
    assert "probe finished" in exporter.log_text()


@pytest.mark.parametrize(
    ("worker_class", "announced"), [("gevent", "worker_connections=4096"), ("gthread", "threads=8")]
)
def test_both_worker_classes_serve(exporter_factory, fake_upstream, worker_class, announced):
    args = ["--worker-class", worker_class]
    if worker_class == "gthread":
        args += ["--threads", "8"]
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port), args=args
    )
    assert samples(exporter.probe("Berlin").text)["probe_success"] == 1
    log = exporter.log_text()
    assert f"Using worker: {worker_class}" in log
    assert f"worker_class={worker_class} {announced}" in log


def test_gevent_is_the_default_worker(exporter_factory, fake_upstream):
    exporter = exporter_factory(standard_config(fake_upstream.url, exporter_factory.dead_port))
    assert "Using worker: gevent" in exporter.log_text()
