"""Slot extraction from one message: order id, date/time, phone, e-mail, amount, postcode, birth date.

`extract_slots` never raises on any text and never reads the clock (`now` is injected). Values are
JSON-ready: ISO strings for dates and times, E.164 for phone numbers, ``{"value": "49.90",
"currency": "EUR"}`` for amounts. Spans already claimed by one slot (an order number, an amount, a
phone number, a postcode) are blanked before the date rules run, so "A1001", "49,90 €" or
"1000 Ljubljana" never become dates. A full date (day, month and year) in the past is a birth
date, not an appointment date.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from voicebot.dialogue.slots_dates import find_date

__all__ = ["DEFAULT_ORDER_PATTERN", "extract_slots"]

DEFAULT_ORDER_PATTERN = r"[A-Z]\d{4}"  # the canonical form, matched in full ("A1001")
MAX_CHARS = 1000  # slots come from short messages; longer text is cut (the cost stays bounded)

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "nič": "0",
    "nic": "0",
    "nula": "0",
    "ena": "1",
    "en": "1",
    "dva": "2",
    "dve": "2",
    "tri": "3",
    "štiri": "4",
    "stiri": "4",
    "pet": "5",
    "šest": "6",
    "sest": "6",
    "sedem": "7",
    "osem": "8",
    "devet": "9",
}
_DIGIT_WORD_RE = re.compile(
    r"\b(" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_SPOKEN_RUN = re.compile(r"\b\d(?:[\s-]+\d\b){2,}")  # "1 0 0 1" after digit words were replaced
# one-letter words that are prepositions or articles: "v 1000 Ljubljana" is not order V1000
_FUNCTION_LETTERS = {"sl": set("vszkhoaiu"), "en": {"i"}}
_ORDER_CANDIDATE = re.compile(r"(?<![\w@.])([A-Za-z]{1,3})([\s-]?)(\d(?:[\s-]?\d){2,11})(?![\w@])")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SPOKEN_AT = re.compile(r"\s+(?:at|afna|pri)\s+", re.IGNORECASE)
_SPOKEN_DOT = re.compile(r"\s+(?:dot|pika)\s+", re.IGNORECASE)

_CURRENCIES = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "evro": "EUR",
    "evrov": "EUR",
    "evra": "EUR",
    "evri": "EUR",
    "$": "USD",
    "usd": "USD",
    "dollars": "USD",
    "dolarjev": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "pounds": "GBP",
    "chf": "CHF",
}
_CUR = r"(?P<{0}>€|\$|£|eur(?:o|os)?\b|evr(?:o|ov|a|i)\b|usd\b|dollars\b|dolarjev\b|gbp\b|pounds\b|chf\b)"
_NUM = r"(?P<num>\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
_AMOUNT = re.compile(
    _CUR.format("pre")
    + r"\s?"
    + _NUM
    + r"(?!\d)|(?<![\d.,])"
    + _NUM.replace("num", "num2")
    + r"\s?"
    + _CUR.format("post"),
    re.IGNORECASE,
)

_UK_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})\b", re.IGNORECASE)
_FOUR_DIGITS = re.compile(r"(?<![\d.,:/-])([1-9]\d{3})(?![\d.,:/-]\d|\d)")
_POSTCODE_HINT = re.compile(r"(post\s?code|postal|zip|poštn|postn|pošta|posta)", re.IGNORECASE)
_CITY_AFTER = re.compile(r"\s+[A-ZČŠŽ][a-zčšžćđ]+")


def _digits_spoken(text: str) -> str:
    """ "A one zero zero one" -> "A1001"; single digits in a run of three or more are joined."""
    replaced = _DIGIT_WORD_RE.sub(lambda m: _DIGIT_WORDS[m.group(1).lower()], text)
    return _SPOKEN_RUN.sub(lambda m: re.sub(r"[\s-]+", "", m.group(0)), replaced)


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _order_id(text: str, language: str, pattern: re.Pattern[str]) -> tuple[str, tuple[int, int]] | None:
    function_letters = _FUNCTION_LETTERS.get(language, set())
    for match in _ORDER_CANDIDATE.finditer(text):
        letters, sep, digits = match.groups()
        if sep and letters.islower() and letters in function_letters:
            continue
        if sep and _AMOUNT.match(text, match.start(3)):
            continue  # "a 1000 euros"
        candidate = letters.upper() + re.sub(r"[\s-]", "", digits)
        if pattern.fullmatch(candidate):
            return candidate, match.span()
    for match in re.finditer(r"\b[A-Za-z0-9-]{3,20}\b", text):
        candidate = match.group(0).upper().replace("-", "")
        if pattern.fullmatch(candidate):
            return candidate, match.span()
    return None


def _amount(text: str) -> tuple[dict[str, str], tuple[int, int]] | None:
    match = _AMOUNT.search(text)
    if match is None:
        return None
    raw = match.group("num") or match.group("num2")
    symbol = (match.group("pre") or match.group("post")).lower()
    value = _number(raw)
    if value is None:
        return None
    return {"value": f"{value:.2f}", "currency": _CURRENCIES.get(symbol, "EUR")}, match.span()


def _number(raw: str) -> Decimal | None:
    """ "1.234,56" / "1,234.56" / "49,90" / "120.50" / "30" -> Decimal."""
    raw = raw.replace(" ", "")
    last_sep = max(raw.rfind(","), raw.rfind("."))
    if last_sep >= 0 and len(raw) - last_sep - 1 in (1, 2):  # a decimal separator
        integer, fraction = raw[:last_sep], raw[last_sep + 1 :]
    else:
        integer, fraction = raw, ""
    integer = integer.replace(",", "").replace(".", "")
    try:
        return Decimal(f"{integer or '0'}.{fraction or '0'}")
    except InvalidOperation:
        return None


def _phones(text: str, region: str) -> list[tuple[str, tuple[int, int]]]:
    found = []
    try:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            found.append((e164, (match.start, match.end)))
    except Exception:  # phonenumbers may raise on odd input; no phone then
        return []
    return found


def _email(text: str) -> tuple[str, tuple[int, int]] | None:
    match = _EMAIL.search(text)
    if match:
        return match.group(0).rstrip(".").lower(), match.span()
    if _SPOKEN_AT.search(text) and _SPOKEN_DOT.search(text):
        spoken = _SPOKEN_DOT.sub(".", _SPOKEN_AT.sub("@", text))
        found = _EMAIL.search(spoken)
        if found:
            return found.group(0).lower(), (0, 0)  # spans differ after rewriting; nothing to blank
    return None


def _postcode(text: str) -> tuple[str, tuple[int, int]] | None:
    for match in _UK_POSTCODE.finditer(text):
        outward = match.group(1).upper()
        if any(c.isalpha() for c in outward) and not outward.isdigit():
            return f"{outward} {match.group(2).upper()}", match.span()
    hinted = bool(_POSTCODE_HINT.search(text))
    for match in _FOUR_DIGITS.finditer(text):
        alone = not text[: match.start()].strip(" ,.:") and not re.search(r"\d", text[match.end() :])
        city = _CITY_AFTER.match(text, match.end()) is not None
        if hinted or city or alone:
            return match.group(1), match.span()
    return None


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def extract_slots(
    text: str,
    *,
    language: str,
    now: datetime,
    timezone: str,
    default_region: str = "SI",
    order_pattern: str | re.Pattern[str] = DEFAULT_ORDER_PATTERN,
) -> dict[str, Any]:
    """Every slot found in `text`. `now` may be aware (converted to `timezone`) or naive (taken as local)."""
    pattern = re.compile(order_pattern) if isinstance(order_pattern, str) else order_pattern
    text = text[:MAX_CHARS].replace("\x00", " ")
    slots: dict[str, Any] = {}
    rest = text
    if (email := _email(rest)) is not None:
        slots["email"] = email[0]
        rest = _blank(rest, *email[1])
    if (amount := _amount(rest)) is not None:
        slots["amount"] = amount[0]
        rest = _blank(rest, *amount[1])
    spoken = _digits_spoken(rest)
    if (order := _order_id(spoken, language, pattern)) is not None:
        slots["order_id"] = order[0]
        spoken = _blank(spoken, *order[1])
    for number, span in _phones(spoken, default_region):
        slots.setdefault("phone", number)
        spoken = _blank(spoken, *span)
    if (postcode := _postcode(spoken)) is not None:
        slots["postcode"] = postcode[0]
        spoken = _blank(spoken, *postcode[1])
    zone = _zone(timezone)
    local_now = now.astimezone(zone) if now.tzinfo else now.replace(tzinfo=zone)
    found = find_date(spoken, local_now)
    if found is not None:
        if found.full and found.day < local_now.date():
            slots["birth_date"] = found.day.isoformat()
        else:
            slots["date"] = found.day.isoformat()
            if found.at is not None:
                slots["time"] = found.at.strftime("%H:%M")
                slots["datetime"] = datetime.combine(found.day, found.at, tzinfo=zone).isoformat()
    return slots
