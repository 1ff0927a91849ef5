"""Metrics into an HTTP response through prometheus_client's own encoders.

The content type comes from the library (it changed between versions), and
OpenMetrics and gzip are negotiated from the request's headers.

A probe's answer is its `probe_*` families followed by its reading's
`weather_*` families; each family is an independent block of the format, so
blocks encoded apart join into the bytes one encoding would give. The
reading's block, about thirty families, is encoded once per format and kept
in its cache entry; a cache hit encodes only its few `probe_*` lines (which
change with every probe).
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable, Iterable

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from werkzeug.wrappers import Request, Response

from multitarget_exporter.model.reading import ProbeResult
from multitarget_exporter.web.collector import probe_metrics, reading_metrics

Encoder = Callable[[Collector], bytes]

_EOF = b"# EOF\n"  # OpenMetrics' last line; plain text has none
_OPENMETRICS = "application/openmetrics-text"
# Formats one reading keeps encoded: the library's few content types are all a
# scraper asks for, and the bound holds whatever Accept headers arrive.
_FORMATS_KEPT = 4


class _Families:
    """Families already built, in the shape the encoders take (anything with `collect`)."""

    __slots__ = ("_families",)

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def encode_block(families: Iterable[Metric], encoder: Encoder) -> bytes:
    """Families in one format, without OpenMetrics' closing line: a block to join."""
    encoded = encoder(_Families(families))
    return encoded[: -len(_EOF)] if encoded.endswith(_EOF) else encoded


def probe_body(
    result: ProbeResult,
    encoder: Encoder,
    content_type: str,
    kept: dict[str, bytes],
    extra: Iterable[Metric] = (),
    blocks: Callable[[Encoder, str], bytes] | None = None,
) -> bytes:
    """The probe's answer in one format: its `probe_*` families, `extra`, the families
    `blocks` gives already encoded (its warnings), then its reading's (from `kept`, the
    reading's encodings by format, where it was encoded before)."""
    body = encode_block(itertools.chain(probe_metrics(result), extra), encoder)
    if blocks is not None:
        body += blocks(encoder, content_type)
    reading = result.reading
    if reading is not None:
        encoded = kept.get(content_type)
        if encoded is None:
            encoded = encode_block(reading_metrics(reading), encoder)
            if len(kept) < _FORMATS_KEPT:
                # Two probes may both encode a new reading; they store the same bytes.
                kept[content_type] = encoded
        body += encoded
    return body + _EOF if content_type.startswith(_OPENMETRICS) else body


def probe_response(
    result: ProbeResult,
    request: Request,
    kept: dict[str, bytes],
    extra: Iterable[Metric] = (),
    blocks: Callable[[Encoder, str], bytes] | None = None,
) -> Response:
    """A finished probe encoded as the request asks, with `extra` families and `blocks`'
    encoded ones (its warnings)."""
    encoder, content_type = choose_encoder(_header(request, "HTTP_ACCEPT"))
    body = probe_body(result, encoder, content_type, kept, extra, blocks)
    return _response(body, content_type, request)


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
