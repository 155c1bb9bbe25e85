"""Playwright on Debian's Chromium for the browser verifier's tests (``api/static/verify/``).

Chromium comes from Debian (``.ci/run`` installs it); Playwright drives it through
``executable_path``.  Without it the tests skip on a developer's machine, and fail under CI=true.
:func:`contract_page` is the receipt page's DOM contract for the panel (docs/architecture.md §9.2),
served by request routing so that the panel's tests need nothing but the static files and ``/v1``.
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="Debian's chromium is not installed (.ci/run installs it)"
)
STATIC = Path(__file__).resolve().parent.parent / "api" / "static" / "verify"
STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'"


def launch(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    )


def contract_page(receipt: str, log_key: str, lang: str = "zh-CN") -> str:
    """The receipt page as the panel needs it: no inline script or style (the CSP forbids them)."""
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>receipt</title>
<script type="module" src="/static/verify/panel.js"></script></head>
<body><section id="verification" data-status="running" data-receipt="{html.escape(receipt)}"
 data-log-key="{html.escape(log_key)}" data-lang="{lang}"><ol data-steps></ol></section></body></html>"""


def serve_contract(page, base: str, log_key: str, lang: str = "zh-CN") -> None:
    """Answer ``/receipts/<hash>`` with the contract page under the strict CSP of the donor pages."""

    def fulfil(route):
        receipt = route.request.url.rsplit("/", 1)[1].split("?")[0]
        route.fulfill(status=200, content_type="text/html; charset=utf-8",
                      headers={"Content-Security-Policy": STRICT_CSP}, body=contract_page(receipt, log_key, lang))

    page.route(f"{base}/receipts/*", fulfil)
