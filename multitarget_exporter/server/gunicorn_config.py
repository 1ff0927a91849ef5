"""How gunicorn serves the exporter: its settings and hooks, defined once.

The embedded server (`server.py`) and `examples/gunicorn.conf.py` both take
their settings from here, so the two cannot drift apart.

The default worker is gevent's: every connection is a greenlet, not a
thread, so neither a client that trickles its request head nor a probe
waiting on a stuck upstream holds anything scarce. A thread pool is what
slow clients and hung upstreams used to exhaust; a pool of
`WORKER_CONNECTIONS` greenlets a worker is far larger than any scrape load
and cheap to keep (see docs/operations.md for the memory it costs).
"""

from __future__ import annotations

import logging
import resource
from typing import Any

from multitarget_exporter.runtime.offload import gevent_patched

# gevent's worker bounds the reading of each request head (and the wait for
# the next one on a kept-alive connection) by `keepalive`: a head not
# complete within it is dropped, so a trickling client cannot hold a
# connection open for longer.
KEEPALIVE_SECONDS = 10
# Connections one gevent worker serves at once; past it, new ones wait in
# the listen backlog. 1,000 hostile connections still leave room for scrapes.
WORKER_CONNECTIONS = 4096
# The longest a connection waits for its turn after each request (post_request).
YIELD_SECONDS = 0.05
# gthread only (a user's own gunicorn, or --worker-class gthread): threads a worker.
DEFAULT_THREADS = 128
WORKER_CLASSES = ("gevent", "gthread")
# A worker's own heartbeat; probes are bounded by their deadlines, not by this.
WORKER_TIMEOUT_SECONDS = 60
# A stopping worker lets the probes in flight finish: the longest module timeout
# allowed, and a little more. It stops sooner once they are done.
GRACEFUL_TIMEOUT_SECONDS = 305
# Per connection a worker may hold a client socket and an upstream one.
_FILES_PER_CONNECTION = 2
_SPARE_FILES = 256


def settings(
    worker_class: str = "gevent",
    workers: int = 1,
    threads: int = DEFAULT_THREADS,
    worker_connections: int = WORKER_CONNECTIONS,
) -> dict[str, Any]:
    """gunicorn settings for the exporter (a dict of gunicorn setting names)."""
    return {
        "workers": workers,
        "worker_class": worker_class,
        "threads": threads,
        "worker_connections": worker_connections,
        "timeout": WORKER_TIMEOUT_SECONDS,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "keepalive": KEEPALIVE_SECONDS,
        # Never recycle workers: that would empty the in-memory cache.
        "max_requests": 0,
        # The exporter logs one line per probe itself.
        "accesslog": None,
        "logger_class": "multitarget_exporter.server.gunicorn_logger.QuietAccessLogger",
        "proc_name": "multitarget_exporter",
        "forwarded_allow_ips": "127.0.0.1,::1",
        # gunicorn >= 25.1 opens a control socket in $HOME by default: one per
        # user, so a second exporter (or a test) would fight over it.
        "control_socket_disable": True,
        "post_request": post_request,
    }


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """After each request, let every other connection go first.

    gevent's worker serves a kept-alive connection's next request at once
    when its bytes are already there, without yielding: one busy client
    then holds the loop for as long as it keeps sending. Yielding with
    `gevent.sleep(0)` is not enough under load: the greenlets that yielded
    run again before the loop polls for I/O, so connections whose request
    just arrived wait behind them (a p99 of about 200 ms at 64 connections).
    `gevent.idle()` waits until the loop has nothing else to do, I/O
    included, so connections take turns (p99 about 30 ms, same throughput;
    docs/benchmarks.md). Never longer than `YIELD_SECONDS`: a loop that is
    never idle (a flood of other clients) must not hold a scrape's connection.
    """
    if gevent_patched():
        import gevent

        with gevent.Timeout(YIELD_SECONDS, False):
            gevent.idle()


def raise_open_file_limit(worker_connections: int) -> int:
    """Raise the soft limit on open files (each worker's own) as far as its connections
    need, up to the hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = worker_connections * _FILES_PER_CONNECTION + _SPARE_FILES
    log = logging.getLogger("multitarget_exporter")
    if hard != resource.RLIM_INFINITY and hard < wanted:
        log.warning(
            "the open-file limit caps the connections a worker can hold",
            extra={"fields": {"hard_limit": hard, "wanted": wanted}},
        )
        wanted = hard
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            log.warning(
                "could not raise the open-file limit",
                extra={"fields": {"soft": soft, "wanted": wanted}},
            )
    return soft
