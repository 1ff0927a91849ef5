"""The US National Weather Service's active alerts (`GET /alerts/active?point=LAT,LON` on
api.weather.gov; keyless, public domain) as provider-neutral warnings.

Whether the NWS covers a point is for `/points/LAT,LON` to say (404: outside
the US and its territories), so any readable alerts answer is a covered
point. Messages that are not actual (`status` Test, Exercise, System, Draft)
and cancellations are left out. A warning's onset is `onset`, else
`effective`; its end `ends`, else `expires`: `expires` is when the message
runs out, which can come before the hazard's onset (recorded in Phoenix).
"""

from __future__ import annotations

from typing import Any

from multitarget_exporter.model.warning import (
    WarningsAnswer,
    WeatherWarning,
    answer_of,
    cancelled,
    coordinate_text,
    label_text,
    not_actual,
    noted_instant,
    warning_from,
)

NAME = "nws"
DEFAULT_BASE_URL = "https://api.weather.gov"
ALERTS_PATH = "/alerts/active"


def _point(latitude: float, longitude: float) -> str:
    return f"{coordinate_text(latitude)},{coordinate_text(longitude)}"


def alerts_request(latitude: float, longitude: float) -> tuple[str, dict[str, str]]:
    """The path and query of a point's active alerts (4 decimals: more are redirected)."""
    return ALERTS_PATH, {"point": _point(latitude, longitude)}


def points_request(latitude: float, longitude: float) -> str:
    """The path that says whether the NWS covers a point (404: it does not)."""
    return f"/points/{_point(latitude, longitude)}"


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
        if not isinstance(properties, dict):
            notes.append(f"feature {position} has no properties: skipped")
            continue
        if not_actual(properties.get("status")) or cancelled(properties.get("messageType")):
            continue
        event = label_text(properties.get("event")) or "unknown"
        onset = noted_instant(
            (properties.get("onset"), properties.get("effective")),
            "onset",
            event,
            notes,
            required=True,
        )
        ends = noted_instant(
            (properties.get("ends"), properties.get("expires")), "end", event, notes
        )
        found.append(
            warning_from(
                NAME,
                event=event,
                severity=properties.get("severity"),
                urgency=properties.get("urgency"),
                certainty=properties.get("certainty"),
                onset=onset,
                ends=ends,
                headline=properties.get("headline"),
                description=properties.get("description"),
                instruction=properties.get("instruction"),
            )
        )
    return answer_of(NAME, found, notes, now)
