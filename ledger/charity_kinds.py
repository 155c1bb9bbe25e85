"""The charity entry kinds and the static rules for their bodies.

Static means: checkable from the entry alone (shapes, money, postings).  Rules
that need the log so far (does the project exist, is the balance enough, did a
threshold of the charity's keys sign) live in :mod:`ledger.books`.
``docs/entries.md`` shows each kind with an example.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable

from .canonical import unchecked_bytes
from .clock import check_time
from .errors import InvalidEntry, MalformedNote
from .kinds import kind
from .money import CURRENCIES, MAX_MINOR
from .note import Verifier

MAX_KEYS = 16
MAX_LINES = 200
MAX_EVIDENCE = 100
CHANNELS = ("wechat", "alipay", "unionpay", "bank_transfer", "card", "cash", "other")
DISBURSEMENT = "disbursement"
KEYS_ROTATED = "charity.keys_rotated"

_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_B64SIG = re.compile(r"[A-Za-z0-9+/]{86}==")

Check = Callable[[object, str], None]


def _fail(path: str, why: str):
    raise InvalidEntry(f"{path}: {why}")


def fields(obj, path: str, required: dict[str, Check], optional: dict[str, Check] | None = None) -> None:
    """Check an object member by member; refuse unknown and missing members."""
    optional = optional or {}
    if type(obj) is not dict:
        _fail(path, "must be an object")
    unknown = set(obj) - set(required) - set(optional)
    if unknown:
        _fail(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    for name, check in required.items():
        if name not in obj:
            _fail(path, f"missing field {name}")
        check(obj[name], f"{path}.{name}")
    for name, check in optional.items():
        if name in obj:
            check(obj[name], f"{path}.{name}")


def ident(value, path):
    if type(value) is not str or not _ID.fullmatch(value):
        _fail(path, "must be an id of 1-64 lowercase letters, digits and inner hyphens")


def hex64(value, path):
    if type(value) is not str or not _HEX64.fullmatch(value):
        _fail(path, "must be 64 lowercase hex digits")


def text(limit: int) -> Check:
    def check(value, path):
        if type(value) is not str or not value.strip() or len(value) > limit:
            _fail(path, f"must be non-empty text of at most {limit} characters")

    return check


def date(value, path):
    if type(value) is not str or not _DATE.fullmatch(value):
        _fail(path, "must be a date YYYY-MM-DD")
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        _fail(path, f"{value} is not a real date")


def period(value, path):
    fields(value, path, {"start": date, "end": date})
    if value["start"] > value["end"]:
        _fail(path, "start is after end")


def currency(value, path):
    if type(value) is not str or value not in CURRENCIES:
        _fail(path, "must be an ISO 4217 currency code we accept")


def minor(value, path):
    if type(value) is not int or not 0 < value <= MAX_MINOR:
        _fail(path, f"must be a positive integer number of minor units, at most {MAX_MINOR}")


def token(value, path):
    if type(value) is not str or not _TOKEN.fullmatch(value):
        _fail(path, "must be 8-128 characters of letters, digits and . _ : -")


def timestamp(value, path):
    try:
        check_time(value)
    except InvalidEntry as exc:
        _fail(path, exc.detail)


def verifier_key(value, path):
    try:
        Verifier.from_string(value)
    except MalformedNote as exc:
        _fail(path, exc.detail)


def key_list(value, path):
    if type(value) is not list or not 1 <= len(value) <= MAX_KEYS:
        _fail(path, f"must list 1 to {MAX_KEYS} verifier keys")
    for i, key in enumerate(value):
        verifier_key(key, f"{path}[{i}]")
    public = [Verifier.from_string(k).public_key for k in value]
    if len(set(public)) != len(public):
        _fail(path, "lists the same key twice")


def keyset(body, path):
    """keys and threshold: m-of-n with 1 <= m <= n."""
    t = body["threshold"]
    if type(t) is not int or not 1 <= t <= len(body["keys"]):
        _fail(f"{path}.threshold", f"must be an integer from 1 to the number of keys ({len(body['keys'])})")


def signatures(value, path):
    if type(value) is not list or not 1 <= len(value) <= MAX_KEYS:
        _fail(path, f"must list 1 to {MAX_KEYS} signatures")
    for i, sig in enumerate(value):
        fields(sig, f"{path}[{i}]", {"key": verifier_key, "signature": _signature})


def _signature(value, path):
    if type(value) is not str or not _B64SIG.fullmatch(value):
        _fail(path, "must be a base64 Ed25519 signature (64 bytes)")


def _literal(expected: str) -> Check:
    def check(value, path):
        if value != expected:
            _fail(path, f"must be {expected!r}")

    return check


def _list_of(check_item: Check, lo: int, hi: int) -> Check:
    def check(value, path):
        if type(value) is not list or not lo <= len(value) <= hi:
            _fail(path, f"must list {lo} to {hi} items")
        for i, item in enumerate(value):
            check_item(item, f"{path}[{i}]")

    return check


# -- postings: double entry, derived from the body ------------------------------------


def postings_for(kind_name: str, body: dict) -> list[dict]:
    """The balanced postings an entry must carry; a reversal swaps the accounts."""
    if kind_name == "donation":
        source, target = "donors", f"project:{body['project']}"
        amount, cur = body["amount"], body["currency"]
    elif kind_name == "disbursement":
        p = body["payload"]
        source, target = f"project:{p['project']}", "payees"
        amount, cur = p["amount"], p["currency"]
    elif kind_name == "refund":
        source, target = f"project:{body['project']}", "donors"
        amount, cur = body["amount"], body["currency"]
    else:
        return []
    return [
        {"account": source, "currency": cur, "amount": -amount},
        {"account": target, "currency": cur, "amount": amount},
    ]


def _check_postings(kind_name: str, body: dict) -> None:
    want = postings_for(kind_name, body)
    # Compared as JSON text, so that true is not 1; the whole body's canonical
    # check (which also walks the postings) comes after the kind's rules.
    try:
        same = unchecked_bytes(body["postings"]) == unchecked_bytes(want)
    except (TypeError, ValueError):  # not JSON at all (an object, NaN ...)
        same = False
    if not same:
        _fail("$.postings", f"must be exactly {want}")
    totals: dict[str, int] = {}
    for p in body["postings"]:
        totals[p["currency"]] = totals.get(p["currency"], 0) + p["amount"]
    if any(totals.values()):  # pragma: no cover - postings_for always balances
        _fail("$.postings", "do not balance per currency")


def _postings_shape(value, path):
    if type(value) is not list:
        _fail(path, "must be a list of postings")


# -- the kinds ------------------------------------------------------------------------


@kind("charity.registered")
def _charity_registered(body: dict) -> None:
    fields(body, "$", {"charity": ident, "name": text(200), "keys": key_list, "threshold": lambda v, p: None})
    keyset(body, "$")


def rotation_payload(value, path="$.payload"):
    fields(
        value,
        path,
        {
            "action": _literal(KEYS_ROTATED),
            "charity": ident,
            "keys": key_list,
            "threshold": lambda v, p: None,
            "nonce": token,
            "signed_at": timestamp,
        },
    )
    keyset(value, path)


@kind(KEYS_ROTATED)
def _keys_rotated(body: dict) -> None:
    fields(body, "$", {"payload": rotation_payload, "signatures": signatures})


@kind("project.opened")
def _project_opened(body: dict) -> None:
    fields(
        body,
        "$",
        {"project": ident, "charity": ident, "title": text(200), "purpose": text(2000), "currency": currency},
        {"target": minor, "period": period},
    )


@kind("donation")
def _donation(body: dict) -> None:
    fields(
        body,
        "$",
        {
            "project": ident,
            "amount": minor,
            "currency": currency,
            "channel": _one_of(CHANNELS),
            "payment_ref_hash": hex64,
            "donor_commitment": hex64,
            "value_date": date,
            "intake_key": token,
            "postings": _postings_shape,
        },
    )
    _check_postings("donation", body)


def _one_of(options) -> Check:
    def check(value, path):
        if value not in options:
            _fail(path, f"must be one of {', '.join(options)}")

    return check


def _line(value, path):
    fields(value, path, {"description": text(500), "amount": minor})


def _evidence(value, path):
    fields(value, path, {"sha256": hex64, "description": text(500)})


def disbursement_payload(value, path="$.payload"):
    fields(
        value,
        path,
        {
            "action": _literal(DISBURSEMENT),
            "charity": ident,
            "project": ident,
            "amount": minor,
            "currency": currency,
            "payee": lambda v, p: fields(v, p, {"name": text(200)}),
            "purpose": text(2000),
            "period": period,
            "lines": _list_of(_line, 1, MAX_LINES),
            "evidence": _list_of(_evidence, 0, MAX_EVIDENCE),
            "nonce": token,
            "signed_at": timestamp,
        },
    )
    if sum(line["amount"] for line in value["lines"]) != value["amount"]:
        _fail(f"{path}.lines", "do not sum to the amount")


@kind(DISBURSEMENT)
def _disbursement(body: dict) -> None:
    fields(body, "$", {"payload": disbursement_payload, "signatures": signatures, "postings": _postings_shape})
    _check_postings("disbursement", body)


@kind("refund")
def _refund(body: dict) -> None:
    fields(
        body,
        "$",
        {
            "donation": hex64,
            "project": ident,
            "amount": minor,
            "currency": currency,
            "reason": text(2000),
            "postings": _postings_shape,
        },
    )
    _check_postings("refund", body)


@kind("project.closed")
def _project_closed(body: dict) -> None:
    fields(body, "$", {"project": ident, "reason": text(2000)})
