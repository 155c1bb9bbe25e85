// RFC 8785 (JSON Canonicalization Scheme) for Luodi's value domain (docs/architecture.md §2):
// objects with string keys, arrays, strings, integers within ±(2^53-1), true, false, null.
// Members are sorted by UTF-16 code units (JavaScript's default string order), and strings are
// written as ECMAScript's JSON.stringify writes them, which is RFC 8785's rule.  Like the Python
// check_value, it refuses what can never be in an entry: floats, unsafe integers, lone
// surrogates, control characters (U+0000-U+001F, U+007F-U+009F) and nesting deeper than 32.

const MAX_DEPTH = 32;
// eslint-disable-next-line no-control-regex
const BAD = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export class CanonicalError extends Error {}

function str(s, where) {
  const m = BAD.exec(s);
  if (m) {
    const code = m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
    throw new CanonicalError(`${where}: string holds U+${code}, which no entry may hold`);
  }
  return JSON.stringify(s);
}

function write(value, where, depth, out) {
  if (depth > MAX_DEPTH) throw new CanonicalError(`${where}: nested deeper than ${MAX_DEPTH} levels`);
  if (value === null || value === true || value === false) {
    out.push(String(value));
  } else if (typeof value === "string") {
    out.push(str(value, where));
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new CanonicalError(`${where}: ${value} is not an integer within ±(2^53-1)`);
    out.push(String(value === 0 ? 0 : value)); // -0 is written 0
  } else if (Array.isArray(value)) {
    out.push("[");
    value.forEach((v, i) => {
      if (i) out.push(",");
      write(v, `${where}[${i}]`, depth + 1, out);
    });
    out.push("]");
  } else if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    out.push("{");
    Object.keys(value).sort().forEach((k, i) => {
      if (i) out.push(",");
      out.push(str(k, `${where} key`), ":");
      write(value[k], `${where}.${k}`, depth + 1, out);
    });
    out.push("}");
  } else {
    throw new CanonicalError(`${where}: ${typeof value} is not a JSON value`);
  }
}

/** The canonical JSON text of `value`. */
export function canonicalText(value) {
  const out = [];
  write(value, "$", 0, out);
  return out.join("");
}

/** The canonical UTF-8 bytes of `value` (a Uint8Array). */
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalText(value));
}
