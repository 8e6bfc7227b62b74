// The command dashboard: the canvas map of every site, the province tree with
// counts, national KPIs, the alerts list and the online inspections' figures by
// province, all kept live by StaffLive.
"use strict";
(() => {
  const { $, el, fmt, pct } = DC;
  const model = new SiteModel();
  let map = null;
  let me = null;
  let openProv = -1;
  const indicators = {}; // "schema|indicator" -> {labels, values: Map(site id -> {value, color}), range}

  document.getElementById("main").prepend(DC.loginCard());
  DC.header("dash_title");

  function stateName(i) { return model.available ? DC.STATES[model.state[i]] : "unknown"; }

  function renderKpis() {
    const tot = model.totals || { total: 0, online: 0, degraded: 0, offline: 0, unknown: 0 };
    const live = tot.online + tot.degraded;
    const items = [
      ["k_sites", fmt(tot.total), ""],
      ["k_online", fmt(tot.online), "ok"],
      ["k_degraded", fmt(tot.degraded), "warn"],
      ["k_offline", fmt(model.available ? tot.offline : 0), "bad"],
      ["k_rate", pct(live, tot.total), ""],
    ];
    const inMeeting = model.meta && model.meta.in_meeting !== undefined ? fmt(model.meta.in_meeting) : "–";
    items.push(["k_inmeeting", inMeeting, ""]);
    $("kpis").replaceChildren(...items.map(([k, v, cls]) =>
      el("div", { class: "kpi " + cls, dataset: { kpi: k } }, el("b", {}, v), el("span", {}, t(k)))));
  }

  function dot(state) { return el("span", { class: "dot " + state, "aria-hidden": "true" }); }

  function renderTree() {
    const ul = $("tree");
    const rows = [];
    model.provinces.forEach((p, pi) => {
      const live = p.online + p.degraded;
      const expanded = pi === openProv;
      const btn = el("button", {
        type: "button", class: "prow" + (map && map.focusProv === pi ? " on" : ""), "aria-expanded": String(expanded),
        onclick: () => { openProv = expanded ? -1 : pi; map.focusProvince(openProv); renderTree(); },
      },
      el("span", { class: "pname" }, p.name),
      el("span", { class: "pcount" }, el("b", {}, fmt(live)), " / " + fmt(p.total),
        p.offline && model.available ? el("span", { class: "badge bad", title: t("k_offline") }, fmt(p.offline)) : null),
      el("span", { class: "bar-mini", "aria-hidden": "true" }, el("i", { style: `width:${p.total ? (100 * live) / p.total : 0}%` })));
      const li = el("li", { role: "treeitem", "aria-expanded": String(expanded), dataset: { prov: p.code } }, btn);
      if (expanded) {
        const sites = [];
        for (let i = 0; i < model.n; i++) if (model.provIdx[i] === pi) sites.push(i);
        sites.sort((a, b) => model.names[a].localeCompare(model.names[b], "vi"));
        li.append(el("ul", { role: "group", class: "sites" }, sites.map((i) =>
          el("li", { role: "treeitem" }, el("button", { type: "button", class: "srow", onclick: () => map.select(i, true) },
            dot(stateName(i)), model.names[i])))));
      }
      rows.push(li);
    });
    ul.replaceChildren(...rows);
  }

  function legend() {
    const box = $("legend");
    const ind = indicators[$("colorby").value];
    if (ind && ind.values) {
      const label = (LANG === "en" ? ind.label_en : ind.label_vi) + (ind.period ? " · " + ind.period : "");
      const items = [el("b", {}, label)];
      if (ind.legendItems) items.push(...ind.legendItems.map((c) => el("span", { class: "leg" }, el("span", { class: "dot", style: "background:" + c.color }), LANG === "en" ? c.label_en : c.label_vi)));
      else if (ind.range) items.push(el("span", { class: "ramp" }), el("span", {}, fmt(ind.range.min) + " – " + fmt(ind.range.max)));
      items.push(el("span", { class: "leg" }, el("span", { class: "dot", style: "background:#b0b8c1" }), t("noreport")));
      box.replaceChildren(...items);
      return;
    }
    box.replaceChildren(...["online", "degraded", "offline", "unknown"].map((s) =>
      el("span", { class: "leg" }, dot(s), t("st_" + s), model.totals && model.available ? " (" + fmt(model.totals[s]) + ")" : "")));
  }

  /** A site's link figures in one line: loss, round trip, jitter, what it receives (and
   * what of the program, unless `noMedia`). */
  function linkLine(i, noMedia) {
    const l = model.link && model.link[i];
    if (!l) return "";
    const parts = [t("f_loss") + " " + fmt(Math.round(l.loss * 10) / 10) + " %", t("f_rtt") + " " + fmt(Math.round(l.rtt)) + " ms", t("f_jitter") + " " + fmt(Math.round(l.jitter)) + " ms"];
    if (l.kbps !== null) parts.push(t("f_recv") + " " + fmt(l.kbps) + " kbps");
    if (l.media && !noMedia) parts.push(t("media_" + l.media));
    return parts.join(" · ");
  }

  /** Why a site is degraded, in the page's language where the reason is a known one. */
  function reasonText(i) {
    const r = model.reason[i] || "";
    return r === "audio only" ? t("media_audio") : r === "reduced video" ? t("media_low") : r;
  }

  /** Degraded sites, the worst first (audio only, reduced video, then by loss). */
  function renderWeak() {
    const rank = { audio: 2, low: 1 };
    const out = [];
    for (let i = 0; i < model.n; i++) if (stateName(i) === "degraded") out.push(i);
    const score = (i) => { const l = model.link[i] || {}; return (rank[l.media] || 0) * 1000 + (l.loss || 0); };
    out.sort((a, b) => score(b) - score(a));
    $("weak-count").textContent = out.length ? "(" + fmt(out.length) + ")" : "";
    $("weak").replaceChildren(...(out.length ? out.slice(0, 12).map((i) => el("li", { dataset: { code: model.codes[i] } },
      el("button", { type: "button", class: "srow", onclick: () => map.select(i, true) }, dot("degraded"), el("b", {}, model.names[i])),
      el("span", { class: "muted weak-fig" }, " " + reasonText(i) + (linkLine(i) ? " — " + linkLine(i, true) : "")))) : [el("li", { class: "muted" }, "–")]));
  }

  function siteCard(i) {
    const card = $("sitecard");
    if (i < 0) { card.hidden = true; return; }
    const st = stateName(i);
    const since = model.since[i] ? DC.time(model.since[i]) : "";
    card.hidden = false;
    card.replaceChildren(
      el("button", { type: "button", class: "close", "aria-label": t("close"), onclick: () => map.select(-1) }, "×"),
      el("h3", {}, model.names[i]),
      el("p", { class: "muted" }, model.codes[i] + " · " + model.provinceName(i)),
      el("p", { class: "state-line", dataset: { state: st } }, dot(st), t("st_" + st), since ? " · " + t("since") + " " + since : "",
        st === "degraded" && model.reason[i] ? " · " + reasonText(i) : ""),
      st !== "offline" && linkLine(i) ? el("p", { class: "link-line muted" }, linkLine(i)) : null,
      el("div", { class: "actions" },
        el("a", { class: "button", href: "/chair#spot=" + encodeURIComponent(model.codes[i]), target: "diemcau-chair" }, t("spotcheck")),
        el("a", { class: "button secondary", href: "/inspection#site=" + encodeURIComponent(model.codes[i]), target: "diemcau-inspection" }, t("nav_insp"))));
  }

  function tip(i, x, y) {
    const box = $("tip");
    if (i < 0) { box.hidden = true; return; }
    const st = stateName(i);
    box.hidden = false;
    box.replaceChildren(el("b", {}, model.names[i]), el("br"), dot(st), t("st_" + st),
      st === "degraded" && linkLine(i) ? el("span", {}, el("br"), linkLine(i)) : "");
    box.style.left = Math.min(x + 14, map.c.clientWidth - 220) + "px";
    box.style.top = Math.max(0, y - 10) + "px";
  }

  function liveStatus(mode) {
    const e = $("live");
    e.dataset.state = mode;
    e.textContent = t("live_" + mode);
  }

  let alertsCache = [];

  async function loadAlerts() {
    try {
      const r = await DC.api("/api/command/alerts?active=true&limit=100");
      alertsCache = Array.isArray(r) ? r : [];
      renderAlerts(true);
    } catch (e) {
      alertsCache = null;
      renderAlerts(e.status === 404);
    }
  }

  function renderAlerts(available) {
    const ul = $("alerts");
    if (!alertsCache || !available) { ul.replaceChildren(el("li", { class: "muted" }, t(available ? "noalerts" : "alerts_na"))); return; }
    if (!alertsCache.length) { ul.replaceChildren(el("li", { class: "muted" }, t("noalerts"))); return; }
    ul.replaceChildren(...alertsCache.map((a) => {
      const site = a.site_id !== null && a.site_id !== undefined ? model.byId.get(a.site_id) : undefined;
      return el("li", { class: "alert " + (a.severity || ""), dataset: { alert: a.id } },
        el("span", { class: "badge " + (a.severity === "critical" || a.severity === "high" ? "bad" : "warn") }, t("sev_" + (a.severity || "info"))), " ",
        LANG === "en" ? a.message_en : a.message_vi, " ",
        el("span", { class: "muted" }, DC.time(a.raised_at)), " ",
        site !== undefined ? el("button", { type: "button", class: "secondary", onclick: () => map.select(site, true) }, t("show")) : null,
        a.acknowledged_at ? el("span", { class: "ok" }, " ✓ " + (a.acknowledged_by || "")) : el("button", { type: "button", class: "secondary", onclick: () => ackAlert(a.id) }, t("ack_alert")));
    }));
  }

  /** Inspection figures by province over 30 days: inspected, answered, not answered, verdicts. */
  async function loadInspections() {
    let r;
    try { r = await DC.api("/api/inspection/summary?days=30"); } catch (_e) { $("insp-figures").replaceChildren(el("p", { class: "muted" }, t("insp_d_none"))); return; }
    if (!r.total.inspections && !r.total.pass && !r.total.fail && !r.total.no_answer) { $("insp-figures").replaceChildren(el("p", { class: "muted" }, t("insp_d_none"))); return; }
    // [field, short heading (the column is narrow), its full meaning (the heading's title)]
    const cols = [["inspections", "insp_d_inspected", "insp_dt_inspected"], ["answered", "insp_d_answered", "insp_dt_answered"],
      ["not_answered", "insp_d_missed", "insp_dt_missed"], ["pass", "v_pass", "insp_dt_pass"], ["fail", "v_fail", "insp_dt_fail"]];
    // "Thành phố Hà Nội" -> "Hà Nội": the side column is narrow.
    const short = (name) => String(name).replace(/^(Thành phố|Tỉnh)\s+/, "");
    const row = (p, name, cls) => el("tr", { class: cls || "", dataset: { prov: p.province_id === null ? "" : p.province_id } }, el("th", { scope: "row", title: name }, short(name)),
      ...cols.map(([k]) => el("td", { class: "num" + (k === "not_answered" && p[k] ? " bad" : "") }, DC.fmt(p[k]))));
    const rows = r.provinces.map((p) => row(p, p.province_name));
    if (!me.province_id) rows.unshift(row(r.total, t("insp_d_total"), "total"));
    $("insp-figures").replaceChildren(el("table", { class: "grid insp-figures" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("insp_col_province")), ...cols.map(([, key, full]) => el("th", { scope: "col", class: "num", title: t(full) }, t(key))))),
      el("tbody", {}, rows)));
  }
  const inspectionsLater = (() => { let timer = 0; return () => { if (!timer) timer = setTimeout(() => { timer = 0; loadInspections(); }, 3000); }; })();

  async function ackAlert(id) {
    try { await DC.api(`/api/command/alerts/${id}/ack`, { method: "POST", body: {} }); await loadAlerts(); } catch (e) { DC.toast(e.message, "bad"); }
  }

  async function loadIndicators() {
    let schemas = [];
    try { schemas = await DC.api("/api/command/schemas"); } catch (_e) { return; } // colour by state only
    const sel = $("colorby");
    for (const sc of schemas) {
      const group = el("optgroup", { label: LANG === "en" ? sc.label_en : sc.label_vi });
      for (const ind of sc.indicators || []) {
        if (ind.type === "text") continue;
        const key = sc.key + "|" + ind.key;
        indicators[key] = { schema: sc.key, key: ind.key, label_vi: ind.label_vi, label_en: ind.label_en, values: null };
        group.append(el("option", { value: key }, LANG === "en" ? ind.label_en : ind.label_vi));
      }
      if (group.children.length) sel.append(group);
    }
  }

  const RAMP = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"];

  async function colorBy() {
    const key = $("colorby").value;
    const ind = indicators[key];
    if (!ind) { map.colorOf = null; relegend(); return; }
    try {
      const r = await DC.api(`/api/command/map?schema=${encodeURIComponent(ind.schema)}&indicator=${encodeURIComponent(ind.key)}`);
      ind.values = new Map(r.sites.map((x) => [x.site_id, x]));
      ind.range = r.range || null; ind.legendItems = r.legend || null; ind.period = r.period;
    } catch (e) { DC.toast(e.message, "bad"); $("colorby").value = "state"; map.colorOf = null; legend(); map.request(); return; }
    map.colorOf = (i) => {
      const x = ind.values.get(model.ids[i]);
      if (!x) return "#b0b8c1";
      if (x.color) return x.color;
      const v = Number(x.value);
      if (!ind.range || ind.range.max <= ind.range.min) return RAMP[2];
      const f = (v - ind.range.min) / (ind.range.max - ind.range.min);
      return RAMP[Math.min(4, Math.max(0, Math.floor(f * 5)))];
    };
    relegend();
  }

  /** A new legend may be taller or shorter: refit unless the user moved the map. */
  function relegend() {
    legend();
    if (!map.userMoved) map.focusProvince(map.focusProv); else map.request();
  }

  function find(q) {
    const hits = model.search(q, 20);
    $("find-list").replaceChildren(...hits.map((i) => el("option", { value: model.names[i] }, model.codes[i])));
    return hits;
  }

  let treeTimer = 0;
  model.onChange((changed) => {
    if (!map) return;
    map.request();
    renderKpis(); legend(); renderWeak();
    // The tree is DOM: refresh it at most twice a second, however many deltas come.
    if (!treeTimer) treeTimer = setTimeout(() => { treeTimer = 0; renderTree(); }, changed && changed.length ? 500 : 0);
    if (map.selected >= 0 && (!changed || changed.includes(map.selected))) siteCard(map.selected);
  });

  DC.requireStaff(async (who) => {
    me = who;
    $("scope").textContent = who.province_id ? t("scope_prov") : t("scope_nation");
    const cfg = await DC.api("/api/web/config").catch(() => ({ tile_url: "" }));
    map = new SiteMap($("map"), model, { tileUrl: cfg.tile_url, onHover: tip, onSelect: siteCard, legend: $("legend") });
    window.diemcauDashboard = { map, model }; // for tests and the browser console
    const live = new StaffLive(model, { onStatus: liveStatus, onEvent: (ev) => {
      if (/^alert/.test(ev.kind || "")) loadAlerts();
      if (ev.kind === "inspection.changed") inspectionsLater();
    } });
    await live.start();
    map.setData();
    renderTree(); renderKpis(); legend(); renderWeak();
    loadAlerts(); loadIndicators(); loadInspections();
    setInterval(loadAlerts, 15000);
    setInterval(loadInspections, 60000);
    $("colorby").addEventListener("change", colorBy);
    $("reset-view").addEventListener("click", () => { openProv = -1; map.focusProvince(-1); renderTree(); });
    $("find-q").addEventListener("input", (e) => find(e.target.value));
    $("find").addEventListener("submit", (e) => {
      e.preventDefault();
      const q = $("find-q").value;
      const exact = model.names.findIndex((n) => n === q);
      const hits = exact >= 0 ? [exact] : find(q);
      if (hits.length) { map.select(hits[0], true); $("map").focus(); }
      else DC.toast(t("noresult"));
    });
    document.addEventListener("langchange", () => {
      $("scope").textContent = who.province_id ? t("scope_prov") : t("scope_nation");
      renderAlerts(alertsCache !== null); loadInspections(); renderTree(); renderKpis(); legend(); renderWeak(); siteCard(map.selected); liveStatus(live.mode); });
  }).catch((e) => DC.toast(e.message, "bad"));
})();
