"""Recent probes and their logs, for the landing page and `/logs`.

Two bounded rings, one of successes and one of failures, so a burst of
successes cannot push out the failure an operator came to look at. Held in
memory for one process, or in a SQLite file that every worker of one
exporter shares, so a link works whichever worker answers it (and survives
the worker restarts a reload causes).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from multitarget_exporter.probelog import ProbeLog

DEFAULT_LIMIT = 100
_log = logging.getLogger("multitarget_exporter")
_PRUNE_EVERY = 32


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
    ) -> int:
        """Keep one probe; its id."""
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
    ) -> int:
        if not self.limit:
            return 0
        with self._lock:
            entry = HistoryEntry(next(self._ids), time, module, target, outcome, duration, log)
            self._rings[entry.success].append(entry)
            return entry.id

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
    """History shared by the processes of one exporter through a SQLite file."""

    def __init__(self, path: str, limit: int = DEFAULT_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()
        self._pid = -1
        self._connection: sqlite3.Connection | None = None
        self._writes = 0
        with self._connect() as connection:  # create the schema once, before workers fork
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        """This process's connection (never one inherited across a fork)."""
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(
                self.path, timeout=2.0, check_same_thread=False, isolation_level=None
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")  # a lost tail on a crash is fine
            self._connection, self._pid, self._writes = connection, os.getpid(), 0
        return self._connection

    def record(
        self, time: float, module: str, target: str, outcome: str, duration: float, log: ProbeLog
    ) -> int:
        if not self.limit:
            return 0
        row = (
            time,
            module,
            target,
            outcome,
            outcome != "success",
            duration,
            json.dumps(log.entries, default=str),
        )
        with self._lock:
            connection = self._connect()
            cursor = connection.execute(
                "INSERT INTO probes (time, module, target, outcome, failed, duration, log)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            self._writes += 1
            if self._writes % _PRUNE_EVERY == 0:
                self._prune(connection)
            return int(cursor.lastrowid or 0)

    def _prune(self, connection: sqlite3.Connection) -> None:
        for failed in (0, 1):
            connection.execute(
                "DELETE FROM probes WHERE failed = ? AND id < (SELECT MIN(id) FROM"
                " (SELECT id FROM probes WHERE failed = ? ORDER BY id DESC LIMIT ?))",
                (failed, failed, self.limit),
            )

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[HistoryEntry]:
        try:
            with self._lock:
                rows = self._connect().execute(sql, parameters).fetchall()
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
