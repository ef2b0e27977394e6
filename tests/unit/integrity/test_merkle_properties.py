"""merkle.py against a plain recursive RFC 6962 reference, on random trees of 1..300 leaves.

The reference below is written straight from the definitions of MTH, PATH and
SUBPROOF/PROOF in RFC 6962 section 2.1 (RFC 9162 sections 2.1.1, 2.1.3.1, 2.1.4.1),
recursion and all, sharing no code with the module under test (not even leaf
hashing). It only memoises subtree hashes so that checking every prefix stays cheap.

The ``Store`` stands in for the database: it serves complete nodes, counts reads, and
fails the test if anything asks for a node that is not complete at the tree size the
proof is for (such a node would not exist yet, or would differ, in a real store).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trailkeep.kit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    CompactRange,
    Node,
    NodeError,
    ProofError,
    consistency_proof,
    consistency_proof_nodes,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_from_nodes,
    root_nodes,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
FAST = settings(max_examples=120, deadline=None)


# ------------------------------------------------------------------ reference


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1), found the naive way."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """RFC 6962 section 2.1 over the entries D[lo:hi], recursively."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = list(entries)
        self._memo: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return _sha256(b"")
        if (lo, hi) not in self._memo:
            if n == 1:
                value = _sha256(b"\x00" + self.entries[lo])
            else:
                k = _k(n)
                value = _sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))
            self._memo[lo, hi] = value
        return self._memo[lo, hi]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:
            return []
        k = _k(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[lo:hi], b), m relative to lo."""
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _k(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[0:n]) for 0 < m < n."""
        return self.subproof(m, 0, n, True)


def path_shape(m: int, n: int) -> tuple[str, ...]:
    """For each PATH(m, D[n]) element, which side of the running hash it goes on."""
    if n == 1:
        return ()
    k = _k(n)
    if m < k:
        return (*path_shape(m, k), "right")
    return (*path_shape(m - k, n - k), "left")


def proof_shape(m: int, n: int, b: bool = True) -> tuple[str, ...]:
    """For each SUBPROOF element, how it combines into the old and new roots."""
    if m == n:
        return () if b else ("start",)
    k = _k(n)
    if m <= k:
        return (*proof_shape(m, k, b), "right-of-new")
    return (*proof_shape(m - k, n - k, False), "left-of-both")


# ---------------------------------------------------------------------- helpers


def bound(n: int) -> int:
    """The read budget from the design: 4 * ceil(log2 n) + 4."""
    return 4 * (n - 1).bit_length() + 4


@dataclass
class Store:
    nodes: dict[tuple[int, int], bytes]
    size: int
    calls: list[tuple[int, int]] = field(default_factory=list)

    def __call__(self, level: int, index: int) -> bytes:
        assert level >= 0 and index >= 0
        assert (index + 1) << level <= self.size, (
            f"read node ({level}, {index}), not complete at size {self.size}"
        )
        self.calls.append((level, index))
        return self.nodes[level, index]


@dataclass
class Tree:
    ref: Reference
    hashes: list[bytes]
    nodes: dict[tuple[int, int], bytes]

    @property
    def size(self) -> int:
        return len(self.hashes)

    def store(self, size: int) -> Store:
        return Store(self.nodes, size)


def build(entries: Sequence[bytes]) -> Tree:
    hashes = [leaf_hash(e) for e in entries]
    completed = CompactRange().extend(hashes)
    return Tree(Reference(entries), hashes, {(n.level, n.index): n.hash for n in completed})


@st.composite
def trees(draw: st.DrawFn, min_size: int = 1) -> Tree:
    size = draw(st.integers(min_size, MAX_LEAVES))
    salt = draw(st.binary(max_size=8))
    return build([salt + i.to_bytes(2, "big") for i in range(size)])


def flip(digest: bytes, bit: int) -> bytes:
    out = bytearray(digest)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def outcome(check: Callable[[], bool]) -> bool | str:
    """True/False as returned, or "error" for a ProofError; anything else propagates."""
    try:
        return check()
    except ProofError:
        return "error"


# ------------------------------------------------------------------------ roots


@FAST
@given(size=st.integers(0, MAX_LEAVES), salt=st.binary(max_size=8))
def test_root_from_leaf_hashes_is_mth(size: int, salt: bytes) -> None:
    entries = [salt + i.to_bytes(2, "big") for i in range(size)]
    ref = Reference(entries)
    assert root_from_leaf_hashes([leaf_hash(e) for e in entries]) == ref.mth(0, size)


@FAST
@given(tree=trees())
def test_compact_range_tracks_every_prefix_and_hands_out_every_complete_node(tree: Tree) -> None:
    frontier = CompactRange()
    assert frontier.root() == EMPTY_ROOT
    seen: dict[tuple[int, int], bytes] = {}
    for i, digest in enumerate(tree.hashes):
        completed = frontier.append(digest)
        # The leaf itself first, then one carry per trailing 1 bit of i, going up.
        assert completed[0] == Node(0, i, digest)
        assert [n.level for n in completed] == list(range(len(completed)))
        assert len(completed) == 1 + ((i ^ (i + 1)).bit_length() - 1)
        for node in completed:
            first = node.index << node.level
            assert (node.index + 1) << node.level == i + 1  # completed by leaf i
            assert node.hash == tree.ref.mth(first, i + 1)
            assert (node.level, node.index) not in seen
            seen[node.level, node.index] = node.hash
        assert frontier.size == i + 1
        assert len(frontier.peaks) == (i + 1).bit_count()
        assert frontier.root() == tree.ref.mth(0, i + 1)
    # Every complete node of the final tree was handed out exactly once.
    assert len(seen) == 2 * tree.size - tree.size.bit_count()
    assert seen == tree.nodes


@FAST
@given(tree=trees(), data=st.data())
def test_frontier_rebuilt_from_the_store_carries_on_identically(
    tree: Tree, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, tree.size))
    store = tree.store(cut)
    rebuilt = CompactRange.from_nodes(cut, store)
    assert rebuilt.size == cut
    assert rebuilt.root() == tree.ref.mth(0, cut)
    assert len(store.calls) == cut.bit_count() <= bound(max(cut, 1))
    assert CompactRange.from_peaks(cut, rebuilt.peaks).root() == rebuilt.root()

    branch = rebuilt.copy()
    later = rebuilt.extend(tree.hashes[cut:])
    assert rebuilt.root() == tree.ref.mth(0, tree.size)
    assert {(n.level, n.index): n.hash for n in later}.items() <= tree.nodes.items()
    assert branch.size == cut  # the copy was not touched by extend
    assert branch.root() == tree.ref.mth(0, cut)


@FAST
@given(tree=trees(), data=st.data())
def test_root_from_nodes_reads_only_the_tiles(tree: Tree, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, tree.size))
    store = tree.store(size)
    assert root_from_nodes(size, store) == tree.ref.mth(0, size)
    assert store.calls == root_nodes(size)
    assert len(store.calls) <= bound(size)
    assert root_from_nodes(0, tree.store(0)) == EMPTY_ROOT


# -------------------------------------------------------------------- inclusion


@FAST
@given(tree=trees(), data=st.data())
def test_inclusion_proof_is_path_and_verifies(tree: Tree, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, tree.size), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    store = tree.store(size)
    root = tree.ref.mth(0, size)

    proof = inclusion_proof(index, size, store)
    assert proof == tree.ref.path(index, 0, size)
    assert store.calls == inclusion_proof_nodes(index, size)
    assert len(store.calls) <= bound(size)
    assert root_from_inclusion_proof(tree.hashes[index], index, size, proof) == root
    assert verify_inclusion(tree.hashes[index], index, size, proof, root) is True


@FAST
@given(tree=trees(), data=st.data())
def test_tampered_inclusion_claims_fail(tree: Tree, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, tree.size), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf, root = tree.hashes[index], tree.ref.mth(0, size)
    proof = inclusion_proof(index, size, tree.store(size))

    for i in range(len(proof)):
        for bit in (0, data.draw(st.integers(0, 8 * HASH_SIZE - 1), label="bit")):
            bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
            assert verify_inclusion(leaf, index, size, bad, root) is False
    assert verify_inclusion(flip(leaf, 0), index, size, proof, root) is False
    assert verify_inclusion(leaf, index, size, proof, flip(root, 255)) is False
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda j: j != index), label="other")
        assert verify_inclusion(tree.hashes[other], index, size, proof, root) is False
        assert outcome(lambda: verify_inclusion(leaf, other, size, proof, root)) is not True
    with pytest.raises(ProofError, match="proof has"):
        verify_inclusion(leaf, index, size, [*proof, proof[0] if proof else root], root)
    if proof:
        with pytest.raises(ProofError, match="proof has"):
            verify_inclusion(leaf, index, size, proof[:-1], root)


@FAST
@given(tree=trees(), data=st.data())
def test_inclusion_with_a_wrong_size_fails_unless_the_path_has_the_same_shape(
    tree: Tree, data: st.DataObject
) -> None:
    # Only the shape of the path (length, and which side each sibling is on) depends
    # on the size, so a size with the same shape necessarily verifies too: for leaf 0,
    # sizes 3 and 4 both give (right, right). That is inherent to RFC 9162, and why
    # the size must come from the same signed checkpoint as the root.
    size = data.draw(st.integers(1, tree.size), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    wrong = data.draw(st.integers(0, 2 * MAX_LEAVES).filter(lambda s: s != size), label="wrong")
    leaf, root = tree.hashes[index], tree.ref.mth(0, size)
    proof = inclusion_proof(index, size, tree.store(size))

    got = outcome(lambda: verify_inclusion(leaf, index, wrong, proof, root))
    if index < wrong and path_shape(index, wrong) == path_shape(index, size):
        assert got is True
    elif index < wrong and len(path_shape(index, wrong)) == len(proof):
        assert got is False
    else:
        assert got == "error"


# ------------------------------------------------------------------ consistency


@FAST
@given(tree=trees(), data=st.data())
def test_consistency_proof_is_proof_and_verifies(tree: Tree, data: st.DataObject) -> None:
    new = data.draw(st.integers(1, tree.size), label="new")
    old = data.draw(st.integers(0, new), label="old")
    store = tree.store(new)
    old_root, new_root = tree.ref.mth(0, old), tree.ref.mth(0, new)

    proof = consistency_proof(old, new, store)
    assert proof == ([] if old in (0, new) else tree.ref.proof(old, new))
    assert store.calls == consistency_proof_nodes(old, new)
    assert len(store.calls) <= bound(new)
    assert verify_consistency(old, new, old_root, new_root, proof) is True


@FAST
@given(tree=trees(min_size=2), data=st.data())
def test_tampered_consistency_claims_fail(tree: Tree, data: st.DataObject) -> None:
    new = data.draw(st.integers(2, tree.size), label="new")
    old = data.draw(st.integers(1, new - 1), label="old")
    old_root, new_root = tree.ref.mth(0, old), tree.ref.mth(0, new)
    proof = consistency_proof(old, new, tree.store(new))

    for i in range(len(proof)):
        for bit in (0, data.draw(st.integers(0, 8 * HASH_SIZE - 1), label="bit")):
            bad = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
            assert verify_consistency(old, new, old_root, new_root, bad) is False
    assert verify_consistency(old, new, flip(old_root, 7), new_root, proof) is False
    assert verify_consistency(old, new, old_root, flip(new_root, 7), proof) is False
    assert verify_consistency(old, new, new_root, old_root, proof) is False
    with pytest.raises(ProofError, match="proof has"):
        verify_consistency(old, new, old_root, new_root, [*proof, old_root])
    with pytest.raises(ProofError, match="proof has"):
        verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError, match="never shrinks"):
        verify_consistency(new, old, new_root, old_root, proof)
    with pytest.raises(ProofError, match="never shrinks"):
        consistency_proof(new, old, tree.store(new))


@FAST
@given(tree=trees(min_size=2), data=st.data())
def test_consistency_with_wrong_sizes_fails_unless_the_proof_has_the_same_shape(
    tree: Tree, data: st.DataObject
) -> None:
    new = data.draw(st.integers(2, tree.size), label="new")
    old = data.draw(st.integers(1, new - 1), label="old")
    wrong_old = data.draw(st.integers(1, 2 * MAX_LEAVES), label="wrong_old")
    wrong_new = data.draw(st.integers(1, 2 * MAX_LEAVES), label="wrong_new")
    assume((wrong_old, wrong_new) != (old, new))
    old_root, new_root = tree.ref.mth(0, old), tree.ref.mth(0, new)
    proof = consistency_proof(old, new, tree.store(new))

    got = outcome(lambda: verify_consistency(wrong_old, wrong_new, old_root, new_root, proof))
    if wrong_old > wrong_new:
        assert got == "error"
    elif wrong_old == wrong_new:
        assert got == "error"  # equal sizes need an empty proof, and this one is not
    elif proof_shape(wrong_old, wrong_new) == proof_shape(old, new):
        assert got is True
    elif len(proof_shape(wrong_old, wrong_new)) == len(proof):
        assert got is False
    else:
        assert got == "error"


@FAST
@given(tree=trees())
def test_trivial_consistency(tree: Tree) -> None:
    n, root = tree.size, tree.ref.mth(0, tree.size)
    assert consistency_proof(n, n, tree.store(n)) == []
    assert consistency_proof(0, n, tree.store(n)) == []
    assert verify_consistency(n, n, root, root, []) is True
    assert verify_consistency(n, n, root, flip(root, 1), []) is False
    assert verify_consistency(0, n, EMPTY_ROOT, root, []) is True
    assert verify_consistency(0, n, root, root, []) is False
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []) is True
    assert verify_consistency(0, 0, root, root, []) is False
    with pytest.raises(ProofError, match="proof has 1 hashes"):
        verify_consistency(n, n, root, root, [root])


# ------------------------------------------------------------ input checking

GARBAGE: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE),
    st.lists(st.binary(max_size=40), max_size=5),
    st.lists(st.integers(0, 300), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
SIZES: st.SearchStrategy[Any] = st.one_of(GARBAGE, st.integers(0, 64))
HASHES: st.SearchStrategy[Any] = st.one_of(
    GARBAGE, st.builds(lambda b: leaf_hash(b), st.binary(max_size=4))
)


def junk(value: object) -> Any:
    """Launder a deliberately wrong-typed argument past the type checker."""
    return value


def fake_node(level: int, index: int) -> bytes:
    """Any complete node of any tree: deterministic, so garbage-input runs can read."""
    return hashlib.sha256(f"{level}/{index}".encode()).digest()


def settles(call: Callable[[], object]) -> None:
    """A call on arbitrary input returns normally or raises ProofError; nothing else."""
    try:
        call()
    except ProofError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(leaf=HASHES, index=SIZES, size=SIZES, proof=GARBAGE, root=HASHES)
def test_verify_inclusion_never_crashes_on_garbage(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    settles(lambda: verify_inclusion(leaf, index, size, proof, root))
    settles(lambda: inclusion_proof(index, size, fake_node))
    settles(lambda: inclusion_proof_nodes(index, size))


@settings(max_examples=300, deadline=None)
@given(old=SIZES, new=SIZES, old_root=HASHES, new_root=HASHES, proof=GARBAGE)
def test_verify_consistency_never_crashes_on_garbage(
    old: Any, new: Any, old_root: Any, new_root: Any, proof: Any
) -> None:
    settles(lambda: verify_consistency(old, new, old_root, new_root, proof))
    settles(lambda: consistency_proof(old, new, fake_node))
    settles(lambda: consistency_proof_nodes(old, new))


@settings(max_examples=200, deadline=None)
@given(size=SIZES, peaks=GARBAGE, digest=HASHES)
def test_roots_and_frontiers_never_crash_on_garbage(size: Any, peaks: Any, digest: Any) -> None:
    settles(lambda: root_from_nodes(size, fake_node))
    settles(lambda: root_nodes(size))
    settles(lambda: CompactRange.from_nodes(size, fake_node))
    settles(lambda: CompactRange.from_peaks(size, peaks))
    settles(lambda: CompactRange().append(digest))
    settles(lambda: node_hash(digest, digest))
    settles(lambda: root_from_leaf_hashes(peaks) if isinstance(peaks, list) else None)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inclusion_proof(5, 3, fake_node), "leaf index 5 is not in a tree of size 3"),
        (lambda: inclusion_proof(0, 0, fake_node), "leaf index 0 is not in a tree of size 0"),
        (lambda: inclusion_proof(-1, 3, fake_node), "index must be at least 0, got -1"),
        (lambda: inclusion_proof(True, 3, fake_node), "index must be an integer, not bool"),
        (lambda: inclusion_proof(0, 2**64, fake_node), "size must be at most 2\\*\\*64 - 1"),
        (lambda: inclusion_proof(0, junk(3.0), fake_node), "size must be an integer, not float"),
        (lambda: consistency_proof(-2, 3, fake_node), "old_size must be at least 0, got -2"),
        (lambda: consistency_proof(4, 3, fake_node), "old_size 4 is larger than new_size 3"),
        (lambda: root_from_nodes(-1, fake_node), "size must be at least 0"),
        (
            lambda: verify_inclusion(b"short", 0, 1, [], EMPTY_ROOT),
            "leaf_hash must be a 32-byte SHA-256 hash, got 5 bytes",
        ),
        (
            lambda: verify_inclusion(EMPTY_ROOT, 0, 1, [], junk("root")),
            "root must be bytes, not str",
        ),
        (
            lambda: verify_inclusion(EMPTY_ROOT, 0, 2, [b"x" * 31], EMPTY_ROOT),
            "proof\\[0\\] must be a 32-byte SHA-256 hash, got 31 bytes",
        ),
        (
            lambda: verify_inclusion(EMPTY_ROOT, 0, 2, junk(EMPTY_ROOT), EMPTY_ROOT),
            "proof must be a list of hashes, not bytes",
        ),
        (
            lambda: verify_inclusion(EMPTY_ROOT, 0, 8, [EMPTY_ROOT], EMPTY_ROOT),
            "proof has 1 hashes, but leaf 0 in a tree of size 8 needs exactly 3",
        ),
        (
            lambda: verify_consistency(3, 8, EMPTY_ROOT, EMPTY_ROOT, []),
            "proof has 0 hashes, but a consistency proof from size 3 to 8 needs exactly 4",
        ),
        (lambda: node_hash(EMPTY_ROOT, b""), "right must be a 32-byte SHA-256 hash, got 0 bytes"),
        (lambda: CompactRange.from_peaks(3, [EMPTY_ROOT]), "a tree of size 3 has 2 peaks, got 1"),
        (lambda: CompactRange().append(b"leaf data"), "leaf_hash must be a 32-byte"),
    ],
)
def test_malformed_input_gets_a_clear_proof_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ProofError, match=message):
        call()


def test_proof_error_is_a_value_error_and_node_error_is_not() -> None:
    assert issubclass(ProofError, ValueError)
    assert not issubclass(NodeError, ValueError)


@pytest.mark.parametrize("junk", [b"", b"x" * 33, "a" * 32, None, 7])
def test_a_store_returning_junk_is_a_node_error(junk: object) -> None:
    def broken(level: int, index: int) -> Any:
        return junk

    with pytest.raises(NodeError, match=r"get_node\(\d+, \d+\) returned"):
        root_from_nodes(3, broken)
    with pytest.raises(NodeError):
        inclusion_proof(0, 3, broken)
    with pytest.raises(NodeError):
        consistency_proof(1, 3, broken)
    with pytest.raises(NodeError):
        CompactRange.from_nodes(3, broken)


def test_leaf_hash_and_node_hash_follow_rfc6962() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == _sha256(b"\x00")
    assert leaf_hash(junk(bytearray(b"abc"))) == _sha256(b"\x00abc")
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == _sha256(b"\x01" + left + right)
    assert node_hash(left, right) != node_hash(right, left)
    with pytest.raises(TypeError):
        leaf_hash(junk(5))  # bytes(5) would be five zero bytes


def test_a_full_tree_refuses_another_leaf() -> None:
    full = CompactRange.from_peaks(MAX_TREE_SIZE, [leaf_hash(bytes([i])) for i in range(64)])
    with pytest.raises(ProofError, match="full"):
        full.append(leaf_hash(b"one too many"))
    assert full.size == MAX_TREE_SIZE


def test_proofs_for_huge_trees_stay_logarithmic() -> None:
    # A tree whose leaves all hash alike is cheap to serve consistently at any size:
    # every perfect subtree of a given level has the same hash.
    size = 2**63 + 12345
    perfect = [leaf_hash(b"same")]
    for _ in range(64):
        perfect.append(node_hash(perfect[-1], perfect[-1]))
    reads: list[tuple[int, int]] = []

    def get(level: int, index: int) -> bytes:
        assert (index + 1) << level <= size
        reads.append((level, index))
        return perfect[level]

    root = root_from_nodes(size, get)
    assert len(reads) == size.bit_count()
    for index in (0, size // 3, size - 2, size - 1):
        reads.clear()
        proof = inclusion_proof(index, size, get)
        assert len(reads) <= bound(size)
        assert verify_inclusion(perfect[0], index, size, proof, root) is True
    for old in (1, 2**40 + 3, 2**62, size - 1):
        reads.clear()
        proof = consistency_proof(old, size, get)
        assert len(reads) <= bound(size)
        old_root = root_from_nodes(old, get)
        assert verify_consistency(old, size, old_root, root, proof) is True
