"""Language detection among the tenant's languages, on short customer messages."""

from __future__ import annotations

import pytest

from voicebot.dialogue.language import LanguageDetector
from voicebot.errors import ConfigError


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(["sl", "en"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kje je moje naročilo", "sl"),
        ("kje je moje narocilo", "sl"),
        ("where is my order", "en"),
        ("hvala", "sl"),
        ("Hvala!", "sl"),
        ("ja", "sl"),
        ("ne", "sl"),
        ("prosim", "sl"),
        ("dober dan", "sl"),
        ("zdravo", "sl"),
        ("jutri ob 15h", "sl"),
        ("rad bi govoril z nekom", "sl"),
        ("želim prestaviti termin", "sl"),
        ("moj račun je previsok", "sl"),
        ("thanks", "en"),
        ("thank you", "en"),
        ("yes", "en"),
        ("hello", "en"),
        ("tomorrow at 3pm", "en"),
        ("can I speak to someone", "en"),
        ("I want to cancel my appointment", "en"),
        ("my invoice is wrong", "en"),
        ("ok", None),
        ("OK.", None),
        ("no", None),
        ("A1001", None),
        ("1000", None),
        ("", None),
        ("?!", None),
    ],
)
def test_table(detector: LanguageDetector, text: str, expected: str | None) -> None:
    language, confidence = detector.detect(text)
    assert language == expected
    assert 0.0 <= confidence <= 1.0


def test_single_language_tenant() -> None:
    assert LanguageDetector(["en"]).detect("kje je moje naročilo") == ("en", 1.0)


def test_restricted_to_tenant_languages() -> None:
    detector = LanguageDetector(["en", "de"])
    assert detector.detect("wo ist meine Bestellung") == (
        "de",
        pytest.approx(detector.detect("wo ist meine Bestellung")[1]),
    )
    assert detector.detect("where is my order")[0] == "en"


def test_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        LanguageDetector(["xx"])
    with pytest.raises(ConfigError):
        LanguageDetector([])
