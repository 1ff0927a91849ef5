"""The WSGI application: routes, parameters, deadline, status codes.

Failure to get a reading is data (`probe_success 0`, status 200); only a
request that cannot name a probe (bad target or module) is a 400.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import DEFAULT_MODULE, Config, ModuleConfig, read_config
from multitarget_exporter.model.targets import Location, TargetError, parse_target
from multitarget_exporter.probing.history import MemoryHistory, ProbeHistory
from multitarget_exporter.probing.probe import (
    SCRAPE_TIMEOUT_ENVIRON,
    Route,
    probe_timeout,
    run_with_fallback,
)
from multitarget_exporter.probing.state import ServingState, announce, build_cache
from multitarget_exporter.providers.base import Provider
from multitarget_exporter.runtime import logs, selfmetrics
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.upstream.cache import ReadingCache
from multitarget_exporter.web import pages
from multitarget_exporter.web.exposition import metrics_response, probe_response
from multitarget_exporter.web.pages import text

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("multitarget_exporter.probe")
log_config = logging.getLogger("multitarget_exporter")


class BadRequest(Exception):
    """A probe request that names no probe; the message is the 400's one line."""


class ExporterApp:
    """The multi-target weather exporter as one WSGI callable."""

    def __init__(
        self,
        config: Config,
        timeout_offset: float = 0.5,
        config_path: str | None = None,
        history: ProbeHistory | None = None,
    ) -> None:
        self.timeout_offset = timeout_offset
        self.config_path = config_path
        self.history = history if history is not None else MemoryHistory()
        # What POST /-/reload does: the server side hands in a reload that reaches every
        # process; on its own the app re-reads its file and swaps it in this process.
        self.reload_action: Callable[[], list[str]] = self.reload
        self.url_map = Map(
            [
                Rule("/", endpoint="index", methods=["GET"]),
                Rule("/probe", endpoint="probe", methods=["GET"]),
                Rule("/metrics", endpoint="metrics", methods=["GET"]),
                Rule("/config", endpoint="config", methods=["GET"]),
                Rule("/logs", endpoint="logs", methods=["GET"]),
                Rule("/-/healthy", endpoint="healthy", methods=["GET"]),
                Rule("/-/ready", endpoint="ready", methods=["GET"]),
                Rule("/-/reload", endpoint="reload", methods=["POST"]),
            ],
            strict_slashes=False,
            redirect_defaults=False,
        )
        self.cache: ReadingCache = build_cache(config.cache)
        self._cache_config = config.cache
        self.state = self._install(config)
        selfmetrics.record_reload(True)

    @classmethod
    def from_file(
        cls,
        config_path: str | None,
        timeout_offset: float = 0.5,
        history: ProbeHistory | None = None,
    ) -> ExporterApp:
        """The app for a configuration file (or the built-in modules); ConfigError if invalid."""
        return cls(read_config(config_path), timeout_offset, config_path, history)

    def _install(self, config: Config) -> ServingState:
        if config.cache != self._cache_config:
            self.cache, self._cache_config = build_cache(config.cache), config.cache
        state = ServingState.build(config, self.cache)
        logs.set_secrets(config.secrets)
        for name in config.modules:
            selfmetrics.declare_module(name)
        announce(config)
        return state

    def install(self, config: Config) -> None:
        """Put a validated configuration in force, whole: a probe sees the old or the new."""
        self.state = self._install(config)  # one assignment
        selfmetrics.record_reload(True)

    def reload(self) -> list[str]:
        """Re-read the configuration file into this process; the problems, if it stays as it was."""
        try:
            config = read_config(self.config_path)
        except ConfigError as error:
            return error.problems
        self.install(config)
        return []

    @staticmethod
    def reload_failed(problems: list[str]) -> None:
        """Tell the operator and /metrics that a reload was refused."""
        selfmetrics.record_reload(False)
        for problem in problems:
            published = problem.startswith("published")
            message = "reload failed" if published else "reload failed, configuration unchanged"
            log_config.error(message, extra={"fields": {"problem": problem}})

    # -- WSGI -----------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
            return getattr(self, f"on_{endpoint}")(request, **values)
        except HTTPException as error:
            response = text(f"{error.code} {error.name}", status=error.code or 500)
            for name, value in error.get_headers():
                if name.lower() == "allow":
                    response.headers[name] = value
            return response

    # -- endpoints ------------------------------------------------------------

    def on_probe(self, request: Request) -> Response:
        state = self.state  # one consistent configuration for the whole probe
        try:
            module, provider, target, location = self._probe_request(state, request)
        except BadRequest as error:
            return text(str(error), status=400)
        timeout = probe_timeout(
            module.timeout_seconds, request.environ.get(SCRAPE_TIMEOUT_ENVIRON), self.timeout_offset
        )
        probe_log = ProbeLog()
        fallback = None
        if module.fallback:
            name = module.fallback
            fallback = Route(
                state.config.modules[name], state.providers[name], state.buckets.get(name)
            )
        result, kept = run_with_fallback(
            Route(module, provider, state.buckets.get(module.name)),
            fallback,
            target,
            location,
            timeout,
            probe_log,
            cache=lambda chosen: self.cache if chosen.cache_ttl_seconds > 0 else None,
        )
        outcome = "success" if result.failure is None else result.failure.reason.value
        selfmetrics.observe_probe(module.name, outcome, result.duration_seconds)
        fields = {
            "module": module.name,
            "target": target,
            "outcome": outcome,
            "duration_seconds": round(result.duration_seconds, 6),
            "upstream_status": result.upstream_status_code,
            "cache_hit": result.cache_hit,
            "timeout_seconds": round(timeout, 3),
        }
        if result.failure is not None and result.failure.detail:
            fields["detail"] = result.failure.detail
        if result.stale and result.refresh_failure is not None:
            refresh = result.refresh_failure
            fields["stale_because"] = f"{refresh.reason.value}: {refresh.detail}"
        if result.fallback and result.reading is not None:
            fields["answered_by"] = module.fallback
        missing = result.reading.missing if result.reading is not None else ""
        partial = bool(missing)
        if partial:
            fields["missing"] = missing  # why: in this probe's own log
        healthy = (
            result.failure is None and not partial and not result.stale and not result.fallback
        )
        level = logging.INFO if healthy else logging.WARNING
        probe_log.add(level, "probe finished", **fields)
        log.log(level, "probe finished", extra={"fields": fields})
        self._remember(module.name, target, outcome, result.duration_seconds, probe_log)

        if request.args.get("debug", "").lower() == "true":
            return pages.debug_page(probe_log, result, module, state.config.secrets)
        response = probe_response(result, request, kept)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _probe_request(
        self, state: ServingState, request: Request
    ) -> tuple[ModuleConfig, Provider, str, Location]:
        targets = request.args.getlist("target")
        modules = request.args.getlist("module")
        if len(targets) > 1:
            raise BadRequest("target parameter given more than once")
        if len(modules) > 1:
            raise BadRequest("module parameter given more than once")
        module_name = modules[0] if modules and modules[0] else DEFAULT_MODULE
        module = state.config.modules.get(module_name)
        if module is None:
            # The name is not echoed: a reply must never help confirm a guessed secret.
            known = ", ".join(sorted(state.config.modules))
            raise BadRequest(f"unknown module (known: {known})")
        target = targets[0] if targets else ""
        try:
            location = parse_target(target)
        except TargetError as error:
            raise BadRequest(f"bad target: {error}") from None
        target = target.strip()
        if not module.allows(target):
            raise BadRequest(f"target not allowed by module {module_name}'s allowed_targets")
        provider = state.providers[module_name]
        unsupported = provider.unsupported(location)
        if unsupported:
            raise BadRequest(f"bad target for module {module_name}: {unsupported}")
        return module, provider, target, location

    def on_metrics(self, request: Request) -> Response:
        return metrics_response(selfmetrics.exporter_registry(), request)

    def on_reload(self, request: Request) -> Response:
        problems = self.reload_action()
        if problems:
            self.reload_failed(problems)
            published = any(problem.startswith("published") for problem in problems)
            head = "reload failed: " if published else "reload failed, configuration unchanged: "
            return text(head + "; ".join(problems), 500)
        return text("OK")

    def _remember(
        self, module: str, target: str, outcome: str, duration: float, probe_log: ProbeLog
    ) -> None:
        """Keep the probe in the history; a history that fails must not fail the probe."""
        try:
            self.history.record(time.time(), module, target, outcome, duration, probe_log)
        except Exception:
            log_config.exception("could not record the probe in the history")

    def on_healthy(self, request: Request) -> Response:
        return text("OK")

    def on_ready(self, request: Request) -> Response:
        return text("OK")

    def on_logs(self, request: Request) -> Response:
        return pages.probe_log_page(request, self.history, self.state.config.secrets)

    def on_config(self, request: Request) -> Response:
        return pages.config_page(self.state.config)

    def on_index(self, request: Request) -> Response:
        return pages.landing_page(self.state.config, self.history)
