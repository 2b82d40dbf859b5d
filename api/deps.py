"""The API's dependencies, in one place: the services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from access.policy import Principal
from api import schemas as s
from domain.commands import OPAQUE_ID
from service.context import Services

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.Problem, "description": text}
    for code, text in {
        401: "no valid bearer token",
        403: "never yours to do, by your role",
        404: "no such journey (or not one of yours: the two are not told apart)",
        409: "refused by the journey's rules (the reason is in detail)",
        503: "Temporal is unreachable",
    }.items()
}


class Unauthenticated(Exception):
    pass


_bearer = HTTPBearer(
    auto_error=False,
    description="a user's token (`senflow login`), or a parent's reply code from their letter",
)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def authenticate(svc: Services, request: Request, token: str | None) -> Principal:
    principal = svc.authenticator.authenticate(token) if token else None
    if principal is None:
        raise Unauthenticated()
    request.state.principal = principal
    return principal


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return authenticate(
        services(request), request, credentials.credentials if credentials else None
    )


SvcDep = Annotated[Services, Depends(services)]
Caller = Annotated[Principal, Depends(caller)]
JourneyId = Annotated[
    str, Path(pattern=OPAQUE_ID.pattern, max_length=64, description="the journey's own id")
]
RefId = Annotated[str, Path(pattern=OPAQUE_ID.pattern, max_length=64)]
