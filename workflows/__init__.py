"""Temporal workflows: deterministic orchestration of each referral (no I/O here)."""
