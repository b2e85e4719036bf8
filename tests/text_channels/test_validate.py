import pytest

from voicebot.errors import InputError, TooLargeError
from voicebot.text_channels.chat import validate_text


@pytest.mark.parametrize("text", ["", "hello", "Kje je moje naročilo?", "tab\there\nnewline", "emoji 🙂"])
def test_usable_text_passes(text: str) -> None:
    assert validate_text(text, 100) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "must be a string"),
        (42, "must be a string"),
        ("a\x00b", "NUL"),
        ("lone \ud800 surrogate", "not valid Unicode"),
        ("\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f", "not readable text"),
    ],
)
def test_unusable_text_is_refused_with_a_reason(text: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_text(text, 100)


def test_too_long_is_413_with_the_limit() -> None:
    with pytest.raises(TooLargeError, match="limit is 10") as info:
        validate_text("x" * 11, 10)
    assert info.value.http_status == 413
