"""Both providers side by side through the real exporter, and OWM air quality.

The fake upstream serves OpenWeatherMap and Open-Meteo from one set of
places, so the two providers must agree on what they report and how it is
named: a dashboard must not care which one a module uses.
"""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import OWM_KEY, promtool_check, samples, unique_point

SEARCH, FORECAST = "/v1/search", "/v1/forecast"
OPEN_METEO_KEY = "OM-commercial-KEY-5d1e"
WEATHER, AIR = "/data/2.5/weather", "/data/2.5/air_pollution"

# Every metric name spec section 4 allows in a probe's answer.
SPEC_METRICS = {
    "probe_success",
    "probe_duration_seconds",
    "probe_failure_info",
    "probe_upstream_status_code",
    "probe_cache_hit",
    "weather_temperature_celsius",
    "weather_apparent_temperature_celsius",
    "weather_temperature_min_celsius",
    "weather_temperature_max_celsius",
    "weather_dew_point_celsius",
    "weather_relative_humidity_ratio",
    "weather_pressure_pascals",
    "weather_ground_pressure_pascals",
    "weather_wind_speed_meters_per_second",
    "weather_wind_gust_meters_per_second",
    "weather_wind_direction_degrees",
    "weather_cloud_cover_ratio",
    "weather_visibility_meters",
    "weather_rain_meters",
    "weather_snow_meters",
    "weather_condition_info",
    "weather_observation_timestamp_seconds",
    "weather_sunrise_timestamp_seconds",
    "weather_sunset_timestamp_seconds",
    "weather_location_info",
    "weather_location_latitude_degrees",
    "weather_location_longitude_degrees",
    "weather_location_utc_offset_seconds",
    "weather_air_quality_index",
    "weather_air_pollutant_grams_per_cubic_meter",
    # version 2 (spec section 8)
    "weather_uv_index",
    "weather_uv_index_clear_sky",
    "weather_precipitation_probability_ratio",
    "weather_air_quality_european_index",
    "weather_air_quality_usa_index",
    "weather_pollen_grains_per_cubic_meter",
    "weather_forecast_temperature_celsius",
    "weather_forecast_apparent_temperature_celsius",
    "weather_forecast_relative_humidity_ratio",
    "weather_forecast_precipitation_probability_ratio",
    "weather_forecast_precipitation_meters",
    "weather_forecast_wind_speed_meters_per_second",
    "weather_forecast_wind_gust_meters_per_second",
    "weather_forecast_cloud_cover_ratio",
    "weather_forecast_uv_index",
    "weather_forecast_condition_info",
    "weather_forecast_temperature_max_celsius",
    "weather_forecast_temperature_min_celsius",
    "weather_forecast_precipitation_sum_meters",
    "weather_forecast_uv_index_max",
    # version 3 (spec section 13): every provider's observation age, and the stations'
    "weather_observation_age_seconds",
    "weather_station_info",
    "weather_station_distance_meters",
    "weather_station_elevation_meters",
    "weather_sunshine_duration_seconds",
    # version 3 (spec section 14): fresh snow apart from its water, and the model's time
    "weather_snowfall_depth_meters",
    "weather_forecast_updated_timestamp_seconds",
}
# What both providers report for every place the fake knows.
CORE_METRICS = {
    "probe_success",
    "probe_duration_seconds",
    "probe_upstream_status_code",
    "probe_cache_hit",
    "weather_temperature_celsius",
    "weather_apparent_temperature_celsius",
    "weather_dew_point_celsius",
    "weather_relative_humidity_ratio",
    "weather_pressure_pascals",
    "weather_wind_speed_meters_per_second",
    "weather_wind_direction_degrees",
    "weather_cloud_cover_ratio",
    "weather_rain_meters",
    "weather_snow_meters",
    "weather_condition_info",
    "weather_observation_timestamp_seconds",
    "weather_location_info",
    "weather_location_latitude_degrees",
    "weather_location_longitude_degrees",
    "weather_location_utc_offset_seconds",
}


def config(url: str) -> str:
    owm = f"provider: openweathermap, api_key: '${{IT_OWM_KEY}}', base_url: '{url}'"
    meteo = f"provider: open_meteo, base_url: '{url}', geocoding_url: '{url}'"
    return f"""
modules:
  owm: {{{owm}, timeout: 3s}}
  meteo: {{{meteo}, timeout: 3s}}
  meteo_nocache: {{{meteo}, timeout: 3s, cache_ttl: 0}}
  meteo_quick: {{{meteo}, timeout: 1s, cache_ttl: 0}}
  owm_air: {{{owm}, timeout: 3s, air_quality: true}}
  owm_air_nocache: {{{owm}, timeout: 3s, air_quality: true, cache_ttl: 0}}
  air_limited: {{{owm}, timeout: 3s, air_quality: true, rate_limit: 3/h}}
  meteo_key: {{{meteo}, api_key: '{OPEN_METEO_KEY}', cache_ttl: 0}}
"""


@pytest.fixture(scope="module")
def both(exporter_factory, fake_upstream):
    return exporter_factory(config(fake_upstream.url))


def calls(fake_upstream, path: str, subject: str | None = None) -> int:
    """Requests the fake has seen on `path`, naming `subject` if given.

    Path totals come from the fake's counters; the list of recent requests it
    keeps is bounded, so it only serves to find requests naming a subject.
    """
    summary = fake_upstream.summary()
    if subject is None:
        return summary["by_path"].get(path, 0)
    count = 0
    for entry in summary["requests"]:
        if entry["path"] != path:
            continue
        query = entry["query"]
        named = {
            query.get("q"),
            query.get("name"),
            f"{query.get('latitude')},{query.get('longitude')}",
            f"{query.get('lat')},{query.get('lon')}",
        }
        if subject in named:
            count += 1
    return count


def names(text: str) -> set[str]:
    return {key.split("{")[0] for key in samples(text)}


def labels_of(text: str, family: str) -> set[str]:
    found = set()
    for key in samples(text):
        if key.startswith(family + "{"):
            found.update(part.split("=")[0] for part in key[len(family) + 1 : -1].split(","))
    return found


# -- the same metrics from either provider ------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "London,GB",
        "Zürich,CH",
        "São Paulo",
        "Springfield,MO,US",
        "zip:94040,US",
        "35.6895,139.6917",
        "Longyearbyen",
    ],
)
def test_both_providers_answer_with_the_same_names(both, target):
    owm = both.probe(target, module="owm").text
    meteo = both.probe(target, module="meteo").text
    first, second = samples(owm), samples(meteo)
    assert first["probe_success"] == 1 and second["probe_success"] == 1, (owm, meteo)
    for text in (owm, meteo):
        assert names(text) <= SPEC_METRICS
        assert names(text) >= CORE_METRICS, CORE_METRICS - names(text)
        checked = promtool_check(text)
        assert checked.returncode == 0, (target, checked.stdout, checked.stderr)
    for family in ("weather_location_info", "weather_condition_info", "weather_rain_meters"):
        assert labels_of(owm, family) == labels_of(meteo, family), family
    # One place, one truth: both conversions land on the same temperature and pressure.
    for name, tolerance in (("weather_temperature_celsius", 0.06), ("weather_pressure_pascals", 1)):
        assert first[name] == pytest.approx(second[name], abs=tolerance), name
    assert (
        first["weather_location_utc_offset_seconds"]
        == (second["weather_location_utc_offset_seconds"])
    )
    provider = next(k for k in second if k.startswith("weather_location_info"))
    assert 'provider="open_meteo"' in provider


def test_open_meteo_resolves_state_and_language(both):
    missouri = samples(both.probe("Springfield,MO,US", module="meteo").text)
    illinois = samples(both.probe("Springfield,IL,US", module="meteo").text)
    assert missouri["weather_location_latitude_degrees"] == pytest.approx(37.2153)
    assert illinois["weather_location_latitude_degrees"] == pytest.approx(39.8017)
    located = samples(both.probe("Zürich,CH", module="meteo").text)
    assert 'weather_location_info{country="CH",name="Zurich",provider="open_meteo"}' in located


def test_coordinates_go_straight_to_the_forecast(both, fake_upstream):
    point = unique_point()
    searches = calls(fake_upstream, SEARCH)
    metrics = samples(both.probe(point, module="meteo").text)
    assert metrics["probe_success"] == 1
    assert calls(fake_upstream, SEARCH) == searches
    assert calls(fake_upstream, FORECAST, point) == 1
    assert 'weather_location_info{country="",name="",provider="open_meteo"}' in metrics


def test_geocoding_is_cached_for_a_day(both, fake_upstream):
    # cache_ttl 0: every probe fetches the forecast, but the place is geocoded once.
    before = (calls(fake_upstream, SEARCH, "Reykjavik"), calls(fake_upstream, FORECAST))
    for _ in range(3):
        assert samples(both.probe("Reykjavik,IS", module="meteo_nocache").text)["probe_success"]
    assert calls(fake_upstream, SEARCH, "Reykjavik") - before[0] == 1
    assert calls(fake_upstream, FORECAST) - before[1] == 3


def test_open_meteo_readings_are_cached_too(both, fake_upstream):
    before = (calls(fake_upstream, SEARCH, "Dubai"), calls(fake_upstream, FORECAST))
    hits = [samples(both.probe("Dubai", module="meteo").text)["probe_cache_hit"] for _ in range(3)]
    assert hits == [0, 1, 1]
    assert calls(fake_upstream, SEARCH, "Dubai") - before[0] == 1
    assert calls(fake_upstream, FORECAST) - before[1] == 1


def test_city_ids_are_a_400_for_open_meteo(both, fake_upstream):
    before = fake_upstream.summary()["total"]
    response = both.probe("id:2643743", module="meteo")
    assert response.status_code == 400
    assert "OpenWeatherMap city ids" in response.text
    assert fake_upstream.summary()["total"] == before


# -- Open-Meteo's faults --------------------------------------------------------------


def test_unknown_place_is_not_found_without_a_forecast_call(both, fake_upstream):
    place = f"Atlantis-{uuid.uuid4().hex[:8]}"
    forecasts = calls(fake_upstream, FORECAST)
    metrics = samples(both.probe(place, module="meteo_nocache").text)
    assert metrics['probe_failure_info{reason="not_found"}'] == 1
    assert calls(fake_upstream, SEARCH, place) == 1
    assert calls(fake_upstream, FORECAST) == forecasts


@pytest.mark.parametrize(
    ("fault", "reason", "status", "logged"),
    [
        ("error_in_body", "upstream_error", 200, "Cannot initialize WeatherVariable"),
        ("bad_request", "upstream_error", 400, "Latitude must be in range"),
        ("json_503", "upstream_error", 503, "Service temporarily unavailable"),
        ("rate_limited", "rate_limited", 429, "Daily API request limit exceeded"),
        ("unauthorized", "unauthorized", 401, "API key is invalid"),
        ("malformed", "invalid_response", 200, "body is not JSON"),
        ("oversize", "too_large", 200, ""),
        ("reset", "connection_error", 0, ""),
        ("no_temperature", "invalid_response", 200, "no current.temperature_2m"),
    ],
)
def test_forecast_faults(both, fake_upstream, fault, reason, status, logged):
    point = unique_point()
    fake_upstream.fault(fault, point, path=FORECAST, times=1)
    metrics = samples(both.probe(point, module="meteo_nocache").text)
    assert metrics["probe_success"] == 0
    assert metrics[f'probe_failure_info{{reason="{reason}"}}'] == 1
    assert metrics["probe_upstream_status_code"] == status
    if logged:
        line = [x for x in both.log_text().splitlines() if "probe finished" in x and point in x]
        assert logged in line[-1], line
    # Nothing else broke: the same point answers on the next probe.
    assert samples(both.probe(point, module="meteo_nocache").text)["probe_success"] == 1


@pytest.mark.parametrize(
    ("fault", "reason", "name", "country"),
    [
        ("json_500", "upstream_error", "Sydney", "AU"),
        ("html_502", "upstream_error", "New York", "US"),
        ("hang", "timeout", "Berlin", "DE"),
    ],
)
def test_geocoding_faults_stop_before_the_forecast(
    both, fake_upstream, fault, reason, name, country
):
    # A place per case: a place once geocoded is not asked about again for a day.
    fake_upstream.fault(fault, name, path=SEARCH, times=1)
    forecasts = calls(fake_upstream, FORECAST)
    target = f"{name},{country}"
    metrics = samples(both.probe(target, module="meteo_quick").text)
    assert metrics[f'probe_failure_info{{reason="{reason}"}}'] == 1
    assert metrics["probe_duration_seconds"] < 1.5
    assert calls(fake_upstream, FORECAST) == forecasts
    # A failed geocoding is not remembered: the next probe geocodes and succeeds.
    assert samples(both.probe(target, module="meteo_quick").text)["probe_success"] == 1


def test_open_meteo_failures_pass_promtool(both, fake_upstream):
    point = unique_point()
    fake_upstream.fault("json_500", point, path=FORECAST, times=1)
    checked = promtool_check(both.probe(point, module="meteo_nocache").text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_debug_shows_both_calls(both):
    params = {"target": "Tokyo,JP", "module": "meteo_nocache", "debug": "true"}
    text = both.get("/probe", params=params).text
    assert "/v1/search?name=Tokyo" in text and "/v1/forecast?latitude=35.6895" in text
    assert "provider: open_meteo" in text and "weather_temperature_celsius" in text


# -- OpenWeatherMap air quality ----------------------------------------------------------


def test_air_quality_on_and_off(both, fake_upstream):
    plain = both.probe("Beijing,CN", module="owm").text
    assert "weather_air_" not in plain
    before = calls(fake_upstream, AIR)
    text = both.probe("Beijing,CN", module="owm_air").text
    metrics = samples(text)
    assert calls(fake_upstream, AIR) - before == 1
    assert 1 <= metrics["weather_air_quality_index"] <= 5
    pollutants = {k for k in metrics if k.startswith("weather_air_pollutant")}
    assert len(pollutants) == 8
    # The fake holds 230.31 µg/m³ of CO for London: grams in the metric.
    london = samples(both.probe("London,GB", module="owm_air").text)
    co = 'weather_air_pollutant_grams_per_cubic_meter{pollutant="co"}'
    assert london[co] == pytest.approx(230.31e-6)
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_air_quality_is_cached_with_the_weather(both, fake_upstream):
    before = (calls(fake_upstream, WEATHER, "Tokyo,JP"), calls(fake_upstream, AIR))
    first = samples(both.probe("Tokyo,JP", module="owm_air").text)
    second = samples(both.probe("Tokyo,JP", module="owm_air").text)
    assert second["probe_cache_hit"] == 1
    assert second["weather_air_quality_index"] == first["weather_air_quality_index"]
    assert calls(fake_upstream, WEATHER, "Tokyo,JP") - before[0] == 1
    assert calls(fake_upstream, AIR) - before[1] == 1


@pytest.mark.parametrize("fault", ["json_500", "hang", "malformed", "unauthorized"])
def test_a_failed_air_call_keeps_the_weather(both, fake_upstream, fault):
    point = unique_point()  # the fake answers a point at sea with these coordinates
    fake_upstream.fault(fault, point, path=AIR, times=1, delay=5)
    response = both.probe(
        point, module="owm_air_nocache", headers={"X-Prometheus-Scrape-Timeout-Seconds": "2.5"}
    )
    metrics = samples(response.text)
    assert metrics["probe_success"] == 1
    assert metrics["weather_temperature_celsius"] == pytest.approx(14.85)
    assert "weather_air_" not in response.text
    line = [x for x in both.log_text().splitlines() if "probe finished" in x and point in x][-1]
    assert "missing=air_quality" in line and "level=warn" in line
    # The next probe has its air quality again.
    again = samples(both.probe(point, module="owm_air_nocache").text)
    assert "weather_air_quality_index" in again


def test_air_quality_costs_two_calls_of_the_rate_limit(both, fake_upstream):
    before = (calls(fake_upstream, WEATHER), calls(fake_upstream, AIR))
    results = [samples(both.probe(unique_point(), module="air_limited").text) for _ in range(3)]
    assert [r["probe_success"] for r in results] == [1, 0, 0]  # 3/h: 2 spent, 1 left < 2
    assert all(r['probe_failure_info{reason="rate_limited"}'] == 1 for r in results[1:])
    assert calls(fake_upstream, WEATHER) - before[0] == 1
    assert calls(fake_upstream, AIR) - before[1] == 1


def test_the_key_stays_out_of_air_quality_output(both):
    params = {"target": "London,GB", "module": "owm_air_nocache", "debug": "true"}
    text = both.get("/probe", params=params).text
    assert "/data/2.5/air_pollution?lat=51.5085" in text
    assert OWM_KEY not in text and OWM_KEY not in both.log_text()


def test_an_open_meteo_key_is_sent_and_kept_secret(both, fake_upstream):
    point = unique_point()
    fake_upstream.fault("json_500", point, path=FORECAST, times=1)
    failed = both.get("/probe", params={"target": point, "module": "meteo_key", "debug": "true"})
    params = {"target": "Tokyo", "module": "meteo_key", "debug": "true"}
    ok = both.get("/probe", params=params)
    sent = [e["query"] for e in fake_upstream.summary()["requests"] if e["path"] == SEARCH]
    assert sent[-1].get("apikey") == OPEN_METEO_KEY  # the commercial API wants it
    for text in (failed.text, ok.text, both.get("/config").text, both.log_text()):
        assert OPEN_METEO_KEY not in text
    assert "apikey=<secret>" in ok.text
