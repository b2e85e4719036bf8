"""The hand-kept migrations create exactly what voicebot/storage/tables.py declares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from voicebot.storage import Database
from voicebot.storage.db import alembic_config
from voicebot.storage.tables import metadata

ROOT = Path(__file__).resolve().parents[2]


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrations_match_tables(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_every_table_is_created(db: Database) -> None:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(metadata.tables) | {"alembic_version"} == names


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == ["0006"]


async def test_downgrade_to_base_and_up_again(db: Database) -> None:
    def cycle(connection: Connection) -> set[str]:
        command.downgrade(alembic_config(connection), "base")
        left = set(inspect(connection).get_table_names())
        command.upgrade(alembic_config(connection), "head")
        return left

    async with db.engine.begin() as conn:
        left = await conn.run_sync(cycle)
    assert left <= {"alembic_version"}
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


def test_alembic_cli_upgrades_with_x_url(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            "voicebot/storage/alembic.ini",
            "-x",
            f"url=sqlite+aiosqlite:///{path}",
            "upgrade",
            "head",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert path.exists()


def test_alembic_cli_reads_database_url(tmp_path: Path) -> None:
    path = tmp_path / "env.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "voicebot/storage/alembic.ini", "current"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
