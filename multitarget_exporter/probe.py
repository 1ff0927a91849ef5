"""One probe, start to finish: deadline, provider, timing, and no escaping exceptions."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

from multitarget_exporter import selfmetrics
from multitarget_exporter.cache import Bucket, CacheEntry, ReadingCache, cache_key, ttl_for
from multitarget_exporter.config import ModuleConfig
from multitarget_exporter.deadline import Deadline
from multitarget_exporter.probelog import ProbeLog
from multitarget_exporter.providers import Provider
from multitarget_exporter.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.targets import Location

log = logging.getLogger(__name__)

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

    def fetch() -> ProbeResult:
        kept = provider.stored(location)
        if kept is not None:
            return kept
        if bucket is not None and not bucket.take(provider.calls_per_fetch):
            selfmetrics.RATE_LIMITED.labels(module.name).inc()
            detail = f"module rate_limit {bucket.rate} reached; no upstream call made"
            return ProbeResult(None, Failure(FailureReason.RATE_LIMITED, detail))
        return _fetch(provider, location, deadline, probe_log)

    if cache is None:
        entry, outcome = CacheEntry(fetch()), "miss"
    else:
        key = cache_key(module, location)
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
        cache_hit=outcome != "miss" or entry.result.cache_hit,
        duration_seconds=time.perf_counter() - started,
    )
    return result, entry.encoded


def _fetch(
    provider: Provider, location: Location, deadline: Deadline, probe_log: ProbeLog
) -> ProbeResult:
    try:
        return provider.fetch(location, deadline, probe_log)
    except Exception as error:  # a provider bug must not become a 500 for the scraper
        log.exception("provider raised", extra={"fields": {"provider": provider.name}})
        failure = Failure(FailureReason.INVALID_RESPONSE, f"internal error: {type(error).__name__}")
        return ProbeResult(None, failure)
