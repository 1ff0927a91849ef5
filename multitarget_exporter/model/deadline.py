"""A probe's deadline: one point in time that bounds everything the probe does."""

from __future__ import annotations

import time


class Deadline:
    """A point in monotonic time by which the whole probe must be done."""

    __slots__ = ("at",)

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()
