"""Engines, sessions and migrations for the read model (SQLite by default, PostgreSQL too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, schema: str | None = None) -> Engine:
    """``schema`` (PostgreSQL only) puts every table, and Alembic's own, in that schema."""
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect_args["timeout"] = 30
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    # pre_ping runs a SELECT 1 on every checkout: worth it where a peer can drop the
    # connection (PostgreSQL across a network, a server restart), waste on a SQLite file,
    # which is opened in-process and has no link to lose.
    engine = create_engine(
        url, connect_args=connect_args, pool_pre_ping=not url.startswith("sqlite")
    )
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # the worker writes while admins read
            cursor.close()

    return engine


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """`alembic upgrade head` against this engine (CLI: `senflow records migrate`)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade_all(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "base")
