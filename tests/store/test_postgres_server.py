"""What the benches read off our PostgreSQL cluster (bench/cluster_costs.py): query rows through ``psql``, and
the CPU the server has used, its backends included (they are children of the postmaster in sessions of their
own, so counting the server's session alone would miss a live connection's work)."""

from __future__ import annotations

import psycopg

from referral_service.devstack.postgres_server import SUPERUSER, PostgresServer


def test_rows_are_lists_of_columns(postgres: PostgresServer) -> None:
    rows = postgres.rows("postgres", "SELECT n, n * 2 FROM generate_series(1, 3) AS n")

    assert rows == [["1", "2"], ["2", "4"], ["3", "6"]]
    assert postgres.has_database("postgres")
    assert not postgres.has_database("no_such_database")


def test_cpu_seconds_count_the_work_of_a_live_backend(postgres: PostgresServer) -> None:
    with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user={SUPERUSER} dbname=postgres") as connection:
        connection.execute("SELECT 1")
        before = postgres.process.cpu_seconds()
        connection.execute("SELECT count(*) FROM generate_series(1, 5000000)").fetchall()
        after = postgres.process.cpu_seconds()  # the backend is still running: not yet reaped into the server's

    assert after > before
