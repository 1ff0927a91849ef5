"""A finished probe as metric families: no I/O, so a scrape cannot fail halfway.

Registered on a fresh per-probe `CollectorRegistry` only, never on the global
one (which would call `collect()` at registration and keep it forever).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from multitarget_exporter.model.reading import FailureReason, ProbeResult, Reading

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
        "weather_forecast_updated_timestamp_seconds",
        "When the provider made the forecast this reading comes from, as a Unix time.",
        "forecast_updated_timestamp_seconds",
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
    ("weather_uv_index", "UV index, with clouds.", "uv_index"),
    ("weather_uv_index_clear_sky", "UV index under a clear sky.", "uv_index_clear_sky"),
    (
        "weather_precipitation_probability_ratio",
        "Chance of precipitation in the current hour, 0 to 1.",
        "precipitation_probability_ratio",
    ),
    (
        "weather_air_quality_european_index",
        "European air quality index (0 to 100 and beyond), as Open-Meteo gives it.",
        "air_quality_european_index",
    ),
    (
        "weather_air_quality_usa_index",
        "US air quality index (0 to 500), as Open-Meteo gives it.",
        "air_quality_usa_index",
    ),
    (
        "weather_station_distance_meters",
        "Distance from the target's point to the station that answered.",
        "station_distance_meters",
    ),
    (
        "weather_station_elevation_meters",
        "Elevation of the station that answered.",
        "station_elevation_meters",
    ),
)

# (metric name, help, ForecastStep attribute) for the families labelled by `horizon`.
_STEP_GAUGES: tuple[tuple[str, str, str], ...] = (
    (
        "weather_forecast_temperature_celsius",
        "Forecast air temperature at the step containing now + horizon.",
        "temperature_celsius",
    ),
    (
        "weather_forecast_apparent_temperature_celsius",
        "Forecast apparent (feels like) temperature at the step.",
        "apparent_temperature_celsius",
    ),
    (
        "weather_forecast_relative_humidity_ratio",
        "Forecast relative humidity at the step, 0 to 1.",
        "relative_humidity_ratio",
    ),
    (
        "weather_forecast_precipitation_probability_ratio",
        "Forecast chance of precipitation over the step, 0 to 1.",
        "precipitation_probability_ratio",
    ),
    (
        "weather_forecast_wind_speed_meters_per_second",
        "Forecast wind speed at the step.",
        "wind_speed_meters_per_second",
    ),
    (
        "weather_forecast_wind_gust_meters_per_second",
        "Forecast wind gust speed at the step.",
        "wind_gust_meters_per_second",
    ),
    (
        "weather_forecast_cloud_cover_ratio",
        "Forecast cloud cover at the step, 0 to 1.",
        "cloud_cover_ratio",
    ),
    ("weather_forecast_uv_index", "Forecast UV index at the step.", "uv_index"),
)

# (metric name, help, DailyForecast attribute) for the families labelled by `day`.
_DAY_GAUGES: tuple[tuple[str, str, str], ...] = (
    (
        "weather_forecast_temperature_max_celsius",
        "Highest temperature forecast for the local day.",
        "temperature_max_celsius",
    ),
    (
        "weather_forecast_temperature_min_celsius",
        "Lowest temperature forecast for the local day.",
        "temperature_min_celsius",
    ),
    (
        "weather_forecast_precipitation_sum_meters",
        "Precipitation forecast for the local day, in metres of water.",
        "precipitation_sum_meters",
    ),
    ("weather_forecast_uv_index_max", "Highest UV index forecast for the day.", "uv_index_max"),
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
    if result.stale is not None:
        yield _gauge(
            "probe_stale",
            "Whether a kept reading answered because its refresh failed.",
            float(result.stale),
        )
    if result.fallback is not None:
        yield _gauge(
            "probe_fallback",
            "Whether the module's fallback answered (or was asked, when both failed).",
            float(result.fallback),
        )


def observation_age(result: ProbeResult, now: float) -> Iterator[Metric]:
    """`weather_observation_age_seconds`: how old the reading's observation is at `now`,
    the probe's moment (0 for one stamped ahead of this clock). Made at every probe, with
    the `probe_*` families, never kept with the reading's encoded lines."""
    reading = result.reading
    if reading is None or reading.observation_timestamp_seconds is None:
        return
    age = max(0.0, round(now - reading.observation_timestamp_seconds, 3))
    yield _gauge(
        "weather_observation_age_seconds",
        "How long before this probe the upstream measured the reading.",
        age,
    )


def _precipitation(name: str, documentation: str, windows: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["window"])
    family.add_metric(["1h"], windows.get("1h", 0.0))
    if "3h" in windows:
        family.add_metric(["3h"], windows["3h"])
    return family


def _labelled(
    entries: tuple[Any, ...], label: str, gauges: tuple[tuple[str, str, str], ...]
) -> Iterator[Metric]:
    """One family per gauge, a sample per entry that gives it, labelled by `label`; a
    family no entry gives is left out."""
    for name, documentation, attribute in gauges:
        family = GaugeMetricFamily(name, documentation, labels=[label])
        for entry in entries:
            value = getattr(entry, attribute)
            if value is not None:
                family.add_metric([getattr(entry, label)], value)
        if family.samples:
            yield family


def _forecast_precipitation(reading: Reading) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "weather_forecast_precipitation_meters",
        "Forecast liquid-equivalent precipitation over the step (window: its length), "
        "in metres of water.",
        labels=["horizon", "window"],
    )
    for step in reading.forecast:
        if step.precipitation_meters is not None:
            family.add_metric([step.horizon, step.window], step.precipitation_meters)
    if family.samples:
        yield family


def _forecast_conditions(reading: Reading) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "weather_forecast_condition_info",
        "Forecast weather conditions at the step, 1 for each.",
        labels=["horizon", "id", "main", "description"],
    )
    for step in reading.forecast:
        for condition in step.conditions:
            family.add_metric(
                [step.horizon, str(condition.id), condition.main, condition.description], 1.0
            )
    if family.samples:
        yield family


def reading_metrics(reading: Reading) -> Iterator[Metric]:
    """The `weather_*` families of one reading; what the upstream omitted is left out."""
    for name, documentation, attribute in _READING_GAUGES:
        value = getattr(reading, attribute)
        if value is not None:
            yield _gauge(name, documentation, value)
    if reading.observes_precipitation:
        yield _precipitation(
            "weather_rain_meters", "Rain over the window, in metres of water.", reading.rain_meters
        )
        if reading.observes_snow:
            yield _precipitation(
                "weather_snow_meters",
                "Snow over the window, in metres of liquid water equivalent.",
                reading.snow_meters,
            )
            if reading.snowfall_depth_meters is not None:
                yield _precipitation(
                    "weather_snowfall_depth_meters",
                    "Fresh snow over the window, in metres of snow depth (not of water).",
                    reading.snowfall_depth_meters,
                )
    if reading.sunshine_duration_seconds:
        sunshine = GaugeMetricFamily(
            "weather_sunshine_duration_seconds",
            "Sunshine over the window, in seconds.",
            labels=["window"],
        )
        for window, seconds in reading.sunshine_duration_seconds.items():
            sunshine.add_metric([window], seconds)
        yield sunshine
    if reading.conditions:
        conditions = GaugeMetricFamily(
            "weather_condition_info",
            "Reported weather conditions, 1 for each.",
            labels=["id", "main", "description"],
        )
        for condition in reading.conditions:
            conditions.add_metric([str(condition.id), condition.main, condition.description], 1.0)
        yield conditions
    yield from _labelled(reading.forecast, "horizon", _STEP_GAUGES)
    yield from _forecast_precipitation(reading)
    yield from _forecast_conditions(reading)
    yield from _labelled(reading.daily, "day", _DAY_GAUGES)
    if reading.air_pollutants_grams_per_cubic_meter:
        pollutants = GaugeMetricFamily(
            "weather_air_pollutant_grams_per_cubic_meter",
            "Concentration of an air pollutant near the ground.",
            labels=["pollutant"],
        )
        for pollutant, grams in reading.air_pollutants_grams_per_cubic_meter.items():
            pollutants.add_metric([pollutant], grams)
        yield pollutants
    if reading.pollen_grains_per_cubic_meter:
        pollen = GaugeMetricFamily(
            "weather_pollen_grains_per_cubic_meter",
            "Pollen of one species in the air near the ground.",
            labels=["species"],
        )
        for species, grains in reading.pollen_grains_per_cubic_meter.items():
            pollen.add_metric([species], grains)
        yield pollen
    location = GaugeMetricFamily(
        "weather_location_info",
        "The location the upstream resolved the target to.",
        labels=["name", "country", "provider"],
    )
    location.add_metric([reading.location_name, reading.location_country, reading.provider], 1.0)
    yield location
    if reading.station_id:
        station = GaugeMetricFamily(
            "weather_station_info",
            "The station that answered; `station` is the id a station: target takes.",
            labels=["station", "name", "provider"],
        )
        station.add_metric([reading.station_id, reading.station_name, reading.provider], 1.0)
        yield station


class ProbeCollector:
    """A one-shot collector for one finished probe."""

    def __init__(self, result: ProbeResult, extra: Iterable[Metric] = ()) -> None:
        self._result = result
        self._extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        yield from probe_metrics(self._result)
        yield from self._extra
        if self._result.reading is not None:
            yield from reading_metrics(self._result.reading)
