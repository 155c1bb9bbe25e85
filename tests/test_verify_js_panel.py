"""The receipt page's verification panel (``api/static/verify/panel.js``) in Chromium, against real
gunicorn (``luodi serve``) over the demo ledger plus a gift spent before and after a key rotation.

The page is the DOM contract of docs/architecture.md §9.2 and §9.3 (``browser_helpers.contract_page``),
sent under the donor pages' strict CSP; ``/v1`` and ``/static`` are the live server's.  Tampered
receipts are served through Playwright's request routing: the panel must fail at the step that
matches.  A forger holding the log key (``receipt_helpers.forge``) re-signs the checkpoint, so
that only a charity's signature can fail.

SQLite only (the default database): this is about the donor pages and what they render;
the storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import pytest
from api_helpers import ApiFactory
from browser_helpers import STRICT_CSP, launch, needs_chromium, serve_contract
from receipt_helpers import SpentGift, forge, spent_gift
from test_e2e_gunicorn import LiveServer, http

from ledger.log.keyfile import read_key_file
from ledger.log.note import Signer, Verifier

pytestmark = needs_chromium
STORE = "luodi.pinned-log-key"
NO_ED25519 = """(() => { const importKey = SubtleCrypto.prototype.importKey;
  SubtleCrypto.prototype.importKey = function (format, key, alg, ...rest) {
    if ((typeof alg === 'string' ? alg : alg && alg.name) === 'Ed25519') {
      return Promise.reject(new DOMException('Ed25519 is not supported', 'NotSupportedError'));
    }
    return importKey.call(this, format, key, alg, ...rest);
  }; })();"""
NO_WEBCRYPTO = "Object.defineProperty(Crypto.prototype, 'subtle', { get() { return undefined; } });"


@dataclass
class Served:
    server: LiveServer
    log_key: str
    gift: SpentGift  # spent by a disbursement before a key rotation and one after, partly refunded
    demo_receipt: str  # a demo gift spent by two disbursements


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    factory = ApiFactory(tmp_path_factory.mktemp("panel"))
    try:
        env = factory("inst", demo=400)
        gift = spent_gift(env)
        demo = next(i["leaf_hash"] for i in env.items() if i["entry"]["kind"] == "donation"
                    and i["entry"]["body"]["project"] == "rural-online-teaching"
                    and len(env.client.get(f"/v1/receipts/{i['leaf_hash']}").get_json()["allocation"]) == 2)
        verifier = read_key_file(env.path / "log.key").verifier
        with LiveServer(env.path, verifier) as server:
            yield Served(server, verifier.to_string(), gift, demo)
    finally:
        factory.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context()  # its own localStorage
    yield ctx
    ctx.close()


class Visit:
    def __init__(self, context, served: Served, lang: str = "zh-CN"):
        self.base = served.server.url
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        serve_contract(self.page, self.base, served.log_key, lang)

    def tamper(self, receipt: str, change=None, doc=None) -> None:
        """Serve the receipt's JSON with ``change(doc)`` applied, or ``doc`` itself."""

        def fulfil(route):
            if doc is not None:
                return route.fulfill(json=doc)
            resp = route.fetch()
            body = resp.json()
            change(body)
            route.fulfill(response=resp, json=body)

        self.page.route(f"{self.base}/v1/receipts/{receipt}", fulfil)

    def open(self, receipt: str) -> str:
        self.page.goto(f"{self.base}/receipts/{receipt}")
        return self.settle()

    def settle(self) -> str:
        self.page.wait_for_function("() => document.getElementById('verification').dataset.status !== 'running'",
                                    timeout=30_000)
        return self.status

    @property
    def status(self) -> str:
        return self.page.get_attribute("#verification", "data-status")

    def steps(self) -> list[tuple[str, str, str]]:
        return [tuple(s) for s in self.page.eval_on_selector_all(
            "#verification [data-step]", "els => els.map((e) => [e.dataset.step, e.dataset.status, e.textContent])")]

    def failed_at(self) -> str | None:
        return self.page.get_attribute("#verification", "data-failed-step")

    def paste(self, key: str) -> str:
        before = int(self.page.get_attribute("#verification", "data-run"))
        self.page.fill("[data-key-form] input[name=key]", key)
        self.page.click("[data-key-form] button")
        self.page.wait_for_function(
            """(before) => (Number(document.getElementById('verification').dataset.run) > before
                && document.getElementById('verification').dataset.status !== 'running')
                || document.querySelector('[data-paste-error]:not([hidden])')""", arg=before, timeout=30_000)
        return self.status

    def warning(self) -> str | None:
        return self.page.evaluate("(() => { const w = document.querySelector('[data-warning=\"key-changed\"]');"
                                  " return w && !w.hidden ? w.textContent : null; })()")


def seqs(doc: dict) -> list[str]:
    return [f"disbursement-{a['disbursement']['seq']}" for a in doc["allocation"]]


def test_the_static_modules_are_served_as_javascript(served):
    for name in ("panel.js", "receipt.js", "canonical.js", "vendor/noble-ed25519.js", "vendor/noble-ed25519.LICENSE"):
        got = http("GET", f"{served.server.url}/static/verify/{name}")
        assert got.status == 200, name
        if name.endswith(".js"):
            assert got.headers["Content-Type"].split(";")[0] in ("text/javascript", "application/javascript")


@pytest.mark.parametrize("which", ["demo", "rotated"])
def test_a_real_receipt_verifies_every_step_under_the_strict_csp(served, context, which):
    receipt = served.demo_receipt if which == "demo" else served.gift.receipt
    doc = http("GET", f"{served.server.url}/v1/receipts/{receipt}").json
    visit = Visit(context, served)
    assert visit.open(receipt) == "verified"
    steps = visit.steps()
    assert [s[0] for s in steps] == ["entry", "inclusion", "checkpoint", *seqs(doc), "amounts"]
    assert all(s[1] == "ok" for s in steps)
    assert "规范字节" in steps[0][2] and f"共 {doc['tree_size']} 条记录" in steps[1][2]
    assert visit.failed_at() is None
    assert visit.errors == []  # no CSP violation, no script error
    assert not any("noble" in u for u in visit.requests)  # WebCrypto verified: the fallback is never loaded
    if which == "rotated":
        assert "¥5.00" in steps[-1][2] and "¥60.00" in steps[-1][2]


def test_the_english_panel(served, context):
    visit = Visit(context, served, lang="en")
    assert visit.open(served.demo_receipt) == "verified"
    steps = visit.steps()
    assert steps[0][2].startswith("The donation record's canonical bytes")
    assert "The amounts add up" in steps[-1][2]
    assert "Verified" in visit.page.inner_text("[data-summary]")


def _flip_hex(h: str) -> str:
    return ("1" if h[0] == "0" else "0") + h[1:]


def _flip_checkpoint_signature(doc: dict) -> None:
    head, sig = doc["checkpoint"].rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1
    doc["checkpoint"] = f"{head} {base64.b64encode(bytes(raw)).decode()}\n"


def _more_money(doc: dict) -> None:
    doc["entry"]["entry"]["body"]["amount"] += 100


TAMPERED = {
    "entry": _more_money,
    "inclusion": lambda d: d["inclusion_proof"].__setitem__(0, _flip_hex(d["inclusion_proof"][0])),
    "checkpoint": _flip_checkpoint_signature,
    "amounts": lambda d: d["allocation"][0].__setitem__("amount", "0.01"),
}


@pytest.mark.parametrize("step", list(TAMPERED))
def test_a_tampered_receipt_fails_at_the_matching_step(served, context, step):
    visit = Visit(context, served)
    visit.tamper(served.gift.receipt, TAMPERED[step])
    assert visit.open(served.gift.receipt) == "failed"
    assert visit.failed_at() == step
    steps = [(s[0], s[1]) for s in visit.steps()]
    at = [s[0] for s in steps].index(step)
    assert steps[at][1] == "failed" and all(status == "ok" for _, status in steps[:at])  # each step before it passed
    assert step in visit.page.inner_text("[data-summary]")


def _bad_signature(doc: dict) -> None:
    sig = doc["allocation"][1]["disbursement"]["entry"]["body"]["signatures"][0]
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[5] ^= 0x10
    sig["signature"] = base64.b64encode(bytes(raw)).decode()


def test_a_forged_disbursement_signature_fails_at_that_disbursement(served, context):
    forged = forge(served.gift, _bad_signature)  # the log key re-signed it all: only the charity's signature is wrong
    first, second = seqs(forged)
    visit = Visit(context, served)
    visit.tamper(served.gift.receipt, doc=forged)
    assert visit.open(served.gift.receipt) == "failed"
    assert visit.failed_at() == second
    steps = {s[0]: s for s in visit.steps()}
    assert [steps[s][1] for s in ("entry", "inclusion", "checkpoint", first)] == ["ok"] * 4
    assert steps[second][1] == "failed" and "does not verify" in steps[second][2]


def test_a_forged_key_rotation_fails_the_disbursements(served, context):
    def change(doc):
        sig = doc["charity"]["key_rotations"][0]["entry"]["body"]["signatures"][0]
        sig["signature"] = base64.b64encode(bytes(64)).decode()

    forged = forge(served.gift, change)
    visit = Visit(context, served)
    visit.tamper(served.gift.receipt, doc=forged)
    assert visit.open(served.gift.receipt) == "failed"
    assert visit.failed_at() == seqs(forged)[0]
    assert "key rotation 0" in dict((s[0], s[2]) for s in visit.steps())[seqs(forged)[0]]


def test_the_key_is_pinned_on_first_use_with_its_fingerprint(served, context):
    visit = Visit(context, served)
    assert visit.open(served.demo_receipt) == "verified"
    assert visit.page.evaluate(f"localStorage.getItem('{STORE}')") == served.log_key
    assert visit.page.inner_text("[data-pinned-key]") == served.log_key
    public = Verifier.from_string(served.log_key).public_key
    fp = hashlib.sha256(public).hexdigest()[:32]
    assert visit.page.inner_text("[data-fingerprint]") == " ".join(fp[i : i + 4] for i in range(0, 32, 4))
    assert visit.warning() is None


def test_a_changed_log_key_shows_the_warning_until_the_published_key_is_pasted(served, context):
    earlier = Signer.generate("localhost/luodi").verifier.to_string()  # the key pinned on an earlier visit
    visit = Visit(context, served)
    visit.open(served.demo_receipt)
    visit.page.evaluate(f"localStorage.setItem('{STORE}', {earlier!r})")
    visit.page.reload()
    assert visit.settle() == "failed"
    warning = visit.warning()
    assert warning is not None and earlier in warning and served.log_key in warning
    assert visit.failed_at() == "checkpoint"  # checked against the pinned key, not the site's new one
    assert visit.page.inner_text("[data-pinned-key]") == earlier
    assert visit.paste(served.log_key) == "verified"  # the donor checked the published key
    assert visit.warning() is None
    assert visit.page.evaluate(f"localStorage.getItem('{STORE}')") == served.log_key


def test_a_pasted_wrong_key_fails_at_the_checkpoint(served, context):
    visit = Visit(context, served)
    assert visit.open(served.demo_receipt) == "verified"
    assert visit.paste("not a key") == "verified"  # refused: nothing re-ran
    assert visit.page.is_visible("[data-paste-error]")
    wrong = Signer.generate("localhost/luodi").verifier.to_string()
    assert visit.paste(wrong) == "failed"
    assert visit.failed_at() == "checkpoint"
    steps = dict((s[0], s[1]) for s in visit.steps())
    assert steps["entry"] == steps["inclusion"] == "ok" and steps["checkpoint"] == "failed"
    assert visit.warning() is not None


def test_without_ed25519_in_webcrypto_the_vendored_fallback_verifies(served, context):
    context.add_init_script(NO_ED25519)
    visit = Visit(context, served, lang="en")
    assert visit.open(served.gift.receipt) == "verified"
    assert any(u.endswith("/static/verify/vendor/noble-ed25519.js") for u in visit.requests)
    assert "@noble/ed25519" in visit.page.inner_text("[data-note]")
    visit.tamper(served.gift.receipt, doc=forge(served.gift, _bad_signature))
    visit.page.reload()
    assert visit.settle() == "failed" and visit.failed_at() == seqs(served.gift.doc)[1]


def test_without_webcrypto_the_panel_says_it_cannot_verify(served, context):
    context.add_init_script(NO_WEBCRYPTO)
    visit = Visit(context, served, lang="en")
    assert visit.open(served.demo_receipt) == "failed"
    assert "cannot verify" in visit.page.inner_text("[data-summary]")
    assert visit.page.get_attribute("#verification", "data-reason") == "unsupported"
    assert visit.steps() == []


def test_the_contract_page_is_sent_under_the_strict_csp(served, context):
    visit = Visit(context, served)
    resp = visit.page.goto(f"{served.server.url}/receipts/{served.demo_receipt}")
    assert resp.headers["content-security-policy"] == STRICT_CSP
