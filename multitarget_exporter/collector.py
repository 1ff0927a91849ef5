"""A finished probe as metric families: no I/O, so a scrape cannot fail halfway.

Registered on a fresh per-probe `CollectorRegistry` only, never on the global
one (which would call `collect()` at registration and keep it forever).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from multitarget_exporter.reading import FailureReason, ProbeResult, Reading

# (metric name, help, Reading attribute) for every plain, unlabelled gauge.
_READING_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("weather_temperature_celsius", "Air temperature.", "temperature_celsius"),
    (
        "weather_apparent_temperature_celsius",
        "Apparent (feels like) temperature.",
        "apparent_temperature_celsius",
    ),
    (
        "weather_temperature_min_celsius",
        "Lowest temperature currently observed within the area.",
        "temperature_min_celsius",
    ),
    (
        "weather_temperature_max_celsius",
        "Highest temperature currently observed within the area.",
        "temperature_max_celsius",
    ),
    ("weather_dew_point_celsius", "Dew point.", "dew_point_celsius"),
    ("weather_relative_humidity_ratio", "Relative humidity, 0 to 1.", "relative_humidity_ratio"),
    ("weather_pressure_pascals", "Atmospheric pressure at sea level.", "pressure_pascals"),
    (
        "weather_ground_pressure_pascals",
        "Atmospheric pressure at ground level.",
        "ground_pressure_pascals",
    ),
    ("weather_wind_speed_meters_per_second", "Wind speed.", "wind_speed_meters_per_second"),
    ("weather_wind_gust_meters_per_second", "Wind gust speed.", "wind_gust_meters_per_second"),
    (
        "weather_wind_direction_degrees",
        "Wind direction, meteorological (where it blows from), 0 to 360.",
        "wind_direction_degrees",
    ),
    ("weather_cloud_cover_ratio", "Cloud cover, 0 to 1.", "cloud_cover_ratio"),
    ("weather_visibility_meters", "Visibility.", "visibility_meters"),
    (
        "weather_observation_timestamp_seconds",
        "When the upstream measured this reading, as a Unix time.",
        "observation_timestamp_seconds",
    ),
    (
        "weather_sunrise_timestamp_seconds",
        "Today's sunrise, as a Unix time.",
        "sunrise_timestamp_seconds",
    ),
    (
        "weather_sunset_timestamp_seconds",
        "Today's sunset, as a Unix time.",
        "sunset_timestamp_seconds",
    ),
    ("weather_location_latitude_degrees", "Latitude of the resolved location.", "latitude_degrees"),
    (
        "weather_location_longitude_degrees",
        "Longitude of the resolved location.",
        "longitude_degrees",
    ),
    ("weather_location_utc_offset_seconds", "Local time offset from UTC.", "utc_offset_seconds"),
    (
        "weather_air_quality_index",
        "Air quality index, 1 (good) to 5 (very poor), as OpenWeatherMap rates it.",
        "air_quality_index",
    ),
)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def probe_metrics(result: ProbeResult) -> Iterator[Metric]:
    """The `probe_*` families every probe returns, success or failure."""
    yield _gauge("probe_success", "Whether the probe obtained a reading.", float(result.success))
    yield _gauge(
        "probe_duration_seconds", "How long the probe took, in seconds.", result.duration_seconds
    )
    if result.failure is not None:
        reason = FailureReason(result.failure.reason)  # an unknown reason is a bug: raise
        info = GaugeMetricFamily(
            "probe_failure_info",
            "Why the probe failed; present only on failure.",
            labels=["reason"],
        )
        info.add_metric([reason.value], 1.0)
        yield info
    yield _gauge(
        "probe_upstream_status_code",
        "HTTP status of the last upstream answer, 0 when none came.",
        float(result.upstream_status_code),
    )
    yield _gauge(
        "probe_cache_hit", "Whether the reading came from the cache.", float(result.cache_hit)
    )


def _precipitation(name: str, documentation: str, windows: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["window"])
    family.add_metric(["1h"], windows.get("1h", 0.0))
    if "3h" in windows:
        family.add_metric(["3h"], windows["3h"])
    return family


def reading_metrics(reading: Reading) -> Iterator[Metric]:
    """The `weather_*` families of one reading; what the upstream omitted is left out."""
    for name, documentation, attribute in _READING_GAUGES:
        value = getattr(reading, attribute)
        if value is not None:
            yield _gauge(name, documentation, value)
    yield _precipitation(
        "weather_rain_meters", "Rain over the window, in metres of water.", reading.rain_meters
    )
    yield _precipitation(
        "weather_snow_meters", "Snow over the window, in metres.", reading.snow_meters
    )
    if reading.conditions:
        conditions = GaugeMetricFamily(
            "weather_condition_info",
            "Reported weather conditions, 1 for each.",
            labels=["id", "main", "description"],
        )
        for condition in reading.conditions:
            conditions.add_metric([str(condition.id), condition.main, condition.description], 1.0)
        yield conditions
    if reading.air_pollutants_grams_per_cubic_meter:
        pollutants = GaugeMetricFamily(
            "weather_air_pollutant_grams_per_cubic_meter",
            "Concentration of an air pollutant near the ground.",
            labels=["pollutant"],
        )
        for pollutant, grams in reading.air_pollutants_grams_per_cubic_meter.items():
            pollutants.add_metric([pollutant], grams)
        yield pollutants
    location = GaugeMetricFamily(
        "weather_location_info",
        "The location the upstream resolved the target to.",
        labels=["name", "country", "provider"],
    )
    location.add_metric([reading.location_name, reading.location_country, reading.provider], 1.0)
    yield location


class ProbeCollector:
    """A one-shot collector for one finished probe."""

    def __init__(self, result: ProbeResult) -> None:
        self._result = result

    def collect(self) -> Iterator[Metric]:
        yield from probe_metrics(self._result)
        if self._result.reading is not None:
            yield from reading_metrics(self._result.reading)
