"""What serves at a given moment: a configuration, and what is built from it.

The app holds one `ServingState` and replaces it whole on reload, so a probe
sees the old configuration or the new one, never a mixture.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from multitarget_exporter.config.modules import DEFAULT_MODULE, CacheConfig, Config
from multitarget_exporter.providers.base import Provider
from multitarget_exporter.providers.registry import PROVIDERS
from multitarget_exporter.upstream.cache import Bucket, MemoryCache, ReadingCache

log_config = logging.getLogger("multitarget_exporter")


@dataclass(frozen=True, slots=True)
class ServingState:
    """A configuration and the providers built from it, swapped as one value."""

    config: Config
    providers: Mapping[str, Provider]
    buckets: Mapping[str, Bucket]

    @classmethod
    def build(cls, config: Config, cache: ReadingCache) -> ServingState:
        providers = {
            name: PROVIDERS[module.provider](module, cache.validators)
            for name, module in config.modules.items()
        }
        buckets = {
            name: cache.bucket(name, module.rate_limit)
            for name, module in config.modules.items()
            if module.rate_limit is not None
        }
        return cls(config, MappingProxyType(providers), MappingProxyType(buckets))


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
