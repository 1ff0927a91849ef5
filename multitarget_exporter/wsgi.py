"""The factory for running the app under a user's own gunicorn.

    MULTITARGET_EXPORTER_CONFIG=/etc/multitarget_exporter.yml \\
        gunicorn 'multitarget_exporter.wsgi:create_app()'

`MULTITARGET_EXPORTER_LOG_LEVEL`, `MULTITARGET_EXPORTER_LOG_FORMAT` and
`MULTITARGET_EXPORTER_TIMEOUT_OFFSET` stand in for the CLI's flags.
"""

from __future__ import annotations

import logging
import os

from multitarget_exporter import logs
from multitarget_exporter.app import ExporterApp
from multitarget_exporter.config import Config, builtin_config, load_config

log = logging.getLogger("multitarget_exporter")

CONFIG_ENV = "MULTITARGET_EXPORTER_CONFIG"


def read_config(path: str | None) -> Config:
    """The file's configuration, or the built-in modules when no file is named."""
    config = load_config(path) if path else builtin_config()
    default = config.modules.get("default")
    fields = {
        "source": path or "built-in",
        "modules": ",".join(sorted(config.modules)),
        "default_provider": default.provider if default else "none",
    }
    log.info("configuration loaded", extra={"fields": fields})
    if config.not_in_force:
        log.warning(
            "settings accepted but not in force in this version",
            extra={"fields": {"keys": ",".join(config.not_in_force)}},
        )
    if default and default.provider == "openweathermap" and not default.api_key:
        log.warning(
            "module default has no OpenWeatherMap API key: set OWM_API_KEY or a config file",
        )
    return config


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
    return ExporterApp(read_config(config_path), timeout_offset=timeout_offset)
