"""Modules: read once, validated whole, held as frozen values.

Unknown keys are errors, as in blackbox_exporter's strict decoder: a typo must
not silently leave a setting at its default. Every problem in a file is
reported at once, one line each, naming the module and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from multitarget_exporter.providers import PROVIDERS

DEFAULT_MODULE = "default"
OWM_BASE_URL = "https://api.openweathermap.org"

_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:_[A-Za-z]{2})?")
_MODULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MODULE_KEYS = frozenset({"provider", "api_key", "api_key_file", "base_url", "language", "timeout"})


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ModuleConfig:
    """One module: which provider to ask, how, and within what time."""

    name: str
    provider: str
    base_url: str
    api_key: str = field(default="", repr=False)
    language: str = "en"
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole effective configuration."""

    modules: Mapping[str, ModuleConfig]
    source: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(module.api_key for module in self.modules.values() if module.api_key)


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (`500ms`, `10s`, `1h30m`); ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip()) if text.strip() else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 500ms, 10s, 10m or 1h")
    return sum(int(v) * unit for v, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if v)


def _expand_environment(value: str, where: str, problems: list[str]) -> str:
    def lookup(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            problems.append(f"{where}: environment variable {name} is not set")
            return ""
        return os.environ[name]

    return _ENV_REFERENCE.sub(lookup, value)


def _check_base_url(value: str, where: str, problems: list[str]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{where}: {value!r} is not an http:// or https:// URL")
    elif parts.query or parts.fragment:
        problems.append(f"{where}: {value!r} must not have a query or fragment")
    return value.rstrip("/")


def _parse_module(name: str, raw: Any, problems: list[str]) -> ModuleConfig | None:
    where = f"modules.{name}"
    if not _MODULE_NAME.fullmatch(name):
        problems.append(f"{where}: a module name is 1 to 64 of A-Z a-z 0-9 _ . -")
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping of settings")
        return None
    for key in sorted(set(raw) - _MODULE_KEYS, key=str):
        problems.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(_MODULE_KEYS))})")

    def text(key: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            problems.append(f"{where}.{key}: must be a string, not {type(value).__name__}")
            return default
        return _expand_environment(value, f"{where}.{key}", problems)

    provider = text("provider", "")
    if provider not in PROVIDERS:
        problems.append(
            f"{where}.provider: {provider!r} is not one of {', '.join(sorted(PROVIDERS))}"
        )
    api_key = text("api_key", "").strip()
    key_file = text("api_key_file", "")
    if key_file:
        if api_key:
            problems.append(f"{where}: set api_key or api_key_file, not both")
        try:
            with open(key_file, encoding="utf-8") as handle:
                api_key = handle.read(4096).strip()
        except OSError as error:
            problems.append(f"{where}.api_key_file: cannot read {key_file!r}: {error.strerror}")
    base_url = text("base_url", "")
    if base_url:
        base_url = _check_base_url(base_url, f"{where}.base_url", problems)
    elif provider in PROVIDERS:
        base_url = PROVIDERS[provider].default_base_url
    language = text("language", "en")
    if not _LANGUAGE.fullmatch(language):
        problems.append(f"{where}.language: {language!r} is not a language code like en or zh_cn")
    timeout = 10.0
    try:
        timeout = parse_duration(text("timeout", "10s"))
        if not 0 < timeout <= 300:
            problems.append(f"{where}.timeout: must be more than 0s and at most 5m")
    except ValueError as error:
        problems.append(f"{where}.timeout: {error}")
    return ModuleConfig(name, provider, base_url, api_key, language, timeout)


def parse_config(document: Any, source: str | None = None) -> Config:
    """Validate a decoded YAML document into a Config, or raise ConfigError."""
    problems: list[str] = []
    if not isinstance(document, dict):
        raise ConfigError(["the configuration must be a mapping with a `modules` key"])
    for key in sorted(set(document) - {"modules"}, key=str):
        problems.append(f"{key}: unknown key (known: modules)")
    raw_modules = document.get("modules")
    if not isinstance(raw_modules, dict) or not raw_modules:
        problems.append("modules: must be a non-empty mapping of module names to settings")
        raw_modules = {}
    modules = {}
    for name, raw in raw_modules.items():
        module = _parse_module(str(name), raw, problems)
        if module is not None:
            modules[str(name)] = module
    if problems:
        raise ConfigError(problems)
    return Config(MappingProxyType(modules), source)


def load_config(path: str) -> Config:
    """Read and validate a configuration file."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError([f"cannot read {path}: {error.strerror}"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{path} is not valid YAML: {error}"]) from None
    return parse_config(document, source=path)


def builtin_config(environ: Mapping[str, str] = os.environ) -> Config:
    """The modules that serve without a configuration file."""
    api_key = environ.get("OWM_API_KEY", "").strip()
    owm = ModuleConfig("openweathermap", "openweathermap", OWM_BASE_URL, api_key)
    modules = {"openweathermap": owm, DEFAULT_MODULE: replace(owm, name=DEFAULT_MODULE)}
    return Config(MappingProxyType(modules), None)
