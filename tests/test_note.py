"""C2SP signed notes with Ed25519: the golang.org/x/mod/sumdb/note vector, keys, and refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log import note
from ledger.errors import LuodiError, MalformedNote, SignatureError
from ledger.log.note import DASH, MAX_SIGNATURES, Signer, Verifier, key_id, open_note, parse_note, sign_note

# The example of golang.org/x/mod/sumdb/note's documentation and tests.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
PETER_NOTE = (PETER_TEXT + "\n" + PETER_SIG).encode("utf-8")
PETER_KEY = base64.b64decode(PETER_VKEY.split("+")[2])[1:]


@pytest.fixture
def peter() -> Verifier:
    return Verifier.from_string(PETER_VKEY)


@pytest.fixture
def make_signer():
    """make_signer(name="a.example/log", seed=0) -> a deterministic Signer."""

    def factory(name: str = "a.example/log", seed: int = 0) -> Signer:
        return Signer(name, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"seed %d" % seed).digest()))

    return factory


@pytest.fixture
def plus_signer(make_signer) -> Signer:
    """A signer whose signer and verifier key strings both have a '+' in their base64."""
    for seed in range(1000):
        s = make_signer("plus.luodi.example/log", seed)
        if "+" in s.to_string().split("+", 4)[4] and "+" in s.verifier.to_string().split("+", 2)[2]:
            return s
    raise AssertionError("no seed gave a '+' in both key strings")


# -- the Go vector ----------------------------------------------------------------------


def test_go_vector_opens(peter):
    opened = open_note(PETER_NOTE, peter)
    assert opened.text == PETER_TEXT
    assert [(s.name, s.key_id.hex()) for s in opened.signatures] == [("PeterNeumann", "c74f20a3")]
    assert open_note(PETER_NOTE.decode("utf-8"), [peter]) == opened


def test_go_vector_key_id(peter):
    raw = base64.b64decode(PETER_VKEY.split("+")[2])
    assert raw[0] == 0x01 and len(raw) == 33
    assert peter.name == "PeterNeumann"
    assert peter.public_key == raw[1:]
    assert key_id("PeterNeumann", raw[1:]).hex() == "c74f20a3"
    assert key_id("PeterNeumann", raw[1:]) == hashlib.sha256(b"PeterNeumann\n\x01" + raw[1:]).digest()[:4]
    assert peter.key_id.hex() == "c74f20a3"
    assert peter.to_string() == PETER_VKEY


def test_go_vector_signature_is_over_the_text_alone(peter):
    raw = base64.b64decode(PETER_SIG.split(" ")[2])
    assert raw[:4].hex() == "c74f20a3"
    assert peter.verify(PETER_TEXT.encode(), raw[4:])
    assert not peter.verify(PETER_TEXT.encode() + b"\n", raw[4:])


def _replacements(i: int):
    for b in range(256):
        if b != PETER_NOTE[i]:
            yield PETER_NOTE[:i] + bytes([b]) + PETER_NOTE[i + 1 :]


@pytest.mark.parametrize("i", range(len(PETER_NOTE)))
def test_go_vector_any_changed_byte_fails(peter, i):
    """Every other value of byte i must make open_note raise a LuodiError.

    Any error other than MalformedNote or SignatureError fails the test too.
    """
    verified = []
    for changed in _replacements(i):
        try:
            open_note(changed, peter)
        except (MalformedNote, SignatureError):
            continue
        verified.append(chr(changed[i]))
    assert not verified, f"byte {i} ({chr(PETER_NOTE[i])!r}) replaced by any of {verified!r} still verifies"


def test_go_vector_with_unknown_signatures_around_it(peter, make_signer):
    other = make_signer("other.example/log")
    extra = other.signature_line(PETER_TEXT)
    for sigs in (extra + PETER_SIG, PETER_SIG + extra):
        opened = open_note(PETER_TEXT + "\n" + sigs, peter)
        assert [s.name for s in opened.signatures] == ["PeterNeumann"]


# -- keys -----------------------------------------------------------------------------------


def test_signer_and_verifier_strings_round_trip(plus_signer):
    skey, vkey = plus_signer.to_string(), plus_signer.verifier.to_string()
    assert skey.startswith("PRIVATE+KEY+plus.luodi.example/log+")
    assert vkey.startswith("plus.luodi.example/log+")
    again = Signer.from_string(skey)
    assert again.to_string() == skey
    assert again.verifier == plus_signer.verifier == Verifier.from_string(vkey)
    assert Verifier.from_string(vkey).to_string() == vkey
    assert Signer.from_string(skey + "\n").to_string() == skey  # a key file's trailing newline
    # The parsed signer signs what the original's verifier accepts.
    open_note(sign_note("hello\n", again), plus_signer.verifier)


def test_key_strings_have_the_go_layout(make_signer):
    s = make_signer("golang.example/log", 3)
    name, hexid, b64 = s.verifier.to_string().split("+", 2)
    assert (name, hexid) == ("golang.example/log", s.verifier.key_id.hex())
    assert base64.b64decode(b64) == b"\x01" + s.verifier.public_key
    parts = s.to_string().split("+", 4)
    assert parts[:4] == ["PRIVATE", "KEY", "golang.example/log", hexid]
    assert base64.b64decode(parts[4]) == b"\x01" + hashlib.sha256(b"seed 3").digest()


def test_signer_repr_hides_the_private_key(make_signer):
    s = make_signer()
    seed = hashlib.sha256(b"seed 0").digest()
    text = repr(s) + str(s)
    seed_b64 = s.to_string().split("+", 4)[4]
    for secret in (s.to_string(), seed_b64, base64.b64encode(seed).decode(), seed.hex(), str(seed)):
        assert secret not in text
    assert "PRIVATE" not in text
    assert s.verifier.to_string() in repr(s)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # hash must be lowercase
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong hash
        "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # hash is for another name
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad base64
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",  # padding after a full quad
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW==",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T!",
        "PeterNeumann+c74f20a3+" + base64.b64encode(PETER_KEY).decode(),  # no algorithm byte
        "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + PETER_KEY).decode(),  # algorithm 0x02
        "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x01" + PETER_KEY + b"\x00").decode(),  # 33-byte key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        None,
        b"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_verifier_from_string_refuses_malformed_keys(vkey):
    with pytest.raises(MalformedNote):
        Verifier.from_string(vkey)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s.replace("PRIVATE+KEY+", "PRIVATE+KEY"), id="fused-prefix"),
        pytest.param(lambda s: s.replace("PRIVATE", "PUBLIC"), id="not-private"),
        pytest.param(lambda s: s.split("+", 2)[2], id="verifier-layout"),
        pytest.param(lambda s: s[:-1], id="truncated-base64"),
        pytest.param(lambda s: s + "=", id="padding-after-full-quad"),  # not the canonical encoding
        pytest.param(lambda s: s[:-4] + "!!!!", id="bad-base64-chars"),
        pytest.param(
            lambda s: s.rsplit("+", 1)[0] + "+" + base64.b64encode(b"\x01" + b"\x00" * 31).decode(), id="31-byte-seed"
        ),
        pytest.param(
            lambda s: s.rsplit("+", 1)[0] + "+" + base64.b64encode(b"\x02" + b"\x00" * 32).decode(), id="alg-2"
        ),
        pytest.param(lambda s: s.replace("+a.example/log+", "+b.example/log+"), id="hash-for-other-name"),
        pytest.param(lambda s: s.replace("+a.example/log+", "+a example/log+"), id="name-with-space"),
        pytest.param(lambda s: "", id="empty"),
        pytest.param(lambda s: None, id="none"),
    ],
)
def test_signer_from_string_refuses_malformed_keys(make_signer, mangle):
    with pytest.raises(MalformedNote):
        Signer.from_string(mangle(make_signer().to_string()))


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\tb", "a\nb", "a\u3000b", "a\x00b", None, 5])
def test_key_names_with_spaces_plus_or_controls_are_refused(name):
    with pytest.raises(MalformedNote):
        note.check_name(name)
    with pytest.raises(MalformedNote):
        Signer.generate(name)


@pytest.mark.parametrize("public_key", [b"", b"\x00" * 31, b"\x00" * 33])
def test_verifier_refuses_keys_that_are_not_32_bytes(public_key):
    with pytest.raises(MalformedNote):
        Verifier("a.example/log", public_key)


# -- signing and opening --------------------------------------------------------------------


def test_sign_and_open_round_trip(make_signer):
    s = make_signer()
    text = "origin\n42\n\u843d\u5730 lands\n"
    signed = sign_note(text, s)
    sig = base64.b64encode(s.verifier.key_id + s.sign(text.encode())).decode()
    assert signed == f"{text}\n{DASH}a.example/log {sig}\n"
    assert signed == text + "\n" + s.signature_line(text)
    assert sign_note(text, s) == signed  # Ed25519 is deterministic
    opened = open_note(signed, s.verifier)
    assert opened.text == text
    assert opened.signatures[0].signature == s.sign(text.encode())
    assert open_note(signed.encode("utf-8"), [s.verifier]) == opened


def test_unknown_key_signatures_are_ignored_while_a_known_one_verifies(make_signer):
    known, unknown = make_signer("known.example/log", 1), make_signer("unknown.example/log", 2)
    impostor = make_signer("known.example/log", 3)  # same name, other key: a different key ID
    signed = sign_note("text\n", unknown, known, impostor)
    opened = open_note(signed, known.verifier)
    assert [(s.name, s.key_id) for s in opened.signatures] == [("known.example/log", known.verifier.key_id)]
    # A garbage signature under an unknown key ID is ignored as well.
    garbage = f"{DASH}unknown.example/log {base64.b64encode(b'1234' + b'x' * 64).decode()}\n"
    assert open_note(signed + garbage, known.verifier).signatures == opened.signatures


def test_every_trusted_key_that_signed_is_reported(make_signer):
    a, b = make_signer("a.example/log", 1), make_signer("b.example/log", 2)
    opened = open_note(sign_note("text\n", a, b), [b.verifier, a.verifier])
    assert [s.name for s in opened.signatures] == ["a.example/log", "b.example/log"]


def _forged_line(signer: Signer, signature: bytes) -> str:
    return f"{DASH}{signer.name} {base64.b64encode(signer.verifier.key_id + signature).decode()}\n"


@pytest.mark.parametrize(
    "forge",
    [
        lambda s, text: _forged_line(s, s.sign(b"other text\n")),  # a real signature over other text
        lambda s, text: _forged_line(s, bytes(64)),
        lambda s, text: _forged_line(s, s.sign(text.encode())[:63]),  # too short for Ed25519
        lambda s, text: _forged_line(s, s.sign(text.encode()) + b"\x00"),  # too long
        lambda s, text: _forged_line(s, b"\x00"),
    ],
)
def test_a_bad_signature_by_a_known_key_rejects_the_whole_note(make_signer, forge):
    good, bad = make_signer("good.example/log", 1), make_signer("bad.example/log", 2)
    text = "text\n"
    for sigs in (good.signature_line(text) + forge(bad, text), forge(bad, text) + good.signature_line(text)):
        with pytest.raises(SignatureError):
            open_note(text + "\n" + sigs, [good.verifier, bad.verifier])
        # Without bad's key, its line is just unknown.
        open_note(text + "\n" + sigs, good.verifier)


def test_no_trusted_signature_rejects(make_signer, peter):
    s = make_signer()
    signed = sign_note("text\n", s)
    with pytest.raises(SignatureError):
        open_note(signed, peter)
    with pytest.raises(SignatureError):
        open_note(signed, [])
    with pytest.raises(SignatureError):
        open_note(signed, make_signer("a.example/log", 99).verifier)  # same name, other key
    with pytest.raises(SignatureError):
        open_note(PETER_NOTE, s.verifier)


def test_signature_errors_are_luodi_errors():
    assert issubclass(SignatureError, LuodiError)
    assert issubclass(MalformedNote, LuodiError)


SIG = PETER_SIG[len(DASH) :].split(" ")[1].rstrip("\n")
SHORT_SIG = base64.b64encode(b"1234").decode()  # a key ID and no signature


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(PETER_TEXT + PETER_SIG, id="no-blank-line"),
        pytest.param(PETER_TEXT + "\n", id="no-signatures"),
        pytest.param(PETER_TEXT + "\n\n", id="empty-signature-line"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.rstrip("\n"), id="no-final-newline"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("\u2014 ", "- "), id="hyphen-not-em-dash"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("\u2014 ", "\u2013 "), id="en-dash"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("\u2014 ", "\u2014"), id="no-space-after-dash"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("\u2014 ", " \u2014 "), id="space-before-dash"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann ", "PeterNeumann  "), id="two-spaces"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("\n", " \n"), id="trailing-space"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter Neumann"), id="name-with-space"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"), id="name-with-plus"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("PeterNeumann ", ""), id="no-name"),
        pytest.param(PETER_TEXT + "\n" + f"{DASH}PeterNeumann\n", id="no-signature"),
        pytest.param(PETER_TEXT + "\n" + f"{DASH}PeterNeumann \n", id="empty-signature"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace(SIG, SIG[:-1]), id="bad-base64-padding"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace(SIG, SIG.replace("/", "_")), id="base64url"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace(SIG, "!" + SIG[1:]), id="bad-base64-char"),
        pytest.param(PETER_TEXT + "\n" + f"{DASH}PeterNeumann {SHORT_SIG}\n", id="sig-too-short"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG + "\n", id="blank-line-after-signatures"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG + "not a signature\n", id="trailing-garbage-line"),
        pytest.param(PETER_TEXT.replace("problem,", "problem,\r") + "\n" + PETER_SIG, id="carriage-return"),
        pytest.param(PETER_TEXT.replace(" ", "\t", 1) + "\n" + PETER_SIG, id="tab"),
        pytest.param(PETER_TEXT.replace(" ", "\x00", 1) + "\n" + PETER_SIG, id="nul"),
        pytest.param(PETER_TEXT.replace(" ", "\x1b", 1) + "\n" + PETER_SIG, id="escape"),
        pytest.param(PETER_TEXT + "\n" + PETER_SIG.replace("Neumann", "Neumann\x07"), id="control-in-name"),
        pytest.param(PETER_TEXT.replace("If", "\ud800") + "\n" + PETER_SIG, id="lone-surrogate"),
        pytest.param(PETER_NOTE.replace(b"If", b"\xff\xfe"), id="invalid-utf8"),
        pytest.param(PETER_NOTE.replace(b"If", b"\xed\xa0\x80"), id="utf8-encoded-surrogate"),
        pytest.param("", id="empty"),
        pytest.param(b"", id="empty-bytes"),
        pytest.param(None, id="none"),
        pytest.param(12, id="int"),
    ],
)
def test_malformed_notes_are_refused(peter, bad):
    with pytest.raises(MalformedNote):
        parse_note(bad)
    with pytest.raises(MalformedNote):
        open_note(bad, peter)


def test_too_many_signatures_are_refused(make_signer):
    signers = [make_signer(f"s{i}.example/log", i) for i in range(MAX_SIGNATURES + 1)]
    text = "text\n"
    at_limit = sign_note(text, *signers[:MAX_SIGNATURES])
    assert len(open_note(at_limit, signers[0].verifier).signatures) == 1
    with pytest.raises(MalformedNote):
        open_note(sign_note(text, *signers), signers[0].verifier)
    # Repeating one signature line counts too.
    line = signers[0].signature_line(text)
    with pytest.raises(MalformedNote):
        parse_note(text + "\n" + line * (MAX_SIGNATURES + 1))


def test_oversized_notes_are_refused(make_signer):
    s = make_signer()
    big = "x" * note.MAX_NOTE_BYTES + "\n"
    signed = big + "\n" + s.signature_line(big)
    with pytest.raises(MalformedNote):
        parse_note(signed)
    with pytest.raises(MalformedNote):
        parse_note(signed.encode())


@pytest.mark.parametrize(
    "text",
    ["no newline", "", "two\nlines", "tab\there\n", "cr\r\n", "nul\x00\n", "text\n\x0b\n"],
)
def test_sign_note_refuses_text_without_final_newline_or_with_controls(make_signer, text):
    with pytest.raises(MalformedNote):
        sign_note(text, make_signer())


def test_sign_note_needs_a_signer():
    with pytest.raises(MalformedNote):
        sign_note("text\n")


def test_text_may_hold_blank_lines_before_the_signatures(make_signer):
    s = make_signer()
    text = "para one\n\npara two\n"
    assert open_note(sign_note(text, s), s.verifier).text == text
