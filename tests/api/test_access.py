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
from domain.model import JourneyState
from records.db import make_engine, sessions
from settings import Settings

ANYONE = {
    "senco-s1", "teacher-s1", "senco-s2", "ep-1", "ep-2", "admin-la1", "admin-la2",
    "auditor-s1", "parent", "parent-other", "la-s1",
}  # fmt: skip
S1_READERS = {"senco-s1", "teacher-s1", "admin-la1", "auditor-s1", "la-s1"}
LA = {"la-s1"}


def matrix(p: str, referral: str, consultation: str) -> list[tuple[str, str, Any, set[str]]]:
    """(method, path, body, who may) for pupil ``p`` of school s1. Bodies for school actions
    are ones the journey's rules refuse (empty evidence, no triggers), so the matrix changes
    nothing: those allowed get the rules' 409, everyone else a 403."""
    act = f"/v1/journeys/{p}"
    return [
        ("GET", "/v1/me", None, ANYONE),
        ("GET", "/v1/journeys", None, {"senco-s1", "teacher-s1", "senco-s2", "admin-la1",
                                       "admin-la2", "auditor-s1", "la-s1"}),
        ("POST", "/v1/journeys", "start", {"senco-s1", "teacher-s1"}),
        ("GET", act, None, S1_READERS),
        ("GET", f"{act}/timeline", None, S1_READERS),
        ("POST", f"{act}/school-action", {"triggers": [], "iep": IEP}, {"senco-s1"}),
        ("POST", f"{act}/notes", {"note": " "}, {"senco-s1", "teacher-s1"}),
        ("POST", f"{act}/reviews", {"outcome": "continue"}, {"senco-s1", "teacher-s1"}),
        ("POST", f"{act}/escalation", {"triggers": [], "iep": IEP}, {"senco-s1"}),
        ("POST", f"{act}/referrals", {"kind": "camhs", "specialist_id": "x", "question": " "},
         {"senco-s1"}),
        ("POST", f"{act}/statutory-assessment-request", {"evidence": ""}, {"senco-s1"}),
        ("POST", f"{act}/step-down", {"reason": ""}, {"senco-s1"}),
        ("POST", f"{act}/closure", {"close_reason": "needs_met", "reason": ""}, {"senco-s1"}),
        ("POST", f"{act}/referrals/{referral}/assessment",
         {"summary": "phonological difficulty", "recommendations": ["structured literacy"]},
         {"ep-1"}),
        ("POST", f"{act}/consultations/{consultation}/response", {"reply": "agree"}, {"parent"}),
        ("GET", "/v1/referrals", None, {"ep-1", "ep-2"}),
        ("GET", f"{act}/history", None, {"auditor-s1"}),
        ("GET", f"{act}/export", None, {"auditor-s1"}),
        ("GET", "/v1/reports/register", None, {"admin-la1", "admin-la2", "la-s1"}),
        # the 2014 Code (this journey follows code_2001, so the allowed get the rules' 409)
        ("POST", f"{act}/sen-support", {"primary_need": "SPLD", "evidence": "", "plan": IEP},
         {"senco-s1"}),
        ("POST", f"{act}/ehc-assessment-request", {"local_authority_id": "la-1", "evidence": ""},
         {"senco-s1"}),
        ("POST", f"{act}/ehc/decision", {"assess": True, "reason": ""}, LA),
        ("POST", f"{act}/ehc/advice", {"adviser_id": "ep-1", "kind": "health"}, LA),
        ("POST", f"{act}/ehc/advice/advice-1/received", None, LA),
        ("POST", f"{act}/ehc/draft", {"issue": False, "reason": ""}, LA),
        ("POST", f"{act}/ehc/final", {"reason": ""}, LA),
        ("POST", f"{act}/ehc/pause", {"reason": "child_absent"}, LA),
        ("POST", f"{act}/ehc/resume", None, LA),
        ("POST", "/v1/migrations", {"to": "code_2014", "schools": ["s1"], "dry_run": True},
         {"admin-la1"}),
        ("GET", "/v1/reports/statutory-clock", None, {"admin-la1", "admin-la2", "la-s1"}),
        ("POST", "/codec/decode", {"payloads": []}, {"auditor-s1"}),
        ("POST", "/codec/encode", {"payloads": []}, {"auditor-s1"}),
    ]  # fmt: skip


async def test_every_role_against_every_endpoint(stack: Stack) -> None:
    pupil = f"m{uuid.uuid4().hex[:8]}"
    referral = await journey_at_action_plus(stack, pupil)
    await stack.until_letters_sent(pupil)
    state = await stack.client.get_workflow_handle(f"pupil-{pupil}").query(
        "state", result_type=JourneyState
    )
    first, latest = state.consultations[0].consultation_id, state.consultations[-1].consultation_id
    stack.tokens["parent"] = stack.reply_code(pupil, latest, "carer-1")
    stack.tokens["parent-other"] = stack.reply_code(pupil, first, "carer-2")

    seen: list[tuple[str, str, str, int]] = []
    for method, path, body, allowed in matrix(pupil, referral, latest):
        for who in sorted(ANYONE) + ["nobody"]:
            if body == "start":
                payload: Any = {
                    "pupil_id": f"m{uuid.uuid4().hex[:8]}",
                    "school_id": "s1",
                    "senco_id": "senco-s1",
                    "parent_ids": ["carer-1"],
                    "concern": "matrix",
                }
                stack.started.append(payload["pupil_id"])
            else:
                payload = body
            headers = stack.auth(who) if who != "nobody" else {}
            r = await stack.http.request(method, path, json=payload, headers=headers)
            seen.append((method, path, who, r.status_code))
            if who == "nobody":
                assert r.status_code == 401, (method, path, r.text)
            elif who in allowed:
                assert r.status_code not in (401, 403) and r.status_code < 500, (
                    method, path, who, r.status_code, r.text,
                )  # fmt: skip
            else:
                assert r.status_code == 403, (method, path, who, r.status_code, r.text)
    # The allowed school actions were refused by the journey's rules, with its reason.
    refused = [s for m, p, w, s in seen if p.endswith("/closure") and w == "senco-s1"]
    assert refused == [409]
    under_2001 = [s for m, p, w, s in seen if p.endswith("/ehc/decision") and w == "la-s1"]
    assert under_2001 == [409]
    assert len(seen) == len(matrix(pupil, referral, latest)) * (len(ANYONE) + 1)


async def test_lists_and_reports_show_only_the_callers_schools(stack: Stack) -> None:
    pupil = f"l{uuid.uuid4().hex[:8]}"
    await journey_at_action_plus(stack, pupil)

    async def listed(user: str) -> set[str]:
        r = await stack.http.get("/v1/journeys", headers=stack.auth(user))
        assert r.status_code == 200, r.text
        return {row["pupil_id"] for row in r.json()}

    for _ in range(100):  # visibility is eventually consistent
        if pupil in await listed("admin-la1"):
            break
        await asyncio.sleep(0.1)
    assert pupil in await listed("senco-s1")
    assert pupil in await listed("auditor-s1")
    assert pupil not in await listed("senco-s2")
    assert pupil not in await listed("admin-la2")
    r = await stack.http.get("/v1/journeys?school=s1", headers=stack.auth("admin-la2"))
    assert r.status_code == 403

    await stack.until_letters_sent(pupil)
    r = await stack.http.get("/v1/reports/register", headers=stack.auth("admin-la1"))
    assert r.status_code == 200
    assert {row["school"] for row in r.json()} == {"s1"}
    r = await stack.http.get("/v1/reports/register", headers=stack.auth("admin-la2"))
    assert r.json() == []
    r = await stack.http.get("/v1/referrals", headers=stack.auth("ep-1"))
    assert pupil in {row["pupil_id"] for row in r.json()}
    r = await stack.http.get("/v1/referrals", headers=stack.auth("ep-2"))
    assert pupil not in {row["pupil_id"] for row in r.json()}


async def test_the_actor_in_history_is_the_authenticated_user(stack: Stack) -> None:
    pupil = f"a{uuid.uuid4().hex[:8]}"
    referral = await journey_at_action_plus(stack, pupil)
    # A caller cannot name the actor: unknown fields are a validation error.
    r = await stack.http.post(
        f"/v1/journeys/{pupil}/notes",
        json={"note": "reads 12 words", "actor": {"id": "senco-s1", "role": "senco"}},
        headers=stack.auth("teacher-s1"),
    )
    assert r.status_code == 422
    r = await stack.http.post(
        f"/v1/journeys/{pupil}/notes", json={"note": "reads 12 words"},
        headers=stack.auth("teacher-s1"),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    r = await stack.http.post(
        f"/v1/journeys/{pupil}/referrals/{referral}/assessment",
        json={"summary": "phonological difficulty"},
        headers=stack.auth("ep-1"),
    )
    assert r.status_code == 202, r.text
    for _ in range(100):
        r = await stack.http.get(f"/v1/journeys/{pupil}/timeline", headers=stack.auth("senco-s1"))
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
    await journey_at_action_plus(stack, pupil)
    await stack.until_letters_sent(pupil)
    state = await stack.client.get_workflow_handle(f"pupil-{pupil}").query(
        "state", result_type=JourneyState
    )
    consultation = state.consultations[-1].consultation_id
    code = stack.reply_code(pupil, consultation, "carer-2")
    # The HTML form a parent uses, with nothing but the code from the letter.
    r = await stack.http.post(
        "/reply",
        content=f"code={code}&reply=wants_meeting&comments=after+school+please",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    for _ in range(100):
        state = await stack.client.get_workflow_handle(f"pupil-{pupil}").query(
            "state", result_type=JourneyState
        )
        answers = {x.parent_id: x.reply.value for x in state.consultations[-1].responses}
        if answers:
            break
        await asyncio.sleep(0.05)
    assert answers == {"carer-2": "wants_meeting"}
    # A second answer with the same code is refused; the code opens nothing else.
    headers = {"Authorization": f"Bearer {code}"}
    r = await stack.http.post(
        f"/v1/journeys/{pupil}/consultations/{consultation}/response",
        json={"reply": "agree"},
        headers=headers,
    )
    assert r.status_code == 409 and "already answered" in r.json()["detail"]
    r = await stack.http.get(f"/v1/journeys/{pupil}", headers=headers)
    assert r.status_code == 403


async def test_status_codes(stack: Stack) -> None:
    h, senco = stack.http, stack.auth("senco-s1")
    assert (await h.get("/v1/journeys/nobody-here", headers=senco)).status_code == 404
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
            session, f"u{uuid.uuid4().hex[:6]}", store.Role.SENCO, ["s1"], datetime.now(UTC)
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
