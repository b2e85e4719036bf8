"""The real `voicebot` CLI in a subprocess: one-shot JSON turns, --session across invocations, and
a broken tenant file refused with the file and field named.

The CLI's data dir is the session's runtime data dir, so the intent model trained (or loaded) by
the in-process Runtimes is reused and no invocation trains it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import CALLER

VOICEBOT = Path(sys.executable).with_name("voicebot")
TIMEOUT_S = 300  # a hang guard only; nothing here asserts on speed


@pytest.fixture(scope="session")
def cli_env(runtime_data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEBOT_") and k != "DATABASE_URL"}
    env.update(VOICEBOT_DATA_DIR=str(runtime_data_dir), COLUMNS="1000", NO_COLOR="1", TERM="dumb")
    return env


def voicebot(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if not VOICEBOT.exists():
        pytest.skip(f"{VOICEBOT} is not installed (pip install -e .)")
    return subprocess.run(
        [str(VOICEBOT), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def chat_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = voicebot(env, "chat", "--json", *args)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout  # stdout is the JSON alone; progress goes to stderr
    data: dict[str, Any] = json.loads(lines[0])
    return data


def test_chat_message_json(cli_env: dict[str, str]) -> None:
    data = chat_json(cli_env, "--message", "What are your opening hours?")
    assert {"text", "action", "confidence", "intent", "citations"} <= data.keys()
    assert data["action"] == "answer"
    assert isinstance(data["confidence"], float) and 0.0 <= data["confidence"] <= 1.0
    assert data["citations"] and all(c["source"] and c["title"] for c in data["citations"])
    assert "Monday" in data["text"]


def test_chat_session_continues_across_invocations(cli_env: dict[str, str]) -> None:
    session = f"cli-{uuid.uuid4().hex[:8]}"
    first = chat_json(
        cli_env, "--caller", CALLER, "--session", session, "--message", "Where is my order A1001?"
    )
    assert first["session"] == session
    assert first["action"] == "clarify" and first["intent"] == "order_status"
    assert "postcode" in first["text"].lower()

    # a new process: the conversation (caller identified, order pending) comes from the database
    second = chat_json(cli_env, "--session", session, "--message", "My postcode is 1000")
    assert second["session"] == session
    assert second["action"] == "answer" and second["intent"] == "order_status"
    assert "A1001" in second["text"] and "Slovenska cesta 1" in second["text"]


def test_chat_interactive(cli_env: dict[str, str]) -> None:
    result = voicebot(cli_env, "chat", stdin="How long is the warranty?\n\n")
    assert result.returncode == 0, result.stderr
    assert "Demo Shop" in result.stdout  # the greeting
    assert "warranty" in result.stdout.lower()


def _unwrapped(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("id: demo\nname: Broken\nlanguages: [en]\nconfidence:\n  threshold: 250\n", "confidence.threshold"),
        ("id: Not A Valid Id\nname: Broken\nlanguages: [en]\n", "id"),
        ("id: demo\nname: Broken\nlanguages: [english]\n", "languages"),
        ("id: demo\nlanguages: [en]\n", "name"),
        ("id: demo\nname: Broken\nlanguages: [en]\nsurprise: 1\n", "surprise"),
        ("id: demo\nname: Broken\nlanguages: [en]\nknowledge: [no-such-folder]\n", "knowledge.0"),
    ],
    ids=["threshold", "id", "language", "missing-name", "unknown-key", "missing-kb"],
)
@pytest.mark.parametrize("command", ["serve", "chat"])
def test_broken_tenant_config_names_file_and_field(
    cli_env: dict[str, str], tmp_path: Path, command: str, content: str, field: str
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(content, encoding="utf-8")
    args = ["serve", "--port", "0"] if command == "serve" else ["chat", "--message", "hi"]
    result = voicebot(cli_env, *args, "--config", str(broken))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    stderr = _unwrapped(result.stderr)
    assert _unwrapped(f"file {broken}") in stderr, result.stderr
    assert _unwrapped(f"field {field}") in stderr, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    "content", ["id: [unclosed\n", "just a string\n", None], ids=["bad-yaml", "not-a-mapping", "missing-file"]
)
def test_unreadable_tenant_config_names_the_file(
    cli_env: dict[str, str], tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "broken.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = voicebot(cli_env, "chat", "--message", "hi", "--config", str(path))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert _unwrapped(f"file {path}") in _unwrapped(result.stderr), result.stderr


def test_email_process_prints_one_decision_per_message(cli_env: dict[str, str]) -> None:
    corpus = Path(__file__).resolve().parents[1] / "data" / "email"
    files = [corpus / "two_questions.eml", corpus / "out_of_office.eml", corpus / "mixed_attachments.eml"]
    result = voicebot(cli_env, "email", "process", *map(str, files), "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [r["file"] for r in rows] == [str(f) for f in files]
    assert all({"file", "intent", "action", "reasons", "reply_text", "customer"} <= r.keys() for r in rows)
    two, auto, attached = rows
    assert two["action"] == "reply" and len(two["answers"]) == 2
    assert auto["action"] == "ignore" and auto["reasons"] == ["noise:auto_reply"]
    assert attached["action"] == "draft" and "attachment_needs_human" in attached["reasons"]
    missing = voicebot(cli_env, "email", "process", str(corpus / "nope.eml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
