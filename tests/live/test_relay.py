"""The media relay's protocol without WebRTC: requests and replies between two buses on one socket
directory (two worker processes), frames and control both ways, end from either side, expiry of a
silent end (fake clock), and the hub's answers to bad or unknown legs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from voicebot.errors import ConflictError
from voicebot.live.bus import LiveBus
from voicebot.live.relay import (
    BusLink,
    CallRelayHub,
    LinkState,
    Liveness,
    MediaOp,
    RelayRequest,
    call_topic,
    leg_topic,
    parse_request,
    request,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_liveness_expires_after_silence_and_renews_when_heard() -> None:
    clock = FakeClock()
    liveness = Liveness(clock, expiry_secs=8.0)
    clock.now += 7.9
    assert not liveness.expired()
    liveness.heard()
    clock.now += 7.5
    assert not liveness.expired()
    clock.now += 1.0
    assert liveness.expired()


def test_requests_are_parsed_or_ignored() -> None:
    assert parse_request({"leg": "l1", "op": "agent", "user": "ana"}) == RelayRequest(
        "l1", MediaOp.AGENT, "ana"
    )
    for bad in (
        {"leg": "l1", "op": "dance", "user": "ana"},
        {"leg": "", "op": "agent", "user": "ana"},
        {"leg": "l1", "op": "whisper"},
        {"leg": 3, "op": "hangup", "user": "ana"},
    ):
        assert parse_request(bad) is None


class Leg:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


@pytest_asyncio.fixture
async def buses(tmp_path: Path) -> AsyncIterator[tuple[LiveBus, LiveBus]]:
    call_side, browser_side = LiveBus(tmp_path / "bus"), LiveBus(tmp_path / "bus")
    await call_side.start()
    await browser_side.start()
    yield call_side, browser_side
    await call_side.stop()
    await browser_side.stop()


async def test_a_leg_accepted_across_processes_carries_frames_both_ways_and_ends(
    buses: tuple[LiveBus, LiveBus],
) -> None:
    call_side, browser_side = buses
    hub_links: list[BusLink] = []
    heard_by_call: list[bytes] = []

    async def handler(req: RelayRequest, link: BusLink) -> Leg | None:
        if req.user != "ana":
            raise ConflictError("ana has this call")
        link.on_frame = heard_by_call.append
        hub_links.append(link)
        return Leg()

    hub = CallRelayHub(call_side, "c1", handler)
    watcher = asyncio.create_task(hub.watch())
    try:
        await asyncio.sleep(0.01)
        assert await request(browser_side, "c1", MediaOp.AGENT, "bo") == (False, "ana has this call")
        assert await request(browser_side, "c2", MediaOp.AGENT, "ana", timeout_secs=0.2) is None
        assert hub.legs == 0

        link = BusLink(browser_side, call_topic("c1"), tag={"leg": "leg-1"})
        heard_by_browser: list[bytes] = []
        link.on_frame = heard_by_browser.append
        async with browser_side.subscribe(leg_topic("leg-1")) as events:
            assert await request(browser_side, "c1", MediaOp.AGENT, "ana", leg="leg-1", subscription=events)
            link.open()
            assert hub.legs == 1
            (call_link,) = hub_links
            link.send_frame(b"\x01" * 640)
            call_link.send_frame(b"\x02" * 640)
            event = await asyncio.wait_for(events.get(), 5)
            link.deliver(event.topic.rsplit(".", 1)[1], event.data, event.payload)
            assert heard_by_browser == [b"\x02" * 640]
            for _ in range(200):
                if heard_by_call:
                    break
                await asyncio.sleep(0.01)
            assert heard_by_call == [b"\x01" * 640]

            link.end("the agent hung up")  # from the browser's side: the call's end closes too
            await asyncio.wait_for(call_link.closed.wait(), 5)
            assert call_link.reason == "the agent hung up" and call_link.state is LinkState.ENDED
            link.send_frame(b"\x03" * 640)  # an ended link sends nothing
            assert link.sent == 1

            # a keepalive of a leg the call does not know (any more) is answered with its end
            browser_side.publish(call_topic("c1", "control"), {"leg": "leg-1", "event": "alive"})
            event = await asyncio.wait_for(events.get(), 5)
            assert event.topic == leg_topic("leg-1", "control") and event.data["event"] == "end"
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_a_handler_that_fails_is_a_refusal_not_a_timeout(buses: tuple[LiveBus, LiveBus]) -> None:
    call_side, browser_side = buses

    async def handler(req: RelayRequest, link: BusLink) -> Leg | None:
        raise RuntimeError("boom")

    hub = CallRelayHub(call_side, "c1", handler)
    watcher = asyncio.create_task(hub.watch())
    try:
        await asyncio.sleep(0.01)
        reply = await request(browser_side, "c1", MediaOp.WHISPER, "sam")
        assert reply is not None and reply[0] is False and "RuntimeError" in reply[1]
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


@pytest.mark.parametrize("opened", [True, False])
async def test_a_silent_other_end_expires_the_link(opened: bool) -> None:
    bus = LiveBus()
    clock = FakeClock()
    link = BusLink(bus, leg_topic("x"), now=clock, keepalive_secs=0.01, expiry_secs=8.0)
    if opened:
        link.open()
    keepalive = asyncio.create_task(link.keep_alive())
    try:
        async with bus.subscribe(leg_topic("x")) as sent:
            await asyncio.sleep(0.05)
            if opened:
                assert (await asyncio.wait_for(sent.get(), 5)).data["event"] == "alive"
            link.deliver("control", {"event": "alive"}, b"")
            clock.now += 7.0
            await asyncio.sleep(0.05)
            assert not link.closed.is_set()
            clock.now += 2.0  # nothing heard for 9 s
            if opened:
                await asyncio.wait_for(link.closed.wait(), 5)
                assert link.state is LinkState.ENDED and "stopped answering" in link.reason
            else:  # a leg not yet accepted neither sends keepalives nor expires
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(sent.get(), 0.05)
                assert link.state is LinkState.PENDING
    finally:
        keepalive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keepalive
