// The directory page: staff login, national counts, the unit tree and search.
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("diemcau.token") || "";
let path = []; // [{code, name}] from the country down

async function api(url, opts = {}) {
  const headers = Object.assign({ "Content-Type": "application/json" }, opts.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(url, Object.assign({}, opts, { headers }));
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) { logout(); }
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => {
    if (k === "onclick") e.addEventListener("click", v); else e.setAttribute(k, v);
  });
  kids.flat().forEach((k) => e.append(k instanceof Node ? k : document.createTextNode(String(k))));
  return e;
}

function logout() {
  token = ""; sessionStorage.removeItem("diemcau.token"); show();
}

async function show() {
  const logged = Boolean(token);
  $("login-box").hidden = logged; $("dir").hidden = !logged; $("logout").hidden = !logged;
  if (!logged) { $("who").textContent = ""; return; }
  const me = await api("/api/auth/me");
  $("who").textContent = me.name + " (" + me.role + ")";
  document.querySelectorAll("[data-roles]").forEach((n) => { n.hidden = !n.dataset.roles.split(" ").includes(me.role); });
  await Promise.all([kpis(), loadLevel()]);
}

async function kpis() {
  const s = await api("/api/directory/stats");
  $("kpis").replaceChildren(...["province", "district", "commune", "sites"].filter((k) => k in s).map((k) =>
    el("div", { class: "kpi" }, el("b", {}, Number(s[k]).toLocaleString(LANG)), el("span", {}, t(k)))));
}

function nodeName(n) { return n.name || n.code; }

async function loadLevel() {
  const parent = path.length ? path[path.length - 1].code : "";
  const items = await api("/api/directory/tree" + (parent ? "?parent=" + encodeURIComponent(parent) : ""));
  const list = Array.isArray(items) ? items : [];
  if (!path.length && list.length === 1 && list[0].child_count) {
    path.push({ code: list[0].code, name: nodeName(list[0]), root: true });
    return loadLevel();
  }
  $("crumbs").replaceChildren(
    el("a", { href: "#", onclick: (e) => { e.preventDefault(); path = path.filter((p) => p.root); loadLevel(); } }, t("country")),
    ...path.filter((p) => !p.root).map((p) => [p, path.indexOf(p)]).map(([p, i]) => [" › ", el("a", { href: "#", onclick: (e) => { e.preventDefault(); path = path.slice(0, i + 1); loadLevel(); } }, p.name)]).flat());
  $("rows").replaceChildren(...list.map((u) => {
    const childCount = u.child_count ?? 0;
    const name = childCount
      ? el("a", { href: "#", onclick: (e) => { e.preventDefault(); path.push({ code: u.code, name: nodeName(u) }); loadLevel(); } }, nodeName(u))
      : nodeName(u);
    return el("tr", {}, el("td", {}, name), el("td", {}, u.unit_type || u.level || ""),
      el("td", { class: "num" }, Number(u.site_total ?? 0).toLocaleString(LANG)),
      el("td", { class: "num" }, Number(childCount).toLocaleString(LANG)));
  }));
}

async function search(q) {
  const r = await api("/api/directory/search?q=" + encodeURIComponent(q));
  const hits = Array.isArray(r) ? r : (r.results || []);
  $("results").replaceChildren(hits.length
    ? el("ul", {}, ...hits.map((h) => el("li", {}, el("b", {}, h.name), " ", el("span", { class: "muted" }, [h.type === "site" ? t("sites") : (h.unit_type || h.level || ""), h.parent_name || "", h.province_name || ""].filter(Boolean).join(" · ")))))
    : el("p", { class: "muted" }, t("noresult")));
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    const s = await api("/api/auth/login", { method: "POST", body: JSON.stringify({ username: f.get("username"), password: f.get("password") }) });
    token = s.token; sessionStorage.setItem("diemcau.token", token); $("login-error").textContent = ""; show();
  } catch (err) { $("login-error").textContent = err.message; }
});
$("search-form").addEventListener("submit", (e) => { e.preventDefault(); const q = $("q").value.trim(); if (q) search(q); });
$("logout").addEventListener("click", async () => {
  // The server refuses this token from now on, then the page forgets it.
  try { await fetch("/api/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + token } }); } catch (_e) { /* offline */ }
  logout();
});
$("lang").addEventListener("click", toggleLang);
document.addEventListener("langchange", () => { if (token) show(); });
applyI18n();
show().catch((err) => console.error(err));
