"""OpenWeatherMap's current weather API (`/data/2.5/weather`) into a Reading.

Asks with `units=metric` (Celsius, m/s) and converts the rest into base
units: hPa to Pa, % to ratios, mm of rain and snow to metres. Two more calls
for the reading's coordinates, each only when the module asks for it: with
`forecast`, the free 5-day/3-hour forecast (`/data/2.5/forecast`) gives one
step per horizon; with `air_quality`, `/data/2.5/air_pollution` adds the air
quality index and the pollutants (micrograms per cubic metre to grams). If
either call fails, the weather is still served, without that part.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from multitarget_exporter.config.provider_kinds import OPENWEATHERMAP, ProviderKind
from multitarget_exporter.model import units
from multitarget_exporter.model.deadline import Deadline
from multitarget_exporter.model.reading import (
    Condition,
    Failure,
    ForecastStep,
    Part,
    ProbeResult,
    Reading,
    dew_point_celsius,
)
from multitarget_exporter.model.targets import (
    CityId,
    Coordinates,
    Location,
    PlaceName,
    PostalCode,
    StationId,
)
from multitarget_exporter.providers import steps
from multitarget_exporter.upstream import client as upstream
from multitarget_exporter.upstream.answers import (
    invalid,
    json_answer,
    left_out,
    number,
    text,
    why_not,
)
from multitarget_exporter.upstream.client import reason_for_status
from multitarget_exporter.upstream.gate import Gate

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import Horizon, ModuleConfig
    from multitarget_exporter.runtime.probelog import ProbeLog
    from multitarget_exporter.upstream.revalidation import Validators

POLLUTANTS = ("co", "no", "no2", "o3", "so2", "pm2_5", "pm10", "nh3")
_MAX_CONDITIONS = 16
_MAX_WORDS = 64  # a condition's `main` and `description`: label values stay short
STEP_SECONDS = 3 * 3600.0  # the free forecast's steps
STEP_WINDOW = "3h"
MAX_STEPS = 40  # five days of them: what the free forecast holds


def query_for(location: Location) -> dict[str, str]:
    """The query parameters that name `location` for `/data/2.5/weather`."""
    match location:
        case PlaceName(name=name, state=state, country=country):
            return {"q": ",".join(part for part in (name, state, country) if part)}
        case CityId(city_id=city_id):
            return {"id": str(city_id)}
        case Coordinates(latitude=latitude, longitude=longitude):
            return {"lat": repr(latitude), "lon": repr(longitude)}
        case PostalCode(code=code, country=country):
            return {"zip": f"{code},{country}" if country else code}
    raise TypeError(f"not a Location: {location!r}")


def _conditions(document: Any) -> tuple[Condition, ...]:
    entries = document.get("weather") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return ()
    conditions: dict[Condition, None] = {}  # ordered and without duplicates
    for entry in entries[:_MAX_CONDITIONS]:
        code = number(entry, "id")
        if code is None or not code.is_integer():
            continue
        main = (text(entry, "main") or "")[:_MAX_WORDS]
        condition = Condition(int(code), main, (text(entry, "description") or "")[:_MAX_WORDS])
        conditions[condition] = None
    return tuple(conditions)


def _timestamp(document: dict[str, Any], *path: str) -> float | None:
    """A Unix time; OWM writes 0 where it has none (polar day and night)."""
    value = number(document, *path)
    return value if value else None


def parse_current(document: Any, status_code: int = 200) -> ProbeResult:
    """A decoded `/data/2.5/weather` answer (asked with units=metric) as a ProbeResult."""
    if not isinstance(document, dict):
        return invalid("answer is not a JSON object", status_code)
    # `cod` is a number in some answers and a string in others; an error code
    # that came with a 2xx status is still an error.
    code = str(document.get("cod", "200")).strip()
    reason = reason_for_status(int(code)) if code.isdigit() else None
    if reason is not None:
        message = str(text(document, "message") or "")[:200]
        return ProbeResult(None, Failure(reason, f"answer says cod {code}: {message}"), status_code)
    temperature = number(document, "main", "temp")
    if temperature is None:
        return invalid("answer has no main.temp", status_code)
    humidity = units.ratio(number(document, "main", "humidity"))
    sea_level = number(document, "main", "sea_level")
    if sea_level is None:
        sea_level = number(document, "main", "pressure")
    ground = number(document, "main", "grnd_level")
    reading = Reading(
        provider=OpenWeatherMap.name,
        temperature_celsius=temperature,
        apparent_temperature_celsius=number(document, "main", "feels_like"),
        temperature_min_celsius=number(document, "main", "temp_min"),
        temperature_max_celsius=number(document, "main", "temp_max"),
        dew_point_celsius=None if humidity is None else dew_point_celsius(temperature, humidity),
        relative_humidity_ratio=humidity,
        pressure_pascals=units.pascals(sea_level),
        ground_pressure_pascals=units.pascals(ground),
        wind_speed_meters_per_second=number(document, "wind", "speed"),
        wind_gust_meters_per_second=number(document, "wind", "gust"),
        wind_direction_degrees=number(document, "wind", "deg"),
        cloud_cover_ratio=units.ratio(number(document, "clouds", "all")),
        visibility_meters=number(document, "visibility"),
        rain_meters=units.precipitation({w: number(document, "rain", w) for w in ("1h", "3h")}),
        snow_meters=units.precipitation({w: number(document, "snow", w) for w in ("1h", "3h")}),
        conditions=_conditions(document),
        observation_timestamp_seconds=_timestamp(document, "dt"),
        sunrise_timestamp_seconds=_timestamp(document, "sys", "sunrise"),
        sunset_timestamp_seconds=_timestamp(document, "sys", "sunset"),
        location_name=text(document, "name") or "",
        location_country=text(document, "sys", "country") or "",
        latitude_degrees=number(document, "coord", "lat"),
        longitude_degrees=number(document, "coord", "lon"),
        utc_offset_seconds=number(document, "timezone"),
    )
    return ProbeResult(reading, None, status_code)


def parse_air(document: Any) -> tuple[float, dict[str, float]] | str:
    """A decoded `/data/2.5/air_pollution` answer as (index, grams per m³), or why not."""
    entries = document.get("list") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        return "answer has no list[0]"
    index = number(entries[0], "main", "aqi")
    if index is None or not 1 <= index <= 5:
        return "answer has no aqi from 1 to 5"
    pollutants = {}
    for pollutant in POLLUTANTS:  # only the known ones: label values stay bounded
        micrograms = number(entries[0], "components", pollutant)
        if micrograms is not None and micrograms >= 0:
            pollutants[pollutant] = units.grams(micrograms)
    return index, pollutants


def steps_needed(horizons: tuple[Horizon, ...]) -> int:
    """How many forecast entries the horizons need: the first lies up to 3 h ahead, and a
    step's precipitation is stamped on the entry after it; one more for clocks that differ."""
    longest = max(horizon.seconds for horizon in horizons)
    return min(MAX_STEPS, math.floor(longest / STEP_SECONDS) + 3)


def _precipitation_over(entry: Any) -> float | None:
    """The metres of rain and snow an entry says fell in the 3 hours before it: 0 when it
    names none (OpenWeatherMap leaves out a dry step's `rain`, or sends `{}`), None when
    it names one but gives no amount (`null`, a negative or a word)."""
    if not isinstance(entry, dict):
        return None
    total = 0.0
    for kind in ("rain", "snow"):
        if kind not in entry:
            continue
        block = entry[kind]
        if isinstance(block, dict) and STEP_WINDOW not in block:
            continue
        millimetres = units.amount(number(entry, kind, STEP_WINDOW))
        if millimetres is None:
            return None
        total += millimetres
    return units.metres(total)


def parse_forecast(
    document: Any, horizons: tuple[Horizon, ...], now: float
) -> tuple[tuple[ForecastStep, ...], list[str]] | str:
    """A decoded `/data/2.5/forecast` answer (units=metric) as one step per horizon it
    reaches (`now` is when the answer came) and the horizons it does not reach, or why
    it cannot be read. A step's `pop` is its own; its precipitation is stamped on the
    entry 3 hours later."""
    entries = document.get("list") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        return "answer has no list of steps"
    entries = entries[:MAX_STEPS]
    times = [number(entry, "dt") for entry in entries]
    if all(moment is None for moment in times):
        return "answer's steps have no dt"
    if not steps.ascending(times):
        return "answer's steps are not in time order"

    def step(index: int, label: str) -> ForecastStep:
        entry = entries[index]
        # The sum for this step is stamped on the entry 3 h later; without one, unknown.
        following = steps.stamped_after(times, index, STEP_SECONDS)
        precipitation = None if following is None else _precipitation_over(entries[following])
        return ForecastStep(
            horizon=label,
            temperature_celsius=number(entry, "main", "temp"),
            apparent_temperature_celsius=number(entry, "main", "feels_like"),
            relative_humidity_ratio=units.fraction(number(entry, "main", "humidity")),
            precipitation_probability_ratio=units.probability(number(entry, "pop")),
            precipitation_meters=precipitation,
            window=STEP_WINDOW,
            wind_speed_meters_per_second=number(entry, "wind", "speed"),
            wind_gust_meters_per_second=number(entry, "wind", "gust"),
            cloud_cover_ratio=units.fraction(number(entry, "clouds", "all")),
            conditions=_conditions(entry),
        )

    found, beyond = steps.at_horizons(times, horizons, now, STEP_SECONDS, step)
    return tuple(found), beyond


class OpenWeatherMap:
    """Current weather from OpenWeatherMap: one call per probe, and one more each for
    a forecast and for air quality."""

    kind: ClassVar[ProviderKind] = OPENWEATHERMAP
    name: ClassVar[str] = OPENWEATHERMAP.name

    def __init__(
        self, module: ModuleConfig, validators: Validators | None = None, gate: Gate | None = None
    ) -> None:
        self._url = f"{module.base_url}/data/2.5/weather"
        self._air_url = f"{module.base_url}/data/2.5/air_pollution" if module.air_quality else ""
        self._forecast_url = f"{module.base_url}/data/2.5/forecast" if module.forecast else ""
        self._horizons = module.forecast
        self._secrets = (module.api_key,) if module.api_key else ()
        self._upstream = upstream.Upstream(self.name, self._secrets, gate)
        self._common = {"units": "metric", "lang": module.language, "appid": module.api_key}
        self.calls_per_fetch = 1 + bool(module.air_quality) + bool(module.forecast)

    def stored(self, location: Location) -> ProbeResult | None:
        return None  # every reading is asked for: the cache alone keeps them

    def unsupported(self, location: Location) -> str | None:
        if isinstance(location, StationId):
            return (
                "station: targets name a weather station, for nws and bright_sky modules; "
                "an openweathermap module takes a place name, id:, zip: or lat,lon"
            )
        return None  # every other target form has an OWM query

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        params = {**query_for(location), **self._common}
        exchange = self._upstream.get("weather", self._url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return document
        result = parse_current(document, exchange.status_code)
        reading = result.reading
        if reading is None:
            return result
        if self._forecast_url:
            reading = self._with_forecast(reading, deadline, log)
        if self._air_url:
            reading = self._with_air(reading, deadline, log)
        return replace(result, reading=reading)

    def _coordinates(self, reading: Reading) -> dict[str, str] | None:
        """The query for the reading's own point, where later calls ask about it."""
        if reading.latitude_degrees is None or reading.longitude_degrees is None:
            return None
        return {
            "lat": repr(reading.latitude_degrees),
            "lon": repr(reading.longitude_degrees),
            "appid": self._common["appid"],
        }

    def _with_forecast(self, reading: Reading, deadline: Deadline, log: ProbeLog) -> Reading:
        """The reading with a step per horizon, or marked as missing them."""
        point = self._coordinates(reading)
        if point is None:
            return left_out(reading, Part.FORECAST, "the weather answer has no coordinates", log)
        params = {**point, **self._common, "cnt": str(steps_needed(self._horizons))}
        exchange = self._upstream.get("forecast", self._forecast_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return left_out(reading, Part.FORECAST, why_not(document), log)
        parsed = parse_forecast(document, self._horizons, time.time())
        if isinstance(parsed, str):
            return left_out(reading, Part.FORECAST, f"invalid_response: {parsed}", log)
        found, beyond = parsed
        if beyond:
            log.info("horizons past the forecast's steps left out", horizons=",".join(beyond))
        return replace(reading, forecast=found)

    def _with_air(self, reading: Reading, deadline: Deadline, log: ProbeLog) -> Reading:
        """The reading with its air quality, or marked as missing it (the weather still counts)."""
        params = self._coordinates(reading)
        if params is None:
            why = "the weather answer has no coordinates to ask about"
            return left_out(reading, Part.AIR_QUALITY, why, log)
        exchange = self._upstream.get("air_pollution", self._air_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return left_out(reading, Part.AIR_QUALITY, why_not(document), log)
        parsed = parse_air(document)
        if isinstance(parsed, str):
            return left_out(reading, Part.AIR_QUALITY, f"invalid_response: {parsed}", log)
        index, pollutants = parsed
        return replace(
            reading, air_quality_index=index, air_pollutants_grams_per_cubic_meter=pollutants
        )
