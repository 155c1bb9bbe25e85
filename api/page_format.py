"""How the donor pages write amounts and times: ``¥1,234.50``, ``$12.00``,
``¥500`` for yen, ``2026-11-29 08:30 UTC``.  Amounts stay integers until
:func:`ledger.charity.money.format_amount` spells them; this only groups the
digits and adds the currency's sign."""

from __future__ import annotations

from ledger.charity.money import format_amount

SYMBOLS = {
    "CNY": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "MOP": "MOP$", "TWD": "NT$",
    "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "SGD": "S$", "KRW": "₩", "INR": "₹", "VND": "₫", "THB": "฿",
}


def money(minor: int, currency: str) -> str:
    """Minor units as a person reads them: sign, symbol, grouped digits, the currency's decimals."""
    text = format_amount(minor, currency)
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    grouped = f"{int(whole):,}"
    symbol = SYMBOLS.get(currency)
    number = grouped + (f".{frac}" if frac else "")
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"


def when(rfc3339: str | None) -> str:
    """An entry's RFC 3339 UTC time (``2026-11-29T08:30:00.000Z``) to the minute."""
    if not rfc3339:
        return ""
    return f"{rfc3339[:10]} {rfc3339[11:16]} UTC"
