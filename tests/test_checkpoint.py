"""C2SP tlog-checkpoint: the text format, signing, parsing and opening."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log import merkle
from ledger.log.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from ledger.errors import MalformedNote, SignatureError
from ledger.log.note import DASH, Signer, open_note, parse_note, sign_note

ORIGIN = "cp.luodi.example/log"
ROOT = hashlib.sha256(b"a root").digest()
ROOT64 = base64.b64encode(ROOT).decode()
ROOT64_31 = base64.b64encode(ROOT[:31]).decode()
ROOT64_33 = base64.b64encode(ROOT + b"x").decode()
URLSAFE64 = base64.urlsafe_b64encode(b"\xff" * 32).decode()


@pytest.fixture
def make_signer():
    """make_signer(name=ORIGIN, seed=0) -> a deterministic Signer."""

    def factory(name: str = ORIGIN, seed: int = 0) -> Signer:
        return Signer(name, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"cp %d" % seed).digest()))

    return factory


def test_text_format():
    assert Checkpoint(ORIGIN, 42, ROOT).text() == f"{ORIGIN}\n42\n{ROOT64}\n"
    empty64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # SHA-256 of nothing
    assert Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT).text() == f"{ORIGIN}\n0\n{empty64}\n"
    assert Checkpoint(ORIGIN, 7, ROOT, ("ext one", "ext two")).text() == f"{ORIGIN}\n7\n{ROOT64}\next one\next two\n"


@pytest.mark.parametrize("size", [0, 1, 9, 10, 2**53, 2**64 - 1])
def test_text_round_trips_through_parse(size):
    cp = Checkpoint(ORIGIN, size, ROOT, ("x",))
    assert parse_checkpoint(cp.text()) == cp


def test_sign_and_open_round_trip(make_signer):
    s = make_signer()
    cp = Checkpoint(ORIGIN, 1234, ROOT, ("extension line",))
    signed = cp.sign(s)
    assert signed.startswith(cp.text() + "\n" + DASH + ORIGIN + " ")
    assert signed == sign_note(cp.text(), s)
    assert cp.sign(s) == signed  # Ed25519 is deterministic
    assert open_checkpoint(signed, s.verifier) == cp
    assert open_checkpoint(signed.encode(), s.verifier, origin=ORIGIN) == cp


def test_open_refuses_another_origin(make_signer):
    s = make_signer()
    signed = Checkpoint(ORIGIN, 1, ROOT).sign(s)
    with pytest.raises(SignatureError):
        open_checkpoint(signed, s.verifier, origin="other.luodi.example/log")
    # A checkpoint whose origin line is not the signing key's name is refused by default.
    foreign = Checkpoint("other.luodi.example/log", 1, ROOT).sign(s)
    with pytest.raises(SignatureError):
        open_checkpoint(foreign, s.verifier)
    assert open_checkpoint(foreign, s.verifier, origin="other.luodi.example/log").origin == "other.luodi.example/log"


def test_open_refuses_other_keys_and_tampering(make_signer):
    s, other = make_signer(seed=1), make_signer(seed=2)  # same name, different keys
    signed = Checkpoint(ORIGIN, 5, ROOT).sign(s)
    with pytest.raises(SignatureError):
        open_checkpoint(signed, other.verifier)
    with pytest.raises(SignatureError):
        open_checkpoint(signed.replace("\n5\n", "\n6\n"), s.verifier)
    tampered_root = base64.b64encode(hashlib.sha256(b"another root").digest()).decode()
    with pytest.raises(SignatureError):
        open_checkpoint(signed.replace(ROOT64, tampered_root), s.verifier)


def test_open_refuses_a_signed_note_that_is_not_a_checkpoint(make_signer):
    s = make_signer()
    with pytest.raises(MalformedNote):
        open_checkpoint(sign_note(f"{ORIGIN}\n5\n", s), s.verifier)
    with pytest.raises(MalformedNote):
        open_checkpoint(sign_note(f"{ORIGIN}\nfive\n{ROOT64}\n", s), s.verifier)


BAD_TEXTS = {
    "leading-zero": f"{ORIGIN}\n01\n{ROOT64}\n",
    "double-zero": f"{ORIGIN}\n00\n{ROOT64}\n",
    "negative": f"{ORIGIN}\n-1\n{ROOT64}\n",
    "plus-sign": f"{ORIGIN}\n+1\n{ROOT64}\n",
    "hex": f"{ORIGIN}\n0x10\n{ROOT64}\n",
    "spaces": f"{ORIGIN}\n 1\n{ROOT64}\n",
    "decimal-point": f"{ORIGIN}\n1.0\n{ROOT64}\n",
    "exponent": f"{ORIGIN}\n1e3\n{ROOT64}\n",
    "underscore": f"{ORIGIN}\n1_000\n{ROOT64}\n",
    "fullwidth-digits": f"{ORIGIN}\n\uff11\uff12\n{ROOT64}\n",
    "empty-size": f"{ORIGIN}\n\n{ROOT64}\n",
    "too-many-digits": f"{ORIGIN}\n{'9' * 21}\n{ROOT64}\n",
    "bad-base64": f"{ORIGIN}\n1\n{ROOT64[:-2]}!=\n",
    "base64-no-padding": f"{ORIGIN}\n1\n{ROOT64.rstrip('=')}\n",
    "base64url": f"{ORIGIN}\n1\n{URLSAFE64}\n",
    "base64-with-space": f"{ORIGIN}\n1\n{ROOT64[:10]} {ROOT64[10:]}\n",
    "root-31-bytes": f"{ORIGIN}\n1\n{ROOT64_31}\n",
    "root-33-bytes": f"{ORIGIN}\n1\n{ROOT64_33}\n",
    "root-empty": f"{ORIGIN}\n1\n\n",
    "root-hex": f"{ORIGIN}\n1\n{ROOT.hex()}\n",
    "non-ascii-root": f"{ORIGIN}\n1\n{ROOT64[:-2]}\u00e9=\n",
    "two-lines": f"{ORIGIN}\n1\n",
    "one-line": f"{ORIGIN}\n",
    "empty": "",
    "no-final-newline": f"{ORIGIN}\n1\n{ROOT64}",
    "empty-extension-line": f"{ORIGIN}\n1\n{ROOT64}\n\n",
    "empty-extension-between": f"{ORIGIN}\n1\n{ROOT64}\next\n\nmore\n",
    "empty-origin": f"\n1\n{ROOT64}\n",
}


@pytest.mark.parametrize("text", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_parse_refuses(text):
    with pytest.raises(MalformedNote):
        parse_checkpoint(text)


def test_parse_refuses_non_canonical_base64_root():
    """32 bytes leave 2 unused bits in the last base64 character; setting them is another text for the same root."""
    last = ROOT64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    dirty = alphabet[alphabet.index(last) ^ 0b01]
    text = f"{ORIGIN}\n1\n{ROOT64[:-2]}{dirty}=\n"
    assert base64.b64decode(text.split("\n")[2]) == ROOT  # the lenient decoder maps it to the same bytes
    with pytest.raises(MalformedNote):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root": ROOT},
        {"origin": "a\nb", "size": 1, "root": ROOT},
        {"origin": ORIGIN, "size": -1, "root": ROOT},
        {"origin": ORIGIN, "size": "1", "root": ROOT},
        {"origin": ORIGIN, "size": 1, "root": ROOT[:31]},
        {"origin": ORIGIN, "size": 1, "root": b""},
        {"origin": ORIGIN, "size": 1, "root": ROOT, "extensions": ("",)},
        {"origin": ORIGIN, "size": 1, "root": ROOT, "extensions": ("a\nb",)},
    ],
    ids=[
        "empty-origin", "two-line-origin", "negative-size", "str-size",
        "short-root", "empty-root", "empty-ext", "two-line-ext",
    ],  # fmt: skip
)
def test_checkpoint_refuses_bad_fields(kwargs):
    with pytest.raises(MalformedNote):
        Checkpoint(**kwargs)


# -- checkpoints written by the ledger -------------------------------------------------------


def test_ledger_checkpoint_opens_with_the_ledger_verifier(ledger):
    ledger.append_batch([("note", {"text": f"n {i}"}) for i in range(5)])
    signed = ledger.checkpoint()
    cp = open_checkpoint(signed, ledger.verifier)
    assert cp.origin == ledger.origin == ledger.signer.name
    assert cp.size == ledger.size() == 6
    assert cp.root == ledger.root()
    assert cp.extensions == ()
    assert ledger.latest_checkpoint() == cp
    assert parse_note(signed).signatures[0].key_id == ledger.verifier.key_id


def test_every_batch_leaves_a_checkpoint_at_its_size(ledger):
    sizes = [1]
    for k in (1, 3, 2, 8):
        ledger.append_batch([("note", {"text": f"k{k} n{i}"}) for i in range(k)])
        sizes.append(ledger.size())
    for size in sizes:
        cp = open_checkpoint(ledger.checkpoint(size), ledger.verifier)
        assert (cp.size, cp.root) == (size, ledger.root(size))
        opened = open_note(ledger.checkpoint(size), ledger.verifier)
        assert opened.text == cp.text()


def test_ledger_checkpoint_refused_by_another_log_key(make_ledger, ledger):
    other = make_ledger("other", signer_=Signer.generate(ledger.origin))  # same origin, another key
    with pytest.raises(SignatureError):
        open_checkpoint(ledger.checkpoint(), other.verifier)
    with pytest.raises(SignatureError):
        open_checkpoint(other.checkpoint(), ledger.verifier)
