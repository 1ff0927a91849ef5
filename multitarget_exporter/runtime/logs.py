"""Operator logs: one line per event, logfmt or JSON, secrets redacted.

Structured fields travel in `extra={"fields": {...}}`. Redaction is applied to
the finished line, tracebacks included, so no code path can print a key.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from multitarget_exporter.runtime import offload
from multitarget_exporter.runtime.perprocess import PerProcess, forked_since
from multitarget_exporter.runtime.redact import redact

LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
LOG_FORMATS = ("logfmt", "json")

_known_secrets: tuple[str, ...] = ()


def set_secrets(secrets: Iterable[str]) -> None:
    """Tell the formatters which strings must never be printed (called on config load)."""
    global _known_secrets
    _known_secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


_second_text: tuple[int, str] = (-1, "")  # the last second formatted, reused within it


def _timestamp(record: logging.LogRecord) -> str:
    global _second_text
    second, text = _second_text
    if int(record.created) != second:
        second = int(record.created)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, text)
    return f"{text}.{int(record.msecs):03d}Z"


def _level(record: logging.LogRecord) -> str:
    return "warn" if record.levelno == logging.WARNING else record.levelname.lower()


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": _level(record),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    extra = getattr(record, "fields", None)
    if isinstance(extra, Mapping):
        fields.update(extra)
    if record.exc_info:
        fields["error"] = logging.Formatter().formatException(record.exc_info)
    return fields


_NEEDS_QUOTES = re.compile(r'[ ="\\]')


def _logfmt_value(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if text and text.isprintable() and not _NEEDS_QUOTES.search(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """`ts=… level=info logger=… msg="…" key=value`, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _record_fields(record)
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        return redact(line, _known_secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, the same keys as logfmt."""

    def format(self, record: logging.LogRecord) -> str:
        line = json.dumps(_record_fields(record), ensure_ascii=False, default=str)
        return redact(line, _known_secrets)


class _Batch:
    """Lines logged and not yet written, in one process."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()


class BatchingStreamHandler(logging.StreamHandler):
    """A stream handler that writes lines in batches, not one write per line.

    Under load, a write and flush per probe line, each under the handler's
    lock, made the request threads queue on that lock. Here a record is
    formatted by the thread that logs it and appended to a list; a writer
    thread (one per process) writes what has gathered within `FLUSH_SECONDS`
    in one write, in order. Errors, a full batch, a fork and the interpreter's
    exit (logging.shutdown) write at once, so nothing is duplicated or left behind.
    """

    FLUSH_SECONDS = 0.05
    BATCH_LINES = 512

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        # Not the handler's own lock, which logging takes around every emit: a write
        # waiting on a slow reader must not hold up the threads that log.
        self._write_lock = threading.Lock()
        self._batch = PerProcess(self._new_batch)  # a child starts with none of its parent's
        self._closed = False
        os.register_at_fork(before=self.flush)

    def _new_batch(self) -> _Batch:
        batch = _Batch()
        offload.start_background(lambda: self._write_forever(batch), "log-writer")
        return batch

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        batch = self._batch.get()
        with batch.lock:
            batch.lines.append(line)
            waiting = len(batch.lines)
        if record.levelno >= logging.ERROR or waiting >= self.BATCH_LINES:
            self.flush()
        elif waiting == 1:
            batch.wake.set()

    def _write_forever(self, batch: _Batch) -> None:
        pid = os.getpid()
        while not (self._closed or forked_since(pid)):
            batch.wake.wait()
            batch.wake.clear()
            time.sleep(self.FLUSH_SECONDS)  # let a burst gather into one write
            self.flush(offloaded=True)

    def close(self) -> None:
        """Write what is left and let the writer thread end (a reconfiguration replaces us)."""
        self.flush()
        self._closed = True
        self._batch.get().wake.set()
        super().close()

    def flush(self, offloaded: bool = False) -> None:
        """Write every gathered line now, in the order they were logged.

        The writer's own flushes are `offloaded`: a pipe whose reader stalls
        must not stall gevent's loop with it."""
        batch = self._batch.get()
        with self._write_lock:  # one writer at a time keeps batches in order
            with batch.lock:
                lines, batch.lines = batch.lines, []
            if not self.stream:
                return
            try:
                if offloaded:
                    offload.blocking(_write_and_flush, self.stream, "".join(lines))
                else:
                    _write_and_flush(self.stream, "".join(lines))
            except (OSError, ValueError):  # stderr closed or gone: nothing left to tell
                pass


def _write_and_flush(stream: Any, text: str) -> None:
    if text:
        stream.write(text)
    if hasattr(stream, "flush"):
        stream.flush()


def make_formatter(log_format: str = "logfmt") -> logging.Formatter:
    """The formatter for `--log.format` (a dictConfig factory, used for gunicorn too)."""
    return JsonFormatter() if log_format == "json" else LogfmtFormatter()


def logging_dict(level: str, log_format: str) -> dict[str, Any]:
    """A dictConfig that sends ours and gunicorn's logs through one formatter to stderr."""
    numeric = logging.getLevelName(LOG_LEVELS[level])
    handler = {"handlers": ["stderr"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "exporter": {
                "()": "multitarget_exporter.runtime.logs.make_formatter",
                "log_format": log_format,
            }
        },
        "handlers": {
            "stderr": {
                "class": "multitarget_exporter.runtime.logs.BatchingStreamHandler",
                "formatter": "exporter",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "multitarget_exporter": {**handler, "level": numeric},
            "gunicorn.error": {**handler, "level": numeric},
            # urllib3 logs whole URLs, query strings with keys included, at debug level.
            "urllib3": {**handler, "level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def setup_logging(level: str = "info", log_format: str = "logfmt") -> None:
    """Configure logging for a process we own (the CLI, or a user's gunicorn worker)."""
    logging.config.dictConfig(logging_dict(level, log_format))
