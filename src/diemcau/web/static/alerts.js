// The alerts page: active and past alerts with filters (state, kind, severity,
// province, unacknowledged, words), what triggered each (with a link to the
// report, directive or meeting behind it), and acknowledgement with a note. Kept
// live by the staff stream's alert.* events.
"use strict";
(() => {
  const { $, el } = DC;
  const S = { me: null, details: {}, acking: 0, provinces: [] };
  window.diemcauAlerts = S;
  const KINDS = ["indicator_threshold", "indicator_rising", "report_overdue", "directive_overdue", "directive_escalated", "site_offline_in_meeting", "media_node_degraded"];

  function params(fmt) {
    const f = new FormData($("filters"));
    return Pages.url("/api/command/alert-table", {
      state: f.get("state"), kind: f.get("kind"), severity: f.get("severity"), province_id: f.get("province_id"),
      unacknowledged: f.get("unacknowledged") ? "true" : "", q: f.get("q"), format: fmt,
    });
  }

  function fillSelects() {
    const kind = $("kind").value;
    $("kind").replaceChildren(el("option", { value: "" }, t("all")), ...KINDS.map((k) => el("option", { value: k }, t("kind_" + k))));
    $("kind").value = kind;
    const prov = $("province").value;
    $("province").replaceChildren(el("option", { value: "" }, t("all")), ...S.provinces.map((p) => el("option", { value: String(p.id) }, p.name)));
    $("province").value = prov;
  }

  /** What raised the alert, in words, with a link to what it is about. */
  function trigger(kind, d, row, get) {
    const parts = [];
    const link = (href, text) => el("a", { href }, text);
    const reportsLink = (schema, period) => link(Pages.url("/reports", {}) + "#" + new URLSearchParams({ schema, period }).toString(), t("alr_see_reports"));
    if (kind === "indicator_threshold") {
      parts.push(t("alr_t_threshold", { ind: d.indicator, v: Pages.num(d.value), max: Pages.num(d.threshold), p: Pages.day(d.period) }), " ", reportsLink(d.schema, d.period));
    } else if (kind === "indicator_rising") {
      parts.push(t("alr_t_rising", { ind: d.indicator, prev: Pages.num(d.previous), v: Pages.num(d.value), pct: Pages.num(d.rise_pct), p: Pages.day(d.period) }), " ", reportsLink(d.schema, d.period));
    } else if (kind === "report_overdue") {
      parts.push(t("alr_t_overdue", { n: Pages.num(d.missing), of: Pages.num(d.expected), p: Pages.day(d.period) }), " ", reportsLink(d.schema, d.period));
    } else if (kind === "directive_overdue" || kind === "directive_escalated") {
      const done = d.completed !== undefined ? d.completed : 0;
      parts.push(t("alr_t_directive", { done: Pages.num(done), of: Pages.num(d.recipients) }), " ", link("/directives#d=" + d.directive_id, t("alr_see_directive", { id: d.directive_id })));
    } else if (kind === "site_offline_in_meeting") {
      parts.push(t("alr_t_offline", { site: get(row, "site_name") || d.site_code || "" }), " ", link("/chair#spot=" + encodeURIComponent(d.site_code || get(row, "site_code")), t("spotcheck")));
    } else {
      parts.push(String(get(row, "trigger") || ""));
    }
    return el("span", { class: "trigger" }, parts);
  }

  async function load() {
    let data;
    try { data = await DC.api(params("json")); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    S.details = data.details || {};
    const idx = Object.fromEntries(data.keys.map((k, i) => [k, i]));
    const count = (sev) => data.rows.filter((r) => r[idx.severity] === sev).length;
    const unacked = data.rows.filter((r) => !r[idx.acknowledged_at]).length;
    const kpi = (k, v, cls) => el("div", { class: "kpi " + (cls || ""), dataset: { kpi: k } }, el("b", {}, Pages.num(v)), el("span", {}, t(k)));
    $("counts").replaceChildren(kpi("k_alerts", data.rows.length), kpi("k_critical", count("critical"), "bad"),
      kpi("k_warning", count("warning"), "warn"), kpi("k_unacked", unacked, unacked ? "bad" : ""));
    Pages.table($("list"), data, {
      columns: ["severity", "raised_at", "kind", "message", "province_name", "trigger", "cleared_at", "acknowledged_at"],
      caption: t("alr_title"),
      empty: t("noalerts"),
      rowData: (row, get) => ({ alert: String(get(row, "id")), kind: get(row, "kind") }),
      rowClass: (row, get) => (get(row, "cleared_at") ? "cleared" : null),
      label: { message: t("alr_message"), trigger: t("alr_trigger"), cleared_at: t("alr_state"), acknowledged_at: t("alr_acked"), kind: t("alr_kind"), severity: t("alr_severity"), raised_at: t("alr_raised") },
      cell: {
        severity: (v) => el("span", { class: "badge sev-" + v }, t("sev_" + v)),
        raised_at: (v) => Pages.dt(v),
        kind: (v) => t("kind_" + v),
        message: (v, row, get) => (LANG === "en" ? (S.details[get(row, "id")] || {}).message_en || v : v),
        trigger: (v, row, get) => trigger(get(row, "kind"), S.details[get(row, "id")] || {}, row, get),
        cleared_at: (v) => (v ? el("span", { class: "muted" }, t("alr_cleared_at", { at: Pages.dt(v) })) : el("b", { class: "bad" }, t("alr_active"))),
        acknowledged_at: (v, row, get) => (v
          ? el("span", { class: "ok" }, "✓ " + Pages.who(get(row, "acknowledged_by")) + " · " + Pages.dt(v), get(row, "acknowledge_note") ? el("br") : null, get(row, "acknowledge_note") ? el("i", {}, get(row, "acknowledge_note")) : null)
          // A province officer does not acknowledge national alerts (the server refuses it).
          : (S.me && S.me.province_id && !get(row, "province_name")
            ? el("span", { class: "muted" }, t("ack_national"))
            : el("button", { type: "button", class: "small", onclick: () => openAck(get(row, "id"), get(row, "message")) }, t("ack_alert")))),
      },
    });
  }

  function openAck(id, message) {
    S.acking = id;
    $("ack-what").textContent = message;
    $("ack-note").value = "";
    $("ack-error").textContent = "";
    $("ack-dialog").showModal();
    $("ack-note").focus();
  }

  async function ack(ev) {
    if (ev.submitter && ev.submitter.value === "cancel") return;
    ev.preventDefault();
    try {
      await DC.api(`/api/command/alerts/${S.acking}/ack`, { method: "POST", body: { note: $("ack-note").value } });
      $("ack-dialog").close();
      DC.toast(t("alr_acked_done"));
      load();
    } catch (e) { $("ack-error").textContent = Pages.errText(e); }
  }

  const refresh = Pages.throttle(load, 1000);

  Pages.start("alr_title", async (me) => {
    S.me = me;
    $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation");
    if (!me.province_id) { try { S.provinces = await Pages.provinces(); } catch (_e) { S.provinces = []; } }
    fillSelects();
    $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    $("filters").addEventListener("change", load);
    $("export").replaceChildren(Pages.exportBar(params, t("alr_title")));
    $("ack-form").addEventListener("submit", ack);
    document.addEventListener("langchange", () => { $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation"); fillSelects(); load(); });
    const events = new Pages.StaffEvents((kind) => { if (/^alert\./.test(kind)) refresh(); }, Pages.liveStatus);
    document.addEventListener("langchange", () => Pages.liveStatus(events.mode));
    setInterval(refresh, 30000);
    await load();
    events.start();
  });
})();
