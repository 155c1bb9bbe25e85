"""The API explorer renders in a real headless Chromium with no network but loopback.

Chromium comes from Debian (``.ci/run`` installs it); Playwright drives it
through ``executable_path``, since browser downloads are not possible here.

SQLite only (the default database): this is about the API explorer in a browser; the
storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import os
import shutil
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from api import create_app
from api.instance import init_instance

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# On a developer's machine without Chromium this is skipped; in CI (.ci/run installs it) it must run.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="Debian's chromium is not installed (.ci/run installs it)"
)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    result = init_instance(tmp_path / "inst")
    result.charity.stores.close()
    app = create_app({"TESTING": True, "INSTANCE": str(tmp_path / "inst")})
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_docs_page_renders_every_route_offline(served):
    from playwright.sync_api import sync_playwright

    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page()
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(served) else None)
            page.goto(f"{served}/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert [u for u in outside if not u.startswith("data:")] == []
    for route in ("/v1/checkpoint", "/v1/receipts/{leaf_hash}", "/v1/projects/{project_id}/donations"):
        assert route in text
