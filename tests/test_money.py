"""Money: ISO 4217 exponents, decimal strings at the edges, integer minor units inside."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.charity.money import CURRENCIES, MAX_MINOR, check_minor, exponent, format_amount, parse_amount

SOME = ["CNY", "USD", "JPY", "KRW", "BHD", "KWD", "EUR"]


# -- exponents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "exp"),
    [("CNY", 2), ("USD", 2), ("HKD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("VND", 0), ("BHD", 3), ("KWD", 3)],
)
def test_iso_4217_exponents(currency, exp):
    assert exponent(currency) == exp
    assert CURRENCIES[currency] == exp


@pytest.mark.parametrize("currency", ["XXX", "cny", "Cny", "", " CNY", "CNY ", "RMB", "XBT", None, 156, b"CNY"])
def test_unknown_currency_refused_everywhere(currency):
    with pytest.raises(InvalidInput, match="ISO 4217"):
        exponent(currency)
    with pytest.raises(InvalidInput, match="ISO 4217"):
        parse_amount("1.00", currency)
    with pytest.raises(InvalidInput, match="ISO 4217"):
        format_amount(100, currency)
    with pytest.raises(InvalidInput, match="ISO 4217"):
        check_minor(100, currency)


# -- parse and format -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.30", "CNY", 1230),
        ("12.3", "CNY", 1230),
        ("12", "CNY", 1200),
        ("0.01", "CNY", 1),
        ("0.1", "USD", 10),
        ("500", "JPY", 500),
        ("1", "JPY", 1),
        ("1.234", "BHD", 1234),
        ("0.001", "BHD", 1),
        ("7.5", "KWD", 7500),
        ("10000000000000", "CNY", MAX_MINOR),
        ("10000000000000.00", "CNY", MAX_MINOR),
        ("1000000000000000", "JPY", MAX_MINOR),
        ("1000000000000.000", "BHD", MAX_MINOR),
    ],
)
def test_parse_amount(text, currency, minor):
    assert parse_amount(text, currency) == minor
    assert type(parse_amount(text, currency)) is int


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1230, "CNY", "12.30"),
        (1, "CNY", "0.01"),
        (100, "USD", "1.00"),
        (500, "JPY", "500"),
        (1234, "BHD", "1.234"),
        (5, "BHD", "0.005"),
        (0, "CNY", "0.00"),
        (-150, "CNY", "-1.50"),
        (-7, "JPY", "-7"),
        (MAX_MINOR, "CNY", "10000000000000.00"),
    ],
)
def test_format_amount(minor, currency, text):
    assert format_amount(minor, currency) == text


@pytest.mark.parametrize("minor", [1.0, 1.5, "100", True, None, Decimal("1")])
def test_format_amount_refuses_non_integers(minor):
    with pytest.raises(InvalidInput):
        format_amount(minor, "CNY")


@settings(max_examples=300, deadline=None)
@given(currency=st.sampled_from(SOME), minor=st.integers(1, MAX_MINOR))
def test_format_then_parse_round_trips(currency, minor):
    text = format_amount(minor, currency)
    exp = CURRENCIES[currency]
    if exp:
        whole, frac = text.split(".")
        assert len(frac) == exp
    else:
        assert "." not in text
    assert parse_amount(text, currency) == minor


@settings(max_examples=300, deadline=None)
@given(
    currency=st.sampled_from(SOME),
    whole=st.integers(0, 10**11),  # below MAX_MINOR even for 3-decimal currencies
    frac=st.text(alphabet="0123456789", max_size=3),
)
def test_parse_then_format_round_trips(currency, whole, frac):
    exp = CURRENCIES[currency]
    frac = frac[:exp]
    text = f"{whole}.{frac}" if frac else str(whole)
    expected = whole * 10**exp + int(frac.ljust(exp, "0") or "0")
    if expected == 0:
        with pytest.raises(InvalidInput, match="positive"):
            parse_amount(text, currency)
        return
    minor = parse_amount(text, currency)
    assert minor == expected
    # formatting gives the canonical spelling: exactly the currency's decimals
    canonical = f"{whole}.{frac.ljust(exp, '0')}" if exp else str(whole)
    assert format_amount(minor, currency) == canonical
    assert parse_amount(format_amount(minor, currency), currency) == minor


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [1.5, 1.0, float("nan"), float("inf"), 100, 1, 0, True, None, Decimal("1.00"), b"1.00", ["1.00"]],
    ids=repr,
)
def test_parse_amount_wants_a_decimal_string(value):
    with pytest.raises(InvalidInput, match="decimal string"):
        parse_amount(value, "CNY")


@pytest.mark.parametrize(
    ("text", "currency", "why"),
    [
        ("-1.00", "CNY", "plain positive decimal"),
        ("-0.01", "CNY", "plain positive decimal"),
        ("0", "CNY", "positive"),
        ("0.00", "CNY", "positive"),
        ("0.0", "USD", "positive"),
        ("0", "JPY", "positive"),
        ("0.000", "BHD", "positive"),
        ("1.234", "CNY", "more than 2 decimal places"),
        ("1.230", "CNY", "more than 2 decimal places"),
        ("1.5", "JPY", "more than 0 decimal places"),
        ("1.0", "JPY", "more than 0 decimal places"),
        ("1.2345", "BHD", "more than 3 decimal places"),
        ("1e3", "CNY", "plain positive decimal"),
        ("1E3", "CNY", "plain positive decimal"),
        ("1.5e2", "CNY", "plain positive decimal"),
        ("1,000.00", "CNY", "plain positive decimal"),
        ("1.000,00", "EUR", "plain positive decimal"),
        ("1 000.00", "CNY", "plain positive decimal"),
        ("1_000.00", "CNY", "plain positive decimal"),
        (" 1.00", "CNY", "plain positive decimal"),
        ("1.00 ", "CNY", "plain positive decimal"),
        ("1.00\n", "CNY", "plain positive decimal"),
        ("+1.00", "CNY", "plain positive decimal"),
        ("01.00", "CNY", "plain positive decimal"),
        ("00", "JPY", "plain positive decimal"),
        (".5", "CNY", "plain positive decimal"),
        ("1.", "CNY", "plain positive decimal"),
        ("", "CNY", "plain positive decimal"),
        ("NaN", "CNY", "plain positive decimal"),
        ("Infinity", "CNY", "plain positive decimal"),
        ("0x10", "CNY", "plain positive decimal"),
        ("¥1.00", "CNY", "plain positive decimal"),
        ("１.００", "CNY", "plain positive decimal"),  # fullwidth digits
        ("١٢", "JPY", "plain positive decimal"),  # Arabic-Indic digits
    ],
)
def test_parse_amount_refusals(text, currency, why):
    with pytest.raises(InvalidInput, match=why):
        parse_amount(text, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("10000000000000.01", "CNY"),
        ("10000000000001", "CNY"),
        ("1000000000000001", "JPY"),
        ("1000000000000.001", "BHD"),
        ("99999999999999999", "CNY"),
        ("9" * 19, "JPY"),
        ("9" * 5000, "CNY"),
    ],
)
def test_parse_amount_above_max_refused(text, currency):
    with pytest.raises(InvalidInput, match="maximum"):
        parse_amount(text, currency)


def test_parse_amount_error_names_the_field():
    with pytest.raises(InvalidInput, match="^target '1.234'"):
        parse_amount("1.234", "CNY", "target")


# -- check_minor ------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [1, 2, 12_30, MAX_MINOR])
def test_check_minor_accepts_positive_ints(amount):
    assert check_minor(amount, "CNY") == amount


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        (True, "integer number of minor units, not bool"),
        (False, "integer number of minor units, not bool"),
        (1.0, "integer number of minor units, not float"),
        (float("nan"), "integer number of minor units, not float"),
        ("1", "integer number of minor units, not str"),
        (None, "integer number of minor units, not NoneType"),
        (Decimal("1"), "integer number of minor units, not Decimal"),
        (0, "positive"),
        (-1, "positive"),
        (MAX_MINOR + 1, "maximum of 10000000000000.00 CNY"),
    ],
    ids=repr,
)
def test_check_minor_refusals(amount, why):
    with pytest.raises(InvalidInput, match=why):
        check_minor(amount, "CNY")


def test_check_minor_refuses_an_int_subclass():
    class Minor(int):
        pass

    with pytest.raises(InvalidInput, match="not Minor"):
        check_minor(Minor(5), "CNY")


def test_invalid_input_is_422():
    with pytest.raises(InvalidInput) as info:
        parse_amount("1.5", "JPY")
    assert info.value.status == 422
    assert info.value.problem()["type"] == "/problems/invalid-input"
