"""Conversions to the base units Prometheus asks for, in one place for every provider."""

from __future__ import annotations

from collections.abc import Mapping

PASCALS_PER_HECTOPASCAL = 100.0
MILLIMETRES_PER_METRE = 1000.0
MILLIMETRES_PER_CENTIMETRE = 10.0
GRAMS_PER_MICROGRAM = 1e-6
# Metres per second in one of each wind speed unit an upstream may declare.
METRES_PER_SECOND = {"m/s": 1.0, "km/h": 1 / 3.6, "mp/h": 0.44704, "mph": 0.44704, "kn": 0.514444}


def pascals(hectopascals: float | None) -> float | None:
    """hPa to Pa."""
    return None if hectopascals is None else hectopascals * PASCALS_PER_HECTOPASCAL


def ratio(percent: float | None) -> float | None:
    """A percentage as a 0 to 1 ratio."""
    return None if percent is None else percent / 100.0


def fraction(percent: float | None) -> float | None:
    """A percentage of a whole (humidity, cloud cover, a chance) as a 0 to 1 ratio; None for
    one outside 0 to 100."""
    return probability(ratio(percent))


def probability(ratio_value: float | None) -> float | None:
    """A probability as a 0 to 1 ratio; None for anything outside."""
    return ratio_value if ratio_value is not None and 0 <= ratio_value <= 1 else None


def amount(value: float | None) -> float | None:
    """A quantity that cannot be negative (a sum, a concentration); None for a negative one."""
    return value if value is not None and value >= 0 else None


def grams(micrograms: float) -> float:
    """µg to g, to the picogram (dropping float noise)."""
    return round(micrograms * GRAMS_PER_MICROGRAM, 12)


def metres_per_second(value: float | None, unit: str) -> float | None:
    """A speed in m/s from `unit`; None for a unit not known here."""
    factor = METRES_PER_SECOND.get(unit)
    if value is None or factor is None:
        return None
    return round(value * factor, 3)


def metres(millimetres: float | None) -> float | None:
    """Precipitation in metres from millimetres; None for none reported or a negative amount.
    Rounded to the nanometre: upstreams report 0.01 mm, and float noise must not show."""
    if millimetres is None or millimetres < 0:
        return None
    return round(millimetres / MILLIMETRES_PER_METRE, 9)


def precipitation(millimetres_by_window: Mapping[str, float | None]) -> dict[str, float]:
    """Liquid-equivalent precipitation in metres per window (`1h`, `3h`), from millimetres;
    windows not reported, or negative, are left out."""
    found = {window: metres(millimetres) for window, millimetres in millimetres_by_window.items()}
    return {window: value for window, value in found.items() if value is not None}
