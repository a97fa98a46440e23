"""Temporal activities: small idempotent units of I/O built on the EHR client and the mappings."""
