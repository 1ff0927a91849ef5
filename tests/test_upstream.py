"""The upstream transport: proxies from the environment, redirects, refused connections.

Against small real HTTP servers on loopback (the fault matrix covers every
fault the fake upstream injects; these are the transport's own choices).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.reading import FailureReason
from multitarget_exporter.upstream import client as upstream
from tests.conftest import free_port


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            body = b""
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            body = b'{"ok": true}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Recorder.seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy_memory(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        for variant in (name, name.lower()):
            monkeypatch.delenv(variant, raising=False)
    upstream._proxy_for.cache_clear()
    yield
    upstream._proxy_for.cache_clear()


def test_a_redirect_is_an_answer_not_a_second_request(server):
    url, seen = server
    exchange = upstream.get("test-redirect", f"{url}/moved", {"q": "x"}, Deadline(5))
    assert exchange.status_code == 302 and seen == ["/moved?q=x"]


def test_query_values_are_quoted_and_stay_values(server):
    url, seen = server
    exchange = upstream.get("test-quote", f"{url}/data", {"q": "a&b=c/../#x y"}, Deadline(5))
    assert exchange.status_code == 200 and exchange.body == b'{"ok": true}'
    assert seen == ["/data?q=a%26b%3Dc%2F..%2F%23x+y"]


def test_the_environments_proxy_is_used_and_no_proxy_is_honoured(server, monkeypatch):
    proxy, seen = server  # the recorder plays the proxy: it sees the absolute URL
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "direct.example")
    assert upstream._proxy_for("http", "api.example:80") == proxy
    assert upstream._proxy_for("http", "direct.example") == ""
    assert upstream._proxy_for("https", "api.example") == ""  # no HTTPS_PROXY set
    exchange = upstream.get("test-proxy", "http://api.example/data", {"q": "x"}, Deadline(5))
    assert exchange.status_code == 200
    assert seen == ["http://api.example/data?q=x"]


def test_a_refused_connection_is_a_connection_error_not_a_timeout():
    exchange = upstream.get("test-refused", f"http://127.0.0.1:{free_port()}/x", {}, Deadline(5))
    assert exchange.status_code == 0
    assert exchange.failure.reason is FailureReason.CONNECTION_ERROR
