"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the signed tree head.

The note text is ``<origin>\\n<tree size>\\n<base64 root>\\n`` followed by
optional non-empty extension lines, signed as a C2SP signed note by the log's
Ed25519 key, whose name is the origin.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

from ..errors import MalformedNote, SignatureError
from .merkle import HASH_SIZE
from .note import Signer, Verifier, b64decode_strict, open_note, sign_note

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.origin or "\n" in self.origin:
            raise MalformedNote("checkpoint origin must be one non-empty line")
        if not isinstance(self.size, int) or self.size < 0:
            raise MalformedNote("checkpoint size must be a non-negative integer")
        if len(self.root) != HASH_SIZE:
            raise MalformedNote("checkpoint root must be a 32-byte hash")
        for line in self.extensions:
            if not line or "\n" in line:
                raise MalformedNote("checkpoint extension lines must be non-empty single lines")

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join(lines + list(self.extensions)) + "\n"

    def sign(self, signer: Signer) -> str:
        """The signed note for this checkpoint."""
        return sign_note(self.text(), signer)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint's note text (not the signatures)."""
    if not text.endswith("\n"):
        raise MalformedNote("checkpoint text must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedNote("checkpoint needs origin, size and root lines")
    origin, size, root64, *ext = lines
    if not _SIZE.fullmatch(size):
        raise MalformedNote(f"checkpoint size {size!r} is not a decimal without leading zeros")
    root = b64decode_strict(root64, "checkpoint root")
    if int(size) >= 1 << 64:
        raise MalformedNote("checkpoint size does not fit in 64 bits")
    return Checkpoint(origin, int(size), root, tuple(ext))


def open_checkpoint(note: str | bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint note with the log's key and parse it.

    The origin must equal ``origin`` (by default the verifier's key name).
    """
    opened = open_note(note, verifier)
    cp = parse_checkpoint(opened.text)
    want = verifier.name if origin is None else origin
    if not hmac.compare_digest(cp.origin.encode(), want.encode()):
        raise SignatureError(f"checkpoint origin {cp.origin!r} is not {want!r}")
    return cp
