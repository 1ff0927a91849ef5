"""MET Norway's MetAlerts 2.0 (`GET /weatherapi/metalerts/2.0/current.json?lat=..&lon=..&lang=en`
on api.met.no; keyless, CC BY 4.0) as provider-neutral warnings.

A point outside Norway's land, coast and sea regions gets a 422, so any
readable 200 answer is a covered point (with no features: no warnings). A
warning lasts `when.interval` [onset, end], which sits beside `properties`
in each feature. Severity is CAP's `severity`, or, where that is missing or
not a CAP word, the colour of `awareness_level` ("2; yellow; Moderate").
MetAlerts gives no urgency. Cancellations (`type` Cancel) and messages whose
`status` is not actual are left out.
"""

from __future__ import annotations

from typing import Any

from multitarget_exporter.model.warning import (
    SEVERITY_LEVELS,
    WarningsAnswer,
    WeatherWarning,
    answer_of,
    cancelled,
    cap_word,
    coordinate_text,
    label_text,
    not_actual,
    noted_instant,
    warning_from,
)

NAME = "met_norway"
DEFAULT_BASE_URL = "https://api.met.no"
ALERTS_PATH = "/weatherapi/metalerts/2.0/current.json"
# awareness_level "N; colour; Severity": its number or its colour, in CAP's words.
_AWARENESS = {
    "1": "minor",
    "2": "moderate",
    "3": "severe",
    "4": "extreme",
    "green": "minor",
    "yellow": "moderate",
    "orange": "severe",
    "red": "extreme",
}
_LONGEST_AWARENESS = 64


def alerts_request(latitude: float, longitude: float) -> tuple[str, dict[str, str]]:
    """The path and query of a point's current alerts, in English (4 decimals, as MET
    Norway's terms ask)."""
    return ALERTS_PATH, {
        "lat": coordinate_text(latitude),
        "lon": coordinate_text(longitude),
        "lang": "en",
    }


def severity_of(properties: dict[str, Any]) -> str:
    """CAP's severity, or the one `awareness_level` names when `severity` says none."""
    word = cap_word(properties.get("severity"), SEVERITY_LEVELS)
    if word != "unknown":
        return word
    level = properties.get("awareness_level")
    if not isinstance(level, str) or len(level) > _LONGEST_AWARENESS:
        return "unknown"
    for part in level.split(";")[:2]:
        named = _AWARENESS.get(part.strip().lower())
        if named is not None:
            return named
    return "unknown"


def _interval(feature: dict[str, Any], properties: dict[str, Any]) -> list[Any]:
    """`when.interval` of a feature (beside `properties`; inside it, if a source moves it)."""
    when = feature.get("when", properties.get("when"))
    interval = when.get("interval") if isinstance(when, dict) else None
    if not isinstance(interval, list):
        return [None, None]
    return [*interval[:2], None, None][:2]


def parse_alerts(document: Any, now: float) -> WarningsAnswer | str:
    """The warnings of a 200 answer not ended at `now`, or why the answer cannot be read."""
    if not isinstance(document, dict):
        return "the answer is not a JSON object"
    features = document.get("features")
    if not isinstance(features, list):
        return "the answer has no features list"
    found: list[WeatherWarning] = []
    notes: list[str] = []
    for position, feature in enumerate(features):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(feature, dict) or not isinstance(properties, dict):
            notes.append(f"feature {position} has no properties: skipped")
            continue
        if not_actual(properties.get("status")) or cancelled(properties.get("type")):
            continue
        event = label_text(properties.get("event")) or "unknown"
        start, end = _interval(feature, properties)
        found.append(
            warning_from(
                NAME,
                event=event,
                severity=severity_of(properties),
                urgency=properties.get("urgency"),
                certainty=properties.get("certainty"),
                onset=noted_instant((start,), "onset", event, notes, required=True),
                ends=noted_instant((end,), "end", event, notes),
                headline=properties.get("title"),
                description=properties.get("description"),
                instruction=properties.get("instruction"),
            )
        )
    return answer_of(NAME, found, notes, now)
