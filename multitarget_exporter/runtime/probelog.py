"""The log of one probe, kept for `debug=true` and the probe history.

Entries are stored raw and formatted only when someone reads them, so a probe
nobody looks at pays for a few tuples. Formatting masks every configured
secret, like the operator's log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from multitarget_exporter.runtime import logs

_operator_log = logging.getLogger("multitarget_exporter.probe")
_MAX_ENTRIES = 64


class ProbeLog:
    """A bounded list of (time, level, message, fields) for one probe."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[float, int, str, dict[str, Any]]] = []

    def add(self, level: int, message: str, **fields: Any) -> None:
        if len(self.entries) < _MAX_ENTRIES:
            self.entries.append((time.time(), level, message, fields))
        if level == logging.DEBUG and _operator_log.isEnabledFor(logging.DEBUG):
            _operator_log.debug(message, extra={"fields": fields})

    def debug(self, message: str, **fields: Any) -> None:
        self.add(logging.DEBUG, message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.add(logging.INFO, message, **fields)

    def text(self) -> str:
        """The entries as logfmt lines, secrets masked."""
        formatter = logs.LogfmtFormatter()
        lines = []
        for created, level, message, fields in self.entries:
            record = logging.LogRecord(_operator_log.name, level, "", 0, message, (), None)
            record.created, record.msecs = created, (created % 1) * 1000
            record.fields = fields
            lines.append(formatter.format(record))
        return "\n".join(lines) + ("\n" if lines else "")
