"""An SMTP outage loses nothing and duplicates nothing (dev server, real SMTP sink)."""

from __future__ import annotations

import asyncio
import uuid

from activities.mail import SmtpSettings
from domain.commands import OpenSchoolActionInput, RecordNoteInput
from domain.model import Trigger
from journeys import PARENTS, SENCO, iep, new_pupil, start_cmd, state_of
from records.db import make_engine, migrate, sessions
from records.models import Contact
from service import temporal
from settings import Settings
from smtp_sink import SmtpServer, free_port
from worker import build_worker
from workflows.pupil_journey import PupilJourney, workflow_id


async def test_letters_wait_for_the_mail_server_and_arrive_once(dev_env, tmp_path) -> None:
    server = SmtpServer(free_port())  # not started yet: the mail server is down
    settings = Settings(
        task_queue=f"tq-{uuid.uuid4()}",
        outbox_dir=tmp_path / "outbox",
        database_url=f"sqlite:///{tmp_path}/records.db",
        auto_migrate=True,
        smtp=SmtpSettings(host="127.0.0.1", port=server.port, starttls=False, timeout=3),
    )
    engine = make_engine(settings.database_url)
    migrate(engine)
    with sessions(engine).begin() as session:
        for parent in PARENTS:
            session.add(
                Contact(
                    contact_id=parent,
                    role="parent",
                    display_name=parent,
                    email=f"{parent}@home.invalid",
                )
            )
    pupil = new_pupil()
    try:
        async with build_worker(dev_env.client, settings):
            await temporal.start(dev_env.client, settings, start_cmd(pupil), workflow_id(pupil))
            await temporal.execute(
                dev_env.client,
                workflow_id(pupil),
                PupilJourney.open_school_action,
                OpenSchoolActionInput(SENCO, [Trigger.SA_PROGRESS], "little progress", iep()),
            )
            handle = dev_env.client.get_workflow_handle(workflow_id(pupil))
            # the first letter's activity retries with backoff while the server is down
            attempts = 0
            for _ in range(100):
                pending = (await handle.describe()).raw_description.pending_activities
                attempts = max([p.attempt for p in pending] or [0])
                if attempts >= 3:
                    break
                await asyncio.sleep(0.2)
            assert attempts >= 3
            # ... and school actions are still accepted meanwhile
            await temporal.execute(
                dev_env.client,
                workflow_id(pupil),
                PupilJourney.record_note,
                RecordNoteInput(SENCO, "parents phoned; letter to follow"),
            )

            server.start()
            for _ in range(200):
                if not (await state_of(dev_env.client, pupil)).outbox:
                    break
                await asyncio.sleep(0.1)
            state = await state_of(dev_env.client, pupil)
            assert not state.outbox
            await handle.terminate("test finished")
    finally:
        server.stop()
    recipients = sorted(r for rcpts, _ in server.sink.messages for r in rcpts)
    assert recipients == sorted(f"{p}@home.invalid" for p in PARENTS)  # once each
