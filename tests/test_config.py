"""Configuration: durations, environment expansion, strictness, built-in modules."""

import pytest
import yaml

from multitarget_exporter.config import (
    ConfigError,
    builtin_config,
    load_config,
    parse_config,
    parse_duration,
)


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
    assert set(config.modules) == {"default", "openweathermap"}
    assert config.modules["default"].api_key == "abc"
    assert config.modules["default"].name == "default"
    assert builtin_config({}).modules["default"].api_key == ""


def test_example_configurations_load(monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("OWM_API_KEY", "example-key")
    examples = Path(__file__).parent.parent / "examples"
    real = load_config(str(examples / "multitarget_exporter.yml"))
    assert set(real.modules) == {"default", "german"}
    assert real.modules["german"].language == "de"
    fake = load_config(str(examples / "fake_upstream.yml"))
    assert fake.modules["default"].base_url == "http://127.0.0.1:8080"


def test_example_prometheus_config_passes_promtool():
    import subprocess
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "prometheus.yml"
    checked = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
