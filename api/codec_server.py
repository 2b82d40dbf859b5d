"""Temporal's remote codec protocol, so an authorised person reads histories in the Web UI.

The UI posts ``{"payloads": [...]}`` to ``<endpoint>/decode`` (and ``/encode``) from its own
origin, with ``X-Namespace``. Authenticate with ``Authorization: Bearer`` or the cookie set by
``/codec/login`` (for the UI: tick "Include cross-origin credentials" in its codec settings).
Payloads carry no workflow id, so this cannot be scoped to a school: only auditors may use it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Cookie, Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.api.common.v1 import Payload

from access.policy import Permission, Principal, require
from api import schemas as s
from api.deps import PROBLEMS, authenticate
from crypto.codec import EncryptionCodec
from service.context import Services

log = structlog.get_logger("senflow.api")
COOKIE = "senflow_codec"
_bearer = HTTPBearer(auto_error=False)


def codec_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    senflow_codec: Annotated[str | None, Cookie(include_in_schema=False)] = None,
) -> Principal:
    token = credentials.credentials if credentials else senflow_codec
    principal = authenticate(request.app.state.services, request, token)
    require(principal, Permission.CODEC)
    return principal


CodecUser = Annotated[Principal, Depends(codec_user)]


def router(services: Services) -> APIRouter:
    r = APIRouter(prefix="/codec", tags=["codec"], responses=PROBLEMS)

    def codec() -> EncryptionCodec | None:
        ring = services.settings.payload_keys
        return EncryptionCodec(ring) if ring is not None else None

    @r.post("/decode", response_model=s.PayloadsJson)
    async def decode(
        body: s.PayloadsJson,
        principal: CodecUser,
        x_namespace: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Any:
        payloads = _payloads(body)
        c = codec()
        out = await c.decode(payloads) if c is not None else payloads
        log.info("codec_decode", actor=principal.actor_id, payloads=len(out), namespace=x_namespace)
        return _json(out)

    @r.post("/encode", response_model=s.PayloadsJson)
    async def encode(
        body: s.PayloadsJson,
        principal: CodecUser,
        x_namespace: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Any:
        payloads = _payloads(body)
        c = codec()
        out = await c.encode(payloads) if c is not None else payloads
        log.info("codec_encode", actor=principal.actor_id, payloads=len(out), namespace=x_namespace)
        return _json(out)

    return r


class BadPayload(ValueError):
    pass


def _payloads(body: s.PayloadsJson) -> list[Payload]:
    try:
        return [
            Payload(
                metadata={k: base64.b64decode(v, validate=True) for k, v in p.metadata.items()},
                data=base64.b64decode(p.data, validate=True),
            )
            for p in body.payloads
        ]
    except (binascii.Error, ValueError):
        raise BadPayload("payload metadata and data must be base64") from None


def _json(payloads: list[Payload]) -> s.PayloadsJson:
    return s.PayloadsJson(
        payloads=[
            s.PayloadJson(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )
