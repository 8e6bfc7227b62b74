"""Link-health thresholds: when a connected site counts as ``degraded``.

A site reports round-trip time, loss and jitter (browsers from WebRTC
getStats). Above any threshold the site is degraded; it recovers only when
every figure is back under the threshold times `recover_ratio`, so a link
hovering at the limit does not flap the dashboard every report. A site that
plays the program at reduced quality because its link cannot carry more (a
low video layer, or audio only: docs/media.md, "Weak links") is degraded too,
whatever its figures: they look clean once it stopped asking for more.
"""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.presence.protocol import LinkReport

__all__ = ["LinkThresholds", "DEFAULT_THRESHOLDS"]


@dataclass(frozen=True)
class LinkThresholds:
    """Limits for an interactive meeting link.

    Attributes:
        rtt_ms: round-trip time above which speech turn-taking suffers (ITU-T G.114
            puts one-way mouth-to-ear comfort at 150 ms, so ~400 ms RTT is poor).
        loss_pct: packet loss above which Opus/VP8 concealment shows.
        jitter_ms: jitter above which the jitter buffer adds audible delay.
        recover_ratio: hysteresis factor for going back to ``online``.
    """

    rtt_ms: float = 400.0
    loss_pct: float = 5.0
    jitter_ms: float = 50.0
    recover_ratio: float = 0.8

    def degraded_reason(self, link: LinkReport, currently_degraded: bool) -> str | None:
        """The reason the link is degraded (e.g. ``"loss 7.5% > 5%"``), or None if healthy."""
        ratio = self.recover_ratio if currently_degraded else 1.0
        if link.media == "audio":
            return "audio only"
        if link.media == "low":
            return "reduced video"
        if link.loss_pct > self.loss_pct * ratio:
            return f"loss {link.loss_pct:.1f}% > {self.loss_pct:g}%"
        if link.rtt_ms > self.rtt_ms * ratio:
            return f"rtt {link.rtt_ms:.0f} ms > {self.rtt_ms:g} ms"
        if link.jitter_ms > self.jitter_ms * ratio:
            return f"jitter {link.jitter_ms:.0f} ms > {self.jitter_ms:g} ms"
        return None


DEFAULT_THRESHOLDS = LinkThresholds()
