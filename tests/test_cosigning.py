"""The log gathers cosignatures (ledger/log/cosigning.py) and keeps them (both drivers).

The witnesses here are honest stand-ins over real HTTP (cosigning_helpers.StandIn),
driven one tick at a time, so that each test says exactly which requests went out;
tests/test_cosigning_e2e.py runs the same against real ``luodi witness serve``
processes behind a real ``luodi serve``.  The storage tests run on both backends;
the policy refusals need no storage.
"""

from __future__ import annotations

import base64

import pytest
from api_helpers import make_api  # noqa: F401  (a fixture)
from backends import execute, integrity_errors
from click.testing import CliRunner
from cosigning_helpers import Relay, StandIn, policy_text, wait_for

from api.cli import main
from api.instance import init_instance, witness_policy
from api.witness_client import HttpWitness
from ledger.errors import InstanceError, QuorumNotMet
from ledger.log.cosignature import Cosigner
from ledger.log.cosigning import Gatherer, log_policy
from ledger.log.note import Signer

# -- the policy ------------------------------------------------------------------------------

LOG = Signer.generate("example.org/log").verifier
W = [Cosigner.generate(f"w{i}.example").verifier.to_string() for i in (1, 2, 3)]


def _policy(*lines: str) -> str:
    return "\n".join(lines) + "\n"


GOOD = _policy(
    f"log {LOG.to_string()}",
    f"witness a {W[0]} https://a.example/",
    f"witness b {W[1]} http://b.example:8080/w",
    "group two 2 a b",
    "quorum two",
)


def test_a_policy_for_this_log_parses():
    policy = log_policy(GOOD, LOG)
    assert sorted(policy.witnesses) == ["a", "b"] and policy.describe() == "2 of (a, b)"
    assert log_policy(GOOD.replace(f"log {LOG.to_string()}\n", ""), LOG).witnessed({"a", "b"})


@pytest.mark.parametrize(
    "text, says",
    [
        (GOOD.replace(LOG.to_string(), Signer.generate("example.org/log").verifier.to_string()), "not this log's key"),
        (GOOD.replace("quorum two", "quorum none"), "remove the file"),
        (_policy("quorum none"), "remove the file"),
        (GOOD.replace(" https://a.example/", ""), "witness a needs its submission URL"),
        (GOOD.replace("https://a.example/", "ftp://a.example/"), "witness a needs its submission URL"),
        (GOOD.replace("https://a.example/", "http://:80/"), "witness a needs its submission URL"),
        (GOOD.replace(W[1], W[0]), "already in the policy"),  # duplicate keys (tlog-policy)
        (GOOD.replace("group two 2 a b", "group two 3 a b"), "policy line 4"),
        (GOOD.replace("quorum two\n", ""), "quorum line"),
        (GOOD + "interval 5\n", "policy line 6"),
    ],
)
def test_a_policy_the_log_cannot_use_is_refused_in_one_line(text, says):
    with pytest.raises(InstanceError, match=says) as caught:
        log_policy(text, LOG)
    assert "\n" not in caught.value.detail


def test_serve_refuses_a_bad_policy_file_in_one_line_exit_2(tmp_path):
    inst = tmp_path / "inst"
    made = init_instance(inst)
    own_key = made.ledger.verifier
    made.charity.stores.close()
    (inst / "witness-policy").write_text(GOOD)  # another log's key
    done = CliRunner().invoke(main, ["serve", "--instance", str(inst)])
    assert done.exit_code == 2
    assert done.output.count("\n") == 1 and "witness-policy: its log line names" in done.output, done.output
    with pytest.raises(InstanceError, match="witness-policy"):
        witness_policy(inst, own_key)  # the same refusal, by the reader the server uses
    assert witness_policy(tmp_path) is None  # no file: no witnesses


@pytest.mark.sqlite_only("what the edge serves without witnesses does not depend on the storage driver")
def test_without_a_policy_nothing_changes_and_the_status_says_so(make_api):
    env = make_api()
    status = env.client.get("/v1/status")
    assert status.status_code == 200 and status.headers["Cache-Control"] == "no-cache"
    assert status.get_json() == {"tree_size": env.reader.size(), "witnessing": None}
    assert env.client.get("/v1/checkpoint").get_data(as_text=True) == env.reader.checkpoint()
    assert "cosigned" not in env.client.get(f"/v1/receipts/{env.gifts[0]}").get_json()


# -- storage --------------------------------------------------------------------------------


def test_cosigned_checkpoints_are_the_logs_with_lines_added_and_append_only(make_ledger, backend):
    ledger = make_ledger()
    ledger.append("note", {"text": "one"})
    size, note = ledger.store.checkpoint()
    line = Cosigner.generate("w.example").cosign(note.split("\n\n")[0] + "\n")
    store = ledger.store
    assert store.cosigned_checkpoint() is None
    root_line = note.split("\n")[2]
    for bad_size, bad_note in [
        (size, note),  # nothing added
        (size, note.replace(root_line, "A" * 43 + "=") + line),  # not the log's note: another root
        (size, line + note),  # lines before the log's own
        (size + 7, note + line),  # no checkpoint at that size
        (size - 1, note + line),  # the log's note at another size
    ]:
        with pytest.raises(integrity_errors(), match="cosignatures added"):
            store.add_cosigned_checkpoint(bad_size, bad_note)
    assert store.add_cosigned_checkpoint(size, note + line) is True
    assert store.add_cosigned_checkpoint(size, note + line + line) is False  # the first of a size is kept
    assert store.cosigned_checkpoint() == (size, note + line) == store.cosigned_checkpoint(size)
    assert store.cosigned_checkpoint(size - 1) is None
    for sql in ("UPDATE cosigned_checkpoints SET note = note || 'x'", "DELETE FROM cosigned_checkpoints"):
        with pytest.raises(integrity_errors(), match="append-only"):
            execute(store, (sql, ()))
    if backend.name == "postgres":
        with pytest.raises(integrity_errors(), match="append-only"):
            execute(store, ("TRUNCATE cosigned_checkpoints", ()))
    assert store.cosigned_checkpoint() == (size, note + line)


# -- gathering, tick by tick ------------------------------------------------------------------

# What the gatherer sends and decides is the same on either driver: the first test runs on both
# (it stores and reads through the driver), the others on SQLite only.
ONE_DRIVER = pytest.mark.sqlite_only("the gatherer's requests and decisions do not depend on the storage driver")


@pytest.fixture
def three(ledger):
    """Three stand-in witnesses of ``ledger``'s log, each behind a counting relay."""
    stand = [StandIn(f"w{i}.example", ledger.verifier) for i in (1, 2, 3)]
    relays = [Relay(s.url) for s in stand]
    yield stand, relays
    for server in relays + stand:
        server.close()


def gatherer_of(ledger, stand, relays, quorum=2, timeout=1.0) -> Gatherer:
    text = policy_text([(f"w{i}", s.vkey, r.url) for i, (s, r) in enumerate(zip(stand, relays), 1)], quorum)
    return Gatherer(ledger, log_policy(text, ledger.verifier), HttpWitness.of, interval=60, timeout=timeout)


def settle(g: Gatherer) -> Gatherer:
    """One tick, then wait until no witness has a request under way."""
    g.tick()
    wait_for(g.idle)
    return g


def test_two_of_three_cosign_and_the_note_meets_the_policy(ledger, three):
    stand, relays = three
    g = gatherer_of(ledger, stand, relays)
    g.start_couriers()
    ledger.append_batch([("note", {"text": f"n{i}"}) for i in range(5)])
    settle(g)
    size, note = ledger.store.cosigned_checkpoint()
    assert size == ledger.size() == 6
    checkpoint, cosigned = g.policy.check(note, ledger.verifier)
    assert checkpoint.size == 6 and sorted(cosigned) == ["w1", "w2", "w3"]
    assert [r.requests for r in relays] == [1, 1, 1]  # each witness was new: old size 0, no proof
    # Nothing new: nothing is sent.
    settle(g)
    assert [r.requests for r in relays] == [1, 1, 1]
    # The next checkpoint goes with a consistency proof from the size each witness holds.
    ledger.append("note", {"text": "more"})
    settle(g)
    assert [r.requests for r in relays] == [2, 2, 2]
    assert all(r.bodies[-1].startswith(b"old 6\n") and r.bodies[-1].count(b"\n") > 8 for r in relays)
    assert ledger.store.cosigned_checkpoint()[0] == 7
    g.stop()


@ONE_DRIVER
def test_a_witness_that_holds_another_size_answers_409_and_gets_the_right_proof(ledger, three):
    stand, relays = three
    ledger.append_batch([("note", {"text": f"n{i}"}) for i in range(3)])
    first = gatherer_of(ledger, stand, relays)
    first.start_couriers()
    settle(first)
    first.stop()
    ledger.append_batch([("note", {"text": f"m{i}"}) for i in range(4)])
    again = gatherer_of(ledger, stand, relays)  # a restarted server: it knows no witness's size
    again.start_couriers()
    settle(again)
    assert [r.requests for r in relays] == [3, 3, 3]  # old 0 -> 409 "4" -> old 4 with the proof
    assert all(r.bodies[-2].startswith(b"old 0\n\n") and r.bodies[-1].startswith(b"old 4\n") for r in relays)
    assert [s.size for s in stand] == [8, 8, 8] and ledger.store.cosigned_checkpoint()[0] == 8
    assert [st.size for st in again.states.values()] == [8, 8, 8]
    again.stop()


@ONE_DRIVER
def test_one_witness_that_never_answers_does_not_stop_the_quorum(ledger, three):
    stand, relays = three
    relays[2].mode = "hole"
    g = gatherer_of(ledger, stand, relays, timeout=0.5)
    g.start_couriers()
    ledger.append("note", {"text": "x"})
    g.tick()
    wait_for(lambda: ledger.store.cosigned_checkpoint())
    size, note = ledger.store.cosigned_checkpoint()
    assert size == 2 and sorted(g.policy.check(note, ledger.verifier)[1]) == ["w1", "w2"]
    wait_for(lambda: not g.states["w3"].busy)
    assert "no answer" in g.states["w3"].last_error and g.states["w3"].last_success is None
    g.stop()


@ONE_DRIVER
def test_two_down_is_no_quorum_and_nothing_is_stored(ledger, three):
    stand, relays = three
    relays[1].mode, relays[2].mode = "refuse", "hole"
    g = gatherer_of(ledger, stand, relays, timeout=0.5)
    g.start_couriers()
    ledger.append("note", {"text": "x"})
    settle(g)
    assert ledger.store.cosigned_checkpoint() is None
    status = g.status()
    assert status["cosigned_by"] == ["w1"] and status["last_stored_size"] is None
    assert [w["last_error"] is not None for w in status["witnesses"]] == [False, True, True]
    # One comes back: the same checkpoint goes to the witnesses that have not cosigned it, and it is met.
    relays[1].mode = "pass"
    settle(g)
    assert [r.requests for r in relays[:2]] == [1, 2]
    assert ledger.store.cosigned_checkpoint()[0] == 2
    g.stop()


@ONE_DRIVER
def test_a_bad_cosignature_is_refused_and_a_foreign_one_ignored(ledger, three):
    stand, relays = three
    g = gatherer_of(ledger, stand, relays, quorum=3)
    stranger = Cosigner.generate("w1.example")  # w1's name, another key: another key ID, a stranger's line
    stand[0].cosigner = _Answers(stand[0].cosigner, lambda own, text: stranger.cosign(text) + own.cosign(text))
    stand[2].cosigner = _Answers(stand[2].cosigner, lambda own, text: _flip(own.cosign(text)))
    g.start_couriers()
    ledger.append("note", {"text": "x"})
    settle(g)
    assert g.states["w1"].last_error is None and g.states["w1"].last_success_size == 2
    assert "does not verify" in g.states["w3"].last_error
    assert ledger.store.cosigned_checkpoint() is None  # 3 of 3 needed, and w3's answer was refused
    stand[2].cosigner = stand[2].cosigner.own
    settle(g)
    _, note = ledger.store.cosigned_checkpoint()
    assert stranger.verifier.key_id.hex() not in note and sorted(g.policy.check(note, ledger.verifier)[1]) == [
        "w1", "w2", "w3"
    ]
    g.stop()


class _Answers:
    """A witness's key that answers ``how(own, text)`` instead of its own line."""

    def __init__(self, own: Cosigner, how):
        self.own, self.how, self.verifier = own, how, own.verifier

    def cosign(self, text: str) -> str:
        return self.how(self.own, text)


def _flip(line: str) -> str:
    """The line with one bit of its Ed25519 signature flipped."""
    head, b64 = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return f"{head} {base64.b64encode(bytes(raw)).decode()}\n"


@ONE_DRIVER
def test_a_checkpoint_without_the_quorum_fails_the_donors_check(ledger, three):
    stand, relays = three
    relays[1].mode = relays[2].mode = "refuse"
    g = gatherer_of(ledger, stand, relays, timeout=0.5)
    g.start_couriers()
    ledger.append("note", {"text": "x"})
    settle(g)
    note = ledger.checkpoint() + stand[0].cosigner.cosign(ledger.checkpoint().split("\n\n")[0] + "\n")
    with pytest.raises(QuorumNotMet, match="cosigned by 1 of"):
        g.policy.check(note, ledger.verifier)
    g.stop()
