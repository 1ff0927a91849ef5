"""Germany's DWD station observations through Bright Sky (`/current_weather` on
api.brightsky.dev; DWD open data, keyless) into a Reading.

One call per point (4 decimals) or station (`dwd_station_id=`) and `cache_ttl`,
with `units=dwd` (°C, km/h, hPa, mm, minutes), converted here. Bright Sky
answers with the nearest station's last 10-minute record; the station that
answered is the source whose `id` is `weather.source_id`, and its `distance`
is from the point asked. Values that station lacks come from another one,
named in `fallback_source_ids` (recorded: Feldberg's temperature from
Freiburg, 20 km away and 1,250 m lower): they are kept, and the probe's log
says which and whose. An answer is kept per point or station in the cache's
`validators` store, so another module asking the same one within its own
`cache_ttl` reuses it. Place names and postal codes are resolved through
Open-Meteo's geocoding (`geocoding.py`). The `User-Agent` names the exporter
and, where the module gives one, its `contact`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from multitarget_exporter import __version__
from multitarget_exporter.config.provider_kinds import BRIGHT_SKY, ProviderKind
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
from multitarget_exporter.providers.stations import Answer, KeptAnswers, label_text
from multitarget_exporter.upstream import client as upstream
from multitarget_exporter.upstream.answers import invalid, json_answer, number, text
from multitarget_exporter.upstream.gate import Gate
from multitarget_exporter.upstream.revalidation import MemoryValidators

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import ModuleConfig
    from multitarget_exporter.model.deadline import Deadline
    from multitarget_exporter.runtime.probelog import ProbeLog
    from multitarget_exporter.upstream.revalidation import Validators

_MAX_SOURCES = 20
_MAX_BORROWED = 20


@dataclass(frozen=True, slots=True)
class Current:
    """One `/current_weather` answer in base units, kept in this compact form. `borrowed`
    says which values came from which other station (for the log)."""

    timestamp: float
    temperature: float
    station: str = ""
    name: str = ""
    distance: float | None = None
    elevation: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    dew_point: float | None = None
    humidity: float | None = None
    pressure: float | None = None
    wind_speed: float | None = None
    wind_gust: float | None = None
    wind_direction: float | None = None
    cloud_cover: float | None = None
    visibility: float | None = None
    precipitation_hour: float | None = None
    sunshine_hour: float | None = None
    condition: str = ""
    borrowed: str = ""


_CURRENT_FIELDS = frozenset(field.name for field in fields(Current))


def restore(document: Any) -> Current | str:
    """A kept answer (plain JSON data once it went through Redis), or why it is none: the
    reason kept for an unusable answer, or a damaged entry."""
    if isinstance(document, dict) and isinstance(document.get("unusable"), str):
        return document["unusable"]
    if not isinstance(document, dict) or not set(document) <= _CURRENT_FIELDS:
        return "kept answer cannot be read"
    try:
        return Current(**document)
    except TypeError:
        return "kept answer cannot be read"


def _sources(document: dict[str, Any]) -> dict[float, dict[str, Any]]:
    listed = document.get("sources")
    if not isinstance(listed, list):
        return {}
    found = {}
    for source in listed[:_MAX_SOURCES]:
        identifier = number(source, "id")
        if identifier is not None and isinstance(source, dict):
            found[identifier] = source
    return found


def _station_words(source: dict[str, Any]) -> str:
    return " ".join(
        part
        for part in (
            label_text(source.get("dwd_station_id")),
            label_text(source.get("station_name")),
        )
        if part
    )


def parse_current(document: Any) -> Current | str:
    """A `/current_weather` answer (`units=dwd`) in base units, or why it gives no reading."""
    weather = document.get("weather") if isinstance(document, dict) else None
    if not isinstance(weather, dict):
        return "the answer has no weather"
    timestamp = instant(weather.get("timestamp"))
    if timestamp is None:
        return f"the answer's timestamp {str(weather.get('timestamp'))[:40]!r} is not a time"
    temperature = number(weather, "temperature")
    if temperature is None:
        return "the answer has no temperature"
    assert isinstance(document, dict)
    sources = _sources(document)
    source_id = number(weather, "source_id")
    source = sources.get(source_id) if source_id is not None else None
    borrowed: list[str] = []
    fallbacks = weather.get("fallback_source_ids")
    if isinstance(fallbacks, dict):
        for value, other in list(fallbacks.items())[:_MAX_BORROWED]:
            lender = sources.get(other) if isinstance(other, int | float) else None
            whose = _station_words(lender) if lender else f"source {other}"
            borrowed.append(f"{label_text(value)} from {whose}")
    latitude, longitude = number(source, "lat"), number(source, "lon")
    direction = number(weather, "wind_direction_10")
    return Current(
        timestamp=timestamp,
        temperature=temperature,
        station=label_text(source.get("dwd_station_id")) if source else "",
        name=label_text(source.get("station_name")) if source else "",
        distance=units.amount(number(source, "distance")),
        elevation=number(source, "height"),
        latitude=latitude if latitude is not None and -90 <= latitude <= 90 else None,
        longitude=longitude if longitude is not None and -180 <= longitude <= 180 else None,
        dew_point=number(weather, "dew_point"),
        humidity=units.fraction(number(weather, "relative_humidity")),
        pressure=units.amount(units.pascals(number(weather, "pressure_msl"))),
        wind_speed=units.amount(units.kilometres_per_hour(number(weather, "wind_speed_10"))),
        wind_gust=units.amount(units.kilometres_per_hour(number(weather, "wind_gust_speed_10"))),
        wind_direction=direction if direction is not None and 0 <= direction <= 360 else None,
        cloud_cover=units.fraction(number(weather, "cloud_cover")),
        visibility=units.amount(number(weather, "visibility")),
        precipitation_hour=units.metres(number(weather, "precipitation_60")),
        sunshine_hour=units.seconds_of_minutes(number(weather, "sunshine_60")),
        condition=label_text(text(weather, "condition")),
        borrowed="; ".join(borrowed),
    )


def reading_of(
    current: Current,
    latitude: float | None,
    longitude: float | None,
    place: Place | None,
) -> Reading:
    """The Reading of an answer for a target's point (None: a `station:` target, which has
    no point of its own: the station's, and no distance)."""
    dew_point = current.dew_point
    if dew_point is None and current.humidity is not None:
        dew_point = dew_point_celsius(current.temperature, current.humidity)
    rain = current.precipitation_hour
    by_point = latitude is not None and longitude is not None
    return Reading(
        provider=BRIGHT_SKY.name,
        temperature_celsius=current.temperature,
        dew_point_celsius=dew_point,
        relative_humidity_ratio=current.humidity,
        pressure_pascals=current.pressure,
        wind_speed_meters_per_second=current.wind_speed,
        wind_gust_meters_per_second=current.wind_gust,
        wind_direction_degrees=current.wind_direction,
        cloud_cover_ratio=current.cloud_cover,
        visibility_meters=current.visibility,
        # Precipitation is liquid-equivalent, of any kind: it is the rain family's.
        rain_meters={"1h": rain} if rain is not None else {},
        observes_precipitation=rain is not None,
        observes_snow=False,
        sunshine_duration_seconds=(
            {"1h": current.sunshine_hour} if current.sunshine_hour is not None else {}
        ),
        conditions=(Condition("", current.condition, ""),) if current.condition else (),
        observation_timestamp_seconds=current.timestamp,
        location_name=place.name if place else "",
        location_country=place.country if place else "",
        latitude_degrees=latitude if by_point else current.latitude,
        longitude_degrees=longitude if by_point else current.longitude,
        station_id=current.station,
        station_name=current.name,
        station_distance_meters=current.distance if by_point else None,
        station_elevation_meters=current.elevation,
    )


class BrightSky:
    """DWD's stations through Bright Sky: one call per point or station and `cache_ttl`."""

    kind: ClassVar[ProviderKind] = BRIGHT_SKY
    name: ClassVar[str] = BRIGHT_SKY.name

    def __init__(
        self, module: ModuleConfig, validators: Validators | None = None, gate: Gate | None = None
    ) -> None:
        self._base_url = module.base_url
        self._url = f"{module.base_url}/current_weather"
        self._upstream = upstream.Upstream(self.name, gate=gate)
        geocoding_url = module.geocoding_url or self.kind.default_geocoding_url
        self._geocoder = Geocoder(geocoding_url, module.language, self._upstream, {})
        agent = f"multitarget_exporter/{__version__} {module.contact}".strip()
        self._headers = {"User-Agent": agent, "Accept-Encoding": "gzip"}
        self._cache_ttl = module.cache_ttl_seconds
        self._kept = KeptAnswers(validators if validators is not None else MemoryValidators(1000))
        self.calls_per_fetch = 1

    def unsupported(self, location: Location) -> str | None:
        if isinstance(location, CityId):
            return (
                "id: targets are OpenWeatherMap city ids; a bright_sky module takes a place "
                "name, zip:, lat,lon or station:ID (a DWD station id)"
            )
        return None

    def stored(self, location: Location) -> ProbeResult | None:
        """The reading a kept answer gives without a call, or None."""
        return self._resolve(location, None, None)

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        result = self._resolve(location, deadline, log)
        return result if result is not None else invalid("no answer for this target", 0)

    def _resolve(
        self, location: Location, deadline: Deadline | None, log: ProbeLog | None
    ) -> ProbeResult | None:
        """The probe's result; None only without a deadline (from `stored`) where no
        answer is kept."""
        place: Place | None = None
        latitude = longitude = None
        if isinstance(location, StationId):
            params = {"dwd_station_id": location.station}
            key = f"bright_sky|{self._base_url}|station|{location.station}"
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
            params = {"lat": coordinate_text(latitude), "lon": coordinate_text(longitude)}
            key = (
                f"bright_sky|{self._base_url}|"
                f"{latitude:.{POINT_DECIMALS}f},{longitude:.{POINT_DECIMALS}f}"
            )
        params["units"] = "dwd"

        def ask() -> Answer:
            assert deadline is not None and log is not None
            exchange = self._upstream.get(
                "current_weather", self._url, params, deadline, log, self._headers
            )
            status = exchange.status_code
            if exchange.failure is None and status == 404:
                return Answer({"outside": True}, time.time(), status, called=True)
            document = json_answer(exchange, ())
            if isinstance(document, ProbeResult):
                return Answer(failed=document, status_code=status, called=True)
            parsed = parse_current(document)
            compact = {"unusable": parsed} if isinstance(parsed, str) else asdict(parsed)
            return Answer(compact, time.time(), status, called=True)

        if deadline is None:
            answer = self._kept.kept(key, self._cache_ttl)
            if answer is None:
                return None
        else:
            answer = self._kept.get(key, self._cache_ttl, self._cache_ttl, ask, deadline)
        if answer.failed is not None:
            return answer.failed
        status = answer.status_code
        if isinstance(answer.document, dict) and answer.document.get("outside"):
            detail = (
                "Bright Sky has no station for this target: outside DWD's area"
                if latitude is not None
                else "Bright Sky knows no such DWD station"
            )
            return ProbeResult(None, Failure(FailureReason.NOT_FOUND, detail), status)
        current = restore(answer.document)
        if isinstance(current, str):
            return invalid(current, status)
        if log is not None:
            log.debug("station answered", station=current.station, distance_meters=current.distance)
            if current.borrowed:
                log.info("values from another station", borrowed=current.borrowed)
        reading = reading_of(current, latitude, longitude, place)
        expires_at = answer.fetched_at + self._cache_ttl if self._cache_ttl > 0 else None
        return ProbeResult(
            reading, None, status, cache_hit=not answer.called, expires_at=expires_at
        )
