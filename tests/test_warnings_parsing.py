"""The three warning sources' answers into WeatherWarnings: the real recorded answers
(../shared/realdata/recorded, SOURCES.md there says whose), then every fault a hostile
or odd answer can have.

Every expected time below is the recorded ISO time less its offset, worked out by hand
from day counts (2024-01-01T00:00Z is 1704067200, and so on): recorded warnings have
long ended, so each is read with `now` inside its interval.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from multitarget_exporter.model.warning import (
    CERTAINTIES,
    MOST_NOTES,
    MOST_WARNINGS,
    SEVERITY_LEVELS,
    URGENCIES,
    WarningsAnswer,
    WeatherWarning,
    cap_word,
    coordinate_text,
    instant,
    label_text,
    prose,
)
from multitarget_exporter.warnings import dwd, met_norway, nws
from tests.conftest import recorded

PARSERS = (nws, met_norway, dwd)


def parsed(module: Any, document: Any, now: float) -> WarningsAnswer:
    answer = module.parse_alerts(document, now)
    assert isinstance(answer, WarningsAnswer), answer
    return answer


def summary(warning: WeatherWarning, now: float) -> tuple:
    return (
        warning.event,
        warning.severity,
        warning.level,
        warning.urgency,
        warning.certainty,
        warning.onset,
        warning.ends,
        warning.state_at(now),
    )


def nws_feature(**properties: Any) -> dict[str, Any]:
    """One alert shaped like the NWS's, with `properties` changed."""
    base = {
        "status": "Actual",
        "messageType": "Alert",
        "event": "Gale Warning",
        "severity": "Moderate",
        "urgency": "Expected",
        "certainty": "Likely",
        "onset": "2024-07-18T10:00:00Z",
        "ends": "2024-07-18T20:00:00Z",
        "headline": "Gale Warning",
    }
    base.update(properties)
    return {"type": "Feature", "geometry": None, "properties": base}


def metalerts_feature(interval: Any = None, **properties: Any) -> dict[str, Any]:
    base = {
        "event": "gale",
        "severity": "Moderate",
        "certainty": "Likely",
        "awareness_level": "2; yellow; Moderate",
        "type": "Alert",
        "title": "Kuling",
    }
    base.update(properties)
    when = {"interval": interval or ["2024-07-18T10:00:00+00:00", "2024-07-18T20:00:00+00:00"]}
    return {"type": "Feature", "properties": base, "when": when}


def brightsky_alert(**fields: Any) -> dict[str, Any]:
    base = {
        "onset": "2024-07-18T10:00:00+00:00",
        "expires": "2024-07-18T20:00:00+00:00",
        "severity": "moderate",
        "urgency": "immediate",
        "certainty": "likely",
        "event_en": "wind gusts",
        "event_de": "WINDBÖEN",
    }
    base.update(fields)
    return base


LOCATION = {"warn_cell_id": 809374166, "name_short": "Weiherhammer"}
INSIDE = 1721300400.0  # 2024-07-18T11:00Z, inside the intervals above


# The recorded answers


def test_nws_phoenix_heat_warning_upcoming_and_air_quality_alert_in_effect():
    document = recorded("nws_alerts_nwsalerts_phoenix.json")
    sent = 1721332020.0  # 2024-07-18T12:47-07:00, when the heat warning was sent
    answer = parsed(nws, document, sent)
    assert (answer.covered, answer.source, answer.notes) == (True, "nws", ())
    heat, air = answer.warnings
    # Onset 2024-07-19T10:00-07:00; `ends` 2024-07-20T20:00-07:00 wins over the
    # earlier `expires` (2024-07-19T03:00-07:00, before the onset).
    assert summary(heat, sent) == (
        "Excessive Heat Warning",
        "severe",
        3,
        "expected",
        "likely",
        1721408400.0,
        1721530800.0,
        "upcoming",
    )
    # `ends` null: the end is `expires`, 2024-07-19T21:00-07:00.
    assert summary(air, sent) == (
        "Air Quality Alert",
        "unknown",
        1,
        "unknown",
        "unknown",
        1721315580.0,
        1721448000.0,
        "in_effect",
    )
    assert heat.headline.startswith("Excessive Heat Warning issued July 18 at 12:47PM MST")
    assert air.instruction == ""  # null in the answer
    assert heat.description.startswith("* WHAT...Dangerously hot conditions.")
    assert "\n" in heat.description


def test_nws_phoenix_a_day_later_both_in_effect_and_once_the_air_alert_ends_it_is_gone():
    document = recorded("nws_alerts_nwsalerts_phoenix.json")
    next_day = 1721412000.0  # 2024-07-19T18:00Z, an hour after the heat's onset
    answer = parsed(nws, document, next_day)
    assert [w.state_at(next_day) for w in answer.warnings] == ["in_effect", "in_effect"]
    air_ended = 1721448000.0  # the air quality alert's end, exactly
    answer = parsed(nws, document, air_ended)
    assert [w.event for w in answer.warnings] == ["Excessive Heat Warning"]


def test_nws_zone_orz004_flood_watch_in_effect_until_ends_not_expires():
    document = recorded("nws_alerts_pynws_zone_orz004.json")
    onset = 1576877640.0  # 2019-12-20T13:34-08:00
    answer = parsed(nws, document, onset)
    (flood,) = answer.warnings
    # `ends` 2019-12-22T10:00-08:00, not `expires` 2019-12-21T05:30-08:00.
    assert summary(flood, onset) == (
        "Flood Watch",
        "severe",
        3,
        "future",
        "possible",
        1576877640.0,
        1577037600.0,
        "in_effect",
    )
    assert flood.state_at(onset - 1) == "upcoming"
    assert flood.state_at(1577037600.0) is None
    assert flood.instruction.startswith("A Flood Watch means there is a potential for flooding")


def test_metalerts_docs_example_one_gale_in_effect_with_texts_trimmed():
    document = recorded("metalerts_docs_ana_sira_obrestad.json")
    last_change = 1709647716.0  # 2024-03-05T14:08:36+00:00
    answer = parsed(met_norway, document, last_change)
    assert (answer.covered, answer.source, answer.notes) == (True, "met_norway", ())
    (gale,) = answer.warnings
    # when.interval 2024-03-04T17:00Z to 2024-03-05T15:00Z; no urgency in MetAlerts.
    assert summary(gale, last_change) == (
        "gale",
        "moderate",
        2,
        "unknown",
        "observed",
        1709571600.0,
        1709650800.0,
        "in_effect",
    )
    assert gale.headline == (
        "Kuling, gult nivå, Åna-Sira - Obrestad, "
        "2024-03-04T17:00:00+00:00, 2024-03-05T15:00:00+00:00"
    )
    # The recorded description starts with a space, the instruction ends with one.
    assert gale.description == (
        "I dag, tirsdag, fortsatt øst og sørøst stiv kuling 15 m/s, minkende i ettermiddag."
    )
    assert gale.instruction == "Vurder å la båten ligge."


def test_metalerts_wictk_three_gales_read_at_three_moments():
    document = recorded("metalerts_wictk_maloy_fedje.json")
    last_change = 1749062288.0  # 2025-06-04T18:38:08+00:00
    answer = parsed(met_norway, document, last_change)
    assert answer.notes == ()
    assert [summary(w, last_change) for w in answer.warnings] == [
        # Måløy - Svinøy (a MultiPolygon): 2025-06-03T17:00Z to 2025-06-05T18:00Z
        ("gale", "moderate", 2, "unknown", "observed", 1748970000.0, 1749146400.0, "in_effect"),
        # Bulandet - Måløy: 03:00Z to 2025-06-05T16:00Z
        ("gale", "moderate", 2, "unknown", "likely", 1748919600.0, 1749139200.0, "in_effect"),
        # Fedje - Bulandet: 03:00Z to 2025-06-05T09:00Z
        ("gale", "moderate", 2, "unknown", "observed", 1748919600.0, 1749114000.0, "in_effect"),
    ]
    morning = 1748944800.0  # 2025-06-03T10:00Z: the first has not begun
    states = [w.state_at(morning) for w in parsed(met_norway, document, morning).warnings]
    assert states == ["upcoming", "in_effect", "in_effect"]
    later = 1749117600.0  # 2025-06-05T10:00Z: Fedje - Bulandet has ended
    areas = [w.headline.split(", ")[2] for w in parsed(met_norway, document, later).warnings]
    assert areas == ["Måløy - Svinøy", "Bulandet - Måløy"]


def test_brightsky_rain_immediate_yet_upcoming_with_null_instruction():
    document = recorded("brightsky_alerts_weewx_weiherhammer_rain.json")
    effective = 1693046460.0  # 2023-08-26T10:41Z, as in the alert_id's milliseconds
    answer = parsed(dwd, document, effective)
    assert (answer.covered, answer.source, answer.notes) == (True, "dwd", ())
    (rain,) = answer.warnings
    # onset 2023-08-26T22:00Z, expires 2023-08-29T16:00Z: "immediate", and 11 h away.
    assert summary(rain, effective) == (
        "persistent rain",
        "moderate",
        2,
        "immediate",
        "likely",
        1693087200.0,
        1693324800.0,
        "upcoming",
    )
    assert rain.headline == "Official WARNING of PERSISTANT RAIN"
    assert rain.description == (
        "There is a risk of persistent rain (Level 2 of 4).\nPrecipitation amounts: ~ 60 l/m²"
    )
    assert rain.instruction == ""  # instruction_en and instruction_de are null


def test_brightsky_heat_minor_in_effect_at_noon():
    document = recorded("brightsky_alerts_weewx_weiherhammer_heat.json")
    noon = 1692705600.0  # 2023-08-22T12:00Z
    (heat,) = parsed(dwd, document, noon).warnings
    # onset 2023-08-22T09:00Z, expires 17:00Z
    assert summary(heat, noon) == (
        "strong heat",
        "minor",
        1,
        "immediate",
        "likely",
        1692694800.0,
        1692723600.0,
        "in_effect",
    )
    assert heat.headline == "Official WARNING of STRONG HEAT"
    assert heat.instruction.startswith("NOTE: be aware that this is an automatically generated")


def test_brightsky_empty_alerts_with_a_location_is_covered_without_warnings():
    document = recorded("brightsky_alerts_weewx_weiherhammer_empty.json")
    answer = parsed(dwd, document, 1692705600.0)
    assert answer == WarningsAnswer(covered=True, warnings=(), source="dwd", notes=())


# Requests


def test_requests_name_the_point_in_four_decimals_without_trailing_zeros():
    assert nws.alerts_request(33.25, -112.3) == ("/alerts/active", {"point": "33.25,-112.3"})
    assert nws.points_request(30.0, -85.0) == "/points/30,-85"
    assert met_norway.alerts_request(58.33, 6.1) == (
        "/weatherapi/metalerts/2.0/current.json",
        {"lat": "58.33", "lon": "6.1", "lang": "en"},
    )
    assert dwd.alerts_request(49.63227, 12.056186) == (
        "/alerts",
        {"lat": "49.6323", "lon": "12.0562"},
    )
    assert (nws.NAME, met_norway.NAME, dwd.NAME) == ("nws", "met_norway", "dwd")
    assert nws.DEFAULT_BASE_URL == "https://api.weather.gov"
    assert met_norway.DEFAULT_BASE_URL == "https://api.met.no"
    assert dwd.DEFAULT_BASE_URL == "https://api.brightsky.dev"


@pytest.mark.parametrize(
    ("value", "text"),
    [(-0.0, "0"), (-0.00001, "0"), (0.00005, "0.0001"), (10.0, "10"), (-85.123449, "-85.1234")],
)
def test_coordinate_text(value, text):
    assert coordinate_text(value) == text


def test_coordinate_text_refuses_what_is_no_number():
    with pytest.raises(ValueError):
        coordinate_text(float("nan"))


# Malformed answers


@pytest.mark.parametrize("module", PARSERS)
@pytest.mark.parametrize("document", [None, [], "alerts", 3, True])
def test_an_answer_that_is_not_an_object_is_a_reason(module, document):
    assert module.parse_alerts(document, INSIDE) == "the answer is not a JSON object"


@pytest.mark.parametrize("module", [nws, met_norway])
@pytest.mark.parametrize("features", [None, {}, "x", 1])
def test_features_not_a_list_is_a_reason(module, features):
    reason = module.parse_alerts({"type": "FeatureCollection", "features": features}, INSIDE)
    assert reason == "the answer has no features list"


@pytest.mark.parametrize("alerts", [None, {}, "x"])
def test_brightsky_alerts_not_a_list_is_a_reason(alerts):
    assert dwd.parse_alerts({"alerts": alerts, "location": LOCATION}, INSIDE) == (
        "the answer has no alerts list"
    )


@pytest.mark.parametrize("location", [None, [], "Berlin"])
def test_brightsky_without_a_location_block_is_outside(location):
    document: dict[str, Any] = {"alerts": [brightsky_alert()]}
    if location is not None:
        document["location"] = location
    answer = parsed(dwd, document, INSIDE)
    assert answer == WarningsAnswer(covered=False, warnings=(), source="", notes=())


@pytest.mark.parametrize(
    ("module", "good"),
    [(nws, nws_feature()), (met_norway, metalerts_feature())],
)
def test_features_without_properties_are_skipped_and_noted(module, good):
    features = [{"type": "Feature"}, {"properties": ["a list"]}, "a string", good]
    answer = parsed(module, {"features": features}, INSIDE)
    assert [w.event for w in answer.warnings] == [good["properties"]["event"]]
    assert answer.notes == (
        "feature 0 has no properties: skipped",
        "feature 1 has no properties: skipped",
        "feature 2 has no properties: skipped",
    )


def test_brightsky_alerts_that_are_not_objects_are_skipped_and_noted():
    document = {"alerts": [None, 7, brightsky_alert()], "location": LOCATION}
    answer = parsed(dwd, document, INSIDE)
    assert [w.event for w in answer.warnings] == ["wind gusts"]
    assert answer.notes == (
        "alert 0 is not an object: skipped",
        "alert 1 is not an object: skipped",
    )


def answers_with(field_values: dict[str, Any]) -> list[WeatherWarning]:
    """One warning of each source with the same fields changed."""
    brightsky_fields = {
        ("event_en" if key == "event" else key): value for key, value in field_values.items()
    }
    return [
        parsed(nws, {"features": [nws_feature(**field_values)]}, INSIDE).warnings[0],
        parsed(met_norway, {"features": [metalerts_feature(**field_values)]}, INSIDE).warnings[0],
        parsed(
            dwd, {"alerts": [brightsky_alert(**brightsky_fields)], "location": LOCATION}, INSIDE
        ).warnings[0],
    ]


def test_unknown_words_are_unknown_and_level_one():
    for warning in answers_with(
        {"severity": "Catastrophic", "urgency": "Now!", "certainty": 0.9, "awareness_level": "x"}
    ):
        assert (warning.severity, warning.urgency, warning.certainty, warning.level) == (
            "unknown",
            "unknown",
            "unknown",
            1,
        )


def test_words_in_any_case_and_padding_are_cap_words():
    for warning in answers_with({"severity": " EXTREME ", "certainty": "Observed"}):
        assert (warning.severity, warning.level, warning.certainty) == ("extreme", 4, "observed")


@pytest.mark.parametrize(
    ("awareness_level", "severity", "level"),
    [
        ("2; yellow; Moderate", "moderate", 2),
        ("3; orange; Severe", "severe", 3),
        ("4; red; Extreme", "extreme", 4),
        ("red", "extreme", 4),
        ("9; purple; Dreadful", "unknown", 1),
        (4, "unknown", 1),
    ],
)
def test_metalerts_severity_from_awareness_level_when_severity_says_none(
    awareness_level, severity, level
):
    feature = metalerts_feature(severity="nonsense", awareness_level=awareness_level)
    (warning,) = parsed(met_norway, {"features": [feature]}, INSIDE).warnings
    assert (warning.severity, warning.level) == (severity, level)


def test_metalerts_severity_wins_over_awareness_level():
    feature = metalerts_feature(severity="Severe", awareness_level="2; yellow; Moderate")
    (warning,) = parsed(met_norway, {"features": [feature]}, INSIDE).warnings
    assert warning.severity == "severe"


def test_an_onset_that_does_not_parse_is_in_effect_with_a_note():
    nws_answer = parsed(
        nws, {"features": [nws_feature(onset="next Tuesday", effective=None)]}, INSIDE
    )
    assert nws_answer.warnings[0].onset is None
    assert nws_answer.warnings[0].state_at(INSIDE) == "in_effect"
    assert nws_answer.notes == ("onset did not parse for 'Gale Warning': 'next Tuesday'",)

    feature = metalerts_feature(interval=[12, "2024-07-18T20:00:00+00:00"])
    met_answer = parsed(met_norway, {"features": [feature]}, INSIDE)
    assert met_answer.warnings[0].state_at(INSIDE) == "in_effect"
    assert met_answer.notes == ("onset did not parse for 'gale': a JSON int",)

    alert = brightsky_alert(onset="2024-07-18T10:00:00")  # no offset: no moment
    dwd_answer = parsed(dwd, {"alerts": [alert], "location": LOCATION}, INSIDE)
    assert dwd_answer.warnings[0].onset is None
    assert dwd_answer.notes == ("onset did not parse for 'wind gusts': '2024-07-18T10:00:00'",)


def test_nws_falls_back_to_effective_and_expires():
    feature = nws_feature(
        onset=None, effective="2024-07-18T09:00:00Z", ends=None, expires="2024-07-18T12:00:00Z"
    )
    (warning,) = parsed(nws, {"features": [feature]}, INSIDE).warnings
    assert (warning.onset, warning.ends) == (1721293200.0, 1721304000.0)


def test_a_missing_onset_is_noted_and_a_missing_end_is_not():
    feature = metalerts_feature()
    del feature["when"]
    answer = parsed(met_norway, {"features": [feature]}, INSIDE)
    (warning,) = answer.warnings
    assert (warning.onset, warning.ends, warning.state_at(INSIDE)) == (None, None, "in_effect")
    assert answer.notes == ("no onset for 'gale'",)


@pytest.mark.parametrize("status", ["Test", "exercise", "SYSTEM", "draft", " Draft "])
def test_messages_that_are_not_actual_are_left_out(status):
    actual = {"status": "Actual", "event": "kept"}
    nws_features = [nws_feature(status=status), nws_feature(**actual)]
    met_features = [metalerts_feature(status=status), metalerts_feature(**actual)]
    alerts = [brightsky_alert(status=status), brightsky_alert(status="actual", event_en="kept")]
    for answer in (
        parsed(nws, {"features": nws_features}, INSIDE),
        parsed(met_norway, {"features": met_features}, INSIDE),
        parsed(dwd, {"alerts": alerts, "location": LOCATION}, INSIDE),
    ):
        assert [w.event for w in answer.warnings] == ["kept"]


def test_cancellations_are_left_out():
    nws_features = [nws_feature(messageType="Cancel"), nws_feature(messageType="Update")]
    assert len(parsed(nws, {"features": nws_features}, INSIDE).warnings) == 1
    met_features = [metalerts_feature(type="cancel"), metalerts_feature(type="Update")]
    assert len(parsed(met_norway, {"features": met_features}, INSIDE).warnings) == 1


def test_a_recorded_answer_with_its_alert_turned_into_a_test_is_empty_but_covered():
    document = copy.deepcopy(recorded("brightsky_alerts_weewx_weiherhammer_heat.json"))
    document["alerts"][0]["status"] = "test"
    answer = parsed(dwd, document, 1692705600.0)
    assert (answer.covered, answer.warnings) == (True, ())


def test_control_characters_and_a_huge_event_are_bounded():
    hostile = "Storm\x00\x1b[31m\u200b\nWarning\t" + "x" * 10_000
    for warning in answers_with(
        {"event": hostile, "headline": hostile, "title": hostile, "headline_en": hostile}
    ):
        assert warning.event == "Storm[31m Warning " + "x" * (64 - len("Storm[31m Warning "))
        assert len(warning.event) == 64
        assert len(warning.headline) <= 300
        assert warning.headline.startswith("Storm[31m Warning xxx")


def test_descriptions_keep_line_breaks_and_lose_other_control_characters():
    text = "\r\nline one\x07\r\nline\ttwo\x85" + "y" * 5000
    for warning in answers_with({"description": text, "description_en": text}):
        assert warning.description.startswith("line one\nline two y")
        assert len(warning.description) == 2000


def test_an_event_that_comes_to_nothing_is_unknown():
    for warning in answers_with({"event": "\x00\x01 ", "event_de": None}):
        assert warning.event == "unknown"


def test_brightsky_reads_german_where_english_is_missing():
    alert = brightsky_alert(event_en=None, headline_en=None, headline_de="Amtliche WARNUNG")
    (warning,) = parsed(dwd, {"alerts": [alert], "location": LOCATION}, INSIDE).warnings
    assert (warning.event, warning.headline) == ("WINDBÖEN", "Amtliche WARNUNG")


ODD_VALUES = [None, 0, -1.5, True, [], {}, ["a"], {"a": 1}, "", "x" * 100_000, "\x00" * 50]


@pytest.mark.parametrize("value", ODD_VALUES, ids=range(len(ODD_VALUES)))
def test_any_value_in_any_field_never_raises(value):
    """Every field a parser reads, set to each odd value: always an answer, texts bounded."""
    nws_fields = [*nws_feature()["properties"], "effective", "expires", "description"]
    nws_fields.append("instruction")
    met_fields = [*metalerts_feature()["properties"], "status", "description", "instruction"]
    dwd_fields = [*brightsky_alert(), "status", "effective", "headline_en", "description_de"]
    documents = []
    for field in nws_fields:
        documents.append((nws, {"features": [nws_feature(**{field: value})]}))
    for field in met_fields:
        documents.append((met_norway, {"features": [metalerts_feature(**{field: value})]}))
    documents.append((met_norway, {"features": [{"properties": {}, "when": value}]}))
    documents.append((met_norway, {"features": [{"properties": {}, "when": {"interval": value}}]}))
    for field in dwd_fields:
        documents.append((dwd, {"alerts": [brightsky_alert(**{field: value})], "location": {}}))
    for module, document in documents:
        answer = parsed(module, document, INSIDE)
        for warning in answer.warnings:
            assert len(warning.event) <= 64 and warning.event
            assert len(warning.headline) <= 300 and len(warning.description) <= 2000
            assert warning.severity in SEVERITY_LEVELS
            assert warning.urgency in URGENCIES and warning.certainty in CERTAINTIES
        assert all(len(note) <= 200 for note in answer.notes)


def test_many_warnings_and_notes_are_bounded_and_counted():
    features = [nws_feature()] * (MOST_WARNINGS + 5) + [{"properties": None}] * 20
    answer = parsed(nws, {"features": features}, INSIDE)
    assert len(answer.warnings) == MOST_WARNINGS
    assert len(answer.notes) == MOST_NOTES
    assert answer.notes[-1] == "and 12 more notes"  # 20 skipped + 1 cut, less 9 shown


# The value itself


def test_state_at_its_boundaries():
    warning = WeatherWarning("nws", "Gale Warning", "severe", "expected", "likely", 100.0, 200.0)
    assert [warning.state_at(now) for now in (99.0, 100.0, 199.9, 200.0)] == [
        "upcoming",
        "in_effect",
        "in_effect",
        None,
    ]
    endless = WeatherWarning("dwd", "frost", "minor", "future", "likely", None, None)
    assert endless.state_at(0.0) == endless.state_at(4e9) == "in_effect"


def test_cap_word_and_label_text():
    assert cap_word("Severe", SEVERITY_LEVELS) == "severe"
    assert cap_word(None, URGENCIES) == "unknown"
    assert cap_word(["Likely"], CERTAINTIES) == "unknown"
    assert cap_word("Probable", CERTAINTIES) == "unknown"
    assert label_text("  Flood \n\n Watch\u0000 ", 64) == "Flood Watch"
    assert label_text("Flood Watch", 6) == "Flood"  # cut, then no trailing space
    assert label_text(42) == ""
    assert prose(" a\r\n\x1bb \n") == "a\nb"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-07-18T12:47:00-07:00", 1721332020.0),
        ("2024-03-05T14:08:36+00:00", 1709647716.0),
        ("2024-03-05T14:08:36Z", 1709647716.0),
        ("2024-03-05T16:08:36.5+02:00", 1709647716.5),
        ("2024-03-05T14:08:36", None),
        ("2024-03-05", None),
        ("2024-02-30T00:00:00Z", None),
        ("2024-07-18T10:00:00+25:00", None),
        ("yesterday", None),
        (1709647716, None),
    ],
)
def test_instant_reads_offsets_and_fractions_and_nothing_without_an_offset(text, seconds):
    assert instant(text) == seconds


def test_to_document_and_back_is_exact_through_json():
    answers = [
        parsed(nws, recorded("nws_alerts_nwsalerts_phoenix.json"), 1721332020.0),
        parsed(met_norway, recorded("metalerts_wictk_maloy_fedje.json"), 1749062288.0),
        parsed(dwd, {"alerts": [brightsky_alert(onset="bad")], "location": LOCATION}, INSIDE),
        WarningsAnswer(covered=False, warnings=(), source=""),
    ]
    assert answers[2].notes  # a note travels too
    for answer in answers:
        document = json.loads(json.dumps(answer.to_document()))
        assert WarningsAnswer.from_document(document) == answer


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(version=0),
        lambda d: d.update(covered="yes"),
        lambda d: d.update(warnings={}),
        lambda d: d["warnings"][0].update(onset="2024-07-18T10:00:00Z"),
        lambda d: d["warnings"][0].update(ends=float("inf")),
        lambda d: d["warnings"].append(["not", "a", "warning"]),
        lambda d: d.clear(),
    ],
)
def test_a_damaged_document_is_refused(damage):
    document = parsed(nws, {"features": [nws_feature()]}, INSIDE).to_document()
    damage(document)
    with pytest.raises(ValueError):
        WarningsAnswer.from_document(document)


def test_a_document_is_bounded_again_when_read():
    document = parsed(nws, {"features": [nws_feature()]}, INSIDE).to_document()
    document["warnings"][0].update(event="E" * 500, severity="Apocalyptic")
    (warning,) = WarningsAnswer.from_document(document).warnings
    assert (len(warning.event), warning.severity) == (64, "unknown")
