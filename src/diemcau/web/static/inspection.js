// The online inspection page (kiểm tra trực tuyến): inspect any site now (a standby
// terminal starts publishing at once), call it, and work through inspection rounds —
// a list of sites or a random sample — site by site with the keyboard, writing a
// verdict (đạt / chưa đạt / không trả lời), a note and a snapshot; the round's report
// prints or exports; the inspection log below. docs/inspection.md, docs/ui.md.
"use strict";
(() => {
  const { $, el } = DC;
  const P = {
    me: null, rounds: [], round: null, idx: -1, target: null, insp: null,
    pool: new Map(), local: null, events: null, snapUrl: "",
  };
  window.diemcauInspection = P; // for tests and the browser console
  const VERDICTS = ["pass", "fail", "no_answer"];

  // --- the site being inspected ---------------------------------------------------------

  function item() { return P.round && P.idx >= 0 ? P.round.items[P.idx] : null; }

  /** Show a site (a round's item, or a quick pick) without inspecting it yet. */
  async function show(target) {
    await endInspection();
    P.target = target;
    $("site-h").textContent = target.name;
    $("site-meta").textContent = [target.code, target.province].filter(Boolean).join(" · ");
    $("insp-state").textContent = t("insp_ready");
    renderButtons();
    renderVerdict();
  }

  async function inspect() {
    if (!P.target) return;
    await endInspection();
    const it = item();
    const roundItemId = it && it.site_code === P.target.code && !P.round.closed_at ? it.id : null;
    const insp = new SiteInspection(P.target.code, { video: $("insp-video"), pool: P.pool, roundItemId, onChange: onInspection });
    P.insp = insp;
    $("insp-state").textContent = t("connecting_video");
    try {
      await insp.start();
    } catch (e) {
      if (P.insp === insp) { P.insp = null; $("insp-state").textContent = Pages.errText(e); renderButtons(); }
    }
  }

  let lastState = "";
  function onInspection(insp) {
    if (P.insp !== insp) return;
    const v = insp.view || {};
    if (v.site_name && P.target && P.target.code === v.site_code) {
      // A site opened by its code alone (#site=…) gets its name from the inspection.
      $("site-h").textContent = v.site_name;
      $("site-meta").textContent = [v.site_code, v.province_name].filter(Boolean).join(" · ");
    }
    let text = t("connecting_video");
    if (insp.state === "waiting") text = t("insp_waiting");
    if (insp.state === "live") text = insp.firstFrameMs === null ? t("insp_answered") : t("live_video", { ms: insp.firstFrameMs });
    if (insp.state === "not_answered") text = t("insp_not_answered") + " — " + t("insp_reason_" + (v.reason || "no_publish"));
    if (insp.state === "ended") text = t("insp_ended") + (v.reason && v.reason !== "ended" ? " — " + t("insp_reason_" + v.reason) : "");
    if (insp.call) text += " · " + t("insp_in_call");
    $("insp-state").textContent = text;
    $("insp-state").dataset.state = insp.state;
    renderButtons();
    if (insp.state !== lastState) {
      lastState = insp.state;
      refreshLater();
    }
  }

  async function endInspection() {
    const insp = P.insp;
    P.insp = null;
    lastState = "";
    $("self-video").hidden = true;
    if (insp) { await insp.end(); refreshLater(); }
    renderButtons();
  }

  async function toggleCall() {
    const insp = P.insp;
    if (!insp) return;
    try {
      if (insp.call) { await insp.endCall(); $("self-video").hidden = true; return; }
      if (!P.local) P.local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
      $("self-video").srcObject = P.local; $("self-video").hidden = false;
      await insp.startCall(P.local);
    } catch (e) { DC.toast(Pages.errText(e), "bad"); }
    onInspection(insp);
  }

  async function snapshot() {
    const it = item();
    if (!P.insp || !it || !P.target || it.site_code !== P.target.code) return;
    const blob = await P.insp.snapshot();
    if (!blob) { DC.toast(t("insp_no_frame"), "bad"); return; }
    const res = await fetch(`/api/inspection/rounds/${P.round.id}/items/${it.id}/snapshot`, {
      method: "PUT", body: blob, headers: { Authorization: "Bearer " + DC.staffToken(), "Content-Type": "image/jpeg" },
    });
    if (!res.ok) { let m = res.statusText; try { m = (await res.json()).error.message; } catch (_e) { /* not JSON */ } DC.toast(m, "bad"); return; }
    Object.assign(it, await res.json());
    showSnapshot(URL.createObjectURL(blob));
    DC.toast(t("insp_snap_saved"));
    renderItems();
  }

  function showSnapshot(url) {
    if (P.snapUrl) URL.revokeObjectURL(P.snapUrl);
    P.snapUrl = url || "";
    $("snap-fig").hidden = !url;
    $("snap-img").src = url || "";
  }

  function renderButtons() {
    const insp = P.insp;
    const live = Boolean(insp && insp.state === "live");
    const open = Boolean(insp && (insp.state === "waiting" || insp.state === "live"));
    const it = item();
    $("b-inspect").disabled = !P.target || open;
    $("b-end").disabled = !open;
    $("b-call").disabled = !live;
    $("b-call").textContent = t(insp && insp.call ? "insp_hangup_k" : "insp_call_k");
    $("b-snap").disabled = !(live && it && P.target && it.site_code === P.target.code && !P.round.closed_at);
    $("b-prev").disabled = !P.round || P.idx <= 0;
    $("b-next").disabled = !P.round || P.idx >= P.round.items.length - 1;
    $("position").textContent = P.round && P.idx >= 0 ? t("insp_pos", { i: P.idx + 1, n: P.round.items.length }) : "";
  }

  // --- rounds ----------------------------------------------------------------------------

  async function loadRounds() {
    try { P.rounds = (await DC.api("/api/inspection/rounds")).items; } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    $("rounds").replaceChildren(...(P.rounds.length ? P.rounds.map((r) => el("li", { dataset: { round: r.id }, class: P.round && P.round.id === r.id ? "on" : "" },
      el("button", { type: "button", class: "rrow", onclick: () => openRound(r.id) },
        el("b", {}, r.title), el("br"),
        el("span", { class: "muted" }, Pages.dt(r.created_at) + " · " + t("insp_progress", { d: r.counts.decided, n: r.counts.sites }) + (r.closed_at ? " · " + t("insp_closed") : ""))))) :
      [el("li", { class: "muted" }, t("insp_no_rounds"))]));
  }

  async function openRound(id, itemId) {
    let r;
    try { r = await DC.api(`/api/inspection/rounds/${id}`); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    P.round = r;
    let idx = r.items.findIndex((x) => x.id === Number(itemId));
    if (idx < 0) idx = r.items.findIndex((x) => !x.verdict);
    if (idx < 0) idx = 0;
    renderRound();
    await select(idx, false);
    loadRounds();
  }

  async function reloadRound() {
    if (!P.round) return;
    try {
      const r = await DC.api(`/api/inspection/rounds/${P.round.id}`);
      if (!P.round || r.id !== P.round.id) return;
      P.round = r;
      renderRound();
      renderVerdict(true);
    } catch (_e) { /* shown at the next action */ }
  }

  async function select(idx, autoInspect) {
    if (!P.round || idx < 0 || idx >= P.round.items.length) return;
    P.idx = idx;
    const it = item();
    location.hash = `round=${P.round.id}&item=${it.id}`;
    await show({ code: it.site_code, name: it.site_name, province: it.province_name });
    renderItems();
    if (autoInspect && $("auto").checked && !P.round.closed_at) inspect();
  }

  function renderRound() {
    const r = P.round;
    $("round-box").hidden = !r;
    if (!r) return;
    $("round-h").textContent = r.title;
    $("round-meta").textContent = t("insp_round_meta", { by: r.created_by, at: Pages.dt(r.created_at) }) + (r.closed_at ? " · " + t("insp_closed") : "");
    const c = r.counts;
    $("round-kpis").replaceChildren(
      kpi("insp_k_sites", c.sites, ""), kpi("v_pass", c.pass, "ok"), kpi("v_fail", c.fail, "bad"),
      kpi("v_no_answer", c.no_answer, "warn"), kpi("insp_k_open", c.sites - c.decided, ""));
    $("round-export").replaceChildren(Pages.exportBar((fmt) => `/api/inspection/rounds/${r.id}/report.${fmt}`));
    $("b-close").hidden = Boolean(r.closed_at);
    renderItems();
  }

  function kpi(key, n, cls) { return el("div", { class: "kpi " + cls, dataset: { kpi: key } }, el("b", {}, DC.fmt(n)), el("span", {}, t(key))); }

  function renderItems() {
    const r = P.round;
    $("items-h").hidden = !r;
    $("items").hidden = !r;
    if (!r) { $("items").replaceChildren(); return; }
    const head = el("tr", {}, ["#", t("insp_col_site"), t("insp_col_province"), t("insp_col_answered"), t("insp_verdict"), t("insp_note"), t("insp_col_snap")].map((h) => el("th", { scope: "col" }, h)));
    const rows = r.items.map((x, i) => el("tr", { class: i === P.idx ? "on" : "", "aria-current": i === P.idx ? "true" : null, dataset: { item: x.id, code: x.site_code } },
      el("td", { class: "num" }, x.position),
      el("td", {}, el("button", { type: "button", class: "linkish", onclick: () => select(i, true) }, x.site_name), " ", el("span", { class: "muted" }, x.site_code)),
      el("td", {}, x.province_name),
      el("td", {}, x.answered === null ? "" : t(x.answered ? "yes" : "no")),
      el("td", {}, x.verdict ? el("span", { class: "vtag " + x.verdict }, t("v_" + x.verdict)) : ""),
      el("td", { class: "note" }, x.note),
      el("td", {}, x.has_snapshot ? "✓" : "")));
    $("items").replaceChildren(el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, rows)));
  }

  // --- the verdict -------------------------------------------------------------------------

  let chosen = null;

  async function renderVerdict(keepNote) {
    const it = item();
    const here = it && P.target && it.site_code === P.target.code;
    $("verdict-form").hidden = !here;
    $("verdict-none").hidden = Boolean(here);
    if (!here) { showSnapshot(""); return; }
    chosen = it.verdict;
    for (const b of document.querySelectorAll(".vbtn")) b.setAttribute("aria-pressed", String(b.dataset.verdict === chosen));
    if (!keepNote || document.activeElement !== $("note")) $("note").value = it.note || "";
    const closed = Boolean(P.round.closed_at);
    for (const c of $("verdict-form").querySelectorAll("button, textarea")) c.disabled = closed;
    $("saved").textContent = it.decided_by ? t("insp_decided", { by: it.decided_by, at: Pages.dt(it.decided_at) }) : "";
    if (keepNote) return;
    showSnapshot("");
    if (it.has_snapshot) {
      const res = await fetch(`/api/inspection/rounds/${P.round.id}/items/${it.id}/snapshot`, { headers: { Authorization: "Bearer " + DC.staffToken() } });
      if (res.ok && item() === it) showSnapshot(URL.createObjectURL(await res.blob()));
    }
  }

  async function saveVerdict(verdict) {
    const it = item();
    if (!it || P.round.closed_at) return;
    if (verdict !== undefined) chosen = verdict;
    try {
      const r = await DC.api(`/api/inspection/rounds/${P.round.id}/items/${it.id}`, { method: "PUT", body: { verdict: chosen, note: $("note").value } });
      Object.assign(it, r);
      P.round.counts = countsOf(P.round.items);
      DC.toast(t("insp_saved"));
      refreshLater();
      renderRound();
      renderVerdict(true);
    } catch (e) { DC.toast(Pages.errText(e), "bad"); }
  }

  function countsOf(items) {
    const c = { sites: items.length, decided: 0, pass: 0, fail: 0, no_answer: 0 };
    for (const x of items) if (x.verdict) { c.decided++; c[x.verdict]++; }
    return c;
  }

  for (const b of document.querySelectorAll(".vbtn")) b.addEventListener("click", () => saveVerdict(b.dataset.verdict));
  $("verdict-form").addEventListener("submit", (e) => { e.preventDefault(); saveVerdict(); });

  // --- planning a round ----------------------------------------------------------------------

  for (const r of document.querySelectorAll("input[name=how]")) r.addEventListener("change", () => {
    const list = document.querySelector("input[name=how]:checked").value === "list";
    $("r-list").hidden = !list; $("r-sample").hidden = list;
  });

  $("round-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const title = $("r-title").value.trim();
    const body = { title };
    if (document.querySelector("input[name=how]:checked").value === "list") {
      body.sites = $("r-codes").value.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
    } else {
      body.sample = { n: Number($("r-n").value), communes_only: $("r-communes").checked };
      if ($("r-prov").value) body.sample.province = $("r-prov").value;
    }
    try {
      const r = await DC.api("/api/inspection/rounds", { method: "POST", body });
      $("round-error").textContent = "";
      $("new-round").open = false;
      $("r-title").value = "";
      await openRound(r.id);
    } catch (err) {
      $("round-error").textContent = Pages.errText(err);
      const field = String(err.message).split(":")[0].trim();
      const input = { title: "r-title", n: "r-n", sites: "r-codes", province: "r-prov" }[field];
      if (input) $(input).focus();
    }
  });

  $("b-close").addEventListener("click", async () => {
    if (!P.round || !confirm(t("insp_confirm_close"))) return;
    try { P.round = await DC.api(`/api/inspection/rounds/${P.round.id}/close`, { method: "POST" }); renderRound(); renderVerdict(); renderButtons(); loadRounds(); } catch (e) { DC.toast(Pages.errText(e), "bad"); }
  });

  $("b-report").addEventListener("click", async () => {
    if (!P.round) return;
    const res = await fetch(`/api/inspection/rounds/${P.round.id}/report.html`, { headers: { Authorization: "Bearer " + DC.staffToken() } });
    if (!res.ok) { DC.toast(res.statusText, "bad"); return; }
    const url = URL.createObjectURL(new Blob([await res.text()], { type: "text/html" }));
    const win = window.open(url, "_blank");
    if (!win) DC.toast(t("insp_popup"), "bad");
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });

  // --- quick search ----------------------------------------------------------------------------

  let searchGen = 0;
  $("find-q").addEventListener("input", Pages.throttle(async () => {
    const q = $("find-q").value.trim();
    const gen = ++searchGen;
    if (q.length < 2) { $("hits").replaceChildren(); return; }
    let hits = [];
    try { hits = await DC.api(Pages.url("/api/directory/search", { q, limit: 12 })); } catch (_e) { return; }
    if (gen !== searchGen) return;
    hits = hits.filter((h) => h.level !== "country" && h.level !== "chair");
    $("hits").replaceChildren(...hits.map((h) => el("li", {}, el("button", { type: "button", onclick: () => quick(h) },
      h.name, " ", el("span", { class: "muted" }, "· " + (h.province_name || h.parent_name || ""))))));
  }, 250));
  $("find").addEventListener("submit", (e) => { e.preventDefault(); const b = $("hits").querySelector("button"); if (b) b.click(); });

  /** Inspect a site found by search: the round's item if it is one, else on its own. */
  async function quick(hit) {
    const i = P.round ? P.round.items.findIndex((x) => x.site_code === hit.code) : -1;
    if (i >= 0) { await select(i, true); if (!$("auto").checked) inspect(); return; }
    P.idx = -1;
    await show({ code: hit.code, name: hit.name, province: hit.province_name || "" });
    renderItems();
    inspect();
  }

  // --- the log -------------------------------------------------------------------------------------

  async function loadHistory() {
    let items = [];
    try { items = (await DC.api("/api/inspections?limit=50")).items; } catch (_e) { return; }
    const head = el("tr", {}, [t("insp_col_at"), t("insp_col_site"), t("insp_col_province"), t("insp_col_by"), t("insp_col_state"), t("insp_col_answer"), t("insp_col_duration"), t("insp_col_mode")].map((h) => el("th", { scope: "col" }, h)));
    const rows = items.map((v) => el("tr", { dataset: { inspection: v.id, state: v.state } },
      el("td", {}, Pages.dt(v.requested_at)), el("td", {}, v.site_name, " ", el("span", { class: "muted" }, v.site_code)),
      el("td", {}, v.province_name), el("td", {}, v.inspector_name),
      el("td", {}, el("span", { class: "stag " + v.state }, t("insp_st_" + v.state))),
      el("td", { class: "num" }, v.answer_s === null ? "–" : v.answer_s.toFixed(1) + " s"),
      el("td", { class: "num" }, Math.round(v.duration_s) + " s"),
      el("td", {}, t("insp_mode_" + v.mode))));
    $("history").replaceChildren(el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "8", class: "muted" }, t("norows"))))));
  }

  const refreshLater = Pages.throttle(() => { loadHistory(); reloadRound(); loadRounds(); }, 1000);

  // --- keyboard ---------------------------------------------------------------------------------------

  document.addEventListener("keydown", (e) => {
    const tag = (e.target && e.target.tagName) || "";
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(tag);
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target === $("note")) { e.preventDefault(); saveVerdict(); return; }
    if (e.key === "Escape") { if (P.insp) { e.preventDefault(); endInspection(); } return; }
    if (typing || e.altKey || e.ctrlKey || e.metaKey || $("app").hidden) return;
    const k = e.key.toLowerCase();
    const act = {
      n: () => select(P.idx + 1, true), arrowright: () => select(P.idx + 1, true),
      p: () => select(P.idx - 1, true), arrowleft: () => select(P.idx - 1, true),
      i: () => inspect(), c: () => toggleCall(), s: () => snapshot(), e: () => endInspection(),
      1: () => saveVerdict("pass"), 2: () => saveVerdict("fail"), 3: () => saveVerdict("no_answer"),
    }[k];
    if (act) { e.preventDefault(); act(); }
  });

  $("b-inspect").addEventListener("click", inspect);
  $("b-end").addEventListener("click", endInspection);
  $("b-call").addEventListener("click", toggleCall);
  $("b-snap").addEventListener("click", snapshot);
  $("b-next").addEventListener("click", () => select(P.idx + 1, true));
  $("b-prev").addEventListener("click", () => select(P.idx - 1, true));

  // --- start -------------------------------------------------------------------------------------------

  function fromHash() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (h.get("round")) { if (!P.round || String(P.round.id) !== h.get("round")) openRound(h.get("round"), h.get("item")); return; }
    if (h.get("site")) quick({ code: h.get("site"), name: h.get("site"), province_name: "" });
  }

  Pages.start("insp_title", async (me) => {
    P.me = me;
    document.addEventListener("langchange", () => {
      renderButtons(); renderRound(); renderItems(); loadRounds(); loadHistory();
      if (P.events) Pages.liveStatus(P.events.mode);
      if (P.insp) onInspection(P.insp);
    });
    const provs = await Pages.provinces().catch(() => []);
    $("r-prov").replaceChildren(...(me.province_id ? [] : [el("option", { value: "" }, t("country"))]), ...provs.map((p) => el("option", { value: p.code }, p.name)));
    $("hist-export").replaceChildren(Pages.exportBar((fmt) => `/api/inspections/export?format=${fmt}&limit=1000`));
    P.events = new Pages.StaffEvents((kind, body) => {
      if (kind !== "inspection.changed") return;
      if (P.insp && body.id === P.insp.id) P.insp.poke(body);
      refreshLater();
    }, Pages.liveStatus);
    P.events.start();
    renderButtons();
    renderItems();
    await Promise.all([loadRounds(), loadHistory()]);
    fromHash();
    window.addEventListener("hashchange", fromHash);
  });

  window.addEventListener("beforeunload", () => {
    // End the inspection now: the site stops publishing without waiting for the lease.
    if (P.insp && P.insp.id) fetch(`/api/inspections/${P.insp.id}/end`, { method: "POST", headers: { Authorization: "Bearer " + DC.staffToken() }, keepalive: true }).catch(() => {});
  });
})();
