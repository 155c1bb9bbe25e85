"""ledger/log/policy.py: C2SP tlog-policy files, and checkpoints checked against them."""

from __future__ import annotations

import hashlib

import pytest

from ledger.errors import MalformedNote, QuorumNotMet, SignatureError, VerificationFailed
from ledger.log.checkpoint import Checkpoint
from ledger.log.cosignature import Cosigner, merge_signatures
from ledger.log.note import Signer, parse_note
from ledger.log.policy import Policy

LOG = Signer.generate("example.com/log")
X = [Cosigner.generate(f"x.example/w{i}") for i in (1, 2, 3)]
Y = [Cosigner.generate(f"y.example/w{i}") for i in (1, 2, 3)]


def spec_example() -> str:
    """The two-level example of tlog-policy.md §"Example policy", with real keys."""
    w = "\n".join(f"witness X{i} {c.verifier.to_string()}" for i, c in enumerate(X, 1))
    v = "\n".join(f"witness Y{i} {c.verifier.to_string()}  https://y{i}.example/" for i, c in enumerate(Y, 1))
    return (f"# a comment\n  log {LOG.verifier.to_string()}\n\n{w}\ngroup X-witnesses 2 X1 X2 X3\n\n"
            f"{v}\n\tgroup Y-witnesses any Y1 Y2 Y3\t\n\ngroup X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n")


def cosigned(size: int, *cosigners: Cosigner, signer: Signer = LOG) -> str:
    note = Checkpoint(signer.name, size, hashlib.sha256(b"%d" % size).digest()).sign(signer)
    text = parse_note(note).text
    return merge_signatures(note, "".join(c.cosign(text) for c in cosigners)) if cosigners else note


def test_the_spec_example_policy():
    p = Policy.parse(spec_example())
    assert p.logs == (LOG.verifier,)
    assert list(p.witnesses) == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert p.witnesses["Y2"].url == "https://y2.example/" and p.witnesses["X1"].url is None
    assert p.witnessed({"X1", "X3", "Y2"})
    assert not p.witnessed({"X1", "Y1", "Y2", "Y3"})  # only one X
    assert not p.witnessed({"X1", "X2", "X3"})  # no Y
    assert Policy.parse(p.to_text()).to_text() == p.to_text()
    cp, by = p.check(cosigned(10, X[0], X[1], Y[2]))
    assert cp.size == 10 and set(by) == {"X1", "X2", "Y3"}
    with pytest.raises(QuorumNotMet, match=r"cosigned by 2 of the policy's witnesses \(X1, Y1\)") as e:
        p.check(cosigned(10, X[0], Y[0]))
    assert isinstance(e.value, VerificationFailed) and "2 of (X1, X2, X3)" in e.value.detail


def test_quorum_none_and_flags():
    assert Policy.parse("quorum none\n").witnessed(set())
    p = Policy.of([c.verifier.to_string() for c in X], 2)
    assert p.witnessed({"x.example/w1", "x.example/w3"}) and not p.witnessed({"x.example/w2"})
    p.check(cosigned(3, X[1], X[2]), log=LOG.verifier)
    with pytest.raises(QuorumNotMet):
        p.check(cosigned(3, X[1], Y[0]), log=LOG.verifier)
    with pytest.raises(SignatureError):  # the flags' policy names no log: a key must be given
        p.check(cosigned(3, X[1], X[2]))
    other = Signer.generate("example.com/log")
    with pytest.raises(SignatureError):
        p.check(cosigned(3, X[1], X[2], signer=other), log=LOG.verifier)
    assert Policy.of([], 0).none
    for n in (0, 4):
        with pytest.raises(MalformedNote, match="between 1 and"):
            Policy.of([c.verifier.to_string() for c in X], n)


def test_a_forged_cosignature_by_a_known_witness_rejects_the_checkpoint():
    p = Policy.of([c.verifier.to_string() for c in X], 1)
    good = cosigned(5, X[0])
    line = good.splitlines()[-1]
    bad = good.replace(line, line[:-8] + ("AAAAAAA=" if not line.endswith("AAAAAAA=") else "BBBBBBB="))
    with pytest.raises((SignatureError, MalformedNote)):
        p.check(bad, log=LOG.verifier)


K1, K2 = X[0].verifier.to_string(), X[1].verifier.to_string()


BAD_POLICIES = [
    ("", "quorum line"),
    (f"witness a {K1}\n", "quorum line"),
    ("quorum none\nquorum none\n", "exactly one quorum"),
    ("quorum a\n", "no earlier line"),
    (f"group g any a\nwitness a {K1}\nquorum g\n", "no earlier line"),
    (f"witness a {K1}\nwitness b {K1}\nquorum a\n", "already in the policy"),
    (f"witness a {K1}\nwitness a {K2}\nquorum a\n", "defined twice"),
    (f"witness none {K1}\nquorum none\n", "reserved"),
    (f"witness a {K1}\nwitness b {K2}\ngroup g 3 a b\nquorum g\n", "threshold"),
    (f"witness a {K1}\nwitness b {K2}\ngroup g 0 a b\nquorum g\n", "threshold"),
    (f"witness a {K1}\nwitness b {K2}\ngroup g 01 a b\nquorum g\n", "threshold"),
    (f"witness a {K1}\ngroup g any a a\nquorum g\n", "twice"),
    (f"witness a {K1}\ngroup g any a\ngroup h any a\nquorum h\n", "already a member"),
    (f"log {K1}\nquorum none\n", "0x01"),
    (f"witness a {LOG.verifier.to_string()}\nquorum a\n", "0x04"),
    (f"log {LOG.verifier.to_string()}\nlog {LOG.verifier.to_string()}\nquorum none\n", "already in the policy"),
    ("quorum none\nwitnesses a b\n", "not a policy line"),
    ("quorum none\r\n", "control"),
    ("quorum\n", "not a policy line"),
]


@pytest.mark.parametrize("text, why", BAD_POLICIES, ids=[f"{n}-{why}" for n, (_, why) in enumerate(BAD_POLICIES)])
def test_bad_policies_are_refused_naming_the_line(text, why):
    with pytest.raises(MalformedNote, match=why):
        Policy.parse(text)


def test_the_error_names_the_line():
    with pytest.raises(MalformedNote, match="^policy line 3: "):
        Policy.parse("# policy\nquorum none\nwitnesses a b\n")
