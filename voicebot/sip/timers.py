"""RFC 3261 timer values (section 17, table 4). Tests shrink T1/T2/T4 instead of waiting.

Every timer of the transaction layer is derived here, named as in the RFC; transports that are
reliable (TCP) get zero for the timers that only absorb UDP retransmissions (D, I, J, K).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIMERS", "Timers"]


@dataclass(frozen=True)
class Timers:
    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # maximum time a message remains in the network

    def a(self) -> float:  # INVITE request retransmit, doubles
        return self.t1

    def b(self) -> float:  # INVITE transaction timeout
        return 64 * self.t1

    def d(self, reliable: bool) -> float:  # wait for response retransmits after a non-2xx
        return 0.0 if reliable else 64 * self.t1  # 32 s at the default T1

    def e(self) -> float:  # non-INVITE request retransmit, doubles up to T2
        return self.t1

    def f(self) -> float:  # non-INVITE transaction timeout
        return 64 * self.t1

    def g(self) -> float:  # INVITE final-response retransmit
        return self.t1

    def h(self) -> float:  # wait time for ACK receipt
        return 64 * self.t1

    def i(self, reliable: bool) -> float:  # wait time for ACK retransmits
        return 0.0 if reliable else self.t4

    def j(self, reliable: bool) -> float:  # wait time for non-INVITE request retransmits
        return 0.0 if reliable else 64 * self.t1

    def k(self, reliable: bool) -> float:  # wait time for response retransmits
        return 0.0 if reliable else self.t4

    def l(self) -> float:  # noqa: E743 - RFC 6026 name: accepted INVITE server, 2xx retransmits
        return 64 * self.t1

    def m(self) -> float:  # RFC 6026: accepted INVITE client, further 2xx
        return 64 * self.t1


DEFAULT_TIMERS = Timers()
