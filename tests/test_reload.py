"""Live reload: by HTTP and by SIGHUP, good and bad files, under several workers."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest
import requests
import yaml

from tests.conftest import exporter_env, samples, users_gunicorn

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


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


def every_worker_now(exporter, check, tries: int = 12) -> None:
    """`check` holds on `tries` fresh connections in a row, with no waiting in between."""
    for attempt in range(tries):
        assert check(), f"not in force on fresh connection {attempt + 1}"


def test_reload_by_http_reaches_every_worker(workers3, fake_upstream):
    before = reload_metrics(workers3)
    assert before["multitarget_exporter_config_last_reload_successful"] == 1
    workers3.config_path.write_text(config_text(fake_upstream.url, "added"))
    time.sleep(1.1)  # the success timestamp has a resolution to beat
    kept_alive = requests.Session()
    assert kept_alive.get(f"{workers3.url}/-/healthy", timeout=10).status_code == 200
    response = workers3.request("POST", "/-/reload")
    assert (response.status_code, response.text) == (200, "OK\n")
    # In force when it answered: every worker, kept-alive connections included.
    every_worker_now(workers3, lambda: modules_served(workers3) == {"default", "added"})
    probe = kept_alive.get(
        f"{workers3.url}/probe", params={"target": "Berlin", "module": "added"}, timeout=10
    )
    assert samples(probe.text)["probe_success"] == 1
    after = reload_metrics(workers3)
    assert after["multitarget_exporter_config_last_reload_successful"] == 1
    stamp = "multitarget_exporter_config_last_reload_success_timestamp_seconds"
    assert after[stamp] > before[stamp]


def test_a_reload_is_in_force_the_moment_it_answers(workers3, fake_upstream):
    """Many reloads in a row, each probed on fresh connections with no pause after the 200."""
    for round_ in range(15):
        name = f"round{round_}"
        workers3.config_path.write_text(config_text(fake_upstream.url, name))
        response = requests.post(f"{workers3.url}/-/reload", timeout=15)
        assert response.status_code == 200, response.text
        for _ in range(4):
            probe = fresh_get(workers3, f"/probe?target=Berlin&module={name}")
            assert probe.status_code == 200, (round_, probe.text)


def test_a_refused_reload_changes_nothing_whatever_the_file_holds_later(workers3, fake_upstream):
    for round_ in range(8):
        workers3.config_path.write_text("modules: {default: {provider: nope}}")
        assert requests.post(f"{workers3.url}/-/reload", timeout=15).status_code == 500
        # A good file right after the refusal, and no reload: it must not go into force.
        workers3.config_path.write_text(config_text(fake_upstream.url, f"late{round_}"))
        time.sleep(0.3)
        every_worker_now(workers3, lambda: modules_served(workers3) == {"default"}, tries=6)


def test_concurrent_reloads_are_serialized_and_all_answered(workers3, fake_upstream):
    from concurrent.futures import ThreadPoolExecutor

    workers3.config_path.write_text(config_text(fake_upstream.url, "together"))
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda _: requests.post(f"{workers3.url}/-/reload", timeout=30), range(6))
        )
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    every_worker_now(workers3, lambda: modules_served(workers3) == {"default", "together"})


def test_a_replaced_worker_starts_from_the_last_reload_not_the_file(workers3, fake_upstream):
    workers3.config_path.write_text(config_text(fake_upstream.url, "reloaded"))
    assert workers3.request("POST", "/-/reload").status_code == 200
    workers3.config_path.write_text(config_text(fake_upstream.url, "never_reloaded"))
    pid = workers3.process.pid
    with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as handle:
        workers = handle.read().split()
    os.kill(int(workers[0]), signal.SIGKILL)  # gunicorn's master starts another
    time.sleep(2)
    every_worker_now(workers3, lambda: modules_served(workers3) == {"default", "reloaded"})


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
    # As by HTTP: a refused file stays refused, whatever is written there next.
    workers3.config_path.write_text(config_text(fake_upstream.url, "unsignalled"))
    time.sleep(1)
    every_worker_now(workers3, lambda: modules_served(workers3) == {"default", "by_signal"})


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


def test_config_check_checks_the_web_config_too(tmp_path):
    """The same problems start-up would refuse the web config for, and OK when it is good."""
    import subprocess

    def check(web_text: str) -> subprocess.CompletedProcess:
        web = tmp_path / "web.yml"
        web.write_text(web_text)
        command = [
            sys.executable, "-m", "multitarget_exporter", "--config.check",
            "--web.config.file", str(web),
        ]  # fmt: skip
        return subprocess.run(
            command, capture_output=True, text=True, env=exporter_env(), timeout=60
        )

    plain = check("basic_auth_users: {ops: plain-password}")
    assert plain.returncode == 1
    assert "basic_auth_users.ops: must be a bcrypt hash" in plain.stderr
    unknown = check("rate_limits: {interval: 1s}")
    assert unknown.returncode == 1 and "rate_limits" in unknown.stderr
    missing = check("tls_server_config: {cert_file: /nonexistent.pem, key_file: /nonexistent.key}")
    assert missing.returncode == 1 and "cannot read '/nonexistent.pem'" in missing.stderr
    good = check("basic_auth_users: {ops: $2y$10$" + "a" * 53 + "}")
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith("web.yml: OK")


def test_config_check_refuses_a_certificate_and_key_that_do_not_match(tmp_path):
    import subprocess

    def pair(name: str) -> tuple[str, str]:
        cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return str(cert), str(key)

    (cert, _), (_, other_key) = pair("one"), pair("two")
    web = tmp_path / "web.yml"
    command = [
        sys.executable, "-m", "multitarget_exporter", "--config.check", "--web.config.file",
        str(web),
    ]  # fmt: skip
    web.write_text(f"tls_server_config: {{cert_file: {cert}, key_file: {other_key}}}")
    done = subprocess.run(command, capture_output=True, text=True, env=exporter_env(), timeout=60)
    assert done.returncode == 1 and "web config: tls_server_config:" in done.stderr
    web.write_text(f"tls_server_config: {{cert_file: {cert}, key_file: {cert[:-4]}.key}}")
    matched = subprocess.run(
        command, capture_output=True, text=True, env=exporter_env(), timeout=60
    )
    assert matched.returncode == 0, matched.stderr
