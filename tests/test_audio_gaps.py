"""Audio gaps counted from RTP: Opus's in-band FEC read from real libopus packets,
and the jitter-buffer model's verdicts on made-up arrival patterns."""

from __future__ import annotations

import fractions
import math

import av
import numpy as np
import pytest

from diemcau.sim.audio_gaps import GAP_MS, AudioGaps, has_lbrr, rtp_payload


def _opus_packets(options: dict[str, str], count: int = 150) -> list[bytes]:
    """20 ms Opus packets of a swelling tone (speech-like) from libopus via PyAV."""
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate = 32000
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = 48000
    codec.time_base = fractions.Fraction(1, 48000)
    codec.options = options
    out: list[bytes] = []
    for i in range(count):
        t = (np.arange(960) + i * 960) / 48000
        level = 8000 * (0.6 + 0.4 * np.sin(2 * math.pi * 3 * t))
        pcm = (np.sin(2 * math.pi * 440 * t) * level).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i * 960
        frame.time_base = fractions.Fraction(1, 48000)
        out += [bytes(p) for p in codec.encode(frame)]
    return out


def test_lbrr_is_read_from_libopus_packets_with_fec_and_never_without() -> None:
    with_fec = _opus_packets({"application": "voip", "fec": "1", "packet_loss": "10"})
    without = _opus_packets({"application": "voip"})
    share = sum(map(has_lbrr, with_fec)) / len(with_fec)
    assert share > 0.3, share  # LBRR for the active frames that follow active ones
    assert not any(map(has_lbrr, without))
    # Bad input: nothing, a lone TOC byte, a CELT-only TOC, a code-3 packet: no LBRR,
    # no exception.
    for junk in (b"", b"\x48", bytes([31 << 3, 0xFF, 0xFF]), bytes([(9 << 3) | 3, 1, 2])):
        assert has_lbrr(junk) is False


def _rtp(seq: int, ts: int, payload: bytes = b"\x48\x00\x00", ssrc: int = 7) -> bytes:
    header = bytes([0x80, 111]) + (seq & 0xFFFF).to_bytes(2, "big")
    return header + (ts & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big") + payload


def _stream(
    gaps: AudioGaps, seqs: range, *, start: float = 0.0, delay: dict[int, float] | None = None
) -> None:
    for seq in seqs:
        arrival = start + seq * 0.02 + 0.05 + (delay or {}).get(seq, 0.0)
        gaps.add_rtp(_rtp(seq, seq * 960), arrival)


def test_a_clean_stream_has_no_gap_and_losses_count_by_run_length() -> None:
    clean = AudioGaps()
    _stream(clean, range(3000))  # one minute
    rep = clean.report()
    assert (rep.frames, rep.lost, rep.unheard, rep.gaps_ms) == (3000, 0, 0, ())
    assert rep.seconds == pytest.approx(60.0)

    lossy = AudioGaps()
    missing = {100, 200, 201, 202, 203, 204, 300, 301, 302, 303, 304, 305}  # 20, 100, 120 ms
    _stream(lossy, range(0, 1500))
    lossy._packets = [p for p in lossy._packets if p.seq not in missing]
    rep = lossy.report()
    assert rep.lost == len(missing) and rep.unheard == len(missing)
    assert sorted(rep.gaps_ms) == [20.0, 100.0, 120.0]
    assert rep.gaps_over(GAP_MS) == 1  # only the 120 ms run is longer than 100 ms
    assert rep.per_minute() == pytest.approx(2.0)


def test_late_packets_are_gaps_until_the_buffer_grows_and_fec_recovers_one_frame() -> None:
    gaps = AudioGaps(playout_ms=60.0)
    # A delay jump of 300 ms at packet 500: those packets are late for the buffer
    # until it has grown to the new delay, then on time again.
    _stream(gaps, range(1000), delay={s: 0.3 for s in range(500, 1000)})
    rep = gaps.report()
    assert rep.late == 1 and rep.lost == 0  # the buffer grows after the first late one
    # A queue filling up slowly (+2 ms a packet) is absorbed.
    slow = AudioGaps(playout_ms=60.0)
    _stream(slow, range(500), delay={s: 0.002 * s for s in range(500)})
    assert slow.report().late == 0

    fec_payload = _opus_packets({"application": "voip", "fec": "1", "packet_loss": "10"})
    with_lbrr = [p for p in fec_payload if has_lbrr(p)]
    plain = [p for p in fec_payload if not has_lbrr(p)]
    fec = AudioGaps()
    for seq in range(200):
        if seq == 50:
            continue  # lost; the next one carries its LBRR
        payload = with_lbrr[0] if seq == 51 else plain[0]
        fec.add_rtp(_rtp(seq, seq * 960, payload), seq * 0.02)
    rep = fec.report()
    assert (rep.lost, rep.recovered, rep.unheard, rep.fec_packets) == (1, 1, 0, 1)


def test_bad_packets_and_other_streams_are_ignored() -> None:
    gaps = AudioGaps()
    _stream(gaps, range(10))
    before = gaps.packets
    # Bad input: too short, not RTP version 2, a header extension longer than the
    # packet, and a packet of another SSRC: none is counted.
    gaps.add_rtp(b"\x80\x6f\x00", 1.0)
    gaps.add_rtp(bytes([0x40]) + _rtp(11, 11 * 960)[1:], 1.0)
    gaps.add_rtp(bytes([0x90]) + _rtp(12, 12 * 960, b"\xbe\xde\xff\xff\x48")[1:], 1.0)
    gaps.add_rtp(_rtp(13, 13 * 960, ssrc=8), 1.0)
    assert gaps.packets == before
    assert rtp_payload(_rtp(1, 1, b"abc")) == b"abc"
    assert rtp_payload(b"\x80") is None
    # Sequence numbers and timestamps wrap: one stream, no gap.
    wrap = AudioGaps()
    for i in range(100):
        seq = (65500 + i) & 0xFFFF
        wrap.add_rtp(_rtp(seq, (2**32 - 960 * 50 + i * 960) & 0xFFFFFFFF), i * 0.02)
    assert (wrap.report().frames, wrap.report().gaps_ms) == (100, ())
