// RFC 9162 §2.1: leaf hashes and inclusion-proof verification, step for step as
// ledger.log.merkle.verify_inclusion (sizes as plain numbers, never 32-bit bit operations).
import { concat, same, sha256 } from "./encoding.js";

export class ProofError extends Error {}

export function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

const half = (n) => Math.floor(n / 2);

/** The length of RFC 9162 PATH(index, D[size]): the bit length of index XOR (size - 1),
 * plus the ones of index shifted right by it. */
export function inclusionProofLength(index, size) {
  let inner = 0;
  let a = index;
  for (let b = size - 1; a !== b; a = half(a), b = half(b)) inner++;
  let border = 0;
  for (; a > 0; a = half(a)) border += a % 2;
  return inner + border;
}

/** RFC 9162 §2.1.3.2; resolves, or rejects with a ProofError. */
export async function verifyInclusion(leaf, index, treeSize, proof, root) {
  if (leaf.length !== 32 || root.length !== 32 || proof.some((p) => p.length !== 32)) throw new ProofError("hashes must be 32 bytes");
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0) throw new ProofError("index and tree size must be non-negative integers");
  if (index >= treeSize) throw new ProofError(`index ${index} is not below tree size ${treeSize}`);
  const want = inclusionProofLength(index, treeSize);
  if (proof.length !== want) throw new ProofError(`the proof has ${proof.length} hashes, not ${want}`);
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new ProofError("the proof is longer than the path to the root");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofError("the proof does not reach the root");
  if (!same(r, root)) throw new ProofError("the proof reaches another root than the checkpoint's");
}
