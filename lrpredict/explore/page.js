// lrpredict explore: the page's glue.  Every number comes from DATA, computed by lrpredict's Python API (suggest on
// a grid); this file only interpolates it in log space (the same arithmetic as lrpredict/explore/grid.py) and moves
// plotly's markers.  No law formula lives here.
"use strict";

const SUFFIX = { K: 1e3, M: 1e6, B: 1e9, G: 1e9, T: 1e12 };

function parseSize(text) {
  // "7B", "1.3e9", "4M": lrpredict's size suffixes (units.parse_size); NaN when malformed
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([KMBGT]?)\s*$/i.exec(String(text));
  if (!m) return NaN;
  const v = parseFloat(m[1]) * (m[2] ? SUFFIX[m[2].toUpperCase()] : 1);
  return v > 0 && isFinite(v) ? v : NaN;
}

function g3(x) {
  return Number(x.toPrecision(3)).toString();
}

function fmtSize(v) {
  // units.format_size: 1.3e9 -> 1.3B
  for (const [s, k] of [["T", 1e12], ["B", 1e9], ["M", 1e6], ["K", 1e3]]) if (v >= k) return g3(v / k) + s;
  return g3(v);
}

function bracket(nodes, x) {
  // (i, t) as grid._bracket: x between nodes[i] and nodes[i+1]; a law-switch cell snaps to its nearer node
  if (nodes.length === 1) return [0, 0];
  let i = 0;
  while (i < nodes.length - 2 && nodes[i + 1] <= x) i++;
  const width = nodes[i + 1] - nodes[i];
  let t = Math.min(Math.max((x - nodes[i]) / width, 0), 1);
  if (width < 1e-4) t = Math.round(t);
  return [i, t];
}

function multilinear(values, shape, brackets) {
  let total = 0;
  for (let corner = 0; corner < 1 << shape.length; corner++) {
    let weight = 1, index = 0;
    for (let a = 0; a < shape.length; a++) {
      const [i, t] = brackets[a], up = (corner >> a) & 1;
      if (up && (t === 0 || i + 1 >= shape[a])) { weight = 0; break; }
      weight *= up ? t : 1 - t;
      index = index * shape[a] + i + up;
    }
    if (weight) total += weight * values[index];
  }
  return total;
}

function at(q, p) {
  // log10 of quantity q at p = {ratio, n, d, batch} (log10; batch null: the optimal batch), as grid.interpolate
  const g = DATA.grid, ax = g.axes;
  const b = [bracket(ax.ratio, p.ratio), bracket(ax.n, p.n), bracket(ax.d, p.d), [0, 0]];
  if (p.batch !== null) {
    const [i, t] = bracket(ax.batch, p.batch - at("optimal_batch", { ...p, batch: null }));
    b[3] = [i + 1, t];
  }
  return multilinear(g.values[q], g.shape, b);
}

function nearest(nodes, x) {
  let best = 0;
  nodes.forEach((v, i) => { if (Math.abs(v - x) < Math.abs(nodes[best] - x)) best = i; });
  return best;
}

function nearestNode(p) {
  // the grid node nearest p in log space: its law, domain and warnings are shown (categorical, not interpolated)
  const ax = DATA.grid.axes, s = DATA.grid.shape;
  const idx = [nearest(ax.ratio, p.ratio), nearest(ax.n, p.n), nearest(ax.d, p.d)];
  const bi = p.batch === null ? 0 : 1 + nearest(ax.batch, p.batch - at("optimal_batch", { ...p, batch: null }));
  return { flat: ((idx[0] * s[1] + idx[1]) * s[2] + idx[2]) * s[3] + bi, idx, bi };
}

const $ = (id) => document.getElementById(id);

function readInputs() {
  const n = parseSize($("in-n").value), d = parseSize($("in-d").value), seq = parseSize($("in-seq").value);
  const fixed = $("in-batch-fixed").checked, batch = parseSize($("in-batch").value);
  const active = DATA.arch === "moe" ? parseSize($("in-active").value) : n;
  const problems = [];
  const r = DATA.ranges;
  if (!(n >= r.n[0] && n <= r.n[1])) problems.push(`N must be ${fmtSize(r.n[0])}–${fmtSize(r.n[1])} here`);
  if (!(d >= r.d[0] && d <= r.d[1])) problems.push(`D must be ${fmtSize(r.d[0])}–${fmtSize(r.d[1])} here`);
  if (DATA.arch === "moe" && !(active / n >= r.ratio[0] && active / n <= r.ratio[1] * (1 + 1e-9)))
    problems.push(`N_active/N must be ${g3(r.ratio[0])}–${g3(r.ratio[1])} here`);
  if (fixed && !(batch > 0)) problems.push("batch must be a size such as 4M");
  if (!(seq >= 1)) problems.push("sequence length must be a positive integer");
  return { n, d, active, fixed, batch, seq, problems };
}

function render() {
  const inp = readInputs();
  const p = { ratio: Math.log10(inp.active / inp.n), n: Math.log10(inp.n), d: Math.log10(inp.d), batch: inp.fixed ? Math.log10(inp.batch) : null };
  if (!inp.problems.length && inp.fixed) {
    const ratio = p.batch - at("optimal_batch", { ...p, batch: null }), ax = DATA.grid.axes.batch;
    if (ratio < ax[0] || ratio > ax[ax.length - 1])
      inp.problems.push(`a fixed batch must be ${g3(10 ** ax[0])}–${g3(10 ** ax[ax.length - 1])}× the optimal batch here`);
  }
  $("problems").textContent = inp.problems.length ? "Outside the explorer's grid: " + inp.problems.join("; ") + ". Run lrpredict suggest for these inputs." : "";
  document.body.classList.toggle("invalid", inp.problems.length > 0);
  if (inp.problems.length) return;
  const v = {};
  for (const q of DATA.grid.quantities) v[q] = 10 ** at(q, p);
  showSuggestion(inp, v, nearestNode(p));
  moveMarkers(inp, v);
  showLaws(p);
  showSweep(inp);
}

function put(id, value, text) {
  const el = $(id);
  el.dataset.value = value;
  el.textContent = text;
}

function showSuggestion(inp, v, node) {
  const label = DATA.grid.label_table[DATA.grid.labels[node.flat]];
  put("out-lr", v.lr, g3(v.lr));
  put("out-lr-low", v.lr_low, g3(v.lr_low));
  put("out-lr-high", v.lr_high, g3(v.lr_high));
  $("out-range-label").textContent = label.range_label;
  put("out-batch", v.batch, fmtSize(v.batch));
  $("out-seqs").textContent = `(= ${Math.round(v.batch / inp.seq)} sequences of ${inp.seq})`;
  $("out-batch-source").textContent = label.batch_source;
  put("out-opt-batch", v.optimal_batch, fmtSize(v.optimal_batch));
  $("out-lr-at-opt").textContent = g3(v.lr_at_optimal_batch);
  put("out-wd", v.weight_decay, g3(v.weight_decay));
  $("out-wd-law").textContent = label.weight_decay_law;
  const total = Math.max(1, Math.ceil(inp.d / v.batch)), warm = Math.round(v.warmup_steps), decay = Math.round(v.decay_steps);
  $("out-schedule").textContent = `WSD over ${total} steps: warmup ${warm}, stable ${Math.max(total - warm - decay, 0)}, ${label.decay_shape} decay ${decay} to ${g3(v.final_lr_ratio)}× peak`;
  $("out-law-schedule").textContent = label.schedule;
  $("out-law").textContent = `${label.law} — ${label.law_title} [status: ${label.status}; domain: ${label.domain.toUpperCase()}]`;
  $("out-default").textContent = label.default_choice;
  $("out-policy").textContent = label.batch_policy;
  const ax = DATA.grid.axes, i = node.idx;
  const batchText = node.bi === 0 ? "optimal batch" : `batch ${g3(10 ** ax.batch[node.bi - 1])}× optimal`;
  const nText = DATA.arch === "moe" ? `N=${fmtSize(10 ** ax.n[i[1]])} (N_active/N=${g3(10 ** ax.ratio[i[0]])})` : `N=${fmtSize(10 ** ax.n[i[1]])}`;
  $("warn-node").textContent = `${nText}, D=${fmtSize(10 ** ax.d[i[2]])}, ${batchText}`;
  const list = $("warnings");
  list.replaceChildren(...DATA.grid.warnings[node.flat].map((w) => Object.assign(document.createElement("li"), { textContent: DATA.grid.warning_table[w] })));
  if (!list.children.length) list.append(Object.assign(document.createElement("li"), { textContent: "none" }));
  let cmd = `lrpredict suggest --arch ${DATA.arch} --params ${fmtSize(inp.n)} --tokens ${fmtSize(inp.d)}`;
  if (DATA.arch === "moe") cmd += ` --active-params ${fmtSize(inp.active)}`;
  if (inp.fixed) cmd += ` --batch-tokens ${fmtSize(inp.batch)}`;
  $("out-cmd").textContent = cmd;
}

function moveMarkers(inp, v) {
  const ys = { "chart-lr": v.lr, "chart-batch": v.batch, "chart-weight_decay": v.weight_decay };
  const h = nearest(DATA.horizons.map(Math.log10), Math.log10(inp.d));
  for (const [id, y] of Object.entries(ys)) {
    const div = $(id);
    if (!div || !div.data) continue;
    const slider = div.layout.sliders[0];
    if (slider.active !== h) Plotly.update(div, slider.steps[h].args[0], { "sliders[0].active": h });
    Plotly.restyle(div, { x: [[inp.n]], y: [[y]] }, [div.data.length - 1]);
  }
}

function showLaws(p) {
  const rows = DATA.laws.map((law) => {
    const shape = [law.ratios.length, DATA.horizons.length, law.n.length];
    const b = [bracket(law.ratios, p.ratio), bracket(DATA.horizons.map(Math.log10), p.d), bracket(law.n, p.n)];
    const value = (q) => 10 ** multilinear(law.values[q], shape, b); // NaN where a corner cannot answer: shown "–"
    const near = ((nearest(law.ratios, p.ratio) * shape[1] + nearest(DATA.horizons.map(Math.log10), p.d)) * shape[2]) + nearest(law.n, p.n);
    const lr = value("lr");
    const cells = [law.id, law.status, isFinite(lr) ? g3(lr) : "–", isFinite(lr) ? `${g3(value("lr_low"))}–${g3(value("lr_high"))}` : "–",
      isFinite(lr) ? fmtSize(value("batch")) : "–", isFinite(lr) ? g3(value("weight_decay")) : "–", law.inside[near] ? "inside" : "extrapolated"];
    const tr = document.createElement("tr");
    tr.replaceChildren(...cells.map((c) => Object.assign(document.createElement("td"), { textContent: c })));
    return tr;
  });
  $("law-rows").replaceChildren(...rows);
}

let shownCell = -1;

function showSweep(inp) {
  if (!DATA.sweeps.length) return;
  let best = 0, bestDist = Infinity;
  DATA.sweeps.forEach((c, i) => {
    const dist = Math.hypot(Math.log10(c.n / inp.n), Math.log10(c.tokens / inp.d), DATA.arch === "moe" ? Math.log10(c.n_active / inp.active) : 0);
    if (dist < bestDist) { best = i; bestDist = dist; }
  });
  $("sweep-distance").textContent = `${bestDist.toFixed(2)} decades from your run in log N${DATA.arch === "moe" ? ", log N_active" : ""} and log D`;
  if (best === shownCell) return;
  shownCell = best;
  const fig = DATA.sweeps[best].figure;
  Plotly.react($("chart-sweep"), fig.data, fig.layout, { responsive: true, displaylogo: false });
}

async function decode(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

let DATA = null;

async function main() {
  DATA = await decode(document.getElementById("explorer-data").textContent.trim());
  for (const law of DATA.laws) for (const q of Object.keys(law.values)) law.values[q] = law.values[q].map((x) => (x === null ? NaN : x));
  for (const id of ["in-n", "in-active", "in-d", "in-batch", "in-seq", "in-batch-fixed", "in-batch-optimal"]) {
    const el = $(id);
    if (el) { el.addEventListener("input", render); el.addEventListener("change", render); }
  }
  render();
  document.body.dataset.ready = "1";
}

main();
