"""Level-0 tiles as witnesses for ``trailkeep verify --tiles``: trusted only once they match.

A root that does not match says that some event differs, not which one. The level-0
tiles (C2SP tlog-tiles, kit/tiles.py) hold every leaf hash; but they come from the
same server as the export, so they are worth nothing until they hash to the signed
root. :func:`check_tiles` fetches every tile covering [0, size), recomputes the root
and refuses the lot on any difference; only then does :class:`VerifiedTiles` answer
"which leaf does seq i have?".

Where the tiles come from is a ``FetchTile`` callable: :class:`DirectoryTiles` here,
the HTTP one in integrity/monitor.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from trailkeep.kit.merkle import HASH_SIZE, CompactRange
from trailkeep.kit.tiles import TILE_HEIGHT, TILE_WIDTH, perfect_root, tile_path

__all__ = [
    "DirectoryTiles",
    "FetchTile",
    "TileCheckError",
    "TileSourceError",
    "VerifiedTiles",
    "check_tiles",
]

FetchTile = Callable[[int, int, int], bytes | None]
"""``fetch(level, index, width)``: that tile's bytes, None when it does not exist."""

_TILE_BYTES = TILE_WIDTH * HASH_SIZE
# Tiles kept in memory after the check (256 MiB, 8M leaves); a bigger log keeps only a
# digest of each and reads it again when an event needs it.
_KEEP_TILES = 1 << 15


class TileSourceError(Exception):
    """A tile could not be read (I/O or network): raised by ``FetchTile`` callables."""


class TileCheckError(Exception):
    """The tiles cannot be used: ``status`` is "rejected" (they do not match the signed
    root, or are malformed) or "unavailable" (they could not be read)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DirectoryTiles:
    """Tiles from a directory holding ``tile/0/...`` (or the ``tile`` directory itself)."""

    def __init__(self, root: Path) -> None:
        if root.name == "tile" and not (root / "tile").is_dir():
            root = root.parent
        if not (root / "tile").is_dir():
            raise TileSourceError(f"{root} holds no tile/ directory (C2SP tlog-tiles layout)")
        self.root = root

    def __call__(self, level: int, index: int, width: int) -> bytes | None:
        path = self.root / tile_path(level, index, width)
        data = self._read(path)
        if data is None and width < TILE_WIDTH:
            # A directory saved from a later tree holds a wider partial tile instead;
            # every prefix of it is final, so its first ``width`` hashes are this tile.
            wider = self._wider_partial(path.parent, width)
            data = None if wider is None else wider[: width * HASH_SIZE]
        return data

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            with path.open("rb") as f:
                return f.read(_TILE_BYTES + 1)  # one byte more shows an oversized file
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TileSourceError(f"cannot read {path}: {exc.strerror or exc}") from None

    def _wider_partial(self, partials: Path, width: int) -> bytes | None:
        try:
            names = [p.name for p in partials.iterdir()]
        except OSError:
            return None
        wider = sorted(int(n) for n in names if n.isdigit() and width < int(n) < TILE_WIDTH)
        # One too short to hold ``width`` hashes is refused by the caller, by its length.
        return self._read(partials / str(wider[0])) if wider else None


def _level0_tile(fetch: FetchTile, index: int, width: int) -> bytes:
    """The first ``width`` leaf hashes of level-0 tile ``index``.

    A partial tile may be gone once the log filled it (C2SP tlog-tiles lets a log
    delete it), so the full tile is the fallback: its prefix is the same hashes.
    """
    widths = [width] if width == TILE_WIDTH else [width, TILE_WIDTH]
    for w in widths:
        try:
            data = fetch(0, index, w)
        except TileSourceError as exc:
            raise TileCheckError("unavailable", str(exc)) from None
        if data is None:
            continue
        if len(data) != w * HASH_SIZE:
            raise TileCheckError(
                "rejected",
                f"{tile_path(0, index, w)} holds {len(data)} bytes, want {w * HASH_SIZE}",
            )
        return data[: width * HASH_SIZE]
    tried = " or ".join(tile_path(0, index, w) for w in widths)
    raise TileCheckError("unavailable", f"{tried} not found")


def _partial_peaks(data: bytes, width: int) -> list[bytes]:
    """Hashes of the perfect subtrees tiling the ``width`` leaves of a partial tile."""
    peaks, first = [], 0
    for bit in range(TILE_HEIGHT - 1, -1, -1):
        if width & (1 << bit):
            peaks.append(perfect_root(data, first, 1 << bit))
            first += 1 << bit
    return peaks


def check_tiles(
    size: int, root: bytes, fetch: FetchTile, keep_tiles: int = _KEEP_TILES
) -> VerifiedTiles:
    """Fetch the level-0 tiles of a tree of ``size`` leaves; refuse them unless they hash
    to ``root``. Raises :class:`TileCheckError`."""
    full, rest = divmod(size, TILE_WIDTH)
    tiles = VerifiedTiles(fetch, size, keep_tiles)
    # Full tiles are perfect subtrees of 256 leaves: their roots are the leaves of a
    # tree 8 levels up, whose peaks come before those of the partial tile.
    above = CompactRange()
    for index in range(full):
        data = _level0_tile(fetch, index, TILE_WIDTH)
        above.append(perfect_root(data, 0, TILE_WIDTH))
        tiles.keep(index, data)
    peaks = list(above.peaks)
    if rest:
        data = _level0_tile(fetch, full, rest)
        peaks += _partial_peaks(data, rest)
        tiles.keep(full, data)
    if CompactRange.from_peaks(size, peaks).root() != root:
        raise TileCheckError(
            "rejected",
            f"the level-0 tiles do not hash to the checkpoint's root: they are not the"
            f" tiles of this log at size {size}, so they were not used",
        )
    return tiles


class VerifiedTiles:
    """The leaf hash of each seq, from tiles that hashed to the signed root."""

    def __init__(self, fetch: FetchTile, size: int, keep_tiles: int = _KEEP_TILES) -> None:
        self._fetch = fetch
        self._size = size
        # Keep every tile in memory when they are few enough, else only their digests.
        self._keep_all = -(-size // TILE_WIDTH) <= keep_tiles
        self._kept: dict[int, bytes] = {}  # the tiles themselves, or their digests
        self._last: tuple[int, bytes] = (-1, b"")

    def keep(self, index: int, data: bytes) -> None:
        self._kept[index] = data if self._keep_all else _digest(data)

    def leaf(self, seq: int) -> bytes:
        """The leaf hash the tiles hold for ``seq`` (0 <= seq < size)."""
        index, offset = divmod(seq, TILE_WIDTH)
        if self._last[0] != index:
            self._last = (index, self._tile(index))
        return self._last[1][offset * HASH_SIZE : (offset + 1) * HASH_SIZE]

    def _tile(self, index: int) -> bytes:
        kept = self._kept[index]
        if self._keep_all:
            return kept
        width = min(TILE_WIDTH, self._size - index * TILE_WIDTH)
        data = _level0_tile(self._fetch, index, width)
        if _digest(data) != kept:
            raise TileCheckError(
                "rejected", f"tile {tile_path(0, index)} changed between two reads; not used"
            )
        return data


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
