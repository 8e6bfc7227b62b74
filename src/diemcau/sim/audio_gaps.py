"""Audio continuity at a receiver, from RTP alone: gaps a listener would hear.

A receiver that decodes (aiortc, a browser) hides what happened on the wire;
one that only counts packets cannot tell a lost packet Opus recovers from a
hole in the speech. `AudioGaps` keeps, per received Opus packet, its sequence
number, RTP timestamp, arrival time and whether it carries in-band FEC (LBRR,
`has_lbrr`), and plays the stream out against a jitter-buffer model:

- a packet is heard when it arrives by its playout time: its media time plus
  the largest network delay of the packets before it over the last
  `window_s` seconds plus `playout_ms` (a jitter buffer as deep as the recent
  worst delay: it grows at once when packets come late, as a browser's does
  after stretching the audio, and a delay that rises slowly, a queue filling
  up, is absorbed within `playout_ms` per packet);
- a packet missing or late is still heard when the next packet came on time
  and carries LBRR for it (Opus in-band FEC recovers exactly one frame);
- a gap is a run of frames not heard; the figure the faults bench reports is
  the number of gaps longer than `GAP_MS` per minute of audio.

Janus 1.1.2 negotiates NACK for video only, so a lost audio packet is never
retransmitted: for audio, in-band FEC (where the publisher's encoder adds it)
and concealment are all there is (docs/reliability.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["GAP_MS", "AudioGaps", "GapReport", "has_lbrr", "rtp_payload"]

GAP_MS = 100.0
_OPUS_CLOCK = 48  # RTP ticks per ms


def rtp_payload(packet: bytes) -> bytes | None:
    """The payload of a clear RTP packet (after CSRCs and a header extension), or None."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if len(packet) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(packet[start + 2 : start + 4], "big")
    end = len(packet)
    if packet[0] & 0x20 and end > start:
        end -= packet[-1]  # padding
    return packet[start:end] if end > start else None


class _RangeDecoder:
    """Just enough of Opus's range decoder (RFC 6716, 4.1) to read equiprobable bits."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._rng = 128
        self._rem = self._byte()
        self._val = self._rng - 1 - (self._rem >> 1)
        self._normalize()

    def _byte(self) -> int:
        b = self._data[self._pos] if self._pos < len(self._data) else 0
        self._pos += 1
        return b

    def _normalize(self) -> None:
        while self._rng <= 1 << 23:
            self._rng <<= 8
            sym = self._rem
            self._rem = self._byte()
            sym = ((sym << 8) | self._rem) >> 1
            self._val = ((self._val << 8) + (255 & ~sym)) & ((1 << 31) - 1)

    def bit(self) -> bool:
        """One symbol of probability 1/2 (``ec_dec_bit_logp(1)``)."""
        half = self._rng >> 1
        one = self._val < half
        if not one:
            self._val -= half
        self._rng = half if one else self._rng - half
        self._normalize()
        return one


def has_lbrr(payload: bytes) -> bool:
    """Whether an Opus packet's first frame carries LBRR (in-band FEC) data.

    The SILK layer of SILK-only and hybrid packets starts with one VAD flag per
    SILK frame and one LBRR flag, per channel, each an equiprobable range-coded
    bit (RFC 6716, 4.2.3). CELT-only packets have no LBRR; a packet with more
    than two frames (code 3) is not looked into (WebRTC sends one 20 ms frame).
    """
    if len(payload) < 2:
        return False
    toc = payload[0]
    config, stereo, code = toc >> 3, (toc >> 2) & 1, toc & 3
    if config >= 16 or code == 3:
        return False
    start = 1
    if code == 2:
        start = 3 if payload[1] >= 252 else 2
    frame = payload[start:]
    if len(frame) < 2:
        return False
    silk_frames = 1 if config >= 12 else (1, 1, 2, 3)[config % 4]
    dec = _RangeDecoder(frame)
    flags = []
    for _ in range(2 if stereo else 1):
        for _ in range(silk_frames):
            dec.bit()  # VAD
        flags.append(dec.bit())
    return any(flags)


@dataclass(frozen=True)
class GapReport:
    """What a listener heard.

    Attributes:
        seconds: audio time covered (first to last packet).
        frames: frames expected (from sequence numbers).
        lost: frames that never arrived.
        late: frames that arrived after their playout time.
        recovered: missing or late frames restored from the next packet's LBRR.
        unheard: frames neither on time nor recovered (concealed by the decoder).
        gaps_ms: every run of unheard frames, in ms.
        fec_packets: received packets carrying LBRR.
    """

    seconds: float
    frames: int
    lost: int
    late: int
    recovered: int
    unheard: int
    gaps_ms: tuple[float, ...]
    fec_packets: int

    def gaps_over(self, ms: float = GAP_MS) -> int:
        return sum(1 for g in self.gaps_ms if g > ms)

    def per_minute(self, ms: float = GAP_MS) -> float:
        """Gaps longer than ``ms`` per minute of audio."""
        return self.gaps_over(ms) * 60.0 / self.seconds if self.seconds > 0 else 0.0

    @property
    def unheard_pct(self) -> float:
        return 100.0 * self.unheard / self.frames if self.frames else 0.0

    @property
    def longest_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)


@dataclass
class _Packet:
    seq: int
    ts: int
    arrival: float
    fec: bool


@dataclass
class AudioGaps:
    """Received Opus packets of one stream, and the gaps a listener would hear.

    Args:
        playout_ms: jitter absorbed by the modelled buffer.
        window_s: how far back the smallest network delay is taken from.
    """

    playout_ms: float = 60.0
    window_s: float = 2.0
    _packets: list[_Packet] = field(default_factory=list)
    _ssrc: int | None = None
    _hi_seq: int = -1
    _hi_ts: int = 0

    def add_rtp(self, packet: bytes, arrival: float) -> None:
        """One clear RTP packet of the stream, with its arrival time (seconds)."""
        payload = rtp_payload(packet)
        if payload is None:
            return
        ssrc = int.from_bytes(packet[8:12], "big")
        if self._ssrc is None:
            self._ssrc = ssrc
        elif ssrc != self._ssrc:
            return  # one stream per counter
        seq = self._unwrap(int.from_bytes(packet[2:4], "big"), self._hi_seq, 16)
        ts = self._unwrap(int.from_bytes(packet[4:8], "big"), self._hi_ts, 32)
        self._hi_seq = max(self._hi_seq, seq)
        self._hi_ts = max(self._hi_ts, ts)
        self._packets.append(_Packet(seq, ts, arrival, has_lbrr(payload)))

    @staticmethod
    def _unwrap(value: int, highest: int, bits: int) -> int:
        if highest < 0:
            return value
        size = 1 << bits
        delta = (value - (highest % size) + size // 2) % size - size // 2
        return highest + delta

    @property
    def packets(self) -> int:
        return len(self._packets)

    def report(self) -> GapReport:
        """Play the stream out (see the module docstring) and list the gaps."""
        by_seq: dict[int, _Packet] = {}
        for pkt in self._packets:
            by_seq.setdefault(pkt.seq, pkt)  # a duplicate changes nothing
        if len(by_seq) < 2:
            return GapReport(0.0, len(by_seq), 0, 0, 0, 0, (), 0)
        seqs = sorted(by_seq)
        first, last = seqs[0], seqs[-1]
        ordered = [by_seq[s] for s in seqs]
        steps = sorted(
            (b.ts - a.ts) / (b.seq - a.seq) for a, b in zip(ordered, ordered[1:], strict=False)
        )
        tick = max(1.0, steps[len(steps) // 2])  # RTP ticks per frame (960 for 20 ms)
        frame_ms = tick / _OPUS_CLOCK
        on_time = self._on_time(ordered)
        heard: list[bool] = []
        lost = late = recovered = 0
        for seq in range(first, last + 1):
            got = by_seq.get(seq)
            if got is not None and on_time[seq]:
                heard.append(True)
                continue
            if got is None:
                lost += 1
            else:
                late += 1
            nxt = by_seq.get(seq + 1)
            if nxt is not None and nxt.fec and on_time[seq + 1]:
                recovered += 1
                heard.append(True)
            else:
                heard.append(False)
        gaps: list[float] = []
        run = 0
        for ok in [*heard, True]:
            if ok:
                if run:
                    gaps.append(run * frame_ms)
                run = 0
            else:
                run += 1
        frames = last - first + 1
        return GapReport(
            frames * frame_ms / 1000.0,
            frames,
            lost,
            late,
            recovered,
            heard.count(False),
            tuple(gaps),
            sum(1 for p in ordered if p.fec),
        )

    def _on_time(self, ordered: list[_Packet]) -> dict[int, bool]:
        """Per sequence number: arrived by its playout time (a sliding maximum of delay)."""
        out: dict[int, bool] = {}
        window = self.window_s * 1000.0
        recent: deque[tuple[float, float]] = deque()  # (media ms, offset ms), offsets falling
        for p in ordered:
            media = p.ts / _OPUS_CLOCK
            offset = p.arrival * 1000.0 - media
            while recent and recent[0][0] < media - window:
                recent.popleft()
            out[p.seq] = not recent or offset <= recent[0][1] + self.playout_ms
            while recent and recent[-1][1] <= offset:
                recent.pop()
            recent.append((media, offset))
        return out

    def cut(self) -> GapReport:
        """The report of the packets so far; the next report starts after them."""
        report = self.report()
        if self._packets:
            self._packets = self._packets[-1:]  # the next segment's start (counted once)
        return report
