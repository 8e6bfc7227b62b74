// The situation-reports page: reporting completeness for one schema and period by
// province (expected, filed on time, late, missing), the drill-down to a province's
// communes with their latest report, a report's revision history, and the reporting
// rate over the last seven periods. The choice lives in the address
// (#schema=covid19&period=2026-11-25&province=12) so a view can be shared.
"use strict";
(() => {
  const { $, el } = DC;
  const S = { me: null, schemas: [], schema: null, period: "", province: null, provinceName: "", report: 0 };
  window.diemcauReports = S;

  function schemaOf(key) { return S.schemas.find((s) => s.key === key) || S.schemas[0]; }
  function label(x) { return LANG === "en" ? x.label_en : x.label_vi; }

  function hashState() {
    const h = new URLSearchParams(location.hash.slice(1));
    return { schema: h.get("schema"), period: h.get("period"), province: h.get("province") };
  }
  function writeHash() {
    const h = new URLSearchParams();
    h.set("schema", S.schema.key);
    h.set("period", S.period);
    if (S.province !== null) h.set("province", String(S.province));
    history.replaceState(null, "", "#" + h.toString());
  }

  /** Move a period by `n` periods (a day or a week). */
  function shift(period, n) {
    const d = new Date(period + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n * (S.schema.period === "weekly" ? 7 : 1));
    return d.toISOString().slice(0, 10);
  }

  function kpis(sum) {
    const kpi = (k, v, cls) => el("div", { class: "kpi " + (cls || ""), dataset: { kpi: k } }, el("b", {}, v), el("span", {}, t(k)));
    $("kpis").replaceChildren(kpi("k_expected", Pages.num(sum.expected)), kpi("k_filed", Pages.num(sum.filed), "ok"),
      kpi("k_late", Pages.num(sum.late), sum.late ? "warn" : ""), kpi("k_missing", Pages.num(sum.missing), sum.missing ? "bad" : ""),
      kpi("k_report_rate", Pages.rate(sum.rate)));
    $("deadline").textContent = t(sum.overdue ? "rep_deadline_past" : "rep_deadline", { at: Pages.dt(sum.deadline) });
  }

  async function load() {
    const q = { schema: S.schema.key, period: S.period };
    let data;
    try { data = await DC.api(Pages.url("/api/command/completeness", q)); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    S.period = data.summary.period;
    $("period").value = S.period;
    writeHash();
    kpis(data.summary);
    Pages.table($("prov-table"), data, {
      columns: ["province_name", "expected", "filed", "on_time", "late", "missing", "rate"],
      caption: t("rep_by_province"),
      rowData: (row, get) => ({ prov: get(row, "province_code"), pid: String(get(row, "province_id")) }),
      rowClass: (row, get) => (get(row, "province_id") === S.province ? "on" : null),
      cell: {
        province_name: (v, row, get) => el("button", { type: "button", class: "link", onclick: () => drill(get(row, "province_id"), v) }, v),
        missing: (v) => (v ? el("b", { class: "bad" }, Pages.num(v)) : "0"),
        late: (v) => (v ? el("span", { class: "warn" }, Pages.num(v)) : "0"),
        rate: (v) => Pages.bar(v, v >= 0.999 ? "" : "done"),
      },
    });
    $("prov-export").replaceChildren(Pages.exportBar((fmt) => Pages.url("/api/command/completeness", { ...q, format: fmt }), t("rep_by_province")));
    // The province in the address if it is listed (never one outside the caller's
    // reach: the server lists only those), else the only one an officer has.
    const pidAt = data.keys.indexOf("province_id"), nameAt = data.keys.indexOf("province_name");
    let open = S.province !== null ? data.rows.find((x) => x[pidAt] === S.province) : undefined;
    if (!open && data.rows.length === 1) open = data.rows[0];
    if (open) drill(open[pidAt], open[nameAt]);
    else { S.province = null; $("drill").hidden = true; writeHash(); }
    loadTrend();
  }

  function drill(pid, name) {
    S.province = pid; S.provinceName = name;
    writeHash();
    $("drill").hidden = false;
    $("drill-h").textContent = t("rep_sites_of", { p: name });
    $("prov-table").querySelectorAll("tbody tr").forEach((tr) => tr.classList.toggle("on", tr.dataset.pid === String(pid)));
    loadDrill();
  }

  function drillUrl(fmt) {
    return Pages.url("/api/command/completeness/sites", { schema: S.schema.key, period: S.period, province_id: S.province, state: $("drill-state").value, format: fmt });
  }

  async function loadDrill() {
    let data;
    try { data = await DC.api(drillUrl("json")); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    const st = { missing: "rep_st_missing", late: "rep_st_late", filed: "rep_st_filed" };
    Pages.table($("drill-table"), data, {
      columns: ["site_code", "site_name", "status", "report_period", "submitted_at", "revision"],
      caption: $("drill-h").textContent,
      empty: t("rep_none_" + $("drill-state").value),
      rowData: (row, get) => ({ site: get(row, "site_code"), status: get(row, "status") }),
      label: { report_period: t("rep_latest"), revision: t("col_revision") },
      cell: {
        status: (v) => el("span", { class: "badge rep-" + v }, t(st[v])),
        report_period: (v, row, get) => (v ? el("button", { type: "button", class: "link", onclick: () => openHistory(get(row, "report_id"), get(row, "site_name")) }, Pages.day(v))
          : el("span", { class: "muted" }, t("rep_never"))),
        submitted_at: (v) => Pages.dt(v),
      },
    });
    $("drill-export").replaceChildren(Pages.exportBar(drillUrl, $("drill-h").textContent));
  }

  async function openHistory(id, siteName) {
    S.report = id;
    let data;
    try { data = await DC.api(`/api/command/reports/${id}/revisions`); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    $("history").hidden = false;
    $("hist-h").textContent = t("rep_history", { site: siteName, p: Pages.day(data.report.period) });
    Pages.table($("hist-table"), data, {
      columns: ["revision", "changed_at", "changed_by", "source", "changes", "note", "values"],
      caption: $("hist-h").textContent,
      cell: { changed_at: (v) => Pages.dt(v), changes: (v) => v || el("span", { class: "muted" }, t("rep_first_filing")) },
    });
    $("hist-export").replaceChildren(Pages.exportBar((fmt) => `/api/command/reports/${id}/revisions?format=${fmt}`, $("hist-h").textContent));
    $("hist-h").focus();
  }

  async function loadTrend() {
    const u = (fmt) => Pages.url("/api/command/completeness/trend", { schema: S.schema.key, to: S.period, format: fmt });
    let data;
    try { data = await DC.api(u("json")); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    const periods = data.keys.slice(3);
    const cell = {};
    const lab = {};
    for (const p of periods) {
      lab[p] = Pages.day(p).slice(0, 5);
      cell[p] = (v) => el("span", { class: "heat", style: `background:${heat(v)}`, title: Pages.rate(v) }, Pages.rate(v));
    }
    Pages.table($("trend-table"), data, { columns: ["province_name", ...periods], label: lab, cell, caption: t("rep_trend") });
    $("trend-export").replaceChildren(Pages.exportBar(u, t("rep_trend")));
  }

  /** Red (nobody reported) to green (everybody did), light enough for dark text. */
  function heat(v) {
    const x = Math.max(0, Math.min(1, Number(v) || 0));
    return `hsl(${Math.round(120 * x)}, 62%, ${x >= 0.999 ? 82 : 88}%)`;
  }

  function pick(schemaKey, period) {
    S.schema = schemaOf(schemaKey);
    $("schema").value = S.schema.key;
    S.period = period || "";
    return load();
  }

  const refresh = Pages.throttle(() => { load(); if (S.province !== null && !$("drill").hidden) loadDrill(); }, 2000);

  Pages.start("rep_title", async (me) => {
    S.me = me;
    $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation");
    try { S.schemas = await DC.api("/api/command/schemas"); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    if (!S.schemas.length) return;
    const fill = () => $("schema").replaceChildren(...S.schemas.map((s) => el("option", { value: s.key }, label(s))));
    fill();
    const h = hashState();
    S.province = h.province ? Number(h.province) : null;
    $("schema").addEventListener("change", () => { S.province = null; $("drill").hidden = true; pick($("schema").value, S.period); });
    $("period").addEventListener("change", () => { if ($("period").value) pick(S.schema.key, $("period").value); });
    $("prev").addEventListener("click", () => pick(S.schema.key, shift(S.period, -1)));
    $("next").addEventListener("click", () => pick(S.schema.key, shift(S.period, 1)));
    $("today").addEventListener("click", () => pick(S.schema.key, ""));
    $("pick").addEventListener("submit", (e) => e.preventDefault());
    $("drill-state").addEventListener("change", loadDrill);
    $("hist-close").addEventListener("click", () => { $("history").hidden = true; });
    document.addEventListener("langchange", () => { fill(); $("schema").value = S.schema.key; $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation"); load(); });
    const events = new Pages.StaffEvents((kind) => { if (kind === "report.filed") refresh(); }, Pages.liveStatus);
    document.addEventListener("langchange", () => Pages.liveStatus(events.mode));
    setInterval(refresh, 30000);
    await pick(h.schema || S.schemas[0].key, h.period || "");
    events.start(); // after the first draw: its snapshot is not needed to be interactive
  });
})();
