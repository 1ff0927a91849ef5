"""Germany's DWD warnings through Bright Sky (`GET /alerts?lat=..&lon=..` on
api.brightsky.dev; DWD open data, keyless) as provider-neutral warnings.

Bright Sky names the warn cell a point lies in (`location`); an answer
without one is a point outside Germany, as is a 404. `alerts: []` with a
location is a covered point with no warnings. Its CAP words are already
lower case. Events, headlines and texts are read in English (`event_en`),
in German where the English one is missing. Newer answers carry a `status`;
one that is not actual is left out, and older answers have none.
"""

from __future__ import annotations

from typing import Any

from multitarget_exporter.model.warning import (
    WarningsAnswer,
    WeatherWarning,
    answer_of,
    coordinate_text,
    label_text,
    not_actual,
    noted_instant,
    outside,
    warning_from,
)

NAME = "dwd"
DEFAULT_BASE_URL = "https://api.brightsky.dev"
ALERTS_PATH = "/alerts"


def alerts_request(latitude: float, longitude: float) -> tuple[str, dict[str, str]]:
    """The path and query of a point's alerts."""
    return ALERTS_PATH, {"lat": coordinate_text(latitude), "lon": coordinate_text(longitude)}


def _english(alert: dict[str, Any], field: str) -> Any:
    """A text in English, else in German (None when neither is a non-empty string)."""
    for language in ("en", "de"):
        value = alert.get(f"{field}_{language}")
        if isinstance(value, str) and value.strip():
            return value
    return None


def parse_alerts(document: Any, now: float) -> WarningsAnswer | str:
    """The warnings of a 200 answer not ended at `now` (or that the point lies outside),
    or why the answer cannot be read."""
    if not isinstance(document, dict):
        return "the answer is not a JSON object"
    if not isinstance(document.get("location"), dict):
        return outside()
    alerts = document.get("alerts")
    if not isinstance(alerts, list):
        return "the answer has no alerts list"
    found: list[WeatherWarning] = []
    notes: list[str] = []
    for position, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            notes.append(f"alert {position} is not an object: skipped")
            continue
        if not_actual(alert.get("status")):
            continue
        event = label_text(_english(alert, "event")) or "unknown"
        onset = noted_instant(
            (alert.get("onset"), alert.get("effective")), "onset", event, notes, required=True
        )
        found.append(
            warning_from(
                NAME,
                event=event,
                severity=alert.get("severity"),
                urgency=alert.get("urgency"),
                certainty=alert.get("certainty"),
                onset=onset,
                ends=noted_instant((alert.get("expires"),), "end", event, notes),
                headline=_english(alert, "headline"),
                description=_english(alert, "description"),
                instruction=_english(alert, "instruction"),
            )
        )
    return answer_of(NAME, found, notes, now)
