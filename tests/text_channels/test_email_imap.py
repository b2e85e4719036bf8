"""IMAP answer parsing as aioimaplib hands it over (untagged data without "* ", the status line last)."""

from __future__ import annotations

import pytest

from voicebot.errors import ProviderUnavailable
from voicebot.text_channels.email_imap import parse_fetch, parse_search, parse_uidvalidity


def test_search_uids() -> None:
    assert parse_search([b"4 7 12", b"Search completed (0.001 + 0.000 secs)."]) == [4, 7, 12]
    assert parse_search([b"SEARCH 3 5", b"Search completed."]) == [3, 5]
    assert parse_search([b"Search completed (0.001 secs)."]) == []  # no data line: nothing new
    assert parse_search([b"", b"Search completed."]) == []


def test_uidvalidity_from_select() -> None:
    lines = [
        b"FLAGS (\\Answered \\Seen)",
        b"OK [UIDVALIDITY 1795518068] UIDs valid",
        b"1 EXISTS",
        b"[READ-WRITE] Select completed.",
    ]
    assert parse_uidvalidity(lines) == 1795518068
    with pytest.raises(ProviderUnavailable):
        parse_uidvalidity([b"1 EXISTS", b"Select completed."])


def test_fetch_literal() -> None:
    raw = b"From: a@b\r\n\r\nhi\r\n"
    lines = [b"1 FETCH (UID 5 BODY[] {17}", bytearray(raw), b")", b"Fetch completed."]
    assert parse_fetch([bytes(x) for x in lines]) == raw
    assert parse_fetch([b"Fetch completed."]) is None
