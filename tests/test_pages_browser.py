"""The donor pages in a real browser: Debian's Chromium (``/usr/bin/chromium``)
driven by Playwright, against real gunicorn (``luodi serve``) over a demo
ledger with hostile names in it (tests/page_helpers.py).

These tests do not depend on the verification panel's script
(``/static/verify/panel.js``) running: they check the pages themselves.
Screenshots go to ``tests/artifacts/pages/`` (git ignores it).

SQLite only (the default database): this is about the donor pages and what they render;
the storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ledger.log.note import Verifier
from tests.page_helpers import EVIL_PROJECT, SCRIPT, seed_pages
from tests.test_e2e_gunicorn import LiveServer, http

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="Debian's chromium is not installed (.ci/run installs it)"
)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "pages"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
TIMEOUT = 20_000


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    seeded = seed_pages(tmp_path_factory.mktemp("browser") / "inst")
    with LiveServer(seeded.instance, Verifier.from_string(seeded.log_key), workers=1, threads=4) as server:
        yield server, seeded


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page with what it asked for outside the server, its dialogs and its CSP complaints."""

    def __init__(self, browser, base: str, viewport: dict, **context):
        self.context = browser.new_context(viewport=viewport, **context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT)
        self.outside, self.dialogs, self.csp = [], [], []
        self.page.on("request", lambda r: self.outside.append(r.url) if not r.url.startswith(base) else None)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.csp.append(m.text) if "Content Security Policy" in m.text else None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_receipt_is_found_from_the_home_pages_form(site, browser):
    server, seeded = site
    with Watched(browser, server.url, DESKTOP) as w:
        w.page.goto(server.url + "/")
        shot(w.page, "home-desktop")
        w.page.fill("input[name=hash]", seeded.spent_gift)
        w.page.click("form button[type=submit]")
        w.page.wait_for_url(f"{server.url}/receipts/{seeded.spent_gift}")
        panel = w.page.locator("#verification")
        assert panel.get_attribute("data-receipt") == seeded.spent_gift
        assert panel.get_attribute("data-log-key") == seeded.log_key
        assert w.page.locator("ol.disbursements > li").count() >= 1
        assert w.page.locator("[data-amount]").is_visible()
        shot(w.page, "receipt-desktop")
        assert w.outside == [] and w.dialogs == [] and w.csp == []


def test_the_english_switch_works_and_is_remembered(site, browser):
    server, seeded = site
    with Watched(browser, server.url, PHONE) as w:
        w.page.goto(server.url + "/")
        assert w.page.get_attribute("html", "lang") == "zh-CN"
        assert "项目" in w.page.inner_text("main")
        w.page.click("a.lang-switch")
        w.page.wait_for_url(f"{server.url}/?lang=en")
        assert w.page.get_attribute("html", "lang") == "en"
        assert "Projects" in w.page.inner_text("main")
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}")
        assert w.page.get_attribute("html", "lang") == "en"
        assert "Where your gift went" in w.page.inner_text("main")
        assert w.page.get_attribute("#verification", "data-lang") == "en"
        w.page.click("a.lang-switch")
        assert w.page.get_attribute("html", "lang") == "zh-CN"
        assert "您的善款去了哪里" in w.page.inner_text("main")


def test_phone_width_has_no_horizontal_scroll(site, browser):
    server, seeded = site
    urls = {
        "home": "/",
        "receipt": f"/receipts/{seeded.spent_gift}",
        "receipt-refunded": f"/receipts/{seeded.refunded_gift}",
        "receipt-hostile": f"/receipts/{seeded.evil_gift}",
        "project": "/projects/winter-relief",
        "project-hostile": f"/projects/{EVIL_PROJECT}",
        "about": "/about/verification",
        "not-found": "/receipts/" + "0" * 64,
    }
    for lang in ("zh-CN", "en"):
        with Watched(browser, server.url, PHONE) as w:
            for name, url in urls.items():
                w.page.goto(f"{server.url}{url}?lang={lang}")
                width = w.page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], (lang, url, width)
                if name in ("home", "receipt", "project"):
                    shot(w.page, f"{name}-phone-{lang}")
            assert w.outside == [] and w.csp == []
    with Watched(browser, server.url, DESKTOP) as w:
        w.page.goto(f"{server.url}/projects/winter-relief")
        shot(w.page, "project-desktop")


def test_the_project_page_draws_its_chart_and_lists(site, browser):
    server, _ = site
    entries = http("GET", f"{server.url}/v1/projects/winter-relief/entries?limit=1000").json["entries"]
    kinds = [e["entry"]["kind"] for e in entries]
    with Watched(browser, server.url, PHONE) as w:
        w.page.goto(f"{server.url}/projects/winter-relief")
        chart = w.page.locator("svg#money-chart")
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box["width"] > 200 and box["height"] > 100
        assert w.page.locator("svg#money-chart polyline").count() == 2
        assert w.page.locator("ol.disbursements > li").count() == kinds.count("disbursement") > 0
        assert w.page.locator("ol.donations > li").count() == min(100, kinds.count("donation"))
        assert w.page.locator("ol.disbursements .evidence code").count() >= kinds.count("disbursement")


def test_hostile_names_stay_inert_in_the_browser(site, browser):
    server, seeded = site
    with Watched(browser, server.url, DESKTOP) as w:
        for url in ("/", f"/projects/{EVIL_PROJECT}", f"/receipts/{seeded.evil_gift}"):
            w.page.goto(server.url + url)
            w.page.wait_for_load_state("load")
            assert w.page.locator("img").count() == 0
            assert w.page.locator("script:not([src])").count() == 0
            assert SCRIPT in w.page.inner_text("main")
        w.page.goto(f"{server.url}/projects/{EVIL_PROJECT}")
        shot(w.page, "project-hostile-desktop")
        assert w.dialogs == []


def test_without_javascript_everything_shows_but_the_panel_says_it_needs_it(site, browser):
    server, seeded = site
    with Watched(browser, server.url, PHONE, java_script_enabled=False) as w:
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}")
        assert w.page.locator(".needs-js").is_visible()
        assert w.page.locator("[data-amount]").is_visible()
        assert w.page.locator("ol.disbursements .payee").first.is_visible()
        assert w.page.locator("[data-unspent]").is_visible()
        assert w.page.get_attribute("#verification", "data-status") == "running"
        shot(w.page, "receipt-phone-nojs")
        w.page.goto(f"{server.url}/projects/winter-relief")
        assert w.page.locator("svg#money-chart").is_visible()
        w.page.goto(f"{server.url}/")
        assert w.page.locator("li.card").count() >= 4
    with Watched(browser, server.url, PHONE) as w:  # with JavaScript the noscript text is not shown
        w.page.goto(f"{server.url}/receipts/{seeded.spent_gift}")
        assert not w.page.locator(".needs-js").is_visible()
