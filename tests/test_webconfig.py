"""--web.config.file: TLS, basic auth, rate limit and headers, as exporter-toolkit defines them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import bcrypt
import pytest
import requests

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.web import load_web_config
from tests.conftest import exporter_env, samples, standard_config

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made by the test."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def password_hash():
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()


def web_config(tmp_path, text: str) -> str:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return str(path)


def problems_of(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_web_config(web_config(tmp_path, text), str(tmp_path))
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("basic_auth: {a: b}", "web config: web config.basic_auth: unknown key"),
        ("basic_auth_users: {alice: plaintext}", "basic_auth_users.alice: must be a bcrypt hash"),
        ("basic_auth_users: [alice]", "basic_auth_users: must be a mapping"),
        (
            "http_server_config: {headers: {X-Powered-By: me}}",
            "http_server_config.headers.X-Powered-By: not one of",
        ),
        (
            "http_server_config: {headers: {X-Frame-Options: allow}}",
            "http_server_config.headers.X-Frame-Options: 'allow' is not one of deny, sameorigin",
        ),
        ("http_server_config: {http2: maybe}", "http_server_config.http2: must be true or false"),
        ("rate_limit: {interval: fast, burst: 1}", "rate_limit.interval: 'fast' is not"),
        ("rate_limit: {interval: 1s, burst: 0}", "rate_limit.burst: must be at least 1"),
        ("rate_limit: {interval: 1s, burst: -2}", "rate_limit.burst: must be a whole number"),
        (
            "tls_server_config: {cert_file: /nonexistent/cert.pem, key_file: /nonexistent/k.pem}",
            "tls_server_config.cert_file: cannot read '/nonexistent/cert.pem'",
        ),
        ("tls_server_config: {min_version: TLS12}", "tls_server_config: needs a certificate"),
        (
            "tls_server_config: {cipher_suites: [TLS_AES_128_GCM_SHA256]}",
            "tls_server_config.cipher_suites: not supported by this exporter",
        ),
        (
            "tls_server_config: {client_allowed_sans: [a.example]}",
            "tls_server_config.client_allowed_sans: not supported",
        ),
        (
            "tls_server_config: {client_auth_type: RequireAnyClientCert}",
            "tls_server_config.client_auth_type: 'RequireAnyClientCert' is not one of",
        ),
        (
            "tls_server_config: {client_auth_type: RequireAndVerifyClientCert}",
            "tls_server_config.client_auth_type: RequireAndVerifyClientCert needs client_ca_file",
        ),
        (
            "tls_server_config: {min_version: TLS13, max_version: TLS12}",
            "tls_server_config: min_version is above max_version",
        ),
        ("tls_server_config: {min_version: SSL3}", "tls_server_config.min_version: 'SSL3' is not"),
        ("[1, 2]", "web config: must be a mapping"),
    ],
)
def test_validation_errors(tmp_path, text, problem):
    problems = problems_of(tmp_path, text)
    assert any(p.startswith(f"web config: {problem}") or p.startswith(problem) for p in problems), (
        problems
    )


def test_an_empty_file_is_no_protection_at_all(tmp_path):
    config = load_web_config(web_config(tmp_path, ""), str(tmp_path))
    assert config.tls is None and not config.users and config.rate_interval_seconds == 0


def test_basic_auth_rate_limit_and_headers(
    exporter_factory, fake_upstream, tmp_path, password_hash
):
    path = web_config(
        tmp_path,
        f"""
basic_auth_users:
  alice: '{password_hash}'
http_server_config:
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=60
""",
    )
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--web.config.file", path],
        auth=("alice", PASSWORD),
    )
    ok = exporter.probe("Berlin")
    assert samples(ok.text)["probe_success"] == 1
    assert ok.headers["X-Frame-Options"] == "deny"
    assert ok.headers["Strict-Transport-Security"] == "max-age=60"
    for auth in (None, ("alice", "wrong"), ("mallory", PASSWORD), ("alice", "")):
        for path_ in ("/probe?target=Berlin", "/metrics", "/", "/-/healthy", "/config"):
            refused = requests.get(f"{exporter.url}{path_}", auth=auth, timeout=10)
            assert refused.status_code == 401, (auth, path_)
            assert refused.headers["WWW-Authenticate"].startswith('Basic realm="')
            assert refused.headers["X-Frame-Options"] == "deny"
            assert "probe_success" not in refused.text
    garbage = requests.get(
        f"{exporter.url}/", timeout=10, headers={"Authorization": "Basic !!!not-base64"}
    )
    assert garbage.status_code == 401
    assert requests.post(f"{exporter.url}/-/reload", timeout=10).status_code == 401


def test_rate_limit(exporter_factory, fake_upstream, tmp_path):
    path = web_config(tmp_path, "rate_limit: {interval: 10s, burst: 3}\n")
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--web.config.file", path],
    )
    # The readiness check at start-up took one token.
    codes = [exporter.get("/-/healthy").status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]


@pytest.mark.parametrize("inline", [False, True])
def test_tls(exporter_factory, fake_upstream, tmp_path, certificate, password_hash, inline):
    cert, key = certificate
    if inline:
        indent = "\n    "
        tls = (
            f"  cert: |{indent}{indent.join(cert.read_text().splitlines())}\n"
            f"  key: |{indent}{indent.join(key.read_text().splitlines())}\n"
        )
    else:
        tls = f"  cert_file: {cert}\n  key_file: {key}\n"
    path = web_config(
        tmp_path,
        f"tls_server_config:\n{tls}  min_version: TLS12\n"
        f"basic_auth_users:\n  alice: '{password_hash}'\n",
    )
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--web.config.file", path],
        verify=str(cert),
        auth=("alice", PASSWORD),
    )
    assert exporter.url.startswith("https://127.0.0.1:")
    assert samples(exporter.probe("Tokyo").text)["probe_success"] == 1
    plain = exporter.url.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{plain}/-/healthy", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{exporter.url}/-/healthy", timeout=5)  # not trusted without the cert


def test_invalid_web_config_stops_startup(tmp_path):
    path = web_config(tmp_path, "basic_auth_users: {alice: hunter2}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "multitarget_exporter",
            "--web.config.file",
            path,
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=exporter_env(),
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "multitarget-exporter: config error: web config: "
        "basic_auth_users.alice: must be a bcrypt hash ($2y$...)"
    )


def test_web_config_is_reread_on_reload(exporter_factory, fake_upstream, tmp_path, password_hash):
    import signal
    import time

    path = web_config(tmp_path, f"basic_auth_users:\n  alice: '{password_hash}'\n")
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--web.config.file", path],
        auth=("alice", PASSWORD),
    )
    new_hash = bcrypt.hashpw(b"new password", bcrypt.gensalt(rounds=4)).decode()
    web_config(tmp_path, f"basic_auth_users:\n  alice: '{new_hash}'\n")
    exporter.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        fresh = requests.get(
            f"{exporter.url}/-/ready",
            auth=("alice", "new password"),
            timeout=5,
            headers={"Connection": "close"},
        )
        if fresh.status_code == 200:
            break
        time.sleep(0.1)
    assert fresh.status_code == 200
    old = requests.get(
        f"{exporter.url}/-/ready",
        auth=("alice", PASSWORD),
        timeout=5,
        headers={"Connection": "close"},
    )
    assert old.status_code == 401


def test_example_web_config_loads_and_its_documented_password_works(tmp_path):
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "web-config.yml"
    config = load_web_config(str(example), str(tmp_path))
    assert bcrypt.checkpw(b"change me", config.users["prometheus"])
    assert config.headers["X-Frame-Options"] == "deny"
    assert (config.rate_interval_seconds, config.rate_burst) == (0.1, 50)


def test_client_certificates_are_required_and_verified(
    exporter_factory, fake_upstream, tmp_path, certificate
):
    cert, key = certificate

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.pem"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
        "-days",
        "1",
        "-subj",
        "/CN=test clients CA",
    )
    client_key, client_csr, client_cert = (tmp_path / n for n in ("c.key", "c.csr", "c.pem"))
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(client_key),
        "-out",
        str(client_csr),
        "-subj",
        "/CN=prometheus",
    )
    openssl(
        "x509",
        "-req",
        "-in",
        str(client_csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(client_cert),
        "-days",
        "1",
    )
    stranger_key, stranger_cert = tmp_path / "s.key", tmp_path / "s.pem"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(stranger_key),
        "-out",
        str(stranger_cert),
        "-days",
        "1",
        "-subj",
        "/CN=stranger",
    )
    path = web_config(
        tmp_path,
        f"""
tls_server_config:
  cert_file: {cert}
  key_file: {key}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {ca_cert}
""",
    )
    client = (str(client_cert), str(client_key))
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--web.config.file", path],
        verify=str(cert),
        cert=client,
    )
    assert samples(exporter.probe("Sydney").text)["probe_success"] == 1
    for wrong in (None, (str(stranger_cert), str(stranger_key))):
        with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
            requests.get(f"{exporter.url}/-/healthy", verify=str(cert), cert=wrong, timeout=5)


def test_bcrypt_checks_do_not_stall_other_requests(exporter_factory, fake_upstream, tmp_path):
    """bcrypt's cost is deliberate; under gevent it must not stop the other connections."""
    from concurrent.futures import ThreadPoolExecutor

    costly = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=12)).decode()
    path = web_config(tmp_path, f"basic_auth_users:\n  alice: '{costly}'\n")
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--web.config.file", path],
        auth=("alice", PASSWORD),
    )
    assert exporter.get("/-/healthy").status_code == 200  # verified once, remembered since

    def guess(n: int) -> int:
        return requests.get(
            f"{exporter.url}/-/healthy", auth=("alice", f"guess {n}"), timeout=30
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        guesses = [pool.submit(guess, n) for n in range(16)]  # each a full bcrypt check
        time.sleep(0.3)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            fresh = requests.get(
                f"{exporter.url}/-/healthy",
                auth=("alice", PASSWORD),
                timeout=30,
                headers={"Connection": "close"},
            )
            timings.append(time.perf_counter() - started)
            assert fresh.status_code == 200
        still_guessing = not all(g.done() for g in guesses)
        assert [g.result() for g in guesses] == [401] * 16
    assert max(timings) < 0.5, timings
    assert still_guessing, "the checks above were not made while bcrypt ran"


def test_a_rotated_certificate_is_served_after_a_reload(tls_exporter):
    import ssl

    exporter = tls_exporter
    served_cert, served_key = exporter.served
    host, port = exporter.url.removeprefix("https://").split(":")
    before = ssl.get_server_certificate((host, int(port)))
    make_certificate(served_cert, served_key)
    assert exporter.request("POST", "/-/reload").status_code == 200
    for _ in range(6):  # every worker, at once
        after = ssl.get_server_certificate((host, int(port)))
        assert after != before
        assert after.strip() == served_cert.read_text().strip()
    # A worker started after the reload serves the new certificate too.
    pid = exporter.process.pid
    with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as handle:
        for worker in handle.read().split():
            os.kill(int(worker), signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            after = ssl.get_server_certificate((host, int(port)))
            break
        except OSError:
            time.sleep(0.2)
    assert after.strip() == served_cert.read_text().strip()


def make_certificate(cert, key) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def tls_exporter(exporter_factory, fake_upstream, tmp_path, certificate):
    cert, key = certificate
    served_cert, served_key = tmp_path / "served-cert.pem", tmp_path / "served-key.pem"
    served_cert.write_bytes(cert.read_bytes())
    served_key.write_bytes(key.read_bytes())
    path = web_config(
        tmp_path, f"tls_server_config:\n  cert_file: {served_cert}\n  key_file: {served_key}\n"
    )
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--web.config.file", path, "--workers", "2"],
        verify=str(cert),
    )
    exporter.served = (served_cert, served_key)
    return exporter


def test_a_stalled_tls_handshake_is_dropped(tls_exporter):
    import socket

    host, port = tls_exporter.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        started = time.monotonic()
        try:
            closed = sock.recv(1) == b""  # nothing sent: the server waits for a ClientHello
        except ConnectionResetError:
            closed = True
        elapsed = time.monotonic() - started
    assert closed and 9 <= elapsed <= 13, elapsed
    assert tls_exporter.get("/-/healthy").status_code == 200
    assert "Traceback" not in tls_exporter.log_text()


def test_a_certificate_that_does_not_match_its_key_is_refused_and_changes_nothing(
    tls_exporter, tmp_path
):
    import ssl

    served_cert, _ = tls_exporter.served
    host, port = tls_exporter.url.removeprefix("https://").split(":")
    before = ssl.get_server_certificate((host, int(port)))
    other_cert, other_key = tmp_path / "other-cert.pem", tmp_path / "other-key.pem"
    make_certificate(other_cert, other_key)
    served_cert.write_bytes(other_cert.read_bytes())  # a new certificate, the old key
    answer = tls_exporter.request("POST", "/-/reload")
    assert answer.status_code == 500 and "tls_server_config" in answer.text, answer.text
    for _ in range(6):
        assert ssl.get_server_certificate((host, int(port))) == before
        assert tls_exporter.get("/-/healthy").status_code == 200
