// A small SVG line chart for indicator time series: one or more lines over the
// same periods (gaps where a period has no value), y axis from zero with round
// ticks, a legend, a tooltip per point, and a keyboard cursor: focus the chart,
// ←/→ move through the periods, Home/End jump, and the readout line says the
// values (aria-live). Plain SVG built with createElementNS: no library, no markup
// strings.
"use strict";

class LineChart {
  constructor(box, opts) {
    this.box = box;
    this.opts = opts || {};
    this.data = null;
    this.cursor = -1;
    this.svg = LineChart.node("svg", { class: "chart", role: "img", tabindex: "0" });
    this.readout = document.createElement("p");
    this.readout.className = "readout muted";
    this.readout.setAttribute("aria-live", "polite");
    this.legend = document.createElement("div");
    this.legend.className = "chart-legend";
    box.replaceChildren(this.svg, this.legend, this.readout);
    this.svg.addEventListener("keydown", (e) => this.key(e));
    this.svg.addEventListener("pointermove", (e) => this.hover(e));
    new ResizeObserver(() => { if (this.data) this.draw(this.data); }).observe(box);
  }

  static node(tag, attrs, text) {
    const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    return n;
  }

  /** Round tick step for a range: 1, 2 or 5 times a power of ten. */
  static step(max, count) {
    const raw = max / Math.max(1, count);
    const p = 10 ** Math.floor(Math.log10(raw || 1));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  /**
   * data: {periods: ["2026-11-25", ...], series: [{label, color, values: [n | null]}],
   *        unit: "ca", label: "Số ca mắc mới", format: (n) => text, period: (iso) => text}
   */
  draw(data) {
    this.data = data;
    const W = Math.max(320, this.box.clientWidth || 600), H = this.opts.height || 260;
    const m = { l: 56, r: 14, t: 12, b: 30 };
    const n = data.periods.length;
    let max = 0;
    for (const s of data.series) for (const v of s.values) if (v !== null && v !== undefined && v > max) max = v;
    const step = LineChart.step(max || 1, 4);
    const top = Math.max(step, Math.ceil((max || 1) / step) * step);
    const x = (i) => m.l + (n <= 1 ? (W - m.l - m.r) / 2 : (i * (W - m.l - m.r)) / (n - 1));
    const y = (v) => H - m.b - (v / top) * (H - m.t - m.b);
    this.x = x; this.W = W; this.m = m;
    const fmt = data.format || ((v) => String(v));
    const per = data.period || ((p) => p);
    const svg = this.svg;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    svg.setAttribute("aria-label", data.label || "");
    const kids = [];
    for (let v = 0; v <= top + 1e-9; v += step) {
      kids.push(LineChart.node("line", { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: v ? "grid" : "axis" }));
      kids.push(LineChart.node("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, fmt(v)));
    }
    const every = Math.max(1, Math.ceil(n / 10));
    for (let i = 0; i < n; i += every) {
      kids.push(LineChart.node("text", { x: x(i), y: H - m.b + 16, "text-anchor": "middle", class: "tick" }, per(data.periods[i])));
    }
    for (const s of data.series) {
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1) + " ";
        pen = true;
      });
      if (d) kids.push(LineChart.node("path", { d, class: "line", stroke: s.color, fill: "none" }));
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const c = LineChart.node("circle", { cx: x(i), cy: y(v), r: n > 60 ? 1.8 : 3, fill: s.color, class: "pt" });
        c.append(LineChart.node("title", {}, `${per(data.periods[i])} · ${s.label}: ${fmt(v)}`));
        kids.push(c);
      });
    }
    this.cursorLine = LineChart.node("line", { y1: m.t, y2: H - m.b, class: "cursor", visibility: "hidden" });
    kids.push(this.cursorLine);
    svg.replaceChildren(...kids);
    this.legend.replaceChildren(...data.series.map((s) => {
      const item = document.createElement("span");
      item.className = "leg";
      const dot = document.createElement("span");
      dot.className = "dot"; dot.style.background = s.color;
      item.append(dot, s.label);
      return item;
    }));
    if (this.cursor >= n) this.cursor = n - 1;
    this.show(this.cursor);
    svg.dataset.points = String(data.series.reduce((a, s) => a + s.values.filter((v) => v !== null && v !== undefined).length, 0));
  }

  /** Put the cursor on period `i` and say its values. */
  show(i) {
    const d = this.data;
    if (!d || i < 0 || i >= d.periods.length) { this.cursorLine && this.cursorLine.setAttribute("visibility", "hidden"); this.readout.textContent = ""; return; }
    this.cursor = i;
    const fmt = d.format || ((v) => String(v)), per = d.period || ((p) => p);
    this.cursorLine.setAttribute("x1", this.x(i)); this.cursorLine.setAttribute("x2", this.x(i));
    this.cursorLine.setAttribute("visibility", "visible");
    this.readout.textContent = per(d.periods[i]) + " — " + d.series.map((s) => s.label + ": " + (s.values[i] === null || s.values[i] === undefined ? "–" : fmt(s.values[i]))).join(" · ");
  }

  key(e) {
    if (!this.data) return;
    const n = this.data.periods.length;
    let i = this.cursor < 0 ? n - 1 : this.cursor;
    if (e.key === "ArrowLeft") i = Math.max(0, i - 1);
    else if (e.key === "ArrowRight") i = Math.min(n - 1, i + 1);
    else if (e.key === "Home") i = 0;
    else if (e.key === "End") i = n - 1;
    else return;
    e.preventDefault();
    this.show(i);
  }

  hover(e) {
    if (!this.data || !this.data.periods.length) return;
    const r = this.svg.getBoundingClientRect();
    const px = ((e.clientX - r.left) * this.W) / r.width;
    const n = this.data.periods.length;
    const i = n <= 1 ? 0 : Math.round(((px - this.m.l) * (n - 1)) / (this.W - this.m.l - this.m.r));
    this.show(Math.max(0, Math.min(n - 1, i)));
  }
}
