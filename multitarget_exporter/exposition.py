"""Metrics into an HTTP response through prometheus_client's own encoders.

The content type comes from the library (it changed between versions), and
OpenMetrics and gzip are negotiated from the request's headers.

A probe's answer is its `probe_*` families followed by its reading's
`weather_*` families; the families are independent blocks of the format, so
parts encoded apart join into the bytes one encoding would give. Work that
repeats is done once: a reading's families are encoded once per format and
kept with the reading for as long as it is cached, and the `probe_*` families,
which differ between probes of one shape (success, reason, status, cache hit)
only in the duration, are encoded once per shape and format with a marker
where the duration goes.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from dataclasses import replace

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from werkzeug.wrappers import Request, Response

from multitarget_exporter.collector import probe_metrics, probe_metrics_shape, reading_metrics
from multitarget_exporter.reading import ProbeResult

Encoder = Callable[[Collector], bytes]

_EOF = b"# EOF\n"  # OpenMetrics' last line; plain text has none
# Formats one reading keeps encoded: the library's few content types are all a
# scraper asks for, and the bound holds whatever Accept headers arrive.
_FORMATS_KEPT = 4
# The duration written into a shape's encoding, found and replaced afterwards;
# no other value of the probe_* families (0, 1, a status code) can contain it.
_MARK = 0.123456789
_MARK_TEXT = floatToGoString(_MARK).encode()
_SHAPES_KEPT = 512  # shapes x formats; status codes make the shapes many, in theory
_shapes: dict[tuple[object, ...], tuple[bytes, bytes]] = {}


class _Families:
    """Families already built, in the shape the encoders take (anything with `collect`)."""

    __slots__ = ("_families",)

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _probe_head(result: ProbeResult, encoder: Encoder, content_type: str) -> bytes:
    key = (content_type, *probe_metrics_shape(result))
    parts = _shapes.get(key)
    if parts is None:
        marked = encoder(_Families(probe_metrics(replace(result, duration_seconds=_MARK))))
        before, found, after = marked.partition(_MARK_TEXT)
        if not found or _MARK_TEXT in after:  # not one mark: encode this probe directly
            return encoder(_Families(probe_metrics(result)))
        parts = (before, after)
        if len(_shapes) < _SHAPES_KEPT:
            _shapes[key] = parts
    return parts[0] + floatToGoString(result.duration_seconds).encode() + parts[1]


def probe_body(result: ProbeResult, encoder: Encoder, content_type: str) -> bytes:
    """The probe's answer in one format: its `probe_*` families, then its reading's."""
    head = _probe_head(result, encoder, content_type)
    reading = result.reading
    if reading is None:
        return head
    tail = reading.rendered.get(content_type)
    if tail is None:
        tail = encoder(_Families(reading_metrics(reading)))
        if len(reading.rendered) < _FORMATS_KEPT:
            # Two threads may both encode a new reading; they store the same bytes.
            reading.rendered[content_type] = tail
    if head.endswith(_EOF):
        head = head[: -len(_EOF)]
    return head + tail


def probe_response(result: ProbeResult, request: Request) -> Response:
    """A finished probe encoded as the request asks."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return _response(probe_body(result, encoder, content_type), content_type, request)


def metrics_response(registry: Collector, request: Request) -> Response:
    """`registry` encoded as the request asks (text or OpenMetrics, plain or gzip)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return _response(encoder(registry), content_type, request)


_VARY = ("Vary", "Accept, Accept-Encoding")


def _response(body: bytes, content_type: str, request: Request) -> Response:
    headers = [_VARY]
    if gzip_accepted(request.headers.get("Accept-Encoding", "")):
        body = gzip.compress(body, compresslevel=1)
        headers.append(("Content-Encoding", "gzip"))
    return Response(body, content_type=content_type, headers=headers)
