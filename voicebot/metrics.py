"""Prometheus metrics (served at /metrics). Names follow the Prometheus conventions."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CONVERSATIONS = Counter("voicebot_conversations_total", "Conversations started", ["channel"])
REPLIES = Counter("voicebot_replies_total", "Bot replies", ["channel", "action"])
REPLY_SECONDS = Histogram(
    "voicebot_reply_seconds",
    "Time from receiving a message to the reply being ready",
    ["channel"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
HANDOFFS = Counter("voicebot_handoffs_total", "Conversations handed to a human", ["channel", "reason"])
CSAT = Histogram(
    "voicebot_csat_score", "Customer satisfaction scores (1-5)", ["channel"], buckets=(1, 2, 3, 4, 5)
)
INPUT_ERRORS = Counter("voicebot_input_errors_total", "Requests refused as bad input", ["endpoint"])
VOICE_TO_VOICE = Histogram(
    "voicebot_voice_to_voice_seconds",
    "End of caller speech to the first bot audio sent, per voice turn",
    ["channel"],
    buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0),
)
VOICE_TURN_PART_SECONDS = Histogram(
    "voicebot_voice_turn_part_seconds",
    "Parts of the voice-to-voice time: vad_wait, stt, dialogue, tts_first_chunk, transport",
    ["part"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5),
)
CALLS = Counter("voicebot_calls_total", "Calls ended, by channel and reason", ["channel", "reason"])
