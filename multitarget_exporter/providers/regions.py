"""Matching a target's state and country against a geocoder's words for them.

OpenWeatherMap's `q=City,ST,US` takes a US state as its two-letter code;
Open-Meteo's geocoder answers with the state's name (`admin1`) and the ISO
country code. These few lines let `Springfield,IL,US` mean the same place
whichever provider a module uses.
"""

from __future__ import annotations

import unicodedata

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas",
    "CA": "California", "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware",
    "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii",
    "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah",
    "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico",
}  # fmt: skip


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name (`Zürich` ~ `zurich`)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def country_matches(wanted: str, code: str, name: str) -> bool:
    """Whether a target's country (ISO code or name) is the geocoder's `code`/`name`."""
    return fold(wanted) in (fold(code), fold(name))


def state_matches(wanted: str, country_code: str, admin1: str) -> bool:
    """Whether a target's state (a name, or a US state's code) is the geocoder's `admin1`."""
    if fold(wanted) == fold(admin1):
        return True
    if country_code.upper() == "US":
        return fold(US_STATES.get(wanted.strip().upper(), "")) == fold(admin1)
    return False
