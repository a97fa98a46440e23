"""The service database: what neither Temporal nor the EHR holds (ARCHITECTURE.md).

The audit trail and the sign-out revocations, and whatever else API and worker processes must share. SQLite in
the state folder for the embedded stack, PostgreSQL when deployed: one code path through SQLAlchemy, its
schema kept by the migrations under ``migrations/``. No plaintext PHI goes in.
"""
