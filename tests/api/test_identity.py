"""Whose journey is it: a setting's pupil reference, a journey's own id, and users.

Two schools each have a pupil they call ``p1``; each sees its own, and a third school is told
exactly what it is told about a journey that does not exist. A refused action is checked
twice: the answer the caller gets, and that the journey's history did not grow."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import Client

from apistack import IEP, Stack, key_ring
from domain.commands import PupilJourneyInput, StartJourneyInput
from domain.model import Actor, Role
from service import temporal
from settings import Settings
from workflows.pupil_journey import PupilJourney

NOWHERE = "journey-" + "0" * 32  # no journey has this id
NO_JOURNEY = (404, {"detail": "no such journey"})
NO_USER = (404, {"detail": "no such user"})


async def call(
    stack: Stack, user: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    r = await stack.http.request(method, path, json=body, headers=stack.auth(user))
    return r.status_code, r.json()


async def settled(stack: Stack, journey_id: str) -> int:
    """The journey's event count once its letters are sent and nothing more is appended."""
    await stack.until_letters_sent(journey_id)
    count = await stack.events(journey_id)
    for _ in range(100):
        await asyncio.sleep(0.2)
        again = await stack.events(journey_id)
        if again == count:
            return count
        count = again
    raise AssertionError("the journey's history kept growing")


async def timeline(stack: Stack, journey_id: str) -> list[dict[str, Any]]:
    status, entries = await call(stack, "senco-s1", "GET", f"/v1/journeys/{journey_id}/timeline")
    assert status == 200, entries
    assert isinstance(entries, list)
    return entries


async def listed(stack: Stack, user: str, want: str | None = None) -> dict[str, Any]:
    """The caller's listing by journey id (waiting, when ``want`` is given, for visibility
    to show that journey)."""
    rows: dict[str, Any] = {}
    for _ in range(100):
        status, body = await call(stack, user, "GET", "/v1/journeys?include_closed=true")
        assert status == 200, body
        rows = {row["journey_id"]: row for row in body}
        if want is None or want in rows:
            break
        await asyncio.sleep(0.1)
    return rows


async def two_p1s(stack: Stack) -> tuple[str, str]:
    """School s1's p1 and school s2's p1."""
    a = await stack.start("p1", user="senco-s1", school="s1", senco="senco-s1")
    b = await stack.start("p1", user="senco-s2", school="s2", senco="senco-s2")
    assert a != b
    return a, b


async def test_two_schools_each_see_only_their_own_p1(stack: Stack) -> None:
    a, b = await two_p1s(stack)
    for user, mine, theirs, school in (("senco-s1", a, b, "s1"), ("senco-s2", b, a, "s2")):
        status, view = await call(stack, user, "GET", f"/v1/journeys/{mine}")
        assert status == 200, view
        assert (view["journey_id"], view["pupil_id"], view["school_id"]) == (mine, "p1", school)
        status, found = await call(stack, user, "GET", "/v1/pupils/p1")
        assert status == 200, found
        assert (found["journey_id"], found["school_id"]) == (mine, school)
        status, found = await call(stack, user, "GET", f"/v1/pupils/p1?school={school}")
        assert (status, found["journey_id"]) == (200, mine)
        # the other school's p1, by its id, its timeline or the other school's name
        other = "s2" if school == "s1" else "s1"
        for path in (
            f"/v1/journeys/{theirs}",
            f"/v1/journeys/{theirs}/timeline",
            f"/v1/pupils/p1?school={other}",
        ):
            assert await call(stack, user, "GET", path) == NO_JOURNEY, (user, path)
        rows = await listed(stack, user, want=mine)
        assert theirs not in rows
        assert [j for j, row in rows.items() if row["pupil"] == "p1"] == [mine]
        assert (rows[mine]["school"], rows[mine]["status"]) == (school, "running")


async def test_a_third_school_is_answered_as_for_a_journey_that_does_not_exist(
    stack: Stack,
) -> None:
    a, b = await two_p1s(stack)
    before = {j: await settled(stack, j) for j in (a, b)}
    reads = [
        f"/v1/journeys/{NOWHERE}",
        f"/v1/journeys/{a}",
        f"/v1/journeys/{b}",
        f"/v1/journeys/{NOWHERE}/timeline",
        f"/v1/journeys/{a}/timeline",
        f"/v1/journeys/{b}/timeline",
        "/v1/pupils/nobody",
        "/v1/pupils/p1",  # senco-s3 acts for s3 alone: s3's p1, which does not exist
        "/v1/pupils/nobody?school=s1",
        "/v1/pupils/p1?school=s1",
        "/v1/pupils/p1?school=s2",
    ]
    answers = {path: await call(stack, "senco-s3", "GET", path) for path in reads}
    assert answers == dict.fromkeys(reads, NO_JOURNEY)
    note = {"note": "not my pupil"}
    writes = {
        j: await call(stack, "senco-s3", "POST", f"/v1/journeys/{j}/notes", note)
        for j in (NOWHERE, a, b)
    }
    assert writes == dict.fromkeys((NOWHERE, a, b), NO_JOURNEY)
    assert {j: await stack.events(j) for j in (a, b)} == before


async def test_starting_p1_again_while_it_is_open_is_refused(stack: Stack) -> None:
    first = await stack.start("p1")
    before, entries = await settled(stack, first), await timeline(stack, first)
    body = {
        "pupil_id": "p1",
        "school_id": "s1",
        "senco_id": "senco-s1",
        "parent_ids": ["carer-1"],
        "concern": "a second concern",
    }
    for user in ("teacher-s1", "senco-s1"):
        status, refused = await call(stack, user, "POST", "/v1/journeys", body)
        assert status == 409, refused
        assert "already has an open journey" in refused["detail"]
    assert await stack.events(first) == before
    assert await timeline(stack, first) == entries
    status, found = await call(stack, "senco-s1", "GET", "/v1/pupils/p1")
    assert (status, found["journey_id"]) == (200, first)
    rows = await listed(stack, "senco-s1", want=first)
    assert [j for j, row in rows.items() if row["pupil"] == "p1"] == [first]
    # Another school's p1 is another pupil: it starts.
    await stack.start("p1", user="senco-s2", school="s2", senco="senco-s2")


async def test_after_closing_p1_the_school_starts_another_and_still_reads_the_first(
    stack: Stack,
) -> None:
    first = await stack.start("p1")
    status, done = await call(
        stack,
        "senco-s1",
        "POST",
        f"/v1/journeys/{first}/closure",
        {"close_reason": "left_school", "reason": "moved out of the area"},
    )
    assert (status, done["stage"]) == (200, "closed"), done
    # The journey sends its letters, then its workflow ends.
    await asyncio.wait_for(stack.client.get_workflow_handle(first).result(), 60)

    second = await stack.start("p1")
    assert second != first
    status, old = await call(stack, "senco-s1", "GET", f"/v1/journeys/{first}")
    assert status == 200, old
    assert (old["journey_id"], old["pupil_id"], old["stage"]) == (first, "p1", "closed")
    assert (old["close_reason"], old["closed_at"] is not None) == ("left_school", True)
    assert any(e["kind"] == "started" for e in await timeline(stack, first))
    status, new = await call(stack, "senco-s1", "GET", f"/v1/journeys/{second}")
    assert (status, new["stage"], new["closed_at"]) == (200, "monitoring", None)
    status, found = await call(stack, "senco-s1", "GET", "/v1/pupils/p1")
    assert (status, found["journey_id"]) == (200, second)  # the open one
    rows = await listed(stack, "senco-s1", want=second)
    assert rows[second]["status"] == "running" and rows[second]["pupil"] == "p1"
    rows = await listed(stack, "senco-s1", want=first)
    assert rows[first]["status"] == "completed" and rows[first]["pupil"] == "p1"
    # Starting a third while the second is open is refused, as ever.
    status, refused = await call(
        stack,
        "senco-s1",
        "POST",
        "/v1/journeys",
        {"pupil_id": "p1", "school_id": "s1", "senco_id": "senco-s1",
         "parent_ids": ["carer-1"], "concern": "again"},
    )  # fmt: skip
    assert status == 409, refused


async def test_refused_actions_leave_the_journey_as_it_was(stack: Stack) -> None:
    a, _ = await two_p1s(stack)
    status, done = await call(
        stack,
        "senco-s1",
        "POST",
        f"/v1/journeys/{a}/school-action",
        {"triggers": ["SA-LITERACY-MATHS"], "evidence": "reading age behind", "iep": IEP},
    )
    assert status == 200, done
    before, entries = await settled(stack, a), await timeline(stack, a)
    state = await stack.state(a)
    decision = {"triggers": ["AP-LITERACY-MATHS"], "evidence": "no progress", "iep": IEP}
    refusals = [
        # another school's SENCO: not theirs to find
        ("senco-s2", "notes", {"note": "not my pupil"}, NO_JOURNEY),
        ("senco-s2", "escalation", decision, NO_JOURNEY),
        ("senco-s2", "closure", {"close_reason": "needs_met", "reason": "x"}, NO_JOURNEY),
        ("la-s2", "ehc/pause", {"reason": "child_absent"}, NO_JOURNEY),
        # the school's own class teacher: not a teacher's decision (by role)
        ("teacher-s1", "escalation", decision, (403, None)),
    ]
    for user, action, body, expected in refusals:
        status, answer = await call(stack, user, "POST", f"/v1/journeys/{a}/{action}", body)
        if expected[1] is None:
            assert status == expected[0] and "may not" in answer["detail"], answer
        else:
            assert (status, answer) == expected, (user, action)
    assert await stack.events(a) == before
    assert await timeline(stack, a) == entries
    after = await stack.state(a)
    assert (after.step, after.stage, len(after.timeline)) == (
        state.step,
        state.stage,
        len(state.timeline),
    )


async def test_a_revoked_token_is_refused_at_once(stack: Stack) -> None:
    user = f"u{uuid.uuid4().hex[:8]}"
    status, issued = await call(
        stack,
        "admin-la1",
        "POST",
        "/v1/users",
        {"user_id": user, "role": "senco", "schools": ["s1"], "email": f"{user}@school.example"},
    )
    assert status == 201, issued
    token = {"Authorization": f"Bearer {issued['token']}"}
    r = await stack.http.get("/v1/me", headers=token)
    assert r.status_code == 200
    assert (r.json()["actor_id"], r.json()["role"], r.json()["schools"]) == (user, "senco", ["s1"])
    assert (await stack.http.get("/v1/journeys", headers=token)).status_code == 200

    status, revoked = await call(stack, "admin-la1", "POST", f"/v1/users/{user}/revocation")
    assert (status, revoked) == (200, {"user_id": user, "tokens_revoked": 1})
    for path in ("/v1/me", "/v1/journeys", f"/v1/journeys/{NOWHERE}"):
        r = await stack.http.get(path, headers=token)
        assert (r.status_code, r.json()) == (401, {"detail": "a valid bearer token is needed"})
        assert r.headers["www-authenticate"] == "Bearer"
    status, users = await call(stack, "admin-la1", "GET", "/v1/users")
    [row] = [row for row in users if row["user"] == user]
    assert row["revoked"] is not None and row["tokens"] == "-"
    # A revoked user gets no new token either.
    status, refused = await call(stack, "admin-la1", "POST", f"/v1/users/{user}/tokens")
    assert status == 409, refused
    assert (await stack.http.get("/v1/me", headers=token)).status_code == 401


async def test_an_admin_adds_users_to_their_own_settings_only(stack: Stack) -> None:
    user = f"u{uuid.uuid4().hex[:8]}"
    body = {"user_id": user, "role": "senco", "schools": ["s2"]}
    for schools in (["s2"], ["s1", "s2"]):
        status, refused = await call(
            stack, "admin-la1", "POST", "/v1/users", body | {"schools": schools}
        )
        assert (status, refused) == (403, {"detail": "you may add users only to your own settings"})
    # Nothing was written: s2's admin does not see them, and the id is still free.
    status, users = await call(stack, "admin-la2", "GET", "/v1/users")
    assert status == 200 and user not in {row["user"] for row in users}
    status, users = await call(stack, "admin-la1", "GET", "/v1/users")
    assert status == 200 and user not in {row["user"] for row in users}

    status, issued = await call(stack, "admin-la1", "POST", "/v1/users", body | {"schools": ["s1"]})
    assert status == 201, issued
    assert issued["user_id"] == user and issued["token"].startswith("sf.")
    stack.tokens[user] = issued["token"]
    status, me = await call(stack, user, "GET", "/v1/me")
    assert (status, me["actor_id"], me["role"], me["schools"]) == (200, user, "senco", ["s1"])
    journey = await stack.start(f"n{uuid.uuid4().hex[:8]}", user=user, senco=user)
    status, view = await call(stack, user, "GET", f"/v1/journeys/{journey}")
    assert (status, view["senco_id"]) == (200, user)
    assert await call(stack, user, "GET", f"/v1/journeys/{NOWHERE}") == NO_JOURNEY
    status, users = await call(stack, "admin-la1", "GET", "/v1/users")
    assert user in {row["user"] for row in users}
    status, users = await call(stack, "admin-la2", "GET", "/v1/users")
    assert user not in {row["user"] for row in users}


async def test_an_admin_cannot_revoke_or_reissue_another_authoritys_user(stack: Stack) -> None:
    for action in ("revocation", "tokens"):
        theirs = await call(stack, "admin-la2", "POST", f"/v1/users/senco-s1/{action}")
        missing = await call(stack, "admin-la2", "POST", f"/v1/users/nobody-here/{action}")
        assert theirs == missing == NO_USER, action
    status, me = await call(stack, "senco-s1", "GET", "/v1/me")
    assert (status, me["actor_id"]) == (200, "senco-s1")  # still signed in
    status, users = await call(stack, "admin-la1", "GET", "/v1/users")
    [row] = [row for row in users if row["user"] == "senco-s1"]
    assert row["revoked"] is None and row["tokens"] != "-"
    status, users = await call(stack, "admin-la2", "GET", "/v1/users")
    assert "senco-s1" not in {row["user"] for row in users}


async def test_an_auditor_reads_only_their_settings_and_never_decrypts_anothers(
    stack: Stack,
) -> None:
    mine, _ = await two_p1s(stack)
    # Another authority's journey, sealed with keys this server does not hold (on a task
    # queue no worker polls: only its start is in its history).
    elsewhere = f"s9-{uuid.uuid4().hex[:6]}"
    sealed_id = temporal.new_journey_id()
    config = stack.env.client.config()
    config["data_converter"] = Settings(payload_keys=key_ring("k9")).data_converter()
    foreign = Client(**config)
    cmd = StartJourneyInput(
        "p1", elsewhere, "senco-s9", ["carer-9"], Actor("senco-s9", Role.SENCO), "concern"
    )
    sealed = await foreign.start_workflow(
        PupilJourney.run,
        PupilJourneyInput(start=cmd),
        id=sealed_id,
        task_queue=f"tq-nobody-{uuid.uuid4()}",
        search_attributes=temporal.initial_search_attributes(cmd),
    )
    try:
        await settled(stack, mine)
        r = await stack.http.get("/v1/audit", headers=stack.auth("auditor-s1"))
        assert r.status_code == 200, r.text
        rows = {row["journey_id"]: row for row in r.json()}
        assert (rows[mine]["pupil"], rows[mine]["school"]) == ("p1", "s1")
        assert {row["school"] for row in rows.values()} == {"s1"}
        assert sealed_id not in rows
        for path in ("history", "export"):
            answer = await call(stack, "auditor-s1", "GET", f"/v1/journeys/{sealed_id}/{path}")
            assert answer == await call(
                stack, "auditor-s1", "GET", f"/v1/journeys/{NOWHERE}/{path}"
            )
            assert answer == NO_JOURNEY
        status, record = await call(stack, "auditor-s1", "GET", f"/v1/journeys/{mine}/history")
        assert status == 200, record
    finally:
        await sealed.terminate("test finished")
