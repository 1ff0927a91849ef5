"""The WSGI application: routes, parameters, deadline, status codes.

Failure to get a reading is data (`probe_success 0`, status 200); only a
request that cannot name a probe (bad target or module) is a 400.
"""

from __future__ import annotations

import html
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import yaml
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from multitarget_exporter import __version__, logs, selfmetrics
from multitarget_exporter.cache import Bucket, MemoryCache, ReadingCache
from multitarget_exporter.collector import ProbeCollector
from multitarget_exporter.config import (
    DEFAULT_MODULE,
    CacheConfig,
    Config,
    ConfigError,
    ModuleConfig,
    module_view,
    read_config,
)
from multitarget_exporter.exposition import metrics_response, probe_response
from multitarget_exporter.history import HistoryEntry, MemoryHistory, ProbeHistory
from multitarget_exporter.probe import SCRAPE_TIMEOUT_ENVIRON, probe_timeout, run_probe
from multitarget_exporter.probelog import ProbeLog
from multitarget_exporter.providers import PROVIDERS, Provider
from multitarget_exporter.redact import redact
from multitarget_exporter.targets import Location, TargetError, parse_target

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("multitarget_exporter.probe")
log_config = logging.getLogger("multitarget_exporter")


@dataclass(frozen=True, slots=True)
class ServingState:
    """A configuration and the providers built from it, swapped as one value."""

    config: Config
    providers: Mapping[str, Provider]
    buckets: Mapping[str, Bucket]

    @classmethod
    def build(cls, config: Config, cache: ReadingCache) -> ServingState:
        providers = {
            name: PROVIDERS[module.provider](module) for name, module in config.modules.items()
        }
        buckets = {
            name: cache.bucket(name, module.rate_limit)
            for name, module in config.modules.items()
            if module.rate_limit is not None
        }
        return cls(config, MappingProxyType(providers), MappingProxyType(buckets))


def _text(body: str, status: int = 200) -> Response:
    response = Response(body if body.endswith("\n") else body + "\n", status=status)
    response.content_type = "text/plain; charset=utf-8"
    return response


def _debug_response(
    probe_log: ProbeLog, registry: CollectorRegistry, module: ModuleConfig, secrets: tuple[str, ...]
) -> Response:
    """blackbox_exporter's `debug=true` page: the probe's log, its metrics, its module."""
    body = "\n".join(
        [
            "Logs for the probe:",
            probe_log.text(),
            "Metrics that would have been returned:",
            generate_latest(registry).decode("utf-8"),
            "Module configuration:",
            yaml.safe_dump({module.name: module_view(module)}, sort_keys=False, allow_unicode=True),
        ]
    )
    response = _text(redact(body, secrets))
    response.headers["Cache-Control"] = "no-store"
    return response


class BadRequest(Exception):
    """A probe request that names no probe; the message is the 400's one line."""


def build_cache(settings: CacheConfig) -> ReadingCache:
    """The configured cache backend."""
    if settings.backend == "redis":
        from multitarget_exporter.rediscache import RedisCache

        return RedisCache(settings.url, settings.max_entries)
    return MemoryCache(settings.max_entries)


def _announce(config: Config) -> None:
    """Say in the operator's log what now serves, and what will not work as hoped."""
    default = config.modules.get(DEFAULT_MODULE)
    fields = {
        "source": config.source or "built-in",
        "modules": ",".join(sorted(config.modules)),
        "default_provider": default.provider if default else "none",
    }
    log_config.info("configuration loaded", extra={"fields": fields})
    keyless = [
        name
        for name, module in sorted(config.modules.items())
        if module.provider == "openweathermap" and not module.api_key
    ]
    if keyless and config.source:
        log_config.warning(
            "openweathermap modules without an API key will fail as unauthorized",
            extra={"fields": {"modules": ",".join(keyless)}},
        )
    elif keyless:
        log_config.info(
            "no OWM_API_KEY: module default uses open_meteo, which needs no key; "
            "set OWM_API_KEY to make it openweathermap"
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
        self._own_registry: Collector | None = None
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
        _announce(config)
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
            log_config.error(
                "reload failed, configuration unchanged", extra={"fields": {"problem": problem}}
            )

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
            response = _text(f"{error.code} {error.name}", status=error.code or 500)
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
            return _text(str(error), status=400)
        timeout = probe_timeout(
            module.timeout_seconds, request.environ.get(SCRAPE_TIMEOUT_ENVIRON), self.timeout_offset
        )
        probe_log = ProbeLog()
        result, kept = run_probe(
            module,
            provider,
            location,
            timeout,
            probe_log,
            cache=self.cache if module.cache_ttl_seconds > 0 else None,
            bucket=state.buckets.get(module.name),
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
        partial = result.reading is not None and result.reading.missing
        if partial:
            fields["missing"] = result.reading.missing  # why: in this probe's own log
        level = logging.INFO if result.failure is None and not partial else logging.WARNING
        probe_log.add(level, "probe finished", **fields)
        log.log(level, "probe finished", extra={"fields": fields})
        self._remember(module.name, target, outcome, result.duration_seconds, probe_log)

        if request.args.get("debug", "").lower() == "true":
            registry = CollectorRegistry(auto_describe=False)
            registry.register(ProbeCollector(result))
            return _debug_response(probe_log, registry, module, state.config.secrets)
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
        return metrics_response(self._exporter_registry(), request)

    def _exporter_registry(self) -> Collector:
        """The process's own metrics, or, with several processes, every worker's added up."""
        if self._own_registry is None:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                registry = CollectorRegistry()
                MultiProcessCollector(registry)
                ProcessCollector(registry=registry)  # the answering process's own
                PlatformCollector(registry=registry)
                self._own_registry = registry
            else:
                self._own_registry = REGISTRY
        return self._own_registry

    def on_reload(self, request: Request) -> Response:
        problems = self.reload_action()
        if problems:
            self.reload_failed(problems)
            return _text("reload failed, configuration unchanged: " + "; ".join(problems), 500)
        return _text("OK")

    def _remember(
        self, module: str, target: str, outcome: str, duration: float, probe_log: ProbeLog
    ) -> None:
        """Keep the probe in the history; a history that fails must not fail the probe."""
        try:
            self.history.record(time.time(), module, target, outcome, duration, probe_log)
        except Exception:
            log_config.exception("could not record the probe in the history")

    def on_logs(self, request: Request) -> Response:
        args = request.args
        if "id" in args and ("target" in args or "module" in args):
            return _text("give id=N, or target=T with an optional module=M, not both", 400)
        if "id" in args:
            probe_id = args.get("id", "")
            if not probe_id.isdigit() or len(probe_id) > 18:
                return _text("id must be a probe number", 400)
            entry = self.history.get(int(probe_id))
        elif args.get("target"):
            entry = self.history.latest(args.get("module") or DEFAULT_MODULE, args["target"])
        else:
            return _text("give id=N, or target=T with an optional module=M", 400)
        if entry is None:
            return _text("no such probe in the history (it keeps the most recent ones)", 404)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.time))
        head = (
            f"Probe {entry.id}: module={entry.module} target={entry.target!r} "
            f"outcome={entry.outcome} duration_seconds={entry.duration_seconds:.6f} at {when}\n\n"
        )
        return _text(redact(head + entry.log.text(), self.state.config.secrets))

    def on_config(self, request: Request) -> Response:
        config = self.state.config
        source = config.source or "built-in modules (no --config.file)"
        body = f"# effective configuration, from {source}; secrets shown as <secret>\n"
        body += yaml.safe_dump(config.redacted(), sort_keys=False, allow_unicode=True)
        return _text(redact(body, config.secrets))

    def on_healthy(self, request: Request) -> Response:
        return _text("OK")

    def on_ready(self, request: Request) -> Response:
        return _text("OK")

    def on_index(self, request: Request) -> Response:
        modules = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(module.provider)}</td>"
            f"<td>{module.timeout_seconds:g}s</td></tr>"
            for name, module in sorted(self.state.config.modules.items())
        )
        options = "".join(
            f'<option value="{html.escape(name)}">{html.escape(name)}</option>'
            for name in sorted(self.state.config.modules)
        )
        page = _LANDING_PAGE.format(
            version=html.escape(__version__),
            modules=modules,
            options=options,
            failures=_history_rows(self.history.recent(failures=True)),
            probes=_history_rows(self.history.recent(failures=False)),
            limit=self.history.limit,
        )
        response = Response(page, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'"
        )
        return response


def _history_rows(entries: list[HistoryEntry]) -> str:
    if not entries:
        return '<tr><td colspan="6">none yet</td></tr>'
    rows = []
    for entry in entries:
        query = urlencode({"target": entry.target, "module": entry.module})
        when = time.strftime("%H:%M:%S", time.gmtime(entry.time))
        rows.append(
            f"<tr><td>{when}</td><td>{html.escape(entry.module)}</td>"
            f"<td>{html.escape(entry.target)}</td><td>{html.escape(entry.outcome)}</td>"
            f"<td>{entry.duration_seconds:.3f}s</td>"
            f'<td><a href="logs?id={entry.id}">log</a> '
            f'<a href="logs?{html.escape(query)}">latest</a></td></tr>'
        )
    return "".join(rows)


_LANDING_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>multitarget_exporter</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em}}</style>
</head>
<body>
<h1>multitarget_exporter</h1>
<p>Weather for Prometheus, one location per scrape. Version {version}.</p>
<ul>
<li><a href="metrics">Exporter metrics</a></li>
<li><a href="config">Configuration</a></li>
<li><a href="-/healthy">Health</a> and <a href="-/ready">readiness</a></li>
</ul>
<h2>Probe</h2>
<form action="probe" method="get">
<label>Target <input name="target" placeholder="London,GB" required maxlength="256"></label>
<label>Module <select name="module">{options}</select></label>
<label><input type="checkbox" name="debug" value="true"> debug</label>
<input type="submit" value="Probe">
</form>
<p>Targets: <code>London</code>, <code>London,GB</code>, <code>Springfield,IL,US</code>,
<code>id:2643743</code>, <code>51.5085,-0.1257</code>, <code>zip:94040,US</code>.</p>
<h2>Recent failures</h2>
<table><tr><th>time (UTC)</th><th>module</th><th>target</th><th>outcome</th><th>duration</th>
<th></th></tr>{failures}</table>
<h2>Recent probes</h2>
<table><tr><th>time (UTC)</th><th>module</th><th>target</th><th>outcome</th><th>duration</th>
<th></th></tr>{probes}</table>
<p>The last {limit} successes and the last {limit} failures are kept.</p>
<h2>Modules</h2>
<table><tr><th>name</th><th>provider</th><th>timeout</th></tr>{modules}</table>
</body>
</html>
"""
