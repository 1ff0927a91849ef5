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


# Open-Meteo's rule for fresh snow: 7 cm of it is 10 mm of water (its own snowfall is
# derived from precipitation that way), so 10/7 mm of water per centimetre of snow.
WATER_MILLIMETRES_PER_SNOW_CENTIMETRE = 10.0 / 7.0


def snow_depth_metres(centimetres: float | None) -> float | None:
    """Fresh snow's depth in metres, from centimetres of snow; None for none or negative."""
    return None if centimetres is None else metres(centimetres * MILLIMETRES_PER_CENTIMETRE)


def snow_water_metres(centimetres: float | None) -> float | None:
    """Fresh snow as metres of liquid water equivalent, from centimetres of snow (Open-Meteo's
    7 cm to 10 mm); None for none or negative."""
    if centimetres is None:
        return None
    return metres(centimetres * WATER_MILLIMETRES_PER_SNOW_CENTIMETRE)


SECONDS_PER_MINUTE = 60.0
# The WMO unit codes the NWS writes (`wmoUnit:degC`; older answers `unit:degC`), each as
# the quantity it measures and the factor to the base unit of that quantity: Celsius,
# a 0 to 1 ratio, pascals, metres per second, degrees of angle, metres. A value in a
# unit not listed here is left out, never guessed.
WMO_UNITS: dict[str, tuple[str, float]] = {
    "degC": ("temperature", 1.0),
    "percent": ("ratio", 0.01),
    "Pa": ("pressure", 1.0),
    "km_h-1": ("speed", 1 / 3.6),
    "m_s-1": ("speed", 1.0),
    "degree_(angle)": ("angle", 1.0),
    "m": ("length", 1.0),
    "mm": ("length", 1 / MILLIMETRES_PER_METRE),
}
_WMO_PREFIXES = ("wmoUnit:", "unit:")
# Digits kept of each quantity in its base unit: what the stations measure, without the
# float noise a factor leaves (7.56 km/h is 2.1 m/s, not 2.0999999999999996).
_WMO_DIGITS = {"temperature": 3, "ratio": 12, "pressure": 2, "speed": 3, "angle": 3, "length": 9}


def wmo_quantity(value: float | None, unit_code: str | None, quantity: str) -> float | None:
    """A value in `unit_code` (a WMO unit code) as `quantity` in its base unit; None for
    no value, a unit not known here, or one that measures something else."""
    if value is None or not unit_code:
        return None
    for prefix in _WMO_PREFIXES:
        if unit_code.startswith(prefix):
            known = WMO_UNITS.get(unit_code[len(prefix) :])
            break
    else:
        known = None
    if known is None or known[0] != quantity:
        return None
    return round(value * known[1], _WMO_DIGITS[quantity])


def kilometres_per_hour(value: float | None) -> float | None:
    """km/h to m/s."""
    return metres_per_second(value, "km/h")


def seconds_of_minutes(minutes: float | None) -> float | None:
    """A duration in minutes as seconds; None for none or a negative one."""
    return None if minutes is None or minutes < 0 else minutes * SECONDS_PER_MINUTE
