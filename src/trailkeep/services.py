"""The service objects of one running app, built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from trailkeep.auth.service import AuthService
from trailkeep.config import Settings
from trailkeep.events.service import EventService
from trailkeep.exports.service import ExportService
from trailkeep.integrity.service import IntegrityService
from trailkeep.privacy.service import PrivacyService
from trailkeep.privacy.subjects import SubjectService
from trailkeep.retention.service import RetentionService
from trailkeep.stats.service import StatsService
from trailkeep.store.protocol import Store
from trailkeep.tenants.service import TenantService


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    auth: AuthService
    tenants: TenantService
    events: EventService
    integrity: IntegrityService
    stats: StatsService
    privacy: PrivacyService
    subjects: SubjectService
    exports: ExportService
    retention: RetentionService


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
