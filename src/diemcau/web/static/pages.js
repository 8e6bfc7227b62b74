// Shared parts of the command-center pages (directives, reports, charts, alerts,
// administration): tables drawn from the server's {keys, rows} answers with
// sortable headers and CSV/XLSX export of the same rows, the staff event feed,
// the navigation by role, and small formatters. Loaded after common.js.
"use strict";

const Pages = (() => {
  const { $, el } = DC;
  const locale = () => (LANG === "vi" ? "vi-VN" : "en-GB");

  /** A date and time, short ("25/11/2026, 14:05"); "" for nothing. */
  function dt(value) {
    if (!value) return "";
    const d = new Date(value);
    return d.toLocaleString(locale(), { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }
  /** A calendar day "2026-11-25" as the reader writes it. */
  function day(value) {
    if (!value) return "";
    const [y, m, d] = String(value).split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(locale(), { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" });
  }
  /** "staff:lan" / "site:00004" as a person reads it: the name. */
  function who(label) { return String(label || "").replace(/^(staff|site):/, ""); }
  function rate(x) { return x === null || x === undefined ? "–" : Math.round(Number(x) * 100) + "%"; }
  function num(x) { return x === null || x === undefined || x === "" ? "–" : Number(x).toLocaleString(locale(), { maximumFractionDigits: 2 }); }

  /** A small bar showing a share (0..1), for rate columns. */
  function bar(x, cls) {
    const v = Math.max(0, Math.min(1, Number(x) || 0));
    return el("span", { class: "rate" }, el("span", { class: "bar-mini " + (cls || ""), "aria-hidden": "true" }, el("i", { style: `width:${Math.round(v * 100)}%` })), rate(v));
  }

  /**
   * Draw a server table ({keys, rows}) into `box`.
   * opts.columns: keys to show (default all); opts.cell[key](value, row) -> node or text;
   * opts.label[key]: a header text (default t("col_" + key)); opts.rowClass(row);
   * opts.empty: the text when there is no row. Headers are buttons that sort.
   */
  function table(box, data, opts) {
    const o = opts || {};
    const idx = {};
    data.keys.forEach((k, i) => { idx[k] = i; });
    const cols = (o.columns || data.keys).filter((k) => k in idx || (o.cell && o.cell[k]));
    const get = (row, k) => row[idx[k]];
    const sort = box._sort || null;
    let rows = data.rows.slice();
    if (sort) {
      const i = idx[sort.key];
      rows.sort((a, b) => {
        const x = a[i], y = b[i];
        if (x === y) return 0;
        if (x === null || x === undefined || x === "") return 1;
        if (y === null || y === undefined || y === "") return -1;
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "vi");
        return sort.dir * c;
      });
    }
    const numeric = (k) => data.rows.some((r) => typeof get(r, k) === "number");
    const head = el("tr", {}, cols.map((k) => {
      const label = o.label && k in o.label ? o.label[k] : t("col_" + k);
      const on = sort && sort.key === k;
      return el("th", { scope: "col", class: numeric(k) ? "num" : "", "aria-sort": on ? (sort.dir > 0 ? "ascending" : "descending") : null },
        k in idx ? el("button", { type: "button", class: "sort", onclick: () => { box._sort = { key: k, dir: on ? -sort.dir : 1 }; table(box, data, o); } }, label, on ? (sort.dir > 0 ? " ▲" : " ▼") : "") : label);
    }));
    const body = rows.map((row) => el("tr", { class: o.rowClass ? o.rowClass(row, get) : null, dataset: o.rowData ? o.rowData(row, get) : {} },
      cols.map((k) => {
        const v = get(row, k);
        const shown = o.cell && o.cell[k] ? o.cell[k](v, row, get) : (v === null || v === undefined ? "" : typeof v === "number" ? num(v) : String(v));
        return el("td", { class: numeric(k) ? "num" : "" }, shown);
      })));
    const tbl = el("table", { class: "grid" }, o.caption ? el("caption", { class: "sr-only" }, o.caption) : null, el("thead", {}, head),
      el("tbody", {}, body.length ? body : el("tr", {}, el("td", { colspan: String(cols.length), class: "muted" }, o.empty || t("norows")))));
    box.replaceChildren(tbl);
    return { get };
  }

  /** Download `path` (an API URL answering a file) with the staff token. */
  async function download(path) {
    const res = await fetch(path, { headers: { Authorization: "Bearer " + DC.staffToken() } });
    if (!res.ok) {
      let msg = res.statusText;
      try { msg = (await res.json()).error.message; } catch (_e) { /* not JSON */ }
      throw new Error(msg);
    }
    const disp = res.headers.get("Content-Disposition") || "";
    const m = /filename="([^"]+)"/.exec(disp);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: m ? m[1] : "diemcau" });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  /** CSV and XLSX buttons exporting what `pathOf(format)` answers. */
  function exportBar(pathOf, label) {
    const go = (fmt) => async () => { try { await download(pathOf(fmt)); } catch (e) { DC.toast(e.message, "bad"); } };
    return el("span", { class: "exports", role: "group", "aria-label": label || t("export") },
      el("button", { type: "button", class: "secondary small", onclick: go("csv"), "data-i18n": "export_csv", dataset: { export: "csv" } }, t("export_csv")),
      el("button", { type: "button", class: "secondary small", onclick: go("xlsx"), "data-i18n": "export_xlsx", dataset: { export: "xlsx" } }, t("export_xlsx")));
  }

  /** Append `params` (skipping empty values) to `path`. */
  function url(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === "" || v === false) continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x)); else q.set(k, String(v));
    }
    const s = q.toString();
    return s ? path + (path.includes("?") ? "&" : "?") + s : path;
  }

  /**
   * Staff events (docs/protocol.md, staff live stream) without the site rows:
   * calls onEvent(kind, body) for each; onStatus("live" | "reconnecting" | "polling").
   * Pages also refresh on a timer, so a missing stream only makes them slower.
   */
  class StaffEvents {
    constructor(onEvent, onStatus) {
      this.onEvent = onEvent; this.onStatus = onStatus || (() => {});
      this.failures = 0; this.ws = null; this.mode = "connecting";
    }
    status(m) { this.mode = m; this.onStatus(m); }
    async start() {
      try { await DC.api("/api/presence/info"); } catch (_e) { this.status("polling"); return; }
      let got = false;
      const ws = DC.staffStream();
      this.ws = ws;
      ws.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_e) { return; }
        if (msg.type === "snapshot") { got = true; this.failures = 0; this.status("live"); }
        for (const e of msg.events || []) { try { this.onEvent(e.kind, e.body || {}); } catch (err) { console.error(err); } }
      };
      ws.onclose = (ev) => {
        this.ws = null;
        if (ev.code === 4001 || ev.code === 1008) { this.status("signedout"); return; }
        if (!got) this.failures++;
        if (this.failures >= 3) { this.status("polling"); return; }
        this.status("reconnecting");
        setTimeout(() => this.start(), Math.min(5000, 500 * (this.failures + 1)));
      };
    }
  }

  function liveStatus(mode) {
    const e = $("live");
    if (!e) return;
    e.dataset.state = mode;
    e.textContent = t("live_" + mode);
  }

  /** Hide what the signed-in role may not use (the server refuses it anyway). */
  function byRole(me) {
    document.querySelectorAll("[data-roles]").forEach((n) => {
      n.hidden = !n.dataset.roles.split(" ").includes(me.role);
    });
    document.querySelectorAll("[data-central]").forEach((n) => { n.hidden = Boolean(me.province_id); });
  }

  /** The provinces the caller may pick: all of them, or an officer's own. */
  async function provinces() {
    let top = await DC.api("/api/directory/tree");
    if (top.length === 1 && top[0].level !== "province" && top[0].child_count) top = await DC.api(url("/api/directory/tree", { parent: top[0].code }));
    return top.filter((u) => u.level === "province");
  }

  /** A "label: value" row for a definition list. */
  function kv(label, value) { return [el("dt", {}, label), el("dd", {}, value)]; }

  /**
   * An API error as the reader's language says it: a known error code has its own
   * text (the server's message, in English, follows for the details).
   */
  function errText(e) {
    const key = "err_" + (e && e.code);
    const own = I18N[LANG] && I18N[LANG][key];
    if (!own) return e.message;
    return LANG === "en" ? e.message : own + " (" + e.message + ")";
  }

  /** Calls fn at most once per `ms`, the last call winning. */
  function throttle(fn, ms) {
    let timer = 0, again = false;
    return function run() {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(() => { timer = 0; if (again) { again = false; run(); } }, ms);
    };
  }

  /** A page of the command center: header, login, role-dependent nav, then onReady(me). */
  function start(titleKey, onReady) {
    $("main").prepend(DC.loginCard());
    DC.header(titleKey);
    DC.requireStaff(async (me) => { byRole(me); await onReady(me); }).catch((e) => DC.toast(e.message, "bad"));
  }

  return { errText, who, dt, day, rate, num, bar, table, download, exportBar, url, StaffEvents, liveStatus, byRole, provinces, kv, throttle, start };
})();
