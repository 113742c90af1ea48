// lathe dashboard: charts every metric of the runs the server was given, one chart per
// metric with the runs overlaid, and keeps them current by polling /api/poll once a
// second. Polling rather than server-sent events: each poll asks only for the bytes
// appended since the offset the page holds (one stat and a small read per run), so the
// server keeps no state, watches no files and holds no thread for a page between polls
// (an event stream would hold one of its four per open tab, in the training process); a
// page that lost the server just polls again from its offset; and once a second shows an
// appended line well within 2 s.
'use strict';

const POLL_MS = 1000;
const SAMPLES_EVERY = 15;  // polls between re-reads of samples/ (written by `lathe eval`)
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2',
                '#17becf', '#bcbd22', '#7f7f7f'];
const NOT_CHARTED = new Set(['step', 'time']);
// Charts in this order first, then the rest by name.
const ORDER = ['loss', 'eval_loss', 'eval_ppl', 'lr', 'grad_norm', 'tokens_per_s', 'step_time_s',
               'mfu', 'peak_rss_mb', 'comm_share', 'comm_s', 'comm_thread_s', 'comm_bytes'];

// runs[i]: {name, dir, config, config_flat, rows, offset, head, status, samples}
const dash = {runs: [], charts: {}, polls: 0};
window.dashboard = dash;  // the browser test and the console read it

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'style') e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function fmtDuration(s) {
  if (s < 0 || !isFinite(s)) return '–';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
  return m ? `${m}m ${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

// Axis labels: 8k and 1.2M for large numbers, 9.50e-4 for small ones (learning rates),
// which dygraphs' own labels would round to one value.
function fmtAxis(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a !== 0 && a < 1e-2) return v.toExponential(2);
  return String(+v.toPrecision(4));
}

function fmtNum(v) {
  if (typeof v !== 'number') return '–';
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toPrecision(4);
}

// The newest row of a run that has `key`.
function latest(run, key) {
  for (let i = run.rows.length - 1; i >= 0; --i) if (key in run.rows[i]) return run.rows[i];
  return null;
}

async function getJson(url) {
  const res = await fetch(url, {cache: 'no-store'});
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

async function loadRuns() {
  const j = await getJson('api/runs');
  j.runs.forEach((r, i) => {
    const old = dash.runs[i];
    dash.runs[i] = Object.assign(
        old || {rows: [], offset: 0, head: '', status: {}, samples: []}, r);
  });
  drawDetails();
}

// A figure of one process: "rank1/comm_s" (as the trainer logs every process's
// communication and memory) -> {rank: 1, name: "comm_s"}.
const RANK_KEY = /^rank(\d+)\/(.+)$/;

// Series of one chart: [{label, color, points: Map(step -> value)}]. A number is one
// series per run; a figure per process (rank<r>/<name> keys, or an array) goes to the
// chart "<name> by rank", one series per run and rank.
function collectSeries() {
  const charts = {};
  const add = (key, label, color, step, v) => {
    const list = charts[key] || (charts[key] = []);
    let s = list.find(x => x.label === label);
    if (!s) list.push(s = {label, color, points: new Map()});
    s.points.set(step, v);
  };
  dash.runs.forEach((run, i) => {
    for (const row of run.rows) {
      for (const [k, v] of Object.entries(row)) {
        if (NOT_CHARTED.has(k)) continue;
        const m = RANK_KEY.exec(k);
        if (m && typeof v === 'number')
          add(`${m[2]} by rank`, `${run.name} rank ${m[1]}`,
              COLORS[(i + 3 * Number(m[1])) % COLORS.length], row.step, v);
        else if (typeof v === 'number') add(k, run.name, COLORS[i % COLORS.length], row.step, v);
        else if (Array.isArray(v))
          v.forEach((x, rank) => add(`${k} by rank`, `${run.name} rank ${rank}`,
                                     COLORS[(i + 3 * rank) % COLORS.length], row.step, x));
      }
    }
  });
  return charts;
}

// Dygraph's table: one row per step of any series, null where a series has no point.
function toTable(series) {
  const steps = new Set();
  for (const s of series) for (const k of s.points.keys()) steps.add(k);
  return [...steps].sort((a, b) => a - b).map(
      step => [step, ...series.map(s => (s.points.has(step) ? s.points.get(step) : null))]);
}

function chartOrder(a, b) {
  const ia = ORDER.indexOf(a), ib = ORDER.indexOf(b);
  if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  return a.localeCompare(b);
}

function drawCharts() {
  const all = collectSeries();
  let added = false;
  for (const key of Object.keys(all).sort(chartOrder)) {
    const series = all[key];
    const data = toTable(series);
    if (!data.length) continue;
    const opts = {
      file: data,
      labels: ['step', ...series.map(s => s.label)],
      colors: series.map(s => s.color),
      drawPoints: data.length < 100,
    };
    const chart = dash.charts[key];
    if (chart) {
      chart.updateOptions(opts);  // keeps a zoom the user chose
      continue;
    }
    const plot = el('div', {class: 'plot'});
    const legend = el('div', {class: 'legend'});
    document.getElementById('charts').append(
        el('div', {class: 'chart', id: `chart-${key}`}, el('h3', {}, key), legend, plot));
    dash.charts[key] = new Dygraph(plot, data, Object.assign(opts, {
      xlabel: 'step',
      legend: 'always',
      labelsDiv: legend,
      labelsSeparateLines: false,
      connectSeparatedPoints: true,  // eval points and runs with other steps join up
      strokeWidth: 1.5,
      axes: {y: {axisLabelFormatter: fmtAxis, axisLabelWidth: 64}},
    }));
    added = true;
  }
  // A chart takes its container's width when made; a new chart can reflow the grid.
  if (added) for (const c of Object.values(dash.charts)) c.resize();
}

window.addEventListener('resize', () => {
  for (const c of Object.values(dash.charts)) c.resize();
});

// Config keys whose values differ between the runs: what the comparison is about.
function differingKeys() {
  if (dash.runs.length < 2) return new Set();
  const keys = new Set(dash.runs.flatMap(r => Object.keys(r.config_flat || {})));
  const out = new Set();
  for (const k of keys) {
    if (k.startsWith('output.')) continue;  // where and how a run is saved: not what it tries
    const vals = new Set(dash.runs.map(r => (r.config_flat || {})[k]));
    if (vals.size > 1) out.add(k);
  }
  return out;
}

function drawRuns() {
  const differs = differingKeys();
  const rows = dash.runs.map((run, i) => {
    const s = run.status;
    const progress = s.total > 0 ? el('progress', {max: s.total, value: s.step}) : '';
    const stepText = `${s.step ?? 0} / ${s.total > 0 ? s.total : '?'}`;
    const loss = latest(run, 'loss'), evalRow = latest(run, 'eval_loss');
    const comm = latest(run, 'comm_s');
    const share = comm && (comm.comm_share ?? (comm.step_time_s > 0 ? comm.comm_s / comm.step_time_s : null));
    const commText = share != null ? `${(100 * share).toFixed(1)}% blocked` : '–';
    const diff = [...differs].map(k => `${k}=${(run.config_flat || {})[k] ?? '–'}`).join('  ');
    const ago = s.updated_s_ago >= 0 ? ` (updated ${fmtDuration(s.updated_s_ago)} ago)` : '';
    return el('tr', {id: `run-${i}`},
              el('td', {}, el('span', {class: 'swatch', style: `background:${COLORS[i % COLORS.length]}`})),
              el('td', {title: run.dir}, run.name),
              el('td', {}, (s.state || '') + ago),
              el('td', {class: 'num progress'}, progress, ' ', stepText),
              el('td', {class: 'num eta'}, fmtDuration(s.eta_s)),
              el('td', {class: 'num'}, s.seconds_per_step > 0 ? s.seconds_per_step.toFixed(3) : '–'),
              el('td', {class: 'num'}, fmtNum(loss && loss.loss)),
              el('td', {class: 'num'}, fmtNum(evalRow && evalRow.eval_loss)),
              el('td', {class: 'num'}, commText),
              el('td', {class: 'differs'}, diff));
  });
  document.querySelector('#runs tbody').replaceChildren(...rows);
}

// Per-process figures of the newest step that has them (rank<r>/<name> keys or arrays):
// one row per figure, one column per rank.
function perRankTable(run) {
  let row = null;
  for (let i = run.rows.length - 1; i >= 0 && !row; --i)
    if (Object.entries(run.rows[i]).some(([k, v]) => RANK_KEY.test(k) || Array.isArray(v))) row = run.rows[i];
  if (!row) return null;
  const table = {};  // name -> [value per rank]
  for (const [k, v] of Object.entries(row)) {
    const m = RANK_KEY.exec(k);
    if (m) (table[m[2]] ||= [])[Number(m[1])] = v;
    else if (Array.isArray(v)) table[k] = v;
  }
  const ranks = Math.max(...Object.values(table).map(v => v.length));
  const head = el('tr', {}, el('th', {}, `step ${row.step}`),
                  ...[...Array(ranks).keys()].map(r => el('th', {}, `rank ${r}`)));
  return el('table', {}, head, ...Object.entries(table).map(([k, vals]) => el(
      'tr', {}, el('td', {}, k), ...[...Array(ranks).keys()].map(r => el('td', {class: 'num'}, fmtNum(vals[r]))))));
}

function samplesView(run) {
  if (!run.samples.length) return el('p', {}, 'no samples/*.jsonl in this run folder');
  const box = el('div');
  for (const f of run.samples) {
    const rows = f.rows.map(r => el('tr', {}, el('td', {}, r.prompt ?? ''), el('td', {}, r.reference ?? ''),
                                     el('td', {}, r.prediction ?? '')));
    box.append(el('details', {}, el('summary', {}, `${f.file}: ${f.count} rows` +
                                                       (f.count > f.rows.length ? ` (first ${f.rows.length})` : '')),
                  el('table', {class: 'samples'},
                     el('tr', {}, el('th', {}, 'prompt'), el('th', {}, 'reference'), el('th', {}, 'prediction')),
                     ...rows)));
  }
  return box;
}

// The run folders' config, samples and per-rank figures; redrawn only when they change,
// so an open <details> stays open.
function drawDetails() {
  const box = document.getElementById('details');
  const open = new Set([...box.querySelectorAll('details[open]')].map(d => d.dataset.key));
  box.replaceChildren(...dash.runs.map((run, i) => {
    const part = (key, title, body) => {
      const d = el('details', {'data-key': `${i}-${key}`}, el('summary', {}, title), body);
      if (open.has(`${i}-${key}`)) d.open = true;
      return d;
    };
    const ranks = perRankTable(run);
    return el('div', {class: 'run'},
              el('h3', {}, el('span', {class: 'swatch', style: `background:${COLORS[i % COLORS.length]}`}),
                 ` ${run.name}`, el('span', {style: 'color:#888;font-weight:normal'}, `  ${run.dir}`)),
              part('config', 'config.yaml (resolved)', el('pre', {}, run.config || '(no config.yaml yet)')),
              part('samples', `eval samples (${run.samples.length} files)`, samplesView(run)),
              ranks ? part('ranks', 'per-process figures', ranks) : '');
  }));
}

async function loadSamples() {
  let changed = false;
  await Promise.all(dash.runs.map(async (run, i) => {
    const j = await getJson(`api/samples?run=${i}`);
    if (JSON.stringify(j.files) !== JSON.stringify(run.samples)) run.samples = j.files, changed = true;
  }));
  if (changed) drawDetails();
}

async function poll() {
  let next = POLL_MS;
  try {
    const q = `offset=${dash.runs.map(r => r.offset).join(',')}&head=${dash.runs.map(r => r.head).join(',')}`;
    const j = await getJson(`api/poll?${q}`);
    let changed = false, configChanged = false, ranksChanged = false;
    j.runs.forEach((p, i) => {
      const run = dash.runs[i];
      if (p.reset && run.rows.length) run.rows = [], changed = true;
      if (p.rows.length) {
        run.rows = run.rows.concat(p.rows);
        changed = true;
        ranksChanged ||= p.rows.some(r => Object.entries(r).some(([k, v]) => RANK_KEY.test(k) || Array.isArray(v)));
      }
      if (run.status.config_mtime_ns !== undefined && run.status.config_mtime_ns !== p.status.config_mtime_ns)
        configChanged = true;
      run.offset = p.offset, run.head = p.head, run.status = p.status;
      if (p.more) next = 0;  // the rest of a long log at once
    });
    if (changed) drawCharts();
    drawRuns();
    if (configChanged) await loadRuns();
    else if (ranksChanged) drawDetails();
    if (++dash.polls % SAMPLES_EVERY === 0) await loadSamples();
    dash.lastPoll = Date.now();
    setConn(`updated ${new Date().toLocaleTimeString()}`, false);
  } catch (e) {
    setConn(`server not answering (${e.message}); retrying`, true);
  }
  setTimeout(poll, next);
}

function setConn(text, down) {
  const c = document.getElementById('conn');
  c.textContent = text;
  c.className = down ? 'down' : '';
}

async function start() {
  try {
    await loadRuns();
    await loadSamples();
  } catch (e) {
    setConn(`cannot load the runs: ${e.message}; retrying`, true);
    setTimeout(start, POLL_MS);
    return;
  }
  poll();
}

start();
