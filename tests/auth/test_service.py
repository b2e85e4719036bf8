"""Logging in against the real database: sessions, the rate limit, disabled users, the first admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.auth_helpers import add_user
from voicebot.auth.roles import Role
from voicebot.auth.service import AuthService, ensure_first_admin
from voicebot.errors import AuthenticationError, RateLimitedError
from voicebot.runtime import Runtime

PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def service(runtime: Runtime, clock: Clock) -> AuthService:
    return AuthService(runtime.users, runtime.audit, runtime.settings, clock)


async def test_login_makes_a_session_that_slides_and_ends(runtime: Runtime) -> None:
    clock = Clock()
    auth = service(runtime, clock)
    await add_user(runtime, "ana", PASSWORD, Role.AGENT)
    logged_in = await auth.login("Ana", PASSWORD, client="127.0.0.1")  # user names ignore case
    assert logged_in.user.username == "ana" and logged_in.csrf_token
    session = await runtime.users.session(logged_in.cookie, clock(), idle=auth.idle)
    assert session is not None and session.csrf_token == logged_in.csrf_token
    clock.now += auth.idle - timedelta(minutes=5)  # used before it runs out: it slides
    assert await runtime.users.session(logged_in.cookie, clock(), idle=auth.idle) is not None
    clock.now += auth.idle - timedelta(minutes=5)
    assert await runtime.users.session(logged_in.cookie, clock(), idle=auth.idle) is not None
    clock.now += auth.idle + timedelta(minutes=1)  # idle too long
    assert await runtime.users.session(logged_in.cookie, clock(), idle=auth.idle) is None
    assert await runtime.users.session("forged", clock(), idle=auth.idle) is None


async def test_wrong_passwords_are_rate_limited_per_user_and_forgiven_after_the_window(
    runtime: Runtime,
) -> None:
    clock = Clock()
    auth = service(runtime, clock)
    await add_user(runtime, "ben", PASSWORD, Role.SUPERVISOR)
    limit = runtime.settings.login_max_failures
    for _ in range(limit):
        with pytest.raises(AuthenticationError):
            await auth.login("ben", "wrong password!", client="10.0.0.1")
        clock.now += timedelta(seconds=10)
    with pytest.raises(RateLimitedError) as refused:  # even the right password waits now
        await auth.login("ben", PASSWORD, client="10.0.0.2")
    window = timedelta(minutes=runtime.settings.login_window_minutes)
    assert 0 < refused.value.retry_after <= window.total_seconds()
    clock.now += timedelta(seconds=refused.value.retry_after)
    assert (await auth.login("ben", PASSWORD, client="10.0.0.2")).user.username == "ben"
    # a success forgives the earlier failures
    with pytest.raises(AuthenticationError):
        await auth.login("ben", "wrong password!", client="10.0.0.2")
    assert (await auth.login("ben", PASSWORD, client="10.0.0.2")).user.username == "ben"


async def test_one_address_guessing_many_names_is_limited(runtime: Runtime) -> None:
    clock = Clock()
    auth = service(runtime, clock)
    for n in range(runtime.settings.login_client_max_failures):
        with pytest.raises(AuthenticationError):
            await auth.login(f"guess{n}", "some password", client="203.0.113.9")
    with pytest.raises(RateLimitedError, match="from this address"):
        await auth.login("someone", "some password", client="203.0.113.9")


async def test_unknown_disabled_and_token_only_users_cannot_log_in(runtime: Runtime) -> None:
    clock = Clock()
    auth = service(runtime, clock)
    await add_user(runtime, "cid", PASSWORD, Role.OPERATOR)
    await runtime.users.create(username="robot", role=Role.OPERATOR.value, now=clock())
    await runtime.users.update("cid", clock(), disabled=True)
    for name, password in (("nobody", PASSWORD), ("cid", PASSWORD), ("robot", "")):
        with pytest.raises(AuthenticationError, match="wrong"):
            await auth.login(name, password, client="127.0.0.1")
    failures = await runtime.audit.search(runtime.tenant.id, action="auth.login_failed")
    assert {e.details["why"] for e in failures} == {
        "unknown user",
        "disabled",
        "no password (token-only user)",
    }


async def test_disabling_ends_sessions_and_refuses_tokens(runtime: Runtime) -> None:
    clock = Clock()
    auth = service(runtime, clock)
    await add_user(runtime, "dora", PASSWORD, Role.AGENT)
    logged_in = await auth.login("dora", PASSWORD, client="127.0.0.1")
    token, _ = await runtime.users.issue_token("dora", name="script", now=clock())
    assert (await runtime.users.user_for_token(token, clock())) is not None
    await runtime.users.update("dora", clock(), disabled=True)
    assert await runtime.users.session(logged_in.cookie, clock(), idle=auth.idle) is None
    assert await runtime.users.user_for_token(token, clock()) is None


async def test_a_revoked_token_is_refused(runtime: Runtime) -> None:
    clock = Clock()
    await runtime.users.create(username="ci", role=Role.OPERATOR.value, now=clock())
    token, record = await runtime.users.issue_token("ci", name="ci", now=clock())
    assert token.startswith("vbt_") and record.prefix == token[:10]
    await runtime.users.revoke_token("ci", record.id, clock())
    assert await runtime.users.user_for_token(token, clock()) is None


async def test_the_first_admin_is_made_once(runtime: Runtime, tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "admin-password"
    password = await ensure_first_admin(runtime.users, runtime.audit, clock(), str(path))
    assert password is not None and path.read_text().strip() == password
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert await ensure_first_admin(runtime.users, runtime.audit, clock(), str(path)) is None
    logged_in = await service(runtime, clock).login("admin", password, client="127.0.0.1")
    assert logged_in.user.role == "admin"
