"""Parse a probe's `target` into a provider-neutral Location.

Every check that can be made without asking the upstream is made here, so a
malformed target is a 400 and never costs an upstream call.
"""

from __future__ import annotations

import math
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

MAX_TARGET_LENGTH = 256
# Decimals of a point asked of the national services (MET Norway's and the NWS's terms
# allow at most 4, about 11 m): nearby targets round to one point, and share its answers.
POINT_DECIMALS = 4

_COORDINATES = re.compile(r"([+-]?\d{1,3}(?:\.\d+)?)\s*,\s*([+-]?\d{1,3}(?:\.\d+)?)")
_PREFIX = re.compile(r"([A-Za-z][A-Za-z_]*):(.*)", re.DOTALL)
# Coordinates that are not numbers (nan, inf, infinity): refused rather than taken as a name.
_NOT_FINITE = re.compile(
    r"[+-]?(?:nan|inf(?:inity)?|[\d.]+)\s*,\s*[+-]?(?:nan|inf(?:inity)?|[\d.]+)", re.IGNORECASE
)
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_CITY_ID = re.compile(r"\d{1,12}")
_ZIP_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z -]{0,15}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
# A weather station's id as the national services write it (NWS `KSEA`, DWD `01766`).
_STATION = re.compile(r"[A-Za-z0-9]{1,16}")


def rounded(value: float) -> float:
    """A coordinate to `POINT_DECIMALS` (-0.0 is 0.0: one point, one key)."""
    return round(value, POINT_DECIMALS) + 0.0


class TargetError(ValueError):
    """A target that cannot name a place; its message is safe to show the scraper."""


@dataclass(frozen=True, slots=True)
class PlaceName:
    """A place by name, with an optional state and ISO 3166 country code."""

    name: str
    state: str | None = None
    country: str | None = None

    @property
    def key(self) -> str:
        parts = [self.name, self.state or "", self.country or ""]
        return "q:" + ",".join(parts).casefold()


@dataclass(frozen=True, slots=True)
class CityId:
    """An OpenWeatherMap city id."""

    city_id: int

    @property
    def key(self) -> str:
        return f"id:{self.city_id}"


@dataclass(frozen=True, slots=True)
class Coordinates:
    """A point in decimal degrees."""

    latitude: float
    longitude: float

    @property
    def key(self) -> str:
        return f"ll:{self.latitude:.4f},{self.longitude:.4f}"


@dataclass(frozen=True, slots=True)
class PostalCode:
    """A postal code and its country (the upstream assumes US when none is given)."""

    code: str
    country: str | None = None

    @property
    def key(self) -> str:
        return f"zip:{self.code},{self.country or ''}".casefold()


@dataclass(frozen=True, slots=True)
class StationId:
    """A weather station by its id (NWS `stationIdentifier`, DWD station id), in upper case:
    the NWS's ids are case-blind, and DWD's are digits."""

    station: str

    @property
    def key(self) -> str:
        return f"station:{self.station}"


Location = PlaceName | CityId | Coordinates | PostalCode | StationId


def _check_characters(target: str) -> None:
    if len(target) > MAX_TARGET_LENGTH:
        raise TargetError(f"target is longer than {MAX_TARGET_LENGTH} characters")
    for char in target:
        # Cc: C0/C1 controls and DEL; Cs: lone surrogates that cannot be encoded.
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise TargetError("target contains control characters")
        if char == "\ufffd":  # what a byte that is not UTF-8 may decode to
            raise TargetError("target is not valid UTF-8 once percent-decoded")
    if _PERCENT.search(target):
        # werkzeug leaves percent escapes that do not decode as UTF-8 (%ff%fe) as they were
        try:
            urllib.parse.unquote_to_bytes(target).decode("utf-8")
        except UnicodeDecodeError:
            raise TargetError("target is not valid UTF-8 once percent-decoded") from None
    pair = _NOT_FINITE.fullmatch(target.strip())
    if pair and re.search("nan|inf", target, re.IGNORECASE):
        raise TargetError("coordinates must be finite numbers")


def _parse_coordinates(match: re.Match[str]) -> Coordinates:
    latitude, longitude = float(match[1]), float(match[2])
    if not (math.isfinite(latitude) and -90.0 <= latitude <= 90.0):
        raise TargetError("latitude must be between -90 and 90")
    if not (math.isfinite(longitude) and -180.0 <= longitude <= 180.0):
        raise TargetError("longitude must be between -180 and 180")
    return Coordinates(latitude, longitude)


def _parse_zip(value: str) -> PostalCode:
    code, _, country = value.partition(",")
    code, country = code.strip(), country.strip()
    if not _ZIP_CODE.fullmatch(code):
        raise TargetError("zip: wants a postal code of letters, digits, spaces or hyphens")
    if country and not _COUNTRY.fullmatch(country):
        raise TargetError("zip: wants a two-letter country code after the comma")
    return PostalCode(code, country.upper() or None)


def _parse_place(target: str) -> PlaceName:
    parts = [part.strip() for part in target.split(",")]
    if len(parts) > 3:
        raise TargetError("a place name has at most three parts: city,state,country")
    if any(not part for part in parts):
        raise TargetError("a place name must not have empty parts")
    if len(parts) == 1:
        return PlaceName(parts[0])
    if len(parts) == 2:
        return PlaceName(parts[0], country=parts[1])
    return PlaceName(parts[0], state=parts[1], country=parts[2])


def parse_target(target: str | None) -> Location:
    """Turn the `target` query parameter into a Location, or raise TargetError."""
    if target is None or not target.strip():
        raise TargetError("target parameter is missing or empty")
    _check_characters(target)
    target = target.strip()

    coordinates = _COORDINATES.fullmatch(target)
    if coordinates:
        return _parse_coordinates(coordinates)

    prefixed = _PREFIX.fullmatch(target)
    if prefixed:
        prefix, value = prefixed[1].lower(), prefixed[2].strip()
        if prefix == "id":
            if not _CITY_ID.fullmatch(value):
                raise TargetError("id: wants a numeric city id")
            return CityId(int(value))
        if prefix == "zip":
            return _parse_zip(value)
        if prefix == "station":
            if not _STATION.fullmatch(value):
                raise TargetError("station: wants a station id of 1 to 16 letters and digits")
            return StationId(value.upper())
        raise TargetError("unknown target prefix: use id:, zip:, station:, lat,lon or a place name")

    return _parse_place(target)
