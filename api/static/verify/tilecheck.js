// The donor page's checks against the log's current checkpoint, after receipt.js has checked the
// receipt itself (docs/architecture.md §9.3):
//   tiles      <base>/checkpoint is signed by the pinned log key, is not older than the receipt's,
//              and inclusion proofs assembled from the log's C2SP tiles (tiles.js) put the gift and
//              each disbursement it paid for in its tree (a tile served wrong fails the proof).
//              A site that serves no /checkpoint (404) skips this step, visibly (ok: null).
//   witnesses  with the donor's witness policy (k of n witness keys; cosignature.js), the checkpoint
//              the check relied on (the log's current one from /checkpoint once it verified with
//              the pinned key, else the receipt's) carries a quorum of
//              cosignatures.  The keys are the donor's own (a link, a form): never the site's.
// checkCurrent yields {step, ok, detail, facts} like receipt.js's checkReceipt.
import { hash32 } from "./encoding.js";
import { checkWitnessed, describePolicy } from "./cosignature.js";
import { verifyInclusion } from "./merkle.js";
import { openCheckpoint, parseVerifierKey } from "./note.js";
import { httpTiles, TileReader } from "./tiles.js";

class Fail extends Error {}

function need(cond, detail) {
  if (!cond) throw new Fail(detail);
}

/** The entries the receipt relies on: the gift, then each disbursement it paid for. */
function entriesOf(doc) {
  const items = [doc?.entry, ...(Array.isArray(doc?.allocation) ? doc.allocation.map((a) => a?.disbursement) : [])];
  return items.map((item, i) => {
    need(item && Number.isSafeInteger(item.seq), `entry ${i} of the receipt has no seq`);
    return { seq: item.seq, leaf: hash32(item.leaf_hash, `the leaf hash of seq ${item.seq}`) };
  });
}

async function step(name, fn) {
  try {
    const facts = await fn();
    return facts === null ? { step: name, ok: null, facts: {} } : { step: name, ok: true, facts: facts ?? {} };
  } catch (e) {
    return { step: name, ok: false, detail: e?.message ?? String(e), facts: {} };
  }
}

/**
 * `doc` is the JSON receipt, `pinnedKey` the log key text; `tiles` the tile base URL ("" for this
 * site, undefined: no check from tiles); `policy` from cosignature.js's witnessPolicy, or undefined.
 */
export async function* checkCurrent(doc, pinnedKey, { tiles, policy, policyError } = {}) {
  let note = null;
  if (tiles !== undefined) {
    yield await step("tiles", async () => {
      const fetchTile = httpTiles(tiles);
      const data = await fetchTile("checkpoint");
      if (data === null) return null; // no tiles here: skipped, and said so
      const pinned = await parseVerifierKey(pinnedKey);
      const text = new TextDecoder("utf-8", { fatal: true }).decode(data);
      const cp = await openCheckpoint(text, pinned);
      note = text; // the log's checkpoint, signed by the pinned key: the one the witnesses must have cosigned
      need(Number.isSafeInteger(doc?.tree_size) && cp.size >= doc.tree_size,
        `the log's checkpoint (${cp.size} entries) is older than the receipt's (${doc?.tree_size})`);
      const reader = new TileReader(fetchTile, cp.size);
      const entries = entriesOf(doc);
      for (const e of entries) {
        need(e.seq < cp.size, `seq ${e.seq} is beyond the log's checkpoint of ${cp.size} entries`);
        await verifyInclusion(e.leaf, e.seq, cp.size, await reader.inclusionProof(e.seq), cp.root)
          .catch((x) => { throw new Fail(`seq ${e.seq} is not in the tree of the log's checkpoint: ${x.message}`); });
      }
      return { size: cp.size, count: entries.length, tiles: new Set(reader.fetched).size, base: tiles || location.origin };
    });
  }
  if (policy !== undefined || policyError) {
    yield await step("witnesses", async () => {
      need(!policyError, `your witness policy is not valid: ${policyError}`);
      const pinned = await parseVerifierKey(pinnedKey);
      const cp = await checkWitnessed(note ?? doc?.checkpoint, pinned, policy);
      return { cosigned: Object.keys(cp.cosigned), needed: describePolicy(policy), size: cp.size, from: note ? "tiles" : "receipt" };
    });
  }
}
