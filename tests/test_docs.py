"""The documentation is tested: every entry kind is documented with an example the rules accept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REGISTRY

from ledger.errors import InvalidEntry
from ledger.log.entry import body_bytes

DOC = (Path(__file__).resolve().parent.parent / "docs" / "entries.md").read_text()
SECTIONS = dict(re.findall(r"^## `([a-z._]+)`\n(.*?)(?=^## )", DOC, flags=re.S | re.M))
CHARITY_KINDS = sorted(set(REGISTRY.names()) - {"genesis", "note"})


def example(kind: str) -> dict:
    blocks = re.findall(r"```json\n(.*?)```", SECTIONS[kind], flags=re.S)
    assert len(blocks) == 1, f"{kind} needs exactly one JSON example"
    return json.loads(blocks[0])


def test_every_kind_has_a_section():
    assert set(CHARITY_KINDS) <= set(SECTIONS)
    assert "`note` and `genesis`" in DOC


@pytest.mark.parametrize("kind", CHARITY_KINDS)
def test_example_passes_the_static_rules(kind):
    body_bytes(kind, example(kind), REGISTRY)


@pytest.mark.parametrize("kind", CHARITY_KINDS)
def test_example_with_an_unknown_field_is_refused(kind):
    body = example(kind)
    body["extra"] = "x"
    with pytest.raises(InvalidEntry, match="unknown field"):
        body_bytes(kind, body, REGISTRY)
