// The directives page: the filtered list, the compose form (attachments kept by the
// server, targets by area, saved group and site list with a live count of who will
// receive it), and the tracking view of one directive: delivered / acknowledged /
// completed / overdue per province, drill-down to the communes, remind, escalate.
// Views are chosen by the address: "" list, "#new" compose, "#d=<id>" tracking.
"use strict";
(() => {
  const { $, el } = DC;
  const S = { me: null, id: 0, province: null, provinces: [], files: [], clientId: "", previewSeq: 0 };
  window.diemcauDirectives = S; // for tests and the browser console

  const PRIO = { low: "prio_low", normal: "prio_normal", high: "prio_high", urgent: "prio_urgent" };
  function prio(p) { return el("span", { class: "badge prio-" + p }, t(PRIO[p] || "prio_normal")); }
  function status(s) { return el("span", { class: "badge st-" + s }, t("status_" + s)); }

  // --- the list ------------------------------------------------------------------------

  function listParams(fmt) {
    const f = new FormData($("filters"));
    return Pages.url("/api/command/directive-table", {
      status: f.get("status"), priority: f.get("priority"), q: f.get("q"), mine: f.get("mine") ? "true" : "", format: fmt,
    });
  }

  async function loadList() {
    let data;
    try { data = await DC.api(listParams("json")); } catch (e) { DC.toast(e.message, "bad"); return; }
    Pages.table($("list"), data, {
      columns: ["id", "issued_at", "title", "priority", "deadline", "status", "recipients", "ack_rate", "completion_rate", "overdue"],
      caption: t("dirv_list"),
      empty: t("dirv_none"),
      rowData: (row, get) => ({ directive: get(row, "id") }),
      cell: {
        issued_at: (v) => Pages.dt(v),
        deadline: (v) => (v ? Pages.dt(v) : "–"),
        title: (v, row, get) => el("a", { href: "#d=" + get(row, "id") }, v),
        priority: (v) => prio(v),
        status: (v) => status(v),
        ack_rate: (v) => Pages.bar(v),
        completion_rate: (v) => Pages.bar(v, "done"),
        overdue: (v) => (v ? el("b", { class: "bad" }, Pages.num(v)) : "0"),
      },
    });
  }

  // --- compose -------------------------------------------------------------------------

  function codes(text) { return String(text || "").split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean); }

  function target() {
    const f = $("compose");
    const provinces = [...$("provinces").querySelectorAll("input:checked")].map((i) => i.value);
    return {
      target: {
        country: Boolean(f.country.checked) && !S.me.province_id,
        provinces,
        sites: codes(f.sites.value),
        kinds: f.communes.checked ? ["commune"] : [],
      },
      groups: [...$("groups").querySelectorAll("input:checked")].map((i) => Number(i.value)),
    };
  }

  function emptyTarget(tg) { return !tg.target.country && !tg.target.provinces.length && !tg.target.sites.length && !tg.groups.length; }

  async function preview() {
    const box = $("preview");
    const tg = target();
    const seq = ++S.previewSeq;
    if (emptyTarget(tg)) { box.dataset.total = "0"; box.replaceChildren(el("span", { class: "muted" }, t("dirv_pick_target"))); return; }
    box.replaceChildren(el("span", { class: "muted" }, t("counting")));
    try {
      const r = await DC.api("/api/command/directives/preview", { method: "POST", body: tg });
      if (seq !== S.previewSeq) return; // a newer choice is being counted
      box.dataset.total = String(r.total);
      const top = r.provinces.slice().sort((a, b) => b.sites - a.sites).slice(0, 6);
      box.replaceChildren(
        el("p", { class: "count" }, el("b", { id: "preview-total" }, Pages.num(r.total)), " ", t("dirv_will_reach", { p: Pages.num(r.provinces.length) })),
        el("ul", { class: "plain small" }, top.map((p) => el("li", {}, p.name || t("national"), ": ", Pages.num(p.sites)))),
        ...(r.provinces.length > top.length ? [el("p", { class: "muted small" }, t("dirv_more_prov", { n: r.provinces.length - top.length }))] : []));
    } catch (e) {
      if (seq !== S.previewSeq) return;
      box.dataset.total = "0";
      box.replaceChildren(el("p", { class: "error" }, Pages.errText(e)));
    }
  }
  const schedulePreview = (() => { let timer = 0; return () => { clearTimeout(timer); timer = setTimeout(preview, 250); }; })();

  function renderProvinces() {
    const q = SiteModelFold($("prov-filter").value);
    const checked = new Set([...$("provinces").querySelectorAll("input:checked")].map((i) => i.value));
    $("provinces").replaceChildren(...S.provinces.filter((p) => !q || SiteModelFold(p.name).includes(q) || p.code.includes(q)).map((p) =>
      el("label", { class: "inline" }, el("input", { type: "checkbox", value: p.code, checked: checked.has(p.code) || S.provinces.length === 1 }), p.name)));
  }
  function SiteModelFold(s) { return String(s).replace(/[đĐ]/g, "d").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().trim(); }

  async function loadTargets() {
    try { S.provinces = await Pages.provinces(); } catch (_e) { S.provinces = []; }
    renderProvinces();
    let groups = [];
    try { groups = await DC.api("/api/site-groups"); } catch (_e) { groups = []; }
    $("groups").replaceChildren(...(groups.length ? groups.map((g) =>
      el("label", { class: "inline" }, el("input", { type: "checkbox", value: String(g.id) }), g.name, el("span", { class: "muted" }, " (" + Pages.num(g.site_count) + ")")))
      : [el("span", { class: "muted small" }, t("dirv_no_groups"))]));
  }

  function renderFiles() {
    $("attached").replaceChildren(...S.files.map((f, i) => el("li", {},
      el("a", { href: f.url, target: "_blank", rel: "noopener" }, f.name), " ", el("span", { class: "muted" }, "(" + Math.max(1, Math.round(f.size / 1024)) + " KB) "),
      el("button", { type: "button", class: "secondary small", "aria-label": t("remove") + " " + f.name, onclick: () => { S.files.splice(i, 1); renderFiles(); } }, t("remove")))));
  }

  async function upload(files) {
    $("compose-error").textContent = "";
    for (const file of files) {
      try {
        const res = await fetch(Pages.url("/api/command/files", { name: file.name }), {
          method: "POST", body: file, headers: { Authorization: "Bearer " + DC.staffToken(), "Content-Type": "application/octet-stream" },
        });
        const body = await res.json().catch(() => ({}));
        if (!res.ok) throw new DC.ApiError(res.status, (body.error && body.error.code) || "", (body.error && body.error.message) || res.statusText);
        S.files.push(body);
        renderFiles();
      } catch (e) { const msg = file.name + ": " + Pages.errText(e); DC.toast(msg, "bad"); $("compose-error").textContent = msg; }
    }
    $("files").value = "";
  }

  function resetCompose() {
    $("compose").reset();
    S.files = []; renderFiles();
    S.clientId = "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
    $("compose-error").textContent = "";
    renderProvinces();
    preview();
  }

  async function issue(ev) {
    ev.preventDefault();
    const f = $("compose");
    $("compose-error").textContent = "";
    for (const name of ["title", "body"]) f[name].removeAttribute("aria-invalid");
    const missing = ["title", "body"].find((n) => !f[n].value.trim());
    if (missing) { f[missing].setAttribute("aria-invalid", "true"); f[missing].focus(); $("compose-error").textContent = t("dirv_required"); return; }
    const tg = target();
    if (emptyTarget(tg)) { $("compose-error").textContent = t("dirv_pick_target"); return; }
    const directive = {
      title: f.title.value.trim(), body: f.body.value.trim(), priority: f.priority.value,
      attachments: S.files.map((x) => ({ name: x.name, url: x.url, mime: x.mime, size: x.size, sha256: x.sha256 })),
      target: tg.target, client_id: S.clientId,
    };
    if (f.deadline.value) directive.deadline = new Date(f.deadline.value).toISOString();
    $("issue").disabled = true;
    try {
      const d = await DC.api("/api/command/directives/compose", { method: "POST", body: { directive, groups: tg.groups } });
      DC.toast(t("dirv_issued", { n: Pages.num(d.recipients) }));
      location.hash = "#d=" + d.id;
    } catch (e) {
      $("compose-error").textContent = Pages.errText(e);
      const field = /^directive\.(\w+)/.exec(e.message) || /^(title|body|deadline)\b/.exec(e.message);
      if (field && f[field[1]]) { f[field[1]].setAttribute("aria-invalid", "true"); f[field[1]].focus(); }
    } finally { $("issue").disabled = false; }
  }

  async function findSites(q) {
    if (SiteModelFold(q).length < 2) { $("site-hits").replaceChildren(); return; }
    let r = [];
    try { r = await DC.api(Pages.url("/api/directory/search", { q, limit: 8 })); } catch (_e) { return; }
    // A unit's own site carries the unit's code, so every hit names a site code.
    const hits = (Array.isArray(r) ? r : []).filter((h) => h.level !== "country");
    $("site-hits").replaceChildren(...hits.map((h) => {
      const code = h.code;
      return el("li", {}, el("button", { type: "button", onclick: () => {
        const f = $("compose");
        const list = codes(f.sites.value);
        if (!list.includes(code)) f.sites.value = [...list, code].join(", ");
        schedulePreview();
      } }, "+ ", h.name, el("span", { class: "muted" }, " " + code + (h.province_name ? " · " + h.province_name : ""))));
    }));
  }

  // --- tracking ------------------------------------------------------------------------

  async function loadTrack() {
    const id = S.id;
    let d;
    try { d = await DC.api(`/api/command/directives/${id}`); } catch (e) { DC.toast(e.message, "bad"); $("track-h").textContent = e.message; return; }
    if (id !== S.id) return;
    $("track-h").replaceChildren(prio(d.priority), " ", d.title);
    const tg = d.target || {};
    const aim = [tg.country ? t("dirv_country") : "", (tg.provinces || []).length ? t("dirv_provinces") + ": " + tg.provinces.join(", ") : "",
      (tg.sites || []).length ? t("dirv_n_sites", { n: Pages.num(tg.sites.length) }) : ""].filter(Boolean).join(" · ");
    $("track-meta").replaceChildren(
      ...Pages.kv(t("col_id"), String(d.id)), ...Pages.kv(t("col_issued_at"), Pages.dt(d.issued_at)),
      ...Pages.kv(t("col_issued_by"), Pages.who(d.issued_by)), ...Pages.kv(t("col_deadline"), d.deadline ? Pages.dt(d.deadline) : "–"),
      ...Pages.kv(t("dirv_target"), aim || "–"), ...Pages.kv(t("dirv_reminders"), String(d.reminders)));
    $("track-body").textContent = d.body;
    $("track-files").replaceChildren(...(d.attachments || []).map((a) => el("li", {}, el("a", { href: a.url, target: "_blank", rel: "noopener" }, a.name), a.size ? el("span", { class: "muted" }, " (" + Math.max(1, Math.round(a.size / 1024)) + " KB)") : null)));
    let prov;
    try { prov = await DC.api(`/api/command/directives/${id}/provinces`); } catch (e) { DC.toast(e.message, "bad"); return; }
    const idx = Object.fromEntries(prov.keys.map((k, i) => [k, i]));
    const delivered = prov.rows.reduce((s, r) => s + r[idx.delivered], 0);
    const kpi = (k, v, cls) => el("div", { class: "kpi " + (cls || ""), dataset: { kpi: k } }, el("b", {}, Pages.num(v)), el("span", {}, t(k)));
    $("track-kpis").replaceChildren(kpi("k_recipients", d.recipients), kpi("k_delivered", delivered), kpi("k_acknowledged", d.acknowledged, "ok"),
      kpi("k_completed", d.completed, "ok"), kpi("k_overdue", d.overdue, d.overdue ? "bad" : ""));
    Pages.table($("prov-table"), prov, {
      columns: ["province_name", "recipients", "delivered", "acknowledged", "completed", "overdue", "ack_rate", "completion_rate"],
      caption: t("dirv_by_province"),
      rowData: (row, get) => ({ prov: get(row, "province_code") }),
      rowClass: (row, get) => (get(row, "province_id") === S.province ? "on" : null),
      cell: {
        province_name: (v, row, get) => el("button", { type: "button", class: "link", onclick: () => drill(get(row, "province_id"), v) }, v || t("national")),
        ack_rate: (v) => Pages.bar(v), completion_rate: (v) => Pages.bar(v, "done"),
        overdue: (v) => (v ? el("b", { class: "bad" }, Pages.num(v)) : "0"),
      },
    });
    $("track-export").replaceChildren(Pages.exportBar((fmt) => `/api/command/directives/${id}/provinces?format=${fmt}`, t("dirv_by_province")));
    if (prov.rows.length === 1 && S.province === null) drill(prov.rows[0][idx.province_id], prov.rows[0][idx.province_name]);
    else if (S.province !== null) loadDrill();
  }

  function drill(pid, name) {
    S.province = pid; S.provinceName = name;
    $("drill").hidden = false;
    $("drill-h").textContent = t("dirv_sites_of", { p: name || t("national") });
    loadDrill();
    $("prov-table").querySelectorAll("tbody tr").forEach((tr) => tr.classList.remove("on"));
  }

  function drillUrl(fmt) {
    return Pages.url(`/api/command/directives/${S.id}/sites`, { state: $("drill-state").value, province_id: S.province, format: fmt });
  }

  async function loadDrill() {
    if (S.province === null) return;
    let data;
    try { data = await DC.api(drillUrl("json")); } catch (e) { DC.toast(e.message, "bad"); return; }
    Pages.table($("drill-table"), data, {
      columns: ["site_code", "site_name", "delivered_at", "acknowledged_at", "completed_at", "completion_note", "reminded"],
      caption: $("drill-h").textContent,
      rowData: (row, get) => ({ site: get(row, "site_code") }),
      cell: {
        delivered_at: (v) => (v ? Pages.dt(v) : el("span", { class: "muted" }, t("not_yet"))),
        acknowledged_at: (v) => (v ? el("span", { class: "ok" }, "✓ " + Pages.dt(v)) : el("span", { class: "warn" }, t("not_yet"))),
        completed_at: (v) => (v ? el("span", { class: "ok" }, "✓ " + Pages.dt(v)) : el("span", { class: "muted" }, t("not_yet"))),
      },
    });
    $("drill-export").replaceChildren(Pages.exportBar(drillUrl, $("drill-h").textContent));
  }

  async function remind() {
    try {
      const r = await DC.api(`/api/command/directives/${S.id}/remind`, { method: "POST", body: { include_unfinished: $("remind-all").checked } });
      DC.toast(t("dirv_reminded", { n: Pages.num(r.reminded) }));
      loadTrack();
    } catch (e) { DC.toast(e.message, "bad"); }
  }

  async function escalate() {
    try {
      const r = await DC.api(`/api/command/directives/${S.id}/escalate`, { method: "POST", body: {} });
      DC.toast(t("dirv_escalated", { n: Pages.num(r.escalated.length) }));
    } catch (e) { DC.toast(e.message, "bad"); }
  }

  // --- routing and live updates ----------------------------------------------------------

  function route() {
    const h = location.hash;
    const m = /^#d=(\d+)$/.exec(h);
    $("view-list").hidden = Boolean(m) || h === "#new";
    $("view-compose").hidden = h !== "#new";
    $("view-track").hidden = !m;
    if (h === "#new") { resetCompose(); $("compose").title.focus(); return; }
    if (m) {
      if (Number(m[1]) !== S.id) { S.id = Number(m[1]); S.province = null; $("drill").hidden = true; }
      loadTrack();
      $("track-h").focus && $("track-h").setAttribute("tabindex", "-1");
      return;
    }
    S.id = 0;
    loadList();
  }

  const refreshTrack = Pages.throttle(() => { if (S.id) loadTrack(); }, 1000);
  const refreshList = Pages.throttle(() => { if (!S.id && location.hash !== "#new") loadList(); }, 2000);

  function onEvent(kind, body) {
    if (!/^directive\./.test(kind)) return;
    const id = body.directive_id || body.id;
    if (S.id && id === S.id) refreshTrack();
    refreshList();
  }

  Pages.start("dirv_title", async (me) => {
    S.me = me;
    $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation");
    $("filters").addEventListener("submit", (e) => { e.preventDefault(); loadList(); });
    $("filters").addEventListener("change", () => loadList());
    $("list-export").replaceChildren(Pages.exportBar(listParams, t("dirv_list")));
    $("compose").addEventListener("submit", issue);
    $("compose").addEventListener("change", (e) => { if (e.target.id !== "files") schedulePreview(); });
    $("compose").sites.addEventListener("input", schedulePreview);
    $("compose").addEventListener("input", (e) => e.target.removeAttribute("aria-invalid"));
    $("prov-filter").addEventListener("input", renderProvinces);
    $("files").addEventListener("change", (e) => upload([...e.target.files]));
    $("site-q").addEventListener("input", (e) => findSites(e.target.value));
    $("remind").addEventListener("click", remind);
    $("escalate").addEventListener("click", escalate);
    $("drill-state").addEventListener("change", loadDrill);
    window.addEventListener("hashchange", route);
    document.addEventListener("langchange", () => { $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation"); route(); });
    await loadTargets();
    const events = new Pages.StaffEvents(onEvent, Pages.liveStatus);
    document.addEventListener("langchange", () => Pages.liveStatus(events.mode));
    setInterval(() => { if (S.id) refreshTrack(); else refreshList(); }, 15000);
    route();
    events.start();
  });
})();
