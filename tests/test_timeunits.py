"""SPEC §1 and §7: Elasticsearch time values and API key expiration dates."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.exceptions import ValidationError
from apikeys.timeunits import LATEST_EXPIRATION, expiration_from, format_time_value, parse_time_value

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
UNITS = ["d", "h", "m", "s", "ms", "micros", "nanos"]


def refusal(text, name="expiration") -> str:
    with pytest.raises(ValidationError) as caught:
        parse_time_value(text, name)
    return caught.value.reason


@pytest.fixture
def no_max_expiration(settings):
    settings.API_KEY_MAX_EXPIRATION = None
    return settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("30s", timedelta(seconds=30)),
        ("1ms", timedelta(milliseconds=1)),
        ("1500ms", timedelta(seconds=1.5)),
        ("1000micros", timedelta(milliseconds=1)),
        ("2500micros", timedelta(microseconds=2500)),
        ("1000000nanos", timedelta(milliseconds=1)),
        ("007d", timedelta(days=7)),
        ("999999999d", timedelta(days=999_999_999)),
    ],
)
def test_time_value_is_a_positive_integer_followed_by_an_elasticsearch_unit(text, expected):
    assert parse_time_value(text) == expected


def test_nanoseconds_below_a_microsecond_are_dropped():
    assert parse_time_value("1000000999nanos") == timedelta(seconds=1)


@pytest.mark.parametrize("text", ["0d", "0ms", "0nanos", "000h", "-1d", "-0d", "-500micros"])
def test_zero_or_negative_time_value_is_refused_as_not_positive(text):
    assert refusal(text) == f"expiration must be positive, got [{text}]"


@pytest.mark.parametrize("text", ["500micros", "999micros", "999999nanos", "1nanos"])
def test_time_value_shorter_than_one_millisecond_is_refused(text):
    assert refusal(text) == f"expiration must be at least 1ms, got [{text}]"


@pytest.mark.parametrize(
    "text",
    [
        *["1w", "1y", "1min", "1sec", "1M", "1D", "1H", "1MS"],  # unknown units, or not lower case
        *["", "abc", "d", "1", "7", "1d1d", "1dd"],  # missing number or unit, or more than one
        *["1.5d", "1,5d", "1e3d", "+1d", "0x10d", "1_000d"],  # not a plain integer
        *[" 1d", "1d ", "1 d", "1d\n", "\t1d"],  # whitespace is not stripped
        *["１d", "1٣d", "٣d"],  # non-ASCII digits
    ],
)
def test_malformed_time_value_is_refused_naming_it_and_listing_the_units(text):
    reason = refusal(text)
    assert f"[{text}]" in reason
    assert "[d, h, m, s, ms, micros, nanos]" in reason


@pytest.mark.parametrize("value", [None, 7, 7.0, True, ["7d"], {"value": "7d"}, b"7d"])
def test_time_value_that_is_not_a_string_is_refused(value):
    assert f"[{value}]" in refusal(value)


@pytest.mark.parametrize("text", ["1000000000d", "9" * 20 + "d", "9" * 30 + "nanos", "9" * 5000 + "d"])
def test_time_value_too_large_for_a_duration_is_refused_without_overflow(text):
    assert "is too large" in refusal(text)


def test_huge_value_is_cut_short_in_the_message():
    assert len(refusal("9" * 5000 + "d")) < 200
    assert len(refusal("x" * 5000)) < 300


def test_leading_zeros_do_not_count_towards_the_length_bound():
    assert parse_time_value("0" * 100 + "7d") == timedelta(days=7)


def test_messages_name_the_field_being_parsed():
    assert refusal("0d", name="retention_period") == "retention_period must be positive, got [0d]"


@given(st.text())
@hypothesis_settings(max_examples=200)
def test_arbitrary_text_is_a_validation_error_or_a_duration_of_at_least_one_millisecond(text):
    try:
        value = parse_time_value(text)
    except ValidationError:
        return
    assert value >= timedelta(milliseconds=1)


@given(st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from(UNITS))
@hypothesis_settings(max_examples=200)
def test_any_integer_with_a_unit_is_a_validation_error_or_a_positive_duration(number, unit):
    try:
        value = parse_time_value(f"{number}{unit}")
    except ValidationError:
        return
    assert number > 0
    assert value >= timedelta(milliseconds=1)


def test_absent_expiration_means_the_key_never_expires(no_max_expiration):
    assert expiration_from(None, NOW) is None


def test_absent_max_expiration_setting_means_no_limit(settings):
    del settings.API_KEY_MAX_EXPIRATION
    assert expiration_from(None, NOW) is None
    assert expiration_from("3650d", NOW) == NOW + timedelta(days=3650)


def test_expiration_is_added_to_now(no_max_expiration):
    assert expiration_from("7d", NOW) == NOW + timedelta(days=7)
    assert expiration_from("1ms", NOW) == NOW + timedelta(milliseconds=1)


def test_expiration_is_validated_like_any_time_value(no_max_expiration):
    with pytest.raises(ValidationError, match=r"must be positive, got \[0d\]"):
        expiration_from("0d", NOW)


def test_absent_expiration_is_refused_when_a_maximum_lifetime_is_set(settings):
    settings.API_KEY_MAX_EXPIRATION = "365d"
    with pytest.raises(ValidationError) as caught:
        expiration_from(None, NOW)
    assert caught.value.reason == (
        "API keys must expire: the maximum lifetime is [365d]; give an expiration of at most [365d]"
    )


def test_expiration_up_to_the_maximum_lifetime_is_accepted(settings):
    settings.API_KEY_MAX_EXPIRATION = "365d"
    assert expiration_from("365d", NOW) == NOW + timedelta(days=365)
    assert expiration_from("8760h", NOW) == NOW + timedelta(days=365)


def test_expiration_beyond_the_maximum_lifetime_is_refused(settings):
    settings.API_KEY_MAX_EXPIRATION = "365d"
    with pytest.raises(ValidationError) as caught:
        expiration_from("400d", NOW)
    assert caught.value.reason == (
        "expiration [400d] exceeds the maximum allowed lifetime of an API key [365d]"
    )


def test_expiration_one_millisecond_beyond_the_maximum_is_refused(settings):
    settings.API_KEY_MAX_EXPIRATION = "1h"
    with pytest.raises(ValidationError, match="exceeds the maximum"):
        expiration_from("3600001ms", NOW)


@pytest.mark.parametrize("maximum", ["", "0d", "1 year", "365"])
def test_unusable_max_expiration_setting_is_a_configuration_error(settings, maximum):
    settings.API_KEY_MAX_EXPIRATION = maximum
    with pytest.raises(ImproperlyConfigured, match="API_KEY_MAX_EXPIRATION"):
        expiration_from("1d", NOW)


@pytest.mark.parametrize("text", ["2914000d", "999999999d", "86399999999999999999micros"])
def test_expiration_after_the_year_9999_is_refused_without_overflow(no_max_expiration, text):
    with pytest.raises(ValidationError) as caught:
        expiration_from(text, NOW)
    assert caught.value.reason == (
        f"expiration [{text}] is too far in the future: it would end after the year 9999"
    )


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Adak"])
def test_latest_accepted_expiration_still_converts_to_any_time_zone(no_max_expiration, zone):
    micros = (LATEST_EXPIRATION - NOW) // timedelta(microseconds=1)
    expiration = expiration_from(f"{micros}micros", NOW)
    assert expiration == LATEST_EXPIRATION
    assert expiration.astimezone(ZoneInfo(zone)).year == 9999
    with pytest.raises(ValidationError, match="after the year 9999"):
        expiration_from(f"{micros + 1}micros", NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(days=90), "90d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=61), "61s"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(microseconds=2500), "2500micros"),
    ],
)
def test_time_value_is_formatted_in_the_largest_exact_unit(value, expected):
    assert format_time_value(value) == expected
    assert parse_time_value(expected) == value
