"""A fixed-depth jitter buffer over decoded PCM16 packets, keyed by RTP sequence number.

``push()`` stores a packet's decoded audio; ``pop(now)``, called once per 20 ms tick by the session,
returns the next 20 ms frame in sequence order. Playout starts once the first packet of a talkspurt
has waited ``depth_frames`` frame times, which absorbs that much network jitter; when the buffer runs
dry (end of a talkspurt, or a long gap) it stops and buffers again, so silence suppression costs
nothing. A missing packet with later ones already waiting is lost: it is concealed by repeating the
previous audio, attenuated, and then by silence. Packets of any duration are accepted (a peer with
ptime 30 still yields 20 ms frames).
"""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["JitterBuffer"]

_SEQ_MOD = 1 << 16
_CONCEAL_GAINS = (0.7, 0.4, 0.2)  # then silence: repeating a frame for long sounds like a buzz
_PLAYED_MEMORY = 64  # recently played sequence numbers, to tell duplicates from late packets


class JitterBuffer:
    def __init__(
        self, frame_samples: int = 160, depth_frames: float = 3, max_frames: int = 50, clock_rate: int = 8000
    ) -> None:
        if frame_samples <= 0 or depth_frames < 0 or max_frames < 1:
            raise ValueError("bad jitter buffer geometry")
        self.frame_samples = frame_samples
        self.frame_bytes = 2 * frame_samples
        self.depth_s = depth_frames * frame_samples / clock_rate
        self.max_frames = max_frames
        self.lost = 0
        self.late = 0
        self.duplicates = 0
        self.concealed = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream (new SSRC, or a jump in sequence/timestamp); the counters stay."""
        self._packets: dict[int, bytes] = {}
        self._highest: int | None = None  # extended sequence number
        self._highest_ts = 0
        self._next: int | None = None  # extended sequence number to play next
        self._playing = False
        self._buffering_since: float | None = None
        self._carry = b""  # decoded audio already taken from a packet but not yet played
        self._last = b""  # the last real packet's audio, for concealment
        self._conceal_run = 0
        self._played: deque[int] = deque(maxlen=_PLAYED_MEMORY)

    @property
    def buffered(self) -> int:
        return len(self._packets)

    def ready_time(self) -> float | None:
        """When playout may start (None: playing already, or nothing buffered)."""
        if self._playing or self._buffering_since is None:
            return None
        return self._buffering_since + self.depth_s

    def _extend(self, sequence: int) -> int:
        if self._highest is None:
            return sequence + _SEQ_MOD  # one cycle of headroom for packets older than the first
        delta = (sequence - self._highest) % _SEQ_MOD
        if delta >= _SEQ_MOD // 2:
            delta -= _SEQ_MOD
        return self._highest + delta

    def push(self, sequence: int, timestamp: int, payload: bytes, now: float) -> None:
        ext = self._extend(sequence)
        if self._highest is not None:
            jump = ext - self._highest
            ts_jump = (timestamp - self._highest_ts) % (1 << 32)
            ts_back = ts_jump >= 1 << 31 and (1 << 32) - ts_jump > self.max_frames * self.frame_samples
            if abs(jump) > self.max_frames or (jump > 0 and ts_back):
                self.reset()  # a new stream under the same SSRC (or a peer restart)
                ext = self._extend(sequence)
        if ext in self._packets or ext in self._played:
            self.duplicates += 1
            return
        if self._next is not None and ext < self._next:
            self.late += 1
            return
        if len(payload) % 2:
            payload = payload[:-1]
        self._packets[ext] = payload
        if self._highest is None or ext > self._highest:
            self._highest, self._highest_ts = ext, timestamp
        if not self._playing and self._buffering_since is None:
            self._buffering_since = now
        while len(self._packets) > self.max_frames:  # overflow: the oldest is as good as late
            oldest = min(self._packets)
            del self._packets[oldest]
            self.late += 1
            if self._next is not None and self._next <= oldest:
                self._next = oldest + 1

    def pop(self, now: float) -> bytes | None:
        """The next 20 ms frame, or None while buffering or after the buffer ran dry."""
        if not self._playing:
            ready = self.ready_time()
            if ready is None or now < ready - 1e-9:
                return None
            first = min(self._packets)
            if self._next is not None and 0 < first - self._next <= self.max_frames:
                self.lost += first - self._next  # lost while we were not playing: nothing to conceal
            self._next = first
            self._playing = True
            self._buffering_since = None
        while len(self._carry) < self.frame_bytes:
            audio = self._take()
            if audio is None:
                if not self._carry:
                    self._playing = False
                    return None
                audio = b"\x00" * (self.frame_bytes - len(self._carry))  # a partial frame ends a spurt
            self._carry += audio
        frame, self._carry = self._carry[: self.frame_bytes], self._carry[self.frame_bytes :]
        return frame

    def _take(self) -> bytes | None:
        """The next packet's audio, concealment for a lost one, or None when nothing is waiting."""
        assert self._next is not None
        if not self._packets:
            return None
        sequence = self._next
        self._next += 1
        payload = self._packets.pop(sequence, None)
        if payload is not None:
            self._played.append(sequence)
            self._last, self._conceal_run = payload, 0
            return payload
        self.lost += 1
        self.concealed += 1
        return self._conceal()

    def _conceal(self) -> bytes:
        size = len(self._last) or self.frame_bytes
        run = self._conceal_run
        self._conceal_run += 1
        if run >= len(_CONCEAL_GAINS) or not self._last:
            return b"\x00" * size
        samples = np.frombuffer(self._last, dtype="<i2").astype(np.float32) * _CONCEAL_GAINS[run]
        return samples.astype("<i2").tobytes()
