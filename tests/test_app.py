"""The WSGI app through werkzeug's test client, against the in-process fake upstream."""

from __future__ import annotations

import pytest
import yaml
from werkzeug.test import Client

import fake_upstream
from multitarget_exporter.config.modules import parse_config
from multitarget_exporter.probing.probe import probe_timeout
from multitarget_exporter.web.app import ExporterApp
from tests.conftest import samples


@pytest.fixture(scope="module")
def upstream():
    server = fake_upstream.start(api_key="unit-key", hang_seconds=5)
    yield server
    fake_upstream.stop(server)


@pytest.fixture(scope="module")
def client(upstream):
    config = parse_config(
        yaml.safe_load(f"""
modules:
  default: {{provider: openweathermap, api_key: unit-key, base_url: "{upstream.url}"}}
  quick: {{provider: openweathermap, api_key: unit-key, base_url: "{upstream.url}"}}
""")
    )
    return Client(ExporterApp(config))


@pytest.mark.parametrize(
    ("module_timeout", "header", "offset", "expected"),
    [
        (10, None, 0.5, 10),
        (10, "15", 0.5, 10),  # the module's bound wins
        (10, "5", 0.5, 4.5),  # the scrape timeout less the offset
        (10, "0.4", 0.5, 0.4),  # an offset larger than the header is not subtracted
        (10, "nan", 0.5, 10),
        (10, "inf", 0.5, 10),
        (10, "-3", 0.5, 10),
        (10, "0", 0.5, 10),
        (10, "ten", 0.5, 10),
        (10, "1e999", 0.5, 10),
        (2, "3", 0, 2),
    ],
)
def test_probe_timeout(module_timeout, header, offset, expected):
    assert probe_timeout(module_timeout, header, offset) == pytest.approx(expected)


def test_probe_success(client):
    response = client.get("/probe?target=Tokyo,JP")
    assert response.status_code == 200
    assert samples(response.get_data(as_text=True))["probe_success"] == 1


def test_module_defaults_to_default_and_empty_module_too(client):
    assert client.get("/probe?target=Tokyo&module=").status_code == 200


@pytest.mark.parametrize("query", ["target=%FF%FE", "target=nan,nan", "target=inf,0"])
def test_junk_targets_are_400s_before_any_upstream_call(client, upstream, query):
    before = upstream.state.summary()["total"]
    response = client.get(f"/probe?{query}")
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("bad target: ")
    assert response.get_data(as_text=True).count("\n") == 1
    assert upstream.state.summary()["total"] == before


def test_a_provider_bug_is_a_failed_probe_not_a_500(client, monkeypatch):
    provider = client.application.state.providers["default"]
    raised = []

    def broken(location, deadline, log):  # the real signature: a wrong one would raise too
        raised.append(location)
        raise KeyError("surprise")

    monkeypatch.setattr(provider, "fetch", broken)
    response = client.get("/probe?target=Never-probed-before")
    assert response.status_code == 200
    assert len(raised) == 1  # the stub itself ran, and its KeyError is what was caught
    text = response.get_data(as_text=True)
    assert 'probe_failure_info{reason="invalid_response"} 1.0' in text
    debug = client.get("/probe?target=Never-probed-again&debug=true").get_data(as_text=True)
    assert "internal error: KeyError" in debug


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("", "text/plain; version=0.0.4"),
        ("text/plain", "text/plain; version=0.0.4"),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text"),
        (
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            "application/openmetrics-text",
        ),
    ],
)
def test_content_negotiation(client, accept, content_type):
    for path in ("/probe?target=Tokyo", "/metrics"):
        response = client.get(path, headers={"Accept": accept})
        assert response.headers["Content-Type"].startswith(content_type)
        assert "Accept" in response.headers["Vary"]


def test_no_gzip_unless_asked(client):
    response = client.get("/probe?target=Tokyo", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in response.headers


def test_landing_page_lists_modules_in_the_form(client):
    page = client.get("/").get_data(as_text=True)
    assert '<option value="quick">quick</option>' in page
    assert client.get("/").headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_trailing_slash_is_the_same_endpoint(client):
    assert client.get("/metrics/").status_code == 200
    assert client.get("/-/ready/").status_code == 200


def test_reload_in_one_process(upstream, tmp_path):
    path = tmp_path / "one.yml"
    module = f'{{provider: openweathermap, api_key: unit-key, base_url: "{upstream.url}"}}'
    path.write_text(f"modules:\n  default: {module}\n")
    app = ExporterApp.from_file(str(path))
    client = Client(app)
    path.write_text(f"modules:\n  default: {module}\n  second: {module}\n")
    assert client.post("/-/reload").status_code == 200
    assert set(app.state.config.modules) == {"default", "second"}
    path.write_text("modules: {default: {provider: nope}}\n")
    response = client.post("/-/reload")
    assert response.status_code == 500 and "'nope'" in response.get_data(as_text=True)
    assert set(app.state.config.modules) == {"default", "second"}  # unchanged
    assert client.get("/probe?target=Tokyo&module=second").status_code == 200
