"""Open-Meteo's forecast API (`/v1/forecast`, no key needed) into a Reading.

A place name or postal code is first resolved through Open-Meteo's geocoding
API (`/v1/search`) and the answer kept for a day; a `lat,lon` target goes
straight to the forecast. One forecast call asks for the current conditions
(wind in m/s, times as Unix seconds, the place's own UTC offset), the last
full hour's rain and snow (the `current` block's sums cover only its
15-minute interval, a quarter of the `window="1h"` they would be shown as),
and today's sunrise and sunset. With `forecast`, the same call asks for the
hourly and daily variables the horizons need, no more hours and days than
they reach; with `air_quality`, a second call to the air-quality API
(`open_meteo_air`) adds indexes, pollutants and pollen. Everything else is
converted into base units here: hPa to Pa, % to ratios, mm of rain to
metres; `snowfall`, centimetres of fresh snow, becomes both its depth in metres
(`weather_snowfall_depth_meters`) and its liquid water equivalent (7 cm of snow
to 10 mm of water, Open-Meteo's own rule) in `weather_snow_meters`, which is
water for every provider. Times are read as Unix seconds (asked for) or as ISO
8601 local times at the answer's UTC offset.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from multitarget_exporter.config.provider_kinds import OPEN_METEO, ProviderKind
from multitarget_exporter.model import units
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.reading import (
    Failure,
    FailureReason,
    Part,
    ProbeResult,
    Reading,
    dew_point_celsius,
)
from multitarget_exporter.model.targets import CityId, Location, StationId
from multitarget_exporter.providers import open_meteo_air, steps
from multitarget_exporter.providers import open_meteo_forecast as forecast_blocks
from multitarget_exporter.providers.geocoding import Geocoder, Place
from multitarget_exporter.upstream import client as upstream
from multitarget_exporter.upstream.answers import (
    error_detail,
    invalid,
    json_answer,
    left_out,
    number,
    text,
    why_not,
)
from multitarget_exporter.upstream.gate import Gate

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import Horizon, ModuleConfig
    from multitarget_exporter.runtime.probelog import ProbeLog
    from multitarget_exporter.upstream.revalidation import Validators


CURRENT = (
    "temperature_2m",
    "apparent_temperature",
    "dew_point_2m",
    "relative_humidity_2m",
    "pressure_msl",
    "surface_pressure",
    "wind_speed_10m",
    "wind_gusts_10m",
    "wind_direction_10m",
    "cloud_cover",
    "visibility",
    "weather_code",
    "uv_index",
    "uv_index_clear_sky",
    "precipitation_probability",
)
HOURLY = ("rain", "showers", "snowfall")
DAILY = ("sunrise", "sunset")


def forecast_query(
    latitude: float, longitude: float, horizons: tuple[Horizon, ...] = ()
) -> dict[str, str]:
    """The `/v1/forecast` parameters for one point, and for the horizons if any.

    Hourly arrays start at the hour before the current one (the last full hour's
    rain and snow). A horizon's step lies at most ceil(H) hours after the current
    one, and its precipitation is stamped on the hour after it: so ceil(H) + 2
    hours from the current one, and one more for clocks that differ.
    """
    hourly: tuple[str, ...] = HOURLY
    daily: tuple[str, ...] = DAILY
    hours, days = 1, 1
    if horizons:
        hourly = HOURLY + forecast_blocks.HOURLY
        daily = DAILY + forecast_blocks.DAILY
        longest = max(horizon.seconds for horizon in horizons)
        hours = math.ceil(longest / forecast_blocks.STEP_SECONDS) + 3
        days = 2  # today and tomorrow
    return {
        "latitude": repr(latitude),
        "longitude": repr(longitude),
        "current": ",".join(CURRENT),
        "hourly": ",".join(hourly),
        "past_hours": "1",
        "forecast_hours": str(hours),
        "daily": ",".join(daily),
        "forecast_days": str(days),
        "wind_speed_unit": "ms",
        "timeformat": "unixtime",
        "timezone": "auto",
    }


def _last_hour(times: list[float | None], now: float | None) -> int | None:
    """The entry stamped within the hour up to `now`: the last full hour's sums (an hourly
    sum is stamped at the end of its hour). None when no stamp is that recent."""
    chosen = None
    for index, at in enumerate(times):
        if at is not None and now is not None and now - forecast_blocks.STEP_SECONDS < at <= now:
            chosen = index
    return chosen


def _first_daily(document: dict[str, Any], variable: str) -> float | None:
    values = forecast_blocks.block(document, "daily").get(variable)
    if not isinstance(values, list) or not values:
        return None
    return steps.moment(values[0], forecast_blocks.utc_offset(document)) or None


class _PastHour(NamedTuple):
    """The last full hour's precipitation, each by window ("1h"), in metres."""

    rain: dict[str, float]  # of water: rain plus showers
    snow: dict[str, float]  # of water: the fresh snow's liquid equivalent
    snowfall_depth: dict[str, float]  # of fresh snow


def _precipitation(document: dict[str, Any], now: float | None) -> _PastHour:
    """The past hour's rain (rain plus showers) and snow. Open-Meteo gives `snowfall` in
    centimetres of fresh snow: its depth, and (at its 7 cm to 10 mm) its water."""
    hourly = forecast_blocks.block(document, "hourly")
    hour = _last_hour(forecast_blocks.hourly_times(document), now)

    def at(variable: str) -> float | None:
        return units.amount(steps.value_at(hourly.get(variable), hour))

    parts = [at(variable) for variable in ("rain", "showers")]
    known = [part for part in parts if part is not None]
    rain = units.precipitation({"1h": sum(known) if known else None})
    centimetres = at("snowfall")
    water = units.snow_water_metres(centimetres)
    depth = units.snow_depth_metres(centimetres)
    return _PastHour(
        rain,
        {} if water is None else {"1h": water},
        {} if depth is None else {"1h": depth},
    )


def parse_forecast(
    document: Any,
    status_code: int = 200,
    place: Place | None = None,
    horizons: tuple[Horizon, ...] = (),
    now: float | None = None,
    log: ProbeLog | None = None,
) -> ProbeResult:
    """A decoded `/v1/forecast` answer (asked as `forecast_query` does) as a ProbeResult.

    `place` is the geocoded place for a named target; without it the location
    is the forecast's own grid point, with no name. With `horizons`, the steps
    they fall in from `now` (when the answer came), and today's and tomorrow's
    figures; an answer without them is still a reading, marked as missing them.
    """
    if not isinstance(document, dict):
        return invalid("answer is not a JSON object", status_code)
    if document.get("error") is True:
        reason = str(text(document, "reason") or "")[:200]
        failure = Failure(FailureReason.UPSTREAM_ERROR, f"answer says error: {reason}")
        return ProbeResult(None, failure, status_code)
    current = forecast_blocks.block(document, "current")
    temperature = number(current, "temperature_2m")
    if temperature is None:
        return invalid("answer has no current.temperature_2m", status_code)
    humidity = units.ratio(number(current, "relative_humidity_2m"))
    dew_point = number(current, "dew_point_2m")
    if dew_point is None and humidity is not None:
        dew_point = dew_point_celsius(temperature, humidity)
    sea_level = number(current, "pressure_msl")
    ground = number(current, "surface_pressure")
    observed = steps.moment(current.get("time"), forecast_blocks.utc_offset(document))
    past_hour = _precipitation(document, observed)
    if place is None:
        latitude, longitude = number(document, "latitude"), number(document, "longitude")
        name = country = ""
    else:
        latitude, longitude = place.latitude, place.longitude
        name, country = place.name, place.country
    reading = Reading(
        provider=OpenMeteo.name,
        temperature_celsius=temperature,
        apparent_temperature_celsius=number(current, "apparent_temperature"),
        dew_point_celsius=dew_point,
        relative_humidity_ratio=humidity,
        pressure_pascals=units.pascals(sea_level),
        ground_pressure_pascals=units.pascals(ground),
        wind_speed_meters_per_second=forecast_blocks.wind(
            document, "current", number(current, "wind_speed_10m")
        ),
        wind_gust_meters_per_second=forecast_blocks.wind(
            document, "current", number(current, "wind_gusts_10m")
        ),
        wind_direction_degrees=number(current, "wind_direction_10m"),
        cloud_cover_ratio=units.ratio(number(current, "cloud_cover")),
        visibility_meters=number(current, "visibility"),
        rain_meters=past_hour.rain,
        snow_meters=past_hour.snow,
        snowfall_depth_meters=past_hour.snowfall_depth,
        conditions=forecast_blocks.conditions(number(current, "weather_code")),
        observation_timestamp_seconds=observed or None,
        sunrise_timestamp_seconds=_first_daily(document, "sunrise"),
        sunset_timestamp_seconds=_first_daily(document, "sunset"),
        location_name=name,
        location_country=country,
        latitude_degrees=latitude,
        longitude_degrees=longitude,
        utc_offset_seconds=number(document, "utc_offset_seconds"),
        uv_index=units.amount(number(current, "uv_index")),
        uv_index_clear_sky=units.amount(number(current, "uv_index_clear_sky")),
        precipitation_probability_ratio=units.fraction(
            number(current, "precipitation_probability")
        ),
    )
    if horizons:
        moment = time.time() if now is None else now
        reading = forecast_blocks.with_forecast(reading, document, horizons, moment, log)
    return ProbeResult(reading, None, status_code)


class OpenMeteo:
    """Current conditions from Open-Meteo: one forecast call per probe, geocoding once a day."""

    kind: ClassVar[ProviderKind] = OPEN_METEO
    name: ClassVar[str] = OPEN_METEO.name

    def __init__(
        self, module: ModuleConfig, validators: Validators | None = None, gate: Gate | None = None
    ) -> None:
        self._forecast_url = f"{module.base_url}/v1/forecast"
        # A key is only for Open-Meteo's commercial API (customer-api.open-meteo.com).
        self._key = {"apikey": module.api_key} if module.api_key else {}
        self._secrets = (module.api_key,) if module.api_key else ()
        self._upstream = upstream.Upstream(self.name, self._secrets, gate)
        geocoding_url = module.geocoding_url or self.kind.default_geocoding_url
        self._geocoder = Geocoder(geocoding_url, module.language, self._upstream, self._key)
        self._horizons = module.forecast
        self._air_url = f"{module.air_quality_url}/v1/air-quality" if module.air_quality else ""
        self.calls_per_fetch = 1 + bool(module.air_quality)

    def stored(self, location: Location) -> ProbeResult | None:
        return None  # every reading is asked for: the cache alone keeps them

    def unsupported(self, location: Location) -> str | None:
        if isinstance(location, CityId):
            return (
                "id: targets are OpenWeatherMap city ids; an open_meteo module takes "
                "a place name, zip: or lat,lon"
            )
        if isinstance(location, StationId):
            return (
                "station: targets name a weather station, for nws and bright_sky modules; "
                "an open_meteo module takes a place name, zip: or lat,lon"
            )
        return None

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        point = self._geocoder.point(location, deadline, log)
        if isinstance(point, ProbeResult):
            return point
        latitude, longitude, place = point
        params = {**forecast_query(latitude, longitude, self._horizons), **self._key}
        exchange = self._upstream.get("forecast", self._forecast_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return document
        result = parse_forecast(
            document, exchange.status_code, place, self._horizons, time.time(), log
        )
        if not self._air_url or result.reading is None:
            return result
        reading = self._with_air(result.reading, latitude, longitude, deadline, log)
        return replace(result, reading=reading)

    def _with_air(
        self, reading: Reading, latitude: float, longitude: float, deadline: Deadline, log: ProbeLog
    ) -> Reading:
        """The reading with the air-quality API's figures for the point asked about, or
        marked as missing them (the weather still counts)."""
        params = {**open_meteo_air.air_query(latitude, longitude), **self._key}
        exchange = self._upstream.get("air_quality", self._air_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return left_out(reading, Part.AIR_QUALITY, why_not(document), log)
        if isinstance(document, dict) and document.get("error") is True:
            why = f"upstream_error: {error_detail(exchange.body, self._secrets)}"
            return left_out(reading, Part.AIR_QUALITY, why, log)
        parsed = open_meteo_air.parse_air(document)
        if isinstance(parsed, str):
            return left_out(reading, Part.AIR_QUALITY, f"invalid_response: {parsed}", log)
        return replace(
            reading,
            air_quality_european_index=parsed.european_index,
            air_quality_usa_index=parsed.usa_index,
            air_pollutants_grams_per_cubic_meter=parsed.pollutants,
            pollen_grains_per_cubic_meter=parsed.pollen,
        )
