"""Building SIP messages: responses to requests, new out-of-dialog requests, and best-effort error
replies to bytes that did not parse. Also the small bodies a UA reads: application/dtmf-relay
(INFO) and message/sipfrag (NOTIFY of a REFER).
"""

from __future__ import annotations

import re
import secrets

from voicebot.sip.headers import CSeq, Headers
from voicebot.sip.message import SipRequest, SipResponse
from voicebot.sip.transaction import Peer, new_branch

__all__ = [
    "REASONS",
    "bad_request_reply",
    "dtmf_relay_digit",
    "new_request",
    "new_tag",
    "response_to",
    "sipfrag_status",
    "via_for",
]

REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}


def new_tag() -> str:
    return secrets.token_hex(6)


def via_for(peer: Peer, host: str, port: int, branch: str | None = None) -> str:
    return f"SIP/2.0/{peer.transport.upper()} {host}:{port};branch={branch or new_branch()};rport"


def response_to(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """A response per section 8.2.6: Via, From, Call-ID and CSeq copied; To gets ``to_tag``."""
    h = Headers()
    for via in request.headers.get_all("Via"):
        h.add("Via", via)
    h.add("From", request.headers.get("From") or "")
    to = request.headers.get("To") or ""
    if to_tag and request.to_tag is None and status != 100:
        to = f"{to};tag={to_tag}"
    h.add("To", to)
    h.add("Call-ID", request.call_id)
    h.add("CSeq", str(request.cseq))
    for name, value in headers or ():
        h.add(name, value)
    if body and content_type:
        h.add("Content-Type", content_type)
    return SipResponse(status, reason or REASONS.get(status, ""), h, body)


def new_request(
    method: str,
    uri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    routes: list[str] | None = None,
    contact: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> SipRequest:
    """A request with the mandatory headers (section 8.1.1), in the order peers expect."""
    h = Headers([("Via", via), ("Max-Forwards", "70")])
    for route in routes or ():
        h.add("Route", route)
    h.add("From", from_)
    h.add("To", to)
    h.add("Call-ID", call_id)
    h.add("CSeq", str(CSeq(cseq, method)))
    if contact:
        h.add("Contact", contact)
    for name, value in headers or ():
        h.add(name, value)
    if body and content_type:
        h.add("Content-Type", content_type)
    return SipRequest(method, uri, h, body)


_REPLY_HEADERS = {"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To"}
_REPLY_HEADERS |= {"call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq"}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def bad_request_reply(data: bytes, status: int, reason: str) -> bytes | None:
    """A response to a request that did not parse, when enough of it is legible (section 8.2:
    Via, From, To, Call-ID, CSeq); None when it cannot be answered (a response, an ACK, noise)."""
    text = data.decode("latin-1")
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    lines = re.split(r"\r?\n", head.lstrip("\r\n"))
    if not lines or lines[0].upper().startswith("SIP/") or lines[0].upper().startswith("ACK "):
        return None
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        canon = _REPLY_HEADERS.get(name.strip().lower())
        if colon and canon:
            found.setdefault(canon, []).append(_UNSAFE.sub("", value.strip()))
    if not all(k in found for k in ("Via", "From", "To", "Call-ID", "CSeq")):
        return None
    phrase = _UNSAFE.sub(" ", REASONS.get(status, "Bad Request"))
    out = [f"SIP/2.0 {status} {phrase}"]
    out += [f"Via: {v}" for v in found["Via"]]
    out += [f"{k}: {found[k][0]}" for k in ("From", "To", "Call-ID", "CSeq")]
    out.append(f'Warning: 399 voicebot "{_UNSAFE.sub(" ", reason)[:200].replace(chr(34), chr(39))}"')
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8", "replace")


_DTMF_SIGNAL = re.compile(r"^\s*signal\s*=\s*([0-9A-Da-d*#]|1[0-5])\s*$", re.MULTILINE | re.IGNORECASE)
_EVENT_DIGITS = "0123456789*#ABCD"


def dtmf_relay_digit(content_type: str | None, body: bytes) -> str | None:
    """The digit of an INFO body: ``application/dtmf-relay`` (Signal=5) or ``application/dtmf``."""
    kind = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("ascii", "replace")
    if kind == "application/dtmf-relay":
        m = _DTMF_SIGNAL.search(text)
        if not m:
            return None
        value = m.group(1).upper()
        return _EVENT_DIGITS[int(value)] if value.isdigit() and int(value) >= 10 else value
    if kind == "application/dtmf":
        value = text.strip().upper()
        if value.isdigit() and 0 <= int(value) <= 15:
            return _EVENT_DIGITS[int(value)]
        return value if len(value) == 1 and value in _EVENT_DIGITS else None
    return None


_SIPFRAG = re.compile(r"^\s*SIP/2\.0\s+(\d{3})", re.IGNORECASE)


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag body (``SIP/2.0 180 Ringing``)."""
    m = _SIPFRAG.match(body.decode("utf-8", "replace"))
    return int(m.group(1)) if m else None
