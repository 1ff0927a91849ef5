"""The US National Weather Service (api.weather.gov), in the shapes of its recorded
answers (../shared/realdata/recorded/nws_*.json), from the fake world's weather model.

    GET /points/LAT,LON                      the point's grid, zones and station list URL
    GET /gridpoints/WFO/X,Y/stations         the grid cell's observation stations
    GET /stations/ID/observations/latest     a station's latest observation
    GET /alerts/active?point=LAT,LON         active alerts (scenarios: alerts.py); the fake
                                             knows no `zone=` or `area=`: 400 without `point`

Coverage: a point is in the US when it lies in one of `places.AREAS["us"]`'s boxes
(contiguous states, Alaska, Hawaii; rough, so parts of Canada and Mexico are "in").
Outside, `/points` answers 404 "Data Unavailable For Requested Point" and
`/alerts/active` 200 with no features, as the real service does. A point with more
than 4 decimals gets a 301 to its 4-decimal form (`Location: /points/LAT,LON`, relative,
as upstream). URLs in answers are on the host the request named (`Host`), so clients
follow them back to the fake. 200s are `application/geo+json`, errors
`application/problem+json` (`type`, `title`, `status`, `detail`, `instance`,
`correlationId`).

Grid and stations: the US boxes are tiled in half-degree cells. A point's cell is its
grid: the office (`gridId`, three letters) is named for the 4-degree square holding
the cell, and `gridX`/`gridY` are 10 + 20 × the cell's column/row in that square, so
every point of a cell (e.g. 35.1,-106.6 and 35.4,-106.9) shares one station list.
Each cell holds one station, `K` + three letters, at a fixed spot inside it; a cell's
list is the 3 to 6 stations (a fixed number per cell) of it and its 8 neighbours
nearest the cell's centre, nearest first, as NWS orders them.

Observations are the model's weather at the station and the observation time (the last
hh:53, METAR time). Units as upstream sends them: degC, km_h-1, Pa, m, percent,
degree_(angle), mm. What a station does depends on the last letter of its id:

| last letter | behaviour                                                                   |
|-------------|-----------------------------------------------------------------------------|
| Q           | silent: its latest observation is 3 hours old                               |
| X           | no temperature: `temperature.value` null (qualityControl "Z")               |
| R           | `windSpeed` rejected: qualityControl "X", the value still there             |
| A E I O U   | precipitation not measured: `precipitationLast{1,3,6}Hour(s)` null ("Z")    |
| others      | fresh, every value checked ("V"; visibility "C")                            |

Always: `windGust` null ("Z") unless gusts are 10 kt (18.5 km/h) over the mean wind;
`heatIndex` from 26.7 °C up, `windChill` at 10 °C and below with wind over 4.8 km/h,
else null ("V"); `max/minTemperatureLast24Hours` null without `qualityControl` (both
as recorded). Points whose nearest station (first in their list) shows each rule:

    36.25,-87.25   KLSQ silent            36.75,-95.25   KYWX no temperature
    36.25,-96.75   KXDR wind rejected     36.25,-99.25   KQOU no precipitation

(each with ordinary stations second and third).

`POST /_fake/stations {"id": "KABC", "age_seconds": 10800, "nulls": ["temperature"],
"rejected": ["windSpeed"]}` replaces one station's behaviour (its letter's rule
included; `age_seconds` null: fresh); `/_fake/reset` forgets it.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fake_upstream import alerts as warnings
from fake_upstream.alerts import Alert, Answer
from fake_upstream.places import (
    AREAS,
    Hour,
    World,
    great_circle_m,
    in_area,
    model_hour,
    site_at,
    stable_hash,
    sun_elevation,
)

GEO_JSON = "application/geo+json"
PROBLEM_JSON = "application/problem+json"
ALERTS_PATH = "/alerts/active"
_POINTS = re.compile(r"/points/([^/,]+),([^/,]+)")
_GRID = re.compile(r"/gridpoints/([A-Za-z]{3})/(\d+),(\d+)/stations")
_LATEST = re.compile(r"/stations/([^/]+)/observations/latest")
PREFIXES = ("/points", "/gridpoints", "/stations")  # paths with their parameters in them
_LETTERS = 26**3
_STATION_STEP, _STATION_OFFSET = 7919, 4211  # id letters = (cell index * step + offset)
_OFFICE_STEP, _OFFICE_OFFSET = 1409, 911
SILENT_SECONDS = 3 * 3600
MISSING = "Z"  # the quality code NWS gives a null value
VALUES = (  # the observation's {unitCode, value, qualityControl} entries
    "temperature",
    "dewpoint",
    "windDirection",
    "windSpeed",
    "windGust",
    "barometricPressure",
    "seaLevelPressure",
    "visibility",
    "maxTemperatureLast24Hours",
    "minTemperatureLast24Hours",
    "precipitationLastHour",
    "precipitationLast3Hours",
    "precipitationLast6Hours",
    "relativeHumidity",
    "windChill",
    "heatIndex",
)
_PRECIPITATION = ("precipitationLastHour", "precipitationLast3Hours", "precipitationLast6Hours")
_CONTEXT_VOCABULARY: dict[str, Any] = {
    "@version": "1.1",
    "wx": "https://api.weather.gov/ontology#",
    "s": "https://schema.org/",
    "geo": "http://www.opengis.net/ont/geosparql#",
    "unit": "http://codes.wmo.int/common/unit/",
    "@vocab": "https://api.weather.gov/ontology#",
    "geometry": {"@id": "s:GeoCoordinates", "@type": "geo:wktLiteral"},
    "city": "s:addressLocality",
    "state": "s:addressRegion",
    "distance": {"@id": "s:Distance", "@type": "s:QuantitativeValue"},
    "bearing": {"@type": "s:QuantitativeValue"},
    "value": {"@id": "s:value"},
    "unitCode": {"@id": "s:unitCode", "@type": "@id"},
    "forecastOffice": {"@type": "@id"},
    "forecastGridData": {"@type": "@id"},
    "publicZone": {"@type": "@id"},
    "county": {"@type": "@id"},
}
_GEOJSON_CONTEXT = "https://geojson.org/geojson-ld/geojson-context.jsonld"
CONTEXT = [_GEOJSON_CONTEXT, _CONTEXT_VOCABULARY]
STATIONS_CONTEXT = [
    _GEOJSON_CONTEXT,
    {**_CONTEXT_VOCABULARY, "observationStations": {"@container": "@list", "@type": "@id"}},
]
ALERTS_CONTEXT = [
    _GEOJSON_CONTEXT,
    {
        "@version": "1.1",
        "wx": "https://api.weather.gov/ontology#",
        "@vocab": "https://api.weather.gov/ontology#",
    },
]
# State centroids (rough), for `relativeLocation.state` and zone names.
_STATES = (
    "AL 32.8 -86.8",
    "AK 64.2 -149.5",
    "AZ 34.3 -111.7",
    "AR 34.9 -92.4",
    "CA 37.2 -119.4",
    "CO 39.0 -105.5",
    "CT 41.6 -72.7",
    "DE 39.0 -75.5",
    "FL 28.6 -82.4",
    "GA 32.7 -83.4",
    "HI 20.8 -156.3",
    "ID 44.4 -114.6",
    "IL 40.0 -89.2",
    "IN 39.9 -86.3",
    "IA 42.1 -93.5",
    "KS 38.5 -98.4",
    "KY 37.5 -85.3",
    "LA 31.1 -92.0",
    "ME 45.4 -69.2",
    "MD 39.0 -76.8",
    "MA 42.3 -71.8",
    "MI 44.3 -85.4",
    "MN 46.3 -94.3",
    "MS 32.7 -89.7",
    "MO 38.4 -92.5",
    "MT 47.0 -109.6",
    "NE 41.5 -99.8",
    "NV 39.3 -116.6",
    "NH 43.7 -71.6",
    "NJ 40.2 -74.7",
    "NM 34.4 -106.1",
    "NY 42.9 -75.5",
    "NC 35.6 -79.4",
    "ND 47.5 -100.5",
    "OH 40.3 -82.8",
    "OK 35.6 -97.5",
    "OR 43.9 -120.6",
    "PA 40.9 -77.8",
    "RI 41.7 -71.5",
    "SC 33.9 -80.9",
    "SD 44.4 -100.2",
    "TN 35.9 -86.4",
    "TX 31.5 -99.3",
    "UT 39.3 -111.7",
    "VT 44.1 -72.7",
    "VA 37.5 -78.9",
    "WA 47.4 -120.5",
    "WV 38.6 -80.6",
    "WI 44.6 -89.9",
    "WY 43.0 -107.6",
)
STATES = [(name, float(lat), float(lon)) for name, lat, lon in map(str.split, _STATES)]
_TOWN = ("Cedar", "Maple", "Pine", "Oak", "Willow", "Granite", "Silver", "Eagle", "Bear", "Fox")
_PLACE = ("Creek", "Falls", "Ridge", "Valley", "Springs", "Lake", "Point", "Hill", "Bluff")
_KIND = ("Municipal Airport", "Regional Airport", "County Airport", "Airfield", "AWOS")


# -- grid and stations ------------------------------------------------------------------


def _letters(number: int) -> str:
    first, rest = divmod(number, 676)
    return "".join(chr(65 + n) for n in (first, *divmod(rest, 26)))


def _number(letters: str) -> int:
    a, b, c = (ord(ch) - 65 for ch in letters)
    return a * 676 + b * 26 + c


def _cells() -> list[tuple[int, int]]:
    cells = set()
    for south, north, west, east in AREAS["us"]:
        for row in range(math.floor(south * 2), math.floor(north * 2) + 1):
            for column in range(math.floor(west * 2), math.floor(east * 2) + 1):
                cells.add((row, column))
    return sorted(cells)


CELLS = _cells()
_INDEX = {cell: n for n, cell in enumerate(CELLS)}
assert len(CELLS) < _LETTERS


@dataclass(frozen=True)
class Station:
    identifier: str
    latitude: float
    longitude: float
    elevation: float
    name: str
    town: str
    state: str
    time_zone: str
    utc_offset: int  # hours, standard time
    cell: tuple[int, int]


def covers(latitude: float, longitude: float) -> bool:
    return in_area("us", latitude, longitude)


def cell_of(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude * 2), math.floor(longitude * 2)


def _centre(cell: tuple[int, int]) -> tuple[float, float]:
    return (cell[0] + 0.5) / 2, (cell[1] + 0.5) / 2


def _zone(latitude: float, longitude: float) -> tuple[str, int]:
    """America's time zone at a point (standard time; rough bands of longitude)."""
    if latitude < 23 and longitude < -154:
        return "Pacific/Honolulu", -10
    if latitude > 50.5 and longitude < -129:
        return "America/Anchorage", -9
    for edge, name, offset in (
        (-114.5, "America/Los_Angeles", -8),
        (-101.0, "America/Denver", -7),
        (-87.5, "America/Chicago", -6),
    ):
        if longitude < edge:
            return name, offset
    return "America/New_York", -5


def state_at(latitude: float, longitude: float) -> str:
    scale = math.cos(math.radians(latitude))
    return min(STATES, key=lambda s: (s[1] - latitude) ** 2 + ((s[2] - longitude) * scale) ** 2)[0]


@functools.cache
def station_of(cell: tuple[int, int]) -> Station:
    row, column = cell
    seed = stable_hash("nws-station", row, column)
    latitude = round(row / 2 + 0.08 + 0.34 * (seed % 1000) / 1000, 4)
    longitude = round(column / 2 + 0.08 + 0.34 * (seed // 1000 % 1000) / 1000, 4)
    feet = 10 + seed // 10**6 % (2000 if longitude > -105 else 6000)
    town = f"{_TOWN[seed // 10**9 % len(_TOWN)]} {_PLACE[seed // 10**10 % len(_PLACE)]}"
    zone, offset = _zone(latitude, longitude)
    return Station(
        identifier="K" + _letters((_INDEX[cell] * _STATION_STEP + _STATION_OFFSET) % _LETTERS),
        latitude=latitude,
        longitude=longitude,
        elevation=round(feet * 0.3048, 4),
        name=f"{town} {_KIND[seed // 10**11 % len(_KIND)]}",
        town=town,
        state=state_at(latitude, longitude),
        time_zone=zone,
        utc_offset=offset,
        cell=cell,
    )


def station(identifier: str) -> Station | None:
    """The station with this id (any case), or None."""
    if not re.fullmatch(r"K[A-Z]{3}", identifier.upper()):
        return None
    number = _number(identifier.upper()[1:])
    index = (number - _STATION_OFFSET) * pow(_STATION_STEP, -1, _LETTERS) % _LETTERS
    return station_of(CELLS[index]) if index < len(CELLS) else None


def stations_for(cell: tuple[int, int]) -> list[Station]:
    """The cell's list: 3 to 6 stations of it and its neighbours, nearest its centre first."""
    centre = _centre(cell)
    near = [
        station_of(other)
        for other in ((cell[0] + dr, cell[1] + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1))
        if other in _INDEX
    ]
    near.sort(key=lambda s: great_circle_m(*centre, s.latitude, s.longitude))
    return near[: 3 + stable_hash("nws-count", *cell) % 4]


def grid(cell: tuple[int, int]) -> tuple[str, int, int]:
    """(office, x, y) of a cell."""
    square = cell[0] // 8, cell[1] // 8
    code = square[0] * 64 + square[1] + 64
    office = _letters((code * _OFFICE_STEP + _OFFICE_OFFSET) % _LETTERS)
    return office, 10 + 20 * (cell[1] - 8 * square[1]), 10 + 20 * (cell[0] - 8 * square[0])


def cell_of_grid(office: str, x: int, y: int) -> tuple[int, int] | None:
    code = (_number(office.upper()) - _OFFICE_OFFSET) * pow(_OFFICE_STEP, -1, _LETTERS)
    square_row, rest = divmod(code % _LETTERS, 64)
    column, extra_x = divmod(x - 10, 20)
    row, extra_y = divmod(y - 10, 20)
    if extra_x or extra_y or not (0 <= column < 8 and 0 <= row < 8):
        return None
    cell = square_row * 8 + row, (rest - 64) * 8 + column
    return cell if cell in _INDEX else None


# -- behaviours ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """What a station's latest observation shows."""

    age_seconds: float | None = None  # None: the last hh:53
    nulls: frozenset[str] = frozenset()
    rejected: frozenset[str] = frozenset()


def default_behaviour(identifier: str) -> Behaviour:
    last = identifier.upper()[-1]
    if last == "Q":
        return Behaviour(age_seconds=SILENT_SECONDS)
    if last == "X":
        return Behaviour(nulls=frozenset({"temperature"}))
    if last == "R":
        return Behaviour(rejected=frozenset({"windSpeed"}))
    if last in "AEIOU":
        return Behaviour(nulls=frozenset(_PRECIPITATION))
    return Behaviour()


def behaviour_from(document: dict[str, Any]) -> Behaviour:
    """`POST /_fake/stations`'s body (its `id` aside) as a behaviour, or ValueError."""
    unknown = set(document) - {"id", "age_seconds", "nulls", "rejected"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    age = document.get("age_seconds")
    if age is not None and (
        isinstance(age, bool) or not isinstance(age, int | float) or not 0 <= age < 10**9
    ):
        raise ValueError(f"age_seconds is seconds >= 0 or null: {age!r}")
    lists = {}
    for name in ("nulls", "rejected"):
        values = document.get(name, [])
        if not isinstance(values, list) or not set(values) <= set(VALUES):
            raise ValueError(f"{name} lists observation values, some of {', '.join(VALUES)}")
        lists[name] = frozenset(values)
    return Behaviour(age, lists["nulls"], lists["rejected"])


# -- answers ----------------------------------------------------------------------------


def problem(status: int, title: str, detail: str, kind: str, base: str) -> Answer:
    correlation = uuid.uuid4().hex[:8]
    return Answer(
        status,
        {
            "correlationId": correlation,
            "title": title,
            "type": f"https://api.weather.gov/problems/{kind}",
            "status": status,
            "detail": detail,
            "instance": f"{base}/requests/{correlation}",
        },
        PROBLEM_JSON,
    )


FAULT_PROBLEMS = {  # fault -> (status, title, detail, type)
    "json_500": (
        500,
        "Unexpected Problem",
        "An unexpected problem has occurred.",
        "UnexpectedProblem",
    ),
    "json_503": (
        503,
        "Service Unavailable",
        "The service is temporarily unavailable.",
        "ServiceUnavailable",
    ),
    "bad_request": (400, "Bad Request", 'Parameter "point" is invalid', "BadRequest"),
    "unauthorized": (
        403,
        "Forbidden",
        "Access denied: identify your application in User-Agent.",
        "Forbidden",
    ),
    "not_found": (404, "Not Found", "The requested resource was not found.", "NotFound"),
    "rate_limited": (
        429,
        "Too Many Requests",
        "Too many requests: slow down.",
        "RateLimitExceeded",
    ),
}


def forbidden(base: str) -> Answer:
    return problem(*FAULT_PROBLEMS["unauthorized"], base)


def decimals(text: str) -> int:
    return len(text.strip().lower().split("e")[0].partition(".")[2])


def _coordinate(text: str, limit: float) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and abs(value) <= limit else None


def plain(value: Decimal | float) -> str:
    """A coordinate as NWS writes it in URLs: up to 4 decimals, no trailing zeros."""
    text = f"{Decimal(str(value)).quantize(Decimal('0.0001'), ROUND_HALF_UP):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _iso(moment: float, offset_hours: int = 0) -> str:
    zone = UTC if not offset_hours else timezone(timedelta(hours=offset_hours))
    return datetime.fromtimestamp(moment, zone).isoformat(timespec="seconds")


def _quantity(unit: str, value: float | None, quality: str | None = "V") -> dict[str, Any]:
    entry: dict[str, Any] = {"unitCode": f"wmoUnit:{unit}", "value": value}
    if quality is not None:
        entry["qualityControl"] = quality
    return entry


def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> int:
    phi1, phi2, dlam = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    return round(math.degrees(math.atan2(y, x))) % 360


def _zones(cell: tuple[int, int]) -> tuple[int, int]:
    """The forecast zone and county numbers of a cell."""
    seed = stable_hash("nws-zone", *cell)
    return 1 + seed % 99, 1 + seed // 100 % 199


def points(lat_text: str, lon_text: str, base: str) -> Answer:
    latitude, longitude = _coordinate(lat_text, 90), _coordinate(lon_text, 180)
    if latitude is None or longitude is None:
        return problem(
            400,
            "Invalid Parameter",
            f"Invalid point {lat_text},{lon_text}",
            "InvalidParameter",
            base,
        )
    if decimals(lat_text) > 4 or decimals(lon_text) > 4:
        answer = problem(
            301,
            "Adjusting Precision Of Point Coordinate",
            "The precision of latitude/longitude points is limited to 4 decimal digits for "
            "efficiency. The location attribute contains your request mapped to the nearest "
            "supported point. If your client supports it, you will be redirected.",
            "AdjustPointPrecision",
            base,
        )
        answer.headers["Location"] = f"/points/{plain(latitude)},{plain(longitude)}"
        return answer
    lat, lon = float(latitude), float(longitude)
    if not covers(lat, lon):
        return problem(
            404,
            "Data Unavailable For Requested Point",
            f"Unable to provide data for requested point {plain(latitude)},{plain(longitude)}",
            "InvalidPoint",
            base,
        )
    cell = cell_of(lat, lon)
    office, x, y = grid(cell)
    town = station_of(cell)
    state = town.state
    forecast_zone, county = _zones(cell)
    here = f"{base}/points/{plain(latitude)},{plain(longitude)}"
    gridpoint = f"{base}/gridpoints/{office}/{x},{y}"
    radar = "K" + _letters(stable_hash("nws-radar", cell[0] // 4, cell[1] // 4) % _LETTERS)
    return Answer(
        200,
        {
            "@context": CONTEXT,
            "id": here,
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {
                "@id": here,
                "@type": "wx:Point",
                "cwa": office,
                "forecastOffice": f"{base}/offices/{office}",
                "gridId": office,
                "gridX": x,
                "gridY": y,
                "forecast": f"{gridpoint}/forecast",
                "forecastHourly": f"{gridpoint}/forecast/hourly",
                "forecastGridData": gridpoint,
                "observationStations": f"{gridpoint}/stations",
                "relativeLocation": {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [town.longitude, town.latitude]},
                    "properties": {
                        "city": town.town,
                        "state": state,
                        "distance": {
                            "unitCode": "wmoUnit:m",
                            "value": great_circle_m(town.latitude, town.longitude, lat, lon),
                        },
                        "bearing": {
                            "unitCode": "wmoUnit:degree_(angle)",
                            "value": _bearing(town.latitude, town.longitude, lat, lon),
                        },
                    },
                },
                "forecastZone": f"{base}/zones/forecast/{state}Z{forecast_zone:03d}",
                "county": f"{base}/zones/county/{state}C{county:03d}",
                "fireWeatherZone": f"{base}/zones/fire/{state}Z{forecast_zone:03d}",
                "timeZone": town.time_zone,
                "radarStation": radar,
            },
        },
        GEO_JSON,
    )


def _station_feature(item: Station, base: str) -> dict[str, Any]:
    url = f"{base}/stations/{item.identifier}"
    forecast_zone, county = _zones(item.cell)
    return {
        "id": url,
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [item.longitude, item.latitude]},
        "properties": {
            "@id": url,
            "@type": "wx:ObservationStation",
            "elevation": {"unitCode": "wmoUnit:m", "value": item.elevation},
            "stationIdentifier": item.identifier,
            "name": item.name,
            "timeZone": item.time_zone,
            "forecast": f"{base}/zones/forecast/{item.state}Z{forecast_zone:03d}",
            "county": f"{base}/zones/county/{item.state}C{county:03d}",
            "fireWeatherZone": f"{base}/zones/fire/{item.state}Z{forecast_zone:03d}",
        },
    }


def station_list(office: str, x: int, y: int, base: str) -> Answer:
    cell = cell_of_grid(office, x, y)
    if cell is None:
        return problem(
            404, "Not Found", f"Grid {office}/{x},{y} does not exist", "InvalidGridpoint", base
        )
    found = stations_for(cell)
    ids = "&".join(f"id%5B{k}%5D={s.identifier}" for k, s in enumerate(found))
    cursor = base64.b64encode(json.dumps({"s": 500}, separators=(",", ":")).encode()).decode()
    return Answer(
        200,
        {
            "@context": STATIONS_CONTEXT,
            "type": "FeatureCollection",
            "features": [_station_feature(s, base) for s in found],
            "observationStations": [f"{base}/stations/{s.identifier}" for s in found],
            "pagination": {"next": f"{base}/stations?{ids}&cursor={cursor.rstrip('=')}"},
        },
        GEO_JSON,
    )


def observation_time(now: float, behaviour: Behaviour) -> int:
    if behaviour.age_seconds is not None:
        return int(now - behaviour.age_seconds) // 60 * 60
    return int(now - 53 * 60) // 3600 * 3600 + 53 * 60


def _heat_index(celsius: float, humidity: float) -> float | None:
    if celsius < 26.7:
        return None
    t, r = celsius * 9 / 5 + 32, humidity
    f = (
        -42.379
        + 2.04901523 * t
        + 10.14333127 * r
        - 0.22475541 * t * r
        - 0.00683783 * t * t
        - 0.05481717 * r * r
        + 0.00122874 * t * t * r
        + 0.00085282 * t * r * r
        - 0.00000199 * t * t * r * r
    )
    return round((f - 32) * 5 / 9, 2)


def _wind_chill(celsius: float, km_h: float) -> float | None:
    if celsius > 10 or km_h <= 4.8:
        return None
    power = km_h**0.16
    return round(13.12 + 0.6215 * celsius - 11.37 * power + 0.3965 * celsius * power, 2)


def _sky(cloud: int) -> tuple[str, str, str]:
    """(METAR amount, text, icon) for a cloud cover in %."""
    for limit, amount, text, icon in (
        (6, "CLR", "Clear", "skc"),
        (25, "FEW", "Mostly Clear", "few"),
        (50, "SCT", "Partly Cloudy", "sct"),
        (87, "BKN", "Mostly Cloudy", "bkn"),
    ):
        if cloud <= limit:
            return amount, text, icon
    return "OVC", "Cloudy", "ovc"


def _weather(hour: Hour) -> tuple[str, str, str] | None:
    """(text, icon, METAR code) for what falls, or None."""
    if hour.snow > 0:
        return ("Snow", "snow", "SN") if hour.snow >= 1 else ("Light Snow", "snow", "-SN")
    if hour.showers >= 4:
        return "Thunderstorm", "tsra", "TSRA"
    wet = hour.rain + hour.showers
    if wet > 0:
        if wet >= 7.6:
            return "Heavy Rain", "rain", "+RA"
        return ("Rain", "rain", "RA") if wet >= 2.5 else ("Light Rain", "rain", "-RA")
    return None


def observation(
    item: Station, behaviour: Behaviour, world: World, base: str, now: float
) -> dict[str, Any]:
    """The latest observation of a station, in the recorded shape."""
    moment = observation_time(now, behaviour)
    site = site_at(world, item.latitude, item.longitude)
    hour = model_hour(site, moment)
    before = [model_hour(site, moment - k * 3600) for k in range(1, 7)]
    speed = round(hour.wind_speed * 3.6, 2)
    gust = round(hour.wind_gusts * 3.6, 2) if hour.wind_gusts - hour.wind_speed >= 5.14 else None
    direction = (round(hour.wind_direction, -1) % 360 or 360) if speed else 0
    humidity = float(hour.humidity)
    amount, sky_text, sky_icon = _sky(hour.cloud_cover)
    falling = _weather(before[0])
    text, icon = (falling[0], falling[1]) if falling else (sky_text, sky_icon)
    daytime = sun_elevation(item.latitude, item.longitude, moment) > -0.833
    stamp = _iso(moment)
    url = f"{base}/stations/{item.identifier}"
    metar_time = datetime.fromtimestamp(moment, UTC).strftime("%d%H%MZ")
    knots = round(hour.wind_speed * 1.94384)
    visibility = min(16090.0, hour.visibility)
    miles = min(10, round(visibility / 1609))

    def metar_temperature(value: float) -> str:
        return f"M{round(-value):02d}" if value < 0 else f"{round(value):02d}"

    metar = " ".join(
        part
        for part in (
            item.identifier,
            metar_time,
            f"{int(direction):03d}{knots:02d}KT",
            f"{miles}SM",
            falling[2] if falling else "",
            f"{amount}{round(2600 / 30.48):03d}" if amount != "CLR" else "CLR",
            f"{metar_temperature(hour.temperature)}/{metar_temperature(hour.dew_point)}",
            f"A{round(hour.pressure_msl * 2.953):04d}",
            "RMK AO2",
        )
        if part
    )
    rain_hour = round(before[0].precipitation, 1)
    ground = hour.pressure_msl * (1 - 2.25577e-5 * item.elevation) ** 5.25588  # at the station
    properties: dict[str, Any] = {
        "@id": f"{url}/observations/{stamp}",
        "@type": "wx:ObservationStation",
        "elevation": {"unitCode": "wmoUnit:m", "value": item.elevation},
        "station": url,
        "timestamp": stamp,
        "rawMessage": metar,
        "textDescription": text,
        "icon": f"{base}/icons/land/{'day' if daytime else 'night'}/{icon}?size=medium",
        "presentWeather": (
            [
                {
                    "intensity": None,
                    "modifier": None,
                    "weather": text.lower(),
                    "rawString": falling[2],
                }
            ]
            if falling
            else []
        ),
        "temperature": _quantity("degC", hour.temperature),
        "dewpoint": _quantity("degC", hour.dew_point),
        "windDirection": _quantity("degree_(angle)", int(direction)),
        "windSpeed": _quantity("km_h-1", speed),
        "windGust": _quantity("km_h-1", gust, "V" if gust is not None else MISSING),
        "barometricPressure": _quantity("Pa", round(ground * 100)),
        "seaLevelPressure": _quantity("Pa", round(hour.pressure_msl * 100)),
        "visibility": _quantity("m", visibility, "C"),
        "maxTemperatureLast24Hours": _quantity("degC", None, None),
        "minTemperatureLast24Hours": _quantity("degC", None, None),
        "precipitationLastHour": _quantity("mm", rain_hour, "C"),
        "precipitationLast3Hours": _quantity(
            "mm", round(sum(h.precipitation for h in before[:3]), 1), "C"
        ),
        "precipitationLast6Hours": _quantity(
            "mm", round(sum(h.precipitation for h in before), 1), "C"
        ),
        "relativeHumidity": _quantity("percent", humidity),
        "windChill": _quantity("degC", _wind_chill(hour.temperature, speed)),
        "heatIndex": _quantity("degC", _heat_index(hour.temperature, humidity)),
        "cloudLayers": [
            {
                "base": {"unitCode": "wmoUnit:m", "value": None if amount == "CLR" else 790},
                "amount": amount,
            }
        ],
    }
    for name in behaviour.nulls:
        properties[name]["value"] = None
        if "qualityControl" in properties[name]:
            properties[name]["qualityControl"] = MISSING
    for name in behaviour.rejected:
        if "qualityControl" in properties[name] or properties[name]["value"] is not None:
            properties[name]["qualityControl"] = "X"
    return {
        "@context": CONTEXT,
        "id": f"{url}/observations/{stamp}",
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [item.longitude, item.latitude]},
        "properties": properties,
    }


def with_nulls(document: Any, keep_temperature: bool) -> Any:
    """An observation with every value null (the temperature too, unless kept)."""
    properties = document.get("properties") if isinstance(document, dict) else None
    if not isinstance(properties, dict) or "timestamp" not in properties:
        return document  # faults that null values act on observations only
    for name in VALUES:
        if name != "temperature" or not keep_temperature:
            properties[name]["value"] = None
    properties["textDescription"] = ""
    return document


def _local(moment: float | None, offset: int) -> str | None:
    return None if moment is None else _iso(moment, offset)


def _alert_feature(
    alert: Alert, latitude: float, longitude: float, base: str, now: float
) -> dict[str, Any]:
    cell = cell_of(latitude, longitude)
    office, _, _ = grid(cell)
    home = station_of(cell)
    state, offset = home.state, home.utc_offset
    forecast_zone, county = _zones(cell)
    seed = stable_hash("nws-alert", latitude, longitude, alert.key, alert.event, alert.effective)
    identifier = f"urn:oid:2.49.0.1.840.0.{seed:016x}{seed % 99991:05d}.001.1"
    url = f"{base}/alerts/{identifier}"
    ending = alert.ends if alert.ends is not None else alert.expires
    until = f" until {_local(ending, offset)}" if ending is not None else ""
    headline = alert.headline or (
        f"{alert.event} issued {_local(alert.effective, offset)}{until} by NWS {office}"
    )
    words = alert.event.upper()
    parameters: dict[str, Any] = {
        "AWIPSidentifier": [f"NPW{office}"],
        "WMOidentifier": [f"WWUS7{abs(offset) % 10} K{office} {_iso(alert.effective)[8:10]}0000"],
        "NWSheadline": [f"{words} IN EFFECT{until.upper()}"],
        "BLOCKCHANNEL": ["EAS", "NWEM", "CMAS"],
    }
    if alert.ends is not None:
        parameters["eventEndingTime"] = [_iso(alert.ends)]
    response = {"Cancel": "AllClear"}.get(alert.message_type, "Prepare")
    return {
        "id": url,
        "type": "Feature",
        "geometry": None,
        "properties": {
            "@id": url,
            "@type": "wx:Alert",
            "id": identifier,
            "areaDesc": f"{home.town}; {home.town.split()[0]} County",
            "geocode": {
                "SAME": [f"0{seed % 56:02d}{county:03d}"],
                "UGC": [f"{state}Z{forecast_zone:03d}"],
            },
            "affectedZones": [f"{base}/zones/forecast/{state}Z{forecast_zone:03d}"],
            "references": [],
            "sent": _iso(alert.effective, offset),
            "effective": _iso(alert.effective, offset),
            "onset": _iso(alert.onset, offset),
            "expires": _local(alert.expires, offset),
            "ends": _local(alert.ends, offset),
            "status": alert.status,
            "messageType": alert.message_type,
            "category": "Met",
            "severity": alert.severity,
            "certainty": alert.certainty,
            "urgency": alert.urgency,
            "event": alert.event,
            "sender": "w-nws.webmaster@noaa.gov",
            "senderName": f"NWS {office}",
            "headline": headline,
            "description": alert.description,
            "instruction": alert.instruction,
            "response": response,
            "parameters": parameters,
        },
    }


def active_alerts(
    point_text: str | None, base: str, now: float, overrides: warnings.Overrides
) -> Answer:
    if not point_text:
        return problem(
            400,
            "Bad Request",
            "The fake answers /alerts/active?point=LAT,LON only",
            "BadRequest",
            base,
        )
    parts = point_text.split(",")
    values = [_coordinate(p, limit) for p, limit in zip(parts, (90, 180), strict=False)]
    if len(parts) != 2 or None in values:
        return problem(
            400, "Bad Request", f'Parameter "point" is invalid: {point_text}', "BadRequest", base
        )
    latitude, longitude = (float(v) for v in values)  # type: ignore[arg-type]
    found = (
        warnings.for_point("nws", latitude, longitude, now, overrides)
        if covers(latitude, longitude)
        else []
    )
    north = "N" if latitude >= 0 else "S"
    east = "E" if longitude >= 0 else "W"
    return Answer(
        200,
        {
            "@context": ALERTS_CONTEXT,
            "type": "FeatureCollection",
            "features": [_alert_feature(a, latitude, longitude, base, now) for a in found],
            "title": "Current watches, warnings, and advisories for "
            f"{abs(latitude):.2f} {north}, {abs(longitude):.2f} {east}",
            "updated": _iso(warnings.anchor(now)),
        },
        GEO_JSON,
    )


# -- routing ----------------------------------------------------------------------------


def serves(path: str) -> bool:
    return path == ALERTS_PATH or path.startswith(tuple(p + "/" for p in PREFIXES))


def subject(path: str) -> str | None:
    """What a fault rule matches on a parametrised path: `LAT,LON`, `WFO/X,Y` or a station id."""
    if found := _POINTS.fullmatch(path):
        return f"{found[1]},{found[2]}"
    if found := _GRID.fullmatch(path):
        return f"{found[1]}/{found[2]},{found[3]}"
    if found := _LATEST.fullmatch(path):
        return found[1]
    return None


def respond(
    path: str,
    query: dict[str, str],
    *,
    world: World,
    base: str,
    now: float,
    behaviours: dict[str, Behaviour],
    overrides: warnings.Overrides,
) -> Answer:
    if path == ALERTS_PATH:
        return active_alerts(query.get("point"), base, now, overrides)
    if found := _POINTS.fullmatch(path):
        return points(found[1], found[2], base)
    if found := _GRID.fullmatch(path):
        return station_list(found[1].upper(), int(found[2]), int(found[3]), base)
    if found := _LATEST.fullmatch(path):
        item = station(found[1])
        if item is None:
            return problem(404, "Not Found", f"Station {found[1]} not found", "NotFound", base)
        behaviour = behaviours.get(item.identifier) or default_behaviour(item.identifier)
        return Answer(200, observation(item, behaviour, world, base, now), GEO_JSON)
    return problem(404, "Not Found", f"{path} is not served by the fake", "NotFound", base)
