"""What serves at a given moment: a configuration, what is built from it, and its reload.

`InForce` holds one `ServingState` and replaces it whole on reload, so a probe
sees the old configuration or the new one, never a mixture; the cache outlives
reloads that keep its settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import DEFAULT_MODULE, CacheConfig, Config, read_config
from multitarget_exporter.providers.base import Provider
from multitarget_exporter.providers.registry import PROVIDERS
from multitarget_exporter.runtime import logs, selfmetrics
from multitarget_exporter.upstream.cache import Bucket, MemoryCache, ReadingCache
from multitarget_exporter.upstream.gate import Gate
from multitarget_exporter.warnings.lookup import WarningsLookup

log_config = logging.getLogger("multitarget_exporter")


@dataclass(frozen=True, slots=True)
class ServingState:
    """A configuration and the providers built from it, swapped as one value."""

    config: Config
    providers: Mapping[str, Provider]
    buckets: Mapping[str, Bucket]
    warnings: Mapping[str, WarningsLookup]

    @classmethod
    def build(cls, config: Config, cache: ReadingCache) -> ServingState:
        gates = {
            name: Gate(name, module.daily_budget, cache.tallies)
            for name, module in config.modules.items()
        }
        providers = {
            name: PROVIDERS[module.provider](module, cache.validators, gates[name])
            for name, module in config.modules.items()
        }
        buckets = {
            name: cache.bucket(name, module.rate_limit)
            for name, module in config.modules.items()
            if module.rate_limit is not None
        }
        warnings = {
            name: WarningsLookup(module, cache.warnings, buckets.get(name), gates[name])
            for name, module in config.modules.items()
            if module.warnings
        }
        return cls(
            config,
            MappingProxyType(providers),
            MappingProxyType(buckets),
            MappingProxyType(warnings),
        )


def build_cache(settings: CacheConfig) -> ReadingCache:
    """The configured cache backend."""
    if settings.backend == "redis":
        from multitarget_exporter.upstream.rediscache import RedisCache

        return RedisCache(settings.url, settings.max_entries)
    return MemoryCache(settings.max_entries)


def announce(config: Config) -> None:
    """Say in the operator's log what now serves, and what will not work as hoped."""
    default = config.modules.get(DEFAULT_MODULE)
    fields = {
        "source": config.source or "built-in",
        "modules": ",".join(sorted(config.modules)),
        "default_provider": default.provider if default else "none",
    }
    log_config.info("configuration loaded", extra={"fields": fields})
    keyless = [
        name
        for name, module in sorted(config.modules.items())
        if module.provider == "openweathermap" and not module.api_key
    ]
    if keyless and config.source:
        log_config.warning(
            "openweathermap modules without an API key will fail as unauthorized",
            extra={"fields": {"modules": ",".join(keyless)}},
        )
    elif keyless:
        log_config.info(
            "no OWM_API_KEY: module default uses open_meteo, which needs no key; "
            "set OWM_API_KEY to make it openweathermap"
        )


class InForce:
    """The configuration in force in this process, installed whole, and the cache under it."""

    def __init__(self, config: Config) -> None:
        self.cache: ReadingCache = build_cache(config.cache)
        self._cache_config = config.cache
        self.state = self._build(config)
        selfmetrics.record_reload(True)

    def _build(self, config: Config) -> ServingState:
        if config.cache != self._cache_config:
            self.cache, self._cache_config = build_cache(config.cache), config.cache
        state = ServingState.build(config, self.cache)
        logs.set_secrets(config.secrets)
        for name, module in config.modules.items():
            selfmetrics.declare_module(name)
            if module.daily_budget:
                selfmetrics.declare_budget(name, module.daily_budget)
        announce(config)
        return state

    def install(self, config: Config) -> None:
        """Put a validated configuration in force, whole: a probe sees the old or the new."""
        self.state = self._build(config)  # one assignment
        selfmetrics.record_reload(True)

    def reload(self, config_path: str | None) -> list[str]:
        """Re-read the configuration file into this process; the problems, if it stays as it was."""
        try:
            config = read_config(config_path)
        except ConfigError as error:
            return error.problems
        self.install(config)
        return []


def report_reload_failed(problems: list[str]) -> None:
    """Tell the operator and /metrics that a reload was refused."""
    selfmetrics.record_reload(False)
    for problem in problems:
        published = problem.startswith("published")
        message = "reload failed" if published else "reload failed, configuration unchanged"
        log_config.error(message, extra={"fields": {"problem": problem}})
