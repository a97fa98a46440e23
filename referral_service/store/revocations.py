"""Signed-out sessions, shared by every API process: a copied cookie stops working everywhere at sign-out.

Only a hash of the session id is kept, until the moment the cookie would have expired anyway; expired rows
are swept at each sign-out, so the table holds no more than the sessions still alive.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

from sqlalchemy import Engine, delete, exists, select

from referral_service.store.database import insert_into
from referral_service.store.tables import revoked_sessions


class SessionRevocations:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def revoke(self, session_id: str, until: int) -> None:
        await asyncio.to_thread(self._revoke, _hash(session_id), until)

    async def is_revoked(self, session_id: str) -> bool:
        return await asyncio.to_thread(self._is_revoked, _hash(session_id))

    def _revoke(self, session_hash: str, until: int) -> None:
        row = {"session_hash": session_hash, "expires_at": until}
        with self._engine.begin() as db:
            db.execute(delete(revoked_sessions).where(revoked_sessions.c.expires_at < int(time.time())))
            db.execute(insert_into(self._engine, revoked_sessions).values(row).on_conflict_do_nothing())

    def _is_revoked(self, session_hash: str) -> bool:
        with self._engine.connect() as db:
            return bool(db.scalar(select(exists().where(revoked_sessions.c.session_hash == session_hash))))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
