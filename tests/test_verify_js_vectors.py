"""The browser verifier (``api/static/verify/``) against the Python core, in Chromium.

Every value here is computed in the browser and compared with the pinned golden vectors
(``tests/golden/ledger_v1.json``, ``ledger_v2.json``) or with ``ledger.log.canonical``:
canonical bytes and leaf hashes of every entry, the checkpoints and their signatures (by
WebCrypto and by the vendored @noble/ed25519 fallback), the inclusion proofs, the disbursement
signatures, and a few thousand generated values whose canonical forms must be byte for byte
Python's (and values outside the domain refused by both).

SQLite only (the default database): this checks the browser verifier against vectors;
the storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from browser_helpers import launch, needs_chromium

from api import create_app
from api.instance import init_instance
from ledger.errors import InvalidEntry
from ledger.log.canonical import INT_MAX, INT_MIN, canonical_bytes
from ledger.log.merkle import root as merkle_root
from ledger.log.note import Signer

pytestmark = needs_chromium
GOLDEN = Path(__file__).parent / "golden"
V1 = json.loads((GOLDEN / "ledger_v1.json").read_text())
V2 = json.loads((GOLDEN / "ledger_v2.json").read_text())
MODULES = """const [c, m, n, e] = await Promise.all(['canonical', 'merkle', 'note', 'encoding']
  .map((x) => import(`/static/verify/${x}.js`)));"""


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A page on the app's origin (which serves /static/verify/) to import the modules from."""
    from playwright.sync_api import sync_playwright

    inst = tmp_path_factory.mktemp("lab") / "inst"
    init_instance(inst).charity.stores.close()
    server = make_server("127.0.0.1", 0, create_app({"TESTING": True, "INSTANCE": str(inst)}), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.route(f"{base}/lab", lambda r: r.fulfill(content_type="text/html", body="<!doctype html><title>lab</title>"))
            page.goto(f"{base}/lab")
            yield page
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def run(page, body: str, arg=None):
    return page.evaluate(f"async (arg) => {{ {MODULES} {body} }}", arg)


def test_golden_entries_canonical_bytes_and_leaf_hashes(lab):
    vectors = [[e["canonical"], e["leaf_hash"]] for e in V2["entries"]]
    vectors += [[text, V1["entries"][int(seq)]["leaf_hash"]] for seq, text in V1["canonical"].items()]
    got = run(lab, """const out = [];
      for (const [text] of arg) {
        const value = JSON.parse(text);
        out.push([c.canonicalText(value), e.toHex(await m.leafHash(c.canonicalBytes(value)))]);
      }
      return out;""", vectors)
    assert len(vectors) == 11
    assert got == vectors


def test_golden_checkpoints_open_with_the_pinned_key_only(lab):
    notes = [[cp["note"], V1["verifier_key"], cp["size"], cp["root"]] for cp in V1["checkpoints"]]
    notes.append([V2["checkpoint"], V2["verifier_key"], 9, V2["checkpoint"].split("\n")[2]])
    text = V2["checkpoint"][: V2["checkpoint"].index("\n\n") + 1]
    cosigned = V2["checkpoint"] + Signer.generate("witness.example/w1").signature_line(text)
    got = run(lab, """const out = [];
      for (const fallback of [false, true]) {
        n.useFallback(fallback);
        for (const [note, key] of arg.notes) {
          const cp = await n.openCheckpoint(note, await n.parseVerifierKey(key));
          out.push([cp.size, e.toBase64(cp.root), fallback && (await n.ed25519Engine())]);
        }
      }
      n.useFallback(false);
      const refused = async (note, key) => n.openCheckpoint(note, await n.parseVerifierKey(key)).then(() => 'opened', (x) => x.message);
      const sig = arg.v2.slice(arg.v2.lastIndexOf(' ') + 1, -1);
      const raw = e.fromBase64(sig, 'sig'); raw[20] ^= 1;
      return {out, cosigned: await refused(arg.cosigned, arg.key2),
              otherKey: await refused(arg.v2, arg.key1), flipped: await refused(arg.v2.replace(sig, e.toBase64(raw)), arg.key2)};""",
        {"notes": notes, "cosigned": cosigned, "v2": V2["checkpoint"], "key1": V1["verifier_key"], "key2": V2["verifier_key"]})
    want = [[size, root] for _, _, size, root in notes]
    assert [g[:2] for g in got["out"]] == want + want
    assert [g[2] for g in got["out"][len(want):]] == ["fallback"] * len(want)
    assert got["cosigned"] == "opened"  # a witness's signature by an unknown key is ignored
    assert "not signed by the pinned key" in got["otherKey"]
    assert "does not verify" in got["flipped"]


def test_golden_inclusion_proofs_reach_the_reference_roots(lab):
    cases = []
    for golden in (V1, V2):
        leaves = [bytes.fromhex(e["leaf_hash"]) for e in golden["entries"]]
        for inc in golden["inclusion"]:
            root = merkle_root(leaves[: inc["size"]]).hex()  # the core's, cross-checked in test_golden*.py
            cases.append([golden["entries"][inc["index"]]["leaf_hash"], inc["index"], inc["size"], inc["proof"], root])
    got = run(lab, """const out = [];
      for (const [leaf, index, size, proof, root] of arg) {
        const h = (x) => e.hash32(x, 'hash');
        const check = (l, i, p) => m.verifyInclusion(h(l), i, size, p.map(h), h(root)).then(() => 'ok', (x) => 'refused');
        const bad = proof.map((x, j) => j ? x : x.replace(/^./, (d) => d === '0' ? '1' : '0'));
        out.push([await check(leaf, index, proof), proof.length ? await check(leaf, index, bad) : 'refused',
                  await check(leaf, (index + 1) % size, proof), await check(leaf, index, [...proof, root])]);
      }
      return out;""", cases)
    assert len(cases) == 17
    assert got == [["ok", "refused", "ok" if c[2] == 1 else "refused", "refused"] for c in cases]


def test_golden_disbursement_signatures_verify_in_both_engines(lab):
    signed = [json.loads(e["canonical"])["body"] for e in V2["entries"] if '"kind":"disbursement"' in e["canonical"]]
    assert signed and all(len(b["signatures"]) == 2 for b in signed)
    got = run(lab, """const out = [];
      for (const fallback of [false, true]) {
        n.useFallback(fallback);
        for (const body of arg) {
          const data = c.canonicalBytes(body.payload);
          for (const sig of body.signatures) {
            const key = await n.parseVerifierKey(sig.key);
            const raw = e.fromBase64(sig.signature, 'sig');
            const flipped = raw.slice(); flipped[7] ^= 0x40;
            out.push([await n.verifyEd25519(key.publicKey, raw, data), await n.verifyEd25519(key.publicKey, flipped, data),
                      await n.verifyEd25519(key.publicKey, raw, c.canonicalBytes({...body.payload, amount: body.payload.amount + 1}))]);
          }
        }
      }
      n.useFallback(false);
      return out;""", signed)
    assert got == [[True, False, False]] * 4


def _string(rng: random.Random) -> str:
    pools = ['"', "\\", "/", " ", "a", "Z", "0", "é", "落", "地", "\u2028", "\u2029", "\u00a0", "\ufeff", "\uffff",
             "\U0001f381", "\U00010000", "\U0010ffff", "\u00ad", "'", "<", "&", "\u0301"]
    return "".join(rng.choice(pools) if rng.random() < 0.6 else chr(rng.randint(0xA0, 0xD7FF)) for _ in range(rng.randint(0, 12)))


def _value(rng: random.Random, depth: int = 0):
    kind = rng.choice(["str", "int", "big", "const", "list", "dict", "dict"] if depth < 6 else ["str", "int", "const"])
    if kind == "str":
        return _string(rng)
    if kind == "int":
        return rng.randint(-10**6, 10**6)
    if kind == "big":
        return rng.choice([INT_MAX, INT_MIN, 0, -1, 2**31, -(2**31) - 1, 2**32 + 1, rng.randint(INT_MIN, INT_MAX)])
    if kind == "const":
        return rng.choice([True, False, None])
    if kind == "list":
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_string(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _entry(rng: random.Random, seq: int) -> dict:
    return {"seq": seq, "prev": f"{rng.getrandbits(256):064x}", "time": "2026-11-29T04:31:04.123Z",
            "kind": "note", "body": {_string(rng): _value(rng, 1) for _ in range(rng.randint(1, 6))}}


def test_generated_entries_canonicalise_as_python_does(lab):
    rng = random.Random(8785)
    values = [_entry(rng, i) for i in range(3000)]
    values.append({"\U0001f381": 1, "\uffff": 2, "a": 3, "\U00010000": 4, "\ue000": 5})  # UTF-16 order, not code points
    want = [canonical_bytes(v).decode("utf-8") for v in values]
    got = run(lab, """const out = [];
      for (const v of JSON.parse(arg)) out.push(c.canonicalText(v));
      return out;""", json.dumps(values, ensure_ascii=True))
    assert len(got) == len(want) == 3001
    mismatched = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
    assert mismatched == []
    # UTF-16 code units: U+10000 is D800 DC00, below U+E000 (code-point order would put it last)
    assert want[-1] == '{"a":3,"\U00010000":4,"\U0001f381":1,"\ue000":5,"\uffff":2}'


OUTSIDE = ['1.5', '9007199254740992', '-9007199254740992', '"\\ud800"', '{"\\udc00x": 1}', '"a\\u0000"', '"\\u007f"',
           '"\\u009f"', '{"k\\u001f": 0}', '[' * 34 + ']' * 34]


def test_values_outside_the_domain_are_refused_by_both(lab):
    for text in OUTSIDE:
        with pytest.raises(InvalidEntry):
            canonical_bytes(json.loads(text))
    got = run(lab, """return arg.map((t) => { try { return c.canonicalText(JSON.parse(t)); } catch (x) {
      return x instanceof c.CanonicalError ? 'refused' : String(x); } });""", OUTSIDE)
    assert got == ["refused"] * len(OUTSIDE)
    deepest = '[' * 33 + ']' * 33  # 32 levels below the top: allowed by both
    assert run(lab, "return c.canonicalText(JSON.parse(arg));", deepest) == canonical_bytes(json.loads(deepest)).decode()
