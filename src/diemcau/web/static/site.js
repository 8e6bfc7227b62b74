// The site terminal: what a commune office opens from its join link. Joins with
// the link's code, keeps one control session (presence WebSocket: heartbeats with
// link health, lossless resumable delivery), runs a self-test of camera, micro-
// phone, speaker and the network path to its media relay, and in a meeting plays
// the program, raises a hand, goes on air when given the floor, obeys an imposed
// mute and acknowledges conclusions and directives. Between meetings it stands by
// (standby.js): an inspector or the video wall can look at it at any time. When its
// server dies and the other one of a standby pair takes over, it moves there by
// itself (follow.js) and resumes its session.
"use strict";
(() => {
  const { $, el } = DC;
  const S = {
    joinCode: "", httpToken: "", sessionToken: "", site: null, cfg: null,
    ws: null, seqs: {}, hbTimer: 0, hbWorker: null, beats: 0, linkEvery: 5, retry: 0, everConnected: false,
    meeting: null, inMeeting: false, floor: null, hand: { raised: false, position: 0 },
    onAir: false, imposedMute: false, selfMuted: false,
    stream: null, audioCtx: null, meterRaf: 0,
    media: null, // {session, pub, subs: Map(feedId -> sub), grant}
    mediaTimer: 0, messages: [], lastStats: null, received: [], stateGen: 0, schemas: [],
    quality: new ProgramQuality(), qualityTimer: 0, qualityPrev: new Map(), program: null,
  };
  window.diemcauSite = S; // for tests and the browser console
  // Sites publish two layers: thumbnails for the chair's video wall, full for the rest.
  const SIMULCAST = !/[?&]simulcast=0/.test(location.search);

  // What a join link or a move from the other server of the pair carries (follow.js).
  const carried = ServerFollow.parse(location.hash);
  const follow = new ServerFollow({
    hops: carried.hops,
    state: () => ({ code: S.joinCode, seqs: S.seqs, meeting: S.inMeeting && S.meeting ? S.meeting.id : 0, lang: LANG }),
    onMove: (base, why) => switching(new URL(base).host, why),
  });
  S.follow = follow;
  S.rejoin = carried.meeting; // the meeting this terminal was in before a move: entered again

  DC.header("site_title");

  // On standby: publishes while someone looks, says who, plays an inspector's call.
  const standby = new SiteStandby({
    api: (path) => siteApi(path), request, stream: () => S.stream,
    name: () => (S.site ? S.site.name : ""), inMeeting: () => S.inMeeting, simulcast: SIMULCAST,
    banner: $("banner-inspect"), callBox: $("call-box"), callVideo: $("call-video"), callSound: $("call-sound"),
    onChange: () => applyMic(),
  });
  S.standby = standby;
  $("call-sound").addEventListener("click", () => { $("call-video").play().then(() => { $("call-sound").hidden = true; }).catch(() => {}); });

  // --- join ------------------------------------------------------------------------------

  function show(section) {
    for (const id of ["join", "setup", "meeting"]) $(id).hidden = id !== section;
    $("inbox").hidden = section === "join";
    $("report").hidden = section === "join" || !S.schemas.length;
  }

  function storageKey() { return "diemcau.site." + (S.site ? S.site.code : ""); }

  async function login(code) {
    S.joinCode = code;
    let r;
    try {
      r = await DC.api("/api/auth/site-login", { method: "POST", token: "", body: { join_code: code } });
    } catch (e) {
      if (e.code === "standby" && await standingBy()) return;
      throw e;
    }
    S.httpToken = r.token;
    S.site = { code: r.site_code, name: r.name };
    sessionStorage.setItem("diemcau.joincode", code);
    if (carried.seqs) { S.seqs = carried.seqs; carried.seqs = null; saveSeqs(); } else {
      try { S.seqs = JSON.parse(localStorage.getItem(storageKey() + ".seqs") || "{}"); } catch (_e) { S.seqs = {}; }
    }
    $("site-name").textContent = "· " + r.name;
    S.cfg = await DC.api("/api/web/config", { token: "" });
    follow.setServers(S.cfg.servers);
    show("setup");
    renderMessages();
    connectPresence();
    loadSchemas();
    await startDevices();
    standby.prepare();
    refreshMeeting();
  }

  $("join-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await login($("join-code").value.trim()); $("join-error").textContent = ""; } catch (err) { $("join-error").textContent = err.status === 401 ? t("badcode") : err.message; }
  });

  /**
   * This server is the standby of a pair (it answered 503 "standby"): look for the one
   * that serves and move there. False when it lists no other server.
   */
  async function standingBy() {
    let cfg;
    try { cfg = await DC.api("/api/web/config", { token: "" }); } catch (_e) { return false; }
    follow.setServers(cfg.servers);
    if (!follow.others().length) return false;
    if (carried.seqs) S.seqs = carried.seqs; // carried on to the next server
    switching(location.host, "standby");
    follow.lost(true);
    return true;
  }

  /**
   * The banner while moving to (or arriving at) the server at `host`, `why`: its own
   * server was lost ("lost": the standby takes over) or is the standby ("standby").
   */
  function switching(host, why) {
    $("switch-title").dataset.i18n = why === "standby" ? "switching_active" : "switching";
    $("switch-help").dataset.i18n = why === "standby" ? "switching_help_standby" : "switching_help";
    applyI18n($("banner-switch"));
    $("switch-to").textContent = "(" + host + ")";
    $("banner-switch").hidden = false;
    $("banner-reconnect").hidden = true;
    connState("reconnecting");
  }

  // --- control session (presence) ----------------------------------------------------------

  function connState(state) { const c = $("conn"); c.dataset.state = state; c.textContent = t("conn_" + state); }

  // The server writes at least a tick every 5-8 s; 20 s of silence means it is lost
  // even though no close came (a host that vanished: docs/protocol.md, `tick`).
  const SILENCE_MS = 20000;

  function connectPresence() {
    if (!S.cfg || !S.cfg.presence_url) { connState("reconnecting"); return; }
    connState(S.everConnected ? "reconnecting" : "connecting");
    const ws = new WebSocket(S.cfg.presence_url);
    S.ws = ws; S.lastFrame = performance.now();
    // A host that vanished answers nothing, not even a refusal: give up after a while
    // (one server alone may take its time, as in a national join; a pair's other
    // server is worth trying sooner).
    const openMs = follow.others().length ? 10000 : 60000;
    setTimeout(() => { if (S.ws === ws && ws.readyState === WebSocket.CONNECTING) dropped(ws, 1006); }, openMs);
    ws.onopen = () => {
      // Protocol v2: this page follows the welcome's heartbeat interval, even below 1 s.
      const hello = { type: "hello", v: 2, client: "web" };
      if (S.sessionToken) hello.token = S.sessionToken; else hello.join_code = S.joinCode;
      if (Object.keys(S.seqs).length) hello.resume = S.seqs;
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => { S.lastFrame = performance.now(); let m; try { m = JSON.parse(ev.data); } catch (_e) { return; } onFrame(m); };
    ws.onclose = (ev) => dropped(ws, ev.code);
  }

  /**
   * The session `ws` ended (`code`: its close code, 1006 when this page gave up on a
   * silent server): say so, and connect again unless told not to.
   */
  function dropped(ws, code) {
    if (S.ws !== ws) return;
    stopBeats();
    S.ws = null;
    ws.onclose = null; ws.onmessage = null; ws.onopen = null;
    if (ws.readyState !== WebSocket.CLOSED) ws.close();
    if (code === 4004 || code === 4005) { connState("closed"); $("banner-reconnect").hidden = true; DC.toast(t(code === 4004 ? "revoked" : "replaced"), "bad"); return; }
    if (code === 4001 && S.sessionToken) S.sessionToken = ""; // expired token: the join code again
    $("banner-reconnect").hidden = !S.everConnected || !$("banner-switch").hidden;
    connState("reconnecting");
    follow.lost(); // the other server of a pair may have taken over
    // About 1 s, then 2 s, then 4 s, with jitter so a whole province does not return at once.
    const delay = 1000 * 2 ** Math.min(S.retry++, 2) + Math.random() * 500;
    setTimeout(connectPresence, delay);
  }

  function send(obj) { if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send(JSON.stringify(obj)); }

  function onFrame(m) {
    if (m.type === "welcome") {
      S.sessionToken = m.session_token; S.retry = 0;
      const resumed = S.everConnected;
      S.everConnected = true;
      $("banner-reconnect").hidden = true; connState("online");
      follow.online();
      if (!$("banner-switch").hidden) { $("banner-switch").hidden = true; DC.toast(t("switched")); }
      if (S.enterOnWelcome && S.meeting && S.meeting.id === S.enterOnWelcome && !S.inMeeting) enterMeeting();
      S.enterOnWelcome = 0;
      // A fresh terminal starts from the current position of every stream.
      for (const [name, seq] of Object.entries(m.streams || {})) if (!(name in S.seqs)) S.seqs[name] = seq;
      saveSeqs();
      startBeats(Math.max(100, (m.heartbeat_s || 1) * 1000));
      if (resumed) refreshMeeting();
      loadInbox();
      standby.refresh();
      return;
    }
    if (m.type === "reply") { onReply(m); return; }
    if (m.type === "msg" && (m.seq === null || m.seq === undefined)) {
      handleMessage(m.kind, m.body || {}, m); // live only: never numbered, never replayed
      return;
    }
    if (m.type === "msg") {
      const last = S.seqs[m.stream] || 0;
      if (m.seq <= last) return; // a duplicate after a resume
      S.seqs[m.stream] = m.seq; saveSeqs();
      ackLater(m.stream, m.seq);
      handleMessage(m.kind, m.body || {}, m);
      return;
    }
    if (m.type === "follow") { if (!(m.stream in S.seqs)) { S.seqs[m.stream] = m.seq || 0; saveSeqs(); } return; }
    if (m.type === "unfollow") { delete S.seqs[m.stream]; saveSeqs(); return; }
    if (m.type === "reset") { S.seqs[m.stream] = m.seq; saveSeqs(); refreshMeeting(); }
  }

  // Acks are cumulative: after a resume replays hundreds of messages, one ack per
  // stream is enough, and staying far under the server's rate limit matters.
  const pendingAcks = new Map();
  let ackTimer = 0;
  function ackLater(stream, seq) {
    pendingAcks.set(stream, seq);
    if (!ackTimer) ackTimer = setTimeout(() => {
      ackTimer = 0;
      for (const [st, sq] of pendingAcks) send({ type: "ack", stream: st, seq: sq });
      pendingAcks.clear();
    }, 200);
  }

  function saveSeqs() { localStorage.setItem(storageKey() + ".seqs", JSON.stringify(S.seqs)); }

  /**
   * The link as this site sees it, for the heartbeat: the worse of its uplink (what
   * its relay reports of the camera's stream) and its downlink (the program it
   * receives, `programWindowStats`), what it sends and receives, and which part of
   * the program it can carry ("high", "low" or "audio", `ProgramQuality`).
   */
  async function linkStats() {
    const pc = S.media && S.media.pub && S.media.pub.pc;
    const down = S.media && S.program;
    if (!pc && !down) return null;
    let rtt = null, loss = 0, jitter = 0, bytes = 0;
    if (pc) {
      const stats = await pc.getStats();
      stats.forEach((r) => {
        if (r.type === "remote-inbound-rtp") {
          if (r.roundTripTime !== undefined) rtt = Math.max(rtt || 0, r.roundTripTime * 1000);
          if (r.fractionLost !== undefined) loss = Math.max(loss, r.fractionLost * 100);
          if (r.jitter !== undefined) jitter = Math.max(jitter, r.jitter * 1000);
        }
        if (r.type === "outbound-rtp") bytes += r.bytesSent || 0;
        if (r.type === "candidate-pair" && r.nominated && rtt === null && r.currentRoundTripTime !== undefined) rtt = r.currentRoundTripTime * 1000;
      });
    }
    const now = performance.now();
    let kbps = 0;
    if (S.lastStats) kbps = ((bytes - S.lastStats.bytes) * 8) / (now - S.lastStats.at);
    S.lastStats = { bytes, at: now };
    const report = { rtt_ms: rtt, loss_pct: Math.min(100, loss), jitter_ms: jitter, send_kbps: Math.max(0, kbps) };
    if (down) {
      if (down.rttMs !== null) report.rtt_ms = Math.max(report.rtt_ms || 0, down.rttMs);
      report.loss_pct = Math.min(100, Math.max(report.loss_pct, down.lossPct));
      report.jitter_ms = Math.max(report.jitter_ms, down.jitterMs);
      report.recv_kbps = Math.max(0, down.kbps);
      report.media = S.quality.mode;
    }
    if (report.rtt_ms === null) return null;
    return report;
  }

  // Heartbeats tick in a tiny worker: a hidden tab's own timers run at most once a
  // second, a worker's keep time (v2 heartbeats come every 0.25 s). Without workers,
  // a plain timer.
  function startBeats(ms) {
    stopBeats();
    S.linkEvery = Math.max(1, Math.round(2000 / ms)); // a link report about every 2 s
    try {
      if (!S.hbWorker) {
        const src = "let t=0;onmessage=(e)=>{clearInterval(t);if(e.data>0)t=setInterval(()=>postMessage(0),e.data);};";
        S.hbWorker = new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
        S.hbWorker.onmessage = heartbeat;
      }
      S.hbWorker.postMessage(ms);
    } catch (_e) {
      S.hbWorker = null;
      S.hbTimer = setInterval(heartbeat, ms);
    }
  }

  function stopBeats() {
    clearInterval(S.hbTimer);
    if (S.hbWorker) S.hbWorker.postMessage(0);
  }

  async function heartbeat() {
    const ws = S.ws;
    if (ws && ws.readyState === WebSocket.OPEN && performance.now() - S.lastFrame > SILENCE_MS) { dropped(ws, 1006); return; }
    const hb = { type: "hb", t: Date.now() / 1000 };
    if (S.beats++ % S.linkEvery === 0) {
      try { const link = await linkStats(); if (link) hb.link = link; } catch (_e) { /* stats are optional */ }
    }
    send(hb);
  }

  const replies = new Map(); // request id -> {resolve, reject}

  /** A request over the control session; resolves with the reply body. */
  function request(kind, body) {
    return new Promise((resolve, reject) => {
      if (!S.ws || S.ws.readyState !== WebSocket.OPEN) { reject(new Error(t("conn_reconnecting"))); return; }
      const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
      const timer = setTimeout(() => { replies.delete(id); reject(new Error(t("noreply"))); }, 10000);
      replies.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      send({ type: "req", id, kind, body: body || {} });
    });
  }

  function onReply(m) {
    const r = replies.get(m.id);
    if (!r) return;
    replies.delete(m.id);
    if (m.ok) r.resolve(m.body || {}); else r.reject(new Error((m.error && m.error.message) || "error"));
  }

  async function loadInbox() {
    try {
      const r = await request("directive.inbox", { include_done: true });
      for (const d of (r.items || []).slice().reverse()) addMessage("directive", d, true);
    } catch (_e) { /* no command center in this server */ }
  }

  // --- messages from the meeting ----------------------------------------------------------

  function handleMessage(kind, body) {
    S.received.push(kind);
    if (kind.startsWith("meeting.") || kind === "floor.changed") S.stateGen++;
    if (S.received.length > 200) S.received.shift();
    if (kind === "meeting.started" || kind === "meeting.extended") { setMeeting(body.meeting); return; }
    if (kind === "meeting.ended" || kind === "meeting.removed") { endMeeting(); return; }
    if (kind === "floor.changed") { setFloor(body); return; }
    if (kind === "conclusion.published") { addMessage("conclusion", body.conclusion || body); return; }
    if (kind === "directive.issued") { addMessage("directive", body.directive || body); return; }
    if (kind === "directive.reminder") {
      const d = body.directive || body;
      const known = S.messages.find((x) => x.kind === "directive" && x.item.id === d.id);
      if (known) { known.reminded = true; renderMessages(); } else addMessage("directive", d);
      DC.toast(t("reminder"), "bad");
      return;
    }
    if (kind === "inspect.watch") { standby.apply(body); return; }
    if (kind === "media.move" || kind === "media.moved") { restartMedia(); if (!S.inMeeting) standby.prepare(); }
  }

  async function refreshMeeting() {
    // A pushed meeting event that lands while this request is out is newer than
    // its answer: the answer is then dropped (S.stateGen moved on).
    const gen = ++S.stateGen;
    const rejoin = S.rejoin;
    S.rejoin = 0;
    try {
      const r = await siteApi("/api/site/meetings/current");
      if (gen !== S.stateGen) return;
      if (!r.meeting) { if (S.meeting) endMeeting(); else setMeeting(null); return; }
      setMeeting(r.meeting);
      // In the meeting before a move: enter again, once the session is up (joining
      // needs it).
      if (rejoin === r.meeting.id && !S.inMeeting) {
        if ($("conn").dataset.state === "online") enterMeeting(); else S.enterOnWelcome = rejoin;
      }
      if (r.floor) setFloor(r.floor);
      for (const c of r.conclusions || []) addMessage("conclusion", c);
    } catch (e) {
      if (gen !== S.stateGen) return;
      if (e.status === 401) { await relogin(); return; }
      if (e.status === 404 || e.status === 409) { if (S.meeting) endMeeting(); else setMeeting(null); }
    }
  }

  /** The API as this site; a session token that expired (1 h) is renewed once. */
  async function siteApi(path, opts) {
    try {
      return await DC.api(path, Object.assign({}, opts, { token: S.httpToken }));
    } catch (e) {
      if (e.status !== 401 || !S.joinCode) throw e;
      await relogin();
      return DC.api(path, Object.assign({}, opts, { token: S.httpToken }));
    }
  }

  async function relogin() {
    try { const r = await DC.api("/api/auth/site-login", { method: "POST", token: "", body: { join_code: S.joinCode } }); S.httpToken = r.token; } catch (_e) { /* shown by the banner */ }
  }

  function setMeeting(meeting) {
    S.meeting = meeting && meeting.state !== "ended" ? meeting : null;
    const st = $("meeting-state");
    if (S.meeting) {
      st.textContent = t("meeting_live", { title: S.meeting.title });
      st.classList.remove("muted");
      $("enter").hidden = S.inMeeting;
      $("meeting-h").textContent = S.meeting.title;
    } else {
      st.textContent = t("nomeeting"); st.classList.add("muted");
      $("enter").hidden = true;
    }
  }

  function endMeeting() {
    const was = S.inMeeting;
    S.inMeeting = false; S.meeting = null; S.onAir = false; S.hand = { raised: false, position: 0 };
    stopMedia();
    setMeeting(null);
    updateFloorUi();
    if (was) { show("setup"); DC.toast(t("meeting_over")); $("meeting-state").textContent = t("meeting_over"); }
  }

  function setFloor(floor) {
    S.floor = floor;
    const mine = S.site && (floor.speakers || []).some((s) => s.code === S.site.code);
    S.onAir = Boolean(mine);
    S.imposedMute = Boolean(floor.muted_all) && !S.onAir && !floor.unmute_allowed;
    if (S.onAir) S.hand = { raised: false, position: 0 };
    else if (S.hand.raised && S.meeting) raiseHand(true);
    updateFloorUi();
    if (S.inMeeting) refreshProgram();
  }

  function applyMic() {
    // The speaker may mute itself; the others follow the chair's mute as well.
    // An inspector's call reaches this site alone, never the program: talk back.
    const allowed = !S.selfMuted && (S.onAir || !S.imposedMute || standby.inCall);
    if (S.stream) for (const tr of S.stream.getAudioTracks()) tr.enabled = allowed;
  }

  function updateFloorUi() {
    $("banner-onair").hidden = !(S.onAir && S.inMeeting);
    $("banner-muted").hidden = !(S.imposedMute && S.inMeeting);
    document.body.classList.toggle("on-air", S.onAir);
    const hs = $("handstate");
    if (S.onAir) hs.textContent = t("youonair");
    else if (S.hand.raised) hs.textContent = t("queuepos", { n: S.hand.position });
    else hs.textContent = "";
    $("hand").textContent = S.hand.raised ? t("lower") : t("raise");
    $("hand").disabled = S.onAir;
    $("selfmute").textContent = S.selfMuted ? t("unmute") : t("mute");
    $("selfmute").disabled = S.imposedMute;
    applyMic();
  }

  async function raiseHand(refresh) {
    if (!S.meeting) return;
    try {
      const r = await siteApi(`/api/site/meetings/${S.meeting.id}/hand`, { method: "POST" });
      S.hand = { raised: true, position: r.position };
    } catch (e) {
      if (!refresh) DC.toast(e.message, "bad");
      if (e.code === "hand_down" || e.code === "has_floor") S.hand = { raised: false, position: 0 };
    }
    updateFloorUi();
  }

  async function lowerHand() {
    if (!S.meeting) return;
    try { await siteApi(`/api/site/meetings/${S.meeting.id}/hand`, { method: "DELETE" }); } catch (e) { DC.toast(e.message, "bad"); }
    S.hand = { raised: false, position: 0 };
    updateFloorUi();
  }

  $("hand").addEventListener("click", () => (S.hand.raised ? lowerHand() : raiseHand(false)));
  $("selfmute").addEventListener("click", () => { S.selfMuted = !S.selfMuted; updateFloorUi(); });

  function addMessage(kind, item, quiet) {
    if (!item || item.id === undefined) return;
    const known = S.messages.find((m) => m.kind === kind && m.item.id === item.id);
    const acked = Boolean(item.acked_at || item.acknowledged_at);
    const done = Boolean(item.completed_at);
    if (known) { known.acked = known.acked || acked; known.done = known.done || done; renderMessages(); return; }
    S.messages.unshift({ kind, item, acked, done });
    S.messages.sort((a, b) => String(b.item.published_at || b.item.issued_at || "").localeCompare(String(a.item.published_at || a.item.issued_at || "")));
    renderMessages();
    if (!acked && !quiet) DC.toast(t(kind === "conclusion" ? "new_conclusion" : "new_directive"));
  }

  async function ack(m) {
    try {
      if (m.kind === "conclusion") await siteApi(`/api/site/conclusions/${m.item.id}/ack`, { method: "POST" });
      else await request("directive.ack", { id: m.item.id });
      m.acked = true; renderMessages();
    } catch (e) { DC.toast(e.message, "bad"); }
  }

  async function complete(m) {
    const note = prompt(t("complete_note"), "");
    if (note === null) return;
    try {
      await request("directive.complete", { id: m.item.id, note });
      m.acked = true; m.done = true; renderMessages();
    } catch (e) { DC.toast(e.message, "bad"); }
  }

  function renderMessages() {
    $("messages").replaceChildren(...(S.messages.length ? S.messages.map((m) => {
      const it = m.item;
      const urgent = it.priority === "urgent" || it.priority === "high";
      let actions;
      if (!m.acked) actions = el("button", { type: "button", onclick: () => ack(m) }, t("ack"));
      else if (m.kind === "directive" && !m.done) actions = el("span", {}, el("span", { class: "ok" }, "✓ " + t("acked") + " "), el("button", { type: "button", class: "secondary", onclick: () => complete(m) }, t("complete")));
      else actions = el("span", { class: "ok" }, "✓ " + t(m.done ? "completed" : "acked"));
      return el("li", { class: m.acked ? "" : "unread", dataset: { kind: m.kind, id: it.id } },
        el("b", {}, t(m.kind === "conclusion" ? "conclusion" : "directive")), urgent ? el("span", { class: "badge bad" }, t("urgent")) : null, " ",
        el("span", { class: "muted" }, DC.time(it.published_at || it.issued_at || it.created_at)),
        it.title ? el("p", {}, el("b", {}, it.title)) : null,
        el("p", {}, it.body || it.text || ""),
        // Attachments are kept by the server at signed links (docs/command.md).
        (it.attachments || []).length ? el("ul", { class: "plain files" }, it.attachments.map((a) =>
          el("li", {}, "📎 ", el("a", { href: a.url, target: "_blank", rel: "noopener" }, a.name)))) : null,
        it.deadline ? el("p", { class: m.reminded ? "bad" : "muted" }, t("deadline") + ": " + new Date(it.deadline).toLocaleString(LANG === "vi" ? "vi-VN" : "en-GB")) : null,
        actions);
    }) : [el("li", { class: "muted" }, t("noinbox"))]));
  }

  // --- situation reports ----------------------------------------------------------------------

  const label = (x) => (LANG === "en" ? x.label_en : x.label_vi);

  async function loadSchemas() {
    try { S.schemas = await siteApi("/api/command/schemas"); } catch (_e) { S.schemas = []; }
    const sel = $("report-schema");
    sel.replaceChildren(...S.schemas.map((sc) => el("option", { value: sc.key }, label(sc))));
    $("report").hidden = !S.schemas.length || !$("join").hidden;
    if (S.schemas.length) renderReportForm();
  }

  /** The first day of the schema's current period, in the schema's time zone. */
  function currentPeriod(sc) {
    const d = new Date(Date.now() + (sc.utc_offset_hours || 0) * 3600e3);
    if (sc.period === "weekly") d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
    return d.toISOString().slice(0, 10);
  }

  async function renderReportForm() {
    const sc = S.schemas.find((x) => x.key === $("report-schema").value) || S.schemas[0];
    if (!sc) return;
    const period = currentPeriod(sc);
    $("report-period").textContent = t("report_period", { p: period });
    let existing = null;
    try {
      const rows = await siteApi(`/api/command/reports?schema=${encodeURIComponent(sc.key)}&from=${period}&to=${period}`);
      existing = rows && rows[0];
    } catch (_e) { existing = null; }
    $("report-state").textContent = existing ? t("report_filed", { n: existing.revision, at: DC.time(existing.updated_at || existing.submitted_at) }) : t("report_missing");
    const values = (existing && existing.values) || {};
    $("report-fields").replaceChildren(...sc.indicators.map((ind) => {
      const id = "ind-" + ind.key;
      const v = values[ind.key];
      let input;
      if (ind.type === "choice") {
        input = el("select", { id, name: ind.key }, el("option", { value: "" }, "—"), ...ind.choices.map((c) => el("option", { value: c.key }, label(c))));
        if (v !== undefined) input.value = v;
      } else if (ind.type === "bool") {
        input = el("select", { id, name: ind.key }, el("option", { value: "" }, "—"), el("option", { value: "true" }, t("yes")), el("option", { value: "false" }, t("no")));
        if (v !== undefined) input.value = String(v);
      } else if (ind.type === "text") {
        input = el("textarea", { id, name: ind.key, rows: 2, maxlength: ind.max_length || 2000 });
        if (v !== undefined) input.value = v;
      } else {
        input = el("input", { id, name: ind.key, type: "number", inputmode: "numeric", min: ind.min ?? undefined, max: ind.max ?? undefined, step: ind.type === "int" ? 1 : "any" });
        if (v !== undefined) input.value = v;
      }
      input.dataset.type = ind.type;
      const unit = LANG === "en" ? ind.unit_en : ind.unit_vi;
      return el("label", { for: id }, el("span", {}, label(ind), unit ? " (" + unit + ")" : "", ind.required ? el("span", { class: "req", "aria-hidden": "true" }, " *") : ""), input);
    }));
  }

  $("report-schema").addEventListener("change", renderReportForm);
  $("report-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const sc = S.schemas.find((x) => x.key === $("report-schema").value);
    const values = {};
    for (const input of $("report-fields").querySelectorAll("[name]")) {
      input.removeAttribute("aria-invalid");
      const raw = input.value.trim();
      if (raw === "") continue;
      const type = input.dataset.type;
      values[input.name] = type === "int" ? Number(raw) : type === "percent" ? Number(raw) : type === "bool" ? raw === "true" : raw;
    }
    try {
      const r = await siteApi("/api/command/reports", { method: "POST", body: { schema: sc.key, values } });
      $("report-error").textContent = "";
      DC.toast(t("report_sent", { n: r.revision }));
      renderReportForm();
    } catch (err) {
      $("report-error").textContent = err.message;
      // The server names the field first ("deaths: is required"): point at it.
      const field = String(err.message).split(":")[0].trim();
      const input = $("ind-" + field);
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    }
  });

  // --- devices and self-test ------------------------------------------------------------------

  async function listDevices() {
    const devs = await navigator.mediaDevices.enumerateDevices();
    const fill = (sel, kind) => {
      const list = devs.filter((d) => d.kind === kind);
      const cur = sel.value || localStorage.getItem("diemcau.dev." + sel.id) || "";
      sel.replaceChildren(...list.map((d, i) => el("option", { value: d.deviceId }, d.label || t(sel.id) + " " + (i + 1))));
      if (list.some((d) => d.deviceId === cur)) sel.value = cur;
      if (!list.length) sel.replaceChildren(el("option", { value: "" }, t("nodevice")));
    };
    fill($("cam"), "videoinput"); fill($("mic"), "audioinput"); fill($("spk"), "audiooutput");
  }

  async function startDevices() {
    try {
      const cam = $("cam").value, mic = $("mic").value;
      const stream = await navigator.mediaDevices.getUserMedia({
        video: cam ? { deviceId: { exact: cam }, width: 640, height: 360 } : { width: 640, height: 360 },
        audio: mic ? { deviceId: { exact: mic } } : true,
      });
      if (S.stream) for (const tr of S.stream.getTracks()) tr.stop();
      S.stream = stream;
      $("preview").srcObject = stream; $("self").srcObject = stream;
      await listDevices();
      meter(stream);
      applyMic();
      if (S.media && S.media.pub) restartMedia();
      standby.restream();
    } catch (e) {
      DC.toast(t("nocamera") + " " + e.message, "bad");
    }
  }

  for (const id of ["cam", "mic"]) $(id).addEventListener("change", () => { localStorage.setItem("diemcau.dev." + id, $(id).value); startDevices(); });
  $("spk").addEventListener("change", () => { localStorage.setItem("diemcau.dev.spk", $("spk").value); applySpeaker(); });

  function applySpeaker() {
    const id = $("spk").value;
    for (const v of document.querySelectorAll("video:not([muted]), audio")) if (v.setSinkId && id) v.setSinkId(id).catch(() => {});
  }

  function meter(stream) {
    cancelAnimationFrame(S.meterRaf);
    if (!stream.getAudioTracks().length) return;
    S.audioCtx = S.audioCtx || new AudioContext();
    const src = S.audioCtx.createMediaStreamSource(stream);
    const an = S.audioCtx.createAnalyser();
    an.fftSize = 512; src.connect(an);
    const buf = new Uint8Array(an.fftSize);
    const bar = $("meter-bar");
    const tick = () => {
      an.getByteTimeDomainData(buf);
      let peak = 0;
      for (const v of buf) peak = Math.max(peak, Math.abs(v - 128));
      const level = Math.min(100, Math.round((peak / 128) * 140));
      bar.style.width = level + "%";
      $("meter").setAttribute("aria-valuenow", String(level));
      S.micLevel = Math.max(S.micLevel || 0, level);
      S.meterRaf = requestAnimationFrame(tick);
    };
    tick();
  }

  $("tone").addEventListener("click", async () => {
    S.audioCtx = S.audioCtx || new AudioContext();
    await S.audioCtx.resume();
    const osc = S.audioCtx.createOscillator();
    const gain = S.audioCtx.createGain();
    gain.gain.value = 0.2; osc.frequency.value = 440;
    const dest = S.audioCtx.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    const audio = new Audio();
    audio.srcObject = dest.stream;
    if (audio.setSinkId && $("spk").value) await audio.setSinkId($("spk").value).catch(() => {});
    osc.start(); await audio.play().catch(() => {});
    $("tone-state").textContent = t("tone_playing");
    setTimeout(() => { osc.stop(); audio.srcObject = null; $("tone-state").textContent = t("tone_done"); }, 1500);
  });

  async function mediaGrant() {
    return siteApi("/api/site/media");
  }

  $("netcheck").addEventListener("click", netCheck);

  async function netCheck() {
    const ul = $("checks");
    const verdict = $("verdict");
    const line = (ok, text) => ul.append(el("li", { class: ok ? "ok" : "bad" }, (ok ? "✓ " : "✗ ") + text));
    ul.replaceChildren(); verdict.replaceChildren(el("span", { class: "muted" }, t("checking")));
    $("netcheck").disabled = true;
    let level = "good";
    let session = null;
    try {
      const g = await mediaGrant();
      line(true, t("chk_grant", { node: g.node }));
      const t0 = performance.now();
      session = await JanusSession.connect(g.ws_url, g.token, { iceServers: g.ice_servers });
      line(true, t("chk_reach", { ms: Math.round(performance.now() - t0) }));
      const rtts = [];
      for (let i = 0; i < 5; i++) rtts.push(await session.ping());
      rtts.sort((a, b) => a - b);
      const rtt = rtts[2];
      if (rtt > 400) level = "bad"; else if (rtt > 150) level = "fair";
      line(rtt <= 400, t("chk_rtt", { ms: Math.round(rtt) }));
      if (S.stream && !(S.media && S.media.pub)) {
        const t1 = performance.now();
        const pub = await janusPublish(session, g.publish.room, g.publish.feed_id, g.publish.token, S.stream, S.site.name);
        const ok = await waitIce(pub.pc, 6000);
        const ms = Math.round(performance.now() - t1);
        if (!ok) level = "bad"; else if (ms > 3000 && level === "good") level = "fair";
        line(ok, ok ? t("chk_media", { ms }) : t("chk_media_fail"));
        S.selfTestPath = ok ? await janusPath(pub.pc).catch(() => null) : null;
        if (S.selfTestPath && S.selfTestPath.type === "relay") line(true, t("chk_turn", { proto: String(S.selfTestPath.relayProtocol || "").toUpperCase() }));
        await pub.handle.detach();
      }
    } catch (e) {
      level = "bad";
      line(false, t("chk_fail") + " " + e.message);
    } finally {
      if (session) session.close();
      $("netcheck").disabled = false;
    }
    S.verdict = level;
    verdict.replaceChildren(el("span", { class: "verdict " + level, dataset: { verdict: level } }, t("verdict_" + level)));
  }

  function waitIce(pc, ms) {
    return new Promise((resolve) => {
      const done = (v) => { clearTimeout(timer); pc.removeEventListener("iceconnectionstatechange", check); resolve(v); };
      const check = () => {
        if (["connected", "completed"].includes(pc.iceConnectionState)) done(true);
        else if (pc.iceConnectionState === "failed") done(false);
      };
      const timer = setTimeout(() => done(false), ms);
      pc.addEventListener("iceconnectionstatechange", check);
      check();
    });
  }

  // --- the meeting: program, uplink -------------------------------------------------------------

  $("enter").addEventListener("click", enterMeeting);
  $("leave").addEventListener("click", async () => {
    if (S.meeting) await siteApi(`/api/site/meetings/${S.meeting.id}/leave`, { method: "POST" }).catch(() => {});
    S.inMeeting = false; stopMedia(); updateFloorUi(); show("setup"); setMeeting(S.meeting);
  });

  async function enterMeeting() {
    if (!S.meeting) return;
    // Joining needs this site's live session: on a slow link the page can be ready
    // before the session is. Enter at its welcome instead of failing the click.
    const waitForSession = () => { S.enterOnWelcome = S.meeting.id; DC.toast(t("enter_wait")); };
    if ($("conn").dataset.state !== "online") { waitForSession(); return; }
    try {
      await siteApi(`/api/site/meetings/${S.meeting.id}/join`, { method: "POST" });
    } catch (e) {
      if (e.code === "no_session") { waitForSession(); return; }
      DC.toast(e.message, "bad"); return;
    }
    S.inMeeting = true;
    show("meeting");
    $("meeting-h").textContent = S.meeting.title;
    updateFloorUi(); renderMessages();
    startMedia();
  }

  async function startMedia() {
    clearTimeout(S.mediaTimer);
    if (!S.inMeeting) return;
    try {
      const g = await mediaGrant();
      const session = await JanusSession.connect(g.ws_url, g.token, { iceServers: g.ice_servers, onclose: () => { if (S.media && S.media.session === session) { S.media = null; scheduleMedia(); } } });
      S.media = { session, grant: g, pub: null, subs: new Map() };
      scheduleRenewal(g);
      await standby.release(); // the standby uplink (same feed) goes before the meeting's
      startQuality();
      if (S.stream) S.media.pub = await janusPublish(session, g.publish.room, g.publish.feed_id, g.publish.token, S.stream, S.site.name, SIMULCAST);
      if (S.quality.level === 0) uplinkVideo(false);
      await syncProgram(g);
    } catch (e) {
      console.warn("media", e);
      scheduleMedia();
    }
  }

  function scheduleMedia() {
    clearTimeout(S.mediaTimer);
    if (S.inMeeting) S.mediaTimer = setTimeout(() => { stopMedia(true); startMedia(); }, 2000);
  }

  /**
   * Janus checks the signed token on every request, keepalives included, and a
   * grant lives 10 minutes: renew it at half its life and hand the new token to
   * the open session (same relay), or move when the relay changed.
   */
  function scheduleRenewal(g) {
    clearTimeout(S.renewTimer);
    const ms = Math.max(5000, ((g.expires_at || 0) * 1000 - Date.now()) / 2);
    S.renewTimer = setTimeout(async () => {
      const m = S.media;
      if (!m) return;
      try {
        const g2 = await mediaGrant();
        if (S.media !== m) return;
        if (g2.ws_url !== m.grant.ws_url) { restartMedia(); return; }
        m.session.token = g2.token; m.grant = g2;
        scheduleRenewal(g2);
      } catch (_e) { scheduleRenewal({ expires_at: Date.now() / 1000 + 60 }); }
    }, ms);
  }

  function stopMedia(keepTimer) {
    clearTimeout(S.renewTimer);
    clearInterval(S.qualityTimer);
    S.program = null;
    if (!keepTimer) clearTimeout(S.mediaTimer);
    const m = S.media;
    S.media = null;
    if (m) m.session.close();
    $("program").srcObject = null;
    $("program-extra").replaceChildren();
    if (!S.inMeeting) standby.sync(); // still looked at: publish on standby again
  }

  function restartMedia() { if (S.inMeeting) { stopMedia(); startMedia(); } }

  async function refreshProgram() {
    if (!S.media) return;
    const m = S.media;
    try {
      if (await renewGrant(m)) await syncProgram(m.grant);
    } catch (e) { console.warn(e); }
  }

  /** A fresh grant for the open media session; false when it moved (or closed). */
  async function renewGrant(m) {
    const g = await mediaGrant();
    if (S.media !== m) return false;
    if (g.ws_url !== m.grant.ws_url) { restartMedia(); return false; } // moved to another relay
    m.grant = g; m.session.token = g.token;
    return true;
  }

  /** Subscribe to the program's feeds (chair + floor speakers), dropping the others. */
  async function syncProgram(g) {
    const m = S.media;
    if (!m || !g.program) return;
    janusSyncFeeds(m.subs, g.program.feeds, (f) => subscribeWithRetry(m, f));
    layoutProgram();
  }

  async function subscribeWithRetry(m, f) {
    // The chair or a new speaker may not be publishing yet: retry until the feed exists.
    // Each try uses the latest grant; a refused join (the program room's pin changed,
    // the room token expired) fetches a fresh one first.
    for (let attempt = 0; S.media === m && m.subs.has(f.feed_id); attempt++) {
      const g = m.grant;
      if (!g.program) return;
      try {
        const sub = await janusSubscribe(m.session, g.program.room, f.feed_id, g.room_token, undefined, g.program.pin);
        if (S.media !== m || !m.subs.has(f.feed_id)) { sub.handle.detach(); return; }
        sub.feed = f;
        // The feed went away (its publisher left, or its node restarted and the cascade
        // is being rebuilt): subscribe again until it is back.
        sub.handle.on((data) => { if (janusFeedGone(data, f.feed_id)) { if (m.subs.get(f.feed_id) === sub) { m.subs.set(f.feed_id, { pending: true, feed: f }); sub.handle.detach(); layoutProgram(); setTimeout(() => subscribeWithRetry(m, f), 1000); } } });
        m.subs.set(f.feed_id, sub);
        if (S.quality.level < 3) janusVideoLayer(sub, ProgramQuality.layer(S.quality.level)).catch((e) => console.warn("layer", e));
        layoutProgram();
        return;
      } catch (e) {
        if (e.code === 433 || e.code === 429) await renewGrant(m).catch(() => {});
        await new Promise((r) => setTimeout(r, Math.min(2000, 300 + attempt * 200)));
      }
    }
  }

  // --- what the link can carry: the program's video layer, or audio only ---------------------

  function startQuality() {
    clearInterval(S.qualityTimer);
    S.qualityPrev = new Map();
    S.qualityTimer = setInterval(sampleProgram, S.quality.o.windowMs);
  }

  async function sampleProgram() {
    const m = S.media;
    if (!m) return;
    const subs = [...m.subs.values()].filter((x) => x.pc);
    if (!subs.length) return;
    const stats = await programWindowStats(subs.map((x) => x.pc), S.qualityPrev, S.quality.o.windowMs).catch(() => null);
    if (!stats || S.media !== m) return;
    S.program = stats;
    S.quality.setSimulcast(subs.some((x) => (x.streams || []).some((st) => st.type === "video" && st.simulcast)));
    const layer = S.quality.update(Object.assign({ video: S.quality.level > 0 }, stats));
    if (!layer) return;
    for (const sub of subs) janusVideoLayer(sub, layer).catch((e) => console.warn("layer", e));
    uplinkVideo(layer.video);
    showQuality();
  }

  /**
   * A link that cannot carry the program's video cannot carry the camera's either:
   * at audio only the camera stops sending (its audio goes on), and comes back with
   * the program's video. Only the high layer may stay off for other reasons.
   */
  async function uplinkVideo(on) {
    const pc = S.media && S.media.pub && S.media.pub.pc;
    if (!pc) return;
    for (const sender of pc.getSenders()) {
      if (!sender.track || sender.track.kind !== "video") continue;
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) continue;
      for (const e of params.encodings) e.active = on && !(e.rid === "h" && S.media.pub.watched === false);
      await sender.setParameters(params).catch((e) => console.warn("camera layer", e));
    }
  }

  function showQuality() {
    const q = $("quality");
    const mode = S.quality.mode;
    q.hidden = mode === "high";
    q.dataset.mode = mode;
    q.textContent = mode === "high" ? "" : t(mode === "audio" ? "q_audio" : "q_low");
    const pv = $("program");
    pv.classList.toggle("audio-only", mode === "audio");
  }

  function layoutProgram() {
    const m = S.media;
    if (!m) return;
    const subs = [...m.subs.values()].filter((s) => s.stream);
    // The floor speaker takes the big picture; the chair goes beside it.
    subs.sort((a, b) => (a.feed.role === "floor" ? -1 : 0) - (b.feed.role === "floor" ? -1 : 0));
    const main = subs[0];
    const pv = $("program");
    if (main) {
      if (pv.srcObject !== main.stream) { pv.srcObject = main.stream; pv.play().catch(() => {}); }
      $("program-label").textContent = main.feed.role === "floor" ? t("speaker") + ": " + speakerName(main.feed.site) : t("chair");
    } else { pv.srcObject = null; $("program-label").textContent = t("waiting_program"); }
    $("program-extra").replaceChildren(...subs.slice(1).map((s) => {
      const v = el("video", { class: "video", autoplay: true, playsinline: true });
      v.srcObject = s.stream;
      return el("div", { class: "video-box" }, v, el("span", { class: "label" }, s.feed.role === "floor" ? speakerName(s.feed.site) : t("chair")));
    }));
    applySpeaker();
  }

  function speakerName(code) {
    const sp = S.floor && (S.floor.speakers || []).find((s) => s.code === code);
    return sp ? sp.name : code || "";
  }

  document.addEventListener("langchange", showQuality);
  document.addEventListener("langchange", () => { if (S.schemas.length) { const cur = $("report-schema").value; $("report-schema").replaceChildren(...S.schemas.map((sc) => el("option", { value: sc.key }, label(sc)))); $("report-schema").value = cur; renderReportForm(); } updateFloorUi(); renderMessages(); setMeeting(S.meeting); layoutProgram(); standby.render(); if (S.ws) connState("online"); });
  navigator.mediaDevices && navigator.mediaDevices.addEventListener && navigator.mediaDevices.addEventListener("devicechange", listDevices);

  // --- start ---------------------------------------------------------------------------------

  const fromHash = carried.code;
  const saved = sessionStorage.getItem("diemcau.joincode") || "";
  const code = fromHash.includes(":") ? fromHash : saved;
  if (location.hash) history.replaceState(null, "", location.pathname); // keep the secret out of the address bar
  connState("connecting");
  if (carried.lang && carried.lang !== LANG) toggleLang(); // the language chosen on the other server
  if (carried.hops) switching(location.host, carried.why); // arrived from the other server: until online
  if (code) {
    $("join-code").value = code;
    login(code).catch((e) => { show("join"); $("join-error").textContent = e.status === 401 ? t("badcode") : e.message; });
  } else show("join");
})();
