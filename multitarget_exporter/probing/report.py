"""A finished probe told to the operator: one log line, its own log, the history, the counters.

The line carries what an operator filters on (module, target, outcome,
duration, upstream status, cache hit, timeout) and, when the answer was not a
plain fresh reading, why: the failure's detail, the refresh that failed behind
a stale answer, the fallback that answered, the parts that went missing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from multitarget_exporter.model.reading import ProbeResult
from multitarget_exporter.probing.history import ProbeHistory
from multitarget_exporter.probing.request import ProbeRequest
from multitarget_exporter.runtime import selfmetrics
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.warnings.lookup import WarningsOutcome

log = logging.getLogger("multitarget_exporter.probe")  # the name users filter on
log_config = logging.getLogger("multitarget_exporter")


def report_probe(
    probe: ProbeRequest,
    result: ProbeResult,
    timeout_seconds: float,
    probe_log: ProbeLog,
    history: ProbeHistory,
    warnings: WarningsOutcome | None = None,
) -> None:
    """Count the probe, log its line (in its own log too) and keep it in the history."""
    module = probe.module
    outcome = "success" if result.failure is None else result.failure.reason.value
    selfmetrics.observe_probe(module.name, outcome, result.duration_seconds)
    fields = probe_fields(probe, result, outcome, timeout_seconds)
    if warnings is not None:
        fields.update(warnings_fields(warnings))
    healthy = (
        result.failure is None
        and "missing" not in fields
        and not result.stale
        and not result.fallback
        and (warnings is None or warnings.success)
    )
    level = logging.INFO if healthy else logging.WARNING
    probe_log.add(level, "probe finished", **fields)
    log.log(level, "probe finished", extra={"fields": fields})
    try:  # a history that fails must not fail the probe
        history.record(
            time.time(), module.name, probe.target, outcome, result.duration_seconds, probe_log
        )
    except Exception:
        log_config.exception("could not record the probe in the history")


def probe_fields(
    probe: ProbeRequest, result: ProbeResult, outcome: str, timeout_seconds: float
) -> dict[str, Any]:
    """The structured fields of the probe's log line."""
    fields: dict[str, Any] = {
        "module": probe.module.name,
        "target": probe.target,
        "outcome": outcome,
        "duration_seconds": round(result.duration_seconds, 6),
        "upstream_status": result.upstream_status_code,
        "cache_hit": result.cache_hit,
        "timeout_seconds": round(timeout_seconds, 3),
    }
    if result.failure is not None and result.failure.detail:
        fields["detail"] = result.failure.detail
    if result.stale and result.refresh_failure is not None:
        refresh = result.refresh_failure
        fields["stale_because"] = f"{refresh.reason.value}: {refresh.detail}"
    if result.fallback and result.reading is not None:
        fields["answered_by"] = probe.module.fallback
    missing = result.reading.missing if result.reading is not None else ""
    if missing:
        fields["missing"] = missing  # why: in this probe's own log
    return fields


def warnings_fields(warnings: WarningsOutcome) -> dict[str, Any]:
    """The log line's word on the point's warnings: how many, or why none were read."""
    fields: dict[str, Any] = {}
    answer = warnings.answer
    if answer is not None:
        fields["warnings"] = len(answer.warnings) if answer.covered else "not_covered"
        if answer.source:
            fields["warnings_source"] = answer.source
    if not warnings.success:
        fields["warnings_failed"] = warnings.detail
        if warnings.stale:
            fields["warnings_stale"] = True
    return fields
