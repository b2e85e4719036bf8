"""The only package importing pipecat: per-call pipeline, transports, and the local speech services
(``voicebot.pipeline.speech``). Import submodules directly; this package imports no pipecat itself,
but routes pipecat's loguru output into stdlib logging at INFO before any submodule imports it."""

from voicebot.logs import route_pipecat_logs

route_pipecat_logs()
