"""The exporter served by an embedded gunicorn: workers, TLS, reload, shared metrics.

Imported by the CLI only after PROMETHEUS_MULTIPROC_DIR is set (so every
worker writes its metrics where `/metrics` adds them up) and, under gevent,
after the standard library is patched.

Reload swaps the configuration in place in every worker (`server/reload.py`)
instead of gunicorn's worker restart: `SIGHUP` to the master publishes the
files as the next generation, and `POST /-/reload` does the same from a
worker and answers once every worker serves it.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from prometheus_client import multiprocess

from multitarget_exporter import __version__
from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.probing.history import SqliteHistory
from multitarget_exporter.runtime import logs
from multitarget_exporter.server import gunicorn_config
from multitarget_exporter.server.reload import Generations
from multitarget_exporter.server.stack import Served

log = logging.getLogger("multitarget_exporter")


class _Arbiter(Arbiter):
    """gunicorn's master, except that SIGHUP reloads in place rather than restarting workers."""

    def handle_hup(self) -> None:
        self.log.info("Hang up: reloading the configuration in every worker")
        self.app.reload_in_place()


class EmbeddedGunicorn(BaseApplication):
    """gunicorn serving one already-built app, configured from our flags only."""

    def __init__(self, served: Served, options: dict[str, Any]) -> None:
        self._served = served
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)
        self.cfg.set("post_worker_init", self._post_worker_init)
        self.cfg.set("child_exit", self._child_exit)

    def load(self) -> Any:
        return self._served

    def run(self) -> None:
        _Arbiter(self).run()

    def reload_in_place(self) -> None:
        """SIGHUP: publish the files as the next generation; the workers follow."""
        try:
            self._served.reload_in_place()
        except Exception:  # the master must outlive any reload
            log.exception("reload failed")

    def _post_worker_init(self, worker: Any) -> None:
        """In each new worker, before it serves: catch up with the latest generation."""
        self._served.follow()

    def _child_exit(self, server: Any, worker: Any) -> None:
        # A dead worker's live gauges must leave /metrics; its counters stay in the totals.
        multiprocess.mark_process_dead(worker.pid)
        self._served.coordinator.generations.forget(worker.pid)


def gunicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """The gunicorn settings our flags stand for."""
    return {
        **gunicorn_config.settings(
            args.worker_class, args.workers, args.threads, args.worker_connections
        ),
        "bind": [args.listen_address],
        "errorlog": "-",
        "loglevel": args.log_level if args.log_level != "warn" else "warning",
        "logconfig_dict": logs.logging_dict(args.log_level, args.log_format),
    }


def serve(args: argparse.Namespace, state_dir: str) -> list[str]:
    """Serve until told to stop; the configuration's problems if it cannot start."""
    history = SqliteHistory(os.path.join(state_dir, "history.sqlite"), args.history_limit)
    try:
        generations = Generations(os.path.join(state_dir, "config"))
    except ConfigError as error:
        return error.problems
    served, problems = Served.start(
        generations,
        os.getpid(),
        (args.config_file, args.web_config_file),
        state_dir,
        args.timeout_offset,
        history,
    )
    if served is None:
        return problems
    options = gunicorn_options(args)
    options.update(served.tls_options())
    server = EmbeddedGunicorn(served, options)
    fields: dict[str, Any] = {
        "version": __version__,
        "listen": args.listen_address,
        "workers": args.workers,
        "worker_class": args.worker_class,
    }
    if args.worker_class == "gevent":
        fields["worker_connections"] = args.worker_connections
    else:
        fields["threads"] = args.threads
    log.info("starting", extra={"fields": fields})
    server.run()
    return []
