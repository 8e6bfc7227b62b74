// The site terminal on standby (docs/inspection.md): between meetings it publishes
// nothing, until someone looks — an inspector, or a page of the video wall. The
// server says so over the control session (`inspect.watch`, the whole picture each
// time: who looks, since when, whether one of them calls); the terminal then publishes
// its camera and microphone to its relay at once, tells the server
// (`inspect.publishing`), shows a banner naming who looks, plays an inspector's call,
// and stops publishing when nobody looks any more. In a meeting the meeting's uplink is
// already published: the banner and the call still show, nothing else changes.
"use strict";

class SiteStandby {
  /**
   * hooks: api(path) -> Promise (the site's HTTP API), request(kind, body) -> Promise
   * (a control-session request), stream() -> the self-tested MediaStream or null,
   * name() -> the site's name, inMeeting() -> whether the meeting publishes the uplink,
   * simulcast (bool), banner (element), callBox (element), callVideo (element),
   * callSound (a button shown when the browser will not play the call's sound before a
   * click), onChange() (after every change: the page re-applies its microphone rule).
   */
  constructor(hooks) {
    this.h = hooks;
    this.watch = { version: 0, publish: false, watchers: [], call: null };
    this.grant = null; this.session = null; this.sessionUrl = "";
    this.pub = null; this.call = null;
    this.reported = 0; this.chain = Promise.resolve();
    this.renewTimer = 0; this.retryTimer = 0; this.clockTimer = 0;
  }

  /** Who looks now (one of the watchers may be calling). */
  get watched() { return this.watch.publish; }
  get inCall() { return Boolean(this.call && this.call.stream); }

  /**
   * Fetch the standby grant and open the Janus session to the relay ahead of time, so
   * an inspection only has to publish. Called once the devices are granted; quietly
   * retried when the server runs no media plane yet.
   */
  async prepare() {
    clearTimeout(this.retryTimer);
    try {
      const r = await this.h.api("/api/site/inspection");
      if (!r.grant) { this.apply(r.watch); this.retryTimer = setTimeout(() => this.prepare(), 30000); return; }
      const moved = this.grant && r.grant.ws_url !== this.grant.ws_url;
      this.grant = r.grant;
      if (moved) this.reconnect();
      this.apply(r.watch);
      await this.ensureSession();
      this.renewLater();
    } catch (e) {
      if (e && e.status === 403) return; // not a site (cannot happen on this page)
      this.retryTimer = setTimeout(() => this.prepare(), 30000);
    }
  }

  renewLater() {
    clearTimeout(this.renewTimer);
    const ms = Math.max(5000, ((this.grant.expires_at || 0) * 1000 - Date.now()) / 2);
    this.renewTimer = setTimeout(async () => {
      try {
        const r = await this.h.api("/api/site/inspection");
        if (!r.grant) { this.apply(r.watch); this.retryTimer = setTimeout(() => this.prepare(), 30000); return; }
        const moved = this.grant && r.grant.ws_url !== this.grant.ws_url;
        this.grant = r.grant;
        if (moved) this.reconnect(); else if (this.session) this.session.token = r.grant.token;
        this.apply(r.watch);
      } catch (_e) { /* the next renewal tries again */ }
      this.renewLater();
    }, ms);
  }

  async ensureSession() {
    if (this.session && !this.session.closed && this.sessionUrl === this.grant.ws_url) return this.session;
    const g = this.grant;
    const s = await JanusSession.connect(g.ws_url, g.token, {
      iceServers: g.ice_servers,
      onclose: () => { if (this.session === s) { this.session = null; this.pub = null; this.call = null; setTimeout(() => this.sync(), 1000); } },
    });
    this.session = s; this.sessionUrl = g.ws_url;
    return s;
  }

  /** The relay changed (a failover): a fresh session, publishing again if watched. */
  reconnect() {
    const s = this.session;
    this.session = null; this.pub = null; this.call = null;
    if (s) s.close();
    this.sync();
  }

  /** A watch state from the server (pushed or asked for); older ones are dropped. */
  apply(watch) {
    if (!watch || (watch.version || 0) < this.watch.version) return;
    this.watch = watch;
    this.render();
    this.sync();
  }

  /** After every reconnect of the control session: who looks at me now? */
  async refresh() {
    try { this.apply(await this.h.request("inspect.state", {})); } catch (_e) { /* an older server */ }
  }

  /** Changes run one after another (publish, unpublish, call) in the order asked. */
  sync() {
    this.chain = this.chain.then(() => this.step()).catch((e) => { console.warn("standby", e); setTimeout(() => this.sync(), 2000); });
    return this.chain;
  }

  /** Stop publishing before the meeting publishes the same uplink (same feed id). */
  release() { return this.sync(); }

  /** The devices changed: publish the new stream (if publishing at all). */
  restream() {
    const pub = this.pub;
    this.pub = null;
    if (pub) pub.handle.detach();
    this.sync();
  }

  async step() {
    const w = this.watch;
    const meeting = this.h.inMeeting();
    const want = w.publish && !meeting && Boolean(this.h.stream()) && Boolean(this.grant);
    if (want && !this.pub) {
      const s = await this.ensureSession();
      const g = this.grant;
      const pub = await janusPublish(s, g.publish.room, g.publish.feed_id, g.publish.token, this.h.stream(), this.h.name(), this.h.simulcast);
      this.pub = pub;
      // The relay cut the uplink (ICE failed, a restart): publish again while watched.
      pub.handle.on((data) => { if (data.hangup && this.pub === pub) { this.pub = null; setTimeout(() => this.sync(), 1000); } });
    } else if (!want && this.pub) {
      const pub = this.pub;
      this.pub = null;
      await pub.handle.detach();
    }
    const inspected = w.watchers.some((x) => x.kind === "inspection");
    if (w.publish && inspected && (this.pub || meeting) && this.reported !== w.version) {
      this.reported = w.version;
      this.report(this.pub);
    }
    if (w.call && !this.call && this.grant) await this.startCall();
    else if (!w.call && this.call) this.stopCall();
    this.h.onChange();
  }

  /** Tell the server the uplink is up (once its ICE connects, or at once in a meeting). */
  async report(pub) {
    if (pub) await connected(pub.pc, 5000);
    this.h.request("inspect.publishing", {}).catch(() => {});
  }

  // --- the inspector's call ---------------------------------------------------------

  async startCall() {
    const s = await this.ensureSession();
    const g = this.grant;
    const call = { handle: await s.attach("janus.plugin.videoroom"), stream: null, pc: null };
    this.call = call;
    this.h.callBox.hidden = false;
    // The inspector publishes a moment after the server says "call": wait for the feed.
    let r = null;
    for (let i = 0; this.call === call && !r; i++) {
      try {
        r = await call.handle.message({ request: "join", ptype: "subscriber", room: g.call.room, streams: [{ feed: g.call.feed_id }], token: g.room_token });
      } catch (_e) { await new Promise((ok) => setTimeout(ok, Math.min(1000, 150 + i * 50))); }
    }
    if (this.call !== call || !r || !r.jsep) { call.handle.detach(); return; }
    const { pc, stream } = await call.handle.answer(r.jsep);
    call.pc = pc; call.stream = stream;
    // The inspector hung up and called again, or the relay restarted the feed: play it anew.
    call.handle.on((data) => { if ((data.unpublished || data.hangup || data.left) && this.call === call) { this.call = null; call.handle.detach(); this.sync(); } });
    const v = this.h.callVideo;
    v.srcObject = stream;
    v.play().then(() => { this.h.callSound.hidden = true; }).catch(() => { this.h.callSound.hidden = false; });
  }

  stopCall() {
    const call = this.call;
    this.call = null;
    if (call) call.handle.detach();
    this.h.callVideo.srcObject = null;
    this.h.callBox.hidden = true;
  }

  // --- the banner -------------------------------------------------------------------

  render() {
    const b = this.h.banner;
    const w = this.watch;
    clearInterval(this.clockTimer);
    if (!w.watchers.length) { b.hidden = true; b.replaceChildren(); return; }
    const line = (x) => {
      const since = new Date(x.since);
      const mins = Math.max(0, Math.floor((Date.now() - since.getTime()) / 60000));
      const who = x.by + " (" + t("role_" + x.role) + ")";
      const key = x.call ? "insp_calling" : x.kind === "wall" ? "insp_wall" : "insp_looking";
      return DC.el("div", { dataset: { kind: x.kind, call: x.call ? "1" : "" } }, t(key, { who, since: DC.time(since), mins }));
    };
    b.hidden = false;
    b.dataset.call = w.call ? "1" : "";
    b.replaceChildren(DC.el("b", {}, t(w.call ? "insp_call_h" : "insp_h")), ...w.watchers.map(line));
    // "for N minutes" keeps counting while the banner shows.
    this.clockTimer = setInterval(() => this.render(), 30000);
  }
}

/** Resolves true once `pc` is connected, false after `ms`. */
function connected(pc, ms) {
  return new Promise((resolve) => {
    const ok = () => ["connected", "completed"].includes(pc.iceConnectionState) || pc.connectionState === "connected";
    if (ok()) { resolve(true); return; }
    const done = (v) => { clearTimeout(timer); pc.removeEventListener("iceconnectionstatechange", check); resolve(v); };
    const check = () => { if (ok()) done(true); else if (pc.iceConnectionState === "failed") done(false); };
    const timer = setTimeout(() => done(false), ms);
    pc.addEventListener("iceconnectionstatechange", check);
  });
}
