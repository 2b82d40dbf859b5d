"""Fixtures for the mail tier: an SMTP sink and a contacts database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.records import Recorder
from records.db import make_engine, migrate, sessions
from records.models import Contact
from smtp_sink import SmtpServer, free_port


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    engine = make_engine(f"sqlite:///{tmp_path}/records.db")
    migrate(engine)
    factory = sessions(engine)
    with factory.begin() as session:
        for contact_id, role, name, email in [
            ("carer-1", "parent", "Sam Carer", "sam@example.invalid"),
            ("carer-2", "parent", "Alex Carer", "alex@example.invalid"),
            ("ep-1", "specialist", "Dr Psych", "ep@example.invalid"),
            ("senco-1", "senco", "Ms Senco", "senco@school.invalid"),
            ("teacher-1", "class_teacher", "Mr Teacher", "teacher@school.invalid"),
        ]:
            session.add(Contact(contact_id=contact_id, role=role, display_name=name, email=email))
    return Recorder(factory)
