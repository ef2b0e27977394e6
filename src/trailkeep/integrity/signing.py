"""Signing checkpoints: a background task per process signs every tree that grew.

A tenant's new checkpoint is signed at most once per ``interval`` and within about one
interval of the tree growing. The tree is append-only in storage, so any two of its
heads are consistent; as a second line of defence the signer proves the new head
consistent with the tenant's latest checkpoint before signing, and refuses (logging an
integrity fault) if it is not, e.g. a tenant deleted and re-created under the same id,
or tampering with the database. So the service never signs two inconsistent
checkpoints, also across restarts and across processes sharing one database: each
process only signs what it reads from the shared store.
"""

from __future__ import annotations

import asyncio

import structlog

from trailkeep.errors import Unavailable
from trailkeep.integrity import proofs
from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.note import NoteError, open_note
from trailkeep.integrity.signed_heads import Head, SignedHeads
from trailkeep.integrity.signing_keys import LogKey
from trailkeep.kit import merkle
from trailkeep.kit.tiles import TreeStateError
from trailkeep.kit.timeutil import now_us
from trailkeep.store.models import CheckpointRecord
from trailkeep.store.protocol import Store

log = structlog.get_logger("trailkeep.integrity")

_TENANT_PAGE = 500


class IntegrityFault(RuntimeError):
    """The stored tree is not an extension of what was signed before: never sign it."""


async def _extends(
    store: Store, tenant_id: str, old: int, new: int, roots: tuple[bytes, bytes]
) -> bool:
    """Whether the tree of ``new`` leaves extends the signed tree of ``old`` leaves."""
    proof, _, _ = await store.read_tree(tenant_id, lambda v: proofs.consistency(v, old, new))
    return merkle.verify_consistency(old, new, roots[0], roots[1], proof)


async def _check_remembered(
    store: Store, tenant_id: str, head: Head, remembered: Head | None
) -> None:
    """Refuse a tree that is not an extension of the largest one this signer signed."""
    if remembered is None:
        return
    (size, root), (signed_size, signed_root) = head, remembered
    restored = (
        "; was an older backup of the database restored? docs/integrity.md, 'Restoring a"
        " backup', says how to resolve it"
    )
    if size < signed_size:
        raise IntegrityFault(
            f"tenant {tenant_id!r}: the tree has {size} leaves, fewer than the {signed_size}"
            f" this signer already signed{restored}"
        )
    if size == signed_size and root != signed_root:
        raise IntegrityFault(f"tenant {tenant_id!r}: the tree at size {size} changed{restored}")
    if size > signed_size and not await _extends(
        store, tenant_id, signed_size, size, (signed_root, root)
    ):
        raise IntegrityFault(
            f"tenant {tenant_id!r}: the tree at size {size} does not extend the one of"
            f" {signed_size} this signer signed{restored}"
        )


async def sign_if_grown(
    store: Store, key: LogKey, tenant_id: str, heads: SignedHeads | None = None
) -> CheckpointRecord | None:
    """Sign the tenant's current tree if it is larger than its latest checkpoint."""
    heads = heads or SignedHeads(None)
    # Read what was signed before the tree: the tree only grows, so a head read after it
    # smaller than it is a tree that shrank, never a race with another process signing.
    remembered = heads.get(tenant_id)
    head = await store.tree_head(tenant_id)
    latest = await store.latest_checkpoint(tenant_id)
    if head.size == 0 or (latest is not None and latest.size == head.size):
        if latest is not None and latest.root_hash != head.root_hash:
            raise IntegrityFault(f"tenant {tenant_id!r}: tree at size {head.size} changed")
        return None
    if latest is not None:
        if latest.size > head.size:
            raise IntegrityFault(
                f"tenant {tenant_id!r}: the tree has {head.size} leaves, fewer than the"
                f" {latest.size} of its latest checkpoint"
            )
        if not await _extends(
            store, tenant_id, latest.size, head.size, (latest.root_hash, head.root_hash)
        ):
            raise IntegrityFault(
                f"tenant {tenant_id!r}: the tree at size {head.size} does not extend the"
                f" checkpoint at size {latest.size}"
            )
    await _check_remembered(store, tenant_id, (head.size, head.root_hash), remembered)
    checkpoint = Checkpoint(key.origin(tenant_id), head.size, head.root_hash)
    signers = [key.signer_for(tenant_id)]
    if key.legacy_cosign and latest is not None and _signed_by(latest.note, key, tenant_id):
        signers.append(key.legacy_signer_for(tenant_id))  # its auditors keep verifying
    note = sign_checkpoint(checkpoint, *signers)
    record = CheckpointRecord(tenant_id, head.size, head.root_hash, note, now_us())
    await store.add_checkpoint(record)
    await asyncio.to_thread(heads.record, tenant_id, head.size, head.root_hash)  # an fsync
    return record


def _signed_by(note: str, key: LogKey, tenant_id: str) -> bool:
    """Whether ``note`` carries a valid signature of the tenant's legacy key."""
    try:
        open_note(note, [key.legacy_signer_for(tenant_id).verifier])
    except NoteError:
        return False
    return True


class CheckpointSigner:
    def __init__(
        self, store: Store, key: LogKey, interval_s: float, heads: SignedHeads | None = None
    ) -> None:
        self._store = store
        self._key = key
        self._interval = interval_s
        self._heads = heads or SignedHeads(None)
        self.faults: dict[str, str] = {}  # tenant -> why its tree is no longer signed

    async def _all_tenants(self) -> set[str]:
        found: set[str] = set()
        after = None
        while page := await self._store.list_tenants(after, _TENANT_PAGE):
            found.update(t.id for t in page)
            after = page[-1].id
        return found

    async def run(self) -> None:
        """Sign forever; on start, catch up on every tenant (a crash may have left some)."""
        pending: set[str] = set()
        started = False
        while True:
            try:
                if not started:
                    pending |= await self._all_tenants()
                    started = True
                pending |= self._store.take_grown_tenants()
                pending = await self.sign_pending(pending)
            except Unavailable as exc:
                log.warning("checkpoint signing waits for the database", error=str(exc))
            except Exception as exc:  # never let the signer die; the next round retries
                log.error("checkpoint signing failed", error=repr(exc))
            await asyncio.sleep(self._interval)

    async def sign_pending(self, tenants: set[str]) -> set[str]:
        """Sign each tenant once; returns those to retry next round.

        One tenant's failure never holds up the others. A tree that contradicts its
        checkpoint, or tiles that do not fit together, stop that tenant's signing until
        an operator looks (and restarts); anything else is retried.
        """
        retry: set[str] = set()
        for tenant_id in sorted(tenants):
            if tenant_id in self.faults:
                continue
            try:
                await sign_if_grown(self._store, self._key, tenant_id, self._heads)
            except Unavailable:
                retry.add(tenant_id)
            except (IntegrityFault, TreeStateError, merkle.NodeError) as exc:
                self.faults[tenant_id] = str(exc)
                log.error(
                    "integrity fault: checkpoint NOT signed", tenant=tenant_id, error=str(exc)
                )
            except Exception as exc:
                retry.add(tenant_id)
                log.error("checkpoint signing failed", tenant=tenant_id, error=repr(exc))
        return retry
