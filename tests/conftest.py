"""Real processes for integration tests: the fake upstream and the exporter under gunicorn.

Both listen on port 0 of 127.0.0.1 and report the port the kernel gave them,
so tests never guess a free port and never touch anything but loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis
import requests

from multitarget_exporter.runtime.logs import BatchingStreamHandler

ROOT = Path(__file__).resolve().parent.parent
# Real upstream answers others recorded and published, read where they are kept (beside
# the checkout) and never copied into it; their SOURCES.md says whose they are.
RECORDED = ROOT.parent / "shared" / "realdata" / "recorded"


FIXTURES = ROOT / "tests" / "fixtures"
# Said by every test that needs them, where they are not (a clone away from ../shared);
# .ci/run refuses to run without them, so there the tests never skip.
NO_RECORDINGS = f"the recorded upstream answers are not beside the checkout ({RECORDED})"


def recordings() -> Path:
    """The folder of recorded answers; the test is skipped, saying why, where there is none."""
    if not RECORDED.is_dir():
        pytest.skip(NO_RECORDINGS)
    return RECORDED


def recorded(name: str):
    """One recorded answer, decoded; the test is skipped, saying why, where there are none."""
    path = recordings() / name
    assert path.is_file(), f"{path} is missing from the recordings"
    return json.loads(path.read_text("utf-8"))


def met_example() -> dict:
    """MET Norway's Locationforecast 2.0 `complete` answer as its documentation shows it."""
    path = FIXTURES / "met_norway" / "locationforecast_complete.json"
    return json.loads(path.read_text("utf-8"))


# Recognisable, so a leak anywhere is found by a plain substring search.
OWM_KEY = "IT-owm-KEY-3f9c2a7b51e8d640"
_LISTENING = re.compile(r"Listening at: (https?)://([\d.]+):(\d+)")


class FakeUpstream:
    """Client for the fake upstream's control API."""

    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url = url
        self.process = process
        # One keep-alive connection for control calls, so they do not move the
        # fake's connection count that tests read.
        self.control = requests.Session()
        self.injected: list[str] = []  # the faults added since `after_faults` last ran

    def fault(self, fault: str, match: str = "*", **options) -> None:
        self.injected.append(fault)
        response = self.control.post(
            f"{self.url}/_fake/faults", json={"fault": fault, "match": match, **options}, timeout=5
        )
        response.raise_for_status()

    def clear_faults(self) -> None:
        self.control.delete(f"{self.url}/_fake/faults", timeout=5).raise_for_status()

    def summary(self) -> dict:
        return self.control.get(f"{self.url}/_fake/requests", timeout=5).json()

    def met(self, **settings: float) -> dict:
        """MET Norway's `expires_seconds` and `update_seconds`, changed first if given
        (`/_fake/reset` restores those the fake started with)."""
        if settings:
            response = self.control.post(f"{self.url}/_fake/met", json=settings, timeout=5)
        else:
            response = self.control.get(f"{self.url}/_fake/met", timeout=5)
        response.raise_for_status()
        return response.json()

    def requests_naming(self, subject: str) -> list[dict]:
        """The upstream requests whose q, id, zip or lat,lon was `subject`."""
        found = []
        for entry in self.summary()["requests"]:
            query = entry["query"]
            named = [query.get(k) for k in ("q", "id", "zip", "name")]
            named.append(f"{query.get('lat')},{query.get('lon')}")
            if subject in named:
                found.append(entry)
        return found


def after_faults(fake_upstream: FakeUpstream, exporter: Exporter, calls: list[tuple[str, str]]):
    """Leave an exporter shared by a module's tests as a fresh one would be after a test
    that injected faults: a 429's `Retry-After` (the tests ask for 1 s) waited out, and a
    successful call per (target, module) in `calls`, one per provider and host the faults
    touched, so its breaker's count of failures running starts again from zero."""
    if not fake_upstream.injected:
        return
    fake_upstream.clear_faults()
    if "rate_limited" in fake_upstream.injected:
        time.sleep(1.1)
    fake_upstream.injected = []
    for target, module in calls:
        response = exporter.probe(target, module=module)
        assert "probe_success 1" in response.text, response.text


def free_port() -> int:
    """A port with nothing listening (for `connection refused`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_listening(process: subprocess.Popen, log_path: Path, timeout: float = 30) -> str:
    """The URL gunicorn reports in its log, once it accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text("utf-8", "replace") if log_path.exists() else ""
        match = _LISTENING.search(text)
        if match:
            return f"{match[1]}://{match[2]}:{match[3]}"
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening:\n{text}")
        time.sleep(0.05)
    raise RuntimeError(f"not listening after {timeout}s:\n{log_path.read_text()}")


class Exporter:
    """One exporter process; every response it gave is kept for leak scans."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        verify: str | bool = True,
        auth: tuple[str, str] | None = None,
        cert: tuple[str, str] | None = None,
    ) -> None:
        self.log_path = log_path
        self.responses: list[requests.Response] = []
        self._log = log_path.open("wb")
        self.session = requests.Session()
        self.session.verify = verify
        self.session.auth = auth
        self.session.cert = cert
        self.process = subprocess.Popen(
            list(command), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self.url = wait_for_listening(self.process, log_path)
            self._wait_ready()
        except Exception:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                ready = requests.get(
                    f"{self.url}/-/ready",
                    timeout=2,
                    verify=self.session.verify,
                    auth=self.session.auth,
                    cert=self.session.cert,
                )
                if ready.status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("never ready")

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        # requests prefers REQUESTS_CA_BUNDLE to the session's own setting: be explicit.
        kwargs.setdefault("verify", self.session.verify)
        response = self.session.request(method, f"{self.url}{path}", **kwargs)
        self.responses.append(response)
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def probe(self, target: str, module: str | None = None, **kwargs) -> requests.Response:
        params = {"target": target}
        if module:
            params["module"] = module
        return self.get("/probe", params=params, **kwargs)

    def log_text(self) -> str:
        # The exporter writes its log lines in batches, within 50 ms of each line.
        time.sleep(BatchingStreamHandler.FLUSH_SECONDS * 4)
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text("utf-8", "replace")

    def stop(self) -> int:
        # Our idle keep-alive connections would hold a gevent worker's graceful exit until
        # their keepalive runs out (about 10 s a stop). Closing the session alone leaves
        # them open (the kept responses still refer to their sockets): shut them down.
        for adapter in self.session.adapters.values():
            pools = adapter.poolmanager.pools  # type: ignore[attr-defined]
            for pool in (pools[key] for key in pools.keys()):  # noqa: SIM118 - no __iter__
                while not pool.pool.empty():
                    connection = pool.pool.get_nowait()
                    if connection is not None and connection.sock is not None:
                        with contextlib.suppress(OSError):
                            connection.sock.shutdown(socket.SHUT_RDWR)
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def users_gunicorn(*options: str, worker_class: str | None = "gthread") -> list[str]:
    """The command a user runs to serve the app from their own gunicorn (None: the worker
    class their configuration file picks)."""
    chosen = ["--worker-class", worker_class] if worker_class else []
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "multitarget_exporter.wsgi:create_app()",
        "--bind",
        "127.0.0.1:0",
        *chosen,
        "--no-control-socket",
        *options,
    ]


def exporter_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OWM_", "MULTITARGET_"))}
    env.update({"IT_OWM_KEY": OWM_KEY, "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def standard_config(fake_url: str, dead_port: int) -> str:
    """The modules the integration tests probe."""
    return f"""
modules:
  default:
    provider: openweathermap
    api_key: ${{IT_OWM_KEY}}
    base_url: {fake_url}
    timeout: 3s
  quick:
    provider: openweathermap
    api_key: ${{IT_OWM_KEY}}
    base_url: {fake_url}
    timeout: 1s
  wrong_key:
    provider: openweathermap
    api_key: not-the-right-key
    base_url: {fake_url}
    timeout: 3s
  refused:
    provider: openweathermap
    api_key: ${{IT_OWM_KEY}}
    base_url: http://127.0.0.1:{dead_port}
    timeout: 2s
  german:
    provider: openweathermap
    api_key: ${{IT_OWM_KEY}}
    base_url: {fake_url}
    language: de
  nocache:
    provider: openweathermap
    api_key: ${{IT_OWM_KEY}}
    base_url: {fake_url}
    cache_ttl: 0s
  europe:
    provider: openweathermap
    api_key: ${{IT_OWM_KEY}}
    base_url: {fake_url}
    allowed_targets: ['[^,]+,(GB|DE|CH)', 'id:2950159']
"""


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fake_upstream",
            "--port",
            "0",
            "--api-key",
            OWM_KEY,
            "--hang-seconds",
            "20",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,  # the fake lives in the checkout, not in the installed package
    )
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"fake upstream did not start: {line!r}")
    yield FakeUpstream(line.split()[-1], process)
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def exporter_factory(fake_upstream, tmp_path_factory):
    """Start exporters with a config text and flags; all are stopped at module end."""
    started: list[Exporter] = []
    directory = tmp_path_factory.mktemp("exporter")

    def start(
        config: str | None = None,
        args: Sequence[str] = (),
        env: dict | None = None,
        command: Sequence[str] | None = None,
        **client,
    ) -> Exporter:
        index = len(started)
        argv = list(
            command
            or [sys.executable, "-m", "multitarget_exporter", "--web.listen-address", "127.0.0.1:0"]
        )
        if config is not None:
            path = directory / f"config-{index}.yml"
            path.write_text(config)
            argv += ["--config.file", str(path)]
        exporter = Exporter(
            [*argv, *args], env or exporter_env(), directory / f"log-{index}.txt", **client
        )
        started.append(exporter)
        return exporter

    start.dead_port = free_port()
    yield start
    for exporter in started:
        exporter.stop()


@pytest.fixture(scope="module")
def exporter(exporter_factory, fake_upstream) -> Exporter:
    """The standard exporter: one gunicorn worker, the modules of `standard_config`."""
    return exporter_factory(standard_config(fake_upstream.url, exporter_factory.dead_port))


def samples(text: str) -> dict[str, float]:
    """Exposition text as {'name{label="v",...}': value}, labels sorted, for plain asserts."""
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def unique(prefix: str = "Place") -> str:
    """A place name nobody knows (not_found unless a fault rule answers for it), so
    fault rules and counts cannot cross tests."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def unique_point() -> str:
    """Coordinates in the open South Pacific, far from every known place: always a reading."""
    bits = uuid.uuid4().int
    # Decimals end in 1: the exporter sends repr(float), which drops trailing zeros,
    # and fault rules and request counts match the value as sent.
    return f"-{30 + bits % 30}.{bits % 997:03d}1,-{100 + bits % 50}.{bits % 991:03d}1"


def promtool_check(text: str) -> subprocess.CompletedProcess:
    """`promtool check metrics` on an exposition."""
    return subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free loopback port, for this test only."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (.ci/run installs it)"
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield process, f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)
