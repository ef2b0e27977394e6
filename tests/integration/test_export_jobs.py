"""Export jobs in the store, on both backends: a job is claimed by exactly one of many
concurrent claimants, one job per tenant runs at a time, a job whose lease ran out is
taken over (attempts + 1), only the holder may update it, and a cancelled job is lost
to its worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.test_privacy_store import _run
from trailkeep.store.models import ExportJobRecord
from trailkeep.store.protocol import Store

A, B = "acme", "other"


def _job(tenant: str, n: int) -> ExportJobRecord:
    return ExportJobRecord(tenant, f"exp_{n}", "queued", "{}", "key:t", created_at=1000 + n)


def test_each_job_goes_to_exactly_one_claimant(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        for n in range(6):
            assert await store.create_export_job(_job(A if n % 2 else B, n), 10)

        async def claimant(owner: str) -> list[str]:
            got = []
            for _ in range(6):
                job = await store.claim_export_job(owner, 2000, 10_000, [])
                if job is not None:
                    got.append(job.id)
            return got

        results = await asyncio.gather(*(claimant(f"w{i}") for i in range(4)))
        claimed = [job for got in results for job in got]
        assert len(claimed) == len(set(claimed))  # never twice
        # one job per tenant at a time: exactly one of A's and one of B's is running
        assert len(claimed) == 2
        assert {(await store.get_export_job(A if j in ("exp_1", "exp_3", "exp_5") else B, j))
                .tenant_id for j in claimed} == {A, B}  # fmt: skip

    _run(tmp_path, body)


def test_leases_updates_and_cancellation(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        assert await store.create_export_job(_job(A, 1), 10)
        assert await store.create_export_job(_job(B, 2), 10)
        job = await store.claim_export_job("w1", 2000, 3000, [])
        assert job is not None and job.state == "running" and job.attempts == 1
        assert await store.update_export_job(job.tenant_id, job.id, "w1", {"written": 5})
        assert not await store.update_export_job(job.tenant_id, job.id, "w2", {"written": 9})
        # the lease runs out (w1 crashed): w2 takes the job over and w1 has lost it
        again = await store.claim_export_job("w2", 3001, 9000, [])
        assert again is not None and again.id == job.id and again.attempts == 2
        assert again.written == 0 and again.lease_owner == "w2"
        assert not await store.update_export_job(job.tenant_id, job.id, "w1", {"written": 7})
        # cancelled: the holder's next report fails, the job stays cancelled
        assert await store.cancel_export_job(job.tenant_id, job.id, 3100) == "cancelled"
        assert not await store.update_export_job(job.tenant_id, job.id, "w2", {"written": 8})
        assert await store.cancel_export_job(job.tenant_id, job.id, 3200) == "cancelled"
        assert await store.cancel_export_job(A, "exp_missing", 3200) is None
        # the other tenant's job is untouched, and a tenant never sees another's
        other = [j for t in (A, B) for j in await store.list_export_jobs(t, None, 10)]
        assert {(j.tenant_id, j.id, j.state) for j in other} == {
            (job.tenant_id, job.id, "cancelled"),
            (B if job.tenant_id == A else A, "exp_2" if job.tenant_id == A else "exp_1", "queued"),
        }
        assert await store.get_export_job(B if job.tenant_id == A else A, job.id) is None
        # at most max_active queued or running per tenant
        assert await store.create_export_job(_job(A, 3), 2)
        assert not await store.create_export_job(_job(A, 4), 1 if job.tenant_id == A else 2)

    _run(tmp_path, body)
