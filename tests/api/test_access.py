"""Every role against every endpoint: who may, who may not, and that a refusal by the rules
is still a 409 for those who may. Plus the status codes a caller relies on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from access import store
from api.app import create_app
from apistack import IEP, Stack, journey_at_action_plus
from domain.model import Role
from records.db import make_engine, sessions
from service.reports import Report
from settings import Settings

S1_READERS = {"senco-s1", "teacher-s1", "admin-la1", "auditor-s1", "la-s1"}
#: Who may read journeys, but not school s1's: s1's journeys are not theirs to find.
S2_READERS = {"senco-s2", "admin-la2", "auditor-s2", "la-s2"}
PARENTS = {"parent", "parent-other", "parent-elsewhere"}
ANYONE = S1_READERS | S2_READERS | PARENTS | {"ep-1", "ep-2"}
AUDITORS = {"auditor-s1", "auditor-s2"}
ADMINS = {"admin-la1", "admin-la2"}
REPORTERS = ADMINS | {"la-s1", "la-s2"}
SENCO, STAFF, LA = {"senco-s1"}, {"senco-s1", "teacher-s1"}, {"la-s1"}
#: A journey id no journey has.
MISSING = {"journey_id": "journey-" + "0" * 32, "reference": "nobody", "user": "nobody-here"}

Row = tuple[str, str, Any, set[str], set[str]]


def matrix() -> list[Row]:
    """(method, path, body, who may, who finds nothing) for a journey of school s1; every
    other signed-in caller is refused by role (403). Bodies for school actions are ones the
    journey's rules refuse (empty evidence, no triggers), so the matrix changes nothing:
    those allowed get the rules' 409. Those who may do this to *some* journey but cannot
    reach this one get a 404 exactly as for a journey that does not exist."""
    act = "/v1/journeys/{journey_id}"
    return [
        ("GET", "/v1/me", None, ANYONE, set()),
        ("GET", "/v1/journeys", None, S1_READERS | S2_READERS, set()),
        ("POST", "/v1/journeys", "start", STAFF, set()),
        # admin-la1 acts for s1 and s3: without ?school the rules ask which (409)
        ("GET", "/v1/pupils/{reference}", None, S1_READERS, S2_READERS),
        ("GET", "/v1/pupils/{reference}?school=s1", None, S1_READERS, S2_READERS),
        # only the journey id: a specialist finds the pupils referred to them (naming the
        # setting, else the rules ask which: 409), and nothing else
        ("GET", "/v1/pupils/{reference}/journey", None, S1_READERS | {"ep-1", "ep-2"},
         S2_READERS),
        ("GET", "/v1/pupils/{reference}/journey?school=s1", None, S1_READERS | {"ep-1"},
         S2_READERS | {"ep-2"}),
        ("GET", act, None, S1_READERS, S2_READERS),
        ("GET", f"{act}/timeline", None, S1_READERS, S2_READERS),
        ("POST", f"{act}/school-action", {"triggers": [], "iep": IEP}, SENCO, {"senco-s2"}),
        ("POST", f"{act}/notes", {"note": " "}, STAFF, {"senco-s2"}),
        ("POST", f"{act}/reviews", {"outcome": "continue"}, STAFF, {"senco-s2"}),
        ("POST", f"{act}/escalation", {"triggers": [], "iep": IEP}, SENCO, {"senco-s2"}),
        ("POST", f"{act}/referrals", {"kind": "camhs", "specialist_id": "x", "question": " "},
         SENCO, {"senco-s2"}),
        ("POST", f"{act}/statutory-assessment-request", {"evidence": ""}, SENCO, {"senco-s2"}),
        ("POST", f"{act}/step-down", {"reason": ""}, SENCO, {"senco-s2"}),
        ("POST", f"{act}/closure", {"close_reason": "needs_met", "reason": ""}, SENCO,
         {"senco-s2"}),
        # ep-2 has no referral on this journey; parent-other's code is for an earlier
        # consultation of this journey (403), parent-elsewhere's for another journey (404)
        ("POST", f"{act}/referrals/{{referral_id}}/assessment",
         {"summary": "phonological difficulty", "recommendations": ["structured literacy"]},
         {"ep-1"}, {"ep-2"}),
        ("POST", f"{act}/consultations/{{consultation_id}}/response", {"reply": "agree"},
         {"parent"}, {"parent-elsewhere"}),
        ("GET", "/v1/referrals", None, {"ep-1", "ep-2"}, set()),
        ("GET", f"{act}/history", None, {"auditor-s1"}, {"auditor-s2"}),
        ("GET", f"{act}/history?format=html", None, {"auditor-s1"}, {"auditor-s2"}),
        ("GET", f"{act}/export", None, {"auditor-s1"}, {"auditor-s2"}),
        ("GET", "/v1/audit", None, AUDITORS, set()),
        *[("GET", f"/v1/reports/{name.value}", None, REPORTERS, set()) for name in Report],
        # the 2014 Code (this journey follows code_2001, so the allowed get the rules' 409)
        ("POST", f"{act}/sen-support", {"primary_need": "SPLD", "evidence": "", "plan": IEP},
         SENCO, {"senco-s2"}),
        ("POST", f"{act}/ehc-assessment-request", {"local_authority_id": "la-1", "evidence": ""},
         SENCO, {"senco-s2"}),
        ("POST", f"{act}/ehc/decision", {"assess": True, "reason": ""}, LA, {"la-s2"}),
        ("POST", f"{act}/ehc/advice", {"adviser_id": "ep-1", "kind": "health"}, LA, {"la-s2"}),
        ("POST", f"{act}/ehc/advice/advice-1/received", None, LA, {"la-s2"}),
        ("POST", f"{act}/ehc/draft", {"issue": False, "reason": ""}, LA, {"la-s2"}),
        ("POST", f"{act}/ehc/final", {"reason": ""}, LA, {"la-s2"}),
        ("POST", f"{act}/ehc/pause", {"reason": "child_absent"}, LA, {"la-s2"}),
        ("POST", f"{act}/ehc/resume", None, LA, {"la-s2"}),
        ("POST", "/v1/migrations", {"to": "code_2014", "schools": ["s1"], "dry_run": True},
         {"admin-la1"}, set()),
        ("POST", "/codec/decode", {"payloads": []}, AUDITORS, set()),
        ("POST", "/codec/encode", {"payloads": []}, AUDITORS, set()),
        # users: an admin's, of their own settings (admin-la2 may not add to s1: 403)
        ("GET", "/v1/users", None, ADMINS, set()),
        ("POST", "/v1/users", "user", {"admin-la1"}, set()),
        ("POST", "/v1/users/{user}/tokens", None, {"admin-la1"}, {"admin-la2"}),
        ("POST", "/v1/users/{user}/revocation", None, {"admin-la1"}, {"admin-la2"}),
    ]  # fmt: skip


def template(path: str) -> str:
    """The route a matrix path exercises, as the OpenAPI document names it."""
    path = path.split("?")[0]
    for name, value in (("reference", "{reference}"), ("user", "{user_id}")):
        path = path.replace(f"{{{name}}}", value)
    path = path.replace("/advice/advice-1/", "/advice/{advice_id}/")
    return "/v1/reports/{name}" if path.startswith("/v1/reports/") else path


async def test_every_role_against_every_endpoint(stack: Stack) -> None:
    h = stack.http
    pupil = f"m{uuid.uuid4().hex[:8]}"
    journey = await journey_at_action_plus(stack, pupil)
    await stack.until_letters_sent(journey.journey_id)
    state = await stack.state(journey.journey_id)
    first, latest = state.consultations[0].consultation_id, state.consultations[-1].consultation_id
    stack.tokens["parent"] = stack.reply_code(journey.journey_id, latest, "carer-1")
    stack.tokens["parent-other"] = stack.reply_code(journey.journey_id, first, "carer-2")
    # A parent of another journey, with the code from its letter.
    elsewhere = await journey_at_action_plus(stack, f"e{uuid.uuid4().hex[:8]}")
    await stack.until_letters_sent(elsewhere.journey_id)
    other = (await stack.state(elsewhere.journey_id)).consultations[-1].consultation_id
    stack.tokens["parent-elsewhere"] = stack.reply_code(elsewhere.journey_id, other, "carer-1")
    # A user of school s1 for the user-management rows.
    user = f"u{uuid.uuid4().hex[:8]}"
    r = await h.post(
        "/v1/users",
        json={"user_id": user, "role": "class_teacher", "schools": ["s1"]},
        headers=stack.auth("admin-la1"),
    )
    assert r.status_code == 201, r.text
    fill = {
        "journey_id": journey.journey_id,
        "reference": pupil,
        "referral_id": journey.referral_id,
        "consultation_id": latest,
        "user": user,
    }

    # Every operation of the API is in the matrix.
    paths = (await h.get("/openapi.json")).json()["paths"]
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert documented == {(m, template(p)) for m, p, *_ in matrix()}

    seen: list[tuple[str, str, str, int]] = []
    for method, path, body, allowed, hidden in matrix():
        assert not allowed & hidden and (allowed | hidden) <= ANYONE, path
        url = path.format(**fill)
        for who in sorted(ANYONE) + ["nobody"]:
            if body == "start":
                payload: Any = {
                    "pupil_id": f"m{uuid.uuid4().hex[:8]}",
                    "school_id": "s1",
                    "senco_id": "senco-s1",
                    "parent_ids": ["carer-1"],
                    "concern": "matrix",
                }
            elif body == "user":
                payload = {
                    "user_id": f"u{uuid.uuid4().hex[:8]}",
                    "role": "class_teacher",
                    "schools": ["s1"],
                }
            else:
                payload = body
            headers = stack.auth(who) if who != "nobody" else {}
            r = await h.request(method, url, json=payload, headers=headers)
            if body == "start" and r.status_code == 201:
                stack.started.append(r.json()["journey_id"])
            seen.append((method, path, who, r.status_code))
            if who == "nobody":
                assert r.status_code == 401, (method, url, r.text)
            elif who in allowed:
                assert r.status_code not in (401, 403, 404) and r.status_code < 500, (
                    method, url, who, r.status_code, r.text,
                )  # fmt: skip
            elif who in hidden:
                # not theirs: the very answer a journey (or user) that does not exist gets
                assert r.status_code == 404, (method, url, who, r.status_code, r.text)
                gone = await h.request(
                    method, path.format(**(fill | MISSING)), json=payload, headers=headers
                )
                assert (gone.status_code, gone.json()) == (404, r.json()), (url, who, gone.text)
            else:
                assert r.status_code == 403, (method, url, who, r.status_code, r.text)
    # The allowed school actions were refused by the journey's rules, with its reason.
    refused = [s for m, p, w, s in seen if p.endswith("/closure") and w == "senco-s1"]
    assert refused == [409]
    under_2001 = [s for m, p, w, s in seen if p.endswith("/ehc/decision") and w == "la-s1"]
    assert under_2001 == [409]
    assert len(seen) == len(matrix()) * (len(ANYONE) + 1)


async def test_lists_and_reports_show_only_the_callers_schools(stack: Stack) -> None:
    pupil = f"l{uuid.uuid4().hex[:8]}"
    journey = (await journey_at_action_plus(stack, pupil)).journey_id

    async def listed(user: str) -> dict[str, dict[str, Any]]:
        r = await stack.http.get("/v1/journeys", headers=stack.auth(user))
        assert r.status_code == 200, r.text
        return {row["journey_id"]: row for row in r.json()}

    for _ in range(100):  # visibility is eventually consistent
        if journey in await listed("admin-la1"):
            break
        await asyncio.sleep(0.1)
    row = (await listed("senco-s1"))[journey]
    assert set(row) == {"journey_id", "pupil", "school", "stage", "next_review", "overdue",
                        "status"}  # fmt: skip
    assert (row["pupil"], row["school"], row["stage"], row["status"]) == (
        pupil, "s1", "school_action_plus", "running",
    )  # fmt: skip
    assert (await listed("auditor-s1"))[journey] == row
    assert journey not in await listed("senco-s2")
    assert journey not in await listed("admin-la2")
    r = await stack.http.get("/v1/journeys?school=s1", headers=stack.auth("admin-la2"))
    assert r.status_code == 403

    await stack.until_letters_sent(journey)
    r = await stack.http.get("/v1/reports/register", headers=stack.auth("admin-la1"))
    assert r.status_code == 200
    assert {row["school"] for row in r.json()} == {"s1"}
    r = await stack.http.get("/v1/reports/register", headers=stack.auth("admin-la2"))
    assert r.json() == []
    r = await stack.http.get("/v1/referrals", headers=stack.auth("ep-1"))
    assert (journey, pupil) in {(row["workflow_id"], row["pupil_id"]) for row in r.json()}
    r = await stack.http.get("/v1/referrals", headers=stack.auth("ep-2"))
    assert journey not in {row["workflow_id"] for row in r.json()}
    assert pupil not in {row["pupil_id"] for row in r.json()}


async def test_the_actor_in_history_is_the_authenticated_user(stack: Stack) -> None:
    pupil = f"a{uuid.uuid4().hex[:8]}"
    journey = await journey_at_action_plus(stack, pupil)
    j = f"/v1/journeys/{journey.journey_id}"
    # A caller cannot name the actor: unknown fields are a validation error.
    r = await stack.http.post(
        f"{j}/notes",
        json={"note": "reads 12 words", "actor": {"id": "senco-s1", "role": "senco"}},
        headers=stack.auth("teacher-s1"),
    )
    assert r.status_code == 422
    r = await stack.http.post(
        f"{j}/notes", json={"note": "reads 12 words"}, headers=stack.auth("teacher-s1")
    )
    assert r.status_code == 200, r.text
    r = await stack.http.post(
        f"{j}/referrals/{journey.referral_id}/assessment",
        json={"summary": "phonological difficulty"},
        headers=stack.auth("ep-1"),
    )
    assert r.status_code == 202, r.text
    for _ in range(100):
        r = await stack.http.get(f"{j}/timeline", headers=stack.auth("senco-s1"))
        entries = r.json()
        if any(e["kind"] == "assessment_completed" for e in entries):
            break
        await asyncio.sleep(0.05)
    actors = {e["kind"]: (e["actor"]["id"], e["actor"]["role"]) for e in entries}
    assert actors["started"] == ("teacher-s1", "class_teacher")
    assert actors["decision"] == ("senco-s1", "senco")
    assert actors["note"] == ("teacher-s1", "class_teacher")
    assert actors["assessment_completed"] == ("ep-1", "specialist")


async def test_a_parent_answers_with_the_code_from_their_letter(stack: Stack) -> None:
    pupil = f"p{uuid.uuid4().hex[:8]}"
    journey = (await journey_at_action_plus(stack, pupil)).journey_id
    await stack.until_letters_sent(journey)
    consultation = (await stack.state(journey)).consultations[-1].consultation_id
    code = stack.reply_code(journey, consultation, "carer-2")
    headers = {"Authorization": f"Bearer {code}"}
    r = await stack.http.get("/v1/me", headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["journey_id"], r.json()["consultation"]) == (journey, consultation)
    assert (r.json()["actor_id"], r.json()["role"]) == ("carer-2", "parent")
    # The HTML form a parent uses, with nothing but the code from the letter.
    r = await stack.http.post(
        "/reply",
        content=f"code={code}&reply=wants_meeting&comments=after+school+please",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    for _ in range(100):
        state = await stack.state(journey)
        answers = {x.parent_id: x.reply.value for x in state.consultations[-1].responses}
        if answers:
            break
        await asyncio.sleep(0.05)
    assert answers == {"carer-2": "wants_meeting"}
    await stack.until_letters_sent(journey)
    events = await stack.events(journey)
    # A second answer with the same code is refused; the code opens nothing else.
    r = await stack.http.post(
        f"/v1/journeys/{journey}/consultations/{consultation}/response",
        json={"reply": "agree"},
        headers=headers,
    )
    assert r.status_code == 409 and "already answered" in r.json()["detail"]
    r = await stack.http.get(f"/v1/journeys/{journey}", headers=headers)
    assert r.status_code == 403
    state = await stack.state(journey)
    assert {x.parent_id: x.reply.value for x in state.consultations[-1].responses} == answers
    assert await stack.events(journey) == events


async def test_status_codes(stack: Stack) -> None:
    h, senco = stack.http, stack.auth("senco-s1")
    r = await h.get("/v1/journeys/nobody-here", headers=senco)
    assert (r.status_code, r.json()) == (404, {"detail": "no such journey"})
    assert (await h.get("/v1/journeys/not%20an%20id", headers=senco)).status_code == 422
    r = await h.post("/v1/journeys", json={"pupil_id": "x"}, headers=senco)
    assert r.status_code == 422
    r = await h.post("/v1/journeys", content=b"{not json", headers=senco)
    assert r.status_code == 422
    # A name typed as a pupil id is refused without being echoed back.
    r = await h.post(
        "/v1/journeys",
        json={"pupil_id": "Jane Doe", "school_id": "s1", "senco_id": "senco-s1",
              "parent_ids": ["c"], "concern": "x"},
        headers=senco,
    )  # fmt: skip
    assert r.status_code == 422 and "Jane" not in r.text
    assert (await h.get("/v1/me", headers={"Authorization": "Bearer sf.0.x"})).status_code == 401

    # A revoked token stops working at once.
    factory = sessions(make_engine(stack.settings.database_url))
    with factory.begin() as session:
        token = store.add_user(
            session, f"u{uuid.uuid4().hex[:6]}", Role.SENCO, ["s1"], datetime.now(UTC)
        )
    me = {"Authorization": f"Bearer {token}"}
    assert (await h.get("/v1/me", headers=me)).status_code == 200
    with factory.begin() as session:
        assert store.revoke(session, token.split(".")[1], datetime.now(UTC)) == 1
    assert (await h.get("/v1/me", headers=me)).status_code == 401


async def test_temporal_unreachable_is_a_503(stack: Stack) -> None:
    settings = Settings(
        temporal_address="127.0.0.1:9",  # nothing listens on the discard port
        database_url=stack.settings.database_url,
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as h:
        r = await h.get("/v1/journeys/p1", headers=stack.auth("senco-s1"))
        assert r.status_code == 503, r.text
        r = await h.post(
            "/v1/journeys/p1/notes", json={"note": "x"}, headers=stack.auth("teacher-s1")
        )
        assert r.status_code == 503
        assert (await h.get("/v1/me", headers=stack.auth("senco-s1"))).status_code == 200
