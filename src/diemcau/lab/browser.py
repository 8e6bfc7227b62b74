"""Debian's Chromium in the lab: how it is launched, and what its pages are asked.

`launch_chromium` starts ``/usr/bin/chromium`` under Playwright (never a
downloaded browser) with fake camera and microphone and the lab servers' keys
pinned (`chromium_args`); ``executable`` may be a wrapper that runs it inside
a commune PC's namespace (`LabDeployment.chromium_in`). The snippets are
evaluated in the site terminal page: how many frames a ``<video>`` decoded,
the frame stamp the chair bot draws into its video (`diemcau.sim.media_bot`:
send time in ms, 32 blocks of 10 px, then its complement) read back from the
picture, and which ICE path a peer connection uses (`janusPath` of
``janus.js``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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

# Age in ms of the stamp in the frame shown now (null: no readable stamp). The
# picture is scaled back to the bot's 320x240 so blocks land where they were drawn.
STAMP_AGE_JS = """(sel) => {
  const v = document.querySelector(sel);
  if (!v || !v.videoWidth) return null;
  const c = window.__stampCanvas || (window.__stampCanvas = document.createElement("canvas"));
  c.width = 320; c.height = 240;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(v, 0, 0, 320, 240);
  const px = g.getImageData(0, 0, 320, 40).data;
  const word = (row) => {
    let w = 0;
    for (let bit = 0; bit < 32; bit++) {
      let sum = 0;
      for (let dy = 3; dy < 7; dy++) for (let dx = 3; dx < 7; dx++) {
        const i = ((row * 10 + dy) * 320 + bit * 10 + dx) * 4;
        sum += (px[i] + px[i + 1] + px[i + 2]) / 3;
      }
      w = (w * 2) + (sum / 16 > 125 ? 1 : 0);
    }
    return w;
  };
  const ts = word(0), nts = word(1);
  if ((ts + nts) !== 0xFFFFFFFF) return null;
  const now = Date.now() % 4294967296;
  return (now - ts + 4294967296) % 4294967296;
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
    base: list[Any] = [
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
    return [str(a) for a in base]


async def launch_chromium(
    pw: Playwright, pins: Sequence[str], *, executable: str = CHROMIUM
) -> Browser:
    """Headless Debian Chromium trusting exactly the keys ``pins`` (SPKI SHA-256, base64)."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing (Debian package chromium)")
    return await pw.chromium.launch(
        executable_path=executable, headless=True, args=chromium_args(pins)
    )
