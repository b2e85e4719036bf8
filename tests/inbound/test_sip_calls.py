"""SIP calls end to end against real SIP peers (SIPp, baresip) on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.speech import FakeSpeech
from tests.peers.sipp import run_sipp, sipp_available

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "sipp"
pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(not sipp_available(), reason="SIPp (Debian sip-tester) is not installed"),
]


async def call_record(url: str, runtime: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as http:
        rows = await runtime.audit.recent_actions(runtime.tenant.id, "voice.sip_call", 10)
        assert rows, "no SIP call was recorded"
        record = (await http.get(f"/v1/voice/conversations/{rows[0].conversation_id}/call")).json()
        return record["sip"]


async def test_basic_call_with_caller_speech_is_answered_and_recorded(sip_server: Any) -> None:
    speech = FakeSpeech(["What are your opening hours?"])
    server, runtime, url = await sip_server(speech=speech)
    result = await run_sipp(SCENARIOS / "uac_basic.xml", f"127.0.0.1:{server.port}", keys={"pause_ms": "3000"})
    assert result.ok, result.explain()
    assert speech.segments, "the caller's RTP audio never reached STT"
    assert any("open" in s.lower() or "hour" in s.lower() for s in speech.spoken), speech.spoken
    record = await call_record(url, runtime)
    assert record["hangup_reason"] == "remote_bye"
    assert record["sip_call_id"] and "sipp" in record["from"]
    assert record["rtp"]["packets_received"] > 100 and record["rtp"]["packets_sent"] > 10
    status = server.status()
    assert status["calls"] == 0 and status["rtp_ports_in_use"] == 0
