"""A fake OpenWeatherMap, Open-Meteo and MET Norway (Locationforecast and MetAlerts), US
National Weather Service and Bright Sky for tests, benchmarks and demos.

python -m fake_upstream --port 8080
"""

from fake_upstream.server import (
    DEFAULT_API_KEY,
    FAULTS,
    FakeServer,
    start,
    stop,
)

__all__ = ["DEFAULT_API_KEY", "FAULTS", "FakeServer", "start", "stop"]
