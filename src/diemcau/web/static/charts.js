// The charts page: an indicator's time series for the country, a province or a
// commune (SVG, from /api/command/series and a commune's reports), the canvas map
// coloured by the indicator for one period (every commune's point, or one bubble per
// province sized by its total), and the top-N and rising-fast provinces and communes.
"use strict";
(() => {
  const { $, el } = DC;
  const model = new SiteModel();
  const S = { me: null, schemas: [], schema: null, ind: null, map: null, chart: null, values: null, bubbles: null, legend: null, range: null };
  window.diemcauCharts = S;
  const RAMP = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"];
  const NO_REPORT = "#b0b8c1";

  const label = (x) => (LANG === "en" ? x.label_en : x.label_vi);
  const unit = (ind) => (LANG === "en" ? ind.unit_en : ind.unit_vi) || "";
  const short = (p) => Pages.day(p).slice(0, 5);

  // --- choices ------------------------------------------------------------------------------

  function fillSchemas() {
    $("schema").replaceChildren(...S.schemas.map((s) => el("option", { value: s.key }, label(s))));
    if (S.schema) $("schema").value = S.schema.key;
  }

  function fillIndicators() {
    const inds = S.schema.indicators.filter((i) => i.type !== "text");
    $("indicator").replaceChildren(...inds.map((i) => el("option", { value: i.key }, label(i))));
    if (!S.ind || !inds.find((i) => i.key === S.ind.key)) S.ind = inds[0];
    $("indicator").value = S.ind.key;
    fillOptions();
  }

  function fillOptions() {
    const choice = S.ind.type === "choice";
    $("option-box").hidden = !choice;
    if (!choice) return;
    const keep = $("option").value;
    $("option").replaceChildren(...S.ind.choices.map((c) => el("option", { value: c.key }, label(c))));
    // Rank by the most serious option by default (the last one: red zone).
    $("option").value = S.ind.choices.find((c) => c.key === keep) ? keep : S.ind.choices[S.ind.choices.length - 1].key;
  }

  function fillWhere() {
    const cur = $("where").value;
    const top = el("option", { value: "nation" }, t(S.me.province_id ? "chr_my_province" : "chr_nation"));
    const provs = S.me.province_id ? [] : model.provinces.map((p) => el("option", { value: "p" + p.id }, p.name));
    $("where").replaceChildren(top, ...provs, el("option", { value: "commune" }, t("chr_one_commune")));
    $("where").value = [...$("where").options].some((o) => o.value === cur) ? cur : "nation";
  }

  function fmt(v) { return Pages.num(v); }

  // --- the series ---------------------------------------------------------------------------

  function seriesParams() {
    return { schema: S.schema.key, indicator: S.ind.key, from: $("from").value, to: $("to").value };
  }

  async function loadSeries() {
    const where = $("where").value;
    const p = seriesParams();
    let periods, series, title;
    try {
      if (where === "commune") {
        const i = model.byCode.get(communeCode());
        if (i === undefined) { $("series-title").textContent = t("chr_pick_commune"); S.chart.draw({ periods: [], series: [] }); return; }
        // A commune's own reports, one value per period (the series of an area is summed).
        const r = await DC.api(Pages.url("/api/command/series-table", { ...p, site_code: model.codes[i] }));
        periods = r.rows.map((row) => row[0]);
        series = seriesOf(r.rows.map((row) => row[1]), true);
        $("commune").value = model.names[i];
        title = model.names[i] + " · " + model.provinceName(i);
      } else {
        const r = await DC.api(Pages.url("/api/command/series", p));
        periods = r.periods;
        let points = r.national;
        title = t(S.me.province_id ? "chr_my_province" : "chr_nation");
        if (where.startsWith("p")) {
          const pid = Number(where.slice(1));
          const prov = r.provinces.find((x) => x.province_id === pid);
          points = prov ? prov.points : periods.map(() => null);
          title = prov ? prov.name : $("where").selectedOptions[0].textContent;
        }
        series = seriesOf(points, false);
      }
    } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    if (!$("from").value && periods.length) $("from").value = periods[0];
    if (!$("to").value && periods.length) $("to").value = periods[periods.length - 1];
    $("series-title").textContent = label(S.ind) + (unit(S.ind) ? " (" + unit(S.ind) + ")" : "") + " — " + title;
    S.chart.draw({ periods, series, label: $("series-title").textContent, format: fmt, period: short });
    loadSeriesTable();
  }

  /** Chart lines from one series of points: a number line, or a line per option. */
  function seriesOf(points, perSite) {
    const ind = S.ind;
    if (ind.type === "choice") {
      return ind.choices.map((c) => ({
        label: label(c), color: c.color || "#0b4f9c",
        values: points.map((v) => (v === null || v === undefined ? null : perSite ? (v === c.key ? 1 : 0) : (v[c.key] || 0))),
      }));
    }
    const vals = points.map((v) => (v === null || v === undefined ? null : typeof v === "boolean" ? (v ? 1 : 0) : Number(v)));
    return [{ label: label(ind), color: "#a8201a", values: vals }];
  }

  function seriesTableUrl(fmtName) {
    const where = $("where").value;
    const extra = where === "commune" ? { site_code: communeCode() } : where.startsWith("p") ? { province_id: where.slice(1) } : {};
    return Pages.url("/api/command/series-table", { ...seriesParams(), ...extra, format: fmtName });
  }

  async function loadSeriesTable() {
    let data;
    try { data = await DC.api(seriesTableUrl("json")); } catch (_e) { return; }
    const lab = { period: t("col_report_period"), value: label(S.ind) };
    if (S.ind.type === "choice") for (const c of S.ind.choices) lab[c.key] = label(c);
    Pages.table($("series-table"), data, { label: lab, cell: { period: (v) => Pages.day(v) } });
    $("series-export").replaceChildren(Pages.exportBar(seriesTableUrl, t("chr_series")));
  }

  function communeCode() {
    const q = $("commune").value.trim();
    if (model.byCode.has(q)) return q;
    const i = model.names.findIndex((n) => n === q);
    if (i >= 0) return model.codes[i];
    const hits = model.search(q, 1);
    return hits.length ? model.codes[hits[0]] : "";
  }

  // --- the map ------------------------------------------------------------------------------

  async function loadMap() {
    const period = $("period").value;
    let r;
    try { r = await DC.api(Pages.url("/api/command/map", { schema: S.schema.key, indicator: S.ind.key, period })); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    if (!$("period").value) $("period").value = r.period;
    S.values = new Map(r.sites.map((x) => [x.site_id, x]));
    S.range = r.range || null;
    S.legend = r.legend || null;
    S.map.colorOf = (i) => {
      const x = S.values.get(model.ids[i]);
      if (!x) return NO_REPORT;
      if (x.color) return x.color;
      if (typeof x.value === "boolean") return x.value ? RAMP[4] : RAMP[0];
      if (!S.range || S.range.max <= S.range.min) return RAMP[2];
      const f = (Number(x.value) - S.range.min) / (S.range.max - S.range.min);
      return RAMP[Math.min(4, Math.max(0, Math.floor(f * 5)))];
    };
    S.bubbles = null;
    if ($("mode").value === "bubbles") await loadBubbles(r.period);
    drawLegend(r);
    S.drawsAtValues = S.map.drawCount; // the next draw shows these values (tests, bench)
    S.map.request();
    $("map").dataset.period = r.period;
    $("map").dataset.sites = String(r.sites.length);
  }

  /** Each province's value for the period (a choice: communes reporting the option). */
  async function loadBubbles(period) {
    const agg = await DC.api(Pages.url("/api/command/aggregate", { schema: S.schema.key, from: period, to: period }));
    const opt = $("option").value;
    S.bubbles = new Map();
    for (const p of agg.provinces) {
      const cell = p.rows[0] && p.rows[0].values[S.ind.key];
      if (!cell) continue;
      const v = S.ind.type === "choice" ? (cell.counts || {})[opt] || 0 : cell.value || 0;
      const pi = model.provById.get(p.province_id);
      if (pi !== undefined && v) S.bubbles.set(pi, v);
    }
  }

  function drawBubbles(ctx, map, w, h) {
    if (!S.bubbles || !S.bubbles.size || !map.provCenters) return;
    const max = Math.max(...S.bubbles.values());
    ctx.save();
    ctx.font = "bold 11px 'DejaVu Sans', sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (const [pi, v] of S.bubbles) {
      const c = map.provCenters[pi];
      if (!c) continue;
      const x = (c[0] - map.cx) * map.scale + w / 2, y = (c[1] - map.cy) * map.scale + h / 2;
      const r = 6 + 30 * Math.sqrt(v / max);
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = "rgba(168, 32, 26, .45)"; ctx.fill();
      ctx.lineWidth = 1.5; ctx.strokeStyle = "#7f1611"; ctx.stroke();
      ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255,255,255,.9)"; ctx.strokeText(fmt(v), x, y);
      ctx.fillStyle = "#111"; ctx.fillText(fmt(v), x, y);
    }
    ctx.restore();
  }

  function drawLegend(r) {
    const items = [el("b", {}, label(S.ind) + " · " + Pages.day(r.period))];
    if (S.legend) items.push(...S.legend.map((c) => el("span", { class: "leg" }, el("span", { class: "dot", style: "background:" + c.color }), label(c))));
    else if (S.range) items.push(el("span", { class: "ramp" }), el("span", {}, fmt(S.range.min) + " – " + fmt(S.range.max)));
    items.push(el("span", { class: "leg" }, el("span", { class: "dot", style: "background:" + NO_REPORT }), t("noreport")));
    if (S.bubbles) items.push(el("span", { class: "leg" }, el("span", { class: "dot bubble" }), t("chr_bubble_leg")));
    $("legend").replaceChildren(...items);
    // A taller or shorter legend: refit unless the reader moved the map.
    if (!S.map.userMoved) S.map.focusProvince(S.map.focusProv);
  }

  function tip(i, x, y) {
    const box = $("tip");
    if (i < 0) { box.hidden = true; return; }
    const v = S.values && S.values.get(model.ids[i]);
    const shown = v ? (S.ind.type === "choice" ? label(S.ind.choices.find((c) => c.key === v.value) || { label_vi: v.value, label_en: v.value }) : fmt(typeof v.value === "boolean" ? (v.value ? 1 : 0) : v.value)) : t("noreport");
    box.hidden = false;
    box.replaceChildren(el("b", {}, model.names[i]), el("br"), label(S.ind) + ": " + shown);
    box.style.left = Math.min(x + 14, S.map.c.clientWidth - 220) + "px";
    box.style.top = Math.max(0, y - 10) + "px";
  }

  function selectCommune(i) {
    if (i < 0) return;
    $("where").value = "commune";
    $("commune").value = model.names[i];
    loadSeries();
  }

  // --- rankings -----------------------------------------------------------------------------

  function rankUrl(level, order, fmtName) {
    return Pages.url("/api/command/rankings", {
      schema: S.schema.key, indicator: S.ind.key, period: $("period").value, level, order,
      option: S.ind.type === "choice" ? $("option").value : "", n: 10, format: fmtName,
    });
  }

  async function loadRankings() {
    for (const level of ["province", "commune"]) {
      for (const order of ["value", "rise"]) {
        const box = $(`${order === "value" ? "top" : "rise"}-${level}`);
        let data;
        try { data = await DC.api(rankUrl(level, order, "json")); } catch (e) { box.replaceChildren(el("p", { class: "error" }, Pages.errText(e))); continue; }
        $("rank-period").textContent = Pages.day(data.period);
        const cols = order === "value" ? ["rank", "name", "value"] : ["rank", "name", "value", "change"];
        Pages.table(box, data, {
          columns: level === "commune" ? [...cols.slice(0, 2), "province_name", ...cols.slice(2)] : cols,
          label: { rank: "#", name: t(level === "province" ? "col_province_name" : "col_site_name"), value: t("chr_value"), change: t("chr_change") },
          empty: t(order === "rise" ? "chr_no_rise" : "chr_no_value"),
          rowData: (row, get) => ({ code: get(row, "code") }),
          cell: {
            change: (v, row, get) => (v === null ? el("span", { class: "muted" }, optionLabel(get(row, "previous")) + " →") : el("span", { class: "bad" }, "+" + fmt(v) + (get(row, "change_pct") !== null ? ` (${fmt(get(row, "change_pct"))}%)` : ""))),
            value: (v) => (typeof v === "string" ? optionLabel(v) : fmt(v)),
          },
        });
        $(`x-${order === "value" ? "top" : "rise"}-${level}`).replaceChildren(Pages.exportBar((f) => rankUrl(level, order, f)));
      }
    }
  }

  function optionLabel(key) {
    if (key === null || key === undefined) return "–";
    const c = S.ind.type === "choice" && S.ind.choices.find((x) => x.key === key);
    return c ? label(c) : String(key);
  }

  // --- wiring -------------------------------------------------------------------------------

  function all() { return Promise.all([loadSeries(), loadMap().then(loadRankings)]); }
  const refresh = Pages.throttle(() => all(), 5000);

  Pages.start("chr_title", async (me) => {
    S.me = me;
    $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation");
    try { S.schemas = await DC.api("/api/command/schemas"); } catch (e) { DC.toast(Pages.errText(e), "bad"); return; }
    if (!S.schemas.length) return;
    S.schema = S.schemas[0];
    model.load(await DC.api("/api/web/geo"));
    S.chart = new LineChart($("chart"));
    S.map = new SiteMap($("map"), model, { onHover: tip, onSelect: selectCommune, legend: $("legend"), overlay: drawBubbles });
    S.map.setData();
    window.diemcauCharts.model = model;
    fillSchemas(); fillIndicators(); fillWhere();
    $("schema").addEventListener("change", () => { S.schema = S.schemas.find((s) => s.key === $("schema").value); fillIndicators(); all(); });
    $("indicator").addEventListener("change", () => { S.ind = S.schema.indicators.find((i) => i.key === $("indicator").value); fillOptions(); all(); });
    $("option").addEventListener("change", () => { loadMap().then(loadRankings); });
    $("period").addEventListener("change", () => { loadMap().then(loadRankings); });
    $("mode").addEventListener("change", () => loadMap());
    $("where").addEventListener("change", () => { if ($("where").value !== "commune" || communeCode()) loadSeries(); else $("commune").focus(); });
    for (const id of ["from", "to"]) $(id).addEventListener("change", loadSeries);
    $("commune").addEventListener("input", (e) => {
      const hits = model.search(e.target.value, 12);
      $("commune-list").replaceChildren(...hits.map((i) => el("option", { value: model.names[i] }, model.codes[i] + " · " + model.provinceName(i))));
    });
    $("commune").addEventListener("change", () => { if (communeCode()) { $("where").value = "commune"; loadSeries(); } });
    $("pick").addEventListener("submit", (e) => e.preventDefault());
    document.addEventListener("langchange", () => {
      $("scope").textContent = me.province_id ? t("scope_prov") : t("scope_nation");
      fillSchemas(); fillIndicators(); fillWhere(); all();
    });
    const events = new Pages.StaffEvents((kind) => { if (kind === "report.filed") refresh(); }, Pages.liveStatus);
    document.addEventListener("langchange", () => Pages.liveStatus(events.mode));
    await all();
    events.start(); // after the first draw: its snapshot is not needed to be interactive
  });
})();
