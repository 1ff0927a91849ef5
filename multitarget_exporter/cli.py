"""`multitarget-exporter`: Prometheus-style flags, serving through an embedded gunicorn.

gevent workers by default: probes spend their time waiting on the upstream
and clients may be slow, and a greenlet per connection waits on either
cheaply, where a thread pool runs out (`server/gunicorn_config.py` says more). One process
by default means one in-memory cache for every probe.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence

from multitarget_exporter import __version__
from multitarget_exporter.probing.history import DEFAULT_LIMIT
from multitarget_exporter.runtime import logs
from multitarget_exporter.server import gunicorn_config

# Nothing imported above may import prometheus_client: it chooses how to store
# metric values when first imported, and main() must first point it at the
# directory the workers share (multiprocess mode). Nor may it make a lock or
# a thread-local at import: under gevent those must be made after patching.

log = logging.getLogger("multitarget_exporter")

_LISTEN_ADDRESS = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(?P<port>\d{1,5})")


def gunicorn_bind(listen_address: str) -> str:
    """`:9265` (every interface), `127.0.0.1:9265` or `[::1]:9265` as a gunicorn bind."""
    match = _LISTEN_ADDRESS.fullmatch(listen_address.strip())
    if not match or int(match["port"]) > 65535:
        raise argparse.ArgumentTypeError(
            f"{listen_address!r} is not [host]:port, like :9265 or 127.0.0.1:9265"
        )
    host = match["host"] or "0.0.0.0"  # noqa: S104 - `:port` means every interface, as in Go
    return f"{host}:{int(match['port'])}"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _history_limit(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError("must be between 0 and 100000")
    return value


def _offset(text: str) -> float:
    value = float(text)
    if not 0 <= value < 60:
        raise argparse.ArgumentTypeError("must be between 0 and 60 seconds")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with the Prometheus exporter conventions' flag names."""
    parser = argparse.ArgumentParser(
        prog="multitarget-exporter",
        description="A multi-target Prometheus exporter for weather.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help="YAML file of modules (default: the built-in modules)",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="check the configuration file, print OK or its problems, and exit",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":9265",
        type=gunicorn_bind,
        metavar="[HOST]:PORT",
        help="where to listen (default :9265)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="TLS, basic auth, rate limit and headers, in exporter-toolkit's web-config.yml format",
    )
    parser.add_argument(
        "--timeout-offset",
        dest="timeout_offset",
        default=0.5,
        type=_offset,
        metavar="SECONDS",
        help="subtracted from X-Prometheus-Scrape-Timeout-Seconds (default 0.5)",
    )
    parser.add_argument(
        "--log.level", dest="log_level", default="info", choices=sorted(logs.LOG_LEVELS)
    )
    parser.add_argument(
        "--log.format", dest="log_format", default="logfmt", choices=logs.LOG_FORMATS
    )
    parser.add_argument(
        "--workers", default=1, type=_positive_int, help="gunicorn worker processes (default 1)"
    )
    parser.add_argument(
        "--worker-class",
        dest="worker_class",
        default="gevent",
        choices=gunicorn_config.WORKER_CLASSES,
        help="gevent (default): a greenlet per connection, so slow clients and a stuck "
        "upstream hold nothing scarce; gthread: a pool of --threads threads a worker",
    )
    parser.add_argument(
        "--worker-connections",
        dest="worker_connections",
        default=gunicorn_config.WORKER_CONNECTIONS,
        type=_positive_int,
        help="gevent: connections a worker serves at once, slow and hostile ones included "
        f"(default {gunicorn_config.WORKER_CONNECTIONS})",
    )
    parser.add_argument(
        "--threads",
        default=gunicorn_config.DEFAULT_THREADS,
        type=_positive_int,
        help="gthread: threads a worker, probes that can wait on the upstream at once "
        f"(default {gunicorn_config.DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--history.limit",
        dest="history_limit",
        default=DEFAULT_LIMIT,
        type=_history_limit,
        metavar="N",
        help=f"recent successes, and failures, kept for / and /logs (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--version", action="version", version=f"multitarget_exporter {__version__}"
    )
    return parser.parse_args(argv)


def _print_problems(problems: list[str]) -> None:
    for problem in problems:
        print(f"multitarget-exporter: config error: {problem}", file=sys.stderr)


def _check(config_file: str | None, web_config_file: str | None) -> int:
    """`--config.check`: both files, with the problems start-up would refuse them for."""
    from multitarget_exporter.config.files import ConfigError
    from multitarget_exporter.config.modules import read_config
    from multitarget_exporter.config.web import load_web_config
    from multitarget_exporter.server.tls import tls_context

    problems: list[str] = []
    try:
        read_config(config_file)
    except ConfigError as error:
        problems += error.problems
    if web_config_file:
        # Inline certificates are written out to be loaded: into a folder of their own.
        with tempfile.TemporaryDirectory(prefix="multitarget_exporter.check.") as scratch:
            try:
                web = load_web_config(web_config_file, scratch)
                if web.tls is not None:
                    tls_context(web.tls)  # a certificate and key that do not match, say
            except ConfigError as error:
                problems += error.problems
            except (OSError, ValueError) as error:
                problems.append(f"web config: tls_server_config: {error}")
    if problems:
        _print_problems(problems)
        return 1
    checked = [config_file or "built-in modules", *([web_config_file] if web_config_file else [])]
    print(f"multitarget-exporter: {', '.join(checked)}: OK")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the exporter until it is told to stop."""
    args = parse_args(argv)
    if args.worker_class == "gevent" and not args.config_check:
        # First of all: every lock, thread-local and socket made from here on is
        # gevent's, and gunicorn's workers inherit them through the fork.
        from gevent import monkey

        monkey.patch_all()
    if args.config_check:
        return _check(args.config_file, args.web_config_file)
    logs.setup_logging(args.log_level, args.log_format)
    gunicorn_config.raise_open_file_limit(args.worker_connections)
    # Private to this exporter: the workers share metrics and probe history through it.
    state_dir = tempfile.mkdtemp(prefix="multitarget_exporter.")
    owner = os.getpid()
    metrics_dir = os.path.join(state_dir, "metrics")
    os.mkdir(metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        from multitarget_exporter.server.embedded import serve

        problems = serve(args, state_dir)
        if problems:
            _print_problems(problems)
            return 1
        return 0
    finally:
        # gunicorn's workers are forks of this process and unwind through this very
        # frame when they exit: only the master may remove what the workers share.
        if os.getpid() == owner:
            shutil.rmtree(state_dir, ignore_errors=True)
