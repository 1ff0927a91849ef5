"""The US National Weather Service's station observations (api.weather.gov; keyless,
public domain) into a Reading: what the nearest station measured.

A point (4 decimals) is asked `GET /points/LAT,LON` once a day: its
`observationStations` names the grid cell's station list, which is asked once a
day too, only by its path and always on the configured `base_url` (no answer
steers where the exporter connects). The stations are ordered by great-circle
distance from the point, and the nearest is asked `GET
/stations/ID/observations/latest`, kept per station for the module's
`cache_ttl`, so nearby targets that share a station share its call. An
observation without a temperature, or older than 2 hours, sends the probe to
the next nearest station, 3 stations at most; when all are older, the
freshest answers (its age shows). A `station:ID` target asks that station
alone. Values come as `{value, unitCode, qualityControl}`: each is converted by
its unit (`model/units.py`), and left out when `null`, in a unit not known, or
rejected by quality control (`X`). Every request names the exporter and the
module's `contact`, asks for GeoJSON and accepts gzip.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from multitarget_exporter import __version__
from multitarget_exporter.config.provider_kinds import NWS, ProviderKind
from multitarget_exporter.model import units
from multitarget_exporter.model.reading import (
    Condition,
    Failure,
    FailureReason,
    ProbeResult,
    Reading,
    dew_point_celsius,
)
from multitarget_exporter.model.targets import (
    POINT_DECIMALS,
    CityId,
    Location,
    StationId,
    rounded,
)
from multitarget_exporter.model.warning import coordinate_text, instant
from multitarget_exporter.providers.geocoding import Geocoder, Place
from multitarget_exporter.providers.stations import (
    CURRENT_SECONDS,
    LISTS_SECONDS,
    Answer,
    KeptAnswers,
    great_circle_meters,
    label_text,
)
from multitarget_exporter.upstream import client as upstream
from multitarget_exporter.upstream.answers import invalid, json_answer, number, text
from multitarget_exporter.upstream.gate import Gate
from multitarget_exporter.upstream.revalidation import MemoryValidators

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import ModuleConfig
    from multitarget_exporter.model.deadline import Deadline
    from multitarget_exporter.runtime.probelog import ProbeLog
    from multitarget_exporter.upstream.revalidation import Validators

STATIONS_ASKED = 3  # the nearest, then the next two when it is silent or has no temperature
MAX_STATIONS = 500  # of a list: the NWS's own page size
STATION_ID = re.compile(r"[A-Za-z0-9]{1,16}")
# The only list an answer may name: a grid cell's, asked on the configured base_url.
_STATIONS_PATH = re.compile(r"/gridpoints/[A-Za-z0-9]{1,8}/\d{1,4},\d{1,4}/stations")
# Failures of one station's call that leave the others worth asking.
_STATION_ONLY = (FailureReason.NOT_FOUND, FailureReason.INVALID_RESPONSE)


@dataclass(frozen=True, slots=True)
class Station:
    """One station of a list."""

    identifier: str
    name: str
    latitude: float
    longitude: float
    elevation: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """A station's latest observation in base units (None: not given, unknown unit, or
    rejected), kept per station in this compact form."""

    station: str
    timestamp: float
    temperature: float | None = None
    dew_point: float | None = None
    humidity: float | None = None
    sea_level_pressure: float | None = None
    ground_pressure: float | None = None
    wind_speed: float | None = None
    wind_gust: float | None = None
    wind_direction: float | None = None
    visibility: float | None = None
    precipitation_hour: float | None = None
    apparent: float | None = None
    text: str = ""
    elevation: float | None = None
    latitude: float | None = None
    longitude: float | None = None


_OBSERVATION_FIELDS = frozenset(field.name for field in fields(Observation))


def restore(document: Any) -> Observation | str:
    """A kept observation (plain JSON data once it went through Redis), or why it is none:
    the reason kept for an unusable answer, or a damaged entry."""
    if isinstance(document, dict) and isinstance(document.get("unusable"), str):
        return document["unusable"]
    if not isinstance(document, dict) or not set(document) <= _OBSERVATION_FIELDS:
        return "kept observation cannot be read"
    try:
        return Observation(**document)
    except TypeError:
        return "kept observation cannot be read"


def quantity(properties: Any, name: str, kind: str) -> float | None:
    """One `{value, unitCode, qualityControl}` entry as `kind` in its base unit; None when
    null, in a unit not known, or rejected (`qualityControl` X)."""
    entry = properties.get(name) if isinstance(properties, dict) else None
    if not isinstance(entry, dict) or entry.get("qualityControl") == "X":
        return None
    return units.wmo_quantity(number(entry, "value"), text(entry, "unitCode"), kind)


def stations_path(document: Any) -> str | None:
    """The path of a point's station list: `observationStations`' path (its host is never
    used), else the grid cell's; None when the answer names no list."""
    properties = document.get("properties") if isinstance(document, dict) else None
    named = text(properties, "observationStations")
    if named:
        path = urllib.parse.urlsplit(named).path
        return path if _STATIONS_PATH.fullmatch(path) else None
    grid, x, y = (
        text(properties, "gridId"),
        number(properties, "gridX"),
        number(properties, "gridY"),
    )
    if grid is None or x is None or y is None or not x.is_integer() or not y.is_integer():
        return None
    path = f"/gridpoints/{grid}/{int(x)},{int(y)}/stations"
    return path if _STATIONS_PATH.fullmatch(path) else None


def _coordinate(value: Any) -> float | None:
    return number({"value": value}, "value")


def parse_stations(document: Any) -> list[Station] | str:
    """A station list's stations with their coordinates, or why there are none."""
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list):
        return "the station list has no features"
    found = []
    for feature in features[:MAX_STATIONS]:
        properties = feature.get("properties") if isinstance(feature, dict) else None
        identifier = text(properties, "stationIdentifier")
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not identifier or not STATION_ID.fullmatch(identifier):
            continue
        if not isinstance(coordinates, list) or len(coordinates) < 2:
            continue
        longitude, latitude = _coordinate(coordinates[0]), _coordinate(coordinates[1])
        if latitude is None or longitude is None:
            continue
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            continue
        found.append(
            Station(
                identifier.upper(),
                label_text(properties.get("name") if isinstance(properties, dict) else None),
                latitude,
                longitude,
                quantity(properties, "elevation", "length"),
            )
        )
    if not features:
        return "the station list is empty"
    if not found:
        return "no station of the list has an id and coordinates"
    return found


def nearest(
    stations: list[Station], latitude: float, longitude: float, count: int = STATIONS_ASKED
) -> list[tuple[Station, float]]:
    """The `count` stations nearest the point, with their great-circle distances."""
    measured = [
        (station, great_circle_meters(latitude, longitude, station.latitude, station.longitude))
        for station in stations
    ]
    measured.sort(key=lambda pair: pair[1])  # stable: the list's order breaks ties
    return measured[:count]


def parse_observation(document: Any, station: str) -> Observation | str:
    """A latest observation in base units, or why it cannot be read."""
    properties = document.get("properties") if isinstance(document, dict) else None
    if not isinstance(properties, dict):
        return "the observation has no properties"
    timestamp = instant(properties.get("timestamp"))
    if timestamp is None:
        return (
            f"the observation's timestamp {str(properties.get('timestamp'))[:40]!r} is not a time"
        )
    geometry = document.get("geometry")
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    latitude = longitude = None
    if isinstance(coordinates, list) and len(coordinates) >= 2:
        longitude, latitude = _coordinate(coordinates[0]), _coordinate(coordinates[1])
    return Observation(
        station=station,
        timestamp=timestamp,
        temperature=quantity(properties, "temperature", "temperature"),
        dew_point=quantity(properties, "dewpoint", "temperature"),
        humidity=quantity(properties, "relativeHumidity", "ratio"),
        sea_level_pressure=quantity(properties, "seaLevelPressure", "pressure"),
        ground_pressure=quantity(properties, "barometricPressure", "pressure"),
        wind_speed=quantity(properties, "windSpeed", "speed"),
        wind_gust=quantity(properties, "windGust", "speed"),
        wind_direction=quantity(properties, "windDirection", "angle"),
        visibility=quantity(properties, "visibility", "length"),
        precipitation_hour=quantity(properties, "precipitationLastHour", "length"),
        apparent=(
            quantity(properties, "heatIndex", "temperature")
            if quantity(properties, "heatIndex", "temperature") is not None
            else quantity(properties, "windChill", "temperature")
        ),
        text=label_text(properties.get("textDescription")),
        elevation=quantity(properties, "elevation", "length"),
        latitude=latitude if latitude is not None and -90 <= latitude <= 90 else None,
        longitude=longitude if longitude is not None and -180 <= longitude <= 180 else None,
    )


def reading_of(
    observation: Observation,
    station: Station | None,
    distance: float | None,
    latitude: float | None,
    longitude: float | None,
    place: Place | None,
) -> Reading:
    """The Reading of an observation with a temperature, for a target's point (or, for a
    `station:` target, the station's own: no point, no distance)."""
    assert observation.temperature is not None
    humidity = units.probability(observation.humidity)
    dew_point = observation.dew_point
    if dew_point is None and humidity is not None:
        dew_point = dew_point_celsius(observation.temperature, humidity)
    direction = observation.wind_direction
    rain = units.amount(observation.precipitation_hour)
    elevation = station.elevation if station and station.elevation is not None else None
    return Reading(
        provider=NWS.name,
        temperature_celsius=observation.temperature,
        apparent_temperature_celsius=observation.apparent,
        dew_point_celsius=dew_point,
        relative_humidity_ratio=humidity,
        pressure_pascals=units.amount(observation.sea_level_pressure),
        ground_pressure_pascals=units.amount(observation.ground_pressure),
        wind_speed_meters_per_second=units.amount(observation.wind_speed),
        wind_gust_meters_per_second=units.amount(observation.wind_gust),
        wind_direction_degrees=direction
        if direction is not None and 0 <= direction <= 360
        else None,
        visibility_meters=units.amount(observation.visibility),
        rain_meters={"1h": rain} if rain is not None else {},
        # Not measured is not "no rain": a station without the value has no rain family.
        observes_precipitation=rain is not None,
        observes_snow=False,
        conditions=(Condition("", observation.text, ""),) if observation.text else (),
        observation_timestamp_seconds=observation.timestamp,
        location_name=place.name if place else "",
        location_country=place.country if place else "",
        latitude_degrees=latitude if latitude is not None else observation.latitude,
        longitude_degrees=longitude if longitude is not None else observation.longitude,
        station_id=observation.station,
        station_name=station.name if station else "",
        station_distance_meters=distance,
        station_elevation_meters=elevation if elevation is not None else observation.elevation,
    )


class Nws:
    """The NWS's station observations: the nearest current station to a point."""

    kind: ClassVar[ProviderKind] = NWS
    name: ClassVar[str] = NWS.name

    def __init__(
        self, module: ModuleConfig, validators: Validators | None = None, gate: Gate | None = None
    ) -> None:
        self._base_url = module.base_url
        self._upstream = upstream.Upstream(self.name, gate=gate)
        geocoding_url = module.geocoding_url or self.kind.default_geocoding_url
        self._geocoder = Geocoder(geocoding_url, module.language, self._upstream, {})
        agent = f"multitarget_exporter/{__version__} {module.contact}".strip()
        self._headers = {
            "User-Agent": agent,
            "Accept": "application/geo+json",
            "Accept-Encoding": "gzip",
        }
        self._cache_ttl = module.cache_ttl_seconds
        self._kept = KeptAnswers(validators if validators is not None else MemoryValidators(1000))
        # Usually one call: the observation (points and lists are asked once a day, like
        # a place name's geocoding, and further stations only when the nearest is silent).
        self.calls_per_fetch = 1

    def unsupported(self, location: Location) -> str | None:
        if isinstance(location, CityId):
            return (
                "id: targets are OpenWeatherMap city ids; an nws module takes a place name, "
                "zip:, lat,lon or station:ID"
            )
        return None

    def stored(self, location: Location) -> ProbeResult | None:
        """The reading kept answers give without a call (the point's, its list's and its
        station's observation, all fresh), or None."""
        return self._resolve(location, None, None)

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        result = self._resolve(location, deadline, log)
        return result if result is not None else invalid("no answer for this target", 0)

    # -- the walk from a target to a station's observation --------------------------------

    def _answer(
        self,
        key: str,
        fresh_seconds: float,
        keep_seconds: float,
        ask: Any,
        deadline: Deadline | None,
    ) -> Answer | None:
        """A resource's answer: kept, or asked for when there is a deadline to ask within
        (None: not kept, and this is `stored`, which never asks)."""
        if deadline is None:
            return self._kept.kept(key, fresh_seconds)
        return self._kept.get(key, fresh_seconds, keep_seconds, ask, deadline)

    def _get(
        self, endpoint: str, path: str, deadline: Deadline, log: ProbeLog
    ) -> upstream.Exchange:
        return self._upstream.get(endpoint, self._base_url + path, {}, deadline, log, self._headers)

    def _resolve(
        self, location: Location, deadline: Deadline | None, log: ProbeLog | None
    ) -> ProbeResult | None:
        """The probe's result; None only without a deadline (from `stored`) where a kept
        answer is missing."""
        calls: list[Answer] = []
        place: Place | None = None
        latitude = longitude = None
        if isinstance(location, StationId):
            candidates: list[tuple[Station | None, float | None, str]] = [
                (None, None, location.station)
            ]
        else:
            if deadline is None or log is None:
                point = self._geocoder.known(location)
                if point is None:
                    return None
            else:
                found = self._geocoder.point(location, deadline, log)
                if isinstance(found, ProbeResult):
                    return found
                point = found
            latitude, longitude, place = rounded(point[0]), rounded(point[1]), point[2]
            listed = self._stations(latitude, longitude, deadline, log, calls)
            if not isinstance(listed, list):
                return listed
            candidates = [
                (station, distance, station.identifier)
                for station, distance in nearest(listed, latitude, longitude)
            ]
        return self._observe(candidates, latitude, longitude, place, deadline, log, calls)

    def _stations(
        self,
        latitude: float,
        longitude: float,
        deadline: Deadline | None,
        log: ProbeLog | None,
        calls: list[Answer],
    ) -> list[Station] | ProbeResult | None:
        """The point's station list: its `/points` answer, then the list it names."""
        point = f"{latitude:.{POINT_DECIMALS}f},{longitude:.{POINT_DECIMALS}f}"
        path = f"/points/{coordinate_text(latitude)},{coordinate_text(longitude)}"

        def ask_point() -> Answer:
            assert deadline is not None and log is not None
            exchange = self._get("points", path, deadline, log)
            status = exchange.status_code
            if exchange.failure is None and status == 404:
                return Answer({"outside": True}, time.time(), status, called=True)
            document = json_answer(exchange, ())
            if isinstance(document, ProbeResult):
                return Answer(failed=document, status_code=status, called=True)
            listing = stations_path(document)
            if listing is None:
                failed = invalid("the points answer names no observation station list", status)
                return Answer(failed=failed, status_code=status, called=True)
            return Answer({"path": listing}, time.time(), status, called=True)

        key = f"nws|{self._base_url}|points|{point}"
        answer = self._answer(key, LISTS_SECONDS, LISTS_SECONDS, ask_point, deadline)
        if answer is None or answer.failed is not None:
            return answer.failed if answer is not None else None
        calls.append(answer)
        document = answer.document if isinstance(answer.document, dict) else {}
        if document.get("outside"):
            detail = "the NWS has no data for this point: outside the US and its territories"
            return ProbeResult(None, Failure(FailureReason.NOT_FOUND, detail), 404)
        listing = document.get("path")
        if not isinstance(listing, str) or not _STATIONS_PATH.fullmatch(listing):
            return invalid("the kept points answer names no station list", answer.status_code)

        def ask_list() -> Answer:
            assert deadline is not None and log is not None
            exchange = self._get("stations", listing, deadline, log)
            status = exchange.status_code
            document = json_answer(exchange, ())
            if isinstance(document, ProbeResult):
                return Answer(failed=document, status_code=status, called=True)
            stations = parse_stations(document)
            if isinstance(stations, str):
                return Answer(failed=invalid(stations, status), status_code=status, called=True)
            compact = [asdict(station) for station in stations]
            return Answer(compact, time.time(), status, called=True)

        key = f"nws|{self._base_url}|stations|{listing}"
        answer = self._answer(key, LISTS_SECONDS, LISTS_SECONDS, ask_list, deadline)
        if answer is None or answer.failed is not None:
            return answer.failed if answer is not None else None
        calls.append(answer)
        try:
            return [Station(**entry) for entry in answer.document]
        except TypeError:
            return invalid("the kept station list cannot be read", answer.status_code)

    def _observation(
        self, station: str, deadline: Deadline | None, log: ProbeLog | None
    ) -> Answer | None:
        """A station's latest observation, kept for `cache_ttl` (an unusable one too, as
        why it is unusable: the station is not asked again before then)."""

        def ask() -> Answer:
            assert deadline is not None and log is not None
            path = f"/stations/{station}/observations/latest"
            exchange = self._get("observations", path, deadline, log)
            status = exchange.status_code
            document = json_answer(exchange, ())
            if isinstance(document, ProbeResult):
                return Answer(failed=document, status_code=status, called=True)
            parsed = parse_observation(document, station)
            compact = {"unusable": parsed} if isinstance(parsed, str) else asdict(parsed)
            return Answer(compact, time.time(), status, called=True)

        key = f"nws|{self._base_url}|observation|{station}"
        return self._answer(key, self._cache_ttl, self._cache_ttl, ask, deadline)

    def _observe(
        self,
        candidates: list[tuple[Station | None, float | None, str]],
        latitude: float | None,
        longitude: float | None,
        place: Place | None,
        deadline: Deadline | None,
        log: ProbeLog | None,
        calls: list[Answer],
    ) -> ProbeResult | None:
        """The first current observation with a temperature among the candidates, else the
        freshest one with a temperature; the failure that stopped the walk, or
        invalid_response when no station has a temperature."""
        now = time.time()
        chosen: tuple[Observation, Station | None, float | None, Answer] | None = None
        freshest: tuple[Observation, Station | None, float | None, Answer] | None = None
        stopped: ProbeResult | None = None
        skipped: list[str] = []
        last_failed: ProbeResult | None = None
        for station, distance, identifier in candidates:
            answer = self._observation(identifier, deadline, log)
            if answer is None:
                return None  # `stored`: this station's observation is not kept
            calls.append(answer)
            if answer.failed is not None:
                failure = answer.failed.failure
                if failure is not None and failure.reason in _STATION_ONLY:
                    last_failed = answer.failed
                    skipped.append(f"{identifier}: {failure.reason.value}: {failure.detail}")
                    continue
                stopped = answer.failed
                break
            observation = restore(answer.document)
            if isinstance(observation, str):
                skipped.append(f"{identifier}: {observation}")
                continue
            if observation.temperature is None:
                skipped.append(f"{identifier}: no temperature")
                continue
            here = (observation, station, distance, answer)
            if now - observation.timestamp <= CURRENT_SECONDS:
                chosen = here
                break
            skipped.append(f"{identifier}: observed {round(now - observation.timestamp)} s ago")
            if freshest is None or observation.timestamp > freshest[0].timestamp:
                freshest = here
        if log is not None:
            for why in skipped:
                log.info("station not used", why=why)
            if stopped is not None and stopped.failure is not None:
                log.info(
                    "station call failed",
                    error=f"{stopped.failure.reason.value}: {stopped.failure.detail}",
                )
        chosen = chosen or freshest
        called = [answer for answer in calls if answer.called]
        status = called[-1].status_code if called else 200
        if chosen is None:
            if stopped is not None:
                return stopped
            if last_failed is not None and len(candidates) == 1:
                return last_failed  # a station: target the NWS does not know
            detail = "no station has a temperature: " + "; ".join(skipped)
            return invalid(detail[:300], status)
        observation, station, distance, answer = chosen
        if log is not None:
            log.debug(
                "station answered",
                station=observation.station,
                distance_meters=distance,
                age_seconds=round(now - observation.timestamp),
            )
        reading = reading_of(observation, station, distance, latitude, longitude, place)
        expires_at = answer.fetched_at + self._cache_ttl if self._cache_ttl > 0 else None
        return ProbeResult(reading, None, status, cache_hit=not called, expires_at=expires_at)
