"""One probe, start to finish: deadline, provider, timing, and no escaping exceptions."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

from multitarget_exporter.probelog import ProbeLog
from multitarget_exporter.providers import Provider
from multitarget_exporter.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.targets import Location
from multitarget_exporter.upstream import Deadline

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


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
    provider: Provider, location: Location, timeout_seconds: float, probe_log: ProbeLog
) -> ProbeResult:
    """Fetch one reading within `timeout_seconds`; failures come back as values."""
    started = time.perf_counter()
    probe_log.debug(
        "probing",
        provider=provider.name,
        location=location.key,
        timeout_seconds=round(timeout_seconds, 3),
    )
    try:
        result = provider.fetch(location, Deadline(timeout_seconds), probe_log)
    except Exception as error:  # a provider bug must not become a 500 for the scraper
        log.exception("provider raised", extra={"fields": {"provider": provider.name}})
        failure = Failure(FailureReason.INVALID_RESPONSE, f"internal error: {type(error).__name__}")
        result = ProbeResult(None, failure)
    return replace(result, duration_seconds=time.perf_counter() - started)
