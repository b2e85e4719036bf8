"""RTP media for native SIP calls: G.711, RTP/RTCP, SDP offer/answer, jitter buffer, RFC 4733 DTMF.

Sans-I/O like voicebot.sip: :class:`RtpSession` takes datagrams and ``now`` and returns datagrams,
timer deadlines and events; :mod:`voicebot.rtp.endpoint` is the one asyncio module (UDP sockets
from an :class:`RtpPortPool`, one timer task). Imports nothing from the rest of voicebot.
"""

from __future__ import annotations

from voicebot.rtp.dtmf import DtmfEvent, DtmfReceiver, dtmf_payloads
from voicebot.rtp.errors import RtpError, RtpPacketError, SdpError
from voicebot.rtp.events import AudioReceived, ByeReceived, DtmfReceived, RemoteLatched, RtpEvent, RtpTimeout
from voicebot.rtp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicebot.rtp.jitter import JitterBuffer
from voicebot.rtp.packet import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtpPacket,
    SenderReport,
    SourceDescription,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from voicebot.rtp.sdp import (
    G722,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Direction,
    MediaParams,
    SessionDescription,
    answer_offer,
    create_offer,
    parse_answer,
)
from voicebot.rtp.session import RtpSession
from voicebot.rtp.stats import RtpStats

__all__ = [
    "G722",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "AudioReceived",
    "Bye",
    "ByeReceived",
    "Codec",
    "Direction",
    "DtmfEvent",
    "DtmfReceived",
    "DtmfReceiver",
    "JitterBuffer",
    "MediaParams",
    "ReceiverReport",
    "RemoteLatched",
    "ReportBlock",
    "RtpError",
    "RtpEvent",
    "RtpPacket",
    "RtpPacketError",
    "RtpSession",
    "RtpStats",
    "RtpTimeout",
    "SdpError",
    "SenderReport",
    "SessionDescription",
    "SourceDescription",
    "alaw_decode",
    "alaw_encode",
    "answer_offer",
    "create_offer",
    "dtmf_payloads",
    "is_rtcp",
    "parse_answer",
    "parse_rtcp",
    "serialize_rtcp",
    "ulaw_decode",
    "ulaw_encode",
]
