"""Every file in examples/ checked by the tool that owns its format.

Prometheus files by promtool, the Dockerfile by hadolint, the compose file by
the Compose Specification's schema, Kubernetes manifests by the Kubernetes
API schemas (kubernetes-validate) and, for prometheus-operator's resources, by
the fields of its API reference, and the systemd unit by systemd-analyze.
Nothing here needs a container engine or a cluster; the end-to-end run with a
real Prometheus is in test_prometheus_e2e.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from multitarget_exporter.config.fields import parse_duration
from multitarget_exporter.config.modules import ModuleConfig, load_config, parse_config
from multitarget_exporter.model.targets import parse_target
from multitarget_exporter.providers.openweathermap import STEP_SECONDS as OWM_STEP_SECONDS

# Starts real servers (gunicorn, Prometheus, Redis, the fake upstream) or runs many:
# left out of the quick run, `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parent.parent / "examples"
SCHEMAS = Path(__file__).parent / "schemas"
BIN = Path(sys.executable).parent
EXPORTER_ADDRESS = "127.0.0.1:9265"


def run(*command: str | Path, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=60, **options
    )


def load_yaml(name: str):
    return yaml.safe_load((EXAMPLES / name).read_text("utf-8"))


def load_all(name: str) -> list:
    return list(yaml.safe_load_all((EXAMPLES / name).read_text("utf-8")))


def probe_jobs(config: dict) -> list[dict]:
    return [job for job in config["scrape_configs"] if job.get("metrics_path") == "/probe"]


# -- Prometheus -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-compose.yml"])
def test_prometheus_configs_pass_promtool(name):
    checked = run("promtool", "check", "config", EXAMPLES / name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout


def test_the_compose_prometheus_config_differs_only_in_the_address():
    text = (EXAMPLES / "prometheus.yml").read_text("utf-8")
    expected = yaml.safe_load(text.replace(EXPORTER_ADDRESS, "exporter:9265"))
    assert load_yaml("prometheus-compose.yml") == expected


def test_the_probe_jobs_follow_the_multi_target_recipe():
    config = load_yaml("prometheus.yml")
    jobs = probe_jobs(config)
    modules = {job["params"]["module"][0]: job["job_name"] for job in jobs}
    assert modules == {
        "default": "weather",
        "air": "weather_air",
        "open_meteo": "weather_open_meteo",
        "yr": "weather_yr",
    }
    for job in jobs:
        steps = [(r.get("source_labels"), r["target_label"]) for r in job["relabel_configs"]]
        assert steps[0] == (["__address__"], "__param_target")
        assert steps[1] == (["__param_target"], "instance")
        assert (["__param_module"], "module") in steps
        assert steps[-1] == (None, "__address__")
        assert job["relabel_configs"][-1]["replacement"] == EXPORTER_ADDRESS
    own = [job for job in config["scrape_configs"] if job["job_name"] == "multitarget_exporter"]
    assert own[0]["static_configs"][0]["targets"] == [EXPORTER_ADDRESS]
    # Weather moves slowly and the exporter caches it; the timeout leaves the exporter time.
    assert config["global"]["scrape_interval"] == "1m"
    assert config["global"]["scrape_timeout"] == "20s"


def example_targets() -> list[tuple[str, str]]:
    """(module, target) for every place the example Prometheus config names."""
    found = []
    for job in probe_jobs(load_yaml("prometheus.yml")):
        module = job["params"]["module"][0]
        for group in job.get("static_configs", []):
            found += [(module, target) for target in group["targets"]]
        if job.get("file_sd_configs"):
            for path in sorted((EXAMPLES / "targets").glob("*.yml")):
                for group in yaml.safe_load(path.read_text("utf-8")):
                    assert set(group) <= {"targets", "labels"}
                    found += [(module, target) for target in group["targets"]]
    return found


def test_every_example_target_is_a_valid_target_of_an_existing_module(monkeypatch):
    monkeypatch.setenv("OWM_API_KEY", "example-key")
    real = load_config(str(EXAMPLES / "multitarget_exporter.yml"))
    fake = load_config(str(EXAMPLES / "fake_upstream.yml"))
    targets = example_targets()
    assert len(targets) >= 10
    for module, target in targets:
        assert module in real.modules and module in fake.modules, module
        location = parse_target(target)
        from multitarget_exporter.providers.registry import PROVIDERS

        provider = PROVIDERS[real.modules[module].provider](real.modules[module])
        assert provider.unsupported(location) is None, (module, target)


def test_the_commented_options_of_the_real_configuration_are_valid(monkeypatch):
    """The commented `forecast` and air quality lines, uncommented, still load."""
    monkeypatch.setenv("OWM_API_KEY", "example-key")
    text = (EXAMPLES / "multitarget_exporter.yml").read_text("utf-8")
    option = re.compile(r"^(    )# ((?:forecast|air_quality|air_quality_url): )", re.MULTILINE)
    uncommented = option.sub(r"\1\2", text)
    assert len(option.findall(text)) == 4
    config = parse_config(yaml.safe_load(uncommented))
    owm, meteo = config.modules["default"], config.modules["open_meteo"]
    assert [h.label for h in owm.forecast] == ["3h", "6h", "12h", "24h"]
    assert [h.label for h in meteo.forecast] == ["1h", "3h", "6h", "12h", "24h"]
    assert meteo.air_quality and meteo.air_quality_url == "https://air-quality-api.open-meteo.com"
    # As shipped, they are comments: the real configuration asks for no more than before.
    # MET Norway's forecast comes in the one call it makes anyway, so it is on.
    plain = load_config(str(EXAMPLES / "multitarget_exporter.yml"))
    assert [name for name, m in plain.modules.items() if m.forecast] == ["yr"]


def test_the_daily_budgets_fit_the_free_plan_and_the_example_places(monkeypatch):
    """The real configuration's budget, with the key's other modules, stays under the free
    plan's month (1,000,000 calls, 31 days of it) and answers stale when it refuses; the
    fake's covers twice what its example places spend, so the demo never refuses."""
    monkeypatch.setenv("OWM_API_KEY", "example-key")
    real = load_config(str(EXAMPLES / "multitarget_exporter.yml")).modules
    budgeted = {name: m.daily_budget for name, m in real.items() if m.daily_budget}
    assert budgeted == {"default": 16000}
    assert real["default"].stale_if_error_seconds >= real["default"].cache_ttl_seconds
    on_the_key = [m for m in real.values() if m.api_key == real["default"].api_key]
    assert {m.name for m in on_the_key} == {"default", "german", "air"}
    assert budgeted["default"] * 31 <= 1_000_000 // 2
    fake = load_config(str(EXAMPLES / "fake_upstream.yml")).modules["default"]
    places = [target for module, target in example_targets() if module == "default"]
    calls_per_reading = 1 + bool(fake.forecast) + bool(fake.air_quality)
    readings_a_day = 86400 / max(fake.cache_ttl_seconds, 60)  # the example scrapes every 1m
    assert (len(places), calls_per_reading, readings_a_day) == (8, 2, 144)
    assert fake.daily_budget >= 2 * len(places) * calls_per_reading * readings_a_day


def test_the_met_norway_module_says_who_calls(monkeypatch):
    monkeypatch.setenv("OWM_API_KEY", "example-key")
    for name in ("multitarget_exporter.yml", "fake_upstream.yml"):
        yr = load_config(str(EXAMPLES / name)).modules["yr"]
        assert yr.provider == "met_norway" and yr.contact == "ops@example.com", name
        assert [h.label for h in yr.forecast] == ["1h", "3h", "6h", "12h", "24h"], name
    assert (
        load_config(str(EXAMPLES / "multitarget_exporter.yml")).modules["yr"].cache_ttl_seconds
        == 1800
    )


def test_the_fallback_example_chains_a_stale_reading_and_met_norway(monkeypatch):
    monkeypatch.setenv("OWM_API_KEY", "example-key")
    config = load_config(str(EXAMPLES / "fallback.yml"))
    assert set(config.modules) == {"default", "yr"}
    default, yr = config.modules["default"], config.modules["yr"]
    assert default.provider == "openweathermap"
    assert (default.stale_if_error_seconds, default.fallback) == (7200, "yr")
    # The fallback needs no key, so it answers when the OpenWeatherMap key is rejected.
    assert yr.provider == "met_norway" and not yr.api_key and not yr.fallback


def test_rules_pass_promtool_and_their_unit_tests():
    checked = run("promtool", "check", "rules", EXAMPLES / "rules" / "weather.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run("promtool", "test", "rules", "weather.rules.test.yml", cwd=EXAMPLES / "rules")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_rule_unit_tests_can_fail(tmp_path):
    shutil.copy(EXAMPLES / "rules" / "weather.rules.yml", tmp_path)
    tests = (EXAMPLES / "rules" / "weather.rules.test.yml").read_text("utf-8")
    (tmp_path / "t.yml").write_text(tests.replace("value: 0.75", "value: 0.5"))
    assert run("promtool", "test", "rules", "t.yml", cwd=tmp_path).returncode != 0
    # And a broken threshold in the rules is caught by the existing tests.
    rules = (EXAMPLES / "rules" / "weather.rules.yml").read_text("utf-8")
    (tmp_path / "weather.rules.yml").write_text(rules.replace(">= 20.8", ">= 30"))
    shutil.copy(EXAMPLES / "rules" / "weather.rules.test.yml", tmp_path)
    assert run("promtool", "test", "rules", "weather.rules.test.yml", cwd=tmp_path).returncode != 0


# A changed threshold, window, horizon, filter, grouping or hold in a weather alert fails its
# unit tests: (alert, field, text in it, what it becomes).
KEY_BEHIND = "WeatherApiKeyRejectedBehindStaleOrFallback"
STALE = "multitarget_exporter_stale_answers_total"
FALLBACKS = "multitarget_exporter_fallbacks_total"
REJECTED = '{}{{reason="unauthorized"}}'
UPCOMING = "WeatherWarningSevereUpcoming"
BUDGET = "WeatherBudgetRefusing"
BREAKER = "WeatherUpstreamBreakerOpen"
OPEN = "multitarget_exporter_upstream_open"
RULE_MUTATIONS = [
    ("WeatherFrostExpected", "expr", ") < 0", ") <= 0"),
    ("WeatherFrostExpected", "expr", 'horizon=~"', 'horizon=~".+|'),
    ("WeatherFrostExpected", "expr", "([1-9]|1[0-2])h|", "[0-9]+h|"),
    ("WeatherFrostExpected", "expr", "([1-9][0-9]?|[1-6][0-9][0-9]|7[01][0-9]|720)m", "[0-9]+m"),
    ("WeatherFrostExpected", "expr", "min by", "max by"),
    ("WeatherFrostExpected", "for", "30m", "29m"),
    ("WeatherHeavyRainLikely", "expr", ") >= 4", ") >= 4.2"),
    ("WeatherHeavyRainLikely", "expr", '"3h"} * 1000 / 3', '"3h"} * 1000'),
    ("WeatherHeavyRainLikely", "expr", '"6h"} * 1000 / 6', '"6h"} * 1000 / 3'),
    ("WeatherHeavyRainLikely", "expr", ">= 0.7", "> 0.7"),
    ("WeatherHeavyRainLikely", "expr", ">= 0.7", ">= 0.69"),
    ("WeatherHeavyRainLikely", "expr", "module, horizon)", "module)"),
    ("WeatherHeavyRainLikely", "for", "15m", "16m"),
    ("WeatherUvHigh", "expr", ">= 6", "> 6"),
    ("WeatherUvHigh", "expr", ">= 6", ">= 5.9"),
    ("WeatherUvHigh", "for", "15m", "14m"),
    ("WeatherPollenHigh", "expr", ">= 90", ">= 100"),
    ("WeatherPollenHigh", "expr", ">= 90", ">= 89"),
    ("WeatherPollenHigh", "expr", ">= 50", "> 50"),
    ("WeatherPollenHigh", "expr", ">= 50", ">= 49.9"),
    ("WeatherPollenHigh", "for", "30m", "31m"),
    ("WeatherAirQualityUnhealthy", "expr", "> 150", ">= 150"),
    ("WeatherAirQualityUnhealthy", "expr", "> 150", "> 151"),
    ("WeatherAirQualityUnhealthy", "expr", "> 80", ">= 80"),
    ("WeatherAirQualityUnhealthy", "expr", '"index", "European"', '"index", "US"'),
    ("WeatherAirQualityUnhealthy", "for", "30m", "29m"),
    ("WeatherProbeAnsweringStale", "expr", "== 1", "== 0"),
    ("WeatherProbeAnsweringStale", "expr", 'job=~"weather.*"', 'job=~".+"'),
    ("WeatherProbeAnsweringStale", "for", "30m", "29m"),
    ("WeatherProbeAnsweringStale", "for", "30m", "31m"),
    ("WeatherStaleAnswers", "expr", "[15m]", "[20m]"),
    ("WeatherStaleAnswers", "expr", 'reason!="unauthorized"', 'reason=~".+"'),
    ("WeatherStaleAnswers", "expr", "by (module, reason)", "by (module)"),
    ("WeatherStaleAnswers", "for", "15m", "14m"),
    ("WeatherFallbackAnswers", "expr", "[15m]", "[20m]"),
    ("WeatherFallbackAnswers", "expr", 'reason!="unauthorized"', 'reason=~".+"'),
    ("WeatherFallbackAnswers", "expr", "by (module, reason)", "by (instance, module, reason)"),
    ("WeatherFallbackAnswers", "for", "15m", "14m"),
    (KEY_BEHIND, "expr", REJECTED.format(STALE), STALE),
    (KEY_BEHIND, "expr", REJECTED.format(FALLBACKS), FALLBACKS),
    (KEY_BEHIND, "expr", REJECTED.format(STALE) + "[5m]", REJECTED.format(STALE) + "[10m]"),
    (KEY_BEHIND, "expr", REJECTED.format(FALLBACKS) + "[5m]", REJECTED.format(FALLBACKS) + "[10m]"),
    (KEY_BEHIND, "expr", "> 0\nor", "\nor"),
    (KEY_BEHIND, "for", "5m", "4m"),
    (KEY_BEHIND, "for", "5m", "6m"),
    (BUDGET, "expr", "[15m]", "[20m]"),
    (BUDGET, "expr", "[15m]", "[10m]"),
    (BUDGET, "expr", "> 0", ">= 0"),
    (BUDGET, "expr", "> 0", "> 5"),
    (BUDGET, "expr", "by (module)", "by (instance, module)"),
    (BUDGET, "for", "15m", "14m"),
    (BUDGET, "for", "15m", "16m"),
    (BREAKER, "expr", "== 1", "== 0"),
    (BREAKER, "expr", OPEN, f"max by (provider) ({OPEN})"),
    (BREAKER, "for", "5m", "4m"),
    (BREAKER, "for", "5m", "6m"),
    ("WeatherWarningSevere", "expr", ">= 3", "> 3"),
    ("WeatherWarningSevere", "expr", ">= 3", ">= 2"),
    ("WeatherWarningSevere", "expr", 'state="in_effect"', 'state=~".+"'),
    ("WeatherWarningSevere", "expr", 'job=~"weather.*"', 'job=~".+"'),
    ("WeatherWarningSevere", "for", "5m", "4m"),
    ("WeatherWarningSevere", "for", "5m", "6m"),
    (UPCOMING, "expr", "< 12 * 3600", "< 13 * 3600"),
    (UPCOMING, "expr", "< 12 * 3600", "< 11 * 3600"),
    (UPCOMING, "expr", "< 12 * 3600", "<= 12 * 3600"),
    (UPCOMING, "expr", "min without", "max without"),
    (UPCOMING, "expr", "(source, event, severity,", "(source, severity,"),
    (UPCOMING, "expr", 'severity=~"severe|extreme"', 'severity=~".+"'),
    (UPCOMING, "expr", 'severity=~"severe|extreme"', 'severity="extreme"'),
    (UPCOMING, "expr", 'state="upcoming"', 'state=~".+"'),
    (UPCOMING, "expr", 'job=~"weather.*"', 'job=~".+"'),
    (UPCOMING, "for", "5m", "4m"),
    (UPCOMING, "for", "5m", "6m"),
    ("WeatherWarningsUnreadable", "expr", "== 0", "== 1"),
    ("WeatherWarningsUnreadable", "expr", 'job=~"weather.*"', 'job=~".+"'),
    ("WeatherWarningsUnreadable", "for", "30m", "29m"),
    ("WeatherWarningsUnreadable", "for", "30m", "31m"),
]


def _test_rules(directory: Path, rules: dict) -> subprocess.CompletedProcess:
    """The example's rule unit tests, run on `rules` (written out as YAML)."""
    (directory / "weather.rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    checked = run("promtool", "check", "rules", directory / "weather.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shutil.copy(EXAMPLES / "rules" / "weather.rules.test.yml", directory)
    return run("promtool", "test", "rules", "weather.rules.test.yml", cwd=directory)


def test_the_rules_rewritten_as_yaml_pass_their_tests(tmp_path):
    """So that a mutation below fails for what it changes, not for the rewriting."""
    tested = _test_rules(tmp_path, load_yaml("rules/weather.rules.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize(("alert", "field", "old", "new"), RULE_MUTATIONS)
def test_the_weather_alert_tests_catch_a_changed_rule(tmp_path, alert, field, old, new):
    rules = load_yaml("rules/weather.rules.yml")
    rule = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert)
    assert rule[field].count(old) == 1, (alert, field, old)
    rule[field] = rule[field].replace(old, new)
    tested = _test_rules(tmp_path, rules)
    assert tested.returncode != 0, tested.stdout


def test_every_alert_has_a_unit_test():
    rules = load_yaml("rules/weather.rules.yml")
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    tests = load_yaml("rules/weather.rules.test.yml")
    tested = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])}
    exprs = " ".join(t["expr"] for case in tests["tests"] for t in case.get("promql_expr_test", []))
    assert alerts == tested
    assert all(name in exprs for name in recorded)


# -- Grafana ----------------------------------------------------------------------------


def dashboard() -> dict:
    return json.loads((EXAMPLES / "grafana" / "weather.json").read_text("utf-8"))


def test_the_dashboard_is_templated_on_module_and_instance():
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "label_values(probe_success, module)" in variables["module"]["definition"]
    assert "$module" in variables["instance"]["definition"]
    assert variables["instance"]["multi"] and variables["instance"]["includeAll"]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${datasource}"
            if target["expr"].startswith(("weather_", "probe_")):
                assert 'module=~"$module"' in target["expr"], panel["title"]
    kinds = {p["type"] for p in panels}
    assert {"timeseries", "table", "geomap", "state-timeline"} <= kinds
    titles = " ".join(p["title"] for p in panels).lower()
    for needed in (
        "temperature",
        "humidity",
        "pressure",
        "wind",
        "precipitation",
        "conditions",
        "places",
        "probe success",
        "probe duration",
        "upstream calls",
        "cache hit",
        "forecast temperature",
        "chance of precipitation",
        "today and tomorrow",
        "uv index",
        "air quality",
        "air pollutants",
        "pollen",
        "stale and fallback answers",
        "who answered",
        "stale answers by reason",
        "fallbacks by reason",
        "warning level",
        "warning coverage and reads",
        "warnings in effect",
        "upcoming warnings",
        "daily budget remaining",
        "calls refused by the daily budget",
        "upstream breakers",
    ):
        assert needed in titles, needed


def exporter_sample_names() -> set[str]:
    """The names of the samples the exporter's own /metrics can hold."""
    from prometheus_client.metrics import MetricWrapperBase

    from multitarget_exporter.runtime import selfmetrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = set()
    for metric in vars(selfmetrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                names |= {family.name + end for end in suffixes.get(family.type, ("",))}
    return names


def test_the_rules_and_the_dashboard_read_metrics_the_exporter_has():
    """A renamed or misspelt self-metric would leave a panel empty and an alert silent."""
    own = re.compile(r"(?<![\w:])multitarget_exporter_[a-z0-9_]+")
    names = exporter_sample_names()
    read = set()
    for path in (EXAMPLES / "rules" / "weather.rules.yml", EXAMPLES / "grafana" / "weather.json"):
        found = set(own.findall(path.read_text("utf-8")))
        assert found <= names, (path.name, found - names)
        read |= found
    assert {
        "multitarget_exporter_upstream_budget_remaining_calls",
        "multitarget_exporter_budget_refusals_total",
        "multitarget_exporter_upstream_open",
    } <= read


def test_the_budget_and_breaker_panels():
    """In the Exporter row, over every module and provider as its other panels are: the
    budget left and the calls refused by module, each provider's breaker closed or open."""
    panels = dashboard()["panels"]
    rows = [p for p in panels if p["type"] == "row"]
    exporter_row = next(r for r in rows if r["title"] == "Exporter")
    by_title = {p["title"]: p for p in panels}
    titles = ("Daily budget remaining", "Calls refused by the daily budget", "Upstream breakers")
    for title in titles:
        y = by_title[title]["gridPos"]["y"]
        row_above = max(r["gridPos"]["y"] for r in rows if r["gridPos"]["y"] < y)
        assert row_above == exporter_row["gridPos"]["y"], title
    [remaining], [refused], [breakers] = (by_title[t]["targets"] for t in titles)
    assert remaining["expr"] == (
        "min by (module) (multitarget_exporter_upstream_budget_remaining_calls)"
    )
    assert refused["expr"] == (
        "sum by (module) (rate(multitarget_exporter_budget_refusals_total[$__rate_interval]))"
    )
    assert remaining["legendFormat"] == refused["legendFormat"] == "{{module}}"
    units = {t: by_title[t]["fieldConfig"]["defaults"].get("unit") for t in titles}
    assert units == {titles[0]: "short", titles[1]: "reqps", titles[2]: None}
    # A provider whose breaker never opened has no series of its own: it shows as closed
    # from its calls' counter, so the panel lists every provider called.
    panel = by_title["Upstream breakers"]
    assert panel["type"] == "state-timeline" and breakers["legendFormat"] == "{{provider}}"
    assert breakers["expr"] == (
        "max by (provider) (multitarget_exporter_upstream_open)"
        " or max by (provider) (multitarget_exporter_upstream_requests_total) * 0"
    )
    [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
    assert {value: shown["text"] for value, shown in mapping["options"].items()} == {
        "0": "closed",
        "1": "open",
    }


def test_every_dashboard_query_is_promql_that_promtool_accepts(tmp_path):
    """Each query, its variables given values as Grafana would, checked as a recording
    rule's expression: a typo fails here without a running Prometheus."""
    values = {"module": "default", "instance": ".+", "__rate_interval": "2m"}
    values |= {"__interval": "1m", "__range": "1h"}
    exprs = [
        re.sub(r"\$(\w+)", lambda m: values[m[1]], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]
    rules = [{"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run("promtool", "check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool does refuse a broken one.
    rules[-1]["expr"] = exprs[-1].replace(")", "", 1)
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert run("promtool", "check", "rules", path).returncode != 0


def example_module_configs(monkeypatch) -> list[tuple[str, str, ModuleConfig]]:
    """(file, module, its configuration) for every module of every example configuration,
    the commented options of the real one uncommented."""
    monkeypatch.setenv("OWM_API_KEY", "example-key")
    real = (EXAMPLES / "multitarget_exporter.yml").read_text("utf-8")
    option = re.compile(r"^(    )# ((?:forecast|air_quality|air_quality_url): )", re.MULTILINE)
    texts = {
        "fake_upstream.yml": (EXAMPLES / "fake_upstream.yml").read_text("utf-8"),
        "multitarget_exporter.yml": real,
        "multitarget_exporter.yml, uncommented": option.sub(r"\1\2", real),
        "fallback.yml": (EXAMPLES / "fallback.yml").read_text("utf-8"),
    }
    config_map = next(d for d in kubernetes_documents() if d["kind"] == "ConfigMap")
    texts["kubernetes"] = re.sub(
        r"api_key_file: \S+", "api_key: example-key", config_map["data"]["config.yml"]
    )
    found = []
    for name, text in texts.items():
        config = parse_config(yaml.safe_load(text))
        found += [(name, module, settings) for module, settings in config.modules.items()]
    return found


def test_every_example_module_asks_only_for_horizons_its_provider_gives(monkeypatch):
    """OpenWeatherMap's free forecast comes in 3-hour steps from the next 3-hour mark: a
    shorter horizon falls before its first step and is left out at every probe."""
    asked = {}
    for name, module, settings in example_module_configs(monkeypatch):
        if settings.forecast:
            asked[(name, module)] = settings.provider
        if settings.provider == "openweathermap":
            for horizon in settings.forecast:
                assert horizon.seconds >= OWM_STEP_SECONDS, (name, module, horizon.label)
    # The check has forecasts of every provider that has one to look at.
    assert set(asked.values()) == {"openweathermap", "open_meteo", "met_norway"}
    # And it would catch the 1h the fake's OpenWeatherMap module once asked for.
    assert parse_duration("1h") < OWM_STEP_SECONDS <= parse_duration("3h")


def example_horizons() -> list[str]:
    """Every horizon a module of an example configuration asks for, in order of time."""
    labels = set()
    for name in ("fake_upstream.yml", "multitarget_exporter.yml"):
        text = (EXAMPLES / name).read_text("utf-8")
        for found in re.findall(r"^\s*#?\s*forecast: \[([^\]]*)\]", text, re.MULTILINE):
            labels |= {label.strip() for label in found.split(",")}
    return sorted(labels, key=parse_duration)


def test_the_forecast_bars_come_in_the_order_of_the_example_horizons():
    """Grafana would order the horizons as text (12h before 1h): the panels put every
    horizon the example configurations ask for first, in order of time. The modules ask
    for different ones (OpenWeatherMap has no 1h), so the panels order all of them."""
    horizons = example_horizons()
    assert horizons == ["1h", "3h", "6h", "12h", "24h"]
    fake = load_yaml("fake_upstream.yml")["modules"]
    assert {tuple(m["forecast"]) for m in fake.values() if "forecast" in m} == {
        ("1h", "3h", "6h", "12h", "24h"),
        ("3h", "6h", "12h", "24h"),
    }
    bars = [p for p in dashboard()["panels"] if p["type"] == "barchart"]
    assert {p["title"] for p in bars} == {
        "Forecast temperature",
        "Forecast chance of precipitation",
    }
    for panel in bars:
        [target] = panel["targets"]
        assert target["format"] == "table" and target["instant"], panel["title"]
        matrix, organize = panel["transformations"]
        assert matrix["id"] == "groupingToMatrix"
        assert matrix["options"]["columnField"] == "horizon"
        assert matrix["options"]["rowField"] == "instance"
        order = sorted(organize["options"]["indexByName"].items(), key=lambda item: item[1])
        assert order[0][0] == "instance\\horizon"
        assert [name for name, _ in order[1:]] == horizons, panel["title"]


def test_the_warnings_tables_join_each_warning_with_its_onset_and_end():
    """Grafana merges the three queries of a table into one row per warning: they group by
    the same labels (no `__name__` left to tell them apart) and select the same state."""
    panels = {p["title"]: p for p in dashboard()["panels"]}
    for title, state in (("Warnings in effect", "in_effect"), ("Upcoming warnings", "upcoming")):
        panel = panels[title]
        families = [
            "weather_warning_info",
            "weather_warning_onset_timestamp_seconds",
            "weather_warning_ends_timestamp_seconds",
        ]
        groupings = set()
        for target, family in zip(panel["targets"], families, strict=True):
            assert target["format"] == "table" and target["instant"], (title, target["refId"])
            assert f"{family}{{" in target["expr"] and f'state="{state}"' in target["expr"]
            groupings.add(re.match(r"(?:min|max) by \(([^)]*)\)", target["expr"])[1])
        assert groupings == {"instance, source, event, severity, urgency, certainty"}, title
        assert [t["id"] for t in panel["transformations"]] == ["merge", "organize"]
        renamed = panel["transformations"][1]["options"]["renameByName"]
        assert (renamed["Value #B"], renamed["Value #C"]) == ("onset", "ends")


def test_the_geomap_reads_the_latitude_and_longitude_gauges():
    geomap = next(p for p in dashboard()["panels"] if p["type"] == "geomap")
    exprs = " ".join(t["expr"] for t in geomap["targets"])
    assert "weather_location_latitude_degrees" in exprs
    assert "weather_location_longitude_degrees" in exprs
    location = geomap["options"]["layers"][0]["location"]
    assert (location["mode"], location["latitude"], location["longitude"]) == (
        "coords",
        "latitude",
        "longitude",
    )


def test_grafana_provisioning_matches_compose():
    compose = load_yaml("compose.yaml")
    source = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    provider = load_yaml("grafana/provisioning/dashboards/weather.yml")["providers"][0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(m.endswith(f"{provider['options']['path']}/weather.json:ro") for m in mounts)


# -- containers -------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint():
    linted = run(BIN / "hadolint", EXAMPLES / "Dockerfile")
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD multitarget-exporter\n")
    assert run(BIN / "hadolint", bad).returncode != 0


def test_the_dockerfile_builds_from_what_exists_and_runs_unprivileged():
    root = EXAMPLES.parent
    lines = (EXAMPLES / "Dockerfile").read_text("utf-8").splitlines()
    for line in lines:
        if line.startswith("COPY") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (root / source).exists(), source
    user = next(line for line in lines if line.startswith("USER"))
    assert not user.split()[1].startswith(("0", "root"))
    assert "EXPOSE 9265" in lines
    entry = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert json.loads(entry.split(None, 1)[1]) == ["multitarget-exporter"]
    assert 'multitarget-exporter = "multitarget_exporter.cli:main"' in (
        root / "pyproject.toml"
    ).read_text("utf-8")


def test_the_compose_file_matches_the_compose_specification():
    checked = run(
        BIN / "check-jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        EXAMPLES / "compose.yaml",
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_everything_compose_mounts_or_builds_exists():
    compose = load_yaml("compose.yaml")
    build = compose["services"]["exporter"]["build"]
    context = (EXAMPLES / build["context"]).resolve()
    assert (context / build["dockerfile"]).is_file()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (EXAMPLES / source).exists(), volume
    command = " ".join(compose["services"]["prometheus"]["command"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in command


# -- Kubernetes -------------------------------------------------------------------------


def kubernetes_documents() -> list[dict]:
    return load_all("kubernetes/exporter.yaml") + load_all("kubernetes/monitoring.yaml")


def test_core_kubernetes_manifests_match_the_api_schemas():
    core = [d for d in kubernetes_documents() if not d["apiVersion"].startswith("monitoring.")]
    assert {d["kind"] for d in core} == {"ConfigMap", "Deployment", "Service"}
    for document in core:
        kubernetes_validate.validate(document, "1.31", strict=True)


def test_the_kubernetes_validator_would_catch_a_typo():
    deployment = next(d for d in kubernetes_documents() if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["contaners"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31", strict=True)


@pytest.mark.parametrize("kind", ["Probe", "ServiceMonitor"])
def test_operator_resources_match_their_api_fields(kind):
    schema = json.loads((SCHEMAS / f"{kind.lower()}.schema.json").read_text("utf-8"))
    found = [d for d in kubernetes_documents() if d["kind"] == kind]
    assert found
    for document in found:
        jsonschema.validate(document, schema)
    broken = dict(found[0], spec={**found[0]["spec"], "jobname": "typo"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_kubernetes_parts_fit_together(tmp_path):
    documents = {d["kind"] + "/" + d["metadata"]["name"]: d for d in kubernetes_documents()}
    config_map = documents["ConfigMap/multitarget-exporter"]
    deployment = documents["Deployment/multitarget-exporter"]
    service = documents["Service/multitarget-exporter"]
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    assert {p["name"] for p in container["ports"]} == {service["spec"]["ports"][0]["targetPort"]}
    # The configuration the ConfigMap holds is valid, its key file where the Secret is mounted.
    key_file = tmp_path / "owm-api-key"
    key_file.write_text("k8s-example-key\n")
    text = config_map["data"]["config.yml"].replace(
        "/etc/multitarget_exporter/secret/owm-api-key", str(key_file)
    )
    config = parse_config(yaml.safe_load(text))
    assert config.modules["default"].api_key == "k8s-example-key"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert "/etc/multitarget_exporter/secret/owm-api-key".startswith(mounts["secret"])
    assert f"--config.file={mounts['config']}" in container["args"]
    # Every Probe asks a module the ConfigMap defines, through the Service.
    port = service["spec"]["ports"][0]["port"]
    for probe in (d for d in documents.values() if d["kind"] == "Probe"):
        assert probe["spec"]["module"] in config.modules
        host = probe["spec"]["prober"]["url"]
        assert host.startswith(f"{service['metadata']['name']}.") and host.endswith(f":{port}")
        assert (
            probe["spec"]["targets"]["staticConfig"]["labels"]["module"] == probe["spec"]["module"]
        )
        for target in probe["spec"]["targets"]["staticConfig"]["static"]:
            parse_target(target)
    monitor = documents["ServiceMonitor/multitarget-exporter"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


# -- systemd ----------------------------------------------------------------------------


def test_the_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (.ci/run installs systemd)"
    unit = (EXAMPLES / "systemd" / "multitarget-exporter.service").read_text("utf-8")
    # Only the path of the installed program changes: here it is this virtualenv's.
    local = unit.replace(
        "/opt/multitarget_exporter/bin/multitarget-exporter", str(BIN / "multitarget-exporter")
    )
    assert local != unit
    path = tmp_path / "multitarget-exporter.service"
    path.write_text(local)
    verified = run(analyze, "verify", path)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    # systemd-analyze does complain about what is wrong.
    path.write_text(local.replace("ProtectHome=yes", "ProtectHome=yes\nProtectEverything=yes"))
    assert "Unknown key" in run(analyze, "verify", path).stderr


def test_the_systemd_recipe_gives_a_valid_configuration(tmp_path, monkeypatch):
    unit = (EXAMPLES / "systemd" / "multitarget-exporter.service").read_text("utf-8")
    match = re.search(r"sed 's\|([^|]+)\|([^|]+)\|'", unit)
    assert match, "the unit's header gives the sed that adapts the example configuration"
    text = (EXAMPLES / "multitarget_exporter.yml").read_text("utf-8")
    adapted = text.replace(match[1], match[2])
    assert "api_key: ${OWM_API_KEY}" not in adapted
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "owm_api_key").write_text("systemd-example-key\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.delenv("OWM_API_KEY", raising=False)
    config = parse_config(yaml.safe_load(adapted))
    assert config.modules["default"].api_key == "systemd-example-key"
    assert "LoadCredential=owm_api_key:/etc/multitarget_exporter/owm_api_key" in unit
    assert "--config.file=/etc/multitarget_exporter/config.yml" in unit
