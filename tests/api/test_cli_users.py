"""`voicebot user ...` in a subprocess on a database of its own: add (password from stdin, or a
token-only machine user), list, disable, password, token; the token works against the API and
stops working when the user is disabled; bad input exits non-zero with the reason."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.api.test_cli import voicebot
from tests.auth_helpers import PASSWORD
from tests.conftest import serving
from voicebot.app import create_app
from voicebot.config import Settings
from voicebot.runtime import Runtime


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEBOT_") and k != "DATABASE_URL"}
    env.update(COLUMNS="1000", NO_COLOR="1", TERM="dumb", VOICEBOT_DATA_DIR=str(tmp_path / "data"))
    return env | {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"}


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = voicebot(env, *args, stdin=stdin)
    return result.returncode, result.stdout, result.stderr


def test_users_are_added_listed_disabled_and_audited(env: dict[str, str]) -> None:
    code, out, err = run(env, "user", "add", "Ana.Novak", "--role", "agent", "--name", "Ana Novak",
                         "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0, err
    assert "added ana.novak (agent)" in out
    assert run(env, "user", "add", "robot", "--role", "operator", "--no-password")[0] == 0
    code, out, _ = run(env, "user", "list", "--json")
    rows = {r["username"]: r for r in json.loads(out)}
    assert rows["ana.novak"]["display_name"] == "Ana Novak" and rows["ana.novak"]["has_password"] is True
    assert rows["robot"]["has_password"] is False and rows["robot"]["role"] == "operator"
    assert run(env, "user", "disable", "ana.novak")[0] == 0
    assert json.loads(run(env, "user", "list", "--json")[1])[0]["disabled"] is True
    assert (
        run(env, "user", "password", "ana.novak", "--password-stdin", stdin="another fine secret\n")[0] == 0
    )
    path = env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE actor = 'cli' ORDER BY id")]
    assert actions == ["user.add", "user.add", "user.disable", "user.password"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "add", "x", "--role", "boss", "--no-password"), None, "role must be one of"),
        (("user", "add", "bad name!", "--role", "agent", "--no-password"), None, "user name is 1 to 64"),
        (("user", "add", "kim", "--role", "agent", "--password-stdin"), "short\n", "at least 10"),
        (("user", "disable", "nobody"), None, "does not exist"),
        (("user", "token", "nobody"), None, "does not exist"),
    ],
)
def test_bad_input_exits_with_the_reason(
    env: dict[str, str], args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    code, _out, err = run(env, *args, stdin=stdin)
    assert code != 0 and message in " ".join(err.split())


def test_twice_the_same_name_is_refused(env: dict[str, str]) -> None:
    assert run(env, "user", "add", "lea", "--role", "agent", "--no-password")[0] == 0
    code, _out, err = run(env, "user", "add", "LEA", "--role", "admin", "--no-password")
    assert code != 0 and "already exists" in err


async def test_a_cli_token_opens_the_api_until_the_user_is_disabled(
    env: dict[str, str], tmp_path: Path, real_embedder: object
) -> None:
    assert run(env, "user", "add", "exporter", "--role", "operator", "--no-password")[0] == 0
    code, token, err = run(env, "user", "token", "exporter", "--name", "nightly")
    assert code == 0 and "shown once" in err
    token = token.strip()
    settings = Settings(data_dir=tmp_path / "data", database_url=env["DATABASE_URL"])
    app = create_app(settings, Runtime(settings, embedder=real_embedder))  # type: ignore[arg-type]
    async with serving(app, lifespan="on") as url, httpx.AsyncClient(base_url=url) as http:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/v1/campaigns", headers=headers)).status_code == 200
        assert (await http.get("/v1/handoffs", headers=headers)).status_code == 403  # not an agent
        assert run(env, "user", "disable", "exporter")[0] == 0
        assert (await http.get("/v1/campaigns", headers=headers)).status_code == 401
