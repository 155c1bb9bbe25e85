"""Trusted output sent as JSON without marshmallow: receipts, donation answers, batch results.

These answers are built by Luodi itself, in their schema's shape
(:func:`api.views.receipt`), so a marshmallow dump would only copy them; and the
JSON encoder spends most of a receipt's time on the fifty-odd hashes of its
proofs, one string at a time.  Here a receipt is written as text directly: hex
hashes need no escaping, every other string goes through the encoder's own string
function, and the part that every gift of a project shares at one tree size (the
project's opening and the charity's keys, with their proofs) is written once per
tree size.  An entry's body is already JSON in the entry's canonical bytes, which
are ``{"body":`` + RFC 8785 of the body + a fixed tail (:func:`ledger.log.entry.seal`):
for the values RFC 8785 admits in an entry, that is exactly what the JSON encoder
writes for the parsed body (keys in the order read, strings escaped alike, no
floats), so it is sent as it is.

The text is byte for byte what flask-smorest sends for the same answer
(``jsonify`` of the route schema's dump), which the schemas still document;
tests/test_rendering.py holds the two equal.  Under a JSON provider that sorts
keys or indents (debug mode), the answers are dicts sent through the provider.
"""

from __future__ import annotations

from json.encoder import encode_basestring, encode_basestring_ascii
from typing import NamedTuple

from flask import Response, current_app
from flask.json.provider import DefaultJSONProvider

from ledger.charity.money import format_amount
from ledger.charity.receipts import Proven, Receipt
from ledger.log.entry import Entry

from .views import receipt as receipt_body

COMPACT = (",", ":")
CONTEXT_CACHE_MAX = 64  # (tree size, project, charity keys) texts kept per app


class Answer(NamedTuple):
    """A receipt, and the members that follow it in an answer (``salt``, ``status``)."""

    receipt: Receipt
    tail: dict


def send(body: dict, status: int = 200) -> Response:
    """A dict already in its schema's shape, as flask-smorest would send its dump."""
    resp = current_app.json.response(body)
    resp.status_code = status
    return resp


def send_receipt(r: Receipt, status: int = 200, **tail) -> Response:
    """A receipt, then ``tail``'s members, as flask-smorest would send the dump of
    :func:`api.views.receipt` plus ``tail``."""
    w = _writer()
    if w is None:
        return send({**receipt_body(r), **tail}, status)
    return _text_response(_receipt(r, tail, w), status)


def send_results(results: list) -> Response:
    """Batch results, ``{"results": [...]}``: each an :class:`Answer` or a problem dict."""
    w = _writer()
    if w is None:
        return send({"results": [{**receipt_body(x.receipt), **x.tail} if isinstance(x, Answer) else x for x in results]})
    items = [_receipt(x.receipt, x.tail, w) if isinstance(x, Answer) else w.dumps(x) for x in results]
    return _text_response('{"results":[' + ",".join(items) + "]}", 200)


class _Writer:
    """The app's JSON conventions, where they allow text written by hand: compact, unsorted."""

    __slots__ = ("provider", "string", "raw_bodies")

    def __init__(self, provider: DefaultJSONProvider):
        self.provider = provider
        self.string = encode_basestring_ascii if provider.ensure_ascii else encode_basestring
        self.raw_bodies = not provider.ensure_ascii  # canonical bytes are UTF-8, never \u-escaped

    def dumps(self, value) -> str:
        return self.provider.dumps(value, separators=COMPACT)


def _writer() -> _Writer | None:
    provider = current_app.json
    if type(provider) is not DefaultJSONProvider or provider.sort_keys:
        return None
    if provider.compact is False or (provider.compact is None and current_app.debug):
        return None  # DefaultJSONProvider.response indents then
    return _Writer(provider)


def _text_response(text: str, status: int) -> Response:
    # as DefaultJSONProvider.response builds it
    return current_app.response_class(text + "\n", status=status, mimetype=current_app.json.mimetype)


def _hashes(proof: list[bytes]) -> str:
    return '["' + '","'.join([h.hex() for h in proof]) + '"]' if proof else "[]"


def body_text(e: Entry, w: _Writer) -> str:
    """The JSON of the entry's body: the slice of its canonical bytes that holds it."""
    if w.raw_bodies:
        data = e.canonical
        tail = f',"kind":"{e.kind}","prev":"{e.prev}","seq":{e.seq},"time":"{e.time}"}}'.encode()
        if data.startswith(b'{"body":') and data.endswith(tail):
            return data[8 : len(data) - len(tail)].decode()
    return w.dumps(e.body)


def _item(e: Entry, w: _Writer, more: str = "") -> str:
    """:func:`api.views.item`, then ``more`` (members already written)."""
    s = w.string
    return (
        f'{{"seq":{e.seq},"leaf_hash":"{e.leaf_hash.hex()}","entry":{{"seq":{e.seq},"prev":{s(e.prev)},'
        f'"time":{s(e.time)},"kind":{s(e.kind)},"body":{body_text(e, w)}}}{more}}}'
    )


def _proven(p: Proven, w: _Writer) -> str:
    return _item(p.entry, w, f',"leaf_index":{p.entry.seq},"inclusion_proof":{_hashes(p.proof)}')


def _receipt(r: Receipt, tail: dict, w: _Writer) -> str:
    """:func:`api.views.receipt` plus ``tail``, as text."""
    s, trace, cur = w.string, r.trace, r.trace.currency
    spending = ",".join(
        f'{{"disbursement":{_item(x.disbursement, w)},"amount":{s(format_amount(x.amount, cur))},'
        f'"leaf_index":{x.disbursement.seq},"inclusion_proof":{_hashes(x.proof)}}}'
        for x in r.spending
    )
    parts = [
        '{"entry":', _item(r.entry, w),
        ',"leaf_index":', str(r.entry.seq),
        ',"tree_size":', str(r.tree_size),
        ',"inclusion_proof":', _hashes(r.proof),
        ',"checkpoint":', s(r.checkpoint),
        *(() if r.cosigned is None else (',"cosigned":', "true" if r.cosigned else "false")),
        ',"log_key":', s(r.log_key),
        ',"currency":', s(cur),
        ',"amount":', s(format_amount(trace.amount, cur)),
        ',"spent":', s(format_amount(trace.spent_total, cur)),
        ',"refunded":', s(format_amount(trace.refunded, cur)),
        ',"unspent":', s(format_amount(trace.unspent, cur)),
        ',"allocation":[', spending, "]",
    ]
    if r.project_opening is not None:
        parts += [",", _context(r, w)]
    for key, value in tail.items():
        parts += [",", s(key), ":", w.dumps(value)]
    parts.append("}")
    return "".join(parts)


def _context(r: Receipt, w: _Writer) -> str:
    """The project's opening and the charity's keys, with their proofs at the receipt's
    tree size: the same for every gift of the project at that size, so written once
    per app (which serves one log) and tree size."""
    key = (r.tree_size, w.string, r.project_opening.entry.leaf_hash, *(p.entry.leaf_hash for p in r.charity_entries))
    cache = current_app.extensions.setdefault("luodi_receipt_context", {})
    text = cache.get(key)
    if text is None:
        registration, *rotations = r.charity_entries
        text = (
            f'"project_opening":{_proven(r.project_opening, w)},"charity":{{"registration":{_proven(registration, w)},'
            f'"key_rotations":[{",".join(_proven(p, w) for p in rotations)}]}}'
        )
        if len(cache) >= CONTEXT_CACHE_MAX:
            cache = current_app.extensions["luodi_receipt_context"] = {}
        cache[key] = text
    return text
