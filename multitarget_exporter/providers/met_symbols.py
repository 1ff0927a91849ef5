"""MET Norway's weather symbol codes as conditions.

A code is words run together (`lightrainshowersandthunder`), with a `_day`,
`_night` or `_polartwilight` suffix where the sun matters. The condition's
`id` is the code without its suffix, `main` is in the groups Open-Meteo's
conditions use (OpenWeatherMap's), and `description` the code in words. Two
codes are misspelt upstream (`lightssleetshowersandthunder`,
`lightssnowshowersandthunder`) and are matched as sent.
"""

from __future__ import annotations

from multitarget_exporter.model.reading import Condition

SUFFIXES = ("_day", "_night", "_polartwilight")
_MAX_CODE = 64
# Words a code is made of, longest first where one begins another.
_WORDS = ("partly", "cloudy", "clearsky", "showers", "thunder", "heavy", "light", "sleet",
          "snow", "rain", "fair", "fog", "and", "s")  # fmt: skip
_SPELLED = {"clearsky": "clear sky", "s": ""}  # "lights..." is upstream's misspelling of "light"


def _words(code: str) -> list[str] | None:
    """The code split into its words, or None when it is not made of them."""
    found: list[str] = []
    rest = code
    while rest:
        word = next((w for w in _WORDS if rest.startswith(w)), None)
        if word is None:
            return None
        found.append(word)
        rest = rest[len(word) :]
    return found


def _main(words: list[str]) -> str:
    if "thunder" in words:
        return "Thunderstorm"
    if "snow" in words or "sleet" in words:
        return "Snow"  # sleet is in OpenWeatherMap's Snow group
    if "rain" in words:
        return "Rain"
    if "fog" in words:
        return "Fog"
    if "cloudy" in words:
        return "Clouds"
    if "clearsky" in words or "fair" in words:
        return "Clear"
    return "Unknown"


def condition(symbol_code: str) -> Condition | None:
    """The condition a symbol code means; None for no code. A code not made of MET's words
    keeps its text, with `main` "Unknown"."""
    code = symbol_code.strip()[:_MAX_CODE]
    for suffix in SUFFIXES:
        if code.endswith(suffix):
            code = code[: -len(suffix)]
            break
    if not code:
        return None
    words = _words(code)
    if words is None:
        return Condition(code, "Unknown", code)
    description = " ".join(filter(None, (_SPELLED.get(word, word) for word in words)))
    return Condition(code, _main(words), description)
