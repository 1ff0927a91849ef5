"""Official weather warnings as provider-neutral values, and how a warning stands at a moment.

Each warning source (`warnings/nws.py`, `met_norway.py`, `dwd.py`) turns its
answer into `WeatherWarning`s in CAP's words (severity, urgency, certainty,
lower-cased, `unknown` for anything else), with times as Unix seconds and
every text bounded, so that nothing after the parsers knows a source's shape
and no answer, however odd, can grow a label or a log line without limit.
The helpers the three parsers share live here too: they are pure, and
`warnings/` may not import `providers/` (whose time parser reads no offsets).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from multitarget_exporter.model.targets import POINT_DECIMALS, rounded

SEVERITY_LEVELS: dict[str, int] = {
    "minor": 1,
    "moderate": 2,
    "severe": 3,
    "extreme": 4,
    "unknown": 1,
}
URGENCIES = frozenset({"immediate", "expected", "future", "past", "unknown"})
CERTAINTIES = frozenset({"observed", "likely", "possible", "unlikely", "unknown"})
# CAP's `status` values that say a message is not for acting on (spec section 16).
NOT_ACTUAL = frozenset({"test", "exercise", "system", "draft"})

UPCOMING = "upcoming"
IN_EFFECT = "in_effect"

EVENT_LIMIT = 64
HEADLINE_LIMIT = 300
TEXT_LIMIT = 2000
NOTE_LIMIT = 200
MOST_NOTES = 10
# More than any point has had at once; beyond it the answer is cut, and says so.
MOST_WARNINGS = 100
DOCUMENT_VERSION = 1

_LONGEST_WORD = 32  # no CAP word is longer; a longer value is not one
_LONGEST_TIME = 40  # "2024-07-18T12:47:00.123456+07:00" and then some
# How much of a text is read at most, per character kept: bounds the work on a huge
# value (a text that starts with pages of control characters is then read as empty).
_SCAN_FACTOR = 4


def cap_word(value: Any, known: Collection[str]) -> str:
    """A CAP word lower-cased, or `unknown` for anything that is not one of `known`: the
    label's values stay a closed set whatever a source sends."""
    if not isinstance(value, str) or len(value) > _LONGEST_WORD:
        return "unknown"
    word = value.strip().lower()
    return word if word in known else "unknown"


def label_text(value: Any, limit: int = EVENT_LIMIT) -> str:
    """A text fit for one line (a label value, a headline): control and format
    characters removed, whitespace runs made one space, at most `limit` characters."""
    if not isinstance(value, str):
        return ""
    kept = []
    for character in value[: max(limit, 64) * _SCAN_FACTOR]:
        if character.isspace():
            kept.append(" ")
        elif not unicodedata.category(character).startswith("C"):
            kept.append(character)
    return " ".join("".join(kept).split())[:limit].rstrip()


def prose(value: Any, limit: int = TEXT_LIMIT) -> str:
    """A text of several lines (a description, an instruction) bounded for a log: line
    breaks kept, tabs made spaces, other control and format characters removed."""
    if not isinstance(value, str):
        return ""
    lines = value[: limit * _SCAN_FACTOR].replace("\r\n", "\n").replace("\r", "\n")
    kept = []
    for character in lines:
        if character == "\n":
            kept.append(character)
        elif character.isspace():
            kept.append(" ")
        elif not unicodedata.category(character).startswith("C"):
            kept.append(character)
    return "".join(kept).strip()[:limit].rstrip()


def instant(value: Any) -> float | None:
    """A Unix time from an ISO 8601 time with its UTC offset (`2024-07-18T12:47:00-07:00`,
    `...Z`, fractional seconds), or None: a time without an offset names no moment."""
    if not isinstance(value, str) or len(value) > _LONGEST_TIME:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed.timestamp()  # aware: plain arithmetic, no platform clock to overflow


def not_actual(status: Any) -> bool:
    """Whether a message's `status` says it is a test, an exercise, a system message or a
    draft (any case); no status at all is an actual message (older answers have none)."""
    return isinstance(status, str) and status.strip().lower() in NOT_ACTUAL


def cancelled(message_type: Any) -> bool:
    """Whether a CAP `msgType` (NWS `messageType`, MetAlerts `type`) cancels an earlier
    message: a cancellation warns of nothing."""
    return isinstance(message_type, str) and message_type.strip().lower() == "cancel"


def noted_instant(
    candidates: Sequence[Any], what: str, event: str, notes: list[str], *, required: bool = False
) -> float | None:
    """The first of `candidates` (a source's fields in order of preference, None where
    absent) that reads as a time; a note for each one there that does not, and for a
    `required` time that is not there at all."""
    for candidate in candidates:
        if candidate is None:
            continue
        found = instant(candidate)
        if found is not None:
            return found
        if isinstance(candidate, str):
            shown = repr(label_text(candidate, 40))
        else:
            shown = f"a JSON {type(candidate).__name__}"
        notes.append(f"{what} did not parse for {event!r}: {shown}")
    if required and all(candidate is None for candidate in candidates):
        notes.append(f"no {what} for {event!r}")
    return None


def coordinate_text(value: float) -> str:
    """A coordinate as sent to a warning source: rounded as every point is (`targets.rounded`,
    4 decimals, -0 as 0), written without trailing zeros, so nearby targets ask as one point.

    `providers/met_norway.py` writes the same rounded value with `repr` ("6.0" for 6);
    the NWS answers "30,-85" and "30.0,-85.0" alike.
    """
    if not math.isfinite(value):
        raise ValueError(f"coordinate {value!r} is not a number")
    written = f"{rounded(value):.{POINT_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if written in ("-0", "") else written


@dataclass(frozen=True, slots=True)
class WeatherWarning:
    """One warning a source lists for a point. Times are Unix seconds, None when not given
    (or not readable); texts are bounded, and only `event` and the CAP words go into
    labels."""

    source: str
    event: str
    severity: str
    urgency: str
    certainty: str
    onset: float | None
    ends: float | None
    headline: str = ""
    description: str = ""
    instruction: str = ""

    @property
    def level(self) -> int:
        return SEVERITY_LEVELS.get(self.severity, 1)

    def state_at(self, now: float) -> str | None:
        """`upcoming` before the onset, `in_effect` from it, None once ended (left out).

        Without a readable onset a warning is in effect (spec section 12); without an
        end it lasts until the source stops listing it. An end is checked first, so a
        message whose end lies before its onset is never shown after that end.
        """
        if self.ends is not None and now >= self.ends:
            return None
        if self.onset is not None and now < self.onset:
            return UPCOMING
        return IN_EFFECT


def warning_from(
    source: str,
    *,
    event: Any,
    severity: Any,
    urgency: Any,
    certainty: Any,
    onset: float | None,
    ends: float | None,
    headline: Any = None,
    description: Any = None,
    instruction: Any = None,
) -> WeatherWarning:
    """A WeatherWarning from a source's raw values: words checked, texts bounded (an event
    that comes to nothing is `unknown`, never an empty label)."""
    return WeatherWarning(
        source=source,
        event=label_text(event, EVENT_LIMIT) or "unknown",
        severity=cap_word(severity, SEVERITY_LEVELS),
        urgency=cap_word(urgency, URGENCIES),
        certainty=cap_word(certainty, CERTAINTIES),
        onset=onset,
        ends=ends,
        headline=label_text(headline, HEADLINE_LIMIT),
        description=prose(description, TEXT_LIMIT),
        instruction=prose(instruction, TEXT_LIMIT),
    )


@dataclass(frozen=True, slots=True)
class WarningsAnswer:
    """What a source said about a point: whether it covers it, its warnings not yet ended,
    and what in the answer could not be read (`notes`, for the probe's log)."""

    covered: bool
    warnings: tuple[WeatherWarning, ...]
    source: str
    notes: tuple[str, ...] = ()

    def to_document(self) -> dict[str, Any]:
        """A plain JSON-able dict, for a shared cache (Redis)."""
        return {
            "version": DOCUMENT_VERSION,
            "covered": self.covered,
            "source": self.source,
            "notes": list(self.notes),
            "warnings": [
                {
                    "source": warning.source,
                    "event": warning.event,
                    "severity": warning.severity,
                    "urgency": warning.urgency,
                    "certainty": warning.certainty,
                    "onset": warning.onset,
                    "ends": warning.ends,
                    "headline": warning.headline,
                    "description": warning.description,
                    "instruction": warning.instruction,
                }
                for warning in self.warnings
            ],
        }

    @classmethod
    def from_document(cls, document: Any) -> WarningsAnswer:
        """The answer a `to_document` dict holds, bounded again (a shared store is written
        by others too); ValueError for anything else, such as a damaged cache entry or one
        of another version, which the caller treats as no entry."""
        if not isinstance(document, dict) or document.get("version") != DOCUMENT_VERSION:
            raise ValueError("not a warnings answer of this version")
        covered, source = document.get("covered"), document.get("source")
        entries, notes = document.get("warnings"), document.get("notes")
        if not isinstance(covered, bool) or not isinstance(source, str):
            raise ValueError("a warnings answer without `covered` or `source`")
        if not isinstance(entries, list) or not isinstance(notes, list):
            raise ValueError("a warnings answer without `warnings` or `notes` lists")
        return cls(
            covered=covered,
            warnings=tuple(_warning_of(entry) for entry in entries[:MOST_WARNINGS]),
            source=label_text(source, EVENT_LIMIT),
            notes=tuple(label_text(note, NOTE_LIMIT) for note in notes[:MOST_NOTES]),
        )


def _time_of(value: Any) -> float | None:
    """A stored time: a finite number or null; ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"a stored time that is not one: {type(value).__name__}")
    return float(value)


def _warning_of(entry: Any) -> WeatherWarning:
    if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
        raise ValueError("a stored warning without a source")
    return warning_from(
        label_text(entry["source"], EVENT_LIMIT),
        event=entry.get("event"),
        severity=entry.get("severity"),
        urgency=entry.get("urgency"),
        certainty=entry.get("certainty"),
        onset=_time_of(entry.get("onset")),
        ends=_time_of(entry.get("ends")),
        headline=entry.get("headline"),
        description=entry.get("description"),
        instruction=entry.get("instruction"),
    )


def answer_of(
    source: str, found: Iterable[WeatherWarning], notes: Iterable[str], now: float
) -> WarningsAnswer:
    """A covered point's answer: the warnings not ended at `now`, at most MOST_WARNINGS,
    and at most MOST_NOTES notes (the rest counted in the last one)."""
    kept = [warning for warning in found if warning.state_at(now) is not None]
    all_notes = list(notes)
    if len(kept) > MOST_WARNINGS:
        all_notes.append(f"{len(kept) - MOST_WARNINGS} warnings beyond {MOST_WARNINGS} left out")
        kept = kept[:MOST_WARNINGS]
    if len(all_notes) > MOST_NOTES:
        more = len(all_notes) - (MOST_NOTES - 1)
        all_notes = [*all_notes[: MOST_NOTES - 1], f"and {more} more notes"]
    return WarningsAnswer(
        covered=True,
        warnings=tuple(kept),
        source=source,
        notes=tuple(label_text(note, NOTE_LIMIT) for note in all_notes),
    )


def outside() -> WarningsAnswer:
    """The answer for a point the source does not cover."""
    return WarningsAnswer(covered=False, warnings=(), source="")
