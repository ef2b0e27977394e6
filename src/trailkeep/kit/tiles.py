"""A tenant's Merkle tree stored as C2SP tlog-tiles: how the writer grows it, how readers use it.

The tree (kit/merkle.py) is stored the way C2SP tlog-tiles serves it: a *tile* at
tile level ``L`` and index ``N`` holds up to 256 consecutive hashes of tree level
``8 * L``, entries ``N * 256 ..``; level 0 tiles hold the leaf hashes. A tile with
fewer than 256 hashes is *partial*: it sits at the right edge of its level and grows
as the log does, and every prefix of it is final (a hash, once written, never
changes). So the store keeps one row per tile, rewrites only the few partial tiles
in each commit, and serves ``tile/L/N[.p/W]`` straight from those rows.

Every complete node of the tree is either in a tile or the root of 2**r consecutive
entries of one tile (r < 8), so any proof needs at most one tile per tile level:
O(log n) reads, each at most 8 KiB.

Pure: no storage code. Errors: ``TileError`` (a ValueError) for a malformed tile
path given by a client; ``TreeStateError`` for stored tiles that do not fit together
(a storage fault, never bad input).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from trailkeep.kit.merkle import EMPTY_ROOT, HASH_SIZE, CompactRange, NodeError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes in a full tile
MAX_TILE_LEVEL = 8  # 8 tile levels of height 8 cover every uint64 tree size
# Seqs (and so leaf indices and tree sizes) are signed 64-bit integers in the store.
MAX_TREE_SIZE = 2**63 - 1

TileId = tuple[int, int]  # (tile level, tile index)
GetTile = Callable[[int, int], bytes]
"""``get_tile(level, index)`` returns the stored hashes of that tile (any width)."""


class TileError(ValueError):
    """A tile path that is not ``L/N`` or ``L/N.p/W`` in the C2SP encoding."""


class TreeStateError(RuntimeError):
    """Stored tiles that cannot be the tiles of one tree: a storage fault."""


def _pair(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def perfect_root(hashes: bytes, first: int, count: int) -> bytes:
    """Hash of the perfect subtree over ``count`` (a power of two) entries from ``first``."""
    level = [hashes[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(first, first + count)]
    while len(level) > 1:
        level = [_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


# ------------------------------------------------------------------ tile paths


def _encode_index(index: int) -> str:
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/L/N[.p/W]`` as C2SP tlog-tiles names it (``N`` in groups of three digits)."""
    path = f"tile/{level}/{_encode_index(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/N[.p/W]``: the entry bundle of leaves ``256 * N ..``."""
    path = f"tile/entries/{_encode_index(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def max_tile_index(level: int) -> int:
    """The largest index a tile of ``level`` can have in a tree of ``MAX_TREE_SIZE``."""
    return MAX_TREE_SIZE >> (TILE_HEIGHT * (level + 1))


def _decimal(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts other scripts' digits ("٣"), which
    # int() would read, giving a second spelling of the same path.
    return bool(text) and text.isascii() and text.isdigit()


def _parse_index(text: str) -> int:
    """``N`` in its only spelling: ``x``-prefixed groups of three digits but the last,
    and no leading ``x000`` group (``x000/001`` would be a second name for ``001``)."""
    groups = text.split("/")
    if len(groups) > 7:  # 10**21 > 2**64: more groups name no tile of any tlog
        raise TileError("the tile index must have 1 to 7 groups of three digits")
    value = 0
    for position, group in enumerate(groups):
        last = position == len(groups) - 1
        digits = group if last else group.removeprefix("x")
        if (not last and not group.startswith("x")) or len(digits) != 3 or not _decimal(digits):
            raise TileError(
                f"tile index group {group[:20]!r} must be three digits ('x'-prefixed but the last)"
            )
        value = value * 1000 + int(digits)
    if len(groups) > 1 and groups[0] == "x000":
        raise TileError(
            f"tile index {text!r} has a superfluous leading group 'x000': its only"
            f" spelling is {_encode_index(value)!r}"
        )
    return value


def _parse_width(partial: str) -> int:
    if not _decimal(partial) or partial[0] == "0" or not 1 <= int(partial) < TILE_WIDTH:
        raise TileError(
            f"partial tile width {partial[:20]!r} must be 1 to 255, without leading zeros"
        )
    return int(partial)


def _split_partial(path: str) -> tuple[str, int]:
    if ".p/" not in path:
        return path, TILE_WIDTH
    path, _, partial = path.partition(".p/")
    return path, _parse_width(partial)


def _checked_index(level: int, text: str) -> int:
    index = _parse_index(text)
    if index > max_tile_index(level):
        raise TileError(
            f"tile index {index} is beyond any tree this log can hold (at most 2^63-1"
            f" leaves: level {level} tiles go up to index {max_tile_index(level)})"
        )
    return index


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """``L/N[.p/W]`` (what follows ``tile/``) as (level, index, width), in the one
    spelling C2SP tlog-tiles defines; any other is a ``TileError``."""
    path, width = _split_partial(path)
    level_text, _, index_text = path.partition("/")
    if not _decimal(level_text) or len(level_text) > 1 or int(level_text) >= MAX_TILE_LEVEL:
        raise TileError(
            f"tile level {level_text[:20]!r} must be 0 to {MAX_TILE_LEVEL - 1}, without"
            " leading zeros"
        )
    level = int(level_text)
    return level, _checked_index(level, index_text), width


def parse_entries_path(path: str) -> tuple[int, int]:
    """``N[.p/W]`` (what follows ``tile/entries/``) as (index, width)."""
    path, width = _split_partial(path)
    return _checked_index(0, path), width


# ------------------------------------------------------------------ the writer's frontier


def frontier_tiles(size: int) -> list[tuple[int, int, int]]:
    """(level, index, width) of each partial tile of a tree of ``size`` leaves."""
    out = []
    level = 0
    while (count := size >> (TILE_HEIGHT * level)) > 0:
        if width := count % TILE_WIDTH:
            out.append((level, count // TILE_WIDTH, width))
        level += 1
    return out


def _last_tile(size: int, level: int) -> tuple[int, int] | None:
    """(index, width) of the last tile of ``level`` in a tree of ``size`` leaves."""
    count = size >> (TILE_HEIGHT * level)
    if count == 0:
        return None
    index = (count - 1) // TILE_WIDTH
    return index, count - index * TILE_WIDTH


@dataclass(frozen=True, slots=True)
class TileRow:
    level: int
    index: int
    hashes: bytes


class TileFrontier:
    """The partial tiles of a tree: all a writer needs to append and to know the root."""

    __slots__ = ("_rows", "size")

    def __init__(self) -> None:
        self.size = 0
        self._rows: list[list[bytes]] = []  # partial entries per tile level

    @classmethod
    def from_tiles(cls, size: int, tiles: Mapping[TileId, bytes]) -> TileFrontier:
        """Rebuild from the stored partial tiles of a tree whose size is known."""
        frontier = cls()
        frontier.size = size
        for level, index, width in frontier_tiles(size):
            data = tiles.get((level, index))
            if data is None or len(data) != width * HASH_SIZE:
                have = "no tile" if data is None else f"{len(data) // HASH_SIZE} hashes"
                raise TreeStateError(
                    f"tree of size {size}: tile {level}/{index} should hold {width} hashes,"
                    f" found {have}"
                )
            while len(frontier._rows) <= level:
                frontier._rows.append([])
            frontier._rows[level] = [
                data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(width)
            ]
        return frontier

    @classmethod
    def from_last_tiles(cls, rows: Iterable[TileRow]) -> TileFrontier:
        """Rebuild from the last stored tile of each level; the size follows from level 0."""
        last = {row.level: row for row in rows}
        level0 = last.get(0)
        size = 0 if level0 is None else level0.index * TILE_WIDTH + len(level0.hashes) // HASH_SIZE
        for level in range(MAX_TILE_LEVEL):
            expected = _last_tile(size, level)
            row = last.get(level)
            found = None if row is None else (row.index, len(row.hashes) // HASH_SIZE)
            if found != expected:
                raise TreeStateError(
                    f"tree of size {size}: last tile of level {level} is {found},"
                    f" expected {expected}"
                )
        return cls.from_tiles(size, {(r.level, r.index): r.hashes for r in last.values()})

    def copy(self) -> TileFrontier:
        clone = TileFrontier()
        clone.size = self.size
        clone._rows = [list(row) for row in self._rows]
        return clone

    def extend(self, leaf_hashes: Iterable[bytes]) -> dict[TileId, bytes]:
        """Append leaves; return every tile that changed (full content), to be upserted."""
        changed: dict[TileId, bytes] = {}
        touched: set[int] = set()
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                raise ValueError("a leaf hash has 32 bytes")
            self._push(0, self.size, leaf, changed, touched)
            self.size += 1
        for level in touched:
            row = self._rows[level]
            if row:  # a partial tile that grew (full ones are already in ``changed``)
                count = self.size >> (TILE_HEIGHT * level)
                changed[(level, count // TILE_WIDTH)] = b"".join(row)
        return changed

    def _push(
        self, level: int, position: int, digest: bytes, changed: dict[TileId, bytes],
        touched: set[int],
    ) -> None:  # fmt: skip
        # ``position`` is the entry's index within its level (leaf index at level 0).
        while True:
            if len(self._rows) <= level:
                self._rows.append([])
            row = self._rows[level]
            row.append(digest)
            touched.add(level)
            if len(row) < TILE_WIDTH:
                return
            data = b"".join(row)
            changed[(level, position // TILE_WIDTH)] = data
            row.clear()
            digest = perfect_root(data, 0, TILE_WIDTH)
            level, position = level + 1, position // TILE_WIDTH

    def peaks(self) -> list[bytes]:
        """Hashes of the perfect subtrees tiling [0, size), largest first."""
        out = []
        for level in range(len(self._rows) - 1, -1, -1):
            row = self._rows[level]
            data = b"".join(row)
            first = 0
            for bit in range(TILE_HEIGHT - 1, -1, -1):
                if len(row) & (1 << bit):
                    out.append(perfect_root(data, first, 1 << bit))
                    first += 1 << bit
        return out

    def root(self) -> bytes:
        if self.size == 0:
            return EMPTY_ROOT
        return CompactRange.from_peaks(self.size, self.peaks()).root()


# ------------------------------------------------------------------ readers


class TileNodes:
    """``get_node`` for kit/merkle.py proofs, answered from tiles (each read once)."""

    def __init__(self, get_tile: GetTile) -> None:
        self._get_tile = get_tile
        self._tiles: dict[TileId, bytes] = {}

    def tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        data = self._tiles.get(key)
        if data is None:
            data = self._tiles[key] = self._get_tile(level, index)
        return data

    def __call__(self, level: int, index: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height
        tile_index, offset = divmod(first, TILE_WIDTH)
        data = self.tile(tile_level, tile_index)
        if len(data) < (offset + (1 << height)) * HASH_SIZE:
            raise NodeError(f"node {level}/{index} is not in the stored tiles")
        return perfect_root(data, offset, 1 << height)


def needed_tiles(nodes: Iterable[tuple[int, int]]) -> list[TileId]:
    """The tiles that hold ``nodes`` ((level, index) pairs), each once: for one batched read."""
    out: dict[TileId, None] = {}
    for level, index in nodes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        out[(tile_level, (index << height) // TILE_WIDTH)] = None
    return list(out)
