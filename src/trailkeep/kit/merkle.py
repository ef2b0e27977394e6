"""RFC 6962 / RFC 9162 section 2 Merkle hash trees over SHA-256, as pure functions.

Every tenant's log is one Merkle tree whose leaf ``i`` is the event with ``seq == i``.
This module knows nothing about storage: it hashes, it tells an append-only writer
which subtree hashes became final, and it builds and checks proofs by asking a
caller-supplied ``get_node(level, index)`` for stored hashes.

Vocabulary used throughout:

* The *RFC tree* of ``n`` leaves is MTH(D[0:n]) from RFC 9162 section 2.1.1: split at
  the largest power of two ``k < n``, hash the left ``k`` leaves and the right
  ``n - k`` leaves recursively.
* A *node* ``(level, index)`` is the perfect subtree over leaves
  ``[index * 2**level, (index + 1) * 2**level)``; level 0 nodes are the leaf hashes.
  Such a node is *complete* at tree size ``n`` once ``(index + 1) * 2**level <= n``.
  A complete node never changes again as the log grows, so a store can persist it
  the moment it appears and serve it forever. Those are the only hashes this module
  ever asks ``get_node`` for.
* Every node of the RFC tree is either complete, or lies on the right edge and
  covers ``[begin, n)``; the hash of such a right-edge node is computed from the
  complete nodes that tile it (at most one per set bit of ``n - begin``).
  That is why a root, an inclusion proof or a consistency proof costs O(log n)
  reads.

Errors: anything malformed (a negative or out-of-range index or size, a hash that is
not 32 bytes, a proof with the wrong number of hashes) raises :class:`ProofError`,
a ``ValueError``, with a message meant for the person who sent it. A well-formed
proof whose hashes do not match makes ``verify_*`` return ``False``. A ``get_node``
that returns something other than a 32-byte hash raises :class:`NodeError`: that is
a storage fault, not bad input, and must not be reported to a client as one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "CompactRange",
    "GetNode",
    "Node",
    "NodeError",
    "NodeId",
    "ProofError",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "root_from_nodes",
    "root_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in a SHA-256 digest, hence in every leaf, node and root hash."""

MAX_TREE_SIZE = 2**64 - 1
"""RFC 9162 carries tree sizes and leaf indices as uint64; anything larger is garbage."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() - the root of the tree with no leaves (RFC 9162 section 2.1.1)."""

# Domain separation (RFC 9162 section 2.1.1): a leaf and an interior node can never
# have the same preimage, so nobody can pass an interior node off as a leaf (the
# classic second-preimage attack on naive Merkle trees).
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

NodeId = tuple[int, int]
"""``(level, index)`` of a complete node; see the module docstring."""

GetNode = Callable[[int, int], bytes]
"""``get_node(level, index)`` returns the stored hash of that complete node."""

_BYTES_LIKE = (bytes, bytearray, memoryview)
_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A malformed proof or argument: bad index or size, wrong hash length, wrong proof length."""


class NodeError(RuntimeError):
    """``get_node`` returned something that is not a 32-byte hash (a storage fault)."""


@dataclass(frozen=True, slots=True)
class Node:
    """A complete node and its hash, as handed to a store by :meth:`CompactRange.append`."""

    level: int
    index: int
    hash: bytes


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the hash of a single leaf's bytes.

    The one leaf function: the writer, the backfill, the verifier and the export check
    all call it, so they can never drift apart. It runs once per event ingested and
    verified, hence the cheap exact-type test first.
    """
    if type(data) is not bytes:
        # bytes(5) would quietly hash five zero bytes; only real byte strings are leaves.
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(f"leaf data must be bytes, not {type(data).__name__}")
        data = bytes(data)
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node from its two children."""
    return _hash_children(_check_hash("left", left), _check_hash("right", right))


def _hash_children(left: bytes, right: bytes) -> bytes:
    # Unchecked twin of node_hash for inner loops whose inputs are already validated.
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# ------------------------------------------------------------------ input checking


def _check_int(name: str, value: object, minimum: int = 0) -> int:
    # bool is an int subclass; True as a tree size is always a bug, never intent.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{name} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ProofError(f"{name} must be at least {minimum}, got {value}")
    if value > MAX_TREE_SIZE:
        raise ProofError(f"{name} must be at most 2**64 - 1, got {value}")
    return value


def _check_hash(name: str, value: object) -> bytes:
    if not isinstance(value, _BYTES_LIKE):
        raise ProofError(f"{name} must be bytes, not {type(value).__name__}")
    digest = bytes(value)
    if len(digest) != HASH_SIZE:
        raise ProofError(f"{name} must be a {HASH_SIZE}-byte SHA-256 hash, got {len(digest)} bytes")
    return digest


def _check_proof(proof: object, expected: int, what: str) -> list[bytes]:
    # A str or bytes value is itself a Sequence; accepting one would silently turn
    # b"..." into a proof of small integers. Check the length before looking at the
    # elements so a huge junk list costs nothing.
    if isinstance(proof, (str, *_BYTES_LIKE)) or not isinstance(proof, Sequence):
        raise ProofError(f"proof must be a list of hashes, not {type(proof).__name__}")
    if len(proof) != expected:
        raise ProofError(f"proof has {len(proof)} hashes, but {what} needs exactly {expected}")
    return [_check_hash(f"proof[{i}]", item) for i, item in enumerate(proof)]


def _read(get_node: GetNode, level: int, index: int) -> bytes:
    value = get_node(level, index)
    if not isinstance(value, _BYTES_LIKE) or len(value) != HASH_SIZE:
        got = f"{len(value)} bytes" if isinstance(value, _BYTES_LIKE) else type(value).__name__
        raise NodeError(f"get_node({level}, {index}) returned {got}, not a {HASH_SIZE}-byte hash")
    return bytes(value)


# -------------------------------------------------------------------- tree shape


def _split(width: int) -> int:
    """RFC 9162's k: the largest power of two strictly smaller than ``width`` (>= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def _tiles(begin: int, end: int) -> list[NodeId]:
    """The complete nodes that tile the RFC-tree node ``[begin, end)``, left to right.

    Greedy largest-first tiling is correct because every RFC-tree node is aligned:
    ``begin`` is a multiple of a power of two at least as large as ``end - begin``
    (it is either 0, or the split point of a parent whose left half is that power of
    two). So each tile starts on its own boundary, and the tiles are exactly the
    subtrees MTH recurses into on its way down the right edge.
    """
    tiles: list[NodeId] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        tiles.append((level, begin >> level))
        begin += 1 << level
    return tiles


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the tile hashes of one RFC-tree node into that node's hash.

    MTH splits off the largest power of two first, so the first tile is the left
    child and everything after it is the right child: a right fold.
    """
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = _hash_children(left, acc)
    return acc


def _subtree_hash(begin: int, end: int, get_node: GetNode) -> bytes:
    return _fold([_read(get_node, level, index) for level, index in _tiles(begin, end)])


def _inclusion_plan(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes make up PATH(index, D[0:size]), in proof order.

    Walks RFC 9162 section 2.1.3.1 top-down without recursion: at each RFC-tree node
    the proof needs the hash of the child that does *not* hold the leaf. The
    recursion emits the deepest sibling first, so the collected list is reversed.
    """
    ranges: list[tuple[int, int]] = []
    begin, end = 0, size
    while end - begin > 1:
        mid = begin + _split(end - begin)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin = mid
    ranges.reverse()
    return ranges


def _consistency_plan(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes make up PROOF(old_size, D[0:new_size]), 0 < old < new.

    RFC 9162 section 2.1.4.1, SUBPROOF(m, D[n], b) unrolled. ``old_root_known`` is
    the RFC's ``b``: it stays true while we have only ever descended into left
    children, i.e. while the subtree ending at ``old_size`` is the whole old tree,
    whose root the verifier already holds and so need not be sent.
    """
    ranges: list[tuple[int, int]] = []
    begin, end = 0, new_size
    old_root_known = True
    while end != old_size:
        mid = begin + _split(end - begin)
        if old_size <= mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin = mid
            old_root_known = False
    if not old_root_known:
        ranges.append((begin, end))
    ranges.reverse()
    return ranges


def _nodes_of(ranges: Iterable[tuple[int, int]]) -> list[NodeId]:
    return [node for begin, end in ranges for node in _tiles(begin, end)]


# ---------------------------------------------------------------------- roots


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, in O(n) time and O(log n) memory.

    Uses the same frontier as :class:`CompactRange` rather than MTH's recursion, so
    a million leaves need no deep call stack and each interior hash is computed once.
    """
    frontier = CompactRange()
    for i, item in enumerate(hashes):
        frontier._push(_check_hash(f"hashes[{i}]", item), None)
    return frontier.root()


def root_nodes(size: int) -> list[NodeId]:
    """The complete nodes :func:`root_from_nodes` reads for ``size``, for prefetching."""
    size = _check_int("size", size)
    return _tiles(0, size)


def root_from_nodes(size: int, get_node: GetNode) -> bytes:
    """The root of the first ``size`` leaves, reading only the <= log2(size)+1 tiles."""
    size = _check_int("size", size)
    if size == 0:
        return EMPTY_ROOT
    return _subtree_hash(0, size, get_node)


class CompactRange:
    """The frontier of an append-only tree: the hashes of the perfect subtrees tiling [0, size).

    This is all a writer must keep in memory to go on appending: one hash per set bit
    of ``size`` (its "peaks", largest first). Appending leaf ``size`` completes the
    node at level 0 and then one more node for every trailing 1 bit of ``size``, the
    same way a binary counter carries. :meth:`append` returns exactly those newly
    completed nodes so the store can persist them in the same transaction as the
    event; afterwards ``get_node`` can serve any proof.

    The object is mutable and cheap to :meth:`copy`: a group-commit writer can extend
    a copy for a batch and adopt it only once the transaction has committed.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []

    @classmethod
    def from_peaks(cls, size: int, peaks: Sequence[bytes]) -> CompactRange:
        """Rebuild the frontier from its peaks (largest subtree first)."""
        size = _check_int("size", size)
        expected = size.bit_count()
        if isinstance(peaks, (str, *_BYTES_LIKE)) or not isinstance(peaks, Sequence):
            raise ProofError(f"peaks must be a list of hashes, not {type(peaks).__name__}")
        if len(peaks) != expected:
            raise ProofError(f"a tree of size {size} has {expected} peaks, got {len(peaks)}")
        frontier = cls()
        frontier._size = size
        frontier._peaks = [_check_hash(f"peaks[{i}]", peak) for i, peak in enumerate(peaks)]
        return frontier

    @classmethod
    def from_nodes(cls, size: int, get_node: GetNode) -> CompactRange:
        """Rebuild the frontier after a restart from stored nodes: O(log size) reads."""
        size = _check_int("size", size)
        return cls.from_peaks(size, [_read(get_node, lv, ix) for lv, ix in _tiles(0, size)])

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        """Hashes of the perfect subtrees tiling [0, size), largest (leftmost) first."""
        return tuple(self._peaks)

    def copy(self) -> CompactRange:
        clone = CompactRange()
        clone._size = self._size
        clone._peaks = list(self._peaks)
        return clone

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Append one leaf hash; return every node it completed, lowest level first.

        The first returned node is the leaf itself at level 0, so a store that
        persists everything returned can answer ``get_node(0, i)`` like any level.
        """
        completed: list[Node] = []
        self._push(_check_hash("leaf_hash", leaf_hash), completed)
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[Node]:
        """Append several leaf hashes; return all nodes they completed, in order."""
        completed: list[Node] = []
        for item in leaf_hashes:
            self._push(_check_hash("leaf_hash", item), completed)
        return completed

    def _push(self, digest: bytes, completed: list[Node] | None) -> None:
        if self._size >= MAX_TREE_SIZE:
            raise ProofError("the tree is full: it already holds 2**64 - 1 leaves")
        level, index = 0, self._size
        if completed is not None:
            completed.append(Node(0, index, digest))
        # The new leaf is a right child at every level where ``index`` has a 1 bit at
        # the bottom: its left sibling is the last peak, and the pair becomes a new
        # complete node one level up (a carry). A 0 bit means it is a left child, so
        # it stays a peak until a later leaf completes its sibling.
        while index & 1:
            digest = _hash_children(self._peaks.pop(), digest)
            level, index = level + 1, index >> 1
            if completed is not None:
                completed.append(Node(level, index, digest))
        self._peaks.append(digest)
        self._size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far (EMPTY_ROOT when there are none)."""
        if not self._peaks:
            return EMPTY_ROOT
        return _fold(self._peaks)

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


# ------------------------------------------------------------------ inclusion


def _check_index(index: object, size: object) -> tuple[int, int]:
    index = _check_int("index", index)
    size = _check_int("size", size)
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    return index, size


def inclusion_proof_nodes(index: int, size: int) -> list[NodeId]:
    """The complete nodes :func:`inclusion_proof` reads, for prefetching in one query."""
    index, size = _check_index(index, size)
    return _nodes_of(_inclusion_plan(index, size))


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 section 2.1.3.1) from stored complete nodes.

    Every sibling on the path is a complete node except at most one: the first time
    the path leaves the right edge, the sibling it leaves behind is the right-edge
    node [mid, size), hashed from its <= log2(size) tiles. So the whole proof costs
    at most about 2*log2(size) reads, and only reads nodes already complete at
    ``size`` - which stay valid however far the log has grown since.
    """
    index, size = _check_index(index, size)
    return [_subtree_hash(b, e, get_node) for b, e in _inclusion_plan(index, size)]


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf_hash`` at ``index`` in a tree of ``size``.

    RFC 9162 section 2.1.3.2: walk up from the leaf; ``fn`` is the current node's
    index and ``sn`` the index of the last node at the same level. Where the node is
    a right child (odd ``fn``) or the last node of its level (``fn == sn``, so it has
    no right sibling and is promoted through the levels where it has none), the proof
    hash goes on the left; otherwise on the right. The proof length is checked first,
    so a truncated or padded proof is a ProofError rather than a silent mismatch.
    """
    index, size = _check_index(index, size)
    digest = _check_hash("leaf_hash", leaf_hash)
    expected = len(_inclusion_plan(index, size))
    hashes = _check_proof(proof, expected, f"leaf {index} in a tree of size {size}")
    fn, sn = index, size - 1
    for sibling in hashes:
        if fn & 1 or fn == sn:
            digest = _hash_children(sibling, digest)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = _hash_children(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    # Unreachable while the length check above is right; kept so that a bug there
    # shows up as an error instead of a proof checked against the wrong level.
    if sn != 0:
        raise ProofError(f"proof is too short for leaf {index} in a tree of size {size}")
    return digest


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Does ``proof`` show ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``?

    Returns False when the hashes do not match; raises ProofError when the input is
    malformed (index out of range, a hash that is not 32 bytes, wrong proof length).
    """
    expected_root = _check_hash("root", root)
    # Plain equality is fine: roots and proofs are public, there is no secret to time.
    return root_from_inclusion_proof(leaf_hash, index, size, proof) == expected_root


# ---------------------------------------------------------------- consistency


def _check_sizes(old_size: object, new_size: object) -> tuple[int, int]:
    old_size = _check_int("old_size", old_size)
    new_size = _check_int("new_size", new_size)
    if old_size > new_size:
        raise ProofError(
            f"old_size {old_size} is larger than new_size {new_size}: a log never shrinks"
        )
    return old_size, new_size


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    # The empty tree is a prefix of every tree, and a tree is a prefix of itself:
    # neither needs a single hash to prove (RFC 9162 defines PROOF for 0 < m < n).
    if old_size == 0 or old_size == new_size:
        return []
    return _consistency_plan(old_size, new_size)


def consistency_proof_nodes(old_size: int, new_size: int) -> list[NodeId]:
    """The complete nodes :func:`consistency_proof` reads, for prefetching in one query."""
    old_size, new_size = _check_sizes(old_size, new_size)
    return _nodes_of(_consistency_ranges(old_size, new_size))


def consistency_proof(old_size: int, new_size: int, get_node: GetNode) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) (RFC 9162 section 2.1.4.1) from stored complete nodes.

    Empty when ``old_size`` is 0 or equal to ``new_size``. Like the inclusion proof,
    at most one hash is a right-edge node needing its tiles read, so the cost is
    O(log new_size) reads, all of nodes complete at ``new_size``.
    """
    old_size, new_size = _check_sizes(old_size, new_size)
    return [_subtree_hash(b, e, get_node) for b, e in _consistency_ranges(old_size, new_size)]


def _roots_from_consistency_proof(
    old_size: int, new_size: int, old_root: bytes, hashes: list[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 section 2.1.4.2 for 0 < old_size < new_size: the (old, new) roots implied.

    ``fn`` tracks the last old leaf's ancestor and ``sn`` the last new leaf's. Both
    roots are rebuilt at once: hashes to the left of the old boundary feed both,
    hashes to its right only the new root. When the old tree is a perfect subtree its
    root is the starting point and the proof omits it, so it is put back first.
    """
    path = [old_root, *hashes] if old_size & (old_size - 1) == 0 else hashes
    fn, sn = old_size - 1, new_size - 1
    # Skip the levels where the old tree's last node is a right child inside a
    # complete subtree: path[0] already is that subtree's hash.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_acc = new_acc = path[0]
    for item in path[1:]:
        if sn == 0:
            raise ProofError(f"proof is too long for sizes {old_size} -> {new_size}")
        if fn & 1 or fn == sn:
            old_acc = _hash_children(item, old_acc)
            new_acc = _hash_children(item, new_acc)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_acc = _hash_children(new_acc, item)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"proof is too short for sizes {old_size} -> {new_size}")
    return old_acc, new_acc


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Is the tree (old_size, old_root) a prefix of the tree (new_size, new_root)?

    Returns False when the hashes do not match; raises ProofError when the input is
    malformed (negative sizes, old_size > new_size, a root or proof hash that is not
    32 bytes, or the wrong number of proof hashes for the two sizes).

    Edge cases: equal sizes need an empty proof and equal roots (and for size 0 the
    root must be EMPTY_ROOT); old_size 0 needs an empty proof and old_root ==
    EMPTY_ROOT - nothing about the new tree can be learnt from it.
    """
    old_size, new_size = _check_sizes(old_size, new_size)
    old_digest = _check_hash("old_root", old_root)
    new_digest = _check_hash("new_root", new_root)
    hashes = _check_proof(
        proof,
        len(_consistency_ranges(old_size, new_size)),
        f"a consistency proof from size {old_size} to {new_size}",
    )
    if old_size == new_size:
        # Same size, so same tree: the roots must agree, and a size-0 tree has only
        # one possible root.
        return old_digest == new_digest and (old_size != 0 or old_digest == EMPTY_ROOT)
    if old_size == 0:
        return old_digest == EMPTY_ROOT
    old_acc, new_acc = _roots_from_consistency_proof(old_size, new_size, old_digest, hashes)
    return old_acc == old_digest and new_acc == new_digest
