"""HTTP to an upstream API under a whole-probe deadline and a body size cap.

Through urllib3's pools (the transport `requests` itself uses): one pool
manager per provider and process, connections kept alive and reused. The
profile of a cache-miss probe showed `requests`' own layer (settings merged,
the environment scanned for proxies, the URL parsed and quoted twice, cookie
jars) costing about a third of the probe; nothing here needs it.

A socket timeout bounds each socket operation, not the answer: headers or
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
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from multitarget_exporter import __version__
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.reading import Failure, FailureReason
from multitarget_exporter.runtime import offload, selfmetrics
from multitarget_exporter.runtime.perprocess import PerProcess, forked_since
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.runtime.redact import redact
from multitarget_exporter.upstream.gate import Gate, key_id

MAX_BODY_BYTES = 1 << 20
_READ_SIZE = 64 * 1024
USER_AGENT = f"multitarget_exporter/{__version__}"


# Response headers an exchange keeps (lower case): HTTP caching and the body's type.
KEPT_HEADERS = ("expires", "last-modified", "content-type", "retry-after")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One upstream request's outcome: a complete body, or a failure. Status 0: none came."""

    status_code: int
    body: bytes = b""
    failure: Failure | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # KEPT_HEADERS, as sent


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
        self._running = False

    def watch(self, at: float, sock: socket.socket) -> int:
        with self._condition:
            if not self._running:
                self._running = True
                offload.start_background(self._run, "deadline-watchdog")
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
        pid = os.getpid()
        with self._condition:
            while not forked_since(pid):
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


class _ProcessState:
    """What one process's exchanges share: the watchdog, the running request's deadline
    and watchdog ticket (a thread-local, so a greenlet-local under gevent), and the
    connection pools.

    Made on first use in each process, never at import: a module imported by a
    master before it forks and patches must not hand its workers a real
    thread's lock or local, which every greenlet would share."""

    def __init__(self) -> None:
        self.watchdog = _Watchdog()
        self.exchange = threading.local()
        self.managers: dict[tuple[str, str], urllib3.PoolManager] = {}
        self.managers_lock = threading.Lock()


_state = PerProcess(_ProcessState)


def _process() -> _ProcessState:
    return _state.get()


class _WatchedConnectionMixin:
    """Puts the socket under the watchdog before the answer's headers are read."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        state = _process()
        deadline = getattr(state.exchange, "deadline", None)
        if deadline is not None and self.sock is not None:
            state.exchange.ticket = state.watchdog.watch(deadline.at, self.sock)
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


_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}


def _ca_bundle() -> str | None:
    """The CA bundle the environment names (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, as requests
    reads them); None: the system's store. Upstream certificates are always verified."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


@functools.lru_cache(maxsize=64)
def _proxy_for(scheme: str, host: str) -> str:
    """The environment's proxy for an upstream host (HTTPS_PROXY, NO_PROXY, ...), read once;
    "" for none. Targets never choose the host, so the configured few are all there are."""
    proxies = urllib.request.getproxies_environment()
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009 - not in typeshed
    if not proxies or bypass(host, proxies):
        return ""
    return proxies.get(scheme) or proxies.get("all") or ""


def pool_for(name: str, scheme: str, host: str, pool_size: int = 64) -> urllib3.PoolManager:
    """The process's pool manager for one provider and proxy."""
    proxy = _proxy_for(scheme, host)
    state = _process()
    manager = state.managers.get((name, proxy))
    if manager is not None:
        return manager
    with state.managers_lock:
        manager = state.managers.get((name, proxy))
        if manager is None:
            if proxy:
                manager = urllib3.ProxyManager(
                    proxy, num_pools=4, maxsize=pool_size, retries=False, headers=_HEADERS,
                    cert_reqs="CERT_REQUIRED", ca_certs=_ca_bundle(),
                )  # fmt: skip
            else:
                manager = urllib3.PoolManager(
                    num_pools=4, maxsize=pool_size, retries=False, headers=_HEADERS,
                    cert_reqs="CERT_REQUIRED", ca_certs=_ca_bundle(),
                )  # fmt: skip
            manager.pool_classes_by_scheme = _WATCHED_POOLS
            state.managers[(name, proxy)] = manager
        return manager


def _set_socket_timeout(response: urllib3.BaseHTTPResponse, seconds: float) -> None:
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _read_body(response: urllib3.BaseHTTPResponse, deadline: Deadline) -> bytes | Failure:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return Failure(FailureReason.TOO_LARGE, f"Content-Length {declared} over {MAX_BODY_BYTES}")
    raw = response
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
    timeouts = (urllib3.exceptions.TimeoutError, TimeoutError)
    # Past the deadline, a cut connection is the watchdog's work: a timeout.
    detail = redact(f"{type(error).__name__}: {error}", secrets)
    # urllib3 files a refused or unresolvable connection under its connect
    # timeouts (NewConnectionError subclasses ConnectTimeoutError): not a timeout.
    refused = isinstance(error, urllib3.exceptions.NewConnectionError)
    if isinstance(error, timeouts) and not (refused and deadline.remaining() > 0):
        return Failure(FailureReason.TIMEOUT, detail)
    if deadline.remaining() <= 0:
        return Failure(FailureReason.TIMEOUT, f"deadline passed, connection cut ({detail})")
    return Failure(FailureReason.CONNECTION_ERROR, detail)


def get(
    name: str,
    url: str,
    params: Mapping[str, str],
    deadline: Deadline,
    secrets: tuple[str, ...] = (),
    log: ProbeLog | None = None,
    headers: Mapping[str, str] | None = None,
) -> Exchange:
    """GET `url` with `params` (always query values, never part of host or path), and
    `headers` besides the pool's own."""
    remaining = deadline.remaining()
    if remaining <= 0:
        failure = Failure(FailureReason.TIMEOUT, "no time left before the request")
        return Exchange(0, failure=failure)
    # Every value quoted: what a target holds stays inside its query value.
    joiner = "&" if "?" in url else "?"
    full_url = f"{url}{joiner}{urllib.parse.urlencode(params)}" if params else url
    if log is not None:
        log.debug(
            "requesting upstream",
            url=redact(full_url, secrets),
            timeout_seconds=round(remaining, 3),
        )
    started = time.perf_counter()
    state = _process()
    running = state.exchange
    running.deadline, running.ticket = deadline, None
    try:
        exchange = _exchange_within(name, full_url, deadline, remaining, secrets, state, headers)
        if log is not None:
            outcome: dict[str, Any] = {
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
        if running.ticket is not None:
            state.watchdog.unwatch(running.ticket)
        running.deadline = running.ticket = None


def _exchange_within(
    name: str,
    url: str,
    deadline: Deadline,
    remaining: float,
    secrets: tuple[str, ...],
    state: _ProcessState,
    headers: Mapping[str, str] | None = None,
) -> Exchange:
    errors = (urllib3.exceptions.HTTPError, OSError, ValueError)
    parts = urllib.parse.urlsplit(url)
    try:
        response = pool_for(name, parts.scheme, parts.netloc).request(
            "GET",
            url,
            headers={**_HEADERS, **headers} if headers else None,
            timeout=urllib3.Timeout(connect=remaining, read=remaining),
            preload_content=False,
            redirect=False,  # an upstream's answer is its own: never somewhere else's
        )
    except errors as error:
        return Exchange(0, failure=_failure_from_exception(error, deadline, secrets))
    try:
        body = _read_body(response, deadline)
    except errors as error:
        body = _failure_from_exception(error, deadline, secrets)
    kept = {key: response.headers[key] for key in KEPT_HEADERS if key in response.headers}
    if isinstance(body, Failure):
        response.close()  # a half-read connection cannot go back to the pool
        return Exchange(response.status, failure=body, headers=kept)
    running = state.exchange
    if running.ticket is not None:  # out of the watchdog's reach before it is pooled
        state.watchdog.unwatch(running.ticket)
        running.ticket = None
    response.release_conn()  # read to the end: the connection is reusable
    return Exchange(response.status, body=body, headers=kept)


class Upstream:
    """One provider's way out: its pooled session, its secrets, its request metrics, and
    the module's gate (budget, Retry-After, breaker) every call passes."""

    def __init__(
        self, provider: str, secrets: tuple[str, ...] = (), gate: Gate | None = None
    ) -> None:
        self.provider = provider
        self.secrets = secrets
        self.gate = gate
        self._key = key_id(secrets)

    def admit(self, endpoint: str, url: str, log: ProbeLog | None = None) -> Exchange | None:
        """Pass the gate for one call to `url`: None when it may go out (counted against
        the budget, so `get(..., admitted=True)` must follow), else the refusal as a
        failed exchange, without a call."""
        return self._refusal(endpoint, urllib.parse.urlsplit(url).netloc, log)

    def _refusal(self, endpoint: str, host: str, log: ProbeLog | None) -> Exchange | None:
        if self.gate is None:
            return None
        refusal = self.gate.before(self.provider, host, self._key)
        if refusal is None:
            return None
        if log is not None:
            log.info("upstream call refused", endpoint=endpoint, why=refusal.detail)
        return Exchange(0, failure=refusal)

    def get(
        self,
        endpoint: str,
        url: str,
        params: Mapping[str, str],
        deadline: Deadline,
        log: ProbeLog | None = None,
        headers: Mapping[str, str] | None = None,
        admitted: bool = False,
    ) -> Exchange:
        """GET under the deadline, counted as `endpoint` in the exporter's metrics; a
        refusal of the gate as a failure, without a call (`admitted`: `admit` let this
        call through already)."""
        host = urllib.parse.urlsplit(url).netloc
        if not admitted:
            refused = self._refusal(endpoint, host, log)
            if refused is not None:
                return refused
        gate = self.gate
        started = time.perf_counter()
        exchange = get(self.provider, url, params, deadline, self.secrets, log, headers)
        if gate is not None:
            retry_after = exchange.headers.get("retry-after", "")
            gate.after(
                self.provider, host, self._key, exchange.status_code, exchange.failure, retry_after
            )
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
