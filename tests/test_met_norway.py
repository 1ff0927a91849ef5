"""MET Norway: its symbol codes, its answer's time series, and the module's rules.

Answers here are built from the documented shape of Locationforecast 2.0's
`complete` answer (tests/fixtures/met_norway); the HTTP etiquette against the fake upstream is in
test_met_norway_etiquette.py.
"""

from __future__ import annotations

import copy
import time

import pytest

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import Horizon, parse_config
from multitarget_exporter.providers import met_symbols
from multitarget_exporter.providers.met_norway import compact, http_time, reading_at, rounded
from tests.conftest import met_example

STEP_TIME = 1795690800.0  # 2026-11-26T11:00:00Z


def documented_example() -> dict:
    """The documented answer, with its one step moved to STEP_TIME."""
    document = met_example()
    document["properties"]["timeseries"][0]["time"] = "2026-11-26T11:00:00Z"
    return document


def step(at: str, temperature: float, hour: dict | None, six: dict | None) -> dict:
    data: dict = {"instant": {"details": {"air_temperature": temperature}}}
    if hour is not None:
        data["next_1_hours"] = {"summary": {"symbol_code": hour["symbol"]},
                                "details": {"precipitation_amount": hour["mm"]}}  # fmt: skip
    if six is not None:
        data["next_6_hours"] = {"summary": {"symbol_code": six["symbol"]},
                                "details": {"precipitation_amount": six["mm"]}}  # fmt: skip
    return {"time": at, "data": data}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("clearsky_day", ("clearsky", "Clear", "clear sky")),
        ("fair_polartwilight", ("fair", "Clear", "fair")),
        ("partlycloudy_night", ("partlycloudy", "Clouds", "partly cloudy")),
        ("cloudy", ("cloudy", "Clouds", "cloudy")),
        ("fog", ("fog", "Fog", "fog")),
        ("lightrain", ("lightrain", "Rain", "light rain")),
        ("heavyrainshowers_day", ("heavyrainshowers", "Rain", "heavy rain showers")),
        ("sleet", ("sleet", "Snow", "sleet")),
        ("heavysnowandthunder", ("heavysnowandthunder", "Thunderstorm", "heavy snow and thunder")),
        # Misspelt upstream, matched as sent: the id keeps the spelling, the words do not.
        (
            "lightssleetshowersandthunder_night",
            ("lightssleetshowersandthunder", "Thunderstorm", "light sleet showers and thunder"),
        ),
        (
            "lightssnowshowersandthunder_day",
            ("lightssnowshowersandthunder", "Thunderstorm", "light snow showers and thunder"),
        ),
        ("sunnyspells", ("sunnyspells", "Unknown", "sunnyspells")),
    ],
)
def test_symbol_codes_in_words(code, expected):
    found = met_symbols.condition(code)
    assert found is not None and (found.id, found.main, found.description) == expected


def test_http_dates():
    assert http_time("Wed, 25 Nov 2026 21:00:00 GMT") == 1795640400
    for bad in (None, "", "soon", "Wed, 25 Nov 2026 21:00:00", "99 Nov 2026"):
        assert http_time(bad) is None, bad


def test_coordinates_have_four_decimals_at_most():
    assert repr(rounded(59.913368)) == "59.9134"
    assert repr(rounded(-0.00004)) == repr(rounded(0.00004)) == "0.0"  # one point, one key
    assert repr(rounded(10.7)) == "10.7"


def test_the_documented_answer_as_a_reading():
    series = compact(documented_example())
    assert not isinstance(series, str)
    horizons = (Horizon("1h", 3600), Horizon("30m", 1800))
    r = reading_at(series, STEP_TIME + 60, horizons, 59.9133, 10.7389, None)
    assert not isinstance(r, str)
    assert r.provider == "met_norway"
    assert r.temperature_celsius == 3.1 and r.dew_point_celsius == 1.2
    assert r.relative_humidity_ratio == pytest.approx(0.893)
    assert r.pressure_pascals == pytest.approx(101490)
    assert r.cloud_cover_ratio == pytest.approx(0.999)
    assert (r.wind_speed_meters_per_second, r.wind_gust_meters_per_second) == (3.7, 7.3)
    assert r.wind_direction_degrees == 226.5
    assert r.uv_index_clear_sky == 0.3 and r.uv_index is None
    assert r.precipitation_probability_ratio == pytest.approx(0.705)  # the next hour's
    assert [(c.id, c.main) for c in r.conditions] == [("lightrain", "Rain")]
    assert r.observation_timestamp_seconds == STEP_TIME  # the step's time, not updated_at
    assert not r.observes_precipitation and r.rain_meters == {}
    # One step, the last: six hours long, so its figures are the next six hours'.
    assert [(s.horizon, s.window) for s in r.forecast] == [("1h", "6h"), ("30m", "6h")]
    assert r.forecast[0].precipitation_meters == pytest.approx(0.0031)
    assert r.forecast[0].precipitation_probability_ratio == pytest.approx(0.88)


def test_steps_hourly_then_six_hourly_take_their_own_periods():
    series = compact(
        {
            "properties": {
                "timeseries": [
                    step("2026-11-26T11:00:00Z", 1.0, {"symbol": "rain", "mm": 0.4},
                         {"symbol": "rain", "mm": 3.0}),
                    step("2026-11-26T12:00:00Z", 2.0, {"symbol": "cloudy", "mm": 0.0},
                         {"symbol": "rain", "mm": 2.0}),
                    step("2026-11-26T18:00:00Z", 3.0, None, {"symbol": "snow", "mm": 5.0}),
                ]
            }
        }
    )  # fmt: skip
    horizons = tuple(Horizon(f"{h}h", h * 3600) for h in (0.5, 2, 7, 13))
    r = reading_at(series, STEP_TIME + 60, horizons, 60.0, 10.0, None)
    # now + 30m: the 11:00 hour; + 2h: 13:00, in the 12:00 step, which runs six hours to
    # the next stamp, so its own period is its next six hours; + 7h: the 18:00 six hours;
    # + 13h: past the last step.
    assert [(s.horizon, s.window, s.precipitation_meters) for s in r.forecast] == [
        ("0.5h", "1h", 0.0004),
        ("2h", "6h", 0.002),
        ("7h", "6h", 0.005),
    ]
    assert r.forecast[2].conditions[0].id == "snow"
    # Before the first step: the first one is the current reading.
    early = reading_at(series, STEP_TIME - 7200, (), 60.0, 10.0, None)
    assert early.temperature_celsius == 1.0


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d["properties"].pop("timeseries"), "answer has no properties.timeseries"),
        (lambda d: d["properties"].update(timeseries=[]), "answer's timeseries has no steps"),
        (lambda d: d.update(properties=None), "answer has no properties.timeseries"),
    ],
)
def test_answers_without_a_time_series_say_why(change, why):
    document = documented_example()
    change(document)
    assert compact(document) == why


def test_a_step_without_instant_or_with_nulls():
    document = documented_example()
    without = copy.deepcopy(document)
    del without["properties"]["timeseries"][0]["data"]["instant"]
    assert compact(without) == "answer's steps have no instant air_temperature"
    # Only the current step without: no reading now, the later step still forecast.
    later = copy.deepcopy(document["properties"]["timeseries"][0])
    later["time"] = "2026-11-26T12:00:00Z"
    without["properties"]["timeseries"].append(later)
    assert reading_at(compact(without), STEP_TIME, (), 0, 0, None) == (
        "the current step has no air_temperature"
    )
    nulls = copy.deepcopy(document)
    details = nulls["properties"]["timeseries"][0]["data"]["instant"]["details"]
    for key in details:
        if key != "air_temperature":
            details[key] = None
    r = reading_at(compact(nulls), STEP_TIME, (), 0, 0, None)
    assert r.temperature_celsius == 3.1
    assert r.relative_humidity_ratio is None and r.pressure_pascals is None
    assert r.dew_point_celsius is None and r.wind_speed_meters_per_second is None


def module(settings: str) -> str:
    return f"modules:\n  yr:\n    provider: met_norway\n    {settings}\n"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("base_url: https://api.met.no", "modules.yr.contact: required for met_norway"),
        ("contact: \"ops@example.com\\r\\nX-Evil: 1\"", "modules.yr.contact: must be 3 to 200"),
        ("contact: 'ops@exämple.com'", "modules.yr.contact: must be 3 to 200"),
        ("contact: ops@example.com\n    api_key: k", "modules.yr.api_key: the met_norway provider"),
        ("contact: ops@example.com\n    air_quality: true", "modules.yr.air_quality: the met"),
        ("contact: ops@example.com\n    air_quality_url: https://a.example",
         "modules.yr.air_quality_url: the met_norway provider does not use"),
        ("contact: ops@example.com\n    cache_ttl: 0", "modules.yr.cache_ttl: must be above 0"),
    ],
)  # fmt: skip
def test_met_norway_module_errors_name_the_key(settings, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config(__import__("yaml").safe_load(module(settings)))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_contact_on_another_provider_is_an_error_and_a_good_module_loads():
    with pytest.raises(ConfigError) as caught:
        parse_config({"modules": {"m": {"provider": "open_meteo", "contact": "a@b.example"}}})
    assert caught.value.problems == [
        "modules.m.contact: the open_meteo provider does not use a contact, "
        "and no warnings are listed"
    ]
    config = parse_config({"modules": {"yr": {"provider": "met_norway", "contact": "a@b.example"}}})
    yr = config.modules["yr"]
    assert (yr.base_url, yr.geocoding_url) == (
        "https://api.met.no",
        "https://geocoding-api.open-meteo.com",
    )
    assert config.redacted()["modules"]["yr"]["contact"] == "a@b.example"


def test_a_reading_holds_until_the_next_step_and_eviction_keeps_the_point():
    """A cached reading must not outlive its step (the next one is current then), and a
    point's kept answer outlives readings pushed out of a small cache."""
    from multitarget_exporter.providers.met_norway import MetNorway, Step
    from multitarget_exporter.upstream.cache import MemoryCache
    from multitarget_exporter.upstream.revalidation import Validated

    now = time.time()
    hour = now // 3600 * 3600
    series = [Step(hour, 1.0), Step(hour + 3600, 2.0), Step(hour + 7200, 3.0)]
    config = parse_config({"modules": {"yr": {"provider": "met_norway", "contact": "a@b.example"}}})
    cache = MemoryCache(max_entries=2)
    provider = MetNorway(config.modules["yr"], cache.validators)
    kept = Validated(now + 7200, "", 200, series)  # fresh for two hours
    result = provider._result(kept, 200, 60.0, 10.0, None)
    assert result.reading.temperature_celsius == 1.0
    assert result.expires_at == hour + 3600  # the next step, not the answer's two hours
    for index in range(5):
        cache.validators.put(f"point-{index}", kept, 60)
    assert cache.validators.get("point-0") is not None


def test_id_targets_are_refused_and_a_reload_keeps_the_kept_answers():
    """`id:` is OpenWeatherMap's; and a new configuration's providers keep using the
    cache's store, so a reload does not forget any point's Expires."""
    from multitarget_exporter.model.targets import parse_target
    from multitarget_exporter.probing.state import ServingState
    from multitarget_exporter.upstream.cache import MemoryCache

    config = parse_config({"modules": {"yr": {"provider": "met_norway", "contact": "a@b.example"}}})
    cache = MemoryCache()
    first, second = ServingState.build(config, cache), ServingState.build(config, cache)
    assert "OpenWeatherMap city ids" in first.providers["yr"].unsupported(parse_target("id:1"))
    assert first.providers["yr"].unsupported(parse_target("59.9,10.7")) is None
    assert first.providers["yr"]._validators is second.providers["yr"]._validators
    assert first.providers["yr"]._validators is cache.validators


# -- when the forecast was made (spec section 14) ----------------------------------------

UPDATED = 1795601564.0  # the documented answer's meta.updated_at, 2026-11-25T10:12:44Z


def test_updated_at_is_when_the_forecast_was_made():
    from multitarget_exporter.providers.met_norway import updated_at

    assert updated_at(documented_example()) == UPDATED
    r = reading_at(compact(documented_example()), STEP_TIME + 60, (), 59.9, 10.7, None, UPDATED)
    assert not isinstance(r, str)
    assert r.forecast_updated_timestamp_seconds == UPDATED
    assert r.observation_timestamp_seconds == STEP_TIME  # the step, a day later: not the same


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-25T10:12:44Z", UPDATED),
        ("2026-11-25T11:12:44.5+01:00", UPDATED + 0.5),  # any zone, fractions of a second
        ("2026-11-25T10:12:44", None),  # no zone: not a moment
        ("2026-11-25", None),
        ("yesterday", None),
        (1795601564, None),  # not the documented form: left out, never guessed
        (None, None),
    ],
)
def test_updated_at_that_is_not_a_moment_is_left_out(value, expected):
    from multitarget_exporter.providers.met_norway import updated_at

    document = documented_example()
    document["properties"]["meta"]["updated_at"] = value
    assert updated_at(document) == expected
    del document["properties"]["meta"]
    assert updated_at(document) is None


def _provider():
    from multitarget_exporter.providers.met_norway import MetNorway
    from multitarget_exporter.upstream.cache import MemoryCache

    config = parse_config({"modules": {"yr": {"provider": "met_norway", "contact": "a@b.example"}}})
    return MetNorway(config.modules["yr"], MemoryCache().validators)


def test_the_kept_answer_carries_updated_at_through_redis_and_a_304():
    """The answer is kept apart from the readings (and revalidated): when it was made must
    come back with every reading made from it, from memory or from Redis' JSON."""
    import json
    from dataclasses import asdict

    from multitarget_exporter.providers.met_norway import _readable
    from multitarget_exporter.upstream.revalidation import Validated

    document = documented_example()
    body = json.dumps(document).encode()
    readable = _readable({"content-type": "application/json"}, body, STEP_TIME)
    assert not isinstance(readable, str)
    kept = Validated(STEP_TIME + 3600, "", 200, readable)
    through_redis = Validated(**json.loads(json.dumps(asdict(kept))))
    renewed = Validated(STEP_TIME + 7200, "", kept.status_code, kept.document)  # a 304's
    for each in (kept, through_redis, renewed):
        result = _provider()._result(each, 200, 59.9133, 10.7389, None)
        assert result.reading is not None, result.failure
        assert result.reading.forecast_updated_timestamp_seconds == UPDATED
        assert result.reading.temperature_celsius == 3.1


def test_an_answer_without_updated_at_or_kept_before_it_still_reads():
    """An answer that does not say when it was made is a reading without that; so are
    steps kept as a bare list (the form before this field, still in a shared Redis)."""
    import json

    from multitarget_exporter.providers.met_norway import _readable
    from multitarget_exporter.upstream.revalidation import Validated

    without = documented_example()
    del without["properties"]["meta"]["updated_at"]
    readable = _readable({}, json.dumps(without).encode(), STEP_TIME)
    series = compact(documented_example())
    for document in (readable, series):
        kept = Validated(STEP_TIME + 3600, "", 200, document)
        result = _provider()._result(kept, 200, 60.0, 10.0, None)
        assert result.reading is not None, result.failure
        assert result.reading.temperature_celsius == 3.1
        assert result.reading.forecast_updated_timestamp_seconds is None


def test_answers_kept_in_the_older_form_are_read_and_carried_over():
    """An older exporter sharing Redis reads a point's answer as a bare list of steps and
    would fail on the new form, so each form has its own key. This version reads the
    older one's answer (no call before its Expires) and carries it over to its own key,
    leaving the older key as it was."""
    from multitarget_exporter.model.targets import parse_target
    from multitarget_exporter.upstream.revalidation import Validated

    met = _provider()
    series = compact(documented_example())
    older_key = "https://api.met.no|59.9133,10.7389"  # the key before the form changed
    older = Validated(time.time() + 3600, "", 200, series)
    met._validators.put(older_key, older, 3600)
    found = met.stored(parse_target("59.9133,10.7389"))
    assert found is not None and found.reading.temperature_celsius == 3.1
    assert found.reading.forecast_updated_timestamp_seconds is None  # the old form has none
    new_key = met._key(59.9133, 10.7389)
    assert new_key != older_key and met._validators.get(new_key) == older
    assert met._validators.get(older_key) == older
    kept = Validated(time.time() + 3600, "", 200, {"updated_at": UPDATED, "steps": series})
    met._validators.put(new_key, kept, 3600)
    found = met.stored(parse_target("59.9133,10.7389"))
    assert found is not None and found.reading.forecast_updated_timestamp_seconds == UPDATED
