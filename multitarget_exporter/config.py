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
from urllib.parse import urlsplit, urlunsplit

import yaml

from multitarget_exporter.providers import PROVIDERS
from multitarget_exporter.redact import SECRET_PLACEHOLDER

DEFAULT_MODULE = "default"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?"
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_DURATION_NAMES = ("y", "w", "d", "h", "m", "s", "ms")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:_[A-Za-z]{2})?")
_MODULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_RATE = re.compile(r"(\d{1,9})\s*/\s*(s|m|h)")
_RATE_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_ALLOWED_TARGETS = 1000

_MODULE_KEYS = frozenset(
    {
        "provider",
        "api_key",
        "api_key_file",
        "base_url",
        "geocoding_url",
        "language",
        "timeout",
        "cache_ttl",
        "air_quality",
        "rate_limit",
        "allowed_targets",
    }
)
_CACHE_KEYS = frozenset({"backend", "url", "max_entries"})
_TOP_KEYS = frozenset({"modules", "cache"})
CACHE_BACKENDS = ("memory", "redis")


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Upstream calls allowed per period."""

    calls: int
    period_seconds: float

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period_seconds]
        return f"{self.calls}/{unit}"


@dataclass(frozen=True, slots=True)
class ModuleConfig:
    """One module: which provider to ask, how, and within what time."""

    name: str
    provider: str
    base_url: str
    api_key: str = field(default="", repr=False)
    api_key_file: str = ""
    geocoding_url: str = ""
    language: str = "en"
    timeout_seconds: float = 10.0
    cache_ttl_seconds: float = 600.0
    air_quality: bool = False
    rate_limit: RateLimit | None = None
    allowed_targets: tuple[re.Pattern[str], ...] = ()

    def allows(self, target: str) -> bool:
        """Whether `allowed_targets` lets this module probe `target` (empty: any)."""
        return not self.allowed_targets or any(p.fullmatch(target) for p in self.allowed_targets)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Where readings are cached, shared by every module."""

    backend: str = "memory"
    url: str = DEFAULT_REDIS_URL
    max_entries: int = 10000


@dataclass(frozen=True, slots=True)
class Config:
    """The whole effective configuration."""

    modules: Mapping[str, ModuleConfig]
    cache: CacheConfig = CacheConfig()
    source: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        found = [module.api_key for module in self.modules.values() if module.api_key]
        password = urlsplit(self.cache.url).password
        if password:
            found.append(password)
        return tuple(found)

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as plain data, every secret replaced by `<secret>`."""
        return {
            "modules": {name: module_view(m) for name, m in self.modules.items()},
            "cache": {
                "backend": self.cache.backend,
                "url": redact_url(self.cache.url),
                "max_entries": self.cache.max_entries,
            },
        }


def module_view(module: ModuleConfig) -> dict[str, Any]:
    """One module as plain data in the file's own terms, its key replaced by `<secret>`."""
    view: dict[str, Any] = {"provider": module.provider}
    view["api_key"] = SECRET_PLACEHOLDER if module.api_key else ""
    if module.api_key_file:
        view["api_key_file"] = module.api_key_file
    view["base_url"] = module.base_url
    if module.geocoding_url:
        view["geocoding_url"] = module.geocoding_url
    view.update(
        {
            "language": module.language,
            "timeout": format_duration(module.timeout_seconds),
            "cache_ttl": format_duration(module.cache_ttl_seconds),
            "air_quality": module.air_quality,
            "rate_limit": str(module.rate_limit) if module.rate_limit else None,
            "allowed_targets": [pattern.pattern for pattern in module.allowed_targets],
        }
    )
    return view


def redact_url(url: str) -> str:
    """A URL with any password replaced by `<secret>`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:{SECRET_PLACEHOLDER}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration (`500ms`, `10s`, `1h30m`, `0`); ValueError otherwise."""
    text = text.strip()
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 500ms, 10s, 10m or 1h")
    return sum(int(v) * unit for v, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if v)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for `seconds` (`1h30m`, `500ms`, `0s`)."""
    milliseconds = round(seconds * 1000)
    if milliseconds == 0:
        return "0s"
    parts = []
    for unit, name in zip(_DURATION_UNITS, _DURATION_NAMES, strict=True):
        unit_ms = round(unit * 1000)
        count, milliseconds = divmod(milliseconds, unit_ms)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)


class _Fields:
    """Typed reads of one mapping's values, each problem recorded against its key."""

    def __init__(self, where: str, raw: Mapping[str, Any], problems: list[str]) -> None:
        self.where, self.raw, self.problems = where, raw, problems

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}.{key}: {message}")

    def given(self, key: str) -> bool:
        return key in self.raw and self.raw[key] is not None

    def text(self, key: str, default: str) -> str:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(key, f"must be a string, not {type(value).__name__}")
            return default

        def lookup(match: re.Match[str]) -> str:
            if match[1] not in os.environ:
                self.problem(key, f"environment variable {match[1]} is not set")
                return ""
            return os.environ[match[1]]

        return _ENV_REFERENCE.sub(lookup, value)

    def url(self, key: str, default: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.text(key, default)
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.hostname or parts.scheme == "unix"):
            self.problem(key, f"{value!r} is not a URL with scheme {' or '.join(schemes)}")
        elif parts.query or parts.fragment:
            self.problem(key, f"{value!r} must not have a query or fragment")
        return value.rstrip("/") if parts.scheme in ("http", "https") else value

    def duration(self, key: str, default: float, minimum: float, maximum: float) -> float:
        value = self.raw.get(key)
        if value is None:
            return default
        if value == 0 and not isinstance(value, bool):
            seconds = 0.0
        elif not isinstance(value, str):
            self.problem(key, f"must be a duration like 10s, not {type(value).__name__}")
            return default
        else:
            try:
                seconds = parse_duration(self.text(key, ""))
            except ValueError as error:
                self.problem(key, str(error))
                return default
        if not minimum <= seconds <= maximum:
            span = f"{format_duration(minimum)} and {format_duration(maximum)}"
            self.problem(key, f"must be between {span}")
            return default
        return seconds

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, not {value!r}")
            return default
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be a whole number, not {value!r}")
            return default
        if not minimum <= value <= maximum:
            self.problem(key, f"must be between {minimum} and {maximum}")
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            self.problem(key, f"{value!r} is not one of {', '.join(choices)}")
            return default
        return value

    def rate(self, key: str) -> RateLimit | None:
        value = self.raw.get(key)
        if value is None or value == "":
            return None
        match = _RATE.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match or int(match[1]) < 1:
            self.problem(key, f"{value!r} is not a rate like 60/m (per s, m or h)")
            return None
        return RateLimit(int(match[1]), _RATE_PERIODS[match[2]])

    def patterns(self, key: str) -> tuple[re.Pattern[str], ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > _MAX_ALLOWED_TARGETS:
            self.problem(
                key, f"must be a list of at most {_MAX_ALLOWED_TARGETS} regular expressions"
            )
            return ()
        compiled = []
        for index, pattern in enumerate(value):
            if not isinstance(pattern, str):
                self.problem(f"{key}[{index}]", "must be a string")
                continue
            try:
                compiled.append(re.compile(pattern))
            except re.error as error:
                self.problem(f"{key}[{index}]", f"{pattern!r} is not a regular expression: {error}")
        return tuple(compiled)

    def unknown_keys(self, known: frozenset[str]) -> None:
        for key in sorted(set(self.raw) - known, key=str):
            self.problem(str(key), f"unknown key (known: {', '.join(sorted(known))})")


def _parse_module(name: str, raw: Any, problems: list[str]) -> ModuleConfig | None:
    where = f"modules.{name}"
    if not _MODULE_NAME.fullmatch(name):
        problems.append(f"{where}: a module name is 1 to 64 of A-Z a-z 0-9 _ . -")
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping of settings")
        return None
    fields = _Fields(where, raw, problems)
    fields.unknown_keys(_MODULE_KEYS)

    provider = fields.text("provider", "")
    if provider not in PROVIDERS:
        fields.problem("provider", f"{provider!r} is not one of {', '.join(sorted(PROVIDERS))}")
    api_key = fields.text("api_key", "").strip()
    key_file = fields.text("api_key_file", "")
    if key_file:
        if api_key:
            problems.append(f"{where}: set api_key or api_key_file, not both")
        try:
            with open(key_file, encoding="utf-8") as handle:
                api_key = handle.read(4096).strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            fields.problem("api_key_file", f"cannot read {key_file!r}: {reason}")
    kind = PROVIDERS.get(provider)
    default_url = kind.default_base_url if kind else ""
    default_geocoding = kind.default_geocoding_url if kind else ""
    if kind and not default_geocoding and fields.given("geocoding_url"):
        fields.problem("geocoding_url", f"the {provider} provider does not use a geocoding_url")
    air_quality = fields.boolean("air_quality", False)
    if kind and air_quality and not kind.offers_air_quality:
        fields.problem(
            "air_quality", f"the {provider} provider has no air quality; use openweathermap"
        )
    language = fields.text("language", "en")
    if not _LANGUAGE.fullmatch(language):
        fields.problem("language", f"{language!r} is not a language code like en or zh_cn")
    return ModuleConfig(
        name=name,
        provider=provider,
        base_url=fields.url("base_url", default_url),
        api_key=api_key,
        api_key_file=key_file,
        geocoding_url=fields.url("geocoding_url", default_geocoding),
        language=language,
        timeout_seconds=fields.duration("timeout", 10.0, 0.001, 300.0),
        cache_ttl_seconds=fields.duration("cache_ttl", 600.0, 0.0, 7 * 86400.0),
        air_quality=air_quality,
        rate_limit=fields.rate("rate_limit"),
        allowed_targets=fields.patterns("allowed_targets"),
    )


def _parse_cache(raw: Any, problems: list[str]) -> CacheConfig:
    if raw is None:
        return CacheConfig()
    if not isinstance(raw, dict):
        problems.append("cache: must be a mapping of settings")
        return CacheConfig()
    fields = _Fields("cache", raw, problems)
    fields.unknown_keys(_CACHE_KEYS)
    return CacheConfig(
        backend=fields.choice("backend", "memory", CACHE_BACKENDS),
        url=fields.url("url", DEFAULT_REDIS_URL, ("redis", "rediss", "unix")),
        max_entries=fields.integer("max_entries", 10000, 1, 10_000_000),
    )


def parse_config(document: Any, source: str | None = None) -> Config:
    """Validate a decoded YAML document into a Config, or raise ConfigError."""
    problems: list[str] = []
    if not isinstance(document, dict):
        raise ConfigError(["the configuration must be a mapping with a `modules` key"])
    for key in sorted(set(document) - _TOP_KEYS, key=str):
        problems.append(f"{key}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    raw_modules = document.get("modules")
    if not isinstance(raw_modules, dict) or not raw_modules:
        problems.append("modules: must be a non-empty mapping of module names to settings")
        raw_modules = {}
    modules = {}
    for name, raw in raw_modules.items():
        module = _parse_module(str(name), raw, problems)
        if module is not None:
            modules[str(name)] = module
    cache = _parse_cache(document.get("cache"), problems)
    if problems:
        raise ConfigError(problems)
    return Config(MappingProxyType(modules), cache, source)


def read_file(path: str) -> bytes:
    """A configuration file's bytes, or ConfigError with one line saying why they cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ConfigError([f"cannot read {path}: {error.strerror}"]) from None


def parse_yaml(text: bytes, path: str) -> Any:
    """A YAML document, or ConfigError with one line saying why it is not one."""
    try:
        return yaml.safe_load(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"cannot read {path}: not UTF-8 text"]) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{path} is not valid YAML: {' '.join(str(error).split())}"]) from None


def read_yaml(path: str) -> Any:
    """A YAML file's document, or ConfigError with one line saying why it cannot be read."""
    return parse_yaml(read_file(path), path)


def load_config(path: str) -> Config:
    """Read and validate a configuration file."""
    return parse_config(read_yaml(path), source=path)


def read_config(path: str | None) -> Config:
    """The file's configuration, or the built-in modules when no file is named."""
    return load_config(path) if path else builtin_config()


def config_from_text(text: bytes | None, path: str | None) -> Config:
    """The configuration in `text`, as read from `path` earlier (None: the built-in modules)."""
    if text is None or path is None:
        return builtin_config()
    return parse_config(parse_yaml(text, path), source=path)


def builtin_config(environ: Mapping[str, str] = os.environ) -> Config:
    """The modules that serve without a configuration file.

    `openweathermap` (key from OWM_API_KEY) and `open_meteo` (no key); `default`
    is the first when a key is set and the second otherwise, so a new user
    gets real readings with no sign-up.
    """
    api_key = environ.get("OWM_API_KEY", "").strip()
    owm_kind, meteo_kind = PROVIDERS["openweathermap"], PROVIDERS["open_meteo"]
    owm = ModuleConfig("openweathermap", owm_kind.name, owm_kind.default_base_url, api_key)
    meteo = ModuleConfig(
        "open_meteo",
        meteo_kind.name,
        meteo_kind.default_base_url,
        geocoding_url=meteo_kind.default_geocoding_url,
    )
    default = replace(owm if api_key else meteo, name=DEFAULT_MODULE)
    modules = {"openweathermap": owm, "open_meteo": meteo, DEFAULT_MODULE: default}
    return Config(MappingProxyType(modules), CacheConfig(), None)
