"""WMO weather interpretation codes (as Open-Meteo reports them) in words.

`main` follows OpenWeatherMap's condition groups (Clear, Clouds, Fog,
Drizzle, Rain, Snow, Thunderstorm), so one dashboard panel can group either
provider's conditions; `description` is the code's meaning in lower case.
"""

from __future__ import annotations

from multitarget_exporter.model.reading import Condition

_CODES: dict[int, tuple[str, str]] = {
    0: ("Clear", "clear sky"),
    1: ("Clear", "mainly clear"),
    2: ("Clouds", "partly cloudy"),
    3: ("Clouds", "overcast"),
    45: ("Fog", "fog"),
    48: ("Fog", "depositing rime fog"),
    51: ("Drizzle", "light drizzle"),
    53: ("Drizzle", "moderate drizzle"),
    55: ("Drizzle", "dense drizzle"),
    56: ("Drizzle", "light freezing drizzle"),
    57: ("Drizzle", "dense freezing drizzle"),
    61: ("Rain", "slight rain"),
    63: ("Rain", "moderate rain"),
    65: ("Rain", "heavy rain"),
    66: ("Rain", "light freezing rain"),
    67: ("Rain", "heavy freezing rain"),
    71: ("Snow", "slight snow fall"),
    73: ("Snow", "moderate snow fall"),
    75: ("Snow", "heavy snow fall"),
    77: ("Snow", "snow grains"),
    80: ("Rain", "slight rain showers"),
    81: ("Rain", "moderate rain showers"),
    82: ("Rain", "violent rain showers"),
    85: ("Snow", "slight snow showers"),
    86: ("Snow", "heavy snow showers"),
    95: ("Thunderstorm", "thunderstorm"),
    96: ("Thunderstorm", "thunderstorm with slight hail"),
    99: ("Thunderstorm", "thunderstorm with heavy hail"),
}

# WMO codes run from 0 to 99; anything outside is not a code at all.
_LARGEST = 99


def condition(code: int) -> Condition | None:
    """The condition a WMO code means; a code the table lacks keeps its number."""
    if not 0 <= code <= _LARGEST:
        return None
    main, description = _CODES.get(code, ("Unknown", f"wmo code {code}"))
    return Condition(code, main, description)
