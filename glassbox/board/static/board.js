// The board: the runs table, one run's page and the compare view, kept live by polling the board's JSON.
// Text from run folders is always set as text (never as HTML).
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const state = {route: "", runs: [], metrics: {}, offsets: {}, selected: new Set(), detail: null, gone: null,
               smoothing: 0.6, log: false, diff: null, timer: null};
const enc = encodeURIComponent;

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "style") Object.assign(node.style, v);  // through the CSSOM: the page's CSP allows no inline style
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function num(v, digits = 4) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(digits);
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return `${s.toFixed(1)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

async function getJSON(url) {
  try {
    const r = await fetch(url, {cache: "no-store"});
    const body = await r.json().catch(() => ({detail: `the board answered ${r.status} without JSON`}));
    document.getElementById("offline").hidden = true;
    return {ok: r.ok, status: r.status, body};
  } catch (e) {  // the board process stopped, or the network between: say so and keep trying
    document.getElementById("offline").hidden = false;
    return {ok: false, status: 0, body: {detail: "the board server is not answering"}};
  }
}

// New evaluations of a run since the last call (metrics.jsonl is read from where the last read stopped).
async function pullMetrics(id) {
  const {ok, status, body} = await getJSON(`/api/metrics?id=${enc(id)}&offset=${state.offsets[id] || 0}`);
  if (!ok) return status === 404 ? body : null;
  if (body.reset || !state.metrics[id]) state.metrics[id] = [];
  state.metrics[id].push(...body.rows);
  state.offsets[id] = body.offset;
  return null;
}

function statusBadge(row) {
  return h("span", {class: `status status-${row.status.replace(/ /g, "-")}`, title: row.status_note || ""},
           row.status);
}

// ---- the runs table
function listView(main) {
  main.append(h("h2", {}, "Runs"), h("p", {id: "message", class: "message", hidden: true}),
    h("div", {class: "toolbar"},
      h("button", {id: "compare", disabled: true, on: {click: () => {
        location.hash = "compare=" + [...state.selected].map(enc).join("|");
      }}}, "Compare selected"), h("span", {class: "hint"}, " tick two or more runs to overlay their curves")),
    h("table", {id: "runs"}, h("thead", {}, h("tr", {}, ["", "run", "data", "task", "model", "status", "steps",
      "best step", "test score", "wall time", "started"].map((t) => h("th", {}, t)))), h("tbody")));
}

async function refreshList() {
  const {ok, body} = await getJSON("/api/runs");
  if (!ok) return;
  state.runs = body.runs;
  document.getElementById("root").textContent = body.root;
  const message = document.getElementById("message");
  if (!message) return;
  message.hidden = !body.message;
  message.textContent = body.message || "";
  const ids = new Set(body.runs.map((r) => r.id));
  for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
  const tbody = document.querySelector("#runs tbody");
  tbody.replaceChildren(...body.runs.map(runRow));
  document.getElementById("compare").disabled = state.selected.size < 2;
}

function runRow(r) {
  const box = h("input", {type: "checkbox", "aria-label": `select ${r.id}`, checked: state.selected.has(r.id),
    on: {change: (e) => {
      if (e.target.checked) state.selected.add(r.id); else state.selected.delete(r.id);
      document.getElementById("compare").disabled = state.selected.size < 2;
    }}});
  const steps = r.step === null || r.step === undefined ? "–" : `${r.step}${r.total_steps ? " / " + r.total_steps : ""}`;
  const data = r.data ? r.data.split(/[\\/]/).pop() : "–";
  return h("tr", {"data-id": r.id, "data-status": r.status},
    h("td", {}, box), h("td", {}, h("a", {href: "#run=" + enc(r.id)}, r.id)), h("td", {title: r.data || ""}, data),
    h("td", {}, r.task || "–"), h("td", {}, r.model || "–"), h("td", {}, statusBadge(r)),
    h("td", {class: "steps num", "data-step": r.step ?? ""}, steps), h("td", {class: "num"}, r.best_step ?? "–"),
    h("td", {class: "num"}, r.score === null || r.score === undefined ? "–" : `${r.score_name} ${num(r.score)}`),
    h("td", {class: "num"}, duration(r.wall_seconds)), h("td", {}, r.started ? r.started.replace("T", " ") : "–"));
}

// ---- the controls shared by a run's page and the compare view
function controls() {
  const out = h("output", {id: "smoothing-value"}, state.smoothing.toFixed(2));
  return h("div", {class: "controls"},
    h("label", {}, "smoothing ", h("input", {id: "smoothing", type: "range", min: 0, max: 0.99, step: 0.01,
      value: state.smoothing, on: {input: (e) => { state.smoothing = +e.target.value; out.textContent =
        state.smoothing.toFixed(2); redraw(); }}}), " ", out),
    h("label", {}, h("input", {id: "log", type: "checkbox", checked: state.log,
      on: {change: (e) => { state.log = e.target.checked; redraw(); }}}), " log scale"));
}

// A raw series drawn faint under its smoothed line, as TensorBoard does (lr is never smoothed: it is exact).
function smoothed(name, color, records, key, run, dashed) {
  const points = records.map((m) => [m.step, m[key]]).filter(([, y]) => y !== null && y !== undefined);
  if (!points.length) return [];
  if (key === "lr" || state.smoothing === 0) return [{name, color, points, run, dashed}];
  const ys = Charts.smooth(points.map(([, y]) => y), state.smoothing);
  return [{name: name + " (raw)", color, points, run, faint: true},
          {name, color, points: points.map(([x], i) => [x, ys[i]]), run, dashed}];
}

function chartBox(spec) {
  return h("figure", {class: "chart-box"}, Charts.lineChart({...spec, log: state.log}), Charts.legend(spec.series));
}

function sweetSpot(records) {
  const best = records.filter((m) => m.best).pop();
  return best ? [{x: best.step, label: `sweet spot (step ${best.step})`, mark: "sweet-spot"}] : [];
}

function chanceLine(records, detail) {
  const first = records.find((m) => m.chance_loss !== null && m.chance_loss !== undefined);
  const y = detail && detail.chance_loss !== null ? detail.chance_loss : first ? first.chance_loss : null;
  return y === null ? [] : [{y, label: `chance ln K = ${y.toFixed(3)}`, mark: "chance"}];
}

// ---- one run's page
function runView(main, id) {
  main.append(h("p", {}, h("a", {href: "#"}, "← all runs")), h("h2", {id: "run-title"}, id),
    h("p", {id: "run-status"}), h("p", {id: "gone", class: "gone", hidden: true}), controls(),
    h("div", {id: "charts", class: "charts"}), h("div", {id: "headlines"}),
    h("h3", {}, "Data audit"), h("table", {id: "audit"}), h("h3", {}, "Settings"), h("table", {id: "settings"}));
}

async function refreshRun(id) {
  const missing = await pullMetrics(id);
  const {ok, body} = await getJSON(`/api/run?id=${enc(id)}`);
  if (missing || !ok) {
    state.gone = (missing || body).detail;
  } else {
    state.gone = null;
    state.detail = body;
  }
  redraw();
}

function drawRun(id) {
  const gone = document.getElementById("gone");
  gone.hidden = !state.gone;
  gone.textContent = state.gone ? `This run is gone: ${state.gone}. The curves below are what was read before.` : "";
  const d = state.detail, records = state.metrics[id] || [];
  if (d) {
    const status = document.getElementById("run-status");
    status.replaceChildren(statusBadge(d), ` ${d.status_note || ""} · ${d.data} · ${d.task} · ${d.model} · step `,
      h("span", {id: "run-step"}, d.step ?? "–"), d.total_steps ? ` of ${d.total_steps}` : "",
      d.report ? h("a", {href: `/report?id=${enc(id)}`, id: "report-link", target: "_blank"}, " · report.html") : "");
  }
  const c = (name, key, color, title, extra) => chartBox({id: key, title, series: smoothed(name, color, records, key, id),
                                                          ...(extra || {})});
  const loss = chartBox({id: "loss", title: "loss", series: [...smoothed("train", COLORS[0], records, "train_loss", id),
    ...smoothed("validation", COLORS[1], records, "val_loss", id)], hlines: chanceLine(records, d),
    vlines: sweetSpot(records)});
  document.getElementById("charts").replaceChildren(loss,
    c("validation accuracy", "val_accuracy", COLORS[2], "validation accuracy", {vlines: sweetSpot(records)}),
    c("learning rate", "lr", COLORS[3], "learning rate"), c("gradient norm", "grad_norm", COLORS[4], "gradient norm"),
    c("examples/s", "examples_per_s", COLORS[5], "examples per second"));
  if (d) drawDetail(d);
}

function drawDetail(d) {
  const hl = d.headlines, box = document.getElementById("headlines");
  box.replaceChildren();
  if (hl) {
    box.append(h("h3", {}, "Verdict"), h("p", {class: "verdict"}, hl.verdict || "–"));
    if (hl.worries.length) box.append(h("h3", {}, "What to worry about most"),
                                      h("ol", {class: "worries"}, hl.worries.map((w) => h("li", {}, w))));
    if (hl.calibration) box.append(h("h3", {}, "Calibration"), h("p", {class: "calibration"}, hl.calibration));
    for (const g of hl.groups) box.append(h("h3", {}, `Groups: ${g.column}`), h("p", {class: "groups"}, g.sentence));
  } else {
    box.append(h("p", {class: "note"}, "Verdict, calibration and groups appear here when the run finishes."));
  }
  for (const p of d.problems || []) box.append(h("p", {class: "gone"}, p));
  document.getElementById("audit").replaceChildren(
    h("tr", {}, ["check", "severity", "count", "finding"].map((t) => h("th", {}, t))),
    ...(d.audit.length ? d.audit.map((f) => h("tr", {class: `sev-${f.severity}`}, h("td", {}, f.title),
      h("td", {}, f.severity), h("td", {class: "num"}, f.count ?? "–"), h("td", {}, f.message)))
      : [h("tr", {}, h("td", {colspan: 4}, "not written yet (the audit runs before training)"))]));
  document.getElementById("settings").replaceChildren(h("tr", {}, ["setting", "value", "from"].map((t) => h("th", {}, t))),
    ...d.settings.map((s) => h("tr", {}, h("td", {}, s.key), h("td", {}, JSON.stringify(s.value)), h("td", {}, s.source))));
}

// ---- the compare view
function compareView(main, ids) {
  main.append(h("p", {}, h("a", {href: "#"}, "← all runs")), h("h2", {}, `Compare ${ids.length} runs`),
    h("p", {id: "gone", class: "gone", hidden: true}), controls(), h("div", {id: "charts", class: "charts"}),
    h("h3", {}, "Settings that differ"), h("table", {id: "diff"}));
}

async function refreshCompare(ids) {
  const missing = (await Promise.all(ids.map(pullMetrics))).filter(Boolean);
  const {ok, body} = await getJSON("/api/compare?" + ids.map((i) => "id=" + enc(i)).join("&"));
  state.gone = missing.length ? missing[0].detail : ok ? null : body.detail;
  if (ok) state.diff = body.settings;
  redraw();
}

function drawCompare(ids) {
  const gone = document.getElementById("gone");
  gone.hidden = !state.gone;
  gone.textContent = state.gone || "";
  const overlay = (key, title) => chartBox({id: key, title, series: ids.flatMap((id, i) =>
    smoothed(id, COLORS[i % COLORS.length], state.metrics[id] || [], key, id))});
  document.getElementById("charts").replaceChildren(overlay("val_loss", "validation loss"),
    overlay("train_loss", "training loss"), overlay("val_accuracy", "validation accuracy"), overlay("lr", "learning rate"));
  if (!state.diff) return;
  const rows = state.diff.map((s) => h("tr", {"data-key": s.key}, h("td", {}, s.key), s.values.map((v, i) =>
    h("td", {}, JSON.stringify(v), h("span", {class: "source"}, ` (${s.sources[i]})`)))));
  document.getElementById("diff").replaceChildren(h("tr", {}, h("th", {}, "setting"), ids.map((id, i) =>
    h("th", {style: {color: COLORS[i % COLORS.length]}}, id))),
    ...(rows.length ? rows : [h("tr", {}, h("td", {colspan: ids.length + 1}, "every setting is the same"))]));
}

// ---- routing and polling
function parseRoute() {
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("run=")) return {view: "run", ids: [hash.slice(4)]};
  if (hash.startsWith("compare=")) return {view: "compare", ids: location.hash.slice(9).split("|").map(decodeURIComponent)};
  return {view: "list", ids: []};
}

function redraw() {
  const r = parseRoute();
  if (r.view === "run") drawRun(r.ids[0]);
  else if (r.view === "compare") drawCompare(r.ids);
}

async function tick() {
  clearTimeout(state.timer);
  const r = parseRoute();
  if (r.view === "run") await refreshRun(r.ids[0]);
  else if (r.view === "compare") await refreshCompare(r.ids);
  else await refreshList();
  state.timer = setTimeout(tick, 1000);
}

function route() {
  const r = parseRoute(), main = document.getElementById("main");
  if (r.view !== "list" && !document.getElementById("root").textContent) refreshList();  // the header's folder
  Object.assign(state, {detail: null, gone: null, diff: null, metrics: {}, offsets: {}});
  main.replaceChildren();
  if (r.view === "run") runView(main, r.ids[0]);
  else if (r.view === "compare") compareView(main, r.ids);
  else listView(main);
  tick();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
