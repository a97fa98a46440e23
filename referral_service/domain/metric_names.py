"""The service's own Prometheus metrics (name, description): labels are codes and source ids, never patient
data. Workflows and activities record them through the Temporal SDK's meters, the API through its client's
runtime, so one ``/metrics`` endpoint per process serves them beside the SDK's worker metrics."""

from __future__ import annotations

PHASE_ENTERED = ("iop_referrals_entered_phase", "Referrals that entered a phase (received, accepted, ...), by source")
DEADLINE_ESCALATIONS = ("iop_deadline_escalations", "Deadlines that passed unmet (response, first session), by source")
EHR_WRITES = ("iop_ehr_writes", "Writes to referring EHRs, by source, resource type and outcome")
EHR_WRITES_REFUSED = (
    "iop_ehr_writes_refused",
    "Writes a referring EHR refused for good (recorded on the referral, which is flagged and goes on), by source and "
    "resource type",
)
INTAKE_LATENCY = ("iop_intake_latency_seconds", "Seconds from a referral's arrival to its acknowledgement, by channel")
AUDIT_WRITE_FAILURES = ("iop_audit_write_failures", "Audit records the audit database did not take (kept in the logs)")
