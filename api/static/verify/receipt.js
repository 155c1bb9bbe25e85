// A donor's receipt check in the browser, step by step, as ledger/charity/receipt_check.py:
//   entry             the donation's canonical bytes hash to the receipt hash
//   inclusion         its inclusion proof reaches the checkpoint's root
//   checkpoint        the checkpoint is signed by the pinned log key (and sizes the receipt's tree)
//   disbursement-<seq> each disbursement: its entry hash, its inclusion proof, and a threshold of
//                     the keys the charity registered (or last rotated to) before it signed it
//   amounts           each allocation within its disbursement; allocations add up to spent;
//                     spent + refunded + unspent == the gift, in integer minor units
// checkReceipt yields one {step, ok, detail, facts} per step; it trusts nothing but the pinned key.
import { canonicalBytes } from "./canonical.js";
import { fromBase64, hash32, same, toHex } from "./encoding.js";
import { leafHash, verifyInclusion } from "./merkle.js";
import { openCheckpoint, parseNote, parseVerifierKey, verifyEd25519 } from "./note.js";

export class Fail extends Error {}

function need(cond, detail) {
  if (!cond) throw new Fail(detail);
}

// ISO 4217 minor-unit exponents: ledger/charity/money.py CURRENCIES.
const EXPONENT = {
  CNY: 2, HKD: 2, MOP: 2, TWD: 2, USD: 2, EUR: 2, GBP: 2, CHF: 2, CAD: 2, AUD: 2, NZD: 2, SGD: 2,
  MYR: 2, THB: 2, INR: 2, JPY: 0, KRW: 0, VND: 0, BHD: 3, KWD: 3, JOD: 3,
};
const MAX_MINOR = 10n ** 15n;

/** Minor units (BigInt) as the server writes them: exactly the currency's decimals. */
export function formatAmount(minor, currency) {
  const exp = EXPONENT[currency];
  const m = BigInt(minor);
  const sign = m < 0n ? "-" : "";
  const a = m < 0n ? -m : m;
  if (!exp) return sign + a.toString();
  const unit = 10n ** BigInt(exp);
  return `${sign}${a / unit}.${(a % unit).toString().padStart(exp, "0")}`;
}

/** A decimal string in its one spelling to minor units (BigInt); never a float. */
export function parseAmount(text, currency, what) {
  const exp = EXPONENT[currency];
  need(exp !== undefined, `currency ${currency} is not one Luodi accepts`);
  const m = typeof text === "string" && /^(0|[1-9][0-9]{0,17})(?:\.([0-9]+))?$/.exec(text);
  need(m, `${what} ${JSON.stringify(text)} is not a plain decimal`);
  const frac = m[2] ?? "";
  need(frac.length <= exp, `${what} ${text} has more than ${exp} decimals`);
  const minor = BigInt(m[1]) * 10n ** BigInt(exp) + BigInt(frac.padEnd(exp, "0") || "0");
  need(minor <= MAX_MINOR, `${what} ${text} is above the maximum`);
  need(formatAmount(minor, currency) === text, `${what} ${text} is not written as ${formatAmount(minor, currency)}`);
  return minor;
}

function hashes(list, what) {
  need(Array.isArray(list), `${what} must be a list of hashes`);
  return list.map((h, i) => hash32(h, `${what}[${i}]`));
}

/** An entry item {seq, leaf_hash, entry}: its canonical bytes hash to its leaf hash; of `kind`. */
async function entryOf(item, kind, what) {
  need(item && typeof item === "object" && item.entry && typeof item.entry === "object", `${what} is not an entry item`);
  const entry = item.entry;
  const leaf = await leafHash(canonicalBytes(entry));
  need(typeof item.leaf_hash === "string" && same(hash32(item.leaf_hash, `${what} leaf hash`), leaf),
    `${what}: its canonical bytes hash to ${toHex(leaf)}, not to the stated ${item.leaf_hash}`);
  need(entry.kind === kind, `${what} is a ${entry.kind} entry, not ${kind}`);
  need(Number.isSafeInteger(entry.seq) && item.seq === entry.seq, `${what}: the stated seq is not the entry's`);
  need(entry.body && typeof entry.body === "object", `${what} has no body`);
  return { seq: entry.seq, leaf, body: entry.body };
}

async function included(e, index, proof, cp, what) {
  need(index === e.seq, `${what}: leaf_index ${index} is not the entry's seq ${e.seq}`);
  await verifyInclusion(e.leaf, e.seq, cp.size, hashes(proof, `${what} inclusion proof`), cp.root);
}

async function proven(item, kind, cp, what) {
  const e = await entryOf(item, kind, what);
  await included(e, item.leaf_index, item.inclusion_proof, cp, what);
  return e;
}

/** A threshold of `charity`'s keys signed `payload` (books.verify_signatures and check_signers). */
async function signedBy(payload, sigs, charity, what) {
  need(Array.isArray(sigs) && sigs.length, `${what} has no signatures`);
  const data = canonicalBytes(payload);
  const current = await Promise.all(charity.keys.map((k) => parseVerifierKey(k)));
  const seen = [];
  for (const [j, sig] of sigs.entries()) {
    const v = await parseVerifierKey(sig?.key);
    need(!seen.some((k) => same(k, v.publicKey)), `${what}: signature ${j} is by a key that signed already`);
    seen.push(v.publicKey);
    const raw = fromBase64(sig.signature, `${what} signature ${j}`);
    need(await verifyEd25519(v.publicKey, raw, data), `${what}: signature ${j} by ${v.name} does not verify`);
    need(current.some((k) => same(k.publicKey, v.publicKey)), `${what}: signature ${j} is not by a key the charity held then`);
  }
  need(seen.length >= charity.threshold, `${what}: ${seen.length} key(s) signed; the charity needs ${charity.threshold}`);
  return seen.length;
}

/** The charity's keys as the log recorded them: [{since, keys, threshold}], each rotation checked. */
async function charityKeys(doc, gift, cp) {
  const opening = await proven(doc.project_opening, "project.opened", cp, "the project's opening");
  need(opening.body.project === gift.body.project, "the project's opening is of another project");
  need(opening.body.currency === gift.body.currency, "the project's opening is in another currency");
  need(opening.seq < gift.seq, "the project's opening comes after the gift");
  const charity = opening.body.charity;
  const block = doc.charity;
  need(block && typeof block === "object", "the receipt holds no charity registration");
  const reg = await proven(block.registration, "charity.registered", cp, "the charity's registration");
  need(reg.body.charity === charity, "the registration is of another charity");
  need(reg.seq < opening.seq, "the registration comes after the project's opening");
  const keys = [{ since: reg.seq, keys: reg.body.keys, threshold: reg.body.threshold }];
  need(Array.isArray(block.key_rotations), "the key rotations must be a list");
  for (const [i, item] of block.key_rotations.entries()) {
    const what = `key rotation ${i}`;
    const rot = await proven(item, "charity.keys_rotated", cp, what);
    const payload = rot.body.payload;
    need(payload?.charity === charity, `${what} is of another charity`);
    need(rot.seq > keys[keys.length - 1].since, `${what} is out of order`);
    await signedBy(payload, rot.body.signatures, keys[keys.length - 1], what);
    keys.push({ since: rot.seq, keys: payload.keys, threshold: payload.threshold });
  }
  return { charity, keys };
}

async function step(name, fn) {
  try {
    return { step: name, ok: true, facts: (await fn()) ?? {} };
  } catch (e) {
    return { step: name, ok: false, detail: e?.message ?? String(e), facts: {} };
  }
}

/**
 * Check a JSON receipt (GET /v1/receipts/<hash>) against `pinnedKey` (verifier key text),
 * for the receipt hash `receipt` the donor holds.  Yields one result per step, in order.
 */
export async function* checkReceipt(doc, receipt, pinnedKey) {
  let gift = null;
  let cp = null;
  yield await step("entry", async () => {
    gift = await entryOf(doc?.entry, "donation", "the donation");
    need(same(gift.leaf, hash32(receipt, "the receipt hash")), "the donation does not hash to this receipt");
    return { seq: gift.seq };
  });
  yield await step("inclusion", async () => {
    need(gift, "the donation entry did not check");
    const { text } = parseNote(doc.checkpoint);
    const [, size, root64] = text.split("\n");
    cp = { size: Number(size), root: fromBase64(root64, "the checkpoint root") };
    need(Number.isSafeInteger(cp.size), "the checkpoint's size is not a number");
    await included(gift, doc.leaf_index, doc.inclusion_proof, cp, "the donation");
    return { size: cp.size };
  });
  yield await step("checkpoint", async () => {
    const pinned = await parseVerifierKey(pinnedKey);
    const opened = await openCheckpoint(doc.checkpoint, pinned);
    need(doc.tree_size === opened.size, `tree_size ${doc.tree_size} is not the checkpoint's size ${opened.size}`);
    need(!cp || (cp.size === opened.size && same(cp.root, opened.root)), "the checkpoint changed between the steps");
    return { size: opened.size, key: pinned.text };
  });
  const allocations = Array.isArray(doc?.allocation) ? doc.allocation : [];
  let charity = null;
  let last = gift ? gift.seq : Infinity;
  const taken = [];
  for (const [i, alloc] of allocations.entries()) {
    const seq = alloc?.disbursement?.seq;
    yield await step(`disbursement-${Number.isSafeInteger(seq) ? seq : i}`, async () => {
      need(gift && cp, "the donation did not check");
      charity ??= await charityKeys(doc, gift, cp).catch((e) => ({ error: e.message }));
      need(!charity.error, `the charity's keys do not check: ${charity.error}`);
      const d = await entryOf(alloc.disbursement, "disbursement", "the disbursement");
      await included(d, alloc.leaf_index, alloc.inclusion_proof, cp, "the disbursement");
      const payload = d.body.payload;
      need(d.seq > last, "the disbursement is not after the gift and the disbursement before it");
      last = d.seq;
      need(payload.project === gift.body.project && payload.currency === gift.body.currency,
        "the disbursement pays from another project or currency");
      need(payload.charity === charity.charity, "the disbursement is signed for another charity");
      const held = charity.keys.filter((k) => k.since < d.seq).pop();
      const signers = await signedBy(payload, d.body.signatures, held, "the disbursement");
      return { seq: d.seq, payee: payload.payee?.name, purpose: payload.purpose, signers, threshold: held.threshold };
    }).then((r) => {
      taken.push(r.ok ? { alloc, d: alloc.disbursement.entry.body.payload } : null);
      return r;
    });
  }
  yield await step("amounts", async () => {
    need(gift, "the donation did not check");
    const currency = gift.body.currency;
    need(doc.currency === currency, `the receipt's currency ${doc.currency} is not the donation's ${currency}`);
    const [amount, spent, refunded, unspent] = ["amount", "spent", "refunded", "unspent"].map((n) =>
      doc[n] === formatAmount(0, currency) ? 0n : parseAmount(doc[n], currency, n));
    need(Number.isSafeInteger(gift.body.amount) && amount === BigInt(gift.body.amount), "the amount is not the donation entry's");
    let sum = 0n;
    for (const [i, t] of taken.entries()) {
      need(t, `disbursement ${i} did not check`);
      const take = parseAmount(t.alloc.amount, currency, `the amount from disbursement ${i}`);
      need(take > 0n && Number.isSafeInteger(t.d.amount) && take <= BigInt(t.d.amount),
        `the amount from disbursement ${i} is not within the disbursement`);
      sum += take;
    }
    need(sum === spent, "the amounts taken by the disbursements do not add up to spent");
    need(spent + refunded + unspent === amount, "spent + refunded + unspent is not the gift");
    return { currency, amount, spent, refunded, unspent };
  });
}
