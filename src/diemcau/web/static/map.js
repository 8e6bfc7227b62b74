// A canvas map of every site: Web Mercator projection of the sites' centroids,
// one point per site, drawn in one batched pass per colour on the next animation
// frame (however many state changes arrive in between). No tiles by default; an
// optional XYZ tile server URL draws under the points. Pan with drag or arrow
// keys, zoom with the wheel or +/-; hover and click find the nearest point.
"use strict";

class SiteMap {
  constructor(canvas, model, opts) {
    this.c = canvas; this.ctx = canvas.getContext("2d", { willReadFrequently: false });
    this.model = model;
    this.opts = opts || {};
    this.tileUrl = this.opts.tileUrl || "";
    this.tiles = new Map();
    this.x = null; this.y = null; // Float64Array, Mercator units in [0, 1]
    this.cx = 0.5; this.cy = 0.5; this.scale = 1000; // px per Mercator unit
    this.home = null;
    this.hover = -1; this.selected = -1; this.focusProv = -1;
    this.colorOf = null; // optional (i) => css colour, for indicator colouring
    this.pending = false;
    this.dpr = window.devicePixelRatio || 1;
    this.drawCount = 0;
    this.bind();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
  }

  static merc(lat, lon) {
    const s = Math.sin((lat * Math.PI) / 180);
    return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
  }

  setData() {
    const m = this.model;
    this.x = new Float64Array(m.n); this.y = new Float64Array(m.n);
    for (let i = 0; i < m.n; i++) {
      if (Number.isNaN(m.lat[i])) { this.x[i] = NaN; this.y[i] = NaN; continue; }
      const [x, y] = SiteMap.merc(m.lat[i], m.lon[i]);
      this.x[i] = x; this.y[i] = y;
    }
    this.home = this.bounds(() => true);
    this.fit(this.home);
  }

  bounds(pred) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let i = 0; i < this.model.n; i++) {
      if (Number.isNaN(this.x[i]) || !pred(i)) continue;
      x0 = Math.min(x0, this.x[i]); x1 = Math.max(x1, this.x[i]);
      y0 = Math.min(y0, this.y[i]); y1 = Math.max(y1, this.y[i]);
    }
    return x0 === Infinity ? null : [x0, y0, x1, y1];
  }

  fit(b) {
    if (!b) return;
    const box = this.c.parentElement;
    const w = box.clientWidth || 600, h = box.clientHeight || 400;
    const bw = Math.max(b[2] - b[0], 0.002), bh = Math.max(b[3] - b[1], 0.002);
    // Leave room for the legend at the bottom and the site card on the right.
    const legend = this.opts.legend;
    const padTop = 24, padX = 24, padBottom = Math.max(32, (legend ? legend.offsetHeight : 0) + 20);
    this.scale = Math.min((w - 2 * padX) / bw, (h - padTop - padBottom) / bh);
    this.cx = (b[0] + b[2]) / 2;
    this.cy = (b[1] + b[3]) / 2 + (padBottom - padTop) / 2 / this.scale;
    this.request();
  }

  focusProvince(pi) {
    this.focusProv = pi;
    this.userMoved = false;
    this.fit(pi < 0 ? this.home : this.bounds((i) => this.model.provIdx[i] === pi));
  }

  resize() {
    const r = this.c.parentElement.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.c.width = Math.round(r.width * this.dpr); this.c.height = Math.round(r.height * this.dpr);
    this.c.style.width = r.width + "px"; this.c.style.height = r.height + "px";
    // Until the user pans or zooms, keep the whole area (or province) in view.
    if (this.home && !this.userMoved) this.fit(this.focusProv >= 0 ? this.bounds((i) => this.model.provIdx[i] === this.focusProv) : this.home);
    this.request();
  }

  /** Ask for a redraw on the next animation frame; many calls, one draw. */
  request() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  sx(i) { return (this.x[i] - this.cx) * this.scale + this.c.clientWidth / 2; }
  sy(i) { return (this.y[i] - this.cy) * this.scale + this.c.clientHeight / 2; }

  radius() { return Math.max(2.2, Math.min(7, Math.sqrt(this.scale / 2500))); }

  draw() {
    const t0 = performance.now();
    const ctx = this.ctx, m = this.model;
    const w = this.c.clientWidth, h = this.c.clientHeight;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = "#e9eef3"; ctx.fillRect(0, 0, w, h);
    if (this.tileUrl) this.drawTiles(w, h);
    if (!this.x) return;
    // Names under the points: a label never hides a site's state.
    this.drawLabels(w, h);
    const r = this.radius();
    // Offline last, so problems sit on top of healthy neighbours.
    const order = [0, 1, 2, 3];
    const dimmed = this.focusProv >= 0;
    for (const pass of dimmed ? [false, true] : [true]) {
      ctx.globalAlpha = pass ? 1 : 0.22;
      if (this.colorOf) {
        const groups = new Map();
        for (let i = 0; i < m.n; i++) {
          if (Number.isNaN(this.x[i]) || (dimmed && (m.provIdx[i] === this.focusProv) !== pass)) continue;
          const col = this.colorOf(i);
          if (!groups.has(col)) groups.set(col, []);
          groups.get(col).push(i);
        }
        for (const [col, list] of groups) this.dots(list, col, r, w, h);
      } else {
        for (const s of order) {
          const list = [];
          for (let i = 0; i < m.n; i++) {
            if (m.state[i] !== s || Number.isNaN(this.x[i])) continue;
            if (dimmed && (m.provIdx[i] === this.focusProv) !== pass) continue;
            list.push(i);
          }
          this.dots(list, DC.STATE_COLORS[DC.STATES[s]], r, w, h);
        }
      }
    }
    ctx.globalAlpha = 1;
    // An optional layer over the points (the charts page's province bubbles).
    if (this.opts.overlay) this.opts.overlay(ctx, this, w, h);
    for (const [i, col, width] of [[this.selected, "#111", 3], [this.hover, "#0b4f9c", 2]]) {
      if (i < 0 || Number.isNaN(this.x[i])) continue;
      ctx.beginPath(); ctx.arc(this.sx(i), this.sy(i), r + 4, 0, 2 * Math.PI);
      ctx.lineWidth = width; ctx.strokeStyle = col; ctx.stroke();
    }
    this.drawCount++;
    this.lastDrawMs = performance.now() - t0;
    this.c.dataset.draws = String(this.drawCount);
  }

  dots(list, color, r, w, h) {
    if (!list.length) return;
    const ctx = this.ctx;
    ctx.beginPath();
    for (const i of list) {
      const x = this.sx(i), y = this.sy(i);
      if (x < -r || y < -r || x > w + r || y > h + r) continue;
      ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
    ctx.fillStyle = color; ctx.fill();
    if (r >= 3) { ctx.lineWidth = 0.6; ctx.strokeStyle = "rgba(255,255,255,.8)"; ctx.stroke(); }
  }

  drawLabels(w, h) {
    const m = this.model, ctx = this.ctx;
    if (!this.provCenters) {
      const acc = m.provinces.map(() => [0, 0, 0]);
      for (let i = 0; i < m.n; i++) {
        const p = m.provIdx[i];
        if (p < 0 || Number.isNaN(this.x[i])) continue;
        acc[p][0] += this.x[i]; acc[p][1] += this.y[i]; acc[p][2]++;
      }
      this.provCenters = acc.map(([x, y, k]) => (k ? [x / k, y / k] : null));
    }
    ctx.font = "11px 'DejaVu Sans', sans-serif"; ctx.textAlign = "center";
    ctx.lineJoin = "round"; ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255,255,255,.85)";
    ctx.fillStyle = "#2b333c";
    m.provinces.forEach((p, pi) => {
      const c = this.provCenters[pi];
      if (!c || (this.focusProv >= 0 && pi !== this.focusProv)) return;
      const x = (c[0] - this.cx) * this.scale + w / 2, y = (c[1] - this.cy) * this.scale + h / 2;
      if (x < 0 || y < 0 || x > w || y > h) return;
      const label = p.name.replace(/^(Tỉnh|Thành phố)\s+/, "");
      ctx.strokeText(label, x, y - 8); ctx.fillText(label, x, y - 8);
    });
  }

  drawTiles(w, h) {
    const z = Math.max(0, Math.min(18, Math.round(Math.log2(this.scale / 256))));
    const n = 2 ** z, size = this.scale / n;
    const x0 = Math.floor((this.cx - w / 2 / this.scale) * n), x1 = Math.floor((this.cx + w / 2 / this.scale) * n);
    const y0 = Math.max(0, Math.floor((this.cy - h / 2 / this.scale) * n)), y1 = Math.min(n - 1, Math.floor((this.cy + h / 2 / this.scale) * n));
    for (let tx = x0; tx <= x1; tx++) for (let ty = y0; ty <= y1; ty++) {
      const key = z + "/" + tx + "/" + ty;
      let img = this.tiles.get(key);
      if (!img) {
        img = new Image();
        img.onload = () => this.request();
        img.src = this.tileUrl.replace("{z}", z).replace("{x}", ((tx % n) + n) % n).replace("{y}", ty);
        this.tiles.set(key, img);
        if (this.tiles.size > 400) this.tiles.delete(this.tiles.keys().next().value);
      }
      if (img.complete && img.naturalWidth) {
        this.ctx.drawImage(img, (tx / n - this.cx) * this.scale + w / 2, (ty / n - this.cy) * this.scale + h / 2, size + 0.5, size + 0.5);
      }
    }
  }

  nearest(px, py, maxPx) {
    let best = -1, bd = (maxPx || 10) ** 2;
    for (let i = 0; i < this.model.n; i++) {
      if (Number.isNaN(this.x[i])) continue;
      if (this.focusProv >= 0 && this.model.provIdx[i] !== this.focusProv) continue;
      const dx = this.sx(i) - px, dy = this.sy(i) - py, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }

  zoomAt(factor, px, py) {
    const w = this.c.clientWidth, h = this.c.clientHeight;
    const mx = this.cx + (px - w / 2) / this.scale, my = this.cy + (py - h / 2) / this.scale;
    this.scale = Math.max(200, Math.min(4e6, this.scale * factor));
    this.userMoved = true;
    this.cx = mx - (px - w / 2) / this.scale; this.cy = my - (py - h / 2) / this.scale;
    this.request();
  }

  bind() {
    const c = this.c;
    let drag = null;
    c.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; c.setPointerCapture(e.pointerId); });
    c.addEventListener("pointermove", (e) => {
      const r = c.getBoundingClientRect();
      if (drag && (e.buttons & 1)) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
        this.cx -= dx / this.scale; this.cy -= dy / this.scale;
        this.userMoved = true;
        drag.x = e.clientX; drag.y = e.clientY;
        this.request();
        return;
      }
      const i = this.nearest(e.clientX - r.left, e.clientY - r.top, 10);
      if (i !== this.hover) { this.hover = i; this.request(); }
      if (this.opts.onHover) this.opts.onHover(i, e.clientX - r.left, e.clientY - r.top);
    });
    c.addEventListener("pointerup", (e) => {
      const r = c.getBoundingClientRect();
      const wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) return;
      const i = this.nearest(e.clientX - r.left, e.clientY - r.top, 12);
      this.select(i);
    });
    c.addEventListener("pointerleave", () => { this.hover = -1; this.request(); if (this.opts.onHover) this.opts.onHover(-1, 0, 0); });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      this.zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    c.addEventListener("keydown", (e) => {
      const w = c.clientWidth, h = c.clientHeight, step = 60 / this.scale;
      const k = e.key;
      if (k === "+" || k === "=") this.zoomAt(1.25, w / 2, h / 2);
      else if (k === "-" || k === "_") this.zoomAt(0.8, w / 2, h / 2);
      else if (k === "ArrowLeft") { this.cx -= step; this.request(); }
      else if (k === "ArrowRight") { this.cx += step; this.request(); }
      else if (k === "ArrowUp") { this.cy -= step; this.request(); }
      else if (k === "ArrowDown") { this.cy += step; this.request(); }
      else if (k === "0") this.focusProvince(this.focusProv);
      else if (k === "Enter") this.select(this.nearest(w / 2, h / 2, Math.max(w, h)));
      else if (k === "Escape") this.select(-1);
      else return;
      if (k !== "0" && k !== "Enter" && k !== "Escape") this.userMoved = true;
      e.preventDefault();
    });
  }

  select(i, center) {
    this.selected = i;
    if (i >= 0 && center) {
      if (this.scale < 20000) this.scale = 20000;
      this.cx = this.x[i]; this.cy = this.y[i];
      this.userMoved = true;
    }
    this.request();
    if (this.opts.onSelect) this.opts.onSelect(i);
  }
}
