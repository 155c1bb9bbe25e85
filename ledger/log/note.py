"""C2SP signed-note with Ed25519 keys (https://c2sp.org/signed-note).

A note is UTF-8 text ending in a newline, a blank line, then one or more lines
``— <key name> base64(4-byte key ID || signature)``.  The key ID is the first
four bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``.  Verifier keys
are written ``name+<8 hex key ID>+base64(0x01 || public key)`` and signer keys
``PRIVATE+KEY+name+<8 hex key ID>+base64(0x01 || seed)``, as in Go's
golang.org/x/mod/sumdb/note, so that tooling can read ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import MalformedNote, SignatureError

ALG_ED25519 = 0x01
DASH = "\u2014 "
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 64  # the spec asks verifiers to accept at least 16
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_NAME_BAD = re.compile(r"[\s+]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name or _NAME_BAD.search(name) or _CONTROL.search(name):
        raise MalformedNote(f"key name {name!r} must be non-empty with no spaces or '+'")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def b64decode_strict(s: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4) with exactly one spelling per value.

    ``validate=True`` still accepts non-zero spare bits and stray padding; a
    signed value must not have two encodings, so the result must re-encode to
    the very same text."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedNote(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != s:
        raise MalformedNote(f"{what} is not canonical base64")
    return raw


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public_key: bytes

    def __post_init__(self):
        check_name(self.name)
        if len(self.public_key) != 32:
            raise MalformedNote("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @classmethod
    def from_string(cls, vkey: str) -> "Verifier":
        """Parse ``name+hash+base64(0x01 || key)``."""
        if not isinstance(vkey, str):
            raise MalformedNote("verifier key must be a string")
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise MalformedNote("verifier key must be name+hash+key")
        name, hexid, b64 = parts
        check_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hexid):
            raise MalformedNote("verifier key hash must be 8 lowercase hex digits")
        raw = b64decode_strict(b64, "verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise MalformedNote("verifier key must be 0x01 followed by a 32-byte Ed25519 key")
        v = cls(name, raw[1:])
        if not hmac.compare_digest(v.key_id, bytes.fromhex(hexid)):
            raise MalformedNote("verifier key hash does not match its name and key")
        return v

    def to_string(self) -> str:
        return self._string

    @cached_property
    def _string(self) -> str:  # every receipt names the log key: worked out once
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True


class Signer:
    """A named Ed25519 private key that signs notes."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey):
        check_name(name)
        self.name = name
        self._key = private_key
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self.verifier = Verifier(name, private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def __repr__(self) -> str:  # never show key material
        return f"Signer({self.verifier.to_string()!r})"

    @classmethod
    def generate(cls, name: str) -> "Signer":
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_string(cls, skey: str) -> "Signer":
        """Parse ``PRIVATE+KEY+name+hash+base64(0x01 || seed)``."""
        parts = skey.strip().split("+", 4) if isinstance(skey, str) else []
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise MalformedNote("signer key must be PRIVATE+KEY+name+hash+key")
        name, hexid, b64 = parts[2:]
        raw = b64decode_strict(b64, "signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise MalformedNote("signer key must be 0x01 followed by a 32-byte Ed25519 seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if not hmac.compare_digest(signer.verifier.key_id.hex().encode(), hexid.encode()):
            raise MalformedNote("signer key hash does not match its name and key")
        return signer

    def to_string(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{_b64(bytes([ALG_ED25519]) + seed)}"

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)

    def signature_line(self, text: str) -> str:
        sig = self.sign(text.encode("utf-8"))
        return f"{DASH}{self.name} {_b64(self.verifier.key_id + sig)}\n"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNote("note text must end in a newline")
    if _CONTROL.search(text):
        raise MalformedNote("note text holds a control character")


def sign_note(text: str, *signers: Signer) -> str:
    """Sign ``text`` (which must end in a newline) with every signer."""
    if not signers:
        raise MalformedNote("a note needs at least one signer")
    _check_text(text)
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signatures, without verifying them."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise MalformedNote("note is too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNote("note is not valid UTF-8") from exc
    if not isinstance(note, str):
        raise MalformedNote("note must be text")
    if len(note) > MAX_NOTE_BYTES:
        raise MalformedNote("note is too large")
    if _CONTROL.search(note):
        raise MalformedNote("note holds a control character")
    if _SURROGATE.search(note):
        raise MalformedNote("note is not valid UTF-8")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("note has no blank line before its signatures")
    text, sigblock = note[: split + 1], note[split + 2 :]
    if not sigblock.endswith("\n"):
        raise MalformedNote("note must end in a newline")
    sigs = []
    for line in sigblock[:-1].split("\n"):
        if not line.startswith(DASH):
            raise MalformedNote("signature line must start with an em dash and a space")
        rest = line[len(DASH) :]
        name, sep, b64 = rest.partition(" ")
        if not sep or " " in b64:
            raise MalformedNote("signature line must be '— name signature'")
        check_name(name)
        raw = b64decode_strict(b64, "signature")
        if len(raw) < 5:
            raise MalformedNote("signature is too short")
        sigs.append(NoteSignature(name, raw[:4], raw[4:]))
    if not sigs:
        raise MalformedNote("note has no signatures")
    if len(sigs) > MAX_SIGNATURES:
        raise MalformedNote(f"note has more than {MAX_SIGNATURES} signatures")
    return Note(text, tuple(sigs))


def open_note(note: str | bytes, verifiers: list[Verifier] | Verifier) -> Note:
    """Parse and verify a note.

    Per the spec: signatures by unknown keys are ignored; a signature by a
    known key (same name and key ID) that fails rejects the whole note; and
    at least one known key must have signed.  Returns the note with only the
    verified signatures.
    """
    if isinstance(verifiers, Verifier):
        verifiers = [verifiers]
    parsed = parse_note(note)
    data = parsed.text.encode("utf-8")
    known = {(v.name, v.key_id): v for v in verifiers}
    good = []
    for sig in parsed.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if len(sig.signature) != 64 or not v.verify(data, sig.signature):
            raise SignatureError(f"signature by {sig.name}+{sig.key_id.hex()} does not verify")
        good.append(sig)
    if not good:
        raise SignatureError("note is not signed by any trusted key")
    return Note(parsed.text, tuple(good))
