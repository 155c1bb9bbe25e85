"""The donor page checks the gift from the log's tiles, and the donor's witness policy, in Chromium.

The real receipt page under its CSP, served by real gunicorn over the pages' demo ledger: the
panel fetches ``/checkpoint`` and the tiles it needs from the same origin (``data-tiles``),
assembles the inclusion proofs of the gift and of each disbursement it paid for (tiles.js), and
verifies them against the checkpoint signed by the pinned key.  With a 2-of-3 witness policy from
the link's fragment (the donor's keys, never the site's) it passes on a checkpoint two witnesses
cosigned and fails, visibly, on one that only one cosigned, and on a fork of the log.

The cosigned checkpoints are the server's own note with ``cosignature/v1`` lines by test witnesses
added (Playwright routing of ``/checkpoint``), as a log that gathered cosignatures serves it; the
fork is a checkpoint of another root at the same size, signed by the log's own key.

SQLite only: this is about the page.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse

import pytest

from ledger.log.checkpoint import Checkpoint, parse_checkpoint
from ledger.log.cosignature import Cosigner
from ledger.log.keyfile import read_key_file
from ledger.log.note import parse_note
from tests.browser_helpers import needs_chromium
from tests.test_pages_browser import DESKTOP, Watched, browser, site  # noqa: F401 (fixtures)
from tests.tile_helpers import cosign

pytestmark = needs_chromium
W = [Cosigner.generate(f"witness.example/w{i}") for i in (1, 2, 3)]


def _fragment(quorum: int = 2) -> str:
    return "#" + "&".join([f"witness={urllib.parse.quote(w.verifier.to_string(), safe='')}" for w in W]
                          + [f"quorum={quorum}"])


def _settled(page) -> tuple[str, dict[str, tuple[str, str]]]:
    page.wait_for_selector("#verification:not([data-status=running])")
    steps = page.eval_on_selector_all(
        "#verification [data-step]", "els => els.map((e) => [e.dataset.step, e.dataset.status, e.textContent])")
    return page.get_attribute("#verification", "data-status"), {s: (st, text) for s, st, text in steps}


def _serve_checkpoint(page, base: str, rewrite) -> None:
    """Answer ``/checkpoint`` with ``rewrite(the server's own note)``."""

    def fulfil(route):
        real = route.fetch()
        route.fulfill(response=real, body=rewrite(real.text()))

    page.route(f"{base}/checkpoint", fulfil)


def test_the_page_proves_the_gift_from_tiles(site, browser):
    server, seeded = site
    with Watched(browser, server.url, DESKTOP) as w:
        tiles = []
        w.page.on("request", lambda r: tiles.append(r.url) if "/tile/" in r.url else None)
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}?lang=en")
        status, steps = _settled(w.page)
        assert status == "verified", steps
        assert steps["tiles"][0] == "ok" and "witnesses" not in steps
        assert "its current checkpoint" in steps["tiles"][1] and "disbursement(s) it paid for" in steps["tiles"][1]
        assert tiles and all("/tile/entries/" not in u for u in tiles)  # hash tiles only
        assert "No witness policy" in w.page.text_content("[data-policy]")
        assert w.outside == [] and w.csp == []


def test_a_tile_served_wrong_fails_the_tiles_step(site, browser):
    server, seeded = site
    with Watched(browser, server.url, DESKTOP) as w:
        def flip(route):
            real = route.fetch()
            body = bytearray(real.body())
            for i in range(7, len(body), 32):
                body[i] ^= 1
            route.fulfill(response=real, body=bytes(body))

        w.page.route(lambda url: "/tile/0/" in url, flip)  # the level-0 tile the gift's proof reads
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}?lang=en")
        status, steps = _settled(w.page)
        assert status == "failed" and w.page.get_attribute("#verification", "data-failed-step") == "tiles"
        assert steps["tiles"][0] == "failed" and "is not in the tree of the log's checkpoint" in steps["tiles"][1]
        assert all(st == "ok" for name, (st, _) in steps.items() if name != "tiles")


def test_a_2_of_3_witness_policy_passes_with_two_cosignatures_and_fails_with_one(site, browser):
    server, seeded = site
    with Watched(browser, server.url, DESKTOP) as w:
        _serve_checkpoint(w.page, server.url, lambda note: cosign(note, W[0], W[2]))
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}?lang=en{_fragment(2)}")
        status, steps = _settled(w.page)
        assert status == "verified", steps
        assert steps["witnesses"] == ("ok", "Witnesses: the checkpoint is cosigned by witness.example/w1, witness.example/w3; "
                                      "your witness policy needs 2 of (witness.example/w1, witness.example/w2, "
                                      "witness.example/w3).")
        assert "from the link you opened" in w.page.text_content("[data-policy]")
    with Watched(browser, server.url, DESKTOP) as w:
        _serve_checkpoint(w.page, server.url, lambda note: cosign(note, W[1]))
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}?lang=en{_fragment(2)}")
        status, steps = _settled(w.page)
        assert status == "failed" and w.page.get_attribute("#verification", "data-failed-step") == "witnesses"
        assert steps["tiles"][0] == "ok"
        assert "is cosigned by 1 of the policy's witnesses (witness.example/w2); the policy needs 2 of" in steps["witnesses"][1]
        assert "verify-failed" in w.page.get_attribute("[data-step=witnesses]", "class")
        # the donor lowers the policy in the form: one of the three is enough, and it is remembered
        w.page.fill("#verify-witnesses", "\n".join(x.verifier.to_string() for x in W))
        w.page.fill("#verify-quorum", "1")
        w.page.click("[data-policy-form] button[type=submit]")
        w.page.wait_for_selector("#verification[data-status=verified]")
        assert "as you entered it" in w.page.text_content("[data-policy]")
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}?lang=en")
        status, steps = _settled(w.page)
        assert status == "verified" and steps["witnesses"][0] == "ok"
        assert "as you set it last time" in w.page.text_content("[data-policy]")


def test_a_fork_cosigned_by_one_fooled_witness_fails(site, browser):
    server, seeded = site
    signer = read_key_file(seeded.instance / "log.key")

    def fork(note: str) -> str:
        cp = parse_checkpoint(parse_note(note).text)
        forked = Checkpoint(cp.origin, cp.size, hashlib.sha256(b"another history" + cp.root).digest())
        return cosign(forked.sign(signer), W[0])

    with Watched(browser, server.url, DESKTOP) as w:
        _serve_checkpoint(w.page, server.url, fork)
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}?lang=en{_fragment(2)}")
        status, steps = _settled(w.page)
        assert status == "failed" and w.page.get_attribute("#verification", "data-failed-step") == "tiles"
        assert steps["tiles"][0] == "failed" and "is not in the tree of the log's checkpoint" in steps["tiles"][1]
        assert steps["witnesses"][0] == "failed" and "cosigned by 1 of the policy's witnesses" in steps["witnesses"][1]


@pytest.mark.parametrize("fragment, needle", [
    (f"#witness={base64.b64encode(b'x').decode()}&quorum=1", "your witness policy is not valid"),
    ("#witness=" + urllib.parse.quote(W[0].verifier.to_string(), safe="") + "&quorum=2", "between 1 and the number"),
], ids=["not a key", "quorum too high"])
def test_a_policy_that_is_not_valid_fails_rather_than_being_ignored(site, browser, fragment, needle):
    server, seeded = site
    with Watched(browser, server.url, DESKTOP) as w:
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}?lang=en{fragment}")
        status, steps = _settled(w.page)
        assert status == "failed" and steps["witnesses"][0] == "failed" and needle in steps["witnesses"][1]
