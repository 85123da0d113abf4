// The dashboard's only script (plain browser JS, no build step): polls /api/v1/stats and draws uPlot charts.
// Each panel gets data-samples = how many non-null values its chart holds (the headless test reads it).
const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];
const ms = (s) => (s === null ? null : s * 1000);
const pct = (r) => (r === null || r === undefined ? null : r * 100);

const panels = [
  {
    id: 'hit-ratio',
    series: ['edge', 'redis', 'memory', 'origin-local'],
    values: (p) => [
      pct(p.hitRatio.edge),
      pct(p.hitRatio.redis),
      pct(p.hitRatio.memory),
      pct(p.hitRatio['origin-local']),
    ],
    range: [0, 100],
  },
  {
    id: 'latency',
    series: ['edge p50', 'edge p99', 'origin p50', 'origin p99'],
    values: (p) => [ms(p.edgeP50), ms(p.edgeP99), ms(p.originP50), ms(p.originP99)],
  },
  { id: 'rps', series: ['edges', 'origin'], values: (p) => [p.edgeRps, p.originRps] },
  { id: 'purge-lag', series: ['p50', 'p99'], values: (p) => [ms(p.purgeLagP50), ms(p.purgeLagP99)] },
  { id: 'breaker', series: ['state'], values: (p) => [p.breaker], step: true, range: [0, 3] },
  { id: 'edges', series: ['connected'], values: (p) => [p.connectedEdges], step: true },
];

let breakerNames = ['closed', 'half-open', 'open', 'isolated'];
const charts = new Map();

function options(panel, width) {
  const axes = [{}, {}];
  if (panel.id === 'breaker') {
    axes[1] = { values: (_u, ticks) => ticks.map((t) => breakerNames[t] ?? ''), size: 80, splits: () => [0, 1, 2, 3] };
  }
  return {
    width,
    height: 180,
    scales: {
      x: { time: true },
      y: panel.range ? { range: panel.range } : { range: (_u, _lo, hi) => [0, Math.max(1, hi * 1.1)] },
    },
    axes,
    series: [
      {},
      ...panel.series.map((label, i) => ({
        label,
        stroke: colors[i % colors.length],
        width: 2,
        spanGaps: false,
        ...(panel.step ? { paths: uPlot.paths.stepped({ align: 1 }) } : {}),
      })),
    ],
  };
}

function draw(points) {
  const xs = points.map((p) => p.t / 1000);
  for (const panel of panels) {
    const el = document.getElementById(panel.id);
    const columns = panel.series.map((_, i) => points.map((p) => panel.values(p)[i] ?? null));
    const data = [xs, ...columns];
    const samples = columns.reduce((n, col) => n + col.filter((v) => v !== null).length, 0);
    el.dataset.samples = String(samples);
    let chart = charts.get(panel.id);
    if (!chart) {
      chart = new uPlot(options(panel, Math.max(420, el.clientWidth - 16)), data, el);
      charts.set(panel.id, chart);
    } else chart.setData(data);
  }
}

// Warm jobs (newest first): running ones show their progress and ETA.
function drawJobs(jobs) {
  const panel = document.getElementById('warm-jobs');
  if (!jobs || jobs.length === 0) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  const rows = jobs.map((j) => {
    const tr = document.createElement('tr');
    const cells = [
      j.namespace,
      j.state,
      j.done,
      j.failed,
      j.total ?? '?',
      Math.round(j.rate_per_second),
      j.eta_seconds === null ? '' : `${Math.ceil(j.eta_seconds)} s`,
      j.created_at.slice(11, 19),
    ];
    for (const value of cells) {
      const td = document.createElement('td');
      td.textContent = String(value);
      tr.append(td);
    }
    return tr;
  });
  panel.querySelector('tbody').replaceChildren(...rows);
  panel.dataset.running = String(jobs.filter((j) => j.state === 'running').length);
}

// With authentication on, /api/v1/stats needs a token with metrics:read; the page asks for one once per tab.
const tokenKey = 'strata-dashboard-token';
const authForm = document.getElementById('auth');
authForm.addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(tokenKey, document.getElementById('token').value.trim());
  authForm.hidden = true;
  clearTimeout(pollTimer);
  poll();
});
let pollTimer;

async function poll() {
  let delayMs = 2000;
  try {
    const token = sessionStorage.getItem(tokenKey);
    const res = await fetch('/api/v1/stats', {
      cache: 'no-store',
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    if (res.status === 401 || res.status === 403) {
      authForm.hidden = false;
      document.getElementById('status').textContent =
        res.status === 401
          ? token
            ? 'authentication required: this token was refused (expired, or signed with another secret)'
            : 'authentication required'
          : 'this token lacks metrics:read';
      return;
    }
    const stats = await res.json();
    breakerNames = stats.breaker_states ?? breakerNames;
    delayMs = Math.max(1, stats.sample_seconds) * 1000;
    draw(stats.points);
    drawJobs(stats.warm_jobs);
    const last = stats.points.at(-1);
    const edges = stats.edges.map((e) => e.edge_id).join(', ') || 'none reporting';
    const ratios = last
      ? Object.entries(last.hitRatio)
          .filter(([, r]) => r !== null && r !== undefined)
          .map(([tier, r]) => `${tier} ${(r * 100).toFixed(1)}%`)
          .join(', ')
      : '';
    document.getElementById('status').textContent = last
      ? `${stats.points.length} samples, every ${stats.sample_seconds} s · breaker ${last.breaker === null ? 'n/a (embedded store)' : breakerNames[last.breaker]} · eviction ${stats.eviction_policy} · hit ratio: ${ratios || 'no gets yet'} · edges: ${edges}`
      : 'waiting for the first samples…';
    document.body.dataset.polls = String(Number(document.body.dataset.polls ?? 0) + 1);
  } catch (error) {
    document.getElementById('status').textContent = `stats unavailable: ${error}`;
  }
  pollTimer = setTimeout(poll, delayMs);
}
poll();
