"""Log lines: logfmt and JSON, one line per record, secrets never printed."""

import json
import logging

import pytest

from multitarget_exporter import logs
from multitarget_exporter.redact import redact


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
