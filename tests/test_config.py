"""Configuration: durations, environment expansion, strictness, built-in modules."""

import pytest
import yaml

from multitarget_exporter.config.fields import parse_duration
from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import builtin_config, load_config, parse_config


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10),
        ("10m", 600),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1m30s500ms", 90.5),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "10 s", "s", "-1s", "1.5s", "10sec", "ms10"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def parse(text):
    return parse_config(yaml.safe_load(text))


def test_module_with_environment_key(monkeypatch):
    monkeypatch.setenv("TEST_OWM_KEY", "k3y")
    config = parse("""
modules:
  default:
    provider: openweathermap
    api_key: ${TEST_OWM_KEY}
    base_url: http://127.0.0.1:8080/
    timeout: 3s
    language: de
""")
    module = config.modules["default"]
    assert module.api_key == "k3y"
    assert module.base_url == "http://127.0.0.1:8080"
    assert module.timeout_seconds == 3
    assert module.language == "de"
    assert config.secrets == ("k3y",)
    assert "k3y" not in repr(module)


def test_defaults_for_a_bare_module():
    module = parse("modules: {default: {provider: openweathermap}}").modules["default"]
    assert module.base_url == "https://api.openweathermap.org"
    assert module.timeout_seconds == 10
    assert module.language == "en"


def test_api_key_file_has_its_newline_stripped(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    config = parse(f"modules: {{m: {{provider: openweathermap, api_key_file: {key_file}}}}}")
    assert config.modules["m"].api_key == "from-file"


def test_every_problem_is_reported_at_once(monkeypatch, tmp_path):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as caught:
        parse(f"""
modules:
  a:
    provider: darksky
    timeot: 10s
  b:
    provider: openweathermap
    timeout: ten seconds
    api_key: ${{NOT_SET_ANYWHERE}}
    base_url: ftp://example.org
  c:
    provider: openweathermap
    api_key_file: {tmp_path}/missing
    timeout: 10m
""")
    problems = caught.value.problems
    assert any(p.startswith("modules.a.provider:") and "darksky" in p for p in problems)
    assert any(p.startswith("modules.a.timeot: unknown key") for p in problems)
    assert any(p.startswith("modules.b.timeout:") and "not a duration" in p for p in problems)
    assert any("NOT_SET_ANYWHERE is not set" in p for p in problems)
    assert any(p.startswith("modules.b.base_url:") for p in problems)
    assert any(p.startswith("modules.c.api_key_file: cannot read") for p in problems)
    assert any(p.startswith("modules.c.timeout: must be") for p in problems)
    assert len(problems) == 7


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "must be a mapping"),
        ("modules: {}", "non-empty mapping"),
        ("modules: {default: {provider: openweathermap}}\nextra: 1", "extra: unknown key"),
        ("modules: {default: 5}", "modules.default: must be a mapping"),
        ("modules: {default: {provider: openweathermap, api_key: 5}}", "must be a string"),
        ('modules: {"<b>x</b>": {provider: openweathermap}}', "a module name is 1 to 64 of"),
        ("modules: {default: {provider: openweathermap, language: '../x'}}", "not a language"),
    ],
)
def test_structural_problems(text, problem):
    with pytest.raises(ConfigError, match=problem):
        parse(text)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "nope.yml"))
    bad = tmp_path / "bad.yml"
    bad.write_text("modules: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_builtin_modules_take_the_key_from_the_environment():
    config = builtin_config({"OWM_API_KEY": " abc \n"})
    assert set(config.modules) == {"default", "openweathermap", "open_meteo"}
    assert config.modules["default"].provider == "openweathermap"
    assert config.modules["default"].api_key == "abc"
    assert config.modules["default"].name == "default"
    assert config.modules["open_meteo"].api_key == ""


def test_builtin_default_is_open_meteo_without_a_key():
    config = builtin_config({"OWM_API_KEY": "  "})
    default = config.modules["default"]
    assert (default.provider, default.api_key) == ("open_meteo", "")
    assert default.base_url == "https://api.open-meteo.com"
    assert default.geocoding_url == "https://geocoding-api.open-meteo.com"
    assert config.modules["openweathermap"].provider == "openweathermap"


def test_example_configurations_load(monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("OWM_API_KEY", "example-key")
    examples = Path(__file__).parent.parent / "examples"
    real = load_config(str(examples / "multitarget_exporter.yml"))
    assert set(real.modules) == {"default", "german", "air", "open_meteo", "yr"}
    assert real.modules["yr"].provider == "met_norway" and real.modules["yr"].contact
    assert real.modules["german"].language == "de"
    assert real.modules["air"].air_quality is True
    assert real.modules["open_meteo"].base_url == "https://api.open-meteo.com"
    fake = load_config(str(examples / "fake_upstream.yml"))
    assert fake.modules["default"].base_url == "http://127.0.0.1:8080"
    assert fake.modules["open_meteo"].geocoding_url == "http://127.0.0.1:8080"


def test_example_prometheus_config_passes_promtool():
    import subprocess
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "prometheus.yml"
    checked = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_full_schema(monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_OWM_KEY", "k3y")
    config = parse(r"""
modules:
  default:
    provider: openweathermap
    api_key: ${TEST_OWM_KEY}
    base_url: https://api.openweathermap.org
    language: zh_cn
    timeout: 10s
    cache_ttl: 10m
    air_quality: true
    rate_limit: 60/m
    allowed_targets: ['London,GB', 'id:\d+']
  nocache:
    provider: openweathermap
    cache_ttl: 0
cache:
  backend: redis
  url: redis://:pa55@127.0.0.1:6379/0
  max_entries: 500
""")
    module = config.modules["default"]
    assert module.cache_ttl_seconds == 600 and module.air_quality is True
    assert module.rate_limit.calls == 60 and module.rate_limit.period_seconds == 60
    assert str(module.rate_limit) == "60/m"
    assert module.allows("London,GB") and module.allows("id:2643743")
    assert not module.allows("London,GB,extra") and not module.allows("Paris")
    assert config.modules["nocache"].cache_ttl_seconds == 0
    assert config.modules["nocache"].allows("anything")  # empty means any
    assert (config.cache.backend, config.cache.max_entries) == ("redis", 500)
    assert set(config.secrets) == {"k3y", "pa55"}


def test_redacted_view_has_no_secret_and_round_trips():
    config = parse("""
modules:
  default: {provider: openweathermap, api_key: s3cr3t, timeout: 1m30s, rate_limit: 5/s}
cache: {url: 'redis://user:pw@localhost:6380/1'}
""")
    view = config.redacted()
    text = yaml.safe_dump(view)
    assert "s3cr3t" not in text and "pw@" not in text
    assert view["modules"]["default"]["api_key"] == "<secret>"
    assert view["modules"]["default"]["timeout"] == "1m30s"
    assert view["modules"]["default"]["rate_limit"] == "5/s"
    assert view["cache"]["url"] == "redis://user:<secret>@localhost:6380/1"
    # The view, with a key put back, is itself a valid configuration.
    view["modules"]["default"]["api_key"] = "again"
    assert parse_config(view).modules["default"].timeout_seconds == 90


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (10, "10s"), (600, "10m"), (5400, "1h30m"), (86400, "1d")],
)
def test_format_duration(seconds, text):
    from multitarget_exporter.config.fields import format_duration

    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("cache_ttl: forever", "modules.m.cache_ttl: 'forever' is not a duration"),
        ("cache_ttl: 30d", "modules.m.cache_ttl: must be between 0s and 1w"),
        ("timeout: 0s", "modules.m.timeout: must be between 1ms and 5m"),
        ("timeout: 10", "modules.m.timeout: must be a duration like 10s, not int"),
        ("air_quality: 'yes please'", "modules.m.air_quality: must be true or false"),
        ("rate_limit: 60 per minute", "modules.m.rate_limit: '60 per minute' is not a rate"),
        ("rate_limit: 0/s", "modules.m.rate_limit: '0/s' is not a rate"),
        ("allowed_targets: London", "modules.m.allowed_targets: must be a list"),
        (
            "allowed_targets: ['ok', '(unclosed']",
            "modules.m.allowed_targets[1]: '(unclosed' is not",
        ),
        ("allowed_targets: [5]", "modules.m.allowed_targets[0]: must be a string"),
        (
            "geocoding_url: https://geocoding-api.open-meteo.com",
            "modules.m.geocoding_url: the openweathermap provider does not use a geocoding_url",
        ),
        (
            "api_key: a\n    api_key_file: /dev/null",
            "modules.m: set api_key or api_key_file, not both",
        ),
    ],
)
def test_module_validation_errors(settings, problem):
    with pytest.raises(ConfigError) as caught:
        parse(f"modules:\n  m:\n    provider: openweathermap\n    {settings}\n")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("geocoding_url: geocoding.example", "modules.m.geocoding_url: 'geocoding.example' is not"),
        (
            "geocoding_url: 'https://g.example/?q=1'",
            "modules.m.geocoding_url: 'https://g.example/?q=1' must not",
        ),
        ("air_quality_url: air.example", "modules.m.air_quality_url: 'air.example' is not a URL"),
    ],
)
def test_open_meteo_module_validation_errors(settings, problem):
    with pytest.raises(ConfigError) as caught:
        parse(f"modules:\n  m:\n    provider: open_meteo\n    {settings}\n")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            "forecast: [1h, 2h, 3h, 4h, 5h, 6h, 7h, 8h, 9h]",
            "modules.m.forecast: must be a list of at most 8 durations like 3h",
        ),
        ("forecast: [0h]", "modules.m.forecast[0]: '0h' must be above 0 and at most 120h"),
        ("forecast: [1h, 200h]", "modules.m.forecast[1]: '200h' must be above 0 and at most 120h"),
        ("forecast: [soon]", "modules.m.forecast[0]: 'soon' is not a duration like"),
        ("forecast: [3]", "modules.m.forecast[0]: must be a duration like 3h, not 3"),
        ("forecast: 3h", "modules.m.forecast: must be a list of at most 8 durations"),
        ("forecast: [1h, 60m]", "modules.m.forecast[1]: '60m' is the same as an earlier entry"),
        (
            "air_quality_url: https://air.example",
            "modules.m.air_quality_url: the openweathermap provider does not use an "
            "air_quality_url (its air quality comes from base_url)",
        ),
    ],
)
def test_forecast_and_air_quality_errors_name_the_key(settings, problem):
    """Each bad value is a start-up error naming the module and the key."""
    for provider in ("openweathermap", "open_meteo"):
        if "air_quality_url" in settings and provider == "open_meteo":
            continue
        with pytest.raises(ConfigError) as caught:
            parse(f"modules:\n  m:\n    provider: {provider}\n    {settings}\n")
        assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_forecast_horizons_keep_their_labels_and_open_meteo_takes_air_quality():
    config = parse("""
modules:
  om:
    provider: open_meteo
    forecast: [1h, 90m, 3h, 120h]
    air_quality: true
  om_own_air:
    provider: open_meteo
    air_quality: true
    air_quality_url: http://127.0.0.1:8080/
  owm: {provider: openweathermap, api_key: k, forecast: [12h]}
""")
    om = config.modules["om"]
    assert [(h.label, h.seconds) for h in om.forecast] == [
        ("1h", 3600),
        ("90m", 5400),
        ("3h", 10800),
        ("120h", 432000),
    ]
    assert om.air_quality and om.air_quality_url == "https://air-quality-api.open-meteo.com"
    assert config.modules["om_own_air"].air_quality_url == "http://127.0.0.1:8080"
    assert config.modules["owm"].air_quality_url == ""
    assert config.redacted()["modules"]["om"]["forecast"] == ["1h", "90m", "3h", "120h"]


def test_open_meteo_defaults_and_optional_key():
    config = parse("""
modules:
  plain: {provider: open_meteo}
  commercial:
    provider: open_meteo
    api_key: om-customer-key
    base_url: https://customer-api.open-meteo.com
    geocoding_url: https://customer-geocoding-api.open-meteo.com/
""")
    plain, commercial = config.modules["plain"], config.modules["commercial"]
    assert plain.base_url == "https://api.open-meteo.com"
    assert plain.geocoding_url == "https://geocoding-api.open-meteo.com"
    assert commercial.geocoding_url == "https://customer-geocoding-api.open-meteo.com"
    assert config.secrets == ("om-customer-key",)
    assert config.redacted()["modules"]["commercial"]["api_key"] == "<secret>"


@pytest.mark.parametrize(
    ("cache", "problem"),
    [
        ("{backend: memcached}", "cache.backend: 'memcached' is not one of memory, redis"),
        ("{url: 'http://localhost:6379'}", "cache.url: 'http://localhost:6379' is not a URL"),
        ("{max_entries: 0}", "cache.max_entries: must be between 1 and"),
        ("{max_entries: many}", "cache.max_entries: must be a whole number"),
        ("{size: 5}", "cache.size: unknown key"),
        ("[redis]", "cache: must be a mapping"),
    ],
)
def test_cache_validation_errors(cache, problem):
    with pytest.raises(ConfigError) as caught:
        parse(f"modules: {{m: {{provider: openweathermap}}}}\ncache: {cache}\n")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_warnings_keys_on_any_provider_in_the_order_listed():
    config = parse("""
modules:
  owm:
    provider: openweathermap
    api_key: k
    warnings: [dwd, nws, met_norway]
    warnings_ttl: 2m
    contact: ops@example.com
    warnings_urls: {nws: "http://127.0.0.1:9/", met_norway: "http://127.0.0.1:8"}
""")
    sources = config.modules["owm"].warnings
    assert [(s.name, s.base_url, s.ttl_seconds) for s in sources] == [
        ("dwd", "https://api.brightsky.dev", 120.0),
        ("nws", "http://127.0.0.1:9", 120.0),
        # MET Norway bans clients that ask more often than every 10 minutes.
        ("met_norway", "http://127.0.0.1:8", 600.0),
    ]
    view = config.redacted()["modules"]["owm"]
    assert view["warnings"] == ["dwd", "nws", "met_norway"]
    assert view["warnings_ttl"] == "2m"


def test_a_dwd_only_module_needs_no_contact_and_warnings_ttl_defaults_to_ten_minutes():
    module = parse("modules: {m: {provider: open_meteo, warnings: [dwd]}}").modules["m"]
    assert [(s.name, s.ttl_seconds) for s in module.warnings] == [("dwd", 600.0)]
    assert module.contact == ""


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("warnings: [nws, hko]", "modules.m.warnings[1]: 'hko' is not one of nws, dwd, met_norway"),
        ("warnings: [dwd, dwd]", "modules.m.warnings[1]: 'dwd' is listed twice"),
        ("warnings: dwd", "modules.m.warnings: must be a list of at most 3"),
        ("{warnings: [dwd], warnings_ttl: 0}", "modules.m.warnings_ttl: must be between"),
        ("{warnings: [dwd], warnings_ttl: -5m}", "modules.m.warnings_ttl:"),
        ("warnings: [nws]", "modules.m.contact: required for nws"),
        ("warnings: [dwd, met_norway]", "modules.m.contact: required for met_norway"),
        ("warnings_ttl: 10m", "modules.m.warnings_ttl: needs warnings"),
        ("{warnings: [dwd], warnings_urls: {dwd: ftp://x}}", "modules.m.warnings_urls.dwd:"),
        (
            "{warnings: [dwd], warnings_urls: {xyz: http://x}}",
            "modules.m.warnings_urls.xyz: unknown key",
        ),
        ('{warnings: [dwd], contact: "a\\nb"}', "modules.m.contact: must be 3 to 200"),
    ],
)
def test_bad_warnings_settings_are_start_up_errors_naming_the_key(settings, problem):
    text = "modules:\n  m:\n    provider: open_meteo\n"
    if settings.startswith("{"):
        for key, value in yaml.safe_load(settings).items():
            text += f"    {key}: {yaml.safe_dump(value, default_flow_style=True).strip()}\n"
    else:
        text += f"    {settings}\n"
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
