"""RFC 9162 (section 2.1.3.2 and 2.1.4.2) proof verification, written from the RFC's
pseudo-code for the tests alone: it shares no code with trailkeep.kit.merkle, so a
bug there cannot hide behind the same bug here."""

from __future__ import annotations

import hashlib


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def inclusion_ok(leaf_hash: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_ok(size1: int, size2: int, root1: bytes, root2: bytes, path: list[bytes]) -> bool:
    if size1 == size2:
        return not path and root1 == root2
    if size1 == 0 or size1 > size2 or not path:
        return False
    if size1 & (size1 - 1) == 0:  # a power of two: the first root starts the path
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2
