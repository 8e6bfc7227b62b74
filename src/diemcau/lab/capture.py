"""What crosses a lab host's wire: UDP payloads captured on its interface, and RTP in them.

`capture_udp` records, for a few seconds, the payloads of the UDP datagrams
a lab host receives on given ports, with a raw ``AF_PACKET`` socket opened by
a child process inside the host's namespace (no capture tool to install).
`clear_vp8_keyframes` counts the RTP packets whose VP8 payload starts a key
frame readably (the ``9d 01 2a`` start code right after the descriptors):
plain RTP video shows them, SRTP never does.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable

from diemcau.lab.netns import Host

__all__ = ["capture_udp", "clear_vp8_keyframes", "rtp_ssrcs"]

_CAPTURE = r"""
import select, socket, struct, sys, time
ports = {int(p) for p in sys.argv[1].split(",")}
until = time.monotonic() + float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((sys.argv[3], 0))
print("ready", flush=True)
count = 0
while time.monotonic() < until and count < 20000:
    if not select.select([s], [], [], 0.1)[0]:
        continue
    frame, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    ip = frame[14:]
    if len(ip) < 28 or ip[9] != 17:
        continue
    ihl = (ip[0] & 15) * 4
    dport = struct.unpack("!H", ip[ihl + 2 : ihl + 4])[0]
    if dport in ports:
        print(ip[ihl + 8 :].hex(), flush=True)
        count += 1
"""


async def capture_udp(
    host: Host, ports: Iterable[int], seconds: float, *, iface: str = "eth0"
) -> asyncio.Task[list[bytes]]:
    """Start capturing; returns a task whose result is the payloads seen in ``seconds``.

    The capture is running when this returns, so traffic started afterwards is seen.
    """
    proc = await asyncio.create_subprocess_exec(
        *host.command(
            sys.executable, "-c", _CAPTURE, ",".join(map(str, ports)), str(seconds), iface
        ),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    if (await proc.stdout.readline()).strip() != b"ready":
        raise RuntimeError(f"{host.name}: the capture did not start")

    async def collect() -> list[bytes]:
        assert proc.stdout is not None
        out = [bytes.fromhex(line.decode().strip()) for line in await _lines(proc.stdout)]
        await proc.wait()
        return out

    return asyncio.ensure_future(collect())


async def _lines(stream: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while line := await stream.readline():
        lines.append(line)
    return lines


def _rtp_payload(packet: bytes) -> bytes | None:
    """The payload of an RTP packet (RFC 3550), or None if it is not one."""
    if len(packet) < 12 or packet[0] >> 6 != 2 or 72 <= packet[1] & 0x7F <= 79:
        return None  # not version 2, or an RTCP packet type
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:  # header extension
        if len(packet) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4], "big")
    return packet[offset:] if len(packet) > offset else None


def _vp8_start(payload: bytes) -> bytes:
    """The VP8 payload after its descriptor (RFC 7741 4.2), when it starts a partition."""
    if not payload or not payload[0] & 0x10 or payload[0] & 0x0F:
        return b""  # not the start of partition 0
    i = 1
    if payload[0] & 0x80 and len(payload) > 1:
        ext = payload[1]
        i = 2
        if ext & 0x80:  # picture id, 7 or 15 bits
            i += 2 if len(payload) > i and payload[i] & 0x80 else 1
        if ext & 0x40:  # TL0PICIDX
            i += 1
        if ext & 0x30:  # TID/KEYIDX
            i += 1
    return payload[i:]


def clear_vp8_keyframes(packets: Iterable[bytes]) -> int:
    """How many packets carry a VP8 key frame start readable in clear."""
    count = 0
    for packet in packets:
        payload = _rtp_payload(packet)
        vp8 = _vp8_start(payload) if payload is not None else b""
        if len(vp8) >= 6 and not vp8[0] & 0x01 and vp8[3:6] == b"\x9d\x01\x2a":
            count += 1
    return count


def rtp_ssrcs(packets: Iterable[bytes]) -> dict[int, int]:
    """RTP packets per SSRC (headers stay readable in SRTP too)."""
    out: dict[int, int] = {}
    for packet in packets:
        if _rtp_payload(packet) is not None:
            ssrc = int.from_bytes(packet[8:12], "big")
            out[ssrc] = out.get(ssrc, 0) + 1
    return out
