"""The probe history, in memory and in SQLite (shared by processes)."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from multitarget_exporter.probing.history import _PRUNE_EVERY, MemoryHistory, SqliteHistory
from multitarget_exporter.runtime.perprocess import PerProcess
from multitarget_exporter.runtime.probelog import ProbeLog


@pytest.fixture(params=["memory", "sqlite"])
def make_history(request, tmp_path):
    def make(limit):
        if request.param == "memory":
            return MemoryHistory(limit)
        return SqliteHistory(str(tmp_path / "history.sqlite"), limit)

    return make


def logged(message="probe finished", **fields):
    log = ProbeLog()
    log.info(message, **fields)
    return log


def test_record_get_and_latest(make_history):
    history = make_history(10)
    history.record(1000.0, "default", "London", "success", 0.1, logged(n=1))
    first = history.latest("default", "London").id
    history.record(1001.0, "default", "London", "timeout", 2.0, logged(n=2))
    second = history.latest("default", "London").id
    history.record(1002.0, "quick", "London", "success", 0.2, logged(n=3))
    other = history.latest("quick", "London").id
    assert first < second < other
    entry = history.get(second)
    assert (entry.module, entry.target, entry.outcome) == ("default", "London", "timeout")
    assert entry.duration_seconds == 2.0 and not entry.success
    assert "n=2" in entry.log.text()
    assert history.latest("default", "London").id == second
    assert history.latest("quick", "London").id == other
    assert history.latest("default", "Paris") is None
    assert history.get(999_999) is None


def test_failures_are_kept_apart_from_a_burst_of_successes(make_history):
    history = make_history(3)
    for i in range(2):
        history.record(1.0, "m", f"bad{i}", "not_found", 0.1, logged())
    failures = [history.latest("m", f"bad{i}").id for i in range(2)]
    for i in range(_PRUNE_EVERY * 3):
        history.record(2.0, "m", f"good{i}", "success", 0.1, logged())
    assert [e.id for e in history.recent(failures=True)] == failures[::-1]
    successes = history.recent(failures=False)
    assert len(successes) == 3 and successes[0].target == f"good{_PRUNE_EVERY * 3 - 1}"
    for probe_id in failures:
        assert history.get(probe_id) is not None
    assert history.get(successes[-1].id - 10 * _PRUNE_EVERY) is None  # pushed out


def test_limit_zero_keeps_nothing(make_history):
    history = make_history(0)
    history.record(1.0, "m", "t", "success", 0.1, logged())
    assert history.recent(failures=False) == []


def _record_in_child(path: str, queue) -> None:
    history = SqliteHistory(path, 10)
    history.record(5.0, "default", "Child", "success", 0.3, logged(child=True))
    history.flush()
    queue.put(history.latest("default", "Child").id)


def test_sqlite_history_is_shared_across_processes(tmp_path):
    path = str(tmp_path / "history.sqlite")
    parent = SqliteHistory(path, 10)
    parent.record(1.0, "default", "Parent", "success", 0.1, logged())
    queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(target=_record_in_child, args=(path, queue))
    child.start()
    child_id = queue.get(timeout=30)
    child.join(30)
    entry = parent.get(child_id)
    assert entry.target == "Child" and "child=true" in entry.log.text()


def test_sqlite_history_survives_a_missing_directory(tmp_path):
    import shutil

    directory = tmp_path / "state"
    directory.mkdir()
    history = SqliteHistory(str(directory / "history.sqlite"), 10)
    shutil.rmtree(directory)
    history._connection = PerProcess(history._open)  # connect afresh, as a new worker does
    assert history.recent(failures=True) == []  # nothing to show, and no exception
    assert history.get(1) is None


def _record_and_linger(path: str, done) -> None:
    history = SqliteHistory(path, 10)
    history.record(7.0, "default", "Lingering", "success", 0.3, logged())
    time.sleep(SqliteHistory.FLUSH_SECONDS * 5)  # no flush of its own: the writer's job
    done.set()


def test_a_workers_writer_thread_puts_its_probes_in_the_shared_file(tmp_path):
    path = str(tmp_path / "history.sqlite")
    reader = SqliteHistory(path, 10)
    context = multiprocessing.get_context("fork")
    done = context.Event()
    child = context.Process(target=_record_and_linger, args=(path, done))
    child.start()
    assert done.wait(30)
    child.join(30)
    entry = reader.latest("default", "Lingering")
    assert entry is not None and entry.duration_seconds == 0.3


def test_probes_wait_for_no_write_and_the_backlog_is_bounded(tmp_path, monkeypatch):
    from multitarget_exporter.probing import history as history_module

    monkeypatch.setattr(history_module, "_PENDING_BOUND", 5)
    history = SqliteHistory(str(tmp_path / "history.sqlite"), 10)
    monkeypatch.setattr(history, "_start_writer", lambda: None)  # a writer that never runs
    for i in range(12):
        history.record(float(i), "m", f"t{i}", "success", 0.1, logged())
    assert len(history._pending) == 5
    assert [e.target for e in history.recent(failures=False)] == [f"t{i}" for i in range(11, 6, -1)]
