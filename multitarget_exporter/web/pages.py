"""The pages people read: the landing page, a probe's log, the configuration, debug output.

None of them is on a scraper's path; each takes what it shows as arguments.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from urllib.parse import urlencode

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from werkzeug.wrappers import Request, Response

from multitarget_exporter import __version__
from multitarget_exporter.config.modules import DEFAULT_MODULE, Config, ModuleConfig, module_view
from multitarget_exporter.model.reading import ProbeResult
from multitarget_exporter.probing.history import HistoryEntry, ProbeHistory
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.runtime.redact import redact
from multitarget_exporter.web.collector import ProbeCollector


def text(body: str, status: int = 200) -> Response:
    response = Response(body if body.endswith("\n") else body + "\n", status=status)
    response.content_type = "text/plain; charset=utf-8"
    return response


def debug_page(
    probe_log: ProbeLog,
    result: ProbeResult,
    module: ModuleConfig,
    secrets: tuple[str, ...],
    extra: Iterable[Metric] = (),
) -> Response:
    """blackbox_exporter's `debug=true` page: the probe's log, its metrics (with `extra`,
    its warnings), its module."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(result, extra))
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
    response = text(redact(body, secrets))
    response.headers["Cache-Control"] = "no-store"
    return response


def probe_log_page(request: Request, history: ProbeHistory, secrets: tuple[str, ...]) -> Response:
    """`/logs?id=N` or `/logs?target=T[&module=M]`: one recent probe's log."""
    args = request.args
    if "id" in args and ("target" in args or "module" in args):
        return text("give id=N, or target=T with an optional module=M, not both", 400)
    if "id" in args:
        probe_id = args.get("id", "")
        if not probe_id.isdigit() or len(probe_id) > 18:
            return text("id must be a probe number", 400)
        entry = history.get(int(probe_id))
    elif args.get("target"):
        entry = history.latest(args.get("module") or DEFAULT_MODULE, args["target"])
    else:
        return text("give id=N, or target=T with an optional module=M", 400)
    if entry is None:
        return text("no such probe in the history (it keeps the most recent ones)", 404)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.time))
    head = (
        f"Probe {entry.id}: module={entry.module} target={entry.target!r} "
        f"outcome={entry.outcome} duration_seconds={entry.duration_seconds:.6f} at {when}\n\n"
    )
    return text(redact(head + entry.log.text(), secrets))


def config_page(config: Config) -> Response:
    """`/config`: the effective configuration, every secret replaced."""
    source = config.source or "built-in modules (no --config.file)"
    body = f"# effective configuration, from {source}; secrets shown as <secret>\n"
    body += yaml.safe_dump(config.redacted(), sort_keys=False, allow_unicode=True)
    return text(redact(body, config.secrets))


def landing_page(config: Config, history: ProbeHistory) -> Response:
    """`/`: version, links, the modules, a probe form, and the recent probes."""
    modules = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(module.provider)}</td>"
        f"<td>{module.timeout_seconds:g}s</td></tr>"
        for name, module in sorted(config.modules.items())
    )
    options = "".join(
        f'<option value="{html.escape(name)}">{html.escape(name)}</option>'
        for name in sorted(config.modules)
    )
    page = _LANDING_PAGE.format(
        version=html.escape(__version__),
        modules=modules,
        options=options,
        failures=_history_rows(history.recent(failures=True)),
        probes=_history_rows(history.recent(failures=False)),
        limit=history.limit,
    )
    response = Response(page, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
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
