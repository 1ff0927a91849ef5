"""What the station providers (`nws`, `bright_sky`) share: distance on the globe, safe
label text, and their answers kept per resource with one asker at a time.

A point's NWS `/points` answer, a station list and a station's latest
observation are each kept per resource (base URL and point, list path, or
station), apart from the readings, in the cache's `validators` store: one
process's memory, or Redis for every worker and replica. Each module judges a
kept answer by its own freshness (a day for points and lists, its `cache_ttl`
for observations), so nearby targets and other modules reuse it. One process
asks for a resource at a time (single-flight) and, across processes, one holds
a claim while the others wait for its answer (`revalidation.kept_or_claimed`).
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.runtime.perprocess import PerProcess
from multitarget_exporter.upstream.revalidation import Validated, Validators, kept_or_claimed
from multitarget_exporter.upstream.singleflight import SingleFlight

if TYPE_CHECKING:
    from multitarget_exporter.model.deadline import Deadline

# The mean radius of the Earth (IUGG), for great-circle distances.
EARTH_RADIUS_METERS = 6_371_008.8
# How long a point's coverage and its station list are kept: stations do not move.
LISTS_SECONDS = 24 * 3600.0
# An observation older than this is not current: the NWS asks the next station.
CURRENT_SECONDS = 2 * 3600.0
_MAX_LABEL = 100


def great_circle_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The distance between two points along the Earth's surface (haversine, on a sphere:
    within 0.5 % of the ellipsoid's), to the decimetre."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlam = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlam) ** 2
    return round(2 * EARTH_RADIUS_METERS * math.asin(min(1.0, math.sqrt(h))), 1)


def label_text(value: Any) -> str:
    """An upstream's words (a station's name, NWS's `textDescription`) fit for a label
    value: control characters dropped, spaces folded, at most 100 characters; "" for
    anything but a string."""
    if not isinstance(value, str):
        return ""
    printable = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")
    return " ".join(printable.split())[:_MAX_LABEL]


@dataclass(frozen=True, slots=True)
class Answer:
    """One resource's answer: the provider's compact form of it (plain JSON data) and when
    it was fetched; or the failed ProbeResult. `status_code` is the status of the call
    that brought it, and `called` whether it was asked for now (False: it was kept)."""

    document: Any = None
    fetched_at: float = 0.0
    status_code: int = 0
    failed: ProbeResult | None = None
    called: bool = False


_FLIGHTS: PerProcess[SingleFlight[Answer]] = PerProcess(SingleFlight)


def _read(kept: Validated | None) -> Answer | None:
    """A kept answer, or None for none or one that cannot be read (another version's)."""
    if kept is None or not isinstance(kept.document, dict):
        return None
    fetched_at = kept.document.get("fetched_at")
    if isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float):
        return None
    return Answer(kept.document.get("answer"), float(fetched_at), kept.status_code)


class KeptAnswers:
    """Answers kept per resource in a `Validators` store (the cache's), asked for by one
    process at a time."""

    def __init__(self, store: Validators) -> None:
        self._store = store

    def kept(self, key: str, fresh_seconds: float) -> Answer | None:
        """The answer kept for `key` if it is younger than `fresh_seconds`: no call."""
        found = _read(self._store.get(key))
        if found is None or time.time() - found.fetched_at >= fresh_seconds:
            return None
        return found

    def get(
        self,
        key: str,
        fresh_seconds: float,
        keep_seconds: float,
        ask: Callable[[], Answer],
        deadline: Deadline,
    ) -> Answer:
        """The answer for `key`: kept and younger than `fresh_seconds`, or asked for with
        `ask` (which says `called`) and kept `keep_seconds` unless it failed."""

        def fresh(kept: Validated) -> bool:
            found = _read(kept)
            return found is not None and time.time() - found.fetched_at < fresh_seconds

        def work() -> Answer:
            got = kept_or_claimed(self._store, key, fresh, deadline)
            if got is None:
                failure = Failure(FailureReason.TIMEOUT, "another process is asking for it")
                return Answer(failed=ProbeResult(None, failure))
            kept, must_ask = got
            found = _read(kept)
            if not must_ask and found is not None:
                return found
            try:
                asked = ask()
                if asked.failed is None and keep_seconds > 0:
                    document = {"fetched_at": asked.fetched_at, "answer": asked.document}
                    expires_at = asked.fetched_at + keep_seconds
                    kept_now = Validated(expires_at, "", asked.status_code, document)
                    self._store.put(key, kept_now, keep_seconds)
                return asked
            finally:
                self._store.release(key)

        shared, _ = _FLIGHTS.get().run(key, work, deadline)
        if shared is None:
            failure = Failure(FailureReason.TIMEOUT, "deadline passed waiting for another probe")
            return Answer(failed=ProbeResult(None, failure))
        return shared
