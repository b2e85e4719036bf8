"""The live-call API without media: the board's active list, who may do what, and the 409s that say
why a call's media cannot be reached."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import websockets

from tests.auth_helpers import token_headers
from tests.conftest import SESSION_LOOP
from tests.live.test_agent_bridge import BrowserLeg
from voicebot.auth.roles import Role
from voicebot.dialogue.types import Channel
from voicebot.live.calls import call_directory

pytestmark = [SESSION_LOOP, pytest.mark.slow]


async def refusal(url: str, headers: dict[str, str]) -> int:
    """The close code (or HTTP status) a listen-in socket is refused with."""
    try:
        async with websockets.connect(url, additional_headers=headers) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            return closed.value.rcvd.code
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


OFFER = {"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"}


async def test_the_board_lists_active_conversations_with_their_recent_turns(desk_server: Any) -> None:
    url, runtime, _ = desk_server
    chat = await runtime.chat.start(channel=Channel.CHAT)
    await runtime.chat.send(chat.conversation.id, "What are your opening hours?")
    call = await runtime.chat.start(channel=Channel.VOICE, caller="+38640111222")
    async with httpx.AsyncClient(
        base_url=url, headers=await token_headers(runtime, Role.SUPERVISOR)
    ) as client:
        answer = await client.get("/v1/live/active")
    assert answer.status_code == 200, answer.text
    board = {c["conversation_id"]: c for c in answer.json()["conversations"]}
    assert board[chat.conversation.id]["channel"] == "chat"
    roles = [t["role"] for t in board[chat.conversation.id]["turns"]]
    assert roles == ["customer", "bot"]  # the greeting is not stored; the exchange is
    assert board[chat.conversation.id]["turns"][0]["text"] == "What are your opening hours?"
    assert board[call.conversation.id]["caller"] == "+38640111222"
    assert board[call.conversation.id]["call"] is None  # not a call this process runs


@pytest.mark.parametrize("role", [Role.AGENT, Role.OPERATOR])
async def test_only_supervisors_see_the_board_and_listen(desk_server: Any, role: Role) -> None:
    url, runtime, _ = desk_server
    headers = await token_headers(runtime, role)
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        assert (await client.get("/v1/live/active")).status_code == 403
        assert (await client.post("/v1/live/calls/x/whisper", json=OFFER)).status_code == 403
    ws_url = url.replace("http://", "ws://") + "/v1/live/calls/x/audio"
    assert await refusal(ws_url, headers) == 4403


async def test_listening_to_a_chat_or_an_unknown_conversation_is_refused(desk_server: Any) -> None:
    url, runtime, _ = desk_server
    headers = await token_headers(runtime, Role.SUPERVISOR)
    chat = await runtime.chat.start(channel=Channel.CHAT)
    base = url.replace("http://", "ws://") + "/v1/live/calls/"
    assert await refusal(base + chat.conversation.id + "/audio", headers) == 4409
    assert await refusal(base + "no-such-conversation/audio", headers) == 4404


async def test_whisper_and_accept_say_why_the_media_is_out_of_reach(desk_server: Any) -> None:
    url, runtime, _ = desk_server
    supervisor = await token_headers(runtime, Role.SUPERVISOR)
    agent = await token_headers(runtime, Role.AGENT)
    # a call whose media no worker runs (moved out by SIP REFER, or its worker stopped): the
    # request crosses the live bus and nobody answers
    elsewhere = await runtime.chat.start(channel=Channel.VOICE, caller="+38640111222")
    assert call_directory(runtime).get(elsewhere.conversation.id) is None
    chat = await runtime.chat.start(channel=Channel.CHAT)
    handoff = await runtime.chat.send(chat.conversation.id, "I want to talk to a person")
    assert handoff.action.value == "handoff"
    waiting = await runtime.handoffs.list(runtime.tenant.id)
    chat_handoff = next(h for h in waiting if h.conversation_id == chat.conversation.id)
    async with httpx.AsyncClient(base_url=url) as client:
        # a bad offer is refused before any worker is asked
        bad = await client.post(
            f"/v1/live/calls/{elsewhere.conversation.id}/whisper", json=OFFER, headers=supervisor
        )
        assert bad.status_code == 422
        whisperer, offer = await BrowserLeg.offer(800.0, send_only=True)
        try:
            far = await client.post(
                f"/v1/live/calls/{elsewhere.conversation.id}/whisper",
                json={"sdp": offer, "type": "offer"},
                headers=supervisor,
            )
        finally:
            await whisperer.close()
        assert far.status_code == 409
        assert "no running server process" in far.json()["error"]["message"]
        not_a_call = await client.post(
            f"/v1/live/calls/{chat.conversation.id}/whisper", json=OFFER, headers=supervisor
        )
        assert not_a_call.status_code == 409 and "not a call" in not_a_call.json()["error"]["message"]
        unknown = await client.post("/v1/live/calls/nope/whisper", json=OFFER, headers=supervisor)
        assert unknown.status_code == 404
        accept = await client.post(f"/v1/desk/handoffs/{chat_handoff.id}/call", json=OFFER, headers=agent)
        assert accept.status_code == 409 and "not a call" in accept.json()["error"]["message"]
        no_audio = await client.post(
            f"/v1/desk/handoffs/{chat_handoff.id}/call", json={"sdp": "v=0", "type": "offer"}, headers=agent
        )
        assert no_audio.status_code == 422
