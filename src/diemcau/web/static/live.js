// The staff pages' live model of every site: positions from /api/web/geo, states
// kept current from the staff stream (snapshot, then coalesced deltas), or by
// polling /api/web/states when the stream cannot be reached. Listeners get one
// call per batch of changes, never one per site, so a burst of hundreds of
// transitions in the same second costs one redraw.
"use strict";

class SiteModel {
  constructor() {
    this.n = 0;
    this.ids = []; this.codes = []; this.names = []; this.kinds = []; this.provIdx = null;
    this.lat = null; this.lon = null;
    this.provinces = []; // [{id, code, name, total, online, degraded, offline, unknown}]
    this.state = null; // Uint8Array of DC.STATES indexes
    this.since = null; // Float64Array, seconds
    this.byId = new Map(); this.byCode = new Map();
    this.folded = []; // diacritics-free lowercase names for search
    this.listeners = [];
    this.available = false; // presence data known at all
    this.meta = {}; // aggregates from the stream (in meeting ...)
  }

  static fold(s) {
    return String(s).replace(/[đĐ]/g, "d").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/\s+/g, " ").trim();
  }

  load(geo) {
    const n = geo.ids.length;
    this.n = n;
    this.ids = geo.ids; this.codes = geo.codes; this.names = geo.names; this.kinds = geo.kinds;
    this.provIdx = Int16Array.from(geo.province);
    this.lat = new Float64Array(n); this.lon = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.lat[i] = geo.lat[i] === null ? NaN : geo.lat[i];
      this.lon[i] = geo.lon[i] === null ? NaN : geo.lon[i];
      this.byId.set(geo.ids[i], i); this.byCode.set(geo.codes[i], i);
    }
    this.folded = geo.names.map((s, i) => SiteModel.fold(s) + " " + String(geo.codes[i]).toLowerCase());
    this.provinces = geo.provinces.map(([id, code, name]) => ({ id, code, name, total: 0, online: 0, degraded: 0, offline: 0, unknown: 0 }));
    this.provById = new Map(this.provinces.map((p, i) => [p.id, i]));
    this.state = new Uint8Array(n); this.since = new Float64Array(n);
    this.inMeeting = new Uint8Array(n); this.reason = new Array(n).fill("");
    this.link = new Array(n).fill(null); // {rtt, loss, jitter, kbps, media} as last reported
    this.recount();
  }

  recount() {
    const tot = { total: this.n, online: 0, degraded: 0, offline: 0, unknown: 0 };
    for (const p of this.provinces) { p.total = 0; p.online = 0; p.degraded = 0; p.offline = 0; p.unknown = 0; }
    for (let i = 0; i < this.n; i++) {
      const s = DC.STATES[this.state[i]];
      tot[s]++;
      const pi = this.provIdx[i];
      if (pi >= 0) { const p = this.provinces[pi]; p.total++; p[s]++; }
    }
    this.totals = tot;
  }

  /** Apply {index: stateName} changes; returns the indexes that changed. */
  apply(changes, at) {
    const changed = [];
    for (const [i, name] of changes) {
      const code = Math.max(0, DC.STATES.indexOf(name));
      if (this.state[i] !== code) {
        this.state[i] = code;
        if (!at) this.since[i] = Date.now() / 1000;
        changed.push(i);
      }
    }
    if (changed.length) this.recount();
    return changed;
  }

  search(q, limit) {
    const key = SiteModel.fold(q);
    if (!key) return [];
    const out = [];
    for (let i = 0; i < this.n && out.length < (limit || 20); i++) if (this.folded[i].includes(key)) out.push(i);
    return out;
  }

  provinceName(i) { const p = this.provIdx[i]; return p >= 0 ? this.provinces[p].name : ""; }

  onChange(fn) { this.listeners.push(fn); }
  emit(changed) { for (const fn of this.listeners) fn(changed); }
}

/**
 * Keeps a SiteModel live. Tries the staff stream WebSocket first; if the server
 * has none (or it fails repeatedly) polls the compact state endpoint.
 */
class StaffLive {
  constructor(model, opts) {
    this.model = model;
    this.pollMs = (opts && opts.pollMs) || 1000;
    this.onStatus = (opts && opts.onStatus) || (() => {});
    this.onEvent = (opts && opts.onEvent) || (() => {});
    this.mode = "connecting";
    this.timer = 0;
    this.ws = null;
    this.wsFailures = 0;
  }

  async start() {
    const geo = await DC.api("/api/web/geo");
    this.model.load(geo);
    this.model.emit(null);
    this.connectStream();
  }

  status(mode) { this.mode = mode; this.onStatus(mode); }

  async connectStream() {
    // The staff stream exists when the presence service announces itself.
    if (this.wsFailures >= 3) { this.poll(); return; }
    try { await DC.api("/api/presence/info"); } catch (_e) { this.poll(); return; }
    let gotSnapshot = false;
    const ws = DC.staffStream();
    this.ws = ws;
    ws.onmessage = (ev) => {
      try {
        const msg = JSON.parse(ev.data);
        if (msg.type === "snapshot") { gotSnapshot = true; this.wsFailures = 0; }
        this.handle(msg);
      } catch (e) { console.error(e); }
    };
    ws.onclose = (ev) => {
      this.ws = null;
      if (!gotSnapshot) this.wsFailures++;
      if (ev.code === 4001 || ev.code === 1008) { this.status("signedout"); return; }
      this.status("reconnecting");
      setTimeout(() => this.connectStream(), Math.min(5000, 400 * (this.wsFailures + 1)));
    };
  }

  /** One staff-stream frame: a snapshot or a coalesced delta (docs/protocol.md). */
  handle(msg) {
    const m = this.model;
    if (msg.type !== "snapshot" && msg.type !== "delta") return;
    if (msg.fields) this.fields = msg.fields;
    const f = this.fields || ["id", "code", "name", "province_id", "state", "reason", "since", "rtt_ms", "loss_pct", "jitter_ms", "in_meeting"];
    const iId = f.indexOf("id"), iState = f.indexOf("state"), iSince = f.indexOf("since"), iMeet = f.indexOf("in_meeting"), iReason = f.indexOf("reason");
    const iRtt = f.indexOf("rtt_ms"), iLoss = f.indexOf("loss_pct"), iJit = f.indexOf("jitter_ms"), iKbps = f.indexOf("recv_kbps"), iMedia = f.indexOf("media");
    const at = (row, k) => (k >= 0 && row[k] !== null && row[k] !== undefined ? row[k] : null);
    const changes = [];
    if (msg.type === "snapshot") { m.inMeeting.fill(0); }
    for (const row of msg.sites || []) {
      const i = m.byId.get(row[iId]);
      if (i === undefined) continue;
      changes.push([i, row[iState]]);
      m.inMeeting[i] = iMeet >= 0 && row[iMeet] ? 1 : 0;
      if (iReason >= 0) m.reason[i] = row[iReason] || "";
      if (iSince >= 0 && row[iSince]) m.since[i] = row[iSince];
      const rtt = at(row, iRtt);
      m.link[i] = rtt === null ? null : { rtt, loss: at(row, iLoss), jitter: at(row, iJit), kbps: at(row, iKbps), media: at(row, iMedia) || "" };
    }
    m.available = true;
    const changed = m.apply(changes, true);
    let meeting = 0;
    for (let i = 0; i < m.n; i++) meeting += m.inMeeting[i];
    m.meta = Object.assign({}, msg.national || {}, { in_meeting: meeting });
    if (msg.type === "snapshot") this.status("live");
    m.emit(msg.type === "snapshot" ? null : changed);
    for (const ev of msg.events || []) this.onEvent(ev);
  }

  async poll() {
    clearTimeout(this.timer);
    try {
      const s = await DC.api("/api/web/states");
      const m = this.model;
      m.available = s.available;
      const next = new Uint8Array(m.n).fill(s.available ? 3 : 0);
      for (const id of s.online) { const i = m.byId.get(id); if (i !== undefined) next[i] = 1; }
      for (const id of s.degraded) { const i = m.byId.get(id); if (i !== undefined) next[i] = 2; }
      const changes = [];
      for (let i = 0; i < m.n; i++) if (next[i] !== m.state[i]) changes.push([i, DC.STATES[next[i]]]);
      const changed = m.apply(changes);
      if (changed.length) m.emit(changed);
      this.status(s.available ? "polling" : "nopresence");
    } catch (e) {
      this.status(e.status === 401 ? "signedout" : "reconnecting");
      if (e.status === 401) return;
    }
    this.timer = setTimeout(() => this.poll(), this.pollMs);
  }
}
