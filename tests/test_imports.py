"""Imports run one way: the configuration and the command line load no serving code.

prometheus_client picks how it stores metric values when it is first
imported, and the CLI must set PROMETHEUS_MULTIPROC_DIR before that, and
patch the standard library for gevent before any lock or socket is made.
So nothing the CLI imports at the top may load prometheus_client, urllib3,
gunicorn or gevent.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVING = ("prometheus_client", "urllib3", "gunicorn", "gevent", "werkzeug", "redis")


@pytest.mark.parametrize(
    "module",
    ["multitarget_exporter.config", "multitarget_exporter.webconfig", "multitarget_exporter.cli"],
)
def test_importing_loads_no_serving_library(module):
    script = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert not loaded & set(SERVING), sorted(loaded & set(SERVING))


def test_the_check_would_notice_a_backwards_import():
    script = (
        "import json, sys; import multitarget_exporter.app; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "prometheus_client" in json.loads(done.stdout)
