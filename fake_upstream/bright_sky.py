"""Bright Sky (api.brightsky.dev, DWD's open data), in the shapes of its recorded answers
(../shared/realdata/recorded/brightsky_*.json), from the fake world's weather model.

    GET /alerts?lat=LAT&lon=LON              DWD warnings (scenarios: alerts.py, source dwd)
    GET /current_weather?lat=LAT&lon=LON     the nearest station's latest 10-minute record
    GET /current_weather?dwd_station_id=ID   (or wmo_station_id=ID) one station's

Coverage: `places.AREAS["germany"]`, a rough box (it holds Zurich, Innsbruck and
bits of the other neighbours). Outside it `/alerts` answers 404
`{"detail": "No warn cell found for these coordinates"}` and `/current_weather` 404
`{"detail": "No sources match your criteria"}` (also for an unknown station id);
inside, `/alerts` always has its `location` block (warn cell, names, state) and
`"alerts": []` when there are none (a warning set with `message_type` "Cancel" is
left out: Bright Sky has no such field). Alerts are lower-case CAP (`severity`, `urgency`,
`certainty`, `status` "actual"/"test"), times ISO with +00:00, `expires` null for a
warning without an end; `event_en` is the table's event, `event_de` and `event_code`
DWD's where known.

Stations: one per half-degree cell of the box, at a fixed spot inside it;
`dwd_station_id` is five digits (1000 + 37 × the cell's index), `wmo_station_id`
"10" + three digits (the index), `source_id` 10000 + 3 × the index. A point gets the
nearest station. Every fifth station (index divisible by 5; e.g. `dwd_station_id`
01000, 01185) has no thermometer, hygrometer or barometer: its `temperature`,
`dew_point`, `relative_humidity` and `pressure_msl` come from the nearest other
station, named in `fallback_source_ids` and listed second in `sources` (the recorded
Feldberg quirk). `units=dwd` (default): °C, km/h, hPa, mm, minutes; `units=si`: K,
m/s, Pa, kg/m², seconds. The record is the last whole 10 minutes; `POST
/_fake/stations {"id": "01000", "age_seconds": 10800, "nulls": ["temperature"]}` makes
one station's older or drops values (`rejected` is NWS's only).
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fake_upstream import alerts as warnings
from fake_upstream.alerts import Alert, Answer
from fake_upstream.places import (
    AREAS,
    KELVIN,
    World,
    great_circle_m,
    in_area,
    model_hour,
    site_at,
    stable_hash,
    sun_elevation,
)

ALERTS_PATH = "/alerts"
CURRENT_PATH = "/current_weather"
PATHS = (ALERTS_PATH, CURRENT_PATH)
NO_SOURCES = {"detail": "No sources match your criteria"}
NO_CELL = {"detail": "No warn cell found for these coordinates"}
FALLBACK_KEYS = ("dew_point", "pressure_msl", "relative_humidity", "temperature")
WEATHER_KEYS = (
    "cloud_cover",
    "condition",
    "dew_point",
    "precipitation_10",
    "precipitation_30",
    "precipitation_60",
    "pressure_msl",
    "relative_humidity",
    "visibility",
    "wind_direction_10",
    "wind_direction_30",
    "wind_direction_60",
    "wind_speed_10",
    "wind_speed_30",
    "wind_speed_60",
    "wind_gust_direction_10",
    "wind_gust_direction_30",
    "wind_gust_direction_60",
    "wind_gust_speed_10",
    "wind_gust_speed_30",
    "wind_gust_speed_60",
    "sunshine_30",
    "sunshine_60",
    "temperature",
    "icon",
)
# event_en -> (event_code, event_de, category)
EVENTS = {
    "wind gusts": (51, "WINDBÖEN", "met"),
    "storm gusts": (52, "STURMBÖEN", "met"),
    "severe storm gusts": (53, "SCHWERE STURMBÖEN", "met"),
    "violent storm gusts": (54, "ORKANARTIGE BÖEN", "met"),
    "hurricane-force gusts": (55, "ORKANBÖEN", "met"),
    "thunderstorm": (31, "GEWITTER", "met"),
    "heavy thunderstorm": (40, "SCHWERES GEWITTER", "met"),
    "persistent rain": (63, "DAUERREGEN", "met"),
    "frost": (22, "FROST", "met"),
    "strong heat": (247, "STARKE HITZE", "health"),
    "extreme heat": (248, "EXTREME HITZE", "health"),
}
STATES = (  # (name, short, lat, lon): the nearest names a warn cell's state
    ("Baden-Württemberg", "BW", 48.5, 9.0),
    ("Bayern", "BY", 48.9, 11.4),
    ("Berlin", "BE", 52.52, 13.4),
    ("Brandenburg", "BB", 52.4, 13.0),
    ("Bremen", "HB", 53.08, 8.8),
    ("Hamburg", "HH", 53.55, 10.0),
    ("Hessen", "HE", 50.6, 9.0),
    ("Mecklenburg-Vorpommern", "MV", 53.6, 12.4),
    ("Niedersachsen", "NI", 52.6, 9.8),
    ("Nordrhein-Westfalen", "NW", 51.5, 7.5),
    ("Rheinland-Pfalz", "RP", 49.9, 7.4),
    ("Saarland", "SL", 49.4, 6.95),
    ("Sachsen", "SN", 51.0, 13.3),
    ("Sachsen-Anhalt", "ST", 52.0, 11.7),
    ("Schleswig-Holstein", "SH", 54.2, 9.7),
    ("Thüringen", "TH", 50.9, 11.0),
)
_STEM = ("Eich", "Buch", "Linden", "Tann", "Rosen", "Mühl", "Wald", "Berg", "Stein", "Hasel")
_END = ("dorf", "hausen", "heim", "feld", "bach", "stadt", "au", "ingen")


def _cells() -> list[tuple[int, int]]:
    (south, north, west, east), *_ = AREAS["germany"]
    return [
        (row, column)
        for row in range(math.floor(south * 2), math.floor(north * 2) + 1)
        for column in range(math.floor(west * 2), math.floor(east * 2) + 1)
    ]


CELLS = _cells()
_INDEX = {cell: n for n, cell in enumerate(CELLS)}


@dataclass(frozen=True)
class Station:
    index: int
    latitude: float
    longitude: float
    height: float
    name: str

    @property
    def dwd_station_id(self) -> str:
        return f"{1000 + 37 * self.index:05d}"

    @property
    def wmo_station_id(self) -> str:
        return f"10{self.index:03d}"

    @property
    def source_id(self) -> int:
        return 10000 + 3 * self.index

    @property
    def measures_all(self) -> bool:
        return self.index % 5 != 0


@dataclass(frozen=True)
class Behaviour:
    age_seconds: float | None = None
    nulls: frozenset[str] = frozenset()


def covers(latitude: float, longitude: float) -> bool:
    return in_area("germany", latitude, longitude)


@functools.cache
def station_at(index: int) -> Station:
    row, column = CELLS[index]
    seed = stable_hash("dwd-station", row, column)
    return Station(
        index=index,
        latitude=round(row / 2 + 0.06 + 0.38 * (seed % 1000) / 1000, 4),
        longitude=round(column / 2 + 0.06 + 0.38 * (seed // 1000 % 1000) / 1000, 4),
        height=round(20 + seed // 10**6 % 900 + (seed // 10**9 % 10) / 10, 1),
        name=f"{_STEM[seed // 10**10 % len(_STEM)]}{_END[seed // 10**11 % len(_END)]}",
    )


def station(identifier: str) -> Station | None:
    """The station with this `dwd_station_id` (five digits), or None."""
    if not (identifier.isdigit() and len(identifier) == 5):
        return None
    index, extra = divmod(int(identifier) - 1000, 37)
    return station_at(index) if not extra and 0 <= index < len(CELLS) else None


def _by_wmo(identifier: str) -> Station | None:
    if len(identifier) == 5 and identifier.startswith("10") and identifier[2:].isdigit():
        index = int(identifier[2:])
        return station_at(index) if index < len(CELLS) else None
    return None


def _near(latitude: float, longitude: float, rings: int = 2) -> list[Station]:
    row, column = math.floor(latitude * 2), math.floor(longitude * 2)
    cells = (
        (row + dr, column + dc)
        for dr in range(-rings, rings + 1)
        for dc in range(-rings, rings + 1)
    )
    found = [station_at(_INDEX[cell]) for cell in cells if cell in _INDEX]
    return sorted(found, key=lambda s: great_circle_m(latitude, longitude, s.latitude, s.longitude))


def nearest(latitude: float, longitude: float) -> Station | None:
    found = _near(latitude, longitude)
    return found[0] if found else None


def fallback_of(item: Station) -> Station | None:
    """The station whose sensors stand in for one that lacks them."""
    if item.measures_all:
        return None
    others = [s for s in _near(item.latitude, item.longitude) if s.measures_all]
    return others[0] if others else None


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(moment))


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# -- current weather ----------------------------------------------------------------------


def _readings(world: World, item: Station, moment: int) -> dict[str, Any]:
    site = site_at(world, item.latitude, item.longitude)
    now, half, hour_ago = (model_hour(site, moment - k) for k in (0, 1800, 3600))
    before = model_hour(site, moment - 3600)  # the hour that ended at `moment`
    amount = before.precipitation

    def mean(a: float, b: float) -> float:
        return round((a + b) / 2 * 3.6, 1)

    def turn(degrees: float) -> int:
        return int(round(degrees, -1)) % 360

    if before.snow > 0 and before.snow >= before.rain + before.showers:
        condition = "snow"
    elif amount > 0 and now.temperature <= 1.5:
        condition = "sleet"
    elif before.showers >= 4:
        condition = "thunderstorm"
    elif amount > 0:
        condition = "rain"
    elif now.visibility < 1000:
        condition = "fog"
    else:
        condition = "dry"
    daytime = sun_elevation(item.latitude, item.longitude, moment) > 0
    sunny = 1 - now.cloud_cover / 100 if daytime else 0.0
    if condition != "dry":
        icon = "thunderstorm" if condition == "thunderstorm" else condition
    else:
        sky = "clear" if now.cloud_cover < 25 else "partly-cloudy" if now.cloud_cover < 75 else ""
        icon = f"{sky}-{'day' if daytime else 'night'}" if sky else "cloudy"
    return {
        "cloud_cover": now.cloud_cover,
        "condition": condition,
        "dew_point": now.dew_point,
        "precipitation_10": round(amount / 6, 1),
        "precipitation_30": round(amount / 2, 1),
        "precipitation_60": round(amount, 1),
        "pressure_msl": now.pressure_msl,
        "relative_humidity": now.humidity,
        "visibility": round(now.visibility),
        "wind_direction_10": turn(now.wind_direction),
        "wind_direction_30": turn((now.wind_direction + half.wind_direction) / 2),
        "wind_direction_60": turn((now.wind_direction + hour_ago.wind_direction) / 2),
        "wind_speed_10": round(now.wind_speed * 3.6, 1),
        "wind_speed_30": mean(now.wind_speed, half.wind_speed),
        "wind_speed_60": mean(now.wind_speed, hour_ago.wind_speed),
        "wind_gust_direction_10": turn(now.wind_direction + 10),
        "wind_gust_direction_30": turn(half.wind_direction + 10),
        "wind_gust_direction_60": turn(hour_ago.wind_direction + 10),
        "wind_gust_speed_10": round(now.wind_gusts * 3.6, 1),
        "wind_gust_speed_30": mean(now.wind_gusts, half.wind_gusts),
        "wind_gust_speed_60": max(
            round(now.wind_gusts * 3.6, 1), round(hour_ago.wind_gusts * 3.6, 1)
        ),
        "sunshine_30": float(round(30 * sunny)),
        "sunshine_60": float(round(60 * sunny)),
        "temperature": now.temperature,
        "icon": icon,
    }


def _si(weather: dict[str, Any]) -> None:
    for key, value in weather.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if key in ("temperature", "dew_point"):
            weather[key] = round(value + KELVIN, 2)
        elif key == "pressure_msl":
            weather[key] = round(value * 100)
        elif key.startswith(("wind_speed", "wind_gust_speed")):
            weather[key] = round(value / 3.6, 1)
        elif key.startswith("sunshine"):
            weather[key] = round(value * 60)


def _source(item: Station, moment: int, distance: float) -> dict[str, Any]:
    return {
        "id": item.source_id,
        "dwd_station_id": item.dwd_station_id,
        "observation_type": "synop",
        "lat": item.latitude,
        "lon": item.longitude,
        "height": item.height,
        "station_name": item.name,
        "wmo_station_id": item.wmo_station_id,
        "first_record": _iso(moment - 30 * 3600),
        "last_record": _iso(moment),
        "distance": float(round(distance)),
    }


def current_weather(
    query: dict[str, str], world: World, now: float, behaviours: dict[str, Behaviour]
) -> Answer:
    units = query.get("units") or "dwd"
    if units not in ("dwd", "si"):
        return Answer(400, {"detail": f"Invalid units: {units!r}, use dwd or si"})
    point: tuple[float, float] | None = None
    if "dwd_station_id" in query:
        item = station(query["dwd_station_id"].strip())
    elif "wmo_station_id" in query:
        item = _by_wmo(query["wmo_station_id"].strip())
    elif "lat" in query or "lon" in query:
        latitude, longitude = _number(query.get("lat")), _number(query.get("lon"))
        if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
            return Answer(400, {"detail": "Invalid lat/lon"})
        point = latitude, longitude
        item = nearest(latitude, longitude) if covers(latitude, longitude) else None
    else:
        return Answer(400, {"detail": "Please supply lat/lon or dwd_station_id or wmo_station_id"})
    if item is None:
        return Answer(404, dict(NO_SOURCES))
    behaviour = behaviours.get(item.dwd_station_id) or Behaviour()
    moment = int(now - (behaviour.age_seconds or 0)) // 600 * 600
    values = _readings(world, item, moment)
    fallback = fallback_of(item)
    borrowed: dict[str, int] = {}
    if fallback is not None:
        theirs = _readings(world, fallback, moment)
        for key in FALLBACK_KEYS:
            values[key] = theirs[key]
            borrowed[key] = fallback.source_id
    for key in behaviour.nulls:
        values[key] = None
    if units == "si":
        _si(values)
    weather: dict[str, Any] = {"source_id": item.source_id, "timestamp": _iso(moment)}
    weather.update({key: values[key] for key in WEATHER_KEYS if key != "icon"})
    weather["fallback_source_ids"] = borrowed
    weather["icon"] = values["icon"]
    here = point or (item.latitude, item.longitude)
    sources = [_source(s, moment, great_circle_m(*here, s.latitude, s.longitude)) for s in [item]]
    if fallback is not None:
        distance = great_circle_m(*here, fallback.latitude, fallback.longitude)
        sources.append(_source(fallback, moment, distance))
    return Answer(200, {"weather": weather, "sources": sources})


def with_nulls(document: Any, keep_temperature: bool) -> Any:
    """Current weather with every value null (the temperature too, unless kept)."""
    weather = document.get("weather") if isinstance(document, dict) else None
    if not isinstance(weather, dict):
        return document  # faults that null values act on current weather only
    for key in WEATHER_KEYS:
        if key != "temperature" or not keep_temperature:
            weather[key] = None
    return document


def behaviour_from(document: dict[str, Any]) -> Behaviour:
    unknown = set(document) - {"id", "age_seconds", "nulls", "rejected"}
    if unknown or document.get("rejected"):  # DWD's values carry no quality codes
        raise ValueError(f"fields a DWD station does not take: {sorted(unknown or {'rejected'})}")
    age = document.get("age_seconds")
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age < 10**9
    ):
        raise ValueError(f"age_seconds is seconds >= 0 or null: {age!r}")
    nulls = document.get("nulls", [])
    if not isinstance(nulls, list) or not set(nulls) <= set(WEATHER_KEYS):
        raise ValueError(f"nulls lists weather values, some of {', '.join(WEATHER_KEYS)}")
    return Behaviour(age, frozenset(nulls))


# -- alerts ----------------------------------------------------------------------------


def _location(latitude: float, longitude: float) -> dict[str, Any]:
    cell = math.floor(latitude * 2), math.floor(longitude * 2)
    town = warnings.place_name("dwd", latitude, longitude)
    home = nearest(latitude, longitude)
    short = town or (home.name if home else "Ort")
    scale = math.cos(math.radians(latitude))
    state = min(STATES, key=lambda s: (s[2] - latitude) ** 2 + ((s[3] - longitude) * scale) ** 2)
    return {
        "warn_cell_id": 801000000 + _INDEX.get(cell, 0) * 1013,
        "name": f"Stadt {short}" if town else f"Gemeinde {short}",
        "name_short": short,
        "district": f"Kreisfreie Stadt {short}" if town else f"Landkreis {short}",
        "state": state[0],
        "state_short": state[1],
    }


def _alert(alert: Alert, latitude: float, longitude: float) -> dict[str, Any]:
    code, event_de, category = EVENTS.get(alert.event, (0, alert.event.upper(), "met"))
    seed = stable_hash("dwd-alert", latitude, longitude, alert.key, alert.event, alert.effective)
    suffix = uuid.UUID(int=seed << 64 | seed, version=4)
    return {
        "id": seed % 900000 + 100000,
        "alert_id": f"2.49.0.0.276.0.DWD.PVW.{int(alert.effective * 1000)}.{suffix}",
        "status": alert.status.lower(),
        "effective": _iso(alert.effective),
        "onset": _iso(alert.onset),
        "expires": _iso(alert.ends),
        "category": category,
        "response_type": "prepare",
        "urgency": alert.urgency.lower(),
        "severity": alert.severity.lower(),
        "certainty": alert.certainty.lower(),
        "event_code": code,
        "event_en": alert.event,
        "event_de": event_de,
        "headline_en": alert.headline or f"Official WARNING of {alert.event.upper()}",
        "headline_de": f"Amtliche WARNUNG vor {event_de}",
        "description_en": alert.description,
        "description_de": f"Es tritt {event_de} auf.",
        "instruction_en": alert.instruction,
        "instruction_de": alert.instruction and "Beachten Sie die Hinweise.",
    }


def alerts(query: dict[str, str], now: float, overrides: warnings.Overrides) -> Answer:
    latitude, longitude = _number(query.get("lat")), _number(query.get("lon"))
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return Answer(400, {"detail": "Please supply lat/lon or warn_cell_id"})
    if not covers(latitude, longitude):
        return Answer(404, dict(NO_CELL))
    listed = warnings.for_point("dwd", latitude, longitude, now, overrides)
    found = [a for a in listed if a.message_type != "Cancel"]  # DWD's cancelled ones vanish
    return Answer(
        200,
        {
            "alerts": [_alert(a, latitude, longitude) for a in found],
            "location": _location(latitude, longitude),
        },
    )


def respond(
    path: str,
    query: dict[str, str],
    *,
    world: World,
    now: float,
    behaviours: dict[str, Behaviour],
    overrides: warnings.Overrides,
) -> Answer:
    if path == ALERTS_PATH:
        return alerts(query, now, overrides)
    return current_weather(query, world, now, behaviours)
