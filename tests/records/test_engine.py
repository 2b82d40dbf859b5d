"""Engines: a connection the database dropped is never handed to a caller."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, text


def test_a_connection_the_postgresql_server_dropped_is_replaced_before_use(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file is opened in-process: there is no connection to drop")
    with engine.connect() as conn:  # back in the pool afterwards, idle
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(engine.url)
    try:
        with admin.begin() as conn:  # a server restart or a network peer closing the link
            ended = conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            assert ended.scalar_one()
    finally:
        admin.dispose()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
