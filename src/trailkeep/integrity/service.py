"""What the integrity endpoints answer: checkpoints, proofs, tiles and the verifier key.

Every method takes a tenant already scoped by the caller's credential (see routes.py);
a size or index a client sends is checked here and refused with a 400 naming it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from trailkeep.errors import BadRequest, Conflict, Gone, NotFound, TrailkeepError
from trailkeep.integrity import proofs
from trailkeep.integrity.signing_keys import LogKey
from trailkeep.kit.merkle import HASH_SIZE, leaf_hash
from trailkeep.kit.tiles import TILE_WIDTH
from trailkeep.kit.timeutil import format_us
from trailkeep.query.filter import EventFilter
from trailkeep.store.models import CheckpointRecord
from trailkeep.store.protocol import Store, TreeView

# C2SP tlog-tiles prefixes each entry of a bundle with a big-endian uint16 length.
_MAX_ENTRY = 0xFFFF


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def checkpoint_json(record: CheckpointRecord, origin: str) -> dict[str, Any]:
    return {
        "origin": origin,
        "tree_size": record.size,
        "root_hash": b64(record.root_hash),
        "signed_at": format_us(record.signed_at),
        "note": record.note,
    }


def _found(record: CheckpointRecord | None) -> CheckpointRecord:
    if record is None:
        raise NotFound(
            "no checkpoint yet: the log is empty, or its first checkpoint is being"
            " signed (within TRAILKEEP_CHECKPOINT_INTERVAL_SECONDS of the first event)"
        )
    return record


def _latest(view: TreeView) -> CheckpointRecord:
    return _found(view.latest_checkpoint())


def _target(view: TreeView, name: str, size: int | None) -> tuple[int, CheckpointRecord | None]:
    """The tree size a proof is for, and its checkpoint: the latest, or ``size`` (checked)."""
    if size is None:
        latest = _latest(view)
        return latest.size, latest
    have = view.size()
    if size > have:
        raise BadRequest(
            f"'{name}' is {size} but the tree has only {have} leaves",
            details={"field": name, "tree_size": have},
        )
    return size, view.checkpoint_at(size)


@dataclass
class IntegrityService:
    store: Store
    key: LogKey

    async def latest(self, tenant_id: str) -> CheckpointRecord:
        return _found(await self.store.latest_checkpoint(tenant_id))

    async def history(self, tenant_id: str, below: int | None, limit: int) -> dict[str, Any]:
        records = await self.store.list_checkpoints(tenant_id, below, limit)
        origin = self.key.origin(tenant_id)
        return {
            "data": [checkpoint_json(r, origin) for r in records],
            "next_before": records[-1].size if len(records) == limit else None,
        }

    async def inclusion(
        self, tenant_id: str, event_id: str, body: bytes, size: int | None
    ) -> dict[str, Any]:
        """Proof for the stored event ``body`` (read by the caller, with its access checks)."""
        seq: int = orjson.loads(body)["seq"]

        def work(view: TreeView) -> dict[str, Any]:
            tree_size, checkpoint = _target(view, "size", size)
            if seq >= tree_size and size is None:
                raise NotFound(
                    f"event '{event_id}' (seq {seq}) is not in the latest checkpoint"
                    f" (size {tree_size}) yet; retry within"
                    " TRAILKEEP_CHECKPOINT_INTERVAL_SECONDS"
                )
            if seq >= tree_size:
                raise BadRequest(
                    f"event '{event_id}' has seq {seq}, so it is not in a tree of size {tree_size}",
                    details={"field": "size", "seq": seq},
                )
            proof, leaf, root = proofs.inclusion(view, seq, tree_size)
            return {
                "id": event_id,
                "seq": seq,
                "leaf_index": seq,
                "tree_size": tree_size,
                "leaf_hash": b64(leaf),
                "root_hash": b64(root),
                "proof": [b64(h) for h in proof],
                "checkpoint": None if checkpoint is None else checkpoint.note,
            }

        return await self.store.read_tree(tenant_id, work)

    async def consistency(self, tenant_id: str, first: int, second: int | None) -> dict[str, Any]:
        if first == 0:
            # RFC 9162 2.1.4 defines PROOF(m, D[n]) only for 0 < m: every tree extends
            # the empty one, whose root is SHA-256 of nothing; there is nothing to prove.
            raise BadRequest(
                "'from' is 0: RFC 9162 defines no consistency proof from the empty tree"
                " (every tree extends it; its root is SHA-256 of the empty string);"
                " use from >= 1",
                details={"field": "from"},
            )

        def work(view: TreeView) -> dict[str, Any]:
            to_size, checkpoint = _target(view, "to", second)
            if first > to_size:
                raise BadRequest(
                    f"'from' ({first}) is larger than 'to' ({to_size}): a log never shrinks",
                    details={"field": "from"},
                )
            proof, first_root, second_root = proofs.consistency(view, first, to_size)
            return {
                "from": first,
                "to": to_size,
                "from_root_hash": b64(first_root),
                "to_root_hash": b64(second_root),
                "proof": [b64(h) for h in proof],
                "checkpoint": None if checkpoint is None else checkpoint.note,
            }

        return await self.store.read_tree(tenant_id, work)

    async def tile(self, tenant_id: str, level: int, index: int, width: int) -> bytes:
        """Tile ``level/index`` with ``width`` hashes (a prefix of what is stored)."""
        found = (await self.store.get_tiles(tenant_id, [(level, index)])).get((level, index))
        stored = 0 if found is None else len(found) // HASH_SIZE
        if stored < width:
            what = "full" if width == TILE_WIDTH else f"{width} wide"
            raise NotFound(f"tile {level}/{index} is not {what} yet (it holds {stored} hashes)")
        assert found is not None
        return found[: width * HASH_SIZE]

    async def entry_bundle(self, tenant_id: str, index: int, width: int) -> bytes:
        """Entry bundle ``index`` with ``width`` entries: the stored bodies of seqs
        ``256 * index ..``, each as a big-endian uint16 length and the bytes."""
        found = (await self.store.get_tiles(tenant_id, [(0, index)])).get((0, index))
        stored = 0 if found is None else len(found) // HASH_SIZE
        if stored < width:  # the level-0 tile says how many of its leaves the tree has
            what = "full" if width == TILE_WIDTH else f"{width} entries wide"
            raise NotFound(
                f"entry bundle {index} is not {what} yet (the log has {stored} of its entries)"
            )
        assert found is not None
        first = index * TILE_WIDTH
        rows, _ = await self.store.events_in_seq_range(
            EventFilter(tenant_id=tenant_id), first, first + width, width
        )
        bodies = dict(rows)
        if len(bodies) < width:
            absent = [seq for seq in range(first, first + width) if seq not in bodies]
            pruned = await self.store.tombstones_at(tenant_id, absent)
            if pruned:
                raise Gone(
                    f"entry bundle {index} holds {len(pruned)} event(s) that retention has"
                    f" pruned (first: seq {min(pruned)}); their leaf hashes stay in the tiles,"
                    " so every proof still verifies"
                )
        out = bytearray()
        for seq in range(first, first + width):
            body = bodies.get(seq)
            at = (seq - first) * HASH_SIZE
            # Served as immutable: never bytes the tree does not commit to (a storage
            # fault, not bad input, hence the 500).
            if body is None:
                raise TrailkeepError(
                    f"integrity fault: entry bundle {index}: no stored event has seq {seq}"
                )
            if leaf_hash(body) != found[at : at + HASH_SIZE]:
                raise TrailkeepError(
                    f"integrity fault: entry bundle {index}: the stored event of seq {seq}"
                    " does not hash to its leaf"
                )
            if len(body) > _MAX_ENTRY:
                raise Conflict(
                    f"entry bundle {index} cannot be served: the event of seq {seq} is"
                    f" {len(body)} bytes, beyond the {_MAX_ENTRY} an entry bundle can hold;"
                    " read it from GET /v1/events"
                )
            out += len(body).to_bytes(2, "big") + body
        return bytes(out)

    def key_json(self, tenant_id: str) -> dict[str, Any]:
        signer = self.key.signer_for(tenant_id)
        return {
            "origin": self.key.origin(tenant_id),
            "key_name": signer.name,
            "algorithm": "Ed25519",
            "vkey": signer.verifier.vkey,
            # Checkpoints signed before per-tenant keys (and their co-signatures).
            "legacy_vkey": self.key.legacy_vkey_for(tenant_id),
        }
