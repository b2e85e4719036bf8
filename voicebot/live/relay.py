"""Media relay over the live bus: a browser's WebRTC leg in one worker process, the call in another.

An agent's (or a whispering supervisor's) browser reaches whichever worker took its HTTP request;
that worker terminates the WebRTC peer, and the call's audio crosses the bus between it and the
worker that runs the call. The call's worker is the hub: it mixes what the agent hears and receives
the agent's and the whisperers' microphones. Audio is 16 kHz PCM16 mono in 20 ms frames, as the
call tap's, one frame per bus event (the PCM as the payload).

Topics (``cid``: the conversation, ``leg``: a fresh id per browser leg)::

    media.call.<cid>.request  {"leg", "op": agent|whisper|hangup, "user"}   to the call's worker
    media.call.<cid>.frame    {"leg", "seq"} + PCM                          a browser's microphone
    media.call.<cid>.control  {"leg", "event": alive|connected|end, "reason"}
    media.leg.<leg>.reply     {"ok", "reason"}                              the call's answer
    media.leg.<leg>.frame     {"seq"} + PCM                                 what the agent hears
    media.leg.<leg>.control   {"event": alive|end, "reason"}

A request that no worker answers within REPLY_TIMEOUT_SECS finds the call in no process. Both ends
of an open leg send ``alive`` every KEEPALIVE_SECS and tear the leg down when the other end has been
silent for EXPIRY_SECS (its process died); ``end`` closes it at once from either side. Everything
here is best effort and never blocks: ``publish`` is fire-and-forget and the bus's subscriptions
are bounded (a slow reader loses its oldest frames).

``Liveness``, ``parse_request`` and the topic functions are pure; ``BusLink`` is one end of a leg.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from voicebot.errors import ConflictError
from voicebot.live.bus import LiveBus, LiveEvent, Subscription

__all__ = [
    "EXPIRY_SECS",
    "KEEPALIVE_SECS",
    "REPLY_TIMEOUT_SECS",
    "BusLink",
    "CallRelayHub",
    "LinkState",
    "Liveness",
    "MediaOp",
    "RelayRequest",
    "call_topic",
    "leg_topic",
    "new_leg_id",
    "parse_request",
    "request",
]

log = logging.getLogger(__name__)

KEEPALIVE_SECS = 2.0
EXPIRY_SECS = 8.0  # four missed keepalives
REPLY_TIMEOUT_SECS = 2.0
HUB_QUEUE = 250  # 5 s of one microphone's frames; the bus drops the oldest beyond it


class MediaOp(StrEnum):
    AGENT = "agent"  # an agent joins the held call
    WHISPER = "whisper"  # a supervisor speaks to the agent only
    HANGUP = "hangup"  # the agent leaves (the call ends as transferred)


class LinkEvent(StrEnum):
    ALIVE = "alive"
    CONNECTED = "connected"  # the browser's WebRTC peer connected
    END = "end"


class LinkState(StrEnum):
    PENDING = "pending"  # asked, not yet accepted: frames are not sent
    OPEN = "open"
    ENDED = "ended"


def call_topic(conversation_id: str, kind: str = "") -> str:
    return f"media.call.{conversation_id}.{kind}"


def leg_topic(leg: str, kind: str = "") -> str:
    return f"media.leg.{leg}.{kind}"


def new_leg_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class RelayRequest:
    leg: str
    op: MediaOp
    user: str


def parse_request(data: dict[str, Any]) -> RelayRequest | None:
    """A well-formed request, or None (it is ignored: a request nobody can answer times out)."""
    leg, user = data.get("leg"), data.get("user")
    try:
        op = MediaOp(str(data.get("op")))
    except ValueError:
        return None
    if not isinstance(leg, str) or not leg or not isinstance(user, str) or not user:
        return None
    return RelayRequest(leg, op, user)


class Liveness:
    """When the other end was last heard from, and whether it is presumed dead."""

    def __init__(self, now: Callable[[], float] = time.monotonic, expiry_secs: float = EXPIRY_SECS) -> None:
        self._now = now
        self._expiry = expiry_secs
        self._heard = now()

    def heard(self) -> None:
        self._heard = self._now()

    def expired(self) -> bool:
        return self._now() - self._heard > self._expiry


class BusLink:
    """One end of a relayed leg: sends frames and control events to ``out`` (a topic prefix, with
    ``tag`` in every event's data), takes the other end's events through ``deliver``, keeps the leg
    alive and ends it (``closed``, ``reason``) on ``end``, on the other end's ``end`` or silence."""

    def __init__(
        self,
        bus: LiveBus,
        out: str,
        *,
        tag: dict[str, str] | None = None,
        now: Callable[[], float] = time.monotonic,
        keepalive_secs: float = KEEPALIVE_SECS,
        expiry_secs: float = EXPIRY_SECS,
    ) -> None:
        self._bus = bus
        self._out = out
        self._tag = tag or {}
        self._keepalive = keepalive_secs
        self.liveness = Liveness(now, expiry_secs)
        self.state = LinkState.PENDING
        self.reason = ""
        self.closed = asyncio.Event()
        self.on_frame: Callable[[bytes], None] = lambda _pcm: None
        self.on_event: Callable[[LinkEvent], None] = lambda _event: None
        self.sent = 0
        self.received = 0

    def open(self) -> None:
        if self.state is LinkState.PENDING:
            self.state = LinkState.OPEN
            self.liveness.heard()

    def send_frame(self, pcm: bytes) -> None:
        if self.state is LinkState.OPEN:
            self.sent += 1
            self._bus.publish(self._out + "frame", {**self._tag, "seq": self.sent}, pcm)

    def control(self, event: LinkEvent, reason: str = "") -> None:
        if self.state is not LinkState.ENDED:
            self._bus.publish(self._out + "control", {**self._tag, "event": event.value, "reason": reason})

    def deliver(self, kind: str, data: dict[str, Any], payload: bytes) -> None:
        """An event from the other end (``kind``: the topic's last part)."""
        if self.state is not LinkState.OPEN:
            return
        self.liveness.heard()
        if kind == "frame":
            self.received += 1
            self.on_frame(payload)
        elif kind == "control":
            try:
                event = LinkEvent(str(data.get("event")))
            except ValueError:
                return
            if event is LinkEvent.END:
                self._finish(str(data.get("reason") or "the other side ended the leg"))
            else:
                self.on_event(event)

    def end(self, reason: str) -> None:
        """Close this leg and tell the other end."""
        if self.state is LinkState.OPEN:
            self.control(LinkEvent.END, reason)
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self.state is not LinkState.ENDED:
            log.info("media relay %s: ended (%s)", self._out, reason)
            self.state, self.reason = LinkState.ENDED, reason
            self.closed.set()

    async def keep_alive(self) -> None:
        """Send keepalives and watch the other end's until the leg ends (the owner runs this task)."""
        while self.state is not LinkState.ENDED:
            if self.state is LinkState.OPEN:
                if self.liveness.expired():
                    self._finish("the other worker process stopped answering")
                    return
                self.control(LinkEvent.ALIVE)
            await asyncio.sleep(self._keepalive)


async def request(
    bus: LiveBus,
    conversation_id: str,
    op: MediaOp,
    user: str,
    *,
    leg: str | None = None,
    timeout_secs: float = REPLY_TIMEOUT_SECS,
    subscription: Subscription | None = None,
) -> tuple[bool, str] | None:
    """Ask the worker running the call; (accepted, reason), or None when no worker answered.
    ``subscription`` (to ``leg_topic(leg)``, entered by the caller) keeps the leg's later events."""
    leg = leg or new_leg_id()
    own = subscription is None
    events = subscription or bus.subscribe(leg_topic(leg))
    if own:
        await events.__aenter__()
    try:
        bus.publish(call_topic(conversation_id, "request"), {"leg": leg, "op": op.value, "user": user})
        try:
            async with asyncio.timeout(timeout_secs):
                while True:
                    event = await events.get()
                    if event.topic == leg_topic(leg, "reply"):
                        return bool(event.data.get("ok")), str(event.data.get("reason") or "")
        except TimeoutError:
            return None
    finally:
        if own:
            await events.__aexit__(None, None, None)


class Closable(Protocol):
    async def close(self) -> None: ...


# Makes the call's side of an accepted leg (or does a hang-up and returns None); refuses with
# ConflictError, whose message goes back to the requesting worker.
RequestHandler = Callable[[RelayRequest, BusLink], Awaitable[Closable | None]]


class CallRelayHub:
    """The call's worker: answers requests for one call and routes each leg's events to its link.
    ``watch`` runs as long as the call (the call tap owns the task)."""

    def __init__(self, bus: LiveBus, conversation_id: str, handler: RequestHandler) -> None:
        self._bus = bus
        self.conversation_id = conversation_id
        self._handler = handler
        self._links: dict[str, BusLink] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def link(self, leg: str, **kwargs: Any) -> BusLink:
        return BusLink(self._bus, leg_topic(leg), **kwargs)

    @property
    def legs(self) -> int:
        return sum(1 for link in self._links.values() if link.state is not LinkState.ENDED)

    async def watch(self) -> None:
        prefix = call_topic(self.conversation_id)
        try:
            async with self._bus.subscribe(prefix, maxsize=HUB_QUEUE) as events:
                async for event in events:
                    self._route(event, event.topic[len(prefix) :])
        finally:
            for task in list(self._tasks):
                task.cancel()

    def _route(self, event: LiveEvent, kind: str) -> None:
        leg = event.data.get("leg")
        if not isinstance(leg, str):
            return
        if kind == "request":
            parsed = parse_request(event.data)
            if parsed is not None:
                task = asyncio.create_task(self._answer(parsed), name=f"media-relay-{parsed.op}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return
        link = self._links.get(leg)
        if link is None or link.state is LinkState.ENDED:
            self._links.pop(leg, None)
            if kind == "control" and event.data.get("event") == LinkEvent.ALIVE.value:
                # a leg this call does not know (it ended, or the call restarted): tell it
                self._bus.publish(leg_topic(leg, "control"), {"event": "end", "reason": "no such leg"})
            return
        link.deliver(kind, event.data, event.payload)

    async def _answer(self, req: RelayRequest) -> None:
        link = self.link(req.leg)
        try:
            made = await self._handler(req, link)
        except ConflictError as exc:
            self._reply(req.leg, False, str(exc))
            return
        except Exception as exc:  # never leave the requester waiting for its timeout
            log.exception("media relay: a %s request for %s failed", req.op, self.conversation_id)
            self._reply(req.leg, False, f"the call could not take the leg: {type(exc).__name__}")
            return
        if made is not None:
            link.open()
            self._links[req.leg] = link
        self._reply(req.leg, True, "")

    def _reply(self, leg: str, ok: bool, reason: str) -> None:
        self._bus.publish(leg_topic(leg, "reply"), {"ok": ok, "reason": reason})
