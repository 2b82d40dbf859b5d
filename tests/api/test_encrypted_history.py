"""What a Temporal operator (or the Web UI without the codec) sees: no pupil data. What an
auditor sees through the codec server: all of it. And no pupil data in logs or search
attributes either."""

from __future__ import annotations

import base64
import logging
import re
import uuid

import pytest
from temporalio.client import WorkflowHistory

from apistack import Stack, journey_at_action_plus
from audit.trail import trail_of
from crypto.codec import ENCODING
from settings import configure_logging

CONCERN = "Zebedee-Quill-7731 cannot decode words"
NOTE = "Zebedee-Quill-7731 wept during phonics"
MARKER = "Zebedee-Quill"


def payload_texts(history: WorkflowHistory) -> list[bytes]:
    """Every payload's bytes in a history, as the server stores them (base64 in the JSON)."""
    raw = history.to_json()
    return [base64.b64decode(d) for d in re.findall(r'"data":\s*"([A-Za-z0-9+/=]*)"', raw)]


async def drive(stack: Stack) -> str:
    """A journey with the pupil data in its concern and a note; returns its journey id."""
    pupil = f"x{uuid.uuid4().hex[:8]}"
    journey = (await journey_at_action_plus(stack, pupil, concern=CONCERN)).journey_id
    r = await stack.http.post(
        f"/v1/journeys/{journey}/notes", json={"note": NOTE}, headers=stack.auth("teacher-s1")
    )
    assert r.status_code == 200, r.text
    r = await stack.http.post(  # a refusal whose reason could quote the caller's text
        f"/v1/journeys/{journey}/closure",
        json={"close_reason": "needs_met", "reason": ""},
        headers=stack.auth("teacher-s1"),
    )
    assert r.status_code == 403
    await stack.until_letters_sent(journey)
    return journey


async def test_the_raw_history_holds_no_pupil_data_and_the_keys_read_it(
    stack: Stack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("json")
    caplog.set_level(logging.DEBUG)
    wf = await drive(stack)

    # Without the codec: what the server stores and an operator or the plain Web UI sees.
    raw = await stack.env.client.get_workflow_handle(wf).fetch_history()
    texts = payload_texts(raw)
    # The scan reads payloads: the search attributes (indexed, opaque, never encrypted) show.
    assert b'"school_action_plus"' in texts
    assert not any(MARKER.encode() in t for t in texts)
    assert MARKER not in raw.to_json()
    for event in raw.events:  # every input and result payload is encrypted
        attrs = event.workflow_execution_started_event_attributes
        for p in attrs.input.payloads:
            assert p.metadata["encoding"] == ENCODING

    # With the keys: the same history reads back in full (the auditor's record).
    trail = await trail_of(stack.client, wf)
    assert trail.state.timeline[0].summary
    assert any(NOTE in e.summary or NOTE in e.reason for e in trail.state.timeline)

    # Search attributes, memo and workflow id: opaque values only.
    description = await stack.env.client.get_workflow_handle(wf).describe()
    assert MARKER not in repr(description.typed_search_attributes)
    assert MARKER not in repr(description.raw_description)
    assert MARKER not in wf

    # Logs: the worker's activities, the API's requests, Temporal's own Python logs.
    out = capsys.readouterr()
    logs = out.err + out.out + caplog.text
    assert "http_request" in logs and "notice_sent" in logs  # the capture did capture
    assert MARKER not in logs


async def test_the_codec_server_decodes_for_auditors_only(stack: Stack) -> None:
    journey = await drive(stack)
    raw = await stack.env.client.get_workflow_handle(journey).fetch_history()
    started = raw.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in started.metadata.items()},
                "data": base64.b64encode(started.data).decode(),
            }
        ]
    }
    ui = {"Origin": "http://localhost:8233", "X-Namespace": "default"}
    r = await stack.http.post("/codec/decode", json=body, headers=ui | stack.auth("auditor-s1"))
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "http://localhost:8233"
    [decoded] = r.json()["payloads"]
    assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
    assert CONCERN in base64.b64decode(decoded["data"]).decode()

    for who, status in (("senco-s1", 403), ("admin-la1", 403), ("ep-1", 403)):
        r = await stack.http.post("/codec/decode", json=body, headers=ui | stack.auth(who))
        assert r.status_code == status
    assert (await stack.http.post("/codec/decode", json=body, headers=ui)).status_code == 401

    # The UI's preflight, from its origin only.
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    r = await stack.http.options("/codec/decode", headers=preflight | ui)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert r.headers["access-control-allow-credentials"] == "true"
    r = await stack.http.options(
        "/codec/decode", headers=preflight | {"Origin": "http://elsewhere.example"}
    )
    assert "access-control-allow-origin" not in r.headers

    # Signed in with a cookie (the UI's "include cross-origin credentials"), no header.
    r = await stack.http.post(
        "/codec/login",
        content=f"token={stack.tokens['auditor-s1']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and "httponly" in r.headers["set-cookie"].lower()
    r = await stack.http.post("/codec/decode", json=body, headers=ui)
    assert r.status_code == 200
    # and /encode gives back what /decode reads
    r = await stack.http.post("/codec/encode", json=r.json(), headers=ui)
    [sealed] = r.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    stack.http.cookies.clear()
