"""What a server runs: the app behind its web guard, and how a reload reaches it.

Both ways of serving use this: the embedded gunicorn (`server/embedded.py`) and a
user's own gunicorn (`wsgi.py`). It turns a published generation of the
configuration files (`server/reload.py`) into the app's modules, the guard's
users, headers and rate limit, and the TLS certificate, all in place.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import Config, config_from_text
from multitarget_exporter.config.web import WebConfig, web_config_from_text
from multitarget_exporter.probing.history import ProbeHistory
from multitarget_exporter.runtime import offload
from multitarget_exporter.server import gunicorn_config
from multitarget_exporter.server.guard import WebGuard
from multitarget_exporter.server.reload import Coordinator, Follower, Generation, Generations
from multitarget_exporter.server.tls import TLSServing, tls_context
from multitarget_exporter.web.app import ExporterApp

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


def check_generation(
    generation: Generation, state_dir: str, tls_on: bool | None = None
) -> tuple[Config, WebConfig | None, ssl.SSLContext | None]:
    """Everything a generation stands for, built and ready to put in force: its
    configuration, its web configuration and, with TLS, a loaded context (so a certificate
    and key that do not match are refused here). ConfigError naming every problem.

    `tls_on`: whether the running server serves TLS (None: not started yet)."""
    config, web = parse_generation(generation, state_dir)
    tls = web.tls if web is not None else None
    if tls_on is not None and (tls is not None) != tls_on:
        raise ConfigError(["web config: turning TLS on or off takes a restart"])
    if tls is None:
        return config, web, None
    try:
        context = offload.blocking(tls_context, tls)
    except (OSError, ValueError) as error:
        raise ConfigError([f"web config: tls_server_config: {error}"]) from None
    return config, web, context


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
        self.tls = (
            TLSServing(web.tls, gunicorn_config.KEEPALIVE_SECONDS) if web and web.tls else None
        )
        self.coordinator = coordinator
        self.state_dir = state_dir
        self.generation = generation
        app.reload_action = coordinator.reload

    @classmethod
    def start(
        cls,
        generations: Generations,
        epoch: int,
        paths: tuple[str | None, str | None],
        state_dir: str,
        timeout_offset: float,
        history: ProbeHistory,
    ) -> tuple[Served | None, list[str]]:
        """Begin from the latest generation, publishing the files as the first if there is
        none; the problems if they cannot serve."""
        served: list[Served] = []

        def validate(generation: Generation) -> list[str]:
            tls_on = served[0].tls is not None if served else None
            try:
                check_generation(generation, state_dir, tls_on)
            except ConfigError as error:
                return error.problems
            return []

        coordinator = Coordinator(generations, epoch, paths[0], paths[1], validate)
        generation = generations.current(epoch)
        if generation is None:
            generation, problems = coordinator.publish_locked()
            if generation is None:
                return None, problems
        try:
            config, web = parse_generation(generation, state_dir)
        except ConfigError as error:
            return None, error.problems
        app = ExporterApp(config, timeout_offset, generation.config_path, history)
        served.append(cls(app, web, coordinator, state_dir, generation.number))
        return served[0], []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return (self.guard or self.app)(environ, start_response)

    def tls_options(self) -> dict[str, Any]:
        """gunicorn's settings for the TLS this serves with."""
        return self.tls.gunicorn_options() if self.tls else {}

    def follow(self) -> None:
        """In a worker, before it serves: catch up with the latest generation, then follow."""
        coordinator = self.coordinator
        Follower(coordinator.generations, coordinator.epoch, self.apply, self.generation).start()

    def apply(self, generation: Generation) -> list[str]:
        """Put `generation` in force in this process, whole, or not at all (the problems)."""
        try:
            config, web, context = check_generation(
                generation, self.state_dir, self.tls is not None
            )
        except ConfigError as error:
            return error.problems
        # Everything is built: from here on nothing can fail halfway.
        self.app.install(config)
        if web is not None and self.guard is None:
            self.guard = WebGuard(self.app, web)
        elif web is not None and self.guard is not None:
            self.guard.update(web)
        if self.tls is not None and web is not None and web.tls is not None and context:
            self.tls.install(web.tls, context)
        self.generation = generation.number
        return []

    def reload_in_place(self) -> None:
        """SIGHUP to the master: publish the files as the next generation; workers follow."""
        generation, problems = self.coordinator.publish_locked()
        if problems:
            self.app.reload_failed(problems)
        elif generation is not None:
            log.info("reload published", extra={"fields": {"generation": generation.number}})
