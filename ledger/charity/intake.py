"""Money in: recording donations, one at a time or a batch in one commit, once per intake key.

:class:`DonationIntake` is the part of :class:`ledger.charity.service.CharityLedger`
that records gifts.  A request is checked, hashed and made into its entry's
body first (:meth:`DonationIntake._gift`), with no log state but the project's
charity and currency; then, under the append lock, its intake key decides
whether it is a replay, and the books whether they take it.  A batch
(:meth:`DonationIntake.record_donations`) prepares every item before the lock,
looks its keys up in one query, decides each item in order as the single call
would, and appends the accepted ones together (:meth:`Writer.append_many_checked`),
their index rows written a table at a time.

``donor_ref`` and ``personal`` never enter the log: the entry holds only
``SHA-256(salt || donor_ref)``, and the salt goes back in the receipt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

from ..errors import Conflict, InvalidInput, LuodiError, NotFound
from ..log.canonical import canonical_bytes
from ..log.entry import Entry, body_bytes, receipt_bytes
from ..log.writer import Writer
from .commitments import donor_commitment, payment_ref_hash
from .kinds import donation_bytes, postings_for
from .money import parse_amount
from .receipts import Receipt, receipt_from_writer, receipts_from_writer

if TYPE_CHECKING:
    from ..log.ledger import Ledger
    from .store import BooksView, Stores

SALT_BYTES = 32
DONATION = "donation"


@dataclass(frozen=True)
class DonationReceipt:
    entry: Entry
    salt: str | None  # hex; None only when a replay finds the personal data erased
    replayed: bool
    # The receipt with its proofs, once the donation is committed (None inside a
    # writer, before the commit): for a new donation, at the checkpoint signed with it.
    receipt: Receipt | None = None


class _Gift(NamedTuple):
    """A donation request, checked and made into its entry's body (:meth:`DonationIntake._gift`)."""

    charity: str
    intake_key: object  # as sent: the body's rules refuse one that is not a key
    fingerprint: bytes  # SHA-256 of the canonical request: what a replay must match
    salt: bytes
    body: dict
    data: bytes | None  # the canonical body, None when its kind refuses it
    personal: str | None  # as stored: JSON text
    refusal: LuodiError | None  # why the body's kind refuses it


def _text(value, what: str, limit: int = 256) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{what} must be non-empty text of at most {limit} characters")
    return value


class DonationIntake:
    """Recording gifts: mixed into :class:`ledger.charity.service.CharityLedger`, whose
    ``ledger``, ``stores``, ``books``, ``receipt`` and ``_project_facts`` it uses."""

    ledger: Ledger
    stores: Stores
    books: BooksView
    receipt: Callable[[str], Receipt]
    _project_facts: Callable[[str, BooksView], tuple[str, str]]

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
        gift = self._gift(
            project, lambda: self._project_facts(project, w.hook.view),
            amount, channel, payment_ref, donor_ref, value_date, intake_key, personal,
        )
        existing = w.hook.view.intake(gift.charity, intake_key) if isinstance(intake_key, str) else None
        if existing is not None:
            return self._replay(existing, gift.fingerprint, w)
        if gift.refusal is not None:
            raise gift.refusal
        entry = w.append_checked(DONATION, gift.body, gift.data)
        w.hook.view.put_private(entry.leaf_hash, gift.salt, gift.fingerprint, gift.personal)
        return DonationReceipt(entry, gift.salt.hex(), replayed=False)

    def _gift(
        self,
        project: str,
        facts: Callable[[], tuple[str, str]],
        amount: str,
        channel: str,
        payment_ref: str,
        donor_ref: str,
        value_date: str,
        intake_key: str,
        personal: dict | None = None,
    ) -> _Gift:
        """A donation request checked, hashed and made into its entry's body, as far as
        it can be without its intake key; ``facts()`` gives the project's charity and
        currency.  Raises what refuses the request whatever its key; a body its kind
        refuses is kept as ``refusal``, raised only if the key is not a replay."""
        payment_ref = _text(payment_ref, "payment reference")
        donor_ref = _text(donor_ref, "donor reference")
        if personal is not None and (
            type(personal) is not dict or not all(isinstance(k, str) and isinstance(v, str) for k, v in personal.items())
        ):
            raise InvalidInput("personal data must be an object of strings")
        charity, currency = facts()
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
        body["postings"] = postings_for(DONATION, body)
        data, refusal = None, None
        try:
            self.ledger.registry.validate(DONATION, body)
            data = donation_bytes(body) or body_bytes(DONATION, body, self.ledger.registry)
            if self.ledger.hook is not None:  # what needs no log state (nothing, for a donation)
                self.ledger.hook.check(DONATION, body, self.ledger.clock)
        except LuodiError as exc:
            if exc.status >= 500:
                raise
            refusal = exc
        personal_text = json.dumps(personal) if personal else None
        return _Gift(charity, intake_key, fingerprint, salt, body, data, personal_text, refusal)

    def record_donations(self, project: str, items: list[dict]) -> list[DonationReceipt | LuodiError]:
        """Record many donations of one project in one commit (batch intake).

        Each item holds :meth:`record_donation`'s keyword arguments.  An item
        refused (a :class:`LuodiError` below 500, returned in its place) writes
        nothing and leaves the others intact; an item whose key is used earlier
        in the same batch is a replay of it (or a :class:`Conflict`).  Any other
        error rolls the whole batch back.

        Each item is checked and hashed before the append lock (with the
        project's facts as committed; if the project is not there yet, inside
        it), and its intake key and the books' rules are decided for all of
        them before any is written, so the accepted ones are appended together:
        the keys looked up in one query, the index rows written a table at a
        time, and no savepoint per item."""
        known = self._committed_facts(project)

        def prepare(facts: Callable[[], tuple[str, str]]) -> list:
            return [self._try_gift(project, facts, item) for item in items]

        gifts = None if known is None else prepare(lambda: known)

        def work(w: Writer) -> list:
            nonlocal gifts
            if gifts is None:
                gifts = prepare(lambda: self._project_facts(project, w.hook.view))
            return self._record_gifts(w, gifts)

        done, w = self.ledger.in_group(work)
        fresh = [d.entry for d in done if isinstance(d, DonationReceipt) and not d.replayed]
        receipts = dict(zip((e.seq for e in fresh), receipts_from_writer(self.ledger, w, fresh), strict=True))
        return [
            d if isinstance(d, LuodiError)
            else DonationReceipt(d.entry, d.salt, d.replayed,
                                 self.receipt(d.entry.receipt) if d.replayed else receipts[d.entry.seq])
            for d in done
        ]

    def _committed_facts(self, project: str) -> tuple[str, str] | None:
        try:
            return self._project_facts(project, self.books)
        except NotFound:
            return None

    def _try_gift(self, project: str, facts: Callable[[], tuple[str, str]], item: dict) -> _Gift | LuodiError:
        try:
            return self._gift(project, facts, **item)
        except LuodiError as exc:
            if exc.status >= 500:
                raise
            return exc

    def _record_gifts(self, w: Writer, gifts: list[_Gift | LuodiError]) -> list[DonationReceipt | LuodiError]:
        """Decide each gift in order (a replay of a key recorded before, of one earlier
        in the batch, a refusal, or a new donation), then append the new ones together
        (:meth:`Writer.append_many_checked`) and write their private rows in one go."""
        view, books = w.hook.view, w.hook
        ours = [g for g in gifts if isinstance(g, _Gift)]
        keys = [g.intake_key for g in ours if isinstance(g.intake_key, str)]
        existing = view.intakes(ours[0].charity, keys) if keys else {}
        done: list = [None] * len(gifts)
        first: dict[str, int] = {}  # intake key -> the gift in this batch that is recorded with it
        new: list[int] = []
        open_ok = False  # the books took a donation to this project (then they take them all)
        for i, gift in enumerate(gifts):
            if not isinstance(gift, _Gift):
                done[i] = gift
                continue
            key = gift.intake_key
            if isinstance(key, str):
                if key in existing:
                    try:
                        done[i] = self._replay(existing[key], gift.fingerprint, w)
                    except LuodiError as exc:
                        if exc.status >= 500:
                            raise
                        done[i] = exc
                    continue
                if key in first:
                    j = first[key]
                    same = hmac.compare_digest(gifts[j].fingerprint, gift.fingerprint)
                    done[i] = j if same else Conflict("this intake key was already used for a different donation")
                    continue
            if gift.refusal is not None:
                done[i] = gift.refusal
                continue
            if not open_ok:
                try:
                    books.check_donation(gift.body)
                except LuodiError as exc:
                    if exc.status >= 500:
                        raise
                    done[i] = exc
                    continue
                open_ok = True
            first[key] = i
            new.append(i)
        entries = w.append_many_checked([(DONATION, gifts[i].body, gifts[i].data) for i in new])
        view.put_privates([
            (e.leaf_hash, gifts[i].salt, gifts[i].fingerprint, gifts[i].personal) for i, e in zip(new, entries, strict=True)
        ])
        staged = dict(zip(new, entries, strict=True))
        for i in new:
            done[i] = DonationReceipt(staged[i], gifts[i].salt.hex(), replayed=False)
        for i, d in enumerate(done):
            if type(d) is int:  # a replay of a gift earlier in the batch
                done[i] = DonationReceipt(staged[d], gifts[d].salt.hex(), replayed=True)
        return done

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
