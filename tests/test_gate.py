"""The gate every upstream call passes: a paced daily budget, Retry-After, the breaker.

Narrow tests of upstream/gate.py and upstream/tallies.py with an injected
clock: the budget's pace over a day, every form a Retry-After header takes,
and the breaker's steps. The same rules against the fake upstream, through
the real exporter, are in tests/test_economy_integration.py.
"""

from __future__ import annotations

import email.utils

import pytest

from multitarget_exporter.config.files import ConfigError
from multitarget_exporter.config.modules import parse_config
from multitarget_exporter.model.reading import Failure, FailureReason
from multitarget_exporter.upstream import gate as gates
from multitarget_exporter.upstream.gate import Breakers, Gate, allowance, retry_after_seconds
from multitarget_exporter.upstream.tallies import MemoryTallies

MIDNIGHT = 1_796_342_400.0  # 2026-12-04T00:00:00Z
assert MIDNIGHT % 86400 == 0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_breakers(monkeypatch):
    """Each test its own process-wide breakers, on the test's clock where it sets one."""
    breakers = Breakers()
    monkeypatch.setattr(gates.BREAKERS, "get", lambda: breakers)
    return breakers


def test_the_allowance_is_a_tenth_at_midnight_and_the_whole_budget_at_most() -> None:
    for budget in (1, 7, 1000, 10**8):
        for second in range(0, 86400, 97):
            paced = allowance(budget, MIDNIGHT + second)
            assert paced <= budget * second / 86400 + budget / 10
            assert paced <= budget
    assert allowance(1000, MIDNIGHT) == 100
    assert allowance(1000, MIDNIGHT + 43200) == 550
    assert allowance(1000, MIDNIGHT + 86399) == 999  # the whole budget as the day ends
    assert allowance(1000, MIDNIGHT + 86400) == 100  # the next day starts afresh
    assert allowance(5, MIDNIGHT) == 0  # a tenth of 5 is no whole call yet


def test_a_day_of_eager_probes_spends_the_budget_evenly_and_never_more() -> None:
    """A probe every 30 s that would call each time (2,880 a day) on a budget of 480:
    never more than the pace allows, at most the budget, and hour by hour even."""
    clock, budget = Clock(MIDNIGHT), 480
    gate = Gate("paced", budget, MemoryTallies(), clock)
    spent_by_hour = [0] * 24
    spent = 0
    for step in range(2880):
        clock.now = MIDNIGHT + step * 30.0
        if gate.before("openweathermap", "127.0.0.1:1", "") is None:
            spent += 1
            spent_by_hour[step * 30 // 3600] += 1
        assert spent <= allowance(budget, clock.now)
    assert budget - 1 <= spent <= budget  # the last call's moment comes at 23:59:30
    pace = budget * 0.9 / 24  # 18 an hour after the tenth spent ahead
    assert budget // 10 + pace - 2 <= spent_by_hour[0] <= budget // 10 + pace
    assert all(pace - 1 <= hour <= pace + 1 for hour in spent_by_hour[1:]), spent_by_hour


def test_a_refusal_says_daily_budget_and_is_a_rate_limit() -> None:
    clock = Clock(MIDNIGHT)
    gate = Gate("tight", 10, MemoryTallies(), clock)
    assert gate.before("open_meteo", "h", "") is None  # a tenth of 10: one call
    refusal = gate.before("open_meteo", "h", "")
    assert refusal is not None and refusal.reason is FailureReason.RATE_LIMITED
    assert "daily budget" in refusal.detail


def test_without_a_budget_nothing_is_counted() -> None:
    tallies = MemoryTallies()
    gate = Gate("free", None, tallies, Clock(MIDNIGHT))
    assert all(gate.before("open_meteo", "h", "") is None for _ in range(1000))
    assert tallies.spent(f"budget|free|{int(MIDNIGHT // 86400)}") == 0


NOW = MIDNIGHT + 3600


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("86400", 3600.0),  # capped at an hour
        ("9" * 40, 3600.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW + 7200, usegmt=True), 3600.0),
        (email.utils.formatdate(NOW - 60, usegmt=True), 0.0),  # a date gone by
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("1e3", None),
        ("soon", None),
        ("Fri, 32 Dec 2026 25:00:00 GMT", None),
        ("Fri, 04 Dec 2026 01:00:00", None),  # no zone: not an HTTP date
        ("9" * 100, None),  # over any header's sense
    ],
)
def test_retry_after_in_every_form(header: str, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_holds_the_provider_and_key_until_then() -> None:
    clock, tallies = Clock(NOW), MemoryTallies()
    gate = Gate("m", None, tallies, clock)
    other_module = Gate("n", None, tallies, clock)
    gate.after("openweathermap", "h", "key1", 429, None, "5")
    for each in (gate, other_module):
        refusal = each.before("openweathermap", "h", "key1")
        assert refusal is not None and refusal.reason is FailureReason.RATE_LIMITED
        assert "Retry-After" in refusal.detail
    assert gate.before("openweathermap", "h", "key2") is None  # another key is not held
    assert gate.before("open_meteo", "h", "key1") is None
    clock.now += 5
    assert gate.before("openweathermap", "h", "key1") is None


@pytest.mark.parametrize("status", [200, 404, 500])
def test_retry_after_counts_only_on_429_and_503(status: int) -> None:
    gate = Gate("m", None, MemoryTallies(), Clock(NOW))
    gate.after("open_meteo", "h", "", status, None, "30")
    assert gate.before("open_meteo", "h", "") is None


@pytest.mark.parametrize("header", ["", "-1", "later", "0"])
def test_a_useless_retry_after_holds_nothing(header: str) -> None:
    gate = Gate("m", None, MemoryTallies(), Clock(NOW))
    gate.after("open_meteo", "h", "", 503, None, header)
    assert gate.before("open_meteo", "h", "") is None


TIMEOUT = Failure(FailureReason.TIMEOUT, "read timed out")


def test_five_failures_open_the_breaker_then_one_trial_per_doubling_step(
    fresh_breakers: Breakers,
) -> None:
    clock = Clock(NOW)
    fresh_breakers.clock = clock
    gate = Gate("m", None, MemoryTallies(), clock)
    for _ in range(4):
        assert gate.before("met_norway", "h", "") is None
        gate.after("met_norway", "h", "", 0, TIMEOUT, "")
    assert gate.before("met_norway", "h", "") is None
    gate.after("met_norway", "h", "", 0, TIMEOUT, "")  # the fifth
    refusal = gate.before("met_norway", "h", "")
    assert refusal is not None and refusal.reason is FailureReason.TIMEOUT
    assert "5 times" in refusal.detail
    for step in (30, 60, 120, 240, 300, 300):
        clock.now += step - 1
        assert gate.before("met_norway", "h", "") is not None, step
        clock.now += 1
        assert gate.before("met_norway", "h", "") is None, step  # the trial
        assert gate.before("met_norway", "h", "") is not None  # one at a time
        gate.after("met_norway", "h", "", 502, None, "")  # the trial fails
    clock.now += 300
    assert gate.before("met_norway", "h", "") is None
    gate.after("met_norway", "h", "", 200, None, "")  # a trial that succeeds closes it
    assert all(gate.before("met_norway", "h", "") is None for _ in range(3))


def test_an_answer_that_is_not_a_fault_breaks_the_run(fresh_breakers: Breakers) -> None:
    gate = Gate("m", None, MemoryTallies(), Clock(NOW))
    for status in (500, 503, 0, 0, 404, 500, 500, 500, 500):
        failure = TIMEOUT if status == 0 else None
        gate.after("nws", "h", "", status, failure, "")
    assert gate.before("nws", "h", "") is None  # four since the 404
    gate.after("nws", "h", "", 500, None, "")
    assert gate.before("nws", "h", "") is not None
    assert gate.before("nws", "other-host", "") is None  # per host


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "between 1 and"),
        ("-5", "between 1 and"),
        ("'1000'", "whole number"),
        ("1.5", "whole number"),
        ("true", "whole number"),
        ("1000000000000", "between 1 and"),
    ],
)
def test_a_bad_daily_budget_is_a_start_up_error_naming_the_key(value: str, message: str) -> None:
    import yaml

    document = yaml.safe_load(f"modules: {{m: {{provider: open_meteo, daily_budget: {value}}}}}")
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert any(
        "modules.m" in p and "daily_budget" in p and message in p for p in raised.value.problems
    )


def test_a_daily_budget_is_read() -> None:
    config = parse_config({"modules": {"m": {"provider": "open_meteo", "daily_budget": 9000}}})
    assert config.modules["m"].daily_budget == 9000
