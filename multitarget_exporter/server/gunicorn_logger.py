"""gunicorn's logger as the exporter uses it (server side: only gunicorn loads this)."""

from __future__ import annotations

from typing import Any

from gunicorn import glogging


class QuietAccessLogger(glogging.Logger):
    """gunicorn's logger, minus the access-log work when no access log is configured.

    With a `logconfig_dict`, gunicorn builds every request's access-log fields
    even when `accesslog` is unset and nothing prints them; the exporter logs
    one line per probe itself, so that work is skipped unless asked for.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)
