"""Open-Meteo's air-quality API (`/v1/air-quality`, no key needed): what it is asked
and how its answer is read.

Its `current` block gives the European and US indexes, gases, particulate
matter and dust in micrograms per cubic metre (converted to grams here, the
names OpenWeatherMap's pollutants have), and pollen in grains per cubic metre.
Pollen exists only for Europe in season and ammonia only for Europe: Open-Meteo
answers `null` elsewhere, and nulls are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from multitarget_exporter.model import units
from multitarget_exporter.upstream.answers import number, text

INDEXES = ("european_aqi", "us_aqi")
# Open-Meteo's variable -> the `pollutant` label (OpenWeatherMap's names, plus dust).
POLLUTANTS = {
    "pm10": "pm10",
    "pm2_5": "pm2_5",
    "carbon_monoxide": "co",
    "nitrogen_dioxide": "no2",
    "sulphur_dioxide": "so2",
    "ozone": "o3",
    "ammonia": "nh3",
    "dust": "dust",
}
# Open-Meteo's variable -> the `species` label.
POLLEN = {
    "alder_pollen": "alder",
    "birch_pollen": "birch",
    "grass_pollen": "grass",
    "mugwort_pollen": "mugwort",
    "olive_pollen": "olive",
    "ragweed_pollen": "ragweed",
}
VARIABLES = INDEXES + tuple(POLLUTANTS) + tuple(POLLEN)


@dataclass(frozen=True, slots=True)
class AirQuality:
    """What one air-quality answer says, in base units; None or absent: not given."""

    european_index: float | None = None
    usa_index: float | None = None
    pollutants: dict[str, float] = field(default_factory=dict)  # grams per cubic metre
    pollen: dict[str, float] = field(default_factory=dict)  # grains per cubic metre


def air_query(latitude: float, longitude: float) -> dict[str, str]:
    """The `/v1/air-quality` parameters for one point."""
    return {
        "latitude": repr(latitude),
        "longitude": repr(longitude),
        "current": ",".join(VARIABLES),
        "timeformat": "unixtime",
        "timezone": "auto",
    }


def _amount(current: dict[str, Any], variable: str) -> float | None:
    value = number(current, variable)
    return value if value is not None and value >= 0 else None


def parse_air(document: Any) -> AirQuality | str:
    """A decoded `/v1/air-quality` answer (asked as `air_query` does), or why it is not one."""
    if not isinstance(document, dict):
        return "answer is not a JSON object"
    if document.get("error") is True:
        return f"answer says error: {str(text(document, 'reason') or '')[:200]}"
    current = document.get("current")
    if not isinstance(current, dict):
        return "answer has no current block"
    pollutants = {}
    for variable, label in POLLUTANTS.items():
        micrograms = _amount(current, variable)
        if micrograms is not None:
            pollutants[label] = units.grams(micrograms)
    pollen = {}
    for variable, species in POLLEN.items():
        grains = _amount(current, variable)
        if grains is not None:
            pollen[species] = grains
    found = AirQuality(
        european_index=_amount(current, "european_aqi"),
        usa_index=_amount(current, "us_aqi"),
        pollutants=pollutants,
        pollen=pollen,
    )
    if found == AirQuality():
        return "answer's current block has none of the variables asked for"
    return found
