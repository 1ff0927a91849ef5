"""A rate as configured, and one process's budget for it (a token bucket).

One bucket for both limits the exporter keeps: upstream calls per module
(`rate_limit: 60/m`) and requests per client of the web guard
(exporter-toolkit's `interval` and `burst`, that is `burst` calls per
`burst * interval`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

_UNITS = {1.0: "s", 60.0: "m", 3600.0: "h"}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`calls` allowed per `period_seconds`: at most `calls` at once, refilled smoothly."""

    calls: int
    period_seconds: float

    def __str__(self) -> str:
        unit = _UNITS.get(self.period_seconds)
        return f"{self.calls}/{unit}" if unit else f"{self.calls}/{self.period_seconds:g}s"


class TokenBucket:
    """A budget of calls for one process: `rate.calls` saved up at most, refilled smoothly."""

    def __init__(self, rate: RateLimit) -> None:
        self.rate = rate
        self._tokens = float(rate.calls)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self, count: int = 1) -> bool:
        """Spend `count` calls, or say there are not enough left. A count above the whole
        budget is taken as the whole budget: a dear call still runs, alone."""
        count = min(count, self.rate.calls)
        with self._lock:
            now = time.monotonic()
            refill = (now - self._updated) * self.rate.calls / self.rate.period_seconds
            self._tokens = min(float(self.rate.calls), self._tokens + refill)
            self._updated = now
            if self._tokens >= count:
                self._tokens -= count
                return True
            return False
