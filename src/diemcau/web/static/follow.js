// The site terminal following a standby takeover (docs/reliability.md, "The standby
// pair"): when its control session to this server stays lost while another server of
// the pair says it serves (its /healthz answers role "active", read cross-origin: the
// pair opens its health check to the pair's own origins), the terminal moves to that
// server's site page. What it needs to go on there rides in the URL fragment, which a
// browser never sends to a server: the join code, the last sequence number of every
// stream (so the site protocol's resume replays what was sent meanwhile), the meeting
// it was in (entered again), its language, and how many moves it made without getting
// online (each one doubles the wait before the next, up to a bound: two servers that
// both fail never bounce a terminal faster than that).
"use strict";

class ServerFollow {
  /**
   * o: servers (the pair's base URLs, in order), hops (moves made since the terminal
   * was last online), state() -> {code, seqs, meeting, lang} (what to carry),
   * onMove(base, why) (just before leaving: show the banner; why: "lost" or
   * "standby"). Timings in ms: graceMs (a lost session waits this long for its own
   * server first), retryMs and maxMs (the probes' backoff and its bound), probeMs (one
   * health read's timeout).
   */
  constructor(o) {
    this.o = Object.assign({ servers: [], hops: 0, graceMs: 3000, retryMs: 1000, maxMs: 30000, probeMs: 2500 }, o);
    this.hops = this.o.hops;
    this.timer = 0; this.tries = 0; this.moving = false; this.why = "lost";
    this.round = 0; // bumped when online: a probe still out then stops there
  }

  setServers(servers) { this.o.servers = servers || []; }

  /** The other servers of the pair, by base URL (this page's own origin left out). */
  others() {
    const out = [];
    for (const s of this.o.servers) {
      let origin = "";
      try { origin = new URL(s).origin; } catch (_e) { continue; }
      if (origin !== location.origin && !out.some((x) => new URL(x).origin === origin)) out.push(s);
    }
    return out;
  }

  /** The wait before probing: `base` at first, doubled by every move made without getting online. */
  wait(base) { return Math.min(this.o.maxMs, base * 2 ** this.hops); }

  /** The session is online on this server: nothing to follow. */
  online() { clearTimeout(this.timer); this.timer = 0; this.tries = 0; this.hops = 0; this.round++; }

  /**
   * The session is lost (or this server refused as the standby: `standby`): after the
   * grace, look for the server that serves now. A probe already planned stays as planned.
   */
  lost(standby) {
    if (this.timer || this.moving || !this.others().length) return;
    this.why = standby ? "standby" : "lost";
    this.timer = setTimeout(() => this.probe(), this.wait(standby ? 500 : this.o.graceMs));
  }

  async probe() {
    const round = this.round;
    for (const base of this.others()) {
      const serves = await this.serves(base);
      if (round !== this.round) return; // back online meanwhile
      if (serves) { this.move(base); return; }
    }
    // Nobody serves yet (a takeover takes seconds; both may be down): try again, a
    // little later each time (1 s, 1.5 s, 2 s ... up to the bound), so a takeover is
    // seen within about 2 s during its first 10 s.
    const delay = Math.min(this.o.maxMs, this.wait(this.o.retryMs) + 500 * this.tries++) + Math.random() * 500;
    this.timer = setTimeout(() => this.probe(), delay);
  }

  /** Whether the server at `base` answers its health check as the active one. */
  async serves(base) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.o.probeMs);
    try {
      const r = await fetch(new URL("/healthz", base).href, { mode: "cors", credentials: "omit", cache: "no-store", signal: ctl.signal });
      return r.ok && (await r.json()).role === "active";
    } catch (_e) {
      return false;
    } finally { clearTimeout(timer); }
  }

  move(base) {
    clearTimeout(this.timer);
    this.timer = 0; this.moving = true;
    this.o.onMove(base, this.why);
    location.assign(ServerFollow.target(base, Object.assign({ why: this.why }, this.o.state()), this.hops + 1));
  }

  /** The site page at `base` with what the terminal carries in its fragment. */
  static target(base, st, hops) {
    const extra = new URLSearchParams({ hops: String(hops), seqs: JSON.stringify(st.seqs || {}) });
    if (st.meeting) extra.set("meeting", String(st.meeting));
    if (st.lang) extra.set("lang", st.lang);
    if (st.why === "standby") extra.set("from", "standby");
    return new URL("/site", base).href + "#" + encodeURIComponent(st.code) + "&" + extra.toString();
  }

  /**
   * Read a fragment: a join link's ``#code:secret`` (percent-encoded; a site code's own
   * "&" is encoded too, so the first "&" starts what a move carries), or a move's.
   */
  static parse(hash) {
    const raw = String(hash || "").replace(/^#/, "");
    const cut = raw.indexOf("&");
    const out = { code: "", hops: 0, seqs: null, meeting: 0, lang: "", why: "lost" };
    try { out.code = decodeURIComponent(cut < 0 ? raw : raw.slice(0, cut)); } catch (_e) { return out; }
    if (cut < 0) return out;
    const extra = new URLSearchParams(raw.slice(cut + 1));
    out.hops = Math.max(0, Math.min(20, parseInt(extra.get("hops") || "0", 10) || 0));
    out.meeting = Math.max(0, parseInt(extra.get("meeting") || "0", 10) || 0);
    out.lang = ["vi", "en"].includes(extra.get("lang")) ? extra.get("lang") : "";
    if (extra.get("from") === "standby") out.why = "standby";
    try {
      const seqs = JSON.parse(extra.get("seqs") || "null");
      if (seqs && typeof seqs === "object" && !Array.isArray(seqs)) {
        const kept = Object.entries(seqs).filter(([, v]) => Number.isSafeInteger(v) && v >= 0);
        out.seqs = kept.length ? Object.fromEntries(kept) : null; // none: the page's own saved ones
      }
    } catch (_e) { out.seqs = null; }
    return out;
  }
}
