"""HTTP endpoints for data subjects: an access report, and erasure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from trailkeep.auth.principal import Permission, Principal
from trailkeep.events.schema import ActorIn, EventIn, TargetIn
from trailkeep.http.deps import CurrentPrincipal, ServicesDep, scoped_tenant
from trailkeep.http.error_models import ErrorBody
from trailkeep.http.responses import json_response
from trailkeep.privacy.docs_models import ErasureOut, SubjectReport
from trailkeep.privacy.subjects import ERASE_ACTION, Erasure

router = APIRouter(prefix="/v1/subjects", tags=["privacy"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 422, 503)
}
SubjectId = Annotated[str, Path(min_length=1, max_length=256, description="Data subject id")]
TenantParam = Annotated[str | None, Query(description="Platform admins only")]


@router.get(
    "/{subject_id}",
    response_model=SubjectReport,
    responses=_ERRORS,
    summary="What is held about a data subject",
)
async def get_subject(
    subject_id: SubjectId,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    return json_response(await svc.subjects.describe(principal, tenant, subject_id))


def _erasure_event(principal: Principal, tenant_id: str, erasure: Erasure) -> EventIn:
    actor = ActorIn(id=principal.subject, type="api_key" if principal.key_id else "user")
    return EventIn(
        action=ERASE_ACTION,
        actor=actor,
        tenant_id=tenant_id,
        targets=[TargetIn(type="data_subject", id=erasure.subject_id)],
        severity="NOTICE",
        message="a data subject's personal data was erased (its data key destroyed)",
        metadata={
            "events_affected": erasure.events_affected,
            "keys_erased": erasure.keys_erased,
            "counted_through_seq": erasure.counted_through_seq,
        },
    )


@router.post(
    "/{subject_id}/erase",
    response_model=ErasureOut,
    responses=_ERRORS,
    summary="Erase a data subject (crypto-shredding; every proof stays valid)",
    description=(
        "Destroys the subject's data key: its sealed fields read `[erased]` everywhere"
        " from now on; the events, their leaves and every proof are unchanged. The"
        " erasure is recorded as an event in the tenant's log. Erasing again answers"
        " 200 with `already_erased: true`; a subject never seen is a 404."
    ),
)
async def erase_subject(
    subject_id: SubjectId,
    principal: CurrentPrincipal,
    svc: ServicesDep,
    tenant_id: TenantParam = None,
) -> Response:
    tenant = await scoped_tenant(principal, svc, tenant_id, Permission.READ)
    erasure = await svc.subjects.erase(principal, tenant, subject_id)
    answer = erasure.as_json()
    if not erasure.already_erased:
        event = _erasure_event(principal, tenant, erasure)
        result, _ = await svc.events.ingest_one(event, principal)
        answer["event_seq"] = result.seq
    return json_response(answer)
