"""Provider-neutral values: what a probe measured, or why it could not.

Everything here is in base units (Celsius, pascals, metres, ratios, seconds);
providers convert into these, nothing after them knows an API's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Part(StrEnum):
    """What a reading can lack while its weather still counts (`Reading.missing`)."""

    FORECAST = "forecast"  # the steps of the horizons
    DAILY_FORECAST = "daily_forecast"  # today's and tomorrow's figures
    AIR_QUALITY = "air_quality"


class FailureReason(StrEnum):
    """The closed set of `probe_failure_info{reason}` values (spec section 4)."""

    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    UPSTREAM_ERROR = "upstream_error"
    INVALID_RESPONSE = "invalid_response"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class Condition:
    """One reported weather condition: OWM's `weather[]` (a number), a WMO code in words
    (a number), or a MET Norway symbol code in words (the code)."""

    id: int | str
    main: str
    description: str


@dataclass(frozen=True, slots=True)
class ForecastStep:
    """The provider's forecast step that contains now + `horizon`; `None`: not given."""

    horizon: str  # as configured: "3h"
    temperature_celsius: float | None = None
    apparent_temperature_celsius: float | None = None
    relative_humidity_ratio: float | None = None
    precipitation_probability_ratio: float | None = None
    # Liquid-equivalent precipitation over the step, and the step's length ("1h", "3h").
    precipitation_meters: float | None = None
    window: str = ""
    wind_speed_meters_per_second: float | None = None
    wind_gust_meters_per_second: float | None = None
    cloud_cover_ratio: float | None = None
    uv_index: float | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class DailyForecast:
    """One local calendar day's figures: `day` is "today" or "tomorrow"."""

    day: str
    temperature_max_celsius: float | None = None
    temperature_min_celsius: float | None = None
    precipitation_sum_meters: float | None = None
    uv_index_max: float | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One observation of one place. `None` means the upstream did not say."""

    provider: str
    temperature_celsius: float
    apparent_temperature_celsius: float | None = None
    temperature_min_celsius: float | None = None
    temperature_max_celsius: float | None = None
    dew_point_celsius: float | None = None
    relative_humidity_ratio: float | None = None
    pressure_pascals: float | None = None
    ground_pressure_pascals: float | None = None
    wind_speed_meters_per_second: float | None = None
    wind_gust_meters_per_second: float | None = None
    wind_direction_degrees: float | None = None
    cloud_cover_ratio: float | None = None
    visibility_meters: float | None = None
    # window ("1h", "3h") -> metres of liquid water: rain, and snow as its water equivalent
    rain_meters: dict[str, float] = field(default_factory=dict)
    snow_meters: dict[str, float] = field(default_factory=dict)
    # window ("1h") -> metres of fresh snow (its depth, not its water); None for a provider
    # that gives no depth (no family at all), as `snow_meters` does for one without snow.
    snowfall_depth_meters: dict[str, float] | None = None
    conditions: tuple[Condition, ...] = ()
    observation_timestamp_seconds: float | None = None
    # When the provider made the forecast this reading comes from (MET Norway's
    # `meta.updated_at`); None for providers that do not say.
    forecast_updated_timestamp_seconds: float | None = None
    sunrise_timestamp_seconds: float | None = None
    sunset_timestamp_seconds: float | None = None
    location_name: str = ""
    location_country: str = ""
    latitude_degrees: float | None = None
    longitude_degrees: float | None = None
    utc_offset_seconds: float | None = None
    uv_index: float | None = None
    uv_index_clear_sky: float | None = None
    precipitation_probability_ratio: float | None = None
    # One step per configured horizon the answer reaches, and today's and tomorrow's figures.
    forecast: tuple[ForecastStep, ...] = ()
    daily: tuple[DailyForecast, ...] = ()
    # OWM's 1 (good) to 5 (very poor), and pollutant -> grams per cubic metre
    air_quality_index: float | None = None
    air_pollutants_grams_per_cubic_meter: dict[str, float] = field(default_factory=dict)
    # Open-Meteo's European (0 to 100 and beyond) and US (0 to 500) indexes, and pollen.
    air_quality_european_index: float | None = None
    air_quality_usa_index: float | None = None
    pollen_grains_per_cubic_meter: dict[str, float] = field(default_factory=dict)
    # False for a provider that forecasts and does not observe, or a station that did not
    # measure it (`null`): no past hour's rain or snow families at all.
    observes_precipitation: bool = True
    # False for a station that reports precipitation but no snow of its own: no snow families.
    observes_snow: bool = True
    # The station that answered (`station` is the id a `station:` target takes), how far
    # it lies from the target's point (None for a `station:` target), and its height.
    station_id: str = ""
    station_name: str = ""
    station_distance_meters: float | None = None
    station_elevation_meters: float | None = None
    # window ("1h") -> seconds of sunshine in it
    sunshine_duration_seconds: dict[str, float] = field(default_factory=dict)
    # Parts asked for but not had (`Part` values, comma-separated): the reading
    # is served without it, and cached only briefly so the part comes back soon.
    missing: str = ""


# Failures a refresh can have while the place itself is fine: what stale_if_error and
# fallback answer for (not `not_found`: the place is unknown, not the upstream down).
REFRESH_FAILURES = frozenset(
    {
        FailureReason.UNAUTHORIZED,
        FailureReason.RATE_LIMITED,
        FailureReason.TIMEOUT,
        FailureReason.CONNECTION_ERROR,
        FailureReason.UPSTREAM_ERROR,
        FailureReason.INVALID_RESPONSE,
        FailureReason.TOO_LARGE,
    }
)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a probe got no reading; `detail` is for the operator's log, never secret."""

    reason: FailureReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A finished probe: exactly one of `reading` and `failure` is set."""

    reading: Reading | None
    failure: Failure | None
    upstream_status_code: int = 0
    cache_hit: bool = False
    duration_seconds: float = 0.0
    # When the upstream said its answer stays fresh until (HTTP `Expires`), as a Unix time.
    expires_at: float | None = None
    # Whether a kept reading answered because its refresh failed (`refresh_failure` says
    # why), and whether a fallback module answered; None: the module does not allow it.
    stale: bool | None = None
    refresh_failure: Failure | None = None
    fallback: bool | None = None

    @property
    def success(self) -> bool:
        return self.reading is not None


def lacking(reading: Reading, part: str) -> Reading:
    """The reading marked as lacking `part` too (`missing` lists parts, comma-separated)."""
    parts = [known for known in reading.missing.split(",") if known]
    if part not in parts:
        parts.append(part)
    return replace(reading, missing=",".join(parts))


def dew_point_celsius(temperature_celsius: float, relative_humidity_ratio: float) -> float | None:
    """Dew point by the Magnus formula (Alduchov and Eskridge's coefficients).

    Good to a few tenths of a degree between -40 and +50 C; `None` where the
    formula has no answer (no humidity at all).
    """
    if not 0.0 < relative_humidity_ratio <= 1.0:
        return None
    b, c = 17.625, 243.04
    gamma = math.log(relative_humidity_ratio) + b * temperature_celsius / (c + temperature_celsius)
    return round(c * gamma / (b - gamma), 2)
