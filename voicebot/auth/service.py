"""Logging in and out, with the rate limit on wrong passwords, and the first administrator.

Rate limit: after ``login_max_failures`` wrong passwords for one user name (since its last
successful login) within ``login_window_minutes``, or ``login_client_max_failures`` failures from one
client address, further attempts are refused with RateLimitedError until the oldest failure leaves
the window. Refused attempts are not checked against the password at all (no oracle while locked)
and are not counted, so waiting always helps. Counts live in the database: every worker agrees.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from voicebot.auth.passwords import hash_password_async, needs_rehash, verify_password_async
from voicebot.auth.roles import Role
from voicebot.config import Settings
from voicebot.errors import AuthenticationError, RateLimitedError
from voicebot.storage.audit import AuditRepository
from voicebot.storage.records import UserRecord
from voicebot.storage.users import UserRepository

log = logging.getLogger(__name__)

SESSION_MAX_AGE = timedelta(days=7)  # the cookie's own lifetime; the server-side idle expiry is shorter
WRONG_LOGIN = "the user name or the password is wrong"


@dataclass(frozen=True, slots=True)
class LoggedIn:
    user: UserRecord
    cookie: str
    csrf_token: str


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        audit: AuditRepository,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.users = users
        self._audit = audit
        self._settings = settings
        self._clock = clock

    @property
    def idle(self) -> timedelta:
        return timedelta(hours=self._settings.session_hours)

    async def login(self, username: str, password: str, *, client: str) -> LoggedIn:
        now = self._clock()
        name = (username or "").strip().lower()[:64]
        await self._check_rate(name, client, now)
        found = await self.users.password_hash(name)
        stored = found[1] if found else None
        matches = await verify_password_async(stored, password)  # runs even for unknown names
        user = found[0] if found else None
        ok = matches and user is not None and not user.disabled
        await self.users.record_attempt(name, client, now, succeeded=ok)
        await self._audit.record(
            tenant_id=self.users.tenant_id,
            actor=name or "?",
            action="auth.login" if ok else "auth.login_failed",
            now=now,
            details={"client": client} | ({} if ok else {"why": _why(found, matches)}),
        )
        if not ok or user is None:
            raise AuthenticationError(WRONG_LOGIN)
        if stored is not None and needs_rehash(stored):
            await self.users.update(name, now, password_hash=await hash_password_async(password))
        cookie, csrf = await self.users.create_session(
            user, now=now, lifetime=min(self.idle, SESSION_MAX_AGE), client=client
        )
        return LoggedIn(user, cookie, csrf)

    async def logout(self, cookie: str, actor: str) -> None:
        await self.users.end_session(cookie)
        await self._audit.record(
            tenant_id=self.users.tenant_id, actor=actor, action="auth.logout", now=self._clock()
        )

    async def _check_rate(self, name: str, client: str, now: datetime) -> None:
        window = timedelta(minutes=self._settings.login_window_minutes)
        by_user, by_client = await self.users.recent_failures(
            username=name, client=client, since=now - window
        )
        limits = (
            (by_user, self._settings.login_max_failures, "for this user name"),
            (by_client, self._settings.login_client_max_failures, "from this address"),
        )
        for failures, limit, scope in limits:
            if len(failures) >= limit:
                # free again when enough of the failures have left the window
                frees_at = failures[len(failures) - limit] + window
                wait = max(1, int((frees_at - now).total_seconds()) + 1)
                raise RateLimitedError(
                    f"too many failed logins {scope}; try again in {_minutes(wait)}", retry_after=wait
                )


def _why(found: tuple[UserRecord, str | None] | None, matches: bool) -> str:
    if found is None:
        return "unknown user"
    if found[1] is None:
        return "no password (token-only user)"
    if not matches:
        return "wrong password"
    return "disabled"


def _minutes(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


async def ensure_first_admin(
    users: UserRepository, audit: AuditRepository, now: datetime, password_file: str
) -> str | None:
    """On a deployment without any user, create ``admin`` with a random password, written to
    ``password_file`` (mode 0600) and returned so the operator can log in once and change it."""
    import os
    from pathlib import Path

    from voicebot.errors import ConflictError

    if await users.count() > 0:
        return None
    password = secrets.token_urlsafe(15)
    try:
        await users.create(
            username="admin",
            role=Role.ADMIN.value,
            now=now,
            password_hash=await hash_password_async(password),
            display_name="Administrator",
        )
    except ConflictError:  # another worker or process was first
        return None
    path = Path(password_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    await audit.record(
        tenant_id=users.tenant_id, actor="system", action="user.add", now=now, details={"user": "admin"}
    )
    return password
