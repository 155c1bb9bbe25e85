"""C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature): Ed25519 ``cosignature/v1``.

A cosignature is a signed-note signature line on a checkpoint, by a witness
that checked the checkpoint is consistent with every one it saw before::

    — <witness name> base64(key ID || timestamp || Ed25519 signature)

- The key ID is ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` (§"Format").
  The type byte is 0x04, where a log's own note key has 0x01.  So a witness
  key never matches a log key, even under the same name.
- The signature is a ``timestamped_signature``: a big-endian u64 POSIX
  timestamp (never above 2**63 - 1), then 64 bytes of Ed25519.
- The signed message (§"Ed25519 signed message") is ``cosignature/v1\\n``,
  then ``time <timestamp>\\n``, then the whole checkpoint note text, with its
  final newline and without signature lines.

Verifier keys are vkeys (signed-note §"Verifier keys") with type 0x04:
``name+<8 hex key ID>+base64(0x04 || key)``.  A witness's private key is
kept as ``PRIVATE+KEY+name+<8 hex key ID>+base64(0x04 || seed)``, the way
:mod:`.note` keeps a log's key.

The spec prefers ML-DSA-44 cosignatures for new deployments.  Witnesses in the
field sign ``cosignature/v1`` today, and this is the type Luodi speaks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from ..errors import MalformedNote, SignatureError
from .note import DASH, NoteSignature, Verifier, b64decode_strict, check_name, parse_note

ALG_COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1"
MAX_TIMESTAMP = (1 << 63) - 1
SIGNATURE_SIZE = 8 + 64  # timestamp, then the Ed25519 signature


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key).digest()[:4]


def signed_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a ``cosignature/v1`` signs: the header line, the time line, the note text."""
    if not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise MalformedNote("a cosignature's timestamp must be 0 to 2**63 - 1")
    if not checkpoint_text.endswith("\n"):
        raise MalformedNote("the cosigned note text must end in a newline")
    return f"{HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def _split_vkey(text: str, what: str) -> tuple[str, str, bytes]:
    parts = text.split("+", 2) if isinstance(text, str) else []
    if len(parts) != 3:
        raise MalformedNote(f"{what} must be name+hash+key")
    name, hexid, b64 = parts
    check_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hexid):
        raise MalformedNote(f"{what} hash must be 8 lowercase hex digits")
    return name, hexid, b64decode_strict(b64, what)


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's name and Ed25519 public key, which check its ``cosignature/v1`` lines."""

    name: str
    public_key: bytes

    def __post_init__(self):
        check_name(self.name)
        if len(self.public_key) != 32:
            raise MalformedNote("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return cosignature_key_id(self.name, self.public_key)

    @classmethod
    def from_string(cls, vkey: str) -> "CosignatureVerifier":
        """Parse ``name+hash+base64(0x04 || key)``."""
        name, hexid, raw = _split_vkey(vkey, "witness key")
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
            raise MalformedNote("a witness key must be 0x04 followed by a 32-byte Ed25519 key")
        v = cls(name, raw[1:])
        if not hmac.compare_digest(v.key_id, bytes.fromhex(hexid)):
            raise MalformedNote("witness key hash does not match its name and key")
        return v

    def to_string(self) -> str:
        return self._string

    @cached_property
    def _string(self) -> str:
        raw = bytes([ALG_COSIGNATURE_V1]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode('ascii')}"

    def matches(self, sig: NoteSignature) -> bool:
        return sig.name == self.name and hmac.compare_digest(sig.key_id, self.key_id)

    def verify(self, checkpoint_text: str, sig: NoteSignature) -> int:
        """Check one of this witness's signature lines on ``checkpoint_text``; its timestamp."""
        if not self.matches(sig):
            raise SignatureError(f"the signature is not by witness {self.name}")
        if len(sig.signature) != SIGNATURE_SIZE:
            raise SignatureError(f"cosignature by {self.name} is not a timestamped Ed25519 signature")
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        if timestamp > MAX_TIMESTAMP:
            raise SignatureError(f"cosignature by {self.name} has a timestamp above 2**63 - 1")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                sig.signature[8:], signed_message(checkpoint_text, timestamp)
            )
        except InvalidSignature:
            raise SignatureError(f"cosignature by {self.name}+{self.key_id.hex()} does not verify") from None
        return timestamp


class Cosigner:
    """A witness's Ed25519 private key, which cosigns checkpoints."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey):
        check_name(name)
        self.name = name
        self._key = private_key
        self.verifier = CosignatureVerifier(name, private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def __repr__(self) -> str:  # never show key material
        return f"Cosigner({self.verifier.to_string()!r})"

    @classmethod
    def generate(cls, name: str) -> "Cosigner":
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_string(cls, skey: str) -> "Cosigner":
        """Parse ``PRIVATE+KEY+name+hash+base64(0x04 || seed)``."""
        text = skey.strip() if isinstance(skey, str) else ""
        if not text.startswith("PRIVATE+KEY+"):
            raise MalformedNote("witness private key must be PRIVATE+KEY+name+hash+key")
        name, hexid, raw = _split_vkey(text[len("PRIVATE+KEY+") :], "witness private key")
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
            raise MalformedNote("witness private key must be 0x04 followed by a 32-byte Ed25519 seed")
        cosigner = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if not hmac.compare_digest(cosigner.verifier.key_id.hex().encode(), hexid.encode()):
            raise MalformedNote("witness private key hash does not match its name and key")
        return cosigner

    def to_string(self) -> str:
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{raw}"

    def cosign(self, checkpoint_text: str, timestamp: int | None = None) -> str:
        """One signature line cosigning the note text ``checkpoint_text`` at ``timestamp`` (now)."""
        ts = int(time.time()) if timestamp is None else timestamp
        if ts <= 0:
            raise MalformedNote("a witness's cosignature must carry a timestamp (tlog-witness)")
        sig = self._key.sign(signed_message(checkpoint_text, ts))
        blob = self.verifier.key_id + struct.pack(">Q", ts) + sig
        return f"{DASH}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


def verify_cosignatures(note: str | bytes, witnesses) -> dict[CosignatureVerifier, int]:
    """The witnesses among ``witnesses`` that cosigned ``note``, each with its timestamp.

    As signed-note asks: a line by an unknown key is ignored, and a line whose
    name and key ID match a known witness but whose signature fails rejects the
    note (:class:`SignatureError`).  The log's own signature is not checked here.
    """
    parsed = parse_note(note)
    found: dict[CosignatureVerifier, int] = {}
    for sig in parsed.signatures:
        for witness in witnesses:
            if witness.matches(sig):
                found[witness] = witness.verify(parsed.text, sig)
    return found


def merge_signatures(note: str, lines: str) -> str:
    """``note`` with the signature ``lines`` it does not carry yet added at the end.

    tlog-witness §add-checkpoint: a client may concatenate a witness's answer to
    the checkpoint.  The lines are parsed (not verified) first, so that a
    malformed answer cannot make a malformed note."""
    parsed = parse_note(note)
    if not lines:
        return note
    parse_note(parsed.text + "\n" + lines)  # the lines' syntax, by the one signed-note parser
    have = set(note[len(parsed.text) + 1 :].splitlines())
    for line in lines.splitlines():
        if line not in have:
            note += line + "\n"
            have.add(line)
    return note


def parse_vkey(text: str) -> Verifier | CosignatureVerifier:
    """A vkey of either type Luodi uses: 0x01 (a log's note key) or 0x04 (a witness's)."""
    _, _, raw = _split_vkey(text, "verifier key")
    if raw[:1] == bytes([ALG_COSIGNATURE_V1]):
        return CosignatureVerifier.from_string(text)
    return Verifier.from_string(text)
