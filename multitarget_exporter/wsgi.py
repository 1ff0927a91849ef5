"""The factory for running the app under a user's own gunicorn.

    MULTITARGET_EXPORTER_CONFIG=/etc/multitarget_exporter.yml \\
        gunicorn 'multitarget_exporter.wsgi:create_app()'

`MULTITARGET_EXPORTER_LOG_LEVEL`, `MULTITARGET_EXPORTER_LOG_FORMAT`,
`MULTITARGET_EXPORTER_TIMEOUT_OFFSET` and `MULTITARGET_EXPORTER_HISTORY_LIMIT`
stand in for the CLI's flags; `MULTITARGET_EXPORTER_STATE_DIR` names a
directory the workers share, so the probe history (and its links) work
whichever worker answers.
"""

from __future__ import annotations

import os

from multitarget_exporter import logs
from multitarget_exporter.app import ExporterApp
from multitarget_exporter.history import DEFAULT_LIMIT, MemoryHistory, ProbeHistory, SqliteHistory

CONFIG_ENV = "MULTITARGET_EXPORTER_CONFIG"
# A directory the workers share (like PROMETHEUS_MULTIPROC_DIR): probe history lives there.
STATE_DIR_ENV = "MULTITARGET_EXPORTER_STATE_DIR"


def create_app(
    config_path: str | None = None,
    timeout_offset: float | None = None,
    configure_logging: bool = True,
) -> ExporterApp:
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
    history: ProbeHistory = (
        SqliteHistory(os.path.join(state_dir, "history.sqlite"), limit)
        if state_dir
        else MemoryHistory(limit)
    )
    return ExporterApp.from_file(config_path, timeout_offset=timeout_offset, history=history)
