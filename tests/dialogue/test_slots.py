"""Slot extraction tables (English and Slovenian), masking between slots, and a never-raises property."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.dialogue.slots import extract_slots

NOW = datetime(2025, 3, 12, 10, 0)  # a Wednesday, local time in Ljubljana (UTC+1)
TZ = "Europe/Ljubljana"


def slots(text: str, language: str = "en", **kwargs: Any) -> dict[str, Any]:
    return extract_slots(text, language=language, now=NOW, timezone=TZ, **kwargs)


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("en", "where is my order A1001", {"order_id": "A1001"}),
        ("en", "order a 1001 please", {"order_id": "A1001"}),
        ("en", "A one zero zero one", {"order_id": "A1001"}),
        ("en", "it's a-2045", {"order_id": "A2045"}),
        ("sl", "naročilo A ena nič nič ena", {"order_id": "A1001"}),
        (
            "en",
            "tomorrow at 3pm",
            {"date": "2025-03-13", "time": "15:00", "datetime": "2025-03-13T15:00:00+01:00"},
        ),
        (
            "sl",
            "jutri ob 15h",
            {"date": "2025-03-13", "time": "15:00", "datetime": "2025-03-13T15:00:00+01:00"},
        ),
        ("en", "next Monday", {"date": "2025-03-17"}),
        ("sl", "naslednji ponedeljek", {"date": "2025-03-17"}),
        (
            "sl",
            "v petek ob 10.30",
            {"date": "2025-03-14", "time": "10:30", "datetime": "2025-03-14T10:30:00+01:00"},
        ),
        (
            "sl",
            "v sredo popoldne ob 4",
            {"date": "2025-03-19", "time": "16:00", "datetime": "2025-03-19T16:00:00+01:00"},
        ),
        (
            "sl",
            "20. marca ob 9h",
            {"date": "2025-03-20", "time": "09:00", "datetime": "2025-03-20T09:00:00+01:00"},
        ),
        (
            "en",
            "March 20th at 9am",
            {"date": "2025-03-20", "time": "09:00", "datetime": "2025-03-20T09:00:00+01:00"},
        ),
        (
            "en",
            "Friday next week at 2",
            {"date": "2025-03-21", "time": "14:00", "datetime": "2025-03-21T14:00:00+01:00"},
        ),
        ("en", "in two days", {"date": "2025-03-14"}),
        ("sl", "čez 3 dni", {"date": "2025-03-15"}),
        (
            "en",
            "the 14th at 10:30",
            {"date": "2025-03-14", "time": "10:30", "datetime": "2025-03-14T10:30:00+01:00"},
        ),
        ("en", "on 2 January", {"date": "2026-01-02"}),  # past this year -> next year
        (
            "en",
            "2025-04-01 09:00",
            {"date": "2025-04-01", "time": "09:00", "datetime": "2025-04-01T09:00:00+02:00"},
        ),  # summer time
        ("sl", "14. 3. 1985", {"birth_date": "1985-03-14"}),
        ("sl", "rojen sem 12. marca 1985", {"birth_date": "1985-03-12"}),
        ("en", "I was born on 12/03/1985", {"birth_date": "1985-03-12"}),
        ("en", "born 3rd of May 1979", {"birth_date": "1979-05-03"}),
        ("en", "I paid 49,90 €", {"amount": {"value": "49.90", "currency": "EUR"}}),
        ("en", "EUR 120.50", {"amount": {"value": "120.50", "currency": "EUR"}}),
        ("en", "$30", {"amount": {"value": "30.00", "currency": "USD"}}),
        ("sl", "plačal sem 1.234,56 evrov", {"amount": {"value": "1234.56", "currency": "EUR"}}),
        ("sl", "moja poštna številka je 1000", {"postcode": "1000"}),
        ("sl", "1000 Ljubljana", {"postcode": "1000"}),
        ("sl", "v 2000 Maribor", {"postcode": "2000"}),
        ("en", "2000", {"postcode": "2000"}),
        ("en", "SW1A 1AA", {"postcode": "SW1A 1AA"}),
        ("en", "call me on 041 123 456", {"phone": "+38641123456"}),
        ("en", "+386 41 555 123", {"phone": "+38641555123"}),
        ("en", "zero four one one two three four five six", {"phone": "+38641123456"}),
        ("en", "my email is Ana.Novak@Example.com.", {"email": "ana.novak@example.com"}),
        ("en", "john dot smith at gmail dot com", {"email": "john.smith@gmail.com"}),
        ("en", "hello", {}),
        ("sl", "kje je moje naročilo", {}),
        ("en", "I need 2 boxes", {}),
        ("en", "", {}),
    ],
)
def test_table(language: str, text: str, expected: dict[str, Any]) -> None:
    assert slots(text, language) == expected


def test_several_slots_in_one_message() -> None:
    found = slots("Order A1001, 49,90 € paid, deliver tomorrow at 10 to 1000 Ljubljana", "en")
    assert found == {
        "order_id": "A1001",
        "amount": {"value": "49.90", "currency": "EUR"},
        "postcode": "1000",
        "date": "2025-03-13",
        "time": "10:00",
        "datetime": "2025-03-13T10:00:00+01:00",
    }


def test_numbers_are_not_dates() -> None:
    for text in ["my order A1001", "I paid 49,90 €", "postcode 1000", "call 041 123 456"]:
        found = slots(text)
        assert "date" not in found and "birth_date" not in found, text


def test_configurable_order_pattern() -> None:
    assert slots("order 123456", order_pattern=r"\d{6}") == {"order_id": "123456"}
    assert slots("ref XY-12345", order_pattern=r"XY\d{5}") == {"order_id": "XY12345"}
    assert "order_id" not in slots("order A1001", order_pattern=r"\d{6}")


def test_aware_now_is_converted() -> None:
    now = datetime(2025, 3, 12, 23, 30, tzinfo=UTC)  # already the 13th in Ljubljana
    found = extract_slots("tomorrow", language="en", now=now, timezone=TZ)
    assert found == {"date": "2025-03-14"}
    assert extract_slots("tomorrow", language="en", now=now, timezone="Not/AZone") == {"date": "2025-03-13"}


def test_time_alone_is_today_or_tomorrow() -> None:
    assert slots("at 3pm")["date"] == "2025-03-12"
    assert slots("at 9am")["date"] == "2025-03-13"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["en", "sl", "de"]))
def test_never_raises(text: str, language: str) -> None:
    found = slots(text, language)
    assert isinstance(found, dict)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "A",
                "1",
                "0",
                " ",
                ".",
                "/",
                ":",
                "€",
                "ob",
                "at",
                "15h",
                "jutri",
                "3pm",
                "+386",
                "@",
                "x.si",
                "maja",
                "1985",
                "-",
                "pm",
            ]
        ),
        max_size=30,
    )
)
def test_never_raises_on_slot_like_noise(parts: list[str]) -> None:
    assert isinstance(slots("".join(parts), "sl"), dict)


def test_dateparser_fallback_for_rarer_phrases() -> None:
    assert slots("sometime next month") == {"date": "2025-04-12"}
    assert slots("can I come at the end of the week") == {}  # not understood: no slot, no error
