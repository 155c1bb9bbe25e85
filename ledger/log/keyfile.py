"""Ed25519 signer keys in files: written once with mode 0600, never overwritten,
refused when others can read them, and never logged.

A key file holds one line, the signer key in Go's note format
(``PRIVATE+KEY+<name>+<key id>+<base64>``).  The log's key and a charity's
keys are both kept this way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InstanceError, MalformedNote
from .note import Signer


def write_key_file(path: str | Path, signer: Signer) -> None:
    """Write ``signer`` to a new file of mode 0600; refuse to replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise InstanceError(f"{path} already exists; keys are never overwritten") from exc
    except OSError as exc:
        raise InstanceError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as f:
        f.write(signer.to_string() + "\n")


def read_key_file(path: str | Path, what: str = "key", missing: str = "", parse=Signer.from_string):
    """The signer in a key file that only its owner can read.

    ``what`` names the key in errors; ``missing`` is what to add to the error
    when there is no such file; ``parse`` reads the key (a witness's key is a
    :class:`ledger.log.cosignature.Cosigner`)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise InstanceError(f"no {what} at {path}{missing}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InstanceError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    try:
        return parse(path.read_text())
    except MalformedNote as exc:
        raise InstanceError(f"{path} does not hold a valid signer key: {exc.detail}") from exc
    except UnicodeDecodeError as exc:
        raise InstanceError(f"{path} does not hold a valid signer key: it is not text") from exc
    except OSError as exc:
        raise InstanceError(f"cannot read {path}: {exc.strerror}") from exc
