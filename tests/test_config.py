from pathlib import Path

import pytest

from voicebot.config import DEMO_TENANT, LowConfidenceAction, load_tenant
from voicebot.errors import ConfigError


def test_demo_tenant_loads_with_resolved_paths() -> None:
    tenant = load_tenant(DEMO_TENANT)
    assert tenant.id == "demo"
    assert tenant.languages == ["en", "sl"]
    assert tenant.threshold == pytest.approx(tenant.confidence.threshold / 100)
    assert all(p.is_absolute() and p.exists() for p in tenant.knowledge)
    assert tenant.intents is not None and tenant.intents.exists()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenant.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("id: x\nname: X\nlanguages: [en]\nconfidence: {threshold: 150}\n", "confidence.threshold"),
        ("id: x\nname: X\nlanguages: [english]\n", "languages"),
        (
            "id: x\nname: X\nlanguages: [en]\nconfidence: {below_threshold: shrug}\n",
            "confidence.below_threshold",
        ),
        ("id: x\nname: X\nlanguages: [en]\nunknown_key: 1\n", "unknown_key"),
        ("id: x\nlanguages: [en]\n", "name"),
        ("id: x\nname: X\nlanguages: [en]\nknowledge: [missing-folder]\n", "knowledge.0"),
        ("id: x\nname: X\nlanguages: [en]\ncrm: {adapter: rest}\n", "crm.rest"),
    ],
)
def test_broken_tenant_names_file_and_field(tmp_path: Path, body: str, field: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_tenant(path)
    assert str(path) in str(info.value)
    assert f"field {field}" in str(info.value)


@pytest.mark.parametrize("body", ["", "- a list\n", "id: [unclosed\n", "\udcff"])
def test_unreadable_tenant_names_the_file(tmp_path: Path, body: str) -> None:
    path = tmp_path / "tenant.yaml"
    path.write_bytes(body.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError) as info:
        load_tenant(path)
    assert str(path) in str(info.value)


def test_missing_tenant_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_tenant(tmp_path / "nope.yaml")


def test_policy_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "id: x\nname: X\nlanguages: [en]\nconfidence: {threshold: 80, below_threshold: handoff}\n"
    )
    tenant = load_tenant(path)
    assert tenant.threshold == 0.8
    assert tenant.confidence.below_threshold is LowConfidenceAction.HANDOFF


def test_voice_smart_turn_is_opt_in_and_validated() -> None:
    from pydantic import ValidationError

    from voicebot.config import VoiceConfig

    voice = VoiceConfig()
    assert voice.smart_turn is False and voice.smart_turn_stop_secs == 2.0
    assert load_tenant(DEMO_TENANT).voice.smart_turn is False  # the demo ends turns on VAD silence
    voice = VoiceConfig(smart_turn=True, smart_turn_stop_secs=1.5, vad_stop_secs=0.2)
    assert voice.smart_turn and voice.smart_turn_stop_secs == 1.5
    with pytest.raises(ValidationError, match="smart_turn_stop_secs must be longer"):
        VoiceConfig(smart_turn=True, smart_turn_stop_secs=0.2, vad_stop_secs=0.25)
    with pytest.raises(ValidationError):
        VoiceConfig(smart_turn_stop_secs=0)
    with pytest.raises(ValidationError):
        VoiceConfig(smart_turn="sometimes")
