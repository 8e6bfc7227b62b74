"""What the demo tells the person running it: timestamped lines, the welcome text, demo.json.

Every line goes to stderr with the seconds since launch; the welcome text (URLs, the
spare site's join link, the staff login) goes to stdout; ``<data>/demo.json`` says what
runs where, for scripts and tests driving the demo.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from diemcau.accounts.service import join_link
from diemcau.demo.sites import DemoSite

__all__ = ["print_welcome", "say", "write_state"]

_T0 = time.monotonic()


def say(msg: str) -> None:
    """One line on stderr: ``[demo   12.3s] msg``."""
    print(f"[demo {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def since_launch() -> float:
    """Seconds since the demo process started."""
    return time.monotonic() - _T0


def print_welcome(
    base: str, data_dir: Path, password: str, spare: DemoSite | None, *, isolated: bool
) -> None:
    """The pages to open and how to log in."""
    lines = [
        f"\ndiemcau demo is running: {base}/",
        f"  dashboard:  {base}/dashboard",
        f"  chair:      {base}/chair",
    ]
    if spare is not None:
        lines.append(f"  site:       {join_link(base, spare.join_code)}")
        lines.append(f"              ({spare.name}, left for you: not simulated)")
    lines.append(f"  join links: {data_dir / 'join-codes.csv'}")
    lines.append(f"  staff login: chair / {password}  (also admin, operator)")
    if isolated:
        ns = f"nsenter --net=/proc/{os.getpid()}/ns/net"
        lines.append(f"  inside the namespace: {ns}")
        lines.append(
            f"  open a page there:    {ns} chromium --no-sandbox "
            f"--user-data-dir=$(mktemp -d) {base}/chair"
        )
    print("\n".join(lines), flush=True)


def write_state(
    path: Path,
    base: str,
    meeting_id: int,
    spare: DemoSite | None,
    media_sites: list[DemoSite],
    children: Mapping[str, int],
) -> None:
    """``<data>/demo.json``: the URL, the meeting, the spare and media sites, child PIDs."""
    state = {
        "url": base,
        "pid": os.getpid(),
        "meeting_id": meeting_id,
        "spare_site": None
        if spare is None
        else {
            "code": spare.code,
            "name": spare.name,
            "join_link": join_link(base, spare.join_code),
        },
        "media_sites": [{"code": s.code, "name": s.name} for s in media_sites],
        "children": dict(children),
    }
    path.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
