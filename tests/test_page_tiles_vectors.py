"""The browser's C2SP twins (``api/static/verify/cosignature.js``, ``tiles.js``) in Chromium, against
the golden vectors the Python modules made (tests/golden/cosignature.json, tiles.json; the Python
side is held to the same files in tests/test_golden_c2sp.py).

- cosignature.js: witness key IDs (type 0x04), the signed message byte for byte, the refused keys,
  and every k-of-n verdict (ok, quorum not met, a known witness's bad line, another log's
  checkpoint), with WebCrypto's Ed25519 and with the vendored @noble/ed25519;
- tiles.js: the paths, and every inclusion proof assembled from the golden tiles equal to
  Python's, verifying with merkle.js; a tile served wrong gives a proof that fails; a partial tile
  that is gone is read from the full one.
"""

from __future__ import annotations

import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from browser_helpers import launch, needs_chromium

pytestmark = needs_chromium
ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
COSIG = json.loads((GOLDEN / "cosignature.json").read_text(encoding="utf-8"))
TILES = json.loads((GOLDEN / "tiles.json").read_text(encoding="utf-8"))
MODULES = """const [cs, t, m, n, e] = await Promise.all(['cosignature', 'tiles', 'merkle', 'note', 'encoding']
  .map((x) => import(`/static/verify/${x}.js`)));"""


class _Static(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def lab():
    """A page on an origin that serves api/static/ (the verifier's modules), nothing else."""
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Static, directory=str(ROOT / "api")))
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


def test_witness_key_ids_and_signed_messages(lab):
    got = run(lab, """const text = n.parseNote(arg.checkpoint).text;
      const out = [];
      for (const w of arg.witnesses) {
        const k = await cs.parseWitnessKey(w.vkey);
        out.push([k.name, e.toHex(k.keyId), e.toBase64(cs.signedMessage(text, w.timestamp))]);
      }
      const refused = [];
      for (const bad of arg.bad_keys) refused.push(await cs.parseWitnessKey(bad).then(() => 'parsed', (x) => x.constructor.name));
      return {out, refused};""", COSIG)
    assert got["out"] == [[w["name"], w["key_id"], w["signed_message"]] for w in COSIG["witnesses"]]
    assert got["refused"] == ["FormatError"] * len(COSIG["bad_keys"])


def test_every_policy_verdict_in_both_engines(lab):
    got = run(lab, """const out = [];
      const log = await n.parseVerifierKey(arg.log_key);
      for (const fallback of [false, true]) {
        n.useFallback(fallback);
        for (const c of arg.cases) {
          const policy = await cs.witnessPolicy(c.witnesses, c.quorum);
          try {
            const cp = await cs.checkWitnessed(c.note, log, policy);
            out.push(['ok', cp.cosigned]);
          } catch (x) {
            if (x instanceof cs.QuorumError) out.push(['quorum', x.cosigned, x.message]);
            else if (x instanceof n.SignatureError) out.push([/not signed by the pinned key/.test(x.message) ? 'not-log' : 'bad-signature', x.message]);
            else out.push(['other', String(x)]);
          }
        }
      }
      n.useFallback(false);
      return out;""", COSIG)
    want = []
    for case in COSIG["cases"]:
        if case["expect"] == "ok":
            want.append(["ok", case["cosigned"]])
        elif case["expect"] == "quorum":
            want.append(["quorum", sorted(case["cosigned"])])
        else:
            want.append([case["expect"]])
    assert [g[: len(w)] for g, w in zip(got, want + want)] == want + want
    quorum = next(g for g in got if g[0] == "quorum")
    assert "the policy needs" in quorum[2] and "of the policy's witnesses" in quorum[2]


def test_k_of_n_policies_refused_as_the_command_line_refuses_them(lab):
    keys = [w["vkey"] for w in COSIG["witnesses"][:3]]
    got = run(lab, """const out = [];
      for (const [keys, k] of arg) out.push(await cs.witnessPolicy(keys, k).then((p) => p.quorum, (x) => x.message));
      return out;""", [[keys, None], [keys, 0], [keys, 4], [[keys[0], keys[0]], 1], [[], 1], [[], None]])
    assert got[0] == 3  # the default: all of them
    assert "between 1 and the number of witnesses (3)" in got[1] and "(3)" in got[2]
    assert "twice" in got[3] and "(0)" in got[4] and got[5] == 0


def test_tile_paths(lab):
    got = run(lab, "return arg.map(([l, i, w]) => t.tilePath(l, i, w));", TILES["paths"])
    assert got == [p[3] for p in TILES["paths"]]


def test_inclusion_proofs_from_the_golden_tiles(lab):
    got = run(lab, """const files = new Map(Object.entries(arg.files).map(([p, h]) => [p, Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16))]));
      const out = [];
      for (const tree of arg.trees) {
        const scenarios = [[null, null], ['tile/0/000', null]];
        for (const p of tree.tiles) if (p.includes('.p/') && files.has(p.split('.p/')[0])) scenarios.push([null, p]);
        for (const [damaged, gone] of scenarios) {
          const reader = new t.TileReader(async (path) => {
            if (path === gone || !files.has(path)) return null;
            const data = files.get(path).slice();
            if (path === damaged) for (let i = 5; i < data.length; i += 32) data[i] ^= 1; // every hash in it
            return data;
          }, tree.size);
          const root = e.hash32(tree.root, 'root');
          for (const [index, proof] of Object.entries(tree.inclusion)) {
            const leaf = e.hash32(index < 3 ? arg.leaf_hashes[index] : '00'.repeat(32), 'leaf');
            const built = await reader.inclusionProof(Number(index));
            const verdict = index < 3 ? await m.verifyInclusion(leaf, Number(index), tree.size, built, root).then(() => 'ok', (x) => 'refused') : null;
            out.push([tree.size, Number(index), damaged ? 'damaged' : gone ? 'gone' : 'clean', built.map(e.toHex), verdict, reader.fetched.includes(gone ?? '')]);
          }
        }
      }
      return out;""", TILES)
    want_proofs = {(tree["size"], int(i)): p for tree in TILES["trees"] for i, p in tree["inclusion"].items()}
    clean = [g for g in got if g[2] == "clean"]
    assert len(clean) == len(want_proofs) == 18
    for size, index, _, proof, verdict, _ in clean:
        assert proof == want_proofs[(size, index)], (size, index)
        assert verdict in (None, "ok")
    # the first level-0 tile served wrong: the proofs of leaves 0-2 (whose siblings it holds) fail
    damaged = [g for g in got if g[2] == "damaged" and g[1] < 3]
    assert damaged and all(g[4] == "refused" for g in damaged)
    # a partial tile gone: the reader asked for it, then read the full one, and the proofs are the same
    gone = [g for g in got if g[2] == "gone"]
    assert gone and all(g[0] == 300 and g[3] == want_proofs[(g[0], g[1])] and g[5] for g in gone)
