"""What an operator does with a campaign, shared by the API (/v1/campaigns) and the CLI
(``voicebot campaign``) so both apply the same rules and leave the same audit rows: create, the
control actions (start/pause/resume/stop), the summary with progress, the results rows (JSON or CSV).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from voicebot.errors import InputError, NotFoundError
from voicebot.outbound.campaign_config import CampaignDefinition
from voicebot.outbound.contacts import ContactImport, import_contacts
from voicebot.storage.audit import AuditRepository
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.records import CampaignRecord, CampaignStatus

ACTIONS = {
    "start": CampaignStatus.RUNNING,
    "pause": CampaignStatus.PAUSED,
    "resume": CampaignStatus.RUNNING,
    "stop": CampaignStatus.STOPPED,
}
FINAL = frozenset({CampaignStatus.STOPPED, CampaignStatus.COMPLETED})  # nothing moves a campaign on
RESULT_FIELDS = (
    "id", "phone", "name", "timezone", "status", "attempts", "outcome", "next_due_at", "line", "result",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Operations:
    """Campaign operations of one tenant; ``actor`` names who acts in the audit rows."""

    repo: CampaignRepository
    audit: AuditRepository
    tenant_id: str
    actor: str

    async def owned(self, campaign_id: str) -> CampaignRecord:
        """The campaign, if it is this tenant's (another tenant's is reported as not existing)."""
        record = await self.repo.get(campaign_id)
        if record.tenant_id != self.tenant_id:
            raise NotFoundError(f"campaign {campaign_id} does not exist")
        return record

    async def create(
        self,
        definition: CampaignDefinition,
        contacts_csv: str | bytes,
        *,
        name: str | None,
        region: str,
        timezone: str,
        now: datetime,
    ) -> tuple[CampaignRecord, ContactImport]:
        """A draft campaign from the valid rows of ``contacts_csv`` (InputError when none is valid)."""
        imported = import_contacts(contacts_csv, default_region=region.upper(), default_timezone=timezone)
        if not imported.contacts:
            raise InputError(
                "no valid contact in the contacts CSV: "
                + "; ".join(f"line {e.line}: {e.message}" for e in imported.errors[:5])
            )
        record = await self.repo.create(
            tenant_id=self.tenant_id,
            name=name or definition.name,
            kind=definition.kind.value,
            definition=definition.model_dump(mode="json"),
            contacts=imported.contacts,
            now=now,
        )
        await self._audit("campaign.created", now, campaign_id=record.id, contacts=len(imported.contacts))
        return record, imported

    async def control(self, campaign_id: str, action: str, now: datetime) -> CampaignRecord:
        """Apply ``action`` (start, pause, resume, stop): InputError for an unknown action or a resume
        of a campaign that is not paused, ConflictError for a move its status does not allow."""
        if action not in ACTIONS:
            raise InputError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
        record = await self.owned(campaign_id)
        # start and resume both lead to running; resume only makes sense after a pause
        if action == "resume" and record.status is not CampaignStatus.PAUSED:
            raise InputError(f"only a paused campaign can be resumed (this one is {record.status.value})")
        moved = await self.repo.set_status(campaign_id, ACTIONS[action], now)
        await self._audit(f"campaign.{action}", now, campaign_id=campaign_id, **{"from": record.status.value})
        return moved

    async def summary(self, record: CampaignRecord, *, definition: bool = False) -> dict[str, Any]:
        """The campaign as JSON with its contacts counted by status and by outcome."""
        progress = await self.repo.progress(record.id)
        data: dict[str, Any] = {
            "id": record.id,
            "name": record.name,
            "kind": record.kind,
            "status": record.status.value,
            "created_at": record.created_at.isoformat(),
            "updated_at": record.updated_at.isoformat(),
            "contacts": progress["status"],
            "outcomes": progress["outcomes"],
        }
        if definition:
            data["definition"] = record.definition
        return data

    async def results(self, campaign_id: str, *, limit: int = 1_000_000) -> list[dict[str, Any]]:
        """Every contact (up to ``limit``) with its attempts and outcome, in import order."""
        await self.owned(campaign_id)
        return [
            {
                "id": c.id,
                "phone": c.phone,
                "name": c.name,
                "timezone": c.timezone,
                "status": c.status.value,
                "attempts": c.attempts,
                "outcome": c.outcome,
                "next_due_at": c.next_due_at.isoformat() if c.next_due_at else None,
                "line": c.source_line,
                "result": c.result,
            }
            for c in await self.repo.contacts(campaign_id, limit=limit)
        ]

    async def attempts(
        self, campaign_id: str, *, contact_id: int | None = None, limit: int = 100_000
    ) -> list[dict[str, Any]]:
        """Every attempt (or one contact's): when it was due, planned, started, answered and ended,
        its outcome and why, the call's transcript and structured answers."""
        await self.owned(campaign_id)
        rows = []
        for a in await self.repo.attempts(campaign_id, contact_id=contact_id, limit=limit):
            row = asdict(a)
            for name, value in row.items():
                if isinstance(value, datetime):
                    row[name] = value.isoformat()
            rows.append(row)
        return rows

    async def _audit(self, action: str, now: datetime, **details: Any) -> None:
        await self.audit.record(
            tenant_id=self.tenant_id, actor=self.actor, action=action, now=now, details=details
        )


def results_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS)
    writer.writeheader()
    writer.writerows({**r, "result": json.dumps(r["result"]) if r.get("result") else ""} for r in rows)
    return buffer.getvalue()
