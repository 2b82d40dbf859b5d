"""What the use cases need: settings, the database and a Temporal client (connected on first
use, so a front end starts, and answers "unreachable", while Temporal is down)."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client

from access.store import Authenticator
from archive.store import archive_reader
from audit.trail import HistoryArchive
from records.db import make_engine, sessions
from service.errors import Unreachable
from settings import Settings, connect


class Services:
    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        factory: sessionmaker[Session] | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._lock = asyncio.Lock()
        self.factory = factory or sessions(make_engine(settings.database_url))
        self.authenticator = Authenticator(self.factory)
        self._archive: list[HistoryArchive | None] = []

    def archive(self) -> HistoryArchive | None:
        """Closed runs' histories Temporal has deleted (opened on first use; None without one)."""
        if not self._archive:
            self._archive.append(
                archive_reader(self.settings.database_url, self.settings.archive_url)
            )
        return self._archive[0]

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await connect(self.settings)
                    except RuntimeError:
                        raise Unreachable("Temporal is unreachable") from None
        return self._client
