"""One probe, start to finish: deadline, provider, timing, and no escaping exceptions."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from multitarget_exporter.config.modules import ModuleConfig
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.reading import REFRESH_FAILURES, Failure, FailureReason, ProbeResult
from multitarget_exporter.model.targets import Coordinates, Location
from multitarget_exporter.providers.base import Provider
from multitarget_exporter.runtime import selfmetrics
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.upstream.cache import Bucket, CacheEntry, ReadingCache, cache_key, ttl_for
from multitarget_exporter.warnings.lookup import WarningsLookup, WarningsOutcome

log = logging.getLogger("multitarget_exporter.probe")  # the name users filter on

# Prometheus' X-Prometheus-Scrape-Timeout-Seconds header, as WSGI names it.
SCRAPE_TIMEOUT_ENVIRON = "HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"


def probe_timeout(module_timeout: float, scrape_timeout: str | None, offset: float) -> float:
    """The probe's budget: the module's timeout, cut to Prometheus' scrape timeout less offset.

    A header that is not a positive, finite number of seconds is ignored, so a
    broken or hostile header can neither extend the probe nor fail it.
    """
    if not scrape_timeout:
        return module_timeout
    try:
        seconds = float(scrape_timeout)
    except ValueError:
        return module_timeout
    if not math.isfinite(seconds) or seconds <= 0:
        return module_timeout
    if seconds > offset:
        seconds -= offset
    return min(module_timeout, seconds)


def run_probe(
    module: ModuleConfig,
    provider: Provider,
    location: Location,
    timeout_seconds: float,
    probe_log: ProbeLog,
    cache: ReadingCache | None = None,
    bucket: Bucket | None = None,
) -> tuple[ProbeResult, dict[str, bytes]]:
    """One reading within `timeout_seconds`, from the cache where it may; failures as values.

    With it, where the reading's metric lines are kept once encoded: its cache entry's."""
    started = time.perf_counter()
    deadline = Deadline(timeout_seconds)
    probe_log.debug(
        "probing",
        provider=provider.name,
        location=location.key,
        timeout_seconds=round(timeout_seconds, 3),
    )

    key = cache_key(module, location)

    def fetch() -> ProbeResult:
        kept = provider.stored(location)
        if kept is not None:
            return _or_stale(module, key, kept, cache) if cache is not None else kept
        if bucket is not None and not bucket.take(provider.calls_per_fetch):
            selfmetrics.RATE_LIMITED.labels(module.name).inc()
            detail = f"module rate_limit {bucket.rate} reached; no upstream call made"
            fetched = ProbeResult(None, Failure(FailureReason.RATE_LIMITED, detail))
        else:
            fetched = _fetch(provider, location, deadline, probe_log)
        return _or_stale(module, key, fetched, cache) if cache is not None else fetched

    if cache is None:
        entry, outcome = CacheEntry(fetch()), "miss"
    else:
        entry, outcome = cache.fetch_through(
            key, fetch, lambda fetched: ttl_for(module, fetched), deadline
        )
        selfmetrics.CACHE_ENTRIES.set(len(cache))
    selfmetrics.CACHE_REQUESTS.labels(outcome).inc()
    if outcome != "miss":
        probe_log.debug(
            "answered from the cache" if outcome == "hit" else "shared a fetch already in flight",
            cache=outcome,
        )
    result = replace(
        entry.result,
        cache_hit=outcome != "miss" or entry.result.cache_hit or bool(entry.result.stale),
        duration_seconds=time.perf_counter() - started,
    )
    if module.stale_if_error_seconds:
        result = replace(result, stale=bool(result.stale))
        if result.stale and result.refresh_failure is not None:
            selfmetrics.STALE_ANSWERS.labels(module.name, result.refresh_failure.reason).inc()
            probe_log.info(
                "answered with a kept reading: its refresh failed",
                reason=result.refresh_failure.reason.value,
                error=result.refresh_failure.detail,
            )
    return result, entry.encoded


def _or_stale(
    module: ModuleConfig, key: str, fetched: ProbeResult, cache: ReadingCache
) -> ProbeResult:
    """A fetched result, kept to answer stale with later when it is a reading; or, for a
    refresh that failed while the place is fine, the last reading kept, marked stale."""
    if not module.stale_if_error_seconds:
        return fetched
    if fetched.reading is not None:
        if not fetched.reading.missing:
            cache.keep_last(key, fetched, module.stale_if_error_seconds)
        return fetched
    failure = fetched.failure
    if failure is None or failure.reason not in REFRESH_FAILURES:
        return fetched
    kept = cache.last(key)
    if kept is None or kept.reading is None:
        return fetched
    return replace(kept, stale=True, refresh_failure=failure, cache_hit=True, expires_at=None)


def _fetch(
    provider: Provider, location: Location, deadline: Deadline, probe_log: ProbeLog
) -> ProbeResult:
    try:
        return provider.fetch(location, deadline, probe_log)
    except Exception as error:  # a provider bug must not become a 500 for the scraper
        log.exception("provider raised", extra={"fields": {"provider": provider.name}})
        failure = Failure(FailureReason.INVALID_RESPONSE, f"internal error: {type(error).__name__}")
        return ProbeResult(None, failure)


@dataclass(frozen=True, slots=True)
class Route:
    """A module as a probe takes it: its settings, its provider, its call budget."""

    module: ModuleConfig
    provider: Provider
    bucket: Bucket | None = None


def run_with_fallback(
    first: Route,
    fallback: Route | None,
    target: str,
    location: Location,
    timeout_seconds: float,
    probe_log: ProbeLog,
    cache: Callable[[ModuleConfig], ReadingCache | None],
) -> tuple[ProbeResult, dict[str, bytes]]:
    """`run_probe` on the module, and, when its refresh fails and no kept reading answers,
    on its fallback: one hop, the first with half the deadline and the fallback the rest.

    A target the fallback cannot take (its provider's forms, its `allowed_targets`) keeps
    the first failure; so does a fallback that fails too (its failure is in the probe's
    log)."""
    started = time.perf_counter()
    share = timeout_seconds / 2 if fallback is not None else timeout_seconds
    result, kept = run_probe(
        first.module, first.provider, location, share, probe_log, cache(first.module), first.bucket
    )
    if fallback is None:
        return result, kept
    failure = result.failure
    if failure is None or failure.reason not in REFRESH_FAILURES:
        return replace(result, fallback=False), kept
    unsupported = fallback.provider.unsupported(location)
    if unsupported is None and not fallback.module.allows(target):
        unsupported = "its allowed_targets refuse the target"
    if unsupported is not None:
        probe_log.info(
            "fallback cannot take the target", module=fallback.module.name, why=unsupported
        )
        return replace(result, fallback=False), kept
    selfmetrics.FALLBACKS.labels(first.module.name, failure.reason.value).inc()
    left = max(timeout_seconds - (time.perf_counter() - started), 0.001)
    probe_log.info(
        "asking the fallback",
        module=fallback.module.name,
        reason=failure.reason.value,
        seconds=round(left, 3),
    )
    second, kept_second = run_probe(
        fallback.module,
        fallback.provider,
        location,
        left,
        probe_log,
        cache(fallback.module),
        fallback.bucket,
    )
    elapsed = time.perf_counter() - started
    if second.reading is None:
        failed = second.failure
        probe_log.info(
            "the fallback failed too",
            module=fallback.module.name,
            reason=failed.reason.value if failed else "",
            error=failed.detail if failed else "",
        )
        return replace(result, fallback=True, duration_seconds=elapsed), kept
    # The fallback's own stale flag is its module's business, not this module's.
    stale = False if first.module.stale_if_error_seconds else None
    return replace(second, fallback=True, stale=stale, duration_seconds=elapsed), kept_second


def run_warnings(
    lookup: WarningsLookup,
    result: ProbeResult,
    location: Location,
    timeout_seconds: float,
    probe_log: ProbeLog,
) -> WarningsOutcome:
    """The point's official warnings, in the time the probe has left; failures as values.

    The point is the one the target resolved to: the reading's, or the target's own
    coordinates when the weather call failed (a name that never resolved has none)."""
    reading = result.reading
    if reading and reading.latitude_degrees is not None and reading.longitude_degrees is not None:
        latitude, longitude = reading.latitude_degrees, reading.longitude_degrees
    elif isinstance(location, Coordinates):
        latitude, longitude = location.latitude, location.longitude
    else:
        detail = "the target's point is not known: its weather call found no place"
        probe_log.info("warnings not asked", why=detail)
        return WarningsOutcome(False, None, detail=detail)
    left = max(timeout_seconds - result.duration_seconds, 0.001)
    try:
        outcome = lookup.lookup(latitude, longitude, Deadline(left), probe_log)
    except Exception:
        log.exception("warnings lookup raised")
        return WarningsOutcome(False, None, detail="internal error reading warnings")
    if outcome.answer is not None:
        for warning in outcome.answer.warnings:
            probe_log.info(
                "warning",
                source=warning.source,
                event=warning.event,
                severity=warning.severity,
                headline=warning.headline,
                description=warning.description,
                instruction=warning.instruction,
            )
    return outcome
