// How much of the program a site's link can carry: the video layer it asks its
// relay for, down to audio only, and back up when the link recovers.
//
// Janus 1.1.2 sends each subscriber what it asks for and never adapts to the
// subscriber's link itself, so the site decides from what it receives (WebRTC
// stats of its program subscriptions, sampled every window). A link is
// overloaded when loss comes with queueing (the round trip above its minimum of
// the last minute by `queueMs`), or when loss is heavy whatever the delay
// (`lossHeavy` %), or when the video is stuck (bytes arrive, nothing decodes):
// one level down. Random loss on an uncongested link is left to NACK and
// concealment (a lower layer would not lose fewer packets). A link clean for
// `upAfterMs` (no queueing, smoothed loss under `lossUp` %) goes one level up,
// but not before the hold that a failed climb doubles: a climb that overloads
// the link costs audio too, so it is rare (`backoffMs` up to `maxBackoffMs`).
// For `settleMs` after a change nothing is judged (the queue drains, the new
// layer waits for its keyframe), and the new level's loss is averaged from its
// own windows only: a step down is not followed by another for the loss of the
// overload that caused the first.
// Levels (docs/media.md, "Weak links"): 3 high layer, 2 low layer, 1 low layer at
// its lowest frame rate, 0 audio only. Feeds that are not simulcast have only 3
// and 0. Tests shorten the timings with window.DIEMCAU_QUALITY.
"use strict";

class ProgramQuality {
  constructor(opts) {
    const o = Object.assign({}, ProgramQuality.DEFAULTS, window.DIEMCAU_QUALITY || {}, opts || {});
    this.o = o;
    this.level = 3;
    this.simulcast = true;
    this.good = 0; // ms of clean windows in a row
    this.holdUntil = 0;
    this.backoff = o.backoffMs;
    this.climbedAt = -Infinity;
    this.badAt = -Infinity;
    this.settleUntil = -Infinity; // nothing is judged before (set by each change)
    this.started = false;
    this.lossAvg = 0; // smoothed loss, %
    this.watch = []; // the last windows of video [ms, frames decoded], over `stuckSpanMs`
    this.rtts = []; // [{at, rtt}] over the last minute, for the queue-free round trip
    this.rttAvg = null;
    this.history = []; // [{at, level, why}]
    this.last = null; // the last sample
  }

  static layer(level) {
    if (level <= 0) return { video: false };
    return { video: true, substream: level >= 3 ? 1 : 0, temporal: level >= 2 ? 2 : 0 };
  }

  /** "high", "low" or "audio": what the link report and the dashboard show. */
  get mode() { return this.level >= 3 ? "high" : this.level >= 1 ? "low" : "audio"; }

  /** Whether any program video is simulcast (else only levels 3 and 0 exist). */
  setSimulcast(on) { this.simulcast = Boolean(on); }

  _next(level, step) {
    let n = level + step;
    if (!this.simulcast && n > 0 && n < 3) n = step < 0 ? 0 : 3;
    return Math.max(0, Math.min(3, n));
  }

  /**
   * Stuck: video arrives and (almost) nothing of it decodes, over at least
   * `stuckSpanMs` (the lowest frame rate may put no frame in one short window).
   */
  _stuck(sample) {
    if (!sample.video || !(sample.videoKbps > 0)) { this.watch = []; return false; }
    this.watch.push([sample.windowMs, sample.frames]);
    const total = () => this.watch.reduce((sum, w) => sum + w[0], 0);
    while (this.watch.length > 1 && total() - this.watch[0][0] >= this.o.stuckSpanMs) this.watch.shift();
    if (total() < this.o.stuckSpanMs) return false;
    const stuck = this.watch.reduce((sum, w) => sum + w[1], 0) <= 1;
    if (stuck) this.watch = [];
    return stuck;
  }

  _set(level, now, why) {
    this.level = level;
    this.settleUntil = now + this.o.settleMs;
    this.good = 0;
    // What the old layer lost says nothing of the new one: judge it on its own windows.
    this.lossAvg = 0;
    this.watch = [];
    this.history.push({ at: now, level, why });
    if (this.history.length > 50) this.history.shift();
  }

  /**
   * Round trip above its smallest of the last minute: time spent in a queue. Both
   * are smoothed, so one late connectivity check on a jittery link is no queue.
   */
  _queue(rtt, now) {
    if (!Number.isFinite(rtt)) return null;
    this.rttAvg = this.rttAvg === null ? rtt : 0.6 * this.rttAvg + 0.4 * rtt;
    this.rtts.push({ at: now, rtt: this.rttAvg });
    while (this.rtts.length && this.rtts[0].at < now - 60000) this.rtts.shift();
    return this.rttAvg - Math.min(...this.rtts.map((x) => x.rtt));
  }

  /**
   * One window of stats: {lossPct, rttMs, frames, videoKbps, windowMs, video (video
   * was on)}. Returns the new layer ({video, substream, temporal}) on a change.
   */
  update(sample, now) {
    const o = this.o;
    now = now === undefined ? performance.now() : now;
    if (!sample || !Number.isFinite(sample.lossPct)) return null; // nothing measured
    this.last = sample;
    const queue = this._queue(sample.rttMs, now);
    if (!this.started) { this.started = true; this.settleUntil = now + o.settleMs; }
    // While it settles, the loss of the drain and the keyframe wait is not counted.
    if (now < this.settleUntil) return null;
    this.lossAvg = 0.5 * this.lossAvg + 0.5 * sample.lossPct;
    const stuck = this._stuck(sample);
    const queued = queue !== null && queue >= o.queueMs;
    const heavy = sample.lossPct >= o.lossHeavy || this.lossAvg >= o.lossHeavy / 2;
    const bad = stuck || heavy || (queued && this.lossAvg >= o.lossDown);
    if (bad) {
      if (now - this.climbedAt < o.failedClimbMs) this.backoff = Math.min(o.maxBackoffMs, this.backoff * 2);
      this.badAt = now;
      this.holdUntil = now + this.backoff;
      this.good = 0;
      if (this.level === 0) return null;
      this._set(this._next(this.level, -1), now, stuck ? "stuck" : queued ? "congested" : "loss");
      return ProgramQuality.layer(this.level);
    }
    const clean = (queue === null || queue < o.queueMs / 2) && this.lossAvg < o.lossUp;
    if (!clean) { this.good = 0; return null; }
    this.good += sample.windowMs;
    // The last climb held (nothing went wrong in the minute after it): be quick again.
    if (this.badAt < this.climbedAt && now - this.climbedAt >= 4 * o.failedClimbMs) this.backoff = o.backoffMs;
    if (this.level >= 3 || this.good < o.upAfterMs || now < this.holdUntil) return null;
    this.climbedAt = now;
    this._set(this._next(this.level, +1), now, "recovered");
    return ProgramQuality.layer(this.level);
  }
}

ProgramQuality.DEFAULTS = {
  windowMs: 2000,
  lossDown: 4,
  lossHeavy: 20,
  lossUp: 8,
  queueMs: 100,
  upAfterMs: 10000,
  backoffMs: 10000,
  maxBackoffMs: 120000,
  failedClimbMs: 15000,
  settleMs: 2500,
  stuckSpanMs: 2000,
};

/**
 * Sum the inbound stats of a set of subscriptions since the previous call (state
 * kept in `prev`, a Map(pc -> last report values)): loss %, video freeze ms, video
 * and total kbps, jitter and round-trip time.
 */
async function programWindowStats(pcs, prev, windowMs) {
  let lost = 0, received = 0, freezeMs = 0, bytes = 0, videoBytes = 0, jitter = 0, rtt = null, frames = 0;
  for (const pc of pcs) {
    const stats = await pc.getStats();
    const before = prev.get(pc) || {};
    const now = {};
    stats.forEach((r) => {
      if (r.type === "inbound-rtp") {
        const k = r.kind + ":" + r.ssrc;
        const b = before[k] || { lost: r.packetsLost || 0, received: r.packetsReceived || 0, bytes: r.bytesReceived || 0, freeze: r.totalFreezesDuration || 0, frames: r.framesDecoded || 0 };
        now[k] = { lost: r.packetsLost || 0, received: r.packetsReceived || 0, bytes: r.bytesReceived || 0, freeze: r.totalFreezesDuration || 0, frames: r.framesDecoded || 0 };
        lost += Math.max(0, now[k].lost - b.lost);
        received += Math.max(0, now[k].received - b.received);
        bytes += Math.max(0, now[k].bytes - b.bytes);
        if (r.kind === "video") {
          videoBytes += Math.max(0, now[k].bytes - b.bytes);
          freezeMs = Math.max(freezeMs, 1000 * Math.max(0, now[k].freeze - b.freeze));
          frames += Math.max(0, now[k].frames - b.frames);
        }
        if (r.jitter !== undefined) jitter = Math.max(jitter, r.jitter * 1000);
      }
      if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime !== undefined) rtt = Math.max(rtt || 0, r.currentRoundTripTime * 1000);
    });
    prev.set(pc, now);
  }
  const total = lost + received;
  return {
    lossPct: total ? (100 * lost) / total : 0,
    freezeMs, windowMs, frames,
    kbps: (8 * bytes) / windowMs,
    videoKbps: (8 * videoBytes) / windowMs,
    jitterMs: jitter, rttMs: rtt,
  };
}
