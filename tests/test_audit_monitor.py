"""``luodi audit --url ... --state FILE``: a monitor sees the log only grow.

A real server (the Flask app of a real instance under werkzeug) serves a log;
the state file keeps the last verified checkpoint.  A fork (a copy of the
instance that goes on with other entries, signed by the same key), a log that
shrank, and a bad consistency proof each fail with exit 1, and the state is
written only after a run that passed, atomically, with mode 0600.

SQLite only (the default database): the audit reads the server over HTTP only, so which
database serves it does not matter here; the storage, service, API and end-to-end tests
run on every backend.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
from remote_servers import run_audit, servers  # noqa: F401 (a fixture)

from ledger.errors import InvalidInput
from ledger.log.monitor import MonitorState, load_state, save_state
from ledger.log.note import Signer


def monitor(served, state, *extra):
    return run_audit("--url", served.url, "--log-key", served.log_key, "--state", str(state), "--receipts", "5", *extra)


def test_state_starts_advances_and_stays(servers, tmp_path):
    served = servers()
    state = tmp_path / "monitor.json"
    first = monitor(served, state)
    assert first.exit_code == 0, first.output
    assert "state: started at tree size" in first.output
    saved = json.loads(state.read_text())
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert saved["log_key"] == served.log_key and saved["url"] == served.url
    size = saved["tree_size"]

    served.append_notes(5)
    second = monitor(served, state)
    assert second.exit_code == 0, second.output
    assert f"state: advanced from tree size {size} to {size + 5}, consistency proven" in second.output
    assert json.loads(state.read_text())["tree_size"] == size + 5

    third = monitor(served, state)
    assert third.exit_code == 0 and f"state: unchanged at tree size {size + 5}" in third.output


def test_a_fork_signed_by_the_same_key_is_caught(servers, tmp_path):
    """The copy and the original share the first n entries, then each goes on with
    its own; a monitor that saw the original must refuse the copy."""
    path, known = servers.instance("original")
    fork = servers.copy(path, "fork")
    original, forked = servers.serve(path, known), servers.serve(fork, known)
    assert original.log_key == forked.log_key
    original.append_notes(3, "original")
    forked.append_notes(6, "forked")  # longer, so only the history tells them apart
    state = tmp_path / "monitor.json"
    assert monitor(original, state).exit_code == 0
    saved = state.read_bytes()
    size = json.loads(saved)["tree_size"]

    result = monitor(forked, state)
    assert result.exit_code == 1, result.output
    assert f"seq {size - 1} (receipt " in result.output and "the log was rewritten" in result.output
    assert state.read_bytes() == saved  # not written after a failed run


def test_a_shrunk_log_is_caught(servers, tmp_path):
    """A copy taken before the last entries: the tail is gone together with its checkpoints."""
    path, known = servers.instance("grown")
    earlier = servers.copy(path, "earlier")
    served = servers.serve(path, known)
    served.append_notes(4)
    state = tmp_path / "monitor.json"
    assert monitor(served, state).exit_code == 0
    saved = state.read_bytes()

    rolled_back = servers.serve(earlier, known)
    result = monitor(rolled_back, state)
    assert result.exit_code == 1, result.output
    assert "the log shrank" in result.output
    assert state.read_bytes() == saved


def _flip(h: str) -> str:
    b = bytearray(bytes.fromhex(h))
    b[-1] ^= 0x80
    return b.hex()


CONSISTENCY_TAMPERS = {
    "too short": lambda p: p[:-1],
    "too long": lambda p: p + [p[0]],
    "reordered": lambda p: [p[1], p[0], *p[2:]],
    "bit-flipped": lambda p: [*p[:-1], _flip(p[-1])],
    "not hex": lambda p: ["xyz", *p[1:]],
}


@pytest.mark.parametrize("how", CONSISTENCY_TAMPERS)
def test_a_bad_consistency_proof_is_caught(servers, tmp_path, how):
    served = servers()
    state = tmp_path / "monitor.json"
    assert monitor(served, state).exit_code == 0
    saved = state.read_bytes()
    size = json.loads(saved)["tree_size"]
    served.append_notes(37)
    seen = []

    def tamper(doc, query):
        assert len(doc["consistency"]) >= 2
        seen.append(len(doc["consistency"]))
        doc["consistency"] = CONSISTENCY_TAMPERS[how](doc["consistency"])

    served.tamper_json("/v1/proofs/consistency", tamper)
    result = monitor(served, state)
    assert seen, "the consistency proof was not asked for"
    assert result.exit_code == 1, result.output
    assert f"consistency proof from {size} to {size + 37}" in result.output or (
        f"consistency proof from the saved tree size {size} to {size + 37}" in result.output
    )
    assert state.read_bytes() == saved


def test_a_consistency_answer_for_other_sizes_is_caught(servers, tmp_path):
    served = servers()
    state = tmp_path / "monitor.json"
    assert monitor(served, state).exit_code == 0
    served.append_notes(3)
    served.tamper_json("/v1/proofs/consistency", lambda doc, q: doc.update(first=doc["first"] - 1))
    result = monitor(served, state)
    assert result.exit_code == 1 and "asked for the consistency proof from" in result.output


def test_state_of_another_log_key_is_a_usage_error(servers, tmp_path):
    served = servers()
    state = tmp_path / "monitor.json"
    assert monitor(served, state).exit_code == 0
    saved = state.read_bytes()
    other = Signer.generate(served.signer().name).verifier.to_string()
    result = run_audit("--url", served.url, "--log-key", other, "--state", str(state))
    assert result.exit_code == 2 and "belongs to the log key" in result.output
    assert state.read_bytes() == saved


def test_a_state_file_in_a_missing_folder_is_a_usage_error(servers, tmp_path):
    served = servers()
    result = monitor(served, tmp_path / "no-such-folder" / "monitor.json")
    assert result.exit_code == 2 and "its folder is missing or not writable" in result.output


def test_a_state_file_that_is_not_a_state(servers, tmp_path):
    served = servers()
    state = tmp_path / "monitor.json"
    state.write_text('{"format": "something else"}')
    result = monitor(served, state)
    assert result.exit_code == 2 and "is not a monitor state" in result.output
    state.write_text("not json")
    assert monitor(served, state).exit_code == 2


# -- the state file itself ---------------------------------------------------------------------


def _state(size: int = 7) -> MonitorState:
    key = Signer.generate("example.org/log").verifier.to_string()
    return MonitorState(key, "http://x", size, bytes(range(32)), "note\n", "ab" * 32)


def test_save_and_load_round_trip_with_mode_0600(tmp_path):
    path = tmp_path / "s.json"
    state = _state()
    save_state(path, state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_state(path, state.log_key) == state
    assert load_state(tmp_path / "absent.json", state.log_key) is None
    assert os.listdir(tmp_path) == ["s.json"]  # no temporary file left behind


def test_save_replaces_atomically_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    old, new = _state(7), _state(9)
    save_state(path, old)
    before = path.read_bytes()

    def broken_fsync(fd):  # the disk fails before the new file is durable
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        save_state(path, new)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["s.json"]
    save_state(path, new)
    assert json.loads(path.read_text())["tree_size"] == 9


def test_load_refuses_another_key(tmp_path):
    path = tmp_path / "s.json"
    save_state(path, _state())
    with pytest.raises(InvalidInput, match="belongs to the log key"):
        load_state(path, Signer.generate("example.org/log").verifier)
