"""What a charity signs: disbursement and key-rotation payloads, and their Ed25519 signatures.

A payload is signed over its RFC 8785 canonical bytes.  It names its
``action`` (so a signature for one kind of payload can never be replayed as
another), the charity, a fresh ``nonce`` and ``signed_at``.  Charity tooling
builds and signs payloads with these functions; the ledger checks them in
:func:`ledger.charity.books.check_signatures`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

from ..errors import InvalidEntry, InvalidInput
from ..log.canonical import canonical_bytes
from ..log.clock import utc_now
from ..log.note import Signer
from .kinds import DISBURSEMENT, KEYS_ROTATED, disbursement_payload, rotation_payload
from .money import parse_amount


def new_nonce() -> str:
    return secrets.token_hex(16)


def hash_file(path: str | Path) -> str:
    """SHA-256 of an evidence file (an invoice, a contract), as lowercase hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def disbursement(
    *,
    charity: str,
    project: str,
    currency: str,
    payee: str,
    purpose: str,
    period: tuple[str, str],
    lines: list[tuple[str, str]],
    evidence: list[tuple[str, str]] = (),
    amount: str | None = None,
    nonce: str | None = None,
    signed_at: str | None = None,
) -> dict:
    """Build a disbursement payload from decimal strings (the edge) in minor units (the core).

    ``lines`` are ``(description, decimal amount)``; ``amount`` defaults to
    their sum and, if given, must equal it.  ``evidence`` is ``(sha256 hex,
    description)``.
    """
    minor_lines = [{"description": d, "amount": parse_amount(a, currency, f"line {i}")} for i, (d, a) in enumerate(lines)]
    total = sum(line["amount"] for line in minor_lines)
    if amount is not None and parse_amount(amount, currency) != total:
        raise InvalidInput(f"amount {amount} is not the sum of the lines")
    payload = {
        "action": DISBURSEMENT,
        "charity": charity,
        "project": project,
        "amount": total,
        "currency": currency,
        "payee": {"name": payee},
        "purpose": purpose,
        "period": {"start": period[0], "end": period[1]},
        "lines": minor_lines,
        "evidence": [{"sha256": h, "description": d} for h, d in evidence],
        "nonce": nonce or new_nonce(),
        "signed_at": signed_at or utc_now(),
    }
    _check(disbursement_payload, payload)
    return payload


def rotation(*, charity: str, keys: list[str], threshold: int, nonce: str | None = None, signed_at: str | None = None) -> dict:
    payload = {
        "action": KEYS_ROTATED,
        "charity": charity,
        "keys": list(keys),
        "threshold": threshold,
        "nonce": nonce or new_nonce(),
        "signed_at": signed_at or utc_now(),
    }
    _check(rotation_payload, payload)
    return payload


def _check(check, payload: dict) -> None:
    try:
        check(payload, "payload")
    except InvalidEntry as exc:
        raise InvalidInput(exc.detail) from exc


def sign(payload: dict, signer: Signer) -> dict:
    """One signature object: the signer's verifier key and base64(Ed25519 over canonical bytes)."""
    signature = signer.sign(canonical_bytes(payload))
    return {"key": signer.verifier.to_string(), "signature": base64.b64encode(signature).decode("ascii")}
