"""A point's warnings, kept decoded and encoded between probes, answer as a fresh encoding would.

A cached probe with warnings on reuses two things (web/warning_metrics.py,
warnings/lookup.py): the answer the lookup decoded once, and its families
encoded per format. These tests compare the reused bytes with prometheus_client
encoding the families afresh, across the moments a warning comes into effect
and ends, and check that a kept answer is read from the store once.
"""

from __future__ import annotations

import pytest
from prometheus_client.exposition import choose_encoder

from multitarget_exporter.config.modules import parse_config
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.warning import WarningsAnswer, WeatherWarning
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.upstream.revalidation import MemoryValidators, Validated
from multitarget_exporter.warnings.lookup import WarningsLookup, _document
from multitarget_exporter.web.exposition import encode_block
from multitarget_exporter.web.warning_metrics import EncodedWarnings, answer_metrics, next_change

ACCEPT = ["", "application/openmetrics-text;version=1.0.0"]
NOW = 1_800_000_000.0


def warning(event: str, onset: float | None, ends: float | None) -> WeatherWarning:
    return WeatherWarning("dwd", event, "severe", "immediate", "likely", onset, ends)


def answer() -> WarningsAnswer:
    return WarningsAnswer(
        covered=True,
        warnings=(
            warning("STURMBÖEN", NOW - 600, NOW + 3600),  # in effect, ends in an hour
            warning("GLÄTTE", NOW + 1800, NOW + 7200),  # upcoming, in effect in half an hour
            warning("FROST", None, None),  # in effect until no longer listed
        ),
        source="dwd",
    )


def afresh(found: WarningsAnswer, now: float, accept: str) -> bytes:
    encoder, _ = choose_encoder(accept)
    return encode_block(answer_metrics(found, now), encoder)


@pytest.mark.parametrize("accept", ACCEPT)
def test_a_kept_block_is_the_fresh_encoding_at_every_moment(accept: str) -> None:
    encoded, found = EncodedWarnings(), answer()
    encoder, content_type = choose_encoder(accept)
    moments = [NOW, NOW + 1, NOW + 1799, NOW + 1800, NOW + 1801, NOW + 3600, NOW + 7200, NOW + 9e5]
    seen = set()
    for now in moments:
        block = encoded.block(found, now, encoder, content_type)
        assert block == afresh(found, now, accept), now
        seen.add(block)
    # Three changes (coming into effect, ending, ending) give four different blocks.
    assert len(seen) == 4


def test_the_next_change_is_the_first_onset_or_end_still_to_come() -> None:
    found = answer()
    assert next_change(found, NOW) == NOW + 1800
    assert next_change(found, NOW + 1800) == NOW + 3600
    assert next_change(found, NOW + 7200) == float("inf")


def test_an_equal_answer_of_its_own_gets_its_own_block() -> None:
    """Blocks are kept per answer object: a new answer (say, a warning added at the same
    counts) is encoded afresh, never answered with the old one's bytes."""
    encoded = EncodedWarnings()
    encoder, content_type = choose_encoder("")
    first = answer()
    encoded.block(first, NOW, encoder, content_type)
    renewed = WarningsAnswer(True, (warning("GEWITTER", None, None),), "dwd")
    assert encoded.block(renewed, NOW, encoder, content_type) == afresh(renewed, NOW, "")
    assert b"GEWITTER" in encoded.block(renewed, NOW, encoder, content_type)


class CountingStore(MemoryValidators):
    def __init__(self) -> None:
        super().__init__(100)
        self.gets = 0

    def get(self, key: str) -> Validated | None:
        self.gets += 1
        return super().get(key)


def lookup_with(store: CountingStore, clock: list[float]) -> WarningsLookup:
    config = parse_config(
        {
            "modules": {
                "warned": {
                    "provider": "open_meteo",
                    "warnings": ["dwd"],
                    "warnings_urls": {"dwd": "http://127.0.0.1:9"},
                    "warnings_ttl": "10m",
                }
            }
        }
    )
    return WarningsLookup(config.modules["warned"], store, clock=lambda: clock[0])


def test_a_kept_answer_is_read_from_the_store_once_while_it_is_fresh() -> None:
    store, clock = CountingStore(), [NOW]
    lookup = lookup_with(store, clock)
    key = "alerts|dwd|http://127.0.0.1:9|53.5511,9.9937"
    store.put(key, Validated(NOW + 600, "", 200, _document(answer(), NOW - 60)), 3600)
    outcomes = [lookup.lookup(53.5511, 9.9937, Deadline(1.0), ProbeLog()) for _ in range(5)]
    assert all(o.success and o.answer is outcomes[0].answer for o in outcomes)
    assert [w.event for w in outcomes[0].answer.warnings] == ["STURMBÖEN", "GLÄTTE", "FROST"]
    assert store.gets == 1
    # Past the module's ttl, the kept copy is not served: the store is read again and,
    # its answer being as old, the source is asked (nothing listens there: a failure).
    clock[0] = NOW + 600
    late = lookup.lookup(53.5511, 9.9937, Deadline(1.0), ProbeLog())
    assert store.gets > 1
    assert not late.success
