"""Long blocking calls, kept off gevent's event loop.

Under gevent every connection of a worker shares one OS thread. A call that
blocks in C without going through a patched socket (bcrypt's deliberate
cost, a SQLite write, a write to a full pipe) stops every other connection
for as long as it runs. `blocking` runs such a call on gevent's pool of real
threads and lets the loop serve the others meanwhile; without gevent it is
a plain call. What it runs must not touch the exporter's locks or loggers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from multitarget_exporter.runtime.perprocess import PerProcess

T = TypeVar("T")


def gevent_patched() -> bool:
    """Whether this process runs on gevent's monkey-patched standard library."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def blocking(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, on a real thread when an event loop would otherwise stall."""
    if not gevent_patched():
        return function(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(function, args)


def start_background(target: Callable[[], Any], name: str) -> None:
    """Run `target` beside the requests: a daemon thread, or under gevent a plain
    greenlet. For work that lives as long as the process, and for a probe's calls made
    side by side (each ends with the probe's deadline).

    A greenlet, because gevent's greenlets live on in a forked child, and a
    patched `threading.Thread` that ends there fails on bookkeeping the fork
    reset. Targets end by themselves when they find they were inherited
    through a fork.
    """
    if gevent_patched():
        import gevent

        gevent.spawn(target).name = name
    else:
        import threading

        threading.Thread(target=target, name=name, daemon=True).start()


class Busy(Exception):
    """A lane's threads and queue are full: the call was refused, not run."""


class Lane:
    """A few real threads of their own for one kind of long call, with a bounded queue.

    A flood of such calls (bcrypt checks of guessed passwords) then waits for
    these threads alone, and past `waiting` callers is refused at once, so it
    cannot take the threads that log and history writes need. Without gevent
    the call runs in the caller's thread, as `blocking` does.
    """

    def __init__(self, threads: int, waiting: int) -> None:
        self._bound = threads + waiting
        self._state = PerProcess(lambda: _LaneState(threads))  # a child makes its own threads

    def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on this lane; Busy if the lane is full."""
        if not gevent_patched():
            return function(*args)
        state = self._state.get()
        if state.busy >= self._bound:  # one OS thread runs every greenlet: no lock needed
            raise Busy
        state.busy += 1
        try:
            return state.pool.apply(function, args)
        finally:
            state.busy -= 1


class _LaneState:
    def __init__(self, threads: int) -> None:
        from gevent.threadpool import ThreadPool

        self.pool = ThreadPool(threads)
        self.busy = 0
