"""The pure domain of IOP step-down referrals: no I/O, no FHIR, no Temporal."""
