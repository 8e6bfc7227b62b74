"""Where recordings live, how long they are kept and when the disk counts as nearly full.

The control server post-processes what the central Janus node wrote, so both see
the same folder: on one host the same path; with central on its own host a
shared volume, mounted where ``DIEMCAU_RECORDINGS_NODE_DIR`` says on the node
(docs/recording.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RecordingConfig"]

GIB = 1024**3


def _int_env(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


@dataclass(frozen=True)
class RecordingConfig:
    """Recording settings of one control server.

    Attributes:
        root: the recordings folder as the control server sees it.
        node_root: the same folder as the central Janus node sees it.
        retention_days: days files are kept after a meeting ends (a meeting's
            policy may say otherwise); 0 keeps them until deleted by hand.
        warn_fraction, critical_fraction: disk use that raises an alert.
        min_free_bytes: free space below which the alert is critical whatever the
            fraction (a small disk fills in minutes during a national meeting).
        tick_s: how often live programs are checked for new feeds.
        inspection_s: how long a recorded spot-check is recorded at most (the
            console does not say when the chair stops watching).
        canvas: width and height of the composed program video.
    """

    root: Path
    node_root: str
    retention_days: int = 365
    warn_fraction: float = 0.85
    critical_fraction: float = 0.95
    min_free_bytes: int = 2 * GIB
    tick_s: float = 0.5
    inspection_s: float = 120.0
    canvas: tuple[int, int] = (854, 480)
    pp_rec: str = "janus-pp-rec"
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"

    @classmethod
    def from_env(cls, data_dir: Path) -> RecordingConfig:
        """``DIEMCAU_RECORDINGS_DIR`` (default ``<data>/recordings``),
        ``DIEMCAU_RECORDINGS_NODE_DIR`` (default: the same path),
        ``DIEMCAU_RECORDING_RETENTION_DAYS`` (default 365)."""
        root = Path(os.environ.get("DIEMCAU_RECORDINGS_DIR", "") or data_dir / "recordings")
        root = root.resolve()
        node_root = os.environ.get("DIEMCAU_RECORDINGS_NODE_DIR", "") or str(root)
        return cls(
            root=root,
            node_root=node_root,
            retention_days=_int_env("DIEMCAU_RECORDING_RETENTION_DAYS", 365),
        )

    def path(self, relative: str) -> Path:
        """An absolute path under the root; refuses anything that would leave it."""
        target = (self.root / relative).resolve()
        if target != self.root and self.root not in target.parents:
            raise ValueError(f"{relative!r} is outside the recordings folder")
        return target

    def node_path(self, relative: str) -> str:
        """The same place as the central node sees it."""
        return f"{self.node_root.rstrip('/')}/{relative}"
