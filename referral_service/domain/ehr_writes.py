"""What the referring EHR did with a write: took it (``EhrWrite``, referenced by later writes) or refused it for good
(``Refusal``). Records the workflow keeps in its state and the activities return; no I/O here."""

from __future__ import annotations

from pydantic import BaseModel, Field

from referral_service.domain.referral import ResourceRef


class EhrWrite(BaseModel):
    """What one write left in the EHR: shown on the dashboard and referenced by later writes."""

    key: str
    resource_type: str
    id: str
    version: str | None = None
    created: bool = False

    def ref(self) -> ResourceRef:
        return ResourceRef(resource_type=self.resource_type, id=self.id)


class Refusal(BaseModel):
    """What an EHR said when it refused a write for good. No PHI: the status, the OperationOutcome's issue codes
    and ``describe_issue`` texts (severity, code, where, HAPI code), never the diagnostics, which can echo
    submitted values."""

    resource_type: str
    status: int | None  # None: the EHR's answer was not an HTTP error (e.g. a success naming no resource)
    summary: str  # the reason phrase, or what was wrong with the answer
    codes: list[str] = Field(default_factory=list)
    issues: list[str] = Field(default_factory=list)
    attempts: int = 1
