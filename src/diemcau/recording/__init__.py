"""Recording: the program and every intervention recorded at the central node, the meeting's
timeline, and its minutes (biên bản), with integrity checks, access rules and retention.

The service (`RecordingService`) follows meetings' floor decisions through small ports
(`recording.ports`) and never imports a peer service; docs/recording.md describes it.
"""

from diemcau.recording.config import RecordingConfig
from diemcau.recording.service import RecordingService, Tampered

__all__ = ["RecordingConfig", "RecordingService", "Tampered"]
