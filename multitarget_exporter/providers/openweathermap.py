"""OpenWeatherMap's current weather API (`/data/2.5/weather`) into a Reading.

Asks with `units=metric` (Celsius, m/s) and converts the rest into base
units: hPa to Pa, % to ratios, mm of rain and snow (water, as OWM measures
both) to metres. Two more calls, each only when the module asks for it: with
`forecast`, the free 5-day/3-hour forecast (`/data/2.5/forecast`) gives one
step per horizon; with `air_quality`, `/data/2.5/air_pollution` adds the air
quality index and the pollutants (micrograms per cubic metre to grams). If
either call fails, the weather is still served, without that part.

On a miss the calls go out side by side, not one after another: once the
weather call has passed the module's gate (budget, Retry-After, breaker), the
forecast, which takes the target's own query (`q`, `id`, `zip` or
`lat`/`lon`), starts beside it; so does the air call for a `lat,lon` target,
while for other targets it waits for the coordinates the weather answer
gives. A probe then takes about its slowest call, not their sum. Each runs on
`offload.start_background` (a greenlet under gevent, a thread otherwise)
under the probe's one deadline: the client's watchdog cuts an exchange still
running then, and the probe waits for every call it started until the
deadline and a short grace, then answers without what has not come.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

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
from multitarget_exporter.runtime import offload
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
# How long past the deadline a probe waits for a call beside it to hand back its outcome:
# the client's watchdog cuts the call's socket at the deadline, so it ends about then.
BESIDE_GRACE_SECONDS = 0.25

_log = logging.getLogger(__name__)

T = TypeVar("T")
# A forecast's steps, or an air answer's index and pollutants; or why the call gave none.
_Steps = tuple[ForecastStep, ...]
_Air = tuple[float, dict[str, float]]


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


class _Beside(Generic[T]):
    """One call run beside the probe's own (`offload.start_background`: a greenlet under
    gevent, a daemon thread otherwise), and awaited until the probe's end. It gives its
    outcome or why it has none, as a string; an error raised in it is such a reason, so it
    never replaces the weather call's own outcome."""

    __slots__ = ("_call", "_done", "_outcome")

    def __init__(self, call: Callable[[], T | str], name: str) -> None:
        self._call = call
        self._done = threading.Event()  # gevent's under gevent: waiting yields to the loop
        self._outcome: T | str = "timeout: the call had not ended by the deadline"
        offload.start_background(self._run, name)

    def _run(self) -> None:
        try:
            self._outcome = self._call()
        except Exception as error:
            _log.exception("a call beside the weather call raised")
            self._outcome = f"internal error: {type(error).__name__}"
        finally:
            self._done.set()

    def outcome(self, until: float) -> T | str:
        """The call's outcome, or why there is none by `until` (a `time.monotonic()`)."""
        self._done.wait(max(until - time.monotonic(), 0.0))
        return self._outcome


class OpenWeatherMap:
    """Current weather from OpenWeatherMap: one call per probe, and one more each for
    a forecast and for air quality, side by side with it."""

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
        query = query_for(location)
        # The weather call passes the gate first: a budget's last call, a Retry-After or
        # an open breaker stops the probe before any call beside it goes out.
        refused = self._upstream.admit("weather", self._url, log)
        forecast: _Beside[_Steps] | None = None
        air: _Beside[_Air] | None = None
        if refused is None and self._forecast_url:  # it takes the weather call's query
            forecast = _Beside(partial(self._forecast, query, deadline, log), "owm-forecast")
        if refused is None and self._air_url and isinstance(location, Coordinates):
            call = partial(self._air, location.latitude, location.longitude, deadline, log)
            air = _Beside(call, "owm-air")  # its point is known before the weather answer
        params = {**query, **self._common}
        exchange = refused or self._upstream.get(
            "weather", self._url, params, deadline, log, admitted=True
        )
        # One end for every call beside it: the deadline, and a short grace for the
        # client's watchdog to cut a call still running then.
        until = time.monotonic() + max(deadline.remaining(), 0.0) + BESIDE_GRACE_SECONDS
        document = json_answer(exchange, self._secrets)
        result = (
            document
            if isinstance(document, ProbeResult)
            else parse_current(document, exchange.status_code)
        )
        reading = result.reading
        if reading is None:
            for started in (forecast, air):  # the probe waits for every call it started
                if started is not None:
                    started.outcome(until)
            return result
        if self._air_url and air is None:  # the weather answer gave the point
            if reading.latitude_degrees is None or reading.longitude_degrees is None:
                why = "the weather answer has no coordinates to ask about"
                reading = left_out(reading, Part.AIR_QUALITY, why, log)
            else:
                latitude, longitude = reading.latitude_degrees, reading.longitude_degrees
                air = _Beside(partial(self._air, latitude, longitude, deadline, log), "owm-air")
        if forecast is not None:
            reading = self._with_forecast(reading, forecast.outcome(until), log)
        if air is not None:
            reading = self._with_air(reading, air.outcome(until), log)
        return replace(result, reading=reading)

    def _forecast(self, query: dict[str, str], deadline: Deadline, log: ProbeLog) -> _Steps | str:
        """The forecast's step per horizon for the target's query, or why there are none."""
        params = {**query, **self._common, "cnt": str(steps_needed(self._horizons))}
        exchange = self._upstream.get("forecast", self._forecast_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return why_not(document)
        parsed = parse_forecast(document, self._horizons, time.time())
        if isinstance(parsed, str):
            return f"invalid_response: {parsed}"
        found, beyond = parsed
        if beyond:
            log.info("horizons past the forecast's steps left out", horizons=",".join(beyond))
        return found

    def _air(
        self, latitude: float, longitude: float, deadline: Deadline, log: ProbeLog
    ) -> _Air | str:
        """The air quality at a point, or why there is none."""
        params = {"lat": repr(latitude), "lon": repr(longitude), "appid": self._common["appid"]}
        exchange = self._upstream.get("air_pollution", self._air_url, params, deadline, log)
        document = json_answer(exchange, self._secrets)
        if isinstance(document, ProbeResult):
            return why_not(document)
        parsed = parse_air(document)
        return f"invalid_response: {parsed}" if isinstance(parsed, str) else parsed

    @staticmethod
    def _with_forecast(reading: Reading, outcome: _Steps | str, log: ProbeLog) -> Reading:
        """The reading with a step per horizon, or marked as missing them."""
        if isinstance(outcome, str):
            return left_out(reading, Part.FORECAST, outcome, log)
        return replace(reading, forecast=outcome)

    @staticmethod
    def _with_air(reading: Reading, outcome: _Air | str, log: ProbeLog) -> Reading:
        """The reading with its air quality, or marked as missing it (the weather still counts)."""
        if isinstance(outcome, str):
            return left_out(reading, Part.AIR_QUALITY, outcome, log)
        index, pollutants = outcome
        return replace(
            reading, air_quality_index=index, air_pollutants_grams_per_cubic_meter=pollutants
        )
