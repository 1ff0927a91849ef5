"""MET Norway's Locationforecast 2.0 (`/weatherapi/locationforecast/2.0/complete`, no key;
free, also commercially, under CC BY 4.0) into a Reading, as its terms ask.

Every request names the exporter, its version and the module's `contact` in
its `User-Agent`, accepts gzip, and gives coordinates to 4 decimals. An
answer is kept per point (base URL and rounded coordinates) apart from the
readings, with its `Expires` and `Last-Modified`: before `Expires` nobody
asks again, whichever target, module or worker (with the Redis cache) wants
the point; after it, the request carries `If-Modified-Since` with the stored
`Last-Modified` exactly, and a `304` renews the kept answer. The current
reading and the horizons are chosen from the kept time series at each probe:
the current step is the latest one not after now (the first if all lie
ahead). MET Norway forecasts and does not observe, so there is no past
hour's rain or snow; the next hour's is the forecast metric. Place names and
postal codes are resolved through Open-Meteo's geocoding (`geocoding.py`).
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from multitarget_exporter import __version__, units, upstream
from multitarget_exporter.cache import Validated, Validators
from multitarget_exporter.kinds import MET_NORWAY, ProviderKind
from multitarget_exporter.providers import met_symbols, steps
from multitarget_exporter.providers.answers import (
    decode_json,
    invalid,
    number,
    status_failure,
    text,
)
from multitarget_exporter.providers.geocoding import Geocoder, Place
from multitarget_exporter.reading import (
    Condition,
    Failure,
    FailureReason,
    ForecastStep,
    ProbeResult,
    Reading,
    dew_point_celsius,
)
from multitarget_exporter.targets import CityId, Location

if TYPE_CHECKING:
    from multitarget_exporter.config import Horizon, ModuleConfig
    from multitarget_exporter.deadline import Deadline
    from multitarget_exporter.probelog import ProbeLog

log_operator = logging.getLogger("multitarget_exporter")

DECIMALS = 4  # the most MET Norway's terms allow
MAX_STEPS = 120  # about ten days: hourly, then 6-hourly
# A kept answer outlives its Expires this long, so that a 304 can renew it.
KEEP_AFTER_EXPIRY_SECONDS = 86400.0
_HOUR, _SIX_HOURS = 3600.0, 6 * 3600.0
UNUSABLE = "unusable"  # a kept answer that gives no reading, and why
_INSTANT = {
    "temperature": "air_temperature",
    "humidity": "relative_humidity",
    "pressure": "air_pressure_at_sea_level",
    "wind_speed": "wind_speed",
    "wind_gust": "wind_speed_of_gust",
    "wind_direction": "wind_from_direction",
    "cloud_cover": "cloud_area_fraction",
    "dew_point": "dew_point_temperature",
    "uv_clear_sky": "ultraviolet_index_clear_sky",
}
_PERIODS = (("1h", "next_1_hours"), ("6h", "next_6_hours"), ("12h", "next_12_hours"))


def rounded(value: float) -> float:
    """A coordinate to MET Norway's 4 decimals."""
    return round(value, DECIMALS)


def http_time(value: str | None) -> float | None:
    """An HTTP date (`Expires`, `Last-Modified`) as a Unix time, or None."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    seconds = parsed.timestamp()
    return seconds if math.isfinite(seconds) else None


def compact(document: Any) -> list[dict[str, Any]] | str:
    """The answer's time series in the few fields a reading needs (plain JSON data, to
    keep per point), or why there is none."""
    properties = document.get("properties") if isinstance(document, dict) else None
    series = properties.get("timeseries") if isinstance(properties, dict) else None
    if not isinstance(series, list):
        return "answer has no properties.timeseries"
    kept = []
    for step in series[:MAX_STEPS]:
        at = steps.moment(text(step, "time"))
        data = step.get("data") if isinstance(step, dict) else None
        if at is None or not isinstance(data, dict):
            continue
        entry: dict[str, Any] = {"time": at}
        details = (
            data.get("instant", {}).get("details")
            if isinstance(data.get("instant"), dict)
            else None
        )
        for field, name in _INSTANT.items():
            entry[field] = number(details, name)
        for window, block in _PERIODS:
            period = data.get(block)
            if not isinstance(period, dict):
                continue
            entry[window] = {
                "symbol": text(period, "summary", "symbol_code"),
                "precipitation": number(period, "details", "precipitation_amount"),
                "probability": number(period, "details", "probability_of_precipitation"),
            }
        kept.append(entry)
    if not kept:
        return "answer's timeseries has no steps"
    if all(entry["temperature"] is None for entry in kept):
        return "answer's steps have no instant air_temperature"
    return kept


def _readable(headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]] | dict[str, str]:
    """An answer's body as its compact time series, or `{UNUSABLE: why}`."""
    content_type = headers.get("content-type", "application/json")
    if "json" not in content_type.lower():
        return {UNUSABLE: f"answer is {content_type[:60]}, not JSON"}
    document = decode_json(body)
    if isinstance(document, Failure):
        return {UNUSABLE: document.detail}
    series = compact(document)
    return {UNUSABLE: series} if isinstance(series, str) else series


def _own_period(series: list[dict[str, Any]], index: int) -> tuple[str, dict[str, Any]] | None:
    """The figures of the period a step covers, found by its length: the next hour's for an
    hourly step, the next six hours' for a six-hourly one; None where they do not match."""
    entry = series[index]
    start = entry.get("time")
    following = series[index + 1].get("time") if index + 1 < len(series) else None
    length = _SIX_HOURS if following is None or start is None else following - start
    window = {_HOUR: "1h", _SIX_HOURS: "6h"}.get(length)
    if window is None or not isinstance(entry.get(window), dict):
        return None
    return window, entry[window]


def _conditions(entry: dict[str, Any]) -> tuple[Condition, ...]:
    for window in ("1h", "6h", "12h"):
        period = entry.get(window)
        code = period.get("symbol") if isinstance(period, dict) else None
        if isinstance(code, str):
            found = met_symbols.condition(code)
            return (found,) if found else ()
    return ()


def reading_at(
    series: list[dict[str, Any]],
    now: float,
    horizons: tuple[Horizon, ...],
    latitude: float,
    longitude: float,
    place: Place | None,
) -> Reading | str:
    """The reading a kept time series gives at `now`, or why it gives none."""
    times = [entry.get("time") for entry in series]
    if not steps.ascending(times):
        return "answer's timeseries is not in time order"
    current = steps.step_index(times, now, _SIX_HOURS)
    if current is None:
        earlier = [i for i, at in enumerate(times) if at is not None and at <= now]
        current = earlier[-1] if earlier else 0
    entry = series[current]
    temperature = entry.get("temperature")
    if temperature is None:
        return "the current step has no air_temperature"
    humidity = units.fraction(entry.get("humidity"))
    dew_point = entry.get("dew_point")
    if dew_point is None and humidity is not None:
        dew_point = dew_point_celsius(temperature, humidity)
    next_hour = entry.get("1h")
    hour: dict[str, Any] = next_hour if isinstance(next_hour, dict) else {}
    found: list[ForecastStep] = []
    for horizon in horizons:
        index = steps.step_index(times, now + horizon.seconds, _SIX_HOURS)
        if index is not None:
            found.append(_step(series, index, horizon.label))
    return Reading(
        provider=MetNorway.name,
        temperature_celsius=temperature,
        dew_point_celsius=dew_point,
        relative_humidity_ratio=humidity,
        pressure_pascals=units.pascals(entry.get("pressure")),
        wind_speed_meters_per_second=units.amount(entry.get("wind_speed")),
        wind_gust_meters_per_second=units.amount(entry.get("wind_gust")),
        wind_direction_degrees=entry.get("wind_direction"),
        cloud_cover_ratio=units.fraction(entry.get("cloud_cover")),
        conditions=_conditions(entry),
        observation_timestamp_seconds=entry.get("time"),
        location_name=place.name if place else "",
        location_country=place.country if place else "",
        latitude_degrees=latitude,
        longitude_degrees=longitude,
        uv_index_clear_sky=units.amount(entry.get("uv_clear_sky")),
        precipitation_probability_ratio=units.fraction(hour.get("probability")),
        forecast=tuple(found),
        observes_precipitation=False,
    )


def _step(series: list[dict[str, Any]], index: int, label: str) -> ForecastStep:
    entry = series[index]
    period = _own_period(series, index)
    window, figures = period if period else ("", {})
    return ForecastStep(
        horizon=label,
        temperature_celsius=entry.get("temperature"),
        relative_humidity_ratio=units.fraction(entry.get("humidity")),
        precipitation_probability_ratio=units.fraction(figures.get("probability")),
        precipitation_meters=units.metres(figures.get("precipitation")) if window else None,
        window=window,
        wind_speed_meters_per_second=units.amount(entry.get("wind_speed")),
        wind_gust_meters_per_second=units.amount(entry.get("wind_gust")),
        cloud_cover_ratio=units.fraction(entry.get("cloud_cover")),
        conditions=_conditions(entry),
    )


class MetNorway:
    """MET Norway's forecast: one call per point and `Expires`, revalidated after it."""

    kind: ClassVar[ProviderKind] = MET_NORWAY
    name: ClassVar[str] = MET_NORWAY.name
    _warned_deprecated: ClassVar[bool] = False

    def __init__(self, module: ModuleConfig, validators: Validators | None = None) -> None:
        from multitarget_exporter.cache import MemoryValidators

        self._base_url = module.base_url
        self._url = f"{module.base_url}/weatherapi/locationforecast/2.0/complete"
        self._upstream = upstream.Upstream(self.name)
        geocoding_url = module.geocoding_url or self.kind.default_geocoding_url
        self._geocoder = Geocoder(geocoding_url, module.language, self._upstream, {})
        self._headers = {
            "User-Agent": f"multitarget_exporter/{__version__} {module.contact}",
            "Accept-Encoding": "gzip",
        }
        self._horizons = module.forecast
        self._cache_ttl = module.cache_ttl_seconds
        self._validators = validators if validators is not None else MemoryValidators(1000)
        self.calls_per_fetch = 1

    def unsupported(self, location: Location) -> str | None:
        if isinstance(location, CityId):
            return (
                "id: targets are OpenWeatherMap city ids; a met_norway module takes "
                "a place name, zip: or lat,lon"
            )
        return None

    def _key(self, latitude: float, longitude: float) -> str:
        return f"{self._base_url}|{latitude:.{DECIMALS}f},{longitude:.{DECIMALS}f}"

    def stored(self, location: Location) -> ProbeResult | None:
        """A reading from the point's kept answer while it is fresh: no call at all."""
        point = self._geocoder.known(location)
        if point is None:
            return None
        latitude, longitude, place = point
        latitude, longitude = rounded(latitude), rounded(longitude)
        kept = self._validators.get(self._key(latitude, longitude))
        if kept is None or time.time() >= kept.expires_at:
            return None
        result = self._result(kept, kept.status_code, latitude, longitude, place, None)
        return replace(result, cache_hit=True)

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        point = self._geocoder.point(location, deadline, log)
        if isinstance(point, ProbeResult):
            return point
        latitude, longitude, place = point
        latitude, longitude = rounded(latitude), rounded(longitude)
        key = self._key(latitude, longitude)
        kept = self._validators.get(key)
        now = time.time()
        if kept is not None and now < kept.expires_at:
            log.debug("answer kept for this point until its Expires", expires_at=kept.expires_at)
            return replace(
                self._result(kept, kept.status_code, latitude, longitude, place, log),
                cache_hit=True,
            )
        headers = dict(self._headers)
        if kept is not None and kept.last_modified and isinstance(kept.document, list):
            # Revalidated only when usable: a 304 would keep a useless answer useless.
            headers["If-Modified-Since"] = kept.last_modified
        params = {
            "lat": f"{latitude:.{DECIMALS}f}".rstrip("0").rstrip("."),
            "lon": f"{longitude:.{DECIMALS}f}".rstrip("0").rstrip("."),
        }
        exchange = self._upstream.get("locationforecast", self._url, params, deadline, log, headers)
        if exchange.failure is not None:
            return ProbeResult(None, exchange.failure, exchange.status_code)
        expires = http_time(exchange.headers.get("expires"))
        last_modified = exchange.headers.get("last-modified", "")
        if http_time(last_modified) is None:
            last_modified = ""  # not a date: never sent back
        fresh_until = expires if expires is not None and expires > now else now + self._cache_ttl
        if exchange.status_code == 304 and kept is not None:
            renewed = Validated(
                fresh_until, last_modified or kept.last_modified, kept.status_code, kept.document
            )
            self._keep(key, renewed)
            log.debug("not modified: the kept answer renewed", expires_at=fresh_until)
            return self._result(renewed, 304, latitude, longitude, place, log)
        if exchange.status_code == 403:
            detail = "HTTP 403: MET Norway refuses unidentified or blocked clients (check contact)"
            return ProbeResult(None, Failure(FailureReason.UNAUTHORIZED, detail), 403)
        failed = status_failure(exchange.status_code, exchange.body, ())
        if failed is not None:
            return failed
        if exchange.status_code == 304:
            return invalid("304 Not Modified for an answer not kept here", 304)
        if exchange.status_code == 203 and not MetNorway._warned_deprecated:
            MetNorway._warned_deprecated = True
            log_operator.warning(
                "MET Norway answers 203: this product is deprecated and will go away",
                extra={"fields": {"url": self._url}},
            )
        # Every answer is kept until its Expires, a useless one too (as why it is useless):
        # the terms ask for no new request before then, whatever came.
        fresh = Validated(
            fresh_until,
            last_modified,
            exchange.status_code,
            _readable(exchange.headers, exchange.body),
        )
        self._keep(key, fresh)
        return self._result(fresh, exchange.status_code, latitude, longitude, place, log)

    def _keep(self, key: str, kept: Validated) -> None:
        keep = max(kept.expires_at - time.time(), 0.0) + KEEP_AFTER_EXPIRY_SECONDS
        self._validators.put(key, kept, keep)

    def _result(
        self,
        kept: Validated,
        status_code: int,
        latitude: float,
        longitude: float,
        place: Place | None,
        log: ProbeLog | None,
    ) -> ProbeResult:
        if not isinstance(kept.document, list):
            why = kept.document.get(UNUSABLE) if isinstance(kept.document, dict) else None
            return invalid(str(why or "kept answer has no time series"), status_code)
        reading = reading_at(kept.document, time.time(), self._horizons, latitude, longitude, place)
        if isinstance(reading, str):
            return invalid(reading, status_code)
        return ProbeResult(reading, None, status_code, expires_at=kept.expires_at)
