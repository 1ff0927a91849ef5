"""What a server runs: the app behind its web guard, and how a reload reaches it.

Both ways of serving use this: the embedded gunicorn (`server.py`) and a
user's own gunicorn (`wsgi.py`). It turns a published generation of the
configuration files (`reloading.py`) into the app's modules, the guard's
users, headers and rate limit, and the TLS certificate, all in place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from multitarget_exporter.app import ExporterApp
from multitarget_exporter.config import Config, ConfigError, config_from_text
from multitarget_exporter.history import ProbeHistory
from multitarget_exporter.reloading import Coordinator, Generation
from multitarget_exporter.webconfig import (
    WebConfig,
    WebGuard,
    gunicorn_tls_options,
    refresh_tls,
    web_config_from_text,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("multitarget_exporter")


def parse_generation(generation: Generation, state_dir: str) -> tuple[Config, WebConfig | None]:
    """The configurations a generation holds; ConfigError naming every problem."""
    problems: list[str] = []
    config: Config | None = None
    web: WebConfig | None = None
    try:
        config = config_from_text(generation.config_text, generation.config_path)
    except ConfigError as error:
        problems += error.problems
    if generation.web_config_text is not None and generation.web_config_path:
        try:
            web = web_config_from_text(
                generation.web_config_text, generation.web_config_path, state_dir
            )
        except ConfigError as error:
            problems += error.problems
    if problems or config is None:
        raise ConfigError(problems)
    return config, web


class Served:
    """The WSGI callable a server runs, and the configuration generation it serves."""

    def __init__(
        self,
        app: ExporterApp,
        web: WebConfig | None,
        coordinator: Coordinator,
        state_dir: str,
        generation: int,
    ) -> None:
        self.app = app
        self.guard = WebGuard(app, web) if web else None
        self.tls = web.tls if web else None
        self.coordinator = coordinator
        self.state_dir = state_dir
        self.generation = generation
        coordinator.validate = self.check
        app.reload_action = coordinator.reload

    @classmethod
    def start(
        cls,
        coordinator: Coordinator,
        state_dir: str,
        timeout_offset: float,
        history: ProbeHistory,
    ) -> tuple[Served | None, list[str]]:
        """Begin from the latest generation, publishing the files as the first if there is
        none; the problems if they cannot serve."""
        with coordinator.generations.locked():
            generation = coordinator.generations.current(coordinator.epoch)
            if generation is None:
                generation, problems = coordinator.publish_files()
                if generation is None:
                    return None, problems
        try:
            config, web = parse_generation(generation, state_dir)
        except ConfigError as error:
            return None, error.problems
        app = ExporterApp(config, timeout_offset, generation.config_path, history)
        return cls(app, web, coordinator, state_dir, generation.number), []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return (self.guard or self.app)(environ, start_response)

    def tls_options(self) -> dict[str, Any]:
        """gunicorn's settings for the TLS this serves with."""
        return gunicorn_tls_options(self.tls)

    def check(self, generation: Generation) -> list[str]:
        """What stops `generation` from going into force here (nothing: [])."""
        try:
            _, web = parse_generation(generation, self.state_dir)
        except ConfigError as error:
            return error.problems
        if (web is not None and web.tls is not None) != (self.tls is not None):
            return ["web config: turning TLS on or off takes a restart"]
        return []

    def apply(self, generation: Generation) -> list[str]:
        """Put `generation` in force in this process; the problems if it cannot be."""
        problems = self.check(generation)
        if problems:
            return problems
        config, web = parse_generation(generation, self.state_dir)
        self.app.install(config)
        if web is not None and self.guard is None:
            self.guard = WebGuard(self.app, web)
        elif web is not None and self.guard is not None:
            self.guard.update(web)
        if web is not None and web.tls is not None:
            refresh_tls(web.tls)
            self.tls = web.tls
        self.generation = generation.number
        return []

    def record_failed_reload(self, problems: list[str]) -> None:
        """A reload the master was asked for (SIGHUP) and refused."""
        self.app.reload_failed(problems)
