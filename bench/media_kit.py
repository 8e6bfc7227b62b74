"""What the media benches share: medians, kernel UDP drop counts, table printing.

Imported by ``bench/media.py``, ``bench/media_province.py`` and
``bench/media_fanout.py`` (run as scripts, so this folder is on ``sys.path``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["drops_between", "med", "print_rows", "udp_socket_drops"]


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def udp_socket_drops() -> dict[str, tuple[int, int]]:
    """Per UDP socket (inode): (local port, datagrams the kernel dropped so far)."""
    out: dict[str, tuple[int, int]] = {}
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            out[cols[9]] = (int(cols[1].rsplit(":", 1)[1], 16), int(cols[-1]))
    return out


def drops_between(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], janus_ports: range
) -> tuple[int, int]:
    """Drops during a window at (Janus's sockets, everyone else's: the bots'), socket by
    socket; Janus's sockets are the ones in its RTP port range."""
    at_janus = others = 0
    for inode, (port, drops) in after.items():
        d = drops - before.get(inode, (port, 0))[1]
        if port in janus_ports:
            at_janus += d
        else:
            others += d
    return at_janus, others


def print_rows(title: str, head: tuple[str, str, str], rows: list[tuple[str, str, str]]) -> None:
    """A three-column table under its title, columns padded to their widest cell."""
    table = [head, *rows]
    w = [max(len(r[i]) for r in table) for i in range(3)]
    print(title)
    for r in table:
        print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]}")
