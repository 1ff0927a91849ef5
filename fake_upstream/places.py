"""The fake upstream's world: known places, their weather now and hour by hour, in the
upstreams' shapes.

The current weather of each place is fixed (`data/places.json`), so tests can assert
it. What lies ahead comes from one deterministic model (`model_hour`): a daily
temperature cycle around the current temperature, wetness that rises and falls
(rain above a threshold, snow below 0.5 °C, showers where the place is convective),
wind, gusts, cloud, and a UV index from the sun's height. It is a function of the
place and the hour alone, so every request, and both providers, see the same future:
OpenWeatherMap's 3-hour `rain.3h` is the sum of the three model hours before its
`dt`, Open-Meteo's hourly `precipitation` at t is the model hour before t. Sunrise and
sunset come from the same sun, except where a place is in polar night.
"""

from __future__ import annotations

import copy
import hashlib
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
GLOBE_ID = 6295630  # what OpenWeatherMap calls a point at sea ("Globe")
HORIZON_DEGREES = -0.833  # the sun's centre at sunrise, refraction included
# OpenWeatherMap's condition ids the model produces: (main, description, icon).
OWM_CONDITIONS = {
    201: ("Thunderstorm", "thunderstorm with rain", "11"),
    500: ("Rain", "light rain", "10"),
    501: ("Rain", "moderate rain", "10"),
    502: ("Rain", "heavy intensity rain", "10"),
    520: ("Rain", "light intensity shower rain", "09"),
    521: ("Rain", "shower rain", "09"),
    600: ("Snow", "light snow", "13"),
    601: ("Snow", "snow", "13"),
    602: ("Snow", "heavy snow", "13"),
    800: ("Clear", "clear sky", "01"),
    801: ("Clouds", "few clouds", "02"),
    802: ("Clouds", "scattered clouds", "03"),
    803: ("Clouds", "broken clouds", "04"),
    804: ("Clouds", "overcast clouds", "04"),
}


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name (`São Paulo` ~ `sao paulo`)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


def observation_time() -> int:
    """The start of the current 10-minute slot: OWM's `dt` moves in such steps."""
    return int(time.time()) // 600 * 600


def local_midnight(moment: float, utc_offset: int) -> int:
    """The start, as Unix time, of the local day holding `moment`."""
    return int(moment + utc_offset) // 86400 * 86400 - utc_offset


@dataclass(frozen=True)
class Place:
    """One place the fake upstream knows."""

    data: dict[str, Any]

    @property
    def names(self) -> set[str]:
        names = {fold(self.data["name"])}
        names.update(fold(n) for n in self.data.get("local_names", {}).values())
        return names

    @property
    def country(self) -> str:
        return str(self.data.get("country", ""))

    def name_in(self, language: str) -> str:
        local = self.data.get("local_names", {})
        return local.get(language.split("_")[0].lower(), self.data["name"])

    def matches(self, name: str, state: str | None, country: str | None) -> bool:
        if fold(name) not in self.names:
            return False
        if country and fold(country) != fold(self.country):
            return False
        if state:
            states = {fold(self.data.get("state", "")), fold(self.data.get("state_code", ""))}
            if fold(state) not in states:
                return False
        return True


@dataclass(frozen=True)
class Site:
    """Where the weather model runs: a known place, or a point at sea."""

    latitude: float
    longitude: float
    utc_offset: int
    elevation: float
    weather: dict[str, Any]  # the weather now, in OpenWeatherMap's standard units
    model: dict[str, Any]  # the model's knobs (see data/places.json)
    seed: int
    polar_night: bool = False

    @property
    def phase(self) -> float:
        return self.seed % 628 / 100


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
                if code.strip().upper() in p.data.get("zip", []) and p.country == country
            ),
            None,
        )

    def nearest(self, latitude: float, longitude: float) -> Place | None:
        def distance(place: Place) -> float:
            return math.hypot(place.data["lat"] - latitude, place.data["lon"] - longitude)

        best = min(self.places, key=distance)
        return best if distance(best) <= NEAR_DEGREES else None

    def site(self, place: Place | None, coordinates: tuple[float, float] = (0.0, 0.0)) -> Site:
        """The model's view of a place, or of the point at sea at `coordinates`."""
        if place is not None:
            data = place.data
            return Site(
                data["lat"],
                data["lon"],
                data["timezone"],
                float(data.get("elevation", 0)),
                data["weather"],
                data.get("model", {}),
                data["id"],
                data.get("polar_night", False),
            )
        latitude, longitude = coordinates
        seed = round(abs(latitude) * 1000 + abs(longitude) * 100)
        return Site(latitude, longitude, 0, 0.0, self.at_sea, {}, seed)


# -- the national services' areas (NWS, MET Norway, DWD) ---------------------------------

# Boxes (south, north, west, east) in degrees. They are rough and overlap the
# neighbours a little (the German box holds Zurich and Innsbruck, the Norwegian one
# parts of Sweden and Finland): enough for a fake that must say "outside" somewhere.
AREAS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "us": (
        (24.4, 49.4, -125.0, -66.9),  # the contiguous states
        (51.0, 71.5, -180.0, -129.9),  # Alaska (the Aleutians west of 180 left out)
        (18.9, 22.3, -160.3, -154.8),  # Hawaii
    ),
    "norway": ((57.9, 71.3, 4.5, 31.2),),
    "germany": ((47.2, 55.1, 5.8, 15.1),),
}


def in_area(area: str, latitude: float, longitude: float) -> bool:
    """Whether a point lies in one of `AREAS[area]`'s boxes (edges included)."""
    return any(
        south <= latitude <= north and west <= longitude <= east
        for south, north, west, east in AREAS[area]
    )


def stable_hash(*parts: object) -> int:
    """A hash that is the same in every process (Python's own `hash` of a str is not)."""
    digest = hashlib.sha1("|".join(map(str, parts)).encode(), usedforsecurity=False)
    return int.from_bytes(digest.digest()[:8], "big")


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two points on a sphere of the Earth's mean radius."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlam = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def site_at(world: World, latitude: float, longitude: float) -> Site:
    """The model's site for any point: the known place there, else a point at sea."""
    return world.site(world.nearest(latitude, longitude), (latitude, longitude))


# -- the sun ------------------------------------------------------------------------


def _solar_hour(longitude: float, moment: float) -> float:
    return (moment % 86400 / 3600 + longitude / 15) % 24


def _declination(moment: float) -> float:
    day = (moment - 946684800) / 86400 % 365.2422  # days since 1 January
    return -23.44 * math.cos(2 * math.pi * (day + 10) / 365.2422)


def sun_elevation(latitude: float, longitude: float, moment: float) -> float:
    """The sun's height above the horizon in degrees (no equation of time: close enough)."""
    lat, dec = math.radians(latitude), math.radians(_declination(moment))
    angle = math.radians(15 * (_solar_hour(longitude, moment) - 12))
    sine = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sine))))


def sun_times(site: Site, day_start: int) -> tuple[int, int] | None:
    """Sunrise and sunset on the local day starting at `day_start`; None in polar day or night."""
    if site.polar_night:
        return None
    middle = day_start + 43200
    noon = middle + ((12 - _solar_hour(site.longitude, middle) + 12) % 24 - 12) * 3600
    lat, dec = math.radians(site.latitude), math.radians(_declination(noon))
    cosine = (math.sin(math.radians(HORIZON_DEGREES)) - math.sin(lat) * math.sin(dec)) / (
        math.cos(lat) * math.cos(dec)
    )
    if not -1 <= cosine <= 1:
        return None
    half = math.degrees(math.acos(cosine)) / 15 * 3600
    return round(noon - half), round(noon + half)


# -- the weather model ----------------------------------------------------------------


@dataclass(frozen=True)
class Hour:
    """The model at one moment (instant values) and over the hour that follows (amounts)."""

    temperature: float  # °C
    apparent_temperature: float
    humidity: int  # %
    pressure_msl: float  # hPa
    surface_pressure: float
    wind_speed: float  # m/s
    wind_gusts: float
    wind_direction: int
    cloud_cover: int  # %
    visibility: float  # m
    uv_index: float
    uv_index_clear_sky: float
    is_day: int
    pop: float  # chance of precipitation in the hour that follows, 0 to 1
    rain: float  # mm in the hour that follows
    showers: float
    snow: float  # mm of water

    @property
    def precipitation(self) -> float:
        return round(self.rain + self.showers + self.snow, 1)

    @property
    def dew_point(self) -> float:
        return dew_point(self.temperature, self.humidity)


def _falling(weather: dict[str, Any]) -> bool:
    return any((weather.get(kind) or {}).get("1h", 0) > 0 for kind in ("rain", "snow"))


def _wetness(site: Site, moment: float) -> tuple[float, float]:
    """How wet the sky is at `moment` (rain falls above 0.5), and its mean."""
    knobs = site.model
    mean = knobs.get("wet", 0.45 if _falling(site.weather) else 0.25)
    swing = knobs.get("wet_swing", 0.35)
    if knobs.get("convective"):  # storms in the late afternoon, some days stronger
        angle = 2 * math.pi * (_solar_hour(site.longitude, moment) - 17) / 24
        strength = 0.9 + 0.1 * math.sin(2 * math.pi * moment / (79 * 3600) + site.phase)
        return mean + swing * strength * math.cos(angle), mean
    period = (30 + site.seed % 37) * 3600  # fronts pass every day or two
    return mean + swing * math.sin(2 * math.pi * moment / period + site.phase), mean


def clear_sky_uv(elevation: float) -> float:
    """The clear-sky UV index for the sun at `elevation` degrees."""
    if elevation <= 0:
        return 0.0
    return 12.5 * math.sin(math.radians(elevation)) ** 2.42


def twentieth(value: float) -> float:
    return round(round(value * 20) / 20, 2)  # Open-Meteo's UV steps of 0.05


def model_hour(site: Site, moment: int) -> Hour:
    """The model's weather at `moment` and over the hour after it."""
    knobs, weather = site.model, site.weather
    main, wind = weather["main"], weather.get("wind") or {}
    wet, mean = _wetness(site, moment + 1800)
    base = main["temp"] - KELVIN
    cycle = 2 * math.pi * (_solar_hour(site.longitude, moment) - 15) / 24
    drift = 1.5 * math.sin(2 * math.pi * moment / (5 * 86400) + site.phase)
    temperature = base + knobs.get("swing", 3.0) * math.cos(cycle) + drift
    amount = round(knobs.get("rate", 1.5) * max(0.0, wet - 0.5) * 2, 1)
    snow = amount if temperature <= 0.5 else 0.0
    showers = amount - snow if knobs.get("convective") else 0.0
    cloud = round(weather.get("clouds", {}).get("all", 50) + 100 * (wet - mean))
    cloud = max(cloud, 80) if amount else cloud
    cloud = min(100, max(0, cloud))
    sea_level = main.get("sea_level", main["pressure"])
    ground = main.get("grnd_level", sea_level - site.elevation / 8.3)
    speed = wind.get("speed", 0.0)
    gust_ratio = wind["gust"] / speed if speed and wind.get("gust") else 1.5
    speed = speed * (1 + 0.3 * math.sin(2 * math.pi * moment / 61200 + site.phase))
    speed += 3 * max(0.0, wet - 0.5)
    turn = 25 * math.sin(2 * math.pi * moment / 104400 + site.phase)
    elevation = -90.0 if site.polar_night else sun_elevation(site.latitude, site.longitude, moment)
    clear_uv = clear_sky_uv(elevation)
    feeling = main.get("feels_like", main["temp"]) - main["temp"]
    humidity = round(main["humidity"] - 2.5 * (temperature - base) + 20 * (wet - mean))
    return Hour(
        temperature=round(temperature, 1),
        apparent_temperature=round(temperature + feeling, 1),
        humidity=min(100, max(5, humidity)),
        pressure_msl=round(sea_level - 6 * (wet - mean), 1),
        surface_pressure=round(ground - 6 * (wet - mean), 1),
        wind_speed=round(speed, 2),
        wind_gusts=round(speed * gust_ratio, 2),
        wind_direction=round(wind.get("deg", 0) + turn) % 360,
        cloud_cover=cloud,
        visibility=float(max(200, round(weather.get("visibility", 10000) - 1500 * amount))),
        uv_index=twentieth(clear_uv * (1 - 0.6 * cloud / 100)),
        uv_index_clear_sky=twentieth(clear_uv),
        is_day=int(elevation > HORIZON_DEGREES),
        pop=round(min(1.0, max(0.0, wet)), 2),
        rain=round(amount - snow - showers, 1),
        showers=round(showers, 1),
        snow=snow,
    )


def condition(rain: float, showers: float, snow: float, cloud: int) -> int:
    """The OpenWeatherMap condition id for an hour's rain, showers and snow (mm) and cloud."""
    if snow > 0 and snow >= rain + showers:
        return 600 if snow < 1 else 601 if snow < 4 else 602
    if showers > 0:
        return 520 if showers < 1 else 521 if showers < 4 else 201
    if rain > 0:
        return 500 if rain < 2.5 else 501 if rain < 7.6 else 502
    return (
        800
        if cloud < 11
        else 801
        if cloud < 25
        else 802
        if cloud < 51
        else 803
        if cloud < 85
        else 804
    )


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


def dew_point(temperature: float, humidity: float) -> float:
    gamma = math.log(max(humidity, 1) / 100) + 17.625 * temperature / (243.04 + temperature)
    return round(243.04 * gamma / (17.625 - gamma), 1)


# -- OpenWeatherMap's shapes ----------------------------------------------------------------


def _convert_temperature(kelvin: float, units: str) -> float:
    if units == "metric":
        return round(kelvin - KELVIN, 2)
    if units == "imperial":
        return round((kelvin - KELVIN) * 9 / 5 + 32, 2)
    return round(kelvin, 2)


def _convert_speed(metres_per_second: float, units: str) -> float:
    factor = MPH_PER_MPS if units == "imperial" else 1.0
    return round(metres_per_second * factor, 2)


def _plain(value: float) -> float | int:
    """A whole number as an integer, as OpenWeatherMap writes `pop` 0 and 1."""
    return int(value) if float(value).is_integer() else value


def owm_current(
    place: Place | None,
    world: World,
    units: str,
    language: str,
    coordinates: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """`/data/2.5/weather`'s answer for a place (or a point at sea when `place` is None)."""
    site = world.site(place, coordinates or (0.0, 0.0))
    weather = copy.deepcopy(site.weather)
    now = observation_time()
    main = weather["main"]
    for key in ("temp", "feels_like", "temp_min", "temp_max"):
        if isinstance(main.get(key), int | float):
            main[key] = _convert_temperature(main[key], units)
    if units == "imperial":
        for key in ("speed", "gust"):
            if isinstance(weather["wind"].get(key), int | float):
                weather["wind"][key] = _convert_speed(weather["wind"][key], units)
    legacy = place is not None and place.data.get("legacy", False)
    # At sea: no country, type or id, as OWM's "Globe"; the 2013 shape had no type or id.
    sys_block: dict[str, Any] = {}
    if place is not None and not legacy:
        sys_block.update(type=2, id=2000000 + place.data["id"] % 99991)
    if place is not None and place.country:
        sys_block["country"] = place.country
    sun = sun_times(site, local_midnight(now, site.utc_offset))
    if sun:
        sys_block.update(sunrise=sun[0], sunset=sun[1])
    answer: dict[str, Any] = {
        "coord": {"lon": round(site.longitude, 4), "lat": round(site.latitude, 4)},
        "weather": weather.pop("weather"),
        "base": "gdps stations" if legacy else "stations",
        "main": weather.pop("main"),
    }
    answer.update(weather)
    answer.update({"dt": now, "sys": sys_block})
    if not legacy:
        answer["timezone"] = site.utc_offset
    answer.update(
        {
            "id": place.data["id"] if place else GLOBE_ID,
            "name": place.name_in(language) if place else "Globe",
            "cod": 200,
        }
    )
    return answer


def _owm_step(site: Site, moment: int, units: str, index: int) -> dict[str, Any]:
    """One step of `/data/2.5/forecast`: the model at `moment`, sums of the 3 hours before
    (`rain.3h`, as documented: "for last 3 hours"), and the chance of precipitation of
    the 3 hours from `moment` (the step's own)."""
    at = model_hour(site, moment)
    before = [model_hour(site, moment - hours * 3600) for hours in (3, 2, 1)]
    ahead = [model_hour(site, moment + hours * 3600) for hours in (0, 1, 2)]
    rain = round(sum(h.rain + h.showers for h in before), 2)
    snow = round(sum(h.snow for h in before), 2)
    # The condition, like the chance of precipitation, is the step's own 3 hours.
    wet = sum(h.rain for h in ahead) / 3, sum(h.showers for h in ahead) / 3
    owm_id = condition(wet[0], wet[1], sum(h.snow for h in ahead) / 3, at.cloud_cover)
    main, description, icon = OWM_CONDITIONS[owm_id]
    pod = "d" if at.is_day else "n"
    spread = (0.47, 0.23)[index] if index < 2 else 0  # the first steps' `temp_kf`, as upstream
    kelvin = at.temperature + KELVIN
    entry: dict[str, Any] = {
        "dt": moment,
        "main": {
            "temp": _convert_temperature(kelvin, units),
            "feels_like": _convert_temperature(at.apparent_temperature + KELVIN, units),
            "temp_min": _convert_temperature(kelvin - spread, units),
            "temp_max": _convert_temperature(kelvin, units),
            "pressure": round(at.pressure_msl),
            "sea_level": round(at.pressure_msl),
            "grnd_level": round(at.surface_pressure),
            "humidity": at.humidity,
            "temp_kf": spread,
        },
        "weather": [{"id": owm_id, "main": main, "description": description, "icon": icon + pod}],
        "clouds": {"all": at.cloud_cover},
        "wind": {
            "speed": _convert_speed(at.wind_speed, units),
            "deg": at.wind_direction,
            "gust": _convert_speed(at.wind_gusts, units),
        },
        "visibility": min(10000, round(at.visibility)),
        "pop": _plain(max(h.pop for h in ahead)),
    }
    if rain > 0:
        entry["rain"] = {"3h": rain}
    if snow > 0:
        entry["snow"] = {"3h": snow}
    entry["sys"] = {"pod": pod}
    entry["dt_txt"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))
    return entry


def owm_forecast(
    place: Place | None,
    world: World,
    units: str,
    language: str,
    count: int,
    coordinates: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """`/data/2.5/forecast`'s answer: `count` steps of 3 hours, from the first one after now."""
    site = world.site(place, coordinates or (0.0, 0.0))
    now = time.time()
    first = int(now) // 10800 * 10800 + 10800
    city: dict[str, Any] = {
        "id": place.data["id"] if place else GLOBE_ID,
        "name": place.name_in(language) if place else "Globe",
        "coord": {"lat": round(site.latitude, 4), "lon": round(site.longitude, 4)},
    }
    if place is not None and place.country:
        city["country"] = place.country
    city["population"] = place.data.get("population", 0) if place else 0
    city["timezone"] = site.utc_offset
    sun = sun_times(site, local_midnight(now, site.utc_offset))
    if sun:
        city.update(sunrise=sun[0], sunset=sun[1])
    return {
        "cod": "200",
        "message": 0,
        "cnt": count,
        "list": [_owm_step(site, first + i * 10800, units, i) for i in range(count)],
        "city": city,
    }


def owm_direct(place: Place) -> dict[str, Any]:
    """One entry of `/geo/1.0/direct`'s list."""
    entry = {
        "name": place.data["name"],
        "local_names": place.data.get("local_names", {}),
        "lat": place.data["lat"],
        "lon": place.data["lon"],
    }
    if place.country:
        entry["country"] = place.country
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
        "country": place.country,
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


def open_meteo_geocoding(place: Place, language: str) -> dict[str, Any]:
    """One entry of Open-Meteo geocoding's `results`: keys a place lacks are left out."""
    data = place.data
    entry: dict[str, Any] = {
        "id": data["id"],
        "name": place.name_in(language),
        "latitude": data["lat"],
        "longitude": data["lon"],
    }
    if "elevation" in data:
        entry["elevation"] = float(data["elevation"])
    entry["feature_code"] = data.get("feature_code", "PPLA")
    if place.country:
        entry["country_code"] = place.country
    entry["timezone"] = data.get("tz_name", "GMT")
    if data.get("population"):
        entry["population"] = data["population"]
    if data.get("zip"):
        entry["postcodes"] = list(data["zip"])
    if data.get("country_name"):
        entry["country"] = data["country_name"]
    if data.get("state"):
        entry["admin1"] = data["state"]
    return entry
