"""`voicebot campaign ...` in a subprocess on a SQLite database of its own: create, list, the control
actions (same rules and audit rows as the API, actor ``cli``), status (--json, --watch), export (CSV
and JSON, the API's rows) and the do-not-call list; errors exit non-zero with the message."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_cli import TIMEOUT_S, VOICEBOT, voicebot
from voicebot.storage.campaigns import CampaignRepository
from voicebot.storage.db import Database

DEFINITION = Path(__file__).resolve().parents[2] / "campaigns" / "payment-reminder.yaml"
CONTACTS = (
    "phone,name,invoice_number,amount,due_date\n"
    "+38640111222,Ana Novak,R-1,49.90 EUR,2026-11-01\n"
    "12,Nobody,R-2,1 EUR,2026-11-01\n"
    "040 111 333,[bold]Marko[/bold],R-3,10 EUR,2026-11-02\n"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Only a database: the campaign commands load no models."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEBOT_") and k != "DATABASE_URL"}
    env.update(COLUMNS="1000", NO_COLOR="1", TERM="dumb", VOICEBOT_DATA_DIR=str(tmp_path / "data"))
    return env | {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'campaigns.db'}"}


@pytest.fixture
def campaign_id(env: dict[str, str], tmp_path: Path) -> str:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS)
    created = voicebot(env, "campaign", "create", str(DEFINITION), "--contacts", str(contacts), "--json")
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert result["status"] == "draft" and result["contacts"] == 2
    assert [e["line"] for e in result["errors"]] == [3]
    return str(result["id"])


def ok(env: dict[str, str], *args: str) -> str:
    result = voicebot(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(env: dict[str, str], *args: str) -> str:
    result = voicebot(env, *args)
    assert result.returncode != 0, result.stdout
    return result.stderr


def status_json(env: dict[str, str], campaign_id: str) -> dict[str, Any]:
    (line,) = [line for line in ok(env, "campaign", "status", campaign_id, "--json").splitlines() if line]
    data: dict[str, Any] = json.loads(line)
    return data


def campaign_audit(env: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    path = env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT actor, action, details FROM audit_log WHERE action LIKE 'campaign.%' ORDER BY id"
        ).fetchall()
    return [(actor, action, json.loads(details)) for actor, action, details in rows]


def call_first_contact(env: dict[str, str], campaign_id: str, outcome: str) -> None:
    """What the dialer does, through the repository (no SIP here): plan the due contacts (both are
    then ``calling``) and record how the first call ended."""

    async def call() -> None:
        db = Database(env["DATABASE_URL"])
        await db.start()
        try:
            repo = CampaignRepository(db)
            now = datetime.now(UTC)
            first = (await repo.plan_due(campaign_id, now, lease_s=30.0))[0]
            await repo.finish_attempt(first.id, outcome=outcome, next_due_at=None, now=now)
        finally:
            await db.stop()

    asyncio.run(call())


def test_a_campaign_is_controlled_watched_and_exported(
    env: dict[str, str], campaign_id: str, tmp_path: Path
) -> None:
    (row,) = [json.loads(line) for line in ok(env, "campaign", "list", "--json").splitlines() if line]
    assert row["id"] == campaign_id and row["contacts"] == {"pending": 2} and row["status"] == "draft"

    assert "draft -> running" in ok(env, "campaign", "start", campaign_id)
    call_first_contact(env, campaign_id, "promised_to_pay")
    status = status_json(env, campaign_id)
    assert status["status"] == "running"
    assert status["contacts"] == {"pending": 0, "calling": 1, "done": 1}
    assert status["outcomes"] == {"promised_to_pay": 1}
    assert (status["ended"], status["total"]) == (1, 2)
    shown = ok(env, "campaign", "status", campaign_id)
    assert "1/2 contacts ended" in shown and "promised_to_pay" in shown and "running" in shown

    assert "running -> paused" in ok(env, "campaign", "pause", campaign_id)
    assert "paused -> running" in ok(env, "campaign", "resume", campaign_id)

    # --watch follows the campaign until it is stopped (one JSON line per refresh)
    watcher = subprocess.Popen(
        [str(VOICEBOT), "campaign", "status", campaign_id, "--watch", "--json", "--interval", "0.05"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        assert json.loads(watcher.stdout.readline())["status"] == "running"
        assert "running -> stopped" in ok(env, "campaign", "stop", campaign_id)
        rest, errors = watcher.communicate(timeout=TIMEOUT_S)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, errors
    assert json.loads(rest.splitlines()[-1])["status"] == "stopped"
    watched = ok(env, "campaign", "status", campaign_id, "--watch")  # ends at once: stopped
    assert "stopped" in watched and "1/2 contacts ended" in watched

    assert [(actor, action, d["from"]) for actor, action, d in campaign_audit(env)[1:]] == [
        ("cli", "campaign.start", "draft"),
        ("cli", "campaign.pause", "running"),
        ("cli", "campaign.resume", "paused"),
        ("cli", "campaign.stop", "running"),
    ]
    assert campaign_audit(env)[0][:2] == ("cli", "campaign.created")

    exported = ok(env, "campaign", "export", campaign_id)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["phone"], r["name"], r["status"], r["outcome"]) for r in rows] == [
        ("+38640111222", "Ana Novak", "done", "promised_to_pay"),
        ("+38640111333", "[bold]Marko[/bold]", "calling", ""),
    ]
    as_json = json.loads(ok(env, "campaign", "export", campaign_id, "--format", "json"))
    assert as_json["campaign_id"] == campaign_id
    assert [r["attempts"] for r in as_json["contacts"]] == [1, 1]
    assert as_json["contacts"][0]["next_due_at"] is None
    target = tmp_path / "out" / "results.csv"
    target.parent.mkdir()
    written = voicebot(env, "campaign", "export", campaign_id, "--output", str(target))
    assert written.returncode == 0 and written.stdout == "" and "2 contacts written" in written.stderr
    assert target.read_text(encoding="utf-8") == exported


def test_wrong_moves_and_unknown_campaigns_are_refused(env: dict[str, str], campaign_id: str) -> None:
    assert "only a paused campaign can be resumed (this one is draft)" in fails(
        env, "campaign", "resume", campaign_id
    )
    assert "cannot move from draft to paused" in fails(env, "campaign", "pause", campaign_id)
    ok(env, "campaign", "stop", campaign_id)
    assert "cannot move from stopped to running" in fails(env, "campaign", "start", campaign_id)
    for command in ("start", "pause", "resume", "stop", "status", "export"):
        assert "campaign nope does not exist" in fails(env, "campaign", command, "nope")
    assert "unknown format 'xml'" in fails(env, "campaign", "export", campaign_id, "--format", "xml")
    assert [action for _, action, _ in campaign_audit(env)] == ["campaign.created", "campaign.stop"]


def test_create_and_the_do_not_call_list(env: dict[str, str], tmp_path: Path) -> None:
    nobody = tmp_path / "nobody.csv"
    nobody.write_text("phone,name\n12,Nobody\n")
    refused = fails(env, "campaign", "create", str(DEFINITION), "--contacts", str(nobody))
    assert "no valid contact" in refused and "line 2" in refused
    missing = voicebot(env, "campaign", "create", str(tmp_path / "nope.yaml"), "--contacts", str(nobody))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert ok(env, "campaign", "list", "--json") == ""

    added = ok(env, "campaign", "dnc", "add", "040 111 333", "--reason", "asked")
    assert "+38640111333" in added
    shown = ok(env, "campaign", "dnc", "list")
    assert "+38640111333" in shown and "all campaigns" in shown
    assert "not a phone number" in fails(env, "campaign", "dnc", "add", "not a number")


def test_help_names_every_command(env: dict[str, str]) -> None:
    shown = ok(env, "campaign", "--help")
    for command in ("create", "list", "start", "pause", "resume", "stop", "status", "export", "dnc"):
        assert f" {command} " in shown, command
    assert "--watch" in ok(env, "campaign", "status", "--help")
