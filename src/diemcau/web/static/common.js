// Shared helpers for the staff pages and the site terminal: HTTP API calls with the
// session token, DOM building, the staff login card, small formatting helpers and
// the header (language toggle, who is signed in). Loaded after i18n.js.
"use strict";

const DC = (() => {
  const STAFF_KEY = "diemcau.token";

  function $(id) { return document.getElementById(id); }

  /** Build an element: el("button", {class: "x", onclick: fn}, "text", child). */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (v === true) e.setAttribute(k, "");
      else e.setAttribute(k, v);
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  /** Call the JSON API; throws ApiError with the server's message on failure. */
  async function api(path, opts = {}) {
    const headers = { Accept: "application/json" };
    const token = opts.token !== undefined ? opts.token : staffToken();
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method: opts.method || "GET", headers };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    if (opts.signal) init.signal = opts.signal;
    const res = await fetch(path, init);
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_e) { body = null; }
    if (!res.ok) {
      const err = (body && body.error) || {};
      throw new ApiError(res.status, err.code || "http_" + res.status, err.message || res.statusText);
    }
    return body;
  }

  function staffToken() {
    return localStorage.getItem(STAFF_KEY) || sessionStorage.getItem(STAFF_KEY) || "";
  }
  function setStaffToken(token) {
    if (token) { localStorage.setItem(STAFF_KEY, token); sessionStorage.setItem(STAFF_KEY, token); }
    else { localStorage.removeItem(STAFF_KEY); sessionStorage.removeItem(STAFF_KEY); }
  }

  /** Show the staff login card until a valid session exists, then call onReady(me). */
  async function requireStaff(onReady) {
    const box = $("login-box");
    const app = $("app");
    async function ready() {
      const me = await api("/api/auth/me");
      if (me.kind !== "staff") throw new ApiError(403, "staff_only", t("staffonly"));
      box.hidden = true; app.hidden = false;
      // Links and controls for other roles stay hidden (the server refuses them anyway).
      document.querySelectorAll("[data-roles]").forEach((n) => { n.hidden = !n.dataset.roles.split(" ").includes(me.role); });
      const who = $("who");
      const showWho = () => { if (who) who.textContent = me.name + " · " + t("role_" + me.role); };
      showWho();
      document.addEventListener("langchange", showWho);
      const out = $("logout");
      if (out) {
        out.hidden = false;
        // The server refuses the token from now on (every copy of it), then we forget it.
        out.onclick = async () => {
          try { await api("/api/auth/logout", { method: "POST" }); } catch (_e) { /* already ended */ }
          setStaffToken(""); location.reload();
        };
        passwordButton(out);
      }
      await onReady(me);
    }
    if (staffToken()) {
      try { await ready(); return; } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 401) throw e;
        setStaffToken("");
      }
    }
    app.hidden = true; box.hidden = false;
    const form = $("login");
    form.querySelector("input").focus();
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      try {
        const s = await api("/api/auth/login", { method: "POST", token: "", body: { username: f.get("username"), password: f.get("password") } });
        setStaffToken(s.token);
        $("login-error").textContent = "";
        await ready();
      } catch (e) { $("login-error").textContent = e.message; }
    };
  }

  /** "Change password" beside the sign-out button: a small dialog (old, new, repeat). */
  function passwordButton(out) {
    if ($("pw-open")) return;
    const err = el("p", { class: "error", role: "alert" });
    const form = el("form", { method: "dialog" },
      el("h2", { "data-i18n": "pw_title" }, t("pw_title")),
      el("label", {}, el("span", { "data-i18n": "pw_old" }, t("pw_old")), el("input", { name: "old", type: "password", autocomplete: "current-password", required: true })),
      el("label", {}, el("span", { "data-i18n": "pw_new" }, t("pw_new")), el("input", { name: "new", type: "password", autocomplete: "new-password", minlength: "8", required: true })),
      el("label", {}, el("span", { "data-i18n": "pw_repeat" }, t("pw_repeat")), el("input", { name: "again", type: "password", autocomplete: "new-password", minlength: "8", required: true })),
      err,
      el("p", { class: "row" },
        el("button", { type: "submit", "data-i18n": "pw_save" }, t("pw_save")),
        el("button", { type: "button", value: "cancel", "data-i18n": "cancel", onclick: () => dlg.close() }, t("cancel"))));
    const dlg = el("dialog", { id: "pw-dialog" }, form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      if (f.get("new") !== f.get("again")) { err.textContent = t("pw_mismatch"); return; }
      try {
        const s = await api("/api/auth/password", { method: "POST", body: { old_password: f.get("old"), new_password: f.get("new") } });
        setStaffToken(s.token);  // every earlier token, this one's included, is refused now
        dlg.close(); form.reset(); err.textContent = "";
        toast(t("pw_changed"), "ok");
      } catch (e) { err.textContent = e.message; }
    });
    const btn = el("button", { id: "pw-open", type: "button", "data-i18n": "pw_button", onclick: () => { err.textContent = ""; dlg.showModal(); } }, t("pw_button"));
    out.before(btn);
    document.body.append(dlg);
  }

  /**
   * The staff live stream (docs/protocol.md). The token goes in the first message,
   * never in the URL: URLs end up in proxy and server logs.
   */
  function staffStream() {
    const ws = new WebSocket(wsUrl("/api/presence/staff"));
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token: staffToken() })));
    return ws;
  }

  /** The login card markup shared by the staff pages. */
  function loginCard() {
    return el("section", { id: "login-box", class: "card login", hidden: true },
      el("h2", { "data-i18n": "login" }, t("login")),
      el("form", { id: "login" },
        el("label", {}, el("span", { "data-i18n": "username" }, t("username")), el("input", { name: "username", autocomplete: "username", required: true })),
        el("label", {}, el("span", { "data-i18n": "password" }, t("password")), el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
        el("button", { type: "submit", "data-i18n": "signin" }, t("signin")),
        el("p", { id: "login-error", class: "error", role: "alert" })));
  }

  function fmt(n) { return Number(n || 0).toLocaleString(LANG === "vi" ? "vi-VN" : "en-GB"); }
  function pct(a, b) { return b ? Math.round((100 * a) / b) + "%" : "–"; }
  function time(ts) {
    if (!ts) return "";
    const d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
    return d.toLocaleTimeString(LANG === "vi" ? "vi-VN" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  let toastTimer = 0;
  /** A short status line at the bottom of the screen (also read by screen readers). */
  function toast(msg, kind) {
    let box = $("toast");
    if (!box) { box = el("div", { id: "toast", role: "status", "aria-live": "polite" }); document.body.append(box); }
    box.textContent = msg; box.className = "show " + (kind || "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.className = ""; }, 4000);
  }

  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  // Presence states the pages draw; index = code in the dashboard's typed arrays.
  const STATES = ["unknown", "online", "degraded", "offline"];
  const STATE_COLORS = { unknown: "#8a94a0", online: "#1e8a3c", degraded: "#d98a00", offline: "#c62828" };

  function header(titleKey) {
    $("lang").addEventListener("click", toggleLang);
    document.title = t(titleKey) + " — diemcau";
    document.addEventListener("langchange", () => { document.title = t(titleKey) + " — diemcau"; });
  }

  return { $, el, api, ApiError, staffToken, setStaffToken, requireStaff, loginCard, fmt, pct, time, toast, wsUrl, staffStream, STATES, STATE_COLORS, header };
})();
