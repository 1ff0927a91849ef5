"""What the configuration needs to know of each provider and warnings source, and nothing more.

The configuration validates `provider:` and `warnings:` names and fills in
default URLs from here, without importing any provider's code (and with it urllib3 and
prometheus_client, which must not load before the CLI has set up
multiprocess metrics). A provider's class takes its facts from its entry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """A provider's static facts."""

    name: str
    default_base_url: str
    # Where place names are resolved in a call of their own ("": the provider takes
    # no `geocoding_url`).
    default_geocoding_url: str = ""
    # Whether `air_quality: true` means anything to this provider.
    offers_air_quality: bool = False
    # Where air quality is asked for in a call of its own ("": the provider takes no
    # `air_quality_url`; OpenWeatherMap's lives under its base_url).
    default_air_quality_url: str = ""
    # Whether the provider's API takes a key (`api_key`); whether its terms ask who calls
    # (`contact` required), or it merely takes a `contact` for its `User-Agent` (optional).
    takes_api_key: bool = True
    asks_contact: bool = False
    takes_contact: bool = False
    # Whether `forecast:` horizons mean anything to it (a station observes, and forecasts
    # nothing).
    offers_forecast: bool = True
    # Whether its terms forbid asking again before an answer's `Expires`, which needs a
    # cache (`cache_ttl: 0` is then an error).
    keeps_expires: bool = False


OPENWEATHERMAP = ProviderKind(
    "openweathermap",
    "https://api.openweathermap.org",
    offers_air_quality=True,  # `q=`, `id=` and `zip=` resolve in the weather call itself
)
OPEN_METEO = ProviderKind(
    "open_meteo",
    "https://api.open-meteo.com",
    "https://geocoding-api.open-meteo.com",
    offers_air_quality=True,
    default_air_quality_url="https://air-quality-api.open-meteo.com",
)

MET_NORWAY = ProviderKind(
    "met_norway",
    "https://api.met.no",
    "https://geocoding-api.open-meteo.com",  # MET Norway has no place names of its own
    takes_api_key=False,
    asks_contact=True,
    takes_contact=True,
    keeps_expires=True,
)
# Station observations (spec section 13): the US National Weather Service, and DWD's
# through Bright Sky. Neither has place names of its own.
NWS = ProviderKind(
    "nws",
    "https://api.weather.gov",
    "https://geocoding-api.open-meteo.com",
    takes_api_key=False,
    asks_contact=True,
    takes_contact=True,
    offers_forecast=False,
)
BRIGHT_SKY = ProviderKind(
    "bright_sky",
    "https://api.brightsky.dev",
    "https://geocoding-api.open-meteo.com",
    takes_api_key=False,
    takes_contact=True,
    offers_forecast=False,
)

KINDS: dict[str, ProviderKind] = {
    kind.name: kind for kind in (OPENWEATHERMAP, OPEN_METEO, MET_NORWAY, NWS, BRIGHT_SKY)
}


@dataclass(frozen=True, slots=True)
class WarningSourceKind:
    """A warnings source's static facts: its name in `warnings:` and where it answers."""

    name: str
    default_base_url: str
    # Whether its terms ask every client to say who it is (`contact` is then required).
    asks_contact: bool
    # The shortest time its answer for a point may be kept: MET Norway bans clients that
    # ask more often than every 10 minutes.
    min_ttl_seconds: float = 0.0


WARNING_SOURCES: dict[str, WarningSourceKind] = {
    source.name: source
    for source in (
        WarningSourceKind("nws", "https://api.weather.gov", asks_contact=True),
        WarningSourceKind("dwd", "https://api.brightsky.dev", asks_contact=False),
        WarningSourceKind(
            "met_norway", "https://api.met.no", asks_contact=True, min_ttl_seconds=600.0
        ),
    )
}
