"""Engines: a connection the database dropped is never handed to a caller.

PostgreSQL only: a SQLite file is opened in-process, so there is no link to drop (and its
engine does not ping, records/db.py)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from records.db import make_engine


def test_a_connection_the_postgresql_server_dropped_is_replaced_before_use(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:  # back in the pool afterwards, idle
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin = create_engine(pg_url)
        try:
            with admin.begin() as conn:  # a server restart or a network peer closing the link
                ended = conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
                assert ended.scalar_one()
        finally:
            admin.dispose()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
