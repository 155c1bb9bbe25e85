// C2SP tlog-tiles in the browser (https://c2sp.org/tlog-tiles), as ledger/log/tiles.py and
// ledger/log/tile_reader.py, held to the same golden vectors (tests/golden/tiles.json):
//   tile/<L>/<N>[.p/<W>]       hash tile N at level L: up to 256 hashes of perfect subtrees of
//                              256**L leaves (MTH(D[(N*256+i)*256**L : (N*256+i+1)*256**L]))
//   tile/entries/<N>[.p/<W>]   the entries of level-0 tile N
//   N in 3-digit groups, all but the last prefixed with x: 1234067 -> x001/x234/067
// The partial tile at level L of a tree of size s has floor(s / 256**L) mod 256 hashes; a reader
// asks only for tiles the tree of a verified checkpoint has, and falls back to the full tile when
// a partial one is gone.  Inclusion proofs are RFC 9162 PATH(m, D[n]) assembled from tile hashes;
// the caller verifies them (merkle.js verifyInclusion) against the checkpoint's root, so a tile
// served wrong makes a proof that fails.  Sizes are plain numbers (never 32-bit bit operations).
import { ProofError, nodeHash } from "./merkle.js";

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
const HASH = 32;

export class TileError extends Error {}

function indexPath(index) {
  const groups = [];
  let n = index;
  do {
    groups.push(String(n % 1000).padStart(3, "0"));
    n = Math.floor(n / 1000);
  } while (n > 0);
  groups.reverse();
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join("/");
}

/** The path of a hash tile (level 0-63) or of an entry bundle (level "entries"). */
export function tilePath(level, index, width = TILE_WIDTH) {
  if (!(level === "entries" || (Number.isInteger(level) && level >= 0 && level <= 63))) throw new TileError(`no tile level ${level}`);
  if (!Number.isSafeInteger(index) || index < 0) throw new TileError(`no tile index ${index}`);
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) throw new TileError(`no tile width ${width}`);
  const path = `tile/${level}/${indexPath(index)}`;
  return width === TILE_WIDTH ? path : `${path}.p/${width}`;
}

/** How many hashes tile `index` at `level` holds in the tree of `size` (0: none). */
export function tileWidth(level, index, size) {
  const count = Math.floor(size / TILE_WIDTH ** level);
  return Math.max(0, Math.min(TILE_WIDTH, count - index * TILE_WIDTH));
}

/** The largest power of two below n (n > 1). */
function split(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n) {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

/**
 * The tree of `size` entries read through `fetchTile(path)`: a Uint8Array, or null when the host
 * does not have it (404).  Give only the size of a checkpoint already verified.
 */
export class TileReader {
  constructor(fetchTile, size) {
    if (!Number.isSafeInteger(size) || size < 0) throw new TileError(`no tree of size ${size}`);
    this.fetchTile = fetchTile;
    this.size = size;
    this.tiles = new Map(); // "L/N" -> Promise of the tile's hashes
    this.fetched = [];
  }

  async read(level, index) {
    const width = tileWidth(level, index, this.size);
    if (!width) throw new ProofError(`a tree of size ${this.size} has no tile ${level}/${index}`);
    let path = tilePath(level, index, width);
    this.fetched.push(path);
    let data = await this.fetchTile(path);
    if (data === null && width < TILE_WIDTH) {
      path = tilePath(level, index);
      this.fetched.push(path);
      data = await this.fetchTile(path); // the partial tile is gone: the full one holds its hashes
    }
    if (data === null) throw new TileError(`${path}: the log does not serve it, and its tree of size ${this.size} has it`);
    const want = HASH * (path.includes(".p/") ? width : TILE_WIDTH);
    if (data.length !== want) throw new TileError(`${path} is ${data.length} bytes, not ${want}`);
    const hashes = [];
    for (let i = 0; i < width; i++) hashes.push(data.slice(i * HASH, (i + 1) * HASH));
    return hashes;
  }

  hashes(level, index) {
    const key = `${level}/${index}`;
    if (!this.tiles.has(key)) this.tiles.set(key, this.read(level, index));
    return this.tiles.get(key);
  }

  /** The perfect node of 2**height leaves at `index` (its leaves [index*2**height, (index+1)*2**height)). */
  async node(height, index) {
    const span = 2 ** height;
    if ((index + 1) * span > this.size) throw new ProofError(`a tree of size ${this.size} has no node ${height}/${index}`);
    const level = Math.floor(height / TILE_HEIGHT);
    const r = height - level * TILE_HEIGHT;
    const first = index * 2 ** r; // the first of its hashes at tile level `level`
    const tile = await this.hashes(level, Math.floor(first / TILE_WIDTH));
    let row = tile.slice(first % TILE_WIDTH, (first % TILE_WIDTH) + 2 ** r);
    while (row.length > 1) {
      const up = [];
      for (let i = 0; i < row.length; i += 2) up.push(await nodeHash(row[i], row[i + 1]));
      row = up;
    }
    return row[0];
  }

  /** MTH(D[a:b]) (RFC 9162 §2.1.1), from perfect nodes. */
  async rangeHash(a, b) {
    const n = b - a;
    if (isPowerOfTwo(n) && a % n === 0) return this.node(Math.round(Math.log2(n)), a / n);
    const k = split(n);
    return nodeHash(await this.rangeHash(a, a + k), await this.rangeHash(a + k, b));
  }

  /** RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf's sibling first. */
  async inclusionProof(index) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) {
      throw new ProofError(`index ${index} is not in a tree of size ${this.size}`);
    }
    const path = [];
    let a = 0;
    let b = this.size;
    const above = [];
    while (b - a > 1) {
      const k = split(b - a);
      if (index < a + k) {
        above.push([a + k, b]);
        b = a + k;
      } else {
        above.push([a, a + k]);
        a += k;
      }
    }
    for (const [x, y] of above.reverse()) path.push(await this.rangeHash(x, y));
    return path;
  }
}

/** A fetchTile over HTTP(S) under `base` ("" for this site): null for a 404, else the bytes. */
export function httpTiles(base) {
  const prefix = base ? base.replace(/\/+$/, "") : "";
  return async (path) => {
    const resp = await fetch(`${prefix}/${path}`, { headers: { Accept: "application/octet-stream" } });
    if (resp.status === 404) return null;
    if (!resp.ok) throw new TileError(`GET /${path} was answered ${resp.status}`);
    return new Uint8Array(await resp.arrayBuffer());
  };
}
