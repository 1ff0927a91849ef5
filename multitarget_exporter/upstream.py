"""HTTP to an upstream API under a whole-probe deadline and a body size cap.

A `requests` timeout bounds each socket operation, not the answer: headers or
a body that trickle in a byte at a time would never trip it. So the body is
read here with `read1`, the socket's timeout shrunk to what is left of the
deadline before every read and the total checked against the cap as it grows;
and behind that, one watchdog thread per process shuts down the socket of any
exchange still running at its deadline, headers included.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from multitarget_exporter import __version__, selfmetrics
from multitarget_exporter.probelog import ProbeLog
from multitarget_exporter.reading import Failure, FailureReason
from multitarget_exporter.redact import redact

MAX_BODY_BYTES = 1 << 20
_READ_SIZE = 64 * 1024
USER_AGENT = f"multitarget_exporter/{__version__}"


class Deadline:
    """A point in monotonic time by which the whole probe must be done."""

    __slots__ = ("at",)

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True, slots=True)
class Exchange:
    """One upstream request's outcome: a complete body, or a failure. Status 0: none came."""

    status_code: int
    body: bytes = b""
    failure: Failure | None = None


class _Watchdog:
    """Shuts down the sockets of exchanges that outlive their deadline.

    A blocked `recv` wakes with an error when its socket is shut down, which
    nothing else can do for a peer that keeps sending a byte at a time.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._watched: set[int] = set()
        self._tickets = itertools.count()
        self._pid = -1

    def watch(self, at: float, sock: socket.socket) -> int:
        with self._condition:
            if self._pid != os.getpid():  # first use, or first use after a fork
                self._pid = os.getpid()
                self._heap.clear()
                self._watched.clear()
                threading.Thread(target=self._run, name="deadline-watchdog", daemon=True).start()
            ticket = next(self._tickets)
            heapq.heappush(self._heap, (at, ticket, sock))
            self._watched.add(ticket)
            if self._heap[0][1] == ticket:
                self._condition.notify()
            return ticket

    def unwatch(self, ticket: int) -> None:
        with self._condition:
            self._watched.discard(ticket)

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._heap and self._heap[0][1] not in self._watched:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._condition.wait()
                    continue
                at, ticket, sock = self._heap[0]
                delay = at - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._watched.discard(ticket)
                with contextlib.suppress(OSError):  # already closed: nothing to cut
                    sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()
_exchange = threading.local()  # the running request's deadline and watchdog ticket


class _WatchedConnectionMixin:
    """Puts the socket under the watchdog before the answer's headers are read."""

    sock: socket.socket | None

    def getresponse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        deadline = getattr(_exchange, "deadline", None)
        if deadline is not None and self.sock is not None:
            _exchange.ticket = _watchdog.watch(deadline.at, self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections the deadline watchdog can cut."""

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # type: ignore[no-untyped-def]
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


_sessions: dict[str, requests.Session] = {}
_sessions_pid = os.getpid()
_sessions_lock = threading.Lock()


def session_for(name: str, pool_size: int = 64) -> requests.Session:
    """The process's pooled session for one provider (rebuilt after a fork)."""
    global _sessions_pid
    session = _sessions.get(name)
    if session is not None and _sessions_pid == os.getpid():
        return session
    with _sessions_lock:
        if _sessions_pid != os.getpid():
            _sessions.clear()
            _sessions_pid = os.getpid()
        session = _sessions.get(name)
        if session is None:
            session = requests.Session()
            # requests reads proxy and CA settings from the environment on every
            # request (a scan of os.environ each time); they are read once here
            # instead, per upstream host in `_proxies_for`. No ~/.netrc either.
            session.trust_env = False
            session.verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
            adapter = _WatchedAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            session.headers["Accept"] = "application/json"
            _sessions[name] = session
        return session


@functools.lru_cache(maxsize=64)
def _proxies_for(scheme: str, host: str) -> dict[str, str]:
    """The environment's proxy for an upstream host (HTTPS_PROXY, NO_PROXY...), read once.

    Targets never choose the host, so the few configured ones are all there are.
    """
    return requests.utils.get_environ_proxies(f"{scheme}://{host}/")


def _set_socket_timeout(response: urllib3.BaseHTTPResponse, seconds: float) -> None:
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _read_body(response: requests.Response, deadline: Deadline) -> bytes | Failure:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return Failure(FailureReason.TOO_LARGE, f"Content-Length {declared} over {MAX_BODY_BYTES}")
    raw = response.raw
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            return Failure(FailureReason.TIMEOUT, f"deadline passed after {total} body bytes")
        _set_socket_timeout(raw, remaining)
        chunk = raw.read1(_READ_SIZE)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            return Failure(FailureReason.TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)


def _failure_from_exception(
    error: Exception, deadline: Deadline, secrets: tuple[str, ...]
) -> Failure:
    timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    # Past the deadline, a cut connection is the watchdog's work: a timeout.
    detail = redact(f"{type(error).__name__}: {error}", secrets)
    if isinstance(error, timeouts):
        return Failure(FailureReason.TIMEOUT, detail)
    if deadline.remaining() <= 0:
        return Failure(FailureReason.TIMEOUT, f"deadline passed, connection cut ({detail})")
    return Failure(FailureReason.CONNECTION_ERROR, detail)


def get(
    session: requests.Session,
    url: str,
    params: Mapping[str, str],
    deadline: Deadline,
    secrets: tuple[str, ...] = (),
    log: ProbeLog | None = None,
) -> Exchange:
    """GET `url` with `params` (always query values, never part of host or path)."""
    remaining = deadline.remaining()
    if remaining <= 0:
        failure = Failure(FailureReason.TIMEOUT, "no time left before the request")
        return Exchange(0, failure=failure)
    # The query is encoded here, once, as requests would (every value quoted):
    # handing requests a finished URL spares it the work on every call.
    joiner = "&" if "?" in url else "?"
    full_url = f"{url}{joiner}{urllib.parse.urlencode(params)}" if params else url
    if log is not None:
        log.debug(
            "requesting upstream",
            url=redact(full_url, secrets),
            timeout_seconds=round(remaining, 3),
        )
    started = time.perf_counter()
    _exchange.deadline, _exchange.ticket = deadline, None
    try:
        exchange = _exchange_within(session, full_url, deadline, remaining, secrets)
        if log is not None:
            outcome = {
                "status": exchange.status_code,
                "bytes": len(exchange.body),
                "seconds": round(time.perf_counter() - started, 6),
            }
            if exchange.failure is not None:
                outcome.update(reason=exchange.failure.reason.value, error=exchange.failure.detail)
            log.debug(
                "upstream answered" if exchange.status_code else "no upstream answer", **outcome
            )
        return exchange
    finally:
        if _exchange.ticket is not None:
            _watchdog.unwatch(_exchange.ticket)
        _exchange.deadline = _exchange.ticket = None


def _exchange_within(
    session: requests.Session,
    url: str,
    deadline: Deadline,
    remaining: float,
    secrets: tuple[str, ...],
) -> Exchange:
    errors = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
    parts = urllib.parse.urlsplit(url)
    proxies = _proxies_for(parts.scheme, parts.netloc)
    try:
        response = session.get(url, timeout=(remaining, remaining), stream=True, proxies=proxies)
    except errors as error:
        return Exchange(0, failure=_failure_from_exception(error, deadline, secrets))
    try:
        body = _read_body(response, deadline)
    except errors as error:
        body = _failure_from_exception(error, deadline, secrets)
    if isinstance(body, Failure):
        response.close()  # a half-read connection cannot go back to the pool
        return Exchange(response.status_code, failure=body)
    if _exchange.ticket is not None:  # out of the watchdog's reach before it is pooled
        _watchdog.unwatch(_exchange.ticket)
        _exchange.ticket = None
    response.raw.release_conn()  # read to the end: the connection is reusable
    return Exchange(response.status_code, body=body)


class Upstream:
    """One provider's way out: its pooled session, its secrets, its request metrics."""

    def __init__(self, provider: str, secrets: tuple[str, ...] = ()) -> None:
        self.provider = provider
        self.secrets = secrets

    def get(
        self,
        endpoint: str,
        url: str,
        params: Mapping[str, str],
        deadline: Deadline,
        log: ProbeLog | None = None,
    ) -> Exchange:
        """GET under the deadline, counted as `endpoint` in the exporter's metrics."""
        started = time.perf_counter()
        exchange = get(session_for(self.provider), url, params, deadline, self.secrets, log)
        code = (
            str(exchange.status_code)
            if exchange.status_code
            else (exchange.failure.reason.value if exchange.failure else "0")
        )
        selfmetrics.observe_upstream(self.provider, endpoint, code, time.perf_counter() - started)
        return exchange


def reason_for_status(status_code: int) -> FailureReason | None:
    """The failure an HTTP status means, the same for every provider; None for success."""
    if 200 <= status_code < 300:
        return None
    if status_code in (401, 403):
        return FailureReason.UNAUTHORIZED
    if status_code == 404:
        return FailureReason.NOT_FOUND
    if status_code == 429:
        return FailureReason.RATE_LIMITED
    return FailureReason.UPSTREAM_ERROR
