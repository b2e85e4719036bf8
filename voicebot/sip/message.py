"""SIP messages (RFC 3261 section 7): parse bytes, serialize canonically, frame a TCP stream.

``parse_message(data)`` parses one datagram into a :class:`SipRequest` or :class:`SipResponse`;
``bytes(msg)`` serializes with CRLF, long header names, one field per value and a Content-Length that
always matches the body. Parsing is round-trip stable: ``parse_message(bytes(m)) == m`` for any parsed
``m`` (parsing normalizes Content-Length to the body's length). Anything malformed raises
:class:`SipParseError` (status 400, 505 for a foreign SIP version), never another exception type.

Datagram rules (RFC 3261 section 18.3): without Content-Length the body is the rest of the datagram;
a body shorter than Content-Length is an error; octets beyond it are discarded. Over a stream
(:class:`SipStreamParser`) Content-Length is mandatory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voicebot.sip.errors import SipMessageTooLarge, SipParseError
from voicebot.sip.headers import TOKEN_RE, CSeq, Headers, Via, tag_of

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MANDATORY_REQUEST_HEADERS",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "SipStreamParser",
    "parse_message",
]

SIP_VERSION = "SIP/2.0"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
MANDATORY_REQUEST_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT = re.compile(r"\r?\n")
_REQUEST_LINE = re.compile(
    r"(" + TOKEN_RE.pattern + r") ([A-Za-z][A-Za-z0-9+.\-]*:[^\s]+) ([Ss][Ii][Pp]/\d{1,3}\.\d{1,3})",
    re.ASCII,
)
_STATUS_LINE = re.compile(
    r"([Ss][Ii][Pp]/\d{1,3}\.\d{1,3}) ([1-6]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?", re.ASCII
)
_HEADER_LINE = re.compile(r"([^:\s]+)[ \t]*:(.*)", re.DOTALL)
_LENGTH_RE = re.compile(r"\d{1,9}", re.ASCII)


class _MessageParts:
    """Accessors shared by requests and responses (they read ``self.headers``)."""

    headers: Headers

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._required("CSeq"))

    @property
    def top_via(self) -> Via:
        return Via.parse(self._required("Via"))

    @property
    def from_tag(self) -> str | None:
        return tag_of(self.headers.get("From"))

    @property
    def to_tag(self) -> str | None:
        return tag_of(self.headers.get("To"))

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return None if value is None else _parse_length(value)

    def _serialize(self, start_line: str, body: bytes) -> bytes:
        lines = [start_line]
        wrote_length = False
        for name, value in self.headers:
            if name == "Content-Length":
                if wrote_length:
                    continue
                value, wrote_length = str(len(body)), True
            lines.append(f"{name}: {value}")
        if not wrote_length:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


@dataclass
class SipRequest(_MessageParts):
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} {SIP_VERSION}", self.body)


@dataclass
class SipResponse(_MessageParts):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return self._serialize(f"{SIP_VERSION} {self.status} {self.reason}".rstrip(" "), self.body)


SipMessage = SipRequest | SipResponse


def _parse_length(value: str) -> int:
    if not _LENGTH_RE.fullmatch(value.strip(" \t")):
        raise SipParseError(f"invalid Content-Length {value!r}")
    return int(value)


def _check_version(version: str) -> None:
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"unsupported SIP version {version}", status=505)


def _parse_head(head: bytes) -> tuple[str, Headers, int | None]:
    """Parse start line and header fields; returns (start line, headers, Content-Length or None)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("header section is not valid UTF-8") from exc
    lines = _LINE_SPLIT.split(text)
    start = lines[0]
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SipParseError("continuation line before the first header")
            rest = line.strip(" \t")
            if rest:
                unfolded[-1] = unfolded[-1].rstrip(" \t") + " " + rest
        elif line:
            unfolded.append(line)
    headers = Headers()
    for line in unfolded:
        m = _HEADER_LINE.fullmatch(line)
        if not m:
            raise SipParseError(f"malformed header line {line[:40]!r}")
        headers.add(m.group(1), m.group(2))
    lengths = {_parse_length(v) for v in headers.get_all("Content-Length")}
    if len(lengths) > 1:
        raise SipParseError("conflicting Content-Length headers")
    return start, headers, (lengths.pop() if lengths else None)


def _build(start: str, headers: Headers, body: bytes) -> SipMessage:
    headers.set("Content-Length", str(len(body)))
    if m := _STATUS_LINE.fullmatch(start):
        _check_version(m.group(1))
        return SipResponse(int(m.group(2)), (m.group(3) or "").strip(" \t"), headers, body)
    m = _REQUEST_LINE.fullmatch(start)
    if not m:
        raise SipParseError(f"malformed start line {start[:60]!r}")
    _check_version(m.group(3))
    request = SipRequest(m.group(1), m.group(2), headers, body)
    for name in MANDATORY_REQUEST_HEADERS:
        if name not in headers:
            raise SipParseError(f"missing {name} header")
    if request.cseq.method != request.method:
        raise SipParseError(f"CSeq method {request.cseq.method} does not match {request.method}")
    return request


def _strip_keepalives(data: bytes | bytearray) -> int:
    """Number of leading CR/LF octets (keepalives, RFC 5626 / RFC 3261 section 7.5)."""
    i = 0
    while i < len(data) and data[i] in (0x0D, 0x0A):
        i += 1
    return i


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message from a datagram. Raises SipParseError."""
    data = bytes(data[_strip_keepalives(data) :])
    if not data:
        raise SipParseError("empty message")
    end = _HEAD_END.search(data)
    if end is None:
        raise SipParseError("no empty line after the header section")
    start, headers, length = _parse_head(data[: end.start()])
    body = data[end.end() :]
    if length is not None:
        if len(body) < length:
            raise SipParseError(f"body shorter than Content-Length ({len(body)} < {length})")
        body = body[:length]
    return _build(start, headers, body)


class SipStreamParser:
    """Frames SIP messages on a stream (TCP/TLS) by Content-Length.

    ``feed(data)`` returns every message completed so far. Leading CRLF keepalives are skipped.
    A message without Content-Length raises SipParseError (400); one larger than ``max_size`` raises
    SipMessageTooLarge (513). After an error the stream cannot be resynchronized: messages completed
    earlier in the same ``feed`` are returned and the error is raised by the next ``feed``; every
    later call raises it again.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._error: SipParseError | None = None

    def feed(self, data: bytes) -> list[SipMessage]:
        if self._error is not None:
            raise self._error
        self._buffer += data
        messages: list[SipMessage] = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except SipParseError as exc:
            self._error = exc
            self._buffer.clear()
            if not messages:
                raise
        return messages

    def _next(self) -> SipMessage | None:
        del self._buffer[: _strip_keepalives(self._buffer)]
        end = _HEAD_END.search(self._buffer)
        if end is None:
            if len(self._buffer) > self.max_size:
                raise SipMessageTooLarge(f"header section exceeds {self.max_size} bytes")
            return None
        start, headers, length = _parse_head(bytes(self._buffer[: end.start()]))
        if length is None:
            raise SipParseError("missing Content-Length on a stream transport")
        total = end.end() + length
        if total > self.max_size:
            raise SipMessageTooLarge(f"message of {total} bytes exceeds {self.max_size}")
        if len(self._buffer) < total:
            return None
        body = bytes(self._buffer[end.end() : total])
        del self._buffer[:total]
        return _build(start, headers, body)
