"""`voicebot user ...`: console accounts and API tokens from the command line (actor "cli" in the audit)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from voicebot.cli import ConfigOption, _run, _settings, err, out
from voicebot.config import Settings
from voicebot.errors import InputError

user_app = typer.Typer(
    help="Console users (admin, supervisor, agent, operator) and API tokens.", no_args_is_help=True
)

Username = Annotated[str, typer.Argument(help="The user name (letters, digits, . _ - @).")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]


@asynccontextmanager
async def _accounts(settings: Settings) -> AsyncIterator[Any]:
    from voicebot.config import load_tenant
    from voicebot.storage.audit import AuditRepository
    from voicebot.storage.db import Database
    from voicebot.storage.users import UserRepository

    tenant = load_tenant(settings.tenant_config)
    db = Database(settings.resolved_database_url())
    await db.start()
    try:
        yield UserRepository(db, tenant.id), AuditRepository(db)
    finally:
        await db.stop()


async def _audit(audit: Any, tenant_id: str, action: str, details: dict[str, Any]) -> None:
    await audit.record(
        tenant_id=tenant_id, actor="cli", action=action, now=datetime.now(UTC), details=details
    )


def _password_hash(username: str, from_stdin: bool) -> str:
    """The Argon2id hash of a password read from stdin or asked twice; exits with the rule it breaks."""
    from voicebot.auth.passwords import check_password_rules, hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"password for {username}", hide_input=True, confirmation_prompt=True)
    try:
        check_password_rules(password, username)
    except InputError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    return hash_password(password)


@user_app.command("add")
def user_add(
    username: Username,
    role: Annotated[str, typer.Option("--role", "-r", help="admin, supervisor, agent or operator.")],
    name: Annotated[str | None, typer.Option("--name", help="The name shown in the console.")] = None,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="A machine user: API tokens only, no console login.")
    ] = False,
    password_stdin: PasswordStdin = False,
    config: ConfigOption = None,
) -> None:
    """Add a user. Asks for the password twice (hidden) unless --no-password or --password-stdin."""
    from voicebot.auth.roles import parse_role

    settings = _settings(config)
    try:
        chosen = parse_role(role)
    except InputError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    password_hash = None if no_password else _password_hash(username, password_stdin)

    async def add() -> Any:
        async with _accounts(settings) as (users, audit):
            user = await users.create(
                username=username,
                role=chosen.value,
                now=datetime.now(UTC),
                password_hash=password_hash,
                display_name=name,
            )
            await _audit(audit, users.tenant_id, "user.add", {"user": user.username, "role": user.role})
            return user

    user = _run(add())
    out.print(f"added {user.username} ({user.role})")


@user_app.command("list")
def user_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False, config: ConfigOption = None
) -> None:
    """The users, their roles and when they last logged in."""
    settings = _settings(config)

    async def listing() -> list[Any]:
        async with _accounts(settings) as (users, _audit_repo):
            result: list[Any] = await users.list()
            return result

    users = _run(listing())
    if as_json:
        rows = [
            {
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "disabled": u.disabled,
                "has_password": u.has_password,
                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in users
        ]
        out.print_json(json.dumps(rows))
        return
    table = Table("user", "name", "role", "status", "last login")
    for u in users:
        status = "disabled" if u.disabled else ("token only" if not u.has_password else "active")
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never"
        table.add_row(u.username, escape(u.display_name), u.role, status, last)
    out.print(table)


def _set_disabled(username: str, disabled: bool, config: Any) -> None:
    settings = _settings(config)
    action = "disable" if disabled else "enable"

    async def change() -> Any:
        async with _accounts(settings) as (users, audit):
            user = await users.update(username, datetime.now(UTC), disabled=disabled)
            await _audit(audit, users.tenant_id, f"user.{action}", {"user": user.username})
            return user

    user = _run(change())
    out.print(
        f"{user.username} is {'disabled: its sessions ended, its tokens refused' if disabled else 'enabled'}"
    )


@user_app.command("disable")
def user_disable(username: Username, config: ConfigOption = None) -> None:
    """Disable a user: ends their sessions and refuses their tokens (kept for the audit trail)."""
    _set_disabled(username, True, config)


@user_app.command("enable")
def user_enable(username: Username, config: ConfigOption = None) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False, config)


@user_app.command("password")
def user_password(
    username: Username,
    password_stdin: PasswordStdin = False,
    config: ConfigOption = None,
) -> None:
    """Set a user's password (ends their sessions)."""
    settings = _settings(config)
    password_hash = _password_hash(username, password_stdin)

    async def change() -> Any:
        async with _accounts(settings) as (users, audit):
            user = await users.update(username, datetime.now(UTC), password_hash=password_hash)
            await _audit(audit, users.tenant_id, "user.password", {"user": user.username})
            return user

    out.print(f"the password of {_run(change()).username} is set")


@user_app.command("token")
def user_token(
    username: Username,
    name: Annotated[str, typer.Option("--name", help="What the token is for (shown in lists).")] = "api",
    config: ConfigOption = None,
) -> None:
    """Issue an API token for the user and print it (once: only its hash is kept). Send it as
    `Authorization: Bearer <token>`."""
    settings = _settings(config)

    async def issue() -> str:
        async with _accounts(settings) as (users, audit):
            token, record = await users.issue_token(username, name=name, now=datetime.now(UTC))
            await _audit(
                audit, users.tenant_id, "token.issue", {"user": username.lower(), "token": record.prefix}
            )
            return token

    token = _run(issue())
    err.print("[dim]the token is shown once; keep it secret[/dim]")
    out.print(token, highlight=False, soft_wrap=True)
