"""Receptionist entry points: carrier WebSocket media (Twilio, Telnyx, Plivo), the WebRTC call
page, and (later) the SIP UAS. Each one turns its carrier's call into a ``run_call``."""

from voicebot.inbound.twilio import router

__all__ = ["router"]
