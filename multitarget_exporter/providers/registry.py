"""The registry of providers: adding one is one module plus one line here."""

from __future__ import annotations

from multitarget_exporter.providers.base import Provider
from multitarget_exporter.providers.bright_sky import BrightSky
from multitarget_exporter.providers.met_norway import MetNorway
from multitarget_exporter.providers.nws import Nws
from multitarget_exporter.providers.open_meteo import OpenMeteo
from multitarget_exporter.providers.openweathermap import OpenWeatherMap

PROVIDERS: dict[str, type[Provider]] = {
    OpenWeatherMap.name: OpenWeatherMap,
    OpenMeteo.name: OpenMeteo,
    MetNorway.name: MetNorway,
    Nws.name: Nws,
    BrightSky.name: BrightSky,
}

__all__ = ["PROVIDERS", "Provider"]
