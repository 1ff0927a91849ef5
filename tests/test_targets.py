"""Target parsing: every form the spec names, and every malformed case a 400."""

import pytest

from multitarget_exporter.model.targets import (
    MAX_TARGET_LENGTH,
    CityId,
    Coordinates,
    PlaceName,
    PostalCode,
    TargetError,
    parse_target,
)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("London", PlaceName("London")),
        ("London,GB", PlaceName("London", country="GB")),
        ("Springfield,IL,US", PlaceName("Springfield", state="IL", country="US")),
        ("  Springfield , IL , US ", PlaceName("Springfield", state="IL", country="US")),
        ("São Paulo,BR", PlaceName("São Paulo", country="BR")),
        ("Zürich", PlaceName("Zürich")),
        ("北京", PlaceName("北京")),
        ("St. John's,CA", PlaceName("St. John's", country="CA")),
        ("Rio de Janeiro", PlaceName("Rio de Janeiro")),
        ("id:2643743", CityId(2643743)),
        ("ID: 2643743", CityId(2643743)),
        ("51.5085,-0.1257", Coordinates(51.5085, -0.1257)),
        ("51.5085, -0.1257", Coordinates(51.5085, -0.1257)),
        ("-90,180", Coordinates(-90.0, 180.0)),
        ("+90,-180", Coordinates(90.0, -180.0)),
        ("0,0", Coordinates(0.0, 0.0)),
        ("zip:94040,US", PostalCode("94040", "US")),
        ("zip:94040", PostalCode("94040", None)),
        ("zip:E14,gb", PostalCode("E14", "GB")),
        ("zip:SW1A 1AA,GB", PostalCode("SW1A 1AA", "GB")),
    ],
)
def test_valid_targets(target, expected):
    assert parse_target(target) == expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (None, "missing or empty"),
        ("", "missing or empty"),
        ("   ", "missing or empty"),
        ("x" * (MAX_TARGET_LENGTH + 1), "longer than 256"),
        ("Lon\ndon", "control characters"),
        ("London\x00", "control characters"),
        ("London\x7f", "control characters"),
        ("London\u0085", "control characters"),
        ("\tLondon", "control characters"),
        ("91,0", "latitude"),
        ("-90.0001,0", "latitude"),
        ("0,180.5", "longitude"),
        ("45,-181", "longitude"),
        ("id:", "numeric city id"),
        ("id:abc", "numeric city id"),
        ("id:-5", "numeric city id"),
        ("id:1234567890123", "numeric city id"),
        ("zip:", "postal code"),
        ("zip:!!!,US", "postal code"),
        ("zip:94040,USA", "two-letter country"),
        ("zip:12345678901234567890", "postal code"),
        ("London,", "empty parts"),
        (",GB", "empty parts"),
        ("a,b,c,d", "at most three parts"),
        ("http://evil.example/", "unknown target prefix"),
        ("file:/etc/passwd", "unknown target prefix"),
    ],
)
def test_malformed_targets(target, message):
    with pytest.raises(TargetError, match=message):
        parse_target(target)


def test_longest_allowed_target_is_accepted():
    assert parse_target("x" * MAX_TARGET_LENGTH) == PlaceName("x" * MAX_TARGET_LENGTH)


def test_keys_identify_a_place_whatever_its_spelling():
    assert parse_target("london,gb").key == parse_target(" London , GB ").key
    assert parse_target("51.50850,-0.12570").key == parse_target("51.5085,-0.1257").key
    assert parse_target("London,GB").key != parse_target("London,CA").key


@pytest.mark.parametrize("target", ["nan,nan", "inf,0", "-Infinity, 3", "0,NaN"])
def test_coordinates_that_are_not_finite_are_refused(target):
    with pytest.raises(TargetError, match="finite"):
        parse_target(target)


def test_a_target_that_was_not_utf8_is_refused():
    # werkzeug decodes %ff%fe to replacement characters
    with pytest.raises(TargetError, match="UTF-8"):
        parse_target("\ufffd\ufffd")
    with pytest.raises(TargetError, match="UTF-8"):
        parse_target("%FF%FE")  # as werkzeug leaves what it cannot decode
    assert parse_target("Nancy,FR") and parse_target("Infiesto,ES")
