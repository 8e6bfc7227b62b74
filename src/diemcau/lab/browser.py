"""Debian's Chromium in the lab: how it is launched, and what its pages are asked.

`launch_chromium` starts ``/usr/bin/chromium`` under Playwright (never a
downloaded browser) with fake camera and microphone and the lab servers' keys
pinned (`chromium_args`); ``executable`` may be a wrapper that runs it inside
a commune PC's namespace (`LabDeployment.chromium_in`). The snippets are
evaluated in the site terminal page: how many frames a ``<video>`` decoded,
the frame stamp the chair bot draws into its video (`diemcau.sim.stamps`: send
time in ms, label code and a CRC-32 of both, as 16-px blocks on the VP8
macroblock grid) read back from the picture, and which ICE path a peer
connection uses (`janusPath` of ``janus.js``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

__all__ = [
    "CHROMIUM",
    "FRAMES_JS",
    "PROGRAM_PATH_JS",
    "SELFTEST_PATH_JS",
    "STAMP_AGE_JS",
    "chromium_args",
    "launch_chromium",
]

CHROMIUM = "/usr/bin/chromium"

FRAMES_JS = """(sel) => {
  const v = document.querySelector(sel);
  if (!v || !v.srcObject || !v.videoWidth) return -1;
  return v.getVideoPlaybackQuality().totalVideoFrames;
}"""

# Age in ms of the stamp in the frame shown now (null: no readable stamp, or a
# corrupt one). The picture is scaled back to the bot's 320x240 so the blocks land
# where they were drawn; the layout and checks are those of `diemcau.sim.stamps`
# (96 bits in 20 blocks a row: ms, label code, CRC-32 of both; a block's centre 8x8
# below 96 is dark, above 160 light, else unreadable).
STAMP_AGE_JS = """(sel) => {
  const v = document.querySelector(sel);
  if (!v || !v.videoWidth) return null;
  const c = window.__stampCanvas || (window.__stampCanvas = document.createElement("canvas"));
  c.width = 320; c.height = 240;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(v, 0, 0, 320, 240);
  const px = g.getImageData(0, 0, 320, 80).data;
  const bytes = new Array(12).fill(0);
  for (let i = 0; i < 96; i++) {
    const row = Math.floor(i / 20), col = i % 20;
    let sum = 0;
    for (let dy = 4; dy < 12; dy++) for (let dx = 4; dx < 12; dx++) {
      const k = ((row * 16 + dy) * 320 + col * 16 + dx) * 4;
      sum += (px[k] + px[k + 1] + px[k + 2]) / 3;
    }
    const mean = sum / 64;
    if (mean >= 96 && mean <= 160) return null;
    bytes[i >> 3] = bytes[i >> 3] * 2 + (mean > 160 ? 1 : 0);
  }
  let crc = 0xFFFFFFFF;
  for (let b = 0; b < 8; b++) {
    crc ^= bytes[b];
    for (let j = 0; j < 8; j++) crc = (crc >>> 1) ^ (0xEDB88320 & -(crc & 1));
  }
  const word = (o) => bytes.slice(o, o + 4).reduce((w, b) => w * 256 + b, 0);
  if (((crc ^ 0xFFFFFFFF) >>> 0) !== word(8)) return null;
  const now = Date.now() % 4294967296;
  return (now - word(0) + 4294967296) % 4294967296;
}"""

SELFTEST_PATH_JS = "() => window.diemcauSite.selfTestPath"

PROGRAM_PATH_JS = """async () => {
  const m = window.diemcauSite.media;
  if (!m) return null;
  for (const sub of m.subs.values()) if (sub.pc) return await janusPath(sub.pc);
  return null;
}"""


def chromium_args(pins: Sequence[str]) -> list[str]:
    """Debian Chromium's flags for the lab: headless-friendly, fake media, lab keys pinned.

    ``--ignore-certificate-errors-spki-list`` accepts exactly the lab servers'
    keys (not any certificate), the way a province would install its CA.
    """
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        "--ignore-certificate-errors-spki-list=" + ",".join(pins),
    ]


async def launch_chromium(
    pw: Playwright, pins: Sequence[str], *, executable: str = CHROMIUM
) -> Browser:
    """Headless Debian Chromium trusting exactly the keys ``pins`` (SPKI SHA-256, base64)."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing (Debian package chromium)")
    return await pw.chromium.launch(
        executable_path=executable, headless=True, args=chromium_args(pins)
    )
