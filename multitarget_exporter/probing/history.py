"""Recent probes and their logs, for the landing page and `/logs`.

Two bounded rings, one of successes and one of failures, so a burst of
successes cannot push out the failure an operator came to look at. Held in
memory for one process, or in a SQLite file that every worker of one
exporter shares, so a link works whichever worker answers it (and survives
the worker restarts a reload causes).
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import sqlite3
import threading
import time as time_module
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from multitarget_exporter.runtime import offload
from multitarget_exporter.runtime.perprocess import PerProcess, forked_since
from multitarget_exporter.runtime.probelog import ProbeLog

DEFAULT_LIMIT = 100
_log = logging.getLogger("multitarget_exporter")
_PRUNE_EVERY = 32
_PENDING_BOUND = 10_000  # rows a process holds for its writer at most


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One finished probe as the history keeps it."""

    id: int
    time: float
    module: str
    target: str
    outcome: str
    duration_seconds: float
    log: ProbeLog

    @property
    def success(self) -> bool:
        return self.outcome == "success"


class ProbeHistory(Protocol):
    """Where recent probes are kept."""

    limit: int

    def record(
        self, time: float, module: str, target: str, outcome: str, duration: float, log: ProbeLog
    ) -> None:
        """Keep one probe."""
        ...

    def get(self, probe_id: int) -> HistoryEntry | None: ...

    def latest(self, module: str, target: str) -> HistoryEntry | None: ...

    def recent(self, failures: bool) -> list[HistoryEntry]:
        """The kept successes, or failures, newest first."""
        ...


class MemoryHistory:
    """History for one process."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._rings: dict[bool, deque[HistoryEntry]] = {
            True: deque(maxlen=limit or 1),
            False: deque(maxlen=limit or 1),
        }

    def record(
        self, time: float, module: str, target: str, outcome: str, duration: float, log: ProbeLog
    ) -> None:
        if not self.limit:
            return
        with self._lock:
            entry = HistoryEntry(next(self._ids), time, module, target, outcome, duration, log)
            self._rings[entry.success].append(entry)

    def _all(self) -> list[HistoryEntry]:
        with self._lock:
            return [*self._rings[True], *self._rings[False]]

    def get(self, probe_id: int) -> HistoryEntry | None:
        return next((e for e in self._all() if e.id == probe_id), None)

    def latest(self, module: str, target: str) -> HistoryEntry | None:
        found = [e for e in self._all() if e.module == module and e.target == target]
        return max(found, key=lambda e: e.id) if found else None

    def recent(self, failures: bool) -> list[HistoryEntry]:
        with self._lock:
            return list(reversed(self._rings[not failures]))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS probes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    module TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    failed INTEGER NOT NULL,
    duration REAL NOT NULL,
    log TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS probes_by_kind ON probes (failed, id);
CREATE INDEX IF NOT EXISTS probes_by_target ON probes (module, target, id);
"""


class SqliteHistory:
    """History shared by the processes of one exporter through a SQLite file.

    A probe only appends its row to a list in memory; a writer thread in each
    process puts the rows into the file every `FLUSH_SECONDS`, many in one
    transaction, so the probe itself never waits on SQLite. A reader writes its
    own process's rows first and waits out one more flush for the others'.
    """

    FLUSH_SECONDS = 0.1

    def __init__(self, path: str, limit: int = DEFAULT_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()  # the connection
        self._pending_lock = threading.Lock()
        self._pending: list[tuple[Any, ...]] = []
        self._connection = PerProcess(self._open)  # never one inherited across a fork
        self._writer = PerProcess(self._start_writer)
        self._writes = 0
        with self._connect() as connection:  # create the schema once, before workers fork
            connection.executescript(_SCHEMA)

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=2.0, check_same_thread=False, isolation_level=None
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # a lost tail on a crash is fine
        return connection

    def _connect(self) -> sqlite3.Connection:
        """This process's connection."""
        return self._connection.get()

    def record(
        self, time: float, module: str, target: str, outcome: str, duration: float, log: ProbeLog
    ) -> None:
        if not self.limit:
            return
        row = (time, module, target, outcome, outcome != "success", duration, log)
        with self._pending_lock:
            # A writer far behind (a stuck disk) must not grow memory without bound.
            if len(self._pending) >= _PENDING_BOUND:
                del self._pending[: len(self._pending) - _PENDING_BOUND + 1]
            self._pending.append(row)
            self._writer.get()

    def _start_writer(self) -> bool:
        """This process's writer thread, and a last flush at exit (called under the lock)."""
        offload.start_background(self._write_forever, "history-writer")
        atexit.register(self.flush)
        return True

    def _write_forever(self) -> None:
        pid = os.getpid()
        while not forked_since(pid):
            time_module.sleep(self.FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        """Write this process's pending rows now; a failed write is logged and dropped."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
        if not rows:
            return
        encoded = [(*row[:6], json.dumps(row[6].entries, default=str)) for row in rows]
        try:
            with self._lock:
                self._writes += len(rows)
                prune = self._writes >= _PRUNE_EVERY
                if prune:
                    self._writes = 0
                offload.blocking(self._insert, self._connect(), encoded, prune)
        except sqlite3.Error:
            _log.exception("could not record %d probes in the history", len(rows))

    def _insert(
        self, connection: sqlite3.Connection, rows: list[tuple[Any, ...]], prune: bool
    ) -> None:
        """One transaction for the batch (off the event loop: see `offload`)."""
        with connection:
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO probes (time, module, target, outcome, failed, duration, log)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if prune:
                self._prune(connection)

    def _prune(self, connection: sqlite3.Connection) -> None:
        for failed in (0, 1):
            connection.execute(
                "DELETE FROM probes WHERE failed = ? AND id < (SELECT MIN(id) FROM"
                " (SELECT id FROM probes WHERE failed = ? ORDER BY id DESC LIMIT ?))",
                (failed, failed, self.limit),
            )

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[HistoryEntry]:
        """This process's rows are written first; other workers' within their writer's
        `FLUSH_SECONDS`."""
        self.flush()
        try:
            with self._lock:
                rows = offload.blocking(_fetch_all, self._connect(), sql, parameters)
        except sqlite3.Error:
            _log.exception("could not read the probe history")
            return []
        entries = []
        for probe_id, time, module, target, outcome, duration, log_json in rows:
            log = ProbeLog()
            log.entries = [tuple(entry) for entry in json.loads(log_json)]
            entries.append(HistoryEntry(probe_id, time, module, target, outcome, duration, log))
        return entries

    def get(self, probe_id: int) -> HistoryEntry | None:
        found = self._query(
            "SELECT id, time, module, target, outcome, duration, log FROM probes WHERE id = ?",
            (probe_id,),
        )
        return found[0] if found else None

    def latest(self, module: str, target: str) -> HistoryEntry | None:
        found = self._query(
            "SELECT id, time, module, target, outcome, duration, log FROM probes"
            " WHERE module = ? AND target = ? ORDER BY id DESC LIMIT 1",
            (module, target),
        )
        return found[0] if found else None

    def recent(self, failures: bool) -> list[HistoryEntry]:
        return self._query(
            "SELECT id, time, module, target, outcome, duration, log FROM probes"
            " WHERE failed = ? ORDER BY id DESC LIMIT ?",
            (int(failures), self.limit),
        )


def _fetch_all(
    connection: sqlite3.Connection, sql: str, parameters: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    return connection.execute(sql, parameters).fetchall()
