"""RFC 9162 §2.1 Merkle tree: the ledger and the pure planner against a naive reference.

The reference below (``MTH``, ``PATH``, ``PROOF``, ``SUBPROOF``) is a literal
transcription of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1, recursion and all.  It
shares no code with :mod:`ledger.log.merkle`; ``tests/test_golden.py`` reuses it.

The ledger's proofs are checked on every backend in the small ledgers; the big
ledger, built once for the module, is a SQLite file.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.log import merkle
from conftest import open_ledger
from ledger.errors import LuodiError, ProofError
from ledger.log.note import Signer

# -- the naive reference, straight from RFC 9162 §2.1 ----------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def MTH(D: list[bytes]) -> bytes:
    """§2.1.1 Merkle Tree Hash of the data entries D."""
    n = len(D)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + D[0])
    k = _k(n)
    return _sha256(b"\x01" + MTH(D[0:k]) + MTH(D[k:n]))


def PATH(m: int, D: list[bytes]) -> list[bytes]:
    """§2.1.3.1 the audit path for leaf m of D[n]."""
    n = len(D)
    if n == 1:
        assert m == 0
        return []
    k = _k(n)
    if m < k:
        return PATH(m, D[0:k]) + [MTH(D[k:n])]
    return PATH(m - k, D[k:n]) + [MTH(D[0:k])]


def PROOF(m: int, D: list[bytes]) -> list[bytes]:
    """§2.1.4.1 the consistency proof from the first m entries to D[n], 0 < m <= n."""
    return SUBPROOF(m, D, True)


def SUBPROOF(m: int, D: list[bytes], b: bool) -> list[bytes]:
    n = len(D)
    if m == n:
        return [] if b else [MTH(D)]
    k = _k(n)
    if m <= k:
        return SUBPROOF(m, D[0:k], b) + [MTH(D[k:n])]
    return SUBPROOF(m - k, D[k:n], False) + [MTH(D[0:k])]


def ref_leaf(d: bytes) -> bytes:
    return MTH([d])


# -- the pure planner over an in-memory store -------------------------------------

N_PLAN = 4096
PLAN_DATA = [b"leaf %d" % i for i in range(N_PLAN)]


def _build_store(data: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every perfect node of the tree over ``data``, as Frontier.append reports them."""
    store = {}
    frontier = merkle.Frontier()
    for i, d in enumerate(data):
        h = merkle.leaf_hash(d)
        store[(0, i)] = h
        for level, index, node in frontier.append(h):
            store[(level, index)] = node
    return store


STORE = _build_store(PLAN_DATA)


def plan_inclusion(index: int, size: int, store=STORE) -> list[bytes]:
    plan = merkle.inclusion_plan(index, size)
    # Only the nodes plan_nodes names may be used: that is all the one query fetches.
    needed = {n: store[n] for n in merkle.plan_nodes(plan)}
    return merkle.assemble(plan, needed)


def plan_consistency(size1: int, size2: int, store=STORE) -> list[bytes]:
    plan = merkle.consistency_plan(size1, size2)
    needed = {n: store[n] for n in merkle.plan_nodes(plan)}
    return merkle.assemble(plan, needed)


def plan_root(size: int) -> bytes:
    return merkle.range_root(size, {n: STORE[n] for n in merkle.perfect_nodes(0, size)})


def _interesting_sizes(limit: int):
    """Sizes near powers of two, where the tree's shape changes."""
    edges = sorted({s for k in range(limit.bit_length()) for s in (2**k - 1, 2**k, 2**k + 1) if 1 <= s <= limit})
    return st.one_of(st.integers(1, limit), st.sampled_from(edges))


def index_and_size(limit: int):
    return _interesting_sizes(limit).flatmap(
        lambda n: st.tuples(st.one_of(st.integers(0, n - 1), st.sampled_from(sorted({0, n // 2, n - 1}))), st.just(n))
    )


def size_pair(limit: int):
    return _interesting_sizes(limit).flatmap(
        lambda n: st.tuples(
            st.one_of(st.integers(1, n), st.sampled_from(sorted({1, n // 2 or 1, n - 1 or 1, n}))), st.just(n)
        )
    )


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the reference itself against published vectors -----------------------------------

# The RFC 6962 test tree of certificate-transparency / transparency-dev/merkle.
CT_DATA = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
CT_CONSISTENCY = [
    (2, 8, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


@pytest.mark.parametrize("size", range(9))
def test_published_roots(size):
    assert MTH(CT_DATA[:size]).hex() == CT_ROOTS[size]
    assert merkle.root(merkle.leaf_hash(d) for d in CT_DATA[:size]).hex() == CT_ROOTS[size]
    store = _build_store(CT_DATA)
    assert merkle.range_root(size, store).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_published_inclusion_proofs(index, size, proof):
    assert [h.hex() for h in PATH(index, CT_DATA[:size])] == proof
    assert [h.hex() for h in plan_inclusion(index, size, _build_store(CT_DATA))] == proof
    merkle.verify_inclusion(
        merkle.leaf_hash(CT_DATA[index]), index, size, [bytes.fromhex(h) for h in proof], bytes.fromhex(CT_ROOTS[size])
    )


@pytest.mark.parametrize(("size1", "size2", "proof"), CT_CONSISTENCY)
def test_published_consistency_proofs(size1, size2, proof):
    assert [h.hex() for h in PROOF(size1, CT_DATA[:size2])] == proof
    assert [h.hex() for h in plan_consistency(size1, size2, _build_store(CT_DATA))] == proof
    merkle.verify_consistency(
        size1, size2, bytes.fromhex(CT_ROOTS[size1]), bytes.fromhex(CT_ROOTS[size2]), [bytes.fromhex(h) for h in proof]
    )


def test_empty_root_is_sha256_of_nothing():
    assert merkle.root([]) == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT == MTH([])
    assert merkle.Frontier().root() == merkle.EMPTY_ROOT
    assert merkle.range_root(0, {}) == merkle.EMPTY_ROOT


def test_known_leaf_and_node_hashes():
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.leaf_hash(b"") == ref_leaf(b"")
    assert merkle.root([merkle.leaf_hash(b"")]) == MTH([b""])
    a, b = merkle.leaf_hash(b""), merkle.leaf_hash(b"\x00")
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest() == MTH([b"", b"\x00"])
    assert merkle.node_hash(a, b) != merkle.node_hash(b, a)


def test_leaf_and_node_hashes_are_domain_separated():
    # A leaf whose data is the concatenation of two hashes must not hash like the node over them.
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)


# -- roots, frontiers and perfect nodes ------------------------------------------------


@FAST
@given(_interesting_sizes(N_PLAN))
def test_roots_equal_reference(size):
    want = MTH(PLAN_DATA[:size])
    assert merkle.root(STORE[(0, i)] for i in range(size)) == want
    assert plan_root(size) == want


def test_frontier_root_at_every_size_equals_reference():
    data = PLAN_DATA[:300]
    frontier = merkle.Frontier()
    for size in range(1, len(data) + 1):
        frontier.append(merkle.leaf_hash(data[size - 1]))
        assert frontier.size == size
        assert len(frontier.hashes) == bin(size).count("1")
        assert frontier.root() == MTH(data[:size]), size


def test_frontier_reports_every_completed_perfect_node():
    data = PLAN_DATA[:128]
    frontier = merkle.Frontier()
    made = []
    for d in data:
        made.extend(frontier.append(merkle.leaf_hash(d)))
    # A tree of 128 leaves has 127 interior perfect nodes, each reported exactly once.
    assert len(made) == 127
    assert len({(level, index) for level, index, _ in made}) == 127
    for level, index, h in made:
        lo, hi = index << level, (index + 1) << level
        assert h == MTH(data[lo:hi]), (level, index)


def test_frontier_resumes_from_its_hashes():
    full = merkle.Frontier()
    for d in PLAN_DATA[:37]:
        full.append(merkle.leaf_hash(d))
    resumed = merkle.Frontier(37, [STORE[n] for n in merkle.perfect_nodes(0, 37)])
    assert resumed.hashes == full.hashes
    for d in PLAN_DATA[37:50]:
        assert resumed.append(merkle.leaf_hash(d)) == full.append(merkle.leaf_hash(d))
    assert resumed.root() == full.root() == MTH(PLAN_DATA[:50])


@pytest.mark.parametrize(("size", "count"), [(0, 1), (1, 0), (5, 1), (5, 3), (8, 2)])
def test_frontier_refuses_wrong_hash_count(size, count):
    with pytest.raises(ValueError):
        merkle.Frontier(size, [b"\x00" * 32] * count)


@pytest.mark.parametrize(
    ("lo", "hi", "nodes"),
    [
        (0, 0, []),
        (0, 1, [(0, 0)]),
        (0, 13, [(3, 0), (2, 2), (0, 12)]),
        (8, 13, [(2, 2), (0, 12)]),
        (12, 13, [(0, 12)]),
        (4, 7, [(1, 2), (0, 6)]),
        (0, 16, [(4, 0)]),
        (16, 31, [(3, 2), (2, 6), (1, 14), (0, 30)]),
    ],
)
def test_perfect_nodes_examples(lo, hi, nodes):
    assert merkle.perfect_nodes(lo, hi) == nodes


@FAST
@given(_interesting_sizes(N_PLAN))
def test_perfect_nodes_tile_the_range_and_fold_to_its_root(size):
    nodes = merkle.perfect_nodes(0, size)
    at = 0
    for level, index in nodes:
        assert index << level == at
        at += 1 << level
    assert at == size
    levels = [level for level, _ in nodes]
    assert levels == sorted(levels, reverse=True) and len(set(levels)) == len(levels)
    assert merkle.fold([STORE[n] for n in nodes]) == MTH(PLAN_DATA[:size])


# -- the pure planner against the reference -------------------------------------------


def test_plans_for_every_small_tree_equal_reference():
    for n in range(1, 65):
        data = PLAN_DATA[:n]
        root = MTH(data)
        for m in range(n):
            proof = plan_inclusion(m, n)
            assert proof == PATH(m, data), (m, n)
            assert len(proof) == merkle.inclusion_proof_length(m, n)
            merkle.verify_inclusion(ref_leaf(data[m]), m, n, proof, root)
        for m in range(1, n + 1):
            proof = plan_consistency(m, n)
            assert proof == PROOF(m, data), (m, n)
            assert len(proof) == merkle.consistency_proof_length(m, n)
            merkle.verify_consistency(m, n, MTH(data[:m]), root, proof)


@settings(max_examples=300, deadline=None)
@given(index_and_size(N_PLAN))
def test_planned_inclusion_proof_equals_reference_and_verifies(pair):
    index, size = pair
    data = PLAN_DATA[:size]
    proof = plan_inclusion(index, size)
    assert proof == PATH(index, data)
    merkle.verify_inclusion(ref_leaf(data[index]), index, size, proof, MTH(data))


@settings(max_examples=300, deadline=None)
@given(size_pair(N_PLAN))
def test_planned_consistency_proof_equals_reference_and_verifies(pair):
    size1, size2 = pair
    data = PLAN_DATA[:size2]
    proof = plan_consistency(size1, size2)
    assert proof == PROOF(size1, data)
    merkle.verify_consistency(size1, size2, MTH(data[:size1]), MTH(data), proof)


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (0, 0), (6, 5)])
def test_inclusion_plan_refuses_index_outside_tree(index, size):
    with pytest.raises(ProofError):
        merkle.inclusion_plan(index, size)


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 5), (6, 5), (-1, 5)])
def test_consistency_plan_refuses_bad_sizes(size1, size2):
    with pytest.raises(ProofError):
        merkle.consistency_plan(size1, size2)


# -- the real ledger against the reference -------------------------------------------

LEDGER_SIZE = 3001  # genesis + 3000 notes


def _batch_sizes(total: int, seed: int = 9162) -> list[int]:
    rng = random.Random(seed)
    sizes, left = [], total
    for fixed in (1, 1, 2, 3, 64, 127, 1):  # odd shapes first, then random
        sizes.append(fixed)
        left -= fixed
    while left:
        k = min(left, rng.choice([1, rng.randint(2, 40), rng.randint(41, 400)]))
        sizes.append(k)
        left -= k
    return sizes


@pytest.fixture(scope="module")
def big_ledger(tmp_path_factory):
    """(ledger, canonical bytes of every entry): a few thousand entries in batches of varying sizes."""
    path = tmp_path_factory.mktemp("merkle") / "big.sqlite"
    ledger = open_ledger(path, Signer.generate("merkle.luodi.example/log"), create=True)
    done = 0
    for k in _batch_sizes(LEDGER_SIZE - 1):
        ledger.append_batch([("note", {"text": f"gift {done + i} \u843d\u5730"}) for i in range(k)])
        done += k
    assert ledger.size() == LEDGER_SIZE
    data = [ledger.entry(seq).canonical for seq in range(LEDGER_SIZE)]
    yield ledger, data
    ledger.store.close()


@pytest.mark.parametrize("fold_cache_max", [4096, 1])  # kept folds, and a cache replaced before every proof
def test_ledger_every_proof_in_a_small_ledger_equals_reference(make_ledger, monkeypatch, fold_cache_max):
    import ledger.log.ledger as log_module

    monkeypatch.setattr(log_module, "FOLD_CACHE_MAX", fold_cache_max)
    ledger = make_ledger("small")
    for i, k in enumerate([1, 2, 3, 5, 8, 13]):
        ledger.append_batch([("note", {"text": f"batch {i} item {j}"}) for j in range(k)])
    n_max = ledger.size()
    assert n_max == 33
    data = [ledger.entry(seq).canonical for seq in range(n_max)]
    for seq in range(n_max):
        assert ledger.entry(seq).leaf_hash == ref_leaf(data[seq])
    for n in range(1, n_max + 1):
        root = MTH(data[:n])
        assert ledger.root(n) == root
        for m in range(n):
            proof = ledger.inclusion_proof(m, n)
            assert proof == PATH(m, data[:n]), (m, n)
            merkle.verify_inclusion(ledger.entry(m).leaf_hash, m, n, proof, root)
        for m in range(1, n + 1):
            proof = ledger.consistency_proof(m, n)
            assert proof == PROOF(m, data[:n]), (m, n)
            merkle.verify_consistency(m, n, ledger.root(m), root, proof)


@settings(max_examples=300, deadline=None)
@given(index_and_size(LEDGER_SIZE))
def test_ledger_inclusion_proof_equals_reference_and_verifies(big_ledger, pair):
    ledger, data = big_ledger
    index, size = pair
    leaf = ledger.entry(index).leaf_hash
    assert leaf == ref_leaf(data[index])
    root = ledger.root(size)
    assert root == MTH(data[:size])
    proof = ledger.inclusion_proof(index, size)
    assert proof == PATH(index, data[:size])
    merkle.verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(size_pair(LEDGER_SIZE))
def test_ledger_consistency_proof_equals_reference_and_verifies(big_ledger, pair):
    ledger, data = big_ledger
    size1, size2 = pair
    root1, root2 = ledger.root(size1), ledger.root(size2)
    assert root1 == MTH(data[:size1])
    assert root2 == MTH(data[:size2])
    proof = ledger.consistency_proof(size1, size2)
    assert proof == PROOF(size1, data[:size2])
    merkle.verify_consistency(size1, size2, root1, root2, proof)


def test_ledger_proofs_default_to_the_current_size(big_ledger):
    ledger, data = big_ledger
    assert ledger.root() == MTH(data)
    assert ledger.inclusion_proof(1234) == PATH(1234, data)
    assert ledger.consistency_proof(1234) == PROOF(1234, data)


# -- mutations: every tampered proof raises ProofError ------------------------------------


def test_proof_error_is_a_luodi_error():
    assert issubclass(ProofError, LuodiError)


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _inclusion_case(index: int, size: int):
    return STORE[(0, index)], index, size, plan_inclusion(index, size), plan_root(size)


INCLUSION_MUTATIONS = ["flip", "truncate", "extra", "swap", "index", "size", "root", "leaf"]


PROOF_MUTATIONS = ("flip", "truncate", "extra", "swap")


def _mutate_proof(mutation, proof, data, random_hash):
    """The mutations of the proof hashes themselves, shared by both proof kinds."""
    if mutation == "flip":
        assume(proof)
        i = data.draw(st.integers(0, len(proof) - 1), "position")
        return proof[:i] + [_flip(proof[i], data.draw(st.integers(0, 255), "bit"))] + proof[i + 1 :]
    if mutation == "truncate":
        assume(proof)
        return data.draw(st.sampled_from([proof[:-1], proof[1:]]), "truncated")
    if mutation == "extra":
        i = data.draw(st.integers(0, len(proof)), "position")
        return proof[:i] + [random_hash] + proof[i:]
    assume(len(proof) >= 2)  # swap
    i, j = data.draw(st.lists(st.integers(0, len(proof) - 1), min_size=2, max_size=2, unique=True), "pair")
    assume(proof[i] != proof[j])
    proof = list(proof)
    proof[i], proof[j] = proof[j], proof[i]
    return proof


@pytest.mark.parametrize("mutation", INCLUSION_MUTATIONS)
@settings(max_examples=75, deadline=None)
@given(pair=index_and_size(1000), data=st.data())
def test_mutated_inclusion_proof_is_refused(mutation, pair, data):
    leaf, index, size, proof, root = _inclusion_case(*pair)
    merkle.verify_inclusion(leaf, index, size, proof, root)  # the unmutated proof passes
    random_hash = data.draw(st.binary(min_size=32, max_size=32), "random hash")
    if mutation in PROOF_MUTATIONS:
        proof = _mutate_proof(mutation, proof, data, random_hash)
    elif mutation == "index":
        assume(size > 1)
        index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), "wrong index")
    elif mutation == "size":
        # Replaying the proof against another tree size, with that tree's own root.
        size = data.draw(st.integers(index + 1, N_PLAN).filter(lambda s: s != size), "wrong size")
        root = plan_root(size)
    elif mutation == "root":
        others = [random_hash, _flip(root, 0), plan_root(size + 1), plan_root(max(1, size - 1))]
        root = data.draw(st.sampled_from(others), "wrong root")
        assume(root != plan_root(size))
    elif mutation == "leaf":
        leaf = data.draw(st.sampled_from([random_hash, _flip(leaf, 7), STORE[(0, (index + 1) % N_PLAN)]]))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


CONSISTENCY_MUTATIONS = ["flip", "truncate", "extra", "swap", "size1", "size2", "root1", "root2"]


@pytest.mark.parametrize("mutation", CONSISTENCY_MUTATIONS)
@settings(max_examples=75, deadline=None)
@given(pair=size_pair(1000), data=st.data())
def test_mutated_consistency_proof_is_refused(mutation, pair, data):
    size1, size2 = pair
    proof, root1, root2 = plan_consistency(size1, size2), plan_root(size1), plan_root(size2)
    merkle.verify_consistency(size1, size2, root1, root2, proof)  # the unmutated proof passes
    random_hash = data.draw(st.binary(min_size=32, max_size=32), "random hash")
    if mutation in PROOF_MUTATIONS:
        proof = _mutate_proof(mutation, proof, data, random_hash)
    elif mutation == "size1":
        # The proof replayed from another first tree, with that tree's own root.
        size1 = data.draw(st.integers(1, size2).filter(lambda s: s != size1), "wrong size1") if size2 > 1 else 0
        root1 = plan_root(size1)
    elif mutation == "size2":
        size2 = data.draw(st.integers(size1, N_PLAN).filter(lambda s: s != size2), "wrong size2")
        root2 = plan_root(size2)
    elif mutation == "root1":
        root1 = data.draw(st.sampled_from([random_hash, _flip(root1, 255), root2, plan_root(size1 + 1)]))
        assume(root1 != plan_root(size1))
    elif mutation == "root2":
        root2 = data.draw(st.sampled_from([random_hash, _flip(root2, 128), root1, plan_root(size2 + 1)]))
        assume(root2 != plan_root(size2))
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, root1, root2, proof)


@pytest.mark.parametrize(("index", "size"), [(0, 2), (3, 8), (5, 8), (6, 7), (12, 13), (1000, 1025)])
def test_every_single_bit_flip_in_an_inclusion_proof_is_refused(index, size):
    leaf, index, size, proof, root = _inclusion_case(index, size)
    for i in range(len(proof)):
        for bit in range(256):
            bad = proof[:i] + [_flip(proof[i], bit)] + proof[i + 1 :]
            with pytest.raises(ProofError):
                merkle.verify_inclusion(leaf, index, size, bad, root)


@pytest.mark.parametrize(("size1", "size2"), [(1, 2), (2, 8), (3, 8), (6, 8), (7, 13), (1000, 1025)])
def test_every_single_bit_flip_in_a_consistency_proof_is_refused(size1, size2):
    proof, root1, root2 = plan_consistency(size1, size2), plan_root(size1), plan_root(size2)
    for i in range(len(proof)):
        for bit in range(256):
            bad = proof[:i] + [_flip(proof[i], bit)] + proof[i + 1 :]
            with pytest.raises(ProofError):
                merkle.verify_consistency(size1, size2, root1, root2, bad)


# -- explicit rejections --------------------------------------------------------------

H = b"\x11" * 32
BAD_HASHES = [b"", b"\x00" * 31, b"\x00" * 33, "\x00" * 32, None, 32]


@pytest.fixture
def inclusion_case():
    """inclusion_case(index=5, size=13) -> (leaf, index, size, proof, root), a valid proof."""
    return _inclusion_case


@pytest.fixture
def consistency_case():
    """consistency_case(size1=6, size2=13) -> (size1, size2, root1, root2, proof), a valid proof."""

    def factory(size1: int = 6, size2: int = 13):
        return size1, size2, plan_root(size1), plan_root(size2), plan_consistency(size1, size2)

    return factory


@pytest.mark.parametrize("bad", BAD_HASHES)
@pytest.mark.parametrize("where", ["leaf", "root", "proof element"])
def test_inclusion_refuses_values_that_are_not_32_byte_hashes(inclusion_case, where, bad):
    leaf, index, size, proof, root = inclusion_case(5, 13)
    if where == "leaf":
        leaf = bad
    elif where == "root":
        root = bad
    else:
        proof = [bad] + proof[1:]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@pytest.mark.parametrize("bad", BAD_HASHES)
@pytest.mark.parametrize("where", ["root1", "root2", "proof element"])
def test_consistency_refuses_values_that_are_not_32_byte_hashes(consistency_case, where, bad):
    size1, size2, root1, root2, proof = consistency_case(6, 13)
    if where == "root1":
        root1 = bad
    elif where == "root2":
        root2 = bad
    else:
        proof = proof[:-1] + [bad]
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, root1, root2, proof)


def test_root_refuses_leaf_hashes_of_wrong_length():
    with pytest.raises(ProofError):
        merkle.root([H, b"\x00" * 31])


@pytest.mark.parametrize(("index", "size"), [(13, 13), (14, 13), (0, 0), (-1, 13), (1, 0)])
def test_inclusion_refuses_index_not_below_tree_size(inclusion_case, index, size):
    leaf, _, _, proof, root = inclusion_case(5, 13)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


def test_inclusion_of_the_only_leaf_takes_an_empty_proof():
    leaf = merkle.leaf_hash(b"x")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, 0, 1, [leaf], leaf)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, 0, 1, [], H)


@pytest.mark.parametrize("length_change", [-3, -1, 1, 2])
def test_inclusion_refuses_proof_of_wrong_length(inclusion_case, length_change):
    leaf, index, size, proof, root = inclusion_case(5, 13)
    n = len(proof)
    assert n == 4
    bad = proof[: n + length_change] if length_change < 0 else proof + [H] * length_change
    with pytest.raises(ProofError, match=f"expected {n}"):
        merkle.verify_inclusion(leaf, index, size, bad, root)


@pytest.mark.parametrize("length_change", [-2, -1, 1, 4])
def test_consistency_refuses_proof_of_wrong_length(consistency_case, length_change):
    size1, size2, root1, root2, proof = consistency_case(6, 13)
    n = len(proof)
    bad = proof[: n + length_change] if length_change < 0 else proof + [H] * length_change
    with pytest.raises(ProofError, match=f"expected {n}"):
        merkle.verify_consistency(size1, size2, root1, root2, bad)


def test_inclusion_refuses_a_proof_for_a_different_size_of_the_same_length():
    # Leaf 0 has a 2-hash path in trees of size 3 and of size 4: the lengths agree,
    # the paths differ, so the proof for one size must not verify for the other.
    assert merkle.inclusion_proof_length(0, 3) == merkle.inclusion_proof_length(0, 4) == 2
    leaf = STORE[(0, 0)]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, 0, 4, plan_inclusion(0, 3), plan_root(4))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, 0, 3, plan_inclusion(0, 4), plan_root(3))


@pytest.mark.parametrize(("other_size", "message"), [(2, r"sn != 0"), (64, "longer than the path")])
def test_inclusion_refuses_a_path_that_does_not_end_at_the_root(monkeypatch, other_size, message):
    """The §2.1.3.2 loop's own checks, with the length check in front of it switched off.

    A proof for leaf 0 of a tree of 2 (1 hash) stops short of the root of a tree
    of 16 (sn != 0 after the loop); one of a tree of 64 (6 hashes) runs past it.
    """
    leaf, proof = STORE[(0, 0)], plan_inclusion(0, other_size)
    with pytest.raises(ProofError, match="expected 4"):
        merkle.verify_inclusion(leaf, 0, 16, proof, plan_root(16))
    monkeypatch.setattr(merkle, "inclusion_proof_length", lambda index, size: len(proof))
    with pytest.raises(ProofError, match=message):
        merkle.verify_inclusion(leaf, 0, 16, proof, plan_root(16))


@pytest.mark.parametrize(("other", "message"), [((1, 2), r"sn != 0"), ((1, 1024), "longer than the path")])
def test_consistency_refuses_a_path_that_does_not_end_at_the_root(monkeypatch, other, message):
    proof = plan_consistency(*other)
    root1, root2 = plan_root(1), plan_root(16)
    with pytest.raises(ProofError, match="expected 4"):
        merkle.verify_consistency(1, 16, root1, root2, proof)
    monkeypatch.setattr(merkle, "consistency_proof_length", lambda size1, size2: len(proof))
    with pytest.raises(ProofError, match=message):
        merkle.verify_consistency(1, 16, root1, root2, proof)


def test_consistency_refuses_size1_zero():
    with pytest.raises(ProofError):
        merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, plan_root(5), [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])


@pytest.mark.parametrize(("size1", "size2"), [(6, 5), (2, 1), (1025, 1024)])
def test_consistency_refuses_size1_above_size2(size1, size2):
    root1, root2 = plan_root(size1), plan_root(size2)
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, root1, root2, [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(size1, size2, root1, root2, plan_consistency(size2, size1))


@pytest.mark.parametrize("size", [1, 2, 7, 8, 1000])
def test_consistency_between_equal_sizes(size):
    root = plan_root(size)
    assert plan_consistency(size, size) == [] == PROOF(size, PLAN_DATA[:size])
    merkle.verify_consistency(size, size, root, root, [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(size, size, root, root, [root])
    with pytest.raises(ProofError):
        merkle.verify_consistency(size, size, root, plan_root(size + 1), [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(size, size, _flip(root, 3), root, [])
