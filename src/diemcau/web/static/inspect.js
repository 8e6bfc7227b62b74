// The inspector's side of an online inspection (docs/inspection.md), shared by the
// inspection page and the chair console's spot-check: ask the server to inspect a site,
// subscribe to its uplink as soon as it exists (a standby site starts publishing only
// now: the join is retried every 50 ms until the feed appears), time the first frame,
// keep the lease alive, call the site with the inspector's camera and microphone, take
// a snapshot, end. Janus sessions are pooled per relay and shared with the page.
"use strict";

class SiteInspection {
  /**
   * code: the site's code; opts.video: the <video> that shows it; opts.pool: Map of
   * Janus ws url -> Promise<JanusSession> (shared with the page); opts.roundItemId;
   * opts.onChange(this): after every change of state, first frame, call.
   */
  constructor(code, opts) {
    this.code = code;
    this.video = opts.video;
    this.pool = opts.pool || new Map();
    this.roundItemId = opts.roundItemId || null;
    this.onChange = opts.onChange || (() => {});
    this.view = null; this.grant = null; this.session = null;
    this.handle = null; this.pc = null; this.stream = null;
    this.t0 = performance.now(); this.firstFrameMs = null;
    this.state = "starting"; this.error = null;
    this.call = null; // {pub, stream}
    this.closed = false; this.keepTimer = 0; this.wake = null;
  }

  emit() { try { this.onChange(this); } catch (e) { console.error(e); } }

  /** Ask to inspect; resolves once the request is answered (the picture follows). */
  async start() {
    const body = { site_code: this.code };
    if (this.roundItemId) body.round_item_id = this.roundItemId;
    const r = await DC.api("/api/inspections", { method: "POST", body });
    this.view = r.inspection; this.grant = r.grant;
    this.state = r.inspection.state;
    this.emit();
    if (!r.grant || this.closed) return this;
    this.keepTimer = setInterval(() => this.keepalive(), 10000);
    this.watch().catch((e) => { if (!this.closed) { this.error = e.message; this.emit(); } });
    return this;
  }

  get id() { return this.view && this.view.id; }

  /** The answer or the end arrived (staff event): look again now rather than at the next poll. */
  poke(view) {
    if (view && this.view && view.id === this.view.id) {
      Object.assign(this.view, view);
      if (view.state !== this.state) { this.state = view.state; this.emit(); }
      if (view.state === "ended" || view.state === "not_answered") this.stopMedia();
    }
    if (this.wake) this.wake();
  }

  async keepalive() {
    if (this.closed || !this.id) return;
    try {
      const r = await DC.api(`/api/inspections/${this.id}/keepalive`, { method: "POST" });
      if (r.grant) this.grant = r.grant; // a fresh room token, for a join after a republish
      this.poke(r.inspection);
    } catch (e) { console.warn("inspection keepalive", e); }
  }

  /** Subscribe to the site's uplink once it publishes, and again if it republishes. */
  async watch() {
    const g = this.grant;
    this.session = await pooledSession(this.pool, g);
    const h = await this.session.attach("janus.plugin.videoroom");
    this.handle = h;
    let r = null;
    for (let i = 0; !this.closed && !r; i++) {
      try {
        r = await h.message({ request: "join", ptype: "subscriber", room: g.subscribe.room, streams: [{ feed: g.subscribe.feed_id }], token: g.room_token });
      } catch (e) {
        if (!(e instanceof JanusError) || e.code === 0) throw e;
        // 428: no such feed yet; the site is starting to publish.
        await new Promise((ok) => { this.wake = ok; setTimeout(ok, i < 100 ? 50 : 500); });
        this.wake = null;
      }
    }
    if (this.closed || !r) { h.detach(); return; }
    const { pc, stream } = await h.answer(r.jsep);
    this.pc = pc; this.stream = stream;
    h.on((data) => {
      // The site stopped and published again (it entered or left a meeting): follow it.
      if ((data.unpublished || data.hangup || data.left) && this.handle === h && !this.closed) {
        this.handle = null; h.detach(); this.watch().catch(() => {});
      }
    });
    const v = this.video;
    v.srcObject = stream;
    const first = () => {
      if (this.firstFrameMs === null) { this.firstFrameMs = Math.round(performance.now() - this.t0); this.emit(); }
    };
    if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(first); else v.addEventListener("playing", first, { once: true });
    v.play().catch(() => {});
  }

  /** Two-way: the inspector's camera and microphone to this site alone. */
  async startCall(localStream) {
    const r = await DC.api(`/api/inspections/${this.id}/call`, { method: "POST" });
    this.view = r.inspection;
    const g = r.grant;
    const s = await pooledSession(this.pool, g);
    const pub = await janusPublish(s, g.publish.room, g.publish.feed_id, g.publish.token, localStream, "inspector");
    this.call = { pub, stream: localStream };
    this.emit();
  }

  async endCall() {
    const call = this.call;
    this.call = null;
    if (call) await call.pub.handle.detach();
    if (this.id && !this.closed) {
      try { this.view = await DC.api(`/api/inspections/${this.id}/call/end`, { method: "POST" }); } catch (e) { console.warn(e); }
    }
    this.emit();
  }

  stopMedia() {
    clearInterval(this.keepTimer);
    if (this.call) { this.call.pub.handle.detach(); this.call = null; }
    const h = this.handle;
    this.handle = null;
    if (h) h.detach();
    if (this.video.srcObject === this.stream) this.video.srcObject = null;
  }

  /** End it (the site stops publishing unless someone else looks). */
  async end() {
    if (this.closed) return;
    this.closed = true;
    if (this.wake) this.wake();
    this.stopMedia();
    if (this.id) {
      try { this.view = await DC.api(`/api/inspections/${this.id}/end`, { method: "POST" }); this.state = this.view.state; } catch (e) { console.warn(e); }
    }
    this.emit();
  }

  /** The frame on screen as a JPEG Blob (at most 960 px wide), or null. */
  snapshot() {
    const v = this.video;
    if (!v.videoWidth) return Promise.resolve(null);
    const scale = Math.min(1, 960 / v.videoWidth);
    const c = document.createElement("canvas");
    c.width = Math.round(v.videoWidth * scale); c.height = Math.round(v.videoHeight * scale);
    c.getContext("2d").drawImage(v, 0, 0, c.width, c.height);
    return new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.82));
  }
}

/** One Janus session per relay, shared by every subscription of the page. */
function pooledSession(pool, g) {
  let p = pool.get(g.ws_url);
  if (p) { p.then((s) => { s.token = g.token; }).catch(() => {}); return p; }
  p = JanusSession.connect(g.ws_url, g.token, { iceServers: g.ice_servers, onclose: () => { if (pool.get(g.ws_url) === p) pool.delete(g.ws_url); } });
  pool.set(g.ws_url, p);
  p.catch(() => { if (pool.get(g.ws_url) === p) pool.delete(g.ws_url); });
  return p;
}
