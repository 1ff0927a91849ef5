"""A point's official warnings as metric families: counts, levels and one series per kind.

No I/O, like the reading's collector: a finished lookup in, families out. A
warning's state (in effect or upcoming) is decided at the probe, so a kept
answer moves an upcoming warning into effect, and drops an ended one, as time
passes. Label values are the sources' bounded words (CAP's for severity,
urgency and certainty); headlines and descriptions never become labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from multitarget_exporter.model.warning import WarningsAnswer, WeatherWarning
from multitarget_exporter.upstream.store import ExpiringStore
from multitarget_exporter.warnings.lookup import WarningsOutcome
from multitarget_exporter.web.exposition import Encoder, encode_block

STATES = ("in_effect", "upcoming")
_KIND_LABELS = ["source", "event", "severity", "urgency", "certainty", "state"]


# Answers whose families are kept encoded, per format (a few formats each).
_ENCODED_ENTRIES = 4000
# A block is let go after a day at most, changed or not (the answer is long renewed by then).
_LONGEST_SECONDS = 24 * 3600.0


def warnings_metrics(outcome: WarningsOutcome, now: float) -> Iterator[Metric]:
    """`probe_warnings_success`, then, with an answer to report, the warning families."""
    yield success_metric(outcome)
    if outcome.answer is not None:
        yield from answer_metrics(outcome.answer, now)


def success_metric(outcome: WarningsOutcome) -> Metric:
    """`probe_warnings_success`: whether the walk over the sources ended without a failure."""
    return GaugeMetricFamily(
        "probe_warnings_success",
        "Whether the point's warnings were read (or no source covers it).",
        value=float(outcome.success),
    )


def next_change(answer: WarningsAnswer, now: float) -> float:
    """When the answer's families next change by themselves: the first onset or end
    after `now` (a warning comes into effect or ends); infinity when none is coming."""
    times = [t for w in answer.warnings for t in (w.onset, w.ends) if t is not None and t > now]
    return min(times, default=math.inf)


class EncodedWarnings:
    """Warning families kept encoded per answer and format until they next change.

    The lookup hands the same answer object to every probe while it is fresh, so a
    cached probe encodes only its `probe_*` lines: the warnings' block is joined in
    as bytes, like the reading's. A kept block holds its answer, so the answer's
    identity cannot be taken over by another while the block lives."""

    def __init__(self, max_entries: int = _ENCODED_ENTRIES) -> None:
        self._kept: ExpiringStore[tuple[WarningsAnswer, float, bytes]] = ExpiringStore(max_entries)

    def block(self, answer: WarningsAnswer, now: float, encoder: Encoder, format: str) -> bytes:
        """The answer's families at `now`, encoded in `format` by `encoder`."""
        key = f"{id(answer)}|{format}"
        kept = self._kept.get(key)
        if kept is not None and kept[0] is answer and now < kept[1]:
            return kept[2]
        encoded = encode_block(answer_metrics(answer, now), encoder)
        until = next_change(answer, now)
        self._kept.put(key, (answer, until, encoded), min(until - now, _LONGEST_SECONDS))
        return encoded


def answer_metrics(answer: WarningsAnswer, now: float) -> Iterator[Metric]:
    """The families of an answer to report: whether a source covers the point and, if
    one does, its warnings at `now`."""
    yield GaugeMetricFamily(
        "weather_warnings_covered",
        "Whether a warnings source covers the point.",
        value=float(answer.covered),
    )
    if not answer.covered:
        return
    by_state: dict[str, list[WeatherWarning]] = {state: [] for state in STATES}
    for warning in answer.warnings:
        state = warning.state_at(now)
        if state is not None:
            by_state[state].append(warning)
    count = GaugeMetricFamily(
        "weather_warnings", "Official weather warnings for the point.", labels=["state"]
    )
    level = GaugeMetricFamily(
        "weather_warning_level",
        "Highest warning level for the point: 1 minor, 2 moderate, 3 severe, 4 extreme; "
        "0 when none.",
        labels=["state"],
    )
    for state, warnings in by_state.items():
        count.add_metric([state], float(len(warnings)))
        level.add_metric([state], float(max((w.level for w in warnings), default=0)))
    yield count
    yield level
    yield from _kinds(by_state)


def _kinds(by_state: dict[str, list[WeatherWarning]]) -> Iterator[Metric]:
    """One series per distinct kind of warning, with its earliest onset and latest end."""
    onsets: dict[tuple[str, ...], float | None] = {}
    ends: dict[tuple[str, ...], float | None] = {}
    for state, warnings in by_state.items():
        for w in warnings:
            labels: tuple[str, ...] = (w.source, w.event, w.severity, w.urgency, w.certainty, state)
            if labels not in onsets:
                onsets[labels], ends[labels] = w.onset, w.ends
                continue
            if w.onset is not None:
                known = onsets[labels]
                onsets[labels] = w.onset if known is None else min(known, w.onset)
            if w.ends is not None:
                known = ends[labels]
                ends[labels] = w.ends if known is None else max(known, w.ends)
    info = GaugeMetricFamily(
        "weather_warning_info", "1 for each kind of warning for the point.", labels=_KIND_LABELS
    )
    onset = GaugeMetricFamily(
        "weather_warning_onset_timestamp_seconds",
        "Earliest onset among the warnings of this kind, as a Unix time.",
        labels=_KIND_LABELS,
    )
    end = GaugeMetricFamily(
        "weather_warning_ends_timestamp_seconds",
        "Latest end among the warnings of this kind that give one, as a Unix time.",
        labels=_KIND_LABELS,
    )
    for labels, first in onsets.items():
        info.add_metric(list(labels), 1.0)
        if first is not None:
            onset.add_metric(list(labels), first)
        last = ends[labels]
        if last is not None:
            end.add_metric(list(labels), last)
    yield from (family for family in (info, onset, end) if family.samples)
