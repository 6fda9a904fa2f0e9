"""The PostgreSQL fixture gives a real, writable server that the HQ store can use."""

from __future__ import annotations

import psycopg


def test_postgres_fixture_serves_a_writable_database(postgres) -> None:
    with psycopg.connect(postgres.dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE probe (id uuid PRIMARY KEY)")
        cur.execute("INSERT INTO probe VALUES ('6f1c1f9e-8a53-4d55-9f8e-3f3f5c8f1a01')")
        cur.execute("INSERT INTO probe VALUES ('6f1c1f9e-8a53-4d55-9f8e-3f3f5c8f1a01') "
                    "ON CONFLICT DO NOTHING")
        cur.execute("SELECT count(*), current_setting('port') FROM probe")
        assert cur.fetchone() == (1, str(postgres.port))
