"""Dates and times in English and Slovenian customer messages, relative to an injected `now`.

Rules first (they cover what customers say: "tomorrow at 3pm", "jutri ob 15h", "next Monday",
"v petek ob 10.30", "14. 3. 1985", "12 March 1985", "20. marca ob 9h"): dateparser's Slovenian
data misses inflected forms ("v sredo", "marca") and "15h". dateparser (slow: ~1-2 ms warm, ~150 ms
for its first call) runs only as a fallback when a cheap pre-check finds a date word the rules did
not use. Callers mask order numbers, amounts, phone numbers and postcodes before calling.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "maj": 5,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "avg": 8,
    "aug": 8,
    "sep": 9,
    "okt": 10,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH = r"(?P<mon>(?:jan|feb|mar|apr|maj|may|jun|jul|avg|aug|sep|okt|oct|nov|dec)[a-zčšž]*)\.?"
_WEEKDAYS = {
    "mon": 0,
    "pon": 0,
    "tue": 1,
    "tor": 1,
    "wed": 2,
    "sre": 2,
    "thu": 3,
    "čet": 3,
    "cet": 3,
    "fri": 4,
    "pet": 4,
    "sat": 5,
    "sob": 5,
    "sun": 6,
    "ned": 6,
}
_WEEKDAY = (
    r"\b(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|"
    r"thurs|fri|sat|sun|ponedelj[a-z]*|tor(?:ek|ka|ku)|sred[aoe]|četrt[a-z]*|cetrt[a-z]*|pet(?:ek|ka|kih)|"
    r"sobot[aoei]|nedelj[aoei])\b"
)
_RELATIVE = {
    "today": 0,
    "tonight": 0,
    "danes": 0,
    "nocoj": 0,
    "tomorrow": 1,
    "jutri": 1,
    "pojutrišnjem": 2,
    "pojutrisnjem": 2,
    "day after tomorrow": 2,
}
_RELATIVE_RE = re.compile(
    r"\b(day after tomorrow|pojutri[sš]njem|today|tonight|tomorrow|danes|nocoj|jutri)\b"
)
_IN_DAYS = re.compile(
    r"\b(?:in|čez|cez)\s+(?P<n>\d{1,2}|one|two|three|four|five|six|seven|en|dva|dve|tri|"
    r"štiri|stiri|pet|šest|sest|sedem)\s+(?P<unit>days?|dni|dan|weeks?|tedn[a-z]*|teden)\b"
)
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "en": 1,
    "dva": 2,
    "dve": 2,
    "tri": 3,
    "štiri": 4,
    "stiri": 4,
    "pet": 5,
    "šest": 6,
    "sest": 6,
    "sedem": 7,
}
_NEXT_WEEK = re.compile(r"\b(next|naslednj[a-z]*|prihodnj[a-z]*)\s+(week|teden|tednu)\b")

_ISO = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b")
_NUMERIC_DOT = re.compile(
    r"(?<![\d.,])(?P<d>\d{1,2})\s*\.\s*(?P<m>\d{1,2})\s*\.(?:\s*(?P<y>\d{4}|\d{2}))?(?![\d,]|\.\d)"
)
_NUMERIC_SLASH = re.compile(
    r"(?<![\d.,/])(?P<d>\d{1,2})\s*/\s*(?P<m>\d{1,2})(?:\s*/\s*(?P<y>\d{4}|\d{2}))?(?![\d/])"
)
_DAY_MONTH = re.compile(
    r"(?<![\d.,])(?P<d>\d{1,2})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?" + _MONTH + r"(?:\s*,?\s*(?P<y>\d{4}))?\b"
)
_MONTH_DAY = re.compile(r"\b" + _MONTH + r"\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?:\s*,?\s*(?P<y>\d{4}))?")
_ORDINAL_DAY = re.compile(r"\bthe\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b")

_TIME = re.compile(
    r"(?:(?P<pre>\b(?:at|ob|around|okoli|by|do|from|od)\s+))?"
    r"(?<![\d.,:])(?P<h>\d{1,2})(?:\s*[:.]\s*(?P<mi>\d{2}))?\s*"
    r"(?P<suf>a\.?m\.?|p\.?m\.?|h\b|ur[aei]?\b|o'?clock)?(?![\d])"
)
_DAYPART_PM = re.compile(r"\b(afternoon|evening|tonight|popoldne|popoldan|zvečer|zvecer|nocoj)\b")
_DAYPART_AM = re.compile(r"\b(morning|zjutraj|dopoldne|dopoldan)\b")

# a cheap test before any of the above (and before dateparser)
_PRECHECK = re.compile(
    r"\d|\b(today|tonight|tomorrow|yesterday|next|week|month|morning|noon|midday|evening|afternoon|"
    r"danes|nocoj|jutri|pojutri|včeraj|vceraj|teden|mesec|zjutraj|dopoldne|popoldne|zvečer|poldne|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|ponedelj|torek|sred|četrt|cetrt|petek|sobot|"
    r"nedelj|january|february|march|april|june|july|august|september|october|november|december)",
)


@dataclass(frozen=True, slots=True)
class DateFound:
    day: date
    at: time | None
    full: bool  # day, month and year all given explicitly


def _month(word: str) -> int | None:
    return _MONTHS.get(word[:3].lower())


def _year(raw: str | None, today: date) -> int | None:
    if not raw:
        return None
    year = int(raw)
    if year < 100:  # "85" -> 1985, "26" -> 2026
        year += 2000 if year <= (today.year % 100) + 10 else 1900
    return year


def _future(day: int, month: int, today: date) -> date | None:
    """Day and month without a year: this year, or next year when it has passed."""
    try:
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _make(d: int, m: int, y: int | None, today: date) -> tuple[date, bool] | None:
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return None
    if y is None:
        found = _future(d, m, today)
        return (found, False) if found else None
    try:
        return date(y, m, d), True
    except ValueError:
        return None


def _find_day(text: str, today: date) -> tuple[tuple[date, bool] | None, str]:
    """The first explicit or relative day in `text`; returns it and the text with it blanked out."""
    for pattern in (_ISO, _NUMERIC_DOT, _NUMERIC_SLASH, _DAY_MONTH, _MONTH_DAY):
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        month = _month(groups["mon"]) if groups.get("mon") else int(groups["m"])
        if month is None:
            continue
        found = _make(int(groups["d"]), month, _year(groups.get("y"), today), today)
        if found:
            return found, _blank(text, match)
    if match := _RELATIVE_RE.search(text):
        word = match.group(1).replace("š", "s")
        offset = _RELATIVE.get(word, _RELATIVE.get(match.group(1), 0))
        return (today + timedelta(days=offset), False), _blank(text, match)
    if match := _IN_DAYS.search(text):
        raw = match.group("n")
        n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        days = n * 7 if match.group("unit").startswith(("week", "ted")) else n
        return (today + timedelta(days=days), False), _blank(text, match)
    if match := re.search(_WEEKDAY, text):
        key = match.group("wd")[:3]
        weekday = _WEEKDAYS.get(key, _WEEKDAYS.get(key.replace("č", "c"), 0))
        if _NEXT_WEEK.search(text):  # "Friday next week": that day of the following calendar week
            day = today + timedelta(days=7 - today.weekday() + weekday)
        else:
            day = today + timedelta(days=(weekday - today.weekday()) % 7 or 7)
        return (day, False), _blank(text, match)
    if match := _ORDINAL_DAY.search(text):
        day_of_month = int(match.group("d"))
        for months_ahead in range(3):
            y, m = (
                today.year + (today.month - 1 + months_ahead) // 12,
                (today.month - 1 + months_ahead) % 12 + 1,
            )
            try:
                candidate = date(y, m, day_of_month)
            except ValueError:
                continue
            if candidate >= today:
                return (candidate, False), _blank(text, match)
    return None, text


def _blank(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]


def _find_time(text: str) -> time | None:
    daypart_pm = bool(_DAYPART_PM.search(text))
    daypart_am = bool(_DAYPART_AM.search(text))
    for match in _TIME.finditer(text):
        pre, minutes, suffix = match.group("pre"), match.group("mi"), (match.group("suf") or "").lower()
        if not (pre or minutes or suffix):
            continue  # a bare number is not a time
        if pre and not (minutes or suffix) and pre.strip() in {"by", "do", "from", "od"}:
            continue
        hour, minute = int(match.group("h")), int(minutes or 0)
        if suffix.startswith("p") and hour < 12:
            hour += 12
        elif suffix.startswith("a") and hour == 12:
            hour = 0
        elif (
            not suffix.startswith(("a", "p"))
            and hour < 12
            and not daypart_am
            and (daypart_pm or 1 <= hour <= 6)
        ):
            hour += 12  # "at 3", "ob 5", "8 in the evening": business hours unless said otherwise
        if hour <= 23 and minute <= 59:
            return time(hour, minute)
    return None


def find_date(text: str, now: datetime) -> DateFound | None:
    """The day (and time) a message names, interpreted in the timezone of `now` (naive or aware)."""
    lowered = text.lower()
    if not _PRECHECK.search(lowered):
        return None
    today = now.date()
    found, rest = _find_day(lowered, today)
    at = _find_time(rest)
    if found is None and at is None:
        return _dateparser_fallback(text, now)
    if found is None:  # a time alone: today if still ahead, else tomorrow
        day = today if at is not None and at > now.time().replace(tzinfo=None) else today + timedelta(days=1)
        return DateFound(day, at, False)
    return DateFound(found[0], at, found[1])


_FALLBACK_HINT = re.compile(r"\b(week|month|weekend|end of|beginning|this|coming|teden|mesec|vikend|konec)\b")


def _dateparser_fallback(text: str, now: datetime) -> DateFound | None:
    if not _FALLBACK_HINT.search(text.lower()):
        return None
    from dateparser.search import search_dates  # imported on first use: it costs ~0.2 s

    settings = {
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "DATE_ORDER": "DMY",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = search_dates(text, languages=["en", "sl"], settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input; a missing date is the answer
        return None
    for matched, value in results or []:
        if matched.strip().isdigit() or value.year < now.year - 1:
            continue
        has_time = value.time() != time(0, 0) and value.time() != now.time().replace(tzinfo=None)
        return DateFound(value.date(), value.time() if has_time else None, False)
    return None
