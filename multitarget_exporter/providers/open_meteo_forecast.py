"""Open-Meteo's `hourly` and `daily` blocks as forecast steps and days, and the helpers
its blocks share with the current conditions.

Hourly sums and chances (`precipitation`, `precipitation_probability`) describe
the hour before their stamp, so step [t, t + 1 h) takes them from the entry
stamped t + 1 h. Times are Unix seconds (asked for) or ISO 8601 local times at
the answer's UTC offset. Arrays are read no further than the hours and days
the exporter can have asked for, whatever an answer holds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from multitarget_exporter.model import units
from multitarget_exporter.model.reading import Condition, DailyForecast, ForecastStep, Part, Reading
from multitarget_exporter.providers import steps, wmo
from multitarget_exporter.upstream.answers import left_out, number, text

if TYPE_CHECKING:
    from multitarget_exporter.config.modules import Horizon
    from multitarget_exporter.runtime.probelog import ProbeLog

HOURLY = (
    "temperature_2m",
    "apparent_temperature",
    "relative_humidity_2m",
    "precipitation_probability",
    "precipitation",
    "wind_speed_10m",
    "wind_gusts_10m",
    "cloud_cover",
    "uv_index",
    "weather_code",
)
DAILY = ("temperature_2m_max", "temperature_2m_min", "precipitation_sum", "uv_index_max")
STEP_SECONDS = 3600.0
STEP_WINDOW = "1h"
# The most entries read: 120 h of horizons and the hours around them; a fortnight of days.
MAX_HOURS = 130
MAX_DAYS = 16


def utc_offset(document: dict[str, Any]) -> float:
    """The answer's UTC offset in seconds (0 when it gives none)."""
    return number(document, "utc_offset_seconds") or 0.0


def block(document: dict[str, Any], name: str) -> dict[str, Any]:
    """One of the answer's blocks (`current`, `hourly`, `daily`), empty when absent."""
    found = document.get(name)
    return found if isinstance(found, dict) else {}


def hourly_times(document: dict[str, Any]) -> list[float | None]:
    """The hourly block's times as Unix seconds, at most MAX_HOURS of them."""
    times = block(document, "hourly").get("time")
    return steps.moments(
        times[:MAX_HOURS] if isinstance(times, list) else None, utc_offset(document)
    )


def wind(document: dict[str, Any], name: str, value: float | None) -> float | None:
    """A wind speed in m/s, converted from the unit the block declares (m/s if none): the
    exporter asks for m/s, and honours what the answer says all the same."""
    declared = text(document, f"{name}_units", "wind_speed_10m") or "m/s"
    return units.metres_per_second(value, declared)


def conditions(code: float | None) -> tuple[Condition, ...]:
    """A WMO weather code as the reading's conditions."""
    found = wmo.condition(int(code)) if code is not None and code.is_integer() else None
    return (found,) if found else ()


def parse_steps(
    document: dict[str, Any], times: list[float | None], horizons: tuple[Horizon, ...], now: float
) -> tuple[tuple[ForecastStep, ...], list[str]] | str:
    """One step per horizon the hourly block reaches (`now`: when the answer came), and the
    horizons it does not reach; or why the block cannot be read."""
    hourly = document.get("hourly")
    if not isinstance(hourly, dict):
        return "answer has no hourly block"
    if not any(moment is not None for moment in times):
        return "answer has no hourly.time"
    if not steps.ascending(times):
        return "answer's hourly.time is not in time order"

    def at(variable: str, index: int | None) -> float | None:
        return steps.value_at(hourly.get(variable), index)

    def step(index: int, label: str) -> ForecastStep:
        following = steps.stamped_after(times, index, STEP_SECONDS)
        return ForecastStep(
            horizon=label,
            temperature_celsius=at("temperature_2m", index),
            apparent_temperature_celsius=at("apparent_temperature", index),
            relative_humidity_ratio=units.fraction(at("relative_humidity_2m", index)),
            precipitation_probability_ratio=units.fraction(
                at("precipitation_probability", following)
            ),
            precipitation_meters=units.metres(at("precipitation", following)),
            window=STEP_WINDOW,
            wind_speed_meters_per_second=wind(document, "hourly", at("wind_speed_10m", index)),
            wind_gust_meters_per_second=wind(document, "hourly", at("wind_gusts_10m", index)),
            cloud_cover_ratio=units.fraction(at("cloud_cover", index)),
            uv_index=units.amount(at("uv_index", index)),
            conditions=conditions(at("weather_code", index)),
        )

    found, beyond = steps.at_horizons(times, horizons, now, STEP_SECONDS, step)
    return tuple(found), beyond


def parse_days(document: dict[str, Any], now: float) -> tuple[DailyForecast, ...] | str:
    """Today's and tomorrow's figures in the place's calendar, or why they cannot be read."""
    daily = document.get("daily")
    if not isinstance(daily, dict):
        return "answer has no daily block"
    raw = daily.get("time")
    times = steps.moments(raw[:MAX_DAYS] if isinstance(raw, list) else None, utc_offset(document))
    if not any(moment is not None for moment in times):
        return "answer has no daily.time"
    if not steps.ascending(times):
        return "answer's daily.time is not in time order"

    def at(variable: str, index: int) -> float | None:
        return steps.value_at(daily.get(variable), index)

    return tuple(
        DailyForecast(
            day=day,
            temperature_max_celsius=at("temperature_2m_max", index),
            temperature_min_celsius=at("temperature_2m_min", index),
            precipitation_sum_meters=units.metres(at("precipitation_sum", index)),
            uv_index_max=units.amount(at("uv_index_max", index)),
        )
        for day, index in steps.day_indexes(times, now).items()
    )


def with_forecast(
    reading: Reading,
    document: dict[str, Any],
    horizons: tuple[Horizon, ...],
    now: float,
    log: ProbeLog | None,
) -> Reading:
    """The reading with its steps and days. A block the answer lacks is left out and named
    in `missing`; horizons past the answer's last hour are left out, and said in the log."""
    found = parse_steps(document, hourly_times(document), horizons, now)
    days = parse_days(document, now)
    forecast: tuple[ForecastStep, ...] = ()
    if isinstance(found, str):
        reading = left_out(reading, Part.FORECAST, f"invalid_response: {found}", log)
    else:
        forecast, beyond = found
        if beyond and log is not None:
            log.info("horizons past the forecast's hours left out", horizons=",".join(beyond))
    if isinstance(days, str):
        reading = left_out(reading, Part.DAILY_FORECAST, f"invalid_response: {days}", log)
    return replace(reading, forecast=forecast, daily=() if isinstance(days, str) else days)
