"""Log lines: logfmt and JSON, one line per record, secrets never printed."""

import io
import json
import logging
import os
import threading
import time
import weakref

import pytest

from multitarget_exporter.runtime import logs
from multitarget_exporter.runtime.redact import redact


def record(message, fields=None, exc=None):
    rec = logging.LogRecord(
        "multitarget_exporter.probe", logging.WARNING, __file__, 1, message, (), exc
    )
    if fields is not None:
        rec.fields = fields
    return rec


@pytest.fixture(autouse=True)
def known_secret():
    logs.set_secrets(["SECRET-KEY-123"])
    yield
    logs.set_secrets([])


def test_logfmt_quotes_and_escapes():
    line = logs.LogfmtFormatter().format(
        record("probe finished", {"target": 'St. John\'s "x"', "outcome": "timeout", "n": 0.5})
    )
    assert "\n" not in line
    assert 'level=warn logger=multitarget_exporter.probe msg="probe finished"' in line
    assert 'target="St. John\'s \\"x\\""' in line
    assert "outcome=timeout n=0.5" in line


def test_json_format_is_one_object_per_line():
    line = logs.JsonFormatter().format(record("probe finished", {"target": "Zürich"}))
    document = json.loads(line)
    assert document["target"] == "Zürich" and document["level"] == "warn"


def test_secrets_are_redacted_everywhere_in_a_line():
    try:
        raise RuntimeError("GET /data/2.5/weather?q=x&appid=SECRET-KEY-123 failed")
    except RuntimeError:
        import sys

        exc = sys.exc_info()
    for formatter in (logs.LogfmtFormatter(), logs.JsonFormatter()):
        line = formatter.format(record("url ?appid=SECRET-KEY-123", {"u": "SECRET-KEY-123"}, exc))
        assert "SECRET-KEY-123" not in line
        assert "<secret>" in line


def test_redact_masks_credential_parameters_of_unknown_keys():
    text = "HTTPConnectionPool(host='h'): /x?q=London&appid=abcdef&units=metric"
    assert redact(text) == "HTTPConnectionPool(host='h'): /x?q=London&appid=<secret>&units=metric"
    assert redact("the key zzzzzz leaked", ["zzzzzz"]) == "the key <secret> leaked"


def test_short_strings_are_not_masked_everywhere():
    assert redact("multitarget_exporter", ["x"]) == "multitarget_exporter"
    assert redact("q=a&appid=x", ["x"]) == "q=a&appid=<secret>"


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _batching_logger(stream, name):
    handler = logs.BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test.batching.{name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler


def test_batched_lines_arrive_in_order_in_few_writes_and_soon():
    stream = _CountingStream()
    logger, handler = _batching_logger(stream, "order")
    threads = [
        threading.Thread(target=lambda n=n: [logger.info("t%d-%03d", n, i) for i in range(200)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 5
    while stream.getvalue().count("\n") < 800 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 800
    for n in range(4):  # each thread's lines in the order it logged them
        mine = [line for line in lines if line.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i:03d}" for i in range(200)]
    assert stream.writes < 100  # batches, not a write per line
    handler.close()


def test_an_error_is_written_at_once_with_everything_before_it():
    stream = _CountingStream()
    logger, handler = _batching_logger(stream, "error")
    logger.info("before")
    logger.error("broken")
    assert stream.getvalue() == "before\nbroken\n"  # no wait for the writer thread
    handler.close()


def test_close_and_shutdown_leave_nothing_behind():
    stream = _CountingStream()
    logger, handler = _batching_logger(stream, "close")
    logger.info("last words")
    logging.shutdown([weakref.ref(handler)])
    assert stream.getvalue() == "last words\n"


def test_a_fork_does_not_write_the_parents_lines_twice(tmp_path):
    path = tmp_path / "log.txt"
    with open(path, "w") as stream:
        logger, handler = _batching_logger(stream, "fork")
        logger.info("parent, before the fork")
        pid = os.fork()
        if pid == 0:  # the child: log its own line and leave at once
            logger.info("child")
            handler.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        handler.flush()
    assert path.read_text().splitlines().count("parent, before the fork") == 1
    assert "child" in path.read_text().splitlines()
