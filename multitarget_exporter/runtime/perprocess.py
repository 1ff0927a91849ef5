"""The one way the exporter notices a fork: state that belongs to one process.

gunicorn forks its workers from a master that has imported, and sometimes
used, the exporter's modules. Connections, pools, writer threads, locks and
thread-locals must not cross that fork: a child sharing its parent's socket
or waiting on a lock held by a thread that does not exist in it breaks in
ways that are hard to see. So such state is made on first use in each
process, never at import, and made again in a child.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """A value of this process's own: made by `make` on first use, and again after a fork.

    Two threads' first uses at once may both make one; the last stays. So `make` must
    be cheap, and a spare value harmless (not, say, a second writer of the same file)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._pid = -1
        self._value: T | None = None

    def get(self) -> T:
        value = self._value
        if value is None or self._pid != os.getpid():
            value = self._value = self._make()
            self._pid = os.getpid()
        return value


def forked_since(pid: int) -> bool:
    """Whether this is no longer process `pid` (a loop started there ends in a child)."""
    return os.getpid() != pid
