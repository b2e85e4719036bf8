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
