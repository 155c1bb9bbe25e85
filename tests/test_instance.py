"""The instance folder: key creation and protection, idempotent init, opening.

SQLite only (the default database): this is about the instance folder and its key;
choosing a PostgreSQL database is tests/test_database_choice.py; the storage, service,
API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import base64
import os
import re
import stat

import pytest
from click.testing import CliRunner
from conftest import REGISTRY, notes

from api.cli import main
from api.instance import (
    DB_NAME,
    DEFAULT_ORIGIN,
    KEY_NAME,
    create_key,
    init_instance,
    load_key,
    open_instance,
    upgrade_database,
)
from ledger.errors import InstanceError
from ledger.log.note import Signer
from ledger.log.verify import verify_log


def close(opened) -> None:
    """Close an InitResult's, a CharityLedger's or a Ledger's database."""
    charity = getattr(opened, "charity", opened)
    if hasattr(charity, "stores"):
        charity.stores.close()
    else:
        charity.store.close()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_init_creates_folder_key_and_database(tmp_path):
    inst = tmp_path / "a" / "instance"
    result = init_instance(inst)
    try:
        assert result.created_key is True
        assert result.migrations == [
            "0001_initial", "0002_books", "0003_tokens_and_project_entries", "0004_books_without_rowid",
            "0005_intake_keys_per_charity", "0006_policy", "0007_charity_entries", "0008_token_rates",
            "0009_cosigned_checkpoints",
        ]
        assert inst.is_dir()
        assert mode(inst) & 0o077 == 0
        key = inst / KEY_NAME
        assert mode(key) == 0o600
        assert (inst / DB_NAME).is_file()
        signer = Signer.from_string(key.read_text())
        assert signer.name == DEFAULT_ORIGIN
        ledger = result.ledger
        assert ledger.size() == 2  # genesis, then the policy entry (the default window)
        assert ledger.entry(1).kind == "policy.recorded"
        assert ledger.entry(1).body == {"signing_window_seconds": 600}
        assert result.charity.window_seconds == 600
        assert ledger.origin == DEFAULT_ORIGIN
        assert ledger.verifier == signer.verifier
        assert ledger.genesis.body["log_key"] == signer.verifier.to_string()
        assert ledger.latest_checkpoint().size == 2
    finally:
        close(result)


def test_init_again_keeps_key_and_genesis(tmp_path):
    inst = tmp_path / "inst"
    first = init_instance(inst, "donations.example/log")
    genesis = first.ledger.genesis
    first.ledger.append_batch(notes(5))
    close(first)
    key_bytes = (inst / KEY_NAME).read_bytes()
    key_stat = os.stat(inst / KEY_NAME)

    for origin in (None, "donations.example/log"):
        again = init_instance(inst, origin)
        try:
            assert again.created_key is False
            assert again.migrations == []
            assert again.ledger.size() == 7  # no second policy entry
            assert again.ledger.genesis == genesis
            assert again.ledger.store.checkpoint()[0] == 7
            assert again.ledger.origin == "donations.example/log"
        finally:
            close(again)
    assert (inst / KEY_NAME).read_bytes() == key_bytes
    assert os.stat(inst / KEY_NAME).st_mtime_ns == key_stat.st_mtime_ns
    assert mode(inst / KEY_NAME) == 0o600


def test_init_with_another_origin_on_existing_instance_refused(tmp_path):
    inst = tmp_path / "inst"
    close(init_instance(inst, "one.example/log"))
    before = files(inst)
    with pytest.raises(InstanceError, match="one.example/log"):
        init_instance(inst, "two.example/log")
    assert files(inst) == before


@pytest.mark.parametrize("origin", ["bad origin", "a+b", "", "tab\there", "new\nline"])
def test_init_with_malformed_origin_writes_nothing(tmp_path, origin):
    inst = tmp_path / "inst"
    with pytest.raises(InstanceError, match="origin"):
        init_instance(inst, origin)
    assert not inst.exists()


def test_create_key_never_overwrites(tmp_path):
    path = tmp_path / "log.key"
    signer = create_key(path, "x.example/log")
    assert mode(path) == 0o600
    original = path.read_bytes()
    assert Signer.from_string(original.decode()).verifier == signer.verifier
    with pytest.raises(InstanceError, match="never overwritten"):
        create_key(path, "x.example/log")
    assert path.read_bytes() == original
    # Not even an empty or foreign file is replaced.
    other = tmp_path / "empty.key"
    other.write_text("")
    with pytest.raises(InstanceError):
        create_key(other, "x.example/log")
    assert other.read_text() == ""


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_key_readable_by_others_refused(tmp_path, bad_mode):
    inst = tmp_path / "inst"
    close(init_instance(inst))
    key = inst / KEY_NAME
    os.chmod(key, bad_mode)
    with pytest.raises(InstanceError, match="chmod 600"):
        open_instance(inst)
    with pytest.raises(InstanceError, match="chmod 600"):
        init_instance(inst)
    with pytest.raises(InstanceError):
        load_key(key)
    assert mode(key) == bad_mode  # not silently "fixed" either
    # Read-only use needs no key at all.
    reader = open_instance(inst, with_key=False)
    try:
        assert reader.ledger.signer is None
        assert verify_log(reader.ledger.store, REGISTRY).size == 2
    finally:
        close(reader)


def test_key_error_messages_do_not_leak_the_key(tmp_path):
    inst = tmp_path / "inst"
    close(init_instance(inst))
    key = inst / KEY_NAME
    secret = key.read_text().strip()
    os.chmod(key, 0o644)
    with pytest.raises(InstanceError) as info:
        open_instance(inst)
    assert secret.split("+", 4)[4] not in str(info.value)
    # A corrupted key file: refused, and the message does not echo its content.
    os.chmod(key, 0o600)
    key.write_text(secret[:-6] + "!!!!!!\n")
    with pytest.raises(InstanceError, match="valid signer key") as info:
        open_instance(inst)
    assert secret.split("+", 4)[4][:20] not in str(info.value)


def test_open_ledger_with_another_logs_key_refused(tmp_path):
    inst = tmp_path / "inst"
    close(init_instance(inst, "same.example/log"))
    key = inst / KEY_NAME
    key.unlink()
    create_key(key, "same.example/log")
    with pytest.raises(InstanceError, match="not the log key"):
        open_instance(inst)


def test_open_ledger_missing_pieces(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InstanceError, match="luodi init"):
        open_instance(missing)
    with pytest.raises(InstanceError, match="luodi init"):
        open_instance(missing, with_key=False)
    with pytest.raises(InstanceError, match="luodi init"):
        upgrade_database(missing)
    assert not missing.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InstanceError, match="no database"):
        open_instance(empty, with_key=False)
    with pytest.raises(InstanceError, match="no database"):
        open_instance(empty)
    assert list(empty.iterdir()) == []

    inst = tmp_path / "inst"
    close(init_instance(inst))
    (inst / KEY_NAME).unlink()
    with pytest.raises(InstanceError, match="no log key"):
        open_instance(inst)


def test_open_ledger_round_trip(tmp_path):
    inst = tmp_path / "inst"
    close(init_instance(inst))
    ledger = open_instance(inst).ledger
    try:
        ledger.append_batch(notes(10))
        assert verify_log(ledger.store, REGISTRY).size == 12
    finally:
        close(ledger)
    assert upgrade_database(inst) == []


def test_init_with_a_lost_key_refuses_and_writes_nothing(tmp_path):
    """If the key file is gone, init must not mint a new key for the existing log."""
    inst = tmp_path / "inst"
    close(init_instance(inst))
    (inst / KEY_NAME).unlink()
    before = files(inst)
    with pytest.raises(InstanceError):
        init_instance(inst)
    assert not (inst / KEY_NAME).exists(), "a refused init left a new, useless key behind"
    assert files(inst) == before


def test_key_text_never_in_database_or_cli_output(tmp_path):
    inst = tmp_path / "inst"
    runner = CliRunner()
    outputs = []
    for args in (["init"], ["init"], ["demo", "--donations", "40"], ["status"], ["verify"], ["checkpoint"], ["db", "upgrade"]):
        result = runner.invoke(main, [*args[:1], *args[1:], "--instance", str(inst)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    key_text = (inst / KEY_NAME).read_text().strip()
    signer = Signer.from_string(key_text)
    seed_b64 = key_text.split("+", 4)[4]
    seed = base64.b64decode(seed_b64)[1:]
    assert len(seed) == 32
    assert signer.to_string() == key_text
    assert repr(signer).find(seed_b64) == -1
    stored = [p for p in inst.rglob("*") if p.is_file() and p.name != KEY_NAME]
    assert any(p.parent.name == "demo-keys" for p in stored)  # the charities' demo keys are scanned too
    for path in stored:
        data = path.read_bytes()
        name = path.name
        for secret in (key_text.encode(), seed_b64.encode(), seed, seed.hex().encode()):
            assert secret not in data, name
    text = "\n".join(outputs)
    assert "PRIVATE" not in text
    assert seed_b64 not in text and seed_b64[:16] not in text
    assert signer.verifier.to_string() in text  # the public key is shown, the private one never
    assert re.search(r"entries:\s+2", outputs[0])
