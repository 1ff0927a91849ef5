"""Metrics into an HTTP response through prometheus_client's own encoders.

The content type comes from the library (it changed between versions), and
OpenMetrics and gzip are negotiated from the request's headers.
"""

from __future__ import annotations

import gzip

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector
from werkzeug.wrappers import Request, Response


def metrics_response(registry: Collector, request: Request) -> Response:
    """`registry` encoded as the request asks (text or OpenMetrics, plain or gzip)."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(registry)
    response = Response(body, content_type=content_type)
    if gzip_accepted(request.headers.get("Accept-Encoding", "")):
        response.set_data(gzip.compress(body, compresslevel=1))
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept")
    response.vary.add("Accept-Encoding")
    return response
