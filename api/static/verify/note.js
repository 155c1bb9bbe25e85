// C2SP signed notes and checkpoints with Ed25519 (docs/architecture.md §5), as ledger/log/note.py
// and ledger/log/checkpoint.py.  Ed25519 is WebCrypto's where the browser has it; else the vendored
// @noble/ed25519 (vendor/, MIT), loaded only then.  Signatures by unknown keys are ignored, a known
// key's bad signature rejects the note, and the pinned key must have signed.
import { concat, fromBase64, FormatError, same, sha256, toHex } from "./encoding.js";

export class SignatureError extends Error {}

const DASH = "\u2014 ";
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;
const NAME_BAD = /[\s+]/;

function checkName(name) {
  if (typeof name !== "string" || !name || NAME_BAD.test(name) || CONTROL.test(name)) {
    throw new FormatError(`key name ${JSON.stringify(name)} must be non-empty with no spaces or '+'`);
  }
}

/** The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[0:4]. */
export async function keyId(name, publicKey) {
  const h = await sha256(concat(new TextEncoder().encode(name + "\n"), Uint8Array.of(1), publicKey));
  return h.slice(0, 4);
}

/** Parse a verifier key `name+<8 hex key ID>+base64(0x01 || key)`; its key ID must match. */
export async function parseVerifierKey(text) {
  if (typeof text !== "string") throw new FormatError("the verifier key must be text");
  const first = text.indexOf("+");
  const second = text.indexOf("+", first + 1);
  if (first < 0 || second < 0) throw new FormatError("a verifier key is name+hash+key");
  const name = text.slice(0, first);
  const hex = text.slice(first + 1, second);
  checkName(name);
  if (!/^[0-9a-f]{8}$/.test(hex)) throw new FormatError("the verifier key's hash must be 8 lowercase hex digits");
  const raw = fromBase64(text.slice(second + 1), "the verifier key");
  if (raw.length !== 33 || raw[0] !== 1) throw new FormatError("the verifier key must be 0x01 and a 32-byte Ed25519 key");
  const publicKey = raw.slice(1);
  const id = await keyId(name, publicKey);
  if (toHex(id) !== hex) throw new FormatError("the verifier key's hash does not match its name and key");
  return { name, publicKey, keyId: id, text };
}

let fallback = null; // the vendored module, once loaded
let forced = false;

/** For tests: verify with the vendored fallback even where WebCrypto has Ed25519. */
export function useFallback(on) {
  forced = on;
}

/** Which implementation verifies here: "webcrypto", "fallback" or null (this browser cannot verify). */
export async function ed25519Engine() {
  if (!globalThis.crypto?.subtle) return null;
  if (!forced) {
    try {
      await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
      return "webcrypto";
    } catch (e) {
      if (e?.name === "DataError") return "webcrypto"; // knows Ed25519, disliked the key
    }
  }
  try {
    fallback ??= await import("./vendor/noble-ed25519.js");
    return "fallback";
  } catch {
    return null;
  }
}

/** Ed25519 (RFC 8032) over `data`; false for a bad signature. */
export async function verifyEd25519(publicKey, signature, data) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const engine = await ed25519Engine();
  if (engine === "webcrypto") {
    try {
      const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, data);
    } catch {
      return false;
    }
  }
  if (engine === "fallback") {
    try {
      return await fallback.verifyAsync(signature, data, publicKey, { zip215: false });
    } catch {
      return false;
    }
  }
  throw new SignatureError("this browser cannot verify Ed25519 signatures");
}

/** Split a signed note into its text and signature lines, without verifying them. */
export function parseNote(note) {
  if (typeof note !== "string") throw new FormatError("the note must be text");
  if (CONTROL.test(note)) throw new FormatError("the note holds a control character");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new FormatError("the note has no blank line before its signatures");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) throw new FormatError("the note must end in a newline");
  const signatures = block.slice(0, -1).split("\n").map((line) => {
    if (!line.startsWith(DASH)) throw new FormatError("a signature line starts with an em dash and a space");
    const rest = line.slice(DASH.length);
    const sp = rest.indexOf(" ");
    if (sp < 0 || rest.indexOf(" ", sp + 1) >= 0) throw new FormatError("a signature line is '— name signature'");
    const name = rest.slice(0, sp);
    checkName(name);
    const raw = fromBase64(rest.slice(sp + 1), "the signature");
    if (raw.length < 5) throw new FormatError("the signature is too short");
    return { name, keyId: raw.slice(0, 4), signature: raw.slice(4) };
  });
  if (!signatures.length) throw new FormatError("the note has no signatures");
  return { text, signatures };
}

/** Verify a note against the pinned verifier; returns its text. */
export async function openNote(note, verifier) {
  const parsed = parseNote(note);
  const data = new TextEncoder().encode(parsed.text);
  let good = 0;
  for (const sig of parsed.signatures) {
    if (sig.name !== verifier.name || !same(sig.keyId, verifier.keyId)) continue; // an unknown key: ignored
    if (!(await verifyEd25519(verifier.publicKey, sig.signature, data))) {
      throw new SignatureError(`the signature by ${sig.name}+${toHex(sig.keyId)} does not verify`);
    }
    good++;
  }
  if (!good) throw new SignatureError(`the note is not signed by the pinned key ${verifier.name}+${toHex(verifier.keyId)}`);
  return parsed.text;
}

/** Verify a signed checkpoint with the log's key and parse it: {origin, size, root}. */
export async function openCheckpoint(note, verifier) {
  const text = await openNote(note, verifier);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new FormatError("a checkpoint has origin, size and root lines");
  const [origin, size, root64] = lines;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) {
    throw new FormatError(`the checkpoint size ${JSON.stringify(size)} is not a decimal this browser can hold`);
  }
  const root = fromBase64(root64, "the checkpoint root");
  if (root.length !== 32) throw new FormatError("the checkpoint root is not a 32-byte hash");
  if (origin !== verifier.name) throw new SignatureError(`the checkpoint origin ${origin} is not ${verifier.name}`);
  return { origin, size: Number(size), root };
}
