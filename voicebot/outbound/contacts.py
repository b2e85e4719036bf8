"""Campaign contacts from CSV: numbers normalised to E.164, time zones given or inferred.

Pure: takes the file's text, returns what was imported and what was not. Bad rows never stop an
import; each is reported with its line number (1-based, the header is line 1) and a reason.
Only an unusable file (not text, no header, no ``phone`` column) raises :class:`InputError`.
"""

from __future__ import annotations

import csv
import io
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from types import MappingProxyType

import phonenumbers
from phonenumbers import timezone as number_timezones

from voicebot.errors import InputError

PHONE, NAME, TIMEZONE, CONSENT, CALL_AT = "phone", "name", "timezone", "consent", "call_at"
_YES = frozenset({"yes", "y", "true", "1", "da"})
_NO = frozenset({"no", "n", "false", "0", "ne"})
_UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers answers for a number it cannot place


class TimezoneSource(StrEnum):
    GIVEN = "given"  # the row's timezone column
    NUMBER = "number"  # the only zone of the number
    NUMBER_AMBIGUOUS = "number_ambiguous"  # the first of several zones of the number
    DEFAULT = "default"  # the tenant default: the number gives no zone


@dataclass(frozen=True)
class Contact:
    phone: str  # E.164
    name: str | None
    timezone: str  # IANA name
    variables: Mapping[str, str]  # every other column, by lower-case header
    line: int  # where the row starts in the file
    timezone_source: TimezoneSource = TimezoneSource.GIVEN
    consent: bool | None = None  # the row's consent column; None when the file has none
    call_at: datetime | None = None  # the first attempt's time (aware); None: as soon as allowed


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass(frozen=True)
class ContactImport:
    contacts: list[Contact]
    errors: list[RowError]  # rows not imported
    notes: list[RowError] = field(default_factory=list)  # rows imported with a guess worth checking


def _parse_number(raw: str, region: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InputError(f"not a phone number: {raw!r} ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise InputError(f"not a valid phone number: {raw!r}")
    return number


def normalise_phone(raw: str, region: str = "SI") -> str:
    """``raw`` in E.164, or InputError saying why it is not a number."""
    return phonenumbers.format_number(_parse_number(raw.strip(), region), phonenumbers.PhoneNumberFormat.E164)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _known_zone(name: str) -> bool:
    return name in _zones()


def _to_text(data: str | bytes) -> str:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError("the contacts file is not UTF-8 text") from exc
    if not isinstance(data, str):
        raise InputError("the contacts file is not text")
    if "\x00" in data:
        raise InputError("the contacts file is not text (it contains NUL bytes)")
    return data.removeprefix("\ufeff")


def _blank(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


def import_contacts(
    text: str | bytes, *, default_region: str = "SI", default_timezone: str = "UTC"
) -> ContactImport:
    """Parse a contacts CSV with a header: ``phone`` (required), ``name``, ``timezone``, ``consent``
    (yes/no), ``call_at`` (ISO date-time of the first attempt, in the contact's zone unless it names
    an offset), and any other columns, kept as per-contact variables for the script's placeholders.

    Numbers without a country code are read as ``default_region`` (ISO 3166 code). A row without
    a valid ``timezone`` cell gets its number's zone; a number with none gets ``default_timezone``.
    """
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise InputError(f"unknown default region {default_region!r}")
    if not _known_zone(default_timezone):
        raise InputError(f"unknown default time zone {default_timezone!r}")
    reader = csv.reader(io.StringIO(_to_text(text), newline=""))

    header: list[str] | None = None
    errors: list[RowError] = []
    notes: list[RowError] = []
    contacts: list[Contact] = []
    first_seen: dict[str, int] = {}
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is None:
                raise InputError(f"line {line}: not readable as CSV ({exc})") from exc
            errors.append(RowError(line, f"not readable as CSV: {exc}"))
            if reader.line_num < line:  # nothing consumed: stop rather than loop
                break
            continue
        if _blank(row):
            continue
        if header is None:
            header = _read_header(row, line)
            continue
        contact = _read_row(header, row, line, default_region, default_timezone, errors, notes)
        if contact is None:
            continue
        if contact.phone in first_seen:
            errors.append(RowError(line, f"duplicate of line {first_seen[contact.phone]}: {contact.phone}"))
            continue
        first_seen[contact.phone] = line
        contacts.append(contact)
    if header is None:
        raise InputError("the contacts file is empty: it needs a header line with a 'phone' column")
    return ContactImport(contacts=contacts, errors=errors, notes=notes)


def _read_header(row: list[str], line: int) -> list[str]:
    names = [cell.strip().lower() for cell in row]
    if PHONE not in names:
        raise InputError(f"line {line}: the header has no 'phone' column (found: {', '.join(names)})")
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise InputError(f"line {line}: the header names column {name!r} twice")
        seen.add(name)
    return names


def _read_row(
    header: list[str],
    row: list[str],
    line: int,
    default_region: str,
    default_timezone: str,
    errors: list[RowError],
    notes: list[RowError],
) -> Contact | None:
    if len(row) > len(header):
        errors.append(RowError(line, f"{len(row)} fields, the header has {len(header)}"))
        return None
    cells = {name: value.strip() for name, value in zip(header, row, strict=False) if name}
    raw_phone = cells.pop(PHONE, "")
    if not raw_phone:
        errors.append(RowError(line, "no phone number"))
        return None
    try:
        number = _parse_number(raw_phone, default_region)
    except InputError as exc:
        errors.append(RowError(line, exc.message))
        return None
    phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    given_zone = cells.pop(TIMEZONE, "")
    source = TimezoneSource.GIVEN
    if given_zone:
        if not _known_zone(given_zone):
            errors.append(RowError(line, f"unknown time zone: {given_zone!r}"))
            return None
        zone = given_zone
    else:
        candidates = [
            z for z in number_timezones.time_zones_for_number(number) if z != _UNKNOWN_ZONE and _known_zone(z)
        ]
        if not candidates:
            zone, source = default_timezone, TimezoneSource.DEFAULT
        elif len(candidates) == 1:
            zone, source = candidates[0], TimezoneSource.NUMBER
        else:
            zone, source = candidates[0], TimezoneSource.NUMBER_AMBIGUOUS
            notes.append(
                RowError(line, f"{phone} fits several time zones ({', '.join(candidates)}); took {zone}")
            )
    name = cells.pop(NAME, "") or None
    consent_cell = cells.pop(CONSENT, "").lower()
    consent: bool | None = None
    if consent_cell:
        if consent_cell not in _YES | _NO:
            errors.append(RowError(line, f"consent must be yes or no, not {consent_cell!r}"))
            return None
        consent = consent_cell in _YES
    call_at: datetime | None = None
    if call_at_cell := cells.pop(CALL_AT, ""):
        try:
            call_at = datetime.fromisoformat(call_at_cell)
        except ValueError:
            errors.append(RowError(line, f"call_at is not an ISO date-time: {call_at_cell!r}"))
            return None
        if call_at.tzinfo is None:
            call_at = call_at.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    return Contact(
        consent=consent,
        call_at=call_at,
        phone=phone,
        name=name,
        timezone=zone,
        variables=MappingProxyType(cells),
        line=line,
        timezone_source=source,
    )
