// A small Janus WebSocket API client for the browser: sessions, VideoRoom handles,
// publish and subscribe. Written for diemcau (no third-party code, nothing loaded
// at run time). Protocol: https://janus.conf.meetecho.com/docs/rest.html (the
// WebSocket transport speaks the same JSON, subprotocol "janus-protocol") and the
// VideoRoom plugin API: https://janus.conf.meetecho.com/docs/videoroom.html
"use strict";

class JanusError extends Error {
  constructor(code, reason) { super(reason || "Janus error " + code); this.code = code; }
}

class JanusSession {
  /**
   * Open a WebSocket to a Janus node and create a session (token: signed core token).
   * opts.iceServers: the grant's ice_servers (TURN over UDP, TCP and TLS on 443, with
   * time-limited credentials), used by every peer connection of this session.
   */
  static async connect(url, token, opts) {
    const s = new JanusSession(url, token, opts || {});
    await s.open();
    return s;
  }

  constructor(url, token, opts) {
    this.url = url; this.token = token || "";
    this.pending = new Map(); // transaction -> {resolve, reject, acked}
    this.handles = new Map(); // handle id -> JanusHandle
    this.id = null; this.ws = null; this.closed = false;
    this.onclose = opts.onclose || null;
    this.iceServers = opts.iceServers || [];
    this.timeoutMs = opts.timeoutMs || 10000;
    this.keepalive = 0;
    this.keepaliveErrors = 0;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, "janus-protocol");
      this.ws = ws;
      let opened = false;
      ws.onopen = async () => {
        opened = true;
        try {
          const r = await this.send({ janus: "create" });
          this.id = r.data.id;
          // Janus drops idle sessions after session_timeout (60 s); ping well before.
          // A refused keepalive (an expired token) is counted: the session dies soon.
          this.keepalive = setInterval(() => {
            this.send({ janus: "keepalive" }, true).catch(() => { this.keepaliveErrors++; });
          }, JanusSession.KEEPALIVE_MS);
          resolve(this);
        } catch (e) { reject(e); }
      };
      ws.onerror = () => { if (!opened) reject(new JanusError(0, "cannot reach the media server " + this.url)); };
      ws.onclose = () => { this.shutdown(); };
      ws.onmessage = (ev) => this.dispatch(JSON.parse(ev.data));
    });
  }

  /** Measure round trips with the transport-level "ping" (no session needed). */
  async ping() {
    const t0 = performance.now();
    await this.send({ janus: "ping" }, false, true);
    return performance.now() - t0;
  }

  send(msg, quiet, noSession) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new JanusError(0, "media connection closed"));
    const transaction = Math.random().toString(36).slice(2) + Date.now().toString(36);
    const body = Object.assign({ transaction }, msg);
    if (this.token) body.token = this.token;
    if (this.id && !noSession && msg.janus !== "create") body.session_id = this.id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(transaction);
        reject(new JanusError(0, "no answer from the media server to " + msg.janus));
      }, this.timeoutMs);
      this.pending.set(transaction, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); if (!quiet) console.warn(e); reject(e); },
        wantEvent: msg.janus === "message",
      });
      this.ws.send(JSON.stringify(body));
    });
  }

  dispatch(msg) {
    const tx = msg.transaction && this.pending.get(msg.transaction);
    if (tx) {
      if (msg.janus === "ack" && tx.wantEvent && !msg.plugindata) return; // the event follows
      this.pending.delete(msg.transaction);
      if (msg.janus === "error") { tx.reject(new JanusError(msg.error.code, msg.error.reason)); return; }
      const pd = msg.plugindata && msg.plugindata.data;
      if (pd && pd.error) { tx.reject(new JanusError(pd.error_code, pd.error)); return; }
      tx.resolve(msg);
      if (msg.janus !== "event") return;
    }
    const handle = msg.sender && this.handles.get(msg.sender);
    if (!handle) return;
    if (msg.janus === "event" && !tx) handle.event(msg.plugindata ? msg.plugindata.data : {}, msg.jsep);
    else if (msg.janus === "webrtcup") handle.up = true;
    else if (msg.janus === "hangup" || msg.janus === "detached") handle.hungup(msg.reason || msg.janus);
    else if (msg.janus === "trickle" && handle.pc && msg.candidate && !msg.candidate.completed) {
      handle.pc.addIceCandidate(msg.candidate).catch(() => {});
    }
  }

  async attach(plugin) {
    const r = await this.send({ janus: "attach", plugin });
    const h = new JanusHandle(this, r.data.id);
    this.handles.set(h.id, h);
    return h;
  }

  shutdown() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    for (const tx of this.pending.values()) tx.reject(new JanusError(0, "media connection closed"));
    this.pending.clear();
    for (const h of this.handles.values()) h.hungup("closed");
    if (this.onclose) this.onclose();
  }

  close() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.send({ janus: "destroy" }, true).catch(() => {});
      setTimeout(() => this.ws && this.ws.close(), 200);
    }
    this.shutdown();
  }
}

// How often a session proves it is alive (Janus's session_timeout is 60 s);
// tests shorten it by setting window.DIEMCAU_KEEPALIVE_MS before the page loads.
JanusSession.KEEPALIVE_MS = window.DIEMCAU_KEEPALIVE_MS || 25000;

class JanusHandle {
  constructor(session, id) {
    this.session = session; this.id = id;
    this.pc = null; this.up = false; this.listeners = [];
  }

  /** A plugin request; resolves with the plugin's event data (and jsep, if any). */
  async message(body, jsep) {
    const msg = { janus: "message", handle_id: this.id, body };
    if (jsep) msg.jsep = jsep;
    const r = await this.session.send(msg);
    return { data: r.plugindata ? r.plugindata.data : {}, jsep: r.jsep };
  }

  trickle(candidate) {
    this.session.send({ janus: "trickle", handle_id: this.id, candidate: candidate || { completed: true } }, true).catch(() => {});
  }

  on(fn) { this.listeners.push(fn); }
  event(data, jsep) { for (const fn of this.listeners) fn(data, jsep); }
  hungup(reason) { if (this.pc) { this.pc.close(); this.pc = null; } this.event({ hangup: reason }); }

  newPeer() {
    const pc = new RTCPeerConnection({ iceServers: this.session.iceServers });
    pc.onicecandidate = (e) => this.trickle(e.candidate ? e.candidate.toJSON() : null);
    this.pc = pc;
    return pc;
  }

  /**
   * Take a subscriber's offer: a new peer answers it and the plugin starts sending.
   * Resolves with {pc, stream}; every track the peer receives joins `stream`.
   */
  async answer(offer) {
    const pc = this.newPeer();
    const stream = new MediaStream();
    pc.ontrack = (e) => { stream.addTrack(e.track); };
    await pc.setRemoteDescription(offer);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await this.message({ request: "start" }, { type: answer.type, sdp: answer.sdp });
    return { pc, stream };
  }

  async detach() {
    if (this.pc) { this.pc.close(); this.pc = null; }
    this.session.handles.delete(this.id);
    await this.session.send({ janus: "detach", handle_id: this.id }, true).catch(() => {});
  }
}

/**
 * Publish a local stream into a VideoRoom as a given feed id.
 * Returns {handle, pc}. `publishToken` is the grant's publish.token: the only
 * token the room's allowed list admits as a publisher (its room_token is not).
 * `simulcast`: send two video layers ("always": the chair's program, whose low
 * layer sites behind weak links take; any other true value: a site's camera).
 */
async function janusPublish(session, room, feedId, publishToken, stream, display, simulcast) {
  const h = await session.attach("janus.plugin.videoroom");
  const joined = await h.message({ request: "join", ptype: "publisher", room, id: feedId, display: display || "", token: publishToken });
  const pc = h.newPeer();
  for (const track of stream.getTracks()) {
    const init = { direction: "sendonly", streams: [stream] };
    // Simulcast (RFC 8853 rids): full quality for the floor and spot-checks, a
    // quarter-size layer for video-wall thumbnails; Janus picks per subscriber.
    // Janus reads the rids highest quality first, so "h" comes before "l"
    // (substream 0 is then the lowest layer). A site's high layer starts
    // paused: it is sent only while someone watches (followLooks). The chair's
    // ("always") is always watched: it is the program.
    if (simulcast && track.kind === "video") {
      init.sendEncodings = [
        { rid: "h", maxBitrate: 800000, active: simulcast === "always" },
        { rid: "l", scaleResolutionDownBy: 2, maxBitrate: 150000 },
      ];
    }
    pc.addTransceiver(track, init);
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const r = await h.message({ request: "publish", audio: true, video: true }, { type: offer.type, sdp: offer.sdp });
  if (!r.jsep) throw new JanusError(0, "the media server did not answer the publish offer");
  await pc.setRemoteDescription(r.jsep);
  const pub = { handle: h, pc, watched: simulcast === "always" };
  if (simulcast && simulcast !== "always") followLooks(pub, joined.data);
  return pub;
}

// The control plane joins a site's uplink room under this name while someone
// watches the site at full quality (the floor, a chair's spot-check); the room
// tells its publisher who joins and leaves (docs/media.md, "Simulcast").
const LOOK_DISPLAY = "diemcau-look";

/** Send the high simulcast layer only while a looker is in the room. */
function followLooks(pub, joined) {
  const lookers = new Set(((joined && joined.attendees) || []).filter((a) => a.display === LOOK_DISPLAY).map((a) => a.id));
  const apply = () => setHighLayer(pub, lookers.size > 0);
  pub.handle.on((data) => {
    if (data.joining && data.joining.display === LOOK_DISPLAY) { lookers.add(data.joining.id); apply(); }
    else if (data.leaving !== undefined && lookers.delete(data.leaving)) apply();
  });
  apply();
}

async function setHighLayer(pub, on) {
  pub.watched = on;
  if (!pub.pc) return;
  for (const sender of pub.pc.getSenders()) {
    if (!sender.track || sender.track.kind !== "video") continue;
    const params = sender.getParameters();
    const high = (params.encodings || []).find((e) => e.rid === "h");
    if (!high || high.active === on) continue;
    high.active = on;
    await sender.setParameters(params).catch((e) => console.warn("simulcast layer", e));
  }
}

/**
 * Subscribe to one feed of a VideoRoom; resolves with {handle, pc, stream} once the
 * offer/answer is done (media flows when ICE connects). `pin`: the room's pin, when
 * the grant names one (program rooms); a refused join (JanusError 433, or 429 for a
 * missing pin) means the grant is stale: fetch a new one.
 */
async function janusSubscribe(session, room, feedId, roomToken, substream, pin) {
  const h = await session.attach("janus.plugin.videoroom");
  let r;
  try {
    const join = { request: "join", ptype: "subscriber", room, streams: [{ feed: feedId }], token: roomToken };
    if (pin) join.pin = pin;
    r = await h.message(join);
  } catch (e) { await h.detach(); throw e; }
  // The lowest simulcast layer (thumbnails): ask for it on the video stream.
  const video = ((r.data && r.data.streams) || []).find((x) => x.type === "video");
  const wantLayer = substream !== undefined && video;
  if (!r.jsep) { await h.detach(); throw new JanusError(0, "no offer for feed " + feedId); }
  const { pc, stream } = await h.answer(r.jsep);
  if (wantLayer) await h.message({ request: "configure", streams: [{ mid: video.mid, substream }] }).catch(() => {});
  return { handle: h, pc, stream, streams: (r.data && r.data.streams) || [] };
}

/**
 * Keep `subs` (feed id -> subscription) to exactly `feeds`: detach the subscriptions
 * of feeds gone, and call subscribe(feed) for each new one, whose entry starts as
 * {pending: true, feed} (the subscriber fills it in, or drops it).
 */
function janusSyncFeeds(subs, feeds, subscribe) {
  const want = new Map(feeds.map((f) => [f.feed_id, f]));
  for (const [id, sub] of subs) if (!want.has(id)) { subs.delete(id); if (sub.handle) sub.handle.detach(); }
  for (const [id, f] of want) {
    if (subs.has(id)) continue;
    subs.set(id, { pending: true, feed: f });
    subscribe(f);
  }
}

/**
 * Whether an event of a subscription's handle says its feed went away: Janus hung
 * up, or (VideoRoom) the publisher left; when a remote publisher is removed (its
 * node restarted, the cascade is rebuilt) the subscriber only gets an "updated"
 * offer whose streams of that feed are no longer active.
 */
function janusFeedGone(data, feedId) {
  if (data.hangup || data.unpublished !== undefined || data.left) return true;
  if (data.videoroom !== "updated") return false;
  const mine = (data.streams || []).filter((x) => x.feed_id === feedId);
  return !mine.some((x) => x.active !== false);
}

/**
 * Choose what Janus sends a subscription's video: a simulcast layer (substream 0 is
 * the lowest) and temporal layer, or no video at all (audio only). Streams that are
 * not simulcast ignore the layers; the audio is never touched.
 */
async function janusVideoLayer(sub, layer) {
  const videos = (sub.streams || []).filter((x) => x.type === "video");
  if (!videos.length) return;
  const streams = videos.map((v) => {
    if (layer.video === false) return { mid: v.mid, send: false };
    const out = { mid: v.mid, send: true };
    if (v.simulcast) { out.substream = layer.substream; out.temporal = layer.temporal; }
    return out;
  });
  await sub.handle.message({ request: "configure", streams });
}

/**
 * How a peer connection reaches Janus now: the selected pair's local candidate type
 * ("host", "srflx", "prflx" or "relay"), its protocol and, through TURN, the
 * protocol to the TURN server ("udp", "tcp" or "tls"). Null before ICE connects.
 */
async function janusPath(pc) {
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
  if (!pair) stats.forEach((r) => { if (!pair && r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r; });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId) || {};
  const remote = stats.get(pair.remoteCandidateId) || {};
  return { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol || null, remote: remote.address + ":" + remote.port };
}
