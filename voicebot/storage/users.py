"""Console accounts: users, API tokens, browser sessions and login attempts.

Secrets are never stored: a token and a session cookie are 256 random bits, kept as their SHA-256
(a fast hash is right for random secrets; passwords get Argon2id in voicebot.auth.passwords).
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from voicebot.errors import ConflictError, InputError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.db import Database
from voicebot.storage.records import ApiTokenRecord, UserRecord

_U = tables.users
_T = tables.api_tokens
_S = tables.console_sessions
_L = tables.login_attempts

TOKEN_PREFIX = "vbt_"
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def normalise_username(username: Any) -> str:
    """The stored form of a user name (lower case), or InputError saying what is allowed."""
    if not isinstance(username, str):
        raise InputError("the user name must be text")
    name = username.strip().lower()
    if not 1 <= len(name) <= 64 or not set(name) <= USERNAME_CHARS:
        raise InputError("a user name is 1 to 64 characters: letters, digits and . _ - @ (e.g. ana.novak)")
    return name


def user_record(row: RowMapping | dict[str, Any]) -> UserRecord:
    return UserRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        has_password=row["password_hash"] is not None,
    )


def token_record(row: RowMapping) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


@dataclass(frozen=True, slots=True)
class SessionInfo:
    user: UserRecord
    csrf_token: str
    expires_at: datetime
    last_seen_at: datetime


class UserRepository:
    def __init__(self, db: Database, tenant_id: str) -> None:
        self._db = db
        self.tenant_id = tenant_id

    # --- users -----------------------------------------------------------------------------------

    async def create(
        self,
        *,
        username: str,
        role: str,
        now: datetime,
        password_hash: str | None = None,
        display_name: str | None = None,
    ) -> UserRecord:
        name = normalise_username(username)
        now = utc(now)
        values = {
            "id": tables.new_id(),
            "tenant_id": self.tenant_id,
            "username": name,
            "display_name": (display_name or "").strip() or name,
            "role": role,
            "password_hash": password_hash,
            "disabled": False,
            "created_at": now,
            "updated_at": now,
            "last_login_at": None,
        }
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(insert(_U), values)
        except IntegrityError as exc:
            raise ConflictError(f"user {name!r} already exists") from exc
        return user_record(values)

    async def get(self, username: str) -> UserRecord:
        return user_record(await self._row(normalise_username(username)))

    async def password_hash(self, username: str) -> tuple[UserRecord, str | None] | None:
        """The user and their stored hash, None for an unknown name."""
        try:
            row = await self._row(normalise_username(username))
        except (NotFoundError, InputError):
            return None
        return user_record(row), row["password_hash"]

    async def list(self) -> builtins.list[UserRecord]:
        query = select(_U).where(_U.c.tenant_id == self.tenant_id).order_by(_U.c.username)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [user_record(r) for r in rows]

    async def count(self) -> int:
        async with self._db.reader.connect() as conn:
            value = await conn.scalar(select(func.count()).where(_U.c.tenant_id == self.tenant_id))
        return int(value or 0)

    async def update(self, username: str, now: datetime, **changes: Any) -> UserRecord:
        """Change role / display_name / password_hash / disabled; disabling ends the user's sessions."""
        allowed = {"role", "display_name", "password_hash", "disabled", "last_login_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise InputError(f"cannot change {sorted(unknown)}")
        name = normalise_username(username)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(_U)
                .where(_U.c.tenant_id == self.tenant_id, _U.c.username == name)
                .values(**changes, updated_at=utc(now))
                .returning(*_U.c)
            )
            row = result.mappings().first()
            if row is None:
                raise NotFoundError(f"user {name!r} does not exist")
            if changes.get("disabled") or "password_hash" in changes:
                await conn.execute(delete(_S).where(_S.c.user_id == row["id"]))
        return user_record(row)

    async def _row(self, name: str) -> RowMapping:
        query = select(_U).where(_U.c.tenant_id == self.tenant_id, _U.c.username == name)
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise NotFoundError(f"user {name!r} does not exist")
        return row

    # --- API tokens ------------------------------------------------------------------------------

    async def issue_token(self, username: str, *, name: str, now: datetime) -> tuple[str, ApiTokenRecord]:
        """A new API token for the user: (the token, shown this once; its record)."""
        user = await self.get(username)
        label = (name or "").strip()[:64] or "api"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        values = {
            "id": tables.new_id(),
            "user_id": user.id,
            "name": label,
            "token_hash": secret_hash(token),
            "prefix": token[:10],
            "created_at": utc(now),
            "last_used_at": None,
            "revoked_at": None,
        }
        async with self._db.engine.begin() as conn:
            await conn.execute(insert(_T), values)
        return token, token_record(values)  # type: ignore[arg-type]

    async def tokens(self, username: str) -> builtins.list[ApiTokenRecord]:
        user = await self.get(username)
        query = select(_T).where(_T.c.user_id == user.id).order_by(_T.c.created_at)
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [token_record(r) for r in rows]

    async def revoke_token(self, username: str, token_id: str, now: datetime) -> ApiTokenRecord:
        user = await self.get(username)
        async with self._db.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        update(_T)
                        .where(_T.c.id == token_id, _T.c.user_id == user.id)
                        .values(revoked_at=func.coalesce(_T.c.revoked_at, utc(now)))
                        .returning(*_T.c)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"user {user.username!r} has no token {token_id!r}")
        return token_record(row)

    async def user_for_token(self, token: str, now: datetime) -> UserRecord | None:
        """The enabled user owning this unrevoked token (its last use noted), else None."""
        digest = secret_hash(token)
        query = (
            select(_U, _T.c.id.label("token_id"), _T.c.last_used_at.label("token_used"))
            .join(_T, _T.c.user_id == _U.c.id)
            .where(_T.c.token_hash == digest, _T.c.revoked_at.is_(None), _U.c.tenant_id == self.tenant_id)
        )
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None or row["disabled"]:
            return None
        now = utc(now)
        used = row["token_used"]
        if used is None or now - used > timedelta(minutes=1):  # at most one write a minute per token
            async with self._db.engine.begin() as conn:
                await conn.execute(update(_T).where(_T.c.id == row["token_id"]).values(last_used_at=now))
        return user_record(row)

    # --- sessions --------------------------------------------------------------------------------

    async def create_session(
        self, user: UserRecord, *, now: datetime, lifetime: timedelta, client: str | None
    ) -> tuple[str, str]:
        """A new browser session: (the cookie value, its CSRF token)."""
        cookie = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utc(now)
        async with self._db.engine.begin() as conn:
            await conn.execute(
                insert(_S),
                {
                    "id": secret_hash(cookie),
                    "user_id": user.id,
                    "csrf_token": csrf,
                    "created_at": now,
                    "expires_at": now + lifetime,
                    "last_seen_at": now,
                    "client": (client or "")[:64] or None,
                },
            )
            await conn.execute(update(_U).where(_U.c.id == user.id).values(last_login_at=now))
            await conn.execute(delete(_S).where(_S.c.expires_at < now))  # sweep the expired ones
        return cookie, csrf

    async def session(self, cookie: str, now: datetime, *, idle: timedelta) -> SessionInfo | None:
        """The live session for this cookie, sliding its expiry by ``idle`` (at most once a minute);
        None when unknown, expired or the user is disabled."""
        digest = secret_hash(cookie)
        now = utc(now)
        query = (
            select(_U, _S.c.csrf_token, _S.c.expires_at.label("s_expires"), _S.c.last_seen_at.label("s_seen"))
            .join(_S, _S.c.user_id == _U.c.id)
            .where(_S.c.id == digest, _U.c.tenant_id == self.tenant_id)
        )
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None or row["disabled"] or row["s_expires"] <= now:
            return None
        expires, seen = row["s_expires"], row["s_seen"]
        if now - seen > timedelta(minutes=1):
            expires = max(expires, now + idle)
            seen = now
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    update(_S).where(_S.c.id == digest).values(last_seen_at=now, expires_at=expires)
                )
        return SessionInfo(user_record(row), row["csrf_token"], expires, seen)

    async def end_session(self, cookie: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(delete(_S).where(_S.c.id == secret_hash(cookie)))

    # --- login attempts --------------------------------------------------------------------------

    async def record_attempt(self, username: str, client: str, now: datetime, *, succeeded: bool) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                insert(_L),
                {
                    "tenant_id": self.tenant_id,
                    "username": username[:64],
                    "client": client[:64],
                    "at": utc(now),
                    "succeeded": succeeded,
                },
            )

    async def recent_failures(
        self, *, username: str, client: str, since: datetime
    ) -> tuple[builtins.list[datetime], builtins.list[datetime]]:
        """Failed logins since ``since``: (for this user name since its last success, from this client)."""
        since = utc(since)
        base = and_(_L.c.tenant_id == self.tenant_id, _L.c.at >= since)
        last_success = select(func.max(_L.c.at)).where(
            base, _L.c.username == username, _L.c.succeeded.is_(True)
        )
        async with self._db.reader.connect() as conn:
            succeeded_at = await conn.scalar(last_success)
            by_user = select(_L.c.at).where(base, _L.c.username == username, _L.c.succeeded.is_(False))
            if succeeded_at is not None:  # a success forgives the failures before it
                by_user = by_user.where(_L.c.at > succeeded_at)
            users = [r[0] for r in (await conn.execute(by_user.order_by(_L.c.at))).all()]
            by_client = select(_L.c.at).where(base, _L.c.client == client, _L.c.succeeded.is_(False))
            clients = [r[0] for r in (await conn.execute(by_client.order_by(_L.c.at))).all()]
        return users, clients
