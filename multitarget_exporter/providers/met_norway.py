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
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from multitarget_exporter import __version__
from multitarget_exporter.config.provider_kinds import MET_NORWAY, ProviderKind
from multitarget_exporter.model import units
from multitarget_exporter.model.reading import (
    Condition,
    Failure,
    FailureReason,
    ForecastStep,
    ProbeResult,
    Reading,
    dew_point_celsius,
)
from multitarget_exporter.model.targets import POINT_DECIMALS, CityId, Location, StationId, rounded
from multitarget_exporter.providers import met_symbols, steps
from multitarget_exporter.providers.geocoding import Geocoder, Place
from multitarget_exporter.runtime.perprocess import PerProcess
from multitarget_exporter.upstream import client as upstream
from multitarget_exporter.upstream.answers import decode_json, invalid, number, status_failure, text
from multitarget_exporter.upstream.gate import Gate
from multitarget_exporter.upstream.revalidation import (
    MemoryValidators,
    Validated,
    Validators,
    kept_or_claimed,
)
from multitarget_exporter.upstream.singleflight import SingleFlight

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import Horizon, ModuleConfig
    from multitarget_exporter.model.deadline import Deadline
    from multitarget_exporter.runtime.probelog import ProbeLog

log_operator = logging.getLogger("multitarget_exporter")

MAX_STEPS = 120  # about ten days: hourly, then 6-hourly
# Steps kept of an answer: from a little before it came to the longest horizon's step.
KEEP_BEFORE_SECONDS = 12 * 3600.0
KEEP_AFTER_SECONDS = 126 * 3600.0
# However far an answer's Expires lies, its point is asked again after this at the latest.
LONGEST_FRESHNESS_SECONDS = 12 * 3600.0
_HOUR, _SIX_HOURS = 3600.0, 6 * 3600.0
# The form a point's answer is kept in, part of its key: processes of an older version
# sharing the Redis store read only answers kept in their form (a bare list of steps),
# and would fail on this one ({"updated_at", "steps"}) rather than ask again. This
# version reads theirs (under the key without a form) until the point is asked again,
# so an upgrade asks no point before its Expires.
KEPT_FORM = "2"
# One request per point at a time in this process, whichever module asks (the key names
# the base URL too); across processes, a claim in the shared store.
_Shared = tuple[Validated | None, int, "ProbeResult | None"]
_POINT_FLIGHTS: PerProcess[SingleFlight[_Shared]] = PerProcess(SingleFlight)


class Step(NamedTuple):
    """One time step of a forecast, in the few fields a reading needs (a tuple: a point's
    answer is kept as about seventy of them)."""

    time: float
    temperature: float | None = None
    humidity: float | None = None
    pressure: float | None = None
    wind_speed: float | None = None
    wind_gust: float | None = None
    wind_direction: float | None = None
    cloud_cover: float | None = None
    dew_point: float | None = None
    uv_clear_sky: float | None = None
    # The next hour's, and the next six hours' figures (absent periods: all None).
    hour_symbol: str | None = None
    hour_precipitation: float | None = None
    hour_probability: float | None = None
    six_symbol: str | None = None
    six_precipitation: float | None = None
    six_probability: float | None = None
    twelve_symbol: str | None = None
    has_hour: bool = False
    has_six: bool = False


_INSTANT = (
    ("temperature", "air_temperature"),
    ("humidity", "relative_humidity"),
    ("pressure", "air_pressure_at_sea_level"),
    ("wind_speed", "wind_speed"),
    ("wind_gust", "wind_speed_of_gust"),
    ("wind_direction", "wind_from_direction"),
    ("cloud_cover", "cloud_area_fraction"),
    ("dew_point", "dew_point_temperature"),
    ("uv_clear_sky", "ultraviolet_index_clear_sky"),
)


def http_time(value: str | None) -> float | None:
    """An HTTP date (`Expires`, `Last-Modified`, `Date`) as a Unix time, or None."""
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


def fresh_for(headers: Mapping[str, str]) -> float | None:
    """How long an answer stays fresh: its `Expires` less its `Date` (the server's own
    clock on both ends, so a clock here that runs fast or slow does not matter), or less
    the local time without a `Date`; None without a usable `Expires`."""
    expires = http_time(headers.get("expires"))
    if expires is None:
        return None
    sent = http_time(headers.get("date"))
    seconds = expires - (sent if sent is not None else time.time())
    return min(seconds, LONGEST_FRESHNESS_SECONDS) if seconds > 0 else None


def updated_at(document: Any) -> float | None:
    """When MET Norway made the forecast (`properties.meta.updated_at`, ISO 8601 with a
    zone: "2026-11-25T10:12:44Z") as a Unix time; None if absent or not such a time."""
    properties = document.get("properties") if isinstance(document, dict) else None
    value = text(properties, "meta", "updated_at")
    if value is None or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # a local time of no known zone: not a moment
    return parsed.timestamp()


def _period(data: dict[str, Any], block: str) -> tuple[str | None, float | None, float | None]:
    period = data.get(block)
    if not isinstance(period, dict):
        return None, None, None
    code = text(period, "summary", "symbol_code")
    return (
        sys.intern(code[:64]) if code else None,  # a few dozen codes, kept many times over
        number(period, "details", "precipitation_amount"),
        number(period, "details", "probability_of_precipitation"),
    )


def compact(document: Any, now: float | None = None) -> list[Step] | str:
    """The answer's time series as Steps, those around `now` that a reading can need (all,
    without `now`), or why there is none."""
    properties = document.get("properties") if isinstance(document, dict) else None
    series = properties.get("timeseries") if isinstance(properties, dict) else None
    if not isinstance(series, list):
        return "answer has no properties.timeseries"
    kept = []
    for entry in series[:MAX_STEPS]:
        at = steps.moment(text(entry, "time"))
        data = entry.get("data") if isinstance(entry, dict) else None
        if at is None or not isinstance(data, dict):
            continue
        if now is not None and not now - KEEP_BEFORE_SECONDS <= at <= now + KEEP_AFTER_SECONDS:
            continue
        instant = data.get("instant")
        details = instant.get("details") if isinstance(instant, dict) else None
        values = {field: number(details, name) for field, name in _INSTANT}
        hour, six = _period(data, "next_1_hours"), _period(data, "next_6_hours")
        twelve = _period(data, "next_12_hours")
        kept.append(
            Step(
                at,
                **values,
                hour_symbol=hour[0],
                hour_precipitation=hour[1],
                hour_probability=hour[2],
                six_symbol=six[0],
                six_precipitation=six[1],
                six_probability=six[2],
                twelve_symbol=twelve[0],
                has_hour=isinstance(data.get("next_1_hours"), dict),
                has_six=isinstance(data.get("next_6_hours"), dict),
            )
        )
    if not kept:
        return "answer's timeseries has no steps"
    if all(step.temperature is None for step in kept):
        return "answer's steps have no instant air_temperature"
    return kept


def _own_period(series: list[Step], index: int) -> tuple[str, float | None, float | None] | None:
    """The window, precipitation and chance of the period a step covers, found by its
    length: the next hour's for an hourly step, the next six hours' for a six-hourly one;
    None where they do not match."""
    step = series[index]
    following = series[index + 1].time if index + 1 < len(series) else None
    length = _SIX_HOURS if following is None else following - step.time
    if length == _HOUR and step.has_hour:
        return "1h", step.hour_precipitation, step.hour_probability
    if length == _SIX_HOURS and step.has_six:
        return "6h", step.six_precipitation, step.six_probability
    return None


def _conditions(step: Step) -> tuple[Condition, ...]:
    for code in (step.hour_symbol, step.six_symbol, step.twelve_symbol):
        if code:
            found = met_symbols.condition(code)
            return (found,) if found else ()
    return ()


def current_index(series: list[Step], now: float) -> int:
    """The step that contains now: the latest one not after it (the first if all lie ahead)."""
    earlier = [index for index, step in enumerate(series) if step.time <= now]
    return earlier[-1] if earlier else 0


def reading_at(
    series: list[Step],
    now: float,
    horizons: tuple[Horizon, ...],
    latitude: float,
    longitude: float,
    place: Place | None,
    updated: float | None = None,
) -> Reading | str:
    """The reading a kept time series gives at `now` (`updated`: when MET Norway made
    that forecast), or why it gives none."""
    times: list[float | None] = [step.time for step in series]
    if not steps.ascending(times):
        return "answer's timeseries is not in time order"
    step = series[current_index(series, now)]
    if step.temperature is None:
        return "the current step has no air_temperature"
    humidity = units.fraction(step.humidity)
    dew_point = step.dew_point
    if dew_point is None and humidity is not None:
        dew_point = dew_point_celsius(step.temperature, humidity)
    found, _ = steps.at_horizons(
        times, horizons, now, _SIX_HOURS, lambda index, label: _forecast_step(series, index, label)
    )
    return Reading(
        provider=MetNorway.name,
        temperature_celsius=step.temperature,
        dew_point_celsius=dew_point,
        relative_humidity_ratio=humidity,
        pressure_pascals=units.pascals(step.pressure),
        wind_speed_meters_per_second=units.amount(step.wind_speed),
        wind_gust_meters_per_second=units.amount(step.wind_gust),
        wind_direction_degrees=step.wind_direction,
        cloud_cover_ratio=units.fraction(step.cloud_cover),
        conditions=_conditions(step),
        observation_timestamp_seconds=step.time,
        forecast_updated_timestamp_seconds=updated,
        location_name=place.name if place else "",
        location_country=place.country if place else "",
        latitude_degrees=latitude,
        longitude_degrees=longitude,
        uv_index_clear_sky=units.amount(step.uv_clear_sky),
        precipitation_probability_ratio=units.fraction(step.hour_probability),
        forecast=tuple(found),
        observes_precipitation=False,
    )


def _forecast_step(series: list[Step], index: int, label: str) -> ForecastStep:
    step = series[index]
    period = _own_period(series, index)
    window, precipitation, probability = period if period else ("", None, None)
    return ForecastStep(
        horizon=label,
        temperature_celsius=step.temperature,
        relative_humidity_ratio=units.fraction(step.humidity),
        precipitation_probability_ratio=units.fraction(probability),
        precipitation_meters=units.metres(precipitation) if window else None,
        window=window,
        wind_speed_meters_per_second=units.amount(step.wind_speed),
        wind_gust_meters_per_second=units.amount(step.wind_gust),
        cloud_cover_ratio=units.fraction(step.cloud_cover),
        conditions=_conditions(step),
    )


def _readable(headers: Mapping[str, str], body: bytes, now: float) -> dict[str, Any] | str:
    """An answer's body in the form it is kept in, `{"updated_at": Unix time or None,
    "steps": [Step, ...]}`, or why it gives none."""
    content_type = headers.get("content-type", "application/json")
    if "json" not in content_type.lower():
        return f"answer is {content_type[:60]}, not JSON"
    document = decode_json(body)
    if isinstance(document, Failure):
        return document.detail
    series = compact(document, now)
    if isinstance(series, str):
        return series
    return {"updated_at": updated_at(document), "steps": series}


def _kept_series(kept: Validated) -> tuple[list[Step], float | None] | str:
    """A kept answer's Steps (plain lists once it went through Redis) and when its forecast
    was made, or why it has none. A bare list of steps is the form kept before
    `updated_at` was: read as a forecast of unknown time."""
    document, updated = kept.document, None
    if isinstance(document, str):
        return document
    if isinstance(document, dict):
        moment = document.get("updated_at")
        if isinstance(moment, int | float) and not isinstance(moment, bool):
            updated = float(moment)
        document = document.get("steps")
    if not isinstance(document, list):
        return "kept answer has no time series"
    try:
        series = [entry if isinstance(entry, Step) else Step(*entry) for entry in document]
    except TypeError:
        return "kept answer has no time series"
    return series, updated


class MetNorway:
    """MET Norway's forecast: one call per point and `Expires`, revalidated after it."""

    kind: ClassVar[ProviderKind] = MET_NORWAY
    name: ClassVar[str] = MET_NORWAY.name
    _warned_deprecated: ClassVar[bool] = False

    def __init__(
        self, module: ModuleConfig, validators: Validators | None = None, gate: Gate | None = None
    ) -> None:
        self._base_url = module.base_url
        self._url = f"{module.base_url}/weatherapi/locationforecast/2.0/complete"
        self._upstream = upstream.Upstream(self.name, gate=gate)
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
        if isinstance(location, StationId):
            return (
                "station: targets name a weather station, for nws and bright_sky modules; "
                "a met_norway module takes a place name, zip: or lat,lon"
            )
        return None

    def _key(self, latitude: float, longitude: float) -> str:
        point = f"{latitude:.{POINT_DECIMALS}f},{longitude:.{POINT_DECIMALS}f}"
        return f"{self._base_url}|{point}|{KEPT_FORM}"

    def _kept(self, key: str) -> Validated | None:
        """The point's kept answer: in this form, else in the form before."""
        kept = self._validators.get(key)
        return kept if kept is not None else self._earlier(key)

    def _earlier(self, key: str) -> Validated | None:
        """The point's answer in the form before (a bare list of steps, kept by an older
        version), carried over to this form's key."""
        earlier = self._validators.get(key.removesuffix(f"|{KEPT_FORM}"))
        if earlier is not None:
            self._keep(key, earlier)
        return earlier

    def stored(self, location: Location) -> ProbeResult | None:
        """A reading from the point's kept answer while it is fresh: no call at all."""
        point = self._geocoder.known(location)
        if point is None:
            return None
        latitude, longitude, place = point
        latitude, longitude = rounded(latitude), rounded(longitude)
        kept = self._kept(self._key(latitude, longitude))
        if kept is None or time.time() >= kept.expires_at:
            return None
        result = self._result(kept, kept.status_code, latitude, longitude, place)
        return replace(result, cache_hit=True)

    def fetch(self, location: Location, deadline: Deadline, log: ProbeLog) -> ProbeResult:
        point = self._geocoder.point(location, deadline, log)
        if isinstance(point, ProbeResult):
            return point
        latitude, longitude, place = point
        latitude, longitude = rounded(latitude), rounded(longitude)
        key = self._key(latitude, longitude)
        shared, _ = _POINT_FLIGHTS.get().run(
            key, lambda: self._point(key, latitude, longitude, deadline, log), deadline
        )
        if shared is None:
            failure = Failure(FailureReason.TIMEOUT, "deadline passed waiting for this point")
            return ProbeResult(None, failure)
        kept, status_code, failed = shared
        if failed is not None or kept is None:
            return failed or invalid("no answer kept for this point", status_code)
        result = self._result(kept, status_code, latitude, longitude, place)
        return replace(result, cache_hit=status_code == 0)

    def _point(
        self, key: str, latitude: float, longitude: float, deadline: Deadline, log: ProbeLog
    ) -> tuple[Validated | None, int, ProbeResult | None]:
        """The point's answer: kept and fresh (status 0: no call), or asked for, with a claim
        across processes so that only one asks; or the failed ProbeResult."""
        got = kept_or_claimed(self._validators, key, lambda k: time.time() < k.expires_at, deadline)
        if got is None:
            failure = Failure(FailureReason.TIMEOUT, "another process is asking for this point")
            return None, 0, ProbeResult(None, failure)
        kept, ask = got
        if not ask and kept is not None:
            log.debug("answer kept for this point", expires_at=kept.expires_at)
            return kept, 0, None
        try:
            if kept is None:  # none in this form: perhaps in the form before
                kept = self._earlier(key)
                if kept is not None and time.time() < kept.expires_at:
                    return kept, 0, None
            return self._ask(key, kept, latitude, longitude, deadline, log)
        finally:
            self._validators.release(key)

    def _ask(
        self,
        key: str,
        kept: Validated | None,
        latitude: float,
        longitude: float,
        deadline: Deadline,
        log: ProbeLog,
    ) -> tuple[Validated | None, int, ProbeResult | None]:
        headers = dict(self._headers)
        revalidating = bool(kept and kept.last_modified and not isinstance(kept.document, str))
        if kept is not None and revalidating:
            # Only a usable answer is revalidated: a 304 would keep a useless one useless.
            headers["If-Modified-Since"] = kept.last_modified
        params = {"lat": repr(latitude), "lon": repr(longitude)}  # rounded: 4 decimals at most
        exchange = self._upstream.get("locationforecast", self._url, params, deadline, log, headers)
        if exchange.failure is not None:
            return (
                None,
                exchange.status_code,
                ProbeResult(None, exchange.failure, exchange.status_code),
            )
        now = time.time()
        # Fresh until the later of the answer's Expires and the module's cache_ttl.
        fresh_until = now + max(fresh_for(exchange.headers) or 0.0, self._cache_ttl)
        last_modified = exchange.headers.get("last-modified", "")
        if http_time(last_modified) is None:
            last_modified = ""  # not a date: never sent back
        if exchange.status_code == 304:
            if kept is None or not revalidating:
                return (
                    None,
                    304,
                    invalid("304 Not Modified to a request that asked for a body", 304),
                )
            renewed = Validated(
                fresh_until, last_modified or kept.last_modified, kept.status_code, kept.document
            )
            self._keep(key, renewed)
            log.debug("not modified: the kept answer renewed", expires_at=fresh_until)
            return renewed, 304, None
        if exchange.status_code == 403:
            detail = "HTTP 403: MET Norway refuses unidentified or blocked clients (check contact)"
            return None, 403, ProbeResult(None, Failure(FailureReason.UNAUTHORIZED, detail), 403)
        failed = status_failure(exchange.status_code, exchange.body, ())
        if failed is not None:
            return None, exchange.status_code, failed
        if exchange.status_code == 203 and not MetNorway._warned_deprecated:
            MetNorway._warned_deprecated = True
            log_operator.warning(
                "MET Norway answers 203: this product is deprecated and will go away",
                extra={"fields": {"url": self._url}},
            )
        # Every answer is kept until it is stale, a useless one too (as why it is
        # useless): the terms ask for no new request before then, whatever came.
        readable = _readable(exchange.headers, exchange.body, now)
        fresh = Validated(fresh_until, last_modified, exchange.status_code, readable)
        self._keep(key, fresh)
        return fresh, exchange.status_code, None

    def _keep(self, key: str, kept: Validated) -> None:
        """Keep an answer until it is stale, and one more cache_ttl so a 304 can renew it."""
        keep = max(kept.expires_at - time.time(), 0.0) + self._cache_ttl
        self._validators.put(key, kept, keep)

    def _result(
        self,
        kept: Validated,
        status_code: int,
        latitude: float,
        longitude: float,
        place: Place | None,
    ) -> ProbeResult:
        found = _kept_series(kept)
        if isinstance(found, str):
            return invalid(found, status_code)
        series, updated = found
        now = time.time()
        reading = reading_at(series, now, self._horizons, latitude, longitude, place, updated)
        if isinstance(reading, str):
            return invalid(reading, status_code)
        # The reading holds until the next step starts (then another is current), at most
        # as long as the answer.
        later = [step.time for step in series if step.time > now]
        until = min([kept.expires_at, *later[:1]])
        return ProbeResult(reading, None, status_code, expires_at=until)
