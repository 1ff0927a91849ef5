"""The landing page's recent probes and /logs, served by several workers."""

from __future__ import annotations

import re
import time
import uuid
from html import unescape

import pytest
import requests

from multitarget_exporter.probing.history import SqliteHistory
from tests.conftest import OWM_KEY, standard_config

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def fresh_get(exporter, path: str, **params) -> requests.Response:
    """A new connection per request, so they spread over the workers."""
    return requests.get(
        f"{exporter.url}/{path.lstrip('/')}",
        params=params,
        timeout=10,
        headers={"Connection": "close"},
    )


def test_history_links_resolve_whichever_worker_answers(exporter_factory, fake_upstream):
    exporter = exporter_factory(
        standard_config(fake_upstream.url, exporter_factory.dead_port),
        args=["--workers", "3"],
    )
    failing = f"Nowhere-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        fresh_get(exporter, "/probe", target="Berlin,DE")
    fresh_get(exporter, "/probe", target=failing)
    fresh_get(exporter, "/probe", target="<script>alert(1)</script>")
    # Each worker writes its probes within a tenth of a second; a page read does not wait.
    time.sleep(SqliteHistory.FLUSH_SECONDS * 3)
    page = fresh_get(exporter, "/").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    failures = page.split("<h2>Recent failures</h2>")[1].split("<h2>Recent probes</h2>")[0]
    assert failing in failures and "not_found" in failures
    links = [unescape(link) for link in re.findall(r'href="(logs\?[^"]+)"', page)]
    assert len(links) >= 10  # a log and a latest link for each of the 5 probes
    for link in links:
        for _ in range(3):  # several connections: several workers
            response = fresh_get(exporter, link)
            assert response.status_code == 200, link
            assert response.text.startswith("Probe ")
            assert 'msg="probe finished"' in response.text


def test_logs_by_id_and_by_target(exporter, fake_upstream):
    target = f"Atlantis-{uuid.uuid4().hex[:8]}"
    exporter.probe(target, module="quick")
    latest = exporter.get("/logs", params={"target": target, "module": "quick"})
    assert latest.status_code == 200
    first_line = latest.text.splitlines()[0]
    assert f"module=quick target='{target}' outcome=not_found" in first_line
    probe_id = re.match(r"Probe (\d+):", first_line)[1]
    by_id = exporter.get("/logs", params={"id": probe_id})
    assert by_id.text == latest.text
    assert 'msg="requesting upstream"' in by_id.text and "appid=<secret>" in by_id.text
    assert OWM_KEY not in by_id.text
    # module defaults to default
    exporter.probe(target)
    assert "module=default" in exporter.get("/logs", params={"target": target}).text


def test_logs_bad_and_missing(exporter):
    for params in ({"id": "1", "target": "London"}, {"id": "1", "module": "default"}):
        response = exporter.get("/logs", params=params)
        assert response.status_code == 400 and "not both" in response.text
    for params in ({}, {"id": "abc"}, {"id": "-1"}, {"id": "9" * 40}, {"target": ""}):
        assert exporter.get("/logs", params=params).status_code == 400, params
    assert exporter.get("/logs", params={"id": "999999999"}).status_code == 404
    assert exporter.get("/logs", params={"target": "Never-probed"}).status_code == 404
