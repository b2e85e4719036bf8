"""Console accounts over HTTP: log in and out, who am I, users and API tokens (admin), the audit log.

POST /v1/auth/login {username, password} -> {user, csrf_token} and the session cookie
POST /v1/auth/logout                       ends this browser's session
GET  /v1/auth/me                           -> {user, csrf_token} (401 when not logged in)
GET/POST /v1/users, POST /v1/users/{name}/disable|enable|password|role, tokens  (permission users)
GET  /v1/audit?actor=&action=&limit=       (permission audit)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from voicebot.auth.guard import SESSION_COOKIE, Principal, authenticate, require
from voicebot.auth.passwords import check_password_rules, hash_password_async
from voicebot.auth.roles import Permission, parse_role
from voicebot.auth.service import SESSION_MAX_AGE
from voicebot.errors import InputError
from voicebot.runtime import Runtime
from voicebot.storage.records import ApiTokenRecord, AuditRecord, UserRecord

router = APIRouter()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(_Body):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)


class NewUser(_Body):
    username: str = Field(max_length=256)
    role: str
    display_name: str | None = Field(None, max_length=128)
    password: str | None = Field(None, max_length=1024, description="None: a token-only (machine) user.")


class NewPassword(_Body):
    password: str = Field(max_length=1024)


class NewRole(_Body):
    role: str


class NewToken(_Body):
    name: str = Field("api", max_length=64)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def user_json(user: UserRecord) -> dict[str, Any]:
    from voicebot.auth.roles import Role, permissions_of

    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "permissions": sorted(p.value for p in permissions_of(Role(user.role))),
        "disabled": user.disabled,
        "has_password": user.has_password,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def token_json(token: ApiTokenRecord) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def audit_json(entry: AuditRecord) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "customer_id": entry.customer_id,
        "conversation_id": entry.conversation_id,
        "details": entry.details,
    }


def _secure_cookie(request: Request) -> bool:
    mode = _runtime(request).settings.cookie_secure
    if mode != "auto":
        return mode == "always"
    return request.url.scheme == "https"


@router.post("/v1/auth/login")
async def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    logged_in = await _runtime(request).auth.login(
        body.username, body.password, client=client_address(request)
    )
    response.set_cookie(
        SESSION_COOKIE,
        logged_in.cookie,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        httponly=True,
        secure=_secure_cookie(request),
        samesite="strict",
        path="/",
    )
    return {"user": user_json(logged_in.user), "csrf_token": logged_in.csrf_token}


@router.post("/v1/auth/logout", status_code=204)
async def logout(request: Request, response: Response) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            principal = await authenticate(request)
            actor = principal.username
        except Exception:  # an ended session: still clear the cookie
            actor = "?"
        await _runtime(request).auth.logout(cookie, actor)
    response.delete_cookie(SESSION_COOKIE, path="/", samesite="strict", httponly=True)


@router.get("/v1/auth/me")
async def me(request: Request) -> dict[str, Any]:
    principal = await authenticate(request)
    user = await _runtime(request).users.get(principal.username)
    return {"user": user_json(user), "csrf_token": principal.csrf_token, "via": principal.via}


# --- users (admin) -------------------------------------------------------------------------------


@router.get("/v1/users")
async def list_users(request: Request, _: Principal = Depends(require(Permission.USERS))) -> dict[str, Any]:
    return {"users": [user_json(u) for u in await _runtime(request).users.list()]}


@router.post("/v1/users", status_code=201)
async def add_user(
    body: NewUser, request: Request, principal: Principal = Depends(require(Permission.USERS))
) -> dict[str, Any]:
    runtime = _runtime(request)
    role = parse_role(body.role)
    password_hash = None
    if body.password is not None:
        check_password_rules(body.password, body.username)
        password_hash = await hash_password_async(body.password)
    user = await runtime.users.create(
        username=body.username,
        role=role.value,
        now=runtime.clock(),
        password_hash=password_hash,
        display_name=body.display_name,
    )
    await _audit(runtime, principal, "user.add", {"user": user.username, "role": user.role})
    return user_json(user)


@router.post("/v1/users/{username}/disable")
async def disable_user(
    username: str, request: Request, principal: Principal = Depends(require(Permission.USERS))
) -> dict[str, Any]:
    if username.strip().lower() == principal.username:
        raise InputError("you cannot disable yourself; ask another administrator")
    return await _change(request, principal, username, "disable", disabled=True)


@router.post("/v1/users/{username}/enable")
async def enable_user(
    username: str, request: Request, principal: Principal = Depends(require(Permission.USERS))
) -> dict[str, Any]:
    return await _change(request, principal, username, "enable", disabled=False)


@router.post("/v1/users/{username}/password")
async def set_password(
    username: str,
    body: NewPassword,
    request: Request,
    principal: Principal = Depends(require(Permission.USERS)),
) -> dict[str, Any]:
    check_password_rules(body.password, username)
    password_hash = await hash_password_async(body.password)
    return await _change(request, principal, username, "password", password_hash=password_hash)


@router.post("/v1/users/{username}/role")
async def set_role(
    username: str, body: NewRole, request: Request, principal: Principal = Depends(require(Permission.USERS))
) -> dict[str, Any]:
    role = parse_role(body.role)
    return await _change(request, principal, username, "role", role=role.value)


async def _change(
    request: Request, principal: Principal, username: str, action: str, **changes: Any
) -> dict[str, Any]:
    runtime = _runtime(request)
    user = await runtime.users.update(username, runtime.clock(), **changes)
    details: dict[str, Any] = {"user": user.username}
    if "role" in changes:
        details["role"] = changes["role"]
    await _audit(runtime, principal, f"user.{action}", details)
    return user_json(user)


@router.get("/v1/users/{username}/tokens")
async def list_tokens(
    username: str, request: Request, _: Principal = Depends(require(Permission.USERS))
) -> dict[str, Any]:
    return {"tokens": [token_json(t) for t in await _runtime(request).users.tokens(username)]}


@router.post("/v1/users/{username}/tokens", status_code=201)
async def issue_token(
    username: str, body: NewToken, request: Request, principal: Principal = Depends(require(Permission.USERS))
) -> dict[str, Any]:
    runtime = _runtime(request)
    token, record = await runtime.users.issue_token(username, name=body.name, now=runtime.clock())
    await _audit(runtime, principal, "token.issue", {"user": username.lower(), "token": record.prefix})
    return {"token": token, **token_json(record)}


@router.delete("/v1/users/{username}/tokens/{token_id}")
async def revoke_token(
    username: str, token_id: str, request: Request, principal: Principal = Depends(require(Permission.USERS))
) -> dict[str, Any]:
    runtime = _runtime(request)
    record = await runtime.users.revoke_token(username, token_id, runtime.clock())
    await _audit(runtime, principal, "token.revoke", {"user": username.lower(), "token": record.prefix})
    return token_json(record)


@router.get("/v1/audit")
async def audit_log(
    request: Request,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
    _: Principal = Depends(require(Permission.AUDIT)),
) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise InputError("limit must be from 1 to 1000")
    runtime = _runtime(request)
    entries = await runtime.audit.search(runtime.tenant.id, actor=actor, action=action, limit=limit)
    return {"entries": [audit_json(e) for e in entries]}


@router.get("/login", include_in_schema=False)
async def login_page() -> FileResponse:
    from voicebot.app import STATIC

    return FileResponse(STATIC / "login.html")


async def _audit(runtime: Runtime, principal: Principal, action: str, details: dict[str, Any]) -> None:
    await runtime.audit.record(
        tenant_id=runtime.tenant.id,
        actor=principal.username,
        action=action,
        now=runtime.clock(),
        details=details,
    )
