"""The live bus: in-process fan-out, and delivery between processes through the socket directory."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import uuid
from pathlib import Path

import pytest

from voicebot.live.bus import LiveBus, bus_directory


async def next_event(subscription: object, timeout: float = 5.0) -> object:
    return await asyncio.wait_for(subscription.get(), timeout)  # type: ignore[attr-defined]


async def test_subscribers_get_the_topics_they_asked_for() -> None:
    bus = LiveBus()
    async with bus.subscribe("conversation.") as conversations, bus.subscribe() as everything:
        bus.publish("handoff.waiting", {"n": 1})
        bus.publish("conversation.turn", {"n": 2})
        assert (await next_event(conversations)).data == {"n": 2}  # type: ignore[attr-defined]
        assert [(await next_event(everything)).data["n"] for _ in range(2)] == [1, 2]  # type: ignore[attr-defined]
    assert bus.listeners == 0


async def test_a_slow_subscriber_loses_the_oldest_events_not_the_publisher() -> None:
    bus = LiveBus()
    async with bus.subscribe("x", maxsize=3) as slow:
        for n in range(10):
            bus.publish("x", {"n": n})
        assert slow.dropped == 7
        assert [(await next_event(slow)).data["n"] for _ in range(3)] == [7, 8, 9]  # type: ignore[attr-defined]


async def test_two_buses_on_one_directory_see_each_others_events(tmp_path: Path) -> None:
    directory = tmp_path / "bus"
    first, second = LiveBus(directory), LiveBus(directory)
    await first.start()
    await second.start()
    try:
        async with first.subscribe("audio.") as on_first, second.subscribe("audio.") as on_second:
            first.publish("audio.c1", {"seq": 1}, payload=b"\x00\x01" * 160)
            got = await next_event(on_second)
            assert got.topic == "audio.c1" and got.payload == b"\x00\x01" * 160  # type: ignore[attr-defined]
            mine = await next_event(on_first)  # delivered locally once, not echoed back by the socket
            assert mine.data == {"seq": 1}  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
            assert on_first._queue.empty()
    finally:
        await first.stop()
        await second.stop()
    assert not directory.exists()  # the last one out removed it


def _publish_from_another_process(directory: str) -> None:
    async def main() -> None:
        bus = LiveBus(Path(directory))
        await bus.start()
        bus.publish("conversation.turn", {"pid": os.getpid()})
        await bus.stop()

    asyncio.run(main())


async def test_an_event_from_another_process_arrives_and_a_dead_peer_is_dropped(tmp_path: Path) -> None:
    directory = tmp_path / "bus"
    bus = LiveBus(directory)
    await bus.start()
    try:
        (directory / "99999999-1.sock").touch()  # a peer that died without cleaning up
        async with bus.subscribe("conversation.") as events:
            process = multiprocessing.get_context("spawn").Process(
                target=_publish_from_another_process, args=(str(directory),)
            )
            process.start()
            got = await next_event(events, timeout=30)
            await asyncio.to_thread(process.join, 30)
            assert got.data["pid"] == process.pid  # type: ignore[attr-defined]
        bus.publish("conversation.turn", {"again": True})
        assert not (directory / "99999999-1.sock").exists()
    finally:
        await bus.stop()


def test_deployments_get_their_own_directory() -> None:
    a = bus_directory("sqlite+aiosqlite:////srv/a.db", "demo")
    assert a == bus_directory("sqlite+aiosqlite:////srv/a.db", "demo")
    assert a != bus_directory("sqlite+aiosqlite:////srv/b.db", "demo")
    assert a != bus_directory("sqlite+aiosqlite:////srv/a.db", "other")
    assert len(str(a / "1234567-12.sock")) < 100  # a socket path is limited to 107 bytes


REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")
async def test_buses_on_redis_share_events_like_processes_on_two_machines() -> None:
    channel = f"voicebot:live:test-{uuid.uuid4().hex[:8]}"
    first = LiveBus(redis_url=REDIS_URL, channel=channel)
    second = LiveBus(redis_url=REDIS_URL, channel=channel)
    other_deployment = LiveBus(redis_url=REDIS_URL, channel=channel + "-other")
    for bus in (first, second, other_deployment):
        await bus.start()
    try:
        for bus in (first, second, other_deployment):
            assert bus._redis is not None
            await asyncio.wait_for(bus._redis.connected.wait(), 10)
        async with (
            first.subscribe("handoff.") as on_first,
            second.subscribe("handoff.") as on_second,
            other_deployment.subscribe() as elsewhere,
        ):
            first.publish("handoff.waiting", {"n": 1}, payload=b"\x00\xff")
            got = await next_event(on_second)
            assert got.data == {"n": 1} and got.payload == b"\x00\xff"  # type: ignore[attr-defined]
            assert (await next_event(on_first)).data == {"n": 1}  # type: ignore[attr-defined]
            await asyncio.sleep(0.2)
            assert on_first._queue.empty() and elsewhere._queue.empty()  # no echo, no other deployment
    finally:
        for bus in (first, second, other_deployment):
            await bus.stop()


async def test_an_unreachable_redis_never_blocks_publishing() -> None:
    bus = LiveBus(redis_url="redis://127.0.0.1:9/0", channel="voicebot:live:nowhere")
    await bus.start()
    try:
        async with bus.subscribe("x") as local:
            for n in range(5):
                bus.publish("x", {"n": n})
            assert [(await next_event(local)).data["n"] for _ in range(5)] == list(range(5))  # type: ignore[attr-defined]
    finally:
        await bus.stop()
