"""The kinds of entry a log accepts: a :class:`Registry` object, passed to the
ledger, the parser and the verifier.  Nothing registers on import.

The log itself has two kinds.  ``genesis`` (seq 0 and only seq 0) names the
log's origin, its verifier key and its hash, plus the fields its personality
fixes for the whole log (the charity personality's allocation policy, say).
``note`` is a public notice from the operator.  A personality adds its own
kinds when it builds its registry (:func:`ledger.charity.kinds.registry`).

Each kind maps to a validator, ``validate(body)``, that raises
:class:`InvalidEntry` for a body it refuses.  A body is a JSON object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import InvalidEntry, MalformedNote
from .fields import fields, hex64, string, text
from .note import Verifier

Validator = Callable[[dict], None]
HASH_ALGORITHM = "sha256"
LOG_KINDS = ("genesis", "note")
NOTE_LIMIT = 4096


_NOTE_REQUIRED = {"text": text(NOTE_LIMIT)}
_NOTE_OPTIONAL = {"corrects": hex64}


def _note(body: dict) -> None:
    """A public notice from the operator (a policy change, an incident, a correction)."""
    fields(body, "$", _NOTE_REQUIRED, _NOTE_OPTIONAL)


class Registry:
    """The entry kinds of one log, with the personality's fixed genesis fields.

    ``kinds`` maps each kind a personality adds to its validator; ``genesis``
    maps each field the personality adds to the genesis body to the one value
    it must have.
    """

    def __init__(self, kinds: Mapping[str, Validator] | None = None, genesis: Mapping[str, str] | None = None):
        self.genesis_fields = dict(genesis or {})
        clash = set(self.genesis_fields) & {"origin", "log_key", "hash"}
        if clash:
            raise ValueError(f"the log's own genesis fields cannot be redefined: {', '.join(sorted(clash))}")
        self._validators: dict[str, Validator] = {"genesis": self._genesis, "note": _note}
        for name, validator in (kinds or {}).items():
            if name in self._validators:
                raise ValueError(f"entry kind {name!r} is registered twice")
            self._validators[name] = validator

    def __contains__(self, kind: object) -> bool:
        return kind in self._validators

    def names(self) -> tuple[str, ...]:
        return tuple(self._validators)

    def validate(self, kind: str, body) -> None:
        validator = self._validators.get(kind) if type(kind) is str else None
        if validator is None:
            raise InvalidEntry(f"unknown entry kind {kind!r}")
        if type(body) is not dict:
            raise InvalidEntry("entry body must be a JSON object")
        validator(body)

    def genesis_body(self, verifier: Verifier) -> dict:
        """The genesis body of a new log signed by ``verifier``'s key."""
        return {"origin": verifier.name, "log_key": verifier.to_string(), "hash": HASH_ALGORITHM, **self.genesis_fields}

    def _genesis(self, body: dict) -> None:
        """seq 0: names the log's origin, its verifier key, the hash and the personality's fields."""
        fields(body, "$", {"origin": string, "log_key": string, "hash": string, **{k: string for k in self.genesis_fields}})
        if body["hash"] != HASH_ALGORITHM:
            raise InvalidEntry(f"genesis hash must be {HASH_ALGORITHM!r}")
        for name, value in self.genesis_fields.items():
            if body[name] != value:
                raise InvalidEntry(f"genesis {name} must be {value!r}")
        try:
            v = Verifier.from_string(body["log_key"])
        except MalformedNote as exc:
            raise InvalidEntry(f"genesis log_key: {exc.detail}") from exc
        if v.name != body["origin"]:
            raise InvalidEntry("genesis log_key must be named for the origin")

    def __reduce__(self):
        # Rebuilt from its parts in a verifier's worker process (pickling a bound method would recurse).
        return (Registry, ({k: v for k, v in self._validators.items() if k not in LOG_KINDS}, self.genesis_fields))
