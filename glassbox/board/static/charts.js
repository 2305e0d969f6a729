// Line charts as plain SVG, and TensorBoard's smoothing. No library: the board must work with no network.
"use strict";

const Charts = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 480, H = 250, M = {left: 58, right: 14, top: 26, bottom: 34};

  // TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled
  // towards zero (the average of weights w^k over the points seen so far). Gaps (null) stay gaps.
  function smooth(values, weight) {
    let last = 0, count = 0;
    return values.map((y) => {
      if (y === null || !Number.isFinite(y)) return null;
      last = last * weight + (1 - weight) * y;
      count += 1;
      const debias = weight === 1 ? 1 : 1 - Math.pow(weight, count);
      return last / debias;
    });
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, words, attrs) {
    const t = el("text", {x, y, ...(attrs || {})}, parent);
    t.textContent = words;
    return t;
  }

  // About five round tick values covering [lo, hi].
  function ticks(lo, hi) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  // Ticks for a log axis spanning [10^lo, 10^hi]: the decades, or 1, 2 and 5 times them when few decades show.
  function logTicks(lo, hi) {
    const out = [];
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      for (const m of hi - lo > 3 ? [1] : [1, 2, 5]) {
        const v = m * Math.pow(10, k);
        if (Math.log10(v) >= lo && Math.log10(v) <= hi) out.push(+v.toPrecision(6));
      }
    }
    return out;
  }

  function label(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : +v.toPrecision(3) + "";
  }

  // spec: {title, series: [{name, color, points: [[x, y]], dashed, faint, run}], hlines: [{y, label, color}],
  //        vlines: [{x, label, color}], log}
  function lineChart(spec) {
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", "data-chart": spec.id || spec.title,
                           "data-scale": spec.log ? "log" : "linear", role: "img", "aria-label": spec.title});
    text(svg, M.left, 16, spec.title, {class: "chart-title"});
    const ok = (y) => y !== null && Number.isFinite(y) && (!spec.log || y > 0);
    const xs = [], ys = [];
    for (const s of spec.series) for (const [x, y] of s.points) if (ok(y)) { xs.push(x); ys.push(y); }
    for (const h of spec.hlines || []) if (ok(h.y)) ys.push(h.y);
    if (!xs.length) {
      text(svg, W / 2, H / 2, "nothing logged yet", {class: "empty", "text-anchor": "middle"});
      return svg;
    }
    const f = spec.log ? Math.log10 : (y) => y;
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys.map(f)), Math.max(...ys.map(f))];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    const px = (x) => M.left + (x - x0) / (x1 - x0) * (W - M.left - M.right);
    const py = (y) => H - M.bottom - (f(y) - y0) / (y1 - y0) * (H - M.top - M.bottom);
    axes(svg, spec.log, [x0, x1], [y0, y1], px, py);
    for (const h of spec.hlines || []) {
      if (!ok(h.y) || f(h.y) < y0 || f(h.y) > y1) continue;
      el("line", {x1: M.left, x2: W - M.right, y1: py(h.y), y2: py(h.y), class: "hline", stroke: h.color || "#777",
                  "data-mark": h.mark || "", "stroke-dasharray": "5 4"}, svg);
      text(svg, M.left + 4, py(h.y) - 4, h.label, {class: "mark-label"});
    }
    for (const v of spec.vlines || []) {
      el("line", {x1: px(v.x), x2: px(v.x), y1: M.top, y2: H - M.bottom, class: "vline", stroke: v.color || "#2a7",
                  "data-mark": v.mark || "", "stroke-dasharray": "3 3"}, svg);
      const right = px(v.x) > W / 2;  // the label on the side with room for it
      text(svg, px(v.x) + (right ? -3 : 3), M.top + 10, v.label, {class: "mark-label", "text-anchor": right ? "end" : "start"});
    }
    for (const s of spec.series) drawSeries(svg, s, ok, px, py);
    return svg;
  }

  function axes(svg, log, [x0, x1], [y0, y1], px, py) {
    const g = el("g", {class: "axes"}, svg);
    el("line", {x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom}, g);
    el("line", {x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom}, g);
    for (const t of ticks(x0, x1)) {
      el("line", {x1: px(t), x2: px(t), y1: H - M.bottom, y2: H - M.bottom + 4}, g);
      text(g, px(t), H - M.bottom + 16, label(t), {"text-anchor": "middle"});
    }
    text(g, W - M.right, H - 4, "step", {"text-anchor": "end", class: "axis-name"});
    let yt = log ? logTicks(y0, y1) : ticks(y0, y1);
    if (log && yt.length < 2) yt = ticks(Math.pow(10, y0), Math.pow(10, y1)).filter((v) => v > 0);  // a narrow range
    for (const y of yt) {
      el("line", {x1: M.left - 4, x2: W - M.right, y1: py(y), y2: py(y), class: "grid"}, g);
      text(g, M.left - 6, py(y) + 4, label(y), {"text-anchor": "end", class: "y-tick"});
    }
  }

  function drawSeries(svg, s, ok, px, py) {
    let d = "", pen = "M", n = 0;
    for (const [x, y] of s.points) {
      if (!ok(y)) { pen = "M"; continue; }
      d += `${pen}${px(x).toFixed(1)},${py(y).toFixed(1)} `;
      pen = "L";
      n += 1;
    }
    el("path", {d, fill: "none", stroke: s.color, "stroke-width": s.faint ? 1 : 2, opacity: s.faint ? 0.25 : 1,
                "stroke-dasharray": s.dashed ? "6 3" : "", class: "series", "data-series": s.name,
                "data-run": s.run || "", "data-points": n, "data-faint": s.faint ? "1" : ""}, svg);
  }

  function legend(series) {
    const box = document.createElement("div");
    box.className = "legend";
    for (const s of series.filter((s) => !s.faint)) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = s.color;
      item.append(swatch, document.createTextNode(s.name));
      box.appendChild(item);
    }
    return box;
  }

  return {smooth, lineChart, legend, ticks};
})();
