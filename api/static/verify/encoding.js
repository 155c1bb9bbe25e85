// Bytes for the verifier: hex, strict base64 (one spelling per value, as ledger/log/note.py) and SHA-256.

export class FormatError extends Error {}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** 64 lowercase hex digits to 32 bytes. */
export function hash32(hex, what) {
  if (typeof hex !== "string" || !/^[0-9a-f]{64}$/.test(hex)) throw new FormatError(`${what} is not 64 lowercase hex digits`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toBase64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Standard base64 that re-encodes to the very same text (no stray bits or padding). */
export function fromBase64(text, what) {
  let raw;
  try {
    if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) throw new Error();
    raw = atob(text);
  } catch {
    throw new FormatError(`${what} is not valid base64`);
  }
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  if (toBase64(bytes) !== text) throw new FormatError(`${what} is not canonical base64`);
  return bytes;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Constant-time equality of two byte arrays. */
export function same(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
