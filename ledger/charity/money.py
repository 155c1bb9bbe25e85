"""Money: ISO 4217 currencies, integer minor units inside, decimal strings at the edges.

Never a float.  ``parse_amount("12.30", "CNY") == 1230`` and
``format_amount(1230, "CNY") == "12.30"``; JPY has no minor unit, so
``parse_amount("500", "JPY") == 500``.
"""

from __future__ import annotations

import re

from ..errors import InvalidInput

# ISO 4217 alphabetic code -> minor-unit exponent, for the currencies we accept.
CURRENCIES: dict[str, int] = {
    "CNY": 2,
    "HKD": 2,
    "MOP": 2,
    "TWD": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "SGD": 2,
    "MYR": 2,
    "THB": 2,
    "INR": 2,
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
}
# A sane ceiling for one amount: 10^15 minor units (10 trillion yuan), well
# inside the 2^53 integers that RFC 8785 and every JSON reader keep exactly.
MAX_MINOR = 10**15

# A plain positive decimal: the one spelling of an amount at the edges (the HTTP schemas use it too).
DECIMAL_PATTERN = r"(0|[1-9][0-9]*)(?:\.([0-9]+))?"
_DECIMAL = re.compile(DECIMAL_PATTERN)


def exponent(currency) -> int:
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise InvalidInput(f"currency {currency!r} is not an ISO 4217 code we accept")
    return CURRENCIES[currency]


def check_minor(amount, currency: str, what: str = "amount") -> int:
    """An amount already in minor units: a positive integer no larger than MAX_MINOR."""
    exponent(currency)
    if type(amount) is not int:
        raise InvalidInput(f"{what} must be an integer number of minor units, not {type(amount).__name__}")
    if amount <= 0:
        raise InvalidInput(f"{what} must be positive")
    if amount > MAX_MINOR:
        raise InvalidInput(f"{what} is above the maximum of {format_amount(MAX_MINOR, currency)} {currency}")
    return amount


def parse_amount(text, currency: str, what: str = "amount") -> int:
    """A decimal string such as ``"12.30"`` to minor units; refuse anything else."""
    exp = exponent(currency)
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a decimal string such as \"12.30\", not {type(text).__name__}")
    m = _DECIMAL.fullmatch(text)
    if not m:
        raise InvalidInput(f"{what} {text!r} is not a plain positive decimal such as \"12.30\"")
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > exp:
        raise InvalidInput(f"{what} {text!r} has more than {exp} decimal places for {currency}")
    if len(whole) > 18:
        raise InvalidInput(f"{what} {text!r} is above the maximum")
    return check_minor(int(whole) * 10**exp + int(frac.ljust(exp, "0") or "0"), currency, what)


def format_amount(minor: int, currency: str) -> str:
    """Minor units to a decimal string with exactly the currency's decimals."""
    exp = exponent(currency)
    if type(minor) is not int:
        raise InvalidInput("an amount in minor units must be an integer")
    sign = "-" if minor < 0 else ""
    q, r = divmod(abs(minor), 10**exp)
    return f"{sign}{q}.{r:0{exp}d}" if exp else f"{sign}{q}"
