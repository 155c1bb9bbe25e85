"""The charity ledger: what donors, charities and auditors do, as core calls.

Amounts come in and go out as decimal strings; entries hold integer minor
units.  Each call appends at most one entry, under the log's append lock, and
every refusal writes nothing.  :func:`open_charity_ledger` puts the house
together: a :class:`~ledger.log.ledger.Ledger` with the charity
:func:`~ledger.charity.kinds.registry` and the books as its append hook.
Recording donations (money in) is :mod:`ledger.charity.intake`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import NotFound
from ..log.clock import utc_now
from ..log.entry import Entry, receipt_bytes
from ..log.fields import Check, fields
from ..log.ledger import Ledger
from ..log.note import Signer
from .allocation import DonationTrace
from .books import DEFAULT_WINDOW_SECONDS, BooksHook
from .commitments import donor_commitment, payment_ref_hash  # noqa: F401  (importable from here, as before)
from .intake import SALT_BYTES, DonationIntake, DonationReceipt  # noqa: F401  (importable from here, as before)
from .kinds import DISBURSEMENT, KEYS_ROTATED, POLICY, disbursement_payload, postings_for, registry, rotation_payload
from .kinds import signatures as signature_list
from .money import parse_amount
from .receipts import Receipt, receipt_of
from .store import BooksView, Donation, Policy, Project, Stores

INIT_KINDS = ("genesis", POLICY)  # what `luodi init` writes into a new log


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


class CharityLedger(DonationIntake):
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

    # -- money in: ledger.charity.intake.DonationIntake ------------------------------------

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

    def receipt(self, receipt: str, cosigned: bool = False) -> Receipt:
        """Everything a donor needs to check a gift offline, in one snapshot (:mod:`.receipts`);
        ``cosigned``: against the latest cosigned checkpoint that covers it, if any."""
        return receipt_of(self.ledger, receipt, self.trace, self._receipt_context, cosigned)

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

