"""Whether an upstream call may go out: a module's daily budget, Retry-After, the breaker.

Every call to an upstream passes one module's `Gate` first (upstream/client.py).
It refuses, as a failure value and without a call, when:

- the module's `daily_budget` is spent as far as the UTC day allows: a tenth
  at midnight and the rest evenly over the day, so at any moment at most
  budget × (fraction of the day gone) + 10 % of it, and never more than the
  budget in a day (`rate_limited`, "daily budget");
- the provider answered 429 or 503 with `Retry-After` for this host and key,
  and that time has not come (`rate_limited`);
- the host's breaker is open: its last 5 calls failed with a timeout, a
  connection error or a 5xx. It stays shut 30 s, doubling to 5 minutes while
  trial calls (one at a time) keep failing; the refusal carries the last
  failure's reason.

Budget counts and holds are shared as the cache is (`Tallies`); each process
keeps its own breakers, which need no agreement: each learns a dead host in
its own 5 calls.
"""

from __future__ import annotations

import email.utils
import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from multitarget_exporter.model.reading import Failure, FailureReason
from multitarget_exporter.runtime import selfmetrics
from multitarget_exporter.runtime.perprocess import PerProcess
from multitarget_exporter.upstream.tallies import Tallies

DAY_SECONDS = 86400.0
# What a budget may run ahead of an even pace: a tenth of it, for the morning's misses.
AHEAD_FRACTION = 0.1
RETRY_AFTER_STATUSES = (429, 503)
LONGEST_RETRY_AFTER_SECONDS = 3600.0
FAILURES_TO_OPEN = 5
FIRST_OPEN_SECONDS = 30.0
LONGEST_OPEN_SECONDS = 300.0
# A trial call that never reports back (its process died) frees the way after this long.
_TRIAL_SECONDS = 120.0


def allowance(budget: int, now: float) -> int:
    """The calls a budget allows by `now` in its UTC day: a tenth of it at midnight, then
    the other nine tenths evenly over the day. That is never more than budget × (fraction
    of the day gone) + 10 % of it, and the whole budget only as the day ends."""
    fraction = (now % DAY_SECONDS) / DAY_SECONDS
    return math.floor(budget * (AHEAD_FRACTION + (1 - AHEAD_FRACTION) * fraction))


def retry_after_seconds(value: str, now: float) -> float | None:
    """A `Retry-After` header's wait: seconds or an HTTP date, capped at an hour; None for
    a value that is absent, negative or unreadable (then the breaker's rules alone)."""
    value = value.strip()
    if not value or len(value) > 64:
        return None
    if value.isdigit():
        return min(float(value), LONGEST_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; one without a zone is read so
        return None
    return min(max(when.timestamp() - now, 0.0), LONGEST_RETRY_AFTER_SECONDS)


def _breaks(failure: Failure | None, status: int) -> bool:
    """Whether an exchange counts toward opening the breaker."""
    if failure is not None and failure.reason in (
        FailureReason.TIMEOUT,
        FailureReason.CONNECTION_ERROR,
    ):
        return True
    return 500 <= status < 600


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    open_until: float = 0.0
    open_seconds: float = 0.0  # the current step; 0 while closed
    trial_until: float = 0.0  # a trial call is out until then
    last: Failure | None = None


class Breakers:
    """One process's breakers, one per provider and host."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()
        self.clock = clock

    def refusal(self, provider: str, host: str) -> Failure | None:
        """Why no call may go to the host now, or None (a trial call, when it is one)."""
        key = f"{provider}|{host}"
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or not circuit.open_seconds:
                return None
            now = self.clock()
            if now >= circuit.open_until and now >= circuit.trial_until:
                circuit.trial_until = now + _TRIAL_SECONDS
                return None  # this call is the trial
            last = circuit.last
            wait = max(circuit.open_until - now, 0.0)
        reason = last.reason if last is not None else FailureReason.CONNECTION_ERROR
        detail = (
            f"{provider} at {host} failed {FAILURES_TO_OPEN} times running (last: "
            f"{last.detail if last else 'unknown'}); no call for {wait:.0f} s more"
        )
        return Failure(reason, detail)

    def record(self, provider: str, host: str, failure: Failure | None, status: int) -> None:
        """An exchange's outcome: a timeout, a connection error or a 5xx counts; anything
        else closes the breaker."""
        key = f"{provider}|{host}"
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            if not _breaks(failure, status):
                if circuit.open_seconds:
                    selfmetrics.set_upstream_open(provider, False)
                self._circuits.pop(key, None)
                return
            circuit.failures += 1
            circuit.last = failure or Failure(FailureReason.UPSTREAM_ERROR, f"HTTP {status}")
            if circuit.open_seconds:  # a trial failed: wait twice as long
                circuit.open_seconds = min(circuit.open_seconds * 2, LONGEST_OPEN_SECONDS)
            elif circuit.failures >= FAILURES_TO_OPEN:
                circuit.open_seconds = FIRST_OPEN_SECONDS
                selfmetrics.set_upstream_open(provider, True)
            else:
                return
            circuit.open_until = self.clock() + circuit.open_seconds
            circuit.trial_until = 0.0


BREAKERS: PerProcess[Breakers] = PerProcess(Breakers)


class Gate:
    """One module's say over its upstream calls: its budget, and the providers' holds and
    breakers it shares with every module."""

    def __init__(
        self,
        module: str,
        daily_budget: int | None,
        tallies: Tallies,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.module = module
        self.daily_budget = daily_budget
        self._tallies = tallies
        self.clock = clock

    def _day_key(self, now: float) -> str:
        return f"budget|{self.module}|{int(now // DAY_SECONDS)}"

    def before(self, provider: str, host: str, key: str) -> Failure | None:
        """Why the call may not go out, or None; a call let through is counted against the
        budget."""
        now = self.clock()
        hold = self._tallies.held(_hold_key(provider, host, key))
        if hold > now:
            detail = (
                f"{provider} asked for no call before {hold - now:.0f} s from now (Retry-After)"
            )
            return Failure(FailureReason.RATE_LIMITED, detail)
        breakers = BREAKERS.get()
        refusal = breakers.refusal(provider, host)
        if refusal is not None:
            return refusal
        if self.daily_budget is None:
            return None
        allowed = allowance(self.daily_budget, now)
        keep = DAY_SECONDS - now % DAY_SECONDS + 3600.0
        spent = self._tallies.spend(self._day_key(now), allowed, keep)
        if spent is None:
            selfmetrics.BUDGET_REFUSALS.labels(self.module).inc()
            spent = allowed
            self._remaining(spent)
            detail = (
                f"daily budget: {allowed} of {self.daily_budget} calls spent as far as the "
                "UTC day allows; no upstream call made"
            )
            return Failure(FailureReason.RATE_LIMITED, detail)
        self._remaining(spent)
        return None

    def _remaining(self, spent: int) -> None:
        if self.daily_budget is not None:
            remaining = max(self.daily_budget - spent, 0)
            selfmetrics.BUDGET_REMAINING.labels(self.module).set(remaining)

    def after(
        self,
        provider: str,
        host: str,
        key: str,
        status: int,
        failure: Failure | None,
        retry_after: str,
    ) -> None:
        """Learn from an exchange: a Retry-After to honour, a breaker to count on."""
        BREAKERS.get().record(provider, host, failure, status)
        if status in RETRY_AFTER_STATUSES and retry_after:
            now = self.clock()
            wait = retry_after_seconds(retry_after, now)
            if wait:
                self._tallies.hold(_hold_key(provider, host, key), now + wait, wait)


def key_id(secrets: tuple[str, ...]) -> str:
    """A short name for an API key, to hold a provider per key without keeping the key."""
    if not secrets:
        return ""
    return hashlib.sha256("\0".join(secrets).encode()).hexdigest()[:16]


def _hold_key(provider: str, host: str, key: str) -> str:
    return f"hold|{provider}|{host}|{key}"
