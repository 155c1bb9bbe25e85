"""The charity ledger: what donors, charities and auditors do, as core calls.

Amounts come in and go out as decimal strings; entries hold integer minor
units.  Each call appends at most one entry, under the log's append lock, and
every refusal writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace

from .allocation import DonationTrace
from .books import Donation, Project
from .canonical import canonical_bytes
from .charity_kinds import postings_for
from .entry import Entry
from .errors import Conflict, InvalidInput, NotFound
from .log import Ledger, Writer
from .money import parse_amount

SALT_BYTES = 32


def donor_commitment(salt: bytes, donor_ref: str) -> str:
    """SHA-256(salt || donor reference), hex: lets a donor prove a gift is theirs."""
    return hashlib.sha256(salt + donor_ref.encode("utf-8")).hexdigest()


def payment_ref_hash(payment_ref: str) -> str:
    """SHA-256 of the payment reference, hex: a bank statement can be matched to it."""
    return hashlib.sha256(payment_ref.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DonationReceipt:
    entry: Entry
    salt: str | None  # hex; None only when a replay finds the personal data erased
    replayed: bool
    # For a new donation: the checkpoint signed with it, as (note, parsed, the
    # donation's inclusion proof in it); at that size nothing has spent the gift.
    signed_with: tuple | None = None


def _text(value, what: str, limit: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{what} must be non-empty text of at most {limit} characters")
    return value


class CharityLedger:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        # A project's charity and currency are fixed when it is opened: kept once seen.
        self._facts: dict[str, tuple[str, str]] = {}

    @property
    def books(self):
        return self.ledger.storage.books(self.ledger.window_seconds)

    # -- registration ------------------------------------------------------------

    def register_charity(self, charity: str, name: str, keys: list[str], threshold: int) -> Entry:
        body = {"charity": charity, "name": name, "keys": list(keys), "threshold": threshold}
        return self.ledger.append("charity.registered", body)

    def rotate_keys(self, payload: dict, signatures: list[dict]) -> Entry:
        return self.ledger.append("charity.keys_rotated", {"payload": payload, "signatures": signatures})

    def open_project(
        self,
        project: str,
        charity: str,
        title: str,
        purpose: str,
        currency: str,
        target: str | None = None,
        period: tuple[str, str] | None = None,
    ) -> Entry:
        body = {"project": project, "charity": charity, "title": title, "purpose": purpose, "currency": currency}
        if target is not None:
            body["target"] = parse_amount(target, currency, "target")
        if period is not None:
            body["period"] = {"start": period[0], "end": period[1]}
        return self.ledger.append("project.opened", body)

    def close_project(self, project: str, reason: str) -> Entry:
        return self.ledger.append("project.closed", {"project": project, "reason": reason})

    # -- money in ------------------------------------------------------------------

    def record_donation(
        self,
        project: str,
        amount: str,
        channel: str,
        payment_ref: str,
        donor_ref: str,
        value_date: str,
        intake_key: str,
        personal: dict | None = None,
    ) -> DonationReceipt:
        """Record a donation once per intake key.

        The same key with the same request returns the original receipt
        (``replayed=True``); with a different request it is a :class:`Conflict`.
        ``donor_ref`` and ``personal`` never enter the log: the entry holds
        only ``SHA-256(salt || donor_ref)``, and the salt goes back in the receipt.
        """
        done, w = self.ledger.in_group(
            lambda w: self.record_donation_in(
                w, project, amount, channel, payment_ref, donor_ref, value_date, intake_key, personal
            )
        )
        if done.replayed:
            return done
        return replace(done, signed_with=(w.note, w.checkpoint, w.proof(done.entry.seq)))

    def record_donation_in(
        self,
        w: Writer,
        project: str,
        amount: str,
        channel: str,
        payment_ref: str,
        donor_ref: str,
        value_date: str,
        intake_key: str,
        personal: dict | None = None,
    ) -> DonationReceipt:
        """:meth:`record_donation` inside an open :meth:`Ledger.writer`, so that an
        intake can commit many donations with one checkpoint."""
        payment_ref = _text(payment_ref, "payment reference")
        donor_ref = _text(donor_ref, "donor reference")
        if personal is not None and (
            type(personal) is not dict or not all(isinstance(k, str) and isinstance(v, str) for k, v in personal.items())
        ):
            raise InvalidInput("personal data must be an object of strings")
        currency = self._project_facts(project, w.books)[1]
        minor = parse_amount(amount, currency)
        request = {
            "project": project,
            "amount": minor,
            "channel": channel,
            "payment_ref": payment_ref,
            "donor_ref": donor_ref,
            "value_date": value_date,
            "personal": personal,
        }
        fingerprint = hashlib.sha256(canonical_bytes(request)).digest()
        existing = w.books.intake(intake_key) if isinstance(intake_key, str) else None
        if existing is not None:
            return self._replay(existing, fingerprint, w)
        salt = secrets.token_bytes(SALT_BYTES)
        body = {
            "project": project,
            "amount": minor,
            "currency": currency,
            "channel": channel,
            "payment_ref_hash": payment_ref_hash(payment_ref),
            "donor_commitment": donor_commitment(salt, donor_ref),
            "value_date": value_date,
            "intake_key": intake_key,
        }
        body["postings"] = postings_for("donation", body)
        entry = w.append("donation", body)
        w.books.put_private(entry.leaf_hash, salt, fingerprint, json.dumps(personal) if personal else None)
        return DonationReceipt(entry, salt.hex(), replayed=False)

    def _replay(self, receipt: str, fingerprint: bytes, w: Writer) -> DonationReceipt:
        private = w.books.private(receipt)
        if private is None:
            raise Conflict("this intake key was used by a donation whose personal data has been erased")
        salt, stored, _ = private
        if not hmac.compare_digest(stored, fingerprint):
            raise Conflict("this intake key was already used for a different donation")
        staged = [e for e in w.entries if e.receipt == receipt]  # appended earlier in this same writer
        entry = staged[0] if staged else self.ledger.entry_by_receipt(receipt)
        return DonationReceipt(entry, salt.hex(), replayed=True)

    def erase_personal_data(self, receipt: str) -> bool:
        """Delete what the intake sent about the donor, and the salt; the log is untouched."""
        if not _is_receipt(receipt):
            raise InvalidInput("a receipt hash is 64 lowercase hex digits")
        with self.ledger.storage.append_transaction() as txn:
            erased = txn.books(self.ledger.window_seconds).erase_private(receipt)
        if erased:
            self.ledger.storage.scrub()
        return erased

    def personal_data(self, receipt: str) -> dict | None:
        private = self.books.private(receipt)
        return None if private is None or private[2] is None else json.loads(private[2])

    # -- money out -------------------------------------------------------------------

    def disburse(self, payload: dict, signatures: list[dict]) -> Entry:
        """Append a disbursement that a threshold of the charity's keys signed."""
        if type(payload) is not dict:
            raise InvalidInput("payload must be an object")
        body = {"payload": payload, "signatures": signatures}
        try:
            body["postings"] = postings_for("disbursement", body)
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"payload is missing {exc}") from exc
        return self.ledger.append("disbursement", body)

    def refund(self, donation: str, amount: str, reason: str) -> Entry:
        """Return unspent money of one donation to its donor."""
        found = self._donation(donation)
        body = {
            "donation": donation,
            "project": found.project,
            "amount": parse_amount(amount, found.currency),
            "currency": found.currency,
            "reason": reason,
        }
        body["postings"] = postings_for("refund", body)
        return self.ledger.append("refund", body)

    # -- questions -------------------------------------------------------------------

    def trace(self, receipt: str) -> DonationTrace:
        """Which disbursements spent this gift, how much was refunded, what is unspent."""
        found = self._donation(receipt)
        spent = self.books.allocations_of(receipt) if found.spent else []
        return DonationTrace(receipt, found.project, found.currency, found.amount, spent, found.refunded)

    def _donation(self, receipt: str) -> Donation:
        if not _is_receipt(receipt):
            raise InvalidInput("a receipt hash is 64 lowercase hex digits")
        found = self.books.donation(receipt)
        if found is None:
            raise NotFound(f"no donation with receipt {receipt}")
        return found

    def charity_of(self, project: str) -> str:
        """The charity a project belongs to (:class:`NotFound` if there is no such project)."""
        return self._project_facts(project, self.books)[0]

    def _project_facts(self, project: str, books) -> tuple[str, str]:
        facts = self._facts.get(project) if isinstance(project, str) else None
        if facts is None:
            found = books.project(project) if isinstance(project, str) else None
            if found is None:
                raise NotFound(f"no project {project!r}")
            facts = self._facts[project] = (found.charity, found.currency)
        return facts

    def project(self, project: str) -> Project:
        found = self.books.project(project) if isinstance(project, str) else None
        if found is None:
            raise NotFound(f"no project {project!r}")
        return found

    def projects(self) -> list[Project]:
        return self.books.projects()


def _is_receipt(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and not value.strip("0123456789abcdef")
