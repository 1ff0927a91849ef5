"""The real app under the real gunicorn, against the fake upstream as a real server."""

from __future__ import annotations

import gzip
import time

import pytest

from tests.conftest import OWM_KEY, after_faults, promtool_check, samples, unique, unique_point

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def breaker_counts_again(request, fake_upstream):
    """One test's faults must not open the shared exporter's breaker for the next."""
    yield
    if "exporter" in request.fixturenames:
        exporter = request.getfixturevalue("exporter")
        after_faults(fake_upstream, exporter, [(unique_point(), "nocache")])


# -- readings ------------------------------------------------------------------------


def test_probe_returns_the_reading_in_base_units(exporter, fake_upstream):
    response = exporter.probe("London,GB")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    metrics = samples(response.text)
    assert metrics["probe_success"] == 1
    assert metrics["probe_upstream_status_code"] == 200
    assert metrics["probe_cache_hit"] == 0
    assert "probe_failure_info" not in response.text
    # The fake holds 283.15 K, 1012 hPa, 81 %, 75 % clouds, 4.63 m/s for London.
    assert metrics["weather_temperature_celsius"] == pytest.approx(10.0)
    assert metrics["weather_pressure_pascals"] == pytest.approx(101200)
    assert metrics["weather_relative_humidity_ratio"] == pytest.approx(0.81)
    assert metrics["weather_cloud_cover_ratio"] == pytest.approx(0.75)
    assert metrics["weather_wind_speed_meters_per_second"] == pytest.approx(4.63)
    location = 'weather_location_info{country="GB",name="London",provider="openweathermap"}'
    assert metrics[location] == 1
    assert 0 < metrics["probe_duration_seconds"] < 3
    # It asked in metric units with the module's key, the place as a query value.
    asked = fake_upstream.requests_naming("London,GB")[-1]["query"]
    assert asked["units"] == "metric" and asked["appid"] == OWM_KEY and asked["lang"] == "en"


@pytest.mark.parametrize(
    ("target", "name", "country", "latitude"),
    [
        ("id:2643743", "London", "GB", 51.5085),
        ("51.5085,-0.1257", "London", "GB", 51.5085),
        ("zip:94040,US", "Mountain View", "US", 37.3861),
        ("zip:94040", "Mountain View", "US", 37.3861),
        ("Springfield,IL,US", "Springfield", "US", 39.8017),
        ("Springfield,MO,US", "Springfield", "US", 37.2153),
        ("São Paulo", "São Paulo", "BR", -23.5475),
        ("Zürich,CH", "Zurich", "CH", 47.3667),
        ("北京", "Beijing", "CN", 39.9075),
        ("St. John's,CA", "St. John's", "CA", 47.5649),
    ],
)
def test_every_target_form_and_unicode_names(exporter, target, name, country, latitude):
    metrics = samples(exporter.probe(target).text)
    assert metrics["probe_success"] == 1, target
    key = f'weather_location_info{{country="{country}",name="{name}",provider="openweathermap"}}'
    assert metrics[key] == 1
    assert metrics["weather_location_latitude_degrees"] == pytest.approx(latitude)


def test_language_changes_the_returned_name(exporter):
    metrics = samples(exporter.probe("Zurich,CH", module="german").text)
    assert 'name="Zürich"' in "".join(metrics)


def test_point_at_sea_is_a_reading_without_a_country(exporter):
    metrics = samples(exporter.probe("10.5,-30.25").text)
    assert metrics["probe_success"] == 1
    # OpenWeatherMap calls a point at sea "Globe" (owm_weather_rails_stimulus_globe_0_0.json).
    assert metrics['weather_location_info{country="",name="Globe",provider="openweathermap"}'] == 1


def test_polar_night_has_no_sunrise_and_a_storm_has_two_conditions(exporter):
    polar = exporter.probe("Longyearbyen").text
    assert "probe_success 1.0" in polar and "weather_sunrise_timestamp_seconds" not in polar
    storm = samples(exporter.probe("São Paulo,BR").text)
    conditions = [k for k in storm if k.startswith("weather_condition_info")]
    assert len(conditions) == 2
    assert storm['weather_rain_meters{window="3h"}'] == pytest.approx(0.0071)


def test_nulls_in_the_answer_are_left_out(exporter, fake_upstream):
    place = unique()
    fake_upstream.fault("nulls", place)
    text = exporter.probe(place).text
    metrics = samples(text)
    assert metrics["probe_success"] == 1
    for absent in (
        "weather_wind_speed",
        "weather_pressure",
        "weather_relative_humidity",
        "weather_condition_info",
        "weather_visibility",
        "weather_sunrise",
    ):
        assert absent not in text


# -- failures: one per reason, each followed by a healthy probe ------------------------


@pytest.mark.parametrize(
    ("fault", "reason", "status"),
    [
        ("rate_limited", "rate_limited", 429),
        ("unauthorized", "unauthorized", 401),
        ("not_found", "not_found", 404),
        ("error_in_body", "not_found", 200),
        ("html_502", "upstream_error", 502),
        ("json_500", "upstream_error", 500),
        ("json_503", "upstream_error", 503),
        ("bad_request", "upstream_error", 400),
        ("reset", "connection_error", 0),
        ("close", "connection_error", 0),
        ("malformed", "invalid_response", 200),
        ("empty", "invalid_response", 200),
        ("partial", "invalid_response", 200),
        ("no_temperature", "invalid_response", 200),
        ("oversize", "too_large", 200),
        ("oversize_chunked", "too_large", 200),
    ],
)
def test_failure_reasons(exporter, fake_upstream, fault, reason, status):
    place = unique(fault)
    fake_upstream.fault(fault, place)
    response = exporter.probe(place)
    assert response.status_code == 200
    metrics = samples(response.text)
    assert metrics["probe_success"] == 0
    assert metrics[f'probe_failure_info{{reason="{reason}"}}'] == 1
    assert [k for k in metrics if k.startswith("probe_failure_info")] == [
        f'probe_failure_info{{reason="{reason}"}}'
    ]
    assert metrics["probe_upstream_status_code"] == status
    assert not any(k.startswith("weather_") for k in metrics)
    assert len(fake_upstream.requests_naming(place)) == 1  # no retries behind the user's back
    # Nothing else broke: the next probe succeeds.
    assert samples(exporter.probe("Berlin").text)["probe_success"] == 1


def test_unknown_place_is_not_found(exporter):
    metrics = samples(exporter.probe(unique("Atlantis")).text)
    assert metrics['probe_failure_info{reason="not_found"}'] == 1
    assert metrics["probe_upstream_status_code"] == 404


def test_rejected_key_is_unauthorized(exporter):
    metrics = samples(exporter.probe("London", module="wrong_key").text)
    assert metrics['probe_failure_info{reason="unauthorized"}'] == 1
    assert metrics["probe_upstream_status_code"] == 401


def test_refused_connection(exporter):
    started = time.monotonic()
    metrics = samples(exporter.probe("London", module="refused").text)
    assert metrics['probe_failure_info{reason="connection_error"}'] == 1
    assert metrics["probe_upstream_status_code"] == 0
    assert time.monotonic() - started < 2


# -- the deadline ----------------------------------------------------------------------


def test_hanging_upstream_is_cut_at_the_scrape_timeout_less_offset(exporter, fake_upstream):
    place = unique("hang")
    fake_upstream.fault("hang", place)
    started = time.monotonic()
    response = exporter.probe(place, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    elapsed = time.monotonic() - started
    metrics = samples(response.text)
    assert metrics['probe_failure_info{reason="timeout"}'] == 1
    assert 0.9 <= metrics["probe_duration_seconds"] <= 1.3  # 1.5 s less the 0.5 s offset
    assert elapsed < 1.5  # answered before Prometheus would give up


def test_hanging_upstream_is_cut_at_the_module_timeout(exporter, fake_upstream):
    place = unique("hang")
    fake_upstream.fault("hang", place)
    response = exporter.probe(
        place, module="quick", headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"}
    )
    metrics = samples(response.text)
    assert metrics['probe_failure_info{reason="timeout"}'] == 1
    assert 0.9 <= metrics["probe_duration_seconds"] <= 1.3  # the module's 1 s wins


def test_trickling_body_is_cut_at_the_deadline(exporter, fake_upstream):
    place = unique("trickle")
    # One byte every 0.05 s: every socket read succeeds, the body would take ~40 s.
    fake_upstream.fault("trickle", place, delay=0.05)
    started = time.monotonic()
    metrics = samples(exporter.probe(place, module="quick").text)
    assert metrics['probe_failure_info{reason="timeout"}'] == 1
    assert metrics["probe_upstream_status_code"] == 200
    assert time.monotonic() - started < 1.6


def test_trickling_headers_are_cut_at_the_deadline(exporter, fake_upstream):
    place = unique("trickle_headers")
    # Each header byte 0.05 s apart: every read returns at once, the head takes ~4 s.
    fake_upstream.fault("trickle_headers", place, delay=0.05)
    started = time.monotonic()
    metrics = samples(exporter.probe(place, module="quick").text)
    assert metrics['probe_failure_info{reason="timeout"}'] == 1
    assert 0.9 <= metrics["probe_duration_seconds"] <= 1.3
    assert time.monotonic() - started < 1.6
    assert samples(exporter.probe("Berlin").text)["probe_success"] == 1


@pytest.mark.parametrize("header", ["nan", "-5", "0", "inf", "1e999", "soon", ""])
def test_absurd_scrape_timeout_headers_are_ignored(exporter, fake_upstream, header):
    place = unique("hang")
    fake_upstream.fault("hang", place)
    response = exporter.probe(
        place, module="quick", headers={"X-Prometheus-Scrape-Timeout-Seconds": header}
    )
    assert response.status_code == 200
    assert 0.9 <= samples(response.text)["probe_duration_seconds"] <= 1.3


# -- bad requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "target parameter is missing"),
        ("target=", "target parameter is missing"),
        ("target=%20%20", "target parameter is missing"),
        ("target=" + "x" * 257, "longer than 256"),
        ("target=Lon%0Adon", "control characters"),
        ("target=London%00", "control characters"),
        ("target=91,0", "latitude"),
        ("target=0,181", "longitude"),
        ("target=id:abc", "numeric city id"),
        ("target=London&module=nope", "unknown module (known: default, "),
        ("target=London&module=" + "m" * 300, "unknown module"),
        ("target=London&target=Paris", "target parameter given more than once"),
        ("target=London&module=default&module=quick", "module parameter given more than once"),
        ("target=http://169.254.169.254/", "unknown target prefix"),
    ],
)
def test_bad_requests_are_400_with_one_line(exporter, fake_upstream, query, message):
    before = fake_upstream.summary()["total"]
    response = exporter.get(f"/probe?{query}")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert message in response.text
    assert response.text.count("\n") == 1 and len(response.text) < 300
    assert fake_upstream.summary()["total"] == before  # no upstream call for a bad request


def test_a_request_line_over_gunicorns_limit_is_its_414(exporter, fake_upstream):
    """A 10 KB target never reaches the exporter: gunicorn answers 414 as the endpoint
    table says, no upstream call is made, and the next probe is answered as ever."""
    before = fake_upstream.summary()["total"]
    response = exporter.get("/probe", params={"target": "x" * 10_000})
    assert response.status_code == 414
    assert "Request Line is too large" in response.text
    assert fake_upstream.summary()["total"] == before
    assert samples(exporter.probe("London,GB").text)["probe_success"] == 1


def test_allowed_targets(exporter, fake_upstream):
    assert samples(exporter.probe("Berlin,DE", module="europe").text)["probe_success"] == 1
    assert samples(exporter.probe("id:2950159", module="europe").text)["probe_success"] == 1
    before = fake_upstream.summary()["total"]
    for target in ("Tokyo,JP", "Berlin", "id:2643743", "Berlin,DE,extra"):
        response = exporter.probe(target, module="europe")
        assert response.status_code == 400, target
        assert "not allowed by module europe's allowed_targets" in response.text
    assert fake_upstream.summary()["total"] == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/probe/extra", 404),
        ("GET", "/history", 404),
        ("POST", "/probe?target=London", 405),
        ("PUT", "/metrics", 405),
        ("DELETE", "/", 405),
        ("POST", "/-/healthy", 405),
    ],
)
def test_other_paths_and_methods(exporter, method, path, status):
    response = exporter.request(method, path)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/plain")
    if status == 405:
        assert "GET" in response.headers["Allow"]


def test_target_is_a_query_value_never_a_parameter(exporter, fake_upstream):
    target = f"{unique()}&appid=stolen&q=Paris&units=imperial"
    exporter.probe(target)
    [seen] = fake_upstream.requests_naming(target)
    assert seen["query"]["appid"] == OWM_KEY
    assert seen["query"]["units"] == "metric"
    assert seen["path"] == "/data/2.5/weather"


# -- exposition ------------------------------------------------------------------------


def test_openmetrics_and_gzip_are_negotiated(exporter):
    response = exporter.probe(
        "London",
        headers={
            "Accept": "application/openmetrics-text; version=1.0.0",
            "Accept-Encoding": "gzip",
        },
        stream=True,
    )
    raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(raw).decode()
    assert text.endswith("# EOF\n")
    assert "probe_success 1.0" in text


def test_head_request(exporter):
    response = exporter.request("HEAD", "/probe?target=London")
    assert response.status_code == 200 and response.content == b""


def test_promtool_accepts_success_and_failure(exporter, fake_upstream):
    place = unique("fail")
    fake_upstream.fault("json_500", place)
    for target in ("São Paulo", "St. John's,CA", "Longyearbyen", place, "10,10"):
        text = exporter.probe(target).text
        checked = promtool_check(text)
        assert checked.returncode == 0, (target, checked.stdout, checked.stderr)


def test_promtool_would_catch_a_bad_name():
    # The check above can fail: promtool rejects what a careless collector might write.
    checked = promtool_check("# TYPE weather_total_things counter\nweather_total_things 1\n")
    assert checked.returncode != 0


def test_exporter_metrics(exporter):
    before = samples(exporter.get("/metrics").text)
    exporter.probe("Tokyo")
    exporter.probe(unique("Atlantis"))
    response = exporter.get("/metrics")
    assert promtool_check(response.text).returncode == 0
    after = samples(response.text)
    assert after['multitarget_exporter_build_info{version="0.1.0"}'] == 1

    def delta(key):
        return after.get(key, 0) - before.get(key, 0)

    assert delta('multitarget_exporter_probes_total{module="default",result="success"}') == 1
    assert delta('multitarget_exporter_probes_total{module="default",result="not_found"}') == 1
    assert delta('multitarget_exporter_probe_duration_seconds_count{module="default"}') == 2
    assert "process_resident_memory_bytes" in after
    assert "python_info" in "".join(after)
    # every configured module is there from the start, so rate() works at once
    assert 'multitarget_exporter_probes_total{module="german",result="success"}' in after


def test_upstream_connections_are_reused(exporter, fake_upstream):
    exporter.probe("Sydney", module="nocache")  # warm the pool
    before = fake_upstream.summary()
    for _ in range(5):
        metrics = samples(exporter.probe("Sydney", module="nocache").text)
        assert metrics["probe_success"] == 1 and metrics["probe_cache_hit"] == 0
    after = fake_upstream.summary()
    assert after["by_path"]["/data/2.5/weather"] - before["by_path"]["/data/2.5/weather"] == 5
    assert after["connections"] == before["connections"]


# -- configuration and debug -----------------------------------------------------------


def test_config_shows_the_effective_configuration_without_secrets(exporter):
    import yaml

    response = exporter.get("/config")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert OWM_KEY not in response.text and "not-the-right-key" not in response.text
    config = yaml.safe_load(response.text)
    assert set(config["modules"]) == {
        "default",
        "quick",
        "wrong_key",
        "refused",
        "german",
        "nocache",
        "europe",
    }
    assert config["modules"]["default"]["api_key"] == "<secret>"
    assert config["modules"]["quick"]["timeout"] == "1s"
    assert config["modules"]["europe"]["allowed_targets"] == ["[^,]+,(GB|DE|CH)", "id:2950159"]
    assert config["cache"]["backend"] == "memory"


def test_debug_shows_the_probe_log_metrics_and_module(exporter, fake_upstream):
    place = unique("debug")
    fake_upstream.fault("json_500", place)
    response = exporter.get("/probe", params={"target": place, "debug": "TRUE"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    logs, rest = text.split("Metrics that would have been returned:")
    metrics, module = rest.split("Module configuration:")
    assert logs.startswith("Logs for the probe:")
    assert 'msg="requesting upstream"' in logs and "appid=<secret>" in logs
    assert "status=500" in logs and "outcome=upstream_error" in logs
    assert samples(metrics)['probe_failure_info{reason="upstream_error"}'] == 1
    assert "api_key: <secret>" in module and "timeout: 3s" in module
    assert OWM_KEY not in text
    # Anything but true is an ordinary probe.
    plain = exporter.get("/probe", params={"target": "Berlin", "debug": "false"})
    assert plain.text.startswith("# HELP probe_success")


# -- pages -----------------------------------------------------------------------------


def test_landing_page_health_and_readiness(exporter):
    page = exporter.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    for text in ("0.1.0", "german", "wrong_key", '<form action="probe"', 'href="metrics"'):
        assert text in page.text
    assert exporter.get("/-/healthy").text == "OK\n"
    assert exporter.get("/-/ready").text == "OK\n"


# -- logs and secrets ------------------------------------------------------------------


def test_one_log_line_per_probe(exporter):
    place = unique("logged")
    exporter.probe(place)
    lines = [line for line in exporter.log_text().splitlines() if place in line]
    assert len(lines) == 1
    line = lines[0]
    for field in (
        "level=warn",
        'msg="probe finished"',
        "module=default",
        f"target={place}",
        "outcome=not_found",
        "duration_seconds=",
        "upstream_status=404",
    ):
        assert field in line


def test_the_key_never_leaves_the_process(exporter_factory, fake_upstream):
    """Every fault, at debug log level: no response, header or log line holds the key."""
    from tests.conftest import standard_config

    config = standard_config(fake_upstream.url, exporter_factory.dead_port)
    noisy = exporter_factory(config, args=["--log.level", "debug"])
    faults = [
        "rate_limited",
        "unauthorized",
        "html_502",
        "json_500",
        "reset",
        "close",
        "malformed",
        "partial",
        "oversize",
        "oversize_chunked",
        "error_in_body",
    ]
    for fault in faults:
        place = unique(fault)
        fake_upstream.fault(fault, place, times=2)
        noisy.probe(place)
        noisy.get("/probe", params={"target": place, "debug": "true"})
        # A good call between faults: five failing calls running would open the breaker,
        # and the hang and trickle below would not be asked at all.
        noisy.probe(unique_point(), module="nocache")
    hang = unique("hang")
    fake_upstream.fault("hang", hang)
    noisy.probe(hang, module="quick")
    trickle = unique("trickle")
    fake_upstream.fault("trickle", trickle, delay=0.05)
    noisy.probe(trickle, module="quick")
    noisy.probe("London", module="refused")
    noisy.probe("London")
    noisy.probe("London", module="wrong_key")
    noisy.get(f"/probe?target=London&module={OWM_KEY}")
    noisy.get("/metrics")
    noisy.get("/")
    noisy.get("/config")
    noisy.get("/logs", params={"target": "London", "module": "refused"})
    for probe_id in range(1, 40):
        noisy.get("/logs", params={"id": str(probe_id)})
    noisy.get("/probe", params={"target": "London", "module": "refused", "debug": "true"})
    for response in noisy.responses:
        assert OWM_KEY not in response.text
        assert OWM_KEY not in str(response.headers)
    noisy.stop()
    log = noisy.log_text()
    # The refused connection's error names the whole URL: logged, with the key masked.
    assert "NewConnectionError" in log and "appid=<secret>" in log
    # The hang and the trickle end at the deadline: by the socket's own timeout, the
    # read loop's check or the watchdog's cut, whichever comes first (each says so).
    assert any(
        detail in log for detail in ("deadline passed, connection cut", "deadline passed after")
    ) or ("timeout" in log and "Read timed out" in log)
    assert OWM_KEY not in log
    assert "not-the-right-key" not in log
