"""Open-Meteo's forecast API (`/v1/forecast`, no key needed) into a Reading.

A place name or postal code is first resolved through Open-Meteo's geocoding
API (`/v1/search`) and the answer kept for a day; a `lat,lon` target goes
straight to the forecast. One forecast call asks for the current conditions
(wind in m/s, times as Unix seconds, the place's own UTC offset), the last
full hour's rain and snow (the `current` block's sums cover only its
15-minute interval, a quarter of the `window="1h"` they would be shown as),
and today's sunrise and sunset. Everything else is converted into base
units here: hPa to Pa, % to ratios, mm of rain to metres, cm of snow to metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from multitarget_exporter import units, upstream
from multitarget_exporter.deadline import Deadline
from multitarget_exporter.kinds import OPEN_METEO, ProviderKind
from multitarget_exporter.providers import wmo
from multitarget_exporter.providers.answers import (
    error_detail,
    invalid,
    json_answer,
    number,
    text,
)
from multitarget_exporter.providers.regions import country_matches, state_matches
from multitarget_exporter.reading import (
    Failure,
    FailureReason,
    ProbeResult,
    Reading,
    dew_point_celsius,
)
from multitarget_exporter.store import ExpiringStore
from multitarget_exporter.targets import CityId, Coordinates, Location, PlaceName, PostalCode

if TYPE_CHECKING:
    from multitarget_exporter.config import ModuleConfig
    from multitarget_exporter.probelog import ProbeLog


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
)
HOURLY = ("rain", "showers", "snowfall")
DAILY = ("sunrise", "sunset")


GEOCODE_TTL_SECONDS = 86400.0
GEOCODE_MAX_ENTRIES = 10000
# Candidates asked for when a state, a country or a postal code must pick
# among places of one name (there are dozens of Springfields).
_CANDIDATES = 100
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Place:
    """Where the geocoder put a target."""

    name: str
    country: str
    latitude: float
    longitude: float


def forecast_query(latitude: float, longitude: float) -> dict[str, str]:
    """The `/v1/forecast` parameters for one point."""
    return {
        "latitude": repr(latitude),
        "longitude": repr(longitude),
        "current": ",".join(CURRENT),
        "hourly": ",".join(HOURLY),
        "past_hours": "1",
        "forecast_hours": "1",
        "daily": ",".join(DAILY),
        "forecast_days": "1",
        "wind_speed_unit": "ms",
        "timeformat": "unixtime",
        "timezone": "auto",
    }


def search_query(location: PlaceName | PostalCode, language: str) -> dict[str, str]:
    """The `/v1/search` parameters that look for `location`."""
    if isinstance(location, PlaceName):
        narrowed = location.state is not None or location.country is not None
        name = location.name
    else:
        narrowed, name = True, location.code
    return {
        "name": name,
        "count": str(_CANDIDATES if narrowed else 1),
        "language": language.split("_")[0].lower(),
        "format": "json",
    }


def pick_place(document: Any, location: PlaceName | PostalCode) -> Place | None:
    """The first geocoding result that fits the target's state and country, or None."""
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        return None  # Open-Meteo leaves `results` out when nothing matched
    if isinstance(location, PlaceName):
        state, country = location.state, location.country
    else:
        state, country = None, location.country or "US"  # as OpenWeatherMap assumes
    for entry in results[:_CANDIDATES]:
        latitude, longitude = number(entry, "latitude"), number(entry, "longitude")
        if latitude is None or longitude is None:
            continue
        code = text(entry, "country_code") or ""
        if country and not country_matches(country, code, text(entry, "country") or ""):
            continue
        if state and not state_matches(state, code, text(entry, "admin1") or ""):
            continue
        name = (text(entry, "name") or "")[:_MAX_NAME]
        return Place(name, code.upper()[:8], latitude, longitude)
    return None


def _at_hour(document: dict[str, Any], variable: str, now: float | None) -> float | None:
    """An hourly value for the hour ending at or just before `now` (a preceding-hour sum)."""
    hourly = document.get("hourly")
    if not isinstance(hourly, dict):
        return None
    times, values = hourly.get("time"), hourly.get(variable)
    if not isinstance(times, list) or not isinstance(values, list):
        return None
    chosen = None
    for index, moment in enumerate(times[: len(values)]):
        at = number(moment)
        if at is not None and (now is None or at <= now):
            chosen = index
    if chosen is None:
        return None
    value = number(values[chosen])
    return value if value is not None and value >= 0 else None


def _first_daily(document: dict[str, Any], variable: str) -> float | None:
    daily = document.get("daily")
    values = daily.get(variable) if isinstance(daily, dict) else None
    if not isinstance(values, list) or not values:
        return None
    value = number(values[0])
    return value if value else None


def _wind(document: dict[str, Any], variable: str) -> float | None:
    """A wind speed in m/s, converted from the unit the answer declares (m/s if none): we
    ask for m/s, and honour what the answer says all the same."""
    value = number(document.get("current"), variable)
    return units.metres_per_second(value, text(document, "current_units", variable) or "m/s")


def _precipitation(
    document: dict[str, Any], now: float | None
) -> tuple[dict[str, float], dict[str, float]]:
    """The past hour's rain (rain plus showers) and snow (reported in centimetres)."""
    parts = [_at_hour(document, variable, now) for variable in ("rain", "showers")]
    known = [part for part in parts if part is not None]
    rain = units.precipitation({"1h": sum(known) if known else None})
    centimetres = _at_hour(document, "snowfall", now)
    snow = units.precipitation(
        {"1h": None if centimetres is None else centimetres * units.MILLIMETRES_PER_CENTIMETRE}
    )
    return rain, snow


def parse_forecast(
    document: Any, status_code: int = 200, place: Place | None = None
) -> ProbeResult:
    """A decoded `/v1/forecast` answer (asked as `forecast_query` does) as a ProbeResult.

    `place` is the geocoded place for a named target; without it the location
    is the forecast's own grid point, with no name.
    """
    if not isinstance(document, dict):
        return invalid("answer is not a JSON object", status_code)
    if document.get("error") is True:
        reason = str(text(document, "reason") or "")[:200]
        failure = Failure(FailureReason.UPSTREAM_ERROR, f"answer says error: {reason}")
        return ProbeResult(None, failure, status_code)
    current = document.get("current")
    temperature = number(current, "temperature_2m")
    if temperature is None:
        return invalid("answer has no current.temperature_2m", status_code)
    humidity = units.ratio(number(current, "relative_humidity_2m"))
    dew_point = number(current, "dew_point_2m")
    if dew_point is None and humidity is not None:
        dew_point = dew_point_celsius(temperature, humidity)
    sea_level = number(current, "pressure_msl")
    ground = number(current, "surface_pressure")
    code = number(current, "weather_code")
    condition = wmo.condition(int(code)) if code is not None and code.is_integer() else None
    observed = number(current, "time")
    rain, snow = _precipitation(document, observed)
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
        wind_speed_meters_per_second=_wind(document, "wind_speed_10m"),
        wind_gust_meters_per_second=_wind(document, "wind_gusts_10m"),
        wind_direction_degrees=number(current, "wind_direction_10m"),
        cloud_cover_ratio=units.ratio(number(current, "cloud_cover")),
        visibility_meters=number(current, "visibility"),
        rain_meters=rain,
        snow_meters=snow,
        conditions=(condition,) if condition else (),
        observation_timestamp_seconds=observed or None,
        sunrise_timestamp_seconds=_first_daily(document, "sunrise"),
        sunset_timestamp_seconds=_first_daily(document, "sunset"),
        location_name=name,
        location_country=country,
        latitude_degrees=latitude,
        longitude_degrees=longitude,
        utc_offset_seconds=number(document, "utc_offset_seconds"),
    )
    return ProbeResult(reading, None, status_code)


class OpenMeteo:
    """Current conditions from Open-Meteo: one forecast call per probe, geocoding once a day."""

    kind: ClassVar[ProviderKind] = OPEN_METEO
    name: ClassVar[str] = OPEN_METEO.name

    def __init__(self, module: ModuleConfig) -> None:
        self._forecast_url = f"{module.base_url}/v1/forecast"
        geocoding = module.geocoding_url or self.kind.default_geocoding_url
        self._search_url = f"{geocoding}/v1/search"
        self._language = module.language
        # A key is only for Open-Meteo's commercial API (customer-api.open-meteo.com).
        self._key = {"apikey": module.api_key} if module.api_key else {}
        self._secrets = (module.api_key,) if module.api_key else ()
        self._upstream = upstream.Upstream(self.name, self._secrets)
        # Geocoded places for a day, least recently used out past a bound.
        self._places: ExpiringStore[Place] = ExpiringStore(GEOCODE_MAX_ENTRIES)
        self.calls_per_fetch = 1

    def unsupported(self, location: Location) -> str | None:
        if isinstance(location, CityId):
            return (
                "id: targets are OpenWeatherMap city ids; an open_meteo module takes "
                "a place name, zip: or lat,lon"
            )
        return None

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        place = None
        if isinstance(location, Coordinates):
            latitude, longitude = location.latitude, location.longitude
        elif isinstance(location, PlaceName | PostalCode):
            found = self._geocode(location, deadline, log)
            if isinstance(found, ProbeResult):
                return found
            place = found
            latitude, longitude = place.latitude, place.longitude
        else:
            failure = Failure(FailureReason.INVALID_RESPONSE, "target form not supported")
            return ProbeResult(None, failure)
        params = {**forecast_query(latitude, longitude), **self._key}
        exchange = self._upstream.get("forecast", self._forecast_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return document
        return parse_forecast(document, exchange.status_code, place)

    def _geocode(
        self, location: PlaceName | PostalCode, deadline: Deadline, log: ProbeLog
    ) -> Place | ProbeResult:
        key = f"{self._language}|{location.key}"
        cached = self._places.get(key)
        if cached is not None:
            log.debug(
                "place known from geocoding", latitude=cached.latitude, longitude=cached.longitude
            )
            return cached
        params = {**search_query(location, self._language), **self._key}
        exchange = self._upstream.get("geocoding", self._search_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return document
        if isinstance(document, dict) and document.get("error") is True:
            detail = error_detail(exchange.body, self._secrets)
            failure = Failure(FailureReason.UPSTREAM_ERROR, f"geocoding says error: {detail}")
            return ProbeResult(None, failure, exchange.status_code)
        if not isinstance(document, dict):
            return invalid("geocoding answer is not a JSON object", exchange.status_code)
        place = pick_place(document, location)
        if place is None:
            failure = Failure(FailureReason.NOT_FOUND, "geocoding found no such place")
            return ProbeResult(None, failure, exchange.status_code)
        log.debug("geocoded", name=place.name, latitude=place.latitude, longitude=place.longitude)
        self._places.put(key, place, GEOCODE_TTL_SECONDS)
        return place
