"""Live reload: by HTTP and by SIGHUP, good and bad files, under several workers."""

from __future__ import annotations

import signal
import sys
import time

import pytest
import requests
import yaml

from tests.conftest import exporter_env, samples, users_gunicorn


def config_text(fake_url: str, extra_module: str | None = None) -> str:
    modules = {
        "default": {
            "provider": "openweathermap",
            "api_key": "${IT_OWM_KEY}",
            "base_url": fake_url,
            "timeout": "3s",
        }
    }
    if extra_module:
        modules[extra_module] = {
            "provider": "openweathermap",
            "api_key": "${IT_OWM_KEY}",
            "base_url": fake_url,
            "timeout": "2s",
        }
    return yaml.safe_dump({"modules": modules})


def fresh_get(exporter, path: str) -> requests.Response:
    """A request on a new connection, so successive ones reach different workers."""
    return requests.get(f"{exporter.url}{path}", timeout=10, headers={"Connection": "close"})


def wait_until_every_worker(exporter, check, tries_in_a_row: int = 12, timeout: float = 15):
    """Poll until `check` holds on `tries_in_a_row` consecutive fresh connections."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        streak = streak + 1 if check() else 0
        if streak >= tries_in_a_row:
            return
        time.sleep(0.05)
    raise AssertionError("not every worker got there in time")


def modules_served(exporter) -> set[str]:
    return set(yaml.safe_load(fresh_get(exporter, "/config").text)["modules"])


def reload_metrics(exporter) -> dict[str, float]:
    metrics = samples(fresh_get(exporter, "/metrics").text)
    return {k: v for k, v in metrics.items() if "config_last_reload" in k}


@pytest.fixture
def workers3(exporter_factory, fake_upstream, tmp_path):
    path = tmp_path / "exporter.yml"
    path.write_text(config_text(fake_upstream.url))
    exporter = exporter_factory(
        None, args=["--config.file", str(path), "--workers", "3", "--threads", "4"]
    )
    exporter.config_path = path
    return exporter


def test_reload_by_http_reaches_every_worker(workers3, fake_upstream):
    before = reload_metrics(workers3)
    assert before["multitarget_exporter_config_last_reload_successful"] == 1
    workers3.config_path.write_text(config_text(fake_upstream.url, "added"))
    time.sleep(1.1)  # the success timestamp has a resolution to beat
    response = workers3.request("POST", "/-/reload")
    assert (response.status_code, response.text) == (200, "OK\n")
    wait_until_every_worker(workers3, lambda: modules_served(workers3) == {"default", "added"})
    # A kept-alive connection to an old worker is served until that worker exits,
    # which gunicorn's gthread worker does within a second or two.
    wait_until_every_worker(
        workers3,
        lambda: workers3.probe("Berlin", module="added").status_code == 200,
        tries_in_a_row=3,
        timeout=5,
    )
    assert samples(workers3.probe("Berlin", module="added").text)["probe_success"] == 1
    after = reload_metrics(workers3)
    assert after["multitarget_exporter_config_last_reload_successful"] == 1
    stamp = "multitarget_exporter_config_last_reload_success_timestamp_seconds"
    assert after[stamp] > before[stamp]


def test_bad_file_by_http_keeps_the_old_configuration_everywhere(workers3):
    workers3.config_path.write_text("modules:\n  default:\n    provider: nope\n    timeot: 1s\n")
    response = workers3.request("POST", "/-/reload")
    assert response.status_code == 500
    assert "modules.default.provider: 'nope' is not one of" in response.text
    assert "modules.default.timeot: unknown key" in response.text
    assert response.text.count("\n") == 1
    key = "multitarget_exporter_config_last_reload_successful"
    wait_until_every_worker(workers3, lambda: reload_metrics(workers3)[key] == 0)
    assert modules_served(workers3) == {"default"}
    assert samples(workers3.probe("Berlin").text)["probe_success"] == 1
    assert "reload failed, configuration unchanged" in workers3.log_text()


def test_reload_by_sighup(workers3, fake_upstream):
    workers3.config_path.write_text(config_text(fake_upstream.url, "by_signal"))
    workers3.process.send_signal(signal.SIGHUP)
    wait_until_every_worker(workers3, lambda: "by_signal" in modules_served(workers3))
    workers3.config_path.write_text("modules: [broken")
    workers3.process.send_signal(signal.SIGHUP)
    key = "multitarget_exporter_config_last_reload_successful"
    wait_until_every_worker(workers3, lambda: reload_metrics(workers3)[key] == 0)
    assert "by_signal" in modules_served(workers3)
    assert "is not valid YAML" in workers3.log_text()


def test_reload_wants_post(workers3):
    assert workers3.get("/-/reload").status_code == 405


def test_reload_under_a_users_own_gunicorn(exporter_factory, fake_upstream, tmp_path):
    path = tmp_path / "users.yml"
    path.write_text(config_text(fake_upstream.url))
    command = users_gunicorn("--workers", "2")
    exporter = exporter_factory(
        None, command=command, env=exporter_env(MULTITARGET_EXPORTER_CONFIG=str(path))
    )
    path.write_text(config_text(fake_upstream.url, "theirs"))
    assert exporter.request("POST", "/-/reload").status_code == 200
    wait_until_every_worker(exporter, lambda: "theirs" in modules_served(exporter))
    # A broken file is refused, and must not take the user's gunicorn down with it.
    path.write_text("modules: {default: {provider: nope}}")
    assert exporter.request("POST", "/-/reload").status_code == 500
    time.sleep(1)
    assert exporter.process.poll() is None
    assert "theirs" in modules_served(exporter)


def test_config_check(tmp_path, fake_upstream):
    import subprocess

    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(config_text(fake_upstream.url))
    bad.write_text("modules: {default: {provider: nope}}")
    command = [sys.executable, "-m", "multitarget_exporter", "--config.check", "--config.file"]
    ok = subprocess.run(
        [*command, str(good)], capture_output=True, text=True, env=exporter_env(), timeout=60
    )
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": OK")
    failed = subprocess.run(
        [*command, str(bad)], capture_output=True, text=True, env=exporter_env(), timeout=60
    )
    assert failed.returncode == 1 and "'nope' is not one of" in failed.stderr
