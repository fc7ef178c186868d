// The FailProxy dashboard: one connection to /ui/events (server-sent events read
// through fetch, because EventSource cannot send the Authorization header), and
// plain DOM built with textContent — upstream messages never become markup.

const KEY_STORE = 'failproxy.apiKey';
const FEED_MAX = 100;
const CLASS_COLORS = {
  network: '#7f8c8d',
  timeout: '#e67e22',
  auth: '#c0392b',
  permission: '#a93226',
  payment: '#8e44ad',
  rate_limit: '#d4ac0d',
  not_found: '#5d6d7e',
  bad_request: '#2e86c1',
  server: '#e74c3c',
  invalid_response: '#16a085',
  stream_interrupted: '#af601a',
  content_filter: '#34495e',
};
const SVG = 'http://www.w3.org/2000/svg';

const state = { status: null, series: [], feed: [], open: new Set() };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

// ---------------------------------------------------------------------------
// Formatting

function seconds(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function tokens(n) {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(2)}M`;
}

function cost(usd, unpriced = 0, requests = 1) {
  if (requests === 0 || unpriced === requests) return '—';
  if (usd === null || usd === undefined) return '—';
  if (usd === 0) return '$0';
  const text = usd < 0.0001 ? `$${usd.toPrecision(2)}` : usd < 1 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
  return unpriced > 0 ? `${text} (+${unpriced} unpriced)` : text;
}

const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });

// ---------------------------------------------------------------------------
// Groups and endpoints

function stateCell(e) {
  if (e.state === 'ok') return el('td', {}, el('span', { class: 'state ok' }, 'ok'));
  const why = [e.reason, e.message].filter(Boolean).join(': ');
  if (e.state === 'cooling') {
    return el(
      'td',
      {},
      el('span', { class: 'state cooling' }, `cooling until ${clock(e.cooling_until)}`),
      el('div', { class: 'why' }, `because ${why || 'of repeated failures'}`),
    );
  }
  return el('td', {}, el('span', { class: 'state half_open' }, 'half-open'), el('div', { class: 'why' }, `next request probes it${why ? ` (was ${why})` : ''}`));
}

function endpointRow(e) {
  const failed = Object.values(e.window.failures).reduce((a, b) => a + b, 0);
  const total = e.window.successes + failed;
  const rate = total === 0 ? '—' : `${Math.round((e.window.successes / total) * 100)}% (${e.window.successes}/${total})`;
  const classes = Object.entries(e.window.failures).map(([k, v]) => `${k} ${v}`).join(', ') || '—';
  const u = e.usage;
  return el(
    'tr',
    { 'data-endpoint': e.name },
    el('td', {}, el('b', {}, e.name), el('div', { class: 'why' }, e.model)),
    stateCell(e),
    el('td', { class: 'num' }, rate),
    el('td', {}, classes),
    el('td', { class: 'num' }, `${seconds(e.window.p50_ms)} / ${seconds(e.window.p95_ms)}`),
    el('td', { class: 'num' }, `${seconds(e.window.ttft_p50_ms)} / ${seconds(e.window.ttft_p95_ms)}`),
    el('td', { class: 'num', title: `cached ${u.cached_tokens}, reasoning ${u.reasoning_tokens}` }, `${tokens(u.prompt_tokens)} / ${tokens(u.completion_tokens)}`),
    el('td', { class: 'num' }, cost(u.cost, u.unpriced, u.requests)),
  );
}

function renderGroups() {
  const groups = state.status?.groups ?? [];
  const head = el(
    'tr',
    {},
    ['endpoint', 'state', 'success', 'failures', 'p50 / p95', 'ttft p50 / p95', 'tokens in / out', 'cost'].map((h, i) => el('th', { class: i === 2 || i >= 4 ? 'num' : undefined }, h)),
  );
  $('groups').replaceChildren(
    ...groups.map((g) => {
      const usable = g.endpoints.filter((e) => e.state !== 'cooling').length;
      const rows = g.endpoints.map(endpointRow);
      for (const s of g.skipped) rows.push(el('tr', { class: 'skipped' }, el('td', {}, s.name), el('td', { colspan: 7 }, `skipped: ${s.reason}`)));
      return el(
        'div',
        { class: 'group', 'data-group': g.name },
        el(
          'div',
          { class: 'group-head' },
          el('h3', {}, g.name),
          el('span', {}, `${usable}/${g.endpoints.length} endpoints available`),
          el('span', {}, `${g.usage.requests} answered · ${tokens(g.usage.prompt_tokens + g.usage.completion_tokens)} tokens · ${cost(g.usage.cost, g.usage.unpriced, g.usage.requests)}`),
        ),
        el('table', {}, el('thead', {}, head.cloneNode(true)), el('tbody', {}, rows)),
      );
    }),
  );
  const all = groups.reduce(
    (a, g) => ({ n: a.n + g.usage.requests, t: a.t + g.usage.prompt_tokens + g.usage.completion_tokens, c: a.c + g.usage.cost, u: a.u + g.usage.unpriced }),
    { n: 0, t: 0, c: 0, u: 0 },
  );
  const up = state.status ? `${Math.floor(state.status.uptime_s / 60)} min` : '—';
  $('totals').replaceChildren(
    el('span', {}, 'up ', el('b', {}, up)),
    el('span', {}, el('b', {}, String(all.n)), ' answered'),
    el('span', {}, el('b', {}, tokens(all.t)), ' tokens'),
    el('span', {}, el('b', {}, cost(all.c, all.u, all.n)), ' spent'),
  );
}

// ---------------------------------------------------------------------------
// Live feed

function chain(r) {
  const parts = [];
  r.attempts.forEach((a, i) => {
    if (i > 0) parts.push(el('span', { class: 'arrow' }, '→'));
    if (a.ok) parts.push(el('span', {}, `${a.endpoint} `, el('span', { class: 'ok' }, '✓'), ` ${seconds(a.ms)}`));
    else if (a.class === null) parts.push(el('span', {}, `${a.endpoint} `, el('span', { class: 'cls' }, 'abandoned')));
    else parts.push(el('span', {}, `${a.endpoint} `, el('span', { class: 'bad' }, '✗'), ' ', el('span', { class: 'cls' }, a.class), a.status ? ` ${a.status}` : ''));
  });
  if (r.outcome !== 'ok') parts.push(el('span', {}, ' ', el('span', { class: 'bad' }, '✗'), ` ${r.outcome === 'interrupted' ? 'stream interrupted' : r.outcome} (${r.status})`));
  return el('span', { class: 'chain' }, parts);
}

function detail(r) {
  const rows = r.attempts.map((a) =>
    el('tr', {}, el('td', {}, `#${a.n}`), el('td', {}, a.endpoint), el('td', {}, a.ok ? '✓ answered' : (a.class ?? 'abandoned')), el('td', { class: 'num' }, a.status ?? ''), el('td', { class: 'num' }, seconds(a.ms)), el('td', {}, a.message ?? '')),
  );
  const u = r.usage;
  const summary = [`request ${r.id}`, r.stream ? 'stream' : 'no stream', `status ${r.status}`, `total ${seconds(r.ms)}`, r.ttft_ms !== null ? `ttft ${seconds(r.ttft_ms)}` : null];
  if (u) summary.push(`tokens ${u.prompt_tokens} in (${u.cached_tokens} cached) / ${u.completion_tokens} out (${u.reasoning_tokens} reasoning)`, `cost ${cost(u.cost)}`);
  return el('div', { class: 'detail' }, el('div', { class: 'summary' }, summary.filter(Boolean).join(' · ')), el('table', {}, el('tbody', {}, rows)));
}

function feedItem(r) {
  const u = r.usage;
  const meta = [seconds(r.ms), u ? `${tokens(u.prompt_tokens + u.completion_tokens)} tok` : null, u && u.cost !== null ? cost(u.cost) : null].filter(Boolean).join(' · ');
  const item = el(
    'li',
    { 'data-id': r.id, 'data-outcome': r.outcome },
    el('div', { class: 'line' }, el('time', { datetime: r.ts }, clock(r.ts)), el('span', { class: 'grp' }, r.group), chain(r), el('span', { class: 'meta' }, meta)),
  );
  if (state.open.has(r.id)) item.append(detail(r));
  item.addEventListener('click', () => {
    if (state.open.has(r.id)) state.open.delete(r.id);
    else state.open.add(r.id);
    item.replaceWith(feedItem(r));
  });
  return item;
}

function renderFeed() {
  $('feed').replaceChildren(...state.feed.map(feedItem));
  $('feed-empty').hidden = state.feed.length > 0;
}

function addRequest(r) {
  state.feed.unshift(r);
  if (state.feed.length > FEED_MAX) state.feed.length = FEED_MAX;
  $('feed').prepend(feedItem(r));
  while ($('feed').children.length > FEED_MAX) $('feed').lastChild.remove();
  $('feed-empty').hidden = true;
}

// ---------------------------------------------------------------------------
// Charts: hand-drawn SVG, one bar or point per minute of the last hour.

function bars(target, series, stacks) {
  const node = $(target);
  const max = Math.max(1, ...series.map((p) => stacks.reduce((sum, s) => sum + s.value(p), 0)));
  const w = 600 / Math.max(1, series.length);
  const shapes = [];
  series.forEach((p, i) => {
    let y = 120;
    for (const s of stacks) {
      const h = (s.value(p) / max) * 110;
      if (h <= 0) continue;
      y -= h;
      shapes.push(svg('rect', { x: i * w + 1, y, width: Math.max(1, w - 2), height: h, fill: s.color }));
    }
  });
  const label = svg('text', { x: 4, y: 12, 'font-size': 11, fill: '#6b7385' });
  label.textContent = `max ${max}`;
  node.replaceChildren(svg('line', { x1: 0, y1: 119.5, x2: 600, y2: 119.5, stroke: '#e3e6ec' }), ...shapes, label);
}

function lines(target, series, keys) {
  const node = $(target);
  const max = Math.max(1, ...series.flatMap((p) => keys.map((k) => p[k.key] ?? 0)));
  const w = 600 / Math.max(1, series.length - 1);
  const paths = keys.map((k) => {
    let d = '';
    let pen = false;
    series.forEach((p, i) => {
      const v = p[k.key];
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${(i * w).toFixed(1)},${(118 - (v / max) * 108).toFixed(1)} `;
      pen = true;
    });
    return svg('path', { d: d || 'M0,0', fill: 'none', stroke: k.color, 'stroke-width': 2, 'vector-effect': 'non-scaling-stroke' });
  });
  // A minute with traffic between quiet ones has no line to draw: mark every point.
  const dots = keys.flatMap((k) =>
    series.flatMap((p, i) => (p[k.key] === null || p[k.key] === undefined ? [] : [svg('rect', { x: i * w - 2, y: 116 - (p[k.key] / max) * 108, width: 4, height: 4, fill: k.color })])),
  );
  node.replaceChildren(svg('line', { x1: 0, y1: 119.5, x2: 600, y2: 119.5, stroke: '#e3e6ec' }), ...paths, ...dots);
  $('latency-max').textContent = `max ${seconds(max)}`;
}

function renderCharts() {
  const series = state.series;
  bars('chart-requests', series, [
    { color: '#1f9d55', value: (p) => p.requests - p.failed },
    { color: '#d64545', value: (p) => p.failed },
  ]);
  const classes = [...new Set(series.flatMap((p) => Object.keys(p.failures)))].sort();
  bars('chart-failures', series, classes.map((c) => ({ color: CLASS_COLORS[c] ?? '#999', value: (p) => p.failures[c] ?? 0 })));
  $('legend-classes').replaceChildren(...classes.flatMap((c) => [el('i', { class: 'sw', 'data-class': c }), c]));
  for (const sw of $('legend-classes').querySelectorAll('.sw')) sw.style.background = CLASS_COLORS[sw.dataset.class] ?? '#999';
  lines('chart-latency', series, [
    { key: 'p50_ms', color: '#3b6fd8' },
    { key: 'p95_ms', color: '#8e44ad' },
  ]);
}

// ---------------------------------------------------------------------------
// The connection

function setConn(text, kind) {
  const c = $('conn');
  c.textContent = text;
  c.className = `conn ${kind ?? ''}`;
}

function onMessage(message) {
  switch (message.type) {
    case 'snapshot':
      state.status = message.status;
      state.series = message.series;
      state.feed = [...message.recent].reverse();
      renderGroups();
      renderCharts();
      renderFeed();
      return;
    case 'status':
      state.status = message.status;
      state.series = message.series;
      renderGroups();
      renderCharts();
      return;
    case 'request':
      addRequest(message.request);
      return;
  }
}

function showLogin(error) {
  $('main').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = error ?? '';
  setConn('locked', 'down');
  $('key').focus();
}

let retryTimer;
function retry() {
  setConn('reconnecting…', 'down');
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, 2000);
}

async function connect() {
  const key = sessionStorage.getItem(KEY_STORE);
  let res;
  try {
    res = await fetch('/ui/events', { headers: key ? { authorization: `Bearer ${key}` } : {}, cache: 'no-store' });
  } catch {
    return retry();
  }
  if (res.status === 401) {
    sessionStorage.removeItem(KEY_STORE);
    return showLogin(key ? 'The server refused that key.' : null);
  }
  if (!res.ok || !res.body) return retry();
  $('login').hidden = true;
  $('main').hidden = false;
  setConn('live', 'live');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (data) onMessage(JSON.parse(data));
      }
    }
  } catch {
    // The stream broke (server restart, network); fall through to reconnect.
  }
  retry();
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $('key').value.trim());
  $('key').value = '';
  setConn('connecting…');
  void connect();
});

void connect();
