"""HTTP to an upstream API under a whole-probe deadline and a body size cap.

A `requests` timeout bounds each socket operation, not the answer: a body that
trickles in a byte at a time would never trip it. So the body is read here with
`read1`, the socket's timeout shrunk to what is left of the deadline before
every read, and the total checked against the cap as it grows.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from multitarget_exporter import __version__
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
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            session.headers["Accept"] = "application/json"
            _sessions[name] = session
        return session


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


def _failure_from_exception(error: Exception, secrets: tuple[str, ...]) -> Failure:
    timeouts = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    reason = (
        FailureReason.TIMEOUT if isinstance(error, timeouts) else FailureReason.CONNECTION_ERROR
    )
    return Failure(reason, redact(f"{type(error).__name__}: {error}", secrets))


def get(
    session: requests.Session,
    url: str,
    params: Mapping[str, str],
    deadline: Deadline,
    secrets: tuple[str, ...] = (),
) -> Exchange:
    """GET `url` with `params` (always query values, never part of host or path)."""
    remaining = deadline.remaining()
    if remaining <= 0:
        return Exchange(
            0, failure=Failure(FailureReason.TIMEOUT, "no time left before the request")
        )
    try:
        response = session.get(url, params=params, timeout=(remaining, remaining), stream=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        return Exchange(0, failure=_failure_from_exception(error, secrets))
    try:
        body = _read_body(response, deadline)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        body = _failure_from_exception(error, secrets)
    if isinstance(body, Failure):
        response.close()  # a half-read connection cannot go back to the pool
        return Exchange(response.status_code, failure=body)
    response.raw.release_conn()  # read to the end: the connection is reusable
    return Exchange(response.status_code, body=body)


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
