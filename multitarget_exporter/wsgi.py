"""The factory for running the app under a user's own gunicorn.

    MULTITARGET_EXPORTER_CONFIG=/etc/multitarget_exporter.yml \\
        gunicorn 'multitarget_exporter.wsgi:create_app()'

`MULTITARGET_EXPORTER_LOG_LEVEL`, `MULTITARGET_EXPORTER_LOG_FORMAT` and
`MULTITARGET_EXPORTER_TIMEOUT_OFFSET` stand in for the CLI's flags.
"""

from __future__ import annotations

import os

from multitarget_exporter import logs
from multitarget_exporter.app import ExporterApp

CONFIG_ENV = "MULTITARGET_EXPORTER_CONFIG"


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
    return ExporterApp.from_file(config_path, timeout_offset=timeout_offset)
