"""MET Norway's MetAlerts 2.0 (`/weatherapi/metalerts/2.0/current.json`), in the shape of
its recorded answers (../shared/realdata/recorded/metalerts_*.json), with the warnings
of alerts.py's table and of `POST /_fake/alerts` (source `met_norway`).

- `?lat=LAT&lon=LON[&lang=en]`: the point's warnings. A point outside
  `places.AREAS["norway"]` (a rough box: parts of Sweden and Finland are "in") gets
  422 with a plain-text body (`text/plain`), the answer users report for points
  outside MET's areas. Without `lat` and `lon`: every table point's warnings (all of
  Norway, as upstream); one of them alone, or a value that is not a number, gets MET's
  400 page.
- 200: `application/geo+json`, a FeatureCollection with `lang` (as asked, default
  "en"), `lastChange` and `features`. Texts are English whatever `lang` says. Each
  feature has a Polygon around the point, `properties` with the recorded keys
  (`awareness_level` "3; orange; Severe" and so on: green 1 for Minor or Unknown,
  yellow 2, orange 3, red 4; `awareness_type` by event, "1; Wind" for wind and gale;
  `type` Alert/Update/Cancel; `status`) and `when.interval` [onset, end], ISO with
  +00:00. No urgency, as upstream.
- The User-Agent must name a contact, as for Locationforecast (403 otherwise), and a
  request for a lat,lon (as sent) less than `MIN_INTERVAL` seconds after the previous
  one for it counts as `metalerts_early` (MET Norway bans clients polling more often).
"""

from __future__ import annotations

import re
import time
from typing import Any

from fake_upstream import alerts as warnings
from fake_upstream import met_norway
from fake_upstream.alerts import Alert, Answer
from fake_upstream.places import in_area, stable_hash

PATH = "/weatherapi/metalerts/2.0/current.json"
GEO_JSON = "application/geo+json"
MIN_INTERVAL = 600.0
# event -> (awareness_type, eventAwarenessName, geographicDomain, triggerLevel)
EVENTS = {
    "wind": ("1; Wind", "Wind", "land", "25m/s"),
    "gale": ("1; Wind", "Gale", "marine", "17.2m/s"),
    "polarLow": ("1; Wind", "Polar low", "marine", "20.8m/s"),
    "stormSurge": ("7; coastalevent", "Storm surge", "marine", "200cm"),
    "rain": ("10; Rain", "Rain", "land", "50mm/24h"),
    "snow": ("2; snow-ice", "Snow", "land", "25cm/12h"),
    "icing": ("2; snow-ice", "Icing", "marine", "0.7cm/h"),
    "lightning": ("3; Thunderstorm", "Lightning", "land", "100/h"),
    "forestFire": ("8; forest-fire", "Forest fire danger", "land", ""),
    "avalanches": ("9; avalanches", "Avalanche danger", "land", ""),
}
# severity -> (level, colour, awarenessResponse, awarenessSeriousness)
LEVELS = {
    "Minor": ("1; green; Minor", "Green", "Monitor", "Minor situation"),
    "Moderate": ("2; yellow; Moderate", "Yellow", "Monitor", "Challenging situation"),
    "Severe": ("3; orange; Severe", "Orange", "Be prepared", "Dangerous situation"),
    "Extreme": ("4; red; Extreme", "Red", "Take action", "Extreme situation"),
    "Unknown": ("1; green; Unknown", "Green", "Monitor", "Unknown situation"),
}
OUTSIDE = b"422 Unprocessable Entity: the point is outside MetAlerts' areas\n"


def covers(latitude: float, longitude: float) -> bool:
    return in_area("norway", latitude, longitude)


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(moment))


def _number(text: str | None) -> float | None:
    if text is None or not re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", text):
        return None
    return float(text)


def _feature(
    alert: Alert, latitude: float, longitude: float, area: str, base: str
) -> dict[str, Any]:
    awareness_type, name, domain, trigger = EVENTS.get(
        alert.event, ("1; Wind", alert.event[:1].upper() + alert.event[1:], "land", "")
    )
    level, colour, response, seriousness = LEVELS[alert.severity]
    seed = stable_hash("metalerts", latitude, longitude, alert.key, alert.event, alert.effective)
    identifier = (
        f"2.49.0.1.578.0.{time.strftime('%Y%m%d%H%M%S', time.gmtime(alert.effective))}"
        f".{seed % 1000:03d}"
    )
    start, end = _iso(alert.onset), _iso(alert.ends)
    south, north = round(latitude - 0.2, 4), round(latitude + 0.2, 4)
    west, east = round(longitude - 0.4, 4), round(longitude + 0.4, 4)
    properties: dict[str, Any] = {
        "altitude_above_sea_level": 0,
        "area": area,
        "awarenessResponse": response,
        "awarenessSeriousness": seriousness,
        "awareness_level": level,
        "awareness_type": awareness_type,
        "ceiling_above_sea_level": 9000,
        "certainty": alert.certainty,
        "consequences": f"{name}: take care outdoors. ",
        "contact": "https://www.met.no/en/contact-us",
        "county": [],
        "description": alert.description,
        "event": alert.event,
        "eventAwarenessName": name,
        "eventEndingTime": end,
        "geographicDomain": domain,
        "id": identifier,
        "instruction": alert.instruction or "",
        "resources": [
            {
                "description": "CAP file",
                "mimeType": "application/xml",
                "uri": f"{base}/weatherapi/metalerts/2.0/current?cap={identifier}",
            }
        ],
        "riskMatrixColor": colour,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.headline or f"{name}, {colour.lower()} level, {area}, {start}, {end}",
        "triggerLevel": trigger,
        "type": alert.message_type,
        "web": "https://www.met.no/en/weather-and-climate/Dangerous-weather-warnings",
    }
    if alert.ends is None:
        del properties["eventEndingTime"]  # as in the recording that lacks it
    return {
        "geometry": {
            "coordinates": [
                [[west, south], [east, south], [east, north], [west, north], [west, south]]
            ],
            "type": "Polygon",
        },
        "properties": properties,
        "type": "Feature",
        "when": {"interval": [start, end]},
    }


def respond(
    query: dict[str, str], *, base: str, now: float, overrides: warnings.Overrides
) -> Answer:
    lang = query.get("lang") or "en"
    if "lat" not in query and "lon" not in query:
        found = [
            (point, name, alert)
            for point, name, listed in warnings.table("met_norway", now)
            for alert in listed
        ]
    else:
        latitude, longitude = _number(query.get("lat")), _number(query.get("lon"))
        if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
            page = met_norway.bad_request("Invalid or missing parameter lat or lon")
            return Answer(400, page, "text/html")
        if not covers(latitude, longitude):
            return Answer(422, OUTSIDE, "text/plain")
        name = warnings.place_name("met_norway", latitude, longitude) or (
            f"Sea and land around {latitude:.2f} N, {longitude:.2f} E"
        )
        listed = warnings.for_point("met_norway", latitude, longitude, now, overrides)
        found = [((latitude, longitude), name, alert) for alert in listed]
    changed = max((a.effective for _, _, a in found), default=warnings.anchor(now) - 3600)
    return Answer(
        200,
        {
            "type": "FeatureCollection",
            "lang": lang,
            "lastChange": _iso(changed),
            "features": [_feature(a, *point, name, base) for point, name, a in found],
        },
        GEO_JSON,
    )
