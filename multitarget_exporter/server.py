"""The exporter served by an embedded gunicorn: workers, TLS, reload, shared metrics.

Imported by the CLI only after PROMETHEUS_MULTIPROC_DIR is set, so every
worker writes its metrics where `/metrics` adds them up.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from typing import Any

from gunicorn.app.base import BaseApplication
from prometheus_client import multiprocess

from multitarget_exporter import __version__, logs
from multitarget_exporter.app import ExporterApp
from multitarget_exporter.config import ConfigError
from multitarget_exporter.history import SqliteHistory
from multitarget_exporter.webconfig import (
    WebConfig,
    WebGuard,
    gunicorn_tls_options,
    load_web_config,
)

log = logging.getLogger("multitarget_exporter")


class EmbeddedGunicorn(BaseApplication):
    """gunicorn serving one already-built app, configured from our flags only."""

    def __init__(
        self,
        app: ExporterApp,
        options: dict[str, Any],
        web: WebConfig | None = None,
        web_config_file: str | None = None,
        state_dir: str = "",
    ) -> None:
        self._app = app
        self._options = options
        self._web_config_file = web_config_file
        self._state_dir = state_dir
        self._options.update(gunicorn_tls_options(web.tls if web else None))
        self._served: Any = WebGuard(app, web) if web else app
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self._served

    def reload(self) -> None:
        """On SIGHUP, before gunicorn forks new workers: they inherit what this loads."""
        self._app.reload()
        self._options["graceful_timeout"] = graceful_seconds(self._app)
        if self._web_config_file and isinstance(self._served, WebGuard):
            try:
                web = load_web_config(self._web_config_file, self._state_dir)
            except ConfigError as error:
                for problem in error.problems:
                    log.error(
                        "web config reload failed, unchanged",
                        extra={"fields": {"problem": problem}},
                    )
            else:
                self._served = WebGuard(self._app, web)
                self._options.update(gunicorn_tls_options(web.tls))
        super().reload()


def gunicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """The gunicorn settings our flags stand for."""
    return {
        "bind": [args.listen_address],
        "workers": args.workers,
        "threads": args.threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": args.log_level if args.log_level != "warn" else "warning",
        "logconfig_dict": logs.logging_dict(args.log_level, args.log_format),
        "logger_class": logs.GunicornLogger,
        "proc_name": "multitarget_exporter",
        "forwarded_allow_ips": "127.0.0.1,::1",
        # gunicorn >= 25.1 opens a control socket in $HOME by default: one per
        # user, so a second exporter (or a test) would fight over it.
        "control_socket_disable": True,
        # A dead worker's live gauges must leave /metrics; its counters stay in the totals.
        "child_exit": _child_exit,
    }


def graceful_seconds(app: ExporterApp) -> int:
    """How long a stopping worker may take: long enough for any probe to meet its deadline."""
    longest = max((m.timeout_seconds for m in app.state.config.modules.values()), default=0.0)
    return max(30, math.ceil(longest) + 5)


def _child_exit(server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)


def serve(args: argparse.Namespace, state_dir: str) -> list[str]:
    """Serve until told to stop; the configuration's problems if it cannot start."""
    history = SqliteHistory(os.path.join(state_dir, "history.sqlite"), args.history_limit)
    try:
        web = load_web_config(args.web_config_file, state_dir) if args.web_config_file else None
        app = ExporterApp.from_file(
            args.config_file, args.timeout_offset, embedded=True, history=history
        )
    except ConfigError as error:
        return error.problems
    options = gunicorn_options(args)
    options["graceful_timeout"] = graceful_seconds(app)
    server = EmbeddedGunicorn(app, options, web, args.web_config_file, state_dir)
    log.info(
        "starting",
        extra={
            "fields": {
                "version": __version__,
                "listen": args.listen_address,
                "workers": args.workers,
                "threads": args.threads,
            }
        },
    )
    server.run()
    return []
