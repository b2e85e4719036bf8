"""Browser calls over WebRTC: pipecat's SmallWebRTC (aiortc) behind one factory, ICE kept on the
networks the operator allows.

``WebRTCPeer.answer(offer_sdp, ice)`` builds a SmallWebRTCConnection for a browser's offer and
returns it with its SDP answer; ``serve_webrtc_call(runtime, peer, call)`` puts pipecat's
SmallWebRTCTransport around it and runs ``run_call``.

ICE confinement (``IcePolicy``), enforced per connection, never process-wide:

* gathering: aioice skips 127.0.0.1 and binds every other interface; each connection's
  ``get_component_candidates`` is given the policy's ``host_addresses`` instead, so the answer
  carries exactly those candidates (127.0.0.1 in tests) and no socket is bound elsewhere;
* no STUN or TURN server is configured, so nothing is sent to learn a public address;
* remote candidates: ``confine_sdp`` drops every offered candidate outside ``allowed_networks``
  (interface addresses, mDNS ``.local`` names, which aioice would resolve by multicast), so no check
  is ever sent to them;
* peer-reflexive addresses: a connectivity check arriving from outside ``allowed_networks`` is
  dropped unanswered, so no pair (and no media) can form with it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

from voicebot.pipeline.call import CallInfo, CallResult, run_call

__all__ = [
    "IN_SAMPLE_RATE",
    "OUT_SAMPLE_RATE",
    "IcePolicy",
    "WebRTCPeer",
    "confine_peer_connection",
    "confine_sdp",
    "sdp_candidate_addresses",
    "serve_webrtc_call",
]

log = logging.getLogger(__name__)

IN_SAMPLE_RATE = 16000  # the pipeline's caller audio (Whisper's rate); Opus arrives at 48 kHz
OUT_SAMPLE_RATE = 24000  # the bot's audio into the Opus encoder
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class IcePolicy:
    """Where WebRTC media may flow. The default is loopback only (tests, a laptop demo)."""

    host_addresses: tuple[str, ...] = ("127.0.0.1",)  # local addresses ICE binds and offers
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8",)  # remote addresses ICE may talk to

    def networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(n) for n in self.allowed_networks)

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # an mDNS or other host name: never resolved, never contacted
            return False
        return any(ip in net for net in self.networks())


def sdp_candidate_addresses(sdp: str) -> list[str]:
    """The connection address of every ``a=candidate`` line of ``sdp``."""
    found = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) >= 5:
                found.append(fields[4])
    return found


def confine_sdp(sdp: str, policy: IcePolicy) -> tuple[str, list[str]]:
    """``sdp`` without the candidates ``policy`` does not allow; returns (sdp, dropped addresses)."""
    kept: list[str] = []
    dropped: list[str] = []
    for line in sdp.splitlines(keepends=True):
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) < 5 or not policy.allows(fields[4]):
                dropped.append(fields[4] if len(fields) >= 5 else line.strip())
                continue
        kept.append(line)
    return "".join(kept), dropped


def confine_peer_connection(pc: Any, policy: IcePolicy) -> None:
    """Make every ICE agent of the aiortc ``pc`` obey ``policy``; call it after the transceivers
    exist (after setRemoteDescription for an answerer, addTrack for an offerer) and before
    setLocalDescription gathers."""
    transports = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    agents: dict[int, Any] = {}
    for dtls in transports:
        agent = getattr(getattr(dtls.transport, "iceGatherer", None), "_connection", None)
        if agent is None:
            raise RuntimeError("aiortc's ICE agent is not where expected: refusing to run unconfined")
        agents[id(agent)] = agent
    for agent in agents.values():
        _confine_agent(agent, policy)


def _confine_agent(agent: Any, policy: IcePolicy) -> None:
    if getattr(agent, "_voicebot_confined", False):
        return
    if agent.stun_server is not None or agent.turn_server is not None:
        raise RuntimeError("a STUN/TURN server is configured: WebRTC calls use host candidates only")
    gather = agent.get_component_candidates
    answer_check = agent.request_received

    async def get_component_candidates(component: int, addresses: Sequence[str], timeout: int = 5) -> Any:
        return await gather(component=component, addresses=list(policy.host_addresses), timeout=timeout)

    def request_received(message: Any, addr: tuple[Any, ...], protocol: Any) -> None:
        if not policy.allows(str(addr[0])):
            log.warning("webrtc: ICE check from %s refused (not an allowed network)", addr[0])
            return
        answer_check(message, addr, protocol)

    agent.get_component_candidates = get_component_candidates
    agent.request_received = request_received
    agent._voicebot_confined = True


class _ConfinedConnection(SmallWebRTCConnection):
    """A SmallWebRTCConnection whose ICE agents obey an IcePolicy (see the module docstring).

    aiortc creates the ICE agents while it applies the remote offer and gathers while it sets the
    local answer; pipecat calls ``force_transceivers_to_send_recv`` in between, the one point where
    the agents exist and have not gathered yet.
    """

    def __init__(self, policy: IcePolicy) -> None:
        self._policy = policy
        super().__init__(ice_servers=[])

    def force_transceivers_to_send_recv(self) -> None:
        super().force_transceivers_to_send_recv()
        confine_peer_connection(self.pc, self._policy)


class WebRTCPeer:
    """One browser's peer connection (aiortc via pipecat), from offer to close."""

    def __init__(self, connection: SmallWebRTCConnection) -> None:
        self.connection = connection

    @property
    def pc_id(self) -> str:
        return self.connection.pc_id

    @classmethod
    async def answer(cls, offer_sdp: str, policy: IcePolicy) -> tuple[WebRTCPeer, str]:
        """A new peer for ``offer_sdp`` and its SDP answer (candidates included, no trickle).

        Raises ValueError when aiortc cannot use the offer."""
        sdp, dropped = confine_sdp(offer_sdp, policy)
        if dropped:
            log.info("webrtc offer: %d candidates outside the allowed networks ignored", len(dropped))
        connection = _ConfinedConnection(policy)
        peer = cls(connection)
        try:
            await connection.initialize(sdp=sdp, type="offer")
        except Exception as exc:
            await peer.close()
            raise ValueError(str(exc) or type(exc).__name__) from exc
        answer = connection.get_answer()
        if answer is None:  # pragma: no cover - aiortc always sets one after initialize()
            await peer.close()
            raise ValueError("no SDP answer was produced")
        return peer, str(answer["sdp"])

    def remote_addresses(self) -> set[str]:
        """The remote addresses of the nominated ICE pairs (empty until connected)."""
        found: set[str] = set()
        for transceiver in self.connection.pc.getTransceivers():
            agent = transceiver.receiver.transport.transport.iceGatherer._connection
            found.update(str(pair.remote_addr[0]) for pair in agent._nominated.values())
        return found

    async def close(self) -> None:
        await self.connection.disconnect()


async def serve_webrtc_call(runtime: Any, peer: WebRTCPeer, call: CallInfo) -> CallResult:
    """Run one call on ``peer`` until either side ends it."""
    transport = SmallWebRTCTransport(
        webrtc_connection=peer.connection,
        params=TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=call.in_sample_rate,
            audio_out_sample_rate=call.out_sample_rate,
        ),
    )
    return await run_call(runtime, runtime.speech, transport, call)
