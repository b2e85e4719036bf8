"""Accounts for tests: a user with a role and its API token, or a user who logs in with a password."""

from __future__ import annotations

import uuid
from typing import Any

from voicebot.auth.passwords import hash_password_async
from voicebot.auth.roles import Role


async def token_for(runtime: Any, role: Role = Role.ADMIN, *, username: str | None = None) -> str:
    """A new token-only user with ``role`` and an API token of theirs."""
    name = username or f"{role.value}-{uuid.uuid4().hex[:8]}"
    await runtime.users.create(username=name, role=role.value, now=runtime.clock())
    token, _record = await runtime.users.issue_token(name, name="tests", now=runtime.clock())
    return token


async def token_headers(
    runtime: Any, role: Role = Role.ADMIN, *, username: str | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token_for(runtime, role, username=username)}"}


async def add_user(runtime: Any, username: str, password: str, role: Role) -> None:
    """A user who logs in to the console with ``password``."""
    await runtime.users.create(
        username=username,
        role=role.value,
        now=runtime.clock(),
        password_hash=await hash_password_async(password),
    )


PASSWORD = "correct horse battery staple"


async def browser_login(page: Any, base_url: str, runtime: Any, role: Role, *, next_path: str = "") -> str:
    """Log a new ``role`` user in through the console's login form; returns the user name. With
    ``next_path`` the browser ends on that page."""
    username = f"{role.value}-{uuid.uuid4().hex[:6]}"
    await add_user(runtime, username, PASSWORD, role)
    query = f"?next={next_path}" if next_path else ""
    await page.goto(f"{base_url}/login{query}")
    await page.get_by_test_id("lg-username").fill(username)
    await page.get_by_test_id("lg-password").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_test_id("lg-submit").click()
    return username


async def staff_client(base_url: str, app_or_runtime: Any, role: Role = Role.ADMIN, **options: Any) -> Any:
    """An httpx client on a served app with a ``role`` user's API token (use with ``async with``)."""
    import httpx

    runtime = getattr(getattr(app_or_runtime, "state", None), "runtime", app_or_runtime)
    return httpx.AsyncClient(base_url=base_url, headers=await token_headers(runtime, role), **options)
