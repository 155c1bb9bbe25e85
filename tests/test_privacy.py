"""Donor privacy: no donor reference, personal data or raw payment reference in the log;
a salted commitment the donor can prove; personal data outside the log, erasable.

On every backend, except that erased data leaves the database's files, which is
about SQLite's files (secure_delete, WAL checkpoints, VACUUM).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from backends import raw_rows
from conftest import REGISTRY
from factories import PROJECT, writes_nothing

from ledger.charity.audit import audit_books
from ledger.charity.service import donor_commitment, payment_ref_hash
from ledger.errors import Conflict, InvalidInput
from ledger.log.canonical import canonical_bytes
from ledger.log.verify import verify_log

DONORS = [
    {
        "payment_ref": "WX-4200001234202611290012345678",
        "donor_ref": "donor-openid-oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "intake_key": "intake-2026-11-29-000001",
        "amount": "200.00",
        "personal": {"name": "张三 Zhang San", "phone": "+86 138 0013 8000", "email": "zhang.san@example.com"},
    },
    {
        "payment_ref": "ALI-2026112922001412345678901234",
        "donor_ref": "donor-alipay-2088102146225135",
        "intake_key": "intake-2026-11-29-000002",
        "amount": "88.80",
        "personal": {"name": "Li Si", "phone": "+86 139 1234 5678", "email": "li.si@example.org"},
    },
]


@pytest.fixture
def setup(make_setup):
    return make_setup(donations=())


def give(setup, donor, channel="wechat", **overrides):
    args = {
        "channel": channel,
        "payment_ref": donor["payment_ref"],
        "donor_ref": donor["donor_ref"],
        "value_date": "2026-11-29",
        "intake_key": donor["intake_key"],
        "personal": donor["personal"],
        **overrides,
    }
    return setup.charity.record_donation(PROJECT, donor["amount"], **args)


def spellings(text: str) -> list[bytes]:
    """Every way a string could sit in our bytes: UTF-8, JSON with \\u escapes, RFC 8785."""
    forms = {text.encode("utf-8"), json.dumps(text)[1:-1].encode("ascii"), canonical_bytes(text)[1:-1]}
    return sorted(forms)


def secrets_of(donor) -> dict[str, list[bytes]]:
    found = {"donor_ref": spellings(donor["donor_ref"]), "payment_ref": spellings(donor["payment_ref"])}
    for key, value in donor["personal"].items():
        found[key] = spellings(value)
        for part in value.split():  # "张三" alone, "Zhang" alone, ...
            if not part.strip("+0123456789") or len(part.encode("utf-8")) < 4:
                continue  # digit groups and short parts would match inside hex digests by chance
            found[f"{key}:{part}"] = spellings(part)
        digits = "".join(ch for ch in value if ch.isdigit())
        if key == "phone":  # the national number without spaces or country code
            found["phone digits"] = spellings(digits[2:])
    # unsalted hashes would let anyone confirm a guess, so they must not be there either
    found["sha256(donor_ref)"] = [hashlib.sha256(donor["donor_ref"].encode()).hexdigest().encode()]
    for key, value in donor["personal"].items():
        found[f"sha256({key})"] = [hashlib.sha256(value.encode()).hexdigest().encode()]
    return found


def logged_bytes(ledger) -> list[tuple[str, bytes]]:
    """Every entry's canonical bytes and every checkpoint note: what the log publishes."""
    out = [(f"entry {seq}", canonical) for seq, _, _, canonical in ledger.store.iter_entries()]
    out += [(f"checkpoint {size}", note.encode("utf-8")) for size, note in ledger.store.iter_checkpoints()]
    out += [(f"checkpoints row {size}", note.encode("utf-8")) for size, note in raw_rows(ledger, "SELECT tree_size, note FROM checkpoints")]
    return out


def test_nothing_personal_enters_the_log(setup):
    receipts = [give(setup, d) for d in DONORS]
    published = logged_bytes(setup.ledger)
    assert len([w for w, _ in published if w.startswith("entry")]) == setup.ledger.size() == 5
    for donor, receipt in zip(DONORS, receipts, strict=True):
        assert receipt.entry.kind == "donation"
        for what, forms in secrets_of(donor).items():
            for where, data in published:
                for form in forms:
                    assert form not in data, f"{what} of {donor['donor_ref']} is in {where}"
        # the salt is the donor's secret too: it goes back in the receipt only
        salt = bytes.fromhex(receipt.salt)
        for where, data in published:
            assert receipt.salt.encode() not in data and salt not in data, f"the salt is in {where}"
    # and the donation body holds exactly the documented members, nothing else
    body = setup.ledger.entry_by_receipt(receipts[0].entry.receipt).body
    assert sorted(body) == sorted(
        ["project", "amount", "currency", "channel", "payment_ref_hash", "donor_commitment", "value_date",
         "intake_key", "postings"]
    )  # fmt: skip


def test_donor_can_prove_the_gift_with_the_salt(setup):
    receipt = give(setup, DONORS[0])
    body = setup.ledger.entry_by_receipt(receipt.entry.receipt).body
    salt = bytes.fromhex(receipt.salt)
    assert len(salt) == 32
    commitment = hashlib.sha256(salt + DONORS[0]["donor_ref"].encode("utf-8")).hexdigest()
    assert body["donor_commitment"] == commitment == donor_commitment(salt, DONORS[0]["donor_ref"])
    # nobody else's reference matches, nor does the right reference with another salt
    assert hashlib.sha256(salt + DONORS[1]["donor_ref"].encode()).hexdigest() != body["donor_commitment"]
    assert hashlib.sha256(salt + (DONORS[0]["donor_ref"] + "x").encode()).hexdigest() != body["donor_commitment"]
    assert hashlib.sha256(bytes(32) + DONORS[0]["donor_ref"].encode()).hexdigest() != body["donor_commitment"]
    assert hashlib.sha256(DONORS[0]["donor_ref"].encode()).hexdigest() != body["donor_commitment"]
    # a bank statement can be matched to the entry through the payment reference's hash
    assert body["payment_ref_hash"] == hashlib.sha256(DONORS[0]["payment_ref"].encode()).hexdigest()
    assert body["payment_ref_hash"] == payment_ref_hash(DONORS[0]["payment_ref"])


def test_same_donor_gets_a_fresh_salt_per_gift(setup):
    first = give(setup, DONORS[0])
    second = give(setup, {**DONORS[0], "intake_key": "intake-2026-11-29-000003"})
    assert first.salt != second.salt
    c1 = first.entry.body["donor_commitment"]
    c2 = second.entry.body["donor_commitment"]
    assert c1 != c2  # two gifts of one donor cannot be linked through the log


def test_personal_data_readable_then_erasable(setup):
    first, second = (give(setup, d) for d in DONORS)
    assert setup.charity.personal_data(first.entry.receipt) == DONORS[0]["personal"]
    assert setup.charity.personal_data(second.entry.receipt) == DONORS[1]["personal"]

    size, checkpoint = setup.ledger.size(), setup.ledger.checkpoint()
    assert setup.charity.erase_personal_data(first.entry.receipt) is True
    assert setup.charity.personal_data(first.entry.receipt) is None
    assert setup.charity.books.private(bytes.fromhex(first.entry.receipt)) is None  # the salt is gone too
    assert setup.charity.personal_data(second.entry.receipt) == DONORS[1]["personal"]  # only that donor
    # the log is untouched, and still verifies and audits
    assert (setup.ledger.size(), setup.ledger.checkpoint()) == (size, checkpoint)
    assert setup.ledger.entry_by_receipt(first.entry.receipt) == first.entry
    verify_log(setup.ledger.store, REGISTRY)
    report = audit_books(setup.charity.stores)
    assert report.donations == 2
    # and the gift still counts, and the donor can still prove it with the salt they kept
    assert setup.charity.project(PROJECT).raised == 20000 + 8880
    salt = bytes.fromhex(first.salt)
    assert first.entry.body["donor_commitment"] == donor_commitment(salt, DONORS[0]["donor_ref"])

    assert setup.charity.erase_personal_data(first.entry.receipt) is False  # already erased


def test_donation_without_personal_data(setup):
    receipt = give(setup, DONORS[0], personal=None)
    assert setup.charity.personal_data(receipt.entry.receipt) is None
    assert setup.charity.books.private(bytes.fromhex(receipt.entry.receipt)) is not None  # the salt is kept for replays
    assert setup.charity.erase_personal_data(receipt.entry.receipt) is True


def test_erasing_an_unknown_receipt(setup):
    give(setup, DONORS[0])
    with writes_nothing(setup.ledger):
        assert setup.charity.erase_personal_data("ab" * 32) is False
        # a receipt of an entry that is not a donation
        assert setup.charity.erase_personal_data(setup.ledger.entry(1).receipt) is False
    for bad in ["AB" * 32, "ab" * 31, "zz" * 32, None, 7]:
        with writes_nothing(setup.ledger), pytest.raises(InvalidInput, match="64 lowercase hex"):
            setup.charity.erase_personal_data(bad)


def test_intake_key_replays(setup):
    original = give(setup, DONORS[0])
    again = give(setup, DONORS[0])
    assert again.replayed is True and original.replayed is False
    assert again.entry == original.entry and again.salt == original.salt
    assert setup.ledger.size() == 4
    # the same key for a different request is a conflict, and writes nothing
    for change in (
        {"personal": {**DONORS[0]["personal"], "phone": "+86 130 0000 0000"}},
        {"donor_ref": "someone-else"},
        {"payment_ref": "WX-other"},
        {"channel": "alipay"},
    ):
        with writes_nothing(setup.ledger), pytest.raises(Conflict, match="already used for a different donation"):
            give(setup, DONORS[0], **change)


def test_replay_after_erasure_refused(setup):
    receipt = give(setup, DONORS[0])
    assert setup.charity.erase_personal_data(receipt.entry.receipt)
    with writes_nothing(setup.ledger), pytest.raises(Conflict, match="personal data has been erased") as info:
        give(setup, DONORS[0])
    assert info.value.status == 409
    with writes_nothing(setup.ledger), pytest.raises(Conflict, match="personal data has been erased"):
        give(setup, DONORS[0], personal=None, donor_ref="someone-else")
    # the personal data did not come back with the refused replay
    assert setup.charity.personal_data(receipt.entry.receipt) is None
    assert setup.charity.books.private(bytes.fromhex(receipt.entry.receipt)) is None


# -- the bytes on disk -----------------------------------------------------------------------------


def disk_bytes(db: Path) -> bytes:
    """The database file with its WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def raw_sql(db: Path, *statements: str) -> list:
    with closing(sqlite3.connect(db, isolation_level=None)) as raw:
        return [raw.execute(s).fetchall() for s in statements]


def erased_forms(setup, donor, receipt) -> dict[str, list[bytes]]:
    """What the intake's private record of one donation holds: personal data, salt, fingerprint."""
    salt, fingerprint, _ = setup.charity.books.private(bytes.fromhex(receipt.entry.receipt))
    assert salt == bytes.fromhex(receipt.salt)
    skip = ("donor_ref", "payment_ref", "phone digits")  # never stored, or not stored in that spelling
    found = {k: v for k, v in secrets_of(donor).items() if k not in skip and not k.startswith("sha256")}
    found["salt"] = [salt]
    found["fingerprint"] = [fingerprint]
    return found


def never_forms(donor) -> dict[str, list[bytes]]:
    """What is never stored anywhere, not even outside the log."""
    return {k: secrets_of(donor)[k] for k in ("donor_ref", "payment_ref")}


def present(data: bytes, forms: dict[str, list[bytes]]) -> list[str]:
    return sorted(what for what, fs in forms.items() if any(f in data for f in fs))


@pytest.mark.parametrize("secure_delete", [None, 0], ids=["build default", "secure_delete off"])
@pytest.mark.sqlite_only("SQLite's files: secure_delete, WAL checkpoints and VACUUM")
def test_erased_data_leaves_the_database_file(setup, secure_delete):
    """After erasure, a WAL checkpoint and VACUUM (then a checkpoint, since VACUUM in WAL mode
    writes through the WAL) the personal data, salt and fingerprint are in no file.  With
    SQLite's secure_delete on (this build's default) the checkpoint alone is enough; with it
    off, freed cells keep the bytes until VACUUM."""
    db = setup.ledger.store.path
    if secure_delete is not None:
        setup.ledger.store.db.conn.execute(f"PRAGMA secure_delete = {secure_delete}")
    first, second = (give(setup, d) for d in DONORS)
    gone = erased_forms(setup, DONORS[0], first)
    kept = erased_forms(setup, DONORS[1], second)
    never = {**never_forms(DONORS[0]), **{f"2:{k}": v for k, v in never_forms(DONORS[1]).items()}}
    # before erasure the data is on disk (so the search below can see it when it is there)
    raw_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)")
    assert present(disk_bytes(db), gone) == sorted(gone)
    assert present(disk_bytes(db), never) == []

    assert setup.charity.erase_personal_data(first.entry.receipt)
    (busy, _, _), = raw_sql(db, "PRAGMA wal_checkpoint(TRUNCATE)")[0]
    assert busy == 0
    secure_delete = setup.ledger.store.db.conn.execute("PRAGMA secure_delete").fetchone()[0]
    if secure_delete:  # deleted cells are zeroed (this SQLite's build default); no VACUUM needed
        assert present(disk_bytes(db), gone) == []

    raw_sql(db, "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)")
    data = disk_bytes(db)
    assert present(data, gone) == []
    assert present(data, never) == []
    assert present(data, kept) == sorted(kept)  # the other donor's data is still there
    # the log is intact and everything is still readable through the ledger
    verify_log(setup.ledger.store, REGISTRY)
    audit_books(setup.charity.stores)
    assert setup.charity.personal_data(second.entry.receipt) == DONORS[1]["personal"]
