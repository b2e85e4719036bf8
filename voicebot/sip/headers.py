"""SIP header fields (RFC 3261 section 7.3, 20): an ordered multi-map and parsers for common parts.

``Headers`` keeps fields in order, looks names up case-insensitively, maps compact forms to long
names, and splits comma-separated lists into one value per element for the headers whose grammar is
a list (Via, Contact, Route, Allow, ...). Commas inside quoted strings and angle brackets never split;
authentication headers (whose parameters contain commas) and unknown headers are never split.
Names of unknown headers are kept verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from voicebot.sip.errors import SipParseError

__all__ = [
    "COMPACT_FORMS",
    "CSeq",
    "Headers",
    "Via",
    "canonical_name",
    "parse_params",
    "split_list",
    "tag_of",
]

COMPACT_FORMS: dict[str, str] = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
}

_KNOWN = [
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
]
_CANONICAL: dict[str, str] = {n.lower(): n for n in _KNOWN}

# Headers whose grammar is a comma-separated list (RFC 3261 section 7.3.1 allows splitting these).
_LIST_HEADERS = frozenset(
    n.lower()
    for n in (
        "Via",
        "Route",
        "Record-Route",
        "Contact",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
        "Content-Encoding",
        "Content-Language",
        "In-Reply-To",
        "Alert-Info",
        "Call-Info",
        "Error-Info",
        "Warning",
        "Accept-Contact",
    )
)

TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_BAD_VALUE_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def canonical_name(name: str) -> str:
    """Long canonical spelling of a known header (compact forms expanded); unknown names verbatim."""
    low = name.lower()
    if low in COMPACT_FORMS:
        return COMPACT_FORMS[low]
    return _CANONICAL.get(low, name)


def split_list(value: str) -> list[str]:
    """Split ``value`` at commas outside quoted strings and angle brackets; empty elements dropped."""
    elements = [p.strip(" \t") for p in _split_outside(value, ",", brackets=True)]
    return [p for p in elements if p] or [""]


class Headers:
    """Ordered multi-map of header fields with case-insensitive names."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    @staticmethod
    def _values(name: str, value: str) -> tuple[str, list[str]]:
        if not TOKEN_RE.fullmatch(name):
            raise SipParseError(f"invalid header name {name!r}")
        if _BAD_VALUE_CHARS.search(value):
            raise SipParseError(f"control character in {name} header")
        name = canonical_name(name)
        value = value.strip(" \t")
        return name, split_list(value) if name.lower() in _LIST_HEADERS else [value]

    def add(self, name: str, value: str) -> None:
        """Append a field (a comma list of a list header becomes one value per element).

        Raises SipParseError for an invalid name or a control character in the value.
        """
        name, values = self._values(name, value)
        self._items.extend((name, v) for v in values)

    def set(self, name: str, value: str) -> None:
        """Replace every field ``name`` by ``value``, at the position of the first one (else appended)."""
        canon, values = self._values(name, value)
        key = canon.lower()
        index = next((i for i, (n, _) in enumerate(self._items) if n.lower() == key), len(self._items))
        self.remove(canon)
        self._items[index:index] = [(canon, v) for v in values]

    def remove(self, name: str) -> None:
        """Remove every field ``name`` (no error if there is none)."""
        key = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (compact forms accepted), or ``default``."""
        key = canonical_name(name).lower()
        return next((v for n, v in self._items if n.lower() == key), default)

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> Headers:
        copied = Headers()
        copied._items = list(self._items)
        return copied

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` parameters (names lowercased, quoted values kept with quotes)."""
    params: dict[str, str | None] = {}
    for part in _split_outside(text, ";"):
        part = part.strip(" \t")
        if not part:
            continue
        name, eq, value = part.partition("=")
        params[name.strip(" \t").lower()] = value.strip(" \t") if eq else None
    return params


def _split_outside(text: str, sep: str, *, brackets: bool = False) -> list[str]:
    """Split at ``sep`` outside quoted strings (and, with ``brackets``, outside ``<...>``)."""
    parts: list[str] = []
    start = depth = 0
    in_quote = escaped = False
    for i, ch in enumerate(text):
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif brackets and ch == "<":
            depth += 1
        elif brackets and ch == ">" and depth:
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _header_params_text(value: str) -> str:
    """The header-parameter part of a From/To/Contact value (after ``>``, else after the first ``;``)."""
    in_quote = escaped = False
    for i, ch in enumerate(value):
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            close = value.find(">", i)
            return "" if close < 0 else value[close + 1 :]
    semi = value.find(";")
    return "" if semi < 0 else value[semi:]


def tag_of(value: str | None) -> str | None:
    """The ``tag`` parameter of a From or To value, or None."""
    if value is None:
        return None
    return parse_params(_header_params_text(value)).get("tag")


_CSEQ_RE = re.compile(r"[ \t]*(\d{1,10})[ \t]+(" + TOKEN_RE.pattern + r")[ \t]*", re.ASCII)


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, value: str) -> CSeq:
        m = _CSEQ_RE.fullmatch(value)
        if not m or int(m.group(1)) >= 2**31:
            raise SipParseError(f"malformed CSeq {value!r}")
        return cls(int(m.group(1)), m.group(2))

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_VIA_RE = re.compile(
    r"[ \t]*([^/\s]+)[ \t]*/[ \t]*([^/\s]+)[ \t]*/[ \t]*([^\s;]+)"
    r"[ \t]+([^;\s]+(?:[ \t]*:[ \t]*\d+)?)[ \t]*(;.*)?",
    re.ASCII | re.DOTALL,
)


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...``."""

    transport: str
    sent_by: str
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, value: str) -> Via:
        m = _VIA_RE.fullmatch(value)
        if not m:
            raise SipParseError(f"malformed Via {value!r}")
        sent_by = re.sub(r"[ \t]", "", m.group(4))
        return cls(m.group(3).upper(), sent_by, parse_params(m.group(5) or ""), f"{m.group(1)}/{m.group(2)}")

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"{self.protocol}/{self.transport} {self.sent_by}{params}"
