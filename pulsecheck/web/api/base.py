"""What every `/api/v1` route shares: bearer-token authentication returning the pages' `Principal`, the write
scope check, JSON errors with the CLI's messages and the HTTP status that fits, and the acting transaction.

The API accepts only `Authorization: Bearer TOKEN`, never the session cookie: a browser cannot be made to send
that header cross-site, so the API needs no CSRF token."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from pulsecheck.errors import ConflictError, InputError, NotFoundError, PulsecheckError, RefusedError
from pulsecheck.storage.paging import PageRequest
from pulsecheck.web.auth import Principal
from pulsecheck.web.context import web_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pulsecheck.storage.models import User

READ_ONLY_METHODS = ("GET", "HEAD", "OPTIONS")


class ErrorBody(BaseModel):
    """Every error of the API: the CLI's message."""

    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in ((401, "No valid token"), (403, "Refused"), (404, "Not found"), (409, "Conflict"),
                         (422, "Bad input"))
}


class ApiError(Exception):
    """A refusal of the API layer itself (no token, read-only token), with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_of(exc: Exception) -> int:
    """The HTTP status of a service error (a conflict is a refusal, a missing record bad input: check first)."""
    if isinstance(exc, ApiError):
        return exc.status
    for kind, status in ((ConflictError, 409), (NotFoundError, 404), (RefusedError, 403), (InputError, 422)):
        if isinstance(exc, kind):
            return status
    return 500


def _validation_message(exc: RequestValidationError) -> str:
    """The first problem of a request FastAPI could not parse, named as the CLI names a bad option."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    return f"{where or 'request'}: {first.get('msg', 'invalid')}"


class JsonErrorRoute(APIRoute):
    """A route whose errors are `{"error": message}` with their HTTP status, whatever the app's HTML pages do."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, PulsecheckError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=status_of(exc))
            except RequestValidationError as exc:
                return JSONResponse({"error": _validation_message(exc)}, status_code=422)

        return route


bearer = HTTPBearer(auto_error=False, description="A personal access token: `pulsecheck tokens create NAME`")


def token_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The user of the request's bearer token (401 when missing, unknown, revoked or expired); a read-scope
    token is refused any write (403)."""
    from pulsecheck.workflow.tokens import live_token

    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "no API token: send `Authorization: Bearer TOKEN` (create one: pulsecheck tokens create)")
    web = web_of(request)
    with web.database.transaction() as session:
        token = live_token(session, credentials.credentials, web.now())
    if token is None:
        raise ApiError(401, "the API token is unknown, revoked or expired: create a new one (pulsecheck tokens "
                            "create)")
    if token.scope != "write" and request.method not in READ_ONLY_METHODS:
        raise ApiError(403, f"token {token.id} is read-only (scope read): create one with --scope write to act")
    return Principal(token.user, "token", str(token.id))


Caller = Annotated[Principal, Depends(token_principal)]
# a record id: a number the databases can hold (a larger one is bad input, not a server error)
RecordId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@contextmanager
def acting(request: Request, who: Principal) -> Iterator[tuple[Session, User]]:
    """The transaction of an API call as `who` (audited `NAME via token session ID`)."""
    with web_of(request).transaction(who) as found:
        yield found


def page_request(
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many rows (default 50).")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Skip the first rows.")] = 0,
    sort: Annotated[str | None, Query(description="Order of the rows (as the CLI's --sort).")] = None,
) -> PageRequest:
    """A list's page, as the CLI's --limit, --offset and --sort give it (its --json shape: total and items)."""
    return PageRequest(limit=limit, offset=offset, sort=sort)


Paging = Annotated[PageRequest, Depends(page_request)]
