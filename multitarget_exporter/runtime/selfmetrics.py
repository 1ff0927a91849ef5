"""The exporter's own metrics (spec section 5), created once per process."""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from multitarget_exporter import __version__

# `_created` series double every counter's output and no dashboard uses them.
disable_created_metrics()

BUILD_INFO = Gauge(
    "multitarget_exporter_build_info",
    "The exporter's version; always 1.",
    ["version"],
    multiprocess_mode="livemax",
)
BUILD_INFO.labels(__version__).set(1)

PROBES = Counter(
    "multitarget_exporter_probes",
    "Probes answered, by module and result (success or the failure reason).",
    ["module", "result"],
)

PROBE_DURATION = Histogram(
    "multitarget_exporter_probe_duration_seconds",
    "How long probes took, by module.",
    ["module"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def observe_probe(module: str, result: str, duration_seconds: float) -> None:
    """Count one finished probe."""
    PROBES.labels(module, result).inc()
    PROBE_DURATION.labels(module).observe(duration_seconds)


def declare_module(module: str) -> None:
    """Make a module's series exist at zero before its first probe, so rate() works at once."""
    PROBES.labels(module, "success")
    PROBE_DURATION.labels(module)
    RATE_LIMITED.labels(module)


CONFIG_RELOAD_SUCCESS = Gauge(
    "multitarget_exporter_config_last_reload_successful",
    "Whether the last configuration reload succeeded (1) or failed (0).",
    # The value written last wins: a forked worker starts with a 0 it never
    # wrote (timestamp 0), which must not hide what the master set.
    multiprocess_mode="livemostrecent",
)

CONFIG_RELOAD_SUCCESS_TIME = Gauge(
    "multitarget_exporter_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully, as a Unix time.",
    multiprocess_mode="livemax",
)


def record_reload(success: bool) -> None:
    """Note a configuration load's outcome (the first load at start-up counts)."""
    CONFIG_RELOAD_SUCCESS.set(1 if success else 0)
    if success:
        CONFIG_RELOAD_SUCCESS_TIME.set_to_current_time()


UPSTREAM_REQUESTS = Counter(
    "multitarget_exporter_upstream_requests",
    "Requests made to upstream APIs, by provider, endpoint and HTTP status"
    " (or the failure reason when no status came).",
    ["provider", "endpoint", "code"],
)

UPSTREAM_DURATION = Histogram(
    "multitarget_exporter_upstream_request_duration_seconds",
    "How long upstream requests took, by provider and endpoint.",
    ["provider", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

CACHE_REQUESTS = Counter(
    "multitarget_exporter_cache_requests",
    "Probes by how the cache served them: hit, miss (an upstream fetch), or coalesced"
    " (shared a fetch already in flight).",
    ["result"],
)
for _result in ("hit", "miss", "coalesced"):
    CACHE_REQUESTS.labels(_result)

CACHE_ENTRIES = Gauge(
    "multitarget_exporter_cache_entries",
    "Results held in the in-memory cache (summed over worker processes).",
    multiprocess_mode="livesum",
)

RATE_LIMITED = Counter(
    "multitarget_exporter_rate_limited",
    "Readings refused by a module's rate_limit (each would have cost its calls per reading).",
    ["module"],
)


STALE_ANSWERS = Counter(
    "multitarget_exporter_stale_answers",
    "Probes answered with a kept reading because its refresh failed, by module and the"
    " refresh's failure reason.",
    ["module", "reason"],
)

FALLBACKS = Counter(
    "multitarget_exporter_fallbacks",
    "Probes tried on a module's fallback, by module and the failure that sent them there.",
    ["module", "reason"],
)


def observe_upstream(provider: str, endpoint: str, code: str, seconds: float) -> None:
    """Count one upstream request."""
    UPSTREAM_REQUESTS.labels(provider, endpoint, code).inc()
    UPSTREAM_DURATION.labels(provider, endpoint).observe(seconds)


BUDGET_REMAINING = Gauge(
    "multitarget_exporter_upstream_budget_remaining_calls",
    "Calls left in the module's daily_budget for the rest of the UTC day (the pace allows"
    " budget x fraction of the day gone + 10 %).",
    ["module"],
    # Shared through Redis, the count written last is the newest.
    multiprocess_mode="livemostrecent",
)

BUDGET_REFUSALS = Counter(
    "multitarget_exporter_budget_refusals",
    "Upstream calls not made because the module's daily_budget was spent as far as the"
    " UTC day allows.",
    ["module"],
)

UPSTREAM_OPEN = Gauge(
    "multitarget_exporter_upstream_open",
    "1 while the provider's breaker is open (5 calls running failed: calls wait, then one"
    " trial at a time), until a call succeeds.",
    ["provider"],
    multiprocess_mode="livemax",
)


def declare_budget(module: str, daily_budget: int) -> None:
    """A budgeted module's series, before its first call: the whole budget, no refusals."""
    BUDGET_REFUSALS.labels(module)
    BUDGET_REMAINING.labels(module).set(daily_budget)


def set_upstream_open(provider: str, is_open: bool) -> None:
    """Show a provider's breaker opening or closing."""
    UPSTREAM_OPEN.labels(provider).set(1 if is_open else 0)


CACHE_BACKEND_ERRORS = Counter(
    "multitarget_exporter_cache_backend_errors",
    "Errors talking to the shared cache; probes then go to the upstream directly.",
    ["backend"],
)


_exporter_registry: Collector | None = None


def exporter_registry() -> Collector:
    """The process's own metrics, or, with several processes, every worker's added up."""
    global _exporter_registry
    if _exporter_registry is None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            ProcessCollector(registry=registry)  # the answering process's own
            PlatformCollector(registry=registry)
            _exporter_registry = registry
        else:
            _exporter_registry = REGISTRY
    return _exporter_registry
