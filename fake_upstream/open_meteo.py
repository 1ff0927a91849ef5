"""Open-Meteo's forecast (`/v1/forecast`) and air-quality (`/v1/air-quality`) answers,
from the fake world's weather model, in the shapes the real service
(github.com/open-meteo/open-meteo, `Sources/App`) gives them.

- `current.time` moves in 15-minute steps on the forecast API (`interval` 900) and in
  hours on the air-quality API (`interval` 3600: its data is hourly).
- Hourly arrays start at the current hour less `past_hours` when `past_hours` or
  `forecast_hours` is given (`forecast_hours` then defaults to the maximum, 16 days);
  otherwise they cover the `past_days` + `forecast_days` local days. `daily.time` is
  each local midnight. With a half-hour UTC offset (St. John's) the times stay on
  local whole hours, as upstream.
- Hourly `precipitation`, `rain`, `showers`, `snowfall` (cm: 7 cm of snow is 10 mm of
  water) and `precipitation_probability` at t describe the hour before t.
- A day's figures are those of its hours: instants from 00:00 to 23:00, and the
  amounts that fell within it (stamped 01:00 to 24:00).
- An unknown variable gets the service's own 400, naming its parser's type and echoing
  the whole parameter as sent (`RawRepresentableString.load` in `Helper/`).

Call weight, as the real service counts a request against its limits
(`ForecastapiResult.calculateQueryWeight`):

    weight = max(1, variables / 10 * max(1, days / 14))

`variables` counts every name in `current`, `hourly`, `daily` and `minutely_15`;
`days` is the span of the daily range, `past_days` + `forecast_days` (defaults 7 for
the forecast, 5 for air quality). 15 variables weigh 1.5; 10 variables over 28 days
weigh 2. Every other path weighs 1 a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from fake_upstream.places import (
    HORIZON_DEGREES,
    KELVIN,
    MPH_PER_MPS,
    Hour,
    Place,
    Site,
    World,
    clear_sky_uv,
    condition,
    dew_point,
    model_hour,
    sun_elevation,
    sun_times,
    twentieth,
    wmo_code,
)

Answer = tuple[int, dict[str, Any]]

FORECAST_UNITS = {  # every hourly variable is a current one too
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "apparent_temperature": "°C",
    "dew_point_2m": "°C",
    "precipitation_probability": "%",
    "precipitation": "mm",
    "rain": "mm",
    "showers": "mm",
    "snowfall": "cm",
    "weather_code": "wmo code",
    "cloud_cover": "%",
    "pressure_msl": "hPa",
    "surface_pressure": "hPa",
    "wind_speed_10m": "km/h",
    "wind_direction_10m": "°",
    "wind_gusts_10m": "km/h",
    "visibility": "m",
    "uv_index": "",
    "uv_index_clear_sky": "",
    "is_day": "",
}
DAILY_UNITS = {
    "weather_code": "wmo code",
    "temperature_2m_max": "°C",
    "temperature_2m_min": "°C",
    "sunrise": "iso8601",
    "sunset": "iso8601",
    "uv_index_max": "",
    "precipitation_sum": "mm",
    "precipitation_probability_max": "%",
}
POLLEN = (
    "alder_pollen",
    "birch_pollen",
    "grass_pollen",
    "mugwort_pollen",
    "olive_pollen",
    "ragweed_pollen",
)
AIR_UNITS = {
    "european_aqi": "EAQI",
    "us_aqi": "USAQI",
    **dict.fromkeys(
        (
            "pm10",
            "pm2_5",
            "carbon_monoxide",
            "nitrogen_dioxide",
            "sulphur_dioxide",
            "ozone",
            "ammonia",
            "dust",
        ),
        "μg/m³",  # Greek mu, as the service writes it
    ),
    **dict.fromkeys(POLLEN, "grains/m³"),
}
WIND_UNITS = {
    "kmh": ("km/h", 3.6),
    "ms": ("m/s", 1.0),
    "mph": ("mp/h", MPH_PER_MPS),
    "kn": ("kn", 1.943844),
}
WIND = ("wind_speed_10m", "wind_gusts_10m")
# The type each API parses a variable list into, as its 400 names it.
HOURLY_TYPE = (
    "SurfacePressureAndHeightVariable<VariableAndPreviousDay, "
    "VariableOrSpread<ForecastPressureVariable>, ForecastHeightVariable>"
)
DAILY_TYPE = "ForecastVariableDaily"
AIR_TYPE = "VariableOrDerived<CamsVariable, CamsVariableDerived>"
# CAMS Europe's domain: pollen and ammonia exist only there.
EUROPE = ((30.05, 71.95), (-24.95, 44.95))
# European AQI: concentrations (μg/m³) at the index's band edges 0, 20, 40, 60, 80, 100, 500.
_EUROPEAN = {
    "pm2_5": (0, 10, 20, 25, 50, 75, 800),
    "pm10": (0, 20, 40, 50, 100, 150, 1200),
    "nitrogen_dioxide": (0, 40, 90, 120, 230, 340, 1000),
    "ozone": (0, 50, 100, 130, 240, 380, 800),
    "sulphur_dioxide": (0, 100, 200, 350, 500, 750, 1250),
}
_EUROPEAN_INDEX = (0, 20, 40, 60, 80, 100, 500)
# US AQI from particulates: concentrations at the index's edges 0, 50, 100, 150, 200, 300, 500.
_USA = {
    "pm2_5": (0, 12, 35.4, 55.4, 150.4, 250.4, 500.4),
    "pm10": (0, 54, 154, 254, 354, 424, 604),
}
_USA_INDEX = (0, 50, 100, 150, 200, 300, 500)


def error(reason: str, status: int = 400) -> Answer:
    """Open-Meteo's way of saying no."""
    return status, {"error": True, "reason": reason}


def _names(query: dict[str, str], block: str) -> list[str]:
    return [name for name in query.get(block, "").split(",") if name]


def _count(query: dict[str, str], key: str, default: int) -> int:
    value = query.get(key, "")
    return int(value) if value.isdigit() else default


def call_weight(path: str, query: dict[str, str]) -> float:
    """What one request costs against Open-Meteo's limits (see the module's docstring)."""
    if path not in ("/v1/forecast", "/v1/air-quality"):
        return 1.0
    variables = sum(len(_names(query, b)) for b in ("current", "hourly", "daily", "minutely_15"))
    default_days = 7 if path == "/v1/forecast" else 5
    days = _count(query, "past_days", 0) + _count(query, "forecast_days", default_days)
    return max(1.0, variables / 10 * max(1.0, days / 14))


def _unknown(query: dict[str, str], blocks: dict[str, tuple[dict[str, str], str]]) -> Answer | None:
    """The 400 for the first block that names a variable its API does not have."""
    for block, (known, kind) in blocks.items():
        if any(name not in known for name in _names(query, block)):
            return error(
                f"Data corrupted at path ''. Cannot initialize {kind} "
                f"from invalid String value {query[block]}."
            )
    return None


def _integers(query: dict[str, str], keys: tuple[str, ...]) -> dict[str, int | None] | Answer:
    """The integer parameters, None where absent; a 400 in the words of the service's decoder."""
    found: dict[str, int | None] = {}
    for key in keys:
        try:
            found[key] = int(query[key]) if key in query else None
        except ValueError:
            return error(
                f"Value was not of type 'Int' at path '{key}'. Data found at '{key}' was not Int."
            )
    return found


@dataclass(frozen=True)
class _Point:
    """The point asked about, and the time zone the answer is written in."""

    latitude: float
    longitude: float
    place: Place | None
    site: Site
    offset: int
    zone: str

    @property
    def abbreviation(self) -> str:
        if self.offset == 0:
            return "GMT"
        hours, rest = divmod(abs(self.offset), 3600)
        minutes = f":{rest // 60:02d}" if rest else ""
        return f"GMT{'+' if self.offset > 0 else '-'}{hours}{minutes}"


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _point(query: dict[str, str], world: World) -> _Point | Answer:
    latitude, longitude = _float(query.get("latitude")), _float(query.get("longitude"))
    if latitude is None or longitude is None:
        return error("Parameter 'latitude' and 'longitude' are required")
    if not -90 <= latitude <= 90:
        return error(f"Latitude must be in range of -90 to 90°. Given: {latitude}.")
    if not -180 <= longitude <= 180:
        return error(f"Longitude must be in range of -180 to 180°. Given: {longitude}.")
    place = world.nearest(latitude, longitude)
    site = world.site(place, (latitude, longitude))
    zone = query.get("timezone", "GMT")
    if place is not None and zone in ("auto", place.data.get("tz_name")):
        return _Point(latitude, longitude, place, site, site.utc_offset, place.data["tz_name"])
    return _Point(latitude, longitude, place, site, 0, "GMT")


@dataclass(frozen=True)
class _Times:
    """The moments an answer covers: hours and local days, as read from the model and as shown."""

    hours: list[int]  # whole UTC hours, read from the model
    days: list[int]  # each local day's first hour, read from the model
    shift: int  # shown = read + shift (non-zero only for half-hour UTC offsets)


def _times(
    counts: dict[str, int | None], now: float, offset: int, default: int, most: int
) -> _Times | Answer:
    """The hourly and daily ranges as the service computes them (`getTimerange2`)."""
    whole = int(offset / 3600) * 3600  # toward zero, as Swift divides
    past_days = counts["past_days"] or 0
    days = default if counts["forecast_days"] is None else counts["forecast_days"]
    if not 0 <= days <= most:  # sic: upstream reports the maximum as the value given
        return error(f"Forecast days is invalid. Allowed range 0 to {most}. Given {most}.")
    if not 0 <= past_days <= 92:
        return error(f"Past days is invalid. Allowed range 0 to 92. Given {past_days}.")
    first_day = (int(now) + whole) // 86400 * 86400 - past_days * 86400
    local_days = [first_day + k * 86400 for k in range(past_days + days)]
    past_hours, forecast_hours = counts["past_hours"], counts["forecast_hours"]
    if past_hours is None and forecast_hours is None:
        local_hours = [first_day + k * 3600 for k in range(len(local_days) * 24)]
    else:
        past_hours = past_hours or 0
        forecast_hours = most * 24 if forecast_hours is None else forecast_hours
        if not 0 <= forecast_hours <= most * 24:
            return error(
                f"Forecast days is invalid. Allowed range 0 to {most * 24}. Given {most * 24}."
            )
        if not 0 <= past_hours <= 92 * 24:
            return error(f"Past days is invalid. Allowed range 0 to {92 * 24}. Given {past_hours}.")
        first_hour = (int(now) + whole) // 3600 * 3600 - past_hours * 3600
        local_hours = [first_hour + k * 3600 for k in range(past_hours + forecast_hours)]
    return _Times(
        hours=[h - whole for h in local_hours],
        days=[d - whole for d in local_days],
        shift=whole - offset,
    )


def _stamp(moment: int, point: _Point, unixtime: bool, date: bool = False) -> int | str:
    if unixtime:
        return moment
    layout = "%Y-%m-%d" if date else "%Y-%m-%dT%H:%M"
    return time.strftime(layout, time.gmtime(moment + point.offset))


def _envelope(point: _Point, elevation: float) -> dict[str, Any]:
    return {
        "latitude": point.latitude,
        "longitude": point.longitude,
        "generationtime_ms": 0.05,
        "utc_offset_seconds": point.offset,
        "timezone": point.zone,
        "timezone_abbreviation": point.abbreviation,
        "elevation": elevation,
    }


def _model(site: Site) -> Callable[[int], Hour]:
    """`model_hour` for one site, each hour computed once per answer."""
    hours: dict[int, Hour] = {}

    def at(moment: int) -> Hour:
        if moment not in hours:
            hours[moment] = model_hour(site, moment)
        return hours[moment]

    return at


def _current(site: Site, now: float) -> dict[str, Any]:
    """Every current variable: the place's weather now, the model for what that lacks."""
    weather = site.weather
    main, wind = weather["main"], weather.get("wind") or {}
    hour = model_hour(site, int(now) // 3600 * 3600)
    temperature = round(main["temp"] - KELVIN, 1)
    rain = (weather.get("rain") or {}).get("1h", 0.0)
    snow = (weather.get("snow") or {}).get("1h", 0.0)
    cloud = (weather.get("clouds") or {}).get("all", 0)
    elevation = -90.0 if site.polar_night else sun_elevation(site.latitude, site.longitude, now)
    return {
        "temperature_2m": temperature,
        "relative_humidity_2m": main["humidity"],
        "apparent_temperature": round(main.get("feels_like", main["temp"]) - KELVIN, 1),
        "dew_point_2m": dew_point(temperature, main["humidity"]),
        "precipitation_probability": round(hour.pop * 100),
        "precipitation": round(rain + snow, 2),
        "rain": rain,
        "showers": 0.0,
        "snowfall": round(snow * 0.7, 2),
        "weather_code": wmo_code(weather["weather"][0]["id"]),
        "cloud_cover": cloud,
        "pressure_msl": float(main.get("sea_level", main["pressure"])),
        "surface_pressure": float(main.get("grnd_level", main["pressure"])),
        "wind_speed_10m": wind.get("speed", 0.0),
        "wind_direction_10m": wind.get("deg", 0),
        "wind_gusts_10m": wind.get("gust", wind.get("speed", 0.0)),
        "visibility": float(weather.get("visibility", hour.visibility)),
        "uv_index": twentieth(clear_sky_uv(elevation) * (1 - 0.6 * cloud / 100)),
        "uv_index_clear_sky": twentieth(clear_sky_uv(elevation)),
        "is_day": int(elevation > HORIZON_DEGREES),
    }


def _hourly(variable: str, at: Callable[[int], Hour], moment: int) -> float | int:
    """One hourly value at `moment`: an instant, or the hour before it for amounts."""
    hour, before = at(moment), at(moment - 3600)
    instants: dict[str, float | int] = {
        "temperature_2m": hour.temperature,
        "relative_humidity_2m": hour.humidity,
        "apparent_temperature": hour.apparent_temperature,
        "dew_point_2m": hour.dew_point,
        "cloud_cover": hour.cloud_cover,
        "pressure_msl": hour.pressure_msl,
        "surface_pressure": hour.surface_pressure,
        "wind_speed_10m": hour.wind_speed,
        "wind_direction_10m": hour.wind_direction,
        "wind_gusts_10m": hour.wind_gusts,
        "visibility": hour.visibility,
        "uv_index": hour.uv_index,
        "uv_index_clear_sky": hour.uv_index_clear_sky,
        "is_day": hour.is_day,
        "precipitation_probability": round(before.pop * 100),
        "precipitation": before.precipitation,
        "rain": before.rain,
        "showers": before.showers,
        "snowfall": round(before.snow * 0.7, 2),
        # Open-Meteo documents the code as an instant: the weather as the hour begins.
        "weather_code": wmo_code(condition(hour.rain, hour.showers, hour.snow, hour.cloud_cover)),
    }
    return instants[variable]


def _daily(variable: str, at: Callable[[int], Hour], day: int) -> float | int:
    """One daily figure for the local day whose first hour is `day`."""
    instants = range(day, day + 86400, 3600)
    sums = range(day + 3600, day + 86400 + 3600, 3600)
    if variable == "temperature_2m_max":
        return max(_hourly("temperature_2m", at, t) for t in instants)
    if variable == "temperature_2m_min":
        return min(_hourly("temperature_2m", at, t) for t in instants)
    if variable == "uv_index_max":
        return max(_hourly("uv_index", at, t) for t in instants)
    if variable == "precipitation_sum":
        return round(sum(_hourly("precipitation", at, t) for t in sums), 1)
    if variable == "precipitation_probability_max":
        return max(_hourly("precipitation_probability", at, t) for t in sums)
    return max(_hourly("weather_code", at, t) for t in sums)  # the day's worst weather


def forecast(query: dict[str, str], world: World, now: float | None = None) -> Answer:
    """`/v1/forecast`'s answer, or its 400."""
    now = time.time() if now is None else now
    counts = _integers(query, ("past_days", "forecast_days", "past_hours", "forecast_hours"))
    if isinstance(counts, tuple):
        return counts
    wind_unit = query.get("wind_speed_unit", "kmh")
    if wind_unit not in WIND_UNITS:
        return error(f"Cannot initialize WindspeedUnit from invalid String value {wind_unit}")
    refused = _unknown(
        query,
        {
            "current": (FORECAST_UNITS, HOURLY_TYPE),
            "minutely_15": (FORECAST_UNITS, HOURLY_TYPE),
            "hourly": (FORECAST_UNITS, HOURLY_TYPE),
            "daily": (DAILY_UNITS, DAILY_TYPE),
        },
    )
    if refused:
        return refused
    point = _point(query, world)
    if isinstance(point, tuple):
        return point
    times = _times(counts, now, point.offset, default=7, most=16)
    if isinstance(times, tuple):
        return times
    unixtime = query.get("timeformat") == "unixtime"
    time_unit = "unixtime" if unixtime else "iso8601"
    wind_label, factor = WIND_UNITS[wind_unit]

    def unit(variable: str, units: dict[str, str]) -> str:
        if variable in WIND:
            return wind_label
        return time_unit if variable in ("sunrise", "sunset") else units[variable]

    def in_unit(variable: str, value: Any) -> Any:
        return round(value * factor, 1) if variable in WIND and value is not None else value

    at = _model(point.site)
    elevation = float(point.place.data.get("elevation", 0)) if point.place else 0.0
    answer = _envelope(point, elevation)
    if current := _names(query, "current"):
        values = _current(point.site, now)
        answer["current_units"] = {"time": time_unit, "interval": "seconds"}
        answer["current_units"].update({v: unit(v, FORECAST_UNITS) for v in current})
        answer["current"] = {
            "time": _stamp(int(now) // 900 * 900, point, unixtime),
            "interval": 900,
        }
        answer["current"].update({v: in_unit(v, values[v]) for v in current})
    if hourly := _names(query, "hourly"):
        answer["hourly_units"] = {"time": time_unit, **{v: unit(v, FORECAST_UNITS) for v in hourly}}
        answer["hourly"] = {"time": [_stamp(t + times.shift, point, unixtime) for t in times.hours]}
        for variable in hourly:
            answer["hourly"][variable] = [
                in_unit(variable, _hourly(variable, at, t)) for t in times.hours
            ]
    if daily := _names(query, "daily"):
        shown = [day + times.shift for day in times.days]
        answer["daily_units"] = {"time": time_unit, **{v: unit(v, DAILY_UNITS) for v in daily}}
        answer["daily"] = {"time": [_stamp(day, point, unixtime, date=True) for day in shown]}
        suns = [sun_times(point.site, day) for day in shown]
        for variable in daily:
            if variable in ("sunrise", "sunset"):
                index = 0 if variable == "sunrise" else 1
                answer["daily"][variable] = [
                    None if sun is None else _stamp(sun[index], point, unixtime) for sun in suns
                ]
            else:
                answer["daily"][variable] = [_daily(variable, at, day) for day in times.days]
    return 200, answer


def _index(value: float, concentrations: tuple[float, ...], indexes: tuple[int, ...]) -> float:
    for (low, high), (start, end) in zip(pairwise(concentrations), pairwise(indexes), strict=True):
        if value <= high:
            return start + (value - low) / (high - low) * (end - start)
    return indexes[-1]


def _air(point: _Point, world: World) -> dict[str, Any]:
    """Every air-quality variable at the point: pollen and ammonia only inside Europe."""
    place = point.place
    air = (place.data.get("air") if place else None) or world.default_air
    parts = air["components"]
    (south, north), (west, east) = EUROPE
    europe = south <= point.latitude <= north and west <= point.longitude <= east
    values: dict[str, Any] = {
        "pm10": parts["pm10"],
        "pm2_5": parts["pm2_5"],
        "carbon_monoxide": parts["co"],
        "nitrogen_dioxide": parts["no2"],
        "sulphur_dioxide": parts["so2"],
        "ozone": parts["o3"],
        "ammonia": parts["nh3"] if europe else None,
        "dust": float(place.data.get("dust", 0.0)) if place else 0.0,
    }
    values["european_aqi"] = round(
        max(_index(values[k], bands, _EUROPEAN_INDEX) for k, bands in _EUROPEAN.items())
    )
    values["us_aqi"] = round(max(_index(values[k], bands, _USA_INDEX) for k, bands in _USA.items()))
    pollen = (place.data.get("pollen") or {}) if place and europe else {}
    values.update({species: pollen.get(species) for species in POLLEN})
    return values


def air_quality(query: dict[str, str], world: World, now: float | None = None) -> Answer:
    """`/v1/air-quality`'s answer, or its 400."""
    now = time.time() if now is None else now
    counts = _integers(query, ("past_days", "forecast_days", "past_hours", "forecast_hours"))
    if isinstance(counts, tuple):
        return counts
    refused = _unknown(query, {b: (AIR_UNITS, AIR_TYPE) for b in ("current", "hourly")})
    if refused:
        return refused
    point = _point(query, world)
    if isinstance(point, tuple):
        return point
    times = _times(counts, now, point.offset, default=5, most=7)
    if isinstance(times, tuple):
        return times
    unixtime = query.get("timeformat") == "unixtime"
    time_unit = "unixtime" if unixtime else "iso8601"
    values = _air(point, world)
    elevation = float(point.place.data.get("elevation", 0)) if point.place else 0.0
    answer = _envelope(point, elevation)
    if current := _names(query, "current"):
        answer["current_units"] = {"time": time_unit, "interval": "seconds"}
        answer["current_units"].update({v: AIR_UNITS[v] for v in current})
        answer["current"] = {
            "time": _stamp(int(now) // 3600 * 3600, point, unixtime),
            "interval": 3600,
        }
        answer["current"].update({v: values[v] for v in current})
    if hourly := _names(query, "hourly"):
        answer["hourly_units"] = {"time": time_unit, **{v: AIR_UNITS[v] for v in hourly}}
        answer["hourly"] = {"time": [_stamp(t + times.shift, point, unixtime) for t in times.hours]}
        answer["hourly"].update({v: [values[v]] * len(times.hours) for v in hourly})
    return 200, answer
