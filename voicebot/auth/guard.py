"""The guards of every staff endpoint: who is asking (API token or console session), and may they.

Machines send ``Authorization: Bearer <token>``; the console's browser sends the session cookie and,
on every request that changes something, the session's CSRF token in ``X-CSRF-Token`` (the cookie is
SameSite=Strict as well; two defences, because either alone has had holes). WebSockets opened by a
browser carry the cookie and must come from this server's own origin.

    @router.get("/v1/desk/queue")
    async def queue(principal: Principal = Depends(require(Permission.DESK))) -> ...
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, WebSocket
from starlette.requests import HTTPConnection

from voicebot.auth.roles import Permission, Role, permissions_of
from voicebot.errors import AuthenticationError, PermissionDeniedError
from voicebot.storage.records import UserRecord

SESSION_COOKIE = "voicebot_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WS_UNAUTHENTICATED = 4401
WS_FORBIDDEN = 4403


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    username: str
    display_name: str
    role: Role
    via: str  # "session" | "token"
    csrf_token: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in permissions_of(self.role)

    @property
    def permissions(self) -> list[str]:
        return sorted(p.value for p in permissions_of(self.role))


def _principal(user: UserRecord, via: str, csrf: str | None = None) -> Principal:
    return Principal(user.id, user.username, user.display_name, Role(user.role), via, csrf)


async def authenticate(connection: HTTPConnection) -> Principal:
    """The caller's principal, or AuthenticationError saying how to authenticate."""
    cached = getattr(connection.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    runtime: Any = connection.app.state.runtime
    now = runtime.clock()
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <API token>'")
        user = await runtime.users.user_for_token(token.strip(), now)
        if user is None:
            raise AuthenticationError(
                "the API token is not valid (unknown, revoked, or its user is disabled)"
            )
        principal = _principal(user, "token")
    else:
        cookie = connection.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise AuthenticationError("log in first, or send 'Authorization: Bearer <API token>'")
        session = await runtime.users.session(cookie, now, idle=runtime.auth.idle)
        if session is None:
            raise AuthenticationError("the session has ended; log in again")
        principal = _principal(session.user, "session", session.csrf_token)
    connection.state.principal = principal
    return principal


def _refuse(principal: Principal, permission: Permission) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"{principal.username} ({principal.role.value}) may not do this: it needs the "
        f"'{permission.value}' permission"
    )


def require(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the principal, if it has ``permission`` (and, for a browser changing
    something, the right CSRF token)."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if not principal.can(permission):
            raise _refuse(principal, permission)
        if principal.via == "session" and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not principal.csrf_token or not secrets.compare_digest(sent, principal.csrf_token):
                raise PermissionDeniedError(
                    "the request has no valid CSRF token (X-CSRF-Token); reload the page and try again"
                )
        return principal

    dependency.__name__ = f"require_{permission.value}"
    return dependency


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser
        return True
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


async def websocket_principal(websocket: WebSocket, *permissions: Permission) -> Principal | None:
    """Before ``accept()``: the principal when it has one of ``permissions``; otherwise None, and the
    socket is accepted and closed at once with 4401 (not authenticated) or 4403 (not allowed) and the
    reason, which a browser can read (a refused handshake shows only as code 1006)."""
    try:
        principal = await authenticate(websocket)
    except AuthenticationError as exc:
        await refuse_socket(websocket, WS_UNAUTHENTICATED, exc.message)
        return None
    if principal.via == "session" and not _same_origin(websocket):
        await refuse_socket(websocket, WS_FORBIDDEN, "cross-origin sockets are refused")
        return None
    if not any(principal.can(p) for p in permissions):
        await refuse_socket(websocket, WS_FORBIDDEN, _refuse(principal, permissions[0]).message)
        return None
    return principal


async def refuse_socket(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept and close at once with ``code`` and ``reason`` (at most 123 bytes in a close frame)."""
    await websocket.accept()
    await websocket.close(code, reason.encode()[:120].decode(errors="ignore"))
