"""The charity ledger: what donors, charities and auditors do, as core calls.

Amounts come in and go out as decimal strings; entries hold integer minor
units.  Each call appends at most one entry, under the log's append lock, and
every refusal writes nothing.  :func:`open_charity_ledger` puts the house
together: a :class:`~ledger.log.ledger.Ledger` with the charity
:func:`~ledger.charity.kinds.registry` and the books as its append hook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..errors import Conflict, InvalidInput, LuodiError, NotFound
from ..log.canonical import canonical_bytes
from ..log.clock import utc_now
from ..log.entry import Entry, receipt_bytes
from ..log.fields import Check, fields
from ..log.ledger import Ledger
from ..log.note import Signer
from ..log.writer import Writer
from .allocation import DonationTrace
from .books import DEFAULT_WINDOW_SECONDS, BooksHook
from .commitments import donor_commitment, payment_ref_hash  # noqa: F401  (importable from here, as before)
from .kinds import DISBURSEMENT, KEYS_ROTATED, POLICY, disbursement_payload, postings_for, registry, rotation_payload
from .kinds import signatures as signature_list
from .money import parse_amount
from .receipts import Receipt, receipt_from_writer, receipt_of
from .store import BooksView, Donation, Policy, Project, Stores

SALT_BYTES = 32
INIT_KINDS = ("genesis", POLICY)  # what `luodi init` writes into a new log


@dataclass(frozen=True)
class DonationReceipt:
    entry: Entry
    salt: str | None  # hex; None only when a replay finds the personal data erased
    replayed: bool
    # The receipt with its proofs, once the donation is committed (None inside a
    # writer, before the commit): for a new donation, at the checkpoint signed with it.
    receipt: Receipt | None = None


def _text(value, what: str, limit: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{what} must be non-empty text of at most {limit} characters")
    return value


def _signed_body(check_payload: Check, payload: dict, signatures: list[dict]) -> dict:
    """The body of a signed entry, its payload and signatures checked member by member
    first, so that a wrong type is named (``$.payload.amount: must be an integer ...``)."""
    body = {"payload": payload, "signatures": signatures}
    fields(body, "$", {"payload": check_payload, "signatures": signature_list})
    return body


def open_charity_ledger(
    stores: Stores,
    signer: Signer | None = None,
    *,
    clock: Callable[[], str] = utc_now,
    create: bool = False,
) -> "CharityLedger":
    """A charity ledger on ``stores``; ``create`` writes the genesis entry into an empty log."""
    kwargs = {"clock": clock, "hook": BooksHook(stores.books)}
    if create:
        ledger = Ledger.create(stores.log, registry(), signer, **kwargs)
    else:
        ledger = Ledger(stores.log, registry(), signer, **kwargs)
        ledger.check_signer()
    return CharityLedger(ledger, stores)


class CharityLedger:
    """The charity service over a ledger whose append hook keeps ``stores.books``."""

    def __init__(self, ledger: Ledger, stores: Stores):
        self.ledger = ledger
        self.stores = stores
        # A project's charity and currency are fixed when it is opened: kept once seen.
        self._facts: dict[str, tuple[str, str]] = {}

    @property
    def books(self) -> BooksView:
        """The committed books, for reads."""
        return self.stores.books.view()

    @property
    def window_seconds(self) -> int:
        """The signing window the log has recorded (the default before its policy entry)."""
        policy = self.books.policy()
        return DEFAULT_WINDOW_SECONDS if policy is None else policy.signing_window_seconds

    def policy(self) -> Policy | None:
        return self.books.policy()

    def record_policy(self, signing_window_seconds: int) -> Entry:
        """Record the log's policy (once): the signing window signed entries are judged by from then on."""
        return self.ledger.append(POLICY, {"signing_window_seconds": signing_window_seconds})

    def is_fresh(self) -> bool:
        """Nothing in the log but what ``luodi init`` writes (genesis, policy): a demo may be seeded."""
        size = self.ledger.size()
        return size <= len(INIT_KINDS) and all(self.ledger.entry(s).kind in INIT_KINDS for s in range(size))

    # -- registration ------------------------------------------------------------

    def register_charity(self, charity: str, name: str, keys: list[str], threshold: int) -> Entry:
        body = {"charity": charity, "name": name, "keys": list(keys), "threshold": threshold}
        return self.ledger.append("charity.registered", body)

    def rotate_keys(self, payload: dict, signatures: list[dict]) -> Entry:
        """Replace a charity's keys and threshold, signed by a threshold of its current keys."""
        body = _signed_body(rotation_payload, payload, signatures)
        return self.ledger.append(KEYS_ROTATED, body)

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
        """Record a donation once per intake key of the project's charity.

        Intake keys are scoped per charity (of the project the donation is
        for): two charities may use the same key.  Within one charity, the same
        key with the same request returns the original receipt
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
            return replace(done, receipt=self.receipt(done.entry.receipt))
        return replace(done, receipt=receipt_from_writer(self.ledger, w, done.entry))

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
        charity, currency = self._project_facts(project, w.hook.view)
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
        # Intake keys are scoped per charity: of the project, whichever token sent the donation.
        existing = w.hook.view.intake(charity, intake_key) if isinstance(intake_key, str) else None
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
        w.hook.view.put_private(entry.leaf_hash, salt, fingerprint, json.dumps(personal) if personal else None)
        return DonationReceipt(entry, salt.hex(), replayed=False)

    def record_donations(self, project: str, items: list[dict]) -> list[DonationReceipt | LuodiError]:
        """Record many donations of one project in one commit (batch intake).

        Each item holds :meth:`record_donation`'s keyword arguments.  Each runs
        in its own savepoint: an item refused (a :class:`LuodiError` below 500,
        returned in its place) writes nothing and leaves the others intact; an
        item whose key is used earlier in the same batch is a replay of it (or a
        :class:`Conflict`).  Any other error rolls the whole batch back."""

        def work(w: Writer) -> list:
            done: list = []
            for item in items:
                try:
                    with w.savepoint():
                        done.append(self.record_donation_in(w, project, **item))
                except LuodiError as exc:
                    if exc.status >= 500:
                        raise
                    done.append(exc)
            return done

        done, w = self.ledger.in_group(work)
        return [
            d if isinstance(d, LuodiError)
            else replace(d, receipt=self.receipt(d.entry.receipt) if d.replayed else receipt_from_writer(self.ledger, w, d.entry))
            for d in done
        ]

    def _replay(self, receipt: bytes, fingerprint: bytes, w: Writer) -> DonationReceipt:
        private = w.hook.view.private(receipt)
        if private is None:
            raise Conflict("this intake key was used by a donation whose personal data has been erased")
        salt, stored, _ = private
        if not hmac.compare_digest(stored, fingerprint):
            raise Conflict("this intake key was already used for a different donation")
        entry = w.staged(receipt) or self.ledger.entry_by_receipt(receipt.hex())  # staged: earlier in this writer
        return DonationReceipt(entry, salt.hex(), replayed=True)

    def erase_personal_data(self, receipt: str) -> bool:
        """Delete what the intake sent about the donor, and the salt; the log is untouched.

        False if there was nothing to erase (no such donation, or erased before)."""
        return self.stores.books.erase_private(receipt_bytes(receipt))

    def personal_data(self, receipt: str) -> dict | None:
        """What the intake sent about the donor of this gift (None if nothing, or erased)."""
        private = self.books.private(receipt_bytes(receipt))
        return None if private is None or private[2] is None else json.loads(private[2])

    # -- money out -------------------------------------------------------------------

    def disburse(self, payload: dict, signatures: list[dict]) -> Entry:
        """Append a disbursement that a threshold of the charity's keys signed."""
        body = _signed_body(disbursement_payload, payload, signatures)
        body["postings"] = postings_for(DISBURSEMENT, body)
        return self.ledger.append(DISBURSEMENT, body)

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
        spent = self.books.allocations_of(bytes.fromhex(receipt)) if found.spent else []
        return DonationTrace(receipt, found.project, found.currency, found.amount, spent, found.refunded)

    def receipt(self, receipt: str) -> Receipt:
        """Everything a donor needs to check a gift offline, in one snapshot (:mod:`.receipts`)."""
        return receipt_of(self.ledger, receipt, self.trace, self._receipt_context)

    def _receipt_context(self, project: str) -> tuple[int, list[int]]:
        """The seq of a project's opening, and those of its charity's registration and key rotations."""
        found = self.project(project)
        return found.seq, self.books.charity_seqs(found.charity)

    def _donation(self, receipt: str) -> Donation:
        found = self.books.donation(receipt_bytes(receipt))
        if found is None:
            raise NotFound(f"no donation with receipt {receipt}")
        return found

    def charity_of(self, project: str) -> str:
        """The charity a project belongs to (:class:`NotFound` if there is no such project)."""
        return self._project_facts(project, self.books)[0]

    def _project_facts(self, project: str, books: BooksView) -> tuple[str, str]:
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

    def projects_at(self) -> tuple[list[Project], str, int]:
        """Every project's totals with the signed checkpoint of the same committed
        state and its tree size, so that an auditor can compare them at that size."""
        with self.ledger.snapshot():
            projects = self.projects()
            note, cp = self.ledger.latest_checkpoint_note()
        return projects, note, cp.size

    def project_entries(self, project: str, start: int, limit: int) -> tuple[list[Entry], int | None]:
        """Up to ``limit`` of a project's entries from seq ``start``, in one snapshot,
        and the seq of its next entry (None after its last)."""
        with self.ledger.snapshot():
            self.project(project)
            seqs = self.books.project_seqs(project, start, limit + 1)
            entries = [self.ledger.entry(seq) for seq in seqs[:limit]]
        return entries, (seqs[limit] if len(seqs) > limit else None)

