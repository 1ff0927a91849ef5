"""The WSGI application: routes, and the probe handler's outline.

Failure to get a reading is data (`probe_success 0`, status 200); only a
request that cannot name a probe (bad target or module) is a 400. What a
probe request may name is checked in `probing/request.py`, the probe runs in
`probing/probe.py`, and it is reported in `probing/report.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from multitarget_exporter.config.modules import Config, read_config
from multitarget_exporter.probing.history import MemoryHistory, ProbeHistory
from multitarget_exporter.probing.probe import (
    SCRAPE_TIMEOUT_ENVIRON,
    probe_timeout,
    run_warnings,
    run_with_fallback,
)
from multitarget_exporter.probing.report import report_probe
from multitarget_exporter.probing.request import BadRequest, parse_probe_request
from multitarget_exporter.probing.state import InForce, ServingState, report_reload_failed
from multitarget_exporter.runtime import selfmetrics
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.web import pages
from multitarget_exporter.web.collector import observation_age
from multitarget_exporter.web.exposition import metrics_response, probe_response
from multitarget_exporter.web.pages import text
from multitarget_exporter.web.warning_metrics import (
    EncodedWarnings,
    success_metric,
    warnings_metrics,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

URL_MAP = Map(
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
        self.in_force = InForce(config)
        self.encoded_warnings = EncodedWarnings()
        # What POST /-/reload does: the server side hands in a reload that reaches every
        # process; on its own the app re-reads its file and swaps it in this process.
        self.reload_action: Callable[[], list[str]] = self.reload

    @classmethod
    def from_file(
        cls,
        config_path: str | None,
        timeout_offset: float = 0.5,
        history: ProbeHistory | None = None,
    ) -> ExporterApp:
        """The app for a configuration file (or the built-in modules); ConfigError if invalid."""
        return cls(read_config(config_path), timeout_offset, config_path, history)

    @property
    def state(self) -> ServingState:
        """The configuration in force and what is built from it."""
        return self.in_force.state

    def install(self, config: Config) -> None:
        """Put a validated configuration in force, whole: a probe sees the old or the new."""
        self.in_force.install(config)

    def reload(self) -> list[str]:
        """Re-read the configuration file into this process; the problems, if it stays as it was."""
        return self.in_force.reload(self.config_path)

    reload_failed = staticmethod(report_reload_failed)

    # -- WSGI -----------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = URL_MAP.bind_to_environ(request.environ)
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
        state = self.in_force.state  # one consistent configuration for the whole probe
        try:
            probe = parse_probe_request(state, request.args)
        except BadRequest as error:
            return text(str(error), status=400)
        timeout = probe_timeout(
            probe.module.timeout_seconds,
            request.environ.get(SCRAPE_TIMEOUT_ENVIRON),
            self.timeout_offset,
        )
        probe_log = ProbeLog()
        cache = self.in_force.cache
        result, kept = run_with_fallback(
            probe.route,
            probe.fallback,
            probe.target,
            probe.location,
            timeout,
            probe_log,
            cache=lambda chosen: cache if chosen.cache_ttl_seconds > 0 else None,
        )
        warnings = None
        if probe.warnings is not None:
            warnings = run_warnings(probe.warnings, result, probe.location, timeout, probe_log)
        report_probe(probe, result, timeout, probe_log, self.history, warnings)
        now = time.time()
        # Per probe, beside the probe_* lines: the age grows while the reading stays cached.
        extra = list(observation_age(result, now))
        if request.args.get("debug", "").lower() == "true":
            if warnings is not None:
                extra.extend(warnings_metrics(warnings, now))
            return pages.debug_page(probe_log, result, probe.module, state.config.secrets, extra)
        blocks = None
        if warnings is not None:
            extra.append(success_metric(warnings))
            answer = warnings.answer
            if answer is not None:
                blocks = partial(self.encoded_warnings.block, answer, now)
        response = probe_response(result, request, kept, extra, blocks)
        response.headers["Cache-Control"] = "no-store"
        return response

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
