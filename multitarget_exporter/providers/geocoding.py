"""Place names and postal codes to coordinates, through Open-Meteo's geocoding API
(`/v1/search`, no key needed): for every provider whose own API takes coordinates only.

A place found is kept for a day (places do not move), the least recently used
out past a bound; an unknown one is a `not_found` ProbeResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multitarget_exporter.model.reading import Failure, FailureReason, ProbeResult
from multitarget_exporter.model.targets import Coordinates, Location, PlaceName, PostalCode
from multitarget_exporter.providers.regions import country_matches, state_matches
from multitarget_exporter.upstream.answers import error_detail, invalid, json_answer, number, text
from multitarget_exporter.upstream.store import ExpiringStore

if TYPE_CHECKING:
    from multitarget_exporter.model.deadline import Deadline
    from multitarget_exporter.runtime.probelog import ProbeLog
    from multitarget_exporter.upstream.client import Upstream

GEOCODE_TTL_SECONDS = 86400.0
GEOCODE_MAX_ENTRIES = 10000
# Candidates asked for when a state, a country or a postal code must pick
# among places of one name (there are dozens of Springfields).
_CANDIDATES = 100
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Place:
    """Where the geocoder put a target."""

    name: str
    country: str
    latitude: float
    longitude: float


def search_query(location: PlaceName | PostalCode, language: str) -> dict[str, str]:
    """The `/v1/search` parameters that look for `location`."""
    if isinstance(location, PlaceName):
        narrowed = location.state is not None or location.country is not None
        name = location.name
    else:
        narrowed, name = True, location.code
    return {
        "name": name,
        "count": str(_CANDIDATES if narrowed else 1),
        "language": language.split("_")[0].lower(),
        "format": "json",
    }


def pick_place(document: Any, location: PlaceName | PostalCode) -> Place | None:
    """The first geocoding result that fits the target's state and country, or None."""
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        return None  # Open-Meteo leaves `results` out when nothing matched
    if isinstance(location, PlaceName):
        state, country = location.state, location.country
    else:
        state, country = None, location.country or "US"  # as OpenWeatherMap assumes
    for entry in results[:_CANDIDATES]:
        latitude, longitude = number(entry, "latitude"), number(entry, "longitude")
        if latitude is None or longitude is None:
            continue
        code = text(entry, "country_code") or ""
        if country and not country_matches(country, code, text(entry, "country") or ""):
            continue
        if state and not state_matches(state, code, text(entry, "admin1") or ""):
            continue
        name = (text(entry, "name") or "")[:_MAX_NAME]
        return Place(name, code.upper()[:8], latitude, longitude)
    return None


class Geocoder:
    """One module's way from a target to a point: its geocoding URL, language and key."""

    def __init__(
        self, geocoding_url: str, language: str, upstream: Upstream, key: dict[str, str]
    ) -> None:
        self._search_url = f"{geocoding_url}/v1/search"
        self._language = language
        self._upstream = upstream
        self._key = key
        self._places: ExpiringStore[Place] = ExpiringStore(GEOCODE_MAX_ENTRIES)

    def known(self, location: Location) -> tuple[float, float, Place | None] | None:
        """The point of a target without a call: coordinates, or a name found today."""
        if isinstance(location, Coordinates):
            return location.latitude, location.longitude, None
        if isinstance(location, PlaceName | PostalCode):
            found = self._places.get(f"{self._language}|{location.key}")
            if found is not None:
                return found.latitude, found.longitude, found
        return None

    def point(
        self, location: Location, deadline: Deadline, log: ProbeLog
    ) -> tuple[float, float, Place | None] | ProbeResult:
        """The latitude and longitude to ask about, and the place when a name was resolved;
        or the failed ProbeResult of the geocoding call."""
        if isinstance(location, Coordinates):
            return location.latitude, location.longitude, None
        if isinstance(location, PlaceName | PostalCode):
            found = self.resolve(location, deadline, log)
            if isinstance(found, ProbeResult):
                return found
            return found.latitude, found.longitude, found
        failure = Failure(FailureReason.INVALID_RESPONSE, "target form not supported")
        return ProbeResult(None, failure)

    def resolve(
        self, location: PlaceName | PostalCode, deadline: Deadline, log: ProbeLog
    ) -> Place | ProbeResult:
        """The place a name or postal code stands for, from the day's memory or a call."""
        key = f"{self._language}|{location.key}"
        cached = self._places.get(key)
        if cached is not None:
            log.debug(
                "place known from geocoding", latitude=cached.latitude, longitude=cached.longitude
            )
            return cached
        params = {**search_query(location, self._language), **self._key}
        exchange = self._upstream.get("geocoding", self._search_url, params, deadline, log)
        document = json_answer(exchange, self._upstream.secrets)
        if isinstance(document, ProbeResult):
            return document
        if isinstance(document, dict) and document.get("error") is True:
            detail = error_detail(exchange.body, self._upstream.secrets)
            failure = Failure(FailureReason.UPSTREAM_ERROR, f"geocoding says error: {detail}")
            return ProbeResult(None, failure, exchange.status_code)
        if not isinstance(document, dict):
            return invalid("geocoding answer is not a JSON object", exchange.status_code)
        place = pick_place(document, location)
        if place is None:
            failure = Failure(FailureReason.NOT_FOUND, "geocoding found no such place")
            return ProbeResult(None, failure, exchange.status_code)
        log.debug("geocoded", name=place.name, latitude=place.latitude, longitude=place.longitude)
        self._places.put(key, place, GEOCODE_TTL_SECONDS)
        return place
