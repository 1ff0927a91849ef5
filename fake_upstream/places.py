"""The fake upstream's world: known places and their weather, in the upstreams' shapes."""

from __future__ import annotations

import copy
import json
import math
import time
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

NEAR_DEGREES = 0.25  # a lat,lon this close to a known place is that place
KELVIN = 273.15
MPH_PER_MPS = 2.2369363


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name (`São Paulo` ~ `sao paulo`)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


def observation_time() -> int:
    """The start of the current 10-minute slot: OWM's `dt` moves in such steps."""
    return int(time.time()) // 600 * 600


@dataclass(frozen=True)
class Place:
    """One place the fake upstream knows."""

    data: dict[str, Any]

    @property
    def names(self) -> set[str]:
        names = {fold(self.data["name"])}
        names.update(fold(n) for n in self.data.get("local_names", {}).values())
        return names

    def name_in(self, language: str) -> str:
        local = self.data.get("local_names", {})
        return local.get(language.split("_")[0].lower(), self.data["name"])

    def matches(self, name: str, state: str | None, country: str | None) -> bool:
        if fold(name) not in self.names:
            return False
        if country and fold(country) != fold(self.data["country"]):
            return False
        if state:
            states = {fold(self.data.get("state", "")), fold(self.data.get("state_code", ""))}
            if fold(state) not in states:
                return False
        return True


class World:
    """Every place, looked up the ways the upstream APIs allow."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.places = [Place(entry) for entry in document["places"]]
        self.at_sea = document["at_sea"]
        self.default_air = document["default_air"]

    @classmethod
    def load(cls) -> World:
        text = resources.files(__package__).joinpath("data/places.json").read_text("utf-8")
        return cls(json.loads(text))

    def by_query(self, query: str) -> Place | None:
        """OWM's `q=`: `city`, `city,country` or `city,state,country`."""
        parts = [part.strip() for part in query.split(",")]
        if len(parts) == 1:
            name, state, country = parts[0], None, None
        elif len(parts) == 2:
            name, state, country = parts[0], None, parts[1]
        else:
            name, state, country = parts[0], parts[1], parts[-1]
        return next((p for p in self.places if p.matches(name, state, country)), None)

    def search(self, name: str, count: int) -> list[Place]:
        """Open-Meteo geocoding: by name in any language, or by postal code."""
        wanted = fold(name)
        found = [
            p
            for p in self.places
            if wanted in p.names or wanted in (fold(z) for z in p.data.get("zip", []))
        ]
        return found[:count]

    def by_id(self, city_id: str) -> Place | None:
        return next((p for p in self.places if str(p.data["id"]) == city_id), None)

    def by_zip(self, value: str) -> Place | None:
        code, _, country = value.partition(",")
        country = (country or "US").strip().upper()
        return next(
            (
                p
                for p in self.places
                if code.strip().upper() in p.data.get("zip", []) and p.data["country"] == country
            ),
            None,
        )

    def nearest(self, latitude: float, longitude: float) -> Place | None:
        def distance(place: Place) -> float:
            return math.hypot(place.data["lat"] - latitude, place.data["lon"] - longitude)

        best = min(self.places, key=distance)
        return best if distance(best) <= NEAR_DEGREES else None


def _convert_temperature(kelvin: float, units: str) -> float:
    if units == "metric":
        return round(kelvin - KELVIN, 2)
    if units == "imperial":
        return round((kelvin - KELVIN) * 9 / 5 + 32, 2)
    return kelvin


def owm_current(
    place: Place | None,
    world: World,
    units: str,
    language: str,
    coordinates: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """`/data/2.5/weather`'s answer for a place (or a point at sea when `place` is None)."""
    weather = copy.deepcopy(place.data["weather"] if place else world.at_sea)
    now = observation_time()
    main = weather["main"]
    for key in ("temp", "feels_like", "temp_min", "temp_max"):
        if isinstance(main.get(key), int | float):
            main[key] = _convert_temperature(main[key], units)
    if units == "imperial":
        for key in ("speed", "gust"):
            if isinstance(weather["wind"].get(key), int | float):
                weather["wind"][key] = round(weather["wind"][key] * MPH_PER_MPS, 2)
    sys_block: dict[str, Any] = {
        "type": 2,
        "id": 2000000 + (place.data["id"] % 99991 if place else 0),
    }
    if place:
        sys_block["country"] = place.data["country"]
    for key in ("sunrise", "sunset"):
        if key in weather:
            sys_block[key] = now + weather.pop(key)
    if place:
        latitude, longitude = place.data["lat"], place.data["lon"]
    else:
        latitude, longitude = coordinates or (0.0, 0.0)
    answer: dict[str, Any] = {
        "coord": {"lon": round(longitude, 4), "lat": round(latitude, 4)},
        "weather": weather.pop("weather"),
        "base": "stations",
        "main": weather.pop("main"),
    }
    answer.update(weather)
    answer.update(
        {
            "dt": now,
            "sys": sys_block,
            "timezone": place.data["timezone"] if place else 0,
            "id": place.data["id"] if place else 0,
            "name": place.name_in(language) if place else "",
            "cod": 200,
        }
    )
    return answer


def owm_direct(place: Place) -> dict[str, Any]:
    """One entry of `/geo/1.0/direct`'s list."""
    entry = {
        "name": place.data["name"],
        "local_names": place.data.get("local_names", {}),
        "lat": place.data["lat"],
        "lon": place.data["lon"],
        "country": place.data["country"],
    }
    if place.data.get("state"):
        entry["state"] = place.data["state"]
    return entry


def owm_zip(place: Place, code: str) -> dict[str, Any]:
    """`/geo/1.0/zip`'s answer."""
    return {
        "zip": code,
        "name": place.data["name"],
        "lat": place.data["lat"],
        "lon": place.data["lon"],
        "country": place.data["country"],
    }


def owm_air(place: Place | None, world: World, latitude: float, longitude: float) -> dict:
    """`/data/2.5/air_pollution`'s answer."""
    air = (place.data.get("air") if place else None) or world.default_air
    return {
        "coord": {"lon": longitude, "lat": latitude},
        "list": [
            {
                "main": {"aqi": air["aqi"]},
                "components": dict(air["components"]),
                "dt": observation_time(),
            }
        ],
    }


def wmo_code(owm_id: int) -> int:
    """The WMO weather code closest to an OWM condition id."""
    if 200 <= owm_id < 300:
        return 95
    if 300 <= owm_id < 400:
        return 51 if owm_id < 310 else 53
    if 500 <= owm_id < 600:
        return {500: 61, 501: 63, 511: 66, 520: 80, 521: 81, 522: 82}.get(owm_id, 65)
    if 600 <= owm_id < 700:
        return {600: 71, 601: 73, 602: 75, 620: 85, 621: 85, 622: 86}.get(owm_id, 77)
    if owm_id in (701, 721, 741):
        return 45
    if 700 <= owm_id < 800:
        return 48
    return {800: 0, 801: 1, 802: 2}.get(owm_id, 3)


def _dew_point(temperature: float, humidity: float) -> float:
    gamma = math.log(max(humidity, 1) / 100) + 17.625 * temperature / (243.04 + temperature)
    return round(243.04 * gamma / (17.625 - gamma), 1)


def open_meteo_values(place: Place | None, world: World) -> dict[str, float | int]:
    """Every `current=` variable the fake knows, in Open-Meteo's default units (wind in m/s)."""
    weather = place.data["weather"] if place else world.at_sea
    main, wind = weather["main"], weather.get("wind", {})
    temperature = round(main["temp"] - KELVIN, 1)
    rain = weather.get("rain", {}).get("1h", 0.0)
    snow_mm = weather.get("snow", {}).get("1h", 0.0)
    values: dict[str, float | int] = {
        "temperature_2m": temperature,
        "relative_humidity_2m": main["humidity"],
        "apparent_temperature": round(main["feels_like"] - KELVIN, 1),
        "dew_point_2m": _dew_point(temperature, main["humidity"]),
        "precipitation": round(rain + snow_mm, 2),
        "rain": rain,
        "showers": 0.0,
        "snowfall": round(snow_mm / 10, 3),  # Open-Meteo gives snowfall in cm
        "weather_code": wmo_code(weather["weather"][0]["id"]),
        "cloud_cover": weather.get("clouds", {}).get("all", 0),
        "pressure_msl": float(main.get("sea_level", main["pressure"])),
        "surface_pressure": float(main.get("grnd_level", main["pressure"])),
        "wind_speed_10m": wind.get("speed", 0.0),
        "wind_direction_10m": wind.get("deg", 0),
        "wind_gusts_10m": wind.get("gust", wind.get("speed", 0.0)),
        "is_day": 1,
    }
    if "visibility" in weather:
        values["visibility"] = float(weather["visibility"])
    return values


def sun_times(place: Place | None, world: World, now: int) -> dict[str, int]:
    """Today's sunrise and sunset, where the sun does rise and set (not in polar day or night)."""
    weather = place.data["weather"] if place else world.at_sea
    return {key: now + weather[key] for key in ("sunrise", "sunset") if key in weather}


OPEN_METEO_DAILY = ("sunrise", "sunset")

OPEN_METEO_UNITS = {
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "apparent_temperature": "°C",
    "dew_point_2m": "°C",
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
    "is_day": "",
}

WIND_UNITS = {
    "kmh": ("km/h", 3.6),
    "ms": ("m/s", 1.0),
    "mph": ("mp/h", MPH_PER_MPS),
    "kn": ("kn", 1.943844),
}


def open_meteo_geocoding(place: Place, language: str) -> dict[str, Any]:
    """One entry of Open-Meteo geocoding's `results`."""
    return {
        "id": place.data["id"],
        "name": place.name_in(language),
        "latitude": place.data["lat"],
        "longitude": place.data["lon"],
        "elevation": float(place.data.get("elevation", 0)),
        "feature_code": "PPLA",
        "country_code": place.data["country"],
        "country": place.data.get("country_name", place.data["country"]),
        "admin1": place.data.get("state", ""),
        "timezone": place.data.get("tz_name", "GMT"),
        "postcodes": list(place.data.get("zip", [])),
    }
