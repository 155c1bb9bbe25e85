"""The charity entry kinds, the static rules for their bodies, and the log's :func:`registry`.

Static means: checkable from the entry alone (shapes, money, postings).  Rules
that need the log so far (does the project exist, is the balance enough, did a
threshold of the charity's keys sign) live in :mod:`ledger.charity.books`.
``docs/entries.md`` shows each kind with an example.
"""

from __future__ import annotations

import re

from ..errors import MalformedNote
from ..log.canonical import unchecked_bytes
from ..log.fields import anything, date, fail, fields, hex64, list_of, literal, one_of, text, timestamp, wrong_type
from ..log.kinds import Registry
from ..log.note import Verifier
from .money import CURRENCIES, MAX_MINOR

MAX_KEYS = 16
MAX_LINES = 200
MAX_EVIDENCE = 100
CHANNELS = ("wechat", "alipay", "unionpay", "bank_transfer", "card", "cash", "other")
DISBURSEMENT = "disbursement"
KEYS_ROTATED = "charity.keys_rotated"
# The log's policy parameters, recorded once (by `luodi init` in a new log), so that an
# auditor replays the rules with the values the operator ran with (docs/entries.md).
POLICY = "policy.recorded"
MAX_WINDOW_SECONDS = 86_400
# The genesis entry of a charity log names its fund-allocation policy (ledger.charity.allocation).
ALLOCATION_POLICY = "fifo"

ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_B64SIG = re.compile(r"[A-Za-z0-9+/]{86}==")


def ident(value, path):
    if type(value) is not str:
        wrong_type(value, path, "an id (a string of 1-64 lowercase letters, digits and inner hyphens)")
    if not ID_PATTERN.fullmatch(value):
        fail(path, "must be an id of 1-64 lowercase letters, digits and inner hyphens")


def period(value, path):
    fields(value, path, {"start": date, "end": date})
    if value["start"] > value["end"]:
        fail(path, "start is after end")


def currency(value, path):
    if type(value) is not str:
        wrong_type(value, path, "an ISO 4217 currency code (a string)")
    if value not in CURRENCIES:
        fail(path, "must be an ISO 4217 currency code we accept")


def minor(value, path):
    if type(value) is not int:
        wrong_type(value, path, "an integer (minor units)")
    if not 0 < value <= MAX_MINOR:
        fail(path, f"must be a positive integer number of minor units, at most {MAX_MINOR}")


def token(value, path):
    if type(value) is not str:
        wrong_type(value, path, "a string of 8-128 letters, digits and . _ : -")
    if not TOKEN_PATTERN.fullmatch(value):
        fail(path, "must be 8-128 characters of letters, digits and . _ : -")


def verifier_key(value, path):
    if type(value) is not str:
        wrong_type(value, path, "a verifier key (a string name+hash+key)")
    try:
        Verifier.from_string(value)
    except MalformedNote as exc:
        fail(path, exc.detail)


def key_list(value, path):
    if type(value) is not list:
        wrong_type(value, path, f"a list of 1 to {MAX_KEYS} verifier keys")
    if not 1 <= len(value) <= MAX_KEYS:
        fail(path, f"must list 1 to {MAX_KEYS} verifier keys")
    for i, key in enumerate(value):
        verifier_key(key, f"{path}[{i}]")
    public = [Verifier.from_string(k).public_key for k in value]
    if len(set(public)) != len(public):
        fail(path, "lists the same key twice")


def keyset(body, path):
    """keys and threshold: m-of-n with 1 <= m <= n."""
    t, what = body["threshold"], f"an integer from 1 to the number of keys ({len(body['keys'])})"
    if type(t) is not int:
        wrong_type(t, f"{path}.threshold", what)
    if not 1 <= t <= len(body["keys"]):
        fail(f"{path}.threshold", f"must be {what}")


def signatures(value, path):
    if type(value) is not list:
        wrong_type(value, path, f"a list of 1 to {MAX_KEYS} signatures")
    if not 1 <= len(value) <= MAX_KEYS:
        fail(path, f"must list 1 to {MAX_KEYS} signatures")
    for i, sig in enumerate(value):
        fields(sig, f"{path}[{i}]", {"key": verifier_key, "signature": _signature})


def _signature(value, path):
    if type(value) is not str:
        wrong_type(value, path, "a base64 Ed25519 signature (a string)")
    if not _B64SIG.fullmatch(value):
        fail(path, "must be a base64 Ed25519 signature (64 bytes)")


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


def _same_postings(value, want: list[dict]) -> bool:
    """``value`` is ``want`` posting for posting, member for member, each of the same
    JSON type (so true is not 1).  ``want`` holds strings and integers only, so
    equal here means equal as JSON text; unequal here may still be equal as text
    (a dict subclass, say), which :func:`_check_postings` then asks the encoder."""
    if type(value) is not list or len(value) != len(want):
        return False
    for got, posting in zip(value, want):
        if type(got) is not dict or got.keys() != posting.keys():
            return False
        for name, expected in posting.items():
            member = got[name]
            if type(member) is not type(expected) or member != expected:
                return False
    return True


def _check_postings(kind_name: str, body: dict) -> None:
    want = postings_for(kind_name, body)
    # Compared as JSON text, so that true is not 1; the whole body's canonical
    # check (which also walks the postings) comes after the kind's rules.  The
    # member-by-member comparison answers the usual case without encoding.
    same = _same_postings(body["postings"], want)
    if not same:
        try:
            same = unchecked_bytes(body["postings"]) == unchecked_bytes(want)
        except (TypeError, ValueError):  # not JSON at all (an object, NaN ...)
            same = False
    if not same:
        fail("$.postings", f"must be exactly {want}")
    totals: dict[str, int] = {}
    for p in body["postings"]:
        totals[p["currency"]] = totals.get(p["currency"], 0) + p["amount"]
    if any(totals.values()):  # pragma: no cover - postings_for always balances
        fail("$.postings", "do not balance per currency")


def _postings_shape(value, path):
    if type(value) is not list:
        fail(path, "must be a list of postings")


# -- the kinds ------------------------------------------------------------------------


def _charity_registered(body: dict) -> None:
    fields(body, "$", {"charity": ident, "name": text(200), "keys": key_list, "threshold": anything})
    keyset(body, "$")


def rotation_payload(value, path="$.payload"):
    fields(
        value,
        path,
        {
            "action": literal(KEYS_ROTATED),
            "charity": ident,
            "keys": key_list,
            "threshold": anything,
            "nonce": token,
            "signed_at": timestamp,
        },
    )
    keyset(value, path)


def _keys_rotated(body: dict) -> None:
    fields(body, "$", {"payload": rotation_payload, "signatures": signatures})


def _project_opened(body: dict) -> None:
    fields(
        body,
        "$",
        {"project": ident, "charity": ident, "title": text(200), "purpose": text(2000), "currency": currency},
        {"target": minor, "period": period},
    )


_DONATION = {  # built once: a donation is the most frequent entry of all
    "project": ident,
    "amount": minor,
    "currency": currency,
    "channel": one_of(CHANNELS),
    "payment_ref_hash": hex64,
    "donor_commitment": hex64,
    "value_date": date,
    "intake_key": token,
    "postings": _postings_shape,
}


def _donation(body: dict) -> None:
    fields(body, "$", _DONATION)
    _check_postings("donation", body)


def donation_bytes(body: dict) -> bytes | None:
    """The canonical bytes of a donation body that :func:`_donation` accepted, written
    out directly (what :func:`ledger.log.canonical.canonical_bytes` gives, without
    walking the body and encoding it again).  Every string such a body holds is
    ASCII that RFC 8785 writes as it is: an id, a channel name, a currency code,
    hex digits, a date, a key of ``[A-Za-z0-9._:-]``, an account ``donors`` or
    ``project:<id>``; and it is far under the body size limit.  None if a member
    is of a subtype of its JSON type (only the canonical check may judge one)."""
    postings = body["postings"]
    if type(body["channel"]) is not str or len(postings) != 2:
        return None
    for p in postings:
        if type(p) is not dict or type(p["account"]) is not str or type(p["currency"]) is not str or type(p["amount"]) is not int:
            return None
    (a0, m0, c0), (a1, m1, c1) = ((p["account"], p["amount"], p["currency"]) for p in postings)
    return (
        f'{{"amount":{body["amount"]},"channel":"{body["channel"]}","currency":"{body["currency"]}",'
        f'"donor_commitment":"{body["donor_commitment"]}","intake_key":"{body["intake_key"]}",'
        f'"payment_ref_hash":"{body["payment_ref_hash"]}","postings":[{{"account":"{a0}","amount":{m0},'
        f'"currency":"{c0}"}},{{"account":"{a1}","amount":{m1},"currency":"{c1}"}}],'
        f'"project":"{body["project"]}","value_date":"{body["value_date"]}"}}'
    ).encode("ascii")


def _line(value, path):
    fields(value, path, {"description": text(500), "amount": minor})


def _evidence(value, path):
    fields(value, path, {"sha256": hex64, "description": text(500)})


def disbursement_payload(value, path="$.payload"):
    fields(
        value,
        path,
        {
            "action": literal(DISBURSEMENT),
            "charity": ident,
            "project": ident,
            "amount": minor,
            "currency": currency,
            "payee": lambda v, p: fields(v, p, {"name": text(200)}),
            "purpose": text(2000),
            "period": period,
            "lines": list_of(_line, 1, MAX_LINES),
            "evidence": list_of(_evidence, 0, MAX_EVIDENCE),
            "nonce": token,
            "signed_at": timestamp,
        },
    )
    if sum(line["amount"] for line in value["lines"]) != value["amount"]:
        fail(f"{path}.lines", "do not sum to the amount")


def _disbursement(body: dict) -> None:
    fields(body, "$", {"payload": disbursement_payload, "signatures": signatures, "postings": _postings_shape})
    _check_postings("disbursement", body)


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


def _project_closed(body: dict) -> None:
    fields(body, "$", {"project": ident, "reason": text(2000)})


def window_seconds(value, path):
    if type(value) is not int:
        wrong_type(value, path, f"an integer number of seconds from 1 to {MAX_WINDOW_SECONDS}")
    if not 1 <= value <= MAX_WINDOW_SECONDS:
        fail(path, f"must be a number of seconds from 1 to {MAX_WINDOW_SECONDS}")


def _policy_recorded(body: dict) -> None:
    fields(body, "$", {"signing_window_seconds": window_seconds})


KINDS = {
    "charity.registered": _charity_registered,
    KEYS_ROTATED: _keys_rotated,
    "project.opened": _project_opened,
    "donation": _donation,
    DISBURSEMENT: _disbursement,
    "refund": _refund,
    "project.closed": _project_closed,
    POLICY: _policy_recorded,
}


def registry() -> Registry:
    """The registry of a charity log: the log's own kinds, the charity kinds, and
    the allocation policy in the genesis entry."""
    return Registry(KINDS, genesis={"allocation": ALLOCATION_POLICY})
