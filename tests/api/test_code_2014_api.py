"""The 2014 Code over HTTP: SEN Support and an EHC needs assessment driven by the school and
the local authority, an admin moving a school's journeys, and the statutory clock report."""

from __future__ import annotations

import asyncio
import uuid

from apistack import IEP, Stack

PLAN = {**IEP, "expected_impact": "reads 30 words by the review", "pupil_views": "likes the TA"}


async def post(stack: Stack, user: str, path: str, body: object = None) -> dict:  # type: ignore[type-arg]
    r = await stack.http.post(path, json=body, headers=stack.auth(user))
    assert r.status_code in (200, 201), (path, r.status_code, r.text)
    result: dict = r.json()  # type: ignore[type-arg]
    return result


async def test_sen_support_and_an_ehc_assessment_through_the_api(stack: Stack) -> None:
    pupil = f"k{uuid.uuid4().hex[:8]}"
    start = {
        "pupil_id": pupil,
        "school_id": "s1",
        "senco_id": "senco-s1",
        "parent_ids": ["carer-1"],
        "concern": "speech",
        "policy": "code_2014",
    }
    view = await post(stack, "senco-s1", "/v1/journeys", start)
    stack.started.append(view["journey_id"])
    assert (view["pupil_id"], view["stage"]) == (pupil, "monitoring")
    j = f"/v1/journeys/{view['journey_id']}"
    r = await stack.http.post(
        f"{j}/sen-support",
        json={"primary_need": "SLCN", "evidence": "screen", "plan": IEP},
        headers=stack.auth("senco-s1"),
    )
    assert r.status_code == 409 and "expected impact" in r.text  # a 2014 plan needs it
    done = await post(
        stack,
        "senco-s1",
        f"{j}/sen-support",
        {"primary_need": "SLCN", "secondary_need": "ASD", "evidence": "screen", "plan": PLAN},
    )
    assert done["stage"] == "sen_support"
    done = await post(
        stack,
        "senco-s1",
        f"{j}/ehc-assessment-request",
        {"local_authority_id": "la-s1", "evidence": "three cycles"},
    )
    assert done["stage"] == "ehc_needs_assessment"
    r = await stack.http.post(
        f"{j}/ehc/decision", json={"assess": True, "reason": "r"}, headers=stack.auth("senco-s1")
    )
    assert r.status_code == 403  # the authority's step, not the school's
    await post(stack, "la-s1", f"{j}/ehc/decision", {"assess": True, "reason": "evidenced"})
    advice = await post(stack, "la-s1", f"{j}/ehc/advice", {"adviser_id": "ep-1", "kind": "ep"})
    await post(stack, "la-s1", f"{j}/ehc/advice/{advice['ref']}/received")
    await post(stack, "la-s1", f"{j}/ehc/pause", {"reason": "setting_closed"})

    r = await stack.http.get("/v1/reports/statutory-clock", headers=stack.auth("admin-la1"))
    assert r.status_code == 200, r.text
    [row] = [row for row in r.json() if row["pupil"] == pupil]
    assert (row["status"], row["pause_reason"], row["breaches"]) == (
        "paused",
        "setting_closed",
        "",
    )
    r = await stack.http.get("/v1/reports/statutory-clock", headers=stack.auth("admin-la2"))
    assert pupil not in {row["pupil"] for row in r.json()}  # another authority's schools


async def test_an_admin_moves_their_schools_journeys_once(stack: Stack) -> None:
    pupil = f"g{uuid.uuid4().hex[:8]}"
    start = {
        "pupil_id": pupil,
        "school_id": "s3",
        "senco_id": "senco-s3",
        "parent_ids": ["carer-1"],
        "concern": "reading",
    }
    journey = (await post(stack, "senco-s3", "/v1/journeys", start))["journey_id"]
    stack.started.append(journey)
    body = {"triggers": ["SA-PROGRESS"], "evidence": "behind", "iep": IEP}
    await post(stack, "senco-s3", f"/v1/journeys/{journey}/school-action", body)
    for _ in range(100):  # visibility lists it
        r = await stack.http.get("/v1/journeys?school=s3", headers=stack.auth("admin-la1"))
        if (journey, pupil) in {(row["journey_id"], row["pupil"]) for row in r.json()}:
            break
        await asyncio.sleep(0.1)
    migrate = {"to": "code_2014", "schools": ["s3"]}
    r = await stack.http.post("/v1/migrations", json=migrate, headers=stack.auth("admin-la2"))
    assert r.status_code == 403  # not their school
    dry = await post(stack, "admin-la1", "/v1/migrations", {**migrate, "dry_run": True})
    assert dry["by_school"] == {"s3": {"would_move": 1}}
    moved = await post(stack, "admin-la1", "/v1/migrations", migrate)
    assert moved["moves"] == {"school_action -> sen_support": 1}
    again = await post(stack, "admin-la1", "/v1/migrations", migrate)
    assert again["totals"] == {"already": 1}
    r = await stack.http.get(f"/v1/journeys/{journey}/timeline", headers=stack.auth("senco-s3"))
    moves = [e for e in r.json() if e["actor"] == {"id": "admin-la1", "role": "admin"}]
    assert len(moves) == 1 and moves[0]["stage_after"] == "sen_support"
