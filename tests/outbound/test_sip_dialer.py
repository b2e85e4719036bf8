"""Campaign calls over SIP against real called parties on 127.0.0.1: SIPp UAS scenarios
(tests/data/sipp/uas_campaign_*.xml) play a person who confirms, one who reschedules, busy, no
answer, an answering machine with a beep, a survey answered by voice and by keys, and a trunk that
wants digest authentication. voicebot's SIP stack, RTP, VAD, answering-machine detection, script
and campaign engine are real; speech recognition and synthesis are the fakes at the speech seam
(the callee's words are known to the test, and the bot's speech is a tone)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fakes.speech import FakeSpeech
from tests.inbound.conftest import sip_server, voice_server  # noqa: F401 - fixtures
from tests.outbound.campaign_driver import APPOINTMENT_CSV, campaign, run_campaign
from tests.peers.sipp import SippProcess, sipp_available, sipp_uas
from voicebot.outbound.campaign_config import CampaignDefinition
from voicebot.outbound.sip_dialer import SipDialer
from voicebot.outbound.writeback import CrmWriteback
from voicebot.storage.records import CampaignAttemptRecord

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "sipp"

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.skipif(not sipp_available(), reason="SIPp (Debian sip-tester) is not installed"),
]


@pytest_asyncio.fixture(loop_scope="session")
async def dial(sip_server: Callable[..., Any]) -> AsyncIterator[Callable[..., Any]]:  # noqa: F811
    """``await dial(definition, csv, callee, speech=...)``: run a one-contact campaign against the
    SIPp ``callee`` until it completes; returns (attempts, contact, runtime, speech)."""

    async def run(
        definition: CampaignDefinition,
        csv: str,
        callee: SippProcess,
        *,
        speech: FakeSpeech | None = None,
        sip: dict[str, Any] | None = None,
        timeout_s: float = 60.0,
    ) -> tuple[list[CampaignAttemptRecord], Any, Any, FakeSpeech]:
        speech = speech or FakeSpeech()
        outbound = {"uri": f"sip:{{number}}@{callee.address}", **(sip or {}).pop("outbound", {})}
        server, runtime, _ = await sip_server(
            speech=speech, sip={"outbound": outbound, **(sip or {})}, silence_prompt_secs=6.0
        )
        attempts, contact = await run_campaign(
            runtime,
            SipDialer(server),
            definition,
            csv,
            after_call=CrmWriteback(runtime.crm),
            timeout_s=timeout_s,
        )
        return attempts, contact, runtime, speech

    yield run


async def test_an_answering_machine_gets_the_voicemail_message(dial: Callable[..., Any]) -> None:
    # uas_answer.xml answers and talks for 5 s without a pause: a machine's greeting
    async with sipp_uas(SCENARIOS / "uas_answer.xml", calls=1) as callee:
        attempts, contact, _, speech = await dial(
            campaign("appointment-confirmation"), APPOINTMENT_CSV, callee
        )
        result = await callee.stop()
    (attempt,) = attempts
    assert attempt.outcome == "voicemail" and contact.outcome == "voicemail", attempt.detail
    assert "answering machine" in (attempt.detail or "")
    assert speech.spoken and speech.spoken[-1].startswith("Hello Ana, we called about your appointment")
    assert attempt.transcript == [{"role": "bot", "text": speech.spoken[-1]}]
    assert attempt.answered_at is not None and attempt.started_at is not None
    assert result.successful == 1, result.explain()


# Ana (C001, +38640111222) is in the demo CRM with appointment AP1001: the confirmation is written back
ANA_CSV = (
    "phone,name,appointment_id,appointment_date,appointment_time,location,slot_1,slot_2\n"
    "+38640111222,Ana,AP1001,1 December,10:00,Ljubljana,Tuesday at nine,Wednesday at two\n"
)
QUICK = {"answer_pause_ms": "4000", "slot_pause_ms": "4000", "question_pause_ms": "4000"}


async def test_a_person_confirms_and_the_crm_is_updated(dial: Callable[..., Any]) -> None:
    speech = FakeSpeech(["Yes, I will come."])
    async with sipp_uas(SCENARIOS / "uas_campaign_confirm.xml", calls=1, keys=QUICK) as callee:
        attempts, contact, runtime, _ = await dial(
            campaign("appointment-confirmation"), ANA_CSV, callee, speech=speech
        )
        result = await callee.stop()
    (attempt,) = attempts
    assert attempt.outcome == "confirmed" and contact.outcome == "confirmed", attempt.detail
    assert contact.result == {"decision": "confirm"}
    assert "amd" in (attempt.detail or "") and "machine" not in (attempt.detail or "")
    assert attempt.transcript and attempt.transcript[0]["text"].startswith("Hello Ana")  # the opening
    assert {"role": "customer", "text": "Yes, I will come."} in attempt.transcript
    assert attempt.conversation_id and attempt.call_id
    appointments = await runtime.crm.list_appointments("C001")
    assert [a.status.value for a in appointments if a.id == "AP1001"] == ["confirmed"]
    assert result.successful == 1, result.explain()


async def test_a_person_moves_the_appointment_to_an_offered_slot(dial: Callable[..., Any]) -> None:
    speech = FakeSpeech(["Can we move it to another time please?", "The first one, please."])
    async with sipp_uas(SCENARIOS / "uas_campaign_reschedule.xml", calls=1, keys=QUICK) as callee:
        attempts, contact, _, _ = await dial(
            campaign("appointment-confirmation"), APPOINTMENT_CSV, callee, speech=speech
        )
        await callee.stop()
    (attempt,) = attempts
    assert attempt.outcome == "rescheduled", attempt.detail
    assert contact.result == {"decision": "reschedule", "new_slot": "Tuesday at nine"}
    assert any(t["text"].startswith("I can offer Tuesday at nine") for t in attempt.transcript or [])


async def test_busy_and_no_answer_are_retried_per_the_campaign(dial: Callable[..., Any]) -> None:
    definition = campaign("appointment-confirmation", max_attempts=2, retry_delay={
        "busy": "1s", "no_answer": "1s", "voicemail": "1h", "failed": "1h"})  # fmt: skip
    async with (
        sipp_uas(SCENARIOS / "uas_campaign_busy.xml", calls=1) as busy,
    ):
        attempts, contact, _, _ = await dial(
            definition.model_copy(update={"max_attempts": 1}), APPOINTMENT_CSV, busy
        )
        busy_result = await busy.stop()
    assert [a.outcome for a in attempts] == ["busy"] and "486" in (attempts[0].detail or "")
    assert contact.outcome == "busy" and busy_result.successful == 1, busy_result.explain()
    async with sipp_uas(SCENARIOS / "uas_campaign_no_answer.xml", calls=2) as ringing:
        attempts, contact, _, _ = await dial(definition, APPOINTMENT_CSV, ringing)
        ringing_result = await ringing.stop()
    assert [a.outcome for a in attempts] == ["no_answer", "no_answer"]
    assert [a.attempt for a in attempts] == [1, 2] and contact.attempts == 2
    assert all("ring timeout" in (a.detail or "") for a in attempts)
    assert ringing_result.successful == 2, ringing_result.explain()


async def test_a_voicemail_message_is_left_after_the_beep(dial: Callable[..., Any]) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_voicemail.xml", calls=1) as machine:
        attempts, _, _, speech = await dial(campaign("appointment-confirmation"), APPOINTMENT_CSV, machine)
        result = await machine.stop()
    (attempt,) = attempts
    assert attempt.outcome == "voicemail", attempt.detail
    assert "after the beep" in (attempt.detail or "")
    assert speech.spoken[-1].startswith("Hello Ana, we called about your appointment")
    assert result.successful == 1, result.explain()


async def test_hang_up_on_a_machine_when_the_campaign_says_so(dial: Callable[..., Any]) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_voicemail.xml", calls=1) as machine:
        attempts, _, _, speech = await dial(
            campaign("csat-survey"), "phone,name,product\n+38640111001,Ana,the app\n", machine
        )
        await machine.stop()
    (attempt,) = attempts
    assert attempt.outcome == "voicemail" and "hung up" in (attempt.detail or "")
    assert speech.spoken == []  # nothing said to a machine


SURVEY_CSV = "phone,name,product\n+38640111001,Ana,the app\n"


async def test_a_survey_answered_by_voice(dial: Callable[..., Any]) -> None:
    speech = FakeSpeech(["Four.", "Yes, I would.", "The delivery was a bit slow."])
    async with sipp_uas(SCENARIOS / "uas_campaign_survey_voice.xml", calls=1, keys=QUICK) as callee:
        attempts, contact, _, _ = await dial(campaign("csat-survey"), SURVEY_CSV, callee, speech=speech)
        await callee.stop()
    (attempt,) = attempts
    assert attempt.outcome == "survey_completed", attempt.detail
    assert contact.result == {
        "answers": {"satisfaction": 4, "recommend": True, "comment": "The delivery was a bit slow."}
    }


async def test_a_survey_answered_with_the_keypad(dial: Callable[..., Any]) -> None:
    speech = FakeSpeech(["Nothing, thank you."])
    async with sipp_uas(SCENARIOS / "uas_campaign_survey_dtmf.xml", calls=1, keys=QUICK) as callee:
        attempts, contact, _, _ = await dial(campaign("csat-survey"), SURVEY_CSV, callee, speech=speech)
        await callee.stop()
    (attempt,) = attempts
    assert attempt.outcome == "survey_completed", (attempt.detail, speech.spoken)
    assert contact.result == {
        "answers": {"satisfaction": 4, "recommend": True, "comment": "Nothing, thank you."}
    }


async def test_the_trunk_asks_for_digest_credentials(
    dial: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_TEST_TRUNK_PASSWORD", "trunk-secret")
    speech = FakeSpeech(["Yes, I will come."])
    trunk = {"outbound": {"username": "voicebot", "password_env": "VOICEBOT_TEST_TRUNK_PASSWORD"}}
    async with sipp_uas(SCENARIOS / "uas_campaign_digest.xml", calls=1, keys=QUICK) as callee:
        attempts, _, _, _ = await dial(
            campaign("appointment-confirmation"), APPOINTMENT_CSV, callee, speech=speech, sip=trunk
        )
        result = await callee.stop()
    assert [a.outcome for a in attempts] == ["confirmed"], attempts[0].detail
    assert "Proxy-Authorization: Digest" in result.messages
