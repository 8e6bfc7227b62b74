// The administration page (admins): staff accounts (create, change role and
// province, reset the password, disable), site credentials (list by state, issue a
// new one and print the site's sheet with its QR code, revoke), saved site groups,
// and indicator schemas (view; add one from a JSON file, problems shown by field).
// Tabs are chosen by the address (#staff, #sites, #groups, #schemas) and the arrow keys.
"use strict";
(() => {
  const { $, el } = DC;
  const S = { me: null, provinces: [], groups: [], editing: 0, dialogOk: null, qrUrl: "" };
  window.diemcauAdmin = S;
  const ROLES = ["admin", "chair", "operator", "province_officer"];
  const TABS = ["staff", "sites", "groups", "schemas"];

  function label(x) { return LANG === "en" ? x.label_en : x.label_vi; }

  /** A random password of 14 letters and digits (no look-alikes). */
  function newPassword() {
    const abc = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    const bytes = crypto.getRandomValues(new Uint8Array(14));
    return [...bytes].map((b) => abc[b % abc.length]).join("");
  }

  function roleOptions(sel, value) {
    sel.replaceChildren(...ROLES.map((r) => el("option", { value: r }, t("role_" + r))));
    sel.value = value || "operator";
  }
  function provOptions(sel, value) {
    sel.replaceChildren(el("option", { value: "" }, "–"), ...S.provinces.map((p) => el("option", { value: p.code }, p.name)));
    sel.value = value || "";
  }
  /** Show the province field only for a province officer. */
  function bindRole(form) {
    const sync = () => { form.querySelector(".prov-field").hidden = form.querySelector(".role-select").value !== "province_officer"; };
    form.querySelector(".role-select").addEventListener("change", sync);
    sync();
  }

  // --- tabs ---------------------------------------------------------------------------------

  function tab(name) {
    for (const n of TABS) {
      const on = n === name;
      $("tab-" + n).setAttribute("aria-selected", String(on));
      $("tab-" + n).tabIndex = on ? 0 : -1;
      $("pane-" + n).hidden = !on;
    }
    history.replaceState(null, "", "#" + name);
    ({ staff: loadStaff, sites: loadSites, groups: loadGroups, schemas: loadSchemas })[name]();
  }

  // --- dialog -------------------------------------------------------------------------------

  function dialog(title, body, onOk) {
    $("dlg-h").textContent = title;
    $("dlg-body").replaceChildren(...body);
    $("dlg-error").textContent = "";
    S.dialogOk = onOk;
    $("dlg").showModal();
    const first = $("dlg-body").querySelector("input, select, textarea");
    (first || $("dlg-ok")).focus();
  }

  // --- staff --------------------------------------------------------------------------------

  async function loadStaff() {
    let data;
    try { data = await DC.api("/api/admin/staff"); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    Pages.table($("staff-table"), data, {
      columns: ["username", "display_name", "role", "province_code", "disabled", "created_at", "actions"],
      caption: t("adm_staff"),
      rowData: (row, get) => ({ user: get(row, "username") }),
      rowClass: (row, get) => (get(row, "disabled") ? "cleared" : null),
      label: { username: t("username"), display_name: t("adm_display"), role: t("adm_role"), province_code: t("dirv_provinces"), disabled: t("alr_state"), created_at: t("adm_created"), actions: "" },
      cell: {
        role: (v) => t("role_" + v),
        province_code: (v) => { const p = S.provinces.find((x) => x.code === v); return p ? p.name : v || "–"; },
        disabled: (v) => (v ? el("span", { class: "badge bad" }, t("adm_disabled")) : el("span", { class: "badge ok" }, t("adm_enabled"))),
        created_at: (v) => Pages.dt(v),
        actions: (v, row, get) => {
          const user = get(row, "username"), off = get(row, "disabled");
          return el("span", { class: "actions" },
            el("button", { type: "button", class: "secondary small", onclick: () => editStaff(row, get) }, t("adm_edit")),
            el("button", { type: "button", class: "secondary small", onclick: () => resetPassword(user) }, t("adm_reset")),
            el("button", { type: "button", class: "secondary small", dataset: { toggle: user }, onclick: () => setDisabled(user, !off) }, t(off ? "adm_enable" : "adm_disable")));
        },
      },
    });
    $("staff-export").replaceChildren(Pages.exportBar((f) => "/api/admin/staff?format=" + f, t("adm_staff")));
  }

  async function createStaff(ev) {
    ev.preventDefault();
    const f = $("staff-new");
    const body = { username: f.username.value.trim(), password: f.password.value, role: f.role.value, display_name: f.display_name.value.trim() };
    if (body.role === "province_officer") body.province_code = f.province_code.value;
    try {
      await DC.api("/api/admin/staff", { method: "POST", body });
      DC.toast(t("adm_created_ok", { u: body.username }));
      f.reset(); roleOptions(f.role); bindRole(f); $("staff-error").textContent = "";
      loadStaff();
    } catch (e) { $("staff-error").textContent = Pages.errText(e); }
  }

  function editStaff(row, get) {
    const role = el("select", { name: "role", class: "role-select" });
    roleOptions(role, get(row, "role"));
    const prov = el("select", { name: "province_code" });
    provOptions(prov, get(row, "province_code"));
    const name = el("input", { name: "display_name", value: get(row, "display_name") || "" });
    const box = el("div", {},
      el("label", {}, t("adm_display"), " ", name),
      el("label", {}, t("adm_role"), " ", role),
      el("label", { class: "prov-field" }, t("dirv_provinces"), " ", prov));
    bindRole(box);
    dialog(t("adm_edit_h", { u: get(row, "username") }), [box], async () => {
      const body = { role: role.value, display_name: name.value, province_code: role.value === "province_officer" ? prov.value : "" };
      await DC.api("/api/admin/staff/" + encodeURIComponent(get(row, "username")), { method: "PATCH", body });
      loadStaff();
    });
  }

  function resetPassword(user) {
    const pw = el("input", { name: "password", value: newPassword(), class: "mono", autocomplete: "new-password" });
    dialog(t("adm_reset_h", { u: user }), [el("label", {}, t("adm_new_password"), " ", pw), el("p", { class: "muted small" }, t("adm_reset_note"))], async () => {
      await DC.api(`/api/admin/staff/${encodeURIComponent(user)}/password`, { method: "POST", body: { password: pw.value } });
      DC.toast(t("adm_reset_ok", { u: user }));
    });
  }

  async function setDisabled(user, disabled) {
    try {
      await DC.api("/api/admin/staff/" + encodeURIComponent(user), { method: "PATCH", body: { disabled } });
      loadStaff();
    } catch (e) { DC.toast(Pages.errText(e), "bad"); }
  }

  // --- site credentials -----------------------------------------------------------------------

  function sitesUrl(fmt) {
    const f = new FormData($("site-filters"));
    return Pages.url("/api/admin/sites", { q: f.get("q"), province_id: f.get("province_id"), state: f.get("state"), limit: 500, format: fmt });
  }

  async function loadSites() {
    let data;
    try { data = await DC.api(sitesUrl("json")); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    Pages.table($("sites-table"), data, {
      columns: ["code", "name", "province_name", "state", "version", "issued_at", "online", "actions"],
      caption: t("adm_sites"),
      rowData: (row, get) => ({ site: get(row, "code") }),
      label: { code: t("col_site_code"), name: t("col_site_name"), province_name: t("col_province_name"), state: t("alr_state"), version: t("adm_version"), issued_at: t("adm_issued"), online: t("adm_online"), actions: "" },
      cell: {
        state: (v) => el("span", { class: "badge cred-" + v }, t("cred_" + v)),
        issued_at: (v) => Pages.dt(v),
        online: (v) => (v === null ? "–" : v ? el("span", { class: "ok" }, "● " + t("st_online")) : el("span", { class: "muted" }, t("st_offline"))),
        actions: (v, row, get) => el("span", { class: "actions" },
          el("button", { type: "button", class: "small", onclick: () => sheet(get(row, "code"), get(row, "name"), get(row, "state")) }, t("adm_new_sheet")),
          get(row, "state") !== "revoked" ? el("button", { type: "button", class: "secondary small", onclick: () => revoke(get(row, "code"), get(row, "name")) }, t("adm_revoke")) : null),
      },
    });
    $("sites-export").replaceChildren(Pages.exportBar(sitesUrl, t("adm_sites")));
  }

  function sheet(code, name, state) {
    const warn = state === "active" ? t("adm_rotate_warn") : t("adm_issue_note");
    dialog(t("adm_rotate_h", { s: name }), [el("p", {}, warn)], async () => {
      const r = await DC.api(`/api/admin/sites/${encodeURIComponent(code)}/sheet`, { method: "POST", body: {} });
      if (S.qrUrl) URL.revokeObjectURL(S.qrUrl);
      // The QR code is an SVG document: shown as an image, never inserted as markup.
      S.qrUrl = URL.createObjectURL(new Blob([r.qr_svg], { type: "image/svg+xml" }));
      $("sheet-qr").src = S.qrUrl;
      $("sheet-h").textContent = r.site_name + " (" + r.site_code + ")";
      $("sheet-prov").textContent = r.province_name;
      $("sheet-link").textContent = r.join_link;
      $("sheet-code").textContent = r.join_code;
      $("sheet").hidden = false;
      $("sheet").scrollIntoView({ block: "nearest" });
      $("sheet-print").focus();
      loadSites();
    });
  }

  function revoke(code, name) {
    dialog(t("adm_revoke_h", { s: name }), [el("p", {}, t("adm_revoke_warn"))], async () => {
      await DC.api(`/api/directory/sites/${encodeURIComponent(code)}/revoke`, { method: "POST", body: {} });
      DC.toast(t("adm_revoked_ok", { s: name }));
      loadSites();
    });
  }

  // --- saved groups -------------------------------------------------------------------------

  async function loadGroups() {
    let data;
    try {
      S.groups = await DC.api("/api/site-groups"); // the rules, for editing
      data = await DC.api("/api/admin/site-groups"); // the table, as exported
    } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    $("groups-export").replaceChildren(Pages.exportBar((f) => "/api/admin/site-groups?format=" + f, t("adm_groups")));
    Pages.table($("groups-table"), data, {
      columns: ["name", "description", "site_count", "updated_at", "actions"],
      caption: t("adm_groups"),
      empty: t("adm_no_groups"),
      rowData: (row, get) => ({ group: String(get(row, "id")) }),
      label: { name: t("adm_group_name"), description: t("adm_group_desc"), site_count: t("col_recipients"), updated_at: t("col_updated_at"), actions: "" },
      cell: {
        updated_at: (v) => Pages.dt(v),
        actions: (v, row, get) => el("span", { class: "actions" },
          el("button", { type: "button", class: "secondary small", onclick: () => editGroup(get(row, "id")) }, t("adm_edit")),
          el("button", { type: "button", class: "secondary small", onclick: () => deleteGroup(get(row, "id"), get(row, "name")) }, t("adm_delete"))),
      },
    });
    renderGroupProvinces([]);
  }

  function renderGroupProvinces(checked) {
    $("group-provinces").replaceChildren(...S.provinces.map((p) =>
      el("label", { class: "inline" }, el("input", { type: "checkbox", value: p.code, checked: checked.includes(p.code) }), p.name)));
  }

  function editGroup(id) {
    const g = S.groups.find((x) => x.id === id);
    if (!g) return;
    S.editing = id;
    const f = $("group-form");
    f.name.value = g.name; f.description.value = g.description || "";
    // The stored rule speaks in ids; units we know by code are the provinces of the list.
    const provinceCodes = S.provinces.filter((p) => (g.spec.unit_ids || []).includes(p.id)).map((p) => p.code);
    renderGroupProvinces(provinceCodes);
    f.sites.value = "";
    f.communes.checked = (g.spec.kinds || []).includes("commune");
    $("group-h").textContent = t("adm_edit_group", { g: g.name });
    $("group-error").textContent = g.spec.site_ids && g.spec.site_ids.length ? t("adm_group_sites_kept", { n: g.spec.site_ids.length }) : "";
    f.name.focus();
  }

  function resetGroupForm() {
    S.editing = 0;
    $("group-form").reset();
    $("group-h").textContent = t("adm_new_group");
    $("group-error").textContent = "";
    renderGroupProvinces([]);
  }

  async function saveGroup(ev) {
    ev.preventDefault();
    const f = $("group-form");
    const units = [...$("group-provinces").querySelectorAll("input:checked")].map((i) => i.value);
    const sites = f.sites.value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
    const invite = { units, sites, kinds: f.communes.checked ? ["commune"] : [] };
    const body = { name: f.name.value.trim(), description: f.description.value.trim() };
    try {
      if (S.editing) {
        const g = S.groups.find((x) => x.id === S.editing);
        // Sites named before stay unless the reader typed a new list.
        const patch = { ...body };
        if (units.length || sites.length || !(g.spec.site_ids || []).length) patch.invite = invite;
        await DC.api("/api/site-groups/" + S.editing, { method: "PATCH", body: patch });
      } else {
        await DC.api("/api/site-groups", { method: "POST", body: { ...body, invite } });
      }
      DC.toast(t("adm_group_saved", { g: body.name }));
      resetGroupForm();
      loadGroups();
    } catch (e) { $("group-error").textContent = Pages.errText(e); }
  }

  function deleteGroup(id, name) {
    dialog(t("adm_delete_group_h", { g: name }), [el("p", {}, t("adm_delete_group_warn"))], async () => {
      await DC.api("/api/site-groups/" + id, { method: "DELETE" });
      loadGroups();
    });
  }

  // --- schemas ------------------------------------------------------------------------------

  async function loadSchemas() {
    let list;
    try { list = await DC.api("/api/command/schemas"); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    $("schemas-list").replaceChildren(...list.map((s) => {
      const data = { keys: ["key", "label", "type", "required", "bounds"], rows: s.indicators.map((i) => [
        i.key, label(i), i.type, i.required ? "✓" : "",
        i.type === "choice" ? i.choices.map((c) => label(c)).join(", ") : [i.min !== null && i.min !== undefined ? "≥ " + i.min : "", i.max !== null && i.max !== undefined ? "≤ " + i.max : ""].filter(Boolean).join(", "),
      ]) };
      const box = el("div", { class: "tablebox" });
      Pages.table(box, data, { label: { key: t("adm_key"), label: t("adm_label"), type: t("adm_type"), required: t("adm_required"), bounds: t("adm_bounds") } });
      return el("details", { class: "schema panel", dataset: { schema: s.key } },
        el("summary", {}, label(s), " ", el("span", { class: "muted" }, `(${s.key} · ${t("adm_period_" + s.period)} · ${t("adm_n_ind", { n: s.indicators.length })})`)),
        el("div", { class: "toolbar" },
          el("p", { class: "muted small" }, t("adm_deadline_h", { h: s.deadline_hours }), " · ", t("adm_kinds"), ": ", (s.reporting_kinds || []).join(", ")),
          el("div", { class: "spacer" }),
          Pages.exportBar((f) => `/api/admin/schemas/${encodeURIComponent(s.key)}?format=${f}`, label(s))),
        box);
    }));
  }

  async function addSchema(ev) {
    ev.preventDefault();
    const file = $("schema-file").files[0];
    const box = $("schema-errors");
    if (!file) { box.replaceChildren(el("p", { class: "error" }, t("adm_pick_file"))); return; }
    const res = await fetch("/api/admin/schemas", { method: "POST", body: await file.text(), headers: { Authorization: "Bearer " + DC.staffToken(), "Content-Type": "application/json" } });
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      box.replaceChildren(el("p", { class: "ok" }, t("adm_schema_added", { s: label(body) })));
      $("schema-form").reset();
      loadSchemas();
      return;
    }
    const err = body.error || {};
    const details = err.details || [];
    box.replaceChildren(
      el("p", { class: "error" }, t("adm_schema_refused", { n: Math.max(1, details.length) })),
      details.length ? el("ul", { class: "field-errors" }, details.map((d) => el("li", { dataset: { field: d.field } }, el("code", {}, d.field), ": ", d.message)))
        : el("p", { class: "error" }, Pages.errText(new DC.ApiError(res.status, err.code, err.message || res.statusText))));
  }

  // --- wiring -------------------------------------------------------------------------------

  Pages.start("adm_title", async (me) => {
    S.me = me;
    if (me.role !== "admin") { $("not-admin").hidden = false; return; }
    $("admin").hidden = false;
    try { S.provinces = await Pages.provinces(); } catch (_e) { S.provinces = []; }
    const f = $("staff-new");
    roleOptions(f.role); provOptions(f.province_code); bindRole(f);
    $("site-province").replaceChildren(el("option", { value: "" }, t("all")), ...S.provinces.map((p) => el("option", { value: String(p.id) }, p.name)));
    f.addEventListener("submit", createStaff);
    f.querySelector(".gen-password").addEventListener("click", () => { f.password.value = newPassword(); });
    $("site-filters").addEventListener("submit", (e) => { e.preventDefault(); loadSites(); });
    $("site-filters").addEventListener("change", loadSites);
    $("sheet-print").addEventListener("click", () => window.print());
    $("sheet-close").addEventListener("click", () => { $("sheet").hidden = true; });
    $("group-form").addEventListener("submit", saveGroup);
    $("group-cancel").addEventListener("click", resetGroupForm);
    $("schema-form").addEventListener("submit", addSchema);
    $("dlg-form").addEventListener("submit", async (ev) => {
      if (ev.submitter && ev.submitter.value === "cancel") return;
      ev.preventDefault();
      try { await S.dialogOk(); $("dlg").close(); } catch (e) { $("dlg-error").textContent = Pages.errText(e); }
    });
    for (const n of TABS) $("tab-" + n).addEventListener("click", () => tab(n));
    document.querySelector(".tabs").addEventListener("keydown", (e) => {
      const i = TABS.indexOf(document.activeElement.dataset.tab);
      if (i < 0 || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) return;
      const next = TABS[(i + (e.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length];
      tab(next); $("tab-" + next).focus(); e.preventDefault();
    });
    document.addEventListener("langchange", () => { roleOptions(f.role, f.role.value); tab(location.hash.slice(1) || "staff"); });
    const start = location.hash.slice(1);
    tab(TABS.includes(start) ? start : "staff");
  });
})();
