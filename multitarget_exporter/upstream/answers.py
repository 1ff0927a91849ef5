"""Reading upstream JSON defensively, and what a provider makes of a bad answer: shared
by every provider.

An upstream answer is untrusted input: any field may be missing, `null`, of
the wrong type, or absurd. These helpers turn such values into `None` (left
out, never invented) instead of exceptions, a failed answer into a failed
ProbeResult, and a failed extra call (forecast, air quality) into a reading
that says what it lacks.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult, Reading, lacking
from multitarget_exporter.runtime.redact import redact
from multitarget_exporter.upstream.client import Exchange, reason_for_status

if TYPE_CHECKING:
    from multitarget_exporter.runtime.probelog import ProbeLog

_DETAIL_LIMIT = 200


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def decode_json(body: bytes) -> Any | Failure:
    """The decoded document, or an invalid_response Failure (NaN and Infinity refused)."""
    if not body.strip():
        return Failure(FailureReason.INVALID_RESPONSE, "empty body")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        return Failure(FailureReason.INVALID_RESPONSE, f"body is not JSON: {str(error)[:80]}")


def number(document: Any, *path: str) -> float | None:
    """The finite number at `path` in nested objects, or None (bools are not numbers)."""
    value = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def text(document: Any, *path: str) -> str | None:
    """The string at `path` in nested objects, or None."""
    value = document
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def error_detail(body: bytes, secrets: tuple[str, ...]) -> str:
    """A short, redacted excerpt of an error body for the operator's log."""
    document = decode_json(body)
    if isinstance(document, dict):
        message = document.get("message") or document.get("reason") or ""
        excerpt = str(message)
    else:
        excerpt = body[:_DETAIL_LIMIT].decode("utf-8", "replace")
    excerpt = " ".join(excerpt.split())[:_DETAIL_LIMIT]
    return redact(excerpt, secrets)


def status_failure(status_code: int, body: bytes, secrets: tuple[str, ...]) -> ProbeResult | None:
    """The failed ProbeResult a non-2xx status means, or None for a 2xx."""
    reason = reason_for_status(status_code)
    if reason is None:
        return None
    detail = f"HTTP {status_code}: {error_detail(body, secrets)}"
    return ProbeResult(None, Failure(reason, detail), status_code)


def json_answer(exchange: Exchange, secrets: tuple[str, ...]) -> Any | ProbeResult:
    """The decoded JSON of an exchange, or the failed ProbeResult it comes to: no
    answer, a non-2xx status, or a body that is not JSON."""
    if exchange.failure is not None:
        return ProbeResult(None, exchange.failure, exchange.status_code)
    failed = status_failure(exchange.status_code, exchange.body, secrets)
    if failed is not None:
        return failed
    document = decode_json(exchange.body)
    if isinstance(document, Failure):
        return ProbeResult(None, document, exchange.status_code)
    return document


def invalid(detail: str, status_code: int) -> ProbeResult:
    """A failed ProbeResult for an answer that is not a usable reading."""
    return ProbeResult(None, Failure(FailureReason.INVALID_RESPONSE, detail), status_code)


def why_not(result: ProbeResult) -> str:
    """A failed ProbeResult in the log's words: `reason: detail`."""
    failure = result.failure
    return f"{failure.reason.value}: {failure.detail}" if failure else "no answer"


def left_out(reading: Reading, part: str, why: str, log: ProbeLog | None) -> Reading:
    """The reading without `part` (say, "forecast"), which the answer could not give: the
    weather still counts; the probe's log says why, and the reading is kept briefly."""
    if log is not None:
        log.info(f"{part} left out; the weather is served without it", error=why)
    return lacking(reading, part)
