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

from multitarget_exporter.config.fields import Fields, format_duration
from multitarget_exporter.config.files import ConfigError, parse_yaml, read_yaml
from multitarget_exporter.config.provider_kinds import (
    KINDS,
    OPEN_METEO,
    OPENWEATHERMAP,
    WARNING_SOURCES,
)
from multitarget_exporter.model.ratelimit import RateLimit
from multitarget_exporter.runtime.redact import SECRET_PLACEHOLDER

DEFAULT_MODULE = "default"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:_[A-Za-z]{2})?")
_MODULE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A `contact` goes into a request header: printable ASCII, no CR or LF, bounded.
_CONTACT = re.compile(r"[\x20-\x7e]{3,200}")
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
        "air_quality_url",
        "forecast",
        "contact",
        "stale_if_error",
        "fallback",
        "rate_limit",
        "daily_budget",
        "allowed_targets",
        "warnings",
        "warnings_ttl",
        "warnings_urls",
    }
)
_CACHE_KEYS = frozenset({"backend", "url", "max_entries"})
_TOP_KEYS = frozenset({"modules", "cache"})
DEFAULT_WARNINGS_TTL = 600.0
MAX_HORIZONS = 8
MAX_DAILY_BUDGET = 100_000_000
MAX_HORIZON_SECONDS = 120 * 3600.0
CACHE_BACKENDS = ("memory", "redis")


@dataclass(frozen=True, slots=True)
class Horizon:
    """One `forecast` entry: the label as configured (`3h`) and its length."""

    label: str
    seconds: float


@dataclass(frozen=True, slots=True)
class WarningSource:
    """One source of a module's `warnings`: its name, where it is asked, and for how long
    its answer for a point is kept (`warnings_ttl`, raised to the source's own minimum)."""

    name: str
    base_url: str
    ttl_seconds: float


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
    air_quality_url: str = ""
    forecast: tuple[Horizon, ...] = ()
    contact: str = ""
    stale_if_error_seconds: float = 0.0
    fallback: str = ""
    rate_limit: RateLimit | None = None
    daily_budget: int | None = None  # upstream calls per UTC day, paced (spec section 14)
    allowed_targets: tuple[re.Pattern[str], ...] = ()
    warnings: tuple[WarningSource, ...] = ()
    warnings_ttl_seconds: float = DEFAULT_WARNINGS_TTL

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
    kind = KINDS.get(module.provider)
    if kind is None or kind.takes_api_key:
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
            **({"air_quality_url": module.air_quality_url} if module.air_quality_url else {}),
            "forecast": [horizon.label for horizon in module.forecast],
            **({"contact": module.contact} if module.contact else {}),
            **(
                {"stale_if_error": format_duration(module.stale_if_error_seconds)}
                if module.stale_if_error_seconds
                else {}
            ),
            **({"fallback": module.fallback} if module.fallback else {}),
            "rate_limit": str(module.rate_limit) if module.rate_limit else None,
            **({"daily_budget": module.daily_budget} if module.daily_budget else {}),
            "allowed_targets": [pattern.pattern for pattern in module.allowed_targets],
        }
    )
    if module.warnings:
        view["warnings"] = [source.name for source in module.warnings]
        view["warnings_ttl"] = format_duration(module.warnings_ttl_seconds)
        view["warnings_urls"] = {source.name: source.base_url for source in module.warnings}
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


def _parse_module(name: str, raw: Any, problems: list[str]) -> ModuleConfig | None:
    where = f"modules.{name}"
    if not _MODULE_NAME.fullmatch(name):
        problems.append(f"{where}: a module name is 1 to 64 of A-Z a-z 0-9 _ . -")
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping of settings")
        return None
    fields = Fields(where, raw, problems)
    fields.unknown_keys(_MODULE_KEYS)

    provider = fields.text("provider", "")
    if provider not in KINDS:
        fields.problem("provider", f"{provider!r} is not one of {', '.join(sorted(KINDS))}")
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
    kind = KINDS.get(provider)
    default_url = kind.default_base_url if kind else ""
    default_geocoding = kind.default_geocoding_url if kind else ""
    if kind and not default_geocoding and fields.given("geocoding_url"):
        fields.problem("geocoding_url", f"the {provider} provider does not use a geocoding_url")
    air_quality = fields.boolean("air_quality", False)
    if kind and air_quality and not kind.offers_air_quality:
        fields.problem("air_quality", f"the {provider} provider has no air quality")
    default_air_url = kind.default_air_quality_url if kind else ""
    if kind and not default_air_url and fields.given("air_quality_url"):
        fields.problem(
            "air_quality_url",
            f"the {provider} provider does not use an air_quality_url"
            + (" (its air quality comes from base_url)" if kind.offers_air_quality else ""),
        )
    horizons = fields.durations("forecast", MAX_HORIZONS, MAX_HORIZON_SECONDS, "120h")
    if kind and horizons and not kind.offers_forecast:
        fields.problem("forecast", f"the {provider} provider observes and has no forecast")
    if kind and not kind.takes_api_key:
        for key in ("api_key", "api_key_file"):
            if fields.given(key):
                fields.problem(key, f"the {provider} provider takes no key")
    sources, warnings_ttl = _warnings(fields)
    contact = fields.text("contact", "").strip()
    asking = [source.name for source in sources if WARNING_SOURCES[source.name].asks_contact]
    if kind and kind.asks_contact:
        asking.insert(0, provider)
    if asking and not contact:
        fields.problem(
            "contact",
            f"required for {' and '.join(asking)}: their terms ask every client to say who "
            "it is (an e-mail address or a website)",
        )
    elif contact and not _CONTACT.fullmatch(contact):
        fields.problem("contact", "must be 3 to 200 printable ASCII characters")
    elif kind and not kind.takes_contact and not sources and fields.given("contact"):
        fields.problem(
            "contact", f"the {provider} provider does not use a contact, and no warnings are listed"
        )
    cache_ttl = fields.duration("cache_ttl", 600.0, 0.0, 7 * 86400.0)
    if kind and kind.keeps_expires and fields.given("cache_ttl") and cache_ttl == 0:
        fields.problem("cache_ttl", f"must be above 0 for {provider}: its Expires needs a cache")
    stale = fields.duration("stale_if_error", 0.0, 0.0, 7 * 86400.0)
    if stale and cache_ttl == 0:
        fields.problem("stale_if_error", "needs a cache: cache_ttl is 0")
    elif stale and stale < cache_ttl:
        fields.problem(
            "stale_if_error", f"must be at least cache_ttl ({format_duration(cache_ttl)})"
        )
    fallback = fields.text("fallback", "")
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
        cache_ttl_seconds=cache_ttl,
        air_quality=air_quality,
        air_quality_url=fields.url("air_quality_url", default_air_url),
        forecast=tuple(Horizon(label, seconds) for label, seconds in horizons),
        contact=contact,
        stale_if_error_seconds=stale,
        fallback=fallback,
        rate_limit=fields.rate("rate_limit"),
        daily_budget=fields.integer("daily_budget", 0, 1, MAX_DAILY_BUDGET) or None,
        allowed_targets=fields.patterns("allowed_targets"),
        warnings=sources,
        warnings_ttl_seconds=warnings_ttl,
    )


def _warnings(fields: Fields) -> tuple[tuple[WarningSource, ...], float]:
    """The module's warnings sources in the order listed, and its `warnings_ttl`."""
    names = fields.names("warnings", tuple(WARNING_SOURCES))
    ttl = fields.duration("warnings_ttl", DEFAULT_WARNINGS_TTL, 1.0, 86400.0)
    urls = Fields.mapping(
        fields.raw.get("warnings_urls"),
        f"{fields.where}.warnings_urls",
        frozenset(WARNING_SOURCES),
        fields.problems,
        "a mapping of warnings sources to base URLs",
    )
    for name in set(urls.raw) - set(names):
        urls.url(name, "")  # a URL for a source not listed is checked too
    if not names:
        for key in ("warnings_ttl", "warnings_urls"):
            if fields.given(key):
                fields.problem(key, "needs warnings: a list of sources")
    sources = tuple(
        WarningSource(
            name,
            urls.url(name, WARNING_SOURCES[name].default_base_url),
            max(ttl, WARNING_SOURCES[name].min_ttl_seconds),
        )
        for name in names
    )
    return sources, ttl


def _fallback_problems(modules: Mapping[str, ModuleConfig]) -> list[str]:
    """Each `fallback` must name another module, and following them must not come back."""
    problems = []
    for name, module in modules.items():
        if not module.fallback:
            continue
        where = f"modules.{name}.fallback"
        if module.fallback not in modules:
            problems.append(f"{where}: {module.fallback!r} is not a module")
            continue
        seen, current = [name], module.fallback
        while current:
            if current in seen:
                problems.append(f"{where}: a cycle: {' -> '.join([*seen, current])}")
                break
            seen.append(current)
            following = modules.get(current)
            current = following.fallback if following else ""
    return problems


def _parse_cache(raw: Any, problems: list[str]) -> CacheConfig:
    if raw is None:
        return CacheConfig()
    if not isinstance(raw, dict):
        problems.append("cache: must be a mapping of settings")
        return CacheConfig()
    fields = Fields("cache", raw, problems)
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
    problems.extend(_fallback_problems(modules))
    if problems:
        raise ConfigError(problems)
    return Config(MappingProxyType(modules), cache, source)


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
    owm_kind, meteo_kind = OPENWEATHERMAP, OPEN_METEO
    owm = ModuleConfig("openweathermap", owm_kind.name, owm_kind.default_base_url, api_key)
    meteo = ModuleConfig(
        "open_meteo",
        meteo_kind.name,
        meteo_kind.default_base_url,
        geocoding_url=meteo_kind.default_geocoding_url,
        air_quality_url=meteo_kind.default_air_quality_url,
    )
    default = replace(owm if api_key else meteo, name=DEFAULT_MODULE)
    modules = {"openweathermap": owm, "open_meteo": meteo, DEFAULT_MODULE: default}
    return Config(MappingProxyType(modules), CacheConfig(), None)
