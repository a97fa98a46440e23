"""Alembic's entry: migrations run on the connection ``database.migrate`` hands over (no alembic.ini), in
the transaction that holds its lock."""

from alembic import context
from sqlalchemy import Connection

connection: Connection = context.config.attributes["connection"]
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
