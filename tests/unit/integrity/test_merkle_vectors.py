"""merkle.py against the public transparency-dev/merkle proof vectors (testdata/README.md).

Each JSON file is one probe: a proof plus the claim it is checked against, and
``wantErr`` saying whether a correct verifier must reject it. The happy paths must
verify; every mutation of them must be rejected, as ``False`` or as a ProofError,
never as any other exception.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trailkeep.kit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_from_nodes,
    verify_consistency,
    verify_inclusion,
)

TESTDATA = Path(__file__).parent / "testdata"
INCLUSION = sorted((TESTDATA / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((TESTDATA / "consistency").rglob("*.json"))

# Upstream expects these two to verify although their "roots" are the 12-byte
# strings "don't care 1/2": with equal sizes, Go's verifier only compares the two
# byte strings. We refuse any root that is not a 32-byte SHA-256 hash, so for us they
# are malformed input. (Newer upstream vectors expect an error for the size-0 one too.)
STRICTER_THAN_UPSTREAM = frozenset(
    {
        "consistency/additional/sizes-are-equal-and-proof-is-not-empty-where-both-sizes-are-one.json",
        "consistency/additional/sizes-are-equal-and-proof-is-not-empty-where-both-sizes-are-zero.json",
    }
)

# The leaves behind the vectors: the classic RFC 6962 test data of the
# certificate-transparency reference code, and the roots of their first 1..8 leaves
# (the same roots appear in upstream's cmd/proofgen).
RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC6962_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def _name(path: Path) -> str:
    return path.relative_to(TESTDATA).as_posix()


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _bytes(value: str | None) -> bytes:
    # Go's encoding/json writes []byte as standard base64 and a nil slice as null.
    return b"" if value is None else base64.b64decode(value, validate=True)


def _hashes(value: list[str] | None) -> list[bytes]:
    return [_bytes(item) for item in value or []]


def _must_verify(path: Path, probe: dict[str, Any]) -> bool:
    if _name(path) in STRICTER_THAN_UPSTREAM:
        return False
    return probe["wantErr"] is False


def _assert_rejected(check: Callable[[], bool]) -> None:
    """The check returns False or raises ProofError; any other exception fails the test."""
    try:
        result = check()
    except ProofError as exc:
        assert str(exc), "a ProofError must say what is wrong"
        return
    assert result is False


def test_the_whole_vector_set_is_present() -> None:
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 97
    for kind, files in (("inclusion", INCLUSION), ("consistency", CONSISTENCY)):
        happy = {_name(p) for p in files if p.name == "happy-path.json"}
        assert happy == {f"{kind}/{i}/happy-path.json" for i in range(5)}


@pytest.mark.parametrize("path", INCLUSION, ids=_name)
def test_inclusion_vector(path: Path) -> None:
    probe = _load(path)
    if path.name == "happy-path.json":
        assert probe["wantErr"] is False
    leaf, index, size = _bytes(probe["leafHash"]), probe["leafIdx"], probe["treeSize"]
    proof, root = _hashes(probe["proof"]), _bytes(probe["root"])

    if _must_verify(path, probe):
        assert verify_inclusion(leaf, index, size, proof, root) is True
        assert root_from_inclusion_proof(leaf, index, size, proof) == root
    else:
        _assert_rejected(lambda: verify_inclusion(leaf, index, size, proof, root))


@pytest.mark.parametrize("path", CONSISTENCY, ids=_name)
def test_consistency_vector(path: Path) -> None:
    probe = _load(path)
    if path.name == "happy-path.json":
        assert probe["wantErr"] is False
    size1, size2 = probe["size1"], probe["size2"]
    root1, root2, proof = _bytes(probe["root1"]), _bytes(probe["root2"]), _hashes(probe["proof"])

    if _must_verify(path, probe):
        assert verify_consistency(size1, size2, root1, root2, proof) is True
    else:
        _assert_rejected(lambda: verify_consistency(size1, size2, root1, root2, proof))


@pytest.mark.parametrize("name", sorted(STRICTER_THAN_UPSTREAM))
def test_where_we_are_stricter_than_upstream_it_is_only_about_hash_length(name: str) -> None:
    probe = _load(TESTDATA / name)
    assert probe["wantErr"] is False
    with pytest.raises(ProofError, match="32-byte"):
        verify_consistency(
            probe["size1"],
            probe["size2"],
            _bytes(probe["root1"]),
            _bytes(probe["root2"]),
            _hashes(probe["proof"]),
        )
    # The same claim with real hashes is accepted (size 0 needs the empty-tree root).
    root = EMPTY_ROOT if probe["size1"] == 0 else leaf_hash(b"x")
    assert verify_consistency(probe["size1"], probe["size2"], root, root, []) is True


def _rfc6962_store() -> dict[tuple[int, int], bytes]:
    frontier = CompactRange()
    nodes = frontier.extend(leaf_hash(leaf) for leaf in RFC6962_LEAVES)
    return {(node.level, node.index): node.hash for node in nodes}


def test_rfc6962_known_roots() -> None:
    hashes = [leaf_hash(leaf) for leaf in RFC6962_LEAVES]
    nodes = _rfc6962_store()
    for size, expected in enumerate(RFC6962_ROOTS, start=1):
        assert root_from_leaf_hashes(hashes[:size]) == expected
        assert root_from_nodes(size, lambda level, index: nodes[level, index]) == expected
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


@pytest.mark.parametrize("i", range(5))
def test_we_generate_exactly_the_upstream_inclusion_proofs(i: int) -> None:
    probe = _load(TESTDATA / "inclusion" / str(i) / "happy-path.json")
    nodes = _rfc6962_store()
    index, size = probe["leafIdx"], probe["treeSize"]
    assert leaf_hash(RFC6962_LEAVES[index]) == _bytes(probe["leafHash"])
    assert root_from_nodes(size, lambda lv, ix: nodes[lv, ix]) == _bytes(probe["root"])
    assert inclusion_proof(index, size, lambda lv, ix: nodes[lv, ix]) == _hashes(probe["proof"])


@pytest.mark.parametrize("i", range(5))
def test_we_generate_exactly_the_upstream_consistency_proofs(i: int) -> None:
    probe = _load(TESTDATA / "consistency" / str(i) / "happy-path.json")
    nodes = _rfc6962_store()
    size1, size2 = probe["size1"], probe["size2"]
    assert root_from_nodes(size1, lambda lv, ix: nodes[lv, ix]) == _bytes(probe["root1"])
    assert root_from_nodes(size2, lambda lv, ix: nodes[lv, ix]) == _bytes(probe["root2"])
    proof = consistency_proof(size1, size2, lambda lv, ix: nodes[lv, ix])
    assert proof == _hashes(probe["proof"])
