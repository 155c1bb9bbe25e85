"""The donor's whole path, end to end: the real receipt page (api/pages.py) with the real
verification panel (api/static/verify/), under the pages' real CSP, served by real
gunicorn over a demo ledger, in Debian's Chromium.

The pages' own tests (tests/test_pages_browser.py) do not need the panel's script, and
the panel's tests (tests/test_verify_js_panel.py) serve a contract page of their own;
these tests join the two: a receipt looked up from the home page's form is proven in
the browser, a receipt altered on its way (Playwright request routing) fails at the
matching step, and a changed log key raises the warning.  Screenshots of the verified
and failed receipt pages, at phone and desktop widths, go to tests/artifacts/pages/.

SQLite only (the default database): this is about the donor pages and what they render;
the storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import base64
import json

import pytest

from ledger.log.note import Signer
from tests.test_pages_browser import DESKTOP, PHONE, Watched, browser, shot, site  # noqa: F401 (fixtures)

STEPS = ("entry", "inclusion", "checkpoint", "amounts")


def _settled(page) -> str:
    page.wait_for_selector("#verification:not([data-status=running])")
    return page.get_attribute("#verification", "data-status")


def _steps(page) -> dict[str, str]:
    items = page.locator("#verification [data-step]")
    return {items.nth(i).get_attribute("data-step"): items.nth(i).get_attribute("data-status") for i in range(items.count())}


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_receipt_found_from_the_home_page_is_proven_in_the_browser(site, browser, viewport):
    server, seeded = site
    with Watched(browser, server.url, viewport) as w:
        w.page.goto(server.url + "/")
        w.page.fill("input[name=hash]", seeded.spent_gift)
        w.page.click("form button[type=submit]")
        w.page.wait_for_url(f"{server.url}/receipts/{seeded.spent_gift}")
        assert _settled(w.page) == "verified", _steps(w.page)
        steps = _steps(w.page)
        assert set(STEPS) <= set(steps) and any(s.startswith("disbursement-") for s in steps)
        assert set(steps.values()) == {"ok"}
        assert w.page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        shot(w.page, f"receipt-verified-{'phone' if viewport is PHONE else 'desktop'}")
        assert w.outside == [] and w.dialogs == [] and w.csp == []


def _tamper(doc: dict, what: str) -> None:
    if what == "entry":
        doc["entry"]["entry"]["body"]["amount"] += 1
    elif what == "inclusion":
        proof = doc["inclusion_proof"]
        proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]
    elif what == "checkpoint":
        text, _, sig = doc["checkpoint"].rstrip("\n").rpartition(" ")
        raw = bytearray(base64.b64decode(sig))
        raw[10] ^= 1
        doc["checkpoint"] = f"{text} {base64.b64encode(bytes(raw)).decode()}\n"
    elif what == "amounts":
        doc["unspent"] = "0.01" if doc["unspent"] != "0.01" else "0.02"


@pytest.mark.parametrize("what", ["entry", "inclusion", "checkpoint", "amounts"])
def test_a_receipt_altered_on_its_way_fails_at_the_matching_step(site, browser, what):
    server, seeded = site
    url = f"{server.url}/v1/receipts/{seeded.spent_gift}"

    def altered(route):
        doc = json.loads(route.fetch().text())
        _tamper(doc, what)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(doc))

    viewport = DESKTOP if what == "entry" else PHONE
    with Watched(browser, server.url, viewport) as w:
        w.page.route(url, altered)
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}")
        assert _settled(w.page) == "failed"
        assert w.page.get_attribute("#verification", "data-failed-step") == what
        assert _steps(w.page)[what] == "failed"
        if what in ("entry", "checkpoint"):
            shot(w.page, f"receipt-failed-{what}-{'desktop' if viewport is DESKTOP else 'phone'}")


def test_a_changed_log_key_raises_the_warning(site, browser):
    server, seeded = site
    with Watched(browser, server.url, DESKTOP) as w:
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}")
        assert _settled(w.page) == "verified"
        assert w.page.locator('[data-warning="key-changed"]').is_hidden()
        # The site's key as this browser pinned it on first use, now replaced by another one.
        pinned = w.page.evaluate("Object.values(localStorage)")
        assert seeded.log_key in pinned
        other = Signer.generate(seeded.log_key.split("+")[0]).verifier.to_string()
        w.page.evaluate("k => { for (const n of Object.keys(localStorage)) localStorage.setItem(n, k) }", other)
        w.page.reload()
        _settled(w.page)
        assert w.page.locator('[data-warning="key-changed"]').is_visible()
        shot(w.page, "receipt-key-changed-desktop")
