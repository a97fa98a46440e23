"""The FHIR R4 REST client for referring EHRs (layer 3 in ARCHITECTURE.md).

``FhirClient`` speaks FHIR's RESTful API over httpx for one ``SourceConfig``; failures are typed
``FhirError``s that say whether a retry can help.
"""

from referral_service.ehr.client import FhirClient, SearchParams
from referral_service.ehr.errors import (
    AuthError,
    ConflictError,
    FhirError,
    NotFoundError,
    PermanentError,
    TransientError,
    ValidationError,
    error_from_response,
)
from referral_service.ehr.responses import WriteResult
from referral_service.ehr.source import SourceConfig

__all__ = [
    "AuthError",
    "ConflictError",
    "FhirClient",
    "FhirError",
    "NotFoundError",
    "PermanentError",
    "SearchParams",
    "SourceConfig",
    "TransientError",
    "ValidationError",
    "WriteResult",
    "error_from_response",
]
