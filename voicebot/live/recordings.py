"""Where a call's recording lives (written by the call pipeline, served by the review API)."""

from __future__ import annotations

from pathlib import Path

from voicebot.config import Settings


def recordings_dir(settings: Settings, tenant_id: str) -> Path:
    return settings.data_dir / "recordings" / tenant_id


def recording_path(settings: Settings, tenant_id: str, conversation_id: str) -> Path:
    """The WAV file of one call. The id is checked: it names a file, so it must not be a path."""
    if not conversation_id or any(c in conversation_id for c in "/\\\x00") or conversation_id in (".", ".."):
        from voicebot.errors import InputError

        raise InputError("the conversation id is not valid")
    return recordings_dir(settings, tenant_id) / f"{conversation_id}.wav"
