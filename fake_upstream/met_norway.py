"""MET Norway's Locationforecast 2.0 (`/weatherapi/locationforecast/2.0/complete` and
`/compact`), from the fake world's weather model, in the shapes the real service gives
(docs.api.met.no: ForecastJSON, locationforecast/datamodel, GettingStarted).

- The time series starts at the current whole hour (UTC) and steps hourly up to the
  first 00/06/12/18 UTC at least 54 hours ahead (the short-range models reach 60 hours:
  55 to 60 hourly steps), then every 6 hours to about 9.5 days (83 to 89 steps in all).
- A step has a period only if the series goes on that long ("no `next_X_hours` unless
  there are X more hours"), and `next_1_hours` only where the next step is an hour
  later: the 6-hourly steps have none, the last step has nothing but `instant`.
- Instants at t are the model at t, so they equal Open-Meteo's hourly values at t.
  `next_1_hours` at t is the model hour from t, which Open-Meteo stamps t + 1 h.
  `next_6_hours` sums (and takes the extremes of) the model hours t to t + 5 h.
- `compact` keeps the variables the data model marks bold: no dew point, fog, UV,
  gust, probabilities or 6-hour temperature extremes, and no details for 12 hours.
- Symbols follow the model: cloud as OpenWeatherMap's bands; the phase as MET's
  weather_symbol library reads air temperature (snow at or below 0.5 °C, sleet to
  1.5 °C, rain above); showers where the place is convective, thunder with heavy
  showers or where the place's model says so (`thunder`). Codes with variants get
  `_day`, `_night` or, inside the polar circles with the sun less than 6° below the
  horizon, `_polartwilight`, for the sun at the middle of the period. Two codes are
  misspelt upstream, and so here: `lightssleetshowersandthunder`,
  `lightssnowshowersandthunder`.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from fake_upstream.places import (
    HORIZON_DEGREES,
    Hour,
    Site,
    World,
    condition,
    model_hour,
    sun_elevation,
)

PATHS = {
    "/weatherapi/locationforecast/2.0/complete": True,  # path -> complete?
    "/weatherapi/locationforecast/2.0/compact": False,
}
HOUR = 3600
SHORT_RANGE = 54 * HOUR  # hourly steps reach the first 6-hourly time from here
LONG_RANGE = 228 * HOUR  # about 9.5 days
POLAR_CIRCLE = 66.56
TWILIGHT_DEGREES = -6.0
COMPACT_UNITS = {
    "air_pressure_at_sea_level": "hPa",
    "air_temperature": "celsius",
    "cloud_area_fraction": "%",
    "precipitation_amount": "mm",
    "relative_humidity": "%",
    "wind_from_direction": "degrees",
    "wind_speed": "m/s",
}
COMPLETE_UNITS = {
    "air_pressure_at_sea_level": "hPa",
    "air_temperature": "celsius",
    "air_temperature_max": "celsius",
    "air_temperature_min": "celsius",
    "cloud_area_fraction": "%",
    "dew_point_temperature": "celsius",
    "fog_area_fraction": "%",
    "precipitation_amount": "mm",
    "probability_of_precipitation": "%",
    "relative_humidity": "%",
    "ultraviolet_index_clear_sky": "1",
    "wind_from_direction": "degrees",
    "wind_speed": "m/s",
    "wind_speed_of_gust": "m/s",
}
# Codes drawn with a sun or moon come in three variants; the rest never carry a suffix
# (github.com/metno/weathericons, weather/README.md).
WITHOUT_VARIANTS = {
    "cloudy",
    "fog",
    *(
        f"{strength}{phase}{thunder}"
        for strength in ("light", "", "heavy")
        for phase in ("rain", "sleet", "snow")
        for thunder in ("", "andthunder")
    ),
}
_MISSPELT = {
    "lightsleetshowersandthunder": "lightssleetshowersandthunder",
    "lightsnowshowersandthunder": "lightssnowshowersandthunder",
}
_SKY = {800: "clearsky", 801: "fair", 802: "partlycloudy", 803: "partlycloudy", 804: "cloudy"}
# Clients MET Norway names as generic: refused unless the agent also gives a contact.
GENERIC_AGENTS = (
    "python-requests",
    "python-urllib",
    "python-httpx",
    "urllib3",
    "python-urllib3",  # urllib3 2's own default
    "aiohttp",
    "curl",
    "wget",
    "okhttp",
    "go-http-client",
    "java",
    "dalvik",
    "apache-httpclient",
    "libwww-perl",
)
_CONTACT = re.compile(
    r"[^\s@<>();,]+@[^\s@<>();,]+\.[a-z]{2,}"  # an e-mail address
    r"|https?://\S+"
    r"|(?<![\w.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?![\w-])",  # a domain
    re.IGNORECASE,
)
FORBIDDEN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body>"
    b"<h1>403 Forbidden</h1><p>Missing or generic User-Agent: identify your application "
    b"and a contact (domain or e-mail) as the Terms of Service require, "
    b"https://api.met.no/doc/TermsOfService</p></body></html>\n"
)
THROTTLED_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>429 Too Many Requests</title></head><body>"
    b"<h1>429 Too Many Requests</h1><p>You are sending too many requests: cache the "
    b"answers until their Expires time, see https://api.met.no/doc/TermsOfService</p>"
    b"</body></html>\n"
)


def bad_request(reason: str) -> bytes:
    """MET Norway's 400 body: an error message formatted as HTML (docs.api.met.no,
    StatusCodes; the wording here is the fake's own)."""
    return (
        "<!DOCTYPE html>\n<html><head><title>400 Bad Request</title></head><body>"
        f"<h1>400 Bad Request</h1><p>{reason}</p></body></html>\n"
    ).encode()


def identifies(user_agent: str | None) -> bool:
    """Whether a User-Agent says who is asking, as MET Norway's terms require."""
    agent = (user_agent or "").strip()
    if not agent:
        return False
    product = agent.split()[0].split("/")[0].casefold()
    return product not in GENERIC_AGENTS or _CONTACT.search(agent) is not None


def decimals(value: str) -> int:
    """Decimals of a coordinate as sent (`59.91330` has 5)."""
    mantissa = value.strip().lower().split("e")[0]
    return len(mantissa.partition(".")[2])


def http_date(moment: float) -> str:
    """RFC 1123, as MET Norway writes Expires and Last-Modified."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(moment))


def _number(value: str | None) -> float | None:
    try:
        number = float(value or "nan")
    except ValueError:
        return None
    return None if math.isnan(number) else number


def check(query: dict[str, str]) -> tuple[float, float, int | None] | str:
    """The point asked for (latitude, longitude, altitude), or why it is refused."""
    latitude, longitude = _number(query.get("lat")), _number(query.get("lon"))
    if latitude is None or not -90 <= latitude <= 90:
        return f"Invalid or missing parameter lat: {query.get('lat', '')!r}"
    if longitude is None or not -180 <= longitude <= 180:
        return f"Invalid or missing parameter lon: {query.get('lon', '')!r}"
    altitude = query.get("altitude")
    if altitude is not None and not re.fullmatch(r"-?\d+", altitude.strip()):
        return f"Invalid parameter altitude: {altitude!r}"
    return latitude, longitude, int(altitude) if altitude is not None else None


def _suffix(site: Site, moment: float) -> str:
    """The variant for the sun at `moment` (the model's sun: none in polar night)."""
    if site.polar_night:
        return "night"
    elevation = sun_elevation(site.latitude, site.longitude, moment)
    if elevation > HORIZON_DEGREES:
        return "day"
    if abs(site.latitude) >= POLAR_CIRCLE and elevation > TWILIGHT_DEGREES:
        return "polartwilight"
    return "night"


def symbol(site: Site, hours: list[Hour], start: int) -> str:
    """The symbol code for the model hours from `start` (one, six or twelve of them)."""
    total = round(sum(h.precipitation for h in hours), 1)
    if total <= 0:
        base = _SKY[condition(0, 0, 0, round(sum(h.cloud_cover for h in hours) / len(hours)))]
    else:
        wettest = max(hours, key=lambda h: h.precipitation)
        phase = "snow" if wettest.temperature <= 0.5 else "sleet"
        phase = phase if wettest.temperature <= 1.5 else "rain"
        showers = bool(site.model.get("convective"))
        rate = total / len(hours)
        light, heavy = (2.5, 7.6) if phase == "rain" and not showers else (1.0, 4.0)
        strength = "light" if rate < light else "heavy" if rate >= heavy else ""
        thunder = showers and (
            bool(site.model.get("thunder")) or max(h.precipitation for h in hours) >= 4
        )
        base = f"{strength}{phase}{'showers' if showers else ''}{'andthunder' * thunder}"
        base = _MISSPELT.get(base, base)
    if base in WITHOUT_VARIANTS:
        return base
    return f"{base}_{_suffix(site, start + len(hours) * HOUR / 2)}"


def step_times(now: float) -> list[int]:
    """Hourly from the current hour, then every 6 hours (see the module's docstring)."""
    first = int(now) // HOUR * HOUR
    switch = -(-(first + SHORT_RANGE) // (6 * HOUR)) * 6 * HOUR  # 00, 06, 12 or 18 UTC
    last = (first + LONG_RANGE) // (6 * HOUR) * 6 * HOUR
    return [*range(first, switch, HOUR), *range(switch, last + 1, 6 * HOUR)]


def _one(value: float) -> float:
    return float(round(value, 1))


def _instant(hour: Hour, complete: bool) -> dict[str, float]:
    details = {
        "air_pressure_at_sea_level": _one(hour.pressure_msl),
        "air_temperature": _one(hour.temperature),
        "cloud_area_fraction": _one(hour.cloud_cover),
        "dew_point_temperature": _one(hour.dew_point),
        "fog_area_fraction": _one(max(0.0, 100 * (1 - hour.visibility / 1000))),
        "relative_humidity": _one(hour.humidity),
        "ultraviolet_index_clear_sky": _one(hour.uv_index_clear_sky),
        "wind_from_direction": _one(hour.wind_direction),
        "wind_speed": _one(hour.wind_speed),
        "wind_speed_of_gust": _one(hour.wind_gusts),
    }
    return {k: v for k, v in details.items() if complete or k in COMPACT_UNITS}


def _period(site: Site, start: int, hours: int, complete: bool) -> dict[str, Any]:
    """`next_1_hours`, `next_6_hours` or `next_12_hours` from `start`."""
    model = [model_hour(site, start + k * HOUR) for k in range(hours)]
    chance = _one(max(h.pop for h in model) * 100)
    details: dict[str, float] = {}
    if hours == 6 and complete:
        details["air_temperature_max"] = _one(max(h.temperature for h in model))
        details["air_temperature_min"] = _one(min(h.temperature for h in model))
    if hours < 12:
        details["precipitation_amount"] = _one(sum(h.precipitation for h in model))
    if complete:
        details["probability_of_precipitation"] = chance
    period: dict[str, Any] = {"summary": {"symbol_code": symbol(site, model, start)}}
    if details:
        period["details"] = details
    return period


def forecast(
    latitude: float,
    longitude: float,
    altitude: int | None,
    world: World,
    complete: bool,
    updated: float,
    now: float | None = None,
) -> dict[str, Any]:
    """The GeoJSON answer for a point (at sea, far from every place, as for the others)."""
    now = time.time() if now is None else now
    place = world.nearest(latitude, longitude)
    site = world.site(place, (latitude, longitude))
    times = step_times(now)
    end = times[-1]
    series = []
    for index, moment in enumerate(times):
        data: dict[str, Any] = {
            "instant": {"details": _instant(model_hour(site, moment), complete)}
        }
        if moment + 12 * HOUR <= end:
            data["next_12_hours"] = _period(site, moment, 12, complete)
        if index + 1 < len(times) and times[index + 1] - moment == HOUR:
            data["next_1_hours"] = _period(site, moment, 1, complete)
        if moment + 6 * HOUR <= end:
            data["next_6_hours"] = _period(site, moment, 6, complete)
        series.append({"time": _iso(moment), "data": data})
    height = altitude if altitude is not None else round(site.elevation)
    return {
        "type": "Feature",
        "geometry": {
            "type": "Point",
            "coordinates": [round(longitude, 4), round(latitude, 4), height],
        },
        "properties": {
            "meta": {
                "updated_at": _iso(updated),
                "units": dict(COMPLETE_UNITS if complete else COMPACT_UNITS),
            },
            "timeseries": series,
        },
    }


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def with_nulls(document: dict[str, Any], keep_temperature: bool) -> dict[str, Any]:
    """Every instant detail null (the temperature too, unless kept)."""
    for step in document["properties"]["timeseries"]:
        details = step["data"]["instant"]["details"]
        for key in details:
            if key != "air_temperature" or not keep_temperature:
                details[key] = None
    return document


def shaped(document: dict[str, Any], fault: str) -> dict[str, Any]:
    """The answer as a MET shaping fault leaves it."""
    properties = document["properties"]
    if fault == "met_no_timeseries":
        del properties["timeseries"]
    elif fault == "met_empty_timeseries":
        properties["timeseries"] = []
    elif fault == "met_no_instant":
        for step in properties["timeseries"]:
            del step["data"]["instant"]
    return document


def encode(document: dict[str, Any]) -> bytes:
    """Compact JSON, as the service writes it."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
