"""Listen-in over the live bus: presence (join, keepalive, expiry, leave) and the audio fan-out
from a call in one process to listeners in another (two buses on one socket directory)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from voicebot.live.bus import LiveBus
from voicebot.live.listen import EXPIRY_SECS, ListenPresence, ListenPublisher, listen_topic, listening


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_presence_counts_listeners_until_they_leave_or_expire() -> None:
    clock = FakeClock()
    presence = ListenPresence(clock)
    assert presence.count() == 0
    presence.apply({"listener": "a", "state": "join"})
    presence.apply({"listener": "b", "state": "join"})
    presence.apply({"listener": "b", "state": "join"})  # a keepalive
    assert presence.count() == 2
    presence.apply({"listener": "a", "state": "leave"})
    assert presence.count() == 1
    clock.now += EXPIRY_SECS - 1
    assert presence.count() == 1
    clock.now += 2  # b's process died: no keepalive
    assert presence.count() == 0
    for bad in ({"listener": "c", "state": "dance"}, {"state": "join"}, {"listener": 5, "state": "join"}):
        presence.apply(bad)
    assert presence.count() == 0


async def test_a_call_publishes_audio_only_while_someone_listens() -> None:
    bus = LiveBus()
    publisher = ListenPublisher(bus, "c1")
    watcher = asyncio.create_task(publisher.watch())
    try:
        await asyncio.sleep(0)
        publisher.write(b"\x01\x00" * 320)
        assert publisher.published == 0  # nobody listens: nothing goes on the bus
        bus.publish(listen_topic("c1"), {"listener": "x", "state": "join"})
        bus.publish(listen_topic("c2"), {"listener": "y", "state": "join"})  # another call's
        await asyncio.sleep(0.01)
        assert publisher.presence.count() == 1
        publisher.write(b"\x01\x00" * 320)
        assert publisher.published == 1
        bus.publish(listen_topic("c1"), {"listener": "x", "state": "leave"})
        await asyncio.sleep(0.01)
        publisher.write(b"\x01\x00" * 320)
        assert publisher.published == 1
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_listeners_in_another_process_receive_the_calls_frames(tmp_path: Path) -> None:
    directory = tmp_path / "bus"
    call_side, listener_side, other_listener_side = LiveBus(directory), LiveBus(directory), LiveBus(directory)
    for bus in (call_side, listener_side, other_listener_side):
        await bus.start()
    publisher = ListenPublisher(call_side, "call-1")
    watcher = asyncio.create_task(publisher.watch())
    try:
        await asyncio.sleep(0)
        async with (
            listening(listener_side, "call-1") as frames,
            listening(other_listener_side, "call-1") as other_frames,
        ):
            for _ in range(200):  # the join crosses the socket
                if publisher.presence.count() == 2:
                    break
                await asyncio.sleep(0.01)
            assert publisher.presence.count() == 2
            sent = [bytes([n]) * 640 for n in range(1, 6)]
            for frame in sent:
                publisher.write(frame)
            got = [await asyncio.wait_for(anext(frames), 5) for _ in sent]
            other = [await asyncio.wait_for(anext(other_frames), 5) for _ in sent]
            assert got == sent and other == sent
        for _ in range(200):  # both left: the call stops publishing
            if publisher.presence.count() == 0:
                break
            await asyncio.sleep(0.01)
        assert publisher.presence.count() == 0
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for bus in (call_side, listener_side, other_listener_side):
            await bus.stop()
