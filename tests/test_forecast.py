"""Forecast steps, days and air quality: which step a horizon takes, and the metrics.

Synthetic answers in the providers' documented shapes, built here so that
each rule of spec section 8 has a case that fails if the rule is broken.
"""

from __future__ import annotations

import pytest

from multitarget_exporter.config.modules import Horizon
from multitarget_exporter.model.reading import ProbeResult
from multitarget_exporter.providers import openweathermap, steps
from multitarget_exporter.providers.open_meteo import forecast_query, parse_forecast
from multitarget_exporter.runtime.probelog import ProbeLog
from multitarget_exporter.web.collector import ProbeCollector
from tests.conftest import promtool_check
from tests.test_recorded import exposition

HOUR = 3600
NOW = 1795581900  # 2026-11-25 04:45 UTC
LENGTHS = (("1h", HOUR), ("3h", 3 * HOUR), ("6h", 6 * HOUR), ("90m", 5400), ("120h", 120 * HOUR))
H = {label: Horizon(label, seconds) for label, seconds in LENGTHS}


# -- which step -------------------------------------------------------------------------


def test_a_step_runs_to_the_next_ones_time_and_the_last_its_own_length():
    times = [100.0, 200.0, 400.0]
    assert steps.step_index(times, 99, 50) is None  # before the first
    assert steps.step_index(times, 100, 50) == 0
    assert steps.step_index(times, 249, 50) == 1
    assert steps.step_index(times, 250, 50) is None  # a gap: no step stretches over it
    assert steps.step_index(times, 399, 50, longest_seconds=200) == 1  # up to the next one
    assert steps.step_index(times, 449, 50) == 2
    assert steps.step_index(times, 450, 50) is None  # past the last: never extrapolated
    assert steps.step_index([100.0, None, 300.0], 120, 50) == 0  # a broken stamp starts none
    assert steps.step_index([100.0, None, 300.0], 250, 50) is None  # nor stretches the one before
    assert steps.step_index([300.0, 200.0], 250, 50) is None  # not ascending: none


def test_iso_local_times_and_days_across_a_short_day():
    assert steps.moment("2026-10-03T12:30", 7200) == 1791023400  # 10:30 UTC
    assert steps.moment("2026-10-03", 7200) == 1790978400  # 2 Oct 22:00 UTC
    assert steps.moment("yesterday", 0) is None and steps.moment(True, 0) is None
    # Europe/Berlin's 29 March 2026 has 23 hours: tomorrow still found after it.
    starts = [1774652400.0, 1774738800.0, 1774821600.0]  # 28, 29, 30 March, local midnight
    assert steps.day_indexes(starts, 1774652400 + 100) == {"today": 0, "tomorrow": 1}
    assert steps.day_indexes(starts, 1774738800 + 22 * HOUR) == {"today": 1, "tomorrow": 2}
    assert steps.day_indexes(starts, 1774652400 - 1) == {}


# -- OpenWeatherMap's 3-hour steps ------------------------------------------------------


def owm_entry(dt: int, temp: float, pop: float, rain: float | None = None) -> dict:
    entry = {
        "dt": dt,
        "main": {"temp": temp, "feels_like": temp - 2, "humidity": 80},
        "weather": [{"id": 500, "main": "Rain", "description": "light rain", "icon": "10d"}],
        "clouds": {"all": 90},
        "wind": {"speed": 4.0, "deg": 200, "gust": 9.5},
        "pop": pop,
    }
    if rain is not None:
        entry["rain"] = {"3h": rain}
    return entry


FIRST = (NOW // 10800 + 1) * 10800  # the next 3-hour mark after now: 06:00


def owm_forecast(*entries: dict) -> dict:
    return {"cod": "200", "message": 0, "cnt": len(entries), "list": list(entries)}


def test_owm_step_takes_the_rain_stamped_on_the_next_entry():
    document = owm_forecast(
        owm_entry(FIRST, 1.5, 0.2, rain=9.9),  # 9.9 mm fell before 06:00: not in any step
        owm_entry(FIRST + 10800, -0.5, 0.85, rain=1.2),  # fell 06:00-09:00
        owm_entry(FIRST + 21600, -1.0, 1.0),  # dry 09:00-12:00
    )
    parsed = openweathermap.parse_forecast(document, (H["1h"], H["3h"], H["6h"], H["120h"]), NOW)
    assert not isinstance(parsed, str)
    found, beyond = parsed
    # now + 1h (05:45) is before the first step: left out. 3h -> 07:45 in the 06:00 step,
    # 6h -> 10:45 in the 09:00 step, whose sum the 12:00 entry holds; 120h: past the last.
    assert [(s.horizon, s.temperature_celsius) for s in found] == [("3h", 1.5), ("6h", -0.5)]
    assert beyond == ["1h", "120h"]
    three, six = found
    assert three.precipitation_meters == pytest.approx(0.0012) and three.window == "3h"
    assert six.precipitation_meters == 0.0  # the 09:00 entry names no rain: dry
    assert three.precipitation_probability_ratio == 0.2  # already 0 to 1
    assert (three.apparent_temperature_celsius, three.relative_humidity_ratio) == (-0.5, 0.8)
    assert (three.wind_speed_meters_per_second, three.wind_gust_meters_per_second) == (4.0, 9.5)
    assert three.cloud_cover_ratio == 0.9 and three.uv_index is None
    assert [(c.id, c.main) for c in three.conditions] == [(500, "Rain")]


def test_owm_last_step_has_no_precipitation_and_bad_values_are_left_out():
    entry = owm_entry(FIRST, 3.0, 1.7)  # a pop above 1 is not a probability
    entry["main"]["humidity"] = None
    (step,), _ = openweathermap.parse_forecast(owm_forecast(entry), (H["3h"],), NOW)
    assert step.precipitation_meters is None
    assert step.precipitation_probability_ratio is None
    assert step.relative_humidity_ratio is None
    assert step.temperature_celsius == 3.0


def test_owm_steps_do_not_stretch_over_a_missing_entry():
    """An entry missing from the list: its 3 hours are in no step, and the step before it
    has no known precipitation (the entry that held its sum is the missing one)."""
    document = owm_forecast(
        owm_entry(FIRST, 1.0, 0.1),
        owm_entry(FIRST + 21600, 2.0, 0.3, rain=4.0),  # 09:00 is missing
        "not an entry",
    )
    (first,), beyond = openweathermap.parse_forecast(document, (H["3h"], H["6h"]), NOW)
    assert (first.horizon, first.precipitation_meters) == ("3h", None)
    assert beyond == ["6h"]  # 10:45 falls in the missing 09:00 step


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (None, "answer has no list of steps"),
        ({"cod": "200", "list": []}, "answer has no list of steps"),
        ({"cod": "200", "list": "x"}, "answer has no list of steps"),
        ({"cod": "200", "list": [{"main": {"temp": 1}}]}, "answer's steps have no dt"),
    ],
)
def test_owm_forecast_that_cannot_be_read_says_why(document, why):
    assert openweathermap.parse_forecast(document, (H["3h"],), NOW) == why


def test_owm_asks_for_as_many_entries_as_the_horizons_need():
    assert openweathermap.steps_needed((H["1h"],)) == 3
    assert openweathermap.steps_needed((H["1h"], H["6h"])) == 5
    assert openweathermap.steps_needed((H["120h"],)) == 40  # the free plan's whole list


# -- Open-Meteo's hours and days --------------------------------------------------------


def om_answer() -> dict:
    hour = NOW // HOUR * HOUR  # 04:00
    hours = [hour - HOUR + i * HOUR for i in range(8)]  # 03:00 .. 10:00
    return {
        "latitude": 52.52,
        "longitude": 13.42,
        "utc_offset_seconds": 3600,
        "current": {"time": NOW, "interval": 900, "temperature_2m": 2.0, "uv_index": 0.35,
                    "uv_index_clear_sky": 0.6, "precipitation_probability": 40},
        "hourly_units": {"wind_speed_10m": "km/h", "wind_gusts_10m": "km/h"},
        "hourly": {
            "time": hours,
            "temperature_2m": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            "precipitation": [9.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
            "precipitation_probability": [0, 10, 20, 30, 40, 50, 60, None],
            "wind_speed_10m": [36.0] * 8,
            "weather_code": [61] * 8,
            "uv_index": [0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
        },
        "daily": {
            # local midnights at UTC+1: 25 and 26 November
            "time": [1795561200, 1795647600],
            "temperature_2m_max": [8.5, 4.0],
            "temperature_2m_min": [-1.5, -3.0],
            "precipitation_sum": [2.4, None],
            "uv_index_max": [1.2, 0.9],
        },
    }  # fmt: skip


def test_open_meteo_hours_take_the_precipitation_stamped_an_hour_later():
    result = parse_forecast(om_answer(), 200, None, (H["1h"], H["90m"], H["6h"]), NOW)
    r = result.reading
    assert r.missing == ""
    # now + 1h = 05:45: the 05:00 hour (index 2); its rain and its chance of rain are
    # stamped at the end of the hour, 06:00 (index 3).
    one, ninety, six = r.forecast
    assert (one.horizon, one.temperature_celsius, one.window) == ("1h", 3.0, "1h")
    assert one.precipitation_meters == pytest.approx(0.0003)
    assert one.precipitation_probability_ratio == pytest.approx(0.3)
    assert one.wind_speed_meters_per_second == 10.0  # 36 km/h, as the block declares
    assert one.uv_index == 0.5
    assert [(c.id, c.main) for c in one.conditions] == [(61, "Rain")]
    assert ninety.temperature_celsius == 4.0  # 06:15: the 06:00 hour
    # now + 6h = 10:45: the last hour; nothing stamped after it.
    assert six.temperature_celsius == 8.0 and six.precipitation_meters is None
    assert six.precipitation_probability_ratio is None
    assert (r.uv_index, r.uv_index_clear_sky, r.precipitation_probability_ratio) == (
        0.35,
        0.6,
        0.4,
    )
    today, tomorrow = r.daily
    assert (today.day, today.temperature_max_celsius, today.temperature_min_celsius) == (
        "today",
        8.5,
        -1.5,
    )
    assert today.precipitation_sum_meters == pytest.approx(0.0024)
    assert (tomorrow.day, tomorrow.uv_index_max, tomorrow.precipitation_sum_meters) == (
        "tomorrow",
        0.9,
        None,
    )


def test_a_broken_hourly_block_keeps_the_weather_and_says_what_is_missing():
    document = om_answer()
    document["hourly"] = {"time": "soon"}
    log = ProbeLog()
    r = parse_forecast(document, 200, None, (H["1h"],), NOW, log).reading
    assert r.temperature_celsius == 2.0 and r.forecast == () and len(r.daily) == 2
    assert r.missing == "forecast"
    assert "forecast left out" in log.text() and "hourly.time" in log.text()


def test_a_broken_daily_block_keeps_the_steps_and_names_only_the_days():
    document = om_answer()
    del document["daily"]
    log = ProbeLog()
    r = parse_forecast(document, 200, None, (H["1h"],), NOW, log).reading
    assert len(r.forecast) == 1 and r.daily == ()
    assert r.missing == "daily_forecast"
    assert "daily_forecast left out" in log.text() and "no daily block" in log.text()


def test_horizons_past_the_answer_are_left_out_and_said():
    log = ProbeLog()
    r = parse_forecast(om_answer(), 200, None, (H["1h"], H["120h"]), NOW, log).reading
    assert [s.horizon for s in r.forecast] == ["1h"] and r.missing == ""
    assert "horizons past the forecast's hours left out" in log.text()
    assert "horizons=120h" in log.text()


def test_days_that_are_not_a_day_apart_are_not_tomorrow():
    starts = [1795561200.0, 1795561200.0 + 3 * HOUR]  # "tomorrow" three hours later
    assert steps.day_indexes(starts, 1795561200 + 60) == {"today": 0}
    assert steps.day_indexes([1795561200.0, 1795561200.0 + 23 * HOUR], 1795561200) == {
        "today": 0,
        "tomorrow": 1,
    }


def test_the_request_asks_only_for_what_the_horizons_need():
    plain = forecast_query(52.5, 13.4)
    assert "temperature_2m" not in plain["hourly"] and plain["forecast_days"] == "1"
    assert plain["forecast_hours"] == "1" and "uv_index_max" not in plain["daily"]
    asked = forecast_query(52.5, 13.4, (H["1h"], H["90m"]))
    # ceil(1.5 h) = 2 hours ahead, one more for its precipitation, one for the clock.
    assert asked["forecast_hours"] == "5" and asked["forecast_days"] == "2"
    assert "precipitation" in asked["hourly"].split(",")
    assert forecast_query(0, 0, (H["120h"],))["forecast_hours"] == "123"


# -- the metrics ------------------------------------------------------------------------


def test_forecast_families_are_labelled_and_pass_promtool():
    result = parse_forecast(om_answer(), 200, None, (H["1h"], H["6h"]), NOW)
    text = exposition(ProbeResult(result.reading, None, 200))
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for line in (
        'weather_forecast_temperature_celsius{horizon="1h"} 3.0',
        'weather_forecast_temperature_celsius{horizon="6h"} 8.0',
        'weather_forecast_precipitation_meters{horizon="1h",window="1h"} 0.0003',
        'weather_forecast_wind_speed_meters_per_second{horizon="6h"} 10.0',
        'weather_forecast_condition_info{description="slight rain",horizon="1h",id="61",'
        'main="Rain"} 1.0',
        'weather_forecast_temperature_min_celsius{day="today"} -1.5',
        'weather_forecast_precipitation_sum_meters{day="today"} 0.0024',
        'weather_forecast_uv_index_max{day="tomorrow"} 0.9',
        "weather_uv_index 0.35",
        "weather_uv_index_clear_sky 0.6",
        "weather_precipitation_probability_ratio 0.4",
    ):
        assert line in text, line
    # Left out where no step gives them: no sample, and no empty family either.
    assert 'weather_forecast_precipitation_meters{horizon="6h"' not in text
    assert "weather_forecast_apparent_temperature_celsius" not in text
    assert 'weather_forecast_precipitation_sum_meters{day="tomorrow"}' not in text


def test_a_collector_without_a_forecast_has_none_of_its_families():
    result = parse_forecast(om_answer(), 200, None)
    families = {m.name for m in ProbeCollector(ProbeResult(result.reading, None, 200)).collect()}
    assert not any(name.startswith("weather_forecast") for name in families)
    assert "weather_uv_index" in families  # current UV comes without `forecast` too


# -- hostile answers ---------------------------------------------------------------------


def test_steps_out_of_time_order_are_no_forecast_and_say_so():
    document = owm_forecast(owm_entry(FIRST + 10800, 1.0, 0.1), owm_entry(FIRST, 2.0, 0.2))
    assert openweathermap.parse_forecast(document, (H["3h"],), NOW) == (
        "answer's steps are not in time order"
    )
    answer = om_answer()
    answer["hourly"]["time"].reverse()
    log = ProbeLog()
    r = parse_forecast(answer, 200, None, (H["1h"],), NOW, log).reading
    assert r.forecast == () and r.missing == "forecast" and "not in time order" in log.text()


def test_values_outside_their_range_are_left_out():
    answer = om_answer()
    answer["hourly"]["relative_humidity_2m"] = [250] * 8
    answer["hourly"]["cloud_cover"] = [-5] * 8
    answer["hourly"]["uv_index"] = [-3.0] * 8
    answer["current"]["uv_index"] = -1.0
    r = parse_forecast(answer, 200, None, (H["1h"],), NOW).reading
    (step,) = r.forecast
    assert step.relative_humidity_ratio is None and step.cloud_cover_ratio is None
    assert step.uv_index is None and r.uv_index is None
    assert step.temperature_celsius == 3.0  # the rest of the step stays


def test_owm_rain_named_without_an_amount_is_unknown_not_dry():
    for rain in (None, {"3h": None}, {"3h": -1}, {"3h": "lots"}):
        following = owm_entry(FIRST + 10800, 1.0, 0.5)
        following["rain"] = rain
        (step,), _ = openweathermap.parse_forecast(
            owm_forecast(owm_entry(FIRST, 1.0, 0.5), following), (H["3h"],), NOW
        )
        assert step.precipitation_meters is None, rain
    following = owm_entry(FIRST + 10800, 1.0, 0.5)
    following["rain"] = {}  # as real answers send for no rain
    (step,), _ = openweathermap.parse_forecast(
        owm_forecast(owm_entry(FIRST, 1.0, 0.5), following), (H["3h"],), NOW
    )
    assert step.precipitation_meters == 0.0
