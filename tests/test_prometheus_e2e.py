"""The examples end to end: Debian's real Prometheus scrapes the real exporter.

Prometheus runs `examples/prometheus.yml` with its rules and target files,
only the exporter's address rewritten to this test's port, plus one target
file naming a place nobody knows. The exporter runs `examples/fake_upstream.yml`
under gunicorn (the CLI), only the fake upstream's address rewritten. Then
everything is asked through Prometheus' HTTP API, the Grafana dashboard's
queries included, as Grafana would send them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

import fake_upstream as fake
from fake_upstream.places import KELVIN, World
from multitarget_exporter.validate import parse_duration
from tests.conftest import free_port

EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE_ADDRESS = "127.0.0.1:9265"
EXAMPLE_UPSTREAM = "http://127.0.0.1:8080"
UNKNOWN = "Atlantis-e2e"
# Prometheus spreads first scrapes over the 1m interval; then a second round.
SCRAPE_WAIT_SECONDS = 150
# Every rule group is evaluated within one evaluation_interval (1m) of the start.
RULE_WAIT_SECONDS = 75

pytestmark = pytest.mark.timeout(400)


class Prometheus:
    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url, self.process = url, process

    def api(self, path: str, **params) -> dict:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def upstream():
    server = fake.start()  # its default key is the one examples/fake_upstream.yml holds
    yield server
    fake.stop(server)


@pytest.fixture(scope="module")
def exporter(exporter_factory, upstream):
    config = (EXAMPLES / "fake_upstream.yml").read_text("utf-8")
    assert EXAMPLE_UPSTREAM in config
    return exporter_factory(config.replace(EXAMPLE_UPSTREAM, upstream.url))


@pytest.fixture(scope="module")
def prometheus(exporter, tmp_path_factory):
    root = tmp_path_factory.mktemp("prometheus")
    for part in ("rules", "targets"):
        shutil.copytree(EXAMPLES / part, root / part)
    address = urlsplit(exporter.url).netloc
    text = (EXAMPLES / "prometheus.yml").read_text("utf-8")
    assert EXAMPLE_ADDRESS in text
    (root / "prometheus.yml").write_text(text.replace(EXAMPLE_ADDRESS, address), "utf-8")
    # A place nobody knows, added the way a user adds places: a target file.
    (root / "targets" / "unknown.yml").write_text(yaml.safe_dump([{"targets": [UNKNOWN]}]))
    port = free_port()
    log = open(root / "prometheus.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}", process)
    try:
        _wait_for_scrapes(server, root / "prometheus.log")
        yield server
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _wait_for_scrapes(server: Prometheus, log_path: Path) -> None:
    """Until every target has been scraped, and the exporter's own job twice."""
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log_path.read_text()[-2000:]}")
        try:
            targets = server.api("targets", state="active")["activeTargets"]
            scraped = targets and all(t["health"] != "unknown" for t in targets)
            twice = server.query('count_over_time(up{job="multitarget_exporter"}[5m]) >= 2')
            if scraped and twice:
                return
        except requests.RequestException:
            pass
        time.sleep(2)
    raise AssertionError(f"targets not all scraped in time: {log_path.read_text()[-2000:]}")


def example_places(job_name: str) -> set[str]:
    config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text("utf-8"))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == job_name)
    places = {t for group in job.get("static_configs", []) for t in group["targets"]}
    if job.get("file_sd_configs"):
        for path in (EXAMPLES / "targets").glob("*.yml"):
            places |= {
                t for group in yaml.safe_load(path.read_text("utf-8")) for t in group["targets"]
            }
    return places


def test_every_scrape_is_up(prometheus):
    targets = prometheus.api("targets", state="active")["activeTargets"]
    jobs = {t["labels"]["job"] for t in targets}
    assert jobs == {"weather", "weather_air", "weather_open_meteo", "multitarget_exporter"}
    down = [(t["labels"], t["lastError"]) for t in targets if t["health"] != "up"]
    assert not down
    assert all(float(s["value"][1]) == 1 for s in prometheus.query("up"))


@pytest.mark.parametrize("job", ["weather", "weather_air", "weather_open_meteo"])
def test_one_series_per_place_with_the_place_as_instance(prometheus, job):
    expected = example_places(job) | ({UNKNOWN} if job == "weather" else set())
    series = prometheus.query(f'probe_success{{job="{job}"}}')
    assert sorted(s["metric"]["instance"] for s in series) == sorted(expected)
    module = {"weather": "default", "weather_air": "air", "weather_open_meteo": "open_meteo"}[job]
    assert {s["metric"]["module"] for s in series} == {module}
    for sample in series:
        success = float(sample["value"][1])
        assert success == (0 if sample["metric"]["instance"] == UNKNOWN else 1), sample


def test_the_unknown_place_says_why(prometheus):
    reason = prometheus.query(f'probe_failure_info{{instance="{UNKNOWN}"}}')
    assert [s["metric"]["reason"] for s in reason] == ["not_found"]
    assert not prometheus.query(f'weather_temperature_celsius{{instance="{UNKNOWN}"}}')


def test_the_values_are_the_upstreams(prometheus):
    world = World.load()
    london = world.by_query("London,GB").data["weather"]["main"]
    berlin = world.by_id("2950159").data["weather"]["main"]
    beijing = world.by_query("Beijing,CN").data
    temperature = 'weather_temperature_celsius{{job="{}", instance="{}"}}'
    assert prometheus.value(temperature.format("weather", "London,GB")) == pytest.approx(
        london["temp"] - KELVIN, abs=0.01
    )
    assert prometheus.value(temperature.format("weather", "id:2950159")) == pytest.approx(
        berlin["temp"] - KELVIN, abs=0.01
    )
    assert prometheus.value(temperature.format("weather_open_meteo", "London,GB")) == pytest.approx(
        london["temp"] - KELVIN, abs=0.06
    )
    pressure = 'weather_pressure_pascals{job="weather", instance="London,GB"}'
    assert prometheus.value(pressure) == pytest.approx(london["pressure"] * 100)
    index = 'weather_air_quality_index{job="weather_air", instance="Beijing,CN"}'
    assert prometheus.value(index) == beijing["air"]["aqi"]
    # The labels a file_sd group sets reach the series.
    region = prometheus.query('probe_success{instance="Reykjavik,IS"}')
    assert region[0]["metric"]["region"] == "elsewhere"


def test_the_rules_load_and_evaluate(prometheus):
    """Every rule of the file, the forecast, UV, pollen and air alerts among them, is
    loaded and evaluates without error on what the exporter really exposes (an alert
    giving two series with the same labels, say, is an error only on real data)."""
    rules_file = yaml.safe_load((EXAMPLES / "rules" / "weather.rules.yml").read_text("utf-8"))
    expected = {r.get("alert") or r["record"] for g in rules_file["groups"] for r in g["rules"]}
    deadline = time.monotonic() + RULE_WAIT_SECONDS
    while True:
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if all(rule["health"] != "unknown" for rule in rules) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {g["name"] for g in groups} == {g["name"] for g in rules_file["groups"]}
    assert {rule["name"] for rule in rules} == expected
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule["health"], rule.get("lastError"))


# -- the Grafana dashboard, query by query ---------------------------------------------------


def dashboard() -> dict:
    return json.loads((EXAMPLES / "grafana" / "weather.json").read_text("utf-8"))


def expand(expr: str, module: str) -> str:
    """A panel's query as Grafana sends it, for one module and every place."""
    values = {
        "module": module,
        "instance": ".+",  # the variable's `allValue`
        "__rate_interval": "2m",
        "__interval": "1m",
        "__range": "1h",
    }
    return re.sub(r"\$(\w+)", lambda m: values[m[1]], expr)


def test_the_dashboard_variables_have_values(prometheus):
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    modules = _label_values(prometheus, variables["module"]["definition"], "default")
    assert set(modules) == {"default", "air", "open_meteo"}
    places = _label_values(prometheus, variables["instance"]["definition"], "open_meteo")
    assert set(places) == example_places("weather_open_meteo")


def _label_values(prometheus: Prometheus, definition: str, module: str) -> list[str]:
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", expand(definition, module))
    assert match, definition
    return prometheus.api(f"label/{match[2]}/values", **{"match[]": match[1]})


# What a panel needs of the module it shows, by title; every other panel needs only
# places that answer. A panel has data for each module that offers what it needs, and
# none for a module that does not (`module_offers` reads examples/fake_upstream.yml).
PANEL_NEEDS = {
    "Forecast temperature": {"forecast"},
    "Forecast chance of precipitation": {"forecast"},
    # Daily figures: Open-Meteo only (OpenWeatherMap's free plan has none).
    "Today and tomorrow": {"forecast", "open_meteo"},
    # Current UV: Open-Meteo's current data has it, OpenWeatherMap's free one does not.
    "UV index": {"open_meteo"},
    "Air quality, European index": {"air_quality", "open_meteo"},
    "Air quality, US index": {"air_quality", "open_meteo"},
    "Air quality, OpenWeatherMap (1 to 5)": {"air_quality", "openweathermap"},
    "Air pollutants": {"air_quality"},
    # Open-Meteo's pollen covers Europe in season: the fake has it for the European
    # places of the open_meteo job (London,GB and Zürich,CH).
    "Pollen": {"air_quality", "open_meteo"},
    # The place nobody knows is added to the job of module `default`.
    "Failures by reason": {"a failing place"},
}
# Metric families that need a module option: a panel reading one must be in PANEL_NEEDS.
OPTIONAL_FAMILIES = ("weather_forecast_", "weather_uv_", "weather_air_", "weather_pollen_")


def example_modules() -> dict[str, dict]:
    return yaml.safe_load((EXAMPLES / "fake_upstream.yml").read_text("utf-8"))["modules"]


def module_offers(module: str) -> set[str]:
    settings = example_modules()[module]
    offers = {settings["provider"]}
    offers |= {option for option in ("forecast", "air_quality") if settings.get(option)}
    if module == "default":
        offers.add("a failing place")
    return offers


def test_the_panel_needs_name_real_panels():
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    assert set(PANEL_NEEDS) <= {p["title"] for p in panels}
    for panel in panels:
        exprs = " ".join(target["expr"] for target in panel["targets"])
        if any(family in exprs for family in OPTIONAL_FAMILIES):
            assert panel["title"] in PANEL_NEEDS, panel["title"]
    # Each need is met by some example module, so that every panel is seen with data.
    offered = set().union(*(module_offers(m) for m in example_modules()))
    assert set().union(*PANEL_NEEDS.values()) <= offered


@pytest.mark.parametrize("module", ["default", "air", "open_meteo"])
def test_every_dashboard_query_is_accepted_and_has_data(prometheus, module):
    offers = module_offers(module)
    for panel in dashboard()["panels"]:
        missing = PANEL_NEEDS.get(panel["title"], set()) - offers
        for target in panel.get("targets", []):
            expr = expand(target["expr"], module)
            result = prometheus.query(expr)  # a query Prometheus refuses fails here
            if missing:
                assert not result, (panel["title"], f"data without {missing}", expr, result)
            else:
                assert result, (panel["title"], expr)


# -- the forecast, as each provider gives it ----------------------------------------------------


def _horizons(module: str) -> dict[str, float]:
    """The module's configured horizons: label -> seconds."""
    return {label: parse_duration(label) for label in example_modules()[module].get("forecast", [])}


def _label_sets(prometheus: Prometheus, expr: str, *labels: str) -> dict[str, set]:
    """instance -> the set of `labels` tuples (or single values) its series carry."""
    found: dict[str, set] = {}
    for sample in prometheus.query(expr):
        values = tuple(sample["metric"].get(label, "") for label in labels)
        found.setdefault(sample["metric"]["instance"], set()).add(
            values[0] if len(values) == 1 else values
        )
    return found


def test_open_meteo_gives_every_horizon_in_1h_steps_and_two_days(prometheus):
    horizons = set(_horizons("open_meteo"))
    assert horizons
    places = example_places("weather_open_meteo")
    job = 'job="weather_open_meteo"'
    by_place = _label_sets(prometheus, f"weather_forecast_temperature_celsius{{{job}}}", "horizon")
    assert by_place == {place: horizons for place in places}
    windows = _label_sets(
        prometheus, f"weather_forecast_precipitation_meters{{{job}}}", "horizon", "window"
    )
    assert windows == {place: {(h, "1h") for h in horizons} for place in places}
    for family in (
        "weather_forecast_temperature_max_celsius",
        "weather_forecast_temperature_min_celsius",
        "weather_forecast_precipitation_sum_meters",
        "weather_forecast_uv_index_max",
    ):
        days = _label_sets(prometheus, f"{family}{{{job}}}", "day")
        assert days == {place: {"today", "tomorrow"} for place in places}, family
    for family in ("weather_uv_index", "weather_air_quality_european_index"):
        assert {s["metric"]["instance"] for s in prometheus.query(f"{family}{{{job}}}")} == places


def test_openweathermap_gives_its_3h_steps_and_no_days(prometheus):
    horizons = _horizons("default")
    places = example_places("weather")  # the unknown place has no forecast either
    job = 'job="weather"'
    by_place = _label_sets(prometheus, f"weather_forecast_temperature_celsius{{{job}}}", "horizon")
    assert set(by_place) == places
    # Its first step is the next 3-hour mark: a horizon under 3h may fall before it.
    surely = {label for label, seconds in horizons.items() if seconds >= 3 * 3600}
    for place, found in by_place.items():
        assert surely <= found <= set(horizons), place
    windows = _label_sets(prometheus, f"weather_forecast_precipitation_meters{{{job}}}", "window")
    assert windows == {place: {"3h"} for place in places}
    assert not prometheus.query(f"weather_forecast_temperature_max_celsius{{{job}}}")
    # The air module asks for no forecast, and gets none.
    assert not prometheus.query('{job="weather_air", __name__=~"weather_forecast_.+"}')
