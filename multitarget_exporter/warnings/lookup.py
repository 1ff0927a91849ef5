"""A point's official warnings: the first listed source that covers it, each answer kept a while.

A module lists its sources (`warnings: [nws, dwd, met_norway]`); the point is
asked of each in turn until one covers it. A source that says the point is
outside its area (NWS `/points` 404, MetAlerts 422, Bright Sky 404) is
remembered so for a day per point, so the next probe goes straight on.
Answers are kept per (source, base URL, point), shared like the cache (one
process's memory, or Redis), and each module judges their freshness by its
own `warnings_ttl`. One process asks for a key at a time (single-flight),
and across processes one holds a claim while the others wait for its answer.

A failed call never fails the probe: it ends the walk (only "outside" passes a
point on), and the last good answer for the point serves if it is younger than
the module's `stale_if_error`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from multitarget_exporter import __version__
from multitarget_exporter.config.modules import ModuleConfig, WarningSource
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.reading import Failure, FailureReason
from multitarget_exporter.model.targets import POINT_DECIMALS, rounded
from multitarget_exporter.model.warning import WarningsAnswer
from multitarget_exporter.runtime.perprocess import PerProcess
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.upstream.answers import decode_json, error_detail
from multitarget_exporter.upstream.cache import Bucket
from multitarget_exporter.upstream.client import Exchange, Upstream
from multitarget_exporter.upstream.gate import Gate
from multitarget_exporter.upstream.revalidation import Validated, Validators, kept_or_claimed
from multitarget_exporter.upstream.singleflight import SingleFlight
from multitarget_exporter.upstream.store import ExpiringStore
from multitarget_exporter.warnings import dwd, met_norway, nws

# How long a point stays "outside" a source's area, and the NWS's answer to "is it
# inside" (its /points call) is kept: the areas do not move.
COVERAGE_SECONDS = 24 * 3600.0
PARSERS: dict[str, ModuleType] = {"nws": nws, "met_norway": met_norway, "dwd": dwd}
# The status that says "not our area" of each source's alerts call (the NWS: its /points).
_OUTSIDE_STATUS = {"met_norway": 422, "dwd": 404}
# Answers this process has read, kept decoded while they stay fresh for the module.
_DECODED_ENTRIES = 10000


@dataclass(frozen=True, slots=True)
class WarningsOutcome:
    """What a probe knows of its point's warnings.

    `success`: the walk over the sources ended without a failed call. `answer`: the
    answer to report (None: nothing good and nothing kept, so only
    `probe_warnings_success` is reported). `stale`: the answer is a kept one, served
    because a call failed. `detail`: why the walk failed."""

    success: bool
    answer: WarningsAnswer | None
    stale: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Asked:
    """One source's word on one point: its answer, or why there is none."""

    answer: WarningsAnswer | None
    detail: str = ""
    fetched_at: float = 0.0


_FLIGHTS: PerProcess[SingleFlight[_Asked]] = PerProcess(SingleFlight)


def _document(answer: WarningsAnswer, fetched_at: float) -> dict[str, Any]:
    return {"fetched_at": fetched_at, "answer": answer.to_document()}


def _kept_answer(kept: Validated) -> tuple[WarningsAnswer, float] | None:
    """A kept answer and when it was fetched; None for one that cannot be read (another
    version's, or damaged), which is then asked for again."""
    document = kept.document
    try:
        return WarningsAnswer.from_document(document["answer"]), float(document["fetched_at"])
    except (ValueError, KeyError, TypeError):
        return None


class WarningsLookup:
    """One module's warnings sources, asked in order for a point."""

    def __init__(
        self,
        module: ModuleConfig,
        store: Validators,
        bucket: Bucket | None = None,
        gate: Gate | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = module.warnings
        self._store = store
        self._bucket = bucket
        self._stale_seconds = module.stale_if_error_seconds
        self._clock = clock
        agent = f"multitarget_exporter/{__version__} {module.contact}".strip()
        self._headers = {"User-Agent": agent, "Accept-Encoding": "gzip"}
        self._upstreams = {source.name: Upstream(source.name, gate=gate) for source in self.sources}
        # A fresh answer is read from the shared store (Redis: a round trip) and decoded
        # once per process, then served from here until its freshness ends.
        self._decoded: ExpiringStore[_Asked] = ExpiringStore(_DECODED_ENTRIES)

    def lookup(
        self, latitude: float, longitude: float, deadline: Deadline, log: ProbeLog
    ) -> WarningsOutcome:
        """The point's warnings from the first source that covers it."""
        latitude, longitude = rounded(latitude), rounded(longitude)
        point = f"{latitude:.{POINT_DECIMALS}f},{longitude:.{POINT_DECIMALS}f}"
        for source in self.sources:
            asked = self._answer(source, latitude, longitude, point, deadline, log)
            if asked.answer is None:
                return self._stale(source, point, asked.detail, log)
            if asked.answer.covered:
                for note in asked.answer.notes:
                    log.info("warnings answer note", source=source.name, note=note)
                return WarningsOutcome(True, asked.answer)
            log.debug("point outside this warnings source's area", source=source.name)
        return WarningsOutcome(True, WarningsAnswer(covered=False, warnings=(), source=""))

    def _key(self, source: WarningSource, point: str, what: str = "alerts") -> str:
        return f"{what}|{source.name}|{source.base_url}|{point}"

    def _stale(
        self, source: WarningSource, point: str, detail: str, log: ProbeLog
    ) -> WarningsOutcome:
        log.info("warnings call failed", source=source.name, error=detail)
        kept = self._store.get(self._key(source, point)) if self._stale_seconds else None
        read = _kept_answer(kept) if kept is not None else None
        if read is not None and self._clock() - read[1] < self._stale_seconds:
            return WarningsOutcome(False, read[0], stale=True, detail=detail)
        return WarningsOutcome(False, None, detail=detail)

    def _answer(
        self,
        source: WarningSource,
        latitude: float,
        longitude: float,
        point: str,
        deadline: Deadline,
        log: ProbeLog,
    ) -> _Asked:
        """The source's answer for the point: kept and fresh, or asked for now."""
        if source.name == "nws":
            covered = self._nws_covered(source, latitude, longitude, point, deadline, log)
            if covered.answer is None or not covered.answer.covered:
                return covered
        key = self._key(source, point)

        def limit(answer: WarningsAnswer) -> float:
            return source.ttl_seconds if answer.covered else COVERAGE_SECONDS

        def ask() -> _Asked:
            path, params = PARSERS[source.name].alerts_request(latitude, longitude)
            headers = self._headers
            if source.name == "nws":
                headers = {**headers, "Accept": "application/geo+json"}
            exchange = self._call(source, "alerts", path, params, headers, deadline, log)
            return self._read_alerts(source, exchange)

        return self._kept_or_asked(key, limit, ask, source, deadline)

    def _nws_covered(
        self,
        source: WarningSource,
        latitude: float,
        longitude: float,
        point: str,
        deadline: Deadline,
        log: ProbeLog,
    ) -> _Asked:
        """Whether the NWS covers the point: its `/points` answer, kept for a day."""
        key = self._key(source, point, "points")

        def ask() -> _Asked:
            path = nws.points_request(latitude, longitude)
            headers = {**self._headers, "Accept": "application/geo+json"}
            exchange = self._call(source, "points", path, {}, headers, deadline, log)
            if exchange.failure is None and exchange.status_code == 404:
                return _Asked(WarningsAnswer(covered=False, warnings=(), source="nws"))
            if exchange.failure is None and exchange.status_code == 200:
                return _Asked(WarningsAnswer(covered=True, warnings=(), source="nws"))
            return _Asked(None, _why(exchange))

        return self._kept_or_asked(key, lambda answer: COVERAGE_SECONDS, ask, source, deadline)

    def _kept_or_asked(
        self,
        key: str,
        limit: Callable[[WarningsAnswer], float],
        ask: Callable[[], _Asked],
        source: WarningSource,
        deadline: Deadline,
    ) -> _Asked:
        """The kept answer while it is younger than `limit(answer)`, else `ask()`'s, kept."""
        known = self._decoded.get(key)
        if known and known.answer and self._clock() - known.fetched_at < limit(known.answer):
            return known
        # Each kept answer is decoded once: judging it fresh, then answering with it.
        reads: dict[int, tuple[WarningsAnswer, float] | None] = {}

        def fresh(kept: Validated) -> bool:
            read = reads[id(kept)] = _kept_answer(kept)
            return read is not None and self._clock() - read[1] < limit(read[0])

        def remember(asked: _Asked) -> _Asked:
            if asked.answer is not None:
                left = asked.fetched_at + limit(asked.answer) - self._clock()
                self._decoded.put(key, asked, left)
            return asked

        def work() -> _Asked:
            got = kept_or_claimed(self._store, key, fresh, deadline)
            if got is None:
                return _Asked(None, "timeout: another process is asking for this point")
            kept, must_ask = got
            read = reads.get(id(kept)) if kept is not None else None
            if not must_ask and read is not None:
                return remember(_Asked(read[0], fetched_at=read[1]))
            try:
                asked = ask()
                if asked.answer is not None:
                    keep = max(source.ttl_seconds, self._stale_seconds)
                    if not asked.answer.covered:
                        keep = COVERAGE_SECONDS
                    now = self._clock()
                    document = _document(asked.answer, now)
                    self._store.put(key, Validated(now + keep, "", 200, document), keep)
                    asked = remember(replace(asked, fetched_at=now))
                return asked
            finally:
                self._store.release(key)

        shared, _ = _FLIGHTS.get().run(key, work, deadline)
        if shared is None:
            return _Asked(None, "timeout: deadline passed waiting for this point's warnings")
        return shared

    def _call(
        self,
        source: WarningSource,
        endpoint: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        deadline: Deadline,
        log: ProbeLog,
    ) -> Exchange:
        if self._bucket is not None and not self._bucket.take(1):
            detail = f"module rate_limit {self._bucket.rate} reached; no warnings call made"
            return Exchange(0, failure=Failure(FailureReason.RATE_LIMITED, detail))
        upstream = self._upstreams[source.name]
        return upstream.get(endpoint, source.base_url + path, params, deadline, log, headers)

    def _read_alerts(self, source: WarningSource, exchange: Exchange) -> _Asked:
        if exchange.failure is None and exchange.status_code == _OUTSIDE_STATUS.get(source.name):
            return _Asked(WarningsAnswer(covered=False, warnings=(), source=source.name))
        if exchange.failure is not None or exchange.status_code != 200:
            return _Asked(None, _why(exchange))
        document = decode_json(exchange.body)
        if isinstance(document, Failure):
            return _Asked(None, f"invalid_response: {document.detail}")
        parsed = PARSERS[source.name].parse_alerts(document, self._clock())
        if isinstance(parsed, str):
            return _Asked(None, f"invalid_response: {parsed}")
        return _Asked(parsed)


def _why(exchange: Exchange) -> str:
    """A failed warnings call in the log's words: `reason: detail`."""
    if exchange.failure is not None:
        return f"{exchange.failure.reason.value}: {exchange.failure.detail}"
    detail = error_detail(exchange.body, ())
    return f"HTTP {exchange.status_code}: {detail}" if detail else f"HTTP {exchange.status_code}"
