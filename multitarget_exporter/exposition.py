"""Metrics into an HTTP response through prometheus_client's own encoders.

The content type comes from the library (it changed between versions), and
OpenMetrics and gzip are negotiated from the request's headers.

A probe's answer is its `probe_*` families followed by its reading's
`weather_*` families; each family is an independent block of the format, so
blocks encoded apart join into the bytes one encoding would give. Work that
repeats is done once. A family that is one unlabelled gauge sample (most of
them) is encoded by the library once per format with a marker for its value,
and from then on is that template with the value put in, formatted by the
library's own `floatToGoString`; labelled families are encoded by the library
each time. And a reading keeps its encoded families, per format, for as long
as it is cached, so a cache hit encodes only the few `probe_*` lines.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from werkzeug.wrappers import Request, Response

from multitarget_exporter.collector import probe_metrics, reading_metrics
from multitarget_exporter.reading import ProbeResult

Encoder = Callable[[Collector], bytes]

_EOF = b"# EOF\n"  # OpenMetrics' last line; plain text has none
_OPENMETRICS = "application/openmetrics-text"
# Formats one reading keeps encoded: the library's few content types are all a
# scraper asks for, and the bound holds whatever Accept headers arrive.
_FORMATS_KEPT = 4
# The value written into a family's template, found and replaced afterwards.
_MARK = 0.123456789
_MARK_TEXT = floatToGoString(_MARK).encode()
_TEMPLATES_KEPT = 1024  # families x formats: about 40 x the few formats scrapers ask for
_templates: dict[tuple[str, ...], tuple[bytes, bytes] | None] = {}


class _Families:
    """Families already built, in the shape the encoders take (anything with `collect`)."""

    __slots__ = ("_families",)

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _without_eof(encoded: bytes) -> bytes:
    return encoded[: -len(_EOF)] if encoded.endswith(_EOF) else encoded


def _template(family: Metric, encoder: Encoder, content_type: str) -> tuple[bytes, bytes] | None:
    """The family's block with its one value cut out; None if the marker is not found once."""
    key = (content_type, family.name, family.documentation, family.type, family.unit)
    if key in _templates:
        return _templates[key]
    marked = Metric(family.name, family.documentation, family.type, family.unit)
    marked.add_sample(family.name, {}, _MARK)
    encoded = _without_eof(encoder(_Families([marked])))
    template = None
    if encoded.count(_MARK_TEXT) == 1:
        before, _, after = encoded.partition(_MARK_TEXT)
        template = (before, after)
    if len(_templates) < _TEMPLATES_KEPT:
        _templates[key] = template
    return template


def _encode(families: Iterable[Metric], encoder: Encoder, content_type: str) -> bytes:
    """Families in one format, without OpenMetrics' closing line."""
    parts: list[bytes] = []
    for family in families:
        samples = family.samples
        if family.type == "gauge" and len(samples) == 1:
            sample = samples[0]
            plain = sample.name == family.name and not sample.labels
            if plain and sample.timestamp is None and sample.exemplar is None:
                template = _template(family, encoder, content_type)
                if template is not None:
                    parts += (template[0], floatToGoString(sample.value).encode(), template[1])
                    continue
        parts.append(_without_eof(encoder(_Families([family]))))
    return b"".join(parts)


def probe_body(result: ProbeResult, encoder: Encoder, content_type: str) -> bytes:
    """The probe's answer in one format: its `probe_*` families, then its reading's."""
    body = _encode(probe_metrics(result), encoder, content_type)
    reading = result.reading
    if reading is not None:
        encoded = reading.rendered.get(content_type)
        if encoded is None:
            encoded = _encode(reading_metrics(reading), encoder, content_type)
            if len(reading.rendered) < _FORMATS_KEPT:
                # Two threads may both encode a new reading; they store the same bytes.
                reading.rendered[content_type] = encoded
        body += encoded
    return body + _EOF if content_type.startswith(_OPENMETRICS) else body


def probe_response(result: ProbeResult, request: Request) -> Response:
    """A finished probe encoded as the request asks."""
    encoder, content_type = choose_encoder(_header(request, "HTTP_ACCEPT"))
    return _response(probe_body(result, encoder, content_type), content_type, request)


def metrics_response(registry: Collector, request: Request) -> Response:
    """`registry` encoded as the request asks (text or OpenMetrics, plain or gzip)."""
    encoder, content_type = choose_encoder(_header(request, "HTTP_ACCEPT"))
    return _response(encoder(registry), content_type, request)


_VARY = ("Vary", "Accept, Accept-Encoding")


def _header(request: Request, key: str) -> str:
    """A request header straight from the WSGI environ (werkzeug's `headers.get` builds
    and catches an exception for every absent header, and scrapers omit some)."""
    return request.environ.get(key, "")


def _response(body: bytes, content_type: str, request: Request) -> Response:
    headers = [_VARY]
    if gzip_accepted(_header(request, "HTTP_ACCEPT_ENCODING")):
        body = gzip.compress(body, compresslevel=1)
        headers.append(("Content-Encoding", "gzip"))
    return Response(body, content_type=content_type, headers=headers)
