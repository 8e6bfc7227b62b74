"""The presence service's knobs (`PresenceConfig`); the defaults are the product's."""

from __future__ import annotations

import ssl as ssl_module
from dataclasses import dataclass, field

from diemcau.presence.health import DEFAULT_THRESHOLDS, LinkThresholds
from diemcau.presence.protocol import FAST_HEARTBEAT_VERSION

__all__ = ["PresenceConfig"]


@dataclass(frozen=True)
class PresenceConfig:
    """Knobs of the presence service; the defaults are the product's.

    Attributes:
        host: bind address of the site socket (loopback by default).
        port: its port; 0 picks a free one (tests), see `PresenceHub.port`.
        path: the WebSocket path sites connect to.
        public_url: the ``ws://`` URL sites are told (empty: derived from host/port).
        urls: the site-socket URLs of every control server of a standby pair, in the
            order sites try them (empty: this server's alone).
        ssl: a TLS server context; the socket then speaks ``wss://`` only.
        heartbeat_s: how often a protocol v1 site sends ``hb`` (told in its welcome).
        offline_after_s: silence after which a v1 site is shown offline.
        fast_heartbeat_s: how often a protocol v2 site sends ``hb`` (docs/protocol.md:
            v2 clients honour intervals below a second).
        fast_offline_after_s: silence after which a v2 site is shown offline; with
            `sweep_s` it bounds how late a silently cut site shows (goal: ≤ 1 s).
        sweep_s: how often silence is checked (adds to the detection time).
        hello_timeout_s: time allowed between connect and hello.
        token_ttl_s: lifetime of the resume/session token in the welcome.
        rate, burst: inbound messages per second per site (`RateLimiter`).
        max_running_requests: site requests whose handlers run at once (all sites);
            the rest wait their turn (`RequestRouter`).
        send_buffer_bytes: unread bytes a site may have before it is closed as a slow reader.
        ring_size: recent messages kept in memory per stream for resumes.
        replay_limit: at most this many missed messages per stream are replayed;
            beyond it the site gets ``reset`` and resyncs over HTTP.
        persist_interval_s: how often transitions are flushed to the session log.
        credential_poll_s: how often rotations/revocations are looked for (0: never).
        tick_s: how often the server writes a ``tick`` to every site (server liveness).
        staff_batch_s: coalescing window of the staff stream.
        thresholds: link-health limits for ``degraded``.
        tune_gc: kept for the server wiring of today: when set, `PresenceHub.start`
            calls `diemcau.presence.tuning.tune_process_gc` once it is listening.
            The setting is process-wide, so the composition root should call that
            function itself and leave this False (docs/performance.md says why).
    """

    host: str = "127.0.0.1"
    port: int = 8081
    path: str = "/site"
    public_url: str = ""
    urls: tuple[str, ...] = ()
    ssl: ssl_module.SSLContext | None = field(default=None, compare=False, hash=False)
    heartbeat_s: float = 1.0
    offline_after_s: float = 2.5
    fast_heartbeat_s: float = 0.25
    fast_offline_after_s: float = 0.75
    sweep_s: float = 0.1
    hello_timeout_s: float = 10.0
    token_ttl_s: int = 3600
    rate: float = 20.0
    burst: float = 60.0
    max_running_requests: int = 1024
    send_buffer_bytes: int = 1 << 20
    ring_size: int = 256
    replay_limit: int = 5000
    persist_interval_s: float = 0.5
    credential_poll_s: float = 5.0
    tick_s: float = 5.0
    staff_batch_s: float = 0.25
    thresholds: LinkThresholds = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    tune_gc: bool = False

    def timing(self, version: int) -> tuple[float, float]:
        """``(heartbeat_s, offline_after_s)`` for a session speaking protocol `version`."""
        if version >= FAST_HEARTBEAT_VERSION:
            return self.fast_heartbeat_s, self.fast_offline_after_s
        return self.heartbeat_s, self.offline_after_s
