"""A donor's receipt check: everything in a receipt, against the log key the donor pins, offline.

:func:`check_receipt` takes the JSON receipt (``GET /v1/receipts/<leaf_hash>``,
docs/architecture.md §9) and checks, trusting nothing in it but what the
pinned key signed:

- the checkpoint is signed by the pinned key (no other), and the receipt's
  ``tree_size`` (and ``log_key``) are the checkpoint's (and the pinned key);
- the donation entry re-parses to its canonical bytes under the charity
  kinds, its leaf hash is the stated one, and it is in the checkpoint's tree;
- the project's ``project.opened`` entry and the charity's registration and
  key rotations are in that tree, tie the project to its charity, and each
  rotation was signed by a threshold of the keys before it;
- each disbursement that spent the gift is in that tree, names this project,
  charity and currency, and is signed by a threshold of the charity's keys as
  the log recorded them at the disbursement's seq;
- each allocation is within its disbursement, and spent + refunded +
  unspent == the gift;
- with the donor's salt and reference, the donor commitment;
- with a witness policy (C2SP tlog-policy, :class:`ledger.log.policy.Policy`), that
  the checkpoint carries the cosignatures of a quorum of its witnesses
  (C2SP tlog-cosignature, :func:`check_witnesses`).

:func:`check_tlog_proof` checks the C2SP tlog-proof form, which proves the
donation's inclusion only.  Every failure is a :class:`ReceiptInvalid` naming
the part (``checkpoint``, ``entry``, ``inclusion_proof``,
``allocation[1].signatures[0]``, ``amounts``, ``donor_commitment`` ...);
whatever in the document fails to parse is one too.  Pure: no server stack.
What a receipt cannot show offline: that it lists *every* key rotation and
refund; the remote audit, which replays the whole log, can.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import InvalidInput, LuodiError, MalformedNote, QuorumNotMet, ReceiptInvalid, SignatureError
from ..log.canonical import canonical_bytes
from ..log.checkpoint import Checkpoint, open_checkpoint
from ..log.entry import Entry, parse_entry
from ..log.fields import is_hex64
from ..log.merkle import verify_inclusion
from ..log.note import Verifier
from ..log.policy import Policy
from ..log.tlog_proof import parse_tlog_proof
from .books import check_signers, verify_signatures
from .commitments import donor_commitment
from .kinds import DISBURSEMENT, KEYS_ROTATED, registry
from .money import format_amount, parse_amount
from .store import Charity

_KINDS = registry()


@dataclass(frozen=True)
class CheckedAllocation:
    disbursement: Entry
    amount: int  # minor units taken from this gift


@dataclass(frozen=True)
class CheckedReceipt:
    """What a checked receipt proves.  For a tlog-proof (``inclusion_only``) the
    spending is unknown: ``spent``, ``refunded`` and ``unspent`` are None."""

    entry: Entry  # the donation
    tree_size: int
    root: bytes
    currency: str
    amount: int
    spent: int | None
    refunded: int | None
    unspent: int | None
    allocations: tuple[CheckedAllocation, ...] = ()
    inclusion_only: bool = False
    donor_checked: bool = False
    charity: str | None = None
    checkpoint: str = ""  # the signed note the proofs were checked against
    witnesses: dict[str, int] = field(default_factory=dict)  # policy witness -> cosignature time


@contextmanager
def _part(name: str) -> Iterator[None]:
    """Whatever fails inside, or does not parse, is a :class:`ReceiptInvalid` naming ``name``."""
    try:
        yield
    except ReceiptInvalid:
        raise
    except LuodiError as exc:
        raise ReceiptInvalid(name, exc.detail) from exc
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = f"missing member {exc}" if isinstance(exc, KeyError) else "is not what a receipt holds"
        raise ReceiptInvalid(name, what) from exc


def _need(cond: bool, part: str, detail: str) -> None:
    if not cond:
        raise ReceiptInvalid(part, detail)


def _verifier(log_key: str | Verifier) -> Verifier:
    return log_key if isinstance(log_key, Verifier) else Verifier.from_string(log_key)


def _int(value, part: str) -> int:
    _need(type(value) is int and value >= 0, part, "must be a non-negative integer")
    return value


def _hashes(value, part: str) -> list[bytes]:
    _need(type(value) is list and all(is_hex64(h) for h in value), part, "must be a list of 64-hex-digit hashes")
    return [bytes.fromhex(h) for h in value]


def _entry(item, part: str, kind: str) -> Entry:
    """An entry item ``{seq, leaf_hash, entry}``: its canonical bytes parse under the charity
    kinds, it is of ``kind``, and its stated seq and leaf hash are its own."""
    with _part(part):
        _need(type(item) is dict and type(item.get("entry")) is dict, part, "must be an entry item")
        entry = parse_entry(canonical_bytes(item["entry"]), _KINDS)
    _need(entry.kind == kind, part, f"is a {entry.kind} entry, not {kind}")
    _need(item.get("seq") == entry.seq and type(item.get("seq")) is int, f"{part}.seq", f"is not the entry's seq {entry.seq}")
    stated = item.get("leaf_hash")
    _need(
        isinstance(stated, str) and hmac.compare_digest(stated.encode(), entry.receipt.encode()),
        f"{part}.leaf_hash",
        f"is not the hash of the entry's canonical bytes ({entry.receipt})",
    )
    return entry


def _included(entry: Entry, index, proof, cp: Checkpoint, part: str) -> None:
    """The entry is at its seq in the checkpoint's tree (``part`` "" for the donation's own)."""
    prefix = f"{part}." if part else ""
    _need(index == entry.seq and type(index) is int, f"{prefix}leaf_index", f"is not the entry's seq {entry.seq}")
    hashes = _hashes(proof, f"{prefix}inclusion_proof")
    with _part(f"{prefix}inclusion_proof"):
        verify_inclusion(entry.leaf_hash, entry.seq, cp.size, hashes, cp.root)


def _proven(item, part: str, kind: str, cp: Checkpoint) -> Entry:
    entry = _entry(item, part, kind)
    _included(entry, item.get("leaf_index"), item.get("inclusion_proof"), cp, part)
    return entry


def _checkpoint(doc: dict, verifier: Verifier) -> Checkpoint:
    stated = doc.get("log_key")
    _need(
        isinstance(stated, str) and hmac.compare_digest(stated.encode(), verifier.to_string().encode()),
        "log_key",
        f"the receipt names log key {stated!r}, not the pinned key {verifier.to_string()}",
    )
    with _part("checkpoint"):
        _need(isinstance(doc.get("checkpoint"), str), "checkpoint", "must be a signed note")
        cp = open_checkpoint(doc["checkpoint"], verifier)
    _need(doc.get("tree_size") == cp.size and type(doc.get("tree_size")) is int,
          "tree_size", f"is not the checkpoint's tree size {cp.size}")
    return cp


def _charity_keys(doc: dict, project: Entry, cp: Checkpoint) -> list[tuple[int, Charity]]:
    """The charity's keys as the log recorded them: ``(from seq, keys)``, ascending;
    each rotation checked against the keys before it."""
    charity = project.body["charity"]
    block = doc.get("charity")
    _need(type(block) is dict, "charity", "must hold the charity's registration and key rotations")
    reg = _proven(block.get("registration"), "charity.registration", "charity.registered", cp)
    body = reg.body
    _need(body["charity"] == charity, "charity.registration", f"registers {body['charity']!r}, not {charity!r}")
    _need(reg.seq < project.seq, "charity.registration", "comes after the project's opening")
    keys = [(reg.seq, Charity(charity, body["name"], tuple(body["keys"]), body["threshold"]))]
    rotations = block.get("key_rotations")
    _need(type(rotations) is list, "charity.key_rotations", "must be a list")
    for i, item in enumerate(rotations):
        part = f"charity.key_rotations[{i}]"
        rot = _proven(item, part, KEYS_ROTATED, cp)
        payload = rot.body["payload"]
        _need(payload["charity"] == charity, part, f"rotates the keys of {payload['charity']!r}, not {charity!r}")
        _need(rot.seq > keys[-1][0], part, "is not after the entry before it")
        _signed(payload, rot.body["signatures"], keys[-1][1], part)
        keys.append((rot.seq, Charity(charity, body["name"], tuple(payload["keys"]), payload["threshold"])))
    return keys


def _signed(payload: dict, sigs: list[dict], charity: Charity, part: str) -> None:
    """A threshold of ``charity``'s keys signed ``payload``; each signature is named on failure."""
    for j, sig in enumerate(sigs):
        with _part(f"{part}.signatures[{j}]"):
            verify_signatures(payload, [sig])
    with _part(f"{part}.signatures"):
        check_signers(verify_signatures(payload, sigs), charity, lambda _key: None)


def _keys_at(keys: list[tuple[int, Charity]], seq: int) -> Charity:
    return [c for since, c in keys if since < seq][-1]


def _decimal(text, currency: str, part: str) -> int:
    """A decimal amount as the server writes it (``format_amount``: one spelling; zero allowed)."""
    with _part(part):
        value = 0 if text == format_amount(0, currency) else parse_amount(text, currency, "the amount")
    _need(text == format_amount(value, currency), part, f"{text!r} is not written as {format_amount(value, currency)!r}")
    return value


def _amount(doc: dict, name: str, currency: str) -> int:
    return _decimal(doc.get(name), currency, name)


def check_witnesses(note, verifier: Verifier, policy: Policy | None) -> dict[str, int]:
    """The witnesses of ``policy`` that cosigned the checkpoint ``note`` (already verified with
    the pinned ``verifier``), each with its cosignature's timestamp; :class:`QuorumNotMet` (its
    ``part`` is ``witnesses``) when they do not meet the policy's quorum, saying which cosigned
    and what the policy needs.  A known witness's line that does not verify, or a note that is
    not one, is a :class:`ReceiptInvalid` of part ``witnesses``.  ``policy`` None: no check.

    One implementation: :meth:`ledger.log.policy.Policy.check` (C2SP tlog-policy; the
    cosignatures are C2SP tlog-cosignature's ``cosignature/v1``)."""
    if policy is None:
        return {}
    try:
        _, cosigned = policy.check(note, verifier)
    except QuorumNotMet as exc:
        exc.part = "witnesses"
        raise
    except (SignatureError, MalformedNote) as exc:
        raise ReceiptInvalid("witnesses", f"the checkpoint's cosignatures do not verify: {exc.detail}") from exc
    return cosigned


def check_receipt(
    doc, log_key: str | Verifier, *, salt: str | None = None, donor_ref: str | None = None,
    policy: Policy | None = None,
) -> CheckedReceipt:
    """Check a JSON receipt against the pinned ``log_key``; :class:`ReceiptInvalid` names what failed.

    A malformed ``log_key`` is :class:`~ledger.errors.MalformedNote`, and a salt that is not
    hex (or a salt without a donor reference) :class:`~ledger.errors.InvalidInput`: the
    caller's input, not the receipt's.  With ``policy``, the receipt's checkpoint must meet
    its quorum (:func:`check_witnesses`)."""
    verifier = _verifier(log_key)
    _donor_args(salt, donor_ref)
    _need(type(doc) is dict, "receipt", "must be a JSON object")
    cp = _checkpoint(doc, verifier)
    witnesses = check_witnesses(doc["checkpoint"], verifier, policy)
    gift = _entry(doc.get("entry"), "entry", "donation")
    _included(gift, doc.get("leaf_index"), doc.get("inclusion_proof"), cp, "")
    body = gift.body
    currency = body["currency"]
    _need(doc.get("currency") == currency, "currency", f"is not the donation's currency {currency}")
    amount, spent, refunded, unspent = (_amount(doc, n, currency) for n in ("amount", "spent", "refunded", "unspent"))
    _need(amount == body["amount"], "amount", "is not the donation entry's amount")

    allocations = doc.get("allocation")
    _need(type(allocations) is list, "allocation", "must be a list")
    charity = None
    keys: list[tuple[int, Charity]] = []
    if allocations or "project_opening" in doc:
        opening = _proven(doc.get("project_opening"), "project_opening", "project.opened", cp)
        _need(opening.body["project"] == body["project"], "project_opening",
              f"opens {opening.body['project']!r}, not the gift's project {body['project']!r}")
        _need(opening.body["currency"] == currency, "project_opening", f"takes {opening.body['currency']}, not {currency}")
        _need(opening.seq < gift.seq, "project_opening", "comes after the donation")
        charity = opening.body["charity"]
        keys = _charity_keys(doc, opening, cp)
    checked, last = [], gift.seq
    for i, alloc in enumerate(allocations):
        part = f"allocation[{i}]"
        _need(type(alloc) is dict, part, "must be an object")
        d = _entry(alloc.get("disbursement"), f"{part}.disbursement", DISBURSEMENT)
        _included(d, alloc.get("leaf_index"), alloc.get("inclusion_proof"), cp, part)
        payload = d.body["payload"]
        _need(d.seq > last, part, "is not after the donation and the allocation before it")
        last = d.seq
        _need(payload["project"] == body["project"] and payload["currency"] == currency, part,
              f"pays from {payload['project']!r} in {payload['currency']}, not the gift's project and currency")
        _need(payload["charity"] == charity, part, f"is signed for charity {payload['charity']!r}, not {charity!r}")
        _signed(payload, d.body["signatures"], _keys_at(keys, d.seq), part)
        take = _decimal(alloc.get("amount"), currency, f"{part}.amount")
        _need(0 < take <= payload["amount"], f"{part}.amount", "is not within the disbursement's amount")
        checked.append(CheckedAllocation(d, take))

    _need(sum(a.amount for a in checked) == spent, "amounts", "the allocations do not add up to spent")
    _need(spent + refunded + unspent == amount, "amounts", "spent + refunded + unspent is not the gift")
    done = _donor(gift, salt, donor_ref)
    return CheckedReceipt(gift, cp.size, cp.root, currency, amount, spent, refunded, unspent,
                          tuple(checked), donor_checked=done, charity=charity, checkpoint=doc["checkpoint"],
                          witnesses=witnesses)


def check_tlog_proof(
    text: str | bytes, log_key: str | Verifier, *, salt: str | None = None, donor_ref: str | None = None,
    policy: Policy | None = None,
) -> CheckedReceipt:
    """Check the C2SP tlog-proof form of a receipt: its extra data is a donation entry whose
    seq is the index, included in the tree of a checkpoint signed by ``log_key``.  It
    proves the donation's inclusion only (``inclusion_only``)."""
    verifier = _verifier(log_key)
    _donor_args(salt, donor_ref)
    try:
        proof = parse_tlog_proof(text)
    except MalformedNote as exc:
        raise ReceiptInvalid(exc.extra.get("field", "tlog-proof"), exc.detail) from exc
    _need(proof.extra is not None, "extra", "holds no entry: a Luodi receipt's extra data is the donation's bytes")
    with _part("extra"):
        gift = parse_entry(proof.extra, _KINDS)
    _need(gift.kind == "donation", "extra", f"is a {gift.kind} entry, not a donation")
    _need(proof.index == gift.seq, "index", f"is not the entry's seq {gift.seq}")
    with _part("checkpoint"):
        cp = open_checkpoint(proof.checkpoint, verifier)
    witnesses = check_witnesses(proof.checkpoint, verifier, policy)
    with _part("inclusion_proof"):
        verify_inclusion(gift.leaf_hash, proof.index, cp.size, list(proof.proof), cp.root)
    done = _donor(gift, salt, donor_ref)
    body = gift.body
    return CheckedReceipt(gift, cp.size, cp.root, body["currency"], body["amount"], None, None, None,
                          inclusion_only=True, donor_checked=done, checkpoint=proof.checkpoint, witnesses=witnesses)


def _donor_args(salt, donor_ref) -> None:
    if (salt is None) != (donor_ref is None):
        raise InvalidInput("the donor commitment needs both the salt and the donor reference")
    if salt is not None:
        try:
            bytes.fromhex(salt)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("the salt must be hex, as the receipt gave it") from exc


def _donor(gift: Entry, salt: str | None, donor_ref: str | None) -> bool:
    """With the donor's salt and reference, the entry's donor commitment is theirs."""
    if salt is None:
        return False
    mine = donor_commitment(bytes.fromhex(salt), donor_ref)
    _need(hmac.compare_digest(mine.encode(), gift.body["donor_commitment"].encode()), "donor_commitment",
          "SHA-256(salt || donor reference) is not the donation's donor_commitment")
    return True
