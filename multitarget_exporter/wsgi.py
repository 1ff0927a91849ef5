"""The factory for running the app under a user's own gunicorn.

    MULTITARGET_EXPORTER_CONFIG=/etc/multitarget_exporter.yml \\
        gunicorn 'multitarget_exporter.wsgi:create_app()'

`MULTITARGET_EXPORTER_LOG_LEVEL`, `MULTITARGET_EXPORTER_LOG_FORMAT`,
`MULTITARGET_EXPORTER_TIMEOUT_OFFSET` and `MULTITARGET_EXPORTER_HISTORY_LIMIT`
stand in for the CLI's flags; `MULTITARGET_EXPORTER_STATE_DIR` names a
directory the workers share, so the probe history (and its links) work
whichever worker answers, and `POST /-/reload` answers once every worker
serves the new file (`examples/gunicorn.conf.py` sets it, and makes SIGHUP
do the same). Without it a reload reaches only the worker that answers it.
"""

from __future__ import annotations

import os
import signal

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import read_config
from multitarget_exporter.probing.history import DEFAULT_LIMIT, MemoryHistory, SqliteHistory
from multitarget_exporter.runtime import logs
from multitarget_exporter.server.reload import Coordinator, Generation, Generations
from multitarget_exporter.server.stack import Served, check_generation
from multitarget_exporter.web.app import ExporterApp

CONFIG_ENV = "MULTITARGET_EXPORTER_CONFIG"
# A directory the workers share (like PROMETHEUS_MULTIPROC_DIR): probe history lives there.
STATE_DIR_ENV = "MULTITARGET_EXPORTER_STATE_DIR"


def create_app(
    config_path: str | None = None,
    timeout_offset: float | None = None,
    configure_logging: bool = True,
) -> ExporterApp | Served:
    """Build the WSGI app; configuration errors raise ConfigError before serving."""
    if configure_logging:
        level = os.environ.get("MULTITARGET_EXPORTER_LOG_LEVEL", "info")
        log_format = os.environ.get("MULTITARGET_EXPORTER_LOG_FORMAT", "logfmt")
        logs.setup_logging(
            level if level in logs.LOG_LEVELS else "info",
            log_format if log_format in logs.LOG_FORMATS else "logfmt",
        )
    if config_path is None:
        config_path = os.environ.get(CONFIG_ENV) or None
    if timeout_offset is None:
        timeout_offset = float(os.environ.get("MULTITARGET_EXPORTER_TIMEOUT_OFFSET", "0.5"))
    limit = int(os.environ.get("MULTITARGET_EXPORTER_HISTORY_LIMIT", str(DEFAULT_LIMIT)))
    state_dir = os.environ.get(STATE_DIR_ENV)
    if not state_dir:
        app = ExporterApp.from_file(config_path, timeout_offset, MemoryHistory(limit))
        app.reload_action = lambda: _restart_workers(config_path)
        return app
    history = SqliteHistory(os.path.join(state_dir, "history.sqlite"), limit)
    # This runs in each worker, after gunicorn forked it: its master is our parent.
    served, problems = Served.start(
        generations(state_dir),
        os.getppid(),
        (config_path, None),
        state_dir,
        timeout_offset,
        history,
    )
    if served is None:
        raise ConfigError(problems)
    served.follow()
    return served


def _restart_workers(config_path: str | None) -> list[str]:
    """Reload without a shared state directory: check the file here, then ask gunicorn's
    master (our parent) to restart the workers, which read it. A bad file restarts none."""
    try:
        read_config(config_path)
    except ConfigError as error:
        return error.problems
    os.kill(os.getppid(), signal.SIGHUP)
    return []


def generations(state_dir: str) -> Generations:
    """Where the workers sharing `state_dir` find the configuration generations."""
    return Generations(os.path.join(state_dir, "config"))


def publish_on_sighup(state_dir: str) -> None:
    """For gunicorn's `on_reload` hook (in the master, before new workers start): the file
    as it is now becomes the generation they start from, if it is valid."""

    def validate(generation: Generation) -> list[str]:
        try:
            check_generation(generation, state_dir)
        except ConfigError as error:
            return error.problems
        return []

    try:
        coordinator = Coordinator(
            generations(state_dir), os.getpid(), os.environ.get(CONFIG_ENV), None, validate
        )
        _, problems = coordinator.publish_locked()
    except Exception as error:  # the master must outlive any reload
        problems = [f"{type(error).__name__}: {error}"]
    if problems:
        ExporterApp.reload_failed(problems)
