"""The serving stack's ceiling: a WSGI app that does nothing but answer.

    .venv/bin/python bench/ceiling.py --bind 127.0.0.1:8000 --worker-class gevent --workers 2

Run by bench/run.py under gunicorn with the exporter's own serving settings
(`multitarget_exporter.server.gunicorn_config.settings`: worker class, workers, threads,
worker connections, keepalive, the post-request hook), monkey-patched first
thing under gevent as the exporter's CLI is. It answers with a body the size
of a probe's, so what it measures is gunicorn, the loopback and wrk, and
nothing of ours.
"""

from __future__ import annotations

import sys
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--worker-class", default="gevent", choices=("gevent", "gthread"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="default: the exporter's")
    args = parser.parse_args(argv)
    if args.worker_class == "gevent":
        # As the exporter's CLI does: before gunicorn and the serving settings are imported.
        from gevent import monkey

        monkey.patch_all()

    from gunicorn.app.base import BaseApplication

    from multitarget_exporter.server import gunicorn_config

    options = gunicorn_config.settings(
        args.worker_class, args.workers, args.threads or gunicorn_config.DEFAULT_THREADS
    )
    options.update({"bind": [args.bind], "loglevel": "warning"})

    class Ceiling(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Callable:
            return app

    Ceiling().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
