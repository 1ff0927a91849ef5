"""Forecast steps: which of a provider's steps a horizon falls in, and the local days.

Every provider's forecast is a list of steps, each stamped with its start. A
step covers the time from its stamp to the next step's (the last one, its
nominal length). Horizon `H` picks the step containing now + `H`; a moment
before the first step or after the last is in none, and its horizon is left
out rather than extrapolated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import Horizon

Step = TypeVar("Step")

SECONDS_PER_DAY = 86400.0
_SHORTEST_DAY = 23 * 3600.0  # the day clocks go forward
_LONGEST_DAY = 25 * 3600.0  # the day they go back
# Open-Meteo's local times, and MET Norway's UTC ones ("...Z": read at offset 0).
_ISO_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ")


def moment(value: Any, utc_offset_seconds: float = 0.0) -> float | None:
    """A Unix time from an answer's time: a number as it is, or an ISO 8601 local time
    (`2026-10-03T12:30`, `2026-10-03`) at `utc_offset_seconds`; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str) or len(value) > 32:
        return None
    for layout in _ISO_FORMATS:
        try:
            local = datetime.strptime(value, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return local.timestamp() - utc_offset_seconds
    return None


def moments(values: Any, utc_offset_seconds: float = 0.0) -> list[float | None]:
    """`moment` of each entry of a list (empty for anything but a list)."""
    if not isinstance(values, list):
        return []
    return [moment(value, utc_offset_seconds) for value in values]


def step_index(
    times: Sequence[float | None], at: float, length_seconds: float, longest_seconds: float = 0.0
) -> int | None:
    """The index of the step that contains `at`, or None.

    Step i covers [times[i], the next step's time), and no longer than
    `longest_seconds` (default: `length_seconds`) across a gap in the stamps; the
    last one `length_seconds`. Entries that are not times (None) start no step;
    times must ascend.
    """
    longest = longest_seconds or length_seconds
    stamped = [(index, start) for index, start in enumerate(times) if start is not None]
    for position, (index, start) in enumerate(stamped):
        last = position + 1 == len(stamped)
        end = start + length_seconds if last else min(stamped[position + 1][1], start + longest)
        if end <= start:
            return None  # not ascending: no step can be trusted
        if start <= at < end:
            return index
    return None


def at_horizons(
    times: Sequence[float | None],
    horizons: Sequence[Horizon],
    now: float,
    length_seconds: float,
    make: Callable[[int, str], Step],
) -> tuple[list[Step], list[str]]:
    """One step per horizon whose moment (`now` + H) falls in a step, made by
    `make(index, label)`, and the labels of the horizons that fall in none."""
    found: list[Step] = []
    beyond: list[str] = []
    for horizon in horizons:
        index = step_index(times, now + horizon.seconds, length_seconds)
        if index is None:
            beyond.append(horizon.label)
        else:
            found.append(make(index, horizon.label))
    return found, beyond


def ascending(times: Sequence[float | None]) -> bool:
    """Whether the stamped times rise from one to the next (an answer out of order, or
    with a time twice, has no steps to trust)."""
    stamped = [start for start in times if start is not None]
    return all(later > earlier for earlier, later in itertools.pairwise(stamped))


def stamped_after(times: Sequence[float | None], index: int, length_seconds: float) -> int | None:
    """The index of the entry stamped exactly `length_seconds` after entry `index` (where a
    sum over step `index` is stamped), or None when the answer lacks it."""
    following = index + 1
    if following >= len(times):
        return None
    start, end = times[index], times[following]
    if start is None or end is None or end != start + length_seconds:
        return None
    return following


def day_indexes(times: Sequence[float | None], now: float) -> dict[str, int]:
    """Which daily entries are today and tomorrow, given each day's start (local midnight):
    local days last 23 to 25 hours, and an entry after another by more or less is no day."""
    found: dict[str, int] = {}
    today = step_index(times, now, SECONDS_PER_DAY, _LONGEST_DAY)
    if today is None:
        return found
    found["today"] = today
    start = times[today]
    following = today + 1
    if start is not None and following < len(times):
        tomorrow = times[following]
        if tomorrow is not None and _SHORTEST_DAY <= tomorrow - start <= _LONGEST_DAY:
            found["tomorrow"] = following
    return found


def value_at(values: Any, index: int | None) -> float | None:
    """The finite number at `index` of a list, or None."""
    if index is None or not isinstance(values, list) or not 0 <= index < len(values):
        return None
    value = values[index]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
