"""Typed reads of configuration mappings, every problem recorded with its key path.

Both configuration files (the modules and `--web.config.file`) are read
through this, so both report every problem at once, one line each, in the
same words: `modules.default.timeout: must be between 1ms and 5m`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from multitarget_exporter.model.ratelimit import RateLimit

_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_DURATION_NAMES = ("y", "w", "d", "h", "m", "s", "ms")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_RATE = re.compile(r"(\d{1,9})\s*/\s*(s|m|h)")
_RATE_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_ALLOWED_TARGETS = 1000


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (`500ms`, `10s`, `1h30m`, `0`); ValueError otherwise."""
    text = text.strip()
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 500ms, 10s, 10m or 1h")
    return sum(int(v) * unit for v, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if v)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for `seconds` (`1h30m`, `500ms`, `0s`)."""
    milliseconds = round(seconds * 1000)
    if milliseconds == 0:
        return "0s"
    parts = []
    for unit, name in zip(_DURATION_UNITS, _DURATION_NAMES, strict=True):
        unit_ms = round(unit * 1000)
        count, milliseconds = divmod(milliseconds, unit_ms)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)


class Fields:
    """Typed reads of one mapping's values, each problem recorded against its key."""

    def __init__(self, where: str, raw: Mapping[str, Any], problems: list[str]) -> None:
        self.where, self.raw, self.problems = where, raw, problems

    @classmethod
    def mapping(
        cls,
        value: Any,
        where: str,
        known: frozenset[str],
        problems: list[str],
        what: str = "a mapping",
    ) -> Fields:
        """The fields of `value`, which must be a mapping of `known` keys (absent: empty)."""
        if value is None:
            return cls(where, {}, problems)
        if not isinstance(value, dict):
            problems.append(f"{where}: must be {what}")
            return cls(where, {}, problems)
        fields = cls(where, value, problems)
        fields.unknown_keys(known)
        return fields

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}.{key}: {message}")

    def given(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def text(self, key: str, default: str) -> str:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(key, f"must be a string, not {type(value).__name__}")
            return default

        def lookup(match: re.Match[str]) -> str:
            if match[1] not in os.environ:
                self.problem(key, f"environment variable {match[1]} is not set")
                return ""
            return os.environ[match[1]]

        return _ENV_REFERENCE.sub(lookup, value)

    def url(self, key: str, default: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.text(key, default)
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.hostname or parts.scheme == "unix"):
            self.problem(key, f"{value!r} is not a URL with scheme {' or '.join(schemes)}")
        elif parts.query or parts.fragment:
            self.problem(key, f"{value!r} must not have a query or fragment")
        return value.rstrip("/") if parts.scheme in ("http", "https") else value

    def duration(self, key: str, default: float, minimum: float, maximum: float) -> float:
        value = self.raw.get(key)
        if value is None:
            return default
        if value == 0 and not isinstance(value, bool):
            seconds = 0.0
        elif not isinstance(value, str):
            self.problem(key, f"must be a duration like 10s, not {type(value).__name__}")
            return default
        else:
            try:
                seconds = parse_duration(self.text(key, ""))
            except ValueError as error:
                self.problem(key, str(error))
                return default
        if not minimum <= seconds <= maximum:
            span = f"{format_duration(minimum)} and {format_duration(maximum)}"
            self.problem(key, f"must be between {span}")
            return default
        return seconds

    def durations(
        self, key: str, most: int, maximum: float, maximum_text: str = ""
    ) -> tuple[tuple[str, float], ...]:
        """A list of at most `most` distinct durations, each above 0 and at most `maximum`
        (said as `maximum_text`), as (the text as written, seconds)."""
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > most:
            self.problem(key, f"must be a list of at most {most} durations like 3h")
            return ()
        found: list[tuple[str, float]] = []
        for index, item in enumerate(value):
            where = f"{key}[{index}]"
            if not isinstance(item, str):
                self.problem(where, f"must be a duration like 3h, not {item!r}")
                continue
            try:
                seconds = parse_duration(item)
            except ValueError as error:
                self.problem(where, str(error))
                continue
            if not 0 < seconds <= maximum:
                most_text = maximum_text or format_duration(maximum)
                self.problem(where, f"{item!r} must be above 0 and at most {most_text}")
            elif any(seconds == known for _, known in found):
                self.problem(where, f"{item!r} is the same as an earlier entry")
            else:
                found.append((item.strip(), seconds))
        return tuple(found)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, not {value!r}")
            return default
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be a whole number, not {value!r}")
            return default
        if not minimum <= value <= maximum:
            self.problem(key, f"must be between {minimum} and {maximum}")
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            self.problem(key, f"{value!r} is not one of {', '.join(choices)}")
            return default
        return value

    def names(self, key: str, choices: tuple[str, ...]) -> tuple[str, ...]:
        """A list of distinct names from `choices`, in the order given (absent: empty)."""
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > len(choices):
            self.problem(key, f"must be a list of at most {len(choices)} of {', '.join(choices)}")
            return ()
        chosen: list[str] = []
        for index, name in enumerate(value):
            if name not in choices:
                self.problem(f"{key}[{index}]", f"{name!r} is not one of {', '.join(choices)}")
            elif name in chosen:
                self.problem(f"{key}[{index}]", f"{name!r} is listed twice")
            else:
                chosen.append(name)
        return tuple(chosen)

    def rate(self, key: str) -> RateLimit | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        match = _RATE.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match or int(match[1]) < 1:
            self.problem(key, f"{value!r} is not a rate like 60/m (per s, m or h)")
            return None
        return RateLimit(int(match[1]), _RATE_PERIODS[match[2]])

    def patterns(self, key: str) -> tuple[re.Pattern[str], ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > _MAX_ALLOWED_TARGETS:
            self.problem(
                key, f"must be a list of at most {_MAX_ALLOWED_TARGETS} regular expressions"
            )
            return ()
        compiled = []
        for index, pattern in enumerate(value):
            if not isinstance(pattern, str):
                self.problem(f"{key}[{index}]", "must be a string")
                continue
            try:
                compiled.append(re.compile(pattern))
            except re.error as error:
                self.problem(f"{key}[{index}]", f"{pattern!r} is not a regular expression: {error}")
        return tuple(compiled)

    def unknown_keys(self, known: frozenset[str]) -> None:
        for key in sorted(set(self.raw) - known, key=str):
            self.problem(str(key), f"unknown key (known: {', '.join(sorted(known))})")
