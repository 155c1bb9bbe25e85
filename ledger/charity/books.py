"""The books: the accounting rules that need the log so far, over an index kept beside it.

For every entry appended, :meth:`Books.apply` checks the contextual rules
(the charity and project exist; the keys that signed are a threshold of the
charity's current keys; the nonce is new and ``signed_at`` is within the
window of the entry's time; the project's balance covers a disbursement and
the donation's unspent money covers a refund) and updates the index, through
the books-store protocol (:class:`ledger.charity.store.BooksView`), in the
same transaction as the entry, so a refusal writes nothing.  Disbursements are
allocated with :func:`ledger.charity.allocation.allocate_fifo`, the same
function an auditor's :func:`ledger.charity.allocation.trace_fifo` uses.

The signing window is the log's own: the ``policy.recorded`` entry sets it
once (:func:`logged_window`), and entries before it are judged by the
documented default, :data:`DEFAULT_WINDOW_SECONDS`.  So an auditor needs no
word from the operator to replay the ``signed_at`` rule.

What needs no log state is checked before the append lock is taken, so a
request refused for it costs no lock time (:meth:`BooksHook.check`): that each
signature verifies against the key it names (:func:`verify_signatures`) and
that ``signed_at`` is within the window of the server's time now
(:func:`check_window`).  The shapes and types were checked before that, by
the entry kinds (:mod:`ledger.charity.kinds`).  An auditor replaying the log
calls the same functions for every stored entry (:mod:`ledger.charity.audit`).

:class:`BooksHook` is how the books plug into the log: the
:class:`ledger.log.ledger.Ledger` runs its check before every append and the
books inside it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from ..errors import Conflict, InvalidInput, LuodiError, MalformedNote, NotFound, Overspend, Replay, SignatureError
from ..log.canonical import canonical_bytes
from ..log.clock import parse_time
from ..log.entry import Entry
from ..log.hook import AppendHook, OpenHook
from ..log.note import Verifier, b64decode_strict
from ..log.store import LogTxn
from .allocation import allocate_fifo
from .kinds import DISBURSEMENT, KEYS_ROTATED, POLICY
from .store import BooksStore, BooksView, Charity, Project

DEFAULT_WINDOW_SECONDS = 600  # docs/entries.md: until the log records its policy


SIGNED_KINDS = (DISBURSEMENT, KEYS_ROTATED)


def verify_signatures(payload: dict, sigs: list[dict]) -> list[bytes]:
    """Every signature is by a distinct key and verifies over the canonical payload
    against the key it names; return the signers' public keys, in order.

    Needs no log state: the server checks it before it takes the append lock,
    and an auditor again for every stored entry.  Whether the keys may sign is
    :func:`check_signers`' question.
    """
    data = canonical_bytes(payload)
    signers: list[bytes] = []
    for i, sig in enumerate(sigs):
        verifier = Verifier.from_string(sig["key"])
        if verifier.public_key in signers:
            raise SignatureError(f"signature {i}: the same key signed twice")
        signers.append(verifier.public_key)
        try:
            raw = b64decode_strict(sig["signature"], f"signature {i}")
        except MalformedNote as exc:
            raise SignatureError(exc.detail) from exc
        if len(raw) != 64 or not verifier.verify(data, raw):
            raise SignatureError(f"signature {i} by {verifier.name} does not verify over the payload")
    return signers


def verify_signed(kind: str, body: dict) -> None:
    """:func:`verify_signatures` of a disbursement or key rotation (other kinds are not signed)."""
    if kind in SIGNED_KINDS:
        verify_signatures(body["payload"], body["signatures"])


def signers_of(sigs: list[dict]) -> list[bytes]:
    """The public keys that signed, as the signatures name them (not verified here)."""
    return [Verifier.from_string(sig["key"]).public_key for sig in sigs]


def check_signers(signers: list[bytes], charity: Charity, owner_of) -> None:
    """The signers are current keys of ``charity``, at least ``threshold`` of them.

    A key of another charity or one not current refuses the whole.  Depends on
    the log (the charity's keys now), so the server checks it under the append lock.
    """
    current = {Verifier.from_string(k).public_key for k in charity.keys}
    for i, public in enumerate(signers):
        if public not in current:
            owner = owner_of(public)
            if owner is not None and owner != charity.charity:
                raise SignatureError(f"signature {i} is by a key of charity {owner}, not {charity.charity}")
            raise SignatureError(f"signature {i} is not by a current key of charity {charity.charity}")
    distinct = len(set(signers))
    if distinct < charity.threshold:
        raise SignatureError(f"{distinct} distinct key(s) signed; charity {charity.charity} needs {charity.threshold}")


def check_signatures(payload: dict, sigs: list[dict], charity: Charity, owner_of) -> None:
    """At least ``threshold`` distinct current keys of ``charity`` signed the canonical payload:
    :func:`verify_signatures`, then :func:`check_signers`.

    Every listed signature must be valid and by a current key: a key of
    another charity, a key counted twice or a bad signature refuses the whole.
    """
    check_signers(verify_signatures(payload, sigs), charity, owner_of)


def logged_window(view: BooksView) -> _dt.timedelta:
    """The signing window the log has recorded so far (its ``policy.recorded``
    entry), or the documented default before it."""
    policy = view.policy()
    return _dt.timedelta(seconds=DEFAULT_WINDOW_SECONDS if policy is None else policy.signing_window_seconds)


def check_window(signed_at: str, at: str, window: _dt.timedelta, what: str) -> None:
    """``signed_at`` is at most ``window`` from the time ``at`` (``what`` names it)."""
    if abs(parse_time(at) - parse_time(signed_at)) > window:
        raise SignatureError(f"signed_at {signed_at} is more than {int(window.total_seconds())}s from {what} {at}")


class Books(OpenHook):
    """The rules, applied to one books view (in an append, or in an auditor's replay)."""

    def __init__(self, view: BooksView):
        self.view = view

    def applied(self) -> int:
        return self.view.applied()

    def mark_applied(self, seq: int) -> None:
        self.view.mark_applied(seq)

    def apply(self, entry: Entry) -> None:
        """Check ``entry`` against the books and record it; raise to refuse it."""
        handler = _HANDLERS.get(entry.kind)
        if handler is not None:
            handler(self, entry, entry.body)
            project = entry.body.get("project") or entry.body.get("payload", {}).get("project")
            if project is not None:
                self.view.add_project_entry(project, entry.seq)

    def apply_batch(self, entries: list[Entry]) -> None:
        """:meth:`apply` of consecutive entries, in order.  A run of donations is checked
        whole first, so that the first refused is refused as :meth:`apply` would and
        none of the run is written; then it is written a table at a time."""
        run: list[Entry] = []
        for entry in entries:
            if entry.kind == "donation":
                run.append(entry)
                continue
            if run:
                self._donations(run)
                run = []
            self.apply(entry)
        if run:
            self._donations(run)

    def check_donation(self, body: dict) -> None:
        """Raise what :meth:`apply` would refuse a donation with, but for its intake key
        (a batch intake looks the keys up together, :meth:`BooksView.intakes`); record nothing."""
        self._need_open_project(body["project"], body["currency"])

    # -- what the rules need ------------------------------------------------------------

    def _need_charity(self, charity: str) -> Charity:
        found = self.view.charity(charity)
        if found is None:
            raise NotFound(f"no charity {charity!r}")
        return found

    def _need_open_project(self, project: str, currency: str | None = None) -> Project:
        found = self.view.project(project)
        if found is None:
            raise NotFound(f"no project {project!r}")
        if found.closed:
            raise Conflict(f"project {project!r} is closed")
        if currency is not None and currency != found.currency:
            raise InvalidInput(f"project {project!r} takes {found.currency}, not {currency}")
        return found

    def _claim_keys(self, charity: str, keys) -> None:
        for key in keys:
            public = Verifier.from_string(key).public_key
            owner = self.view.owner_of(public)
            if owner is not None and owner != charity:
                raise Conflict(f"key {key.split('+')[0]} is registered to charity {owner}")
            if owner is None:
                self.view.claim_key(public, charity)

    def _check_signed(self, entry: Entry, payload: dict, sigs: list[dict], charity: Charity) -> None:
        """What depends on the log: the signers may sign for ``charity`` now, the entry's
        time is within the window of ``signed_at``, and the nonce is new.  That every
        signature verifies was checked before (:meth:`BooksHook.check`, or an auditor's
        :func:`verify_signed`)."""
        check_signers(signers_of(sigs), charity, self.view.owner_of)
        check_window(payload["signed_at"], entry.time, logged_window(self.view), "the entry time")
        if not self.view.use_nonce(charity.charity, payload["nonce"]):
            raise Replay(f"nonce {payload['nonce']!r} was already used by charity {charity.charity}")

    # -- one rule per kind ----------------------------------------------------------------

    def _charity_registered(self, entry: Entry, body: dict) -> None:
        if self.view.charity(body["charity"]) is not None:
            raise Conflict(f"charity {body['charity']!r} is already registered")
        self._claim_keys(body["charity"], body["keys"])
        self.view.add_charity(body["charity"], body["name"], body["keys"], body["threshold"], entry.seq)
        self.view.add_charity_entry(body["charity"], entry.seq)

    def _charity_keys_rotated(self, entry: Entry, body: dict) -> None:
        payload = body["payload"]
        assert payload["action"] == KEYS_ROTATED
        charity = self._need_charity(payload["charity"])
        self._check_signed(entry, payload, body["signatures"], charity)
        self._claim_keys(charity.charity, payload["keys"])
        self.view.set_keys(charity.charity, payload["keys"], payload["threshold"])
        self.view.add_charity_entry(charity.charity, entry.seq)

    def _project_opened(self, entry: Entry, body: dict) -> None:
        if self.view.project(body["project"]) is not None:
            raise Conflict(f"project {body['project']!r} already exists")
        self._need_charity(body["charity"])
        self.view.add_project(body["project"], body["charity"], body["currency"], entry.seq)

    def _donation(self, entry: Entry, body: dict) -> None:
        project = self._need_open_project(body["project"], body["currency"])
        # Intake keys are the charity's: of the project the donation is for, whoever sent it.
        if not self.view.add_intake_key(project.charity, body["intake_key"], entry.leaf_hash):
            raise Conflict(f"intake key {body['intake_key']!r} was already used by charity {project.charity}")
        self.view.add_donation(entry.leaf_hash, entry.seq, body["project"], body["amount"])

    def _donations(self, entries: list[Entry]) -> None:
        """:meth:`_donation` of many, with their project entries: every rule is checked
        (each project once, the intake keys in one lookup) before anything is written."""
        projects: dict[tuple, Project | LuodiError] = {}
        keys: dict[str, list[str]] = {}
        for entry in entries:
            project = projects.get(at := (entry.body["project"], entry.body["currency"]))
            if project is None:
                try:
                    project = projects[at] = self._need_open_project(*at)
                except LuodiError as exc:
                    projects[at] = exc
                    continue
            if isinstance(project, Project):
                keys.setdefault(project.charity, []).append(entry.body["intake_key"])
        taken = {charity: self.view.intakes(charity, wanted) for charity, wanted in keys.items()}
        used: set[tuple[str, str]] = set()
        rows = []
        for entry in entries:
            body = entry.body
            project = projects[(body["project"], body["currency"])]
            if not isinstance(project, Project):
                raise project
            key = (project.charity, body["intake_key"])
            if key in used or key[1] in taken[project.charity]:
                raise Conflict(f"intake key {body['intake_key']!r} was already used by charity {project.charity}")
            used.add(key)
            rows.append((*key, entry.leaf_hash, entry.seq, body["project"], body["amount"]))
        self.view.add_donations(rows)
        self.view.add_project_entries([(e.body["project"], e.seq) for e in entries])

    def _disbursement(self, entry: Entry, body: dict) -> None:
        payload = body["payload"]
        assert payload["action"] == DISBURSEMENT
        project = self.view.project(payload["project"])
        if project is not None and project.charity != payload["charity"]:
            raise SignatureError(
                f"project {project.project!r} belongs to charity {project.charity}, not {payload['charity']}"
            )
        project = self._need_open_project(payload["project"], payload["currency"])
        charity = self._need_charity(payload["charity"])
        self._check_signed(entry, payload, body["signatures"], charity)
        if payload["amount"] > project.balance:
            raise Overspend(
                f"disbursement of {payload['amount']} exceeds project {project.project!r} balance {project.balance}"
            )
        for receipt, take in allocate_fifo(self.view.unspent(project.project), payload["amount"]):
            self.view.spend(receipt, entry.leaf_hash, take, entry.seq)
        self.view.add_spent(project.project, payload["amount"])

    def _refund(self, entry: Entry, body: dict) -> None:
        donation = self.view.donation(bytes.fromhex(body["donation"]))
        if donation is None:
            raise NotFound(f"no donation with receipt {body['donation']}")
        if donation.project != body["project"]:
            raise InvalidInput(f"donation {body['donation']} belongs to project {donation.project!r}")
        if body["currency"] != donation.currency:
            raise InvalidInput(f"project {donation.project!r} takes {donation.currency}, not {body['currency']}")
        if body["amount"] > donation.unspent:
            raise Overspend(f"refund of {body['amount']} exceeds the donation's unspent {donation.unspent}")
        self.view.refund(bytes.fromhex(body["donation"]), donation.project, body["amount"])

    def _project_closed(self, entry: Entry, body: dict) -> None:
        self._need_open_project(body["project"])
        self.view.close_project(body["project"], entry.seq)

    def _policy_recorded(self, entry: Entry, body: dict) -> None:
        recorded = self.view.policy()
        if recorded is not None:
            raise Conflict(f"the log's policy was already recorded, at seq {recorded.seq}: it is recorded once")
        self.view.set_policy(body["signing_window_seconds"], entry.seq)


_HANDLERS = {
    "charity.registered": Books._charity_registered,
    KEYS_ROTATED: Books._charity_keys_rotated,
    "project.opened": Books._project_opened,
    "donation": Books._donation,
    DISBURSEMENT: Books._disbursement,
    "refund": Books._refund,
    "project.closed": Books._project_closed,
    POLICY: Books._policy_recorded,
}


class BooksHook(AppendHook):
    """The books as the log's append hook: each append opens :class:`Books` on the
    books store, inside the append's own transaction."""

    def __init__(self, store: BooksStore):
        self.store = store

    def check(self, kind: str, body: dict, clock: Callable[[], str]) -> None:
        """Before the append lock: a signed entry's signatures verify against the keys
        they name, and it was signed within the log's window of the ledger clock's time now."""
        if kind in SIGNED_KINDS:
            verify_signatures(body["payload"], body["signatures"])
            window = logged_window(self.store.view())
            check_window(body["payload"]["signed_at"], clock(), window, "the server's time")

    def open(self, txn: LogTxn) -> Books:
        return Books(self.store.in_transaction(txn))
