"""An instance made by earlier code (tests/fixtures/instance-dc65221, before the house was
split into a log, a personality and drivers) migrates, opens, verifies, audits and grows with today's."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REGISTRY
from factories import sign_all

from api.cli import main
from api.instance import KEY_NAME, load_key, open_instance, upgrade_database
from ledger.charity import payload as P
from ledger.charity.audit import audit_books
from ledger.charity.tokens import list_tokens
from ledger.errors import InstanceError
from ledger.log.keyfile import read_key_file
from ledger.log.verify import verify_log

pytestmark = pytest.mark.sqlite_only("an instance folder made by earlier code, with its luodi.sqlite")

FIXTURE = Path(__file__).parent / "fixtures" / "instance-dc65221"
SIZE = 274


@pytest.fixture
def old(tmp_path) -> Path:
    """A copy of the old instance, its keys set to mode 0600 (git keeps no modes)."""
    copy = tmp_path / "instance"
    copy.mkdir(mode=0o700)
    for name in ("luodi.sqlite", KEY_NAME, "harvest-aid-finance-1.key", "harvest-aid-finance-2.key"):
        shutil.copyfile(FIXTURE / name, copy / name)
        os.chmod(copy / name, 0o600)
    return copy


def _rows(path: Path, stop: int) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT seq, leaf_hash, tree, canonical FROM entries WHERE seq < ? ORDER BY seq", (stop,)).fetchall()


def _intake_keys(path: Path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT * FROM intake_keys ORDER BY receipt").fetchall()


def test_the_old_instance_migrates_opens_verifies_and_audits(old):
    with pytest.raises(InstanceError, match="needs migrations: run 'luodi db upgrade'"):
        open_instance(old)
    keys = _intake_keys(old / "luodi.sqlite")
    assert len(keys) == 260 and all(len(row) == 2 for row in keys)  # one key space for the instance
    # Its schema predates the intake keys scoped per charity, the policy and the charity entries' index.
    assert upgrade_database(old) == [
        "0005_intake_keys_per_charity", "0006_policy", "0007_charity_entries", "0008_token_rates", "0009_cosigned_checkpoints"
    ]
    assert upgrade_database(old) == []
    migrated = _intake_keys(old / "luodi.sqlite")
    assert sorted((key, receipt) for _, key, receipt in migrated) == sorted(keys)  # every key kept
    cl = open_instance(old)
    try:
        key = load_key(old / KEY_NAME).verifier
        report = verify_log(cl.ledger.store, REGISTRY, key)
        assert (report.size, report.checkpoints, report.log_key) == (SIZE, SIZE, key.to_string())
        assert cl.ledger.checkpoint() == (FIXTURE / "checkpoint.txt").read_text()
        audit = audit_books(cl.stores)  # the migrated index equals the books replayed from the log
        assert (audit.entries, audit.donations, audit.projects) == (SIZE, 260, 4)
        assert {charity for charity, _, _ in migrated} == {p.charity for p in cl.projects()}
        for charity, key, receipt in migrated:  # each key went to the charity of its donation's project
            assert cl.project(cl.books.donation(receipt).project).charity == charity
            assert cl.books.intake(charity, key) == receipt
        assert audit.disbursements >= 3 and audit.refunds == 1
        assert sorted((t.role, t.charity) for t in list_tokens(cl.stores.tokens)) == [
            ("admin", None),
            ("intake", "harvest-aid"),
        ]
    finally:
        cl.stores.close()


def test_the_old_instance_grows_with_todays_code(old):
    upgrade_database(old)
    cl = open_instance(old)
    try:
        before = _rows(old / "luodi.sqlite", SIZE)
        farm = cl.project("farm-livestream")
        # A key another charity used before the upgrade is free for harvest-aid now.
        theirs = next(key for charity, key, _ in _intake_keys(old / "luodi.sqlite") if charity != "harvest-aid")
        gift = cl.record_donation(
            "farm-livestream", "88.00", "alipay", "PAY-NEW-1", "donor-new", "2026-12-01", intake_key=theirs
        )
        assert gift.entry.seq == SIZE and not gift.replayed
        again = cl.record_donation(
            "farm-livestream", "88.00", "alipay", "PAY-NEW-1", "donor-new", "2026-12-01", intake_key=theirs
        )
        assert again.replayed and again.entry == gift.entry
        payload = P.disbursement(
            charity="harvest-aid", project="farm-livestream", currency="CNY", payee="Dingxi Post",
            purpose="Shipping apples", period=("2026-12-01", "2026-12-31"), lines=[("shipping", "100.00")],
        )
        signers = [read_key_file(old / f"harvest-aid-finance-{i}.key") for i in (1, 2)]
        spent = cl.disburse(payload, sign_all(payload, *signers))
        assert spent.seq == SIZE + 1
        after = cl.project("farm-livestream")
        assert (after.raised, after.spent) == (farm.raised + 8800, farm.spent + 10000)
        # the old entries are untouched, and the whole log verifies and audits
        assert _rows(old / "luodi.sqlite", SIZE) == before
        assert verify_log(cl.ledger.store, REGISTRY, load_key(old / KEY_NAME).verifier).size == SIZE + 2
        assert audit_books(cl.stores).entries == SIZE + 2
        assert cl.receipt(gift.entry.receipt).tree_size == SIZE + 2
    finally:
        cl.stores.close()


@pytest.mark.parametrize("command", ["verify", "audit", "status"])
def test_the_cli_checks_the_old_instance(old, command):
    upgraded = CliRunner().invoke(main, ["db", "upgrade", "--instance", str(old)])
    assert upgraded.exit_code == 0 and "0005_intake_keys_per_charity" in upgraded.output, upgraded.output
    result = CliRunner().invoke(main, [command, "--instance", str(old)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_the_old_log_records_its_policy_once(old):
    """A log made before the policy entry has none: the default window (600 s) governs
    until 'luodi policy record' appends one, which it does once."""
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade", "--instance", str(old)]).exit_code == 0
    cl = open_instance(old, with_key=False)
    try:
        assert cl.policy() is None and cl.window_seconds == 600
    finally:
        cl.stores.close()
    done = runner.invoke(main, ["policy", "record", "--instance", str(old), "--signing-window", "900"])
    assert done.exit_code == 0, done.output
    assert done.output == f"policy recorded at seq {SIZE}, receipt {done.output.split()[6][:-1]}: signing window 900 s\n"
    again = runner.invoke(main, ["policy", "record", "--instance", str(old)])
    assert again.exit_code == 1 and again.stdout == ""
    assert again.stderr == f"Error: the log's policy was already recorded, at seq {SIZE}: it is recorded once\n"
    cl = open_instance(old, with_key=False)
    try:
        assert cl.ledger.size() == SIZE + 1 and cl.window_seconds == 900
        assert f"receipt {cl.ledger.entry(SIZE).receipt}:" in done.output
        assert audit_books(cl.stores).entries == SIZE + 1
        assert _rows(old / "luodi.sqlite", SIZE + 1)[SIZE][0] == SIZE
    finally:
        cl.stores.close()
