"""Weather warnings shared by the fake NWS, MetAlerts and Bright Sky: the scenario table,
the warnings a test sets with `POST /_fake/alerts`, and the neutral form that nws.py,
metalerts.py and bright_sky.py each render in their service's own shape.

Scenario times are relative to the start of the current UTC hour (the *anchor*), so a
point's answer is the same all hour long and its states are known at any moment of it
(onset and end in hours from the anchor; "now" is 0 to 1 hour past it):

| scenario  | what the point gets                                                           |
|-----------|-------------------------------------------------------------------------------|
| in_effect | one Severe warning, onset -2 h, ends +6 h                                     |
| upcoming  | one Extreme warning, onset +4 h (3 to 4 h from now), ends +16 h; NWS:         |
|           | `expires` +2 h, before the onset (the recorded Phoenix quirk)                 |
| ended     | one Moderate warning, onset -10 h, ends -2 h: still listed, but over          |
| cancelled | one Severe warning in its times, but NWS `messageType` / MetAlerts `type`     |
|           | "Cancel" (Bright Sky has no such field: DWD's cancelled warnings vanish)      |
| test      | one Severe (MetAlerts: Moderate) warning in its times, `status` "Test"        |
|           | (Bright Sky "test")                                                           |
| several   | one Moderate in effect (-1 h to +8 h), one Severe upcoming (+5 h), and a     |
|           | third in effect from -3 h: NWS Air Quality Alert (Unknown severity, urgency,  |
|           | certainty; `ends` null as recorded, so its end is `expires`, +10 h); Bright   |
|           | Sky frost with no end at all (`expires` null). MetAlerts has the first two    |

Points (4 decimals; a request's point is rounded to 4 decimals before it is looked up):

| source      | point              | place         | scenario  |
|-------------|--------------------|---------------|-----------|
| nws         | 39.7392,-104.9903  | Denver        | in_effect (High Wind Warning)           |
| nws         | 25.7617,-80.1918   | Miami         | upcoming (Hurricane Warning)            |
| nws         | 44.9778,-93.265    | Minneapolis   | ended (Winter Weather Advisory)         |
| nws         | 35.4676,-97.5164   | Oklahoma City | cancelled (Severe Thunderstorm Warning) |
| nws         | 47.6062,-122.3321  | Seattle       | test (Flash Flood Warning)              |
| nws         | 33.4484,-112.074   | Phoenix       | several                                 |
| met_norway  | 60.3913,5.3221     | Bergen        | in_effect (wind, orange)                |
| met_norway  | 68.4385,17.4273    | Narvik        | upcoming (stormSurge, red)              |
| met_norway  | 63.4305,10.3951    | Trondheim     | ended (rain, yellow)                    |
| met_norway  | 59.9139,10.7522    | Oslo          | cancelled (snow, orange)                |
| met_norway  | 58.97,5.7331       | Stavanger     | test (lightning, yellow)                |
| met_norway  | 62.4722,6.1495     | Ålesund       | several (gale yellow, forestFire orange)|
| dwd         | 53.5511,9.9937     | Hamburg       | in_effect (severe storm gusts)          |
| dwd         | 48.1351,11.582     | München       | upcoming (hurricane-force gusts)        |
| dwd         | 50.9375,6.9603     | Köln          | ended (persistent rain)                 |
| dwd         | 50.1109,8.6821     | Frankfurt     | test (heavy thunderstorm)               |
| dwd         | 49.4521,11.0767    | Nürnberg      | several                                 |

Every other point in a service's area has no warnings; a point outside it gets the
service's "outside" answer whatever is set here.

`POST /_fake/alerts` sets a point's warnings exactly, in place of the table:

    {"source": "nws" | "met_norway" | "dwd", "match": "LAT,LON" | "*",
     "alerts": [{"event": "Winter Storm Warning", "severity": "Severe",
                 "urgency": "Expected", "certainty": "Likely",
                 "onset_in": -600, "ends_in": 7200, "expires_in": 3600,
                 "effective_in": -900, "status": "Actual", "message_type": "Alert",
                 "headline": "...", "description": "...", "instruction": "..."}]}

Only `event` and `severity` are required. Times are seconds from the moment of the POST
(fixed from then on, so states move with the clock): `onset_in` defaults to 0,
`ends_in` to 6 hours (null: no end), `expires_in` to `ends_in`, `effective_in` to the
earlier of 0 and `onset_in`. CAP words are taken in any case and written as each
service writes them. `match` is rounded to 4 decimals as requests are; an exact match
wins over "*", and `"alerts": null` removes the setting. `/_fake/reset` forgets all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SOURCES = ("nws", "met_norway", "dwd")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MESSAGE_TYPES = ("Alert", "Update", "Cancel")
HOUR = 3600


@dataclass
class Answer:
    """One answer of a national service: a JSON document (or bytes, sent as they are)."""

    status: int
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    """One warning, in CAP's words (capitalised), with absolute times (Unix seconds)."""

    event: str
    severity: str
    urgency: str
    certainty: str
    onset: float
    ends: float | None
    expires: float | None
    effective: float
    status: str = "Actual"
    message_type: str = "Alert"
    headline: str | None = None
    description: str = ""
    instruction: str | None = None
    key: str = ""  # tells one point's warnings apart, for stable ids


@dataclass(frozen=True)
class _Spec:
    """A scenario's warning, in hours from the anchor."""

    event: str
    severity: str
    urgency: str
    certainty: str
    onset: float
    ends: float | None
    expires: float | str | None = "ends"  # "ends": the same as `ends`
    status: str = "Actual"
    message_type: str = "Alert"
    description: str = ""
    instruction: str | None = "Monitor the latest forecasts and warnings."

    def alert(self, anchor: int, index: int) -> Alert:
        expires = self.ends if self.expires == "ends" else self.expires
        assert not isinstance(expires, str)

        def at(hours: float | None) -> float | None:
            return None if hours is None else anchor + hours * HOUR

        onset = anchor + self.onset * HOUR
        return Alert(
            event=self.event,
            severity=self.severity,
            urgency=self.urgency,
            certainty=self.certainty,
            onset=onset,
            ends=at(self.ends),
            expires=at(expires),
            effective=min(onset, anchor - HOUR),
            status=self.status,
            message_type=self.message_type,
            description=self.description or f"{self.event} for the area.",
            instruction=self.instruction,
            key=f"{index}",
        )


SCENARIOS: dict[str, dict[str, list[_Spec]]] = {
    "in_effect": {
        "nws": [
            _Spec(
                "High Wind Warning",
                "Severe",
                "Immediate",
                "Observed",
                -2,
                6,
                3,
                description="* WHAT...West winds 35 to 45 mph with gusts up to 75 mph.\n\n"
                "* IMPACTS...Damaging winds will blow down trees and power lines.",
                instruction="Remain in the lower levels of your home during the windstorm.",
            )
        ],
        "met_norway": [_Spec("wind", "Severe", "Immediate", "Likely", -2, 6)],
        "dwd": [_Spec("severe storm gusts", "Severe", "Immediate", "Likely", -2, 6)],
    },
    "upcoming": {
        "nws": [_Spec("Hurricane Warning", "Extreme", "Future", "Likely", 4, 16, 2)],
        "met_norway": [_Spec("stormSurge", "Extreme", "Future", "Likely", 4, 16)],
        "dwd": [_Spec("hurricane-force gusts", "Extreme", "Future", "Likely", 4, 16)],
    },
    "ended": {
        "nws": [_Spec("Winter Weather Advisory", "Moderate", "Expected", "Likely", -10, -2)],
        "met_norway": [_Spec("rain", "Moderate", "Expected", "Likely", -10, -2)],
        "dwd": [_Spec("persistent rain", "Moderate", "Immediate", "Likely", -10, -2)],
    },
    "cancelled": {
        "nws": [
            _Spec(
                "Severe Thunderstorm Warning",
                "Severe",
                "Immediate",
                "Observed",
                -1,
                2,
                1,
                message_type="Cancel",
                description="The storm which prompted the warning has weakened.",
                instruction=None,
            )
        ],
        "met_norway": [_Spec("snow", "Severe", "Expected", "Likely", -1, 5, message_type="Cancel")],
    },
    "test": {
        "nws": [
            _Spec("Flash Flood Warning", "Severe", "Immediate", "Likely", -1, 5, status="Test")
        ],
        "met_norway": [_Spec("lightning", "Moderate", "Immediate", "Likely", -1, 5, status="Test")],
        "dwd": [
            _Spec("heavy thunderstorm", "Severe", "Immediate", "Observed", -1, 5, status="Test")
        ],
    },
    "several": {
        "nws": [
            _Spec("Heat Advisory", "Moderate", "Expected", "Likely", -1, 8, 4),
            _Spec("Extreme Heat Warning", "Severe", "Future", "Likely", 5, 20, 3),
            _Spec(
                "Air Quality Alert", "Unknown", "Unknown", "Unknown", -3, None, 10, instruction=None
            ),
        ],
        "met_norway": [
            _Spec("gale", "Moderate", "Immediate", "Observed", -1, 8),
            _Spec("forestFire", "Severe", "Future", "Likely", 5, 48),
        ],
        "dwd": [
            _Spec("thunderstorm", "Minor", "Immediate", "Likely", -1, 3),
            _Spec("extreme heat", "Severe", "Future", "Likely", 5, 20),
            _Spec("frost", "Minor", "Immediate", "Likely", -3, None),
        ],
    },
}

POINTS: dict[str, dict[tuple[float, float], tuple[str, str]]] = {
    "nws": {
        (39.7392, -104.9903): ("Denver", "in_effect"),
        (25.7617, -80.1918): ("Miami", "upcoming"),
        (44.9778, -93.265): ("Minneapolis", "ended"),
        (35.4676, -97.5164): ("Oklahoma City", "cancelled"),
        (47.6062, -122.3321): ("Seattle", "test"),
        (33.4484, -112.074): ("Phoenix", "several"),
    },
    "met_norway": {
        (60.3913, 5.3221): ("Bergen", "in_effect"),
        (68.4385, 17.4273): ("Narvik", "upcoming"),
        (63.4305, 10.3951): ("Trondheim", "ended"),
        (59.9139, 10.7522): ("Oslo", "cancelled"),
        (58.97, 5.7331): ("Stavanger", "test"),
        (62.4722, 6.1495): ("Ålesund", "several"),
    },
    "dwd": {
        (53.5511, 9.9937): ("Hamburg", "in_effect"),
        (48.1351, 11.582): ("München", "upcoming"),
        (50.9375, 6.9603): ("Köln", "ended"),
        (50.1109, 8.6821): ("Frankfurt am Main", "test"),
        (49.4521, 11.0767): ("Nürnberg", "several"),
    },
}

Overrides = dict[tuple[str, str], list[Alert]]


def point_key(latitude: float, longitude: float) -> tuple[float, float]:
    return round(latitude, 4), round(longitude, 4)


def _match_key(latitude: float, longitude: float) -> str:
    """`LAT,LON` with at most 4 decimals and no trailing zeros (`35.1,-106.6`)."""
    return ",".join(
        f"{value + 0.0:.4f}".rstrip("0").rstrip(".") for value in point_key(latitude, longitude)
    )


def anchor(now: float) -> int:
    """The start of the current UTC hour: scenario times count from it."""
    return int(now) // HOUR * HOUR


def place_name(source: str, latitude: float, longitude: float) -> str | None:
    entry = POINTS[source].get(point_key(latitude, longitude))
    return entry[0] if entry else None


def for_point(
    source: str, latitude: float, longitude: float, now: float, overrides: Overrides
) -> list[Alert]:
    """The point's warnings: those set for it, else those set for "*", else the table's."""
    for match in (_match_key(latitude, longitude), "*"):
        if (source, match) in overrides:
            return list(overrides[(source, match)])
    entry = POINTS[source].get(point_key(latitude, longitude))
    if entry is None:
        return []
    return [
        spec.alert(anchor(now), index)
        for index, spec in enumerate(SCENARIOS[entry[1]].get(source, []))
    ]


def table(source: str, now: float) -> list[tuple[tuple[float, float], str, list[Alert]]]:
    """Every table point of a source with its place name and warnings."""
    return [
        (point, name, for_point(source, *point, now, {}))
        for point, (name, _) in POINTS[source].items()
    ]


# -- POST /_fake/alerts -------------------------------------------------------------------

_FIELDS = {
    "event",
    "severity",
    "urgency",
    "certainty",
    "onset_in",
    "ends_in",
    "expires_in",
    "effective_in",
    "status",
    "message_type",
    "headline",
    "description",
    "instruction",
}


def _word(value: Any, allowed: tuple[str, ...], name: str) -> str:
    for word in allowed:
        if isinstance(value, str) and value.casefold() == word.casefold():
            return word
    raise ValueError(f"{name} must be one of {', '.join(allowed)}: {value!r}")


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number of seconds: {value!r}")
    return float(value)


def _alert(entry: Any, now: float, index: int) -> Alert:
    if not isinstance(entry, dict):
        raise ValueError(f"each alert is an object: {entry!r}")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ValueError(f"unknown alert fields {sorted(unknown)}")
    if not isinstance(entry.get("event"), str) or not entry["event"].strip():
        raise ValueError("each alert needs an event")
    onset = now + _seconds(entry.get("onset_in", 0), "onset_in")
    ends_in = entry.get("ends_in", 6 * HOUR)
    ends = None if ends_in is None else now + _seconds(ends_in, "ends_in")
    expires_in = entry.get("expires_in", ends_in)
    expires = None if expires_in is None else now + _seconds(expires_in, "expires_in")
    effective_in = entry.get("effective_in", min(0.0, onset - now))
    texts = {}
    for name in ("headline", "description", "instruction"):
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or null")
        texts[name] = value
    return Alert(
        event=entry["event"].strip(),
        severity=_word(entry.get("severity"), SEVERITIES, "severity"),
        urgency=_word(entry.get("urgency", "Unknown"), URGENCIES, "urgency"),
        certainty=_word(entry.get("certainty", "Unknown"), CERTAINTIES, "certainty"),
        onset=onset,
        ends=ends,
        expires=expires,
        effective=now + _seconds(effective_in, "effective_in"),
        status=_word(entry.get("status", "Actual"), STATUSES, "status"),
        message_type=_word(entry.get("message_type", "Alert"), MESSAGE_TYPES, "message_type"),
        headline=texts["headline"],
        description=texts["description"] or f"{entry['event'].strip()} for the area.",
        instruction=texts["instruction"],
        key=f"set-{int(now)}-{index}",
    )


def parse_setting(document: Any, now: float) -> tuple[str, str, list[Alert] | None]:
    """(source, match, alerts or None to remove) from the control request, or ValueError."""
    if not isinstance(document, dict):
        raise ValueError("a JSON object, please")
    unknown = set(document) - {"source", "match", "alerts"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    source = document.get("source")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}: {source!r}")
    match = document.get("match", "*")
    if match != "*":
        try:
            latitude, longitude = (float(part) for part in str(match).split(","))
        except ValueError:
            raise ValueError(f'match is "LAT,LON" or "*": {match!r}') from None
        match = _match_key(latitude, longitude)
    alerts = document.get("alerts")
    if alerts is None:
        return source, match, None
    if not isinstance(alerts, list):
        raise ValueError("alerts is a list (or null to remove the setting)")
    return source, match, [_alert(entry, now, index) for index, entry in enumerate(alerts)]
