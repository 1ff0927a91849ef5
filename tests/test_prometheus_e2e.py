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
from fake_upstream import met_norway
from fake_upstream.places import KELVIN, World
from multitarget_exporter.config.fields import parse_duration
from tests.conftest import free_port

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE_ADDRESS = "127.0.0.1:9265"
EXAMPLE_UPSTREAM = "http://127.0.0.1:8080"
UNKNOWN = "Atlantis-e2e"
QUICKER = {
    "scrape_interval: 1m ": "scrape_interval: 10s",
    "scrape_timeout: 20s ": "scrape_timeout: 10s",
    "evaluation_interval: 1m": "evaluation_interval: 10s",
    "scrape_interval: 15s\n    scrape_timeout: 10s": "scrape_interval: 5s\n    scrape_timeout: 5s",
}
# Prometheus spreads first scrapes over the interval; then a second round (generous:
# a shared machine may be slow to start Prometheus).
SCRAPE_WAIT_SECONDS = 150
# Every rule group is evaluated within one evaluation_interval of the start.
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
    text = text.replace(EXAMPLE_ADDRESS, address)
    # The examples' minute made ten seconds (the exporter's own 15 s job five), so the
    # first rounds of scrapes and rule evaluations come within seconds; every job, rule
    # and query is the examples' own.
    for example, quick in QUICKER.items():
        assert example in text, example
        text = text.replace(example, quick)
    (root / "prometheus.yml").write_text(text, "utf-8")
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
    assert jobs == {
        "weather",
        "weather_air",
        "weather_open_meteo",
        "weather_yr",
        "multitarget_exporter",
    }
    down = [(t["labels"], t["lastError"]) for t in targets if t["health"] != "up"]
    assert not down
    assert all(float(s["value"][1]) == 1 for s in prometheus.query("up"))


JOB_MODULES = {
    "weather": "default",
    "weather_air": "air",
    "weather_open_meteo": "open_meteo",
    "weather_yr": "yr",
}


@pytest.mark.parametrize("job", list(JOB_MODULES))
def test_one_series_per_place_with_the_place_as_instance(prometheus, job):
    expected = example_places(job) | ({UNKNOWN} if job == "weather" else set())
    series = prometheus.query(f'probe_success{{job="{job}"}}')
    assert sorted(s["metric"]["instance"] for s in series) == sorted(expected)
    assert {s["metric"]["module"] for s in series} == {JOB_MODULES[job]}
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


# The places of the warnings job (examples/prometheus.yml) and what the fake's scenario
# table (fake_upstream/alerts.py) gives them: one warning each, in effect or upcoming.
WARNING_PLACES = {
    "39.7392,-104.9903": ("nws", "in_effect", 3),  # Denver: High Wind Warning, severe
    "25.7617,-80.1918": ("nws", "upcoming", 4),  # Miami: Hurricane Warning, extreme
    "53.5511,9.9937": ("dwd", "in_effect", 3),  # Hamburg
    "60.3913,5.3221": ("met_norway", "in_effect", 3),  # Bergen: wind, orange
}


def test_the_warnings_reach_prometheus(prometheus):
    """The warnings module's places have the fake's warnings, each from its country's
    service; the other modules have none; every place of the module was read."""
    job = 'job="weather_open_meteo"'
    assert example_modules()["open_meteo"]["warnings"]
    assert set(WARNING_PLACES) <= example_places("weather_open_meteo")
    denver, miami = "39.7392,-104.9903", "25.7617,-80.1918"
    level = 'weather_warning_level{{{}, instance="{}", state="{}"}}'
    count = 'weather_warnings{{{}, instance="{}", state="{}"}}'
    assert prometheus.value(level.format(job, denver, "in_effect")) == 3
    assert prometheus.value(count.format(job, miami, "upcoming")) == 1
    assert prometheus.value(count.format(job, miami, "in_effect")) == 0
    found = {
        s["metric"]["instance"]: (s["metric"]["source"], s["metric"]["state"])
        for s in prometheus.query(f"weather_warning_info{{{job}}}")
    }
    assert found == {place: (source, state) for place, (source, state, _) in WARNING_PLACES.items()}
    for place, (_, state, expected) in WARNING_PLACES.items():
        assert prometheus.value(level.format(job, place, state)) == expected, place
    reads = _label_sets(prometheus, f"probe_warnings_success{{{job}}} == 1", "job")
    assert set(reads) == example_places("weather_open_meteo")
    covered = _label_sets(prometheus, f"weather_warnings_covered{{{job}}} == 1", "job")
    assert set(WARNING_PLACES) <= set(covered)
    assert not prometheus.query('{job!="weather_open_meteo", __name__=~".*warning.*"}')


def test_the_warning_alerts_fire_on_the_warnings(prometheus):
    """WeatherWarningSevere for the places with a severe warning in effect; Miami's
    hurricane is 3 to 4 hours away, within WeatherWarningSevereUpcoming's 12: pending or
    firing (its `for:` may not have run out yet), with the right labels."""
    severe = {place for place, (_, state, _) in WARNING_PLACES.items() if state == "in_effect"}
    # Each place's first scrape comes at its own moment: wait for every one, not the first.
    deadline = time.monotonic() + RULE_WAIT_SECONDS
    while True:
        alerts = prometheus.api("alerts")["alerts"]
        by_alert: dict[str, set[str]] = {}
        for alert in alerts:
            name, place = alert["labels"]["alertname"], alert["labels"]["instance"]
            by_alert.setdefault(name, set()).add(place)
        settled = by_alert.get("WeatherWarningSevere") == severe and by_alert.get(
            "WeatherWarningSevereUpcoming"
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert by_alert.get("WeatherWarningSevere") == severe
    assert by_alert.get("WeatherWarningSevereUpcoming") == {"25.7617,-80.1918"}
    assert "WeatherWarningsUnreadable" not in by_alert
    # The description names the warnings, through the `query` of its template.
    described = {
        alert["labels"]["instance"]: alert["annotations"]["description"]
        for alert in alerts
        if alert["labels"]["alertname"] == "WeatherWarningSevere"
    }
    assert described["39.7392,-104.9903"] == "High Wind Warning (nws, severe)"
    assert described["60.3913,5.3221"] == "wind (met_norway, severe)"


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
    assert set(modules) == set(JOB_MODULES.values())
    places = _label_values(prometheus, variables["instance"]["definition"], "open_meteo")
    assert set(places) == example_places("weather_open_meteo")


def _label_values(prometheus: Prometheus, definition: str, module: str) -> list[str]:
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", expand(definition, module))
    assert match, definition
    return prometheus.api(f"label/{match[2]}/values", **{"match[]": match[1]})


# What a panel needs of the module it shows, by title, or by title and query (`refId`)
# where its queries need different things; every other query needs only places that
# answer. A need is a module option, a provider, or something this test has; of several
# providers named, any one will do. A query has data for each module that offers what it
# needs, and none for a module that does not (`module_offers` reads
# examples/fake_upstream.yml). So a `met_norway` module (`yr`) fills every panel but
# feels-like, the last hour's rain and snow, today and tomorrow, current UV (its UV is
# for a clear sky), air quality, pollen, failures and warnings.
PANEL_NEEDS: dict[str, set[str] | dict[str, set[str]]] = {
    # Feels-like: OpenWeatherMap's and Open-Meteo's; MET Norway gives none.
    "Temperature": {"B": {"openweathermap", "open_meteo"}},
    # Observed: MET Norway forecasts, and its next hour is a forecast metric.
    "Precipitation in the last hour": {"openweathermap", "open_meteo"},
    "Forecast temperature": {"forecast"},
    "Forecast chance of precipitation": {"forecast"},
    # Daily figures: Open-Meteo only (neither OpenWeatherMap's free plan nor MET Norway).
    "Today and tomorrow": {"forecast", "open_meteo"},
    # UV now: Open-Meteo's current data has it, OpenWeatherMap's free one does not; for a
    # clear sky, Open-Meteo and MET Norway.
    "UV index": {"A": {"open_meteo"}, "B": {"open_meteo", "met_norway"}},
    "Air quality, European index": {"air_quality", "open_meteo"},
    "Air quality, US index": {"air_quality", "open_meteo"},
    "Air quality, OpenWeatherMap (1 to 5)": {"air_quality", "openweathermap"},
    "Air pollutants": {"air_quality"},
    # Open-Meteo's pollen covers Europe in season: the fake has it for the European
    # places of the open_meteo job (London,GB and Zürich,CH).
    "Pollen": {"air_quality", "open_meteo"},
    # The place nobody knows is added to the job of module `default`.
    "Failures by reason": {"a failing place"},
    "Stale and fallback answers": {"A": {"stale_if_error"}, "B": {"fallback"}},
    "Stale answers by reason": {"stale_if_error", "a failed refresh"},
    "Fallbacks by reason": {"fallback", "a failed refresh"},
    # Official warnings: modules with `warnings` (open_meteo in examples/fake_upstream.yml,
    # whose job scrapes places in effect and upcoming for each source).
    "Warning level": {"warnings"},
    "Warning coverage and reads": {"warnings"},
    "Warnings in effect": {"warnings"},
    "Upcoming warnings": {"warnings"},
}
PROVIDERS = {"openweathermap", "open_meteo", "met_norway"}
OPTIONS = ("forecast", "air_quality", "stale_if_error", "fallback", "warnings")
# Needs no example module meets here: no module of examples/fake_upstream.yml sets
# stale_if_error or fallback, and the fake answers every refresh. Their queries are run
# all the same, and must be accepted and come back empty.
UNMET_HERE = {"stale_if_error", "fallback", "a failed refresh"}
# Metric families only some modules give: a query reading one must have needs.
OPTIONAL_FAMILIES = (
    "weather_forecast_",
    "weather_uv_",
    "weather_air_",
    "weather_pollen_",
    "weather_apparent_",
    "weather_rain_",
    "weather_snow_",
    "probe_failure_info",
    "probe_stale",
    "probe_fallback",
    "multitarget_exporter_stale_answers",
    "multitarget_exporter_fallbacks",
    "weather_warning",
    "probe_warnings_success",
)


def example_modules() -> dict[str, dict]:
    return yaml.safe_load((EXAMPLES / "fake_upstream.yml").read_text("utf-8"))["modules"]


def module_offers(module: str) -> set[str]:
    settings = example_modules()[module]
    offers = {settings["provider"]}
    offers |= {option for option in OPTIONS if settings.get(option)}
    if module == "default":
        offers.add("a failing place")
    return offers


def query_needs(panel: dict, target: dict) -> set[str]:
    needs = PANEL_NEEDS.get(panel["title"], set())
    return needs.get(target["refId"], set()) if isinstance(needs, dict) else needs


def unmet(needs: set[str], offers: set[str]) -> set[str]:
    """What a module offering `offers` lacks: any option, or all the providers named."""
    missing = needs - PROVIDERS - offers
    if needs & PROVIDERS and not needs & PROVIDERS & offers:
        missing |= needs & PROVIDERS
    return missing


def test_the_panel_needs_name_real_panels():
    panels = {p["title"]: p for p in dashboard()["panels"] if p["type"] != "row"}
    assert set(PANEL_NEEDS) <= set(panels)
    for title, needs in PANEL_NEEDS.items():
        if isinstance(needs, dict):
            assert set(needs) <= {t["refId"] for t in panels[title]["targets"]}, title
    for panel in panels.values():
        for target in panel["targets"]:
            if any(family in target["expr"] for family in OPTIONAL_FAMILIES):
                assert query_needs(panel, target), (panel["title"], target["refId"])
    # Some example module meets the needs of every query but those unmet here, so that
    # each is seen with data.
    offers = [module_offers(module) for module in example_modules()]
    assert not UNMET_HERE & set().union(*offers)
    for panel in panels.values():
        for target in panel["targets"]:
            needs = query_needs(panel, target)
            if not needs & UNMET_HERE:
                assert any(not unmet(needs, offered) for offered in offers), panel["title"]


@pytest.mark.parametrize("module", list(JOB_MODULES.values()))
def test_every_dashboard_query_is_accepted_and_has_data(prometheus, module):
    offers = module_offers(module)
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            missing = unmet(query_needs(panel, target), offers)
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


def test_met_norway_gives_hourly_steps_and_neither_observations_nor_days(prometheus):
    """MET Norway forecasts: hourly steps for about 2.5 days (then 6-hourly, beyond these
    horizons), and nothing that only an observation or a daily summary gives."""
    horizons = set(_horizons("yr"))
    assert horizons
    places = example_places("weather_yr")
    job = 'job="weather_yr"'
    by_place = _label_sets(prometheus, f"weather_forecast_temperature_celsius{{{job}}}", "horizon")
    assert by_place == {place: horizons for place in places}
    windows = _label_sets(
        prometheus, f"weather_forecast_precipitation_meters{{{job}}}", "horizon", "window"
    )
    assert windows == {place: {(h, "1h") for h in horizons} for place in places}
    providers = _label_sets(prometheus, f"weather_location_info{{{job}}}", "provider")
    assert providers == {place: {"met_norway"} for place in places}
    for family in (
        "weather_uv_index_clear_sky",
        "weather_precipitation_probability_ratio",
        "weather_dew_point_celsius",
        "weather_wind_gust_meters_per_second",
        "weather_pressure_pascals",
    ):
        assert set(_label_sets(prometheus, f"{family}{{{job}}}", "job")) == places, family
    for family in (
        "weather_rain_meters",
        "weather_snow_meters",
        "weather_apparent_temperature_celsius",
        "weather_visibility_meters",
        "weather_ground_pressure_pascals",
        "weather_uv_index",
    ):
        assert not prometheus.query(f"{family}{{{job}}}"), family
    assert not prometheus.query(f'{{{job}, day!=""}}')


@pytest.mark.parametrize("place", ["Tromsø,NO", "59.9139,10.7522"])
def test_met_norway_values_are_the_step_of_now(prometheus, place):
    """The current reading is the forecast step that contains now: the values of the step
    at `weather_observation_timestamp_seconds`, for the point the target names."""
    names = (
        "weather_temperature_celsius",
        "weather_observation_timestamp_seconds",
        "weather_location_latitude_degrees",
        "weather_location_longitude_degrees",
    )
    # One query, so that every value comes from the same scrape.
    selector = f'job="weather_yr", instance="{place}", __name__=~"{"|".join(names)}"'
    found = {
        s["metric"]["__name__"]: float(s["value"][1]) for s in prometheus.query(f"{{{selector}}}")
    }
    assert set(found) == set(names)
    world = World.load()
    known = world.by_query(place)
    if known is not None:  # a place name: the fake's geocoder gives its coordinates
        assert (found[names[2]], found[names[3]]) == (known.data["lat"], known.data["lon"])
    step = found["weather_observation_timestamp_seconds"]
    latitude, longitude = found[names[2]], found[names[3]]
    # The fake's answer asked at that step's time: the step is its first.
    answer = met_norway.forecast(latitude, longitude, None, world, True, step, now=step)
    first = answer["properties"]["timeseries"][0]
    assert first["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(step))
    temperature = first["data"]["instant"]["details"]["air_temperature"]
    assert found["weather_temperature_celsius"] == temperature
