"""A subscriber that never decodes: RTP packets of one feed counted and dropped.

Capacity runs (bench/media.py) need hundreds of real subscribers on one Janus node; a
decoding `ViewerBot` each would measure aiortc's decoder instead of Janus
(docs/media.md, "Benchmark"). `LightReceiver` negotiates ICE, DTLS and SRTP like any
subscriber, so Janus does the same work per viewer, then counts packets, bytes and
sequence-number gaps (`RtpCounter`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack

from diemcau.sim.janus_bots import JanusTarget, ViewerBot

__all__ = ["LightReceiver", "RtpCounter"]


@dataclass
class RtpCounter:
    """Packets, bytes and sequence-number gaps per SSRC."""

    packets: int = 0
    bytes: int = 0
    first_at: float = 0.0
    _first_seq: dict[int, int] = field(default_factory=dict)
    _max_seq: dict[int, int] = field(default_factory=dict)
    _count: dict[int, int] = field(default_factory=dict)

    def add(self, ssrc: int, seq: int, size: int) -> None:
        if not self.packets:
            self.first_at = time.monotonic()
        self.packets += 1
        self.bytes += size
        if ssrc not in self._first_seq:
            self._first_seq[ssrc] = seq
            self._max_seq[ssrc] = seq
            self._count[ssrc] = 0
        else:
            # unwrap 16-bit sequence numbers against the highest seen
            hi = self._max_seq[ssrc]
            delta = (seq - (hi & 0xFFFF) + 0x8000) % 0x10000 - 0x8000
            if delta > 0:
                self._max_seq[ssrc] = hi + delta
        self._count[ssrc] += 1

    def expected(self) -> int:
        return sum(self._max_seq[s] - self._first_seq[s] + 1 for s in self._first_seq)

    def loss(self) -> float:
        """Fraction of packets missing (0..1), counted from sequence numbers."""
        exp = self.expected()
        if exp <= 0:
            return 0.0
        return max(0.0, 1.0 - sum(self._count.values()) / exp)


class LightReceiver(ViewerBot):
    """A subscriber that never decodes: RTP packets are counted and dropped.

    The PC negotiates and keeps ICE/DTLS/SRTP like any subscriber, so Janus
    does the same work per viewer. Once the PC is up, RTP is counted straight
    off the ICE-selected socket: the RTP header (sequence number, SSRC) is in
    clear under SRTP, so nothing is decrypted, queued or parsed further (a
    couple of µs per packet, where aiortc's receive path costs ~100 µs). RTCP
    and STUN still go to aiortc, which keeps sending its receiver reports and
    answering Janus's connectivity checks.
    """

    def __init__(self, target: JanusTarget, feed_id: int) -> None:
        super().__init__(target, feed_id)
        self.counter = RtpCounter()
        self.pc.remove_all_listeners("track")

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            counter = self.counter

            async def _count(data: bytes, arrival_time_ms: int) -> None:
                if len(data) >= 12:
                    counter.add(
                        int.from_bytes(data[8:12], "big"),
                        int.from_bytes(data[2:4], "big"),
                        len(data) - 12,
                    )

            for transceiver in self.pc.getTransceivers():
                dtls = transceiver.receiver.transport
                dtls._handle_rtp_data = _count  # type: ignore[method-assign]

    async def start(self, timeout: float = 10.0) -> None:
        await super().start(timeout)
        counter = self.counter
        for transceiver in self.pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            for pair in ice._connection._nominated.values():
                protocol = pair.protocol
                if getattr(protocol, "_diemcau_counting", False):
                    continue
                deliver = protocol.datagram_received

                def fast(
                    data: bytes,
                    addr: tuple[object, ...],
                    deliver: Callable[[bytes, tuple[object, ...]], None] = deliver,
                ) -> None:
                    # RTP (not RTCP: its second byte is 192-223) is counted and dropped.
                    if len(data) >= 12 and 127 < data[0] < 192 and not 191 < data[1] < 224:
                        counter.add(
                            int.from_bytes(data[8:12], "big"),
                            int.from_bytes(data[2:4], "big"),
                            len(data) - 12,
                        )
                        return
                    deliver(data, addr)

                protocol.datagram_received = fast  # type: ignore[assignment]
                protocol._diemcau_counting = True  # type: ignore[attr-defined]

    async def wait_packets(self, count: int, timeout: float = 5.0) -> float:
        """Wait until ``count`` more RTP packets arrived; returns when the first ever came."""
        target = self.counter.packets + count
        failed = f"light receiver of feed {self.feed_id}: no packets"
        await self._wait_until(lambda: self.counter.packets >= target, timeout, failed, 0.02)
        return self.counter.first_at
