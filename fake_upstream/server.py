"""A fake OpenWeatherMap, Open-Meteo, MET Norway, NWS, MetAlerts and Bright Sky on loopback,
with injectable faults.

Serves the upstreams' paths from `data/places.json` and its weather model:
OpenWeatherMap's `/data/2.5/weather`, `/data/2.5/forecast` (5 days, 3-hour steps),
`/data/2.5/air_pollution`, `/geo/1.0/direct` and `/geo/1.0/zip`; Open-Meteo's
`/v1/forecast`, `/v1/air-quality` (another host in reality) and `/v1/search`; MET
Norway's `/weatherapi/locationforecast/2.0/complete` and `/compact` (see met_norway.py);
and the national services of warnings and station observations: the US National Weather
Service's `/points/LAT,LON`, `/gridpoints/WFO/X,Y/stations`,
`/stations/ID/observations/latest` and `/alerts/active?point=LAT,LON` (nws.py), MET
Norway's MetAlerts `/weatherapi/metalerts/2.0/current.json` (metalerts.py) and Bright
Sky's `/alerts` and `/current_weather` (bright_sky.py), with the warning scenarios of
alerts.py. It counts every request it receives, and answers a small control API under
`/_fake/`:

    GET    /_fake/requests   counts by path, the same weighted as Open-Meteo counts them
                             (`weighted`, see open_meteo.py: max(1, variables / 10 *
                             max(1, days / 14)) for /v1/forecast and /v1/air-quality,
                             1 for anything else), the recent requests' paths, queries
                             and headers, and MET Norway's etiquette counts (`met`)
    POST   /_fake/reset      forget counts and faults, restore the MET settings of the start
    POST   /_fake/faults     add a fault rule: {"fault": "hang", "match": "Atlantis",
                             "path": "/data/2.5/weather", "times": 1, "delay": 0.5}
                             (and "retry_after": "5": that Retry-After on the answer)
    DELETE /_fake/faults     remove every fault rule
    GET    /_fake/met        MET Norway's cache settings: {"expires_seconds": 1800,
                             "update_seconds": 3600}
    POST   /_fake/met        change them (either or both), from the next request on
    POST   /_fake/stations   one station's behaviour: {"id": "KABC", "age_seconds": 10800,
                             "nulls": ["temperature"], "rejected": ["windSpeed"]} (NWS; a
                             DWD id, five digits, takes age_seconds and nulls; see nws.py)
    POST   /_fake/alerts     one point's warnings for one source (see alerts.py):
                             {"source": "nws", "match": "35.1,-106.6", "alerts": [...]}

A rule's `match` is compared, ignoring case, with what the request names: the
`q`, `id`, `zip`, `name`, `point`, `dwd_station_id` or `wmo_station_id` parameter, or
`lat,lon` as sent; on NWS's parametrised paths the `LAT,LON` of `/points/LAT,LON`, the
station id of `/stations/ID/...`, or `WFO/X,Y` of `/gridpoints/WFO/X,Y/stations`; `*`
matches all. A rule's `path` is the request's path, or for those NWS paths one of their
fixed prefixes (`/points`, `/stations`, `/gridpoints`, or longer: `/stations/KABC`).

The national services' counts are under `national` in `/_fake/requests`: requests per
kind (`nws_points`, `nws_stations`, `nws_observations`, `nws_alerts`, `metalerts`,
`brightsky_alerts`, `brightsky_current`), `metalerts_early` (a MetAlerts request for a
lat,lon as sent less than 600 s after the previous one for it), `long_coordinates`
(more than 4 decimals), `nws_forbidden` and `metalerts_forbidden` (403s for a
User-Agent without a contact, the check MET Norway's Locationforecast uses), and
`by_point`: per path and point as sent (`/points/35.1,-106.6`,
`/alerts/active?point=35.1,-106.6`, `/alerts?lat=53.55&lon=9.99`, ...). Their
`rate_limited` 429s carry `Retry-After` (the rule's `delay`, rounded up, else 60).

MET Norway's path behaves as the service does. Every forecast carries `Expires` (now +
`expires_seconds`) and `Last-Modified` (the last multiple of `update_seconds`: when the
fake's data was last "updated"); `If-Modified-Since` equal to that Last-Modified, as a
string, gets a `304` with fresh headers and no body; `Accept-Encoding: gzip` gets a
gzip-compressed body. A request without a User-Agent that names the client (none, empty,
or a generic library's without an e-mail address, domain or URL) gets a `403`. `met`
counts the terms' breaches: `early` (a request for a lat,lon as sent before the Expires
last given for it), `long_coordinates` (lat or lon with more than 4 decimals),
`not_modified` (304s) and `forbidden` (403s for identification).
"""

from __future__ import annotations

import gzip
import json
import math
import socket
import struct
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from fake_upstream import alerts as warnings
from fake_upstream import bright_sky, met_norway, metalerts, nws, open_meteo, places
from fake_upstream.alerts import Answer
from fake_upstream.places import Place, World

FAULTS = (
    "hang",  # accept, read the request, never answer (until `delay` or shutdown)
    "trickle",  # a valid answer, its body sent one byte every `delay` seconds
    "trickle_headers",  # a valid answer, its status line and headers sent byte by byte
    "slow",  # a valid answer after `delay` seconds
    "reset",  # close the connection with a TCP reset
    "close",  # close the connection without an answer
    "html_502",  # a proxy's HTML error page
    "json_500",  # the API's own JSON error
    "json_503",
    "bad_request",  # 400 {"cod":"400","message":"wrong latitude"}
    "unauthorized",  # 401 (MET Norway: its 403)
    "not_found",  # 404
    "rate_limited",  # 429 (MET Norway: its own page)
    "malformed",  # 200 with a body that is not JSON
    "empty",  # 200 with an empty body
    "partial",  # 200 with JSON cut off halfway
    "nulls",  # 200, every optional field null
    "no_temperature",  # 200 with main.temp null
    "error_in_body",  # 200 whose body says {"cod":"404"}
    "oversize",  # 200 with a 2 MiB body and its Content-Length
    "oversize_chunked",  # 200 with a 2 MiB body, chunked, no Content-Length
    "wrong_content_type",  # a valid answer with Content-Type: text/html
    "deprecated",  # MET Norway: a valid forecast with status 203 (never a 304)
    "met_no_timeseries",  # MET Norway: `properties` without `timeseries`
    "met_empty_timeseries",  # MET Norway: `timeseries: []`
    "met_no_instant",  # MET Norway: steps without `data.instant`
)
# Faults that act on MET Norway's answer rather than replace it: no 304 for them.
_MET_SHAPES = {
    "nulls",
    "no_temperature",
    "wrong_content_type",
    "deprecated",
    "met_no_timeseries",
    "met_empty_timeseries",
    "met_no_instant",
    "trickle",
    "trickle_headers",
}
# The same faults in Open-Meteo's words (`/v1/` paths): {"error": true, "reason": ...}.
_OPEN_METEO_ERRORS = {
    "json_500": (500, "Internal server error"),
    "json_503": (503, "Service temporarily unavailable"),
    "bad_request": (400, "Latitude must be in range of -90 to 90°. Given: 91.0."),
    "unauthorized": (401, "The supplied API key is invalid."),
    "not_found": (404, "Not Found"),
    "rate_limited": (429, "Daily API request limit exceeded. Please try again tomorrow."),
    "error_in_body": (200, "Cannot initialize WeatherVariable from invalid String value."),
}
# The same faults in MET Norway's words: (status, content type, body).
_MET_ERRORS = {
    "bad_request": (400, "text/html", met_norway.bad_request("Invalid parameter lat")),
    "unauthorized": (403, "text/html", met_norway.FORBIDDEN_PAGE),
    "rate_limited": (429, "text/html", met_norway.THROTTLED_PAGE),
}
# Bright Sky's words for them: {"detail": ...} (NWS's are problem+json, see nws.py).
_BRIGHT_SKY_ERRORS = {
    "json_500": (500, "Internal Server Error"),
    "json_503": (503, "Service Unavailable"),
    "bad_request": (400, "Invalid lat/lon"),
    "unauthorized": (403, "Forbidden"),
    "not_found": (404, "No sources match your criteria"),
    "rate_limited": (429, "Too Many Requests"),
}
NATIONAL_COUNTS = (
    "nws_points",
    "nws_stations",
    "nws_observations",
    "nws_alerts",
    "metalerts",
    "metalerts_early",
    "brightsky_alerts",
    "brightsky_current",
    "long_coordinates",
    "nws_forbidden",
    "metalerts_forbidden",
)
DEFAULT_API_KEY = "fake-upstream-key"
# MET Norway's answers expire 30 minutes after they are sent (Expires - Date on the
# service, docs.api.met.no GettingStarted); its Nordic forecasts are updated hourly.
MET_EXPIRES_SECONDS = 1800.0
MET_UPDATE_SECONDS = 3600.0
_LOG_LIMIT = 10_000
_OVERSIZE = 2 * 1024 * 1024


@dataclass
class FaultRule:
    """One injected fault, for requests whose subject (and path) match."""

    fault: str
    match: str = "*"
    path: str | None = None
    times: int | None = None  # None: forever
    delay: float | None = None
    retry_after: str | None = None  # sent verbatim as `Retry-After` on the fault's answer

    def applies(self, path: str, subject: str) -> bool:
        if self.path and self.path != path and not _within(self.path, path):
            return False
        return self.match == "*" or self.match.casefold() == subject.casefold()


def _within(prefix: str, path: str) -> bool:
    """Whether `prefix` names a parametrised NWS path by its fixed part (`/points` for
    `/points/35.1,-106.6`). Other paths are matched exactly: `/alerts` is not
    `/alerts/active`."""
    return nws.subject(path) is not None and path.startswith(prefix.rstrip("/") + "/")


def _national_counter(path: str) -> str:
    if path == nws.ALERTS_PATH:
        return "nws_alerts"
    if path == metalerts.PATH:
        return "metalerts"
    if path in bright_sky.PATHS:
        return "brightsky_" + path.strip("/").partition("_")[0]
    return {"/points": "nws_points", "/gridpoints": "nws_stations"}.get(
        "/" + path.split("/")[1], "nws_observations"
    )


def _coordinates(path: str, query: dict[str, str]) -> list[str]:
    """The coordinates a national request names, as sent."""
    named = [query[key] for key in ("lat", "lon") if key in query]
    point = query.get("point", "")
    if path.startswith("/points/"):
        point = nws.subject(path) or ""
    return named + point.split(",") if point else named


class FakeState:
    """Counters, recent requests and fault rules, shared by the handler threads."""

    def __init__(
        self,
        api_key: str,
        hang_seconds: float,
        met_expires_seconds: float = MET_EXPIRES_SECONDS,
        met_update_seconds: float = MET_UPDATE_SECONDS,
    ) -> None:
        self.api_key = api_key
        self.hang_seconds = hang_seconds
        self.met_defaults = {
            "expires_seconds": met_expires_seconds,
            "update_seconds": met_update_seconds,
        }
        self.met_settings = dict(self.met_defaults)
        self.met_counts: Counter[str] = Counter()
        self.met_expires: dict[str, int] = {}  # lat,lon as sent -> the Expires last given
        self.world = World.load()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.weighted: defaultdict[str, float] = defaultdict(float)
        self.connections = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=_LOG_LIMIT)
        self.rules: list[FaultRule] = []
        self.national_counts: Counter[str] = Counter()
        self.national_points: Counter[str] = Counter()
        self.metalerts_last: dict[str, float] = {}  # lat,lon as sent -> its last request
        self.nws_stations: dict[str, nws.Behaviour] = {}
        self.dwd_stations: dict[str, bright_sky.Behaviour] = {}
        self.alerts: warnings.Overrides = {}

    def record(self, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        with self.lock:
            self.counts[path] += 1
            self.weighted[path] += open_meteo.call_weight(path, query)
            self.recent.append(
                {"path": path, "query": query, "headers": headers, "time": time.time()}
            )

    def met_arrived(self, query: dict[str, str], now: float) -> None:
        """Count a MET Norway request that breaks the terms: early, or too precise."""
        point = f"{query.get('lat', '')},{query.get('lon', '')}"
        with self.lock:
            if now < self.met_expires.get(point, 0):
                self.met_counts["early"] += 1
            if any(met_norway.decimals(query.get(k, "")) > 4 for k in ("lat", "lon")):
                self.met_counts["long_coordinates"] += 1

    def national_arrived(self, path: str, query: dict[str, str], now: float) -> None:
        """Count a request to a national service: by kind, by point, and its breaches."""
        keys = ("point", "lat", "lon", "dwd_station_id", "wmo_station_id")
        named = [f"{key}={query[key]}" for key in keys if key in query]
        with self.lock:
            self.national_counts[_national_counter(path)] += 1
            self.national_points[f"{path}?{'&'.join(named)}" if named else path] += 1
            if any(met_norway.decimals(text) > 4 for text in _coordinates(path, query)):
                self.national_counts["long_coordinates"] += 1
            if path == metalerts.PATH and ("lat" in query or "lon" in query):
                point = f"{query.get('lat', '')},{query.get('lon', '')}"
                last = self.metalerts_last.get(point)
                if last is not None and now - last < metalerts.MIN_INTERVAL:
                    self.national_counts["metalerts_early"] += 1
                self.metalerts_last[point] = now

    def met_times(self, query: dict[str, str], now: float) -> tuple[int, float]:
        """Expires and Last-Modified for an answer now, remembering the Expires given."""
        point = f"{query.get('lat', '')},{query.get('lon', '')}"
        with self.lock:
            expires = int(now + self.met_settings["expires_seconds"])
            self.met_expires[point] = expires
            update = self.met_settings["update_seconds"]
        return expires, now // update * update

    def take_fault(self, path: str, subject: str) -> FaultRule | None:
        with self.lock:
            for rule in self.rules:
                if rule.applies(path, subject):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self.rules.remove(rule)
                    return rule
        return None

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": sum(self.counts.values()),
                "by_path": dict(self.counts),
                "weighted": {path: round(total, 3) for path, total in self.weighted.items()},
                "connections": self.connections,
                "requests": list(self.recent),
                "faults": [rule.__dict__ for rule in self.rules],
                "met": {
                    key: self.met_counts[key]
                    for key in ("early", "long_coordinates", "not_modified", "forbidden")
                },
                "national": {
                    **{key: self.national_counts[key] for key in NATIONAL_COUNTS},
                    "by_point": dict(self.national_points),
                },
            }

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.weighted.clear()
            self.recent.clear()
            self.rules.clear()
            self.connections = 0
            self.met_counts.clear()
            self.met_expires.clear()
            self.met_settings = dict(self.met_defaults)
            self.national_counts.clear()
            self.national_points.clear()
            self.metalerts_last.clear()
            self.nws_stations.clear()
            self.dwd_stations.clear()
            self.alerts.clear()


def _subject(query: dict[str, str], path: str = "") -> str:
    named = nws.subject(path)
    if named is not None:
        return named
    for key in ("q", "id", "zip", "name", "point", "dwd_station_id", "wmo_station_id"):
        if key in query:
            return query[key]
    if "lat" in query or "lon" in query:
        return f"{query.get('lat', '')},{query.get('lon', '')}"
    return f"{query.get('latitude', '')},{query.get('longitude', '')}"


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` allows gzip (`gzip;q=0` refuses it)."""
    for coding in accept_encoding.split(","):
        name, _, parameters = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = parameters.strip().removeprefix("q=").strip()
            return not quality or _float(quality) != 0
    return False


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, so clients' connection pools are exercised."""

    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1"
    # Headers and body go out in separate writes; with Nagle on, the body of
    # every request after the first on a connection waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    _fault_headers: tuple[tuple[str, str], ...] = ()  # a fault rule's own, set per request
    _open_meteo = False  # set per request: answer faults in Open-Meteo's words,
    _met = False  # or in MET Norway's
    _national: str | None = None  # or in NWS's, MetAlerts' ("metalerts") or Bright Sky's
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read counts
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    # -- plumbing ---------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in {**(headers or {}), **dict(self._fault_headers)}.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document, ensure_ascii=False).encode("utf-8"))

    def _abort(self, reset: bool) -> None:
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    # -- control API ------------------------------------------------------------

    def _control(self, method: str, path: str) -> None:
        state = self.server.state
        if method == "GET" and path == "/_fake/requests":
            return self._json(200, state.summary())
        if method == "POST" and path == "/_fake/reset":
            state.reset()
            return self._json(200, {"ok": True})
        if method == "DELETE" and path == "/_fake/faults":
            with state.lock:
                state.rules.clear()
            return self._json(200, {"ok": True})
        if path == "/_fake/met" and method in ("GET", "POST"):
            return self._met_settings(method == "POST")
        if method == "POST" and path == "/_fake/stations":
            return self._station_setting()
        if method == "POST" and path == "/_fake/alerts":
            return self._alerts_setting()
        if method == "POST" and path == "/_fake/faults":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                rule = FaultRule(**json.loads(self.rfile.read(min(length, 65536)) or b"{}"))
            except (TypeError, ValueError) as error:
                return self._json(400, {"error": str(error)})
            if rule.fault not in FAULTS:
                return self._json(400, {"error": f"unknown fault {rule.fault!r}", "faults": FAULTS})
            with state.lock:
                state.rules.append(rule)
            return self._json(200, {"ok": True})
        return self._json(404, {"error": "no such control endpoint"})

    def _met_settings(self, change: bool) -> None:
        state = self.server.state
        if change:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                asked = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
                unknown = set(asked) - set(state.met_defaults)
                if unknown:
                    raise ValueError(f"unknown settings {sorted(unknown)}")
                values = {key: float(value) for key, value in asked.items()}
            except (TypeError, ValueError, AttributeError) as error:
                return self._json(400, {"error": str(error)})
            if values.get("expires_seconds", 0) < 0 or values.get("update_seconds", 1) <= 0:
                return self._json(400, {"error": "expires_seconds >= 0, update_seconds > 0"})
            with state.lock:
                state.met_settings.update(values)
        with state.lock:
            return self._json(200, dict(state.met_settings))

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(min(length, 1 << 20)) or b"{}")

    def _station_setting(self) -> None:
        state = self.server.state
        try:
            document = self._read_json()
            identifier = document.get("id") if isinstance(document, dict) else None
            if not isinstance(identifier, str):
                raise ValueError('{"id": "KABC", ...}: a station id, please')
            if nws.station(identifier) is not None:
                found = nws.station(identifier)
                assert found is not None
                behaviour = nws.behaviour_from(document)
                with state.lock:
                    state.nws_stations[found.identifier] = behaviour
                return self._json(200, {"ok": True, "service": "nws", "id": found.identifier})
            if bright_sky.station(identifier) is not None:
                dwd = bright_sky.behaviour_from(document)
                with state.lock:
                    state.dwd_stations[identifier] = dwd
                return self._json(200, {"ok": True, "service": "dwd", "id": identifier})
        except (TypeError, ValueError, AttributeError) as error:
            return self._json(400, {"error": str(error)})
        return self._json(404, {"error": f"no such station {identifier!r}"})

    def _alerts_setting(self) -> None:
        state = self.server.state
        try:
            source, match, listed = warnings.parse_setting(self._read_json(), time.time())
        except ValueError as error:
            return self._json(400, {"error": str(error)})
        with state.lock:
            if listed is None:
                state.alerts.pop((source, match), None)
            else:
                state.alerts[(source, match)] = listed
        count = None if listed is None else len(listed)
        return self._json(200, {"ok": True, "source": source, "match": match, "alerts": count})

    def do_POST(self) -> None:
        self._control("POST", urlsplit(self.path).path)

    def do_DELETE(self) -> None:
        self._control("DELETE", urlsplit(self.path).path)

    # -- the upstream APIs ------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/_fake/"):
            return self._control("GET", url.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        state = self.server.state
        state.record(url.path, query, {k: v for k, v in self.headers.items()})
        # Per request: a kept-alive connection may ask one upstream, then another.
        self._open_meteo, self._met = url.path.startswith("/v1/"), url.path in met_norway.PATHS
        self._fault_headers = ()
        path = unquote(url.path)
        self._national = (
            "nws"
            if nws.serves(path)
            else "metalerts"
            if path == metalerts.PATH
            else "brightsky"
            if path in bright_sky.PATHS
            else None
        )
        if self._met:
            return self._met_forecast(url.path, query)
        if self._national:
            self._met = self._national == "metalerts"  # MET Norway's words for its faults
            return self._national_answer(path, query)
        routes = {
            "/data/2.5/weather": self._owm_weather,
            "/data/2.5/forecast": self._owm_forecast,
            "/geo/1.0/direct": self._owm_direct,
            "/geo/1.0/zip": self._owm_zip,
            "/data/2.5/air_pollution": self._owm_air,
            "/v1/forecast": self._open_meteo_forecast,
            "/v1/air-quality": self._open_meteo_air,
            "/v1/search": self._open_meteo_search,
        }
        route = routes.get(url.path)
        if route is None:
            return self._json(404, {"cod": "404", "message": "Internal error"})
        if url.path.startswith(("/data/", "/geo/")) and query.get("appid") != state.api_key:
            return self._json(
                401,
                {
                    "cod": 401,
                    "message": "Invalid API key. Please see "
                    "https://openweathermap.org/faq#error401 for more info.",
                },
            )
        rule = state.take_fault(url.path, _subject(query, url.path))
        if rule is not None and self._fault_before(rule):
            return None
        status, document = route(query)
        shapes = {"/data/2.5/weather": self._owm_current, "/data/2.5/forecast": self._owm_steps}
        if rule is not None and status == 404 and url.path in shapes:
            # A fault that shapes an answer acts out on any name, known or not.
            status, document = shapes[url.path](query, None, None)
        if rule is not None and rule.fault in ("nulls", "no_temperature"):
            document = _with_nulls(document, keep_temperature=rule.fault == "nulls")
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        if rule is not None and rule.fault in ("trickle", "trickle_headers"):
            return self._trickle(body, rule.delay or 0.2, headers_too=rule.fault != "trickle")
        wrong = rule is not None and rule.fault == "wrong_content_type"
        self._send(status, body, "text/html" if wrong else "application/json")
        return None

    def _met_forecast(self, path: str, query: dict[str, str]) -> None:
        """MET Norway's Locationforecast: its checks, faults, caching headers and gzip."""
        state, now = self.server.state, time.time()
        state.met_arrived(query, now)
        if not met_norway.identifies(self.headers.get("User-Agent")):
            with state.lock:
                state.met_counts["forbidden"] += 1
            return self._send(403, met_norway.FORBIDDEN_PAGE, "text/html")
        rule = state.take_fault(path, _subject(query, path))
        if rule is not None and self._fault_before(rule):
            return None
        point = met_norway.check(query)
        if isinstance(point, str):
            return self._send(400, met_norway.bad_request(point), "text/html")
        expires, updated = state.met_times(query, now)
        modified = met_norway.http_date(updated)
        headers = {
            "Expires": met_norway.http_date(expires),
            "Last-Modified": modified,
            "Vary": "Accept, Accept-Encoding",
        }
        fault = rule.fault if rule is not None else None
        if fault not in _MET_SHAPES and self.headers.get("If-Modified-Since") == modified:
            with state.lock:
                state.met_counts["not_modified"] += 1
            return self._send(304, b"", headers=headers)
        document = met_norway.forecast(
            *point,
            state.world,
            complete=met_norway.PATHS[path],
            updated=updated,
            now=now,
        )
        if fault in ("nulls", "no_temperature"):
            document = met_norway.with_nulls(document, keep_temperature=fault == "nulls")
        elif fault is not None:
            document = met_norway.shaped(document, fault)
        body = met_norway.encode(document)
        if rule is not None and rule.fault in ("trickle", "trickle_headers"):
            return self._trickle(body, rule.delay or 0.2, headers_too=rule.fault != "trickle")
        if _accepts_gzip(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        content_type = "text/html" if fault == "wrong_content_type" else "application/json"
        self._send(203 if fault == "deprecated" else 200, body, content_type, headers)
        return None

    def _base(self) -> str:
        """The scheme and host the client asked, for URLs in answers that lead back here."""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def _national_answer(self, path: str, query: dict[str, str]) -> None:
        """NWS, MetAlerts and Bright Sky: identification, faults, the answer, gzip."""
        state, now, service = self.server.state, time.time(), self._national
        state.national_arrived(path, query, now)
        if service != "brightsky" and not met_norway.identifies(self.headers.get("User-Agent")):
            with state.lock:
                state.national_counts[f"{service}_forbidden"] += 1
            if service == "nws":
                return self._answer(nws.forbidden(self._base()))
            return self._send(403, met_norway.FORBIDDEN_PAGE, "text/html")
        rule = state.take_fault(path, _subject(query, path))
        if rule is not None and self._fault_before(rule):
            return None
        with state.lock:
            overrides = dict(state.alerts)
            nws_stations, dwd_stations = dict(state.nws_stations), dict(state.dwd_stations)
        if service == "nws":
            answer = nws.respond(
                path,
                query,
                world=state.world,
                base=self._base(),
                now=now,
                behaviours=nws_stations,
                overrides=overrides,
            )
        elif service == "metalerts":
            answer = metalerts.respond(query, base=self._base(), now=now, overrides=overrides)
        else:
            answer = bright_sky.respond(
                path,
                query,
                world=state.world,
                now=now,
                behaviours=dwd_stations,
                overrides=overrides,
            )
        fault = rule.fault if rule is not None else None
        if fault in ("nulls", "no_temperature"):
            nulls = nws.with_nulls if service == "nws" else bright_sky.with_nulls
            answer.body = nulls(answer.body, keep_temperature=fault == "nulls")
        body = answer.body
        if not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if fault == "partial":  # the service's own answer, cut off halfway
            return self._send(200, body[: len(body) // 2], answer.content_type)
        if rule is not None and rule.fault in ("trickle", "trickle_headers"):
            return self._trickle(body, rule.delay or 0.2, headers_too=rule.fault != "trickle")
        headers = {**answer.headers, "Vary": "Accept, Accept-Encoding"}
        if _accepts_gzip(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        content_type = "text/html" if fault == "wrong_content_type" else answer.content_type
        self._send(answer.status, body, content_type, headers)
        return None

    def _answer(self, answer: Answer, headers: dict[str, str] | None = None) -> None:
        body = answer.body
        if not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self._send(answer.status, body, answer.content_type, {**answer.headers, **(headers or {})})

    @staticmethod
    def _retry_after(rule: FaultRule) -> dict[str, str]:
        if rule.fault != "rate_limited":
            return {}
        return {"Retry-After": str(math.ceil(rule.delay)) if rule.delay else "60"}

    def _fault_before(self, rule: FaultRule) -> bool:
        """Act out a fault that replaces the answer; False where the answer goes on."""
        fault, state = rule.fault, self.server.state
        if rule.retry_after is not None:
            self._fault_headers = (("Retry-After", rule.retry_after),)
        if fault == "hang":
            state.stopping.wait(rule.delay or state.hang_seconds)
            self._abort(reset=False)
        elif fault == "slow":
            state.stopping.wait(rule.delay or 1.0)
            return False
        elif fault in ("reset", "close"):
            self._abort(reset=fault == "reset")
        elif fault == "html_502":
            page = (
                b"<html><head><title>502 Bad Gateway</title></head><body><center>"
                b"<h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
            )
            self._send(502, page, "text/html")
        elif self._national == "nws" and fault in nws.FAULT_PROBLEMS:
            problem = nws.problem(*nws.FAULT_PROBLEMS[fault], self._base())
            self._answer(problem, self._retry_after(rule))
        elif self._national == "brightsky" and fault in _BRIGHT_SKY_ERRORS:
            status, detail = _BRIGHT_SKY_ERRORS[fault]
            body = json.dumps({"detail": detail}).encode()
            self._send(status, body, headers=self._retry_after(rule))
        elif self._met and fault in _MET_ERRORS:
            status, content_type, body = _MET_ERRORS[fault]
            self._send(
                status, body, content_type, self._retry_after(rule) if self._national else None
            )
        elif self._open_meteo and fault in _OPEN_METEO_ERRORS:
            status, reason = _OPEN_METEO_ERRORS[fault]
            self._json(status, {"error": True, "reason": reason})
        elif fault in ("json_500", "json_503"):
            self._json(int(fault[-3:]), {"cod": int(fault[-3:]), "message": "Internal error"})
        elif fault == "bad_request":
            self._json(400, {"cod": "400", "message": "wrong latitude"})
        elif fault == "unauthorized":
            self._json(
                401,
                {
                    "cod": 401,
                    "message": "Invalid API key. Please see "
                    "https://openweathermap.org/faq#error401 for more info.",
                },
            )
        elif fault == "not_found":
            self._json(404, {"cod": "404", "message": "city not found"})
        elif fault == "rate_limited":
            self._json(
                429,
                {
                    "cod": 429,
                    "message": "Your account is temporary blocked due to "
                    "exceeding of requests limitation of your subscription type.",
                },
            )
        elif fault == "malformed":
            self._send(200, b"<<<this is not json>>>")
        elif fault == "empty":
            self._send(200, b"")
        elif fault == "partial" and self._national:
            return False  # cut from the service's own answer
        elif fault == "partial":
            self._send(200, b'{"coord":{"lon":10.99,"lat":44.34},"weather":[{"id":501,"main":"Ra')
        elif fault == "error_in_body":
            self._json(200, {"cod": "404", "message": "city not found"})
        elif fault == "oversize":
            self._send(200, b'{"padding":"' + b"x" * _OVERSIZE + b'"}')
        elif fault == "oversize_chunked":
            self._chunked(b'{"padding":"' + b"x" * _OVERSIZE + b'"}')
        else:
            return False
        return True

    def _trickle(self, body: bytes, delay: float, headers_too: bool = False) -> None:
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        if headers_too:
            body = head + body
        else:
            self.wfile.write(head)
            self.wfile.flush()
        try:
            for i in range(len(body)):
                if self.server.state.stopping.wait(delay):
                    break
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
        except OSError:
            pass  # the client gave up, as it should
        self.close_connection = True

    def _chunked(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        self.close_connection = True

    def _owm_place(
        self, query: dict[str, str]
    ) -> tuple[Place | None, tuple[float, float] | None, tuple[int, Any] | None]:
        """The place (None: a point at sea), the point asked for, or the error to answer."""
        world = self.server.state.world
        if "q" in query:
            place = world.by_query(query["q"])
        elif "id" in query:
            place = world.by_id(query["id"])
        elif "zip" in query:
            place = world.by_zip(query["zip"])
        elif "lat" in query or "lon" in query:
            latitude, longitude = _float(query.get("lat")), _float(query.get("lon"))
            if latitude is None or not -90 <= latitude <= 90:
                return None, None, (400, {"cod": "400", "message": "wrong latitude"})
            if longitude is None or not -180 <= longitude <= 180:
                return None, None, (400, {"cod": "400", "message": "wrong longitude"})
            return world.nearest(latitude, longitude), (latitude, longitude), None
        else:
            return None, None, (400, {"cod": "400", "message": "Nothing to geocode"})
        if place is None:
            return None, None, (404, {"cod": "404", "message": "city not found"})
        return place, None, None

    def _owm_current(
        self, query: dict[str, str], place: Place | None, point: tuple[float, float] | None
    ) -> tuple[int, Any]:
        units, language = query.get("units", "standard"), query.get("lang", "en")
        world = self.server.state.world
        return 200, places.owm_current(place, world, units, language, point)

    def _owm_steps(
        self, query: dict[str, str], place: Place | None, point: tuple[float, float] | None
    ) -> tuple[int, Any]:
        units, language = query.get("units", "standard"), query.get("lang", "en")
        count = min(40, max(1, int(query["cnt"]))) if query.get("cnt", "").isdigit() else 40
        world = self.server.state.world
        return 200, places.owm_forecast(place, world, units, language, count, point)

    def _owm_weather(self, query: dict[str, str]) -> tuple[int, Any]:
        place, point, refused = self._owm_place(query)
        return refused or self._owm_current(query, place, point)

    def _owm_forecast(self, query: dict[str, str]) -> tuple[int, Any]:
        place, point, refused = self._owm_place(query)
        return refused or self._owm_steps(query, place, point)

    def _owm_direct(self, query: dict[str, str]) -> tuple[int, Any]:
        if not query.get("q"):
            return 400, {"cod": "400", "message": "Nothing to geocode"}
        world = self.server.state.world
        limit = int(query.get("limit", "5")) if query.get("limit", "5").isdigit() else 5
        parts = [p.strip() for p in query["q"].split(",")]
        found = [
            p
            for p in world.places
            if p.matches(
                parts[0],
                parts[1] if len(parts) == 3 else None,
                parts[-1] if len(parts) > 1 else None,
            )
        ]
        return 200, [places.owm_direct(p) for p in found[:limit]]

    def _owm_zip(self, query: dict[str, str]) -> tuple[int, Any]:
        place = self.server.state.world.by_zip(query.get("zip", ""))
        if place is None:
            return 404, {"cod": "404", "message": "not found"}
        return 200, places.owm_zip(place, query["zip"].partition(",")[0].strip())

    def _owm_air(self, query: dict[str, str]) -> tuple[int, Any]:
        latitude, longitude = _float(query.get("lat")), _float(query.get("lon"))
        if latitude is None or longitude is None:
            return 400, {"cod": "400", "message": "Nothing to geocode"}
        world = self.server.state.world
        return 200, places.owm_air(world.nearest(latitude, longitude), world, latitude, longitude)

    def _open_meteo_forecast(self, query: dict[str, str]) -> tuple[int, Any]:
        return open_meteo.forecast(query, self.server.state.world)

    def _open_meteo_air(self, query: dict[str, str]) -> tuple[int, Any]:
        return open_meteo.air_quality(query, self.server.state.world)

    def _open_meteo_search(self, query: dict[str, str]) -> tuple[int, Any]:
        name = query.get("name", "")
        count = int(query["count"]) if query.get("count", "").isdigit() else 10
        if not 1 <= count <= 100:
            return open_meteo.error("Parameter count must be between 1 and 100.")
        # As the real service: one character finds nothing.
        found = self.server.state.world.search(name, count) if len(name.strip()) > 1 else []
        document: dict[str, Any] = {"generationtime_ms": 0.5}
        if found:
            document["results"] = [
                places.open_meteo_geocoding(p, query.get("language", "en")) for p in found
            ]
        return 200, document


def _with_nulls(document: Any, keep_temperature: bool) -> Any:
    """The answer with every optional field set to null (temperature too, if asked)."""
    if not isinstance(document, dict):
        return document
    if "main" in document:
        _owm_nulls(document, keep_temperature)
    if "city" in document:  # OpenWeatherMap's forecast: every step
        for step in document.get("list") or []:
            _owm_nulls(step, keep_temperature)
    for block in ("current", "hourly", "daily"):  # Open-Meteo
        values = document.get(block)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if key not in ("time", "interval") and (
                key != "temperature_2m" or not keep_temperature
            ):
                values[key] = [None] * len(value) if isinstance(value, list) else None
    return document


def _owm_nulls(document: dict[str, Any], keep_temperature: bool) -> None:
    for key in document["main"]:
        if key != "temp" or not keep_temperature:
            document["main"][key] = None
    for key in ("visibility", "wind", "clouds", "rain", "snow", "pop", "timezone", "name"):
        if key in document:
            document[key] = None
    if "dt_txt" in document:
        document["sys"] = {"pod": None}
    else:
        document["sys"] = {"country": None, "sunrise": None, "sunset": None}
    document["weather"] = None


class FakeServer(ThreadingHTTPServer):
    """The HTTP server, its state, and its lifetime."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: FakeState) -> None:
        self.state = state
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections cut by a fault, or by a client giving up, are expected here."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str = DEFAULT_API_KEY,
    hang_seconds: float = 60.0,
    met_expires_seconds: float = MET_EXPIRES_SECONDS,
    met_update_seconds: float = MET_UPDATE_SECONDS,
) -> FakeServer:
    """Serve in a background thread; `server.url` says where. Stop with `stop(server)`."""
    state = FakeState(api_key, hang_seconds, met_expires_seconds, met_update_seconds)
    server = FakeServer((host, port), state)
    threading.Thread(target=server.serve_forever, name="fake-upstream", daemon=True).start()
    return server


def stop(server: FakeServer) -> None:
    """Release hanging and trickling answers, and stop serving."""
    server.state.stopping.set()
    server.shutdown()
    server.server_close()
