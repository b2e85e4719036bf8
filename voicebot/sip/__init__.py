"""Sans-I/O SIP core (RFC 3261 message layer). Imports nothing from the rest of voicebot."""

from voicebot.sip.errors import SipError, SipMessageTooLarge, SipParseError
from voicebot.sip.headers import COMPACT_FORMS, CSeq, Headers, Via, canonical_name, parse_params, tag_of
from voicebot.sip.message import (
    DEFAULT_MAX_MESSAGE_SIZE,
    SipMessage,
    SipRequest,
    SipResponse,
    SipStreamParser,
    parse_message,
)

__all__ = [
    "COMPACT_FORMS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "CSeq",
    "Headers",
    "SipError",
    "SipMessage",
    "SipMessageTooLarge",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipStreamParser",
    "Via",
    "canonical_name",
    "parse_message",
    "parse_params",
    "tag_of",
]
