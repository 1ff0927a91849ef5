"""The serving stack's ceiling: a WSGI app that does nothing but answer.

Run by bench/run.py under gunicorn with the exporter's own worker and thread
settings; it answers with a body the size of a probe's, so what it measures
is gunicorn, the loopback and wrk, and nothing of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# About the size of a cached probe's answer in the text format.
_BODY = b"".join(
    b"# HELP weather_metric_%d A gauge.\n# TYPE weather_metric_%d gauge\nweather_metric_%d 1.0\n"
    % (i, i, i)
    for i in range(30)
)
_HEADERS = [
    ("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
    ("Content-Length", str(len(_BODY))),
]


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", _HEADERS)
    return [_BODY]
