// The chair console: the program (the chair's own camera published at central,
// the floor speakers played from there), the raise-hand queue with grant /
// revoke / next / mute all, live attendance per province, finding any site by
// name or on the map and spot-checking it in a side panel (an online inspection:
// a site on standby starts publishing, and may be called), and a paged or rotating
// video wall of site feeds filtered by province and state (standby sites publish
// while the page shows them).
"use strict";
(() => {
  const { $, el, fmt } = DC;
  const model = new SiteModel();
  const C = {
    me: null, meeting: null, floor: null, queue: [], live: null, map: null,
    stream: null, media: null, // {session, pub, subs: Map(feedId -> sub)}
    pool: new Map(), // Janus ws url -> Promise<JanusSession> (spot-checks and the wall)
    spot: null, // {code, insp (SiteInspection), firstFrameMs}
    wall: { on: false, n: 3, page: 0, tiles: new Map(), timer: 0, gen: 0, lease: null, leaseTimer: 0, leaseChain: Promise.resolve() },
    refreshTimer: 0,
  };
  window.diemcauChair = C; // for tests and the browser console

  document.getElementById("main").prepend(DC.loginCard());
  DC.header("chair_title");

  function mid() { return C.meeting && C.meeting.id; }

  async function act(path, body) {
    try { return await DC.api(`/api/meetings/${mid()}/${path}`, { method: "POST", body: body || {} }); } catch (e) { DC.toast(e.message, "bad"); return null; }
  }

  // --- meetings ------------------------------------------------------------------------------

  async function loadMeetings(prefer) {
    let list = [];
    try { list = await DC.api("/api/meetings"); } catch (e) { DC.toast(e.message, "bad"); }
    list = Array.isArray(list) ? list : list.items || list.meetings || [];
    const live = list.filter((m) => m.state === "live");
    const sel = $("meeting-select");
    sel.replaceChildren(...live.map((m) => el("option", { value: m.id }, m.title)), el("option", { value: "" }, t("new_meeting")));
    const pick = live.find((m) => String(m.id) === String(prefer)) || live[0] || null;
    sel.value = pick ? String(pick.id) : "";
    setMeeting(pick);
  }

  function setMeeting(m) {
    const changed = (m && m.id) !== mid();
    C.meeting = m;
    $("meeting-title").textContent = m ? m.title : t("nomeeting_chair");
    $("no-meeting").hidden = Boolean(m);
    $("end").hidden = !m;
    for (const b of $("floor-actions").querySelectorAll("button")) b.disabled = !m;
    if (changed) { stopChairMedia(); if (m) startChairMedia(); }
    refresh();
  }

  $("meeting-select").addEventListener("change", async (e) => {
    const id = e.target.value;
    if (!id) { setMeeting(null); return; }
    try { setMeeting(await DC.api(`/api/meetings/${id}`)); } catch (err) { DC.toast(err.message, "bad"); }
  });

  $("start-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const prov = $("m-invite").value;
    const invite = prov ? { units: [prov] } : { everyone: true };
    try {
      const m = await DC.api("/api/meetings", { method: "POST", body: { title: $("m-title").value.trim(), invite } });
      await DC.api(`/api/meetings/${m.id}/start`, { method: "POST", body: {} });
      await loadMeetings(m.id);
    } catch (err) { DC.toast(err.message, "bad"); }
  });

  $("end").addEventListener("click", async () => {
    if (!C.meeting || !confirm(t("confirm_end"))) return;
    await act("end");
    await loadMeetings();
  });

  // --- floor, queue, attendance ------------------------------------------------------------------

  async function refresh() {
    clearTimeout(C.refreshTimer);
    if (C.meeting) {
      const id = mid();
      const [floor, queue, att] = await Promise.all([
        DC.api(`/api/meetings/${id}/floor`).catch(() => null),
        DC.api(`/api/meetings/${id}/queue`).catch(() => []),
        DC.api(`/api/meetings/${id}/attendance`).catch(() => null),
      ]);
      if (id === mid()) {
        if (floor) setFloor(floor);
        C.queue = Array.isArray(queue) ? queue : queue.items || [];
        renderQueue();
        renderAttendance(att);
        loadConclusions();
      }
    } else {
      C.queue = []; renderQueue(); renderAttendance(null); setFloor(null); loadConclusions();
    }
    // Events from the staff stream refresh at once; this is the safety net.
    C.refreshTimer = setTimeout(refresh, 3000);
  }

  function setFloor(floor) {
    const before = JSON.stringify(C.floor && C.floor.speakers);
    C.floor = floor;
    const sp = (floor && floor.speakers) || [];
    const parts = [];
    if (sp.length) parts.push(t("speaking") + ": " + sp.map((s) => s.name).join(", "));
    if (floor && floor.muted_all) parts.push(t(floor.unmute_allowed ? "muted_all_unmute" : "muted_all"));
    $("floor-state").textContent = parts.join(" · ");
    $("revoke").disabled = !sp.length;
    if (before !== JSON.stringify(sp)) refreshProgram();
    labelFloor();
  }

  function renderQueue() {
    $("queue-count").textContent = C.queue.length ? String(C.queue.length) : "";
    const speakers = new Set(((C.floor && C.floor.speakers) || []).map((s) => s.code));
    $("queue").replaceChildren(...(C.queue.length ? C.queue.map((q) => el("li", { class: speakers.has(q.code) ? "floor" : "", dataset: { code: q.code } },
      el("span", { class: "qn" }, el("b", {}, q.position + ". "), q.name, el("br"), el("span", { class: "muted" }, q.province_name || "")),
      el("button", { type: "button", onclick: () => grant(q.code, false), "aria-label": t("grant") + " " + q.name }, t("grant_short")),
      el("button", { type: "button", class: "secondary", onclick: () => grant(q.code, true), title: t("dialogue") }, "+"),
      el("button", { type: "button", class: "secondary", onclick: () => spotCheck(q.code), "aria-label": t("spotcheck") + " " + q.name }, t("look")))) : [el("li", { class: "muted" }, t("noqueue"))]));
  }

  async function grant(code, add) {
    const r = await act("floor/grant", { site_codes: [code], add: Boolean(add) });
    if (r) { setFloor(r); refresh(); }
  }

  $("next").addEventListener("click", async () => { const r = await act("floor/next"); if (r) { setFloor(r); refresh(); } });
  $("revoke").addEventListener("click", async () => { const r = await act("floor/revoke", {}); if (r) { setFloor(r); refresh(); } });
  $("muteall").addEventListener("click", async () => { const r = await act("floor/mute-all"); if (r) { setFloor(r); } });
  $("allowunmute").addEventListener("click", async () => { const r = await act("floor/allow-unmute"); if (r) { setFloor(r); } });

  function renderAttendance(att) {
    if (!att) { $("att-total").replaceChildren(); $("att-rows").replaceChildren(); return; }
    const tot = att.total || {};
    $("att-total").replaceChildren(
      el("div", { class: "kpi ok", dataset: { kpi: "present" } }, el("b", {}, fmt(tot.present)), el("span", {}, t("present"))),
      el("div", { class: "kpi", dataset: { kpi: "invited" } }, el("b", {}, fmt(tot.invited)), el("span", {}, t("invited"))),
      el("div", { class: "kpi bad", dataset: { kpi: "not_joined" } }, el("b", {}, fmt(tot.not_joined)), el("span", {}, t("not_joined"))));
    $("att-rows").replaceChildren(...(att.provinces || []).map((p) => el("tr", { dataset: { prov: p.province_id } },
      el("td", {}, p.province_name || "—"), el("td", { class: "num" }, fmt(p.present)), el("td", { class: "num" }, fmt(p.invited)), el("td", { class: "num" }, fmt(p.left)))));
  }

  async function loadConclusions() {
    const id = mid();
    if (!id) { $("concl-list").replaceChildren(); return; }
    let list = [];
    try { list = await DC.api(`/api/meetings/${id}/conclusions`); } catch (_e) { return; }
    const rows = await Promise.all(list.slice(-5).reverse().map(async (c) => {
      let st = null;
      try { st = await DC.api(`/api/conclusions/${c.id}/status`); } catch (_e) { st = null; }
      const total = st ? st.acknowledged_count + st.pending_count : 0;
      return el("li", { dataset: { conclusion: c.id } }, el("span", { class: "qn" }, c.body),
        st ? el("span", { class: "badge " + (st.pending_count ? "warn" : "ok"), title: t("acked") }, st.acknowledged_count + "/" + total) : null);
    }));
    if (id === mid()) $("concl-list").replaceChildren(...rows);
  }

  $("concl-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = $("concl-body").value.trim();
    if (!body || !C.meeting) return;
    try {
      await DC.api(`/api/meetings/${mid()}/conclusions`, { method: "POST", body: { body } });
      $("concl-body").value = "";
      DC.toast(t("published"));
      loadConclusions();
    } catch (err) { DC.toast(err.message, "bad"); }
  });

  function onEvent(ev) {
    const k = ev.kind || "";
    if (k === "inspection.changed" && C.spot && C.spot.insp) { C.spot.insp.poke(ev.body || {}); return; }
    if (/^(hand|floor|meeting|attendance|conclusion)\./.test(k) || k === "floor.changed") {
      if (k.startsWith("meeting.") && (k.endsWith("started") || k.endsWith("ended"))) loadMeetings(mid());
      else refresh();
    }
  }

  // --- the chair's program media ------------------------------------------------------------------

  async function camera() {
    if (C.stream) return C.stream;
    C.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    $("chair-self").srcObject = C.stream;
    return C.stream;
  }

  async function startChairMedia() {
    const id = mid();
    try {
      const g = await DC.api(`/api/media/chair?meeting_id=${id}`);
      if (id !== mid()) return;
      const session = await JanusSession.connect(g.ws_url, g.token, { iceServers: g.ice_servers, onclose: () => { if (C.media && C.media.session === session) { C.media = null; setTimeout(() => { if (mid() === id) startChairMedia(); }, 2000); } } });
      C.media = { session, grant: g, pub: null, subs: new Map(), meeting: id };
      renewLater(g);
      // Simulcast: sites behind weak links take the low layer (docs/media.md, "Weak links").
      C.media.pub = await janusPublish(session, g.publish.room, g.publish.feed_id, g.publish.token, await camera(), t("chair"), "always");
      await syncFloorFeeds(g);
    } catch (e) {
      console.warn("chair media", e);
      $("floor-0-label").textContent = t("media_na") + " (" + e.message + ")";
      if (e.status !== 404) setTimeout(() => { if (mid() === id && !C.media) startChairMedia(); }, 3000);
      else camera().catch(() => {});
    }
  }

  /**
   * Janus checks the signed token on every request (keepalives too) and grants
   * live 10 minutes: at half-life fetch fresh grants and give their tokens to
   * the open sessions: the chair's at central, and every pooled relay session.
   */
  function renewLater(g) {
    clearTimeout(C.renewTimer);
    const ms = Math.max(5000, ((g.expires_at || 0) * 1000 - Date.now()) / 2);
    C.renewTimer = setTimeout(renewTokens, ms);
  }

  async function renewTokens() {
    let next = { expires_at: Date.now() / 1000 + 120 };
    try {
      if (C.media) {
        const g = await DC.api(`/api/media/chair?meeting_id=${C.media.meeting}`);
        if (C.media && g.ws_url === C.media.grant.ws_url) { C.media.session.token = g.token; C.media.grant = g; next = g; }
      }
      const codes = [...C.wall.tiles.keys()];
      if (C.spot) codes.push(C.spot.code);
      if (codes.length) {
        const grants = await DC.api("/api/media/wall", { method: "POST", body: { sites: [...new Set(codes)].slice(0, 36) } });
        for (const g of grants) {
          const p = C.pool.get(g.ws_url);
          if (p) p.then((s) => { s.token = g.token; }).catch(() => {});
        }
      }
    } catch (e) { console.warn("token renewal", e); }
    renewLater(next);
  }

  function stopChairMedia() {
    clearTimeout(C.renewTimer);
    C.renewTimer = 0;
    const m = C.media;
    C.media = null;
    if (m) m.session.close();
    for (const i of [0, 1]) $("floor-" + i).srcObject = null;
  }

  async function refreshProgram() {
    if (!C.media) return;
    try {
      const g = await renewChairGrant(C.media);
      await syncFloorFeeds(g);
    } catch (e) { console.warn(e); }
  }

  /** A fresh chair grant; the open session (same node) takes its token. */
  async function renewChairGrant(m) {
    const g = await DC.api(`/api/media/chair?meeting_id=${m.meeting}`);
    if (C.media === m && g.ws_url === m.grant.ws_url) { m.session.token = g.token; m.grant = g; }
    return g;
  }

  async function syncFloorFeeds(g) {
    const m = C.media;
    if (!m) return;
    janusSyncFeeds(m.subs, g.program.feeds || [], (f) => subscribeFloor(m, f));
    labelFloor();
  }

  async function subscribeFloor(m, f) {
    const id = f.feed_id;
    // Each try uses the latest grant; a refused join (the program room's pin or the
    // room token changed) fetches a fresh one first.
    for (let attempt = 0; C.media === m && m.subs.has(id); attempt++) {
      const cur = m.grant;
      try {
        const sub = await janusSubscribe(m.session, cur.program.room, id, cur.room_token, undefined, cur.program.pin);
        if (C.media !== m || !m.subs.has(id)) { sub.handle.detach(); return; }
        sub.feed = f; m.subs.set(id, sub); labelFloor();
        // The speaker's feed went away (it republished, or a node restarted and the
        // cascade is rebuilt): subscribe again while it is still on the floor.
        sub.handle.on((data) => {
          if (!janusFeedGone(data, id) || m.subs.get(id) !== sub) return;
          m.subs.set(id, { pending: true, feed: f }); sub.handle.detach(); labelFloor();
          setTimeout(() => subscribeFloor(m, f), 1000);
        });
        return;
      } catch (e) {
        if (e.code === 433 || e.code === 429) await renewChairGrant(m).catch(() => {});
        await new Promise((r) => setTimeout(r, Math.min(2000, 300 + attempt * 200)));
      }
    }
  }


  function labelFloor() {
    const subs = C.media ? [...C.media.subs.values()] : [];
    const speakers = (C.floor && C.floor.speakers) || [];
    for (const i of [0, 1]) {
      const v = $("floor-" + i);
      const sp = speakers[i];
      const sub = sp && subs.find((s) => s.feed && s.feed.site === sp.code);
      if (sub && sub.stream) { if (v.srcObject !== sub.stream) { v.srcObject = sub.stream; v.play().catch(() => {}); } } else v.srcObject = null;
      $("floor-" + i + "-label").textContent = sp ? t("speaker") + ": " + sp.name : (i === 0 ? t("nospeaker") : "");
      v.dataset.site = sp ? sp.code : "";
    }
    // The second picture is only for a two-site dialogue.
    $("floor-1-box").style.visibility = speakers.length > 1 ? "visible" : "hidden";
  }

  // --- spot-check ----------------------------------------------------------------------------------

  function session(g) {
    let p = C.pool.get(g.ws_url);
    if (p) p.then((s) => { s.token = g.token; }).catch(() => {});
    if (!C.renewTimer) renewLater(g);
    if (!p) {
      p = JanusSession.connect(g.ws_url, g.token, { iceServers: g.ice_servers, onclose: () => C.pool.delete(g.ws_url) });
      C.pool.set(g.ws_url, p);
      p.catch(() => C.pool.delete(g.ws_url));
    }
    return p;
  }

  async function spotCheck(code) {
    const i = model.byCode.get(code);
    await closeSpot();
    const spot = { code, insp: null, firstFrameMs: null };
    C.spot = spot;
    $("spot").hidden = false;
    $("spot-h").textContent = i !== undefined ? model.names[i] : code;
    $("spot-meta").textContent = i !== undefined ? code + " · " + model.provinceName(i) + " · " + t("st_" + DC.STATES[model.state[i]]) : code;
    $("spot-state").textContent = t("connecting_video");
    $("spot-call").hidden = true;
    $("spot-close").focus();
    if (C.map && i !== undefined) C.map.select(i);
    // A spot-check is an online inspection: audited, shown at the site, a standby
    // site starts publishing now.
    const insp = new SiteInspection(code, { video: $("spot-video"), pool: C.pool, onChange: () => { if (C.spot === spot) renderSpot(spot); } });
    spot.insp = insp;
    try {
      await insp.start();
      if (insp.grant && !C.renewTimer) renewLater(insp.grant);
    } catch (e) {
      if (C.spot === spot) $("spot-state").textContent = t("novideo") + " " + e.message;
    }
  }

  function renderSpot(spot) {
    const insp = spot.insp;
    spot.firstFrameMs = insp.firstFrameMs;
    let text = t("insp_waiting");
    if (insp.state === "not_answered") text = t("insp_not_answered");
    else if (insp.state === "ended") text = t("insp_ended");
    else if (insp.firstFrameMs !== null) text = t("live_video", { ms: insp.firstFrameMs });
    $("spot-state").textContent = text;
    const callable = insp.state === "live" && !insp.closed;
    $("spot-call").hidden = !callable && !insp.call;
    $("spot-call").textContent = t(insp.call ? "insp_hangup" : "insp_call");
  }

  async function closeSpot() {
    const s = C.spot;
    C.spot = null;
    $("spot").hidden = true;
    $("spot-video").srcObject = null;
    if (s && s.insp) await s.insp.end();
  }

  $("spot-call").addEventListener("click", async () => {
    const spot = C.spot;
    if (!spot || !spot.insp) return;
    try {
      if (spot.insp.call) await spot.insp.endCall(); else await spot.insp.startCall(await camera());
    } catch (e) { DC.toast(e.message, "bad"); }
  });

  $("spot-close").addEventListener("click", closeSpot);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && C.spot) closeSpot(); });
  $("spot-grant").addEventListener("click", () => { if (C.spot && C.meeting) grant(C.spot.code, false); });

  // --- finding sites ---------------------------------------------------------------------------------

  $("find-q").addEventListener("input", () => renderHits());
  $("find").addEventListener("submit", (e) => { e.preventDefault(); const first = $("hits").querySelector("button"); if (first) first.click(); });

  function renderHits() {
    const hits = model.search($("find-q").value, 12);
    $("hits").replaceChildren(...hits.map((i) => el("li", {}, el("button", { type: "button", onclick: () => spotCheck(model.codes[i]) },
      el("span", { class: "dot " + DC.STATES[model.state[i]] }), model.names[i], " ", el("span", { class: "muted" }, "· " + model.provinceName(i))))));
  }

  // --- the video wall --------------------------------------------------------------------------------

  function wallSites() {
    const prov = Number($("wall-prov").value);
    const st = $("wall-state").value;
    const out = [];
    for (let i = 0; i < model.n; i++) {
      if (model.kinds[i] === "chair") continue;
      if (prov >= 0 && model.provIdx[i] !== prov) continue;
      const s = DC.STATES[model.state[i]];
      const up = s === "online" || s === "degraded";
      // Standby: the terminal is open outside a meeting (it publishes while shown).
      if (st === "live" && !up) continue;
      if (st === "standby" && !(up && !model.inMeeting[i])) continue;
      if (st === "meeting" && !model.inMeeting[i]) continue;
      if (["degraded", "offline"].includes(st) && s !== st) continue;
      out.push(i);
    }
    return out;
  }

  async function renderWall() {
    const w = C.wall;
    w.gen++;
    const n = Number($("wall-n").value);
    const per = n * n;
    const sites = wallSites();
    const pages = Math.max(1, Math.ceil(sites.length / per));
    w.page = ((w.page % pages) + pages) % pages;
    const page = sites.slice(w.page * per, w.page * per + per);
    $("wall-page").textContent = t("page", { p: w.page + 1, n: pages, total: sites.length });
    const box = $("wall");
    box.style.gridTemplateColumns = `repeat(${n}, 1fr)`;
    // Paging replaces the subscriptions: the old page's feeds go first.
    const keep = new Set(page.map((i) => model.codes[i]));
    for (const [code, tile] of w.tiles) if (!keep.has(code) || !w.on) { w.tiles.delete(code); if (tile.sub) tile.sub.handle.detach(); }
    $("wall-off").hidden = w.on;
    if (!w.on) { box.replaceChildren(); leaveWall(); return; }
    const fresh = [];
    const nodes = page.map((i) => {
      const code = model.codes[i];
      let tile = w.tiles.get(code);
      if (!tile) {
        const v = el("video", { autoplay: true, muted: true, playsinline: true });
        v.muted = true;
        tile = { code, video: v, sub: null, node: null };
        w.tiles.set(code, tile);
        fresh.push(tile);
      }
      tile.node = tile.node || el("button", { type: "button", class: "tile", dataset: { code }, onclick: () => spotCheck(code), "aria-label": t("spotcheck") + " " + model.names[i] },
        tile.video, el("span", { class: "novid" }, t("connecting_video")), el("span", { class: "label" }, el("span", { class: "dot" }), model.names[i], el("span", { class: "where" })));
      // The state and where the site is (in a meeting, or standby) follow the live model.
      const s = DC.STATES[model.state[i]];
      const where = model.inMeeting[i] ? "meeting" : s === "online" || s === "degraded" ? "standby" : "";
      tile.node.querySelector(".label .dot").className = "dot " + s;
      const tag = tile.node.querySelector(".label .where");
      tag.dataset.where = where;
      tag.textContent = where ? " · " + t(where === "meeting" ? "st_meeting" : "st_standby_short") : "";
      return tile.node;
    });
    // Moving a playing <video> in the DOM pauses it: touch the DOM only when the
    // page really changed, and restart the pictures that were moved.
    const same = nodes.length === box.children.length && nodes.every((n, k) => box.children[k] === n);
    if (!same) {
      box.replaceChildren(...nodes);
      for (const tile of w.tiles.values()) if (tile.sub) tile.video.play().catch(() => {});
    }
    if (fresh.length) subscribePage(fresh);
  }

  /**
   * Hold the page's lease (standby sites on it publish while it is shown, and are told
   * who shows them); one grant per relay for the whole page.
   */
  function leaseWall() {
    const w = C.wall;
    // One request at a time (tiles retrying, the renewal, paging), so a page never holds
    // two leases; a lease granted after the wall was switched off is given back at once,
    // or the sites it names would stay on camera until it expired.
    const run = async () => {
      const sites = [...w.tiles.keys()];
      if (!w.on || !sites.length) return [];
      const r = await DC.api("/api/inspection/wall", { method: "POST", body: { sites, wall_id: w.lease || undefined } });
      if (!w.on) {
        DC.api("/api/inspection/wall/" + encodeURIComponent(r.wall_id), { method: "DELETE" }).catch(() => {});
        return [];
      }
      w.lease = r.wall_id;
      clearInterval(w.leaseTimer);
      w.leaseTimer = setInterval(() => { leaseWall().catch((e) => console.warn("wall lease", e)); }, Math.max(5000, (r.lease_s || 30) * 1000 / 2));
      return r.grants;
    };
    const next = w.leaseChain.catch(() => {}).then(run);
    w.leaseChain = next;
    return next;
  }

  function leaveWall() {
    const w = C.wall;
    clearInterval(w.leaseTimer);
    if (w.lease) DC.api("/api/inspection/wall/" + encodeURIComponent(w.lease), { method: "DELETE" }).catch(() => {});
    w.lease = null;
  }

  /** The page's grants, then one subscription per new tile. */
  async function subscribePage(tiles) {
    let grants = [];
    try {
      grants = await leaseWall();
    } catch (e) { for (const tile of tiles) tileFailed(tile); return; }
    if (!tiles.some((x) => C.wall.tiles.get(x.code) === x)) return;
    const byCode = new Map(tiles.map((x) => [x.code, x]));
    await Promise.all(grants.map(async (g) => {
      let s;
      try { s = await session(g); } catch (_e) { for (const f of g.subscribe) if (byCode.has(f.site)) tileFailed(byCode.get(f.site)); return; }
      await Promise.all(g.subscribe.map((f) => subscribeTile(byCode.get(f.site), s, f, g.room_token)));
    }));
  }

  async function subscribeTile(tile, s, feed, roomToken) {
    if (!tile) return;
    try {
      const sub = await janusSubscribe(s, feed.room, feed.feed_id, roomToken, 0);
      if (C.wall.tiles.get(tile.code) !== tile) { sub.handle.detach(); return; }
      tile.sub = sub;
      tile.video.srcObject = sub.stream;
      tile.video.play().catch(() => {});
      tile.video.addEventListener("playing", () => { const nv = tile.node && tile.node.querySelector(".novid"); if (nv) nv.remove(); if (tile.node) tile.node.dataset.playing = "1"; }, { once: true });
    } catch (_e) { tileFailed(tile); }
  }

  function tileFailed(tile) {
    const nv = tile.node && tile.node.querySelector(".novid");
    if (nv) nv.textContent = t("novideo");
    // The site may start publishing a moment later (it just joined): try again,
    // backing off, for as long as the tile stays on the wall.
    tile.tries = (tile.tries || 0) + 1;
    // A standby site starts publishing a moment after the page is shown: look again soon.
    const delay = Math.min(30000, 400 * 2 ** Math.min(tile.tries, 6));
    setTimeout(() => {
      if (C.wall.on && C.wall.tiles.get(tile.code) === tile && !tile.sub) subscribePage([tile]);
    }, delay);
  }

  function setRotate() {
    clearInterval(C.wall.timer);
    if ($("wall-rotate").checked && C.wall.on) C.wall.timer = setInterval(() => { C.wall.page++; renderWall(); }, 15000);
  }

  $("wall-toggle").addEventListener("click", () => {
    C.wall.on = !C.wall.on;
    $("wall-toggle").textContent = t(C.wall.on ? "wall_off" : "wall_on");
    setRotate(); renderWall();
  });
  for (const id of ["wall-n", "wall-prov", "wall-state"]) $(id).addEventListener("change", () => { C.wall.page = 0; renderWall(); });
  $("wall-prev").addEventListener("click", () => { C.wall.page--; renderWall(); });
  $("wall-next").addEventListener("click", () => { C.wall.page++; renderWall(); });
  $("wall-rotate").addEventListener("change", setRotate);

  // --- start ---------------------------------------------------------------------------------------------

  function liveStatus(mode) { const e = $("live"); e.dataset.state = mode; e.textContent = t("live_" + mode); }

  DC.requireStaff(async (me) => {
    C.me = me;
    C.live = new StaffLive(model, { onStatus: liveStatus, onEvent });
    await C.live.start();
    C.map = new SiteMap($("minimap"), model, {
      onSelect: (i) => { if (i >= 0 && (!C.spot || C.spot.code !== model.codes[i])) spotCheck(model.codes[i]); },
      onHover: (i, x, y) => {
        const tip = $("tip");
        if (i < 0) { tip.hidden = true; return; }
        tip.hidden = false; tip.textContent = model.names[i];
        tip.style.left = Math.min(x + 10, 200) + "px"; tip.style.top = Math.max(0, y - 24) + "px";
      },
    });
    C.map.setData();
    const provOptions = model.provinces.map((p, pi) => el("option", { value: pi }, p.name));
    $("wall-prov").append(...provOptions);
    $("m-invite").append(...model.provinces.map((p) => el("option", { value: p.code }, p.name)));
    model.onChange(() => { C.map.request(); if (C.wall.on && !C.wall.pendingRender) { C.wall.pendingRender = setTimeout(() => { C.wall.pendingRender = 0; renderWall(); }, 1000); } });
    await loadMeetings();
    const m = location.hash.match(/spot=([^&]+)/);
    if (m) spotCheck(decodeURIComponent(m[1]));
    window.addEventListener("hashchange", () => { const h = location.hash.match(/spot=([^&]+)/); if (h) spotCheck(decodeURIComponent(h[1])); });
    document.addEventListener("langchange", () => {
      $("meeting-title").textContent = C.meeting ? C.meeting.title : t("nomeeting_chair");
      const blank = $("meeting-select").querySelector("option[value='']");
      if (blank) blank.textContent = t("new_meeting");
      renderQueue(); labelFloor(); setFloor(C.floor); renderWall(); liveStatus(C.live.mode); $("wall-toggle").textContent = t(C.wall.on ? "wall_off" : "wall_on"); });
  }).catch((e) => DC.toast(e.message, "bad"));

  window.addEventListener("beforeunload", () => {
    // Leave the wall page and the spot-check now: the sites stop publishing at once.
    const auth = { Authorization: "Bearer " + DC.staffToken() };
    if (C.wall.lease) fetch("/api/inspection/wall/" + encodeURIComponent(C.wall.lease), { method: "DELETE", headers: auth, keepalive: true }).catch(() => {});
    if (C.spot && C.spot.insp && C.spot.insp.id) fetch(`/api/inspections/${C.spot.insp.id}/end`, { method: "POST", headers: auth, keepalive: true }).catch(() => {});
    stopChairMedia(); for (const p of C.pool.values()) p.then((s) => s.close()).catch(() => {}); });
})();
