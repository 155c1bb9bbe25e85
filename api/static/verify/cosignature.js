// C2SP tlog-cosignature (Ed25519 cosignature/v1) and a k-of-n witness policy (C2SP tlog-policy), as
// ledger/log/cosignature.py and ledger/log/policy.py (Policy.of), tested against the same golden
// vectors (tests/golden/cosignature.json).
//   witness key   name+<8 hex key ID>+base64(0x04 || 32-byte Ed25519 key), key ID
//                 SHA-256(name || "\n" || 0x04 || key)[:4]: a log's 0x01 key never matches it
//   signature     base64(key ID || u64 big-endian timestamp || Ed25519 signature), over
//                 "cosignature/v1\ntime <timestamp>\n" + the checkpoint's note text
// As signed-note asks, a line whose name or key ID no witness has is ignored; a known witness's line
// that does not verify rejects the note.  The witnesses are the donor's: this module trusts no key
// it was not given.
import { concat, fromBase64, FormatError, sha256, same, toHex } from "./encoding.js";
import { openCheckpoint, parseNote, SignatureError, verifyEd25519 } from "./note.js";

export const ALG_COSIGNATURE_V1 = 0x04;
const MAX_TIMESTAMP = (1n << 63n) - 1n;

/** The quorum is not met: `cosigned` names the witnesses that did cosign, `needed` how many. */
export class QuorumError extends Error {
  constructor(message, cosigned, needed) {
    super(message);
    this.cosigned = cosigned;
    this.needed = needed;
  }
}

/** SHA-256(name || 0x0A || 0x04 || public key)[0:4]. */
export async function cosignatureKeyId(name, publicKey) {
  const h = await sha256(concat(new TextEncoder().encode(name + "\n"), Uint8Array.of(ALG_COSIGNATURE_V1), publicKey));
  return h.slice(0, 4);
}

/** The message a cosignature/v1 signs: the header line, the time line, the note text. */
export function signedMessage(text, timestamp) {
  const t = BigInt(timestamp);
  if (t < 0n || t > MAX_TIMESTAMP) throw new FormatError("a cosignature's timestamp must be 0 to 2**63 - 1");
  if (!text.endsWith("\n")) throw new FormatError("the cosigned note text must end in a newline");
  return new TextEncoder().encode(`cosignature/v1\ntime ${t}\n${text}`);
}

/** Parse a witness's verifier key (type 0x04); its key ID must match its name and key. */
export async function parseWitnessKey(text) {
  if (typeof text !== "string") throw new FormatError("the witness key must be text");
  const first = text.indexOf("+");
  const second = text.indexOf("+", first + 1);
  if (first < 0 || second < 0) throw new FormatError("a witness key is name+hash+key");
  const [name, hex, b64] = [text.slice(0, first), text.slice(first + 1, second), text.slice(second + 1)];
  if (!name || /[\s+]/.test(name)) throw new FormatError("the witness key's name must be non-empty with no spaces");
  if (!/^[0-9a-f]{8}$/.test(hex)) throw new FormatError("the witness key's hash must be 8 lowercase hex digits");
  const raw = fromBase64(b64, "the witness key");
  if (raw.length !== 33 || raw[0] !== ALG_COSIGNATURE_V1) {
    throw new FormatError("a witness key must be 0x04 followed by a 32-byte Ed25519 key");
  }
  const publicKey = raw.slice(1);
  const keyId = await cosignatureKeyId(name, publicKey);
  if (toHex(keyId) !== hex) throw new FormatError("the witness key's hash does not match its name and key");
  return { name, publicKey, keyId, text };
}

/** The witnesses among `witnesses` (parsed keys) that cosigned `note`: Map name -> timestamp (Number). */
export async function verifyCosignatures(note, witnesses) {
  const { text, signatures } = parseNote(note);
  const found = new Map();
  for (const sig of signatures) {
    for (const w of witnesses) {
      if (sig.name !== w.name || !same(sig.keyId, w.keyId)) continue;
      if (sig.signature.length !== 8 + 64) throw new SignatureError(`cosignature by ${w.name} is not a timestamped Ed25519 signature`);
      const t = new DataView(sig.signature.buffer, sig.signature.byteOffset, 8).getBigUint64(0, false);
      if (t > MAX_TIMESTAMP) throw new SignatureError(`cosignature by ${w.name} has a timestamp above 2**63 - 1`);
      if (!(await verifyEd25519(w.publicKey, sig.signature.slice(8), signedMessage(text, t)))) {
        throw new SignatureError(`cosignature by ${w.name}+${toHex(w.keyId)} does not verify`);
      }
      found.set(w.name, Number(t));
    }
  }
  return found;
}

/** A k-of-n policy from witness key texts: {witnesses, quorum}; duplicates and a bad k refused. */
export async function witnessPolicy(keyTexts, quorum) {
  const witnesses = [];
  for (const text of keyTexts) {
    const w = await parseWitnessKey(text);
    if (witnesses.some((x) => x.name === w.name || same(x.publicKey, w.publicKey))) {
      throw new FormatError(`witness ${w.name} is in the policy twice`);
    }
    witnesses.push(w);
  }
  const k = quorum ?? witnesses.length; // the default, as the command line's: all of them
  if (!Number.isInteger(k) || (witnesses.length ? k < 1 || k > witnesses.length : k !== 0)) {
    throw new FormatError(`the quorum must be between 1 and the number of witnesses (${witnesses.length})`);
  }
  return { witnesses, quorum: k };
}

/** "2 of (w1, w2, w3)", as Policy.describe() says it. */
export function describePolicy(policy) {
  if (!policy.witnesses.length) return "no witness";
  const names = policy.witnesses.map((w) => w.name);
  return names.length > 1 ? `${policy.quorum} of (${names.join(", ")})` : names[0];
}

/**
 * A checkpoint signed by the log (`logVerifier`, parsed by note.js) and cosigned by a quorum of the
 * policy's witnesses: returns {size, root, origin, cosigned: {name: timestamp}}, or throws
 * (SignatureError, FormatError, QuorumError saying which witnesses cosigned and what is needed).
 */
export async function checkWitnessed(note, logVerifier, policy) {
  const cp = await openCheckpoint(note, logVerifier);
  const found = await verifyCosignatures(note, policy.witnesses);
  const names = [...found.keys()].sort();
  if (names.length < policy.quorum) {
    throw new QuorumError(
      `checkpoint of size ${cp.size} is cosigned by ${names.length} of the policy's witnesses (${names.join(", ") || "none"}); ` +
        `the policy needs ${describePolicy(policy)}`,
      names, policy.quorum);
  }
  return { ...cp, cosigned: Object.fromEntries(names.map((n) => [n, found.get(n)])) };
}
