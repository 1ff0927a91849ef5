"""A probe's answer, encoded in parts and reused, is byte for byte one fresh encoding.

The exposition keeps each reading's `weather_*` lines once encoded, in the
reading's cache entry (web/exposition.py); these tests compare its answers with
prometheus_client encoding the whole probe afresh, for every format the
library negotiates, over successes, failures, durations and reused readings.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.providers.geocoding import Place
from multitarget_exporter.providers.open_meteo import parse_forecast
from multitarget_exporter.providers.openweathermap import parse_air, parse_current
from multitarget_exporter.web import exposition
from multitarget_exporter.web.collector import ProbeCollector

FIXTURES = Path(__file__).parent / "fixtures"
ACCEPT = [
    "",
    "text/plain",
    "text/plain;version=1.0.0;escaping=underscores",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
]
DURATIONS = [0.0, 2.7e-05, 0.25, 0.123456789, 1.5, 9.999999, 1234567.0]


def fresh(result: ProbeResult, accept: str) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(result))
    encoder, _ = choose_encoder(accept)
    return encoder(registry)


def reused(result: ProbeResult, accept: str, kept: dict[str, bytes] | None = None) -> bytes:
    encoder, content_type = choose_encoder(accept)
    return exposition.probe_body(result, encoder, content_type, {} if kept is None else kept)


def owm(fixture: str) -> ProbeResult:
    return parse_current(json.loads((FIXTURES / "owm" / f"{fixture}.json").read_text("utf-8")))


def results() -> list[ProbeResult]:
    found = [
        replace(owm(name), cache_hit=hit) for name in ("full", "minimal") for hit in (False, True)
    ]
    meteo = json.loads((FIXTURES / "open_meteo" / "full.json").read_text("utf-8"))
    found.append(parse_forecast(meteo, 200, Place("Berlin", "DE", 52.52437, 13.41053)))
    index, pollutants = parse_air(json.loads((FIXTURES / "owm" / "air.json").read_text("utf-8")))
    with_air = replace(
        found[0].reading, air_quality_index=index, air_pollutants_grams_per_cubic_meter=pollutants
    )
    found.append(replace(found[0], reading=with_air))
    odd = replace(found[0].reading, temperature_celsius=-0.0, pressure_pascals=1e21)
    found.append(replace(found[0], reading=odd))
    for reason in FailureReason:
        found.append(ProbeResult(None, Failure(reason, "detail not shown"), 0))
    found.append(ProbeResult(None, Failure(FailureReason.UPSTREAM_ERROR, "x"), 503))
    return found


@pytest.mark.parametrize("accept", ACCEPT)
def test_every_shape_format_and_duration_matches_a_fresh_encoding(accept):
    for result in results():
        for duration in DURATIONS:
            probe = replace(result, duration_seconds=duration)
            expected = fresh(probe, accept)
            kept: dict[str, bytes] = {}
            assert reused(probe, accept, kept) == expected
            assert reused(probe, accept, kept) == expected  # and again, from what was kept


def test_a_cached_reading_is_encoded_once_per_format(monkeypatch):
    result = owm("full")
    calls = []
    encode = exposition.reading_metrics

    def counting(reading):
        calls.append(reading)
        return encode(reading)

    monkeypatch.setattr(exposition, "reading_metrics", counting)
    kept: dict[str, bytes] = {}
    for duration in (0.1, 0.2, 0.3):
        for accept in ("", "application/openmetrics-text"):
            reused(replace(result, duration_seconds=duration, cache_hit=True), accept, kept)
    assert len(calls) == 2  # one per format, not one per probe
    # A changed reading (a new fetch, a new cache entry) starts with nothing kept.
    changed = replace(result.reading, temperature_celsius=-3.0)
    body = reused(replace(result, reading=changed), "", {})
    assert b"weather_temperature_celsius -3.0\n" in body and len(calls) == 3


def test_hostile_accept_headers_cannot_grow_what_a_reading_keeps():
    result = owm("full")
    kept: dict[str, bytes] = {}
    for i in range(50):
        accept = f"application/openmetrics-text;version=1.0.{i}"
        assert reused(result, accept, kept) == fresh(result, accept)
    assert len(kept) <= 4
